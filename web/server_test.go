package web

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/api"
)

type fakeStatus struct{ s api.Status }

func (f fakeStatus) Status() api.Status { return f.s }

type fakeHealth struct{ err error }

func (f fakeHealth) Health() error { return f.err }

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newTestServer has the built-in routes plus a write route that echoes
// its JSON body and a route that panics.
func newTestServer(cfg Configuration, deps Dependencies) *Server {
	if deps.Logger == nil {
		deps.Logger = quietLogger()
	}
	s := New(cfg, deps)
	s.Handle(http.MethodPost, "/api/v1/echo", Write, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if !DecodeJSON(w, r, &body) {
			return
		}
		WriteJSON(w, http.StatusCreated, body)
	}))
	s.Handle(http.MethodDelete, "/api/v1/echo/{key}", Write, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"key": r.PathValue("key")})
	}))
	s.Handle(http.MethodGet, "/api/v1/panic", Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	}))
	return s
}

type request struct {
	method, path, body string
	remote             string // RemoteAddr; default 127.0.0.1:40000
	host               string // Host; default 127.0.0.1:8080, as a local client sends
	header             map[string]string
}

func do(t *testing.T, h http.Handler, rq request) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	r.RemoteAddr = "127.0.0.1:40000"
	if rq.remote != "" {
		r.RemoteAddr = rq.remote
	}
	r.Host = "127.0.0.1:8080"
	if rq.host != "" {
		r.Host = rq.host
	}
	if rq.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// jsonError checks that the answer is the contract's error JSON.
func jsonError(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("body is not JSON: %q", w.Body.String())
	}
	msg, ok := e["error"].(string)
	if !ok || msg == "" || len(e) != 1 {
		t.Errorf(`want {"error": "..."}, got %s`, w.Body.String())
	}
	return msg
}

func TestRoutes(t *testing.T) {
	const token = "t0ken"
	open := newTestServer(DefaultConfiguration(), Dependencies{Status: fakeStatus{}, Health: fakeHealth{}}).Handler()
	cfg := DefaultConfiguration()
	cfg.Token = token
	guarded := newTestServer(cfg, Dependencies{Status: fakeStatus{}, Health: fakeHealth{}}).Handler()
	small := DefaultConfiguration()
	small.MaxBodyBytes = 32
	limited := newTestServer(small, Dependencies{}).Handler()
	bearer := map[string]string{"Authorization": "Bearer " + token}

	tests := []struct {
		name    string
		h       http.Handler
		rq      request
		code    int
		errPart string // "" for a success; else part of the JSON error
	}{
		{"unknown route", open, request{method: "GET", path: "/api/v1/nothing"}, 404, "no such route"},
		{"unknown root path", open, request{method: "GET", path: "/x"}, 404, "no such route"},
		{"wrong method", open, request{method: "DELETE", path: "/api/v1/status"}, 405, "method DELETE not allowed"},
		{"wrong method healthz", open, request{method: "POST", path: "/healthz"}, 405, "not allowed"},
		{"status open read", open, request{method: "GET", path: "/api/v1/status", remote: "192.0.2.7:5555"}, 200, ""},
		{"head status", open, request{method: "HEAD", path: "/api/v1/status"}, 200, ""},
		{"write from loopback v4", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`}, 201, ""},
		{"write from loopback v6", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, remote: "[::1]:40000"}, 201, ""},
		{"write from mapped loopback", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, remote: "[::ffff:127.0.0.1]:40000"}, 201, ""},
		{"write from remote without token", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, remote: "192.0.2.7:5555"}, 403, "only from loopback"},
		{"delete from remote without token", open, request{method: "DELETE", path: "/api/v1/echo/203.0.113.5%2F32", remote: "192.0.2.7:5555"}, 403, "only from loopback"},
		{"forged forwarding header", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, remote: "192.0.2.7:5555",
			header: map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}}, 403, "only from loopback"},
		{"rebinding write", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "attacker.example"}, 403, "loopback Host"},
		{"rebinding write with port", open, request{method: "DELETE", path: "/api/v1/echo/x", host: "attacker.example:8080"}, 403, "loopback Host"},
		{"write with a LAN Host", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "192.0.2.1:8080"}, 403, "loopback Host"},
		{"write with localhost.attacker Host", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "localhost.attacker.example"}, 403, "loopback Host"},
		{"write with empty Host", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: ":8080"}, 403, "loopback Host"},
		{"write with Host 127.0.0.1", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "127.0.0.1"}, 201, ""},
		{"write with Host 127.1.2.3:80", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "127.1.2.3:80"}, 201, ""},
		{"write with Host [::1]:8080", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "[::1]:8080"}, 201, ""},
		{"write with Host [::1]", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "[::1]"}, 201, ""},
		{"write with Host localhost:8080", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "localhost:8080"}, 201, ""},
		{"write with Host LOCALHOST", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "LOCALHOST"}, 201, ""},
		{"read with a foreign Host", open, request{method: "GET", path: "/api/v1/status", host: "attacker.example"}, 200, ""},
		{"write through a proxy: Forwarded", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`,
			header: map[string]string{"Forwarded": "for=127.0.0.1"}}, 403, "Forwarded header"},
		{"write through a proxy: X-Forwarded-For", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`,
			header: map[string]string{"X-Forwarded-For": "127.0.0.1"}}, 403, "X-Forwarded-For header"},
		{"write through a proxy: X-Forwarded-Host", open, request{method: "DELETE", path: "/api/v1/echo/x",
			header: map[string]string{"X-Forwarded-Host": "localhost"}}, 403, "X-Forwarded-Host header"},
		{"write through a proxy: X-Real-IP", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`,
			header: map[string]string{"X-Real-IP": "127.0.0.1"}}, 403, "X-Real-IP header"},
		{"token write with a foreign Host through a proxy", guarded, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, host: "flowshield.example",
			header: map[string]string{"Authorization": "Bearer " + token, "X-Forwarded-For": "192.0.2.7"}}, 201, ""},
		{"cross-site write", open, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`,
			header: map[string]string{"Sec-Fetch-Site": "cross-site"}}, 403, "cross-origin"},
		{"cross-site write with token", guarded, request{method: "DELETE", path: "/api/v1/echo/x",
			header: map[string]string{"Authorization": "Bearer " + token, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}}, 403, "cross-origin"},
		{"token missing", guarded, request{method: "GET", path: "/api/v1/status"}, 401, "missing Authorization"},
		{"token wrong", guarded, request{method: "GET", path: "/api/v1/status", header: map[string]string{"Authorization": "Bearer t0kem"}}, 401, "invalid token"},
		{"token prefix", guarded, request{method: "GET", path: "/api/v1/status", header: map[string]string{"Authorization": "Bearer t0ke"}}, 401, "invalid token"},
		{"token basic scheme", guarded, request{method: "GET", path: "/api/v1/status", header: map[string]string{"Authorization": "Basic " + token}}, 401, "missing"},
		{"token right", guarded, request{method: "GET", path: "/api/v1/status", header: bearer, remote: "192.0.2.7:5555"}, 200, ""},
		{"token lower-case scheme", guarded, request{method: "GET", path: "/api/v1/status", header: map[string]string{"Authorization": "bearer " + token}}, 200, ""},
		{"token write from remote", guarded, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`, header: bearer, remote: "192.0.2.7:5555"}, 201, ""},
		{"token write without token from loopback", guarded, request{method: "POST", path: "/api/v1/echo", body: `{"a":1}`}, 401, "missing"},
		{"healthz needs no token", guarded, request{method: "GET", path: "/healthz"}, 200, ""},
		{"metrics need no token", guarded, request{method: "GET", path: "/metrics"}, 200, ""},
		{"body too large", limited, request{method: "POST", path: "/api/v1/echo", body: `{"a":"` + strings.Repeat("x", 100) + `"}`}, 413, "larger than 32 bytes"},
		{"body not json type", limited, request{method: "POST", path: "/api/v1/echo", body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, "application/json"},
		{"body malformed", limited, request{method: "POST", path: "/api/v1/echo", body: `{"a":`}, 400, "malformed"},
		{"body two values", limited, request{method: "POST", path: "/api/v1/echo", body: `{} {}`}, 400, "more than one"},
		{"body empty", limited, request{method: "POST", path: "/api/v1/echo", header: map[string]string{"Content-Type": "application/json"}}, 400, "empty"},
		{"panic is a 500", open, request{method: "GET", path: "/api/v1/panic"}, 500, "internal error"},
		{"no status source", limited, request{method: "GET", path: "/api/v1/status"}, 503, "not available"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := do(t, tt.h, tt.rq)
			if w.Code != tt.code {
				t.Fatalf("%s %s: code %d, want %d; body %s", tt.rq.method, tt.rq.path, w.Code, tt.code, w.Body)
			}
			if tt.errPart != "" {
				if msg := jsonError(t, w); !strings.Contains(msg, tt.errPart) {
					t.Errorf("error %q does not say %q", msg, tt.errPart)
				}
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
		})
	}
}

func TestMethodNotAllowedListsAllow(t *testing.T) {
	h := newTestServer(DefaultConfiguration(), Dependencies{}).Handler()
	w := do(t, h, request{method: "PUT", path: "/api/v1/status"})
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("code %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestPathValue(t *testing.T) {
	h := newTestServer(DefaultConfiguration(), Dependencies{}).Handler()
	w := do(t, h, request{method: "DELETE", path: "/api/v1/echo/203.0.113.5%2F32"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"203.0.113.5/32"`) {
		t.Errorf("code %d body %s", w.Code, w.Body)
	}
}

func TestHealthz(t *testing.T) {
	tests := []struct {
		name   string
		health HealthSource
		code   int
		body   string
	}{
		{"healthy", fakeHealth{}, 200, "ok\n"},
		{"unhealthy", fakeHealth{errors.New("netflow listener down:\nsocket closed")}, 503, "unhealthy: netflow listener down: socket closed\n"},
		{"no source", nil, 503, "unhealthy: no health source\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestServer(DefaultConfiguration(), Dependencies{Health: tt.health}).Handler()
			w := do(t, h, request{method: "GET", path: "/healthz"})
			if w.Code != tt.code || w.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body, tt.code, tt.body)
			}
		})
	}
}

func TestStatusJSON(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	started := time.Date(2026, 1, 2, 4, 5, 6, 0, paris)
	src := fakeStatus{api.Status{
		Version: "1.2.3", StartedAt: started, UptimeSeconds: 42,
		Totals:  api.Totals{In: api.Rates{PPS: 10, BPS: 8000, Flows: 3}, Out: api.Rates{PPS: 1}},
		Records: 5, FlowPackets: 5000, FlowBytes: 7000000, Dropped: 2,
		Exporters: []api.Exporter{{
			Address: "192.0.2.1", Protocol: "netflow", Version: 9, Datagrams: 3, Records: 5,
			FlowPackets: 5000, FlowBytes: 7000000, DecodeErrors: map[string]uint64{"no_template": 1},
			LastSeen: started, SamplingRate: 1000, ClockSkewSeconds: -0.5,
		}, {Address: "2001:db8::1", Protocol: "sflow", Version: 5}},
		Routers: []api.Router{{Address: "192.0.2.1:8728", Connected: false, LastError: "dial tcp: refused"}},
	}}
	h := newTestServer(DefaultConfiguration(), Dependencies{Status: src}).Handler()
	w := do(t, h, request{method: "GET", path: "/api/v1/status"})
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("code %d type %q", w.Code, w.Header().Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"version", "uptime", "totals", "records", "flow_packets", "flow_bytes", "dropped", "exporters", "routers"} {
		if _, ok := got[key]; !ok {
			t.Errorf("status has no %q: %s", key, w.Body)
		}
	}
	if got["started_at"] != "2026-01-02T03:05:06Z" {
		t.Errorf("started_at %v, want UTC RFC 3339", got["started_at"])
	}
	in := got["totals"].(map[string]any)["in"].(map[string]any)
	if in["pps"] != 10.0 || in["bps"] != 8000.0 || in["flows"] != 3.0 {
		t.Errorf("totals.in %v", in)
	}
	exps := got["exporters"].([]any)
	e0 := exps[0].(map[string]any)
	for key, want := range map[string]any{"address": "192.0.2.1", "protocol": "netflow", "version": 9.0, "datagrams": 3.0,
		"records": 5.0, "flow_packets": 5000.0, "flow_bytes": 7000000.0, "sampling_rate": 1000.0, "clock_skew_seconds": -0.5,
		"last_seen": "2026-01-02T03:05:06Z"} {
		if e0[key] != want {
			t.Errorf("exporter %s = %v, want %v", key, e0[key], want)
		}
	}
	if e0["decode_errors"].(map[string]any)["no_template"] != 1.0 {
		t.Errorf("decode_errors %v", e0["decode_errors"])
	}
	if e1 := exps[1].(map[string]any); e1["decode_errors"] == nil {
		t.Error("decode_errors is null for an exporter without errors")
	}
	r0 := got["routers"].([]any)[0].(map[string]any)
	if r0["address"] != "192.0.2.1:8728" || r0["connected"] != false || r0["last_error"] != "dial tcp: refused" {
		t.Errorf("router %v", r0)
	}

	// Empty lists are [] not null.
	h = newTestServer(DefaultConfiguration(), Dependencies{Status: fakeStatus{}}).Handler()
	w = do(t, h, request{method: "GET", path: "/api/v1/status"})
	if !strings.Contains(w.Body.String(), `"exporters":[]`) || !strings.Contains(w.Body.String(), `"routers":[]`) {
		t.Errorf("empty status: %s", w.Body)
	}
}

func TestMetrics(t *testing.T) {
	h := newTestServer(DefaultConfiguration(), Dependencies{Health: fakeHealth{}}).Handler()
	do(t, h, request{method: "GET", path: "/healthz"})
	do(t, h, request{method: "GET", path: "/no/such/thing"})
	w := do(t, h, request{method: "GET", path: "/metrics"})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("code %d type %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	for _, want := range []string{
		"go_goroutines ", "process_cpu_seconds_total ",
		`flowshield_http_requests_total{route="/healthz",code="200"} `,
		`flowshield_http_requests_total{route="unmatched",code="404"} `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestHandleMisuse(t *testing.T) {
	s := New(DefaultConfiguration(), Dependencies{Logger: quietLogger()})
	mustPanic := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mustPanic("duplicate", func() { s.Handle("GET", "/api/v1/status", Read, ok) })
	mustPanic("root", func() { s.Handle("GET", "/", Public, ok) })
	s.Handle("GET", "/{$}", Public, ok) // the UI's root is fine
}

// TestRealListener runs the server on 127.0.0.1:0 over real TCP: routes,
// the header timeout, and a graceful Stop.
func TestRealListener(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Listen = "127.0.0.1:0"
	cfg.ReadHeaderTimeout = 200 * time.Millisecond
	s := newTestServer(cfg, Dependencies{Health: fakeHealth{}, Status: fakeStatus{api.Status{Version: "x"}}})
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Stop(ctx)
		}
	}()
	base := "http://" + s.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}

	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("healthz %d %q", resp.StatusCode, body)
	}
	resp, err = client.Post(base+"/api/v1/echo", "application/json", strings.NewReader(`{"x":"y"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"x":"y"`) {
		t.Errorf("loopback write %d %s", resp.StatusCode, body)
	}

	// A client that never finishes its headers is cut off.
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("slow header not cut off after %v (read %q, %v)", elapsed, line, err)
	}

	if err := s.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("server still answers after Stop")
	}
}

// TestDNSRebindingRealHTTP: over a real loopback connection without a
// token, a write whose Host is a foreign name (a page whose name was
// rebound to 127.0.0.1) or that came through a proxy is refused with 403
// and counted; loopback Hosts with any port are accepted.
func TestDNSRebindingRealHTTP(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Listen = "127.0.0.1:0"
	s := newTestServer(cfg, Dependencies{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	url := "http://" + s.Addr().String() + "/api/v1/echo"
	client := &http.Client{Timeout: 5 * time.Second}
	refused := func(reason string) uint64 {
		return metrics.GetOrCreateCounter(`flowshield_http_refused_total{reason="` + reason + `"}`).Get()
	}
	tests := []struct {
		host   string
		header map[string]string
		code   int
		reason string // the refusal counter that must grow
	}{
		{"attacker.example", nil, 403, "not_loopback_host"},
		{"attacker.example:8080", nil, 403, "not_loopback_host"},
		{"127.0.0.1.nip.io:8080", nil, 403, "not_loopback_host"},
		{"127.0.0.1:8080", map[string]string{"X-Forwarded-For": "198.51.100.7"}, 403, "proxy_header"},
		{"127.0.0.1:8080", nil, 201, ""},
		{"[::1]:8080", nil, 201, ""},
		{"localhost:8080", nil, 201, ""},
		{"localhost", nil, 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			var before uint64
			if tt.reason != "" {
				before = refused(tt.reason)
			}
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("Host %s: %d %s, want %d", tt.host, resp.StatusCode, body, tt.code)
			}
			if tt.reason != "" {
				var e struct{ Error string }
				if json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "FLOWSHIELD_API_TOKEN") {
					t.Errorf("error %s does not say why", body)
				}
				if got := refused(tt.reason); got != before+1 {
					t.Errorf("refused{reason=%q} went from %d to %d", tt.reason, before, got)
				}
			}
		})
	}
}

// TestStopCutsHungHandler: Stop with a deadline ends even when a handler
// hangs; the handler's context is cancelled.
func TestStopCutsHungHandler(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, Dependencies{Logger: quietLogger()})
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	s.Handle("GET", "/api/v1/hang", Read, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	}))
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/api/v1/hang")
		if err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("handler not reached")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx); err == nil {
		t.Error("Stop with a hung handler reported no error")
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("Stop took %v", time.Since(start))
	}
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Error("hung handler's context was not cancelled")
	}
}

func TestDisabled(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Listen = ""
	s := New(cfg, Dependencies{Logger: quietLogger()})
	if err := s.Start(context.Background()); err != nil || s.Addr() != nil {
		t.Errorf("disabled server: %v %v", err, s.Addr())
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestListenError(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Listen = "127.0.0.1:notaport"
	s := New(cfg, Dependencies{Logger: quietLogger()})
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "listening for HTTP on 127.0.0.1:notaport") {
		t.Errorf("Start: %v", err)
	}
}
