// Package web is flowshield's HTTP server: the JSON API of the contract,
// /healthz, /metrics, and the web UI (package web/ui). It reads the daemon's state
// through small interfaces it owns (StatusSource, HealthSource); other
// components add their routes with Handle before Start.
//
// Every error is JSON {"error": "..."} with a fitting status code, unknown
// paths and methods included. With a token (FLOWSHIELD_API_TOKEN) every
// /api/ route needs "Authorization: Bearer TOKEN"; without one, reads are
// open and writes are accepted only from loopback clients that name a
// loopback Host (127.0.0.1, [::1] or localhost, any port; against DNS
// rebinding) and carry no proxy header (Forwarded, X-Forwarded-For,
// X-Forwarded-Host, X-Real-IP). Writes are also refused from cross-origin
// browser requests (CSRF), whatever the token. Every refusal is a 401 or
// 403 counted in flowshield_http_refused_total by reason.
package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/telemetry/promtext"
)

// Configuration of the HTTP server.
type Configuration struct {
	Listen string // host:port; "" disables the server
	Token  string // API_TOKEN; "" means reads open, writes from loopback only

	ReadHeaderTimeout time.Duration // slowloris guard
	ReadTimeout       time.Duration // whole request, body included
	WriteTimeout      time.Duration // whole response
	IdleTimeout       time.Duration // keep-alive
	MaxHeaderBytes    int
	MaxBodyBytes      int64 // request bodies beyond this get 413
}

// DefaultConfiguration listens on the contract's default :8080.
func DefaultConfiguration() Configuration {
	return Configuration{
		Listen:            ":8080",
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		MaxBodyBytes:      64 << 10,
	}
}

// StatusSource gives what GET /api/v1/status shows. Times may be in any
// zone and nil lists are fine: the handler normalizes them.
type StatusSource interface {
	Status() api.Status
}

// HealthSource says whether the daemon is healthy: nil, or why not (a
// listener or the store is down).
type HealthSource interface {
	Health() error
}

// Dependencies are what the server reads. Nil sources answer 503.
type Dependencies struct {
	Status StatusSource
	Health HealthSource
	Logger *slog.Logger // nil: slog.Default()
}

// Access says who may call a route.
type Access uint8

const (
	// Public routes need nothing: /healthz, /metrics, the web UI.
	Public Access = iota
	// Read routes (API reads) need the token when one is configured.
	Read
	// Write routes (API changes) need the token when one is configured,
	// else a loopback client with a loopback Host and no proxy header;
	// cross-origin browser requests are refused.
	Write
)

// Server is the HTTP server. New is inert; Start listens; Stop shuts down.
type Server struct {
	cfg    Configuration
	deps   Dependencies
	log    *slog.Logger
	mux    *http.ServeMux
	csrf   *http.CrossOriginProtection
	token  [sha256.Size]byte
	routes map[string]*routeMethods // by path pattern

	started atomic.Bool
	mu      sync.Mutex // guards srv, ln, done below
	srv     *http.Server
	ln      net.Listener
	done    chan struct{} // closed when Serve returns
	cancel  context.CancelFunc
}

// routeMethods dispatches one path pattern by method, so an unknown method
// gets a JSON 405 with Allow.
type routeMethods struct {
	server  *Server
	pattern string
	methods map[string]route
	allow   string
}

type route struct {
	access  Access
	handler http.Handler
}

// New builds the server with /healthz, /metrics and /api/v1/status.
func New(cfg Configuration, deps Dependencies) *Server {
	def := DefaultConfiguration()
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = def.ReadHeaderTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = def.ReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = def.WriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = def.IdleTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = def.MaxBodyBytes
	}
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:    cfg,
		deps:   deps,
		log:    log.With("component", "web"),
		mux:    http.NewServeMux(),
		csrf:   http.NewCrossOriginProtection(),
		routes: map[string]*routeMethods{},
	}
	if cfg.Token != "" {
		s.token = sha256.Sum256([]byte(cfg.Token))
	}
	// Unknown paths: JSON 404 (a UI registers its root as "/{$}").
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
	})
	s.Handle(http.MethodGet, "/healthz", Public, http.HandlerFunc(s.healthz))
	s.Handle(http.MethodGet, "/metrics", Public, http.HandlerFunc(serveMetrics))
	s.Handle(http.MethodGet, "/api/v1/status", Read, http.HandlerFunc(s.status))
	return s
}

// Handle registers h for method and pattern (net/http ServeMux path syntax
// without the method: "/api/v1/bans/{prefix}"; r.PathValue works). GET also
// answers HEAD. Call it before Start; it panics after, or on a duplicate.
func (s *Server) Handle(method, pattern string, access Access, h http.Handler) {
	if s.started.Load() {
		panic("web: Handle after Start: " + method + " " + pattern)
	}
	if pattern == "/" {
		panic(`web: "/" is the JSON 404 catch-all; register the UI root as "/{$}"`)
	}
	rm := s.routes[pattern]
	if rm == nil {
		rm = &routeMethods{server: s, pattern: pattern, methods: map[string]route{}}
		s.routes[pattern] = rm
		s.mux.Handle(pattern, rm)
	}
	if _, dup := rm.methods[method]; dup {
		panic("web: duplicate route " + method + " " + pattern)
	}
	rm.methods[method] = route{access: access, handler: h}
	if method == http.MethodGet {
		if _, ok := rm.methods[http.MethodHead]; !ok {
			rm.methods[http.MethodHead] = route{access: access, handler: h}
		}
	}
	var allow []string
	for m := range rm.methods {
		allow = append(allow, m)
	}
	slices.Sort(allow)
	rm.allow = strings.Join(allow, ", ")
}

func (rm *routeMethods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := rm.methods[r.Method]
	if !ok {
		w.Header().Set("Allow", rm.allow)
		WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, rm.pattern, rm.allow))
		return
	}
	if !rm.server.authorize(w, r, rt.access) {
		return
	}
	rt.handler.ServeHTTP(w, r)
}

// Handler is the server's whole handler chain, for httptest and embedding.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("HTTP handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				metrics.GetOrCreateCounter(`flowshield_http_panics_total`).Inc()
				if !rec.wrote {
					WriteError(rec, http.StatusInternalServerError, "internal error")
				}
			}
			s.count(r, rec.code())
		}()
		rec.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, s.cfg.MaxBodyBytes)
		}
		s.mux.ServeHTTP(rec, r)
	})
}

// count adds the request to a counter per route pattern and status code;
// patterns are the registered ones, so the series are bounded.
func (s *Server) count(r *http.Request, code int) {
	route := r.Pattern
	if route == "" || route == "/" {
		route = "unmatched"
	}
	metrics.GetOrCreateCounter(fmt.Sprintf(`flowshield_http_requests_total{route=%q,code="%d"}`, route, code)).Inc()
}

// authorize applies the route's access rule; on refusal it has written the
// JSON error.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, access Access) bool {
	if access == Public {
		return true
	}
	if access == Write {
		if err := s.csrf.Check(r); err != nil {
			s.refuse(w, http.StatusForbidden, "cross_origin", "cross-origin request refused")
			return false
		}
	}
	if s.cfg.Token != "" {
		got, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="flowshield"`)
			s.refuse(w, http.StatusUnauthorized, "missing_token", "missing Authorization: Bearer token")
			return false
		}
		// Hashing first makes the comparison constant-time in the length too.
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="flowshield", error="invalid_token"`)
			s.refuse(w, http.StatusUnauthorized, "bad_token", "invalid token")
			return false
		}
		return true
	}
	if access == Write {
		if !loopbackClient(r) {
			s.refuse(w, http.StatusForbidden, "not_loopback", "changes are accepted only from loopback clients when FLOWSHIELD_API_TOKEN is not set")
			return false
		}
		// A browser page can reach a loopback API through DNS rebinding
		// (its own name resolving to 127.0.0.1), but its requests carry
		// that name as Host; a local proxy would relay anyone's.
		if !loopbackHost(r.Host) {
			s.refuse(w, http.StatusForbidden, "not_loopback_host",
				fmt.Sprintf("changes without FLOWSHIELD_API_TOKEN need a loopback Host (127.0.0.1, [::1] or localhost, any port), not %q", r.Host))
			return false
		}
		if h := proxyHeader(r); h != "" {
			s.refuse(w, http.StatusForbidden, "proxy_header",
				"changes without FLOWSHIELD_API_TOKEN are not accepted through a proxy (the request has a "+h+" header)")
			return false
		}
	}
	return true
}

// proxyHeaders mark a request relayed by a proxy.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP"}

func proxyHeader(r *http.Request) string {
	for _, h := range proxyHeaders {
		if len(r.Header.Values(h)) > 0 {
			return h
		}
	}
	return ""
}

// loopbackHost says whether a Host header names this machine by a
// loopback IP literal or "localhost", with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

func (s *Server) refuse(w http.ResponseWriter, code int, reason, msg string) {
	metrics.GetOrCreateCounter(`flowshield_http_refused_total{reason="` + reason + `"}`).Inc()
	WriteError(w, code, msg)
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// loopbackClient trusts only the connection's address, never forwarding
// headers a remote client could forge.
func loopbackClient(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	return ap.Addr().Unmap().IsLoopback()
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.deps.Health == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "unhealthy: no health source")
		return
	}
	if err := s.deps.Health.Health(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "unhealthy: "+oneLine(err.Error()))
		return
	}
	fmt.Fprintln(w, "ok")
}

func serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// an error is the client's connection failing: nothing left to tell it
	_ = promtext.WritePrometheus(w)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	if s.deps.Status == nil {
		WriteError(w, http.StatusServiceUnavailable, "status not available")
		return
	}
	WriteJSON(w, http.StatusOK, normalize(s.deps.Status.Status()))
}

// Start listens on Listen and serves in the background; "" does nothing.
// ctx bounds only the listening; the server runs until Stop.
func (s *Server) Start(ctx context.Context) error {
	if s.cfg.Listen == "" {
		s.log.Info("HTTP server disabled")
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("web: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening for HTTP on %s: %w", s.cfg.Listen, err)
	}
	s.started.Store(true)
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	s.done = make(chan struct{})
	srv, done := s.srv, s.done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("HTTP server stopped", "error", err)
		}
	}()
	s.log.Info("HTTP server listening", "address", ln.Addr().String(), "token", s.cfg.Token != "")
	return nil
}

// Addr is the address listened on (useful with port 0), nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Stop shuts the server down gracefully; when ctx ends first it closes the
// remaining connections. It waits for the serving goroutine.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, done, cancel := s.srv, s.done, s.cancel
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	cancel() // handlers still running see their request context end
	if err != nil {
		srv.Close()
		err = fmt.Errorf("shutting down the HTTP server: %w", err)
	}
	<-done
	return err
}

// statusRecorder remembers the status code for the request counter.
type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.status = http.StatusOK
		r.wrote = true
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) code() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.status
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ")
}
