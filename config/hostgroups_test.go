package config

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

func TestHostGroups(t *testing.T) {
	global := map[string]string{"FLOWSHIELD_THRESHOLD_UDP_PPS": "7", "FLOWSHIELD_BAN_TIME": "5m",
		"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1", "FLOWSHIELD_ROUTEROS_USER": "api"}
	tests := []struct {
		name  string
		value string
		want  []HostGroup // compared without the unexported field
		bad   []string    // problem line prefixes
	}{
		{name: "contract example",
			value: "web=203.0.113.0/25 pps=50000 mbps=2000; dns=198.51.100.53/32 udp_pps=100000; customers=198.51.100.0/24 group_mbps=800",
			want: []HostGroup{
				{Name: "web", Prefixes: prefixes("203.0.113.0/25"), Thresholds: detect.Thresholds{PPS: 50000, Mbps: 2000, Flows: 3500, UDPPPS: 7}},
				{Name: "dns", Prefixes: prefixes("198.51.100.53/32"), Thresholds: detect.Thresholds{PPS: 20000, Mbps: 1000, Flows: 3500, UDPPPS: 100000}},
				{Name: "customers", Prefixes: prefixes("198.51.100.0/24"), Thresholds: detect.Thresholds{PPS: 20000, Mbps: 1000, Flows: 3500, UDPPPS: 7}, GroupMbps: 800},
			}},
		{name: "every key, list with spaces, trailing ;",
			value: "  big = 10.0.0.0/8, 2001:db8::/32 pps=1 mbps=2 flows=3 tcp_pps=4 tcp_mbps=5 udp_pps=6 udp_mbps=7 icmp_pps=8 icmp_mbps=9 syn_pps=10 syn_mbps=11 frag_pps=12 frag_mbps=13 group_pps=14 group_mbps=15 group_flows=16 action=raw-drop,blackhole ban_time=1h ;",
			bad:   []string{`FLOWSHIELD_HOSTGROUPS="big" in entry 1: expected NAME=PREFIX`}},
		{name: "every key",
			value: "big=10.0.0.0/8, 2001:db8::/32 pps=1 mbps=2 flows=3 tcp_pps=4 tcp_mbps=5 udp_pps=6 udp_mbps=7 icmp_pps=8 icmp_mbps=9 syn_pps=10 syn_mbps=11 frag_pps=12 frag_mbps=13 group_pps=14 group_mbps=15 group_flows=16 action=raw-drop,address-list ban_time=1h;",
			want: []HostGroup{{Name: "big", Prefixes: prefixes("10.0.0.0/8", "2001:db8::/32"),
				Thresholds: detect.Thresholds{PPS: 1, Mbps: 2, Flows: 3, TCPPPS: 4, TCPMbps: 5, UDPPPS: 6, UDPMbps: 7, ICMPPPS: 8, ICMPMbps: 9, SYNPPS: 10, SYNMbps: 11, FragPPS: 12, FragMbps: 13},
				GroupPPS:   14, GroupMbps: 15, GroupFlows: 16, Actions: []routeros.Action{routeros.ActionRawDrop, routeros.ActionAddressList}, BanTime: time.Hour}}},
		{name: "empty", value: " ; ;", want: nil},
		{name: "unknown key", value: "web=203.0.113.0/25 ppss=5",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="ppss=5" in group "web": expected KEY=VALUE with KEY one of pps, mbps, flows,`}},
		{name: "bad value and bad mbps", value: "web=203.0.113.0/25 pps=lots mbps=2000000000",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="lots" in group "web": expected a whole number`,
				`FLOWSHIELD_HOSTGROUPS="2000000000" in group "web": expected megabits per second`}},
		{name: "key without value", value: "web=203.0.113.0/25 pps",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="pps" in group "web": expected KEY=VALUE`}},
		{name: "duplicate key", value: "web=203.0.113.0/25 pps=1 pps=2",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="pps=2" in group "web": expected each key once per group`}},
		{name: "duplicate name", value: "web=203.0.113.0/25; web=198.51.100.0/24",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="web" in group "web": expected each group name once`}},
		{name: "prefix in two groups", value: "a=203.0.113.0/25; b=203.0.113.0/25",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="203.0.113.0/25" in group "b": expected a prefix in one group only (it is also in "a")`}},
		{name: "no prefix", value: "web= pps=1",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="web=" in group "web": expected at least one prefix`}},
		{name: "bad prefix", value: "web=203.0.113.0/25,300.1.1.1",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="300.1.1.1" in group "web": expected an IP prefix`}},
		{name: "trailing comma in prefixes (env trap)", value: "web=203.0.113.0/25,",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="203.0.113.0/25," in group "web": expected a comma-separated list of IP prefixes`}},
		{name: "bad name", value: "we b=203.0.113.0/25",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="we" in entry 1: expected NAME=PREFIX`}},
		{name: "bad action", value: "web=203.0.113.0/25 action=nuke",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="nuke" in group "web": expected none, or a comma-separated list`}},
		{name: "bad ban time", value: "web=203.0.113.0/25 ban_time=10",
			bad: []string{`FLOWSHIELD_HOSTGROUPS="ban_time=10" in group "web": expected ban_time= a Go duration`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := withEnv(global)
			e["FLOWSHIELD_HOSTGROUPS"] = tt.value
			c, err := FromEnv(e)
			probs := problemsOf(t, err)
			if tt.bad != nil {
				if len(probs) != len(tt.bad) {
					t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tt.bad), err)
				}
				for i, b := range tt.bad {
					if !strings.HasPrefix(probs[i].String(), b) {
						t.Errorf("problem %d\n got %s\nwant %s...", i, probs[i], b)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := c.HostGroups.List
			for i := range got {
				got[i].given = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("groups:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDetectHostGroupsAndOverrides(t *testing.T) {
	e := withEnv(map[string]string{
		"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1", "FLOWSHIELD_ROUTEROS_USER": "api",
		"FLOWSHIELD_ACTION":     "address-list",
		"FLOWSHIELD_HOSTGROUPS": "web=203.0.113.0/25 pps=5 group_flows=9 action=blackhole ban_time=1m; dns=198.51.100.53 udp_pps=1",
	})
	c, err := FromEnv(e)
	if err != nil {
		t.Fatal(err)
	}
	got := c.DetectHostGroups()
	want := []detect.HostGroup{
		{Name: "web", Prefixes: prefixes("203.0.113.0/25"), Thresholds: detect.Thresholds{PPS: 5, Mbps: 1000, Flows: 3500}, GroupFlows: 9},
		{Name: "dns", Prefixes: prefixes("198.51.100.53/32"), Thresholds: detect.Thresholds{PPS: 20000, Mbps: 1000, Flows: 3500, UDPPPS: 1}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DetectHostGroups:\n got %+v\nwant %+v", got, want)
	}
	for addr, want := range map[string]string{"203.0.113.1": "web", "198.51.100.53": "dns", "::ffff:203.0.113.2": "web", "203.0.113.200": ""} {
		g, ok := c.HostGroupOf(netip.MustParseAddr(addr))
		if g.Name != want || ok != (want != "") {
			t.Errorf("HostGroupOf(%s) = %q %v, want %q", addr, g.Name, ok, want)
		}
	}
	if a := c.GroupActions("web"); !slices.Equal(a, []routeros.Action{routeros.ActionBlackhole}) {
		t.Errorf("web actions %v", a)
	}
	if a := c.GroupActions("dns"); !slices.Equal(a, []routeros.Action{routeros.ActionAddressList}) {
		t.Errorf("dns actions %v", a)
	}
	if d := c.GroupBanTime("web"); d != time.Minute {
		t.Errorf("web ban time %v", d)
	}
	if d := c.GroupBanTime(""); d != 10*time.Minute {
		t.Errorf("default ban time %v", d)
	}
}

func TestHostGroupOfLongestMatch(t *testing.T) {
	c, err := FromEnv(withEnv(map[string]string{"FLOWSHIELD_HOSTGROUPS": "wide=10.0.0.0/8; narrow=10.1.2.0/24; v6=2001:db8::/32"}))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"10.1.2.3": "narrow", "10.1.3.3": "wide", "2001:db8::1": "v6", "11.0.0.1": ""} {
		if g, _ := c.HostGroupOf(netip.MustParseAddr(addr)); g.Name != want {
			t.Errorf("HostGroupOf(%s) = %q, want %q", addr, g.Name, want)
		}
	}
}

// FuzzHostGroups: any HOSTGROUPS value either parses into groups with
// prefixes, or gives one-line problems; it never panics.
func FuzzHostGroups(f *testing.F) {
	for _, seed := range []string{
		"web=203.0.113.0/25 pps=50000 mbps=2000; dns=198.51.100.53/32 udp_pps=100000; customers=198.51.100.0/24 group_mbps=800",
		"a=10.0.0.0/8,2001:db8::/32 action=raw-drop,blackhole ban_time=1h", "=;;= =", "a=1.2.3.4/33 pps=-1", "a=, b=",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		groups, refused := parseHostGroups(value)
		for _, r := range refused.resolved(value, "a form") {
			p := Problem{Variable: EnvPrefix + "HOSTGROUPS", Value: r.Value, Where: r.Where, Expected: r.Expected}
			if strings.ContainsAny(p.Variable+p.Where+p.Expected, "\n") {
				t.Fatalf("problem spans lines: %q", p.String())
			}
		}
		if len(refused) == 0 {
			for _, g := range groups.List {
				if g.Name == "" || len(g.Prefixes) == 0 {
					t.Fatalf("group without name or prefix from %q: %+v", value, g)
				}
			}
		}
	})
}
