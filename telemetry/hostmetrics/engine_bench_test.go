package hostmetrics

import (
	"bytes"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
)

// BenchmarkEngine100k: the real detector with 100,000 active hosts
// receiving (a quarter of them also sending), scraped with the defaults:
// the detector's Hosts (which copies and sorts every active host) plus
// this package's selection and formatting.
func BenchmarkEngine100k(b *testing.B) {
	e := engine100k(b)
	w := New(DefaultConfiguration(), NewSampler(e, 20, 0, nil))
	var buf bytes.Buffer
	w.WritePrometheus(&buf)
	if top := SelectTop(e, 1); top.Active[detect.In]+top.Active[detect.Out] < 100000 {
		b.Fatalf("only %d+%d active hosts", top.Active[0], top.Active[1])
	}
	cpu0 := cpuTime()
	for b.Loop() {
		buf.Reset()
		w.WritePrometheus(&buf)
	}
	b.ReportMetric(float64(buf.Len()), "bytes/scrape")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/scrape")
}

// BenchmarkEngineHosts100k is the detector's share of the above: its
// Hosts for both directions, all hosts (it copies and sorts them all).
func BenchmarkEngineHosts100k(b *testing.B) {
	e := engine100k(b)
	cpu0 := cpuTime()
	for b.Loop() {
		_ = e.Hosts(detect.In, detect.SortPPS, 0)
		_ = e.Hosts(detect.Out, detect.SortPPS, 0)
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// engine100k is a detector with 100,000 hosts receiving, a quarter of them
// also sending, all within the window.
func engine100k(b *testing.B) *detect.Engine {
	const nhosts = 100000
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cfg := detect.DefaultConfiguration()
	cfg.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cfg.MaxHosts = 1 << 20
	cfg.Global = detect.Thresholds{} // no detection work, only accounting
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := detect.New(cfg, func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	exporter := netip.MustParseAddr("192.0.2.1")
	batch := make([]flow.Record, 0, 1000)
	for i := range nhosts {
		local := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		remote := netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		src, dst := remote, local
		if i%4 == 3 {
			src, dst = local, remote
		}
		batch = append(batch, flow.Record{
			Exporter: exporter, SrcAddr: src, DstAddr: dst,
			Received: now.UnixNano(), Start: now.UnixNano() - int64(900*time.Millisecond), End: now.UnixNano() - int64(10*time.Millisecond),
			Packets: uint64(1 + i%1000), Bytes: uint64(100 * (1 + i%777)), Proto: flow.ProtoUDP, SrcPort: uint16(1024 + i), DstPort: 443,
		})
		if len(batch) == cap(batch) {
			e.Consume(batch)
			batch = batch[:0]
		}
	}
	e.Consume(batch)
	e.Tick(now)
	return e
}
