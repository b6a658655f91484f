package detect

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/flowgen"
)

var fpVictim = netip.MustParseAddr("10.0.9.5")

// fpTraffic is a run's records, all of them in arrival order, and those
// that reach the victim split into the floods' and its own.
type fpTraffic struct {
	all, flood, own []flow.Record
}

// fpRun makes seconds of traffic: the floods on the victim (from their
// second 2) and the victim's own, inbound and outbound: the visitors of
// its servers (flowgen's background on its address: HTTPS, SSH, mail, DNS
// and NTP queries to it, QUIC, pings, long downloads) and the answers to
// its own DNS queries (from two resolvers' port 53, 100 to 400 bytes,
// 1,500 pps). Every record arrives at the end of its second.
func fpRun(t testing.TB, floods []flowgen.Flood, seconds int) fpTraffic {
	t.Helper()
	for i := range floods {
		floods[i].Target = netip.PrefixFrom(fpVictim, 32)
		if floods[i].StartAt == 0 {
			floods[i].StartAt = 2 * time.Second
		}
	}
	fl, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{Seed: 3, Floods: floods})
	if err != nil {
		t.Fatal(err)
	}
	bg, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{Seed: 4,
		Background: &flowgen.Background{Prefix: netip.PrefixFrom(fpVictim, 32), FlowsPerSecond: 100}})
	if err != nil {
		t.Fatal(err)
	}
	resolvers := []netip.Addr{netip.MustParseAddr("198.51.100.53"), netip.MustParseAddr("198.51.100.54")}
	floodRecs, bgRecs := exportedRecords(fl, seconds, 200), exportedRecords(bg, seconds, 200)
	var tr fpTraffic
	for k := range seconds {
		start := t0.Add(time.Duration(k) * time.Second)
		var answers []flow.Record
		for i := range 50 {
			size := uint64(100 + (k*50+i)*37%300)
			answers = append(answers, flow.Record{Exporter: exporterA, Format: flow.FormatIPFIX, SrcAddr: resolvers[i%2], DstAddr: fpVictim,
				SrcPort: 53, DstPort: uint16(30000 + k*50 + i), Proto: flow.ProtoUDP, Packets: 30, Bytes: 30 * size,
				Start: start.UnixNano(), End: start.Add(900 * time.Millisecond).UnixNano(),
				Received: start.Add(time.Second + time.Duration(i)*time.Millisecond).UnixNano()})
		}
		tr.all = slices.Concat(tr.all, floodRecs[k], bgRecs[k], answers)
		for _, r := range floodRecs[k] {
			if r.DstAddr == fpVictim {
				tr.flood = append(tr.flood, r)
			}
		}
		for _, r := range slices.Concat(bgRecs[k], answers) {
			if r.DstAddr == fpVictim {
				tr.own = append(tr.own, r)
			}
		}
	}
	tr.all = byArrival(tr.all)
	return tr
}

// exportedRecords are a source's records, one slice a second, as an
// exporter sends them: each second's at its end, the i-th i%spread
// milliseconds later.
func exportedRecords(src flowgen.Source, seconds, spread int) [][]flow.Record {
	out := make([][]flow.Record, seconds)
	var flows []flowgen.Flow
	for k := range seconds {
		start := t0.Add(time.Duration(k) * time.Second)
		flows = src.Second(flows[:0], k, start)
		for i := range flows {
			var r flow.Record
			flows[i].Record(&r)
			r.Exporter, r.Format = exporterA, flow.FormatIPFIX
			r.Received = start.Add(time.Second + time.Duration(i%spread)*time.Millisecond).UnixNano()
			out[k] = append(out[k], r)
		}
	}
	return out
}

// fpDetails runs the engine on the traffic and returns the victim's
// incoming attacks' AttackDetails events.
func fpDetails(t testing.TB, cfg Configuration, tr fpTraffic, until time.Duration) []Event {
	t.Helper()
	s := newSim(t, cfg)
	s.arrivals = slices.Clone(tr.all)
	s.run(until)
	var out []Event
	for _, ev := range s.events {
		if ev.Kind == AttackDetails && ev.Attack.IP == fpVictim && ev.Attack.Direction == In {
			out = append(out, ev)
		}
	}
	return out
}

// matchedShare is the part of the records' packet rate that some vector of
// f matches.
func matchedShare(f *Fingerprint, recs []flow.Record) float64 {
	var all, matched float64
	for i := range recs {
		r := &recs[i]
		w := float64(r.Packets) / max(float64(r.End-r.Start)/1e9, 1)
		all += w
		for j := range f.Vectors {
			if f.Vectors[j].Matches(r) {
				matched += w
				break
			}
		}
	}
	return matched / max(all, 1)
}

// TestFingerprintFloods: flowgen's floods on a victim that keeps serving
// and resolving: each gets the fingerprint a narrow RouterOS raw rule can
// drop, whose share is about the flood's part of the victim's traffic,
// and which matches almost none of the victim's own.
func TestFingerprintFloods(t *testing.T) {
	skipUnderRace(t)
	udp, tcp := uint8(flow.ProtoUDP), uint8(flow.ProtoTCP)
	syn := func(v Vector) Vector {
		v.TCPFlags, v.TCPMask = flow.TCPFlagSYN, flow.TCPFlagSYN|flow.TCPFlagACK
		return v
	}
	cases := []struct {
		name   string
		floods []flowgen.Flood
		want   []Vector // shares aside
		line   string   // the first vector's line, share aside
	}{
		{"dns", []flowgen.Flood{{Kind: flowgen.FloodDNSAmp, PPS: 60000}},
			[]Vector{{Protocol: udp, SrcPort: 53, SizeMin: 1200, SizeMax: 1500}}, "udp src-port 53 packet-size 1200-1500"},
		{"ntp", []flowgen.Flood{{Kind: flowgen.FloodNTPAmp, PPS: 60000}},
			[]Vector{{Protocol: udp, SrcPort: 123, SizeMin: 400, SizeMax: 530}}, "udp src-port 123 packet-size 400-530"},
		{"memcached", []flowgen.Flood{{Kind: flowgen.FloodMemcachedAmp, PPS: 60000}},
			[]Vector{{Protocol: udp, SrcPort: 11211, SizeMin: 1200, SizeMax: 1500}}, "udp src-port 11211 packet-size 1200-1500"},
		{"ssdp", []flowgen.Flood{{Kind: flowgen.FloodAmplification, SourcePort: 1900, PPS: 60000}},
			[]Vector{{Protocol: udp, SrcPort: 1900, SizeMin: 870, SizeMax: 1200}}, "udp src-port 1900 packet-size 870-1200"},
		{"syn", []flowgen.Flood{{Kind: flowgen.FloodSYN, PPS: 60000}},
			[]Vector{syn(Vector{Protocol: tcp, DstPorts: []uint16{80, 443}, SizeMin: 50, SizeMax: 70})},
			"tcp tcp-flags syn,!ack dst-port 80,443 packet-size 50-70"},
		{"fragment", []flowgen.Flood{{Kind: flowgen.FloodFragment, PPS: 60000}},
			[]Vector{{Protocol: udp, Fragment: true, SizeMin: 1300, SizeMax: 1500}}, "udp fragment packet-size 1300-1500"},
		{"udp random ports", []flowgen.Flood{{Kind: flowgen.FloodUDP, PPS: 60000}},
			[]Vector{{Protocol: udp, SizeMin: 440, SizeMax: 580}}, "udp packet-size 440-580"},
		{"dns and syn", []flowgen.Flood{{Kind: flowgen.FloodDNSAmp, PPS: 60000}, {Kind: flowgen.FloodSYN, PPS: 40000}},
			[]Vector{{Protocol: udp, SrcPort: 53, SizeMin: 1200, SizeMax: 1500},
				syn(Vector{Protocol: tcp, DstPorts: []uint16{80, 443}, SizeMin: 50, SizeMax: 70})},
			"udp src-port 53 packet-size 1200-1500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := fpRun(t, tc.floods, 8)
			details := fpDetails(t, testConfig(), tr, 8*time.Second)
			if len(details) != 1 {
				t.Fatalf("%d AttackDetails on the victim, want 1", len(details))
			}
			a := details[0].Attack
			f := a.Fingerprint
			if f == nil {
				t.Fatal("no fingerprint with the details")
			}
			got := make([]Vector, len(f.Vectors))
			for i, v := range f.Vectors {
				v.Share = 0
				got[i] = v
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("vectors %+v, want %+v", f.Vectors, tc.want)
			}
			if line := f.Vectors[0].String(); !strings.HasPrefix(line, tc.line+" share ") {
				t.Errorf("vector line %q, want %q and its share", line, tc.line)
			}
			// The flood's part of the victim's incoming traffic, and what
			// the fingerprint matches of each part.
			floodW, ownW := matchedShareWeights(tr)
			want := floodW / (floodW + ownW)
			floodHit, ownHit := matchedShare(f, tr.flood), matchedShare(f, tr.own)
			t.Logf("%s: share %.3f (vectors %v) from %d records; the flood is %.3f of the victim's packets; "+
				"the fingerprint matches %.3f of the flood's and %.4f of the victim's own",
				tc.name, f.Share, vectorLines(f), f.Records, want, floodHit, ownHit)
			if math.Abs(f.Share-want) > 0.08 {
				t.Errorf("share %.3f, the flood is %.3f of the traffic", f.Share, want)
			}
			victims := slices.Concat(tr.flood, tr.own)
			for _, v := range f.Vectors {
				one := &Fingerprint{Vectors: []Vector{v}}
				if real := matchedShare(one, victims); math.Abs(v.Share-real) > 0.08 {
					t.Errorf("%v: it matches %.3f of the traffic", v.String(), real)
				}
			}
			sum := 0.0
			for _, v := range f.Vectors {
				sum += v.Share
			}
			if f.Share > sum+1e-9 || f.Share < f.Vectors[0].Share-1e-9 {
				t.Errorf("share %.3f, vectors' %v", f.Share, vectorLines(f))
			}
			if floodHit < 0.99 {
				t.Errorf("the fingerprint matches %.3f of the flood's packets, want all", floodHit)
			}
			if ownHit > 0.02 {
				t.Errorf("the fingerprint matches %.3f of the victim's own packets", ownHit)
			}
			if !strings.Contains(a.Details, "\nFingerprint: ") || !strings.Contains(a.Details, "\n"+f.Vectors[0].String()+"\n") {
				t.Errorf("details text without the fingerprint:\n%s", a.Details)
			}
		})
	}
}

func matchedShareWeights(tr fpTraffic) (flood, own float64) {
	w := func(recs []flow.Record) (s float64) {
		for i := range recs {
			s += float64(recs[i].Packets) / max(float64(recs[i].End-recs[i].Start)/1e9, 1)
		}
		return s
	}
	return w(tr.flood), w(tr.own)
}

func vectorLines(f *Fingerprint) []string {
	var out []string
	for i := range f.Vectors {
		out = append(out, f.Vectors[i].String())
	}
	return out
}

// TestFingerprintSharesAreWhatItMatches: on a varied sample (a victim's
// own traffic: TCP to several services, DNS answers, QUIC, pings, long
// downloads), each vector's share is the part of the packet rate it
// matches, and the fingerprint's share what some vector matches.
func TestFingerprintSharesAreWhatItMatches(t *testing.T) {
	tr := fpRun(t, nil, 3)
	f := fingerprintOf(tr.own, 1, nil)
	if f == nil || f.Records != len(tr.own) || len(f.Vectors) < 2 {
		t.Fatalf("fingerprint %+v of %d records: want two vectors or more", f, len(tr.own))
	}
	for _, v := range f.Vectors {
		if got := matchedShare(&Fingerprint{Vectors: []Vector{v}}, tr.own); math.Abs(got-v.Share) > 1e-9 {
			t.Errorf("%s: it matches %.4f", v.String(), got)
		}
	}
	if got := matchedShare(f, tr.own); math.Abs(got-f.Share) > 1e-9 {
		t.Errorf("share %.4f, the vectors match %.4f", f.Share, got)
	}
	t.Logf("the victim's own traffic: %v, share %.3f", vectorLines(f), f.Share)
}

// fpRec is a record for fingerprintOf: packets of size bytes over a second.
func fpRec(src string, proto uint8, srcPort, dstPort uint16, flags uint8, packets, size uint64) flow.Record {
	return flow.Record{SrcAddr: netip.MustParseAddr(src), DstAddr: fpVictim, Proto: proto, SrcPort: srcPort, DstPort: dstPort,
		TCPFlags: flags, Packets: packets, Bytes: packets * size, Start: t0.UnixNano(), End: t0.Add(time.Second).UnixNano()}
}

func TestFingerprintOf(t *testing.T) {
	udp, tcp := uint8(flow.ProtoUDP), uint8(flow.ProtoTCP)
	reflectors := func(port uint16, n int, packets, size uint64) []flow.Record {
		var out []flow.Record
		for i := range n {
			out = append(out, fpRec(fmt.Sprintf("198.18.0.%d", i+1), udp, port, uint16(40000+i), 0, packets, size))
		}
		return out
	}
	join := func(parts ...[]flow.Record) []flow.Record { return slices.Concat(parts...) }
	sampled := func(r flow.Record) flow.Record { r.SamplingRate = 1000; return r }
	cases := []struct {
		name    string
		sample  []flow.Record
		want    []string // vector lines
		share   float64
		records int
	}{
		{"empty", nil, nil, 0, 0},
		{"no packets", []flow.Record{fpRec("198.18.0.1", udp, 53, 1, 0, 0, 0)}, nil, 0, 0},
		{"two reflector ports", join(reflectors(53, 10, 600, 1400), reflectors(123, 10, 400, 468)),
			[]string{"udp src-port 53 packet-size 1200-1500 share 60%", "udp src-port 123 packet-size 400-530 share 40%"}, 1, 20},
		{"one address per port is no reflector", []flow.Record{
			fpRec("198.18.0.1", udp, 40001, 80, 0, 500, 512), fpRec("198.18.0.2", udp, 40002, 80, 0, 500, 512)},
			[]string{"udp dst-port 80 packet-size 440-580 share 100%"}, 1, 2},
		{"more vectors than the bound", join(reflectors(53, 2, 100, 1000), reflectors(123, 2, 100, 1000), reflectors(19, 2, 100, 1000),
			reflectors(1900, 2, 100, 1000), reflectors(389, 2, 90, 1000)),
			[]string{"udp src-port 19 packet-size 870-1200 share 20%", "udp src-port 53 packet-size 870-1200 share 20%",
				"udp src-port 123 packet-size 870-1200 share 20%", "udp src-port 1900 packet-size 870-1200 share 20%"}, 0.816, 10},
		{"under the minimum share", join(reflectors(53, 20, 100, 1400), []flow.Record{fpRec("198.18.1.1", tcp, 443, 5000, 0x18, 100, 1400)}),
			[]string{"udp src-port 53 packet-size 1200-1500 share 95%"}, 0.952, 21},
		{"the victim's own traffic is under a third of the flood's", join(reflectors(53, 16, 100, 1400),
			[]flow.Record{fpRec("198.18.1.1", tcp, 5000, 443, 0x18, 200, 800), fpRec("198.18.1.2", tcp, 5001, 443, 0x18, 200, 800)}),
			[]string{"udp src-port 53 packet-size 1200-1500 share 80%"}, 0.8, 18},
		{"nothing characterises it", func() []flow.Record {
			var out []flow.Record
			for p := range 30 {
				out = append(out, fpRec("198.18.0.1", uint8(100+p), 0, 0, 0, 100, 100))
			}
			return out
		}(), []string{}, 0, 30},
		{"a first fragment has its ports", []flow.Record{
			func() flow.Record { r := fpRec("198.18.0.1", udp, 53, 7, 0, 100, 1500); r.Fragment = true; return r }(),
			func() flow.Record { r := fpRec("198.18.0.2", udp, 53, 9, 0, 100, 1500); r.Fragment = true; return r }(),
			func() flow.Record { r := fpRec("198.18.0.1", udp, 0, 0, 0, 100, 1000); r.Fragment = true; return r }(),
		}, []string{"udp src-port 53 packet-size 1300-1500 share 67%", "udp fragment packet-size 870-1200 share 33%"}, 1, 3},
		{"a long flow weighs its rate", join(reflectors(53, 4, 1000, 1400), []flow.Record{func() flow.Record {
			r := fpRec("198.18.1.1", tcp, 443, 5000, 0x18, 60*1000, 1400)
			r.Start = t0.Add(-59 * time.Second).UnixNano()
			return r
		}()}), []string{"udp src-port 53 packet-size 1200-1500 share 80%"}, 0.8, 5},
		{"sampling rate", []flow.Record{sampled(fpRec("198.18.0.1", tcp, 1000, 80, 0x02, 5, 60)), sampled(fpRec("198.18.0.4", tcp, 1003, 80, 0x02, 5, 60)),
			fpRec("198.18.0.2", tcp, 1001, 22, 0x1b, 2000, 60), fpRec("198.18.0.3", tcp, 1002, 22, 0x1b, 1000, 60)},
			[]string{"tcp tcp-flags syn,!ack dst-port 80 packet-size 50-70 share 77%"}, 0.769, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := fingerprintOf(tc.sample, 1, nil)
			if tc.want == nil {
				if f != nil {
					t.Fatalf("fingerprint %+v, want none", f)
				}
				return
			}
			if f == nil {
				t.Fatal("no fingerprint")
			}
			if got := vectorLines(f); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Errorf("vectors %q, want %q", got, tc.want)
			}
			if math.Abs(f.Share-tc.share) > 0.001 || f.Records != tc.records {
				t.Errorf("share %.4f of %d records, want %.3f of %d", f.Share, f.Records, tc.share, tc.records)
			}
			// The same sample in reverse gives the same fingerprint.
			rev := slices.Clone(tc.sample)
			slices.Reverse(rev)
			if g := fingerprintOf(rev, 1, nil); !slices.Equal(vectorLines(g), vectorLines(f)) {
				t.Errorf("reversed: %q, want %q", vectorLines(g), vectorLines(f))
			}
		})
	}
}

func TestFingerprintOfCounters(t *testing.T) {
	rates := func(all, tcp, udp, icmp, syn, frag float64) *vec {
		var v vec
		v[mPPS+catAll], v[mPPS+catTCP], v[mPPS+catUDP], v[mPPS+catICMP] = all, tcp, udp, icmp
		v[mPPS+catSYN], v[mPPS+catFrag] = syn, frag
		return &v
	}
	cases := []struct {
		name string
		v    *vec
		port uint16
		v6   bool
		want []string
	}{
		{"syn", rates(100, 95, 5, 0, 90, 0), 0, false, []string{"tcp tcp-flags syn,!ack share 90%"}},
		{"dns", rates(100, 3, 97, 0, 0, 0), 53, false, []string{"udp src-port 53 share 97%"}},
		{"fragments", rates(100, 0, 100, 0, 0, 60), 0, false, []string{"fragment share 60%", "udp share 40%"}},
		{"fragments, little else", rates(100, 0, 100, 0, 0, 80), 0, false, []string{"fragment share 80%"}},
		{"icmpv6", rates(100, 10, 0, 90, 0, 0), 0, true, []string{"icmpv6 share 90%"}},
		{"udp and ack", rates(100, 40, 60, 0, 1, 0), 0, false, []string{"udp share 60%", "tcp share 40%"}},
	}
	for _, tc := range cases {
		f := fingerprintOfCounters(tc.v, tc.port, tc.v6)
		if got := vectorLines(f); !slices.Equal(got, tc.want) || f.Records != 0 {
			t.Errorf("%s: %q (records %d), want %q", tc.name, got, f.Records, tc.want)
		}
	}
	if f := fingerprintOfCounters(rates(0, 0, 0, 0, 0, 0), 0, false); f != nil {
		t.Errorf("no packets: %+v, want none", f)
	}
}

func TestRoundSizes(t *testing.T) {
	cases := []struct {
		min, max float64
		lo, hi   uint16
	}{
		{1400, 1400, 1200, 1500},
		{468, 468, 400, 530},
		{60, 60, 50, 70},
		{40, 1500, 30, 1500},
		{1500, 1500, 1300, 1500},
		{1000, 9000, 870, 10200},
		{30000, 65000, 26200, 65535},
		{1, 1, 0, 10},
	}
	for _, tc := range cases {
		if lo, hi := roundSizes(tc.min, tc.max); lo != tc.lo || hi != tc.hi {
			t.Errorf("roundSizes(%v, %v) = %d-%d, want %d-%d", tc.min, tc.max, lo, hi, tc.lo, tc.hi)
		}
	}
}

// TestFingerprintSection is the golden of the details text's section.
func TestFingerprintSection(t *testing.T) {
	cases := []struct {
		f    Fingerprint
		want string
	}{
		{Fingerprint{Share: 0.97, Records: 40, Vectors: []Vector{
			{Protocol: flow.ProtoUDP, SrcPort: 53, SizeMin: 1200, SizeMax: 1500, Share: 0.6},
			{Protocol: flow.ProtoTCP, TCPFlags: flow.TCPFlagSYN, TCPMask: flow.TCPFlagSYN | flow.TCPFlagACK, DstPorts: []uint16{80, 443},
				SizeMin: 50, SizeMax: 70, Share: 0.37},
			{Protocol: flow.ProtoUDP, Fragment: true, SizeMin: 1300, SizeMax: 1500, Share: 0.0},
		}}, `
Fingerprint: 97% of the attack's packets, from 40 sampled records
udp src-port 53 packet-size 1200-1500 share 60%
tcp tcp-flags syn,!ack dst-port 80,443 packet-size 50-70 share 37%
udp fragment packet-size 1300-1500 share 0%
`},
		{Fingerprint{Records: 30}, `
Fingerprint: none (no kind of packet carries 5% of the attack), from 30 sampled records
`},
		{Fingerprint{Share: 0.9, Vectors: []Vector{{Fragment: true, Share: 0.9}}}, `
Fingerprint: 90% of the attack's packets, from the counters (no flow sample)
fragment share 90%
`},
		{Fingerprint{Share: 1, Records: 1, Vectors: []Vector{{Protocol: 47, TCPFlags: 0x01, TCPMask: 0x3f, Share: 1}}}, `
Fingerprint: 100% of the attack's packets, from 1 sampled records
47 tcp-flags fin,!syn,!rst,!psh,!ack,!urg share 100%
`},
	}
	for _, tc := range cases {
		if got := string(appendFingerprint(nil, &tc.f)); got != tc.want {
			t.Errorf("got\n%s\nwant\n%s", got, tc.want)
		}
	}
}

// TestRefingerprint: an attack whose vector changes (a DNS amplification,
// then a SYN flood) gets a new sample, a new fingerprint and a new
// AttackDetails, not before refingerprintAfter; one whose vectors stay
// the same gets no new details.
func TestRefingerprint(t *testing.T) {
	skipUnderRace(t)
	tr := fpRun(t, []flowgen.Flood{
		{Kind: flowgen.FloodDNSAmp, PPS: 60000, StartAt: 2 * time.Second, StopAt: 12 * time.Second},
		{Kind: flowgen.FloodSYN, PPS: 60000, StartAt: 12 * time.Second},
	}, 60)
	details := fpDetails(t, testConfig(), tr, 60*time.Second)
	if len(details) != 2 {
		t.Fatalf("%d AttackDetails, want 2 (the start, the vector change)", len(details))
	}
	first, second := details[0], details[1]
	if first.Attack.ID != second.Attack.ID {
		t.Fatalf("two attacks %s, %s: want one", first.Attack.ID, second.Attack.ID)
	}
	if got := vectorLines(first.Attack.Fingerprint); len(got) != 1 || !strings.HasPrefix(got[0], "udp src-port 53 ") {
		t.Errorf("first fingerprint %q, want the DNS amplification", got)
	}
	if got := vectorLines(second.Attack.Fingerprint); len(got) != 1 || !strings.HasPrefix(got[0], "tcp tcp-flags syn,!ack dst-port 80,443 ") {
		t.Errorf("second fingerprint %q, want the SYN flood", got)
	}
	if second.Attack.Type != "syn_flood" || !strings.Contains(second.Attack.Details, "Attack type: syn_flood\n") ||
		!strings.Contains(second.Attack.Details, "\ntcp tcp-flags syn,!ack") {
		t.Errorf("second details: type %s\n%s", second.Attack.Type, second.Attack.Details)
	}
	if gap := second.Time.Sub(first.Time); gap < refingerprintAfter {
		t.Errorf("new fingerprint %v after the first, want at least %v", gap, refingerprintAfter)
	}
	count := func(sample []flow.Record, match func(*flow.Record) bool) (n int) {
		for i := range sample {
			if match(&sample[i]) {
				n++
			}
		}
		return n
	}
	dns := func(r *flow.Record) bool {
		return r.Proto == flow.ProtoUDP && r.SrcPort == 53 && r.Bytes/r.Packets == 1400
	}
	syn := func(r *flow.Record) bool { return r.Proto == flow.ProtoTCP && r.TCPFlags == flow.TCPFlagSYN }
	if count(first.Attack.Sample, dns) == 0 || count(second.Attack.Sample, dns) != 0 || count(second.Attack.Sample, syn) == 0 {
		t.Errorf("samples: the first with %d DNS answers, the second with %d DNS answers and %d SYN: want it renewed",
			count(first.Attack.Sample, dns), count(second.Attack.Sample, dns), count(second.Attack.Sample, syn))
	}

	// Two vectors all along: the type may flip, the vectors stay.
	tr = fpRun(t, []flowgen.Flood{{Kind: flowgen.FloodDNSAmp, PPS: 50000}, {Kind: flowgen.FloodSYN, PPS: 50000}}, 80)
	if details := fpDetails(t, testConfig(), tr, 80*time.Second); len(details) != 1 {
		t.Errorf("%d AttackDetails for a steady two-vector attack, want 1", len(details))
	}
}

// TestFingerprintWithoutSample: an attack that holds no flow sample gets
// a fingerprint from the counters, and ended attacks count theirs in the
// bytes they hold, and shed it with their details.
func TestFingerprintWithoutSample(t *testing.T) {
	skipUnderRace(t)
	cfg := testConfig()
	cfg.SampleFlows = 0
	tr := fpRun(t, []flowgen.Flood{{Kind: flowgen.FloodDNSAmp, PPS: 60000}}, 6)
	details := fpDetails(t, cfg, tr, 6*time.Second)
	if len(details) != 1 {
		t.Fatalf("%d AttackDetails, want 1", len(details))
	}
	f := details[0].Attack.Fingerprint
	if got := vectorLines(f); f == nil || f.Records != 0 || len(got) != 1 || !strings.HasPrefix(got[0], "udp src-port 53 share ") {
		t.Fatalf("fingerprint %q (%+v), want the counters' udp src-port 53", got, f)
	}
	if !strings.Contains(details[0].Attack.Details, "from the counters (no flow sample)\nudp src-port 53 share ") {
		t.Errorf("details:\n%s", details[0].Attack.Details)
	}

	a := details[0].Attack
	with, without := attackBytes(&a), 0
	a.Fingerprint = nil
	without = attackBytes(&a)
	if with-without != fingerprintBytes(f) || fingerprintBytes(f) < int(unsafe.Sizeof(Fingerprint{})+unsafe.Sizeof(Vector{})) {
		t.Errorf("attackBytes %d with the fingerprint, %d without; fingerprintBytes %d", with, without, fingerprintBytes(f))
	}
}

// BenchmarkFingerprint: the fingerprint of one attack, made once per
// attack in Tick (never per record): from the flow sample of a DNS
// amplification plus SYN flood on a victim that keeps serving (the
// default 40 records, and the largest sample the configuration allows),
// and from the counters.
func BenchmarkFingerprint(b *testing.B) {
	tr := fpRun(b, []flowgen.Flood{{Kind: flowgen.FloodDNSAmp, PPS: 60000}, {Kind: flowgen.FloodSYN, PPS: 40000}}, 12)
	var rates vec
	rates[mPPS+catAll], rates[mPPS+catTCP], rates[mPPS+catUDP], rates[mPPS+catSYN] = 106000, 44000, 62000, 40000
	for _, n := range []int{40, 10000} {
		cfg := testConfig()
		cfg.SampleFlows = n
		cfg.DetailsFlows = n
		details := fpDetails(b, cfg, tr, 12*time.Second)
		if len(details) == 0 {
			b.Fatal("no attack")
		}
		sample := details[0].Attack.Sample
		b.Run(fmt.Sprintf("sample=%d", len(sample)), func(b *testing.B) {
			var f *Fingerprint
			for b.Loop() {
				f = fingerprintOf(sample, 1, mixOf(&rates))
			}
			if len(f.Vectors) != 2 {
				b.Fatalf("vectors %v", vectorLines(f))
			}
		})
	}
	b.Run("counters", func(b *testing.B) {
		for b.Loop() {
			fingerprintOfCounters(&rates, 53, false)
		}
	})
}

// TestGroupFingerprint: a hostgroup's attack (carpet bombing under every
// host's threshold) gets its fingerprint from its shared sample, and a
// new one when its vector changes.
func TestGroupFingerprint(t *testing.T) {
	skipUnderRace(t)
	cfg := testConfig()
	prefix := netip.MustParsePrefix("10.0.3.0/24")
	cfg.HostGroups = []HostGroup{{Name: "customers", Prefixes: []netip.Prefix{prefix}, Thresholds: cfg.Global, GroupPPS: 100000}}
	sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{Seed: 8, Floods: []flowgen.Flood{
		{Kind: flowgen.FloodDNSAmp, Target: prefix, PPS: 200000, StartAt: 2 * time.Second, StopAt: 12 * time.Second},
		{Kind: flowgen.FloodSYN, Target: prefix, PPS: 200000, StartAt: 12 * time.Second},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := newSim(t, cfg)
	s.arrivals = byArrival(slices.Concat(exportedRecords(sc, 60, 200)...))
	s.run(60 * time.Second)
	var lines [][]string
	for _, ev := range s.events {
		if ev.Kind == AttackDetails {
			if ev.Attack.Scope != ScopeGroup {
				t.Fatalf("a %s attack on %v: want only the group's", ev.Attack.Scope, ev.Attack.IP)
			}
			lines = append(lines, vectorLines(ev.Attack.Fingerprint))
		}
	}
	if len(lines) != 2 || len(lines[0]) != 1 || !strings.HasPrefix(lines[0][0], "udp src-port 53 packet-size 1200-1500 ") ||
		len(lines[1]) != 1 || !strings.HasPrefix(lines[1][0], "tcp tcp-flags syn,!ack dst-port 80,443 ") {
		t.Errorf("the group attack's fingerprints %q: want the DNS amplification's, then the SYN flood's", lines)
	}
}

// TestPortlessRecordsAreFragments: NetFlow v9 (RouterOS's export) does not
// flag fragments, so a TCP or UDP record with no ports is non-first
// fragments, flagged or not, and a fragment vector matches it; other
// protocols need the flag.
func TestPortlessRecordsAreFragments(t *testing.T) {
	frag := Vector{Protocol: flow.ProtoUDP, Fragment: true}
	tests := []struct {
		name string
		r    flow.Record
		want bool
	}{
		{"udp unflagged, no ports", flow.Record{Proto: flow.ProtoUDP}, true},
		{"udp flagged, no ports", flow.Record{Proto: flow.ProtoUDP, Fragment: true}, true},
		{"udp first fragment (ports)", flow.Record{Proto: flow.ProtoUDP, Fragment: true, SrcPort: 53, DstPort: 4444}, false},
		{"udp with a port", flow.Record{Proto: flow.ProtoUDP, DstPort: 53}, false},
		{"icmp unflagged", flow.Record{Proto: flow.ProtoICMP}, false},
	}
	for _, tt := range tests {
		if got := laterFragment(&tt.r); got != tt.want {
			t.Errorf("%s: laterFragment %v, want %v", tt.name, got, tt.want)
		}
		if tt.r.Proto == flow.ProtoUDP && frag.Matches(&tt.r) != tt.want {
			t.Errorf("%s: the fragment vector matches %v, want %v", tt.name, !tt.want, tt.want)
		}
	}
}
