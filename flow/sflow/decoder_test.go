package sflow

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/flowshield/flowshield/flow"
)

// collectSink keeps copies of what a decoder hands over.
type collectSink struct {
	records []flow.Record
	errors  []flow.ErrorKind
}

func (s *collectSink) Record(r *flow.Record)           { s.records = append(s.records, *r) }
func (s *collectSink) DecodeError(kind flow.ErrorKind) { s.errors = append(s.errors, kind) }

func decodeAll(t testing.TB, d *Decoder, payload []byte) *collectSink {
	t.Helper()
	s := &collectSink{}
	var rec flow.Record
	d.Decode(&flow.Datagram{Exporter: exporter, Payload: payload, Received: received}, &rec, s)
	return s
}

var (
	exporter = netip.MustParseAddr("10.9.8.7")
	received = int64(1_700_000_000_000_000_000)
	src4     = netip.MustParseAddr("198.51.100.1")
	dst4     = netip.MustParseAddr("203.0.113.5")
	src6     = netip.MustParseAddr("2001:db8::1")
	dst6     = netip.MustParseAddr("2001:db8:1::5")
)

func TestDecodeRecords(t *testing.T) {
	base := flow.Record{
		Exporter: exporter, Received: received, Start: received, End: received,
		Packets: 1, Format: flow.FormatSFlowV5, ObservationDomain: 77, SamplingRate: 512,
		InIf: 3, OutIf: 5,
	}
	with := func(f func(r *flow.Record)) flow.Record { r := base; f(&r); return r }
	udpPkt := ethernet(etherIPv4, nil, ipv4(17, src4, dst4, 1000, 0, udp(1234, 53, 40)))
	tests := []struct {
		name   string
		sample []byte
		want   flow.Record
	}{
		{
			name:   "ethernet ipv4 udp",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 1018, 4, udpPkt), extSwitch()),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes = src4, dst4, 17, 1234, 53, 1000
			}),
		},
		{
			name: "qinq ipv4 tcp syn",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 82, 4,
				ethernet(etherIPv4, []uint16{10, 20}, ipv4(6, src4, dst4, 40, 0x4000, tcp(4444, 80, flow.TCPFlagSYN))))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes, r.TCPFlags = src4, dst4, 6, 4444, 80, 40, flow.TCPFlagSYN
			}),
		},
		{
			name: "ipv4 first fragment keeps ports",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 1518, 4,
				ethernet(etherIPv4, nil, ipv4(17, src4, dst4, 1500, 0x2000, udp(5, 6, 20))))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes, r.Fragment = src4, dst4, 17, 5, 6, 1500, true
			}),
		},
		{
			name: "ipv4 later fragment has no ports",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 1518, 4,
				ethernet(etherIPv4, nil, ipv4(17, src4, dst4, 1500, 185, udp(5, 6, 20))))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.Bytes, r.Fragment = src4, dst4, 17, 1500, true
			}),
		},
		{
			name: "ipv4 icmp echo in dst port",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 102, 4,
				ethernet(etherIPv4, nil, ipv4(1, src4, dst4, 84, 0, []byte{8, 0, 0, 0, 0, 1, 0, 1})))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.DstPort, r.Bytes = src4, dst4, 1, 0x0800, 84
			}),
		},
		{
			name: "ipv6 udp behind hop-by-hop and fragment header",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 1518, 4,
				ethernet(etherIPv6, nil, ipv6(0, src6, dst6, 1460,
					append([]byte{44, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 1, 0, 0, 0, 9}, udp(500, 4500, 8)...))))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes, r.Fragment = src6, dst6, 17, 500, 4500, 1500, true
			}),
		},
		{
			name: "ipv6 later fragment has no ports",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 1518, 4,
				ethernet(etherIPv6, nil, ipv6(44, src6, dst6, 1460,
					append([]byte{6, 0, 0x05, 0x00, 0, 0, 0, 9}, tcp(1, 2, 0x12)...))))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.Bytes, r.Fragment = src6, dst6, 6, 1500, true
			}),
		},
		{
			name: "mpls ipv4",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 82, 4,
				ethernet(etherMPLS, nil, append([]byte{0, 1, 0, 64, 0, 2, 1, 64}, ipv4(17, src4, dst4, 56, 0, udp(7, 8, 28))...)))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes = src4, dst4, 17, 7, 8, 56
			}),
		},
		{
			name:   "header protocol ipv4 without link layer",
			sample: flowSample(1, 0, 2, rawHeader(headerIPv4, 50, 18, ipv4(1, src4, dst4, 32, 0, []byte{0, 0, 0xfb, 0xa3}))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.Bytes, r.SamplingRate, r.InIf, r.OutIf = src4, dst4, 1, 32, 1, 0, 2
			}),
		},
		{
			name:   "arp frame falls back to frame length",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 64, 4, ethernet(0x0806, nil, make([]byte, 28)))),
			want:   with(func(r *flow.Record) { r.Bytes = 64 - 4 - 14 }),
		},
		{
			name: "ipv4 total length zero (TSO) falls back to frame length",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 9018, 4,
				ethernet(etherIPv4, nil, ipv4(6, src4, dst4, 0, 0, tcp(1, 2, 0x10))))),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags, r.Bytes = src4, dst4, 6, 1, 2, 0x10, 9000
			}),
		},
		{
			name:   "sampled ipv4 record",
			sample: flowSample(512, 3, 5, extSwitch(), sampledIPv4(576, 6, src4, dst4, 1, 2, 0x18)),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags, r.Bytes = src4, dst4, 6, 1, 2, 0x18, 576
			}),
		},
		{
			name:   "sampled ipv6 record",
			sample: flowSample(512, 3, 5, sampledIPv6(1280, 17, src6, dst6, 9, 10, 0)),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes = src6, dst6, 17, 9, 10, 1280
			}),
		},
		{
			name: "first ip record wins",
			sample: flowSample(512, 3, 5, rawHeader(headerEthernet, 1018, 4, udpPkt),
				sampledIPv4(9999, 6, dst4, src4, 1, 2, 0)),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes = src4, dst4, 17, 1234, 53, 1000
			}),
		},
		{
			name: "expanded sample interfaces",
			sample: expandedFlowSample(4096, 0, 369098852, 0, 369098851,
				rawHeader(headerEthernet, 1018, 4, udpPkt)),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes = src4, dst4, 17, 1234, 53, 1000
				r.SamplingRate, r.InIf, r.OutIf = 4096, 369098852, 369098851
			}),
		},
		{
			name:   "discarded, multiple and internal interfaces map to 0",
			sample: flowSample(512, 0x3fffffff, 0x40000001, sampledIPv4(40, 6, src4, dst4, 1, 2, 0)),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes, r.InIf, r.OutIf = src4, dst4, 6, 1, 2, 40, 0, 0
			}),
		},
		{
			name:   "expanded multiple output interfaces map to 0",
			sample: expandedFlowSample(512, 0, 3, 2, 4, sampledIPv4(40, 6, src4, dst4, 1, 2, 0)),
			want: with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes, r.OutIf = src4, dst4, 6, 1, 2, 40, 0
			}),
		},
		{
			name:   "no packet record still counts the packet",
			sample: flowSample(512, 3, 5, extSwitch()),
			want:   base,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(DefaultConfiguration())
			s := decodeAll(t, d, datagram(77, counterSample(), tt.sample))
			if len(s.errors) != 0 {
				t.Fatalf("decode errors %v", s.errors)
			}
			if len(s.records) != 1 {
				t.Fatalf("got %d records, want 1", len(s.records))
			}
			if s.records[0] != tt.want {
				t.Errorf("record\n got %+v\nwant %+v", s.records[0], tt.want)
			}
			st := d.Stats()
			if st.FlowSamples != 1 || st.CounterSamples != 1 || st.Records != 1 || st.Datagrams != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestDecodeBadInput(t *testing.T) {
	good := benchDatagram(2)
	patch := func(b []byte, off int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.BigEndian.PutUint32(c[off:], v)
		return c
	}
	// Offsets in benchDatagram: header 28 bytes, then sample 0 at 28:
	// format 28, length 32, body 36 (record count at 36+28=64), first record
	// at 68 (format), 72 (length), raw header fields from 76, header length
	// at 88.
	hdr := func(b []byte) []byte { return b }
	tests := []struct {
		name    string
		payload []byte
		want    flow.ErrorKind
	}{
		{"empty", nil, flow.ErrTruncated},
		{"short header", hdr(good[:20]), flow.ErrTruncated},
		{"version 4", patch(good, 0, 4), flow.ErrUnknownVersion},
		{"netflow v9 on the sflow port", patch(good, 0, 9<<16|5), flow.ErrUnknownVersion},
		{"agent address type 3", patch(good, 4, 3), flow.ErrUnknownVersion},
		{"absurd sample count", patch(good, 24, 0x30303030), flow.ErrTooManyRecords},
		{"sample count beyond bytes", patch(good, 24, 200), flow.ErrTooManyRecords},
		{"sample count above bound", datagram(1, make([][]byte, 300)...), flow.ErrTooManyRecords},
		{"sample length past datagram", patch(good, 32, 0xfffffff0), flow.ErrTruncated},
		{"truncated datagram", good[:len(good)-10], flow.ErrTruncated},
		{"sample shorter than fixed fields", datagram(1, sample(sampleFlow, make([]byte, 20))), flow.ErrBadSample},
		{"absurd record count", patch(good, 64, 0x30303030), flow.ErrTooManyRecords},
		{"record length past sample", patch(good, 72, 1000), flow.ErrBadSample},
		{"raw header length lies", patch(good, 88, 129), flow.ErrBadSample},
		{"raw header record too short", datagram(1, flowSample(1, 0, 0, record(recordRawHeader, make([]byte, 12)))), flow.ErrBadSample},
		{"sampled ipv4 too short", datagram(1, flowSample(1, 0, 0, record(recordSampledIPv4, make([]byte, 28)))), flow.ErrBadSample},
		{"sampled ipv6 too short", datagram(1, flowSample(1, 0, 0, record(recordSampledIPv6, make([]byte, 52)))), flow.ErrBadSample},
		{"counter sample record count lies", patch(datagram(1, counterSample()), 28+8+8, 0x30303030), flow.ErrTooManyRecords},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(DefaultConfiguration())
			s := decodeAll(t, d, tt.payload)
			if len(s.records) != 0 {
				t.Errorf("got %d records from a bad datagram", len(s.records))
			}
			if len(s.errors) != 1 || s.errors[0] != tt.want {
				t.Errorf("errors %v, want [%v]", s.errors, tt.want)
			}
			if err := d.Check(tt.payload); err == nil {
				t.Errorf("Check accepted it")
			}
			if st := d.Stats(); st.Rejected != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	// The unpatched datagram is good, so each case above fails for its patch.
	if s := decodeAll(t, New(DefaultConfiguration()), good); len(s.errors) != 0 || len(s.records) != 2 {
		t.Fatalf("good datagram: %d records, errors %v", len(s.records), s.errors)
	}
}

// TestDecodeSamplingRateBound: a declared rate above flow.MaxSamplingRate
// (a forged 2^32-1 among them) is not believed. The sample is still a
// record, at rate 0 (the collector's SAMPLING_RATE), and one
// ErrBadSamplingRate is reported for it; the other samples keep theirs.
func TestDecodeSamplingRateBound(t *testing.T) {
	pkt := sampledIPv4(60, 17, src4, dst4, 1, 2, 0)
	tests := []struct {
		name     string
		rate     uint32
		want     uint32
		refusals int
	}{
		{"one", 1, 1, 0},
		{"typical", 2048, 2048, 0},
		{"bound", flow.MaxSamplingRate, flow.MaxSamplingRate, 0},
		{"above bound", flow.MaxSamplingRate + 1, 0, 1},
		{"juniper ex max", 1_073_741_823, 0, 1},
		{"forged 2^32-1", 0xffffffff, 0, 1},
	}
	for _, tt := range tests {
		for _, expanded := range []bool{false, true} {
			smp := flowSample(tt.rate, 1, 2, pkt)
			if expanded {
				smp = expandedFlowSample(tt.rate, 0, 1, 0, 2, pkt)
			}
			s := decodeAll(t, New(DefaultConfiguration()), datagram(1, smp, flowSample(100, 1, 2, pkt)))
			if len(s.records) != 2 || s.records[0].SamplingRate != tt.want || s.records[1].SamplingRate != 100 {
				t.Errorf("%s (expanded %v): %d records, rates %v", tt.name, expanded, len(s.records), rates(s.records))
			}
			if len(s.errors) != tt.refusals || tt.refusals != 0 && s.errors[0] != flow.ErrBadSamplingRate {
				t.Errorf("%s (expanded %v): errors %v, want %d %v", tt.name, expanded, s.errors, tt.refusals, flow.ErrBadSamplingRate)
			}
			if s.records[0].SrcAddr != src4 || s.records[0].DstAddr != dst4 {
				t.Errorf("%s: the sample itself was not decoded: %+v", tt.name, s.records[0])
			}
		}
	}
}

func rates(recs []flow.Record) []uint32 {
	out := make([]uint32, len(recs))
	for i, r := range recs {
		out[i] = r.SamplingRate
	}
	return out
}

func TestDecodeSkipsOtherSamples(t *testing.T) {
	d := New(DefaultConfiguration())
	vendor := sample(4300<<12|1, make([]byte, 12))
	drop := sample(sampleDrop, make([]byte, dropSampleFixed))
	unknown := sample(7, make([]byte, 3))
	s := decodeAll(t, d, datagram(1, vendor, drop, unknown, flowSample(10, 1, 2, sampledIPv4(60, 17, src4, dst4, 1, 2, 0))))
	if len(s.errors) != 0 || len(s.records) != 1 {
		t.Fatalf("%d records, errors %v", len(s.records), s.errors)
	}
	if st := d.Stats(); st.OtherSamples != 3 || st.FlowSamples != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestNewBounds(t *testing.T) {
	d := New(Configuration{MaxSamplesPerDatagram: 5000})
	if d.cfg.MaxSamplesPerDatagram != hardLimit || d.cfg.MaxRecordsPerSample != DefaultConfiguration().MaxRecordsPerSample {
		t.Errorf("cfg %+v", d.cfg)
	}
	d = New(Configuration{MaxSamplesPerDatagram: 1})
	if s := decodeAll(t, d, benchDatagram(2)); len(s.errors) != 1 || s.errors[0] != flow.ErrTooManyRecords {
		t.Errorf("bound of 1 sample not applied: errors %v", s.errors)
	}
}

func TestDecodeZeroAllocs(t *testing.T) {
	d := New(DefaultConfiguration())
	dg := &flow.Datagram{Exporter: exporter, Payload: benchDatagram(10), Received: received}
	var rec flow.Record
	sink := &countSink{}
	allocs := testing.AllocsPerRun(100, func() { d.Decode(dg, &rec, sink) })
	if allocs != 0 {
		t.Errorf("%v allocs per datagram, want 0", allocs)
	}
	if sink.records != 101*10 {
		t.Errorf("%d records", sink.records)
	}
}

// countSink counts without keeping anything.
type countSink struct {
	records, errors int
	packets, bytes  uint64
}

func (s *countSink) Record(r *flow.Record) {
	s.records++
	s.packets += r.Packets
	s.bytes += r.Bytes
}
func (s *countSink) DecodeError(flow.ErrorKind) { s.errors++ }

// TestDecodeConcurrent shares one Decoder between goroutines, each with its
// own record and sink, as the collector's workers do (run with -race).
func TestDecodeConcurrent(t *testing.T) {
	d := New(DefaultConfiguration())
	payload := benchDatagram(10)
	const workers, rounds = 4, 200
	done := make(chan *countSink, workers)
	for range workers {
		go func() {
			s := &countSink{}
			var rec flow.Record
			dg := &flow.Datagram{Exporter: exporter, Payload: payload, Received: received}
			for range rounds {
				d.Decode(dg, &rec, s)
			}
			done <- s
		}()
	}
	for range workers {
		if s := <-done; s.records != rounds*10 || s.errors != 0 {
			t.Errorf("worker: %d records, %d errors", s.records, s.errors)
		}
	}
	if st := d.Stats(); st.Records != workers*rounds*10 || st.Datagrams != workers*rounds {
		t.Errorf("stats %+v", st)
	}
}
