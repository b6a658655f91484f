package netflow

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/producer"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/flowgen"
)

// Benchmarks: 30 records a datagram; v9 and IPFIX with the RouterOS-shaped
// templates (24 and 25 fields). Each format has a flowshield and a goflow2
// (decoders + producer/proto) sub-benchmark on the same datagrams; the
// flowshield one also reports x-goflow2: goflow2's CPU ns/record, measured
// just before in the same run, over ours.
//
//	go test -run '^$' -bench 'BenchmarkDecode' -benchtime 2s ./flow/netflow/

const benchRecords = 30

type benchCase struct {
	setup, data []byte
}

func benchV5() benchCase {
	return benchCase{data: v5Datagram(benchRecords, 3_600_000, 1_700_000_000, 0)}
}

func benchV9() benchCase {
	const uptime = 3_600_000
	return benchCase{
		setup: v9Datagram(uptime, 1_700_000_000, 0, set(0, tmplRecord(256, routerOSV9Fields...))),
		data:  v9Datagram(uptime, 1_700_000_000, 0, routerOSV9DataSet(256, routerOSV9Fields, benchRecords, uptime)),
	}
}

func benchIPFIX() benchCase {
	const uptime = 3_600_000
	return benchCase{
		setup: ipfixDatagram(1_700_000_000, 0, set(2, tmplRecord(256, routerOSIPFIXFields...))),
		data:  ipfixDatagram(1_700_000_000, 0, routerOSV9DataSet(256, routerOSIPFIXFields, benchRecords, uptime)),
	}
}

func BenchmarkDecodeV5(b *testing.B)    { runDecodeBench(b, "v5", benchV5()) }
func BenchmarkDecodeV9(b *testing.B)    { runDecodeBench(b, "v9", benchV9()) }
func BenchmarkDecodeIPFIX(b *testing.B) { runDecodeBench(b, "ipfix", benchIPFIX()) }

var (
	goflowNsPerRecord   = map[string]float64{}
	goflowNsPerRecordMu sync.Mutex
)

func runDecodeBench(b *testing.B, name string, bc benchCase) {
	// goflow2 first, so the flowshield run can report the ratio; nesting
	// testing.Benchmark inside a benchmark would deadlock.
	b.Run("goflow2", func(b *testing.B) {
		ns := reportRun(b, goflowLoop(bc))
		goflowNsPerRecordMu.Lock()
		goflowNsPerRecord[name] = ns
		goflowNsPerRecordMu.Unlock()
	})
	b.Run("flowshield", func(b *testing.B) {
		ours := reportRun(b, flowshieldLoop(bc))
		goflowNsPerRecordMu.Lock()
		ref := goflowNsPerRecord[name]
		goflowNsPerRecordMu.Unlock()
		if ours > 0 && ref > 0 {
			b.ReportMetric(ref/ours, "x-goflow2")
		}
	})
}

// reportRun runs loop under b.Loop and reports per-record metrics; it
// returns CPU ns/record (wall ns/record where CPU time is unavailable), the
// basis of the x-goflow2 ratio.
func reportRun(b *testing.B, loop func(b *testing.B) int) float64 {
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start, cpu0 := time.Now(), processCPUTime()
	n := loop(b)
	elapsed, cpu := time.Since(start), processCPUTime()-cpu0
	runtime.ReadMemStats(&ms1)
	if n == 0 {
		return 0
	}
	nsPerRecord := float64(elapsed.Nanoseconds()) / float64(n)
	b.ReportMetric(nsPerRecord, "ns/record")
	b.ReportMetric(1e9/nsPerRecord, "records/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(n), "allocs/record")
	if cpu > 0 {
		// CPU time includes the GC work the path causes, on any core.
		cpuNs := float64(cpu.Nanoseconds()) / float64(n)
		b.ReportMetric(cpuNs, "cpu-ns/record")
		return cpuNs
	}
	return nsPerRecord
}

func flowshieldLoop(bc benchCase) func(b *testing.B) int {
	return func(b *testing.B) int {
		d := New(DefaultConfiguration())
		sink := &countSink{}
		var rec flow.Record
		dg := flow.Datagram{Exporter: netip.MustParseAddr("192.0.2.1"), Received: 1}
		if bc.setup != nil {
			dg.Payload = bc.setup
			d.Decode(&dg, &rec, sink)
		}
		dg.Payload = bc.data
		d.Decode(&dg, &rec, sink) // warm: first sight of the template
		sink.records = 0
		for b.Loop() {
			d.Decode(&dg, &rec, sink)
		}
		if sink.errors != 0 {
			b.Fatalf("%d decode errors", sink.errors)
		}
		return sink.records
	}
}

func goflowLoop(bc benchCase) func(b *testing.B) int {
	return func(b *testing.B) int {
		ref := newGoflowRef()
		ts := netflow.CreateTemplateSystem()
		args := &producer.ProduceArgs{
			Src:            netip.MustParseAddrPort("192.0.2.1:2055"),
			SamplerAddress: netip.MustParseAddr("192.0.2.1"),
			TimeReceived:   time.Unix(1, 0),
		}
		decodeOne := func(p []byte) int {
			var msg any
			buf := bytes.NewBuffer(p)
			if binary.BigEndian.Uint16(p) == 5 {
				var pkt netflowlegacy.PacketNetFlowV5
				if err := netflowlegacy.DecodeMessageVersion(buf, &pkt); err != nil {
					b.Fatal(err)
				}
				msg = &pkt
			} else {
				var p9 netflow.NFv9Packet
				var p10 netflow.IPFIXPacket
				if err := netflow.DecodeMessageVersion(buf, ts, &p9, &p10); err != nil {
					b.Fatal(err)
				}
				msg = &p9
				if p9.Version != 9 {
					msg = &p10
				}
			}
			msgs, err := ref.prod.Produce(msg, args)
			if err != nil {
				b.Fatal(err)
			}
			n := len(msgs)
			ref.prod.Commit(msgs)
			return n
		}
		if bc.setup != nil {
			decodeOne(bc.setup)
		}
		decodeOne(bc.data)
		records := 0
		for b.Loop() {
			records += decodeOne(bc.data)
		}
		return records
	}
}

// BenchmarkDecodePath compares the fast plan (fast.go) with the generic ops
// on several template shapes, 30 records a datagram, one sub-benchmark per
// shape and path:
//
//	go test -run '^$' -bench 'BenchmarkDecodePath' -benchtime 2s ./flow/netflow/
func BenchmarkDecodePath(b *testing.B) {
	const uptime = 3_600_000
	now := time.Unix(1_700_000_000, 0)
	shapes := []struct {
		name string
		bc   benchCase
	}{
		{"routeros-v9", benchV9()},
		{"routeros-ipfix", benchIPFIX()},
		{"routeros-v9-ipv6", benchCase{
			setup: v9Datagram(uptime, 1_700_000_000, 0, set(0, tmplRecord(257, routerOSV9v6Fields...))),
			data:  v9Datagram(uptime, 1_700_000_000, 0, routerOSV9DataSet(257, routerOSV9v6Fields, benchRecords, uptime)),
		}},
		{"flowgen-v9", flowgenBenchCase(b, flowgen.FormatNetFlowV9, now)},
		{"flowgen-ipfix", flowgenBenchCase(b, flowgen.FormatIPFIX, now)},
	}
	for _, s := range shapes {
		for _, path := range []string{"fast", "generic"} {
			b.Run(s.name+"/"+path, func(b *testing.B) {
				reportRun(b, pathLoop(s.bc, path == "generic"))
			})
		}
	}
}

// flowgenBenchCase is the generator's template datagram and one data
// datagram of benchRecords IPv4 records.
func flowgenBenchCase(b *testing.B, format flowgen.Format, now time.Time) benchCase {
	cfg := flowgen.DefaultEncoderConfiguration()
	cfg.Format, cfg.TemplateRefresh, cfg.MaxRecordsPerDatagram, cfg.MaxDatagramSize = format, 1000, benchRecords, 65000
	enc, err := flowgen.NewEncoder(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var flows []flowgen.Flow
	for _, fl := range flowgenFlows(now, 0) {
		if fl.Src.Is4() && fl.Dst.Is4() && len(flows) < benchRecords {
			flows = append(flows, fl)
		}
	}
	// The first datagram carries the templates; the second only data.
	first, _ := enc.AppendDatagram(nil, flows, now, nil)
	data, n := enc.AppendDatagram(nil, flows, now, nil)
	if n != benchRecords || CarriesTemplates(data) {
		b.Fatalf("generator datagram: %d records, templates %v", n, CarriesTemplates(data))
	}
	return benchCase{setup: first, data: data}
}

func pathLoop(bc benchCase, genericOnly bool) func(b *testing.B) int {
	return func(b *testing.B) int {
		d := New(DefaultConfiguration())
		d.genericOnly = genericOnly
		sink := &countSink{}
		var rec flow.Record
		dg := flow.Datagram{Exporter: netip.MustParseAddr("192.0.2.1"), Received: 1}
		if bc.setup != nil {
			dg.Payload = bc.setup
			d.Decode(&dg, &rec, sink)
		}
		dg.Payload = bc.data
		d.Decode(&dg, &rec, sink)
		sink.records = 0
		for b.Loop() {
			d.Decode(&dg, &rec, sink)
		}
		if sink.errors != 0 {
			b.Fatalf("%d decode errors", sink.errors)
		}
		return sink.records
	}
}
