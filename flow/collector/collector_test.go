package collector

import (
	"bytes"
	"context"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/flow"
)

// TestDeliversAndCountsPerExporter sends known datagrams from two exporter
// addresses to both listeners and checks every counter exactly.
func TestDeliversAndCountsPerExporter(t *testing.T) {
	cfg := testConfig()
	cfg.NetFlowListen = ":0" // dual stack: IPv4 sources arrive as ::ffff:a.b.c.d and must be unmapped
	cfg.DefaultSamplingRate = 10
	cfg.BatchRecords = 4
	nf, sf := &fakeDecoder{kind: flow.FormatNetFlowV9}, &fakeDecoder{kind: flow.FormatSFlowV5}
	consumer := &collectingConsumer{}
	c := startCollector(t, cfg, Decoders{NetFlow: nf, NetFlowInOrder: fakeInOrder, SFlow: sf, SFlowInOrder: fakeInOrder}, consumer)

	type stream struct {
		from      string
		protocol  Protocol
		version   uint16
		template  bool // send a template first
		datagrams int
		records   int
		rate      byte
		packets   uint16
		// expected
		wantVersion uint32
		wantRate    uint32
	}
	streams := []stream{
		{from: "127.0.0.1", protocol: ProtocolNetFlow, version: 9, template: true, datagrams: 120, records: 3, rate: 0, packets: 7, wantVersion: 9, wantRate: 10},
		{from: "127.0.0.2", protocol: ProtocolNetFlow, version: 10, datagrams: 50, records: 9, rate: 100, packets: 1, wantVersion: 10, wantRate: 100},
		{from: "127.0.0.1", protocol: ProtocolSFlow, version: 5, template: true, datagrams: 30, records: 1, rate: 64, packets: 1, wantVersion: 5, wantRate: 64},
	}
	sent, wantRecords := 0, 0
	before := time.Now()
	for _, s := range streams {
		conn := sender(t, s.from, listenAddr(t, c, s.protocol))
		if s.template {
			send(t, conn, fakeDatagram(s.protocol, s.version, fakeTemplate, 1, 0, 0, 0))
			sent++
		}
		for range s.datagrams {
			send(t, conn, fakeDatagram(s.protocol, s.version, fakeData, 1, s.records, s.rate, s.packets))
			sent++
			wantRecords += s.records
		}
	}
	waitFor(t, 5*time.Second, "all records consumed", func() bool { return consumer.total.Load() >= uint64(wantRecords) })
	waitFor(t, time.Second, "counters committed", func() bool { return c.Stats().Records >= uint64(wantRecords) })

	st := c.Stats()
	var wantPackets, wantBytes uint64
	for _, s := range streams {
		e, ok := exporterOf(st, s.from, s.protocol)
		if !ok {
			t.Fatalf("exporter %s/%s missing from %+v", s.from, s.protocol, st.Exporters)
		}
		wantDatagrams := uint64(s.datagrams)
		if s.template {
			wantDatagrams++
		}
		recs := uint64(s.datagrams * s.records)
		pk := recs * uint64(s.packets) * uint64(s.wantRate)
		wantPackets += pk
		wantBytes += pk * fakeBytesPerPkt
		if e.Datagrams != wantDatagrams || e.Records != recs || e.FlowPackets != pk || e.FlowBytes != pk*fakeBytesPerPkt {
			t.Errorf("%s/%s: datagrams %d records %d packets %d bytes %d; want %d %d %d %d",
				s.from, s.protocol, e.Datagrams, e.Records, e.FlowPackets, e.FlowBytes, wantDatagrams, recs, pk, pk*fakeBytesPerPkt)
		}
		if e.Version != s.wantVersion || e.SamplingRate != s.wantRate {
			t.Errorf("%s/%s: version %d rate %d; want %d %d", s.from, s.protocol, e.Version, e.SamplingRate, s.wantVersion, s.wantRate)
		}
		if len(e.DecodeErrors) != 0 || e.Dropped != 0 || e.DecoderPanics != 0 {
			t.Errorf("%s/%s: errors %v dropped %d panics %d; want none", s.from, s.protocol, e.DecodeErrors, e.Dropped, e.DecoderPanics)
		}
		if e.LastSeen.Before(before.Add(-time.Second)) || e.LastSeen.After(time.Now()) {
			t.Errorf("%s/%s: last seen %v, not during the test", s.from, s.protocol, e.LastSeen)
		}
		if e.ClockSkew == nil || e.ClockSkew.Latest != fakeExportDelay.Seconds() || e.ClockSkew.Min != fakeExportDelay.Seconds() {
			t.Errorf("%s/%s: clock skew %+v; want %v", s.from, s.protocol, e.ClockSkew, fakeExportDelay.Seconds())
		}
	}
	if len(st.Exporters) != len(streams) {
		t.Errorf("%d exporters listed, want %d: %+v", len(st.Exporters), len(streams), st.Exporters)
	}
	if st.Datagrams != uint64(sent) || st.Records != uint64(wantRecords) || st.FlowPackets != wantPackets || st.FlowBytes != wantBytes || st.Dropped != 0 {
		t.Errorf("totals: datagrams %d records %d packets %d bytes %d dropped %d; want %d %d %d %d 0",
			st.Datagrams, st.Records, st.FlowPackets, st.FlowBytes, st.Dropped, sent, wantRecords, wantPackets, wantBytes)
	}
	if st.InOrder != 2 {
		t.Errorf("in-order datagrams %d, want 2 templates", st.InOrder)
	}
	for _, l := range st.Listeners {
		if !l.Up || l.ReceiveBuffer <= 0 || l.ReceiveBufferRequested != cfg.ReceiveBuffer {
			t.Errorf("listener %+v: want up with a receive buffer reported", l)
		}
	}

	records := consumer.snapshot()
	if len(records) != wantRecords {
		t.Fatalf("consumer got %d records, want %d", len(records), wantRecords)
	}
	for _, r := range records {
		if !r.Exporter.Is4() || r.Received == 0 || r.SamplingRate == 0 {
			t.Fatalf("record not stamped: exporter %v (want unmapped IPv4) received %d rate %d", r.Exporter, r.Received, r.SamplingRate)
		}
	}
	consumer.mu.Lock()
	batches, maxBatch := consumer.batches, consumer.maxBatch
	consumer.mu.Unlock()
	// Batches are cut at BatchRecords (4), and at the end of every read.
	if maxBatch > cfg.BatchRecords || batches < (wantRecords+cfg.BatchRecords-1)/cfg.BatchRecords {
		t.Errorf("consumer called %d times, largest batch %d: want batches of at most %d records", batches, maxBatch, cfg.BatchRecords)
	}
}

// TestTemplatesDecodedInOrder: a template that is slow to install, sent just
// before data that needs it, must be installed before any of the data is
// decoded. Were the template decoded by a worker, the other worker would
// decode the data first and count no_template.
func TestTemplatesDecodedInOrder(t *testing.T) {
	tests := []struct {
		name        string
		inOrder     func([]byte) bool
		wantNoTmpl  bool
		wantRecords uint64
	}{
		{name: "in order", inOrder: fakeInOrder, wantRecords: 40 * 2},
		// Without InOrder the same stream loses data: proves the test can fail.
		{name: "without InOrder", inOrder: nil, wantNoTmpl: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SFlowListen = ""
			cfg.Workers = 2
			consumer := &countingConsumer{}
			c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: tt.inOrder}, consumer)
			conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
			send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeSlowTmpl, 7, 0, 0, 0))
			for range 40 {
				send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeData, 7, 2, 1, 1))
			}
			waitFor(t, 5*time.Second, "41 datagrams decoded or dropped", func() bool {
				s := c.Stats()
				var errs uint64
				for _, n := range s.DecodeErrors {
					errs += n
				}
				return s.Datagrams == 41 && s.Records+2*errs >= 80
			})
			s := c.Stats()
			if got := s.DecodeErrors["no_template"] > 0; got != tt.wantNoTmpl {
				t.Errorf("no_template errors %d; want some: %v", s.DecodeErrors["no_template"], tt.wantNoTmpl)
			}
			if tt.wantRecords != 0 && s.Records != tt.wantRecords {
				t.Errorf("records %d, want %d", s.Records, tt.wantRecords)
			}
		})
	}
}

// gatedConsumer blocks every Consume until open is closed, then takes delay
// per call: a consumer that has stalled, then crawls.
type gatedConsumer struct {
	open    chan struct{}
	delay   time.Duration
	calls   atomic.Uint64
	records atomic.Uint64
}

func (c *gatedConsumer) Consume(records []flow.Record) {
	<-c.open
	time.Sleep(c.delay)
	c.calls.Add(1)
	c.records.Add(uint64(len(records)))
}

// TestOverloadDropsAndStaysBounded floods a collector whose consumer has
// stalled: the reader keeps reading (far more than the queue holds), every
// datagram is accounted for as queued, in a worker, dropped by us or by the
// kernel, memory does not grow with the flood, and Stop returns promptly
// even though the crawling consumer would take seconds to drain the queue.
func TestOverloadDropsAndStaysBounded(t *testing.T) {
	if os.Getenv("FLOWSHIELD_TEST_QEMU") == "1" {
		t.Skip("user-mode qemu emulates neither the socket's drop counter nor its timing")
	}
	cfg := testConfig()
	cfg.SFlowListen = ""
	cfg.QueueDatagrams = 1024
	cfg.Workers = 2
	consumer := &gatedConsumer{open: make(chan struct{}), delay: 5 * time.Millisecond}
	c := New(cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: fakeInOrder}, consumer, testLogger(t))
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	release := sync.OnceFunc(func() { close(consumer.open) })
	defer c.Stop()
	defer release() // before Stop, which waits for Consume calls
	conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 0, 0, 0))
	payload := fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 30, 1, 1)
	payload = append(payload, make([]byte, 1400)...) // MTU-sized, like a real export

	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	const flood = 30000
	for i := range flood {
		send(t, conn, payload)
		if i%2000 == 0 {
			time.Sleep(time.Millisecond) // let the reader run on 2 cores
		}
	}
	// The kernel's drop count rides on the next datagram read, so keep
	// sending probes until every datagram is accounted for.
	sent := uint64(flood + 1)
	waitFor(t, 10*time.Second, "the reader to drain the socket", func() bool {
		send(t, conn, payload)
		sent++
		time.Sleep(5 * time.Millisecond)
		s := c.Stats()
		return s.Datagrams+s.KernelDropped >= sent
	})
	runtime.GC()
	runtime.ReadMemStats(&m1)

	s := c.Stats()
	t.Logf("datagrams %d dropped %d kernel-dropped %d queued %d; heap %d -> %d KiB",
		s.Datagrams, s.Dropped, s.KernelDropped, s.QueueDatagrams, m0.HeapAlloc>>10, m1.HeapAlloc>>10)
	if s.Datagrams+s.KernelDropped != sent {
		t.Errorf("read %d + kernel dropped %d != %d sent", s.Datagrams, s.KernelDropped, sent)
	}
	// Blocked in Consume: the primary reader with what it read inline, each
	// worker with up to a batch (BatchRecords, 30 records a datagram), the
	// standby kept reading into the queue, and the rest was dropped.
	held := s.Datagrams - s.Dropped
	maxHeld := uint64(s.QueueDatagrams) + s.Inline + uint64(cfg.Workers*(cfg.BatchRecords/30+1))
	if s.Datagrams < 3*uint64(cfg.QueueDatagrams) || held > maxHeld || s.StandbyTakeovers == 0 {
		t.Errorf("read %d, dropped %d, held %d (at most %d), standby take-overs %d: the reader waited for the consumer or lost count",
			s.Datagrams, s.Dropped, held, maxHeld, s.StandbyTakeovers)
	}
	// 30,000 1.4 KB datagrams would be 42 MB if kept; the queue holds 1024.
	if grown := int64(m1.HeapAlloc) - int64(m0.HeapAlloc); grown > 8<<20 {
		t.Errorf("heap grew by %d KiB under overload", grown>>10)
	}
	if e, _ := exporterOf(s, "127.0.0.1", ProtocolNetFlow); e.Dropped != s.Dropped {
		t.Errorf("exporter dropped %d, total %d", e.Dropped, s.Dropped)
	}

	release()
	start := time.Now()
	c.Stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Stop took %v with a crawling consumer", d)
	}
	s = c.Stats()
	if consumed := consumer.records.Load() / 30; s.Datagrams != s.Dropped+consumed+s.InOrder {
		t.Errorf("after Stop: %d datagrams != %d dropped + %d consumed + %d templates",
			s.Datagrams, s.Dropped, consumed, s.InOrder)
	}
}

// TestStopLeavesNoGoroutines starts and stops collectors, with traffic in
// flight, and checks every goroutine ended.
func TestStopLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		cfg := testConfig()
		cfg.Workers = 4
		c := New(cfg, Decoders{NetFlow: &fakeDecoder{}, SFlow: &fakeDecoder{}}, &countingConsumer{delay: time.Millisecond}, testLogger(t))
		ctx, cancel := context.WithCancel(context.Background())
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
		for range 100 {
			send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeMalformed, 0, 0, 0, 0))
		}
		c.Stop()
		c.Stop() // idempotent
		cancel()
		conn.Close()
	}
	waitFor(t, 2*time.Second, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// TestContextCancelClosesListeners: cancelling Start's context takes the
// listeners down (Health says so), and Stop still finishes cleanly.
func TestContextCancelClosesListeners(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := New(testConfig(), Decoders{NetFlow: &fakeDecoder{}, SFlow: &fakeDecoder{}}, &countingConsumer{}, testLogger(t))
	if err := c.Health(); err == nil {
		t.Error("Health before Start: want an error")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Health(); err != nil {
		t.Errorf("Health while running: %v", err)
	}
	cancel()
	waitFor(t, 2*time.Second, "Health to report the listeners down", func() bool { return c.Health() != nil })
	c.Stop()
	if err := c.Health(); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Health after Stop: %v, want stopped", err)
	}
}

// TestMalformedAndPanicsAreCounted: bad datagrams are counted by kind, a
// panicking decoder (on a worker and on the reader's in-order path) and a
// panicking InOrder or consumer are recovered and counted, and the single
// worker goes on delivering.
func TestMalformedAndPanicsAreCounted(t *testing.T) {
	cfg := testConfig()
	cfg.SFlowListen = ""
	cfg.Workers = 1
	consumer := &countingConsumer{}
	inOrder := func(p []byte) bool {
		if len(p) > fakeLen && p[fakeLen] == 'Q' {
			panic("fake InOrder: hostile datagram")
		}
		return fakeInOrder(p)
	}
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: inOrder}, consumer)
	conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))

	datagrams := [][]byte{
		fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 0, 0, 0),
		{0, 9, 1}, // truncated
		fakeDatagram(ProtocolNetFlow, 9, fakeMalformed, 1, 0, 0, 0),         // truncated
		fakeDatagram(ProtocolNetFlow, 9, fakeData, 99, 1, 1, 1),             // no template
		fakeDatagram(ProtocolNetFlow, 9, 'Z', 1, 1, 1, 1),                   // unknown version
		fakeDatagram(ProtocolNetFlow, 9, fakePanic, 1, 3, 1, 1),             // decoder panics on a worker
		append(fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 1, 1, 1), 'Q'), // InOrder panics; decoded by a worker
	}
	for _, d := range datagrams {
		send(t, conn, d)
	}
	for range 10 {
		send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 2, 1, 1))
	}
	// 1 record before the panic + 1 after the InOrder panic + 20.
	waitFor(t, 5*time.Second, "good records after the panics", func() bool { return consumer.records.Load() >= 22 })
	s := c.Stats()
	want := map[string]uint64{"truncated": 2, "no_template": 1, "unknown_version": 1}
	for k, n := range want {
		if s.DecodeErrors[k] != n {
			t.Errorf("decode errors %q = %d, want %d (all: %v)", k, s.DecodeErrors[k], n, s.DecodeErrors)
		}
	}
	if s.DecoderPanics != 2 {
		t.Errorf("decoder panics %d, want 2 (decoder and InOrder)", s.DecoderPanics)
	}
	e, _ := exporterOf(s, "127.0.0.1", ProtocolNetFlow)
	if e.DecoderPanics != 2 || e.DecodeErrors["truncated"] != 2 {
		t.Errorf("exporter panics %d truncated %d, want 2 and 2", e.DecoderPanics, e.DecodeErrors["truncated"])
	}
	if s.Records != 22 {
		t.Errorf("records %d, want 22", s.Records)
	}
}

// panicOnceConsumer panics on its first call.
type panicOnceConsumer struct{ countingConsumer }

func (c *panicOnceConsumer) Consume(r []flow.Record) {
	if c.calls.Add(1) == 1 {
		panic("fake consumer bug")
	}
	c.records.Add(uint64(len(r)))
}

func TestConsumerPanicIsRecovered(t *testing.T) {
	cfg := testConfig()
	cfg.SFlowListen = ""
	cfg.Workers = 1
	consumer := &panicOnceConsumer{}
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}}, consumer)
	conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
	// The batch the consumer panicked on is lost; the next is delivered.
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 1, 1, 1))
	waitFor(t, 5*time.Second, "the panic", func() bool { return c.Stats().ConsumerPanics == 1 })
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 1, 1, 1))
	waitFor(t, 5*time.Second, "the second datagram", func() bool { return consumer.records.Load() == 1 })
	if n := c.Stats().ConsumerPanics; n != 1 {
		t.Errorf("consumer panics %d, want 1", n)
	}
}

// TestInOrderPanicOnReader: a decoder panic while decoding on the reader
// (template path) is recovered and the reader keeps reading.
func TestInOrderPanicOnReader(t *testing.T) {
	cfg := testConfig()
	cfg.SFlowListen = ""
	consumer := &countingConsumer{}
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: func([]byte) bool { return true }}, consumer)
	conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 0, 0, 0))
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakePanic, 1, 2, 1, 1)) // panics on the reader
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 5, 1, 1))
	waitFor(t, 5*time.Second, "records after the reader panic", func() bool { return consumer.records.Load() == 6 })
	if s := c.Stats(); s.DecoderPanics != 1 || s.InOrder != 3 {
		t.Errorf("decoder panics %d in-order %d, want 1 and 3", s.DecoderPanics, s.InOrder)
	}
	if err := c.Health(); err != nil {
		t.Errorf("Health: %v", err)
	}
}

func TestBindFailureNamesTheSetting(t *testing.T) {
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name, netflow, sflow, want string
	}{
		{"netflow port busy", busy.LocalAddr().String(), "", "NETFLOW_LISTEN=\"" + busy.LocalAddr().String()},
		{"sflow port busy", "127.0.0.1:0", busy.LocalAddr().String(), "SFLOW_LISTEN=\"" + busy.LocalAddr().String()},
		{"netflow unresolvable", "nonsense:port:x", "", "NETFLOW_LISTEN=\"nonsense:port:x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.NetFlowListen, cfg.SFlowListen = tt.netflow, tt.sflow
			c := New(cfg, Decoders{NetFlow: &fakeDecoder{}, SFlow: &fakeDecoder{}}, &countingConsumer{}, testLogger(t))
			err := c.Start(context.Background())
			if err == nil {
				c.Stop()
				t.Fatal("Start succeeded on a busy port")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			c.Stop() // harmless after a failed Start
		})
	}
}

// TestExporterOverflow: beyond MaxExporters new exporters are not listed but
// still counted in the totals and in exporters_overflow.
func TestExporterOverflow(t *testing.T) {
	cfg := testConfig()
	cfg.SFlowListen = ""
	cfg.MaxExporters = 1
	consumer := &countingConsumer{}
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}}, consumer)
	to := listenAddr(t, c, ProtocolNetFlow)
	a, b := sender(t, "127.0.0.1", to), sender(t, "127.0.0.2", to)
	send(t, a, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 1, 1, 1))
	waitFor(t, 5*time.Second, "first exporter", func() bool { return consumer.records.Load() == 1 })
	for range 3 {
		send(t, b, fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 1, 1, 1))
	}
	waitFor(t, 5*time.Second, "overflowing exporter", func() bool { return consumer.records.Load() == 4 })
	s := c.Stats()
	if len(s.Exporters) != 1 || s.ExportersOverflow != 3 || s.Datagrams != 4 || s.Records != 4 {
		t.Errorf("exporters %d overflow %d datagrams %d records %d; want 1 3 4 4", len(s.Exporters), s.ExportersOverflow, s.Datagrams, s.Records)
	}
}

// TestMetricsTwoCollectors: two collectors in one process each export their
// own series, and the per-exporter series appear in the global output.
func TestMetricsTwoCollectors(t *testing.T) {
	var cs []*Collector
	for range 2 {
		cfg := testConfig()
		cfg.SFlowListen = ""
		consumer := &countingConsumer{}
		c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: fakeInOrder}, consumer)
		conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
		send(t, conn, fakeDatagram(ProtocolNetFlow, 10, fakeTemplate, 1, 0, 0, 0))
		send(t, conn, fakeDatagram(ProtocolNetFlow, 10, fakeData, 1, 2, 3, 4))
		waitFor(t, 5*time.Second, "records", func() bool { return consumer.records.Load() == 2 })
		cs = append(cs, c)
	}
	var own bytes.Buffer
	cs[0].WritePrometheus(&own)
	for _, want := range []string{
		"flowshield_collector_records_total 2\n",
		"flowshield_collector_flow_packets_total 24\n",
		`flowshield_collector_decode_errors_total{kind="no_template"} 0`,
		`flowshield_collector_receive_buffer_bytes{listener="netflow"} `,
		`flowshield_exporter_records_total{exporter="127.0.0.1",protocol="netflow"} 2`,
		`flowshield_exporter_flow_bytes_total{exporter="127.0.0.1",protocol="netflow"} 2400`,
		`flowshield_exporter_decode_errors_total{exporter="127.0.0.1",protocol="netflow",kind="truncated"} 0`,
		`flowshield_exporter_info{exporter="127.0.0.1",protocol="netflow",version="ipfix"} 1`,
		`flowshield_exporter_sampling_rate{exporter="127.0.0.1",protocol="netflow"} 3`,
		`flowshield_exporter_clock_skew_seconds{exporter="127.0.0.1",protocol="netflow"} 2`,
	} {
		if !strings.Contains(own.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, own.String())
		}
	}
	var global bytes.Buffer
	metrics.WritePrometheus(&global, false)
	if n := strings.Count(global.String(), "flowshield_collector_records_total 2\n"); n != 2 {
		t.Errorf("global metrics hold %d collectors' records_total, want 2", n)
	}
	cs[0].Stop()
	global.Reset()
	metrics.WritePrometheus(&global, false)
	if n := strings.Count(global.String(), "flowshield_collector_records_total 2\n"); n != 1 {
		t.Errorf("after one Stop, global metrics hold %d collectors, want 1", n)
	}
}

// TestIPv6Exporter: an IPv6 exporter keeps its address, an IPv4 one on the
// same dual-stack socket is unmapped, and they are two exporters.
func TestIPv6Exporter(t *testing.T) {
	needIPv6(t)
	cfg := testConfig()
	cfg.NetFlowListen, cfg.SFlowListen = ":0", ""
	consumer := &countingConsumer{}
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: fakeInOrder}, consumer)
	port := listenAddr(t, c, ProtocolNetFlow).Port
	v6 := sender(t, "::1", &net.UDPAddr{IP: net.IPv6loopback, Port: port})
	v4 := sender(t, "127.0.0.1", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	send(t, v6, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 1, 1, 1))
	send(t, v4, fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 2, 1, 1))
	waitFor(t, 5*time.Second, "both exporters' records", func() bool { return consumer.records.Load() == 3 })
	s := c.Stats()
	e6, ok6 := exporterOf(s, "::1", ProtocolNetFlow)
	e4, ok4 := exporterOf(s, "127.0.0.1", ProtocolNetFlow)
	if !ok6 || !ok4 || e6.Records != 1 || e4.Records != 2 || len(s.Exporters) != 2 {
		t.Errorf("exporters %+v; want ::1 with 1 record and 127.0.0.1 with 2", s.Exporters)
	}
}

// TestPollingCoalescesReads: while traffic flows, a reader wakes once per
// PollInterval and takes everything waiting in one read, rather than once
// per datagram; with polling off (the control) it reads nearly every
// datagram on its own, which proves the check can fail.
func TestPollingCoalescesReads(t *testing.T) {
	if os.Getenv("FLOWSHIELD_TEST_QEMU") == "1" {
		t.Skip("timing under user-mode qemu says nothing")
	}
	tests := []struct {
		name      string
		interval  time.Duration
		coalesced bool
	}{
		{"polling every 10ms", 10 * time.Millisecond, true},
		{"polling off", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.SFlowListen = ""
			cfg.PollInterval = tt.interval
			consumer := &countingConsumer{}
			c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: fakeInOrder}, consumer)
			conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
			send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 0, 0, 0))
			const datagrams = 400
			for range datagrams { // ~200 ms at ~2,000 datagrams/s
				send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 2, 1, 1))
				time.Sleep(500 * time.Microsecond)
			}
			waitFor(t, 5*time.Second, "every record", func() bool { return consumer.records.Load() == 2*datagrams })
			s := c.Stats()
			perRead := float64(s.Datagrams) / float64(s.Reads)
			t.Logf("%d datagrams in %d reads (%.1f a read), %d consumer calls", s.Datagrams, s.Reads, perRead, consumer.calls.Load())
			if coalesced := perRead >= 4; coalesced != tt.coalesced {
				t.Errorf("%.1f datagrams a read: coalesced %v, want %v", perRead, coalesced, tt.coalesced)
			}
			if s.Inline != s.Datagrams {
				t.Errorf("%d of %d datagrams decoded inline: a reader keeping up should hand nothing to the workers", s.Inline, s.Datagrams)
			}
		})
	}
}

// TestBehindWithFullQueueDecodesInline: a primary reader that falls behind
// hands its backlog to the workers only while their queue has room; once
// they are behind too it decodes the rest itself, leaving the backlog in
// the socket buffer, so a burst that the buffer holds loses nothing. (It
// used to move datagrams from the socket into the full queue and drop
// them there.)
func TestBehindWithFullQueueDecodesInline(t *testing.T) {
	cfg := testConfig()
	cfg.SFlowListen = ""
	cfg.Workers = 1
	cfg.QueueDatagrams = 64
	cfg.PollInterval = 5 * time.Millisecond
	cfg.StallAfter = time.Minute // no standby: this is about the primary
	// The consumer sleeps 300 µs a call: the burst below arrives far
	// faster than it is taken, so the primary falls behind and the one
	// worker with it.
	consumer := &countingConsumer{delay: 300 * time.Microsecond}
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: fakeInOrder}, consumer)
	conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 0, 0, 0))
	const datagrams = 1500
	for range datagrams {
		send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 2, 1, 1))
	}
	waitFor(t, 30*time.Second, "every datagram read", func() bool {
		s := c.Stats()
		return s.Datagrams+s.KernelDropped >= datagrams+1 && s.QueueDatagrams == 0 &&
			consumer.records.Load() == 2*(s.Datagrams-1-s.Dropped)
	})
	s := c.Stats()
	t.Logf("%d datagrams read, %d decoded on the reader, %d queue drops, %d kernel drops", s.Datagrams, s.Inline, s.Dropped, s.KernelDropped)
	if s.Dropped != 0 {
		t.Errorf("%d datagrams dropped from the queue; want 0 (the primary decodes itself when the queue is full)", s.Dropped)
	}
	if s.Inline >= s.Datagrams {
		t.Errorf("all %d datagrams decoded on the reader: it never fell behind, so the test proves nothing", s.Datagrams)
	}
	if got, want := consumer.records.Load(), 2*(s.Datagrams-1); got != want {
		t.Errorf("%d records delivered, want %d", got, want)
	}
}
