// Package flow holds the flow record that every stage of flowshield's data
// path shares, and the small contract between a decoder and its caller.
//
// The data path reads top to bottom: router -> UDP listener (flow/collector)
// -> decoder (flow/netflow, flow/sflow) -> Record -> detect -> mitigation.
// Decoders fill a caller-owned Record and hand it to a Sink once per flow, so
// the hot path allocates nothing; the Sink must copy what it keeps.
package flow

import "net/netip"

// Format is the export format a record came from: flowshield's one name
// for it (the flow generator's encodings map onto it, the status shows it
// as protocol and version).
type Format uint8

const (
	FormatUnknown Format = iota
	FormatNetFlowV5
	FormatNetFlowV9
	FormatIPFIX
	FormatSFlowV5
)

func (k Format) String() string {
	switch k {
	case FormatNetFlowV5:
		return "netflow-v5"
	case FormatNetFlowV9:
		return "netflow-v9"
	case FormatIPFIX:
		return "ipfix"
	case FormatSFlowV5:
		return "sflow-v5"
	}
	return "unknown"
}

// Record is one flow (or one sFlow packet sample) in flowshield's own compact
// form. Times are wall-clock Unix nanoseconds; where the format counts from
// sysUpTime the decoder has already corrected them with the export header's
// clock, so a broken exporter clock shows here as times far from Received.
type Record struct {
	Exporter netip.Addr // UDP source address of the export datagram
	SrcAddr  netip.Addr
	DstAddr  netip.Addr

	Received int64 // when the datagram arrived (set by the collector)
	Exported int64 // the export header's own clock, 0 if the format has none
	Start    int64 // first packet of the flow
	End      int64 // last packet of the flow

	Packets uint64 // as exported, not multiplied by SamplingRate
	Bytes   uint64 // layer-3 bytes as exported, not multiplied

	// SamplingRate is 1-in-N as announced by the exporter (options data,
	// RouterOS field 34, sFlow sample header); 0 means the exporter said
	// nothing and the collector fills in SAMPLING_RATE.
	SamplingRate      uint32
	ObservationDomain uint32 // v9 source id, IPFIX observation domain, sFlow sub-agent id
	InIf, OutIf       uint32

	SrcPort, DstPort uint16
	Proto            uint8
	TCPFlags         uint8 // cumulative TCP flags (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20)
	Fragment         bool  // the packet(s) are IP fragments (MF set or non-zero offset), where the format says
	Format           Format
}

// Reset clears r for reuse without allocating.
func (r *Record) Reset() { *r = Record{} }

// TCP flag bits as carried in Record.TCPFlags.
const (
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
)

// IP protocol numbers used across the data path.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
)

// ErrorKind names why part or all of a datagram was dropped or not believed.
// Every kind is counted per exporter and exported in /api/v1/status and
// /metrics.
type ErrorKind uint8

const (
	ErrTruncated       ErrorKind = iota // datagram or set shorter than its headers say
	ErrUnknownVersion                   // not NetFlow v5/v9, IPFIX or sFlow v5
	ErrNoTemplate                       // data set whose template has not been seen (the set is dropped, not guessed)
	ErrBadTemplate                      // template with no fields, zero-length-only fields, absurd lengths
	ErrBadLength                        // a length field that disagrees with the bytes present
	ErrTooManyRecords                   // a count beyond what the datagram can hold or a sane bound
	ErrBadSample                        // sFlow sample/record with bogus format or length
	ErrUnsupported                      // a well-formed part flowshield does not decode (e.g. variable-length fields it cannot skip)
	ErrBadSamplingRate                  // a sampling rate above MaxSamplingRate: ignored, as if the exporter had announced none
	NumErrorKinds
)

var errorKindNames = [NumErrorKinds]string{
	"truncated", "unknown_version", "no_template", "bad_template",
	"bad_length", "too_many_records", "bad_sample", "unsupported",
	"bad_sampling_rate",
}

// MaxSamplingRate is the largest 1-in-N sampling rate a decoder believes.
// A rate is a multiplier of everything detection counts, so a forged or
// misread one (sFlow and IPFIX carry 32 bits: 2^32 would turn one sampled
// packet into four billion) must not be taken as is. 2^24 is above what
// every exporter we know can be configured to: NetFlow v5's header holds 14
// bits (16,383); Cisco IOS sampled NetFlow and Juniper J-Flow allow 1 to
// 65,535, Nexus 65,536; RouterOS sampling-interval and sampling-space are
// small integers; sFlow agents allow up to 16,777,215 (Juniper QFX),
// 8,388,608 (Dell FTOS) and 1,048,576 (Juniper EX of old), and sFlow.org
// recommends 1-in-400,000 on 400 Gb/s links. Only Juniper EX's current
// 1,073,741,823 is refused, a rate that samples a full 400 Gb/s link once
// in two seconds, useless for detection. A rate above the bound is counted
// as ErrBadSamplingRate and ignored: the record keeps whatever rate it
// would have had without it (the scope's announced rate, else the
// collector's SAMPLING_RATE), so it is still counted, at a believable rate.
const MaxSamplingRate = 1 << 24

func (k ErrorKind) String() string {
	if k < NumErrorKinds {
		return errorKindNames[k]
	}
	return "unknown"
}

// Sink receives what a decoder finds in one datagram. Record is called once
// per flow with a record the decoder reuses after Record returns. DecodeError
// is called for each part of the datagram that was dropped.
type Sink interface {
	Record(r *Record)
	DecodeError(kind ErrorKind)
}

// Datagram is one UDP payload as received, with where and when it came from.
type Datagram struct {
	Exporter netip.Addr
	Payload  []byte
	Received int64 // Unix nanoseconds
}
