package flowgen

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
)

// Source gives the flows an exporter exports during one second. Second
// appends to dst the flows exported during the index-th second of a run,
// which begins at start, and returns the extended slice. Scenario is the
// Source of this package; tests may write their own.
type Source interface {
	Second(dst []Flow, index int, start time.Time) []Flow
}

// FloodKind is the kind of attack a Flood generates.
type FloodKind uint8

const (
	FloodUDP           FloodKind = iota + 1 // random ports, mid-size packets
	FloodSYN                                // TCP SYN without ACK to 80/443
	FloodTCP                                // TCP ACK flood
	FloodICMP                               // echo requests
	FloodFragment                           // non-first IPv4 fragments of UDP
	FloodDNSAmp                             // UDP from port 53, large answers
	FloodNTPAmp                             // UDP from port 123, 468-byte monlist answers
	FloodMemcachedAmp                       // UDP from port 11211, full-size packets
	FloodAmplification                      // UDP from Flood.SourcePort (SSDP 1900, CLDAP 389, chargen 19, SNMP 161, ...)
)

var floodNames = map[FloodKind]string{
	FloodUDP: "udp", FloodSYN: "syn", FloodTCP: "tcp", FloodICMP: "icmp",
	FloodFragment: "fragment", FloodDNSAmp: "dns", FloodNTPAmp: "ntp",
	FloodMemcachedAmp: "memcached", FloodAmplification: "amplification",
}

func (k FloodKind) String() string {
	if s, ok := floodNames[k]; ok {
		return s
	}
	return fmt.Sprintf("flood(%d)", uint8(k))
}

// ParseFloodKind reads udp, syn, tcp, icmp, fragment, dns, ntp, memcached
// or amplification.
func ParseFloodKind(s string) (FloodKind, error) {
	for k, n := range floodNames {
		if n == strings.ToLower(s) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown flood kind %q (want udp, syn, tcp, icmp, fragment, dns, ntp, memcached or amplification)", s)
}

// Flood is one attack in a scenario.
type Flood struct {
	Kind FloodKind
	// Target is the victim: one host (/32, /128), or a prefix whose every
	// address is hit evenly (carpet bombing).
	Target netip.Prefix
	// Outgoing makes the Target hosts the senders of the flood, towards
	// remote addresses (a compromised local host).
	Outgoing bool
	// PPS is the real packet rate summed over Target, before sampling.
	PPS uint64
	// FlowsPerSecond is how many records a second carries it (default 100,
	// never more than the sampled packets).
	FlowsPerSecond int
	// PacketSize is the layer-3 size of each packet (default by kind).
	PacketSize int
	// SourcePort is the reflector port of FloodAmplification.
	SourcePort uint16
	// Sources is how many distinct remote addresses take part (default 1000).
	Sources int
	// StartAt and StopAt bound the flood in run time; StopAt 0 never stops.
	StartAt, StopAt time.Duration
	// Period, when set, repeats the [StartAt, StopAt) window every Period
	// (a flood every minute for the demo).
	Period time.Duration
	// SamplingRate overrides the scenario's for this flood's records.
	SamplingRate uint32
	// Persistent keeps the same FlowsPerSecond flow keys (remote address,
	// ports, local host) every second of the flood instead of drawing new
	// ones: a reflection attack from a fixed set of reflectors (addr:53 ->
	// victim:port) looks like that, and under a TimedSource each key
	// becomes one long flow cut by the active timeout. The default (false)
	// suits floods from random spoofed sources, where every second brings
	// new short flows.
	Persistent bool
}

// Background is normal traffic to and from Hosts addresses of Prefix.
type Background struct {
	Prefix netip.Prefix
	// Hosts is how many addresses of Prefix (from its second address on)
	// talk; default all of it, at most 65536.
	Hosts int
	// FlowsPerSecond is the records exported per second.
	FlowsPerSecond int
	// LongFlowShare is the fraction of records that are long transfers
	// (default 0.02): one record per transfer, exported at its end like
	// RouterOS does, spanning up to MaxLongFlow.
	LongFlowShare float64
	MaxLongFlow   time.Duration // default 60s
	// OutShare is the fraction of records sent by the local hosts (default 0.3).
	OutShare float64
	// StreamLongFlows sends each long transfer as the traffic it carries
	// each second it lasts (one 1 s record a second, with the transfer's
	// fixed flow key; SYN in its first, FIN in its last) instead of one
	// record at its end, so that a TimedSource makes real long flows of
	// them, cut by its active timeout. FlowsPerSecond × LongFlowShare
	// transfers start each second (and were already running when the run
	// began); the other records are short ones as by default. Generating a
	// second costs MaxLongFlow/1s × that many draws.
	StreamLongFlows bool
}

// ScenarioConfiguration is a deterministic traffic mix.
type ScenarioConfiguration struct {
	Seed uint64
	// SamplingRate is set on every record (0: unsampled, nothing
	// announced). Records' Packets and Bytes are what the exporter exports,
	// already divided by it.
	SamplingRate uint32
	Background   *Background
	Floods       []Flood
}

// Scenario produces the flows of each second of a run. Second(k) depends
// only on the configuration and k, so runs are repeatable and seconds can be
// produced in any order. A Scenario is not safe for concurrent use.
type Scenario struct {
	cfg ScenarioConfiguration
	pcg rand.PCG
	rng *rand.Rand
}

var (
	remoteV4 = netip.MustParsePrefix("198.18.0.0/15") // RFC 2544 benchmarking range
	remoteV6 = netip.MustParsePrefix("3fff::/20")     // RFC 9637 documentation range
)

// NewScenario checks cfg and fills in defaults.
func NewScenario(cfg ScenarioConfiguration) (*Scenario, error) {
	if b := cfg.Background; b != nil {
		bg := *b
		if !bg.Prefix.IsValid() {
			return nil, fmt.Errorf("creating scenario: background needs a prefix")
		}
		bg.Prefix = bg.Prefix.Masked()
		if n := prefixHosts(bg.Prefix); bg.Hosts <= 0 || uint64(bg.Hosts) > n {
			bg.Hosts = int(n)
		}
		if bg.FlowsPerSecond < 0 {
			return nil, fmt.Errorf("creating scenario: negative background flows per second")
		}
		if bg.LongFlowShare == 0 {
			bg.LongFlowShare = 0.02
		}
		if bg.MaxLongFlow <= 0 {
			bg.MaxLongFlow = 60 * time.Second
		}
		if bg.OutShare == 0 {
			bg.OutShare = 0.3
		}
		cfg.Background = &bg
	}
	floods := make([]Flood, len(cfg.Floods))
	for i, f := range cfg.Floods {
		if _, ok := floodNames[f.Kind]; !ok {
			return nil, fmt.Errorf("creating scenario: flood %d: unknown kind %d", i, f.Kind)
		}
		if !f.Target.IsValid() {
			return nil, fmt.Errorf("creating scenario: flood %d (%v): no target", i, f.Kind)
		}
		f.Target = f.Target.Masked()
		if f.FlowsPerSecond <= 0 {
			f.FlowsPerSecond = 100
		}
		if f.Sources <= 0 {
			f.Sources = 1000
		}
		if f.PacketSize <= 0 {
			f.PacketSize = defaultPacketSize(f.Kind)
		}
		if f.Kind == FloodAmplification && f.SourcePort == 0 {
			return nil, fmt.Errorf("creating scenario: flood %d: amplification needs a source port", i)
		}
		if f.Period > 0 && (f.StopAt <= f.StartAt || f.StopAt-f.StartAt > f.Period) {
			return nil, fmt.Errorf("creating scenario: flood %d: a period needs StartAt < StopAt <= StartAt+Period", i)
		}
		if f.Kind == FloodFragment && !f.Target.Addr().Is4() {
			return nil, fmt.Errorf("creating scenario: flood %d: fragment floods are IPv4 only", i)
		}
		floods[i] = f
	}
	cfg.Floods = floods
	s := &Scenario{cfg: cfg}
	s.rng = rand.New(&s.pcg)
	return s, nil
}

// Configuration returns the effective configuration.
func (s *Scenario) Configuration() ScenarioConfiguration { return s.cfg }

func defaultPacketSize(k FloodKind) int {
	switch k {
	case FloodSYN, FloodTCP:
		return 60
	case FloodICMP:
		return 84
	case FloodFragment:
		return 1500
	case FloodDNSAmp, FloodMemcachedAmp:
		return 1400
	case FloodNTPAmp:
		return 468
	case FloodAmplification:
		return 1000
	}
	return 512
}

// prefixHosts is how many addresses of p the generator uses (at most 65536).
func prefixHosts(p netip.Prefix) uint64 {
	bits := p.Addr().BitLen() - p.Bits()
	if bits >= 16 {
		return 1 << 16
	}
	return 1 << bits
}

// addrAt is p's first address plus off.
func addrAt(p netip.Prefix, off uint64) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+uint32(off))
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	binary.BigEndian.PutUint64(b[8:], binary.BigEndian.Uint64(b[8:])+off)
	return netip.AddrFrom16(b)
}

// Second implements Source.
func (s *Scenario) Second(dst []Flow, index int, start time.Time) []Flow {
	if b := s.cfg.Background; b != nil {
		s.pcg.Seed(s.cfg.Seed, uint64(index)<<8)
		for range b.FlowsPerSecond {
			f, long := s.backgroundFlow(b, start)
			if long && b.StreamLongFlows {
				continue // appendTransfers sends them second by second
			}
			dst = append(dst, f)
		}
		if b.StreamLongFlows {
			dst = s.appendTransfers(dst, b, index, start)
		}
	}
	at := time.Duration(index) * time.Second
	for i := range s.cfg.Floods {
		f := &s.cfg.Floods[i]
		at := at
		if f.Period > 0 && at >= f.StartAt {
			at = f.StartAt + (at-f.StartAt)%f.Period
		}
		if at < f.StartAt || (f.StopAt > 0 && at >= f.StopAt) {
			continue
		}
		s.pcg.Seed(s.cfg.Seed, uint64(index)<<8|uint64(i+1))
		dst = s.appendFlood(dst, f, i, start)
	}
	return dst
}

func (s *Scenario) remote(v6 bool, n int) netip.Addr {
	if v6 {
		return addrAt(remoteV6, uint64(s.rng.IntN(n)))
	}
	return addrAt(remoteV4, uint64(s.rng.IntN(n)))
}

// Seed streams other than Second's (index<<8 | part), so options draw from
// their own streams and leave the default output unchanged.
const (
	transferStream   = 0x7472616e73666572 // "transfer"
	persistentStream = 0x70657273697374   // "persist"
)

func (s *Scenario) backgroundHost(b *Background) netip.Addr {
	r := s.rng
	host := addrAt(b.Prefix, 1+uint64(r.IntN(b.Hosts)))
	if b.Hosts == int(prefixHosts(b.Prefix)) {
		host = addrAt(b.Prefix, uint64(r.IntN(b.Hosts)))
	}
	return host
}

// backgroundFlow draws one background record; long reports a long transfer.
func (s *Scenario) backgroundFlow(b *Background, start time.Time) (f Flow, long bool) {
	r := s.rng
	host := s.backgroundHost(b)
	f = Flow{
		Src: s.remote(host.Is6(), 1<<16), Dst: host,
		SrcPort: uint16(1024 + r.IntN(64512)), InIf: 1, OutIf: 2,
		SamplingRate: s.cfg.SamplingRate,
	}
	// exported at the end of the second, lasting up to all of it
	f.End = start.Add(time.Duration(500+r.IntN(500)) * time.Millisecond)
	f.Start = f.End.Add(-time.Duration(r.IntN(500)) * time.Millisecond)
	var size uint64
	switch p := r.Float64(); {
	case r.Float64() < b.LongFlowShare:
		// a long download: one record for the whole transfer
		span := max(int(b.MaxLongFlow/time.Second)-9, 1)
		d := time.Duration(min(10+r.IntN(span), int(b.MaxLongFlow/time.Second))) * time.Second
		f.Proto, f.DstPort, f.TCPFlags = 6, 443, 0x1b
		f.Start = f.End.Add(-d)
		f.Packets = uint64(d/time.Second) * uint64(100+r.IntN(1900))
		size = 1400
		long = true
	case p < 0.80:
		f.Proto, f.TCPFlags = 6, []uint8{0x1b, 0x18, 0x1a, 0x11}[r.IntN(4)]
		f.DstPort = []uint16{443, 443, 443, 80, 22, 993, 25, 8080}[r.IntN(8)]
		f.Packets = 1 + uint64(r.ExpFloat64()*20)
		size = 64 + uint64(r.IntN(1437))
	case p < 0.97:
		f.Proto = 17
		switch q := r.IntN(4); q {
		case 0:
			f.DstPort, f.Packets, size = 53, 1+uint64(r.IntN(2)), 60+uint64(r.IntN(452))
		case 1:
			f.DstPort, f.Packets, size = 123, 1, 76
		case 2:
			f.DstPort, f.Packets, size = 443, 10+uint64(r.IntN(490)), 1200
		default:
			f.DstPort, f.Packets, size = uint16(1024+r.IntN(64512)), 1+uint64(r.IntN(50)), 100+uint64(r.IntN(1100))
		}
	default:
		f.Proto, f.SrcPort, f.DstPort = 1, 0, 0x0800
		if host.Is6() {
			f.Proto, f.DstPort = 58, 0x8000
		}
		f.Packets, size = 1+uint64(r.IntN(5)), 84
	}
	f.Bytes = f.Packets * size
	if r.Float64() < b.OutShare {
		f.Src, f.Dst = f.Dst, f.Src
		f.InIf, f.OutIf = f.OutIf, f.InIf
		if f.Proto == 6 || f.Proto == 17 {
			f.SrcPort, f.DstPort = f.DstPort, f.SrcPort
		}
	}
	return f, long
}

// appendTransfers appends the second-index pieces of the streamed long
// transfers still running: those that started in the last MaxLongFlow
// seconds. The transfers starting in second j are drawn from a stream of
// their own (seeded with j), so every second sees the same ones.
func (s *Scenario) appendTransfers(dst []Flow, b *Background, index int, start time.Time) []Flow {
	r := s.rng
	maxSec := max(int(b.MaxLongFlow/time.Second), 1)
	span := max(maxSec-9, 1)
	perSecond := float64(b.FlowsPerSecond) * b.LongFlowShare
	for j := index - maxSec + 1; j <= index; j++ {
		s.pcg.Seed(s.cfg.Seed^transferStream, uint64(int64(j)))
		n := int(perSecond)
		if r.Float64() < perSecond-float64(n) {
			n++
		}
		for range n {
			host := s.backgroundHost(b)
			remote := s.remote(host.Is6(), 1<<16)
			port := uint16(1024 + r.IntN(64512))
			d := min(10+r.IntN(span), maxSec) // seconds
			pps := uint64(100 + r.IntN(1900))
			out := r.Float64() < b.OutShare
			if j+d <= index {
				continue // over
			}
			f := Flow{
				Src: remote, Dst: host, SrcPort: port, DstPort: 443, Proto: 6, TCPFlags: 0x18,
				Packets: pps, Bytes: pps * 1400, SamplingRate: s.cfg.SamplingRate, InIf: 1, OutIf: 2,
				Start: start, End: start.Add(999 * time.Millisecond),
			}
			if j == index {
				f.TCPFlags |= 0x02 // SYN
			}
			if j+d-1 == index {
				f.TCPFlags |= 0x01 // FIN
			}
			if out {
				f.Src, f.Dst = f.Dst, f.Src
				f.InIf, f.OutIf = f.OutIf, f.InIf
				f.SrcPort, f.DstPort = f.DstPort, f.SrcPort
			}
			dst = append(dst, f)
		}
	}
	return dst
}

func (s *Scenario) appendFlood(dst []Flow, fl *Flood, floodIndex int, start time.Time) []Flow {
	r := s.rng
	rate := fl.SamplingRate
	if rate == 0 {
		rate = s.cfg.SamplingRate
	}
	exported := fl.PPS
	if rate > 1 {
		exported = fl.PPS / uint64(rate)
	}
	records := uint64(fl.FlowsPerSecond)
	if records > exported {
		records = exported
	}
	if records == 0 {
		return dst
	}
	hosts := prefixHosts(fl.Target)
	v6 := fl.Target.Addr().Is6()
	per, extra := exported/records, exported%records
	for i := range records {
		if fl.Persistent {
			// the same draws for record i every second: a fixed flow key
			s.pcg.Seed(s.cfg.Seed^persistentStream, uint64(floodIndex)<<32|i)
		}
		idx := i % hosts
		if records < hosts {
			idx = i * hosts / records // fewer records than hosts: spread them
		}
		local := addrAt(fl.Target, idx)
		f := Flow{
			Src: s.remote(v6, fl.Sources), Dst: local,
			SrcPort: uint16(1024 + r.IntN(64512)), DstPort: uint16(1024 + r.IntN(64512)),
			Proto: 17, Packets: per, SamplingRate: rate, InIf: 1, OutIf: 2,
			Start: start, End: start.Add(999 * time.Millisecond),
		}
		if i < extra {
			f.Packets++
		}
		f.Bytes = f.Packets * uint64(fl.PacketSize)
		switch fl.Kind {
		case FloodSYN:
			f.Proto, f.TCPFlags, f.DstPort = 6, 0x02, []uint16{80, 443}[r.IntN(2)]
		case FloodTCP:
			f.Proto, f.TCPFlags = 6, 0x10
		case FloodICMP:
			f.Proto, f.SrcPort, f.DstPort = 1, 0, 0x0800
			if v6 {
				f.Proto, f.DstPort = 58, 0x8000
			}
		case FloodFragment:
			f.Fragment, f.SrcPort, f.DstPort = true, 0, 0
		case FloodDNSAmp:
			f.SrcPort = 53
		case FloodNTPAmp:
			f.SrcPort = 123
		case FloodMemcachedAmp:
			f.SrcPort = 11211
		case FloodAmplification:
			f.SrcPort = fl.SourcePort
		}
		if fl.Outgoing {
			f.Src, f.Dst = f.Dst, f.Src
			f.InIf, f.OutIf = f.OutIf, f.InIf
		}
		dst = append(dst, f)
	}
	return dst
}
