package flowgen

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// A persistent flood sends the same flow keys, with the same counters,
// every second; a default one draws new keys.
func TestScenarioPersistentFlood(t *testing.T) {
	v := netip.MustParsePrefix("203.0.113.9/32")
	for name, fl := range map[string]Flood{
		"syn":           {Kind: FloodSYN, Target: v, PPS: 1e5, FlowsPerSecond: 50},
		"dns":           {Kind: FloodDNSAmp, Target: v, PPS: 30000},
		"cldap ipv6":    {Kind: FloodAmplification, SourcePort: 389, Target: netip.MustParsePrefix("2001:db8::5/128"), PPS: 30000},
		"carpet /28":    {Kind: FloodUDP, Target: netip.MustParsePrefix("203.0.113.16/28"), PPS: 1e5, FlowsPerSecond: 16},
		"outgoing ntp":  {Kind: FloodNTPAmp, Target: v, PPS: 30000, Outgoing: true},
		"fewer packets": {Kind: FloodUDP, Target: v, PPS: 50000, SamplingRate: 1000},
	} {
		t.Run(name, func(t *testing.T) {
			keysOf := func(flows []Flow) []flowKey {
				var out []flowKey
				for i := range flows {
					out = append(out, keyOf(&flows[i]))
				}
				return out
			}
			fl.Persistent = true
			s := mustScenario(t, ScenarioConfiguration{Seed: 6, Floods: []Flood{fl}})
			a, b := s.Second(nil, 0, t0), s.Second(nil, 7, t0)
			if len(a) == 0 || !reflect.DeepEqual(a, b) {
				t.Fatalf("seconds 0 and 7 differ: %d and %d flows", len(a), len(b))
			}
			var packets uint64
			for i := range a {
				packets += a[i].Packets * a[i].rate()
			}
			if packets != fl.PPS {
				t.Fatalf("%d pps after sampling, want %d", packets, fl.PPS)
			}
			fl.Persistent = false
			d := mustScenario(t, ScenarioConfiguration{Seed: 6, Floods: []Flood{fl}})
			if reflect.DeepEqual(keysOf(d.Second(nil, 0, t0)), keysOf(d.Second(nil, 7, t0))) {
				t.Fatal("a default flood keeps its keys")
			}
		})
	}
}

// Streamed long transfers are 1 s flows with a fixed key, present every
// second from the one with SYN to the one with FIN, 10 s to MaxLongFlow;
// through an exporter cache they become long records.
func TestScenarioStreamLongFlows(t *testing.T) {
	prefix := netip.MustParsePrefix("203.0.113.0/24")
	cfg := ScenarioConfiguration{Seed: 3, Background: &Background{Prefix: prefix, FlowsPerSecond: 500, StreamLongFlows: true}}
	s := mustScenario(t, cfg)
	const seconds = 150
	type transfer struct{ first, last, syn, fin int }
	transfers := map[flowKey]*transfer{}
	for k := range seconds {
		for _, f := range s.Second(nil, k, secondStart(k)) {
			if d := f.End.Sub(f.Start); d < 0 || d > time.Second {
				t.Fatalf("second %d: a flow lasting %v", k, d)
			}
			if f.End.Sub(f.Start) != 999*time.Millisecond {
				continue // short background flows last at most 500 ms
			}
			if f.Proto != 6 || f.Bytes != 1400*f.Packets || f.TCPFlags&0x18 != 0x18 {
				t.Fatalf("transfer piece %+v", f)
			}
			k0 := keyOf(&f)
			tr := transfers[k0]
			if tr == nil {
				tr = &transfer{first: k, syn: -1, fin: -1}
				transfers[k0] = tr
			} else if tr.last != k-1 {
				t.Fatalf("transfer %v: a gap from second %d to %d", k0.src, tr.last, k)
			}
			tr.last = k
			if f.TCPFlags&0x02 != 0 {
				tr.syn = k
			}
			if f.TCPFlags&0x01 != 0 {
				tr.fin = k
			}
		}
	}
	complete := 0
	for k, tr := range transfers {
		if tr.syn >= 0 && tr.syn != tr.first || tr.fin >= 0 && tr.fin != tr.last {
			t.Fatalf("transfer %v: SYN in %d, FIN in %d, seen %d..%d", k.src, tr.syn, tr.fin, tr.first, tr.last)
		}
		if tr.syn >= 0 && tr.fin >= 0 {
			complete++
			if n := tr.fin - tr.syn + 1; n < 10 || n > 60 {
				t.Fatalf("transfer %v lasted %d s", k.src, n)
			}
		}
		if tr.syn < 0 && tr.first != 0 {
			t.Fatalf("transfer %v appears in second %d without a SYN", k.src, tr.first)
		}
	}
	// 10 a second start, lasting 35 s on average
	if complete < 800 || complete > 1200 {
		t.Fatalf("%d complete transfers in %d s, want about 10 a second", complete, seconds)
	}
	// Second(k) still depends only on k
	if a, b := mustScenario(t, cfg).Second(nil, 77, t0), s.Second(nil, 77, t0); !reflect.DeepEqual(a, b) {
		t.Fatal("second 77 depends on what came before")
	}

	// through a 30m/15s exporter: whole transfers, SYN to FIN, in one record
	ts := mustTimed(t, mustScenario(t, cfg), Timers{Active: 30 * time.Minute, Inactive: 15 * time.Second})
	long := 0
	for _, r := range runTimed(ts, seconds) {
		if r.End.Sub(r.Start) >= 10*time.Second {
			long++
			if want := uint8(0x1b); r.TCPFlags != want && !(r.Start.Equal(t0) && r.TCPFlags == want&^0x02) {
				// only transfers running when the run began lack their SYN
				t.Fatalf("a %v record with flags %#x, want SYN..FIN 0x1b", r.End.Sub(r.Start), r.TCPFlags)
			}
		}
	}
	if long < complete*9/10 {
		t.Fatalf("%d long records for %d complete transfers", long, complete)
	}
}
