package routeros_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"

	"github.com/flowshield/flowshield/detect"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	emu  *routerostest.Server
	r    *routeros.Router
	logs *syncBuffer
	cfg  routeros.Configuration
}

func setup(t *testing.T, emuCfg routerostest.Configuration, tweak func(*routeros.Configuration)) *fixture {
	t.Helper()
	emuCfg.Now = routerostest.NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).Now
	emu := routerostest.New(emuCfg)
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	cfg := routeros.DefaultConfiguration()
	cfg.Address = emu.Addr()
	cfg.User, cfg.Password = emuCfg.User, emuCfg.Password
	// generous: the first calls under qemu-arm are slow to translate
	cfg.CallTimeout = 5 * time.Second
	cfg.DialTimeout = 5 * time.Second
	cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	if tweak != nil {
		tweak(&cfg)
	}
	logs := &syncBuffer{}
	r := routeros.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(r.Stop)
	return &fixture{emu: emu, r: r, logs: logs, cfg: cfg}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAddListSetRemove(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	// foreign objects flowshield must never report or touch
	f.emu.Seed(routerostest.MenuAddressList, map[string]string{"list": "flowshield-in", "address": "192.0.2.200", "comment": "admin"})
	f.emu.Seed(routerostest.MenuRoute, map[string]string{"dst-address": "192.0.2.201", "blackhole": "yes"})

	var objs []routeros.Object
	for _, a := range []routeros.Action{routeros.ActionAddressList, routeros.ActionRawDrop, routeros.ActionBlackhole} {
		for _, p := range []string{"192.0.2.1/32", "2001:db8::1/128"} {
			for _, d := range []detect.Direction{detect.In, detect.Out} {
				if a == routeros.ActionBlackhole && d == detect.Out {
					continue
				}
				objs = append(objs, routeros.Object{Action: a, Prefix: netip.MustParsePrefix(p), Direction: d,
					Comment: "flowshield a1b2 udp_flood", Timeout: 10 * time.Minute})
			}
		}
	}
	want := map[string]routeros.Object{}
	for _, o := range objs {
		id, err := f.r.Add(ctx, o)
		if err != nil {
			t.Fatalf("add %s: %v", o, err)
		}
		o.ID = id
		want[o.Key()] = o
	}
	got, err := f.r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(objs) {
		t.Fatalf("listed %d objects, want %d: %v", len(got), len(objs), got)
	}
	for _, g := range got {
		w, ok := want[g.Key()]
		if !ok || w.ID != g.ID || g.Comment != "flowshield a1b2 udp_flood" {
			t.Errorf("listed %s (%q), not what was added", g, g.Comment)
		}
		if g.Action == routeros.ActionAddressList {
			wantList := map[detect.Direction]string{detect.In: "flowshield-in", detect.Out: "flowshield-out"}[g.Direction]
			if g.List != wantList || g.Timeout <= 9*time.Minute || g.Timeout > 10*time.Minute {
				t.Errorf("%s: list %q timeout %s", g, g.List, g.Timeout)
			}
		}
	}
	al := f.emu.Objects(routerostest.MenuAddressList)
	if al[1].Props["timeout"] != "10m" {
		t.Errorf("router-side timeout %q, want 10m", al[1].Props["timeout"])
	}

	for _, g := range got {
		if g.Action == routeros.ActionAddressList {
			if err := f.r.SetTimeout(ctx, g, 3*time.Hour+500*time.Millisecond); err != nil {
				t.Fatalf("set timeout %s: %v", g, err)
			}
		}
		if g.Action == routeros.ActionRawDrop {
			f.emu.AddCounters(map[bool]string{true: routerostest.MenuRaw, false: routerostest.MenuRawV6}[g.Prefix.Addr().Is4()], g.ID, 5, 500)
			p, b, err := f.r.Counters(ctx, g)
			if err != nil || p != 5 || b != 500 {
				t.Fatalf("counters %s: %d %d %v", g, p, b, err)
			}
		}
	}
	for _, o := range f.emu.Objects(routerostest.MenuAddressListV6) {
		if o.Props["timeout"] != "3h1s" {
			t.Errorf("timeout after SetTimeout: %q, want whole seconds rounded up 3h1s", o.Props["timeout"])
		}
	}
	for _, g := range got {
		if err := f.r.Remove(ctx, g); err != nil {
			t.Fatalf("remove %s: %v", g, err)
		}
		// removing again is not an error
		if err := f.r.Remove(ctx, g); err != nil {
			t.Fatalf("second remove %s: %v", g, err)
		}
	}
	if got, _ := f.r.List(ctx); len(got) != 0 {
		t.Fatalf("left after remove: %v", got)
	}
	if n := len(f.emu.Objects(routerostest.MenuAddressList)) + len(f.emu.Objects(routerostest.MenuRoute)); n != 2 {
		t.Fatalf("foreign objects: %d left, want 2", n)
	}
	if s := f.r.Stats(); s.Logins != 1 || s.ConnErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNeverTouchesForeign(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	id, _ := f.emu.Seed(routerostest.MenuAddressList, map[string]string{"list": "flowshield-in", "address": "192.0.2.1", "comment": "flowshieldish"})
	o := routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("192.0.2.1/32"), ID: id, Comment: "flowshield x y"}
	if err := f.r.Remove(ctx, o); !errors.Is(err, routeros.ErrNotManaged) {
		t.Fatalf("remove of a foreign id: %v", err)
	}
	if err := f.r.SetTimeout(ctx, o, time.Minute); !errors.Is(err, routeros.ErrNotManaged) {
		t.Fatalf("set on a foreign id: %v", err)
	}
	var trap *routeros.TrapError
	if _, err := f.r.Add(ctx, o); !errors.As(err, &trap) || trap.Message != "failure: already have such entry" {
		t.Fatalf("add over a foreign entry: %v", err)
	}
	if _, err := f.r.Add(ctx, routeros.Object{Action: routeros.ActionBlackhole, Prefix: o.Prefix, Comment: "mine"}); err == nil {
		t.Fatal("added an object without the flowshield comment")
	}
	if len(f.emu.Objects(routerostest.MenuAddressList)) != 1 {
		t.Fatal("foreign entry touched")
	}
}

func TestRawRulePlacedFirst(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	for _, menu := range []string{routerostest.MenuRaw, routerostest.MenuRawV6} {
		f.emu.Seed(menu, map[string]string{"chain": "prerouting", "action": "accept", "comment": "foreign"})
	}
	for _, p := range []string{"198.51.100.7/32", "2001:db8::7/128"} {
		o := routeros.Object{Action: routeros.ActionRawDrop, Prefix: netip.MustParsePrefix(p), Comment: "flowshield manual test"}
		id, err := f.r.Add(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		menu := routerostest.MenuRaw
		if strings.Contains(p, ":") {
			menu = routerostest.MenuRawV6
		}
		rules := f.emu.Objects(menu)
		if len(rules) != 2 || rules[0].ID != id || rules[0].Props["dst-address"] != strings.TrimSuffix(p, "/32") || rules[0].Props["action"] != "drop" {
			t.Fatalf("%s: rules %v", menu, rules)
		}
	}
}

func TestTrapKeepsConnection(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	if _, err := f.r.Resource(ctx); err != nil {
		t.Fatal(err)
	}
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/add", Message: "failure: not today"})
	o := routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("192.0.2.1/32"), Comment: "flowshield manual"}
	_, err := f.r.Add(ctx, o)
	if !routeros.IsTrap(err) || !strings.Contains(err.Error(), "failure: not today") {
		t.Fatalf("add: %v", err)
	}
	if !f.r.Connected() {
		t.Fatal("disconnected after a trap")
	}
	if _, err := f.r.Add(ctx, o); err != nil {
		t.Fatal(err)
	}
	if f.emu.Accepted() != 1 || f.r.Stats().Logins != 1 {
		t.Fatalf("redialled after a trap: %d connections", f.emu.Accepted())
	}
}

func TestDropDuringAdd(t *testing.T) {
	for _, tc := range []struct {
		kind    routerostest.FaultKind
		applied bool
	}{{routerostest.DropAfterApply, true}, {routerostest.DropBeforeApply, false}} {
		t.Run(map[bool]string{true: "after apply", false: "before apply"}[tc.applied], func(t *testing.T) {
			f := setup(t, routerostest.DefaultConfiguration(), nil)
			ctx := ctxT(t)
			o := routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("2001:db8::9/128"),
				Comment: "flowshield id9 syn_flood", Timeout: time.Minute}
			f.emu.Inject(routerostest.Fault{Kind: tc.kind, Match: "address-list/add"})
			if _, err := f.r.Add(ctx, o); err == nil || routeros.IsTrap(err) {
				t.Fatalf("add with the connection dropped: %v", err)
			}
			if f.r.Connected() || f.r.LastError() == nil {
				t.Fatal("still connected after the drop")
			}
			// re-list tells whether it was applied
			got, err := f.r.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) == 1) != tc.applied {
				t.Fatalf("listed %v, applied %v", got, tc.applied)
			}
			// the safe retry: find flowshield's twin, add only when it is not there
			_, err = f.r.Find(ctx, o)
			if found := err == nil; found != tc.applied || !found && !errors.Is(err, routeros.ErrNotFound) {
				t.Fatalf("find after the drop: %v, applied %v", err, tc.applied)
			}
			if !tc.applied {
				if _, err := f.r.Add(ctx, o); err != nil {
					t.Fatalf("add again: %v", err)
				}
			}
			if n := len(f.emu.Objects(routerostest.MenuAddressListV6)); n != 1 {
				t.Fatalf("%d entries after retry, want 1", n)
			}
			if f.emu.Accepted() != 2 {
				t.Fatalf("%d connections, want 2", f.emu.Accepted())
			}
		})
	}
}

func TestStallTimesOut(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), func(c *routeros.Configuration) { c.CallTimeout = 500 * time.Millisecond })
	ctx := ctxT(t)
	if _, err := f.r.List(ctx); err != nil {
		t.Fatal(err)
	}
	f.emu.StallNext(1, 10*time.Second)
	t0 := time.Now()
	_, err := f.r.Resource(ctx)
	if took := time.Since(t0); err == nil || took > 2*time.Second || took < 400*time.Millisecond {
		t.Fatalf("stalled call: %v after %s", err, took)
	}
	if !strings.Contains(err.Error(), "no reply within 500ms") {
		t.Fatalf("error %q does not say it timed out", err)
	}
	t0 = time.Now()
	if _, err := f.r.Resource(ctx); err != nil {
		t.Fatalf("next call: %v", err)
	}
	if took := time.Since(t0); took > time.Second {
		t.Fatalf("next call took %s", took)
	}
	if f.r.Stats().Timeouts != 1 || f.r.Stats().Logins != 2 {
		t.Fatalf("stats %+v", f.r.Stats())
	}
	// a caller's own deadline shorter than CallTimeout wins
	f.emu.StallNext(1, 10*time.Second)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	if _, err := f.r.Resource(short); !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 400*time.Millisecond {
		t.Fatalf("short deadline: %v after %s", err, time.Since(t0))
	}
}

func TestReconnectAfterRestart(t *testing.T) {
	var connects atomic.Int32
	f := setup(t, routerostest.DefaultConfiguration(), func(c *routeros.Configuration) {
		c.KeepAlive = 50 * time.Millisecond
		c.OnConnect = func() { connects.Add(1) }
	})
	ctx := ctxT(t)
	f.r.Start(ctx)
	waitFor(t, "first connect", func() bool { return connects.Load() == 1 && f.r.Connected() })
	o := routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("192.0.2.5/32"), Comment: "flowshield manual x", Timeout: time.Hour}
	if _, err := f.r.Add(ctx, o); err != nil {
		t.Fatal(err)
	}
	f.emu.Restart()
	// the keepalive notices without any call, redials, and OnConnect fires
	waitFor(t, "reconnect", func() bool { return connects.Load() == 2 && f.r.Connected() })
	if got, err := f.r.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after reboot: %v %v (timed entries vanish)", got, err)
	}
}

func TestRouterDownThenUp(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), func(c *routeros.Configuration) { c.BackoffMin = 5 * time.Second })
	ctx := ctxT(t)
	f.emu.Stop()
	_, err := f.r.Resource(ctx)
	if err == nil || f.r.Connected() || !strings.Contains(err.Error(), "connect to") {
		t.Fatalf("call to a stopped router: %v", err)
	}
	// while backing off, calls fail fast and say why
	t0 := time.Now()
	if _, err := f.r.Resource(ctx); !errors.Is(err, routeros.ErrNotConnected) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("during backoff: %v", err)
	}
	if time.Since(t0) > 100*time.Millisecond {
		t.Fatal("a call during backoff waited")
	}
}

func TestWrongPassword(t *testing.T) {
	emuCfg := routerostest.DefaultConfiguration()
	emuCfg.Password = "right-horse-battery"
	secret := "S3cr3t-W0rd-do-not-log"
	f := setup(t, emuCfg, func(c *routeros.Configuration) { c.Password = secret })
	ctx := ctxT(t)
	f.r.Start(ctx)
	_, err := f.r.Resource(ctx)
	if err == nil || !strings.Contains(err.Error(), "invalid user name or password (6)") || !strings.Contains(err.Error(), `as "admin"`) {
		t.Fatalf("wrong password: %v", err)
	}
	waitFor(t, "retries", func() bool { return f.r.Stats().DialFailures >= 3 })
	f.r.Stop()
	for _, s := range []string{f.logs.String(), err.Error(), f.r.LastError().Error()} {
		if strings.Contains(s, secret) {
			t.Fatalf("password leaked: %s", s)
		}
	}
	if !strings.Contains(f.logs.String(), "invalid user name or password") {
		t.Fatalf("log does not say why: %s", f.logs.String())
	}
	if strings.Contains(f.r.Configuration().Password, secret) {
		t.Fatal("Configuration() shows the password")
	}
}

func TestNoLeakAfterStop(t *testing.T) {
	before := runtime.NumGoroutine()
	emu := routerostest.New(routerostest.DefaultConfiguration())
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	defer emu.Stop()
	for i := range 3 {
		cfg := routeros.DefaultConfiguration()
		cfg.Address, cfg.User, cfg.Password = emu.Addr(), "admin", "admin"
		cfg.KeepAlive = 10 * time.Millisecond
		cfg.CallTimeout = 300 * time.Millisecond
		r := routeros.New(cfg, nil)
		ctx, cancel := context.WithCancel(context.Background())
		r.Start(ctx)
		if _, err := r.List(ctx); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			emu.StallNext(1, time.Hour)
			go r.Resource(ctx) // in flight when Stop comes
			time.Sleep(20 * time.Millisecond)
		}
		r.Stop()
		cancel()
		if _, err := r.List(context.Background()); !errors.Is(err, routeros.ErrStopped) {
			t.Fatalf("call after Stop: %v", err)
		}
	}
	emu.Restart() // ends the stalled handler
	waitFor(t, "connections closed", func() bool { return emu.Connections() == 0 })
	emu.Stop()
	waitFor(t, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}

func TestConcurrentCallers(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)
			_, err := f.r.Add(ctx, routeros.Object{Action: routeros.ActionAddressList, Prefix: p, Comment: "flowshield manual c", Timeout: time.Minute})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := f.r.List(ctx); len(got) != 40 || f.emu.Accepted() != 1 {
		t.Fatalf("%d objects over %d connections", len(got), f.emu.Accepted())
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestRouterOSVersionSyntax: the client reads the version at every login
// and writes blackhole routes the way that router takes them: RouterOS 6's
// type=blackhole (type=unreachable for IPv6, which has no blackhole
// routes on 6), RouterOS 7's blackhole=yes, also after an upgrade in the
// middle (the routes converted by the upgrade are still listed).
func TestRouterOSVersionSyntax(t *testing.T) {
	emuCfg := routerostest.DefaultConfiguration()
	emuCfg.Version = "6.49.18 (long-term)"
	f := setup(t, emuCfg, nil)
	ctx := ctxT(t)
	f.emu.Seed(routerostest.MenuRoute, map[string]string{"dst-address": "10.0.0.0/8", "gateway": "192.0.2.254", "comment": "flowshield but unicast"})
	add := func(p string) {
		t.Helper()
		o := routeros.Object{Action: routeros.ActionBlackhole, Prefix: netip.MustParsePrefix(p), Comment: "flowshield manual"}
		if _, err := f.r.Add(ctx, o); err != nil {
			t.Fatalf("add %s on %s: %v", p, f.r.Version(), err)
		}
	}
	add("192.0.2.77/32")
	add("2001:db8::77/128")
	if v := f.r.Version(); v != emuCfg.Version {
		t.Fatalf("version %q", v)
	}
	got, err := f.r.List(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("listed %v %v", got, err)
	}
	if r := f.emu.Objects(routerostest.MenuRoute); r[1].Props["type"] != "blackhole" {
		t.Fatalf("route %v", r[1].Props)
	}
	if r := f.emu.Objects(routerostest.MenuRouteV6); r[0].Props["type"] != "unreachable" {
		t.Fatalf("IPv6 route %v", r[0].Props)
	}
	if _, err := f.r.Find(ctx, routeros.Object{Action: routeros.ActionBlackhole, Prefix: netip.MustParsePrefix("2001:db8::77/128")}); err != nil {
		t.Fatal(err)
	}

	f.emu.Upgrade("7.18.2 (stable)")
	got, err = f.r.List(ctx)
	if err != nil || len(got) != 2 || f.r.Version() != "7.18.2 (stable)" {
		t.Fatalf("after the upgrade: listed %v %v on %q", got, err, f.r.Version())
	}
	add("192.0.2.78/32")
	add("2001:db8::78/128")
	if r := f.emu.Objects(routerostest.MenuRoute); r[2].Props["blackhole"] != "true" || r[2].Props["type"] != "" {
		t.Fatalf("route on 7 %v", r[2].Props)
	}
	if got, err := f.r.List(ctx); err != nil || len(got) != 4 {
		t.Fatalf("listed %v %v", got, err)
	}
	if !strings.Contains(f.logs.String(), "RouterOS version changed") {
		t.Fatalf("no log of the version change:\n%s", f.logs.String())
	}
}

func TestRouterDownWhileStarted(t *testing.T) {
	var connects atomic.Int32
	f := setup(t, routerostest.DefaultConfiguration(), func(c *routeros.Configuration) {
		c.KeepAlive = 30 * time.Millisecond
		c.OnConnect = func() { connects.Add(1) }
	})
	ctx := ctxT(t)
	f.r.Start(ctx)
	waitFor(t, "connect", func() bool { return connects.Load() == 1 })
	f.emu.Down()
	waitFor(t, "disconnect noticed", func() bool { return !f.r.Connected() && f.r.Stats().DialFailures >= 2 })
	if err := f.r.LastError(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("last error while down: %v", err)
	}
	if err := f.emu.Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reconnect", func() bool { return connects.Load() == 2 && f.r.Connected() })
	if _, err := f.r.Resource(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAddressListCounters: an address-list ban's counters are those of the
// raw rules that drop its list (the setup script's), read as the traffic
// the emulator drops with them; without such a rule there is nothing to
// read, and a blackhole route counts nothing.
func TestAddressListCounters(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	o := routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("192.0.2.7/32"), Direction: detect.In,
		Comment: "flowshield c1 syn_flood", Timeout: 10 * time.Minute}
	id, err := f.r.Add(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	o.ID = id
	if _, _, err := f.r.Counters(ctx, o); !errors.Is(err, routeros.ErrNotFound) {
		t.Fatalf("counters without the list's drop rule: %v, want ErrNotFound", err)
	}
	if _, err := f.emu.Seed(routerostest.MenuRaw, map[string]string{"chain": "prerouting", "action": "drop",
		"dst-address-list": "flowshield-in", "comment": "flowshield-setup: drop in flowshield-in"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		v := f.emu.Forward(routerostest.Packet{Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("192.0.2.7"),
			Proto: 6, SrcPort: 4000, DstPort: 443, TCPFlags: routerostest.TCPSyn, Packets: 1000, Bytes: 60000})
		if !v.Dropped {
			t.Fatalf("traffic to a listed address passed: %+v", v)
		}
	}
	packets, bytes, err := f.r.Counters(ctx, o)
	if err != nil || packets != 3000 || bytes != 180000 {
		t.Fatalf("counters %d packets %d bytes (%v), want 3000 and 180000", packets, bytes, err)
	}
	bh := routeros.Object{Action: routeros.ActionBlackhole, Prefix: netip.MustParsePrefix("192.0.2.8/32"), Comment: "flowshield c2 udp_flood"}
	if _, _, err := f.r.Counters(ctx, bh); err == nil {
		t.Fatal("a blackhole route gave counters")
	}
}

// TestLastCallError: a refused command shows in LastCallError (not in
// LastError: the connection stays) until a command succeeds.
func TestLastCallError(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/add", Message: "failure: not enough permissions (9)"})
	_, err := f.r.Add(ctx, routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("192.0.2.9/32"), Comment: "flowshield t"})
	var te *routeros.TrapError
	if !errors.As(f.r.LastCallError(), &te) || !errors.As(err, &te) || f.r.LastError() != nil || !f.r.Connected() {
		t.Fatalf("after a refused add: call error %v, last error %v, connected %v", f.r.LastCallError(), f.r.LastError(), f.r.Connected())
	}
	if _, err := f.r.Resource(ctx); err != nil || f.r.LastCallError() != nil {
		t.Fatalf("after a call that worked: %v, call error %v", err, f.r.LastCallError())
	}
}
