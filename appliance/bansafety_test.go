package appliance

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/mitigation"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// The router's own addresses in the ban-safety tests: inside NETWORKS, as
// a router's LAN address in the protected /24 is.
const (
	routerAddrV4 = "203.0.113.1"
	routerAddrV6 = "2001:db8:1::1"
)

// startAddressedRouter is an emulated router holding routerAddrV4/24 and
// routerAddrV6/64 on its bridge, its flow export set up as the setup
// script does (1s timers, as the flow generator's records are).
func startAddressedRouter(t *testing.T) *routerostest.Server {
	t.Helper()
	emu := startRouterEmulator(t)
	if err := emu.SetTrafficFlow(map[string]string{"enabled": "yes", "active-flow-timeout": "1s", "inactive-flow-timeout": "1s"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ menu, address string }{
		{routerostest.MenuAddress, routerAddrV4 + "/24"}, {routerostest.MenuAddressV6, routerAddrV6 + "/64"},
	} {
		if _, err := emu.Seed(s.menu, map[string]string{"address": s.address, "interface": "bridge"}); err != nil {
			t.Fatal(err)
		}
	}
	return emu
}

// waitRouterAddressesRead waits for the daemon's first full pass on emu,
// which comes after it read the router's addresses.
func waitRouterAddressesRead(t *testing.T, emu *routerostest.Server) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); emu.CountCommands("/ip/firewall/raw/print") == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reconciliation on the router after 10s; commands %v", emu.Commands())
		}
	}
	if emu.CountCommands("/ip/address/print") == 0 || emu.CountCommands("/ipv6/address/print") == 0 {
		t.Fatalf("the router's addresses were not read before reconciling: %v", emu.Commands())
	}
}

// TestAPIBanSafety: manual bans through the real HTTP API against every
// ban-safety rule, the router's own addresses read from the emulator over
// the wire. A refused ban is 422 with {"error"} naming the rule and never
// reaches the router; a hostgroup's prefix outside NETWORKS is allowed.
func TestAPIBanSafety(t *testing.T) {
	emu := startAddressedRouter(t)
	env := routerEnv(emu, "raw-drop")
	// Loopback inside NETWORKS, so that the own-address rule refuses it.
	env["FLOWSHIELD_NETWORKS"] = "203.0.113.0/24,2001:db8:1::/48,127.0.0.0/24"
	env["FLOWSHIELD_HOSTGROUPS"] = "edge=100.64.0.0/24 pps=50000"
	a := startApplianceWith(t, env, Options{})
	waitRouterAddressesRead(t, emu)
	base := apiBase(a)

	tests := []struct {
		prefix, ttl string
		rule        mitigation.Rule // "" when allowed
	}{
		{"0.0.0.0/0", "", mitigation.RuleTooWide},
		{"::/0", "", mitigation.RuleTooWide},
		{"10.0.0.0/8", "", mitigation.RuleTooWide},
		{"203.0.113.0/23", "", mitigation.RuleTooWide},
		{"2001:db8:1::/60", "", mitigation.RuleTooWide},
		{"198.51.100.7/32", "", mitigation.RuleOutsideNetworks},
		{"2001:db8:2::7", "", mitigation.RuleOutsideNetworks},
		{routerAddrV4, "", mitigation.RuleRouterAddress},
		{"203.0.113.0/24", "", mitigation.RuleRouterAddress},
		{routerAddrV6, "", mitigation.RuleRouterAddress},
		{"2001:db8:1::/64", "", mitigation.RuleRouterAddress},
		{"127.0.0.1", "", mitigation.RuleOwnAddress},
		{"203.0.113.5", "8761h", mitigation.RuleTTL},
		{"203.0.113.5", "1500ms", mitigation.RuleTTL},
		{"203.0.113.5", "8760h", ""},
		{"203.0.113.128/25", "1h", ""},
		{"2001:db8:1:5::/64", "", ""},
		{"100.64.0.5", "", ""}, // a hostgroup's, outside NETWORKS
	}
	want := map[string]int{}
	for _, tt := range tests {
		body, _ := json.Marshal(map[string]string{"prefix": tt.prefix, "ttl": tt.ttl})
		code, resp := apiRequest(t, http.MethodPost, base+"/api/v1/bans", "", "", string(body))
		if tt.rule == "" {
			if code != http.StatusCreated {
				t.Errorf("ban of %s ttl %q: %d %s, want 201", tt.prefix, tt.ttl, code, resp)
				continue
			}
			p, _ := parseBanPrefix(tt.prefix)
			want[banKeyOf(p, "in")] = 1
			continue
		}
		var e map[string]string
		if code != http.StatusUnprocessableEntity || json.Unmarshal([]byte(resp), &e) != nil || len(e) != 1 ||
			!strings.Contains(e["error"], "rule "+string(tt.rule)) {
			t.Errorf("ban of %s ttl %q: %d %s, want 422 naming rule %s", tt.prefix, tt.ttl, code, resp, tt.rule)
		}
	}
	waitRouterMatches(t, emu, "raw-drop", 10*time.Second, func() map[string]int { return want })
	if got := a.Mitigator().Stats().Refused; got[mitigation.RuleTooWide] != 5 || got[mitigation.RuleRouterAddress] != 4 ||
		got[mitigation.RuleOutsideNetworks] != 2 || got[mitigation.RuleOwnAddress] != 1 || got[mitigation.RuleTTL] != 2 {
		t.Errorf("refusals per rule %v", got)
	}
}

// TestAPIRebinding: without a token, a write from a loopback client whose
// Host names another site (DNS rebinding) is refused with 403 over the
// daemon's real listener; loopback Hosts are accepted.
func TestAPIRebinding(t *testing.T) {
	a := startTestAppliance(t, nil)
	base := apiBase(a)
	tests := []struct {
		host, prefix string
		code         int
	}{
		{"attacker.example", "203.0.113.20", http.StatusForbidden},
		{"attacker.example:8080", "203.0.113.20", http.StatusForbidden},
		{"127.0.0.1:8080", "203.0.113.21", http.StatusCreated},
		{"[::1]:8080", "203.0.113.22", http.StatusCreated},
		{"localhost:8080", "203.0.113.23", http.StatusCreated},
	}
	for _, tt := range tests {
		code, body := apiRequest(t, http.MethodPost, base+"/api/v1/bans", tt.host, "", `{"prefix":"`+tt.prefix+`"}`)
		if code != tt.code {
			t.Errorf("POST with Host %s: %d %s, want %d", tt.host, code, body, tt.code)
		}
		if code == http.StatusForbidden && !strings.Contains(body, "loopback Host") {
			t.Errorf("POST with Host %s: %s does not say why", tt.host, body)
		}
	}
	if code, body := apiRequest(t, http.MethodDelete, base+"/api/v1/bans/"+url.PathEscape("203.0.113.21/32"), "attacker.example", "", ""); code != http.StatusForbidden {
		t.Errorf("DELETE with a foreign Host: %d %s", code, body)
	}
	bans := a.Mitigator().Bans()
	if len(bans) != 3 || bans[0].Prefix.String() != "203.0.113.21/32" {
		t.Errorf("bans %v, want the three loopback-Host ones", bans)
	}
}

// TestFloodOnRouterAddressNotBanned: through the daemon, with flows on the
// real wire and the emulated router: floods on the router's own IPv4 and
// IPv6 addresses are detected and reported but not banned (one ban_skipped
// webhook event each, reason router-address, no rule on the router), while
// a flood on a protected host is banned as before.
func TestFloodOnRouterAddressNotBanned(t *testing.T) {
	if testing.Short() {
		t.Skip("sends floods")
	}
	emu := startAddressedRouter(t)
	hook := newWebhookRecorder(t)
	env := routerEnv(emu, "raw-drop")
	env["FLOWSHIELD_THRESHOLD_PPS"] = "1000"
	env["FLOWSHIELD_WEBHOOK_URL"] = hook.srv.URL
	a := startApplianceWith(t, env, Options{})
	waitRouterAddressesRead(t, emu)
	base := apiBase(a)

	victim := netip.MustParseAddr("203.0.113.66")
	routerIPs := []netip.Addr{netip.MustParseAddr(routerAddrV4), netip.MustParseAddr(routerAddrV6)}
	var floods []flowgen.Flood
	for _, ip := range append([]netip.Addr{victim}, routerIPs...) {
		floods = append(floods, hostFlood(ip, 5000, 0))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	floodErr := make(chan error, 1)
	target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	go func() { floodErr <- sendFloods(ctx, target, floods, 20*time.Second) }()

	victimKey := banKeyOf(netip.PrefixFrom(victim, 32), "in")
	for deadline := time.Now().Add(15 * time.Second); routerBans(emu, "raw-drop")[victimKey] == 0 ||
		len(hook.of("ban_skipped", string(mitigation.RuleRouterAddress))) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: router %v, ban_skipped events %+v, attacks %+v", routerBans(emu, "raw-drop"), hook.of("ban_skipped", ""), a.Engine().Attacks(false))
		}
	}
	time.Sleep(2 * time.Second) // the floods go on: no second event, no late ban
	attacks := getAttacks(t, base)
	cancel()
	if err := <-floodErr; err != nil {
		t.Errorf("flood: %v", err)
	}

	if got := routerBans(emu, "raw-drop"); len(got) != 1 || got[victimKey] != 1 {
		t.Errorf("raw rules on the router %v, want only %s", got, victimKey)
	}
	skipped := map[string]int{}
	for _, e := range hook.of("ban_skipped", "") {
		if e.Reason != string(mitigation.RuleRouterAddress) || e.IP == nil {
			t.Errorf("unexpected ban_skipped %+v", e)
			continue
		}
		skipped[*e.IP]++
	}
	for _, ip := range routerIPs {
		if skipped[ip.String()] != 1 {
			t.Errorf("%s: %d ban_skipped events, want 1", ip, skipped[ip.String()])
		}
	}
	if n := len(hook.of("ban", "")); n != 1 {
		t.Errorf("%d ban events, want 1", n)
	}
	detected := map[string]bool{}
	for _, at := range attacks {
		if at.IP == nil {
			continue
		}
		detected[*at.IP] = at.Banned
	}
	for _, ip := range routerIPs {
		if banned, ok := detected[ip.String()]; !ok || banned {
			t.Errorf("attack on the router's %s: detected %v, banned %v; want detected, not banned", ip, ok, banned)
		}
	}
	if !detected[victim.String()] {
		t.Errorf("the attack on %s is not banned: %v", victim, detected)
	}
	if n := a.Mitigator().Stats().Refused[mitigation.RuleRouterAddress]; n != 2 {
		t.Errorf("Refused[router-address] = %d, want 2", n)
	}
}
