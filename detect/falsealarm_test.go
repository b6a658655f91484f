package detect

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// oneRecord is a source that exports a single record at `at`.
func oneRecord(at time.Duration, r flow.Record) *source {
	return &source{from: at - time.Second, to: at, pps: 1, flows: 1, record: func(_ int, out *flow.Record) {
		recv := out.Received
		*out = r
		out.Received = recv
		if out.Exporter == (netip.Addr{}) {
			out.Exporter = exporterA
		}
	}}
}

func TestNoFalseAlarm(t *testing.T) {
	const day = 24 * time.Hour
	longFlow := func(_ int, r *flow.Record) {
		tcpBetween("198.51.100.80", "10.0.0.50")(0, r)
		r.Packets, r.Bytes = 480000, 480000*1400
		r.End = r.Received - int64(30*time.Millisecond)
		r.Start = r.End - int64(60*time.Second)
	}
	cases := []struct {
		name    string
		cfg     func(*Configuration)
		sources []*source
		check   func(t *testing.T, e *Engine)
	}{
		{"routeros long flow: 480000 packets over 60 s exported at its end", nil,
			[]*source{{from: 69 * time.Second, to: 70 * time.Second, pps: 1, record: longFlow}},
			func(t *testing.T, e *Engine) {
				in, _, ok := e.Host(netip.MustParseAddr("10.0.0.50"))
				if !ok {
					t.Fatal("host not tracked")
				}
				// 8000 pps for each second of the window that the flow covered.
				if math.Abs(in.PPS-8000) > 80 {
					t.Errorf("long flow rate %v pps, want 8000", in.PPS)
				}
			}},
		{"sysUpTime jumps backwards", nil, []*source{{
			from: 0, to: 100 * time.Second, pps: 15000, size: 800, flows: 50, record: udpTo("10.0.0.51", 0),
			times: func(r *flow.Record) {
				if r.Received > t0.Add(20*time.Second).UnixNano() {
					// after a reboot of the exporter's uptime counter its
					// header clock lags: times land 49 days in the past
					r.Start -= int64(49 * day)
					r.End -= int64(49 * day)
				}
			}}},
			func(t *testing.T, e *Engine) {
				st := e.ExporterStats()
				if len(st) != 1 || st[0].ClockPast == 0 {
					t.Errorf("clock fixes not counted: %+v", st)
				}
			}},
		{"exporter clock ahead", nil, []*source{{
			from: 0, to: 100 * time.Second, pps: 15000, size: 800, flows: 50, record: udpTo("10.0.0.52", 0),
			times: func(r *flow.Record) { r.Start += int64(time.Hour); r.End += int64(time.Hour) }}},
			func(t *testing.T, e *Engine) {
				if st := e.ExporterStats(); len(st) != 1 || st[0].ClockFuture == 0 {
					t.Errorf("clock fixes not counted: %+v", st)
				}
			}},
		{"exporter sends zero times", nil, []*source{{
			from: 0, to: 100 * time.Second, pps: 15000, size: 800, flows: 50, record: udpTo("10.0.0.53", 0),
			times: func(r *flow.Record) { r.Start, r.End = 0, 0 }}},
			func(t *testing.T, e *Engine) {
				st := e.ExporterStats()
				if len(st) != 1 || st[0].ClockZero < 50*50 {
					t.Errorf("zero times not counted: %+v", st)
				}
				in, _, _ := e.Host(netip.MustParseAddr("10.0.0.53"))
				if math.Abs(in.PPS-15000) > 1500 {
					t.Errorf("rate with zero times %v pps, want about 15000", in.PPS)
				}
			}},
		{"one record claiming 9 Mpps on a 1000 Mbps link", func(c *Configuration) { c.LinkMbps = 1000 },
			[]*source{oneRecord(20*time.Second, flow.Record{
				SrcAddr: netip.MustParseAddr("198.51.100.9"), DstAddr: netip.MustParseAddr("10.0.0.54"),
				Proto: flow.ProtoUDP, SrcPort: 1234, DstPort: 80,
				Start: t0.Add(19 * time.Second).UnixNano(), End: t0.Add(20 * time.Second).UnixNano(),
				Packets: 9000000, Bytes: 9000000 * 64,
			})},
			func(t *testing.T, e *Engine) {
				st := e.ExporterStats()
				if len(st) != 1 || st[0].Garbage != 1 || e.Stats().Garbage != 1 {
					t.Errorf("garbage not counted: %+v %+v", st, e.Stats())
				}
			}},
		{"near the threshold, fluctuating: one attack, no flapping", nil, []*source{{
			from: 0, to: 120 * time.Second, size: 500, flows: 40, record: udpTo("10.0.0.55", 0),
			ppsAt: func(at time.Duration) float64 {
				if at < 30*time.Second || at > 90*time.Second {
					return 10000
				}
				// 18,500 .. 23,500 pps, changing every second
				return 21000 + 2500*math.Sin(float64(at/time.Second))
			}}},
			nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s := newSim(t, cfg, tc.sources...)
			s.tickPhase = 500 * time.Millisecond
			if tc.check != nil {
				s.run(70*time.Second + 700*time.Millisecond)
				tc.check(t, s.e)
			}
			s.run(150 * time.Second)
			starts := s.starts()
			if tc.name == "near the threshold, fluctuating: one attack, no flapping" {
				if len(starts) != 1 {
					t.Fatalf("%d attacks started, want exactly 1", len(starts))
				}
				if k := s.kinds(starts[0].Attack.ID); k[len(k)-1] != AttackEnd {
					t.Errorf("attack did not end: %v", k)
				}
				return
			}
			for _, st := range starts {
				t.Errorf("false alarm: %+v", st.Attack)
			}
		})
	}
}

// TestBusyBackground: 2,000 hosts just under their thresholds for 10
// minutes of simulated time, with uneven export phases: not one alarm.
func TestBusyBackground(t *testing.T) {
	if testing.Short() {
		t.Skip("10 minutes of simulated traffic")
	}
	cfg := testConfig()
	var sources []*source
	const hosts = 2000
	duration := 10 * time.Minute
	if raceEnabled {
		duration = time.Minute // the race detector makes 10 minutes slow; the logic is the same
	}
	for i := 0; i < hosts; i++ {
		dst := netip.AddrFrom4([4]byte{10, 0, byte(8 + i/250), byte(1 + i%250)}).String()
		phase := time.Duration(i%100) * 10 * time.Millisecond
		// 0.9 x 20,000 pps, +-5 % every second; 4 flows exported each second
		seed := float64(i)
		sources = append(sources, &source{
			from: phase, to: duration + phase, size: 1200, flows: 4, record: udpTo(dst, 0),
			ppsAt: func(at time.Duration) float64 {
				return 18000 * (1 + 0.05*math.Sin(seed+float64(at)/float64(time.Second)*1.7))
			},
		})
	}
	s := newSim(t, cfg, sources...)
	s.tickPhase = 130 * time.Millisecond
	s.run(duration + 2*time.Second)
	if n := len(s.starts()); n != 0 {
		t.Fatalf("%d false alarms, first %+v", n, s.starts()[0].Attack)
	}
	st := s.e.Stats()
	if st.HostsTracked != hosts || st.Accounted < uint64(hosts*4*(duration/time.Second-10)) {
		t.Errorf("stats %+v", st)
	}
	in, _ := s.e.Totals()
	if math.Abs(in.PPS-hosts*18000)/(hosts*18000) > 0.1 {
		t.Errorf("total in %v pps, want about %v", in.PPS, hosts*18000)
	}
}
