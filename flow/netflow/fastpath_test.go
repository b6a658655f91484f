package netflow

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/flowgen"
)

// The fast path (fast.go) must decode exactly as the generic ops do. These
// tests decode the same datagrams with a normal decoder and a genericOnly
// one and require identical records and error counts after every datagram.

// scribbleSink keeps copies of the records and then overwrites the reused
// record, as a sink may (the collector fills in SamplingRate): whatever
// the decoder does not reset per record shows up as a difference.
type scribbleSink struct {
	recs   []flow.Record
	errors [flow.NumErrorKinds]int
}

var scribbled = flow.Record{
	Exporter: netip.MustParseAddr("2001:db8::dead"), SrcAddr: netip.MustParseAddr("198.18.0.1"),
	DstAddr: netip.MustParseAddr("198.18.0.2"), Received: -1, Exported: -2, Start: -3, End: -4,
	Packets: 1<<64 - 1, Bytes: 1<<64 - 2, SamplingRate: 0xdeadbeef, ObservationDomain: 0xfeedface,
	InIf: 0xabcdef, OutIf: 0xfedcba, SrcPort: 0xaaaa, DstPort: 0x5555, Proto: 0xee, TCPFlags: 0xff,
	Fragment: true, Format: flow.FormatSFlowV5,
}

func (s *scribbleSink) Record(r *flow.Record)           { s.recs = append(s.recs, *r); *r = scribbled }
func (s *scribbleSink) DecodeError(kind flow.ErrorKind) { s.errors[kind]++ }

// fastVsGeneric holds a fast and a reference decoder fed the same datagrams.
type fastVsGeneric struct {
	fast, generic         *Decoder
	fastSink, genericSink scribbleSink
	fastRec, genericRec   flow.Record
	records               int
}

func newFastVsGeneric() *fastVsGeneric {
	g := &fastVsGeneric{fast: New(DefaultConfiguration()), generic: New(DefaultConfiguration())}
	g.generic.genericOnly = true
	return g
}

// decode feeds one datagram to both and returns a description of the first
// difference, or "".
func (g *fastVsGeneric) decode(dg flow.Datagram) string {
	g.fastSink.recs, g.genericSink.recs = g.fastSink.recs[:0], g.genericSink.recs[:0]
	g.fast.Decode(&dg, &g.fastRec, &g.fastSink)
	g.generic.Decode(&dg, &g.genericRec, &g.genericSink)
	if g.fastSink.errors != g.genericSink.errors {
		return fmt.Sprintf("errors: fast %v, generic %v", g.fastSink.errors, g.genericSink.errors)
	}
	if len(g.fastSink.recs) != len(g.genericSink.recs) {
		return fmt.Sprintf("fast %d records, generic %d", len(g.fastSink.recs), len(g.genericSink.recs))
	}
	for i, want := range g.genericSink.recs {
		if got := g.fastSink.recs[i]; got != want {
			return fmt.Sprintf("record %d:\n fast    %+v\n generic %+v", i, got, want)
		}
	}
	g.records += len(g.genericSink.recs)
	return ""
}

// fastTemplates counts the templates the fast decoder holds a plan for.
func (g *fastVsGeneric) fastTemplates() int {
	n := 0
	g.fast.eachScope(func(_ scopeKey, sc *scope) {
		for _, t := range *sc.templates.Load() {
			if t.fast != nil {
				n++
			}
		}
	})
	return n
}

func TestFastPathMatchesGenericOnCaptures(t *testing.T) {
	if _, err := os.Stat(testdataDir); err != nil {
		t.Fatalf("shared testdata missing: %v", err)
	}
	fastSeen := 0
	for _, grp := range captureGroups {
		t.Run(grp.name, func(t *testing.T) {
			g := newFastVsGeneric()
			for i, p := range readGroup(t, grp.files) {
				dg := flow.Datagram{Exporter: p.Src.Addr(), Payload: p.Payload, Received: p.Time.UnixNano()}
				if diff := g.decode(dg); diff != "" {
					t.Fatalf("datagram %d: %s", i, diff)
				}
			}
			fastSeen += g.fastTemplates()
		})
	}
	if fastSeen == 0 {
		t.Fatal("no capture template got a fast plan: the test compared nothing")
	}
}

// flowgenFlows is a mix the generator's formats carry differently: IPv4
// and IPv6, fragments, ICMP, 32-bit overflowing counters, sampling rates.
func flowgenFlows(now time.Time, rate uint32) []flowgen.Flow {
	var out []flowgen.Flow
	for i := range 70 {
		fl := flowgen.Flow{
			Src:     netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
			Dst:     netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 7)}),
			SrcPort: uint16(1024 + i), DstPort: uint16(53 + i%3), Proto: flow.ProtoUDP,
			Packets: uint64(1 + i), Bytes: uint64(64 * (1 + i)),
			Start: now.Add(-time.Duration(i) * time.Second), End: now.Add(-time.Millisecond * time.Duration(i)),
			SamplingRate: rate, InIf: uint32(i % 5), OutIf: uint32(70000 + i),
		}
		switch i % 7 {
		case 1:
			fl.Proto, fl.TCPFlags = flow.ProtoTCP, flow.TCPFlagSYN|flow.TCPFlagACK
		case 2:
			fl.Src = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1))
			fl.Dst = netip.MustParseAddr("2001:db8:1::7")
		case 3:
			fl.Fragment, fl.SrcPort, fl.DstPort = true, 0, 0
		case 4:
			fl.Proto, fl.SrcPort, fl.DstPort = flow.ProtoICMP, 0, 8<<8
		case 5:
			fl.Packets, fl.Bytes = 1<<33+5, 1<<40+7
		case 6:
			fl.Src = netip.IPv4Unspecified()
		}
		out = append(out, fl)
	}
	return out
}

func TestFastPathMatchesGenericOnFlowgen(t *testing.T) {
	now := time.Unix(1_700_000_000, 123_000_000)
	clocks := []flowgen.ExporterClock{
		{},
		{UptimeOffset: -90 * time.Second},
		{ZeroUptime: true},
		{ZeroFlowTimes: true},
		{Boot: now.Add(-50 * 24 * time.Hour)}, // past the 32-bit ms uptime wrap
	}
	for _, format := range flowgen.Formats() {
		if format == flowgen.FormatSFlow {
			continue
		}
		for ci, clock := range clocks {
			for _, rate := range []uint32{0, 1, 512, 100000} {
				t.Run(fmt.Sprintf("%v/clock%d/rate%d", format, ci, rate), func(t *testing.T) {
					cfg := flowgen.DefaultEncoderConfiguration()
					cfg.Format, cfg.Clock, cfg.TemplateRefresh, cfg.ObservationDomain = format, clock, 3, 7
					enc, err := flowgen.NewEncoder(cfg)
					if err != nil {
						t.Fatal(err)
					}
					g := newFastVsGeneric()
					for i, p := range enc.Datagrams(flowgenFlows(now, rate), now, nil) {
						if diff := g.decode(flow.Datagram{Exporter: exporterA, Payload: p, Received: now.UnixNano()}); diff != "" {
							t.Fatalf("datagram %d: %s", i, diff)
						}
					}
					if g.records == 0 {
						t.Fatal("no records decoded")
					}
					if format != flowgen.FormatNetFlowV5 && g.fastTemplates() == 0 {
						t.Fatal("no fast plan for the generator's templates")
					}
				})
			}
		}
	}
}

// TestRecordFormat: every record carries the wire format it came in, as
// the flow generator names it for the same encoding.
func TestRecordFormat(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, format := range flowgen.Formats() {
		if format == flowgen.FormatSFlow {
			continue
		}
		cfg := flowgen.DefaultEncoderConfiguration()
		cfg.Format = format
		enc, err := flowgen.NewEncoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d, sink, rec := New(DefaultConfiguration()), &collectSink{}, flow.Record{}
		for _, p := range enc.Datagrams(flowgenFlows(now, 0), now, nil) {
			d.Decode(&flow.Datagram{Exporter: exporterA, Payload: p, Received: now.UnixNano()}, &rec, sink)
		}
		if len(sink.recs) == 0 {
			t.Fatalf("%v: no records", format)
		}
		for _, r := range sink.recs {
			if r.Format != format.Flow() {
				t.Fatalf("%v: a record says %v, want %v", format, r.Format, format.Flow())
			}
		}
	}
}

// shapeTypes are the element ids the shape builder picks from: everything
// the decoder maps, in data and in options, and a few it skips.
var shapeTypes = []uint16{
	8, 12, 27, 28, 7, 11, 4, 6, 1, 2, 23, 24, 85, 86, 10, 14, 88, 197,
	22, 21, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 34, 48, 302,
	312, 315, 5, 15, 56, 225, 305, 306, 36, 37, 50,
}

// shapeLengths are the lengths a field may get besides its usual one.
var shapeLengths = []uint16{0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 0xffff}

// usualLength is the standard length of an element.
func usualLength(typ uint16) uint16 {
	switch typ {
	case 8, 12, 10, 14, 22, 21, 150, 151, 160, 15, 225, 305, 306, 50:
		return 4
	case 27, 28:
		return 16
	case 7, 11, 88, 312, 36, 37:
		return 2
	case 4, 6, 197, 5, 48:
		return 1
	case 56:
		return 6
	case 315:
		return 0xffff
	}
	return 8
}

// shapeDatagrams builds, from arbitrary bytes, one exporter's datagrams
// for a flow template whose fields spec chooses (two bytes a field:
// element, length): see fieldDatagrams.
func shapeDatagrams(ipfix bool, ctl uint8, spec, values []byte) [][]byte {
	return fieldDatagrams(ipfix, ctl, fieldsFromSpec(ipfix, spec), values)
}

func fieldsFromSpec(ipfix bool, spec []byte) []fieldSpec {
	var fields []fieldSpec
	for i := 0; i+1 < len(spec) && len(fields) < 40; i += 2 {
		fs := f(shapeTypes[int(spec[i])%len(shapeTypes)], 0)
		switch l := spec[i+1]; {
		case l < 128:
			fs.length = usualLength(fs.typ)
		case l < 240:
			fs.length = shapeLengths[int(l)%len(shapeLengths)]
		default:
			fs.length, fs.pen = 4, uint32(l) // an enterprise field
		}
		if !ipfix {
			fs.pen = 0
			if fs.length == 0xffff {
				fs.length = 4
			}
		}
		fields = append(fields, fs)
	}
	return fields
}

// fieldDatagrams builds one exporter's datagrams: an options template and
// options data (sampler and sampling state), the flow template of fields,
// and a data datagram of records filled from values, ending in padding,
// junk or a truncated record as ctl says.
func fieldDatagrams(ipfix bool, ctl uint8, fields []fieldSpec, values []byte) [][]byte {
	if len(fields) == 0 {
		return nil
	}
	vi := 0
	next := func() byte {
		if len(values) == 0 {
			return byte(vi)
		}
		b := values[vi%len(values)]
		vi++
		return b
	}
	var body []byte
	for range int(ctl>>4)%8 + 1 {
		for _, fs := range fields {
			n := int(fs.length)
			if fs.length == 0xffff {
				n = int(next() % 24)
				body = append(body, byte(n))
			}
			for range n {
				body = append(body, next())
			}
		}
	}
	switch ctl & 3 {
	case 1:
		body = append(body, 0, 0, 0) // padding
	case 2:
		body = append(body, next(), next(), next(), next(), next()) // junk
	case 3:
		if len(body) > 2 {
			body = body[:len(body)-2] // a truncated last record
		}
	}
	const uptime, secs = 0x40000000, 1_700_000_000
	rate := []byte{0, 0, 0, next()}
	if ctl&4 != 0 {
		rate = []byte{next(), 2, 0, 0} // little-endian, as RouterOS
	}
	if ipfix {
		opts := set(3, ipfixOptionsRecord(300, []fieldSpec{f(149, 4)}, []fieldSpec{f(302, 4), f(34, 4), f(160, 8)}))
		optData := append(append(append([]byte{0, 0, 0, 9, 0, 0, 0, next() % 3}, rate...), 0, 0, 1, 0x8b), 0xcf, 0xe5, 0x68, 0x00)
		return [][]byte{
			ipfixDatagram(secs, 9, opts, set(300, optData)),
			ipfixDatagram(secs, 9, set(2, tmplRecord(256, fields...))),
			ipfixDatagram(secs, 9, set(256, body)),
		}
	}
	opts := set(1, v9OptionsRecord(300, []fieldSpec{f(1, 4)}, []fieldSpec{f(48, 1), f(34, 4)}))
	optData := append([]byte{0, 0, 0, 9, next() % 3}, rate...)
	return [][]byte{
		v9Datagram(uptime, secs, 9, opts, set(300, optData)),
		v9Datagram(uptime, secs, 9, set(0, tmplRecord(256, fields...))),
		v9Datagram(uptime-uint32(next())*1000, secs, 9, set(256, body)),
	}
}

// handShapes are templates worth naming: the package's own test shapes,
// and the cases the one-writer rule must get right.
var handShapes = []struct {
	name   string
	fields []fieldSpec
}{
	{"routeros v9", routerOSV9Fields},
	{"routeros v9 ipv6", routerOSV9v6Fields},
	{"routeros ipfix", routerOSIPFIXFields},
	{"simple", []fieldSpec{f(8, 4), f(12, 4), f(2, 4), f(1, 4)}},
	{"diff catalog fixed", diffCatalog[:len(diffCatalog)-1]},
	{"ipv4 and ipv6 source", []fieldSpec{f(8, 4), f(27, 16), f(12, 4), f(2, 4)}},
	{"ipv6 then ipv4 destination", []fieldSpec{f(28, 16), f(12, 4), f(1, 8)}},
	{"duplicate source", []fieldSpec{f(8, 4), f(8, 4), f(7, 2), f(7, 2)}},
	{"duplicate counters", []fieldSpec{f(1, 4), f(1, 8), f(2, 4), f(2, 2), f(8, 4)}},
	{"duplicate times and rate", []fieldSpec{f(22, 4), f(22, 4), f(21, 4), f(34, 4), f(34, 4), f(8, 4)}},
	{"odd widths", []fieldSpec{f(7, 3), f(11, 1), f(4, 2), f(6, 2), f(1, 3), f(2, 5), f(10, 7), f(14, 6), f(34, 3)}},
	{"eight-byte tail", []fieldSpec{f(8, 4), f(2, 1), f(1, 8)}},
	{"exactly eight bytes", []fieldSpec{f(8, 4), f(12, 4)}},
	{"under eight bytes", []fieldSpec{f(8, 4), f(7, 2)}},
	{"mixed times", []fieldSpec{f(22, 4), f(21, 4), f(152, 8), f(159, 4), f(8, 4)}},
	{"sysinit in record", []fieldSpec{f(160, 8), f(22, 4), f(21, 8), f(12, 4)}},
	{"sampler id", []fieldSpec{f(8, 4), f(302, 4), f(2, 4), f(48, 1)}},
	{"fragments", []fieldSpec{f(8, 4), f(88, 2), f(197, 1), f(12, 4)}},
	{"reporting timers in data", []fieldSpec{f(8, 4), f(36, 2), f(37, 2), f(12, 4), f(2, 4), f(1, 4)}}, // options-only elements: skipped
	{"frame section fixed", []fieldSpec{f(315, 60), f(312, 2), f(8, 4)}},
	{"zero-length fields", []fieldSpec{f(8, 0), f(12, 4), f(7, 0), f(1, 4)}},
	{"sampler id, under eight bytes", []fieldSpec{f(8, 4), f(48, 1)}},
	{"variable length", []fieldSpec{f(8, 4), f(82, 0xffff), {typ: 100, length: 4, pen: 29305}, f(12, 4), f(83, 0xffff), f(2, 8), f(197, 1)}},
	{"unknown wide field", []fieldSpec{f(8, 4), f(100, 300), f(12, 4)}},
	{"enterprise", []fieldSpec{{typ: 8, length: 4, pen: 9}, f(8, 4), f(12, 4), {typ: 1, length: 8, pen: 29305}}},
}

func TestFastPathMatchesGenericOnShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			switch rng.IntN(4) {
			case 0:
				b[i] = 0 // unspecified addresses, zero rates and times
			default:
				b[i] = byte(rng.Uint32())
			}
		}
		return b
	}
	run := func(t *testing.T, ipfix bool, ctl uint8, fields []fieldSpec, values []byte) int {
		t.Helper()
		g := newFastVsGeneric()
		for i, p := range fieldDatagrams(ipfix, ctl, fields, values) {
			if diff := g.decode(flow.Datagram{Exporter: exporterA, Payload: p, Received: 5}); diff != "" {
				t.Fatalf("fields %v, datagram %d: %s", fields, i, diff)
			}
		}
		return g.fastTemplates()
	}
	for _, hs := range handShapes {
		t.Run(hs.name, func(t *testing.T) {
			fast := 0
			for i := range 64 {
				fast += run(t, i%2 == 1, uint8(i*37), hs.fields, randomBytes(1+rng.IntN(300)))
			}
			if fast == 0 && !strings.Contains(hs.name, "under eight bytes") && hs.name != "variable length" {
				t.Errorf("no fast plan for %v", hs.fields)
			}
		})
	}
	t.Run("random", func(t *testing.T) {
		fast := 0
		for i := range 2000 {
			spec := randomBytes(2 * (1 + rng.IntN(20)))
			g := newFastVsGeneric()
			for j, p := range shapeDatagrams(i%2 == 1, uint8(rng.Uint32()), spec, randomBytes(1+rng.IntN(200))) {
				if diff := g.decode(flow.Datagram{Exporter: exporterA, Payload: p, Received: 5}); diff != "" {
					t.Fatalf("spec %x, datagram %d: %s", spec, j, diff)
				}
			}
			fast += g.fastTemplates()
		}
		if fast < 500 {
			t.Errorf("only %d of 2000 random templates got a fast plan", fast)
		}
	})
}

// specFor is the shape-builder spec (two bytes) that yields fs, or a
// field close to it (a skipped element, the usual length) when the builder
// cannot say fs exactly: for fuzz seeds.
func specFor(fs fieldSpec) []byte {
	ti := len(shapeTypes) - 1 // an element the decoder skips
	for i, typ := range shapeTypes {
		if typ == fs.typ {
			ti = i
		}
	}
	switch {
	case fs.pen != 0:
		return []byte{byte(ti), 250}
	case fs.length == usualLength(fs.typ):
		return []byte{byte(ti), 0}
	}
	for i, l := range shapeLengths {
		if l == fs.length {
			return []byte{byte(ti), byte(128 + i)}
		}
	}
	// Any other length: the builder cannot say it; keep the usual one.
	return []byte{byte(ti), 0}
}

func TestUintAtReadsLikeBeUint(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for recLen := fastMinRecord; recLen <= 24; recLen++ {
		rec := make([]byte, recLen)
		for i := range rec {
			rec[i] = byte(rng.Uint32())
		}
		for n := 1; n <= 8; n++ {
			for off := 0; off+n <= recLen; off++ {
				u := newUintAt(fieldOp{off: uint16(off), n: uint16(n)}, recLen)
				if got, want := u.read(rec), beUint(rec[off:off+n]); got != want {
					t.Fatalf("record %d bytes, field at %d of %d: %#x, want %#x", recLen, off, n, got, want)
				}
			}
		}
		if got := absentUint.read(rec); got != 0 {
			t.Fatalf("absent field reads %#x", got)
		}
	}
}

func TestSamplingRateFromBE(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 20000 {
		n := 1 + i%8
		v := make([]byte, n)
		for j := range v {
			if rng.IntN(3) > 0 {
				v[j] = byte(rng.Uint32())
			}
		}
		if got, want := samplingRateFromBE(beUint(v), uint8(n)), routerOSSamplingRate(v); got != want {
			t.Fatalf("% x: %d, want %d", v, got, want)
		}
	}
}

// FuzzFastPathVsGeneric decodes arbitrary (setup, data) datagram pairs with
// the fast path and with the generic ops: records and errors must be
// identical.
func FuzzFastPathVsGeneric(fz *testing.F) {
	addCaptureSeeds(fz)
	for _, hs := range handShapes {
		fz.Add(v9Datagram(1000, 1, 0, set(0, tmplRecord(256, hs.fields...))), v9Datagram(1000, 1, 0, set(256, make([]byte, 200))))
	}
	fz.Fuzz(func(t *testing.T, setup, data []byte) {
		g := newFastVsGeneric()
		for i, p := range [][]byte{setup, data} {
			if diff := g.decode(flow.Datagram{Exporter: exporterA, Payload: p, Received: 5}); diff != "" {
				t.Fatalf("datagram %d: %s", i, diff)
			}
		}
	})
}

// FuzzFastPathShapes builds templates from a fuzzed choice of elements and
// lengths (shapeDatagrams), so the fuzzer explores template shapes rather
// than framing: records and errors must be identical on both paths.
func FuzzFastPathShapes(fz *testing.F) {
	for i, hs := range handShapes {
		var spec []byte
		for _, fs := range hs.fields {
			spec = append(spec, specFor(fs)...)
		}
		fz.Add(i%2 == 1, uint8(i*37), spec, []byte{1, 2, 3, 0, 0, 0, 0, 250, 17, 6})
	}
	fz.Fuzz(func(t *testing.T, ipfix bool, ctl uint8, spec, values []byte) {
		g := newFastVsGeneric()
		for i, p := range shapeDatagrams(ipfix, ctl, spec, values) {
			if diff := g.decode(flow.Datagram{Exporter: exporterA, Payload: p, Received: 5}); diff != "" {
				t.Fatalf("spec %x, datagram %d: %s", spec, i, diff)
			}
		}
	})
}

// TestFastPathZeroAllocs covers the plan's branches the RouterOS benchmarks
// do not: generic finish after rest ops, absolute times, fragments, sampler.
func TestFastPathZeroAllocs(t *testing.T) {
	for _, hs := range handShapes {
		if strings.Contains(hs.name, "frame") {
			continue // parsing a sampled frame is not the plan's
		}
		for _, ipfix := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/ipfix=%v", hs.name, ipfix), func(t *testing.T) {
				dgs := fieldDatagrams(ipfix, 0x70, hs.fields, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
				d := New(DefaultConfiguration())
				sink := &countSink{}
				var rec flow.Record
				for _, p := range dgs {
					d.Decode(&flow.Datagram{Exporter: exporterA, Payload: p}, &rec, sink)
				}
				dg := flow.Datagram{Exporter: exporterA, Payload: dgs[len(dgs)-1]}
				if allocs := testing.AllocsPerRun(20, func() { d.Decode(&dg, &rec, sink) }); allocs != 0 {
					t.Errorf("%v allocs per datagram", allocs)
				}
			})
		}
	}
}
