package collector

import (
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// noopDecoder emits a fixed number of records per datagram and does no
// parsing, so the benchmarks measure the pipeline alone.
type noopDecoder struct{ records int }

func (d noopDecoder) Decode(dg *flow.Datagram, rec *flow.Record, sink flow.Sink) {
	for i := range d.records {
		rec.SrcPort = uint16(i)
		rec.Packets, rec.Bytes = 1, 64
		sink.Record(rec)
	}
}

type noopConsumer struct{}

func (noopConsumer) Consume([]flow.Record) {}

const benchRecords = 30 // per datagram, as a full v9 export of a router

func benchCollector(b *testing.B) *Collector {
	cfg := DefaultConfiguration()
	cfg.NetFlowListen, cfg.SFlowListen = "127.0.0.1:0", ""
	c := New(cfg, Decoders{NetFlow: noopDecoder{records: benchRecords}}, noopConsumer{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Stop)
	return c
}

func reportPipeline(b *testing.B, c *Collector, start time.Time, cpu0 int64, datagrams uint64) {
	// Wait (bounded) for the workers to finish what was handed to them.
	deadline := time.Now().Add(10 * time.Second)
	for c.totals.records.Get()+c.totals.dropped.Get()*benchRecords < datagrams*benchRecords && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start).Seconds()
	cpu := processCPU() - cpu0
	s := c.Stats()
	b.ReportMetric(float64(s.Datagrams)/elapsed, "datagrams/s")
	b.ReportMetric(float64(s.Records)/elapsed, "records/s")
	b.ReportMetric(float64(s.Dropped), "dropped")
	if s.Datagrams != 0 {
		b.ReportMetric(elapsed*1e9/float64(s.Datagrams), "ns/datagram")
		b.ReportMetric(float64(cpu)/float64(s.Datagrams), "cpu-ns/datagram")
	}
	if s.Records != 0 {
		b.ReportMetric(float64(cpu)/float64(s.Records), "cpu-ns/record")
	}
}

// BenchmarkPipelineHandoff drives the reader's hand-off directly (no
// socket) through the queue, two workers, the no-op decoder's 30 records
// each, the sink and batching, into a no-op consumer. allocs/op is per
// datagram, counted over every goroutine.
func BenchmarkPipelineHandoff(b *testing.B) {
	c := benchCollector(b)
	r := newReader(c, c.listeners[0])
	payload := fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 0, 0, 0)
	payload = append(payload, make([]byte, 1400)...)
	from := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	start, cpu0 := time.Now(), processCPU()
	var n uint64
	for b.Loop() {
		for len(c.queue) >= cap(c.queue)-1 { // measure capacity, not drops
			runtime.Gosched()
		}
		r.handle(payload, from, time.Now().UnixNano())
		n++
	}
	reportPipeline(b, c, start, cpu0, n)
}

// BenchmarkPipelineUDP is the same end to end over a loopback socket, with
// a sender that keeps at most 256 datagrams in flight so nothing is lost.
func BenchmarkPipelineUDP(b *testing.B) {
	c := benchCollector(b)
	conn := sender(b, "127.0.0.1", listenAddr(b, c, ProtocolNetFlow))
	payload := fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 0, 0, 0)
	payload = append(payload, make([]byte, 1400)...)
	b.ReportAllocs()
	start, cpu0 := time.Now(), processCPU()
	var n uint64
	for b.Loop() {
		for n-c.totals.datagrams.Get()-c.listeners[0].kernelDrops.Load() > 256 {
			runtime.Gosched()
		}
		if _, err := conn.Write(payload); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportPipeline(b, c, start, cpu0, n)
}
