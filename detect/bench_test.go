package detect

import (
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// benchRecords makes batches of records to nhosts hosts (half of them also
// sending), as a collector would hand them over: 32 per datagram.
func benchRecords(nhosts, nbatches int, recv time.Time) [][]flow.Record {
	out := make([][]flow.Record, nbatches)
	k := 0
	for b := range out {
		out[b] = make([]flow.Record, 32)
		for i := range out[b] {
			h := k % nhosts
			local := netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)})
			remote := netip.AddrFrom4([4]byte{198, 51, byte(k >> 8), byte(k)})
			src, dst := remote, local
			if k%4 == 3 {
				src, dst = local, remote
			}
			out[b][i] = flow.Record{
				Exporter: exporterA, SrcAddr: src, DstAddr: dst,
				Received: recv.UnixNano(), Start: recv.UnixNano() - int64(900*time.Millisecond), End: recv.UnixNano() - int64(10*time.Millisecond),
				Packets: 10, Bytes: 5000, Proto: flow.ProtoUDP, SrcPort: uint16(1024 + k), DstPort: 443,
			}
			k++
		}
	}
	return out
}

func benchEngine(b *testing.B) (*Engine, *time.Time) {
	cfg := testConfig()
	cfg.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/48")}
	cfg.MaxHosts = 1 << 20
	now := t0
	e, err := New(cfg, func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	return e, &now
}

// cpuTime is the process's user+system CPU time: on a shared, loaded
// machine wall time per record says more about the neighbours than about
// the code, so the benchmarks report both.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportPerRecord(b *testing.B, records int, cpu time.Duration) {
	el := b.Elapsed()
	b.ReportMetric(float64(el.Nanoseconds())/float64(records), "ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(records), "cpu-ns/record")
	b.ReportMetric(float64(records)/el.Seconds(), "records/s")
}

// BenchmarkConsume: steady state, 10,000 hosts, one goroutine.
func BenchmarkConsume(b *testing.B) {
	e, _ := benchEngine(b)
	batches := benchRecords(10000, 1024, t0)
	for _, bt := range batches {
		e.Consume(bt) // create the hosts first: steady state
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		e.Consume(batches[n%len(batches)])
		n++
	}
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	reportPerRecord(b, n*32, cpu)
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n*32), "allocs/record")
}

// BenchmarkConsumeParallel: the same from GOMAXPROCS goroutines (2 here).
func BenchmarkConsumeParallel(b *testing.B) {
	e, _ := benchEngine(b)
	batches := benchRecords(10000, 1024, t0)
	for _, bt := range batches {
		e.Consume(bt)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			e.Consume(batches[i%len(batches)])
			i += 7
		}
	})
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	reportPerRecord(b, b.N*32, cpu)
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N*32), "allocs/record")
}

// BenchmarkTick: one evaluation of 100,000 hosts.
func BenchmarkTick(b *testing.B) {
	e, now := benchEngine(b)
	for _, bt := range benchRecords(100000, 100000/32*2, t0) {
		e.Consume(bt)
	}
	*now = t0.Add(time.Second)
	cpu0 := cpuTime()
	for b.Loop() {
		e.Tick(*now)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/tick")
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/tick")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkHostMemory measures the heap per tracked host: traffic in one
// direction only (a ring for one direction), and in both, for 100,000
// hosts; it reports the 100,000 hosts' heap in MiB.
func BenchmarkHostMemory(b *testing.B) {
	const hosts = 100000
	for _, tc := range []struct {
		name string
		both bool
	}{{"one-direction", false}, {"both-directions", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var perHost, total float64
			for b.Loop() {
				before := heapInUse()
				e, now := benchEngine(b)
				recs := make([]flow.Record, 0, 64)
				for h := 0; h < hosts; h++ {
					local := netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)})
					remote := netip.MustParseAddr("198.51.100.1")
					r := flow.Record{SrcAddr: remote, DstAddr: local, Received: now.UnixNano(),
						Start: now.UnixNano() - 1e9, End: now.UnixNano(), Packets: 5, Bytes: 500, Proto: flow.ProtoTCP}
					recs = append(recs, r)
					if tc.both {
						r.SrcAddr, r.DstAddr = local, remote
						recs = append(recs, r)
					}
					if len(recs) >= 32 {
						e.Consume(recs)
						recs = recs[:0]
					}
				}
				e.Consume(recs)
				e.Tick(now.Add(time.Second))
				after := heapInUse()
				if st := e.Stats(); st.HostsTracked != hosts {
					b.Fatalf("%d hosts tracked", st.HostsTracked)
				}
				total = float64(after - before)
				perHost = total / hosts
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perHost, "bytes/host")
			b.ReportMetric(total/(1<<20), "MiB/100k-hosts")
		})
	}
}
