package routeros_test

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// loopbackServer listens on 127.0.0.1 and hands each connection to serve,
// which owns it.
func loopbackServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// closingServer accepts connections and closes them at once.
func closingServer(t *testing.T) string {
	return loopbackServer(t, func(c net.Conn) { c.Close() })
}

// TestCallErrors: what a caller can tell from the error of its first call,
// with errors.As only: a refused login (and the router's reason), a login
// that did not complete, and a command the router refuses once logged in.
func TestCallErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, emu *routerostest.Server, cfg *routeros.Configuration)
		login   bool // a LoginError, else a TrapError
		refused bool
		message string // LoginError.Message or TrapError.Message
		cause   error  // what LoginError.Err wraps
	}{
		{name: "wrong password", login: true, refused: true, message: "invalid user name or password (6)",
			prepare: func(_ *testing.T, _ *routerostest.Server, cfg *routeros.Configuration) {
				cfg.Password = "not-" + cfg.Password
			}},
		// EOF or a reset, depending on when the close reaches the client
		{name: "closed at connect", login: true,
			prepare: func(t *testing.T, _ *routerostest.Server, cfg *routeros.Configuration) {
				cfg.Address = closingServer(t)
			}},
		{name: "closed at login", login: true, cause: io.EOF,
			prepare: func(_ *testing.T, emu *routerostest.Server, _ *routeros.Configuration) {
				emu.Inject(routerostest.Fault{Kind: routerostest.DropBeforeApply, Match: "/login"})
			}},
		{name: "resource read refused", message: "not enough permissions (9)",
			prepare: func(_ *testing.T, emu *routerostest.Server, _ *routeros.Configuration) {
				// the first is the version read at login, which a refusal does not stop
				emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/system/resource", Skip: 1, Message: "not enough permissions (9)"})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emuCfg := routerostest.DefaultConfiguration()
			emuCfg.Password = "right-horse-battery"
			f := setup(t, emuCfg, nil)
			cfg := f.cfg
			tc.prepare(t, f.emu, &cfg)
			r := routeros.New(cfg, nil)
			t.Cleanup(r.Stop)
			_, err := r.Resource(ctxT(t))
			var le *routeros.LoginError
			var te *routeros.TrapError
			isLogin, isTrap := errors.As(err, &le), errors.As(err, &te)
			if isLogin != tc.login || isTrap == tc.login {
				t.Fatalf("error %v (%T): login error %v, trap %v; want login error %v", err, err, isLogin, isTrap, tc.login)
			}
			if !tc.login {
				if te.Command != "/system/resource/print" || te.Message != tc.message || !r.Connected() {
					t.Fatalf("trap %+v, connected %v", te, r.Connected())
				}
				return
			}
			if le.Address != cfg.Address || le.User != cfg.User || le.Refused != tc.refused || le.Message != tc.message {
				t.Fatalf("login error %+v", le)
			}
			if tc.refused != (le.Err == nil) || tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("login error cause %v, want %v", le.Err, tc.cause)
			}
			if strings.Contains(err.Error(), cfg.Password) {
				t.Fatalf("the password in %q", err)
			}
			if r.Connected() || r.Stats().DialFailures != 1 {
				t.Fatalf("connected %v after a failed login, stats %+v", r.Connected(), r.Stats())
			}
		})
	}
}

// TestLoginTimeout: a service that accepts and never answers is a login
// that did not complete, within CallTimeout.
func TestLoginTimeout(t *testing.T) {
	// it reads until the client gives up and closes
	silent := loopbackServer(t, func(c net.Conn) {
		io.Copy(io.Discard, c)
		c.Close()
	})
	cfg := routeros.DefaultConfiguration()
	cfg.Address, cfg.User, cfg.CallTimeout = silent, "admin", 200*time.Millisecond
	r := routeros.New(cfg, nil)
	t.Cleanup(r.Stop)
	t0 := time.Now()
	_, err := r.Resource(ctxT(t))
	var le *routeros.LoginError
	var ne net.Error
	if !errors.As(err, &le) || le.Refused || !errors.As(err, &ne) || !ne.Timeout() || time.Since(t0) > 2*time.Second {
		t.Fatalf("silent service: %v after %s", err, time.Since(t0))
	}
}
