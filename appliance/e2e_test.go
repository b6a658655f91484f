package appliance

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// notifyRecorder is a NOTIFY_SCRIPT that appends its arguments, one call a
// line, to a file.
func notifyRecorder(t *testing.T) (script, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	script = filepath.Join(dir, "notify.sh")
	body := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\necho \"$1 $2 $3 $4\" >> %s\n", log)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, log
}

func startEmulator(t *testing.T) *routerostest.Server {
	t.Helper()
	cfg := routerostest.DefaultConfiguration()
	cfg.User, cfg.Password = "flowshield", "s3cret-e2e"
	emu := routerostest.New(cfg)
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	return emu
}

// sendFlood sends a UDP flood at pps to victim for d as RouterOS v9 and
// returns when it is sent. It may run on its own goroutine: it reports
// instead of failing the test.
func sendFlood(target string, victim netip.Addr, pps uint64, d time.Duration) error {
	sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{
		Seed: 3,
		Floods: []flowgen.Flood{{
			Kind: flowgen.FloodUDP, Target: netip.PrefixFrom(victim, victim.BitLen()),
			PPS: pps, FlowsPerSecond: 200, Sources: 300,
		}},
	})
	if err != nil {
		return err
	}
	scfg := flowgen.DefaultSenderConfiguration()
	scfg.Target = target
	scfg.Encoder.Format = flowgen.FormatRouterOSV9
	scfg.Duration = d
	s, err := flowgen.NewSender(scfg, sc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	if _, err := s.Run(ctx); err != nil {
		return fmt.Errorf("sending flows: %w", err)
	}
	return nil
}

// findObject returns the emulator's flowshield object for victim in menu.
func findObject(emu *routerostest.Server, menu, key string, victim netip.Addr) (routerostest.Object, bool) {
	for _, o := range emu.Objects(menu) {
		addr := o.Props[key]
		if addr == victim.String() || strings.HasPrefix(addr, victim.String()+"/") {
			if strings.HasPrefix(o.Props["comment"], "flowshield ") {
				return o, true
			}
		}
	}
	return routerostest.Object{}, false
}

// TestEndToEndBanOnRouter: flows of a UDP flood from the project's flow
// generator into the daemon with each ACTION against the RouterOS emulator;
// the object appears with the right place, comment and timeout, is gone
// after the flood stops and BAN_TIME passes, and the notify script saw ban
// then unban. Prints the latency from the first flood record to the object
// on the router.
func TestEndToEndBanOnRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	cases := []struct {
		action, menu, key string
		victim            string
	}{
		{"address-list", routerostest.MenuAddressList, "address", "203.0.113.66"},
		{"raw-drop", routerostest.MenuRaw, "dst-address", "203.0.113.67"},
		{"blackhole", routerostest.MenuRoute, "dst-address", "203.0.113.68"},
		{"address-list", "/ipv6/firewall/address-list", "address", "2001:db8:1::66"},
	}
	for _, tc := range cases {
		t.Run(tc.action+"-"+tc.victim, func(t *testing.T) {
			t.Parallel()
			emu := startEmulator(t)
			script, calls := notifyRecorder(t)
			a := startTestAppliance(t, map[string]string{
				"FLOWSHIELD_ACTION":            tc.action,
				"FLOWSHIELD_BAN_TIME":          "3s",
				"FLOWSHIELD_WINDOW":            "1s",
				"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
				"FLOWSHIELD_ROUTEROS_USER":     "flowshield",
				"FLOWSHIELD_ROUTEROS_PASSWORD": "s3cret-e2e",
				"FLOWSHIELD_NOTIFY_SCRIPT":     script,
			})
			victim := netip.MustParseAddr(tc.victim)
			target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()

			// Wait for the router connection so the latency measures
			// detection and mitigation, not the first login.
			deadline := time.Now().Add(10 * time.Second)
			for !a.routers[0].Connected() && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			start := time.Now()
			floodDone := make(chan struct{})
			go func() {
				defer close(floodDone)
				if err := sendFlood(target, victim, 60000, 6*time.Second); err != nil {
					t.Error(err)
				}
			}()
			var obj routerostest.Object
			var found bool
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if obj, found = findObject(emu, tc.menu, tc.key, victim); found {
					break
				}
			}
			latency := time.Since(start)
			if !found {
				t.Fatalf("no %s object for %s on the router after 10s; menu holds %+v", tc.action, victim, emu.Objects(tc.menu))
			}
			t.Logf("%s %s: first flood record sent to object on the router: %v", tc.action, victim, latency.Round(time.Millisecond))
			if latency > 2*time.Second {
				t.Errorf("latency %v above the 2s goal", latency)
			}
			if c := obj.Props["comment"]; !strings.Contains(c, "udp_flood") {
				t.Errorf("comment %q does not name the attack type", c)
			}
			switch tc.action {
			case "address-list":
				if obj.Props["list"] != "flowshield-in" {
					t.Errorf("list %q", obj.Props["list"])
				}
				if obj.Props["timeout"] == "" {
					t.Errorf("address-list entry without timeout: %+v", obj.Props)
				}
			case "raw-drop":
				if obj.Props["chain"] != "prerouting" || obj.Props["action"] != "drop" {
					t.Errorf("raw rule %+v", obj.Props)
				}
			case "blackhole":
				if obj.Props["blackhole"] != "true" && obj.Props["blackhole"] != "yes" {
					t.Errorf("route %+v is not a blackhole", obj.Props)
				}
			}
			<-floodDone
			// The attack ends after the detector's hysteresis, then the
			// ban runs out: the object must go.
			gone := false
			for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if _, still := findObject(emu, tc.menu, tc.key, victim); !still {
					gone = true
					break
				}
			}
			if !gone {
				t.Fatalf("the %s object for %s is still on the router", tc.action, victim)
			}
			var log []byte
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				log, _ = os.ReadFile(calls)
				if strings.Contains(string(log), " unban") {
					break
				}
			}
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			var banAt, unbanAt = -1, -1
			for i, l := range lines {
				f := strings.Fields(l)
				if len(f) != 4 || f[0] != victim.String() || f[1] != "incoming" {
					continue
				}
				switch f[3] {
				case "ban":
					if banAt < 0 {
						banAt = i
					}
				case "unban":
					unbanAt = i
				}
			}
			if banAt < 0 || unbanAt < banAt {
				t.Fatalf("notify script calls %q: want ban then unban for %s", lines, victim)
			}
		})
	}
}
