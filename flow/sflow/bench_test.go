package sflow

import (
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/producer"

	"github.com/flowshield/flowshield/flow"
)

// benchSet is a list of datagrams decoded together per benchmark iteration.
type benchSet struct {
	name      string
	datagrams []flow.Datagram
	records   int // flow samples in one pass over datagrams
}

func benchSets(b *testing.B) []benchSet {
	b.Helper()
	synthetic := benchSet{name: "synthetic-10-ipv4-udp", datagrams: []flow.Datagram{{Exporter: exporter, Payload: benchDatagram(10), Received: received}}}
	real := benchSet{name: "captures"}
	for _, path := range captures(b) {
		for _, p := range readCapture(b, path) {
			real.datagrams = append(real.datagrams, flow.Datagram{Exporter: p.Src.Addr(), Payload: p.Payload, Received: received})
		}
	}
	sets := []benchSet{synthetic, real}
	d := New(DefaultConfiguration())
	for i := range sets {
		sink := &countSink{}
		var rec flow.Record
		for j := range sets[i].datagrams {
			d.Decode(&sets[i].datagrams[j], &rec, sink)
		}
		if sink.errors != 0 || sink.records == 0 {
			b.Fatalf("%s: %d records, %d errors", sets[i].name, sink.records, sink.errors)
		}
		sets[i].records = sink.records
	}
	return sets
}

// decodeOurs is one pass of flowshield's decoder over a set.
func decodeOurs(d *Decoder, set *benchSet, rec *flow.Record, sink *countSink) {
	for i := range set.datagrams {
		d.Decode(&set.datagrams[i], rec, sink)
	}
}

// decodeGoflow is one pass of goflow2's decoder and producer/proto over a
// set, behind our guard, as a goflow2-based collector would run them.
func decodeGoflow(b *testing.B, d *Decoder, prod producer.ProducerInterface, set *benchSet) int {
	n := 0
	for i := range set.datagrams {
		res, ok := guardedGoflowRaw(d, prod, set.datagrams[i].Payload)
		if !ok {
			b.Fatal("guard refused a benchmark datagram")
		}
		n += res
	}
	return n
}

// mallocs reads the process-wide allocation count.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// cpuTime is the CPU time (user + system) the process has used so far. On a
// shared, loaded machine wall time per record overstates the cost; CPU time
// (GC included, as it runs in this process) does not.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportPerRecord(b *testing.B, elapsed, cpu time.Duration, records int, allocs uint64) {
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(records), "cpu-ns/record")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(records), "ns/record")
	b.ReportMetric(float64(records)/cpu.Seconds(), "records/s") // per core: from CPU time
	b.ReportMetric(float64(allocs)/float64(records), "allocs/record")
}

// BenchmarkDecode measures datagram to record, ours and goflow2's decode +
// producer/proto, on the same datagrams.
func BenchmarkDecode(b *testing.B) {
	for _, set := range benchSets(b) {
		b.Run(set.name+"/flowshield", func(b *testing.B) {
			d := New(DefaultConfiguration())
			sink := &countSink{}
			var rec flow.Record
			records := 0
			m0 := mallocs()
			cpu0 := cpuTime(b)
			start := time.Now()
			for b.Loop() {
				decodeOurs(d, &set, &rec, sink)
				records += set.records
			}
			reportPerRecord(b, time.Since(start), cpuTime(b)-cpu0, records, mallocs()-m0)
		})
		b.Run(set.name+"/goflow2", func(b *testing.B) {
			d := New(DefaultConfiguration())
			prod := goflowProducer(b)
			records := 0
			m0 := mallocs()
			cpu0 := cpuTime(b)
			start := time.Now()
			for b.Loop() {
				records += decodeGoflow(b, d, prod, &set)
			}
			reportPerRecord(b, time.Since(start), cpuTime(b)-cpu0, records, mallocs()-m0)
		})
	}
}

// BenchmarkRatio runs both decoders in the same iterations, so that machine
// noise hits both alike, and reports how many times faster ours is.
func BenchmarkRatio(b *testing.B) {
	for _, set := range benchSets(b) {
		b.Run(set.name, func(b *testing.B) {
			d := New(DefaultConfiguration())
			prod := goflowProducer(b)
			sink := &countSink{}
			var rec flow.Record
			var ours, theirs time.Duration
			records := 0
			for b.Loop() {
				t0 := time.Now()
				decodeOurs(d, &set, &rec, sink)
				t1 := time.Now()
				decodeGoflow(b, d, prod, &set)
				theirs += time.Since(t1)
				ours += t1.Sub(t0)
				records += set.records
			}
			b.ReportMetric(float64(ours.Nanoseconds())/float64(records), "ours-ns/record")
			b.ReportMetric(float64(theirs.Nanoseconds())/float64(records), "goflow2-ns/record")
			b.ReportMetric(float64(theirs)/float64(ours), "x-faster")
		})
	}
}
