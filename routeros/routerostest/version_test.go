package routerostest

import (
	"testing"
)

// TestVersionSyntax: each version refuses the other's blackhole words, as
// the real routers do, so a client using the wrong syntax fails a test;
// Upgrade converts the routes and traffic-flow targets.
func TestVersionSyntax(t *testing.T) {
	for _, tc := range []struct {
		name, version, menu string
		words               []string
		want                string // trap message, "" for success
	}{
		{"7 blackhole=yes", "7.18.2 (stable)", MenuRoute, []string{"=blackhole=yes"}, ""},
		{"7 type=blackhole", "7.18.2 (stable)", MenuRoute, []string{"=type=blackhole"}, "unknown parameter type"},
		{"7 v6 blackhole=yes", "7.18.2 (stable)", MenuRouteV6, []string{"=blackhole=yes"}, ""},
		{"6 type=blackhole", "6.49.18 (long-term)", MenuRoute, []string{"=type=blackhole"}, ""},
		{"6 blackhole=yes", "6.49.18 (long-term)", MenuRoute, []string{"=blackhole=yes"}, "unknown parameter blackhole"},
		{"6 v6 type=blackhole", "6.49.18 (long-term)", MenuRouteV6, []string{"=type=blackhole"}, "invalid value for argument type"},
		{"6 v6 type=unreachable", "6.49.18 (long-term)", MenuRouteV6, []string{"=type=unreachable"}, ""},
		{"6 v6 blackhole=yes", "6.49.18 (long-term)", MenuRouteV6, []string{"=blackhole=yes"}, "unknown parameter blackhole"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfiguration()
			cfg.Version = tc.version
			s := start(t, cfg)
			c := dialRaw(t, s, true)
			dst := "192.0.2.1/32"
			if tc.menu == MenuRouteV6 {
				dst = "2001:db8::1/128"
			}
			rep := c.call(append([]string{tc.menu + "/add", "=dst-address=" + dst}, tc.words...)...)
			if tc.want == "" {
				if rep[0][0] != "!done" {
					t.Fatalf("refused: %q", rep)
				}
				return
			}
			if rep[0][0] != "!trap" || attr(rep[0], "message") != tc.want {
				t.Fatalf("reply %q, want a trap %q", rep, tc.want)
			}
		})
	}
}

func TestUpgrade(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Version = "6.49.18 (long-term)"
	s := start(t, cfg)
	seedT(t, s, MenuRoute, map[string]string{"dst-address": "192.0.2.1/32", "type": "blackhole", "comment": "bh"})
	seedT(t, s, MenuRoute, map[string]string{"dst-address": "10.0.0.0/8", "gateway": "192.0.2.254", "routing-mark": "isp2"})
	seedT(t, s, MenuRouteV6, map[string]string{"dst-address": "2001:db8::1/128", "type": "unreachable"})
	seedT(t, s, MenuTrafficFlowTarget, map[string]string{"address": "172.17.0.2:2055", "version": "IPFIX"})
	seedT(t, s, MenuAddressList, map[string]string{"list": "l", "address": "192.0.2.9", "timeout": "10m"})
	check := func(version string, want map[string][]map[string]string) {
		t.Helper()
		s.Upgrade(version)
		for menu, objs := range want {
			got := s.Objects(menu)
			if len(got) != len(objs) {
				t.Fatalf("%s on %s: %v", menu, version, got)
			}
			for i, kv := range objs {
				for k, v := range kv {
					if got[i].Props[k] != v {
						t.Fatalf("%s on %s: %s=%q in %v, want %q", menu, version, k, got[i].Props[k], got[i].Props, v)
					}
				}
			}
		}
		c := dialRaw(t, s, true)
		if rep := c.call(MenuResource+"/print", "=.proplist=version"); attr(rep[0], "version") != version {
			t.Fatalf("version %q", rep)
		}
	}
	check("7.18.2 (stable)", map[string][]map[string]string{
		MenuRoute:             {{"blackhole": "true", "type": "", "comment": "bh"}, {"blackhole": "", "routing-mark": "", "routing-table": "main"}},
		MenuRouteV6:           {{"blackhole": "true"}},
		MenuTrafficFlowTarget: {{"dst-address": "172.17.0.2", "port": "2055", "address": "", "v9-template-timeout": "30m"}},
		MenuAddressList:       {}, // a reboot drops timed entries
	})
	check("6.49.18 (long-term)", map[string][]map[string]string{
		MenuRoute:             {{"type": "blackhole", "blackhole": ""}, {"type": "unicast"}},
		MenuRouteV6:           {{"type": "unreachable"}},
		MenuTrafficFlowTarget: {{"address": "172.17.0.2:2055", "dst-address": "", "v9-template-timeout": "00:30:00"}},
	})
}
