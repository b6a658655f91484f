// Package flowgen is flowshield's own flow generator: encoders for NetFlow
// v5, v9, IPFIX (including RouterOS-shaped templates) and sFlow v5,
// deterministic traffic scenarios (background plus floods), and a paced UDP
// sender that reports exactly what it sent. Integration tests, benchmarks,
// the overload test and `flowshield demo` use it in-process; cmd/flowgen is a
// thin command-line wrapper.
//
// A Scenario says what the wire carries each second, as 1 s flows: alone, it
// stands for an exporter with 1 s active and inactive timeouts (its
// background's long transfers aside). Real operators run
// longer timers (RouterOS defaults to 30m active, 15s inactive), so records
// arrive up to the inactive timeout late and long flows are reported once
// per active timeout: TimedSource models that exporter flow cache over any
// Source, and DropSource, under it, removes the traffic a ban drops before
// the router's traffic-flow sees it.
//
// The unit everything counts in is Flow: what a test says it sent. Encoders
// report, through Totals, what actually went on the wire (after the format's
// limits: 32-bit counters, no IPv6 in v5, one packet per sFlow sample), so a
// test compares a collector's counters with Totals and nothing else.
package flowgen

import (
	"net/netip"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// Flow is one flow record as the generator means it, independent of any
// wire format and of flow.Record.
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16 // for ICMP, DstPort is type<<8 | code (NetFlow convention)
	Proto            uint8
	TCPFlags         uint8
	Fragment         bool   // IP fragments (non-first: offset > 0, no ports)
	Packets, Bytes   uint64 // as exported (already sampled); Bytes are layer-3 bytes
	Start, End       time.Time
	SamplingRate     uint32 // 1-in-N; 0 = unsampled / not announced
	InIf, OutIf      uint32
}

// Record fills r with f as a decoder would report it (Kind, Exporter,
// Received and Exported are left to the caller).
func (f *Flow) Record(r *flow.Record) {
	r.SrcAddr, r.DstAddr = f.Src, f.Dst
	r.SrcPort, r.DstPort = f.SrcPort, f.DstPort
	r.Proto, r.TCPFlags, r.Fragment = f.Proto, f.TCPFlags, f.Fragment
	r.Packets, r.Bytes = f.Packets, f.Bytes
	r.Start, r.End = f.Start.UnixNano(), f.End.UnixNano()
	r.SamplingRate = f.SamplingRate
	r.InIf, r.OutIf = f.InIf, f.OutIf
}

// rate is the multiplier a collector applies: the sampling rate, or 1.
func (f *Flow) rate() uint64 {
	if f.SamplingRate == 0 {
		return 1
	}
	return uint64(f.SamplingRate)
}

// Counters are the sums a collector should arrive at.
type Counters struct {
	Records uint64 `json:"records"`
	Packets uint64 `json:"packets"` // as exported
	Bytes   uint64 `json:"bytes"`   // as exported
	// FlowPackets and FlowBytes are multiplied by each record's sampling
	// rate (1 when it has none): flowshield's flow_packets / flow_bytes.
	FlowPackets uint64 `json:"flow_packets"`
	FlowBytes   uint64 `json:"flow_bytes"`
}

func (c *Counters) add(f *Flow) {
	r := f.rate()
	c.Records++
	c.Packets += f.Packets
	c.Bytes += f.Bytes
	c.FlowPackets += f.Packets * r
	c.FlowBytes += f.Bytes * r
}

func (c *Counters) addTimes(o *Counters, n uint64) {
	c.Records += o.Records * n
	c.Packets += o.Packets * n
	c.Bytes += o.Bytes * n
	c.FlowPackets += o.FlowPackets * n
	c.FlowBytes += o.FlowBytes * n
}

// HostCounters splits a local host's traffic by direction: In when it is the
// destination, Out when it is the source.
type HostCounters struct {
	In  Counters `json:"in"`
	Out Counters `json:"out"`
}

// Totals is what was encoded or sent. PerHost is filled only when HostPrefix
// is valid: for every record whose destination (In) or else source (Out)
// lies in HostPrefix.
type Totals struct {
	Datagrams uint64 `json:"datagrams"`
	Counters
	SendErrors uint64                       `json:"send_errors"`
	HostPrefix netip.Prefix                 `json:"-"`
	PerHost    map[netip.Addr]*HostCounters `json:"per_host,omitempty"`
}

// Add counts one record as it went on the wire.
func (t *Totals) Add(f *Flow) {
	t.Counters.add(f)
	if !t.HostPrefix.IsValid() {
		return
	}
	var c *Counters
	switch {
	case t.HostPrefix.Contains(f.Dst):
		c = &t.host(f.Dst).In
	case t.HostPrefix.Contains(f.Src):
		c = &t.host(f.Src).Out
	default:
		return
	}
	c.add(f)
}

func (t *Totals) host(a netip.Addr) *HostCounters {
	if t.PerHost == nil {
		t.PerHost = make(map[netip.Addr]*HostCounters)
	}
	h := t.PerHost[a]
	if h == nil {
		h = &HostCounters{}
		t.PerHost[a] = h
	}
	return h
}

// Merge adds o, n times, to t (the blaster sends each pre-encoded datagram
// many times).
func (t *Totals) Merge(o *Totals, n uint64) {
	t.Datagrams += o.Datagrams * n
	t.Counters.addTimes(&o.Counters, n)
	t.SendErrors += o.SendErrors * n
	for a, h := range o.PerHost {
		mine := t.host(a)
		mine.In.addTimes(&h.In, n)
		mine.Out.addTimes(&h.Out, n)
	}
}
