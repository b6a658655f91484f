package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// Fault tests: the daemon against the RouterOS emulator while the emulator
// drops, stalls, traps, reboots, is wiped or goes away. Each ends when the
// router holds exactly the bans the store holds, once each, and the objects
// another admin put there are as they were.

const (
	faultUser     = "flowshield"
	faultPassword = "s3cret-faults"
)

// startRouterEmulator is startEmulator with the fault tests' credentials.
func startRouterEmulator(t *testing.T) *routerostest.Server {
	t.Helper()
	cfg := routerostest.DefaultConfiguration()
	cfg.User, cfg.Password = faultUser, faultPassword
	emu := routerostest.New(cfg)
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	return emu
}

// routerEnv is the environment of a daemon banning on emu with action.
func routerEnv(emu *routerostest.Server, action string) map[string]string {
	return map[string]string{
		"FLOWSHIELD_ACTION":            action,
		"FLOWSHIELD_BAN_TIME":          "10m",
		"FLOWSHIELD_WINDOW":            "1s",
		"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
		"FLOWSHIELD_ROUTEROS_USER":     faultUser,
		"FLOWSHIELD_ROUTEROS_PASSWORD": faultPassword,
	}
}

// startApplianceWith is startTestAppliance with Options (a short
// ReconcileInterval).
func startApplianceWith(t *testing.T, env map[string]string, opts Options) *Appliance {
	t.Helper()
	base := map[string]string{
		"FLOWSHIELD_NETWORKS":       "203.0.113.0/24,2001:db8:1::/48",
		"FLOWSHIELD_NETFLOW_LISTEN": "127.0.0.1:0",
		"FLOWSHIELD_SFLOW_LISTEN":   "127.0.0.1:0",
		"FLOWSHIELD_HTTP_LISTEN":    "127.0.0.1:0",
		"FLOWSHIELD_DATA_DIR":       t.TempDir(),
	}
	maps.Copy(base, env)
	cfg, err := config.FromEnv(base)
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	a, err := New(cfg, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a
}

// apiBase is the daemon's HTTP API root.
func apiBase(a *Appliance) string { return "http://" + a.HTTPAddr().String() }

// postBan adds a manual ban through the API.
func postBan(t *testing.T, base, prefix, ttl string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"prefix": prefix, "ttl": ttl, "reason": "fault-test"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/bans", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/v1/bans %s: %v", prefix, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /api/v1/bans %s: %s %s", prefix, resp.Status, msg)
	}
}

// deleteBan lifts a ban through the API.
func deleteBan(t *testing.T, base, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/api/v1/bans/"+url.PathEscape(prefix), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("DELETE /api/v1/bans/%s: %v", prefix, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("DELETE /api/v1/bans/%s: %s %s", prefix, resp.Status, msg)
	}
}

// apiBan is the part of a GET /api/v1/bans element the tests read.
type apiBan struct {
	Prefix    string `json:"prefix"`
	Direction string `json:"direction"`
	Routers   []struct {
		Address string `json:"address"`
		State   string `json:"state"`
	} `json:"routers"`
}

// getBans reads GET /api/v1/bans; nil with an error when the daemon does
// not answer.
func getBans(base string) ([]apiBan, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/bans", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/bans: %s", resp.Status)
	}
	var out []apiBan
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// banKeyOf is the store's key of a ban: "prefix|direction".
func banKeyOf(prefix netip.Prefix, dir string) string { return prefix.String() + "|" + dir }

// hostPrefix reads an address or prefix as the emulator prints it.
func hostPrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// routerBans counts the flowshield objects of action on the emulator by
// the ban key they serve.
func routerBans(emu *routerostest.Server, action string) map[string]int {
	out := map[string]int{}
	type source struct {
		menu, key, dir string
		list           map[string]string // address-list name -> direction
	}
	lists := map[string]string{"flowshield-in": "in", "flowshield-out": "out"}
	var sources []source
	switch action {
	case "address-list":
		sources = []source{{menu: routerostest.MenuAddressList, key: "address", list: lists},
			{menu: routerostest.MenuAddressListV6, key: "address", list: lists}}
	case "raw-drop":
		for _, m := range []string{routerostest.MenuRaw, routerostest.MenuRawV6} {
			sources = append(sources, source{menu: m, key: "dst-address", dir: "in"}, source{menu: m, key: "src-address", dir: "out"})
		}
	case "blackhole":
		sources = []source{{menu: routerostest.MenuRoute, key: "dst-address", dir: "in"},
			{menu: routerostest.MenuRouteV6, key: "dst-address", dir: "in"}}
	}
	for _, s := range sources {
		for _, o := range emu.Objects(s.menu) {
			if !strings.HasPrefix(o.Props["comment"], "flowshield") {
				continue
			}
			p, ok := hostPrefix(o.Props[s.key])
			if !ok {
				continue
			}
			dir := s.dir
			if s.list != nil {
				if dir, ok = s.list[o.Props["list"]]; !ok {
					continue
				}
			}
			out[banKeyOf(p, dir)]++
		}
	}
	return out
}

// storedBanKeys is the set of bans in the daemon's store.
func storedBanKeys(t *testing.T, a *Appliance) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stored, bad, err := a.store.LoadBans(ctx)
	if err != nil {
		t.Fatalf("reading the store: %v", err)
	}
	out := make(map[string]int, len(stored)+len(bad))
	for _, b := range stored {
		out[b.Key()] = 1
	}
	for _, b := range bad {
		out[b.Key] = 1
	}
	return out
}

// waitRouterMatches polls until the emulator holds, once each, exactly the
// bans of want(), and fails with both sides if it does not in time.
func waitRouterMatches(t *testing.T, emu *routerostest.Server, action string, timeout time.Duration, want func() map[string]int) {
	t.Helper()
	var got, w map[string]int
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		got, w = routerBans(emu, action), want()
		if maps.Equal(got, w) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Fatalf("after %v the router's %s objects (key: count) are %v, want %v", timeout, action, got, w)
}

// foreignObjects are what another admin put on the router: flowshield must
// never change or remove them.
type foreignObjects map[string]map[string]map[string]string // menu -> id -> props

// seedForeign adds an address-list entry (in flowshield's own list, without
// the flowshield comment), one in another list, a raw rule and two routes.
func seedForeign(t *testing.T, emu *routerostest.Server) foreignObjects {
	t.Helper()
	seeds := []struct {
		menu  string
		props map[string]string
	}{
		{routerostest.MenuAddressList, map[string]string{"list": "flowshield-in", "address": "203.0.113.201"}},
		{routerostest.MenuAddressList, map[string]string{"list": "office", "address": "198.51.100.7", "comment": "ops: office uplink"}},
		{routerostest.MenuRaw, map[string]string{"chain": "prerouting", "action": "accept", "src-address": "192.0.2.1", "comment": "keep: monitoring"}},
		{routerostest.MenuRoute, map[string]string{"dst-address": "192.0.2.0/24", "gateway": "10.0.0.1", "comment": "upstream"}},
		{routerostest.MenuRoute, map[string]string{"dst-address": "198.51.100.0/24", "blackhole": "yes"}},
	}
	f := foreignObjects{}
	for _, s := range seeds {
		id, err := emu.Seed(s.menu, s.props)
		if err != nil {
			t.Fatalf("seeding %s %v: %v", s.menu, s.props, err)
		}
		if f[s.menu] == nil {
			f[s.menu] = map[string]map[string]string{}
		}
		for _, o := range emu.Objects(s.menu) {
			if o.ID == id {
				f[s.menu][id] = o.Props
			}
		}
	}
	return f
}

// check fails unless every foreign object is still there, unchanged.
func (f foreignObjects) check(t *testing.T, emu *routerostest.Server) {
	t.Helper()
	for menu, objs := range f {
		now := map[string]map[string]string{}
		for _, o := range emu.Objects(menu) {
			now[o.ID] = o.Props
		}
		for id, props := range objs {
			got, ok := now[id]
			if !ok {
				t.Errorf("foreign object %s %s %v was removed", menu, id, props)
				continue
			}
			if !maps.Equal(got, props) {
				t.Errorf("foreign object %s %s changed: %v, was %v", menu, id, got, props)
			}
		}
	}
}

// waitRedial reports whether the emulator accepted a new connection since
// it had accepted `before`, waiting a bounded time: with a fault after
// apply, the router already matches while the client is still redialling.
func waitRedial(emu *routerostest.Server, before int) bool {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if emu.Accepted() > before {
			return true
		}
	}
	return false
}

// waitBanState polls the API until the ban of prefix is in state on the
// (one) router.
func waitBanState(t *testing.T, base, prefix string, timeout time.Duration, cond func(state string) bool) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		bans, err := getBans(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bans {
			if b.Prefix == prefix && len(b.Routers) == 1 {
				last = b.Routers[0].State
				if cond(last) {
					return last
				}
			}
		}
	}
	t.Fatalf("ban %s: router state %q after %v", prefix, last, timeout)
	return last
}

// TestRouterFaults: each fault, then the router holds exactly the stored
// bans, no duplicates, foreign objects untouched.
func TestRouterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection against the emulator")
	}
	type env struct {
		t       *testing.T
		emu     *routerostest.Server
		a       *Appliance
		base    string
		action  string
		foreign foreignObjects
	}
	// stored is the store's bans, the reference of every check.
	stored := func(e *env) func() map[string]int { return func() map[string]int { return storedBanKeys(e.t, e.a) } }
	cases := []struct {
		name   string
		action string
		run    func(e *env)
	}{
		{"drop before apply on add", "address-list", func(e *env) {
			accepted := e.emu.Accepted()
			e.emu.Inject(routerostest.Fault{Kind: routerostest.DropBeforeApply, Match: "/add"})
			postBan(e.t, e.base, "203.0.113.12", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
			if !waitRedial(e.emu, accepted) {
				e.t.Errorf("the connection was not dropped and redialled (accepted %d, before %d)", e.emu.Accepted(), accepted)
			}
		}},
		{"drop after apply on add raw-drop", "raw-drop", func(e *env) {
			accepted := e.emu.Accepted()
			e.emu.Inject(routerostest.Fault{Kind: routerostest.DropAfterApply, Match: "/add"})
			postBan(e.t, e.base, "203.0.113.12", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
			if !waitRedial(e.emu, accepted) {
				e.t.Errorf("the connection was not dropped and redialled")
			}
		}},
		{"drop after apply on add address-list", "address-list", func(e *env) {
			// Adding again would trap "already have such entry": the
			// manager must list first and take the entry it finds.
			e.emu.Inject(routerostest.Fault{Kind: routerostest.DropAfterApply, Match: "/add"})
			postBan(e.t, e.base, "2001:db8:1::12", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
			waitBanState(e.t, e.base, "2001:db8:1::12/128", 5*time.Second, func(s string) bool { return s == "active" })
		}},
		{"fatal on add", "raw-drop", func(e *env) {
			e.emu.Inject(routerostest.Fault{Kind: routerostest.Fatal, Match: "/add", Message: "session terminated"})
			postBan(e.t, e.base, "203.0.113.12", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
		}},
		{"drop after apply on add blackhole", "blackhole", func(e *env) {
			e.emu.Inject(routerostest.Fault{Kind: routerostest.DropAfterApply, Match: "/add"})
			postBan(e.t, e.base, "203.0.113.12", "10m")
			postBan(e.t, e.base, "203.0.113.13", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
		}},
		{"stall past the call timeout on add", "raw-drop", func(e *env) {
			// The emulator applies the add, then holds the reply for 11 s,
			// past the 10 s call timeout. A ban posted meanwhile lands after.
			e.emu.Inject(routerostest.Fault{Kind: routerostest.Stall, Match: "/add", Duration: 11 * time.Second})
			start := time.Now()
			postBan(e.t, e.base, "203.0.113.12", "10m")
			for deadline := time.Now().Add(5 * time.Second); e.emu.CountCommands("raw/add") < 2 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond) // the seeded ban's add plus the stalled one
			}
			postBan(e.t, e.base, "203.0.113.13", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 25*time.Second, stored(e))
			if took := time.Since(start); took < 9*time.Second {
				e.t.Errorf("the bans landed %v after the stall began: the stall did not hold the router", took)
			}
			if st := e.a.routers[0].Stats(); st.Timeouts == 0 {
				e.t.Errorf("no call timed out: %+v", st)
			}
			waitBanState(e.t, e.base, "203.0.113.13/32", 5*time.Second, func(s string) bool { return s == "active" })
		}},
		{"trap on add", "address-list", func(e *env) {
			e.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/add", Times: 2, Message: "failure: injected"})
			postBan(e.t, e.base, "203.0.113.12", "10m")
			waitBanState(e.t, e.base, "203.0.113.12/32", 5*time.Second, func(s string) bool { return strings.Contains(s, "injected") })
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
			waitBanState(e.t, e.base, "203.0.113.12/32", 5*time.Second, func(s string) bool { return s == "active" })
		}},
		{"restart empties the address lists", "address-list", func(e *env) {
			postBan(e.t, e.base, "203.0.113.12", "10m")
			postBan(e.t, e.base, "2001:db8:1::12", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 10*time.Second, stored(e))
			e.emu.Restart()
			if n := len(routerBans(e.emu, e.action)); n != 0 {
				e.t.Fatalf("the restart kept %d timed entries", n)
			}
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
		}},
		{"wipe", "blackhole", func(e *env) {
			postBan(e.t, e.base, "203.0.113.12", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 10*time.Second, stored(e))
			e.emu.Wipe()
			e.foreign = seedForeign(e.t, e.emu) // another admin sets the router up again
			waitRouterMatches(e.t, e.emu, e.action, 15*time.Second, stored(e))
		}},
		{"down then up", "address-list", func(e *env) {
			postBan(e.t, e.base, "203.0.113.12", "10m")
			waitRouterMatches(e.t, e.emu, e.action, 10*time.Second, stored(e))
			e.emu.Down()
			postBan(e.t, e.base, "203.0.113.13", "10m")
			deleteBan(e.t, e.base, "203.0.113.12/32")
			waitBanState(e.t, e.base, "203.0.113.13/32", 5*time.Second, func(s string) bool { return s != "active" })
			time.Sleep(1500 * time.Millisecond)
			if err := e.emu.Up(); err != nil {
				e.t.Fatal(err)
			}
			waitRouterMatches(e.t, e.emu, e.action, 20*time.Second, stored(e))
			if got := routerBans(e.emu, e.action); got[banKeyOf(netip.MustParsePrefix("203.0.113.12/32"), "in")] != 0 {
				e.t.Errorf("the ban lifted while the router was down is still there: %v", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			emu := startRouterEmulator(t)
			e := &env{t: t, emu: emu, action: tc.action, foreign: seedForeign(t, emu)}
			e.a = startApplianceWith(t, routerEnv(emu, tc.action), Options{ReconcileInterval: 2 * time.Second})
			e.base = apiBase(e.a)
			// A ban on the router before the fault, which must survive it.
			postBan(t, e.base, "203.0.113.11", "10m")
			waitRouterMatches(t, emu, tc.action, 10*time.Second, stored(e))
			tc.run(e)
			// Stable: a further full pass changes nothing.
			time.Sleep(2500 * time.Millisecond)
			waitRouterMatches(t, emu, tc.action, time.Second, stored(e))
			if n := len(storedBanKeys(t, e.a)); n < 2 {
				t.Errorf("the store holds %d bans; the test posted at least 2", n)
			}
			if got := routerBans(emu, tc.action); !slices.ContainsFunc(slices.Collect(maps.Keys(got)), func(k string) bool {
				return strings.HasPrefix(k, "203.0.113.11/32|")
			}) {
				t.Errorf("the ban placed before the fault is gone: %v", got)
			}
			e.foreign.check(t, emu)
		})
	}
}
