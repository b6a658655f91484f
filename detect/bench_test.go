package detect

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// benchRecords makes batches of records to nhosts hosts (a quarter of the
// records from them), as a collector would hand them over: per records a
// batch (one datagram, or a worker's batch of several).
func benchRecords(nhosts, nbatches, per int, recv time.Time) [][]flow.Record {
	out := make([][]flow.Record, nbatches)
	k := 0
	for b := range out {
		out[b] = make([]flow.Record, per)
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
	return benchEngineFor(b, netip.MustParsePrefix("10.0.0.0/8"))
}

// benchEngineFor protects network and an IPv6 /48, like a typical NETWORKS.
func benchEngineFor(b *testing.B, network netip.Prefix) (*Engine, *time.Time) {
	cfg := testConfig()
	cfg.Networks = []netip.Prefix{network, netip.MustParsePrefix("2001:db8::/48")}
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

// BenchmarkConsume: steady state (every host already tracked), one
// goroutine. batch is the records per call: 24-32 is one datagram, 256 a
// collector worker's batch. attacked: every host has an active attack in
// both directions whose flow sampler is still open, so each record also
// goes through it (the first seconds of an attack); with details, the
// attacks' details are out and their samplers closed (the rest of an
// attack, what the daemon mostly sees).
func BenchmarkConsume(b *testing.B) {
	for _, bc := range []struct {
		name     string
		network  string
		hosts    int
		batch    int
		attacked bool
		details  bool
		random   bool // hosts in random order, as a router exports them
	}{
		{"hosts=10000/batch=32", "10.0.0.0/8", 10000, 32, false, false, false},
		{"hosts=10000/batch=24", "10.0.0.0/8", 10000, 24, false, false, false},
		{"hosts=10000/batch=256", "10.0.0.0/8", 10000, 256, false, false, false},
		{"net=24/hosts=256/batch=256", "10.0.0.0/24", 256, 256, false, false, false},
		{"net=24/hosts=256/batch=24/attacked", "10.0.0.0/24", 256, 24, true, false, false},
		{"net=24/hosts=256/batch=256/attacked", "10.0.0.0/24", 256, 256, true, false, false},
		{"net=24/hosts=256/batch=256/attacked-details-sent", "10.0.0.0/24", 256, 256, true, true, false},
		{"net=16/hosts=65536/batch=256", "10.0.0.0/16", 65536, 256, false, false, false},
		{"net=20/hosts=4096/batch=256/random", "10.0.0.0/20", 4096, 256, false, false, true},
		{"net=16/hosts=65536/batch=256/random", "10.0.0.0/16", 65536, 256, false, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, _ := benchEngineFor(b, netip.MustParsePrefix(bc.network))
			nbatches := max(1024*32/bc.batch, 2*bc.hosts/bc.batch)
			batches := benchRecords(bc.hosts, nbatches, bc.batch, t0)
			if bc.random {
				shuffleRecords(batches)
			}
			if bc.attacked {
				attackAll(b, e, bc.hosts)
			}
			for _, bt := range batches {
				e.Consume(bt) // create the hosts first: steady state
			}
			if bc.attacked {
				if n := len(e.Attacks(true)); n != 2*bc.hosts {
					b.Fatalf("%d active attacks, want %d", n, 2*bc.hosts)
				}
			}
			if bc.details {
				details := 0
				for _, ev := range e.Tick(t0.Add(4 * time.Second)) { // DetailsAfter (3 s) past the start for all
					if ev.Kind == AttackDetails {
						details++
					}
				}
				if details != 2*bc.hosts {
					b.Fatalf("%d details events, want %d", details, 2*bc.hosts)
				}
			}
			if st := e.Stats(); st.HostsTracked != bc.hosts {
				b.Fatalf("%d hosts tracked, want %d", st.HostsTracked, bc.hosts)
			}
			loopConsume(b, e, batches)
		})
	}
}

// loopConsume is the benchmark's loop: Consume of batches (all of the same
// size) in turn; it reports the time, CPU and allocations per record and
// returns the records consumed.
func loopConsume(b *testing.B, e *Engine, batches [][]flow.Record) int {
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
	records := n * len(batches[0])
	reportPerRecord(b, records, cpu)
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(records), "allocs/record")
	return records
}

// shuffleRecords puts the records of all batches in a random order (fixed
// seed): sequential host order lets the hardware prefetcher hide the cache
// misses a real export's random order causes.
func shuffleRecords(batches [][]flow.Record) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for _, bt := range batches {
		n += len(bt)
	}
	at := func(i int) *flow.Record { return &batches[i/len(batches[0])][i%len(batches[0])] }
	for i := n - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		*at(i), *at(j) = *at(j), *at(i)
	}
}

// attackAll starts an attack on each of the first hosts of benchRecords in
// both directions: a second of 100,000 packets each way is 5x the default
// threshold, declared on the next Tick. No later Tick closes the
// collectors.
func attackAll(b *testing.B, e *Engine, hosts int) {
	remote := netip.MustParseAddr("198.51.100.7")
	var recs []flow.Record
	for h := 0; h < hosts; h++ {
		local := netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)})
		r := flow.Record{Exporter: exporterA, SrcAddr: remote, DstAddr: local,
			Received: t0.UnixNano(), Start: t0.UnixNano() - 1e9, End: t0.UnixNano() - 1e7,
			Packets: 100000, Bytes: 100000 * 500, Proto: flow.ProtoUDP, SrcPort: 4000, DstPort: 80}
		recs = append(recs, r)
		r.SrcAddr, r.DstAddr = local, remote
		recs = append(recs, r)
	}
	e.Consume(recs)
	evs := e.Tick(t0.Add(time.Second))
	if len(evs) != 2*hosts {
		b.Fatalf("%d events, want %d attack starts", len(evs), 2*hosts)
	}
}

// BenchmarkConsumeParallel: the same from GOMAXPROCS goroutines (2 here).
func BenchmarkConsumeParallel(b *testing.B) {
	e, _ := benchEngine(b)
	batches := benchRecords(10000, 1024, 32, t0)
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

// BenchmarkTick: one evaluation of 100,000 hosts without attacks, with
// traffic in one direction (three quarters in, a quarter out) or in both.
func BenchmarkTick(b *testing.B) {
	const hosts = 100000
	for _, bc := range []struct {
		name string
		both bool
	}{{"hosts=100000/one-direction", false}, {"hosts=100000/both-directions", true}} {
		b.Run(bc.name, func(b *testing.B) {
			e, now := benchEngine(b)
			per := 32
			for _, bt := range benchRecords(hosts, hosts/per*2, per, t0) {
				e.Consume(bt)
				if bc.both {
					for i := range bt {
						bt[i].SrcAddr, bt[i].DstAddr = bt[i].DstAddr, bt[i].SrcAddr
					}
					e.Consume(bt)
				}
			}
			*now = t0.Add(time.Second)
			if evs := e.Tick(*now); len(evs) != 0 {
				b.Fatalf("%d events, want none", len(evs))
			}
			cpu0 := cpuTime()
			for b.Loop() {
				e.Tick(*now)
			}
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/hosts, "ns/host")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/hosts, "cpu-ns/host")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/tick")
		})
	}
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

// BenchmarkConsumeWhileListing: Consume of 250,000 tracked hosts' records
// while another goroutine lists hosts over and over (the API's GET
// /api/v1/hosts), so what the listing's locks cost Consume shows: its
// throughput, and the longest and 99th percentile time one batch (256
// records) took. reader=none is the same without the listing.
func BenchmarkConsumeWhileListing(b *testing.B) {
	const hosts, per = 250000, 256
	for _, bc := range []struct {
		name  string
		limit int // -1: no reader; 0: all hosts
	}{{"reader=none", -1}, {"reader=all", 0}, {"reader=top100", 100}} {
		b.Run(bc.name, func(b *testing.B) {
			e, _ := benchEngine(b)
			batches := benchRecords(hosts, 2*hosts/per+1, per, t0)
			shuffleRecords(batches)
			for _, bt := range batches {
				e.Consume(bt)
			}
			if st := e.Stats(); st.HostsTracked != hosts {
				b.Fatalf("%d hosts tracked, want %d", st.HostsTracked, hosts)
			}
			stop := make(chan struct{})
			listed := make(chan int)
			go func() {
				n := 0
				defer func() { listed <- n }()
				if bc.limit < 0 {
					return
				}
				for {
					select {
					case <-stop:
						return
					default:
					}
					if got := len(e.Hosts(In, SortPPS, bc.limit)); got == 0 {
						panic("no host listed")
					}
					n++
				}
			}()
			lat := make([]time.Duration, 0, 1<<16)
			cpu0 := cpuTime()
			n := 0
			for b.Loop() {
				t := time.Now()
				e.Consume(batches[n%len(batches)])
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(t))
				}
				n++
			}
			cpu := cpuTime() - cpu0
			close(stop)
			lists := <-listed
			reportPerRecord(b, n*per, cpu)
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs/batch")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs/batch")
			b.ReportMetric(float64(lists)/b.Elapsed().Seconds(), "lists/s")
		})
	}
}

// BenchmarkConsumeFullTable: Consume when the host table is full and
// every record is for a host it does not hold (a scan or a carpet bombing
// over more addresses than MaxHosts). evict: the table holds quiet hosts,
// so each record's host takes the place of the quietest of a sample;
// untracked: every tracked host is under attack, so the records are
// counted untracked (the sample is taken and finds no place).
func BenchmarkConsumeFullTable(b *testing.B) {
	const maxHosts, per = 4096, 256
	for _, attacked := range []bool{false, true} {
		name := "evict"
		if attacked {
			name = "untracked"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig()
			cfg.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			cfg.MaxHosts, cfg.Shards = maxHosts, 1 // one shard: attackAll fills it
			e, err := New(cfg, func() time.Time { return t0 })
			if err != nil {
				b.Fatal(err)
			}
			if attacked {
				attackAll(b, e, maxHosts)
			}
			// hosts from 10.1.0.0 on, in random order, four times as many
			// as the table holds
			batches := benchRecords(4*maxHosts, 4*maxHosts/per*4, per, t0)
			for _, bt := range batches {
				for i := range bt {
					for _, a := range []*netip.Addr{&bt[i].SrcAddr, &bt[i].DstAddr} {
						if a.As4()[0] == 10 {
							b4 := a.As4()
							b4[1]++
							*a = netip.AddrFrom4(b4)
						}
					}
				}
			}
			shuffleRecords(batches)
			for _, bt := range batches[:len(batches)/4] {
				e.Consume(bt)
			}
			st0 := e.Stats()
			if st0.HostsTracked != maxHosts {
				b.Fatalf("%d hosts tracked", st0.HostsTracked)
			}
			records := loopConsume(b, e, batches)
			st := e.Stats()
			b.ReportMetric(float64(st.HostsEvicted-st0.HostsEvicted)/float64(records), "evictions/record")
			b.ReportMetric(float64(st.UntrackedRecords-st0.UntrackedRecords)/float64(records), "untracked/record")
		})
	}
}
