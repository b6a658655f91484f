package flowgen

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

func benchFlows(b *testing.B, n int) []Flow {
	s := mustScenario(b, ScenarioConfiguration{Seed: 1, SamplingRate: 1,
		Background: &Background{Prefix: netip.MustParsePrefix("203.0.113.0/24"), FlowsPerSecond: n}})
	return s.Second(nil, 0, testNow)
}

// BenchmarkEncode measures encoding a second of background traffic into
// datagrams: records/s, ns/record, allocs/record.
func BenchmarkEncode(b *testing.B) {
	flows := benchFlows(b, 3000)
	for _, format := range Formats() {
		b.Run(format.String(), func(b *testing.B) {
			cfg := DefaultEncoderConfiguration()
			cfg.Format = format
			enc, err := NewEncoder(cfg)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 65536)
			var tot Totals
			b.ReportAllocs()
			records := 0
			for b.Loop() {
				for rest := flows; len(rest) > 0; {
					var n int
					buf, n = enc.AppendDatagram(buf[:0], rest, testNow, &tot)
					rest = rest[n:]
				}
				records += len(flows)
			}
			el := b.Elapsed()
			b.ReportMetric(float64(records)/el.Seconds(), "records/s")
			b.ReportMetric(float64(el.Nanoseconds())/float64(records), "ns/record")
			b.ReportMetric(float64(testing.AllocsPerRun(1, func() {
				for rest := flows; len(rest) > 0; {
					var n int
					buf, n = enc.AppendDatagram(buf[:0], rest, testNow, &tot)
					rest = rest[n:]
				}
			}))/float64(len(flows)), "allocs/record")
		})
	}
}

// BenchmarkScenario measures generating background flows.
func BenchmarkScenario(b *testing.B) {
	s := mustScenario(b, ScenarioConfiguration{Seed: 1,
		Background: &Background{Prefix: netip.MustParsePrefix("203.0.113.0/24"), FlowsPerSecond: 10000},
		Floods:     []Flood{{Kind: FloodSYN, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 1e6, FlowsPerSecond: 1000}}})
	var flows []Flow
	records, sec := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		flows = s.Second(flows[:0], sec, testNow)
		records += len(flows)
		sec++
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkBlastLoopback measures the blaster against a loopback socket
// that is never read (the kernel drops what overflows, so this is the
// sender's own ceiling). Run with -benchtime=1x: each iteration blasts 2 s.
func BenchmarkBlastLoopback(b *testing.B) {
	for _, workers := range []int{1, 2} {
		for _, format := range []Format{FormatRouterOSV9, FormatNetFlowV5, FormatIPFIX, FormatSFlow} {
			b.Run(format.String()+"/workers="+string(rune('0'+workers)), func(b *testing.B) {
				sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				defer sink.Close()
				cfg := DefaultSenderConfiguration()
				cfg.Target = sink.LocalAddr().String()
				cfg.Encoder.Format = format
				cfg.RecordsPerSecond = 50000
				cfg.Blast = true
				cfg.BlastWorkers = workers
				cfg.Duration = 2 * time.Second
				var records, datagrams uint64
				var sending time.Duration
				for b.Loop() {
					s, err := NewSender(cfg, nil)
					if err != nil {
						b.Fatal(err)
					}
					began := time.Now()
					tot, err := s.Run(context.Background())
					sending += time.Since(began)
					if err != nil {
						b.Fatal(err)
					}
					records += tot.Records
					datagrams += tot.Datagrams
				}
				sec := sending.Seconds() // includes pre-encoding 1024 datagrams, a few ms
				b.ReportMetric(float64(records)/sec, "records/s")
				b.ReportMetric(float64(datagrams)/sec, "datagrams/s")
			})
		}
	}
}

// BenchmarkPaced200k runs the paced sender at 200,000 RouterOS v9 records/s
// for 2 s (one goroutine) against a socket that is never read and reports
// the rate achieved. Run with -benchtime=1x.
func BenchmarkPaced200k(b *testing.B) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	cfg := DefaultSenderConfiguration()
	cfg.Target = sink.LocalAddr().String()
	cfg.RecordsPerSecond = 200000
	cfg.Duration = 2 * time.Second
	var records uint64
	var sending time.Duration
	for b.Loop() {
		s, err := NewSender(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		tot, err := s.Run(context.Background())
		sending += time.Since(began)
		if err != nil {
			b.Fatal(err)
		}
		records += tot.Records
	}
	b.ReportMetric(float64(records)/sending.Seconds(), "records/s")
}
