package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/flowgen"
)

// TestTimersFlowgenExporter: the same floods as the simulation's, from
// flowgen's own exporter model (a flow cache with the active and inactive
// timeouts, scanned every second), in simulated time: each flood is one
// attack of the right type, declared within 2 s of its first record's
// arrival, and the background (streamed long transfers cut by the active
// timeout) and a busy server in long flows are never flagged.
func TestTimersFlowgenExporter(t *testing.T) {
	skipUnderRace(t)
	victim := netip.MustParseAddr("10.0.7.10")
	busy := netip.MustParseAddr("10.0.7.200")
	floods := []struct {
		name string
		fl   flowgen.Flood
		typ  string
	}{
		{"syn", flowgen.Flood{Kind: flowgen.FloodSYN, PPS: 60000, FlowsPerSecond: 200}, "syn_flood"},
		{"dns-long", flowgen.Flood{Kind: flowgen.FloodDNSAmp, PPS: 60000, FlowsPerSecond: 100, Persistent: true}, "dns_amplification"},
	}
	settings := []flowgen.Timers{
		{Active: time.Second, Inactive: time.Second},
		{Active: time.Minute, Inactive: 15 * time.Second},
		{Active: time.Minute, Inactive: time.Minute},
		{Active: 30 * time.Minute, Inactive: 15 * time.Second},
	}
	for _, tm := range settings {
		for _, fc := range floods {
			t.Run(fc.name+"/"+tm.Active.String()+"-"+tm.Inactive.String(), func(t *testing.T) {
				t.Parallel()
				const from, length = 30 * time.Second, 150 * time.Second
				if tm.Active > 10*time.Minute && fc.fl.Persistent {
					t.Skip("a long flood at 30m: TestTimersLongFlowAmplification")
				}
				fl := fc.fl
				fl.Target, fl.StartAt, fl.StopAt = netip.PrefixFrom(victim, 32), from, from+length
				sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{
					Seed: 11,
					Background: &flowgen.Background{Prefix: netip.MustParsePrefix("10.0.7.128/26"), Hosts: 40,
						FlowsPerSecond: 150, LongFlowShare: 0.05, StreamLongFlows: true},
					Floods: []flowgen.Flood{fl,
						{Kind: flowgen.FloodTCP, Target: netip.PrefixFrom(busy, 32), PPS: 14000, FlowsPerSecond: 100, Persistent: true}},
				})
				if err != nil {
					t.Fatal(err)
				}
				src, err := flowgen.NewTimedSource(sc, tm)
				if err != nil {
					t.Fatal(err)
				}
				until := from + length + tm.Inactive + 60*time.Second
				var recs []flow.Record
				var first time.Time
				// second k's traffic, and what the exporter sends at its
				// end (as flowgen's Sender does), arriving over 100 ms
				for _, second := range exportedRecords(src, int((until+time.Second-1)/time.Second), 100) {
					for _, r := range second {
						if r.DstAddr == victim && first.IsZero() {
							first = time.Unix(0, r.Received)
						}
						recs = append(recs, r)
					}
				}
				s := newSim(t, testConfig())
				s.arrivals = byArrival(recs)
				s.run(until)
				starts, ends := hostAttacks(s.events, victim)
				for _, a := range s.starts() {
					if a.Attack.IP != victim {
						t.Errorf("false alarm: %s %s on %v at %v", a.Attack.Type, a.Attack.Threshold, a.Attack.IP, a.Time.Sub(t0))
					}
				}
				if len(starts) != 1 {
					t.Fatalf("%d attacks on the victim, want 1:%s", len(starts), attackList(starts))
				}
				if lat := starts[0].Time.Sub(first); lat < 0 || lat > 2*time.Second {
					t.Errorf("declared %v after its first record arrived", lat)
				}
				if starts[0].Attack.Type != fc.typ {
					t.Errorf("typed %s, want %s", starts[0].Attack.Type, fc.typ)
				}
				if len(ends) != 1 || ends[0].Time.Before(t0.Add(from+length)) {
					t.Errorf("ends %v, want one after the flood stopped at %v", attackList(ends), from+length)
				}
				t.Logf("first record %v after the flood started, declared %v later; %+v",
					first.Sub(t0.Add(from)), starts[0].Time.Sub(first).Round(time.Millisecond), s.e.ExporterStats()[0].Timers)
			})
		}
	}
}
