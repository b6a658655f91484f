package collector

import (
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// The fake wire format the tests speak, NetFlow-shaped so that versionOf
// sees a version: [0:4] header (NetFlow: 16-bit version; sFlow: 32-bit
// version), [4] type, [5] template id, [6] records, [7] sampling rate (0: not
// announced), [8:10] packets per record.
const (
	fakeData      = 'D'
	fakeTemplate  = 'T' // installs template id; decoded in order
	fakeMalformed = 'X' // one ErrTruncated, no records
	fakePanic     = 'P' // the decoder panics after one record
	fakeSlowTmpl  = 'S' // template that takes fakeSlow to install
)

const (
	fakeSlow        = 100 * time.Millisecond
	fakeBytesPerPkt = 100
	fakeExportDelay = 2 * time.Second // Exported = Received - this
)

func fakeDatagram(p Protocol, version uint16, typ byte, template byte, records int, rate byte, packets uint16) []byte {
	b := make([]byte, fakeLen)
	if p == ProtocolSFlow {
		binary.BigEndian.PutUint32(b, uint32(version))
	} else {
		binary.BigEndian.PutUint16(b, version)
	}
	b[4], b[5], b[6], b[7] = typ, template, byte(records), rate
	binary.BigEndian.PutUint16(b[8:], packets)
	return b
}

const fakeLen = 10

// fakeDecoder decodes the format above. Data for a template it has not
// installed is an ErrNoTemplate, which is how the ordering test detects a
// data datagram overtaking its template.
type fakeDecoder struct {
	installed [256]atomic.Bool
	decoded   atomic.Uint64
	kind      flow.Format
}

func (d *fakeDecoder) Decode(dg *flow.Datagram, rec *flow.Record, sink flow.Sink) {
	d.decoded.Add(1)
	p := dg.Payload
	if len(p) < fakeLen {
		sink.DecodeError(flow.ErrTruncated)
		return
	}
	switch p[4] {
	case fakeSlowTmpl:
		time.Sleep(fakeSlow)
		fallthrough
	case fakeTemplate:
		d.installed[p[5]].Store(true)
	case fakeData:
		if !d.installed[p[5]].Load() {
			sink.DecodeError(flow.ErrNoTemplate)
			return
		}
	case fakeMalformed:
		sink.DecodeError(flow.ErrTruncated)
		return
	case fakePanic:
	default:
		sink.DecodeError(flow.ErrUnknownVersion)
		return
	}
	packets := uint64(binary.BigEndian.Uint16(p[8:]))
	for i := range int(p[6]) {
		rec.Reset()
		rec.Exporter = dg.Exporter
		rec.Received = dg.Received
		rec.Exported = dg.Received - int64(fakeExportDelay)
		rec.SrcPort = uint16(i)
		rec.Packets = packets
		rec.Bytes = packets * fakeBytesPerPkt
		rec.SamplingRate = uint32(p[7])
		rec.Format = d.kind
		sink.Record(rec)
		if p[4] == fakePanic {
			panic("fake decoder: hostile datagram")
		}
	}
}

func fakeInOrder(payload []byte) bool {
	return len(payload) >= 5 && (payload[4] == fakeTemplate || payload[4] == fakeSlowTmpl)
}

// collectingConsumer keeps copies of everything it is given.
type collectingConsumer struct {
	mu       sync.Mutex
	records  []flow.Record
	batches  int
	maxBatch int
	delay    time.Duration
	total    atomic.Uint64
}

func (c *collectingConsumer) Consume(records []flow.Record) {
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	c.mu.Lock()
	c.records = append(c.records, records...)
	c.batches++
	c.maxBatch = max(c.maxBatch, len(records))
	c.mu.Unlock()
	c.total.Add(uint64(len(records)))
}

func (c *collectingConsumer) snapshot() []flow.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]flow.Record(nil), c.records...)
}

// countingConsumer only counts, for overload tests and benchmarks.
type countingConsumer struct {
	delay   time.Duration
	records atomic.Uint64
	calls   atomic.Uint64
}

func (c *countingConsumer) Consume(records []flow.Record) {
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	c.calls.Add(1)
	c.records.Add(uint64(len(records)))
}

// testConfig listens on loopback ports picked by the kernel.
func testConfig() Configuration {
	cfg := DefaultConfiguration()
	cfg.NetFlowListen = "127.0.0.1:0"
	cfg.SFlowListen = "127.0.0.1:0"
	cfg.Workers = 2
	cfg.QueueDatagrams = 1024
	cfg.ReceiveBuffer = 4 << 20
	return cfg
}

func startCollector(t testing.TB, cfg Configuration, dec Decoders, consumer Consumer) *Collector {
	t.Helper()
	c := New(cfg, dec, consumer, testLogger(t))
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// testLogger writes to the test's output, shown only on failure or -v.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// listenAddr returns where a protocol's listener is bound.
func listenAddr(t testing.TB, c *Collector, p Protocol) *net.UDPAddr {
	t.Helper()
	ap := c.LocalAddr(p)
	if !ap.IsValid() {
		t.Fatalf("no %s listener", p)
	}
	return net.UDPAddrFromAddrPort(ap)
}

// needIPv6 skips the test where the machine has no IPv6 loopback.
func needIPv6(t testing.TB) {
	t.Helper()
	probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
}

// sender is a UDP socket bound to a given loopback source address.
func sender(t testing.TB, from string, to *net.UDPAddr) *net.UDPConn {
	t.Helper()
	src := &net.UDPAddr{IP: net.ParseIP(from)}
	if to.IP.IsUnspecified() {
		to = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to.Port}
	}
	conn, err := net.DialUDP("udp", src, to)
	if err != nil {
		t.Fatalf("dialing %s from %s: %v", to, from, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func send(t testing.TB, conn *net.UDPConn, payload []byte) {
	t.Helper()
	if _, err := conn.Write(payload); err != nil {
		t.Fatalf("sending: %v", err)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func exporterOf(s Stats, addr string, p Protocol) (ExporterStats, bool) {
	want := netip.MustParseAddr(addr)
	for _, e := range s.Exporters {
		if e.Address == want && e.Protocol == p.String() {
			return e, true
		}
	}
	return ExporterStats{}, false
}
