package detect

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// The simulation: traffic sources export a record per flow every
// exportEvery (like RouterOS with 1 s active and inactive timeouts), the
// records arrive exportDelay later, and the engine ticks every second.

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const simStep = 10 * time.Millisecond

var exporterA = netip.MustParseAddr("192.0.2.1")

// source is one stream of traffic: pps packets per second (on the wire,
// before sampling) spread over flows flows, between from and to (relative
// to t0).
type source struct {
	from, to    time.Duration
	pps         float64
	size        uint64 // bytes per packet
	flows       int
	sampling    uint32 // 0: say nothing (DefaultSamplingRate)
	exportEvery time.Duration
	exportDelay time.Duration
	// record fills addresses, ports, protocol, flags for flow i.
	record func(i int, r *flow.Record)
	// ppsAt, if set, overrides pps at an export time (fluctuating traffic).
	ppsAt func(at time.Duration) float64
	// times, if set, rewrites the record times (broken exporters).
	times    func(r *flow.Record)
	exporter netip.Addr

	// filled during the run
	firstArrival time.Time
	next         time.Duration // next export time worth calling batch for
	carry        []float64     // per-flow fractional packets
}

func (s *source) defaults() {
	if s.exportEvery == 0 {
		s.exportEvery = time.Second
	}
	if s.exportDelay == 0 {
		s.exportDelay = 20 * time.Millisecond
	}
	if s.flows == 0 {
		s.flows = 1
	}
	if s.size == 0 {
		s.size = 500
	}
	if !s.exporter.IsValid() {
		s.exporter = exporterA
	}
	s.carry = make([]float64, s.flows)
	s.next = s.from + s.exportEvery
}

// batch returns the records exported at rel (relative to t0), or nil.
func (s *source) batch(rel time.Duration) []flow.Record {
	if rel <= s.from || rel >= s.to+s.exportEvery || (rel-s.from)%s.exportEvery != 0 {
		return nil
	}
	lo, hi := rel-s.exportEvery, min(rel, s.to)
	lo = max(lo, s.from)
	if hi <= lo {
		return nil
	}
	pps := s.pps
	if s.ppsAt != nil {
		pps = s.ppsAt(rel)
	}
	rate := float64(max(s.sampling, 1))
	perFlow := pps * (hi - lo).Seconds() / rate / float64(s.flows)
	recv := t0.Add(rel + s.exportDelay)
	out := make([]flow.Record, 0, s.flows)
	for i := 0; i < s.flows; i++ {
		s.carry[i] += perFlow
		n := uint64(s.carry[i])
		if n == 0 {
			continue
		}
		s.carry[i] -= float64(n)
		r := flow.Record{
			Exporter: s.exporter, Received: recv.UnixNano(),
			Start: t0.Add(lo).UnixNano(), End: t0.Add(hi).UnixNano() - 1,
			Packets: n, Bytes: n * s.size, SamplingRate: s.sampling, Format: flow.FormatIPFIX,
		}
		s.record(i, &r)
		if s.times != nil {
			s.times(&r)
		}
		out = append(out, r)
	}
	if len(out) > 0 && s.firstArrival.IsZero() {
		s.firstArrival = recv
	}
	return out
}

type sim struct {
	t       testing.TB
	e       *Engine
	now     time.Time
	events  []Event
	sources []*source
	// tickPhase is the offset of the ticks within each second.
	tickPhase time.Duration
	// arrivals are records consumed at their Received time, in that
	// order (an exporter model's output, see timers_test.go).
	arrivals []flow.Record
}

func testConfig() Configuration {
	cfg := DefaultConfiguration()
	cfg.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("2001:db8::/48")}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func newSim(t testing.TB, cfg Configuration, sources ...*source) *sim {
	t.Helper()
	s := &sim{t: t, now: t0, sources: sources}
	e, err := New(cfg, func() time.Time { return s.now })
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	s.e = e
	for _, src := range sources {
		src.defaults()
	}
	return s
}

// run simulates until rel (relative to t0).
func (s *sim) run(until time.Duration) {
	for rel := s.now.Sub(t0) + simStep; rel <= until; rel += simStep {
		s.now = t0.Add(rel)
		for _, src := range s.sources {
			// records are consumed at their arrival
			at := rel - src.exportDelay
			if at < src.next {
				continue
			}
			if b := src.batch(at); b != nil {
				s.e.Consume(b)
			}
			src.next += src.exportEvery
		}
		if len(s.arrivals) > 0 {
			n := 0
			for n < len(s.arrivals) && s.arrivals[n].Received <= s.now.UnixNano() {
				n++
			}
			if n > 0 {
				s.e.Consume(s.arrivals[:n])
				s.arrivals = s.arrivals[n:]
			}
		}
		if (rel-s.tickPhase)%time.Second == 0 {
			s.events = append(s.events, s.e.Tick(s.now)...)
		}
	}
}

func (s *sim) starts() []Event {
	var out []Event
	for _, ev := range s.events {
		if ev.Kind == AttackStart {
			out = append(out, ev)
		}
	}
	return out
}

func (s *sim) kinds(id string) []EventKind {
	var out []EventKind
	for _, ev := range s.events {
		if ev.Attack.ID == id {
			out = append(out, ev.Kind)
		}
	}
	return out
}

// Record builders.

func udpTo(dst string, srcPort uint16) func(int, *flow.Record) {
	d := netip.MustParseAddr(dst)
	return func(i int, r *flow.Record) {
		r.SrcAddr = netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		if d.Is6() {
			r.SrcAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 15: byte(i)})
		}
		r.DstAddr = d
		r.Proto = flow.ProtoUDP
		r.SrcPort = srcPort
		if srcPort == 0 {
			r.SrcPort = uint16(1024 + i)
		}
		r.DstPort = uint16(2000 + i)
	}
}

func synTo(dst string) func(int, *flow.Record) {
	d := netip.MustParseAddr(dst)
	return func(i int, r *flow.Record) {
		r.SrcAddr = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		r.DstAddr = d
		r.Proto = flow.ProtoTCP
		r.TCPFlags = flow.TCPFlagSYN
		r.SrcPort = uint16(30000 + i)
		r.DstPort = 443
	}
}

func tcpBetween(src, dst string) func(int, *flow.Record) {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	return func(i int, r *flow.Record) {
		r.SrcAddr, r.DstAddr = s, d
		r.Proto = flow.ProtoTCP
		r.TCPFlags = flow.TCPFlagACK | flow.TCPFlagPSH
		r.SrcPort = 443
		r.DstPort = uint16(40000 + i)
	}
}

func icmpTo(dst string) func(int, *flow.Record) {
	d := netip.MustParseAddr(dst)
	return func(i int, r *flow.Record) {
		r.SrcAddr = netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})
		r.DstAddr = d
		r.Proto = flow.ProtoICMP
		r.DstPort = 0x0800
	}
}

func fragTo(dst string) func(int, *flow.Record) {
	d := netip.MustParseAddr(dst)
	return func(i int, r *flow.Record) {
		r.SrcAddr = netip.AddrFrom4([4]byte{198, 18, 2, byte(i)})
		r.DstAddr = d
		r.Proto = flow.ProtoUDP
		r.Fragment = true
	}
}

func udpFrom(src string) func(int, *flow.Record) {
	s := netip.MustParseAddr(src)
	return func(i int, r *flow.Record) {
		r.SrcAddr = s
		r.DstAddr = netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		r.Proto = flow.ProtoUDP
		r.SrcPort = uint16(5000 + i)
		r.DstPort = 80
	}
}
