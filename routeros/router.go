// Package routeros puts flowshield's bans on a MikroTik router through the
// RouterOS API (github.com/go-routeros/routeros/v3 in sync mode over a
// connection this package dials and guards).
//
// What go-routeros v3.0.1 does not do is done here: every call has a
// deadline on the connection (a silent router cannot block a caller),
// calls on one connection are serialised, any I/O error or timeout closes
// the connection and the next call or the maintenance loop redials with
// exponential backoff and jitter, the library's logger is silenced (at
// debug level it prints the /login password), async mode (which dies
// on a timeout and panics on 32-bit ARM) is never used, and every reply is
// checked on the wire against ReplyLimits before the library allocates it
// (it allocates whatever length a word announces).
//
// Errors: a TrapError is the router refusing a command, the connection
// kept; a LoginError a connection that did not end logged in (refused, or
// not completed); a ReplyTooLargeError a reply over the limits. Match them
// with errors.As.
package routeros

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	ros "github.com/go-routeros/routeros/v3"
)

// Configuration of the connection to one router.
type Configuration struct {
	Address        string // host:port, 8728 (8729 with TLS)
	User, Password string
	TLS            bool // API-SSL
	TLSInsecure    bool // skip certificate verification (self-signed router certificate)
	// TLSCAFile is a PEM file of the CAs that sign the router's
	// certificate, instead of the system's; read at every dial.
	TLSCAFile string
	// TLSFingerprint pins the router's certificate by its SHA-256: a
	// connection to another certificate fails with a
	// CertificateMismatchError. Without TLSCAFile it is the only check,
	// which suits the router's own self-signed certificate.
	TLSFingerprint Fingerprint
	// DialTimeout bounds TCP connect and TLS handshake; CallTimeout bounds
	// one command (login included). A router with tens of thousands of
	// address-list entries can take seconds to answer a filtered print, so
	// do not cut CallTimeout too short.
	DialTimeout, CallTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between failed dials; it
	// doubles per failure, with ±20 % jitter.
	BackoffMin, BackoffMax time.Duration
	// KeepAlive is how long the connection may stay idle before the
	// maintenance loop probes it, so a dead router is noticed (and
	// OnConnect fires after it comes back) without waiting for a ban.
	// 0 disables probing.
	KeepAlive time.Duration
	// ListIn and ListOut are the address-list names for victims of
	// incoming attacks and for local sources of outgoing attacks.
	ListIn, ListOut string
	// Limits bound what one reply can make the client hold; a zero field
	// takes DefaultReplyLimits' value.
	Limits ReplyLimits
	// OnConnect runs on the maintenance goroutine after every successful
	// login (the first one included), so the caller can reconcile. It may
	// call the Router's methods. Only called between Start and Stop; Stop
	// waits for it to return, so it must not wait on whoever calls Stop
	// (poking a channel is the safe thing to do).
	OnConnect func()
}

// DefaultConfiguration is the contract's defaults without an address.
func DefaultConfiguration() Configuration {
	return Configuration{
		DialTimeout: 5 * time.Second, CallTimeout: 10 * time.Second,
		BackoffMin: time.Second, BackoffMax: time.Minute,
		KeepAlive: 30 * time.Second,
		ListIn:    "flowshield-in", ListOut: "flowshield-out",
		Limits: DefaultReplyLimits(),
	}
}

// Stats counts what the client did since New.
type Stats struct {
	Calls, Traps, ConnErrors, Timeouts uint64
	Dials, DialFailures, Logins        uint64
	Unparsed                           uint64 // flowshield objects List could not read
	// RejectedReplies counts replies over Configuration.Limits or
	// malformed; each closed its connection.
	RejectedReplies uint64
	// UnreadableAddresses counts router addresses Addresses could not read.
	UnreadableAddresses uint64
}

// Router is the client of one router.
type Router struct {
	cfg Configuration
	log *slog.Logger

	// sem is held by the one caller using the connection; a channel so a
	// waiting caller can give up when its context ends.
	sem chan struct{}
	// Guarded by sem.
	client   *ros.Client
	conn     net.Conn
	nextDial time.Time
	failures int
	lastUse  time.Time
	dialect  dialect // of the open connection's router, read at login

	mu        sync.Mutex // guards the fields below; never held during I/O
	live      net.Conn   // the open connection, for Stop to close
	connected bool
	lastErr   error
	callErr   error  // the last call's error, trap included; nil after one that worked
	version   string // the router's version as read at the last login
	gen       uint64 // counts successful logins
	stopped   bool
	cancel    context.CancelFunc
	done      chan struct{}

	kick chan struct{}

	calls, traps, connErrors, timeouts atomic.Uint64
	dials, dialFailures, logins        atomic.Uint64
	unparsed                           atomic.Uint64
	rejectedReplies                    atomic.Uint64
	unreadableAddresses                atomic.Uint64
}

// New returns an inert client; calls dial on demand, Start keeps the
// connection up in the background.
func New(cfg Configuration, log *slog.Logger) *Router {
	d := DefaultConfiguration()
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = d.DialTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = d.CallTimeout
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = d.BackoffMin
	}
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = max(d.BackoffMax, cfg.BackoffMin)
	}
	if cfg.ListIn == "" {
		cfg.ListIn = d.ListIn
	}
	if cfg.ListOut == "" {
		cfg.ListOut = d.ListOut
	}
	if cfg.Limits.WordBytes <= 0 {
		cfg.Limits.WordBytes = d.Limits.WordBytes
	}
	if cfg.Limits.ReplyWords <= 0 {
		cfg.Limits.ReplyWords = d.Limits.ReplyWords
	}
	if cfg.Limits.ReplyBytes <= 0 {
		cfg.Limits.ReplyBytes = d.Limits.ReplyBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Router{
		cfg: cfg, log: log.With("router", cfg.Address),
		sem:  make(chan struct{}, 1),
		kick: make(chan struct{}, 1),
	}
}

// Address is the router's host:port.
func (r *Router) Address() string { return r.cfg.Address }

// Configuration is the effective configuration, the password redacted.
func (r *Router) Configuration() Configuration {
	c := r.cfg
	if c.Password != "" {
		c.Password = "REDACTED"
	}
	c.OnConnect = nil
	return c
}

// Connected says whether a logged-in connection is open.
func (r *Router) Connected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connected
}

// LastError is the error that ended the last connection or dial; nil
// while connected.
func (r *Router) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// LastCallError is the error of the last command a caller ran (a trap
// included, which LastError leaves out since the connection stays), nil
// when it succeeded: a router refusing every write shows here.
func (r *Router) LastCallError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.callErr
}

// Version is the router's RouterOS version ("7.18.2 (stable)") as read at
// the last login, which decides the syntax of version-dependent commands;
// "" before the first login or when it could not be read.
func (r *Router) Version() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.version
}

// Stats is a snapshot of the counters.
func (r *Router) Stats() Stats {
	return Stats{
		Calls: r.calls.Load(), Traps: r.traps.Load(), ConnErrors: r.connErrors.Load(),
		Timeouts: r.timeouts.Load(), Dials: r.dials.Load(), DialFailures: r.dialFailures.Load(),
		Logins: r.logins.Load(), Unparsed: r.unparsed.Load(), RejectedReplies: r.rejectedReplies.Load(),
		UnreadableAddresses: r.unreadableAddresses.Load(),
	}
}

// Start runs the maintenance loop: dial, redial with backoff, probe an idle
// connection, call OnConnect after each login. It returns at once.
func (r *Router) Start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil || r.stopped {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go r.maintain(ctx, r.done)
}

// Stop ends the maintenance loop and closes the connection; later calls
// fail with ErrStopped.
func (r *Router) Stop() {
	r.mu.Lock()
	r.stopped = true
	cancel, done := r.cancel, r.done
	if r.live != nil {
		r.live.Close() // unblocks a call in flight
	}
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	r.sem <- struct{}{}
	r.closeLocked(ErrStopped)
	<-r.sem
}

func (r *Router) maintain(ctx context.Context, done chan struct{}) {
	defer close(done)
	var seen uint64
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
		}
		wait := r.tend(ctx)
		r.mu.Lock()
		gen := r.gen
		r.mu.Unlock()
		if gen != seen {
			seen = gen
			if r.cfg.OnConnect != nil && ctx.Err() == nil {
				r.cfg.OnConnect()
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// tend dials or probes as needed and says when to look again.
func (r *Router) tend(ctx context.Context) time.Duration {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return time.Hour
	}
	defer func() { <-r.sem }()
	if r.isStopped() {
		return time.Hour
	}
	if r.client == nil {
		if wait := time.Until(r.nextDial); wait > 0 {
			return wait
		}
		if err := r.dialLocked(ctx); err != nil {
			return max(time.Until(r.nextDial), 10*time.Millisecond)
		}
	}
	if r.cfg.KeepAlive <= 0 {
		return time.Hour
	}
	if idle := time.Since(r.lastUse); idle < r.cfg.KeepAlive {
		return r.cfg.KeepAlive - idle
	}
	if _, err := r.runLocked(ctx, []string{"/system/resource/print", "=.proplist=uptime"}); err != nil && !IsTrap(err) {
		return 10 * time.Millisecond // redial (at once after a working connection)
	}
	return r.cfg.KeepAlive
}

func (r *Router) isStopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopped
}

// call runs one command. Idempotent commands (prints, sets) are retried
// once on a fresh connection when a reused one turns out dead; adds never
// are, since the router may have applied one before the connection broke.
func (r *Router) call(ctx context.Context, idempotent bool, words ...string) (*ros.Reply, error) {
	reply, err := r.callOnce(ctx, idempotent, words)
	r.mu.Lock()
	r.callErr = err
	r.mu.Unlock()
	return reply, err
}

func (r *Router) callOnce(ctx context.Context, idempotent bool, words []string) (*ros.Reply, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the connection to %s: %w", r.cfg.Address, ctx.Err())
	}
	defer func() { <-r.sem }()
	if err := ctx.Err(); err != nil {
		// an ended context would only break a healthy connection
		return nil, fmt.Errorf("%s on %s: %w", words[0], r.cfg.Address, err)
	}
	for attempt := 0; ; attempt++ {
		if r.isStopped() {
			return nil, ErrStopped
		}
		fresh := false
		if r.client == nil {
			if err := r.dialLocked(ctx); err != nil {
				return nil, err
			}
			fresh = true
		}
		reply, err := r.runLocked(ctx, words)
		if err == nil || IsTrap(err) {
			return reply, err
		}
		// an oversize reply would only come again
		if !idempotent || fresh || attempt > 0 || ctx.Err() != nil || isTimeout(err) || rejectedReply(err) {
			return nil, err
		}
	}
}

// runLocked runs words on the open connection with a deadline; any error
// but a trap closes the connection.
func (r *Router) runLocked(ctx context.Context, words []string) (*ros.Reply, error) {
	r.calls.Add(1)
	deadline := time.Now().Add(r.cfg.CallTimeout)
	callerDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, callerDeadline = d, true
	}
	conn := r.conn
	if err := conn.SetDeadline(deadline); err != nil {
		r.connErrors.Add(1)
		err = fmt.Errorf("%s on %s: %w", words[0], r.cfg.Address, err)
		r.closeLocked(err)
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	reply, err := r.client.RunArgs(r.dialect.rewrite(words))
	stop()
	r.lastUse = time.Now()
	if err == nil {
		conn.SetDeadline(time.Time{})
		return reply, nil
	}
	var de *ros.DeviceError
	if errors.As(err, &de) && de.Sentence.Word == "!trap" {
		conn.SetDeadline(time.Time{})
		r.traps.Add(1)
		return reply, &TrapError{Command: words[0], Message: de.Sentence.Map["message"], Category: de.Sentence.Map["category"]}
	}
	if isTimeout(err) {
		r.timeouts.Add(1)
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		case callerDeadline:
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		default:
			err = fmt.Errorf("no reply within %s: %w", r.cfg.CallTimeout, err)
		}
	} else {
		r.connErrors.Add(1)
	}
	err = fmt.Errorf("%s on %s: %w", words[0], r.cfg.Address, err)
	r.closeLocked(err)
	return nil, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// closeLocked drops the connection after err; the next dial may come at
// once, since the connection had worked.
func (r *Router) closeLocked(err error) {
	if r.client != nil {
		r.client.Close()
		r.client, r.conn = nil, nil
		if errors.Is(err, ErrStopped) {
			r.log.Debug("connection closed")
		} else {
			r.log.Warn("connection lost", "error", err)
		}
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	r.mu.Lock()
	r.live = nil
	r.connected = false
	r.lastErr = err
	r.mu.Unlock()
}

// dialLocked connects and logs in, or waits out the backoff.
func (r *Router) dialLocked(ctx context.Context) error {
	if wait := time.Until(r.nextDial); wait > 0 {
		return fmt.Errorf("router %s: %w (next attempt in %s): %w", r.cfg.Address, ErrNotConnected, wait.Round(time.Millisecond), r.LastError())
	}
	r.dials.Add(1)
	err := r.connectLocked(ctx)
	if err != nil {
		r.dialFailures.Add(1)
		r.failures++
		r.nextDial = time.Now().Add(r.backoff(r.failures))
		r.mu.Lock()
		r.lastErr = err
		r.mu.Unlock()
		r.log.Warn("cannot connect", "error", err, "retry_in", time.Until(r.nextDial).Round(time.Millisecond))
		return err
	}
	r.failures = 0
	r.nextDial = time.Time{}
	r.logins.Add(1)
	r.mu.Lock()
	r.gen++
	r.connected = true
	r.lastErr = nil
	r.mu.Unlock()
	r.log.Info("connected", "user", r.cfg.User, "tls", r.cfg.TLS, "version", r.dialect.version)
	return nil
}

func (r *Router) backoff(failures int) time.Duration {
	d := r.cfg.BackoffMin
	for i := 1; i < failures && d < r.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.BackoffMax)
	// ±20 % so several flowshields do not hammer a rebooted router in step.
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (r *Router) connectLocked(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	nd := &net.Dialer{Timeout: r.cfg.DialTimeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if r.cfg.TLS {
		tc, cerr := r.tlsConfig()
		if cerr != nil {
			return fmt.Errorf("connect to %s: %w", r.cfg.Address, cerr)
		}
		td := &tls.Dialer{NetDialer: nd, Config: tc}
		conn, err = td.DialContext(dctx, "tcp", r.cfg.Address)
	} else {
		conn, err = nd.DialContext(dctx, "tcp", r.cfg.Address)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", r.cfg.Address, err)
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		conn.Close()
		return ErrStopped
	}
	r.live = conn
	r.mu.Unlock()
	client, err := ros.NewClient(&boundedConn{ReadWriteCloser: conn, limits: r.cfg.Limits, rejected: &r.rejectedReplies})
	if err != nil {
		r.dropLive(conn)
		return fmt.Errorf("connect to %s: %w", r.cfg.Address, err)
	}
	// The library logs every sentence, /login's password included, at
	// debug level: never let it log.
	client.SetLogHandler(slog.DiscardHandler)
	deadline := time.Now().Add(r.cfg.CallTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	err = client.Login(r.cfg.User, r.cfg.Password)
	stop()
	if err != nil {
		client.Close()
		r.dropLive(conn)
		le := &LoginError{Address: r.cfg.Address, User: r.cfg.User}
		var de *ros.DeviceError
		switch {
		case errors.As(err, &de):
			// The router's words only: the library's error carries no password.
			le.Refused, le.Message = true, de.Sentence.Map["message"]
		case ctx.Err() != nil:
			le.Err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		default:
			le.Err = err
		}
		return le
	}
	conn.SetDeadline(time.Time{})
	r.client, r.conn = client, conn
	r.lastUse = time.Now()
	return r.readVersionLocked(ctx)
}

// readVersionLocked reads the version of the router just logged in to,
// every time, since a reconnect may find it upgraded (or downgraded).
// A router that refuses the read is taken for RouterOS 7, the one where
// flowshield's container runs.
func (r *Router) readVersionLocked(ctx context.Context) error {
	reply, err := r.runLocked(ctx, []string{"/system/resource/print", "=.proplist=version"})
	if err != nil && !IsTrap(err) {
		return fmt.Errorf("read the version of %s: %w", r.cfg.Address, err)
	}
	version := ""
	if err == nil && len(reply.Re) > 0 {
		version = reply.Re[0].Map["version"]
	}
	r.dialect = newDialect(version)
	r.mu.Lock()
	changed := r.version != version && r.version != ""
	old := r.version
	r.version = version
	r.mu.Unlock()
	switch {
	case version == "":
		r.log.Warn("cannot read the RouterOS version: using RouterOS 7 syntax", "error", err)
	case changed:
		r.log.Info("RouterOS version changed", "from", old, "to", version, "legacy_syntax", r.dialect.legacy)
	}
	return nil
}

func (r *Router) dropLive(conn net.Conn) {
	conn.Close()
	r.mu.Lock()
	if r.live == conn {
		r.live = nil
	}
	r.mu.Unlock()
}
