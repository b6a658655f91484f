package main

import (
	"strings"
	"testing"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/container"
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

func TestContainerParams(t *testing.T) {
	cfg, err := appliance.ConfigurationFromEnv(map[string]string{
		"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_WINDOW": "10s", "FLOWSHIELD_API_TOKEN": "tok",
		"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1:8728", "FLOWSHIELD_ROUTEROS_USER": "u", "FLOWSHIELD_DATA_DIR": "/var/lib/x",
		"FLOWSHIELD_ROUTEROS_TLS": "true", "FLOWSHIELD_ACTION": "address-list,blackhole", "FLOWSHIELD_BAN_DIRECTIONS": "in,out",
		"FLOWSHIELD_HOSTGROUPS": "web=203.0.113.0/25 pps=50000 mbps=2000 action=none; dns=203.0.113.53/32 udp_pps=100000",
		"FLOWSHIELD_WHITELIST":  "203.0.113.7", "FLOWSHIELD_WEBHOOK_URL": "https://hooks.example/a?b=c",
	})
	if err != nil {
		t.Fatal(err)
	}
	base := container.DefaultParams()
	base.APIUser = ""
	p, err := containerParams(cfg, base)
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
	for _, k := range []string{"FLOWSHIELD_ROUTEROS_ADDRESS", "FLOWSHIELD_DATA_DIR", "FLOWSHIELD_THRESHOLD_PPS", "FLOWSHIELD_ROUTEROS_PASSWORD"} {
		if _, ok := env[k]; ok {
			t.Errorf("env %s should be decided by the script or left at its default", k)
		}
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
	again, err := appliance.ConfigurationFromEnv(back)
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
