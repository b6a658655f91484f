package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// TestCheckCommand runs `flowshield check` itself against the emulator
// (appliance tests what the router checks find): the exit code, the
// problem or warning on stderr, the password nowhere.
func TestCheckCommand(t *testing.T) {
	const password, wrong = "Pa55-check-secret", "Wrong-Secret-123"
	fast := map[string]string{"enabled": "yes", "active-flow-timeout": "1s", "inactive-flow-timeout": "1s"}
	slow := map[string]string{"enabled": "yes", "active-flow-timeout": "1m", "inactive-flow-timeout": "1m"}
	tests := []struct {
		name     string
		flow     map[string]string // the router's /ip/traffic-flow, with an IPFIX target; nil: a fresh router's
		password string
		code     int
		want     string // on stderr; ADDR stands for the router's address
	}{
		{"wrong password", fast, wrong, exitFailure, `router ADDR: login as "flowshield" failed`},
		{"right password", fast, password, exitOK, "RB5009UG+S+"},
		{"slow timers warn", slow, password, exitOK,
			`level=WARN msg="router ADDR: traffic-flow timers active-flow-timeout=1m inactive-flow-timeout=1m delay detection`},
		{"no flow export", nil, password, exitFailure, "router ADDR: traffic-flow is disabled and has no target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ecfg := routerostest.DefaultConfiguration()
			ecfg.User, ecfg.Password, ecfg.Group, ecfg.BoardName = "flowshield", password, "full", "RB5009UG+S+"
			emu := routerostest.New(ecfg)
			if tc.flow != nil {
				if err := emu.SetTrafficFlow(tc.flow); err != nil {
					t.Fatal(err)
				}
				if _, err := emu.Seed(routerostest.MenuTrafficFlowTarget, map[string]string{"dst-address": "172.17.0.2", "port": "2055", "version": "IPFIX"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := emu.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(emu.Stop)

			var out, errOut bytes.Buffer
			c := cli{
				environ: map[string]string{
					"FLOWSHIELD_NETWORKS":          "203.0.113.0/24",
					"FLOWSHIELD_ACTION":            "address-list",
					"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
					"FLOWSHIELD_ROUTEROS_USER":     "flowshield",
					"FLOWSHIELD_ROUTEROS_PASSWORD": tc.password,
					"FLOWSHIELD_LOG_LEVEL":         "debug",
				},
				stdout: &out, stderr: &errOut,
				checkRouters: appliance.CheckRouters,
			}
			if code := c.main(context.Background(), []string{"check"}); code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			if want := strings.ReplaceAll(tc.want, "ADDR", emu.Addr()); !strings.Contains(errOut.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, errOut.String())
			}
			if strings.Contains(out.String()+errOut.String(), tc.password) {
				t.Errorf("the password appears in the output:\nstdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			}
		})
	}
}
