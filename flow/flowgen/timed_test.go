package flowgen

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// timerCases are the traffic-flow settings operators run, plus a slower
// scan to check the rounding of export times.
var timerCases = []struct {
	name string
	t    Timers
}{
	{"1s/1s", Timers{Active: time.Second, Inactive: time.Second}},
	{"1m/15s", Timers{Active: time.Minute, Inactive: 15 * time.Second}},
	{"1m/1m", Timers{Active: time.Minute, Inactive: time.Minute}},
	{"30m/15s", Timers{Active: 30 * time.Minute, Inactive: 15 * time.Second}},
	{"1m/15s scan 5s", Timers{Active: time.Minute, Inactive: 15 * time.Second, ScanInterval: 5 * time.Second}},
}

func mustTimed(t testing.TB, inner Source, timers Timers) *TimedSource {
	t.Helper()
	s, err := NewTimedSource(inner, timers)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exportedFlow is a record and when the exporter sent it: the scan at the
// end of the second whose Second call returned it.
type exportedFlow struct {
	Flow
	at time.Time
}

// secondStart is the start of second k of a test run.
func secondStart(k int) time.Time { return t0.Add(time.Duration(k) * time.Second) }

// runTimed calls s.Second for seconds 0..n-1 of a run beginning at t0.
func runTimed(s Source, n int) []exportedFlow {
	var out []exportedFlow
	var buf []Flow
	for k := range n {
		buf = s.Second(buf[:0], k, secondStart(k))
		for _, f := range buf {
			out = append(out, exportedFlow{f, secondStart(k + 1)})
		}
	}
	return out
}

// innerFlows is every flow of s's seconds 0..n-1.
func innerFlows(s Source, n int) []Flow {
	var out []Flow
	for k := range n {
		out = s.Second(out, k, secondStart(k))
	}
	return out
}

func sumFlows(flows []Flow) (c Counters) {
	for i := range flows {
		c.add(&flows[i])
	}
	return c
}

func sumExported(flows []exportedFlow) (c Counters) {
	for i := range flows {
		c.add(&flows[i].Flow)
	}
	return c
}

// sameTraffic compares everything but the record counts.
func sameTraffic(a, b Counters) bool {
	return a.Packets == b.Packets && a.Bytes == b.Bytes && a.FlowPackets == b.FlowPackets && a.FlowBytes == b.FlowBytes
}

// scanAtOrAfter is the exporter's first scan at or after d.
func scanAtOrAfter(scan time.Duration, d time.Time) time.Time {
	off := d.Sub(t0)
	return t0.Add((off + scan - 1) / scan * scan)
}

// A flood from random spoofed sources is all short flows: each goes out
// once, at the first scan after its inactive or active deadline, whichever
// comes first. Where the inactive one decides (every setting but 1s/1s
// and 1m/1m) that is Inactive to Inactive+ScanInterval after its last
// packet; at 1s/1s the 1 s cut reproduces the Scenario's own records; at
// 1m/1m the active deadline (first packet + 1m) comes just before.
func TestTimedSourceShortFlows(t *testing.T) {
	const floodSeconds = 20
	cfg := ScenarioConfiguration{Seed: 11, Floods: []Flood{{Kind: FloodSYN,
		Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 100000, StopAt: floodSeconds * time.Second}}}
	pieces := innerFlows(mustScenario(t, cfg), floodSeconds)
	for _, tc := range timerCases {
		t.Run(tc.name, func(t *testing.T) {
			ts := mustTimed(t, mustScenario(t, cfg), tc.t)
			tm := ts.Timers()
			got := runTimed(ts, floodSeconds+int((tm.Inactive+tm.ScanInterval)/time.Second)+1)
			if len(got) != len(pieces) {
				t.Fatalf("%d records from %d one-second flows with distinct keys", len(got), len(pieces))
			}
			byInactive := tm.Inactive+time.Second <= tm.Active
			for _, r := range got {
				// the flood's 1 s flows span [second, second+999ms]
				first, last := r.Start, r.Start.Add(999*time.Millisecond)
				wantAt, wantEnd := scanAtOrAfter(tm.ScanInterval, last.Add(tm.Inactive)), last
				if cut := first.Add(tm.Active); cut.Before(last.Add(tm.Inactive)) {
					wantAt = scanAtOrAfter(tm.ScanInterval, cut)
					if !last.Before(wantAt.Add(-time.Second)) {
						wantEnd = wantAt // still sending when cut
					}
				}
				if !r.at.Equal(wantAt) || !r.End.Equal(wantEnd) || r.End.Sub(r.Start) > time.Second {
					t.Fatalf("record %v..%v exported at %v, want ending %v exported at %v",
						r.Start.Sub(t0), r.End.Sub(t0), r.at.Sub(t0), wantEnd.Sub(t0), wantAt.Sub(t0))
				}
				if lag := r.at.Sub(r.End); byInactive && (lag < tm.Inactive || lag >= tm.Inactive+tm.ScanInterval) {
					t.Fatalf("record ending %v exported %v later, want %v to %v", r.End, lag, tm.Inactive, tm.Inactive+tm.ScanInterval)
				}
			}
			st := ts.Stats()
			if want := sumFlows(pieces); !sameTraffic(sumExported(got), want) || st.Received != want || st.Exported != sumExported(got) {
				t.Fatalf("exported %+v, received %+v, the source gave %+v", st.Exported, st.Received, want)
			}
			if st.Entries != 0 || st.Inactive+st.Active != uint64(len(got)) || (st.Inactive == 0) != !byInactive {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// At 1s/1s the cache gives, second by second, the Scenario's own flows
// (ending at the scan instead of 1 ms before): today's behaviour.
func TestTimedSourceOneSecondTimersAsToday(t *testing.T) {
	v := netip.MustParsePrefix("203.0.113.9/32")
	cfg := ScenarioConfiguration{Seed: 2, SamplingRate: 100, Floods: []Flood{
		{Kind: FloodUDP, Target: v, PPS: 1e6},
		{Kind: FloodDNSAmp, Target: netip.MustParsePrefix("203.0.113.10/32"), PPS: 2e6, FlowsPerSecond: 20, Persistent: true},
	}}
	inner := mustScenario(t, cfg)
	ts := mustTimed(t, mustScenario(t, cfg), Timers{Active: time.Second, Inactive: time.Second})
	line := func(f Flow) string {
		return fmt.Sprintf("%v %v %d %d %d %d %d %v %v %d", f.Src, f.Dst, f.SrcPort, f.DstPort, f.Proto, f.Packets, f.Bytes, f.Start, f.End, f.SamplingRate)
	}
	for k := range 10 {
		var want, got []string
		for _, f := range inner.Second(nil, k, secondStart(k)) {
			f.End = secondStart(k + 1)
			want = append(want, line(f))
		}
		for _, f := range ts.Second(nil, k, secondStart(k)) {
			got = append(got, line(f))
		}
		slices.Sort(want)
		slices.Sort(got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("second %d: %d records, want the scenario's %d", k, len(got), len(want))
		}
	}
}

// A reflection flood from fixed reflectors is long flows: one record per
// Active for each, exported at the cut, then a last one when the flood
// stops (Inactive after its last packet, or at its active deadline when
// that comes first, as at 1m/1m).
func TestTimedSourcePersistentFlood(t *testing.T) {
	const keys, perKeyPPS = 10, 1000
	for _, tc := range timerCases {
		t.Run(tc.name, func(t *testing.T) {
			tm := mustTimed(t, mustScenario(t, ScenarioConfiguration{}), tc.t).Timers()
			a, in, scan := tm.Active, tm.Inactive, tm.ScanInterval
			d := 2*a + max(a/2, time.Second) // the flood's length
			cfg := ScenarioConfiguration{Seed: 4, Floods: []Flood{{Kind: FloodDNSAmp, Target: netip.MustParsePrefix("203.0.113.9/32"),
				PPS: keys * perKeyPPS, FlowsPerSecond: keys, Persistent: true, StopAt: d}}}
			ts := mustTimed(t, mustScenario(t, cfg), tc.t)
			got := runTimed(ts, int((d+max(in, a)+scan)/time.Second)+1)
			if st := ts.Stats(); st.Entries != 0 {
				t.Fatalf("%d flows left in the cache", st.Entries)
			}
			flows := map[flowKey][]exportedFlow{}
			for _, r := range got {
				flows[keyOf(&r.Flow)] = append(flows[keyOf(&r.Flow)], r)
			}
			if len(flows) != keys {
				t.Fatalf("%d flows, want %d", len(flows), keys)
			}
			records := int((d + a - 1) / a)
			lastPacket := t0.Add(d - time.Millisecond)
			for k, recs := range flows {
				if len(recs) != records {
					t.Fatalf("%v: %d records, want %d", k.src, len(recs), records)
				}
				var packets uint64
				for i, r := range recs {
					packets += r.Packets
					if want := t0.Add(time.Duration(i) * a); !r.Start.Equal(want) {
						t.Fatalf("record %d starts at %v, want %v (Active apart)", i, r.Start.Sub(t0), want.Sub(t0))
					}
					if i < records-1 {
						if r.End.Sub(r.Start) != a || !r.at.Equal(r.End) {
							t.Fatalf("record %d: %v..%v exported at %v, want a %v cut exported at its end", i, r.Start.Sub(t0), r.End.Sub(t0), r.at.Sub(t0), a)
						}
						continue
					}
					// the last: idle since the flood stopped
					wantAt := scanAtOrAfter(scan, lastPacket.Add(in))
					if cut := r.Start.Add(a); cut.Before(lastPacket.Add(in)) {
						wantAt = scanAtOrAfter(scan, cut)
					}
					wantEnd := lastPacket
					if wantAt.Equal(r.Start.Add(a)) && !lastPacket.Before(wantAt.Add(-time.Second)) {
						wantEnd = wantAt // still sending when cut
					}
					if !r.at.Equal(wantAt) || !r.End.Equal(wantEnd) {
						t.Fatalf("last record %v..%v exported at %v, want ending %v exported at %v",
							r.Start.Sub(t0), r.End.Sub(t0), r.at.Sub(t0), wantEnd.Sub(t0), wantAt.Sub(t0))
					}
					if byInactive := lastPacket.Add(in).Before(r.Start.Add(a)); byInactive {
						if lag := r.at.Sub(r.End); lag < in || lag >= in+scan {
							t.Fatalf("last record exported %v after its end, want %v to %v", lag, in, in+scan)
						}
					}
				}
				if want := uint64(d/time.Second) * perKeyPPS; packets != want {
					t.Fatalf("%v: %d packets, want %d", k.src, packets, want)
				}
			}
		})
	}
}

// Nothing is lost or doubled: with every kind of traffic, what the cache
// exported (and flushed) is what the source gave.
func TestTimedSourceConservesTraffic(t *testing.T) {
	prefix := netip.MustParsePrefix("203.0.113.0/24")
	const seconds = 90
	for _, stream := range []bool{false, true} {
		cfg := ScenarioConfiguration{Seed: 5, SamplingRate: 10,
			Background: &Background{Prefix: prefix, FlowsPerSecond: 300, StreamLongFlows: stream},
			Floods: []Flood{
				{Kind: FloodSYN, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 1e6, StartAt: 10 * time.Second, StopAt: 40 * time.Second},
				{Kind: FloodDNSAmp, Target: netip.MustParsePrefix("203.0.113.10/32"), PPS: 50000, Persistent: true, SamplingRate: 1,
					StartAt: 20 * time.Second, StopAt: 70 * time.Second},
				{Kind: FloodUDP, Target: netip.MustParsePrefix("203.0.113.16/28"), PPS: 1e5, FlowsPerSecond: 16, Persistent: true,
					StartAt: 5 * time.Second, StopAt: 25 * time.Second, Period: 30 * time.Second},
			}}
		pieces := innerFlows(mustScenario(t, cfg), seconds)
		want := sumFlows(pieces)
		for _, tc := range timerCases {
			t.Run(fmt.Sprintf("stream=%v/%s", stream, tc.name), func(t *testing.T) {
				ts := mustTimed(t, mustScenario(t, cfg), tc.t)
				got := runTimed(ts, seconds)
				for _, r := range got {
					if r.End.Before(r.Start) || r.End.After(r.at) || r.Packets == 0 {
						t.Fatalf("record %v..%v (%d packets) exported at %v", r.Start, r.End, r.Packets, r.at)
					}
				}
				flushed := ts.Flush(nil)
				total := sumExported(got)
				fl := sumFlows(flushed)
				total.addTimes(&fl, 1)
				if !sameTraffic(total, want) {
					t.Fatalf("exported %+v, the source gave %+v", total, want)
				}
				st := ts.Stats()
				if st.Received != want || st.Exported != total || st.Entries != 0 || st.Flushed != uint64(len(flushed)) ||
					st.Inactive+st.Active+st.Evicted+st.Flushed != total.Records {
					t.Fatalf("stats %+v; source %+v, exported %+v", st, want, total)
				}
				if tc.t.Active >= time.Minute && total.Records >= want.Records*9/10 {
					t.Fatalf("%d records from %d one-second flows: the cache does not aggregate", total.Records, want.Records)
				}
			})
		}
	}
}

// A full cache evicts (exports) its oldest flow for each new one, and
// counts it.
func TestTimedSourceCacheBound(t *testing.T) {
	const limit, seconds = 50, 10
	cfg := ScenarioConfiguration{Seed: 8, Floods: []Flood{{Kind: FloodSYN, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 100000}}}
	pieces := innerFlows(mustScenario(t, cfg), seconds)
	distinct := map[flowKey]bool{}
	for i := range pieces {
		distinct[keyOf(&pieces[i])] = true
	}
	if len(distinct) != len(pieces) {
		t.Fatalf("%d keys in %d flows: the test wants distinct keys", len(distinct), len(pieces))
	}
	ts := mustTimed(t, mustScenario(t, cfg), Timers{Active: time.Minute, Inactive: 15 * time.Second, CacheEntries: limit})
	var got []exportedFlow
	var buf []Flow
	for k := range seconds {
		buf = ts.Second(buf[:0], k, secondStart(k))
		for _, f := range buf {
			got = append(got, exportedFlow{f, secondStart(k + 1)})
		}
		if n := ts.Stats().Entries; n > limit {
			t.Fatalf("second %d: %d flows in a cache of %d", k, n, limit)
		}
	}
	st := ts.Stats()
	if want := uint64(len(pieces) - limit); st.Evicted != want || st.EvictedFlows != want || uint64(len(got)) != want ||
		st.MaxEntries != limit || st.Inactive+st.Active != 0 {
		t.Fatalf("stats %+v, %d records: want %d evictions and nothing else", st, len(got), want)
	}
	for _, r := range got {
		if r.at.Sub(r.End) >= 15*time.Second {
			t.Fatalf("evicted record ending %v exported at %v: not early", r.End, r.at)
		}
	}
	// the oldest went: what is left are the last flows to arrive, oldest first
	flushed := ts.Flush(nil)
	if !reflect.DeepEqual(flushed, pieces[len(pieces)-limit:]) {
		t.Fatalf("flushed %d flows, not the newest %d", len(flushed), limit)
	}
	total := sumExported(got)
	fl := sumFlows(flushed)
	total.addTimes(&fl, 1)
	if want := sumFlows(pieces); total != want {
		t.Fatalf("exported %+v, the source gave %+v", total, want)
	}
}

func TestTimedSourceDeterministicAndOrdered(t *testing.T) {
	cfg := ScenarioConfiguration{Seed: 9, SamplingRate: 4,
		Background: &Background{Prefix: netip.MustParsePrefix("203.0.113.0/24"), FlowsPerSecond: 200, StreamLongFlows: true},
		Floods: []Flood{
			{Kind: FloodSYN, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 1e5, StartAt: 3 * time.Second},
			{Kind: FloodNTPAmp, Target: netip.MustParsePrefix("203.0.113.10/32"), PPS: 1e5, Persistent: true},
		}}
	timers := Timers{Active: 20 * time.Second, Inactive: 5 * time.Second, CacheEntries: 3000}
	a := mustTimed(t, mustScenario(t, cfg), timers)
	b := mustTimed(t, mustScenario(t, cfg), timers)
	ra, rb := runTimed(a, 40), runTimed(b, 40)
	if len(ra) == 0 || !reflect.DeepEqual(ra, rb) {
		t.Fatalf("two caches over the same scenario differ (%d and %d records)", len(ra), len(rb))
	}
	// index 0 restarts the run: the same records again
	if again := runTimed(a, 40); !reflect.DeepEqual(again, ra) {
		t.Fatal("a restarted run differs")
	}
	func() {
		defer func() {
			if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "in order") {
				t.Fatalf("second 7 after 40: panic %v, want one saying seconds run in order", p)
			}
		}()
		a.Second(nil, 7, secondStart(7))
	}()
	sc := mustScenario(t, cfg)
	for name, tm := range map[string]Timers{
		"fractional scan":  {ScanInterval: 1500 * time.Millisecond},
		"sub-second scan":  {ScanInterval: 500 * time.Millisecond},
		"negative active":  {Active: -time.Second},
		"negative entries": {CacheEntries: -1},
	} {
		if _, err := NewTimedSource(sc, tm); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewTimedSource(nil, Timers{}); err == nil {
		t.Error("no source: accepted")
	}
	if got := mustTimed(t, sc, Timers{}).Timers(); got != DefaultTimers() {
		t.Errorf("defaults %+v, want %+v", got, DefaultTimers())
	}
}

// A ban drops traffic before the exporter sees it: the dropped flows'
// packets vanish from the exports, and the hook sees each of them once.
func TestDropSource(t *testing.T) {
	v9, v10 := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.10")
	ban9, ban10 := t0.Add(5*time.Second), t0.Add(8*time.Second)
	cfg := ScenarioConfiguration{Seed: 12, SamplingRate: 10,
		Background: &Background{Prefix: netip.MustParsePrefix("203.0.113.0/24"), FlowsPerSecond: 200},
		Floods: []Flood{
			{Kind: FloodUDP, Target: netip.PrefixFrom(v9, 32), PPS: 500000},
			{Kind: FloodDNSAmp, Target: netip.PrefixFrom(v10, 32), PPS: 200000, FlowsPerSecond: 10, Persistent: true},
		}}
	const seconds = 30
	var rules [2]Counters // what each "rule" dropped, as a router's counters
	drop := func(f *Flow) bool {
		switch {
		case f.Dst == v9 && !f.Start.Before(ban9):
			rules[0].add(f)
			return true
		case f.Dst == v10 && !f.Start.Before(ban10):
			rules[1].add(f)
			return true
		}
		return false
	}
	ds := NewDropSource(mustScenario(t, cfg), drop)
	ts := mustTimed(t, ds, Timers{Active: time.Minute, Inactive: 15 * time.Second})
	got := runTimed(ts, seconds)
	for _, f := range ts.Flush(nil) {
		got = append(got, exportedFlow{f, secondStart(seconds)})
	}

	// what each destination should keep: the source's flows before its ban
	var want9, want10, wantOther, dropped9, dropped10 Counters
	for _, f := range innerFlows(mustScenario(t, cfg), seconds) {
		switch {
		case f.Dst == v9 && f.Start.Before(ban9):
			want9.add(&f)
		case f.Dst == v9:
			dropped9.add(&f)
		case f.Dst == v10 && f.Start.Before(ban10):
			want10.add(&f)
		case f.Dst == v10:
			dropped10.add(&f)
		default:
			wantOther.add(&f)
		}
	}
	var got9, got10, gotOther Counters
	for _, r := range got {
		switch r.Dst {
		case v9:
			got9.add(&r.Flow)
			if r.End.After(ban9) {
				t.Fatalf("record to the banned %v ends at %v, after the ban", v9, r.End.Sub(t0))
			}
		case v10:
			got10.add(&r.Flow)
			if r.End.After(ban10) {
				t.Fatalf("record to the banned %v ends at %v, after the ban", v10, r.End.Sub(t0))
			}
		default:
			gotOther.add(&r.Flow)
		}
	}
	if !sameTraffic(got9, want9) || !sameTraffic(got10, want10) || !sameTraffic(gotOther, wantOther) {
		t.Fatalf("exported %+v / %+v / %+v, want %+v / %+v / %+v", got9, got10, gotOther, want9, want10, wantOther)
	}
	if rules[0] != dropped9 || rules[1] != dropped10 || dropped9.Packets == 0 || dropped10.Packets == 0 {
		t.Fatalf("rules counted %+v and %+v, want %+v and %+v", rules[0], rules[1], dropped9, dropped10)
	}
	all := rules[0]
	all.addTimes(&rules[1], 1)
	if ds.Dropped() != all {
		t.Fatalf("Dropped() %+v, the hook dropped %+v", ds.Dropped(), all)
	}
	if r := ts.Stats().Received; !sameTraffic(r, sumExported(got)) {
		t.Fatalf("the cache received %+v and exported %+v", r, sumExported(got))
	}
	// nil drops nothing
	if n, want := len(NewDropSource(mustScenario(t, cfg), nil).Second(nil, 3, t0)), len(mustScenario(t, cfg).Second(nil, 3, t0)); n != want {
		t.Fatalf("nil hook: %d flows, want %d", n, want)
	}
}

// replaySource repeats recorded seconds, shifted in time.
type replaySource struct{ seconds [][]Flow }

func (r *replaySource) Second(dst []Flow, index int, start time.Time) []Flow {
	k := index % len(r.seconds)
	shift := start.Sub(secondStart(k))
	for _, f := range r.seconds[k] {
		f.Start, f.End = f.Start.Add(shift), f.End.Add(shift)
		dst = append(dst, f)
	}
	return dst
}

// BenchmarkTimedSource measures the cache alone at 1m/15s over seconds of
// 10,000 background flows, a 1,000-flow random flood and 100 long flows.
func BenchmarkTimedSource(b *testing.B) {
	cfg := ScenarioConfiguration{Seed: 1,
		Background: &Background{Prefix: netip.MustParsePrefix("203.0.113.0/24"), FlowsPerSecond: 10000},
		Floods: []Flood{
			{Kind: FloodSYN, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 1e6, FlowsPerSecond: 1000},
			{Kind: FloodDNSAmp, Target: netip.MustParsePrefix("203.0.113.10/32"), PPS: 1e6, Persistent: true},
		}}
	sc := mustScenario(b, cfg)
	rs := &replaySource{}
	for k := range 30 {
		rs.seconds = append(rs.seconds, sc.Second(nil, k, secondStart(k)))
	}
	ts := mustTimed(b, rs, Timers{Active: time.Minute, Inactive: 15 * time.Second})
	var out []Flow
	flows := 0
	k := 0
	b.ReportAllocs()
	for b.Loop() {
		out = ts.Second(out[:0], k, secondStart(k))
		flows += len(rs.seconds[k%len(rs.seconds)])
		k++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(flows), "ns/flow")
	b.ReportMetric(float64(ts.Stats().Entries), "entries")
}
