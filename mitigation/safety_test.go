package mitigation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
	"github.com/flowshield/flowshield/storage"
)

// The safety tests' world: NETWORKS (loopback and ::1 included, so the
// own-address rule is what refuses them), flowshield's own addresses, and
// the router's.
var (
	safetyNetworks = []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24"),
		netip.MustParsePrefix("127.0.0.0/24"), netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("::1/128"),
	}
	safetyOwn    = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("198.51.100.250")}
	safetyRouter = []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8:1::1")}
	longGroupIP  = netip.MustParseAddr("203.0.113.99") // its hostgroup's ban_time is over the cap
)

// logCount is a log handler counting records by message.
type logCount struct {
	mu *sync.Mutex
	n  map[string]int
}

func newLogCount() logCount { return logCount{mu: new(sync.Mutex), n: map[string]int{}} }

func (l logCount) Enabled(context.Context, slog.Level) bool { return true }
func (l logCount) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l logCount) WithGroup(string) slog.Handler            { return l }

func (l logCount) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n[r.Message]++
	return nil
}

func (l logCount) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[msg]
}

func newSafetyHarness(t *testing.T, log slog.Handler) *harness {
	t.Helper()
	h := newHarness(t, func(c *Configuration) {
		c.Networks = safetyNetworks
		c.OwnAddresses = safetyOwn
		c.HostGroupPolicy = func(ip netip.Addr) ([]routeros.Action, time.Duration) {
			if ip == longGroupIP {
				return nil, MaxBanTime + time.Hour
			}
			return nil, 0
		}
	})
	if log != nil {
		h.m.log = slog.New(log)
	}
	if err := h.m.SetRouterAddresses(0, safetyRouter); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestManualBanSafety: every rule against manual bans, IPv4 and IPv6.
// A refused ban is a *RefusedError naming its rule, is counted, and
// reaches neither the store nor the router; an allowed one does.
func TestManualBanSafety(t *testing.T) {
	tests := []struct {
		prefix string
		ttl    time.Duration
		rule   Rule // "" when allowed
	}{
		{"0.0.0.0/0", time.Hour, RuleTooWide},
		{"::/0", time.Hour, RuleTooWide},
		{"10.0.0.0/8", time.Hour, RuleTooWide},
		{"203.0.113.0/23", time.Hour, RuleTooWide},
		{"2001:db8:1::/56", time.Hour, RuleTooWide},
		{"192.0.2.7/32", time.Hour, RuleOutsideNetworks},
		{"198.51.100.0/23", time.Hour, RuleTooWide},
		{"203.0.114.0/24", time.Hour, RuleOutsideNetworks},
		{"2001:db8:2::7/128", time.Hour, RuleOutsideNetworks},
		{"203.0.113.1/32", time.Hour, RuleRouterAddress},
		{"203.0.113.0/24", time.Hour, RuleRouterAddress},
		{"2001:db8:1::1/128", time.Hour, RuleRouterAddress},
		{"2001:db8:1::/64", time.Hour, RuleRouterAddress},
		{"127.0.0.1/32", time.Hour, RuleOwnAddress},
		{"127.0.0.0/24", time.Hour, RuleOwnAddress},
		{"::1/128", time.Hour, RuleOwnAddress},
		{"198.51.100.250/32", time.Hour, RuleOwnAddress},
		{"203.0.113.5/32", MaxBanTime + time.Second, RuleTTL},
		{"2001:db8:1:5::5/128", 1500 * time.Millisecond, RuleTTL},
		{"203.0.113.5/32", 500 * time.Millisecond, RuleTTL},
		{"203.0.113.5/32", -time.Second, RuleTTL},
		{"203.0.113.99/32", 0, RuleTTL}, // the hostgroup's ban_time, over the cap
		{"203.0.113.5/32", MaxBanTime, ""},
		{"203.0.113.128/25", 10 * time.Minute, ""},
		{"198.51.100.0/25", 0, ""},
		{"2001:db8:1:5::/64", time.Second, ""},
		{"2001:db8:1:5::5/128", time.Hour, ""},
		{"::ffff:203.0.113.9/128", time.Hour, ""}, // IPv4-mapped: the /32 it is
		{"::ffff:203.0.113.128/121", time.Hour, ""},
		{"::ffff:0.0.0.0/96", time.Hour, RuleTooWide}, // 0.0.0.0/0
		{"::ffff:203.0.112.0/119", time.Hour, RuleTooWide},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.prefix, tt.ttl), func(t *testing.T) {
			h := newSafetyHarness(t, nil)
			p := netip.MustParsePrefix(tt.prefix)
			b, err := h.m.AddManual(context.Background(), p, tt.ttl, "test", detect.In)
			h.sync(true)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(h.storedKeys()) != 1 || len(h.router.ourObjects()) != 1 || h.router.ourObjects()[0].Prefix != hostPrefix(p) {
					t.Fatalf("ban %+v: store %v, router %v", b, h.storedKeys(), h.router.ourObjects())
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Rule != tt.rule || re.Prefix != hostPrefix(p) || re.Detail == "" {
				t.Fatalf("error %v, want a RefusedError of rule %s", err, tt.rule)
			}
			if !strings.Contains(err.Error(), string(tt.rule)) {
				t.Errorf("error %q does not name rule %s", err, tt.rule)
			}
			if len(h.m.Bans()) != 0 || len(h.storedKeys()) != 0 || len(h.router.ourObjects()) != 0 {
				t.Fatalf("refused ban made: bans %v store %v router %v", h.m.Bans(), h.storedKeys(), h.router.ourObjects())
			}
			st := h.m.Stats()
			for _, r := range Rules {
				want := uint64(0)
				if r == tt.rule {
					want = 1
				}
				if st.Refused[r] != want {
					t.Errorf("Refused[%s] = %d, want %d", r, st.Refused[r], want)
				}
			}
		})
	}
}

// TestAutomaticBanSafety: attacks on addresses the rules protect are
// detected but not banned: one ban_skipped event with the rule as reason
// and one log line per attack, however many updates follow; attacks on
// protected hosts are banned as before.
func TestAutomaticBanSafety(t *testing.T) {
	tests := []struct {
		ip   string
		rule Rule // "" when banned
	}{
		{"203.0.113.1", RuleRouterAddress},
		{"2001:db8:1::1", RuleRouterAddress},
		{"127.0.0.1", RuleOwnAddress},
		{"::1", RuleOwnAddress},
		{"198.51.100.250", RuleOwnAddress},
		{"192.0.2.7", RuleOutsideNetworks},
		{"2001:db8:2::7", RuleOutsideNetworks},
		{"203.0.113.99", RuleTTL},
		{"203.0.113.66", ""},
		{"2001:db8:1::66", ""},
		{"::ffff:203.0.113.67", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			logs := newLogCount()
			h := newSafetyHarness(t, logs)
			a := attack("a1", netip.MustParseAddr(tt.ip), detect.In)
			h.event(detect.AttackStart, a)
			for range 3 {
				h.clock.Advance(time.Second)
				h.event(detect.AttackUpdate, a)
			}
			h.sync(true)
			evs := h.events()
			banned, known := h.m.AttackBanned("a1")
			if tt.rule == "" {
				if !banned || countKind(evs, EventBan, "") != 1 || len(h.router.ourObjects()) != 1 {
					t.Fatalf("banned=%v events %+v router %v", banned, evs, h.router.ourObjects())
				}
				return
			}
			if banned || !known || len(h.m.Bans()) != 0 || len(h.router.ourObjects()) != 0 || len(h.storedKeys()) != 0 {
				t.Fatalf("banned=%v known=%v bans %v router %v", banned, known, h.m.Bans(), h.router.ourObjects())
			}
			if len(evs) != 1 || evs[0].Kind != EventBanSkipped || evs[0].Reason != string(tt.rule) || evs[0].Attack.ID != "a1" {
				t.Fatalf("events %+v, want one ban_skipped with reason %s", evs, tt.rule)
			}
			if n := logs.count("ban refused by a safety rule"); n != 1 {
				t.Errorf("%d log lines, want 1 per attack", n)
			}
			if st := h.m.Stats(); st.Refused[tt.rule] != 1 || st.Skipped != 1 || st.Bans != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestStoredUnsafeBansDropped: bans an older version stored (0.0.0.0/0,
// ::/0, IPv4-mapped ::ffff:0.0.0.0/96, a /16, one outside NETWORKS, one over the ttl cap, and one of the
// router's address, known only once it is read) are dropped from the
// store with a log line and a counter, and their objects leave the
// router; the safe ban stays. Until the router's addresses are known
// (AwaitRouterAddresses), nothing is put on it.
func TestStoredUnsafeBansDropped(t *testing.T) {
	clock := newClock()
	router := newFakeRouter(clock)
	path := filepath.Join(t.TempDir(), "flowshield.db")
	store := openStore(t, path)
	defer store.Close()
	now := clock.Now()
	rec := func(p string, banTime time.Duration) storage.BanRecord {
		return storage.BanRecord{Prefix: netip.MustParsePrefix(p), Direction: detect.In, Actions: []string{"address-list", "raw-drop"},
			Reason: "old", Manual: true, CreatedAt: now, ExpiresAt: now.Add(time.Hour), BanTime: banTime}
	}
	records := []storage.BanRecord{
		rec("0.0.0.0/0", time.Hour), rec("::/0", time.Hour), rec("::ffff:0.0.0.0/96", time.Hour), rec("203.0.0.0/16", time.Hour), rec("192.0.2.7/32", time.Hour),
		rec("203.0.113.8/32", MaxBanTime+time.Hour), rec("203.0.113.1/32", time.Hour), rec("203.0.113.5/32", time.Hour),
	}
	if err := store.UpdateBans(context.Background(), records, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range records { // the older version had put them on the router
		for _, a := range []routeros.Action{routeros.ActionAddressList, routeros.ActionRawDrop} {
			router.addDirect(routeros.Object{Action: a, Prefix: r.Prefix, List: "flowshield-in", Comment: "flowshield manual old", Timeout: time.Hour})
		}
	}
	cfg := DefaultConfiguration()
	cfg.Actions = []routeros.Action{routeros.ActionAddressList, routeros.ActionRawDrop}
	cfg.Networks, cfg.OwnAddresses, cfg.AwaitRouterAddresses = safetyNetworks, safetyOwn, true
	cfg.Now = clock.Now
	logs := newLogCount()
	m := New(cfg, store, []Router{router}, slog.New(logs))
	if err := m.restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	keys := func() []string {
		bans, _, err := store.LoadBans(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range bans {
			out = append(out, b.Prefix.String())
		}
		return out
	}
	if got := keys(); strings.Join(got, ",") != "203.0.113.1/32,203.0.113.5/32" {
		t.Fatalf("store after restore: %v", got)
	}
	if n := m.Stats().UnsafeDropped; n != 6 {
		t.Fatalf("UnsafeDropped %d, want 6", n)
	}
	if n := logs.count("dropping a ban the safety rules refuse"); n != 6 {
		t.Fatalf("%d log lines, want 6", n)
	}
	before := len(router.ourObjects())
	if err := m.syncRouter(context.Background(), 0, true); !errors.Is(err, errNoAddresses) {
		t.Fatalf("sync before the router's addresses: %v", err)
	}
	if got := m.Bans()[0].Routers[0]; got.State != BanFailed || !strings.Contains(got.Error, "addresses") {
		t.Fatalf("router state while waiting: %+v", got)
	}
	if len(router.ourObjects()) != before || router.calls["add"]+router.calls["remove"] != 0 {
		t.Fatalf("the router was changed before its addresses were known: calls %v", router.calls)
	}
	if err := m.SetRouterAddresses(0, safetyRouter); err != nil {
		t.Fatal(err)
	}
	if got := keys(); strings.Join(got, ",") != "203.0.113.5/32" {
		t.Fatalf("store after the router's addresses: %v", got)
	}
	if err := m.syncRouter(context.Background(), 0, true); err != nil {
		t.Fatal(err)
	}
	for _, o := range router.ourObjects() {
		if o.Prefix != netip.MustParsePrefix("203.0.113.5/32") {
			t.Errorf("unsafe object %s left on the router", o)
		}
	}
	if n := len(router.ourObjects()); n != 2 {
		t.Fatalf("router holds %d flowshield objects, want the safe ban's 2", n)
	}
	if st := m.Stats(); st.UnsafeDropped != 7 {
		t.Fatalf("UnsafeDropped %d, want 7", st.UnsafeDropped)
	}
	unbans := 0
	for {
		select {
		case e := <-m.Events():
			if e.Kind == EventUnban && e.Reason != "" {
				unbans++
			}
			continue
		default:
		}
		break
	}
	if unbans != 7 {
		t.Fatalf("%d unban events, want 7", unbans)
	}
}

// TestRouterAddressChangeDropsBan: a ban made while an address was not
// the router's goes when the router is found to hold it (a new address at
// reconnect): dropped with an unban event naming the rule, and its object
// removed.
func TestRouterAddressChangeDropsBan(t *testing.T) {
	h := newSafetyHarness(t, nil)
	p := netip.MustParsePrefix("203.0.113.7/32")
	if _, err := h.m.AddManual(context.Background(), p, time.Hour, "", detect.In); err != nil {
		t.Fatal(err)
	}
	h.sync(true)
	if len(h.router.ourObjects()) != 1 {
		t.Fatalf("router %v", h.router.ourObjects())
	}
	h.events()
	if err := h.m.SetRouterAddresses(0, append(safetyRouter, p.Addr())); err != nil {
		t.Fatal(err)
	}
	h.sync(false)
	if len(h.m.Bans()) != 0 || len(h.storedKeys()) != 0 || len(h.router.ourObjects()) != 0 {
		t.Fatalf("bans %v store %v router %v", h.m.Bans(), h.storedKeys(), h.router.ourObjects())
	}
	if evs := h.events(); countKind(evs, EventUnban, string(RuleRouterAddress)) != 1 {
		t.Fatalf("events %+v", evs)
	}
	if err := h.m.SetRouterAddresses(1, nil); err == nil {
		t.Fatal("router 1 of 1 accepted")
	}
}

// TestAdoptSkipsUnsafeObjects: with the store lost, a flowshield object
// the rules refuse is not adopted as a ban but removed.
func TestAdoptSkipsUnsafeObjects(t *testing.T) {
	h := newHarness(t, func(c *Configuration) {
		c.Networks, c.OwnAddresses = safetyNetworks, safetyOwn
		c.Actions = []routeros.Action{routeros.ActionRawDrop}
		c.AdoptRouterBans = true
	})
	h.m.SetRouterAddresses(0, safetyRouter)
	for _, p := range []string{"0.0.0.0/0", "203.0.113.1/32", "203.0.113.5/32"} {
		h.router.addDirect(routeros.Object{Action: routeros.ActionRawDrop, Prefix: netip.MustParsePrefix(p), Comment: "flowshield a1 udp_flood"})
	}
	if err := h.sync(true); err != nil {
		t.Fatal(err)
	}
	if bans := h.m.Bans(); len(bans) != 1 || bans[0].Prefix != netip.MustParsePrefix("203.0.113.5/32") {
		t.Fatalf("adopted %v", bans)
	}
	if objs := h.router.ourObjects(); len(objs) != 1 || objs[0].Prefix != netip.MustParsePrefix("203.0.113.5/32") {
		t.Fatalf("router %v", objs)
	}
	if n := h.m.Stats().UnsafeDropped; n != 2 {
		t.Fatalf("UnsafeDropped %d, want 2", n)
	}
}

// TestRouterAddressFromEmulator: the router's own address, read over the
// wire from the emulator's /ip/address and /ipv6/address, keeps manual
// and automatic bans off it, while its neighbours are banned on the
// router.
func TestRouterAddressFromEmulator(t *testing.T) {
	emu := routerostest.New(routerostest.DefaultConfiguration())
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	for _, s := range []struct{ menu, address string }{
		{routerostest.MenuAddress, "203.0.113.1/24"}, {routerostest.MenuAddressV6, "2001:db8:1::1/64"},
	} {
		if _, err := emu.Seed(s.menu, map[string]string{"address": s.address, "interface": "bridge"}); err != nil {
			t.Fatal(err)
		}
	}
	rcfg := routeros.DefaultConfiguration()
	rcfg.Address, rcfg.User, rcfg.Password = emu.Addr(), "admin", "admin"
	r := routeros.New(rcfg, quiet)
	t.Cleanup(r.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := r.Addresses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t, filepath.Join(t.TempDir(), "flowshield.db"))
	defer store.Close()
	cfg := DefaultConfiguration()
	cfg.Actions = []routeros.Action{routeros.ActionRawDrop}
	cfg.Networks, cfg.AwaitRouterAddresses = safetyNetworks, true
	m := New(cfg, store, []Router{r}, quiet)
	if err := m.SetRouterAddresses(0, addrs); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"203.0.113.1/32", "203.0.113.0/24", "2001:db8:1::1/128", "2001:db8:1::/64"} {
		_, err := m.AddManual(ctx, netip.MustParsePrefix(p), time.Hour, "", detect.In)
		var re *RefusedError
		if !errors.As(err, &re) || re.Rule != RuleRouterAddress {
			t.Errorf("manual ban of %s: %v, want rule %s", p, err, RuleRouterAddress)
		}
	}
	for _, ip := range []string{"203.0.113.1", "2001:db8:1::1", "203.0.113.2", "2001:db8:1::2"} {
		m.HandleEvent(detect.Event{Kind: detect.AttackStart, Attack: attack("at-"+ip, netip.MustParseAddr(ip), detect.In)})
	}
	if err := m.Reconcile(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, menu := range []string{routerostest.MenuRaw, routerostest.MenuRawV6} {
		for _, o := range emu.Objects(menu) {
			got = append(got, o.Props["dst-address"])
		}
	}
	if strings.Join(got, ",") != "203.0.113.2,2001:db8:1::2/128" {
		t.Fatalf("raw rules on the router: %v", got)
	}
	if n := m.Stats().Refused[RuleRouterAddress]; n != 6 {
		t.Fatalf("Refused[router-address] = %d, want 6", n)
	}
}
