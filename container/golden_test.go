package container

import (
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite container/testdata/golden/*.rsc from the current Script")

// goldenCases are configurations whose whole script is kept under
// testdata/golden: any change to the script's text shows up as a diff there.
var goldenCases = []struct {
	name   string
	mutate func(*Params)
}{
	{"default", nil},
	{"address-list-only", func(p *Params) {
		p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		p.Actions = []string{"address-list"}
		p.APIUser, p.APIPassword = "fs", `p"a$s?w\d`
	}},
	{"raw-drop-blackhole-both-directions", func(p *Params) {
		p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		p.Actions = []string{"raw-drop", "blackhole"}
		p.BanDirections = []string{"in", "out"}
		p.PasswordGenerated = true
	}},
	{"none", func(p *Params) { p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")} }},
	{"ipv6-out-custom", func(p *Params) {
		p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/48")}
		p.Actions = []string{"address-list"}
		p.BanDirections = []string{"out"}
		p.ListOut = "bad-hosts"
		p.NetflowPort = 9995
		p.Env = []Env{{"FLOWSHIELD_WEBHOOK_URL", "https://hooks.example/T0?k=v"}}
		p.ImageFile = "usb1/flowshield-arm.tar"
		p.ContainerPrefix = netip.MustParsePrefix("10.99.0.2/30")
		p.RouterIP = netip.MustParseAddr("10.99.0.1")
		p.RootDir = "usb1/fs"
		p.RAMHigh = 512 << 20
		p.APIUser = "flowshield-api"
	}},
	{"tls", func(p *Params) { p.APITLS, p.APIPort = true, 8729 }},
	{"sample", func(p *Params) {
		p.APIPassword = "pa$s\"wo?rd"
		p.PasswordGenerated = true
		p.Actions = []string{"address-list", "blackhole"}
		p.BanDirections = []string{"in", "out"}
		p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/48")}
		p.Env = []Env{{"FLOWSHIELD_NETWORKS", "203.0.113.0/24,2001:db8::/48"}, {"FLOWSHIELD_WEBHOOK_URL", "https://x/y?a=$b"}}
		p.Uplinks = []string{"ether1", "sfp-sfpplus1"}
	}},
	{"ipv6-only-blackhole-all-actions", func(p *Params) {
		p.Version = ""
		p.Networks = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8:1::/48")}
		p.Actions = []string{"none", "address-list", "raw-drop", "blackhole"}
		p.BanDirections = []string{"out", "in"}
		p.ListIn, p.ListOut = "in list", `out"list$`
		p.HTTPPort = 0
		p.DNSServers = []netip.Addr{netip.MustParseAddr("2620:fe::fe")}
		p.Notes = []string{"note one", "note $two? \"quoted\""}
	}},
	{"special-characters-and-envs", func(p *Params) {
		p.Version = "v1.2.3-4-gabcdef"
		p.APIUser = "fs.api_user-1"
		p.APIPassword = "\\\"$?{}[]; \u00e9\u2603`'"
		p.PasswordGenerated = true
		p.RootDir = "disk1/a/b_c.d"
		p.DNSServers = []netip.Addr{netip.MustParseAddr("192.0.2.53")}
		p.HTTPPort = 9090
		p.Env = []Env{
			{"FLOWSHIELD_ROUTEROS_USER", "overridden-ignored"},
			{"FLOWSHIELD_SLACK_URL", `https://hooks.slack.com/services/T0/B0/X?y=$z&w="q"`},
			{"EMPTY", ""},
			{"UNICODE", "caf\u00e9 \u2603 \\ back"},
			{"FLOWSHIELD_SLACK_URL", "duplicate-ignored"},
			{"lower_case9", "{x}[y](z);"},
		}
		p.Notes = []string{"from /etc/flowshield.env"}
	}},
	{"small-network-no-networks", func(p *Params) {
		p.ContainerPrefix = netip.MustParsePrefix("192.168.88.250/29")
		p.RouterIP = netip.MustParseAddr("192.168.88.249")
		p.RAMHigh = 64 << 20
		p.APIPort = 18728
		p.NetflowPort = 6343
		p.Actions = []string{"address-list", "blackhole"}
		p.BanDirections = []string{"in", "out"}
	}},
}

// TestScriptGolden compares whole scripts with testdata/golden; regenerate
// after an intended change with go test ./container -run TestScriptGolden -update
// and review the diff.
func TestScriptGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Script(params(tc.mutate))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", tc.name+".rsc")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading the golden script (generate with -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("script differs from %s:\n%s", path, firstDifference(string(want), got))
			}
		})
	}
}

// firstDifference shows the first differing line of want and got.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return fmt.Sprintf("line %d:\nwant %s\ngot  %s", i+1, w[i], g[i])
		}
	}
	return fmt.Sprintf("want %d lines, got %d", len(w), len(g))
}

func TestFillRejects(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"unknown value", "a {{nothing}} b", "no such value"},
		{"unknown quoted value", "{{q nothing}}", "no such value"},
		{"unknown verb", "{{quote veth}}", "unknown verb"},
		{"too many words", "{{q veth x}}", "expected"},
		{"unclosed", "a {{veth b", "no closing"},
		{"missing payload", "{{parse no-such-payload}}", "no-such-payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := renderer{}.fill(tt.text, values{"veth": "v"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}

// Every payload file is used by the script: a leftover one would be edited
// in vain.
func TestPayloadsUsed(t *testing.T) {
	setup, err := fragment("setup")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(rscFiles, "rsc/payload")
	if err != nil || len(entries) == 0 {
		t.Fatalf("payloads: %v, %v", entries, err)
	}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".rsc")
		if !strings.Contains(setup, "{{parse "+name+"}}") && !strings.Contains(setup, "{{payload "+name+"}}") {
			t.Errorf("rsc/payload/%s is not used by rsc/setup.rsc", e.Name())
		}
	}
}
