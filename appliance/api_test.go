package appliance

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/collector"
)

// apiCall makes one real HTTP request to the appliance and returns the
// status and body.
func apiCall(t *testing.T, a *Appliance, method, path, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+a.HTTPAddr().String()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAPIRoutes exercises every route of the contract over real HTTP, with
// live data from a flood sent through the collector: shapes, sorting,
// errors as JSON, and ban management.
func TestAPIRoutes(t *testing.T) {
	if testing.Short() {
		t.Skip("sends flows")
	}
	a := startTestAppliance(t, map[string]string{"FLOWSHIELD_WINDOW": "1s", "FLOWSHIELD_WHITELIST": "203.0.113.200/32"})
	victim := netip.MustParseAddr("203.0.113.66")
	if err := sendFlood(a.Collector().LocalAddr(collector.ProtocolNetFlow).String(), victim, 50000, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	var attackID string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && attackID == ""; time.Sleep(50 * time.Millisecond) {
		if at := a.Engine().Attacks(true); len(at) > 0 {
			attackID = at[0].ID
		}
	}
	if attackID == "" {
		t.Fatal("no attack detected")
	}

	type hostRow struct {
		IP        string   `json:"ip"`
		Direction string   `json:"direction"`
		PPS       *float64 `json:"pps"`
		BPS       *float64 `json:"bps"`
		Flows     *float64 `json:"flows"`
		UDPPPS    *float64 `json:"udp_pps"`
		SYNPPS    *float64 `json:"syn_pps"`
		FragPPS   *float64 `json:"frag_pps"`
	}
	code, body := apiCall(t, a, "GET", "/api/v1/hosts?direction=in&sort=pps&limit=5", "", "")
	var hosts []hostRow
	if code != 200 || json.Unmarshal([]byte(body), &hosts) != nil || len(hosts) == 0 {
		t.Fatalf("hosts: %d %s", code, body)
	}
	if hosts[0].IP != victim.String() || hosts[0].Direction != "in" || hosts[0].PPS == nil || *hosts[0].PPS <= 0 ||
		hosts[0].UDPPPS == nil || hosts[0].SYNPPS == nil || hosts[0].FragPPS == nil || hosts[0].BPS == nil || hosts[0].Flows == nil {
		t.Fatalf("hosts[0] = %+v (%s)", hosts[0], body)
	}
	if code, body = apiCall(t, a, "GET", "/api/v1/hosts?direction=out", "", ""); code != 200 || !strings.HasPrefix(body, "[") {
		t.Errorf("hosts out: %d %s", code, body)
	}

	code, body = apiCall(t, a, "GET", "/api/v1/hosts/"+victim.String(), "", "")
	if code != 200 || !strings.Contains(body, `"in":{`) || !strings.Contains(body, `"out":{`) {
		t.Errorf("host: %d %s", code, body)
	}

	code, body = apiCall(t, a, "GET", "/api/v1/attacks?active=true", "", "")
	var attacks []map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &attacks) != nil || len(attacks) != 1 {
		t.Fatalf("attacks: %d %s", code, body)
	}
	for _, k := range []string{"id", "scope", "ip", "group", "direction", "type", "protocol", "started_at", "ended_at", "peak_pps", "peak_bps", "banned"} {
		if _, ok := attacks[0][k]; !ok {
			t.Errorf("attack lacks %q: %s", k, body)
		}
	}
	if attacks[0]["scope"] != "host" || attacks[0]["ip"] != victim.String() || attacks[0]["ended_at"] != nil ||
		attacks[0]["type"] != "udp_flood" || attacks[0]["banned"] != false {
		t.Errorf("attack %v", attacks[0])
	}
	if _, err := time.Parse(time.RFC3339, attacks[0]["started_at"].(string)); err != nil || !strings.HasSuffix(attacks[0]["started_at"].(string), "Z") {
		t.Errorf("started_at %v: not RFC 3339 UTC", attacks[0]["started_at"])
	}

	var full map[string]any
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, body = apiCall(t, a, "GET", "/api/v1/attacks/"+attackID, "", "")
		if code != 200 || json.Unmarshal([]byte(body), &full) != nil {
			t.Fatalf("attack: %d %s", code, body)
		}
		if d, _ := full["details"].(string); d != "" {
			break
		}
	}
	details, _ := full["details"].(string)
	flows, _ := full["flows"].([]any)
	if !strings.Contains(details, "udp_flood") || len(flows) == 0 {
		t.Errorf("attack details %q, %d flows", details, len(flows))
	}

	// Bans: add, list, conflicts, remove, not found.
	code, body = apiCall(t, a, "POST", "/api/v1/bans", "", `{"prefix":"198.51.100.7","ttl":"1h","reason":"test","direction":"in"}`)
	if code != 201 || !strings.Contains(body, `"prefix":"198.51.100.7/32"`) {
		t.Fatalf("add ban: %d %s", code, body)
	}
	code, body = apiCall(t, a, "GET", "/api/v1/bans", "", "")
	if code != 200 || !strings.Contains(body, `"198.51.100.7/32"`) || !strings.Contains(body, `"expires_at"`) {
		t.Errorf("bans: %d %s", code, body)
	}
	if code, body = apiCall(t, a, "POST", "/api/v1/bans", "", `{"prefix":"203.0.113.200/32"}`); code != 409 {
		t.Errorf("whitelisted ban: %d %s", code, body)
	}
	if code, _ = apiCall(t, a, "DELETE", "/api/v1/bans/198.51.100.7%2F32", "", ""); code != 204 {
		t.Errorf("delete ban: %d", code)
	}
	if code, body = apiCall(t, a, "DELETE", "/api/v1/bans/198.51.100.7%2F32", "", ""); code != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("delete missing ban: %d %s", code, body)
	}

	// Errors are JSON with fitting codes.
	for _, c := range []struct {
		method, path, body string
		code               int
	}{
		{"GET", "/api/v1/hosts?direction=sideways", "", 400},
		{"GET", "/api/v1/hosts?sort=loudness", "", 400},
		{"GET", "/api/v1/hosts?limit=-3", "", 400},
		{"GET", "/api/v1/hosts/not-an-ip", "", 400},
		{"GET", "/api/v1/hosts/198.51.100.250", "", 404},
		{"GET", "/api/v1/attacks?active=maybe", "", 400},
		{"GET", "/api/v1/attacks/nope", "", 404},
		{"POST", "/api/v1/bans", `{"prefix":"nonsense"}`, 400},
		{"POST", "/api/v1/bans", `{"prefix":"198.51.100.8","ttl":"forever"}`, 400},
		{"POST", "/api/v1/bans", `{"prefix":"198.51.100.8","direction":"up"}`, 400},
		{"POST", "/api/v1/bans", `{not json`, 400},
		{"DELETE", "/api/v1/bans/garbage", "", 400},
		{"PUT", "/api/v1/bans", `{}`, 405},
		{"GET", "/api/v1/nothing", "", 404},
	} {
		code, body := apiCall(t, a, c.method, c.path, "", c.body)
		var e struct {
			Error string `json:"error"`
		}
		if code != c.code || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", c.method, c.path, code, body, c.code)
		}
	}
}

// TestAPIToken: with API_TOKEN every /api/ request needs the bearer token;
// the UI, /healthz and /metrics stay open.
func TestAPIToken(t *testing.T) {
	a := startTestAppliance(t, map[string]string{"FLOWSHIELD_API_TOKEN": "tok-123"})
	for _, path := range []string{"/api/v1/status", "/api/v1/hosts", "/api/v1/attacks", "/api/v1/bans"} {
		if code, _ := apiCall(t, a, "GET", path, "", ""); code != 401 {
			t.Errorf("GET %s without token: %d", path, code)
		}
		if code, _ := apiCall(t, a, "GET", path, "wrong", ""); code != 401 {
			t.Errorf("GET %s with a wrong token: %d", path, code)
		}
		if code, _ := apiCall(t, a, "GET", path, "tok-123", ""); code != 200 {
			t.Errorf("GET %s with the token: %d", path, code)
		}
	}
	if code, _ := apiCall(t, a, "POST", "/api/v1/bans", "", `{"prefix":"198.51.100.9"}`); code != 401 {
		t.Errorf("POST without token: %d", code)
	}
	if code, body := apiCall(t, a, "POST", "/api/v1/bans", "tok-123", `{"prefix":"198.51.100.9"}`); code != 201 {
		t.Errorf("POST with token: %d %s", code, body)
	}
	for _, path := range []string{"/", "/healthz", "/metrics"} {
		if code, _ := apiCall(t, a, "GET", path, "", ""); code != 200 {
			t.Errorf("GET %s: %d", path, code)
		}
	}
}
