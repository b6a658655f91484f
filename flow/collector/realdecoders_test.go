// The collector with the real decoders on the shared device captures
// (../shared/testdata): part of the default test run.

package collector

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/netflow"
	"github.com/flowshield/flowshield/flow/pcapfile"
	"github.com/flowshield/flowshield/flow/sflow"
)

// countingSink is the reference: a decoder called directly, with the same
// default sampling rate rule as the collector.
type countingSink struct {
	defaultRate             uint32
	records, packets, bytes uint64
	errors                  map[string]uint64
}

func (s *countingSink) Record(r *flow.Record) {
	rate := r.SamplingRate
	if rate == 0 {
		rate = s.defaultRate
	}
	s.records++
	s.packets += r.Packets * uint64(rate)
	s.bytes += r.Bytes * uint64(rate)
}

func (s *countingSink) DecodeError(k flow.ErrorKind) { s.errors[k.String()]++ }

// captureGroups groups the captures of a directory by the name they share,
// templates first, as the testdata README says to feed them.
func captureGroups(t *testing.T, dir string) map[string][]string {
	files, err := filepath.Glob(filepath.Join(dir, "*.pcap"))
	if err != nil || len(files) == 0 {
		t.Skipf("no captures in %s: %v", dir, err)
	}
	groups := map[string][]string{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pcap")
		for _, suffix := range []string{"-options-template", "-options-data", "-templates", "-template", "-data"} {
			if strings.HasSuffix(name, suffix) {
				name = strings.TrimSuffix(name, suffix)
				break
			}
		}
		groups[name] = append(groups[name], f)
	}
	// Templates, then options data (sampling rates), then data.
	rank := func(f string) int {
		switch {
		case strings.Contains(f, "template"):
			return 0
		case strings.Contains(f, "options-data"):
			return 1
		}
		return 2
	}
	for _, g := range groups {
		sort.SliceStable(g, func(i, j int) bool { return rank(g[i]) < rank(g[j]) })
	}
	return groups
}

// TestRealDecodersOverUDP replays every real capture over loopback into a
// collector wired with the real decoders, and checks the totals equal the
// same decoder called directly on the same payloads.
func TestRealDecodersOverUDP(t *testing.T) {
	for _, proto := range []Protocol{ProtocolNetFlow, ProtocolSFlow} {
		dir := filepath.Join("..", "..", "..", "shared", "testdata", proto.String())
		if _, err := os.Stat(dir); err != nil {
			t.Skipf("no shared testdata: %v", err)
		}
		for name, files := range captureGroups(t, dir) {
			t.Run(proto.String()+"/"+name, func(t *testing.T) {
				var payloads [][]byte
				for _, f := range files {
					pkts, err := pcapfile.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					for _, p := range pkts {
						payloads = append(payloads, p.Payload)
					}
				}
				cfg := testConfig()
				cfg.DefaultSamplingRate = 7
				// One worker decodes in arrival order, as the reference does:
				// options data (sampling rates) is not a template set, so with
				// two workers the data right behind it may be decoded first.
				cfg.Workers = 1
				var dec, ref Decoder
				var inOrder func([]byte) bool
				var decoders Decoders
				if proto == ProtocolNetFlow {
					dec, ref = netflow.New(netflow.DefaultConfiguration()), netflow.New(netflow.DefaultConfiguration())
					inOrder = netflow.CarriesTemplates
					decoders.NetFlow, decoders.NetFlowInOrder = dec, inOrder
				} else {
					dec, ref = sflow.New(sflow.DefaultConfiguration()), sflow.New(sflow.DefaultConfiguration())
					decoders.SFlow = dec
				}
				want := &countingSink{defaultRate: cfg.DefaultSamplingRate, errors: map[string]uint64{}}
				var rec flow.Record
				now := time.Now().UnixNano()
				for _, p := range payloads {
					ref.Decode(&flow.Datagram{Exporter: netipLoopback, Payload: p, Received: now}, &rec, want)
				}

				consumer := &countingConsumer{}
				c := startCollector(t, cfg, decoders, consumer)
				conn := sender(t, "127.0.0.1", listenAddr(t, c, proto))
				for _, p := range payloads {
					send(t, conn, p)
				}
				waitFor(t, 5*time.Second, "every datagram decoded", func() bool {
					s := c.Stats()
					return s.Datagrams == uint64(len(payloads)) && s.Records >= want.records
				})
				time.Sleep(20 * time.Millisecond) // let any excess show
				s := c.Stats()
				if s.Records != want.records || s.FlowPackets != want.packets || s.FlowBytes != want.bytes || consumer.records.Load() != want.records {
					t.Errorf("collector: records %d packets %d bytes %d consumed %d; direct decode: %d %d %d",
						s.Records, s.FlowPackets, s.FlowBytes, consumer.records.Load(), want.records, want.packets, want.bytes)
				}
				for k, n := range want.errors {
					if s.DecodeErrors[k] != n {
						t.Errorf("decode errors %q: %d, direct %d", k, s.DecodeErrors[k], n)
					}
				}
				if len(s.DecodeErrors) != len(want.errors) {
					t.Errorf("decode errors %v, direct %v", s.DecodeErrors, want.errors)
				}
				t.Logf("%d datagrams, %d records, version %d", len(payloads), s.Records, s.Exporters[0].Version)
			})
		}
	}
}

var netipLoopback = netip.MustParseAddr("127.0.0.1")

// BenchmarkRealDecodersHandoff runs the hand-off benchmark with the real
// NetFlow decoder on a real capture's data datagram (its templates fed
// first), into a no-op consumer.
func BenchmarkRealDecodersHandoff(b *testing.B) {
	for _, name := range []string{"nfv5", "data+templates", "ipfixprobe"} {
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join("..", "..", "..", "shared", "testdata", "netflow")
			files, _ := filepath.Glob(filepath.Join(dir, name+"*.pcap"))
			sort.Slice(files, func(i, j int) bool { return strings.Contains(files[i], "template") })
			var payloads [][]byte
			for _, f := range files {
				pkts, err := pcapfile.ReadFile(f)
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range pkts {
					payloads = append(payloads, p.Payload)
				}
			}
			if len(payloads) == 0 {
				b.Skip("no capture")
			}
			cfg := DefaultConfiguration()
			cfg.NetFlowListen, cfg.SFlowListen = "127.0.0.1:0", ""
			c := New(cfg, Decoders{NetFlow: netflow.New(netflow.DefaultConfiguration()), NetFlowInOrder: netflow.CarriesTemplates},
				noopConsumer{}, testLogger(b))
			if err := c.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			defer c.Stop()
			r := newReader(c, c.listeners[0])
			for _, p := range payloads {
				r.handle(p, netipLoopback, time.Now().UnixNano())
			}
			data := payloads[len(payloads)-1]
			deadline := time.Now().Add(5 * time.Second)
			for len(c.queue) > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			records0 := c.totals.records.Get()
			b.ReportAllocs()
			start := time.Now()
			var n uint64
			for b.Loop() {
				for len(c.queue) >= cap(c.queue)-1 {
					runtime.Gosched()
				}
				r.handle(data, netipLoopback, time.Now().UnixNano())
				n++
			}
			for c.totals.datagrams.Get() > 0 && len(c.queue) > 0 && time.Now().Before(deadline.Add(10*time.Second)) {
				time.Sleep(100 * time.Microsecond)
			}
			time.Sleep(time.Millisecond)
			elapsed := time.Since(start).Seconds()
			recs := c.totals.records.Get() - records0
			b.ReportMetric(float64(n)/elapsed, "datagrams/s")
			b.ReportMetric(float64(recs)/elapsed, "records/s")
			if recs > 0 {
				b.ReportMetric(elapsed*1e9/float64(recs), "ns/record")
				b.ReportMetric(float64(recs)/float64(n), "records/datagram")
			}
		})
	}
}
