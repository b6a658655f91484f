package appliance

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// routerPath is the emulated router on the traffic's way: each second's
// traffic crosses its raw prerouting rules and routes (Forward) before the
// exporter's cache sees it, so a ban that works removes the flood from the
// exports and counts on the rule that dropped it, as on a real router.
func routerPath(emu *routerostest.Server) func(f *flowgen.Flow) bool {
	return func(f *flowgen.Flow) bool {
		rate := uint64(max(f.SamplingRate, 1))
		return emu.Forward(routerostest.Packet{
			Src: f.Src, Dst: f.Dst, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort,
			TCPFlags: f.TCPFlags, Fragment: f.Fragment, Packets: f.Packets * rate, Bytes: f.Bytes * rate,
		}).Dropped
	}
}

// firstExport notes when a flow of victim's first leaves the exporter
// (the sender sends a second's records right after asking for them).
type firstExport struct {
	inner  flowgen.Source
	victim netip.Addr
	at     atomic.Int64
}

func (s *firstExport) Second(dst []flowgen.Flow, index int, start time.Time) []flowgen.Flow {
	n := len(dst)
	dst = s.inner.Second(dst, index, start)
	if s.at.Load() == 0 {
		for _, f := range dst[n:] {
			if f.Dst == s.victim {
				s.at.Store(time.Now().UnixNano())
				break
			}
		}
	}
	return dst
}

// seedListDropRules adds the setup script's raw rules that drop the
// address lists (container/script.go makes the same).
func seedListDropRules(t *testing.T, emu *routerostest.Server) {
	t.Helper()
	for _, r := range []map[string]string{
		{"chain": "prerouting", "action": "drop", "dst-address-list": "flowshield-in", "comment": "flowshield-setup: drop in flowshield-in"},
		{"chain": "prerouting", "action": "drop", "src-address-list": "flowshield-out", "comment": "flowshield-setup: drop out flowshield-out"},
	} {
		if _, err := emu.Seed(routerostest.MenuRaw, r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExportTimersOnTheWire: floods through the real wire from flowgen's
// exporter model at the timers operators run, into the daemon, banning on
// the emulated router, which drops the banned traffic before the export
// and counts it. Each flood is detected and banned within 2 s of its first
// exported record, with the right type, stays one attack with one unbroken
// ban while it goes on (the ban's drop counters keep it on once the flows
// go silent), and ends after it stops; the busy server and the background
// (long flows cut by the active timeout) are never flagged.
func TestExportTimersOnTheWire(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end, minutes of real time")
	}
	cases := []struct {
		name        string
		timers      flowgen.Timers
		format      flowgen.Format
		action      string
		menu, key   string
		flood       flowgen.Flood
		typ         string
		stop, total time.Duration // flood stops, sender stops
	}{
		{"1s-1s/udp/v5/raw-drop", flowgen.Timers{Active: time.Second, Inactive: time.Second}, flowgen.FormatNetFlowV5,
			"raw-drop", routerostest.MenuRaw, "dst-address",
			flowgen.Flood{Kind: flowgen.FloodUDP, PPS: 100000, FlowsPerSecond: 200}, "udp_flood", 30 * time.Second, 35 * time.Second},
		{"1m-15s/syn/v9/address-list", flowgen.Timers{Active: time.Minute, Inactive: 15 * time.Second}, flowgen.FormatRouterOSV9,
			"address-list", routerostest.MenuAddressList, "address",
			flowgen.Flood{Kind: flowgen.FloodSYN, PPS: 100000, FlowsPerSecond: 200}, "syn_flood", 45 * time.Second, 65 * time.Second},
		{"1m-1m/udp/v9/address-list", flowgen.Timers{Active: time.Minute, Inactive: time.Minute}, flowgen.FormatNetFlowV9,
			"address-list", routerostest.MenuAddressList, "address",
			flowgen.Flood{Kind: flowgen.FloodUDP, PPS: 100000, FlowsPerSecond: 200}, "udp_flood", 80 * time.Second, 130 * time.Second},
		{"30m-15s/syn/ipfix/raw-drop", flowgen.Timers{Active: 30 * time.Minute, Inactive: 15 * time.Second}, flowgen.FormatRouterOSIPFIX,
			"raw-drop", routerostest.MenuRaw, "dst-address",
			flowgen.Flood{Kind: flowgen.FloodSYN, PPS: 100000, FlowsPerSecond: 200}, "syn_flood", 45 * time.Second, 65 * time.Second},
		{"1m-15s/dns-long/ipfix/raw-drop", flowgen.Timers{Active: time.Minute, Inactive: 15 * time.Second}, flowgen.FormatIPFIX,
			"raw-drop", routerostest.MenuRaw, "dst-address",
			flowgen.Flood{Kind: flowgen.FloodDNSAmp, PPS: 100000, FlowsPerSecond: 100, Persistent: true}, "dns_amplification", 100 * time.Second, 120 * time.Second},
	}
	// The cases spend minutes waiting on real time, at a few hundred
	// records a second each: they all run at once, whatever -parallel (a
	// subtest may be run from several goroutines; they return before the
	// test does), while the test itself runs beside the package's others.
	t.Parallel()
	var all sync.WaitGroup
	defer all.Wait()
	for i, tc := range cases {
		all.Add(1)
		go t.Run(tc.name, func(t *testing.T) {
			defer all.Done()
			emu := startEmulator(t)
			seedListDropRules(t, emu)
			// the emulated router says what its exports do
			if err := emu.SetTrafficFlow(map[string]string{
				"active-flow-timeout":   routeros.FormatDuration(tc.timers.Active),
				"inactive-flow-timeout": routeros.FormatDuration(tc.timers.Inactive),
			}); err != nil {
				t.Fatal(err)
			}
			a := startTestAppliance(t, map[string]string{
				"FLOWSHIELD_ACTION":            tc.action,
				"FLOWSHIELD_BAN_TIME":          "5s",
				"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
				"FLOWSHIELD_ROUTEROS_USER":     "flowshield",
				"FLOWSHIELD_ROUTEROS_PASSWORD": "s3cret-e2e",
			})
			victim := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})
			busy := netip.MustParseAddr("203.0.113.200")
			fl := tc.flood
			fl.Target, fl.StartAt, fl.StopAt = netip.PrefixFrom(victim, 32), time.Second, tc.stop
			sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{
				Seed: uint64(7 + i),
				Background: &flowgen.Background{
					Prefix: netip.MustParsePrefix("203.0.113.128/26"), Hosts: 40, FlowsPerSecond: 150,
					LongFlowShare: 0.05, StreamLongFlows: true,
				},
				Floods: []flowgen.Flood{fl,
					// a busy server at 70 % of the pps threshold, in long flows
					{Kind: flowgen.FloodTCP, Target: netip.PrefixFrom(busy, 32), PPS: 14000, FlowsPerSecond: 100, Persistent: true}},
			})
			if err != nil {
				t.Fatal(err)
			}
			timed, err := flowgen.NewTimedSource(flowgen.NewDropSource(sc, routerPath(emu)), tc.timers)
			if err != nil {
				t.Fatal(err)
			}
			src := &firstExport{inner: timed, victim: victim}
			scfg := flowgen.DefaultSenderConfiguration()
			scfg.Target = a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
			scfg.Encoder.Format = tc.format
			scfg.Duration = tc.total
			s, err := flowgen.NewSender(scfg, src)
			if err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); !a.routers[0].Connected() && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			start := time.Now()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), tc.total+10*time.Second)
				defer cancel()
				if _, err := s.Run(ctx); err != nil {
					t.Errorf("sending: %v", err)
				}
			}()
			defer wg.Wait()

			// Watch the router: the ban appears, and stays while the flood goes on.
			var bannedAt, goneAt time.Time
			var gaps []string
			for deadline := start.Add(tc.total + 60*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				_, on := findObject(emu, tc.menu, tc.key, victim)
				now := time.Now()
				switch {
				case on && bannedAt.IsZero():
					bannedAt = now
				case !on && !bannedAt.IsZero() && goneAt.IsZero():
					goneAt = now
					if now.Sub(start) < tc.stop {
						gaps = append(gaps, fmt.Sprintf("ban gone at %v while the flood goes on", now.Sub(start).Round(100*time.Millisecond)))
					}
				case on && !goneAt.IsZero():
					gaps = append(gaps, fmt.Sprintf("banned again at %v", now.Sub(start).Round(100*time.Millisecond)))
					goneAt = time.Time{}
				}
				if !goneAt.IsZero() && now.Sub(start) > tc.stop {
					break
				}
			}
			first := time.Unix(0, src.at.Load())
			if bannedAt.IsZero() || src.at.Load() == 0 {
				t.Fatalf("no ban on the router (first flood record exported: %v)", src.at.Load() != 0)
			}
			latency := bannedAt.Sub(first)
			t.Logf("%s: first flood record exported %v after the start, ban on the router %v later; ban gone %v after the flood stopped",
				tc.name, first.Sub(start).Round(10*time.Millisecond), latency.Round(10*time.Millisecond), goneAt.Sub(start.Add(tc.stop)).Round(100*time.Millisecond))
			if latency > 2*time.Second {
				t.Errorf("ban %v after the first flood record, want within 2 s", latency)
			}
			for _, g := range gaps {
				t.Error(g)
			}
			if goneAt.IsZero() {
				t.Errorf("the ban is still on the router %v after the flood stopped", time.Since(start.Add(tc.stop)).Round(time.Second))
			}
			var mine []detect.Attack
			for _, at := range a.Engine().Attacks(false) {
				if at.IP == victim {
					mine = append(mine, at)
				} else {
					t.Errorf("false alarm: %s on %v", at.Type, at.IP)
				}
			}
			if len(mine) != 1 {
				t.Fatalf("%d attacks on the victim, want 1: %+v", len(mine), mine)
			}
			if mine[0].Type != tc.typ {
				t.Errorf("attack typed %s, want %s", mine[0].Type, tc.typ)
			}
			if mine[0].EndedAt.IsZero() || mine[0].EndedAt.Before(start.Add(tc.stop)) {
				t.Errorf("attack ended at %v, the flood stopped at %v", mine[0].EndedAt.Sub(start), tc.stop)
			}
			// The exporter's timers as status shows them.
			st := getStatus(t, a)
			if len(st.Exporters) != 1 || st.Exporters[0].ActiveTimeoutSeconds == nil || st.Exporters[0].InactiveLagSeconds == nil {
				t.Fatalf("exporters in status: %+v", st.Exporters)
			}
			e := st.Exporters[0]
			if at := time.Duration(*e.ActiveTimeoutSeconds * float64(time.Second)); at < tc.timers.Active-2*time.Second || at > tc.timers.Active+2*time.Second {
				t.Errorf("status: active_timeout_s %v (%s), want about %v", *e.ActiveTimeoutSeconds, e.ActiveTimeoutFrom, tc.timers.Active)
			}
			if lag := time.Duration(*e.InactiveLagSeconds * float64(time.Second)); tc.timers.Inactive >= 15*time.Second &&
				(lag < tc.timers.Inactive-time.Second || lag > tc.timers.Inactive+3*time.Second) {
				t.Errorf("status: inactive_lag_s %v, want about %v", *e.InactiveLagSeconds, tc.timers.Inactive)
			}
			t.Logf("%s: status active_timeout_s=%v (%s) inactive_lag_s=%v", tc.name, *e.ActiveTimeoutSeconds, e.ActiveTimeoutFrom, *e.InactiveLagSeconds)
			if d := timed.Stats(); d.Exported.Records == 0 {
				t.Errorf("exporter model exported nothing: %+v", d)
			}
		})
	}
}
