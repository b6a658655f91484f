package main

import (
	"strings"
	"testing"
)

func TestRouterOSScript(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{name: "defaults", env: map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24"}, code: 0,
			stdout: []string{"# flowshield dev: RouterOS setup", `/user/add name="flowshield"`, `policy="api,read"`, "API password (generated"}},
		{name: "address-list without a router address", env: map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_ACTION": "address-list", "FLOWSHIELD_ROUTEROS_PASSWORD": "s3cret"},
			code: 0, stdout: []string{`dst-address-list="flowshield-in"`, `password="s3cret"`, `value=\"172.17.0.1:8728\"`}},
		{name: "flags", env: map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24"},
			args: []string{"-image", "usb1/fs.tar", "-container-address", "10.1.1.2/29", "-router-address", "10.1.1.1", "-root-dir", "usb1/x", "-ram-high", "1G", "-api-user", "fsapi", "-api-port", "18728"},
			code: 0, stdout: []string{`:local image "usb1/fs.tar"`, "address=10.1.1.2/29 gateway=10.1.1.1", `:local rootdir "usb1/x"`, "ram-high=1073741824", `/user/add name="fsapi"`, "dst-port=18728", `value=\"921MiB\"`}},
		{name: "bad env names the variable", env: map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_BAN_TIME": "forever"},
			code: 1, stderr: []string{`FLOWSHIELD_BAN_TIME="forever"`}},
		{name: "missing networks", env: map[string]string{}, code: 1, stderr: []string{"FLOWSHIELD_NETWORKS"}},
		{name: "netflow disabled", env: map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_NETFLOW_LISTEN": ""},
			code: 1, stderr: []string{"FLOWSHIELD_NETFLOW_LISTEN"}},
		{name: "admin networks", env: goodEnv, args: []string{"-admin", "192.168.88.0/24, 10.0.0.5"}, code: 0,
			stdout: []string{`/ip/firewall/address-list/add list="flowshield-admin" address="192.168.88.0/24" comment="flowshield-setup: admin"`,
				`/ip/firewall/address-list/add list="flowshield-admin" address="10.0.0.5" comment="flowshield-setup: admin"`,
				`src-address-list="!flowshield-admin"`, `value=\"172.17.0.1/32\"`}},
		{name: "bad admin network", env: goodEnv, args: []string{"-admin", "192.168.88.0/24,lan"}, code: 2, stderr: []string{`-admin "192.168.88.0/24,lan"`}},
		{name: "IPv6 admin network", env: goodEnv, args: []string{"-admin", "2001:db8::/64"}, code: 1, stderr: []string{"admin network 2001:db8::/64"}},
		{name: "uplinks", env: goodEnv, args: []string{"-uplinks", "ether1, sfp-sfpplus1"}, code: 0,
			stdout: []string{`/interface/list/add name="flowshield-uplinks"`,
				`/interface/list/member/add list="flowshield-uplinks" interface="ether1" comment="flowshield-setup: uplink"`,
				`/interface/list/member/add list="flowshield-uplinks" interface="sfp-sfpplus1" comment="flowshield-setup: uplink"`}},
		{name: "no uplinks: how to add them", env: goodEnv, code: 0,
			stdout: []string{`/interface/list/add name="flowshield-uplinks"`, "routeros-script -uplinks ether1 again"}},
		{name: "bad uplink", env: goodEnv, args: []string{"-uplinks", `ether1,e"x`}, code: 1, stderr: []string{`uplink interface "e\"x"`}},
		{name: "bad flag", env: goodEnv, args: []string{"-ram-high", "lots"}, code: 2, stderr: []string{`-ram-high "lots"`}},
		{name: "bad address", env: goodEnv, args: []string{"-router-address", "10.0.0.1"}, code: 1, stderr: []string{"router address 10.0.0.1"}},
		{name: "admin refused", env: goodEnv, args: []string{"-api-user", "admin"}, code: 1, stderr: []string{"API user admin"}},
		{name: "extra argument", env: goodEnv, args: []string{"x"}, code: 2, stderr: []string{`unexpected argument "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := invoke(t, tt.env, nil, append([]string{"routeros-script"}, tt.args...)...)
			if res.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", res.code, tt.code, res.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(res.stdout, s) {
					t.Errorf("stdout lacks %q", s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, res.stderr)
				}
			}
			if tt.code != 0 && res.stdout != "" {
				t.Errorf("a failure printed a script")
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{"268435456": 268435456, "256M": 256 << 20, "256MiB": 256 << 20, "1G": 1 << 30, "64KiB": 64 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "x", "1T", "-5M", "99999999999999999999"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
