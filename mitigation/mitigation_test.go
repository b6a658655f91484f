package mitigation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/storage"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openStore(t *testing.T, path string) *storage.Store {
	t.Helper()
	o := storage.DefaultOptions()
	o.Logger = quiet
	o.LockTimeout = time.Second
	s, err := storage.Open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type harness struct {
	t      *testing.T
	clock  *testClock
	router *fakeRouter
	store  *storage.Store
	path   string
	m      *Manager
	cfg    Configuration
}

func newHarness(t *testing.T, mod func(*Configuration)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newClock()}
	h.router = newFakeRouter(h.clock)
	h.path = filepath.Join(t.TempDir(), "flowshield.db")
	h.store = openStore(t, h.path)
	t.Cleanup(func() { h.store.Close() })
	h.cfg = DefaultConfiguration()
	h.cfg.Actions = []routeros.Action{routeros.ActionAddressList}
	h.cfg.Networks = testNetworks
	h.cfg.Now = h.clock.Now
	if mod != nil {
		mod(&h.cfg)
	}
	h.m = New(h.cfg, h.store, []Router{h.router}, quiet)
	if err := h.m.restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// sync runs one pass on the router, as the worker would.
func (h *harness) sync(full bool) error {
	return h.m.syncRouter(context.Background(), 0, full)
}

func (h *harness) events() []Event {
	var out []Event
	for {
		select {
		case e := <-h.m.Events():
			out = append(out, e)
		default:
			return out
		}
	}
}

func (h *harness) storedKeys() []string {
	bans, _, err := h.store.LoadBans(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	var keys []string
	for _, b := range bans {
		keys = append(keys, b.Key())
	}
	sort.Strings(keys)
	return keys
}

// testNetworks hold every address the tests ban (victim(i) up to 3,749).
var testNetworks = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.112.0/20"), netip.MustParsePrefix("2001:db8::/32"),
}

func victim(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{203, 0, byte(113 + i/250), byte(1 + i%250)})
}

func attack(id string, ip netip.Addr, dir detect.Direction) detect.Attack {
	return detect.Attack{ID: id, Scope: detect.ScopeHost, IP: ip, Direction: dir, Type: "udp_flood", Protocol: "udp", Threshold: "pps"}
}

func (h *harness) event(kind detect.EventKind, a detect.Attack) {
	if kind == detect.AttackEnd {
		a.EndedAt = h.clock.Now()
	}
	h.m.HandleEvent(detect.Event{Kind: kind, Time: h.clock.Now(), Attack: a})
}

func countKind(evs []Event, k EventKind, reason string) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k && (reason == "" || e.Reason == reason) {
			n++
		}
	}
	return n
}

func TestMaxBans(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.MaxBans = 50 })
	for i := range 80 {
		h.event(detect.AttackStart, attack(fmt.Sprintf("a%d", i), victim(i), detect.In))
		if i%7 == 0 { // the router catches up while attacks keep starting
			if err := h.sync(false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	evs := h.events()
	if n := countKind(evs, EventBan, ""); n != 50 {
		t.Fatalf("%d ban events, want 50", n)
	}
	if n := countKind(evs, EventBanSkipped, ReasonMaxBans); n != 30 {
		t.Fatalf("%d ban_skipped max_bans events, want 30", n)
	}
	bans := h.m.Bans()
	if len(bans) != 50 {
		t.Fatalf("%d bans, want 50", len(bans))
	}
	for i := range 80 {
		banned, known := h.m.AttackBanned(fmt.Sprintf("a%d", i))
		if !known || banned != (i < 50) {
			t.Fatalf("attack %d: banned=%v known=%v, want banned=%v", i, banned, known, i < 50)
		}
	}
	for _, b := range bans {
		if b.Routers[0].State != BanActive {
			t.Fatalf("ban %s state %s", b.Prefix, b.Routers[0].State)
		}
	}
	if got := len(h.router.ourObjects()); got != 50 {
		t.Fatalf("%d objects on the router, want 50", got)
	}
	if h.router.maxOurs > 50 {
		t.Fatalf("router held %d objects at once, cap 50", h.router.maxOurs)
	}
	if got := len(h.storedKeys()); got != 50 {
		t.Fatalf("%d bans stored, want 50", got)
	}
	// Updates of the skipped attacks while the cap is full: no new ban, no
	// repeated ban_skipped.
	for i := 50; i < 80; i++ {
		h.event(detect.AttackUpdate, attack(fmt.Sprintf("a%d", i), victim(i), detect.In))
	}
	if evs := h.events(); len(evs) != 0 {
		t.Fatalf("updates of skipped attacks made events: %v", evs)
	}
	h.sync(true)
	if h.router.maxOurs > 50 || len(h.router.ourObjects()) != 50 {
		t.Fatalf("router over the cap after updates")
	}
}

func TestWhitelistAndDirections(t *testing.T) {
	white := netip.MustParsePrefix("203.0.113.0/28")
	h := newHarness(t, func(c *Configuration) { c.Whitelist = []netip.Prefix{white} })
	h.event(detect.AttackStart, attack("w", netip.MustParseAddr("203.0.113.5"), detect.In))
	h.event(detect.AttackUpdate, attack("w", netip.MustParseAddr("203.0.113.5"), detect.In))
	h.event(detect.AttackStart, attack("o", netip.MustParseAddr("203.0.113.100"), detect.Out)) // BAN_DIRECTIONS=in
	h.event(detect.AttackStart, attack("g", netip.Addr{}, detect.In))                          // group scope: no ip
	h.sync(true)
	evs := h.events()
	if len(evs) != 1 || evs[0].Kind != EventBanSkipped || evs[0].Reason != ReasonWhitelist || evs[0].Attack.ID != "w" {
		t.Fatalf("events %+v, want one ban_skipped whitelist", evs)
	}
	if len(h.m.Bans()) != 0 || len(h.router.ourObjects()) != 0 {
		t.Fatalf("banned: %v / router %v", h.m.Bans(), h.router.ourObjects())
	}
	if _, err := h.m.AddManual(context.Background(), netip.MustParsePrefix("203.0.113.7/32"), time.Minute, "", detect.In); !errors.Is(err, ErrWhitelisted) {
		t.Fatalf("manual ban of a whitelisted host: %v", err)
	}
}

func TestActionsPolicy(t *testing.T) {
	web := netip.MustParsePrefix("198.51.100.0/24")
	h := newHarness(t, func(c *Configuration) {
		c.Directions = []detect.Direction{detect.In, detect.Out}
		c.HostGroupPolicy = func(ip netip.Addr) ([]routeros.Action, time.Duration) {
			if web.Contains(ip) {
				return []routeros.Action{routeros.ActionBlackhole, routeros.ActionRawDrop}, time.Minute
			}
			return nil, 0
		}
	})
	h.event(detect.AttackStart, attack("web", netip.MustParseAddr("198.51.100.9"), detect.In))
	h.event(detect.AttackStart, attack("out", netip.MustParseAddr("203.0.113.9"), detect.Out))
	h.event(detect.AttackStart, attack("v6", netip.MustParseAddr("2001:db8::5"), detect.In))
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	got := map[string]routeros.Object{}
	for _, o := range h.router.ourObjects() {
		got[string(o.Action)+" "+o.Prefix.String()+" "+o.List+" "+o.Direction.String()] = o
	}
	want := []string{
		"blackhole 198.51.100.9/32  in",
		"raw-drop 198.51.100.9/32  in",
		"address-list 203.0.113.9/32 flowshield-out out",
		"address-list 2001:db8::5/128 flowshield-in in",
	}
	if len(got) != len(want) {
		t.Fatalf("router has %v, want %v", got, want)
	}
	for _, w := range want {
		o, ok := got[w]
		if !ok {
			t.Fatalf("router lacks %q: %v", w, got)
		}
		if !strings.HasPrefix(o.Comment, "flowshield ") {
			t.Fatalf("comment %q", o.Comment)
		}
		if o.Action == routeros.ActionAddressList && o.Timeout != 10*time.Minute {
			t.Fatalf("%s timeout %s, want 600s", w, o.Timeout)
		}
	}
	for _, b := range h.m.Bans() {
		if b.Prefix.Addr() == netip.MustParseAddr("198.51.100.9") && b.ExpiresAt.Sub(b.CreatedAt) != time.Minute {
			t.Fatalf("hostgroup ban_time not applied: %v", b.ExpiresAt.Sub(b.CreatedAt))
		}
	}
	// ACTION=none for a group: no ban at all.
	h2 := newHarness(t, func(c *Configuration) {
		c.HostGroupPolicy = func(netip.Addr) ([]routeros.Action, time.Duration) { return []routeros.Action{routeros.ActionNone}, 0 }
	})
	h2.event(detect.AttackStart, attack("n", victim(1), detect.In))
	if len(h2.m.Bans()) != 0 || len(h2.events()) != 0 {
		t.Fatal("ACTION=none banned")
	}
}

func TestExtensionRefreshesTimeout(t *testing.T) {
	h := newHarness(t, nil)
	a := attack("x", victim(0), detect.In)
	h.event(detect.AttackStart, a)
	h.sync(false)
	if objs := h.router.ourObjects(); len(objs) != 1 || objs[0].Timeout != 10*time.Minute {
		t.Fatalf("router %v, want one entry with 600s", objs)
	}
	// Updates every 5 s for 40 s: within the refresh slack (60 s at 10m), no set.
	for range 8 {
		h.clock.Advance(5 * time.Second)
		h.event(detect.AttackUpdate, a)
		h.sync(false)
	}
	if len(h.router.setTimeouts) != 0 {
		t.Fatalf("timeout set %d times within the slack", len(h.router.setTimeouts))
	}
	for range 6 {
		h.clock.Advance(5 * time.Second)
		h.event(detect.AttackUpdate, a)
		h.sync(false)
	}
	if len(h.router.setTimeouts) != 1 || h.router.setTimeouts[0] != 10*time.Minute {
		t.Fatalf("timeouts set %v, want one 600s refresh", h.router.setTimeouts)
	}
	objs := h.router.ourObjects()
	if len(objs) != 1 || objs[0].Timeout < 9*time.Minute+50*time.Second {
		t.Fatalf("router entry %v, want timeout refreshed to about 600s", objs)
	}
	b := h.m.Bans()[0]
	if want := h.clock.Now().Add(10 * time.Minute); !b.ExpiresAt.Equal(want) {
		t.Fatalf("ban expires %v, want %v", b.ExpiresAt, want)
	}
	// A full pass agrees: nothing to fix.
	h.sync(true)
	if len(h.router.setTimeouts) != 1 {
		t.Fatalf("reconcile re-set a correct timeout: %v", h.router.setTimeouts)
	}
	// A router whose entry was shortened by hand is fixed by reconciliation.
	h.router.mu.Lock()
	h.router.entries[0].obj.Timeout = 30 * time.Second
	h.router.mu.Unlock()
	h.sync(true)
	if objs := h.router.ourObjects(); objs[0].Timeout < 9*time.Minute {
		t.Fatalf("wrong timeout not fixed: %v", objs[0].Timeout)
	}
}

func TestUnbanAfterEndAndBanTime(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.BanTime = 2 * time.Minute })
	a := attack("x", victim(0), detect.In)
	h.event(detect.AttackStart, a)
	h.sync(false)
	// The attack outlives BAN_TIME with no update arriving: kept.
	h.clock.Advance(3 * time.Minute)
	h.m.expire(h.clock.Now())
	if len(h.m.Bans()) != 1 {
		t.Fatal("ban of an ongoing attack expired")
	}
	h.event(detect.AttackUpdate, a)
	h.event(detect.AttackEnd, a)
	ended := h.clock.Now()
	h.clock.Advance(2*time.Minute - time.Second)
	h.m.expire(h.clock.Now())
	h.sync(false)
	if len(h.m.Bans()) != 1 || len(h.router.ourObjects()) != 1 {
		t.Fatal("unbanned before the ban time ran out")
	}
	h.clock.Advance(time.Second)
	if !h.m.expire(h.clock.Now()) {
		t.Fatal("expire reported no change")
	}
	h.m.flush(context.Background())
	h.sync(false)
	if len(h.m.Bans()) != 0 || len(h.router.ourObjects()) != 0 || len(h.storedKeys()) != 0 {
		t.Fatalf("after end+BAN_TIME: bans %v router %v store %v", h.m.Bans(), h.router.ourObjects(), h.storedKeys())
	}
	evs := h.events()
	if countKind(evs, EventBan, "") != 1 || countKind(evs, EventUnban, ReasonExpired) != 1 {
		t.Fatalf("events %+v, want ban then unban", evs)
	}
	if evs[len(evs)-1].Time.Sub(ended) != 2*time.Minute {
		t.Fatalf("unban at %v after end", evs[len(evs)-1].Time.Sub(ended))
	}
}

func TestRawDropCounterKeepsBan(t *testing.T) {
	h := newHarness(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionRawDrop}
		c.BanTime = time.Minute
		c.DropThresholdPPS = 1000
	})
	a := attack("x", victim(0), detect.In)
	h.event(detect.AttackStart, a)
	h.sync(false) // adds, takes the first counter sample
	id := h.router.ourObjects()[0].ID
	h.event(detect.AttackEnd, a) // flows went silent: the raw rule drops them
	// The flood goes on at 2000 pps: the ban keeps being extended.
	for range 30 {
		h.clock.Advance(5 * time.Second)
		h.router.addPackets(id, 10000)
		h.sync(false)
		h.m.expire(h.clock.Now())
	}
	if len(h.m.Bans()) != 1 || h.m.Stats().CounterExtensions == 0 {
		t.Fatalf("ban of a flood still hitting the raw rule ended (stats %+v)", h.m.Stats())
	}
	// The flood stops (100 pps of ordinary traffic): the ban runs out.
	for range 20 {
		h.clock.Advance(5 * time.Second)
		h.router.addPackets(id, 500)
		h.sync(false)
		h.m.expire(h.clock.Now())
	}
	h.sync(false)
	if len(h.m.Bans()) != 0 || len(h.router.ourObjects()) != 0 {
		t.Fatalf("ban outlived the flood: %v", h.m.Bans())
	}
}

func TestRouterErrorsRetried(t *testing.T) {
	tests := []struct {
		name   string
		inject func(f *fakeRouter)
		heal   func(h *harness)
	}{
		{"trap on add", func(f *fakeRouter) { f.trapAdds = 1 }, nil},
		{"reply lost after add", func(f *fakeRouter) { f.loseAddReply = true }, nil},
		{"connection dropped mid-add", func(f *fakeRouter) { f.dropAfterAdd = true }, func(h *harness) {
			h.router.setConnected(true)
			if err := h.m.Reconcile(context.Background(), 0); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"list fails", func(f *fakeRouter) { f.failLists = 1; f.trapAdds = 1 }, nil},
		{"disconnected", func(f *fakeRouter) { f.connected = false }, func(h *harness) {
			h.router.setConnected(true)
			if err := h.m.Reconcile(context.Background(), 0); err != nil {
				h.t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.sync(true)
			h.router.mu.Lock()
			tc.inject(h.router)
			h.router.mu.Unlock()
			h.event(detect.AttackStart, attack("x", victim(0), detect.In))
			if err := h.sync(false); err == nil {
				t.Fatal("sync after an injected fault reported no error")
			}
			if st := h.m.Bans()[0].Routers[0]; st.State != BanFailed || st.Error == "" {
				t.Fatalf("ban state %q, want error: ...", st)
			}
			if tc.heal != nil {
				tc.heal(h)
			}
			for i := 0; i < 3; i++ {
				if err := h.sync(false); err == nil {
					break
				}
			}
			objs := h.router.ourObjects()
			if len(objs) != 1 || objs[0].Prefix.Addr() != victim(0) {
				t.Fatalf("router %v, want exactly one entry", objs)
			}
			if st := h.m.Bans()[0].Routers[0].State; st != BanActive {
				t.Fatalf("ban state %q after retry", st)
			}
			// And it is removed again cleanly at unban.
			if err := h.m.Unban(context.Background(), netip.PrefixFrom(victim(0), 32)); err != nil {
				t.Fatal(err)
			}
			if err := h.sync(false); err != nil {
				t.Fatal(err)
			}
			if objs := h.router.ourObjects(); len(objs) != 0 {
				t.Fatalf("left on router: %v", objs)
			}
		})
	}
}

func TestEventsNeverBlock(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.EventBuffer = 2 })
	done := make(chan struct{})
	go func() {
		for i := range 10 {
			h.event(detect.AttackStart, attack(fmt.Sprintf("a%d", i), victim(i), detect.In))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleEvent blocked on a full event channel")
	}
	if len(h.m.Bans()) != 10 || h.m.Stats().EventsDropped != 8 {
		t.Fatalf("bans %d, dropped %d; want 10 and 8", len(h.m.Bans()), h.m.Stats().EventsDropped)
	}
}

// TestStartStop runs the real loops: a ban reaches the router through the
// worker, and Stop returns.
func TestStartStop(t *testing.T) {
	clock := newClock()
	router := newFakeRouter(clock)
	cfg := DefaultConfiguration()
	cfg.Actions = []routeros.Action{routeros.ActionAddressList}
	cfg.Networks = testNetworks
	store := openStore(t, filepath.Join(t.TempDir(), "flowshield.db"))
	defer store.Close()
	m := New(cfg, store, []Router{router}, quiet)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	m.HandleEvent(detect.Event{Kind: detect.AttackStart, Attack: attack("x", victim(0), detect.In)})
	deadline := time.Now().Add(5 * time.Second)
	for len(router.ourObjects()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("ban did not reach the router within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSkippedAttackBannedWhenRoomOpens(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.MaxBans = 1; c.BanTime = time.Minute })
	a0, a1 := attack("a0", victim(0), detect.In), attack("a1", victim(1), detect.In)
	h.event(detect.AttackStart, a0)
	h.event(detect.AttackStart, a1)
	h.event(detect.AttackEnd, a0)
	h.clock.Advance(time.Minute)
	h.m.expire(h.clock.Now())
	h.event(detect.AttackUpdate, a1)
	if banned, _ := h.m.AttackBanned("a1"); !banned {
		t.Fatal("skipped attack not banned once room opened")
	}
	// The operator lifts it: the running attack is not banned again.
	if err := h.m.Unban(context.Background(), netip.PrefixFrom(victim(1), 32)); err != nil {
		t.Fatal(err)
	}
	h.event(detect.AttackUpdate, a1)
	if len(h.m.Bans()) != 0 {
		t.Fatal("operator-lifted ban came back on the next update")
	}
	evs := h.events()
	want := []EventKind{EventBan, EventBanSkipped, EventUnban, EventBan, EventUnban}
	if len(evs) != len(want) {
		t.Fatalf("events %+v", evs)
	}
	for i, e := range evs {
		if e.Kind != want[i] {
			t.Fatalf("event %d is %s, want %s", i, e.Kind, want[i])
		}
	}
}

// TestStalledRouter: a router that stops answering costs one call timeout
// per pass, and once it answers again the bans arrive without duplicates.
func TestStalledRouter(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.CallTimeout = 100 * time.Millisecond })
	h.sync(true)
	h.router.mu.Lock()
	h.router.stall = true
	h.router.mu.Unlock()
	for i := range 5 {
		h.event(detect.AttackStart, attack(fmt.Sprintf("a%d", i), victim(i), detect.In))
	}
	start := time.Now()
	if err := h.sync(false); err == nil {
		t.Fatal("sync with a stalled router reported no error")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("pass against a stalled router took %s, want about one call timeout", d)
	}
	if err := h.sync(false); err == nil {
		t.Fatal("second sync with a stalled router reported no error")
	}
	h.router.mu.Lock()
	h.router.stall = false
	h.router.mu.Unlock()
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	objs := h.router.ourObjects()
	if len(objs) != 5 {
		t.Fatalf("router has %d objects, want 5", len(objs))
	}
	for _, b := range h.m.Bans() {
		if b.Routers[0].State != BanActive {
			t.Fatalf("%s state %s", b.Prefix, b.Routers[0].State)
		}
	}
}

// TestDropRateReported: what the router drops for a ban is reported while
// it can be told apart: a raw-drop rule always, an address-list entry only
// while its list holds no other ban (the list's drop rules count for every
// entry).
func TestDropRateReported(t *testing.T) {
	type report struct {
		prefix netip.Prefix
		pps    float64
	}
	var got []report
	h := newHarness(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionAddressList}
		c.DropThresholdPPS = 1000
		c.OnDropRate = func(p netip.Prefix, dir detect.Direction, pps float64, at time.Time) {
			got = append(got, report{p, pps})
		}
	})
	h.event(detect.AttackStart, attack("a", victim(0), detect.In))
	h.sync(false) // adds, takes the first counter sample
	id := h.router.ourObjects()[0].ID
	for range 3 {
		h.clock.Advance(5 * time.Second)
		h.router.addPackets(id, 25000)
		h.sync(false)
	}
	if len(got) != 3 || got[2].prefix.Addr() != victim(0) || got[2].pps != 5000 {
		t.Fatalf("reports of a lone address-list ban: %+v, want 3 of 5000 pps", got)
	}
	// A second ban shares the list: neither can be told apart any more.
	h.event(detect.AttackStart, attack("b", victim(1), detect.In))
	h.sync(false)
	got = nil
	for range 3 {
		h.clock.Advance(5 * time.Second)
		for _, o := range h.router.ourObjects() {
			h.router.addPackets(o.ID, 25000)
		}
		h.sync(false)
	}
	if len(got) != 0 {
		t.Fatalf("shared list counters were attributed: %+v", got)
	}
}
