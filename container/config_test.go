package container

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/flowshield/flowshield/config"
)

func TestContainerParams(t *testing.T) {
	cfg, err := config.FromEnv(map[string]string{
		"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_WINDOW": "10s", "FLOWSHIELD_API_TOKEN": "tok",
		"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1:8728", "FLOWSHIELD_ROUTEROS_USER": "u", "FLOWSHIELD_DATA_DIR": "/var/lib/x",
		"FLOWSHIELD_ROUTEROS_TLS": "true", "FLOWSHIELD_ACTION": "address-list,blackhole", "FLOWSHIELD_BAN_DIRECTIONS": "in,out",
		"FLOWSHIELD_HOSTGROUPS": "web=203.0.113.0/25 pps=50000 mbps=2000 action=none; dns=203.0.113.53/32 udp_pps=100000",
		"FLOWSHIELD_WHITELIST":  "203.0.113.7", "FLOWSHIELD_WEBHOOK_URL": "https://hooks.example/a?b=c",
		"FLOWSHIELD_EXPORTERS": "172.17.0.1,198.51.100.0/24", "FLOWSHIELD_SFLOW_LISTEN": ":6400",
	})
	if err != nil {
		t.Fatal(err)
	}
	base := DefaultParams()
	base.APIUser = ""
	p, err := paramsFrom(cfg, base)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, e := range p.Env {
		env[e.Key] = e.Value
	}
	if env["FLOWSHIELD_WINDOW"] != "10s" || env["FLOWSHIELD_API_TOKEN"] != "tok" || env["FLOWSHIELD_NETWORKS"] != "203.0.113.0/24" || env["FLOWSHIELD_ROUTEROS_TLS_INSECURE"] != "true" {
		t.Errorf("envs %v", env)
	}
	for _, k := range []string{"FLOWSHIELD_ROUTEROS_ADDRESS", "FLOWSHIELD_DATA_DIR", "FLOWSHIELD_THRESHOLD_PPS", "FLOWSHIELD_ROUTEROS_PASSWORD", "FLOWSHIELD_EXPORTERS"} {
		if _, ok := env[k]; ok {
			t.Errorf("env %s should be decided by the script or left at its default", k)
		}
	}
	if fmt.Sprint(p.Exporters) != "[172.17.0.1/32 198.51.100.0/24]" || p.SFlowPort != 6400 || p.NetflowPort != 2055 || p.HTTPPort != 8080 {
		t.Errorf("exporters %v, ports netflow %d sflow %d http %d", p.Exporters, p.NetflowPort, p.SFlowPort, p.HTTPPort)
	}
	if p.APIUser != "u" || !p.PasswordGenerated || len(p.APIPassword) != 24 || p.APIPort != 8729 || !p.APITLS {
		t.Errorf("user %q password %q generated %v port %d", p.APIUser, p.APIPassword, p.PasswordGenerated, p.APIPort)
	}
	// The envs give the container the same configuration, but for what the
	// script decides (the router connection, DATA_DIR).
	back := map[string]string{}
	for k, v := range env {
		back[k] = v
	}
	back["FLOWSHIELD_ROUTEROS_ADDRESS"], back["FLOWSHIELD_ROUTEROS_USER"] = "172.17.0.1:8729", p.APIUser
	back["FLOWSHIELD_EXPORTERS"] = exportersEnv(p)
	again, err := config.FromEnv(back)
	if err != nil {
		t.Fatalf("the envs do not load: %v", err)
	}
	before, after := cfg.Effective(), again.Effective()
	for i := range before {
		switch before[i].Name {
		case "FLOWSHIELD_ROUTEROS_ADDRESS", "FLOWSHIELD_DATA_DIR", "FLOWSHIELD_ROUTEROS_TLS", "FLOWSHIELD_ROUTEROS_TLS_INSECURE": // set by Script
			continue
		}
		if before[i].Value != after[i].Value {
			t.Errorf("%s: %q in the environment, %q in the container", before[i].Name, before[i].Value, after[i].Value)
		}
	}
	if strings.Join(p.Actions, ",") != "address-list,blackhole" || strings.Join(p.BanDirections, ",") != "in,out" {
		t.Errorf("actions %v directions %v", p.Actions, p.BanDirections)
	}
}

// TestScriptFromEnvironment: the router connection is the script's (no
// ROUTEROS_ADDRESS needed for a ban action), the configuration's warnings
// come back, and a problem gives no script.
func TestScriptFromEnvironment(t *testing.T) {
	base := DefaultParams()
	base.APIPassword = ""
	script, warnings, err := ScriptFromEnvironment(map[string]string{
		"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_ACTION": "filter", "FLOWSHIELD_ROUTEROS_PASSWORD": "s3cret",
		"FLOWSHIELD_EXPORTERS": "172.17.0.1", "FLOWSHIELD_THRESHOLD_PSS": "1",
	}, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`policy="api,read,write"`, `password="s3cret"`, `value=\"filter\"`, `value=\"172.17.0.1:8728\"`} {
		if !strings.Contains(script, want) {
			t.Errorf("the script lacks %s", want)
		}
	}
	if len(warnings) != 1 || warnings[0] != "unknown variable FLOWSHIELD_THRESHOLD_PSS is ignored" {
		t.Errorf("warnings %q", warnings)
	}
	script, _, err = ScriptFromEnvironment(map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_WINDOW": "5x"}, base)
	var cerr *config.Error
	if script != "" || !errors.As(err, &cerr) || cerr.Problems[0].Variable != "FLOWSHIELD_WINDOW" {
		t.Errorf("a bad WINDOW gives script %d bytes, error %v", len(script), err)
	}
}

// TestScriptFromEnvironmentExporters: the container takes flows from the
// operator's FLOWSHIELD_EXPORTERS as given, else from the router's address
// on the veth, with no warning that it is unset; a FLOWSHIELD_EXPORTERS that
// leaves the router out is warned of. The listen ports make the raw rules.
func TestScriptFromEnvironmentExporters(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		admin    []netip.Prefix
		want     []string
		notWant  []string
		warnings int
	}{
		{name: "unset", env: map[string]string{},
			want:    []string{`key=\"FLOWSHIELD_EXPORTERS\" value=\"172.17.0.1/32\"`, `dst-port=2055,6343 src-address-list="!flowshield-exporters"`, `dst-port=8080 src-address-list="!flowshield-admin"`},
			notWant: []string{`/ip/firewall/address-list/add list="`}},
		{name: "blank", env: map[string]string{"FLOWSHIELD_EXPORTERS": " "},
			want: []string{`key=\"FLOWSHIELD_EXPORTERS\" value=\"172.17.0.1/32\"`}},
		{name: "the operator's, with the router", env: map[string]string{"FLOWSHIELD_EXPORTERS": "10.0.0.0/24, 172.17.0.1"},
			want:    []string{`key=\"FLOWSHIELD_EXPORTERS\" value=\"10.0.0.0/24,172.17.0.1/32\"`, `/ip/firewall/address-list/add list="flowshield-exporters" address="10.0.0.0/24"`},
			notWant: []string{"Warning:"}},
		{name: "the operator's, without the router", env: map[string]string{"FLOWSHIELD_EXPORTERS": "10.0.0.0/24"},
			want:     []string{`key=\"FLOWSHIELD_EXPORTERS\" value=\"10.0.0.0/24\"`, "# Warning: FLOWSHIELD_EXPORTERS=10.0.0.0/24 leaves out 172.17.0.1"},
			warnings: 1},
		{name: "listen ports", env: map[string]string{"FLOWSHIELD_NETFLOW_LISTEN": "127.0.0.2:9995", "FLOWSHIELD_SFLOW_LISTEN": "", "FLOWSHIELD_HTTP_LISTEN": ""},
			want:    []string{`dst-port=9995 src-address-list="!flowshield-exporters"`},
			notWant: []string{`src-address-list="!flowshield-admin"`}},
		{name: "admin networks", env: map[string]string{}, admin: []netip.Prefix{netip.MustParsePrefix("192.168.88.0/24")},
			want: []string{`/ip/firewall/address-list/add list="flowshield-admin" address="192.168.88.0/24" comment="flowshield-setup: admin"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_ROUTEROS_PASSWORD": "s3cret"}
			for k, v := range tt.env {
				env[k] = v
			}
			base := DefaultParams()
			base.AdminNetworks = tt.admin
			script, warnings, err := ScriptFromEnvironment(env, base)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings %q, want %d", warnings, tt.warnings)
			}
			for _, w := range warnings {
				if !strings.Contains(w, "leaves out 172.17.0.1") {
					t.Errorf("warning %q", w)
				}
			}
			checkContains(t, script, tt.want, tt.notWant)
		})
	}
}
