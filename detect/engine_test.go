package detect

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// TestLatency: with 1 s exports, a flood at 2x its threshold is declared
// within 1 s of its first records' arrival, one just above within WINDOW +
// 1 s, whatever the phase of the ticks and of the flood's start.
func TestLatency(t *testing.T) {
	for _, tc := range []struct {
		pps   float64
		bound time.Duration
	}{
		{40000, time.Second},     // exactly 2x the 20,000 pps threshold
		{100000, time.Second},    // 5x
		{21000, 6 * time.Second}, // just above: WINDOW (5 s) + 1 s
	} {
		for _, tick := range []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 990 * time.Millisecond} {
			for _, start := range []time.Duration{10 * time.Second, 10300 * time.Millisecond, 10990 * time.Millisecond} {
				name := fmt.Sprintf("%.0fpps/tick+%v/start%v", tc.pps, tick, start)
				t.Run(name, func(t *testing.T) {
					src := &source{from: start, to: 40 * time.Second, pps: tc.pps, size: 300, flows: 50,
						exportDelay: 50 * time.Millisecond, record: udpTo("10.0.1.1", 0)}
					s := newSim(t, testConfig(), src)
					s.tickPhase = tick
					s.run(45 * time.Second)
					starts := s.starts()
					if len(starts) != 1 {
						t.Fatalf("%d attacks, want 1", len(starts))
					}
					lat := starts[0].Time.Sub(src.firstArrival)
					if lat > tc.bound {
						t.Errorf("declared %v after the first records arrived, want within %v", lat, tc.bound)
					}
				})
			}
		}
	}
}

func TestNormalize(t *testing.T) {
	cfg := testConfig()
	e0, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LinkMbps = 1000
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv := t0.UnixNano()
	sec := int64(time.Second)
	for _, tc := range []struct {
		name        string
		start, end  int64
		pkts, bytes uint64
		rate        uint32
		fix         timeFix
		garbage     bool
		wantStart   int64
		wantEnd     int64
	}{
		{"normal", recv - 2*sec, recv - sec, 10, 1000, 0, fixNone, false, recv - 2*sec, recv - sec},
		{"slightly ahead is clamped", recv - sec, recv + sec, 10, 1000, 0, fixNone, false, recv - sec, recv},
		{"zero times", 0, 0, 10, 1000, 0, fixZero, false, recv - sec, recv},
		{"future", recv + 3600*sec, recv + 3601*sec, 10, 1000, 0, fixFuture, false, recv - sec, recv},
		{"past (uptime reset)", recv - 86400*sec, recv - 86399*sec, 10, 1000, 0, fixPast, false, recv - sec, recv},
		{"negative duration", recv - sec, recv - 2*sec, 10, 1000, 0, fixDuration, false, recv - 2*sec, recv - 2*sec},
		{"too long", recv - 86400*sec, recv, 10, 1000, 0, fixDuration, false, recv - int64(31*time.Minute), recv},
		{"9 Mpps on 1 GbE", recv - sec, recv, 9000000, 9000000 * 64, 0, fixNone, true, recv - sec, recv},
		{"1.5 Gbps on 1 GbE", recv - sec, recv, 125000, 125000 * 1500, 0, fixNone, true, recv - sec, recv},
		{"1.9 Mpps of minimum frames fits", recv - sec, recv, 1900000, 1900000 * 64, 0, fixNone, false, recv - sec, recv},
		{"sampled up to garbage", recv - sec, recv, 3000, 3000 * 64, 1000, fixNone, true, recv - sec, recv},
		{"absurd counters without a link", recv - sec, recv, 1 << 62, 1 << 62, 1 << 20, fixNone, true, recv - sec, recv},
		{"long flow at its true rate is fine", recv - 60*sec, recv, 480000, 480000 * 1400, 0, fixNone, false, recv - 60*sec, recv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := flow.Record{Start: tc.start, End: tc.end, Packets: tc.pkts, Bytes: tc.bytes, SamplingRate: tc.rate, Proto: flow.ProtoUDP}
			eng := e
			if tc.name == "absurd counters without a link" {
				eng = e0
			}
			n, fix, garbage := eng.normalize(&r, recv)
			if fix != tc.fix || garbage != tc.garbage || n.start != tc.wantStart || n.end != tc.wantEnd {
				t.Errorf("got fix %d garbage %v [%d, %d], want fix %d garbage %v [%d, %d]",
					fix, garbage, n.start-recv, n.end-recv, tc.fix, tc.garbage, tc.wantStart-recv, tc.wantEnd-recv)
			}
		})
	}
}

func TestPrefixTable(t *testing.T) {
	ps := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2001:db8:1::/64"), netip.MustParsePrefix("0.0.0.0/0"),
		netip.MustParsePrefix("::ffff:192.168.0.0/112"),
	}
	tab := newPrefixTable(ps)
	for _, tc := range []struct {
		addr string
		want int32
	}{
		{"10.2.3.4", 0}, {"10.1.9.9", 1}, {"10.1.2.3", 2}, {"11.0.0.1", 5},
		{"2001:db8:2::1", 3}, {"2001:db8:1::9", 4}, {"2001:db9::1", -1},
		{"192.168.7.7", 6},
	} {
		if got := tab.lookup(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%s: got %d want %d", tc.addr, got, tc.want)
		}
	}
}

func TestConfigurationErrors(t *testing.T) {
	for name, mod := range map[string]func(*Configuration){
		"no networks":   func(c *Configuration) { c.Networks = nil },
		"window":        func(c *Configuration) { c.Window = 1500 * time.Millisecond },
		"shards":        func(c *Configuration) { c.Shards = 3 },
		"max hosts":     func(c *Configuration) { c.MaxHosts = 0 },
		"end fraction":  func(c *Configuration) { c.EndFraction = 2 },
		"fast factor":   func(c *Configuration) { c.FastFactor = 0.5 },
		"unnamed group": func(c *Configuration) { c.HostGroups = []HostGroup{{}} },
	} {
		cfg := testConfig()
		mod(&cfg)
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestHostsAndTotals checks the query side: sorting, limits, totals,
// networks, both directions.
func TestHostsAndTotals(t *testing.T) {
	s := newSim(t, testConfig(),
		&source{from: 0, to: 30 * time.Second, pps: 1000, size: 100, flows: 2, record: udpTo("10.0.0.1", 0)},
		&source{from: 0, to: 30 * time.Second, pps: 3000, size: 100, flows: 2, record: udpTo("10.0.0.2", 0)},
		&source{from: 0, to: 30 * time.Second, pps: 2000, size: 1000, flows: 2, record: udpFrom("10.0.0.1")},
		&source{from: 0, to: 30 * time.Second, pps: 500, size: 100, flows: 2, record: synTo("2001:db8::9")},
	)
	s.run(20*time.Second + 500*time.Millisecond)
	hosts := s.e.Hosts(In, SortPPS, 2)
	if len(hosts) != 2 || hosts[0].IP.String() != "10.0.0.2" || hosts[1].IP.String() != "10.0.0.1" {
		t.Fatalf("hosts %+v", hosts)
	}
	if hosts[0].PPS != 3000 || hosts[0].UDPPPS != 3000 || hosts[0].BPS != 3000*800 || hosts[0].Flows != 2 {
		t.Errorf("rates %+v", hosts[0].Rates)
	}
	out := s.e.Hosts(Out, SortBPS, 0)
	if len(out) != 1 || out[0].BPS != 2000*8000 {
		t.Errorf("out %+v", out)
	}
	in6, _, ok := s.e.Host(netip.MustParseAddr("2001:db8::9"))
	if !ok || in6.SYNPPS != 500 || in6.TCPPPS != 500 {
		t.Errorf("v6 host %+v %v", in6, ok)
	}
	tin, tout := s.e.Totals()
	if tin.PPS != 4500 || tout.PPS != 2000 {
		t.Errorf("totals %v %v", tin.PPS, tout.PPS)
	}
	nets := s.e.Networks()
	if len(nets) != 2 || nets[0].In.PPS != 4000 || nets[1].In.PPS != 500 {
		t.Errorf("networks %+v", nets)
	}
	// Idle hosts are forgotten.
	s.run(5 * time.Minute)
	if n := s.e.Stats().HostsTracked; n != 0 {
		t.Errorf("%d hosts still tracked after idling", n)
	}
}

// TestMaxHosts: past MaxHosts a new host takes the place of a tracked one
// (84 new hosts, 84 evicted), and every record still counts in the totals.
func TestMaxHosts(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHosts = 16
	cfg.Shards = 1
	e, err := New(cfg, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]flow.Record, 100)
	for i := range recs {
		recs[i] = flow.Record{SrcAddr: netip.MustParseAddr("198.51.100.1"), DstAddr: netip.AddrFrom4([4]byte{10, 0, 5, byte(i)}),
			Received: t0.UnixNano(), Start: t0.UnixNano() - 1e9, End: t0.UnixNano(), Packets: 1, Bytes: 100, Proto: flow.ProtoUDP}
	}
	e.Consume(recs)
	if st := e.Stats(); st.HostsTracked != 16 || st.HostsEvicted != 84 || st.UntrackedRecords != 0 {
		t.Errorf("stats %+v", st)
	}
	e.Tick(t0.Add(time.Second))
	if in, _ := e.Totals(); in.PPS != 100.0/5 {
		t.Errorf("total %v pps, want %v (100 packets over the 5 s window)", in.PPS, 100.0/5)
	}
	if st := e.Stats(); st.UntrackedInPPS != 84.0/5 {
		t.Errorf("untracked %v pps, want the evicted hosts' %v", st.UntrackedInPPS, 84.0/5)
	}
}

// TestRetention: ended attacks are kept (the last RetainEndedCount, or
// those younger than RetainEnded) and bounded.
func TestRetention(t *testing.T) {
	cfg := testConfig()
	cfg.RetainEndedCount = 3
	cfg.RetainEnded = 10 * time.Minute
	cfg.MaxEnded = 5
	cfg.EndAfter = 2 * time.Second
	var srcs []*source
	for i := 0; i < 8; i++ {
		from := time.Duration(i) * 2 * time.Minute
		srcs = append(srcs, &source{from: from, to: from + 10*time.Second, pps: 60000, flows: 10,
			record: udpTo(fmt.Sprintf("10.0.6.%d", i+1), 0)})
	}
	s := newSim(t, cfg, srcs...)
	s.run(17 * time.Minute)
	all := s.e.Attacks(false)
	if len(all) != 4 {
		t.Fatalf("%d attacks kept, want 4 (ended less than 10 min ago)", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Errorf("not newest first / ids not increasing: %s, %s", all[i-1].ID, all[i].ID)
		}
	}
	s.run(40 * time.Minute)
	if n := len(s.e.Attacks(false)); n != 3 {
		t.Errorf("%d attacks kept after 40 min, want the last 3", n)
	}
	if n := len(s.e.Attacks(true)); n != 0 {
		t.Errorf("%d active", n)
	}
}

// TestConcurrentConsume runs several consumers and Tick at once (meant for
// -race) and checks nothing is lost.
func TestConcurrentConsume(t *testing.T) {
	cfg := testConfig()
	now := t0.Add(10 * time.Second)
	e, err := New(cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	const workers, batches, per = 4, 200, 32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			recs := make([]flow.Record, per)
			for b := 0; b < batches; b++ {
				for i := range recs {
					recs[i] = flow.Record{
						SrcAddr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), DstAddr: netip.AddrFrom4([4]byte{10, 0, byte(w), byte(b)}),
						Received: now.UnixNano() - 5e8, Start: now.UnixNano() - 15e8, End: now.UnixNano() - 6e8,
						Packets: 10, Bytes: 1000, Proto: flow.ProtoUDP, SrcPort: 53, DstPort: 1000,
					}
				}
				e.Consume(recs)
			}
		}(w)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				e.Tick(now)
				e.Hosts(In, SortPPS, 10)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	e.Tick(now.Add(time.Second))
	in, _ := e.Totals()
	want := float64(workers*batches*per*10) / 5
	if in.PPS != want {
		t.Errorf("total %v pps, want %v", in.PPS, want)
	}
	if st := e.Stats(); st.Accounted != workers*batches*per || st.HostsTracked != workers*batches {
		t.Errorf("stats %+v", st)
	}
}

func TestFlowLine(t *testing.T) {
	r := flow.Record{
		SrcAddr: netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("2001:db8::2"),
		SrcPort: 443, DstPort: 51000, Proto: flow.ProtoTCP, TCPFlags: flow.TCPFlagSYN | flow.TCPFlagACK,
		Packets: 12, Bytes: 9000, Start: t0.UnixNano(), SamplingRate: 0,
	}
	want := "2026-11-25 12:00:00.000 [2001:db8::1]:443 > [2001:db8::2]:51000 protocol: tcp flags: syn,ack packets: 12 size: 9000 bytes sample ratio: 1"
	if got := FlowLine(&r, 1); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestClassify(t *testing.T) {
	mk := func(pps, bytesPerPkt float64, cats ...int) vec {
		var v vec
		v[mPPS], v[mBPS] = pps, pps*bytesPerPkt*8
		for _, c := range cats {
			v[mPPS+c], v[mBPS+c] = pps, pps*bytesPerPkt*8
		}
		return v
	}
	for _, tc := range []struct {
		name string
		v    vec
		port uint16
		want string
	}{
		{"udp", mk(1000, 500, catUDP), 0, "udp_flood"},
		{"small packets from 53 are not amplification", mk(1000, 80, catUDP), 53, "udp_flood"},
		{"dns", mk(1000, 1400, catUDP), 53, "dns_amplification"},
		{"ssdp", mk(1000, 300, catUDP), 1900, "ssdp_amplification"},
		{"cldap", mk(1000, 1400, catUDP), 389, "cldap_amplification"},
		{"chargen", mk(1000, 1000, catUDP), 19, "chargen_amplification"},
		{"snmp", mk(1000, 1000, catUDP), 161, "snmp_amplification"},
		{"ws-discovery", mk(1000, 1000, catUDP), 3702, "other_amplification"},
		{"syn", mk(1000, 60, catTCP, catSYN), 0, "syn_flood"},
		{"tcp", mk(1000, 60, catTCP), 0, "tcp_flood"},
		{"icmp", mk(1000, 60, catICMP), 0, "icmp_flood"},
		{"frag", mk(1000, 1400, catUDP, catFrag), 0, "ip_fragmentation_flood"},
		{"gre", mk(1000, 1400), 0, "unknown"},
	} {
		size := 0.0
		if tc.v[mPPS] > 0 {
			size = tc.v[mBPS] / 8 / tc.v[mPPS]
		}
		if got, _ := classify(&tc.v, tc.port, size); got != tc.want {
			t.Errorf("%s: got %s want %s", tc.name, got, tc.want)
		}
	}
}

// TestVectorChange: one attack whose vector changes from UDP to SYN keeps
// its identity and takes the dominant type.
func TestVectorChange(t *testing.T) {
	udp := &source{from: 10 * time.Second, to: 30 * time.Second, pps: 60000, flows: 50, record: udpTo("10.0.0.30", 0)}
	syn := &source{from: 30 * time.Second, to: 50 * time.Second, pps: 90000, size: 60, flows: 500, record: synTo("10.0.0.30")}
	s := newSim(t, testConfig(), udp, syn)
	s.tickPhase = 300 * time.Millisecond
	s.run(90 * time.Second)
	starts := s.starts()
	if len(starts) != 1 || starts[0].Attack.Type != "udp_flood" {
		t.Fatalf("starts %+v", starts)
	}
	var types []string
	for _, ev := range s.events {
		if ev.Attack.ID == starts[0].Attack.ID && (len(types) == 0 || types[len(types)-1] != ev.Attack.Type) {
			types = append(types, ev.Attack.Type)
		}
	}
	if fmt.Sprint(types) != "[udp_flood syn_flood]" {
		t.Errorf("types over the attack: %v", types)
	}
	a, _ := s.e.Attack(starts[0].Attack.ID)
	if a.EndedAt.IsZero() || a.PeakPPS < 90000 {
		t.Errorf("final %+v", a)
	}
}

// FuzzConsume: any record, however absurd, is accounted or dropped without
// a panic, and rates stay finite and non-negative.
func FuzzConsume(f *testing.F) {
	f.Add(int64(0), int64(0), int64(0), uint64(1), uint64(64), uint32(0), uint8(17), uint8(0), true, []byte{10, 0, 0, 1})
	f.Add(int64(1e18), int64(-5), int64(1e9), uint64(1<<63), uint64(1<<63), uint32(1<<31), uint8(6), uint8(2), false, []byte{0x20, 1, 0xd, 0xb8})
	cfg := testConfig()
	cfg.LinkMbps = 10000
	f.Fuzz(func(t *testing.T, recv, start, end int64, pkts, bytes uint64, rate uint32, proto, flags uint8, frag bool, dst []byte) {
		now := t0
		e, err := New(cfg, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		var d netip.Addr
		switch {
		case len(dst) >= 16:
			d = netip.AddrFrom16([16]byte(dst[:16]))
		case len(dst) >= 4:
			d = netip.AddrFrom4([4]byte(dst[:4]))
		default:
			d = netip.MustParseAddr("10.0.0.1")
		}
		r := flow.Record{SrcAddr: netip.MustParseAddr("198.51.100.1"), DstAddr: d, Received: recv, Start: start, End: end,
			Packets: pkts, Bytes: bytes, SamplingRate: rate, Proto: proto, TCPFlags: flags, Fragment: frag, SrcPort: 53}
		e.Consume([]flow.Record{r, r})
		for i := 0; i < 3; i++ {
			e.Tick(now)
			now = now.Add(time.Second)
		}
		for _, h := range e.Hosts(In, SortPPS, 0) {
			if h.PPS < 0 || h.BPS < 0 || math.IsNaN(h.PPS+h.BPS+h.Flows) || math.IsInf(h.PPS+h.BPS+h.Flows, 0) {
				t.Fatalf("bad rates %+v", h)
			}
		}
	})
}
