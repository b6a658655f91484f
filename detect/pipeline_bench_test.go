package detect_test

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/flow/netflow"
)

// recordBatches is the sink of a decoder: records in batches of 256, as
// the collector delivers them.
type recordBatches struct {
	recv    int64
	batches [][]flow.Record
}

func (s *recordBatches) Record(r *flow.Record) {
	n := len(s.batches)
	if n == 0 || len(s.batches[n-1]) == 256 {
		s.batches = append(s.batches, make([]flow.Record, 0, 256))
		n++
	}
	rec := *r
	rec.Received = s.recv
	if rec.SamplingRate == 0 {
		rec.SamplingRate = 1
	}
	s.batches[n-1] = append(s.batches[n-1], rec)
}

func (s *recordBatches) DecodeError(kind flow.ErrorKind) {}

// BenchmarkPipeline runs what the daemon runs for each record, without the
// socket: flowgen's RouterOS v9 background traffic (200,000 records a
// second, hosts of the prefix in random order, 2 % long flows), decoded by
// flow/netflow, consumed by the engine, with a Tick each simulated second.
// It tells the in-process cost apart from the whole daemon's
// (bench/daemon-throughput.sh).
//
// The cold variants evict the processor's caches (a walk over 64 MiB,
// not timed) after every 16 batches, 4,096 records: between polls the
// daemon's state is evicted by the kernel, the exporter and the other
// programs of the machine, and this is what the daemon's Consume pays.
// 4,096 records is what a 20 ms poll took at 200,000 records/s; the
// reader now polls every 100 ms (20,000 records), so this is the colder,
// harder case.
func BenchmarkPipeline(b *testing.B) {
	var evict []byte
	for _, v := range []struct {
		prefix string
		cold   bool
	}{{"203.0.113.0/24", false}, {"203.0.112.0/20", false}, {"10.20.0.0/16", false},
		{"203.0.113.0/24", true}, {"203.0.112.0/20", true}, {"10.20.0.0/16", true}} {
		name, prefix := "net="+v.prefix[len(v.prefix)-2:], v.prefix
		if v.cold {
			name += "/cold"
			if evict == nil {
				evict = make([]byte, 64<<20)
			}
		}
		b.Run(name, func(b *testing.B) {
			const seconds, perSecond = 8, 200000
			p := netip.MustParsePrefix(prefix)
			sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{Seed: 1,
				Background: &flowgen.Background{Prefix: p, FlowsPerSecond: perSecond}})
			if err != nil {
				b.Fatal(err)
			}
			enc, err := flowgen.NewEncoder(flowgen.DefaultEncoderConfiguration())
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
			dec := netflow.New(netflow.DefaultConfiguration())
			exporter := netip.MustParseAddr("192.0.2.1")
			var rec flow.Record
			secs := make([][][]flow.Record, seconds)
			var flows []flowgen.Flow
			total := 0
			for s := range seconds {
				start := t0.Add(time.Duration(s) * time.Second)
				flows = sc.Second(flows[:0], s, start)
				sink := &recordBatches{recv: start.Add(999 * time.Millisecond).UnixNano()}
				for _, dg := range enc.Datagrams(flows, start.Add(time.Second), nil) {
					dec.Decode(&flow.Datagram{Exporter: exporter, Payload: dg, Received: sink.recv}, &rec, sink)
				}
				secs[s] = sink.batches
				for _, bt := range sink.batches {
					total += len(bt)
				}
			}
			cfg := detect.DefaultConfiguration()
			cfg.Networks = []netip.Prefix{p}
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			now := t0
			e, err := detect.New(cfg, func() time.Time { return now })
			if err != nil {
				b.Fatal(err)
			}
			records := 0
			for b.Loop() {
				for s, batches := range secs {
					now = t0.Add(time.Duration(s+1) * time.Second)
					for i, bt := range batches {
						e.Consume(bt)
						if v.cold && i%16 == 15 {
							b.StopTimer()
							for j := 0; j < len(evict); j += 64 {
								evict[j]++
							}
							b.StartTimer()
						}
					}
					e.Tick(now)
				}
				records += total
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(records), "ns/record")
			b.ReportMetric(0, "ns/op")
		})
	}
}
