package appliance

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// TestMetricsPassPromtool: the daemon's real /metrics, over HTTP, after a
// flood was banned on the emulated router with every sink and output
// configured (script, webhook, Graphite, push), passes Debian's `promtool
// check metrics` without a single remark: every family has HELP text and
// a TYPE, counters end in _total and nothing else does, units are base
// units. The trouble counters are there with the values the ban implies.
//
// It runs alone (not in parallel): /metrics is the process's global
// registry, and another test's daemon would add its own copies of every
// series.
func TestMetricsPassPromtool(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	promtool := needTool(t, "promtool")
	emu := startEmulator(t)
	// The setup script's drop rule of the address list: the ban manager
	// reads its counters (without it, each read is a router error).
	if _, err := emu.Seed(routerostest.MenuRaw, map[string]string{
		"chain": "prerouting", "action": "drop", "dst-address-list": "flowshield-in", "comment": "flowshield drop",
	}); err != nil {
		t.Fatal(err)
	}
	script, _ := notifyRecorder(t)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(sink.Close)
	graphite := silentServer(t).Addr().String() // accepts, never reads: a few KB fit
	a := startTestAppliance(t, map[string]string{
		"FLOWSHIELD_ACTION":            "address-list",
		"FLOWSHIELD_BAN_TIME":          "60s",
		"FLOWSHIELD_WINDOW":            "1s",
		"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
		"FLOWSHIELD_ROUTEROS_USER":     "flowshield",
		"FLOWSHIELD_ROUTEROS_PASSWORD": "s3cret-e2e",
		"FLOWSHIELD_NOTIFY_SCRIPT":     script,
		"FLOWSHIELD_WEBHOOK_URL":       sink.URL + "/hook",
		"FLOWSHIELD_METRICS_PUSH_URL":  sink.URL + "/api/v1/import/prometheus",
		"FLOWSHIELD_GRAPHITE_ADDRESS":  graphite,
	})
	victim := netip.MustParseAddr("203.0.113.77")
	target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	if err := sendFlood(target, victim, 60000, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	banned := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !banned; time.Sleep(20 * time.Millisecond) {
		_, banned = findObject(emu, routerostest.MenuAddressList, "address", victim)
	}
	if !banned {
		t.Fatalf("no ban of %s on the router", victim)
	}
	// The HTTP server's series: a read, and a write a browser made from
	// another site (refused).
	getStatus(t, a)
	req, err := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr().String()+"/api/v1/bans", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: %s, want 403", resp.Status)
	}
	// The webhook and Graphite work on their own goroutines: wait (a
	// bounded while) until both have done something.
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		body = scrape(t, a)
		sent, _ := sample(body, `flowshield_notify_sent_total{sink="webhook"}`)
		connected, _ := sample(body, "flowshield_graphite_connected")
		if sent >= 1 && connected == 1 || time.Now().After(deadline) {
			break
		}
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics on %d bytes of /metrics: %v\n%s", len(body), err, out)
	} else {
		t.Logf("promtool check metrics: %d bytes, %d families: exit 0, no remark", len(body), bytes.Count(body, []byte("# TYPE ")))
	}

	router := `{router="` + emu.Addr() + `"}`
	checks := []struct {
		series string
		ok     func(float64) bool
		want   string
	}{
		{"flowshield_bans_active", func(v float64) bool { return v == 1 }, "1"},
		{"flowshield_mitigation_bans_total", func(v float64) bool { return v == 1 }, "1"},
		{"flowshield_mitigation_router_calls_total", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"flowshield_mitigation_router_errors_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_mitigation_reconciles_total", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"flowshield_mitigation_events_dropped_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_mitigation_persist_errors_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_router_connected" + router, func(v float64) bool { return v == 1 }, "1"},
		{"flowshield_router_logins_total" + router, func(v float64) bool { return v == 1 }, "1"},
		{"flowshield_router_calls_total" + router, func(v float64) bool { return v >= 2 }, ">= 2 (list, add)"},
		{"flowshield_router_rejected_replies_total" + router, func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_hosts_tracked", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"flowshield_hosts_evicted_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_hosts_untracked", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_detect_untracked_records_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_detect_records_total", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"flowshield_attacks_unsampled_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_exporters_forgotten_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_collector_refused_datagrams_total", func(v float64) bool { return v == 0 }, "0"},
		{"flowshield_netflow_templates", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"flowshield_netflow_template_budget_bytes", func(v float64) bool { return v > 0 }, "> 0"},
		{`flowshield_notify_dropped_total{sink="script"}`, func(v float64) bool { return v == 0 }, "0"},
		{`flowshield_notify_sent_total{sink="webhook"}`, func(v float64) bool { return v >= 1 }, ">= 1"},
		{`flowshield_http_requests_total{route="/api/v1/status",code="200"}`, func(v float64) bool { return v >= 1 }, ">= 1"},
		{`flowshield_http_refused_total{reason="cross_origin"}`, func(v float64) bool { return v >= 1 }, ">= 1 (the counters are the process's)"},
		{"flowshield_graphite_connected", func(v float64) bool { return v == 1 }, "1"},
		{"process_open_fds", func(v float64) bool { return v > 0 }, "> 0"},
	}
	for _, c := range checks {
		v, ok := sample(body, c.series)
		if !ok {
			t.Errorf("/metrics has no %s", c.series)
			continue
		}
		if !c.ok(v) {
			t.Errorf("%s = %g, want %s", c.series, v, c.want)
		}
	}
	for _, typ := range []struct{ family, typ string }{
		{"flowshield_attacks_unsampled_total", "counter"},
		{"flowshield_exporters_forgotten_total", "counter"},
		{"flowshield_hostmetrics_render_seconds_total", "counter"},
	} {
		if !bytes.Contains(body, []byte("# TYPE "+typ.family+" "+typ.typ+"\n")) {
			t.Errorf("%s is not a %s", typ.family, typ.typ)
		}
	}

	// The status carries the router's counters too.
	s := getStatus(t, a)
	if len(s.Routers) != 1 {
		t.Fatalf("status routers: %+v", s.Routers)
	}
	if r := s.Routers[0]; r.Calls < 2 || r.Connects != 1 || r.CallErrors != 0 || r.RejectedReplies != 0 {
		t.Errorf("status router counters %+v, want calls >= 2, one connect, no errors", r)
	}
}

func scrape(t *testing.T, a *Appliance) []byte {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return body
}

// sample is the value of the series named exactly (labels included) in a
// Prometheus text exposition.
func sample(body []byte, series string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return v, err == nil
}
