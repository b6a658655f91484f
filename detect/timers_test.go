package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// expTimers is an exporter's traffic-flow timers. Its flow cache is
// scanned once a second (at .5 s); a flow idle for the inactive timeout is
// exported at the next scan, one that lasted the active timeout is cut at
// the next scan and goes on in the cache, as RouterOS does. Records arrive
// 20 ms after the scan that exports them.
type expTimers struct {
	name             string
	active, inactive time.Duration
}

var timerSettings = []expTimers{
	{"1s-1s", time.Second, time.Second},
	{"1m-15s", time.Minute, 15 * time.Second},
	{"1m-1m", time.Minute, time.Minute},
	{"30m-15s", 30 * time.Minute, 15 * time.Second},
}

const scanPhase = 500 * time.Millisecond

// scanAt is the first cache scan at or after t.
func scanAt(t time.Duration) time.Duration {
	k := (t - scanPhase + time.Second - 1) / time.Second
	if t < scanPhase {
		k = 0
	}
	return scanPhase + k*time.Second
}

// flowRecords is what the exporter sends for one flow carrying pps
// packets a second from from to to (relative to t0).
func (tm expTimers) flowRecords(from, to time.Duration, pps float64, size uint64, fill func(*flow.Record)) []flow.Record {
	var out []flow.Record
	carry := 0.0
	emit := func(lo, hi, at time.Duration) {
		pk := pps*(hi-lo).Seconds() + carry
		n := uint64(pk)
		carry = pk - float64(n)
		if n == 0 {
			return
		}
		r := flow.Record{
			Exporter: exporterA, Received: t0.Add(at + 20*time.Millisecond).UnixNano(),
			Start: t0.Add(lo).UnixNano(), End: t0.Add(hi).UnixNano(),
			Packets: n, Bytes: n * size, Format: flow.FormatIPFIX,
		}
		fill(&r)
		out = append(out, r)
	}
	start := from
	for {
		cut := scanAt(start + tm.active)
		idle := scanAt(to + tm.inactive)
		if cut < idle && cut < to {
			emit(start, cut, cut)
			start = cut
			continue
		}
		emit(start, to, min(cut, idle))
		return out
	}
}

// shortFlows is a flood (or background) of short flows: perSec new flows
// a second from from to to, each lasting life, pps in all; fill(i, r)
// gives flow i its addresses.
func (tm expTimers) shortFlows(from, to time.Duration, pps float64, size uint64, perSec int, life time.Duration,
	fill func(i int, r *flow.Record)) []flow.Record {
	var out []flow.Record
	per := pps / float64(perSec) / life.Seconds()
	i := 0
	for at := from; at < to; at += time.Second / time.Duration(perSec) {
		k := i
		out = append(out, tm.flowRecords(at, at+life, per, size, func(r *flow.Record) { fill(k, r) })...)
		i++
	}
	return out
}

// longFlows is n flows lasting from from to to, pps in all.
func (tm expTimers) longFlows(from, to time.Duration, pps float64, size uint64, n int,
	fill func(i int, r *flow.Record)) []flow.Record {
	var out []flow.Record
	for i := range n {
		// the flows start together, as a flood's do: their first
		// reports come in one scan
		at := from + time.Duration(i)*400*time.Millisecond/time.Duration(n)
		out = append(out, tm.flowRecords(at, to, pps/float64(n), size, func(r *flow.Record) { fill(i, r) })...)
	}
	return out
}

// byArrival sorts records by arrival (pdqsort: deterministic, and far
// faster than a stable sort on a million records).
func byArrival(rs []flow.Record) []flow.Record {
	slices.SortFunc(rs, func(a, b flow.Record) int {
		switch {
		case a.Received < b.Received:
			return -1
		case a.Received > b.Received:
			return 1
		}
		return 0
	})
	return rs
}

// background is an exporter's ordinary traffic over [0, until): 40 hosts
// with short flows and a few long ones, a busy server at 80 % of the pps
// threshold mostly in long flows, and a RouterOS download exported as one
// 60 s record (15,000 pps, 75 % of the threshold).
func (tm expTimers) background(until time.Duration) []flow.Record {
	var out []flow.Record
	for h := range 40 {
		dst := netip.AddrFrom4([4]byte{10, 0, 1, byte(h + 1)})
		out = append(out, tm.shortFlows(time.Duration(h)*25*time.Millisecond, until, 200, 700, 4, 300*time.Millisecond,
			func(i int, r *flow.Record) {
				r.SrcAddr = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
				r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = dst, flow.ProtoTCP, 443, uint16(30000+i), 0x1b
			})...)
		out = append(out, tm.longFlows(0, until, 300, 1200, 2, func(i int, r *flow.Record) {
			r.SrcAddr = netip.AddrFrom4([4]byte{198, 51, 101, byte(i)})
			r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = dst, flow.ProtoTCP, 443, uint16(40000+i), 0x18
		})...)
	}
	busy := netip.MustParseAddr("10.0.2.1")
	out = append(out, tm.longFlows(0, until, 14000, 1200, 300, func(i int, r *flow.Record) {
		r.SrcAddr = netip.AddrFrom4([4]byte{198, 51, 102, byte(i)})
		r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = busy, flow.ProtoTCP, 443, uint16(20000+i), 0x18
	})...)
	out = append(out, tm.shortFlows(0, until, 2000, 300, 50, 500*time.Millisecond, func(i int, r *flow.Record) {
		r.SrcAddr = netip.AddrFrom4([4]byte{198, 51, 103, byte(i)})
		r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = busy, flow.ProtoTCP, 443, uint16(i), 0x1b
	})...)
	// RouterOS does not split long flows: a 60 s download, one record.
	dl := expTimers{active: time.Hour, inactive: tm.inactive}
	out = append(out, dl.flowRecords(30*time.Second, 90*time.Second, 15000, 1400, func(r *flow.Record) {
		r.SrcAddr, r.DstAddr = netip.MustParseAddr("198.51.104.1"), netip.MustParseAddr("10.0.2.2")
		r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = flow.ProtoTCP, 443, 50000, 0x1b
	})...)
	return out
}

// hostAttacks is the starts and ends of attacks on ip.
func hostAttacks(events []Event, ip netip.Addr) (starts, ends []Event) {
	for _, ev := range events {
		if ev.Attack.IP != ip {
			continue
		}
		switch ev.Kind {
		case AttackStart:
			starts = append(starts, ev)
		case AttackEnd:
			ends = append(ends, ev)
		}
	}
	return starts, ends
}

// TestTimersShortFlowFloods: SYN and UDP floods of short flows from random
// sources, exported at the timers operators run, are detected within 2 s
// of their first record's arrival with the right type, as one attack, and
// end within active timeout + inactive lag + the hysteresis after their
// last packets; nothing else on the exporter is flagged.
func TestTimersShortFlowFloods(t *testing.T) {
	skipUnderRace(t)
	const from, to = 40 * time.Second, 100 * time.Second
	victim := netip.MustParseAddr("10.0.3.1")
	floods := []struct {
		name, typ string
		fill      func(i int, r *flow.Record)
		size      uint64
	}{
		{"syn", "syn_flood", func(i int, r *flow.Record) {
			r.SrcAddr = netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)})
			r.DstAddr, r.Proto, r.TCPFlags = victim, flow.ProtoTCP, flow.TCPFlagSYN
			r.SrcPort, r.DstPort = uint16(1024+i), 443
		}, 60},
		{"udp", "udp_flood", func(i int, r *flow.Record) {
			r.SrcAddr = netip.AddrFrom4([4]byte{203, byte(i >> 16), byte(i >> 8), byte(i)})
			r.DstAddr, r.Proto = victim, flow.ProtoUDP
			r.SrcPort, r.DstPort = uint16(1024+i), uint16(2000+i%5000)
		}, 512},
	}
	for _, tm := range timerSettings {
		for _, fl := range floods {
			t.Run(tm.name+"/"+fl.name, func(t *testing.T) {
				t.Parallel()
				until := to + tm.inactive + 60*time.Second
				recs := tm.background(until)
				flood := tm.shortFlows(from, to, 60000, fl.size, 400, 200*time.Millisecond, fl.fill)
				recs = byArrival(append(recs, flood...))
				firstArrival := time.Unix(0, byArrival(flood)[0].Received)
				s := newSim(t, testConfig())
				s.arrivals = recs
				s.run(until)
				starts, ends := hostAttacks(s.events, victim)
				if len(starts) != 1 {
					t.Fatalf("%d attacks on the victim, want 1: %v", len(starts), attackList(starts))
				}
				st := starts[0]
				if lat := st.Time.Sub(firstArrival); lat < 0 || lat > 2*time.Second {
					t.Errorf("declared %v after the first record arrived, want within 2 s", lat)
				}
				if st.Attack.Type != fl.typ {
					t.Errorf("type %s, want %s", st.Attack.Type, fl.typ)
				}
				if len(ends) != 1 {
					t.Fatalf("%d ends, want 1", len(ends))
				}
				// + WINDOW: the window's average takes that long to fall
				bound := tm.inactive + tm.active + 15*time.Second + 5*time.Second + 2*time.Second
				if took := ends[0].Time.Sub(t0.Add(to)); took > bound {
					t.Errorf("ended %v after the flood's last packets, want within %v", took, bound)
				}
				for _, a := range s.starts() {
					if a.Attack.IP != victim {
						t.Errorf("false alarm: %s %s on %v (%s)", a.Attack.Type, a.Attack.Threshold, a.Attack.IP, tm.name)
					}
				}
				t.Logf("%s %s: declared %v after the first record's arrival, ended %v after the flood",
					tm.name, fl.name, st.Time.Sub(firstArrival).Round(time.Millisecond), ends[0].Time.Sub(t0.Add(to)))
			})
		}
	}
}

func attackList(evs []Event) string {
	var s string
	for _, ev := range evs {
		s += fmt.Sprintf(" [%s %s at %v]", ev.Attack.Type, ev.Attack.Threshold, ev.Time.Sub(t0))
	}
	return s
}

// TestTimersLongFlowAmplification: amplification floods whose flows are
// long, reported once per active timeout, are declared from their first
// reports with the right type, held as one attack while they go on, and
// end within active timeout + inactive lag + the hysteresis after their
// last packets.
func TestTimersLongFlowAmplification(t *testing.T) {
	skipUnderRace(t)
	victim := netip.MustParseAddr("10.0.4.1")
	amps := []struct {
		name, typ string
		port      uint16
		size      uint64
	}{
		{"dns", "dns_amplification", 53, 1400},
		{"ntp", "ntp_amplification", 123, 468},
	}
	for _, tm := range timerSettings {
		for _, amp := range amps {
			// cold: the flood's records are the first the exporter sends,
			// so its active timeout is learned from them only
			cold := amp.name == "ntp"
			t.Run(tm.name+"/"+amp.name, func(t *testing.T) {
				t.Parallel()
				from := 40 * time.Second
				// cut twice by the active timeout, then silent for most of
				// one until its last records
				to := from + 2*tm.active + 50*time.Second
				until := to + tm.active + tm.inactive + 30*time.Second
				recs := tm.background(until)
				if cold {
					recs = nil
				}
				flood := tm.longFlows(from, to, 60000, amp.size, 200, func(i int, r *flow.Record) {
					r.SrcAddr = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
					r.DstAddr, r.Proto, r.SrcPort, r.DstPort = victim, flow.ProtoUDP, amp.port, uint16(3000+i)
				})
				firstArrival := time.Unix(0, byArrival(flood)[0].Received)
				s := newSim(t, testConfig())
				s.arrivals = byArrival(append(recs, flood...))
				s.run(until)
				starts, ends := hostAttacks(s.events, victim)
				if len(starts) != 1 {
					t.Fatalf("%d attacks on the victim, want 1:%s", len(starts), attackList(starts))
				}
				st := starts[0]
				if lat := st.Time.Sub(firstArrival); lat < 0 || lat > 2*time.Second {
					t.Errorf("declared %v after the first report arrived, want within 2 s", lat)
				}
				for _, ev := range s.events {
					if ev.Attack.ID == st.Attack.ID && ev.Attack.Type != amp.typ {
						t.Errorf("%s event at %v typed %s, want %s", ev.Kind, ev.Time.Sub(t0), ev.Attack.Type, amp.typ)
						break
					}
				}
				if len(ends) != 1 {
					t.Fatalf("%d ends, want 1", len(ends))
				}
				if ends[0].Time.Before(t0.Add(to)) {
					t.Errorf("ended at %v, before the flood stopped at %v", ends[0].Time.Sub(t0), to)
				}
				bound := tm.active + tm.inactive + 15*time.Second + 5*time.Second + 2*time.Second
				if took := ends[0].Time.Sub(t0.Add(to)); took > bound {
					t.Errorf("ended %v after the flood's last packets, want within %v", took, bound)
				}
				for _, a := range s.starts() {
					if a.Attack.IP != victim {
						t.Errorf("false alarm: %s %s on %v", a.Attack.Type, a.Attack.Threshold, a.Attack.IP)
					}
				}
				t.Logf("%s %s: declared %v after the first report, ended %v after the flood",
					tm.name, amp.name, st.Time.Sub(firstArrival).Round(time.Millisecond), ends[0].Time.Sub(t0.Add(to)))
			})
		}
	}
}

// TestTimersLearned: the engine learns each setting's active timeout and
// inactive lag from the records alone.
func TestTimersLearned(t *testing.T) {
	skipUnderRace(t)
	for _, tm := range timerSettings {
		t.Run(tm.name, func(t *testing.T) {
			t.Parallel()
			until := 4 * time.Minute
			if tm.active > until {
				until = tm.active + 3*time.Minute
			}
			s := newSim(t, testConfig())
			s.arrivals = byArrival(tm.background(until))
			s.run(until)
			st := s.e.ExporterStats()
			if len(st) != 1 {
				t.Fatalf("%d exporters", len(st))
			}
			got := st[0].Timers
			t.Logf("%s: %+v", tm.name, got)
			wantLag := tm.inactive
			if tm.inactive <= time.Second {
				wantLag = 0
			}
			if d := got.InactiveLag - wantLag; d < 0 || d > 2*time.Second {
				t.Errorf("inactive lag %v, want %v to %v", got.InactiveLag, wantLag, wantLag+2*time.Second)
			}
			if tm.active > time.Second {
				if d := got.ActiveTimeout - tm.active; d < -time.Second || d > 32*time.Second || got.ActiveFrom != TimerLearned {
					t.Errorf("active timeout %v (%s), want %v learned", got.ActiveTimeout, got.ActiveFrom, tm.active)
				}
			}
		})
	}
}

// skipUnderRace skips a single-threaded simulation of hours of traffic,
// which the race detector makes too slow to run and has nothing to find in.
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("single-threaded simulation: run without -race")
	}
}

// TestSustainKeepsBlindedAttack: a ban that works blinds the flows; what
// the router says it drops (Sustain) keeps the attack on while it is above
// the threshold, and the attack ends once the drops stop.
func TestSustainKeepsBlindedAttack(t *testing.T) {
	victim := netip.MustParseAddr("10.0.5.1")
	tm := timerSettings[0]
	// The flood's flows vanish from the exports 2 s after it starts (the
	// ban), while the flood itself goes on until 100 s.
	flood := tm.shortFlows(10*time.Second, 12*time.Second, 60000, 512, 200, 200*time.Millisecond, func(i int, r *flow.Record) {
		r.SrcAddr = netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)})
		r.DstAddr, r.Proto, r.SrcPort, r.DstPort = victim, flow.ProtoUDP, uint16(1024+i), 80
	})
	s := newSim(t, testConfig())
	s.arrivals = byArrival(flood)
	if s.e.Sustain(victim, In, 60000, t0) {
		t.Fatal("Sustain counted for a host without an attack")
	}
	for at := 15 * time.Second; at <= 100*time.Second; at += 5 * time.Second {
		s.run(at)
		if !s.e.Sustain(victim, In, 55000, s.now) {
			t.Fatalf("Sustain at %v not counted", at)
		}
		if s.e.Sustain(victim, In, 100, s.now) {
			t.Fatal("a drop rate below the threshold counted")
		}
	}
	s.run(140 * time.Second)
	starts, ends := hostAttacks(s.events, victim)
	if len(starts) != 1 || len(ends) != 1 {
		t.Fatalf("%d starts, %d ends, want one attack", len(starts), len(ends))
	}
	if end := ends[0].Time.Sub(t0); end < 100*time.Second || end > 100*time.Second+s.e.cfg.EndAfter+2*time.Second {
		t.Errorf("ended at %v, want between the last drops (100 s) and EndAfter later", end)
	}
	var peak float64
	for _, ev := range s.events {
		if ev.Attack.IP == victim && ev.Kind == AttackUpdate && ev.Time.Sub(t0) > 50*time.Second && ev.Time.Sub(t0) < 100*time.Second {
			peak = max(peak, ev.Attack.PPS)
		}
	}
	if peak != 55000 {
		t.Errorf("while blinded the attack shows %v pps, want the router's 55000", peak)
	}
}

// TestTimersExporterSanity: what is correct at 1 s timers stays correct at
// the others: an exporter whose sysUpTime jumped back (times 49 days in the
// past), one whose clock runs 20 s behind, and one sending a 9 Mpps record
// on a 1 Gbps link raise no alarm next to an ordinary exporter, whatever
// the timers; the skewed clock is learned as lag and compensated.
func TestTimersExporterSanity(t *testing.T) {
	skipUnderRace(t)
	exporterB := netip.MustParseAddr("192.0.2.2")
	exporterC := netip.MustParseAddr("192.0.2.3")
	exporterD := netip.MustParseAddr("192.0.2.4")
	for _, tm := range timerSettings {
		t.Run(tm.name, func(t *testing.T) {
			t.Parallel()
			until := 4 * time.Minute
			recs := tm.background(until)
			// sysUpTime reset: 15,000 pps in long and short flows, times far in the past
			broken := append(tm.longFlows(0, until, 12000, 1000, 50, func(i int, r *flow.Record) {
				r.SrcAddr = netip.AddrFrom4([4]byte{198, 51, 105, byte(i)})
				r.DstAddr, r.Proto, r.SrcPort, r.DstPort = netip.MustParseAddr("10.0.6.1"), flow.ProtoUDP, 443, uint16(1000+i)
			}), tm.shortFlows(0, until, 3000, 200, 20, 300*time.Millisecond, func(i int, r *flow.Record) {
				r.SrcAddr = netip.AddrFrom4([4]byte{198, 51, 106, byte(i)})
				r.DstAddr, r.Proto, r.SrcPort, r.DstPort = netip.MustParseAddr("10.0.6.1"), flow.ProtoUDP, 53, uint16(i)
			})...)
			for i := range broken {
				broken[i].Exporter = exporterB
				if broken[i].Received > t0.Add(time.Minute).UnixNano() {
					broken[i].Start -= int64(49 * 24 * time.Hour)
					broken[i].End -= int64(49 * 24 * time.Hour)
				}
			}
			// a clock 20 s behind: every record looks 20 s late
			skewed := tm.shortFlows(0, until, 15000, 1000, 100, 500*time.Millisecond, func(i int, r *flow.Record) {
				r.SrcAddr = netip.AddrFrom4([4]byte{198, 51, 107, byte(i)})
				r.DstAddr, r.Proto, r.SrcPort, r.DstPort = netip.MustParseAddr("10.0.6.2"), flow.ProtoTCP, 443, uint16(1000+i)
				r.TCPFlags = 0x18
			})
			for i := range skewed {
				skewed[i].Exporter = exporterC
				skewed[i].Start -= int64(20 * time.Second)
				skewed[i].End -= int64(20 * time.Second)
			}
			garbage := flow.Record{
				Exporter: exporterD, SrcAddr: netip.MustParseAddr("198.51.100.9"), DstAddr: netip.MustParseAddr("10.0.6.3"),
				Proto: flow.ProtoUDP, SrcPort: 1234, DstPort: 80, Received: t0.Add(100 * time.Second).UnixNano(),
				Start: t0.Add(99 * time.Second).UnixNano(), End: t0.Add(100 * time.Second).UnixNano(),
				Packets: 9000000, Bytes: 9000000 * 64,
			}
			recs = append(append(append(recs, broken...), skewed...), garbage)
			cfg := testConfig()
			cfg.LinkMbps = 1000
			s := newSim(t, cfg)
			s.arrivals = byArrival(recs)
			s.run(until)
			for _, a := range s.starts() {
				t.Errorf("false alarm: %s %s on %v", a.Attack.Type, a.Attack.Threshold, a.Attack.IP)
			}
			byExp := map[netip.Addr]ExporterStats{}
			for _, st := range s.e.ExporterStats() {
				byExp[st.Exporter] = st
			}
			if byExp[exporterB].ClockPast == 0 || byExp[exporterD].Garbage != 1 {
				t.Errorf("anomalies not counted: %+v %+v", byExp[exporterB], byExp[exporterD])
			}
			t.Logf("skewed exporter: %+v", byExp[exporterC].Timers)
			if lag := byExp[exporterC].Timers.InactiveLag; lag < 20*time.Second {
				t.Errorf("a clock 20 s behind shows a lag of %v", lag)
			}
			// the skewed exporter's traffic still counts at its rate
			in, _, ok := s.e.Host(netip.MustParseAddr("10.0.6.2"))
			if !ok || in.PPS < 13000 || in.PPS > 17000 {
				t.Errorf("skewed exporter's host at %v pps, want about 15000", in.PPS)
			}
		})
	}
}

// TestTimersPrecedence: an active timeout announced in options data wins
// over the learned one; a router's configuration (its exporter is guessed
// from its API address) stands only until one is learned.
func TestTimersPrecedence(t *testing.T) {
	tm := timerSettings[1] // 1m/15s
	for _, tc := range []struct {
		from       string
		want       time.Duration
		wantSource string
	}{
		{TimerRouter, time.Minute, TimerLearned},
		{TimerOptions, 30 * time.Minute, TimerOptions},
	} {
		s := newSim(t, testConfig())
		s.e.SetExporterTimers(exporterA, 30*time.Minute, 15*time.Second, tc.from)
		if got := s.e.ExporterStats()[0].Timers; got.ActiveTimeout != 30*time.Minute || got.ActiveFrom != tc.from {
			t.Errorf("%s: before any record: %v from %q", tc.from, got.ActiveTimeout, got.ActiveFrom)
		}
		s.arrivals = byArrival(tm.background(3 * time.Minute))
		s.run(3 * time.Minute)
		got := s.e.ExporterStats()[0].Timers
		if d := got.ActiveTimeout - tc.want; d < -time.Second || d > time.Second || got.ActiveFrom != tc.wantSource {
			t.Errorf("%s: active timeout %v from %q, want %v from %q", tc.from, got.ActiveTimeout, got.ActiveFrom, tc.want, tc.wantSource)
		}
	}
}
