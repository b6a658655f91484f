package hostmetrics

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/detect"
)

// fakeSource holds fixed host rates and answers like the detector: a
// fresh slice, sorted, trimmed to limit. The sort is done once and cached:
// it is the detector's cost, not this package's (BenchmarkEngine100k in
// engine_bench_test.go measures the two together).
type fakeSource struct {
	hosts   [2][]detect.HostRates
	in, out detect.Rates
	sorted  map[string][]detect.HostRates
}

func (f *fakeSource) Hosts(dir detect.Direction, sortBy string, limit int) []detect.HostRates {
	ck := fmt.Sprint(dir, sortBy)
	s, ok := f.sorted[ck]
	if !ok {
		s = slices.Clone(f.hosts[dir])
		key := keyOf(sortBy)
		sort.Slice(s, func(i, j int) bool {
			ki, kj := key(&s[i]), key(&s[j])
			if ki != kj {
				return ki > kj
			}
			return s[i].IP.Less(s[j].IP)
		})
		if f.sorted == nil {
			f.sorted = map[string][]detect.HostRates{}
		}
		f.sorted[ck] = s
	}
	if limit > 0 && len(s) > limit {
		s = s[:limit]
	}
	return slices.Clone(s)
}

func (f *fakeSource) Totals() (in, out detect.Rates) { return f.in, f.out }

// randomSource makes n hosts per direction with independent random rates,
// so the top lists by pps, bps and flows mostly differ.
func randomSource(n int, seed uint64) *fakeSource {
	r := rand.New(rand.NewPCG(seed, 1))
	f := &fakeSource{}
	for d := range 2 {
		f.hosts[d] = make([]detect.HostRates, n)
		for i := range n {
			ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			if i%10 == 9 {
				ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
			}
			rt := detect.Rates{PPS: float64(r.IntN(100000)), BPS: float64(r.IntN(1e9)), Flows: float64(r.IntN(5000))}
			rt.UDPPPS, rt.TCPPPS, rt.SYNPPS = rt.PPS/2, rt.PPS/2, rt.PPS/7
			rt.UDPBPS, rt.TCPBPS = rt.BPS/2, rt.BPS/2
			f.hosts[d][i] = detect.HostRates{IP: ip, Direction: detect.Direction(d), Rates: rt}
			f.in.PPS += rt.PPS
		}
	}
	f.out = f.in
	return f
}

// bruteTop is the reference: sort fully by each key, take n non-zero, union.
func bruteTop(all []detect.HostRates, n int) map[netip.Addr]bool {
	want := map[netip.Addr]bool{}
	for _, k := range SortKeys {
		key := keyOf(k)
		s := slices.Clone(all)
		sort.Slice(s, func(i, j int) bool {
			ki, kj := key(&s[i]), key(&s[j])
			if ki != kj {
				return ki > kj
			}
			return s[i].IP.Less(s[j].IP)
		})
		for i := 0; i < n && i < len(s); i++ {
			if key(&s[i]) != 0 {
				want[s[i].IP] = true
			}
		}
	}
	return want
}

func TestSelectTop(t *testing.T) {
	tests := []struct {
		name  string
		hosts int
		n     int
		seed  uint64
	}{
		{"no hosts", 0, 20, 1},
		{"fewer hosts than n", 7, 20, 2},
		{"n zero", 50, 0, 3},
		{"n one", 50, 1, 4},
		{"many hosts", 5000, 20, 5},
		{"ties everywhere", 300, 10, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := randomSource(tc.hosts, tc.seed)
			if tc.seed == 0 { // all equal: the tie order (lowest address) decides
				for d := range src.hosts {
					for i := range src.hosts[d] {
						src.hosts[d][i].Rates = detect.Rates{PPS: 5, BPS: 5, Flows: 5}
					}
				}
			}
			top := SelectTop(src, tc.n)
			for d := range 2 {
				if top.Active[d] != tc.hosts {
					t.Errorf("dir %d: active %d, want %d", d, top.Active[d], tc.hosts)
				}
				want := bruteTop(src.hosts[d], tc.n)
				got := map[netip.Addr]bool{}
				for i, h := range top.Hosts[d] {
					if got[h.IP] {
						t.Errorf("dir %d: %s twice", d, h.IP)
					}
					got[h.IP] = true
					if i > 0 && top.Hosts[d][i-1].PPS < h.PPS {
						t.Errorf("dir %d: not sorted by pps at %d", d, i)
					}
				}
				if len(got) != len(want) {
					t.Errorf("dir %d: %d hosts, want %d", d, len(got), len(want))
				}
				for ip := range want {
					if !got[ip] {
						t.Errorf("dir %d: %s missing", d, ip)
					}
				}
				if len(got) > 3*tc.n {
					t.Errorf("dir %d: %d hosts exceed 3*n", d, len(got))
				}
			}
		})
	}
}

func TestSelectTopSkipsZeroKeys(t *testing.T) {
	src := &fakeSource{}
	src.hosts[detect.In] = []detect.HostRates{
		{IP: netip.MustParseAddr("203.0.113.1"), Rates: detect.Rates{PPS: 10, BPS: 8000}},
		{IP: netip.MustParseAddr("203.0.113.2"), Rates: detect.Rates{Flows: 3}},
		{IP: netip.MustParseAddr("203.0.113.3"), Rates: detect.Rates{PPS: 1, BPS: 800}},
	}
	top := SelectTop(src, 1)
	var got []string
	for _, h := range top.Hosts[detect.In] {
		got = append(got, h.IP.String())
	}
	want := []string{"203.0.113.1", "203.0.113.2"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

var sampleLine = regexp.MustCompile(`^(flowshield_[a-z_]+)\{(ip="[0-9a-f.:]+",)?direction="(in|out)"(,protocol="(tcp|udp|icmp|syn|frag)")?\} ([-+0-9.e]+)$`)

func TestWritePrometheus(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Configuration
		hosts int
	}{
		{"defaults", DefaultConfiguration(), 1000},
		{"no totals", Configuration{TopN: 5}, 1000},
		{"few hosts", Configuration{TopN: 20, Totals: true}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// seeded so the three top lists do not overlap at this size
			src := randomSource(tc.hosts, 42)
			// 2 x 2 counts; per host and direction pps, bps, flows and
			// 2 x 5 protocols; totals 2 x 3 and 2 x 2 x 5.
			series := 4
			for d := range 2 {
				series += 13 * len(bruteTop(src.hosts[d], tc.cfg.TopN))
			}
			if tc.cfg.Totals {
				series += 2*3 + 2*2*5
			}
			set := metrics.NewSet()
			w := New(tc.cfg, tc.cfg.NewSampler(src))
			w.Register(set)
			var buf bytes.Buffer
			set.WritePrometheus(&buf)
			samples, families, helped := 0, map[string]bool{}, map[string]bool{}
			for line := range strings.SplitSeq(strings.TrimSuffix(buf.String(), "\n"), "\n") {
				if f, text, ok := strings.Cut(strings.TrimPrefix(line, "# HELP "), " "); ok && strings.HasPrefix(line, "# HELP ") {
					if strings.HasPrefix(f, "flowshield_hostmetrics_") {
						continue // the set's counters: promtext fills their text
					}
					if len(strings.Fields(text)) < 3 {
						t.Errorf("family %s has help %q", f, text)
					}
					helped[f] = true
					continue
				}
				if strings.HasPrefix(line, "# TYPE ") {
					f := strings.Fields(line)[2]
					if families[f] {
						t.Errorf("family %s declared twice", f)
					}
					if !helped[f] && !strings.HasPrefix(f, "flowshield_hostmetrics_") {
						t.Errorf("family %s has no HELP line before its TYPE", f)
					}
					families[f] = true
					continue
				}
				if strings.HasPrefix(line, "flowshield_hostmetrics_") {
					continue
				}
				m := sampleLine.FindStringSubmatch(line)
				if m == nil {
					t.Fatalf("bad line %q", line)
				}
				if !families[m[1]] {
					t.Errorf("%s without its TYPE line before it", m[1])
				}
				samples++
			}
			if samples != series {
				t.Errorf("%d samples, want %d", samples, series)
			}
			// the set writes its counters before the writer runs: the
			// second scrape shows the first render
			buf.Reset()
			set.WritePrometheus(&buf)
			if !strings.Contains(buf.String(), "flowshield_hostmetrics_renders_total 1\n") {
				t.Errorf("render not counted:\n%s", buf.String()[:200])
			}
		})
	}
}

func TestWriteValues(t *testing.T) {
	src := &fakeSource{in: detect.Rates{PPS: 1500, BPS: 1.2e7, Flows: 3, UDPPPS: 1000}}
	src.hosts[detect.In] = []detect.HostRates{{IP: netip.MustParseAddr("203.0.113.5"), Rates: detect.Rates{PPS: 1500.5, BPS: 1.2e7, Flows: 3, UDPPPS: 1000, SYNBPS: 7}}}
	src.hosts[detect.Out] = []detect.HostRates{{IP: netip.MustParseAddr("2001:db8::5"), Direction: detect.Out, Rates: detect.Rates{PPS: 2}}}
	var buf bytes.Buffer
	New(DefaultConfiguration(), NewSampler(src, 20, 0, nil)).WritePrometheus(&buf)
	for _, want := range []string{
		`flowshield_host_pps{ip="203.0.113.5",direction="in"} 1500.5`,
		`flowshield_host_bps{ip="203.0.113.5",direction="in"} 1.2e+07`,
		`flowshield_host_flows{ip="203.0.113.5",direction="in"} 3`,
		`flowshield_host_protocol_pps{ip="203.0.113.5",direction="in",protocol="udp"} 1000`,
		`flowshield_host_protocol_bps{ip="203.0.113.5",direction="in",protocol="syn"} 7`,
		`flowshield_host_pps{ip="2001:db8::5",direction="out"} 2`,
		`flowshield_hosts_active{direction="out"} 1`,
		`flowshield_traffic_pps{direction="in"} 1500`,
		`flowshield_traffic_flows{direction="out"} 0`,
		`flowshield_traffic_protocol_pps{direction="in",protocol="udp"} 1000`,
	} {
		if !strings.Contains(buf.String(), want+"\n") {
			t.Errorf("missing %q in\n%s", want, buf.String())
		}
	}
}

// BenchmarkWritePrometheus100k: 100,000 active hosts in each direction
// (a fake source that hands out a fresh copy per call, as the detector
// does), defaults. Reports the output size and ns per scrape.
func BenchmarkWritePrometheus100k(b *testing.B) {
	src := randomSource(100000, 9)
	w := New(DefaultConfiguration(), NewSampler(src, 20, 0, nil))
	var buf bytes.Buffer
	w.WritePrometheus(&buf) // the fake's sort cache
	cpu0 := cpuTime()
	for b.Loop() {
		buf.Reset()
		w.WritePrometheus(&buf)
	}
	b.ReportMetric(float64(buf.Len()), "bytes/scrape")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/scrape")
	if buf.Len() > 1<<20 {
		b.Fatalf("output %d bytes, over 1 MB", buf.Len())
	}
}

// BenchmarkSelectTop100k separates the selection from the formatting.
func BenchmarkSelectTop100k(b *testing.B) {
	src := randomSource(100000, 9)
	_ = SelectTop(src, 20)
	cpu0 := cpuTime()
	for b.Loop() {
		_ = SelectTop(src, 20)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine wall time says more about the neighbours than about the code.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ExampleWriter() {
	src := &fakeSource{}
	src.hosts[detect.In] = []detect.HostRates{{IP: netip.MustParseAddr("203.0.113.5"), Rates: detect.Rates{PPS: 100, BPS: 80000, Flows: 2}}}
	var buf bytes.Buffer
	New(Configuration{TopN: 1}, NewSampler(src, 1, 0, nil)).WritePrometheus(&buf)
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.HasPrefix(line, "flowshield_host_") && !strings.Contains(line, "protocol") {
			fmt.Println(line)
		}
	}
	// Output:
	// flowshield_host_pps{ip="203.0.113.5",direction="in"} 100
	// flowshield_host_bps{ip="203.0.113.5",direction="in"} 80000
	// flowshield_host_flows{ip="203.0.113.5",direction="in"} 2
}

// visitorSource is a fakeSource that also hands hosts over one by one.
type visitorSource struct{ *fakeSource }

func (v visitorSource) VisitHosts(dir detect.Direction, fn func(*detect.HostRates)) {
	for i := range v.hosts[dir] {
		fn(&v.hosts[dir][i])
	}
}

// countingSource counts the readings of its fakeSource.
type countingSource struct {
	*fakeSource
	hosts, totals, networks int
}

func (c *countingSource) Hosts(dir detect.Direction, sortBy string, limit int) []detect.HostRates {
	c.hosts++
	return c.fakeSource.Hosts(dir, sortBy, limit)
}

func (c *countingSource) Totals() (in, out detect.Rates) { c.totals++; return c.fakeSource.Totals() }

func (c *countingSource) Networks() []detect.NetworkRates {
	c.networks++
	return []detect.NetworkRates{{Prefix: netip.MustParsePrefix("203.0.113.0/24")}}
}

func TestVisitorSameAsHosts(t *testing.T) {
	src := randomSource(2000, 11)
	a, b := SelectTop(src, 20), SelectTop(visitorSource{src}, 20)
	for d := range 2 {
		if a.Active[d] != b.Active[d] || !slices.Equal(a.Hosts[d], b.Hosts[d]) {
			t.Errorf("dir %d: visitor and Hosts disagree: %d/%d hosts", d, len(a.Hosts[d]), len(b.Hosts[d]))
		}
	}
}

func TestSamplerMaxAge(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		maxAge   time.Duration
		steps    []time.Duration // clock offsets of successive Sample calls
		readings int
	}{
		{"every call without max age", 0, []time.Duration{0, 0, 0}, 3},
		{"shared within max age", time.Second, []time.Duration{0, 500 * time.Millisecond, 999 * time.Millisecond}, 1},
		{"new once max age passed", time.Second, []time.Duration{0, time.Second, 1500 * time.Millisecond, 2 * time.Second}, 3},
		{"clock going back reads again", time.Second, []time.Duration{time.Second, 0}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingSource{fakeSource: randomSource(10, 1)}
			now := t0
			s := NewSampler(src, 5, tc.maxAge, func() time.Time { return now })
			var last *Snapshot
			for _, st := range tc.steps {
				now = t0.Add(st)
				last = s.Sample()
			}
			if src.totals != tc.readings || src.networks != tc.readings || src.hosts != 2*tc.readings {
				t.Errorf("readings: totals %d, networks %d, hosts %d; want %d", src.totals, src.networks, src.hosts, tc.readings)
			}
			if len(last.Networks) != 1 || len(last.Top.Hosts[detect.In]) == 0 {
				t.Errorf("snapshot incomplete: %+v", last)
			}
		})
	}
}

// BenchmarkWritePrometheus100kVisitor: as above, from a source that hands
// its hosts over one by one (no copy of all of them).
func BenchmarkWritePrometheus100kVisitor(b *testing.B) {
	src := visitorSource{randomSource(100000, 9)}
	w := New(DefaultConfiguration(), NewSampler(src, 20, 0, nil))
	var buf bytes.Buffer
	cpu0 := cpuTime()
	for b.Loop() {
		buf.Reset()
		w.WritePrometheus(&buf)
	}
	b.ReportMetric(float64(buf.Len()), "bytes/scrape")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/scrape")
}

// BenchmarkWritePrometheusShared: a scrape within MaxAge of the last
// reading only formats the shared snapshot.
func BenchmarkWritePrometheusShared(b *testing.B) {
	src := randomSource(100000, 9)
	w := New(DefaultConfiguration(), NewSampler(src, 20, time.Hour, nil))
	var buf bytes.Buffer
	w.WritePrometheus(&buf)
	cpu0 := cpuTime()
	for b.Loop() {
		buf.Reset()
		w.WritePrometheus(&buf)
	}
	b.ReportMetric(float64(buf.Len()), "bytes/scrape")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/scrape")
}

// TestSamplerRefresh: Refresh reads the source whatever the age of the
// last snapshot, and later Samples within MaxAge share what it read.
func TestSamplerRefresh(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	src := &countingSource{fakeSource: randomSource(10, 1)}
	s := NewSampler(src, 5, time.Hour, func() time.Time { return now })
	first := s.Sample()
	refreshed := s.Refresh()
	if refreshed == first || src.totals != 2 {
		t.Fatalf("Refresh did not read the source again (readings %d)", src.totals)
	}
	now = now.Add(time.Minute)
	if got := s.Sample(); got != refreshed || src.totals != 2 {
		t.Errorf("Sample within MaxAge read again (readings %d)", src.totals)
	}
}

// TestSamplerRefreshIfAsked: the detection loop's refresh reads the source
// only while snapshots are being asked for.
func TestSamplerRefreshIfAsked(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	src := &countingSource{fakeSource: randomSource(10, 1)}
	s := NewSampler(src, 5, time.Second, func() time.Time { return now })
	if got := s.RefreshIfAsked(time.Minute); got != nil || src.totals != 0 {
		t.Fatalf("nobody asked yet: refreshed (readings %d)", src.totals)
	}
	s.Sample() // a scrape
	now = now.Add(30 * time.Second)
	if got := s.RefreshIfAsked(time.Minute); got == nil || src.totals != 2 {
		t.Fatalf("asked 30 s ago: want a refresh (readings %d)", src.totals)
	}
	if got := s.Sample(); got == nil || src.totals != 2 {
		t.Errorf("Sample right after the refresh read again (readings %d)", src.totals)
	}
	now = now.Add(61 * time.Second)
	if got := s.RefreshIfAsked(time.Minute); got != nil || src.totals != 2 {
		t.Errorf("last asked 61 s ago: refreshed anyway (readings %d)", src.totals)
	}
}
