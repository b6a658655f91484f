// Package sflow decodes sFlow v5 datagrams into flow.Record: one record per
// sampled packet, from flow samples (format 1) and expanded flow samples
// (format 3). Counter samples (2, 4) are counted and skipped, as are drop
// samples (5), samples and flow records of other enterprises or formats, and
// extended switch/router/gateway records.
//
// Every datagram passes a guard (Check) that walks its whole framing
// (sample counts, record counts, every length against the bytes present)
// before anything is decoded; a datagram whose framing lies anywhere is
// dropped whole with one sink.DecodeError, because an exporter that lies
// about one length cannot be trusted for the rest. The guard is also what
// makes goflow2 safe to call on the same bytes (tests and benchmarks do):
// goflow2 v2.2.6 does not bound the record count of an expanded flow sample
// and allocates gigabytes for an 84-byte datagram.
//
// Why not goflow2 at runtime: its decoder plus producer/proto allocates
// dozens of objects per sample and runs at about 0.6 M samples/s per core;
// this walker reads the datagram in place, allocates nothing per record and
// is an order of magnitude faster (see bench_test.go). It also avoids pulling
// protobuf into the binary. goflow2 stays the reference in the differential
// tests.
//
// What a record holds:
//   - Packets = 1; SamplingRate = the sample's sampling rate (0 if the agent
//     says 0, or says more than flow.MaxSamplingRate: that sample is then
//     counted once as flow.ErrBadSamplingRate, and the collector's default
//     applies); ObservationDomain = the datagram's sub-agent id; Exporter = the
//     UDP source (dg.Exporter), not the agent address inside the datagram;
//     Start = End = Received = dg.Received (sFlow carries no flow times);
//     Exported = 0.
//   - Bytes is the layer-3 length of the sampled packet, like NetFlow's
//     bytes: the IPv4 total length, or 40 + the IPv6 payload length, read from
//     the sampled header; the length field of a sampled IPv4/IPv6 record
//     (formats 3, 4). When the header holds no usable IP header (non-IP frame,
//     header cut short, length 0 as in TSO captures) it is frame_length -
//     stripped - the link-layer header bytes walked (Ethernet, 802.1Q tags,
//     MPLS labels), never below 0. tshark shows the same numbers as ip.len,
//     ipv6.plen + 40 and sflow_245.ip.length.
//   - The first flow record of a sample that yields an IP packet (raw header,
//     sampled IPv4, sampled IPv6) describes it; later ones are ignored.
//   - InIf/OutIf: the ifIndex when the interface format is 0 (ifIndex) and
//     the value is not 0x3FFFFFFF (the agent's internal interface); 0 for
//     discarded packets (format 1), multiple output interfaces (format 2) and
//     internal.
//   - Raw headers of protocol Ethernet (1), IPv4 (11), IPv6 (12) and MPLS (13)
//     are parsed: up to 8 VLAN tags (0x8100, 0x88a8, 0x9100), up to 16 MPLS
//     labels, IPv4 (options honoured), IPv6 with up to 8 extension headers
//     (hop-by-hop, routing, destination options, fragment, AH). Ports and TCP
//     flags come from the first fragment only; Fragment is set when IPv4 MF or
//     offset is set or an IPv6 fragment header has M or an offset. For ICMP
//     and ICMPv6, DstPort = type<<8 | code as NetFlow exporters do. TCPFlags
//     is the whole flags byte (CWR and ECE included, like NetFlow).
package sflow

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/flowshield/flowshield/flow"
)

// Configuration bounds what one datagram may make the decoder do.
type Configuration struct {
	// MaxSamplesPerDatagram rejects datagrams announcing more samples.
	MaxSamplesPerDatagram int
	// MaxRecordsPerSample rejects samples announcing more records.
	MaxRecordsPerSample int
}

// hardLimit is goflow2's own bound on samples and records; the guard never
// lets more through, so goflow2 can be fed whatever the guard accepts.
const hardLimit = 1000

// DefaultConfiguration returns bounds well above what real agents send (a
// 1,500-byte datagram holds about 10 flow samples of 3-5 records).
func DefaultConfiguration() Configuration {
	return Configuration{
		MaxSamplesPerDatagram: 256,
		MaxRecordsPerSample:   32,
	}
}

// Stats counts what the decoder has seen since New.
type Stats struct {
	Datagrams      uint64 // datagrams given to Decode
	Rejected       uint64 // datagrams dropped whole by the guard
	FlowSamples    uint64 // flow samples (1, 3) decoded
	CounterSamples uint64 // counter samples (2, 4), skipped
	OtherSamples   uint64 // drop samples and unknown formats or enterprises, skipped
	Records        uint64 // records handed to the sink
}

// Decoder decodes sFlow v5 datagrams. It holds no per-datagram state, so one
// Decoder serves any number of goroutines.
type Decoder struct {
	cfg Configuration

	datagrams, rejected                    atomic.Uint64
	flowSamples, counterSamples, otherSmpl atomic.Uint64
	records                                atomic.Uint64
}

// New returns a decoder bounded by cfg; zero bounds take the defaults and
// bounds above goflow2's 1,000 are lowered to it.
func New(cfg Configuration) *Decoder {
	def := DefaultConfiguration()
	if cfg.MaxSamplesPerDatagram <= 0 {
		cfg.MaxSamplesPerDatagram = def.MaxSamplesPerDatagram
	}
	if cfg.MaxRecordsPerSample <= 0 {
		cfg.MaxRecordsPerSample = def.MaxRecordsPerSample
	}
	cfg.MaxSamplesPerDatagram = min(cfg.MaxSamplesPerDatagram, hardLimit)
	cfg.MaxRecordsPerSample = min(cfg.MaxRecordsPerSample, hardLimit)
	return &Decoder{cfg: cfg}
}

// Stats returns a snapshot of the decoder's counters.
func (d *Decoder) Stats() Stats {
	return Stats{
		Datagrams:      d.datagrams.Load(),
		Rejected:       d.rejected.Load(),
		FlowSamples:    d.flowSamples.Load(),
		CounterSamples: d.counterSamples.Load(),
		OtherSamples:   d.otherSmpl.Load(),
		Records:        d.records.Load(),
	}
}

// sFlow v5 sample formats (enterprise 0).
const (
	sampleFlow            = 1
	sampleCounter         = 2
	sampleExpandedFlow    = 3
	sampleExpandedCounter = 4
	sampleDrop            = 5
)

// sFlow v5 flow record formats (enterprise 0) that describe the packet.
const (
	recordRawHeader   = 1
	recordSampledIPv4 = 3
	recordSampledIPv6 = 4
)

// Fixed parts, in bytes, of what the guard and the walker read.
const (
	flowSampleFixed         = 32 // seq, source id, rate, pool, drops, input, output, record count
	expandedFlowSampleFixed = 44 // seq, source type, index, rate, pool, drops, in fmt, in, out fmt, out, count
	counterSampleFixed      = 12 // seq, source id, record count
	expandedCounterFixed    = 16 // seq, source type, index, record count
	dropSampleFixed         = 32 // seq, source type, index, drops, input, output, reason, count
	rawHeaderFixed          = 16 // protocol, frame length, stripped, header length
	sampledIPv4Len          = 32
	sampledIPv6Len          = 56
)

// Decode decodes one datagram. It calls sink.Record once per sampled packet
// with rec (caller-owned, overwritten for each packet) and sink.DecodeError
// once if the datagram is dropped. It is safe for concurrent use.
func (d *Decoder) Decode(dg *flow.Datagram, rec *flow.Record, sink flow.Sink) {
	d.datagrams.Add(1)
	p := dg.Payload
	if bad, _ := d.check(p); bad != nil {
		d.rejected.Add(1)
		sink.DecodeError(bad.Kind)
		return
	}
	// The guard accepted the framing, so every slice below is in range; the
	// walk still uses checked slicing and never trusts a count for a loop
	// bound beyond the bytes present.
	off := 4
	addrLen := 4
	if be32(p[off:]) == 2 {
		addrLen = 16
	}
	off += 4 + addrLen
	subAgent := be32(p[off:])
	n := int(be32(p[off+12:]))
	off += 16

	var flows, counters, others, records uint64
	for range n {
		format := be32(p[off:])
		length := int(be32(p[off+4:]))
		body := p[off+8 : off+8+length]
		off += 8 + length
		if format>>12 != 0 {
			others++
			continue
		}
		switch format {
		case sampleFlow, sampleExpandedFlow:
			flows++
			records++
			if !d.decodeFlowSample(format, body, dg, subAgent, rec) {
				sink.DecodeError(flow.ErrBadSamplingRate)
			}
			sink.Record(rec)
		case sampleCounter, sampleExpandedCounter:
			counters++
		default:
			others++
		}
	}
	d.flowSamples.Add(flows)
	d.records.Add(records)
	if counters != 0 {
		d.counterSamples.Add(counters)
	}
	if others != 0 {
		d.otherSmpl.Add(others)
	}
}

// decodeFlowSample fills rec from one flow sample whose framing the guard has
// checked. It reports false when the sample's sampling rate was above
// flow.MaxSamplingRate and so left at 0.
func (d *Decoder) decodeFlowSample(format uint32, s []byte, dg *flow.Datagram, subAgent uint32, rec *flow.Record) (rateOK bool) {
	*rec = flow.Record{
		Exporter:          dg.Exporter,
		Received:          dg.Received,
		Start:             dg.Received,
		End:               dg.Received,
		Packets:           1,
		ObservationDomain: subAgent,
		Format:            flow.FormatSFlowV5,
	}
	var n, off int
	var rate uint32
	if format == sampleFlow {
		rate = be32(s[8:])
		rec.InIf = ifIndex(be32(s[20:])>>30, be32(s[20:])&0x3fffffff)
		rec.OutIf = ifIndex(be32(s[24:])>>30, be32(s[24:])&0x3fffffff)
		n = int(be32(s[28:]))
		off = flowSampleFixed
	} else {
		rate = be32(s[12:])
		rec.InIf = ifIndex(be32(s[24:]), be32(s[28:]))
		rec.OutIf = ifIndex(be32(s[32:]), be32(s[36:]))
		n = int(be32(s[40:]))
		off = expandedFlowSampleFixed
	}
	rateOK = rate <= flow.MaxSamplingRate
	if rateOK {
		rec.SamplingRate = rate
	}
	for range n {
		rformat := be32(s[off:])
		rlen := int(be32(s[off+4:]))
		r := s[off+8 : off+8+rlen]
		off += 8 + rlen
		switch rformat {
		case recordRawHeader:
			hlen := int(be32(r[12:]))
			if decodeHeader(rec, be32(r), be32(r[4:]), be32(r[8:]), r[rawHeaderFixed:rawHeaderFixed+hlen]) {
				return
			}
		case recordSampledIPv4:
			rec.Bytes = uint64(be32(r))
			rec.Proto = uint8(be32(r[4:]))
			rec.SrcAddr = netip.AddrFrom4([4]byte(r[8:12]))
			rec.DstAddr = netip.AddrFrom4([4]byte(r[12:16]))
			rec.SrcPort = uint16(be32(r[16:]))
			rec.DstPort = uint16(be32(r[20:]))
			rec.TCPFlags = uint8(be32(r[24:]))
			return
		case recordSampledIPv6:
			rec.Bytes = uint64(be32(r))
			rec.Proto = uint8(be32(r[4:]))
			rec.SrcAddr = netip.AddrFrom16([16]byte(r[8:24]))
			rec.DstAddr = netip.AddrFrom16([16]byte(r[24:40]))
			rec.SrcPort = uint16(be32(r[40:]))
			rec.DstPort = uint16(be32(r[44:]))
			rec.TCPFlags = uint8(be32(r[48:]))
			return
		}
	}
	return
}

// ifInternal is the ifIndex value sFlow uses for the agent itself.
const ifInternal = 0x3fffffff

// ifIndex maps an sFlow interface (format, value) to an ifIndex, 0 when the
// value is not one (discarded, multiple interfaces, internal).
func ifIndex(format, value uint32) uint32 {
	if format != 0 || value == ifInternal {
		return 0
	}
	return value
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
