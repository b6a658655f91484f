package container

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// params are DefaultParams with a password and the changes of mutate.
func params(mutate func(*Params)) Params {
	p := DefaultParams()
	p.APIPassword = "secret"
	if mutate != nil {
		mutate(&p)
	}
	return p
}

func TestScriptConfigurations(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(*Params)
		want     []string // substrings of the script
		notWant  []string
		commands map[string]int // exact counts of some "/menu verb", payloads included
	}{
		{
			name: "address-list only",
			mutate: func(p *Params) {
				p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
				p.Actions = []string{"address-list"}
				p.APIUser, p.APIPassword = "fs", `p"a$s?w\d`
			},
			want: []string{`policy="api,read,write"`, `dst-address-list="flowshield-in"`, `src-address=172.17.0.1 version=IPFIX`,
				`password="p\"a\$s\?w\\d"`, `/user/add name="fs"`},
			notWant: []string{`src-address-list="flowshield-out"`, "/ipv6/firewall/raw", "RTBH", "API password (generated"},
			// 2 add lines a rule: the ban rule, then the container's
			// flows, HTTP and forged-address rules.
			commands: map[string]int{"/ip/firewall/raw add": 2 + 6, "/ipv6/firewall/raw add": 0, "/interface/veth add": 1, "/user add": 1},
		},
		{
			name: "raw-drop and blackhole, both directions",
			mutate: func(p *Params) {
				p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
				p.Actions = []string{"raw-drop", "blackhole"}
				p.BanDirections = []string{"in", "out"}
				p.PasswordGenerated = true
			},
			want:     []string{`policy="api,read,write"`, "API password (generated", "65535:666", "dst in 203.0.113.0/24 && dst-len == 32"},
			notWant:  []string{"address-list=\"flowshield-in", "address-list=\"flowshield-out"},
			commands: map[string]int{"/ip/firewall/raw add": 0 + 6, "/ip/firewall/filter add": 2},
		},
		{
			name:     "none",
			mutate:   func(p *Params) { p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")} },
			want:     []string{`policy="api,read"`, `/user/add name="flowshield"`, "GOMEMLIMIT", `value=\"230MiB\"`},
			notWant:  []string{"write", "flowshield-setup: drop ", "/ipv6/firewall/raw", "RTBH"},
			commands: map[string]int{"/ip/firewall/raw add": 0 + 6, "/user add": 1, "/user/group add": 1},
		},
		{
			name: "IPv6 networks, out direction, custom lists, flags",
			mutate: func(p *Params) {
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
			},
			want: []string{`/ipv6/firewall/raw/add chain=prerouting action=drop src-address-list="bad-hosts"`,
				`port=9995`, `:local rootdir "usb1/fs"`, `address=10.99.0.2/30 gateway=10.99.0.1`, `ram-high=536870912`,
				`value=\"460MiB\"`, `https://hooks.example/T0\\\?k=v`, `/user/add name="flowshield-api"`, `address=10.99.0.2/32`},
			notWant:  []string{"dst-address-list", "172.17.0"},
			commands: map[string]int{"/ip/firewall/raw add": 2 + 6, "/ipv6/firewall/raw add": 2},
		},
		{
			name: "the container's ports, defaults",
			want: []string{
				// The exports come from the router's veth address, the one
				// source the container takes flows from.
				`/ip/traffic-flow/target/add dst-address=172.17.0.2 port=2055 src-address=172.17.0.1 version=IPFIX`,
				`/ip/traffic-flow/target/set [find where dst-address=172.17.0.2 port=2055] src-address=172.17.0.1 `,
				`key=\"FLOWSHIELD_EXPORTERS\" value=\"172.17.0.1/32\"`,
				`/ip/firewall/raw/add chain=prerouting action=drop protocol=udp dst-address=172.17.0.2 dst-port=2055,6343 src-address-list="!flowshield-exporters" comment="flowshield-setup: flows to the container only from flowshield-exporters" place-before=[:pick $first 0]`,
				`/ip/firewall/raw/add chain=prerouting action=drop protocol=tcp dst-address=172.17.0.2 dst-port=8080 src-address-list="!flowshield-admin" comment="flowshield-setup: HTTP to the container only from flowshield-admin" place-before=[:pick $first 0]`,
				`/ip/firewall/raw/add chain=prerouting action=drop src-address=172.17.0.1 dst-address=172.17.0.2 comment="flowshield-setup: forged router address to the container" place-before=[:pick $first 0]`,
				`/ip/firewall/raw/set [find where comment="flowshield-setup: flows to the container only from flowshield-exporters"] protocol=udp dst-address=172.17.0.2 dst-port=2055,6343 src-address-list="!flowshield-exporters"`,
				`/ip/firewall/address-list/remove [find where list="flowshield-exporters" and comment="flowshield-setup: exporter"]` + "\n",
				`/ip/firewall/address-list/remove [find where list="flowshield-admin" and comment="flowshield-setup: admin"]` + "\n",
				`:if ([:len [/ip/firewall/address-list/find where list="flowshield-admin"]] = 0) do={`,
				`Web UI: http://172.17.0.2:8080/ (from the sources in flowshield-admin)`,
			},
			notWant:  []string{`/ip/firewall/address-list/add list="`, "Warning:"},
			commands: map[string]int{"/ip/firewall/raw add": 6, "/ip/firewall/raw set": 3, "/ip/firewall/address-list remove": 2, "/ip/firewall/address-list add": 0},
		},
		{
			name: "the container's ports, exporters and admin networks given",
			mutate: func(p *Params) {
				p.Exporters = []netip.Prefix{netip.MustParsePrefix("172.17.0.1/32"), netip.MustParsePrefix("10.0.0.2/32"),
					netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::2/128")}
				p.AdminNetworks = []netip.Prefix{netip.MustParsePrefix("192.168.88.0/24"), netip.MustParsePrefix("10.1.1.1/32")}
				p.NetflowPort, p.SFlowPort, p.HTTPPort = 9995, 6344, 9090
			},
			want: []string{
				`key=\"FLOWSHIELD_EXPORTERS\" value=\"172.17.0.1/32,10.0.0.2/32,198.51.100.0/24,2001:db8::2/128\"`,
				`/ip/firewall/address-list/remove [find where list="flowshield-exporters" and comment="flowshield-setup: exporter" and address!="10.0.0.2" and address!="198.51.100.0/24"]`,
				`/ip/firewall/address-list/add list="flowshield-exporters" address="10.0.0.2" comment="flowshield-setup: exporter"`,
				`/ip/firewall/address-list/add list="flowshield-exporters" address="198.51.100.0/24" comment="flowshield-setup: exporter"`,
				`/ip/firewall/address-list/remove [find where list="flowshield-admin" and comment="flowshield-setup: admin" and address!="192.168.88.0/24" and address!="10.1.1.1"]`,
				`/ip/firewall/address-list/add list="flowshield-admin" address="192.168.88.0/24" comment="flowshield-setup: admin"`,
				`/ip/firewall/address-list/add list="flowshield-admin" address="10.1.1.1" comment="flowshield-setup: admin"`,
				`protocol=udp dst-address=172.17.0.2 dst-port=9995,6344 src-address-list="!flowshield-exporters"`,
				`protocol=tcp dst-address=172.17.0.2 dst-port=9090 src-address-list="!flowshield-admin"`,
				`/ip/traffic-flow/target/add dst-address=172.17.0.2 port=9995 src-address=172.17.0.1 version=IPFIX`,
			},
			// The router's own address needs no entry (its exports never
			// pass prerouting), and the container has no IPv6.
			notWant:  []string{`address="172.17.0.1"`, `address="2001:db8`, "Warning:"},
			commands: map[string]int{"/ip/firewall/address-list add": 4, "/ip/firewall/address-list remove": 2},
		},
		{
			name: "exporters without the router, sFlow and web UI off",
			mutate: func(p *Params) {
				p.Exporters = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
				p.SFlowPort, p.HTTPPort = 0, 0
			},
			want: []string{
				`key=\"FLOWSHIELD_EXPORTERS\" value=\"10.0.0.0/24\"`,
				"# Warning: FLOWSHIELD_EXPORTERS=10.0.0.0/24 leaves out 172.17.0.1, where this router's flows come from",
				`protocol=udp dst-address=172.17.0.2 dst-port=2055 src-address-list="!flowshield-exporters"`,
			},
			notWant:  []string{`list="flowshield-admin"`, "only from flowshield-admin", "Web UI", "dst-port=2055,"},
			commands: map[string]int{"/ip/firewall/raw add": 4, "/ip/firewall/address-list add": 1, "/ip/firewall/address-list remove": 1},
		},
		{
			name:     "TLS",
			mutate:   func(p *Params) { p.APITLS, p.APIPort = true, 8729 },
			want:     []string{`name="api-ssl"`, "dst-port=8729", `value=\"172.17.0.1:8729\"`, `key=\"FLOWSHIELD_ROUTEROS_TLS\" value=\"true\"`},
			commands: map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Script(params(tt.mutate))
			if err != nil {
				t.Fatal(err)
			}
			r := checkScript(s)
			for _, p := range r.Problems {
				t.Error(p)
			}
			if r.Payloads < 10 {
				t.Errorf("only %d [:parse] payloads checked", r.Payloads)
			}
			checkContains(t, s, tt.want, tt.notWant)
			for c, n := range tt.commands {
				if r.Commands[c] != n {
					t.Errorf("%s: %d times, want %d", c, r.Commands[c], n)
				}
			}
			// Everything the script makes is the script's, never a ban.
			for _, m := range regexp.MustCompile(`comment=\\*"([^"\\]*)`).FindAllStringSubmatch(s, -1) {
				if !strings.HasPrefix(m[1], CommentPrefix) || strings.HasPrefix(m[1], "flowshield ") {
					t.Errorf("comment %q does not start with %s", m[1], CommentPrefix)
				}
			}
			if t.Failed() {
				t.Logf("script:\n%s", s)
			}
		})
	}
}

// checkContains fails t for each of want the script lacks and each of
// notWant it has.
func checkContains(t *testing.T, script string, want, notWant []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(script, w) {
			t.Errorf("script lacks %q", w)
		}
	}
	for _, w := range notWant {
		if strings.Contains(script, w) {
			t.Errorf("script has %q", w)
		}
	}
}

// The checker must catch what it is there to catch.
func TestCheckerCatches(t *testing.T) {
	tests := []struct {
		name, script, want string
	}{
		{"unguarded add", `/ip/address/add address=10.0.0.1/24 interface="x" comment="flowshield-setup: x"`, "not guarded"},
		{"guard on another menu", `:if ([:len [/ip/firewall/nat/find where comment="a"]] = 0) do={ /ip/address/add address=10.0.0.1/24 interface="x" }`, "not guarded"},
		{"add in the else branch", `:if ([:len [/ip/address/find where comment="a"]] = 0) do={ :put "x" } else={ /ip/address/add address=10.0.0.1/24 }`, "not guarded"},
		{"guard finds something else", `:if ([:len [/ip/address/find where comment="a"]] = 0) do={ /ip/address/add address=10.0.0.1/24 comment="b" }`, "a second run would add again"},
		{"guard not = 0", `:if ([:len [/ip/address/find where comment="a"]] > 0) do={ /ip/address/add address=10.0.0.1/24 }`, "not guarded"},
		{"unknown parameter", `/ip/traffic-flow/set enabled=yes cache-entries=1k`, "cache-entries=: parameter not in the allow-list"},
		{"unknown menu", `/system/reboot`, "not in the allow-list"},
		{"unknown scripting", `:execute "x"`, "not in the allow-list"},
		{"unbalanced", `:put [:len "x")`, "unbalanced"},
		{"unclosed", `{ :put "x"`, "unclosed"},
		{"unescaped dollar", `:put "a $ b"`, "bare $"},
		{"unescaped question mark", `:put "why?"`, "unescaped ?"},
		{"bad payload", `[[:parse "/ip/address/add address=1.2.3.4/24"]]`, "payload at line 1"},
		{"payload guard does not leak in", `:if ([:len [/ip/address/find where comment="a"]] = 0) do={ [[:parse "/ip/address/add address=1.2.3.4/24"]] }`, "not guarded"},
		{"unknown payload local", `[[:parse $nothing]]`, "no local holds"},
		{"where property", `:put [/user/find where group="full"]`, "where group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkScript(tt.script)
			if !strings.Contains(strings.Join(r.Problems, "\n"), tt.want) {
				t.Errorf("problems %q, want one with %q", r.Problems, tt.want)
			}
		})
	}
	ok := `:local p ":if ([:len [/ip/address/find where comment=\"a\"]] = 0) do={ /ip/address/add address=1.2.3.4/24 comment=\"a\" }"
[[:parse $p]]`
	if r := checkScript(ok); len(r.Problems) > 0 || r.Payloads != 1 || r.Commands["/ip/address add"] != 1 {
		t.Errorf("good script: %+v", r)
	}
}

// Values survive both levels of quoting: the script, then a payload.
func TestQuoting(t *testing.T) {
	for _, v := range []string{`plain`, `a"b`, `back\slash`, `$dollar`, `why?`, "tab\there", `mix\"$?\\`} {
		q := quote(v)
		got, n, err := decodeString(q)
		if err != nil || n != len(q) || got != v {
			t.Errorf("quote(%q) = %s: decodes to %q, %v", v, q, got, err)
		}
		payload := quotePayload(`:put ` + q + ` ` + sentinel + `outer` + sentinel)
		code, _, err := decodeString(payload)
		if err != nil {
			t.Fatalf("payload %s: %v", payload, err)
		}
		toks, err := tokenize(code)
		if err != nil || len(toks) != 3 || toks[1].text != v || toks[2].text != "VAR_outer" && toks[2].text != interpolated("outer") {
			// The sentinel becomes $outer, interpolated by the outer string.
			if !strings.HasSuffix(code, interpolated("outer")) {
				t.Errorf("payload of %q decodes to %q (%v)", v, code, err)
			}
		}
	}
}

func TestScriptRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Params)
		want   string
	}{
		{"router outside the network", func(p *Params) { p.RouterIP = netip.MustParseAddr("10.0.0.1") }, "router address"},
		{"IPv6 container", func(p *Params) { p.ContainerPrefix = netip.MustParsePrefix("fd00::2/64") }, "container address"},
		{"quote in image", func(p *Params) { p.ImageFile = `x".tar` }, "image file"},
		{"absolute root dir", func(p *Params) { p.RootDir = "/usb1" }, "root dir"},
		{"admin", func(p *Params) { p.APIUser = "admin" }, "API user admin"},
		{"tiny ram", func(p *Params) { p.RAMHigh = 1 << 20 }, "ram-high"},
		{"newline in env", func(p *Params) { p.Env = []Env{{"FLOWSHIELD_X", "a\nb"}} }, "control character"},
		{"bad env name", func(p *Params) { p.Env = []Env{{"A=B", "x"}} }, "env name"},
		{"bad action", func(p *Params) { p.Actions = []string{"drop"} }, "action \"drop\""},
		{"bad direction", func(p *Params) { p.Actions, p.BanDirections = []string{"address-list"}, []string{"both"} }, "ban direction"},
		{"IPv6 admin network", func(p *Params) { p.AdminNetworks = []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")} }, "admin network 2001:db8::/64"},
		{"admin networks without a web UI", func(p *Params) {
			p.HTTPPort, p.AdminNetworks = 0, []netip.Prefix{netip.MustParsePrefix("192.168.88.0/24")}
		}, "FLOWSHIELD_HTTP_LISTEN is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			p.APIPassword = "x"
			tt.mutate(&p)
			_, err := Script(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
}
