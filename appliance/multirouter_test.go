package appliance

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// usualBanLatency is the flood-to-router latency of one healthy router
// (README: 1.0–1.2 s with WINDOW=1s); a faulty router beside it must not
// push a healthy one past this bound.
const usualBanLatency = 2 * time.Second

// startRouters starts n emulated routers with the fault tests' credentials
// and a daemon banning on all of them with action.
func startRouters(t *testing.T, n int, action string) (*Appliance, []*routerostest.Server) {
	t.Helper()
	emus := make([]*routerostest.Server, n)
	addrs := make([]string, n)
	for i := range emus {
		emus[i] = startRouterEmulator(t)
		addrs[i] = emus[i].Addr()
	}
	env := routerEnv(emus[0], action)
	env["FLOWSHIELD_ROUTEROS_ADDRESS"] = strings.Join(addrs, ",")
	a := startApplianceWith(t, env, Options{})
	return a, emus
}

// floodAndMeasure floods victim and returns, per healthy router, the time
// from the first record sent to the ban's address-list entry on it.
func floodAndMeasure(t *testing.T, a *Appliance, healthy []*routerostest.Server, victim netip.Addr) []time.Duration {
	t.Helper()
	target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- sendFlood(target, victim, 60000, 3*time.Second) }()
	out := make([]time.Duration, len(healthy))
	for i, emu := range healthy {
		out[i] = waitObject(t, emu, routerostest.MenuAddressList, "address", victim, 10*time.Second, start)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return out
}

func checkLatencies(t *testing.T, what string, lat []time.Duration) {
	t.Helper()
	for i, l := range lat {
		t.Logf("%s: healthy router %d got the ban %v after the first flood record", what, i, l.Round(time.Millisecond))
		if l > usualBanLatency {
			t.Errorf("%s: healthy router %d got the ban after %v, past the usual %v", what, i, l, usualBanLatency)
		}
	}
}

// metricValue is the value of the series of name whose labels contain
// label, from the daemon's /metrics; -1 when absent.
func metricValue(t *testing.T, a *Appliance, name, label string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiBase(a)+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{([^}]*)\} (\S+)$`)
	sum, found := 0.0, false
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		if strings.Contains(m[1], label) {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// TestTwoRoutersOneStalled: a router that answers nothing (every command,
// login included, held) does not delay the other one's bans; when the
// stall ends it catches up with every ban.
func TestTwoRoutersOneStalled(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	a, emus := startRouters(t, 2, "address-list")
	healthy, stalled := emus[0], emus[1]
	waitConnected(t, a, 10*time.Second)
	stalled.Inject(routerostest.Fault{Kind: routerostest.Stall, Match: "/", Times: 1 << 20, Duration: time.Minute})
	want := func() map[string]int { return storedBanKeys(t, a) }

	for i, v := range []string{"203.0.113.71", "203.0.113.72"} {
		checkLatencies(t, "two routers, one stalled, flood "+strconv.Itoa(i+1), floodAndMeasure(t, a, []*routerostest.Server{healthy}, netip.MustParseAddr(v)))
	}
	waitRouterMatches(t, healthy, "address-list", 5*time.Second, want)
	// A stalled router acts on the one command it then holds the reply
	// of (as a slow RouterOS does): that may be one ban's add, no more.
	if n := len(routerBans(stalled, "address-list")); n > 1 {
		t.Fatalf("the stalled router holds %d bans, want at most the one it acted on before stalling", n)
	}

	// the held replies stay held: the client gives up on them (its call
	// timeout) and catches up on the reconnect
	stalled.ClearFaults()
	caughtUp := time.Now()
	waitRouterMatches(t, stalled, "address-list", 90*time.Second, want)
	t.Logf("two routers: the stalled router caught up %v after the stall ended", time.Since(caughtUp).Round(time.Millisecond))
	waitRouterMatches(t, healthy, "address-list", 5*time.Second, want)
}

// TestThreeRoutersFaults: three routers, one stalled, one refusing writes,
// and the healthy one restarted empty in the middle. Each flood's ban
// reaches the healthy router within the usual latency; the refusals show
// in the status and the metrics; the restarted router gets every ban back
// on reconnect; when the stall and the refusals end, those routers catch
// up, and every router holds exactly the stored bans.
func TestThreeRoutersFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	a, emus := startRouters(t, 3, "address-list")
	healthy, stalled, refusing := emus[0], emus[1], emus[2]
	waitConnected(t, a, 10*time.Second)
	stalled.Inject(routerostest.Fault{Kind: routerostest.Stall, Match: "/", Times: 1 << 20, Duration: time.Minute})
	refusing.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/add", Times: 1 << 20, Message: "failure: not enough permissions (9)"})
	want := func() map[string]int { return storedBanKeys(t, a) }

	checkLatencies(t, "three routers, flood 1", floodAndMeasure(t, a, []*routerostest.Server{healthy}, netip.MustParseAddr("203.0.113.81")))
	waitRouterMatches(t, healthy, "address-list", 5*time.Second, want)

	// the refusals are visible
	st := waitStatus(t, a, 10*time.Second, func(s api.Status) bool {
		return len(s.Routers) == 3 && strings.Contains(s.Routers[2].LastError, "not enough permissions") || routerRefused(s)
	})
	if !routerRefused(st) {
		t.Fatalf("the refusing router's errors are not in the status: %+v", st.Routers)
	}
	if v := metricValue(t, a, "flowshield_router_call_errors_total", refusing.Addr()); v < 1 {
		t.Fatalf("flowshield_router_call_errors_total for the refusing router: %v", v)
	}
	bans, err := getBans(apiBase(a))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bans {
		states := map[string]string{}
		for _, r := range b.Routers {
			states[r.Address] = r.State
		}
		if states[healthy.Addr()] != "active" || !strings.HasPrefix(states[refusing.Addr()], "error: ") || !strings.Contains(states[refusing.Addr()], "not enough permissions") {
			t.Fatalf("ban %s router states %v", b.Prefix, states)
		}
	}

	// the healthy router restarts with no configuration
	healthy.Wipe()
	back := time.Now()
	waitRouterMatches(t, healthy, "address-list", 15*time.Second, want)
	t.Logf("three routers: the router restarted empty got its bans back %v after the restart", time.Since(back).Round(time.Millisecond))
	checkLatencies(t, "three routers, flood 2 after the restart", floodAndMeasure(t, a, []*routerostest.Server{healthy}, netip.MustParseAddr("203.0.113.82")))

	// the held replies stay held: the client gives up on them (its call
	// timeout) and catches up on the reconnect
	stalled.ClearFaults()
	refusing.ClearFaults()
	caughtUp := time.Now()
	waitRouterMatches(t, stalled, "address-list", 90*time.Second, want)
	t.Logf("three routers: the stalled router caught up %v after the stall ended", time.Since(caughtUp).Round(time.Millisecond))
	waitRouterMatches(t, refusing, "address-list", 60*time.Second, want)
	t.Logf("three routers: the refusing router caught up %v after the refusals ended", time.Since(caughtUp).Round(time.Millisecond))
	waitRouterMatches(t, healthy, "address-list", 5*time.Second, want)
	if n := len(want()); n != 2 {
		t.Fatalf("%d bans stored, want 2", n)
	}
}

// routerRefused says whether the status shows the refusing router's error.
func routerRefused(s api.Status) bool {
	for _, r := range s.Routers {
		if strings.Contains(r.LastError, "not enough permissions") && r.CallErrors > 0 {
			return true
		}
	}
	return false
}
