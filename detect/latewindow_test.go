package detect

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/flow/netflow"
)

// v9Records is what the engine gets from a flowgen exporter sending
// RouterOS NetFlow v9 as flowgen's paced Sender does with fewer records a
// second than a datagram holds: the flows of second k (each lasting the
// second, ending a millisecond before its end) go in one export at the end
// of second k+1, the exporter's seconds starting phase into a wall-clock
// second. The real decoder turns the flows' sysUpTime times into wall
// clock with the header's whole-second clock, so they come up to a second
// early: a record arrives up to two whole seconds after the second it
// seems to end in.
func v9Records(t *testing.T, sc *flowgen.Scenario, seconds int, phase time.Duration) []flow.Record {
	t.Helper()
	enc, err := flowgen.NewEncoder(flowgen.DefaultEncoderConfiguration())
	if err != nil {
		t.Fatal(err)
	}
	dec := netflow.New(netflow.DefaultConfiguration())
	sink := &collectRecords{}
	var flows []flowgen.Flow
	var rec flow.Record
	for k := range seconds {
		secStart := t0.Add(phase + time.Duration(k)*time.Second)
		flows = sc.Second(flows[:0], k, secStart.Add(-time.Second))
		export := secStart.Add(time.Second)
		sink.recv = export.Add(time.Millisecond).UnixNano()
		for _, dg := range enc.Datagrams(flows, export, nil) {
			dec.Decode(&flow.Datagram{Exporter: exporterA, Payload: dg, Received: sink.recv}, &rec, sink)
		}
	}
	return sink.recs
}

type collectRecords struct {
	recv int64
	recs []flow.Record
}

func (s *collectRecords) Record(r *flow.Record) {
	rec := *r
	rec.Received = s.recv
	s.recs = append(s.recs, rec)
}

func (s *collectRecords) DecodeError(flow.ErrorKind) {}

// TestLateRecordsDeclared: floods whose records arrive two whole seconds
// after the second they seem to end in (1 s timers, NetFlow v9's
// whole-second header clock) are declared, whatever the phase of the
// Ticks against the records' arrival. The window waited only a second for
// a second's records: with WINDOW 1s and the Tick earlier in the second
// than the records' arrival, a 5,000 pps flood in 500-packet records
// (10 flows/s), seen at its full rate in the host table between the
// records' arrival and the next Tick, was never declared against 1,000
// pps; with WINDOW 5s a flood at 1.2x its threshold read 0.8x.
func TestLateRecordsDeclared(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.7.10"), netip.MustParseAddr("2001:db8::10")
	cases := []struct {
		window     time.Duration
		pps        uint64
		flows      int
		sendPhase  time.Duration
		tickPhases []time.Duration
		within     time.Duration // of the first record's arrival
	}{
		{time.Second, 5000, 10, 790 * time.Millisecond, []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond}, time.Second},
		{time.Second, 5000, 10, 300 * time.Millisecond, []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond}, time.Second},
		{time.Second, 5000, 200, 790 * time.Millisecond, []time.Duration{100 * time.Millisecond, 900 * time.Millisecond}, time.Second},
		// near the threshold: declared by the window once it is full
		{5 * time.Second, 1200, 10, 790 * time.Millisecond, []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond}, 8 * time.Second},
		{time.Second, 1200, 10, 790 * time.Millisecond, []time.Duration{100 * time.Millisecond, 900 * time.Millisecond}, 2 * time.Second},
	}
	for _, c := range cases {
		for _, tp := range c.tickPhases {
			name := fmt.Sprintf("window=%v/pps=%d/flows=%d/send=%v/tick=%v", c.window, c.pps, c.flows, c.sendPhase, tp)
			t.Run(name, func(t *testing.T) {
				var floods []flowgen.Flood
				for _, v := range []netip.Addr{v4, v6} {
					floods = append(floods, flowgen.Flood{Kind: flowgen.FloodUDP, Target: netip.PrefixFrom(v, v.BitLen()),
						PPS: c.pps, FlowsPerSecond: c.flows, Sources: 20})
				}
				sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{Seed: 5, Floods: floods})
				if err != nil {
					t.Fatal(err)
				}
				const seconds = 20
				recs := v9Records(t, sc, seconds, c.sendPhase)
				first := time.Unix(0, recs[0].Received)
				cfg := testConfig()
				cfg.Window = c.window
				cfg.Global.PPS = 1000
				s := newSim(t, cfg)
				s.tickPhase = tp
				s.arrivals = recs
				s.run(seconds * time.Second)
				for _, v := range []netip.Addr{v4, v6} {
					starts, _ := hostAttacks(s.events, v)
					if len(starts) != 1 {
						rates := s.e.Hosts(In, SortPPS, 0)
						t.Fatalf("%v: %d attacks, want 1 (host table %+v)", v, len(starts), rates)
					}
					if lat := starts[0].Time.Sub(first); lat > c.within {
						t.Errorf("%v: declared %v after the first record arrived, want within %v", v, lat, c.within)
					}
					if starts[0].Attack.Type != "udp_flood" || starts[0].Attack.Direction != In {
						t.Errorf("%v: %s %v, want an incoming udp_flood", v, starts[0].Attack.Type, starts[0].Attack.Direction)
					}
				}
				if n := len(s.starts()); n != 2 {
					t.Errorf("%d attacks, want the two floods':%s", n, attackList(s.starts()))
				}
			})
		}
	}
}
