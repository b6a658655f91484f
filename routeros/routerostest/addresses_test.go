package routerostest

import (
	"strings"
	"testing"
)

// TestAddressMenus: /ip/address and /ipv6/address print as RouterOS 6
// and 7 do (address unmasked with its length, network computed for IPv4,
// actual-interface, flags), take Seed's dynamic flag and the API's add,
// and refuse a bad address.
func TestAddressMenus(t *testing.T) {
	for _, version := range []string{"7.18.2 (stable)", "6.49.18 (long-term)"} {
		t.Run(version, func(t *testing.T) {
			cfg := DefaultConfiguration()
			cfg.Version = version
			s := start(t, cfg)
			if _, err := s.Seed(MenuAddress, map[string]string{"address": "192.0.2.1/24", "interface": "ether1", "comment": "uplink"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Seed(MenuAddressV6, map[string]string{"address": "fe80::1/64", "interface": "ether1", "dynamic": "true"}); err != nil {
				t.Fatal(err)
			}
			for _, bad := range []struct{ menu, address string }{
				{MenuAddress, "2001:db8::1/64"}, {MenuAddressV6, "192.0.2.1/24"}, {MenuAddress, "192.0.2.1/40"}, {MenuAddress, "router"},
			} {
				if _, err := s.Seed(bad.menu, map[string]string{"address": bad.address, "interface": "ether1"}); err == nil {
					t.Errorf("%s took address %q", bad.menu, bad.address)
				}
			}
			c := dialRaw(t, s, true)
			rep := c.call("/ip/address/add", "=address=198.51.100.1", "=interface=bridge")
			if rep[len(rep)-1][0] != "!done" {
				t.Fatalf("add: %q", rep)
			}
			tests := []struct {
				menu string
				want []map[string]string
			}{
				{MenuAddress, []map[string]string{
					{".id": "*1", "address": "192.0.2.1/24", "network": "192.0.2.0", "interface": "ether1", "actual-interface": "ether1",
						"dynamic": "false", "disabled": "false", "invalid": "false", "comment": "uplink"},
					{".id": "*2", "address": "198.51.100.1/32", "network": "198.51.100.1", "interface": "bridge", "actual-interface": "bridge",
						"dynamic": "false", "disabled": "false", "invalid": "false"},
				}},
				{MenuAddressV6, []map[string]string{
					{".id": "*1", "address": "fe80::1/64", "interface": "ether1", "actual-interface": "ether1", "from-pool": "",
						"advertise": "true", "eui-64": "false", "no-dad": "false", "link-local": "true",
						"dynamic": "true", "disabled": "false", "invalid": "false"},
				}},
			}
			for _, tt := range tests {
				rep := c.call(tt.menu + "/print")
				var got []map[string]string
				for _, sen := range rep {
					if sen[0] != "!re" {
						continue
					}
					m := map[string]string{}
					for _, w := range sen[1:] {
						k, v, _ := strings.Cut(strings.TrimPrefix(w, "="), "=")
						m[k] = v
					}
					got = append(got, m)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("%s: %q", tt.menu, rep)
				}
				for i := range got {
					if len(got[i]) != len(tt.want[i]) {
						t.Errorf("%s item %d: %v, want %v", tt.menu, i, got[i], tt.want[i])
						continue
					}
					for k, v := range tt.want[i] {
						if got[i][k] != v {
							t.Errorf("%s item %d: %s=%q, want %q", tt.menu, i, k, got[i][k], v)
						}
					}
				}
			}
		})
	}
}
