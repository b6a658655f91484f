package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// webhookEvent is the part of the contract's webhook JSON the tests read.
type webhookEvent struct {
	Event    string  `json:"event"`
	Reason   string  `json:"reason"`
	AttackID string  `json:"attack_id"`
	IP       *string `json:"ip"`
}

// webhookRecorder is a WEBHOOK_URL that keeps every event it receives.
type webhookRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []webhookEvent
	bad    int
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	t.Helper()
	w := &webhookRecorder{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var e webhookEvent
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		w.mu.Lock()
		if err := json.Unmarshal(body, &e); err != nil || e.Event == "" {
			w.bad++
		} else {
			w.events = append(w.events, e)
		}
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// of returns the events of kind (and reason, when not empty).
func (w *webhookRecorder) of(kind, reason string) []webhookEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []webhookEvent
	for _, e := range w.events {
		if e.Event == kind && (reason == "" || e.Reason == reason) {
			out = append(out, e)
		}
	}
	return out
}

// hostFlood is a flood onto one host starting at start into the run.
func hostFlood(victim netip.Addr, pps uint64, start time.Duration) flowgen.Flood {
	return flowgen.Flood{Kind: flowgen.FloodUDP, Target: netip.PrefixFrom(victim, victim.BitLen()),
		PPS: pps, FlowsPerSecond: 10, Sources: 20, StartAt: start}
}

// sendFloods runs the floods against target until ctx ends or d passes.
func sendFloods(ctx context.Context, target string, floods []flowgen.Flood, d time.Duration) error {
	sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{Seed: 5, Floods: floods})
	if err != nil {
		return err
	}
	scfg := flowgen.DefaultSenderConfiguration()
	scfg.Target = target
	scfg.Encoder.Format = flowgen.FormatRouterOSV9
	scfg.Duration = d
	scfg.Logger = slog.New(slog.DiscardHandler)
	s, err := flowgen.NewSender(scfg, sc)
	if err != nil {
		return err
	}
	_, err = s.Run(ctx)
	if ctx.Err() != nil {
		err = nil
	}
	return err
}

// apiAttack is the part of GET /api/v1/attacks the tests read.
type apiAttack struct {
	ID        string    `json:"id"`
	IP        *string   `json:"ip"`
	StartedAt time.Time `json:"started_at"`
	Banned    bool      `json:"banned"`
}

func getAttacks(t *testing.T, base string) []apiAttack {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/attacks")
	if err != nil {
		t.Fatalf("GET /api/v1/attacks: %v", err)
	}
	defer resp.Body.Close()
	var out []apiAttack
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("GET /api/v1/attacks: %v", err)
	}
	return out
}

// TestMaxBans: MAX_BANS=50 and real floods onto 80 hosts, 50 at first and
// 30 a few seconds later, plus one onto a whitelisted host. Exactly the
// first 50 attacks are banned, each of the other 30 gets a ban_skipped
// webhook event, the router never holds more than 50 entries, and the
// whitelisted victim's attack is reported but never banned.
func TestMaxBans(t *testing.T) {
	if testing.Short() {
		t.Skip("floods onto 81 hosts")
	}
	t.Parallel()
	emu := startRouterEmulator(t)
	hook := newWebhookRecorder(t)
	const whitelisted = "203.0.113.250"
	env := routerEnv(emu, "address-list")
	env["FLOWSHIELD_MAX_BANS"] = "50"
	env["FLOWSHIELD_THRESHOLD_PPS"] = "1000"
	env["FLOWSHIELD_WHITELIST"] = whitelisted + "/32"
	env["FLOWSHIELD_WEBHOOK_URL"] = hook.srv.URL
	a := startApplianceWith(t, env, Options{ReconcileInterval: 2 * time.Second})
	base := apiBase(a)

	var first, later []netip.Addr
	var floods []flowgen.Flood
	for i := range 80 {
		ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
		start := time.Duration(0)
		if i < 50 {
			first = append(first, ip)
		} else {
			later = append(later, ip)
			start = 3 * time.Second
		}
		floods = append(floods, hostFlood(ip, 5000, start))
	}
	floods = append(floods, hostFlood(netip.MustParseAddr(whitelisted), 5000, 0))

	// Never more than 50 on the router, sampled while it runs.
	most, whitelistSeen := 0, false
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			got := routerBans(emu, "address-list")
			most = max(most, len(got))
			if got[whitelisted+"/32|in"] > 0 {
				whitelistSeen = true
			}
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	floodErr := make(chan error, 1)
	target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	go func() { floodErr <- sendFloods(ctx, target, floods, 20*time.Second) }()

	// Wait for 50 entries and 30 skips, then a little more for extras.
	deadline := time.Now().Add(20 * time.Second)
	for len(routerBans(emu, "address-list")) < 50 || len(hook.of("ban_skipped", "max_bans")) < 30 {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d entries on the router, %d ban_skipped events", len(routerBans(emu, "address-list")), len(hook.of("ban_skipped", "max_bans")))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	attacks := getAttacks(t, base)
	cancel()
	if err := <-floodErr; err != nil {
		t.Errorf("flood: %v", err)
	}
	close(stopSampling)
	<-sampleDone

	if most > 50 {
		t.Errorf("the router held %d flowshield entries at once; MAX_BANS=50", most)
	}
	if whitelistSeen {
		t.Errorf("the whitelisted %s was banned on the router", whitelisted)
	}
	key := func(ip netip.Addr) string { return banKeyOf(netip.PrefixFrom(ip, 32), "in") }
	onRouter := routerBans(emu, "address-list")
	stored := storedBanKeys(t, a)
	if len(onRouter) != 50 || len(stored) != 50 {
		t.Errorf("%d bans on the router, %d in the store; want 50", len(onRouter), len(stored))
	}
	for _, ip := range first {
		if onRouter[key(ip)] != 1 || stored[key(ip)] != 1 {
			t.Errorf("%s (among the first 50 attacks) is not banned: router %d, store %d", ip, onRouter[key(ip)], stored[key(ip)])
		}
	}
	skipped := map[string]int{}
	for _, e := range hook.of("ban_skipped", "max_bans") {
		if e.IP == nil {
			t.Errorf("ban_skipped without ip: %+v", e)
			continue
		}
		skipped[*e.IP]++
	}
	for _, ip := range later {
		if onRouter[key(ip)] != 0 {
			t.Errorf("%s (a later attack) is banned past MAX_BANS", ip)
		}
		if skipped[ip.String()] != 1 {
			t.Errorf("%s: %d ban_skipped events, want 1", ip, skipped[ip.String()])
		}
	}
	if n := len(hook.of("ban_skipped", "max_bans")); n != 30 {
		t.Errorf("%d ban_skipped max_bans events, want 30", n)
	}
	if n := len(hook.of("ban", "")); n != 50 {
		t.Errorf("%d ban events, want 50", n)
	}

	// By the attacks' own start times: every banned one began no later
	// than every skipped one.
	var lastBanned, firstSkipped time.Time
	reported := false
	for _, at := range attacks {
		if at.IP == nil {
			continue
		}
		ip := netip.MustParseAddr(*at.IP)
		switch {
		case *at.IP == whitelisted:
			reported = true
			if at.Banned {
				t.Errorf("the whitelisted victim's attack %s says banned", at.ID)
			}
		case slices.Contains(first, ip):
			if at.StartedAt.After(lastBanned) {
				lastBanned = at.StartedAt
			}
		case slices.Contains(later, ip):
			if firstSkipped.IsZero() || at.StartedAt.Before(firstSkipped) {
				firstSkipped = at.StartedAt
			}
		}
	}
	if !reported {
		t.Errorf("no attack reported for the whitelisted %s in GET /api/v1/attacks", whitelisted)
	}
	if lastBanned.IsZero() || firstSkipped.IsZero() || firstSkipped.Before(lastBanned) {
		t.Errorf("the banned attacks started up to %v, the skipped ones from %v", lastBanned, firstSkipped)
	}
	if wl := hook.of("ban_skipped", "whitelist"); len(wl) != 1 || wl[0].IP == nil || *wl[0].IP != whitelisted {
		t.Errorf("whitelist ban_skipped events: %+v", wl)
	}
	if hook.bad > 0 {
		t.Errorf("%d webhook bodies did not decode", hook.bad)
	}
}

// TestBanExtensionRefreshesTimeout: while the flood goes on, the router
// entry's timeout= is set again (the remaining time goes back up, same
// entry), in whole seconds.
func TestBanExtensionRefreshesTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	emu := startRouterEmulator(t)
	env := routerEnv(emu, "address-list")
	env["FLOWSHIELD_BAN_TIME"] = "9s"
	a := startApplianceWith(t, env, Options{ReconcileInterval: 30 * time.Second})
	victim := netip.MustParseAddr("203.0.113.77")
	target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	floodErr := make(chan error, 1)
	// 200 records a second, so datagrams leave steadily, not in bursts.
	flood := hostFlood(victim, 60000, 0)
	flood.FlowsPerSecond = 200
	go func() {
		floodErr <- sendFloods(ctx, target, []flowgen.Flood{flood}, 14*time.Second)
	}()

	var samples []string
	// Sample for 10 s of attack: with BAN_TIME=9s and a refresh once the
	// router lags by a third of it, at least one refresh, and the entry
	// never runs out.
	id, prev, rises := "", time.Duration(-1), 0
	var firstSeen time.Time
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !firstSeen.IsZero() && time.Since(firstSeen) > 10*time.Second {
			break
		}
		o, ok := findObject(emu, routerostest.MenuAddressList, "address", victim)
		if !ok {
			if id != "" {
				t.Fatalf("the entry vanished during the attack; timeouts seen %v", samples)
			}
			continue
		}
		if id == "" {
			id, firstSeen = o.ID, time.Now()
		} else if o.ID != id {
			t.Fatalf("the entry was replaced (%s then %s) instead of refreshed", id, o.ID)
		}
		s := o.Props["timeout"]
		samples = append(samples, s)
		if strings.ContainsAny(s, ".:") || strings.Contains(s, "ms") {
			t.Errorf("timeout %q is not in whole seconds", s)
		}
		left, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("timeout %q: %v", s, err)
		}
		if left > 9*time.Second {
			t.Errorf("timeout %v above BAN_TIME", left)
		}
		if prev >= 0 && left > prev {
			rises++
		}
		prev = left
	}
	cancel()
	<-floodErr
	if id == "" {
		t.Fatal("no entry on the router")
	}
	if rises == 0 {
		t.Errorf("the entry's timeout never went back up while the attack went on: %v", samples)
	}
	t.Logf("timeouts seen: %s", fmt.Sprint(compact(samples)))
}

// compact drops repeated samples.
func compact(s []string) []string { return slices.Compact(slices.Clone(s)) }
