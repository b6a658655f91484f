package netflow

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/pcapfile"
)

// addCaptureSeeds seeds a (setup, data) fuzz target from the shared
// captures: each group's first and last datagram, and hand-built ones.
func addCaptureSeeds(fz *testing.F) {
	const uptime = 3_600_000
	fz.Add(v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...))), v9Datagram(uptime, 1, 0, routerOSV9DataSet(256, routerOSV9Fields, 3, uptime)))
	fz.Add(ipfixDatagram(1, 0, set(2, tmplRecord(256, routerOSIPFIXFields...))), ipfixDatagram(1, 0, routerOSV9DataSet(256, routerOSIPFIXFields, 2, uptime)))
	fz.Add(ipfixDatagram(1, 5, set(2, tmplRecord(500, f(8, 4), f(82, 0xffff), fieldSpec{typ: 100, length: 4, pen: 9}))), ipfixDatagram(1, 5, set(500, []byte{1, 2, 3, 4, 2, 'a', 'b', 0, 0, 0, 0})))
	fz.Add([]byte{}, v5Datagram(2, uptime, 1, 0x4000|10))
	// Options data with reporting timers (36/37), 2, 1 and 4 bytes wide,
	// then RouterOS-shaped flows.
	fz.Add(timerOptionsV9(2, 2, 100, 60, 15), v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...)), routerOSV9DataSet(256, routerOSV9Fields, 2, uptime)))
	fz.Add(timerOptionsV9(1, 4, 100, 120, 86401), timerOptionsIPFIX(4, 1, 1800, 15))
	fz.Add(timerOptionsIPFIX(2, 2, 1800, 15), ipfixDatagram(1, 0, set(2, tmplRecord(256, routerOSIPFIXFields...)), routerOSV9DataSet(256, routerOSIPFIXFields, 2, uptime)))
	if _, err := os.Stat(testdataDir); err != nil {
		return // seeds from captures are a bonus; the fuzz target still runs
	}
	for _, g := range captureGroups {
		var pkts []pcapfile.Packet
		for _, name := range g.files {
			p, err := pcapfile.ReadFile(filepath.Join(testdataDir, name))
			if err != nil {
				fz.Fatalf("reading capture: %v", err)
			}
			pkts = append(pkts, p...)
		}
		if len(pkts) > 0 {
			fz.Add(pkts[0].Payload, pkts[len(pkts)-1].Payload)
		}
	}
}

// FuzzDecode feeds two datagrams (typically templates, then data) from one
// exporter to a fresh decoder: it must not panic or hang, must not report
// more records than the bytes can hold, and must decode the same input the
// same way twice.
func FuzzDecode(fz *testing.F) {
	addCaptureSeeds(fz)
	fz.Fuzz(func(t *testing.T, setup, data []byte) {
		run := func() (countSink, bool, bool) {
			d := New(DefaultConfiguration())
			sink := countSink{}
			var rec flow.Record
			for _, p := range [][]byte{setup, data} {
				d.Decode(&flow.Datagram{Exporter: exporterA, Payload: p}, &rec, &sink)
			}
			for _, e := range d.Exporters() {
				for _, v := range []time.Duration{e.ActiveTimeout, e.InactiveTimeout} {
					if v < 0 || v > maxTimeoutSec*time.Second || v%time.Second != 0 {
						t.Fatalf("reporting timer %v out of range", v)
					}
				}
			}
			d.RestoreTemplates(d.SnapshotTemplates())
			return sink, CarriesTemplates(setup), CarriesTemplates(data)
		}
		a, ca1, ca2 := run()
		if a.records > len(setup)+len(data) {
			t.Fatalf("%d records from %d bytes", a.records, len(setup)+len(data))
		}
		b, cb1, cb2 := run()
		if a != b || ca1 != cb1 || ca2 != cb2 {
			t.Fatalf("not deterministic: %+v vs %+v", a, b)
		}
	})
}

// FuzzDecodeVsGoflow2 decodes arbitrary (setup, data) pairs with both
// decoders. Inputs that would spring goflow2's traps are not shown to it.
// When neither decoder reports any problem, both must produce the same
// number of records.
func FuzzDecodeVsGoflow2(fz *testing.F) {
	addCaptureSeeds(fz)
	fz.Fuzz(func(t *testing.T, setup, data []byte) {
		if !safeForGoflow(setup) || !safeForGoflow(data) || !v9CountCoversSets(setup) || !v9CountCoversSets(data) ||
			hasVarLenTemplate(setup) || hasVarLenTemplate(data) {
			return
		}
		d := New(DefaultConfiguration())
		sink := &collectSink{}
		var rec flow.Record
		ref := newGoflowRef()
		wantN := 0
		for _, p := range [][]byte{setup, data} {
			dg := flow.Datagram{Exporter: exporterA, Payload: p}
			d.Decode(&dg, &rec, sink)
			want, ok := goflowNoPanic(ref, &dg)
			if !ok {
				return // goflow2 rejected or choked on it: nothing to compare
			}
			wantN += len(want)
		}
		if sink.errorCount() == 0 && len(sink.recs) != wantN {
			t.Fatalf("%d records, goflow2 %d", len(sink.recs), wantN)
		}
	})
}

// v9CountCoversSets is false for a v9 datagram whose header count is below
// its number of sets: goflow2 reads the count as a number of sets and stops
// there; it counts records (RFC 3954), so we read every set.
func v9CountCoversSets(p []byte) bool {
	if len(p) < v9HeaderLen || binary.BigEndian.Uint16(p) != 9 {
		return true
	}
	count := int(binary.BigEndian.Uint16(p[2:]))
	sets := 0
	for off := v9HeaderLen; off+4 <= len(p); sets++ {
		l := int(binary.BigEndian.Uint16(p[off+2:]))
		if l < 4 {
			break
		}
		off += l
	}
	return count >= sets
}

// hasVarLenTemplate is true when p defines a template with a
// variable-length field: goflow2 then takes trailing padding for a record
// (it sizes records without their variable-length fields and reads short
// values past the end), so record counts legitimately differ. Variable-
// length decoding is compared field by field in FuzzRecordsVsGoflow2.
func hasVarLenTemplate(p []byte) bool {
	if len(p) < 2 || (binary.BigEndian.Uint16(p) != 9 && binary.BigEndian.Uint16(p) != 10) {
		return false
	}
	found := false
	walkTemplates(p, func(fields [][2]uint16) {
		for _, fl := range fields {
			if fl[1] == 0xffff {
				found = true
			}
		}
	})
	return found
}

func goflowNoPanic(ref *goflowRef, dg *flow.Datagram) (recs []flow.Record, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	recs, err := ref.decode(dg)
	return recs, err == nil
}

// diffCatalog lists fields with standard lengths whose meaning goflow2 and
// we share, for the structured differential fuzz.
var diffCatalog = []fieldSpec{
	f(8, 4), f(12, 4), f(27, 16), f(28, 16), f(7, 2), f(11, 2), f(4, 1), f(6, 1),
	f(1, 4), f(2, 4), f(1, 8), f(2, 8), f(10, 2), f(14, 4), f(10, 4), f(14, 2),
	f(88, 2), f(197, 1), f(5, 1), f(56, 6), f(15, 4), f(22, 4), f(21, 4),
	f(152, 8), f(153, 8), f(150, 4), f(151, 4), f(82, 0xffff),
}

// FuzzRecordsVsGoflow2 builds a template from a fuzzed choice of standard
// fields and a data set of fuzzed values, and requires field-by-field
// equality with goflow2's decoding.
func FuzzRecordsVsGoflow2(fz *testing.F) {
	fz.Add(uint8(9), uint32(0x00ffffff), uint8(5), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	fz.Add(uint8(10), uint32(0x0fffffff), uint8(30), []byte{0xff, 0, 0x20, 0x10})
	fz.Add(uint8(10), uint32(0x0c0000ff), uint8(1), []byte{0})
	fz.Fuzz(func(t *testing.T, v uint8, mask uint32, nrec uint8, values []byte) {
		version := uint16(9)
		if v&1 == 1 {
			version = 10
		}
		var fields []fieldSpec
		seen := map[uint16]bool{}
		for i, fs := range diffCatalog {
			if mask&(1<<i) == 0 || seen[fs.typ] {
				continue
			}
			// goflow2 reads v9 times only from 22/21 and IPFIX ones only
			// from 150-159; we read more (see the package comment).
			if version == 9 && fs.typ >= 150 || version == 10 && (fs.typ == 22 || fs.typ == 21) || version == 9 && fs.length == 0xffff {
				continue
			}
			seen[fs.typ] = true
			fields = append(fields, fs)
		}
		if len(fields) == 0 || len(values) == 0 {
			return
		}
		const uptime, secs = 0x40000000, 1_700_000_000
		n := int(nrec)%30 + 1
		var body []byte
		vi := 0
		next := func() byte { b := values[vi%len(values)]; vi++; return b }
		for range n {
			for _, fs := range fields {
				switch {
				case fs.length == 0xffff:
					l := int(next() % 16)
					body = append(body, byte(l))
					for range l {
						body = append(body, next())
					}
				case fs.typ == 22 || fs.typ == 21:
					// within the exporter's uptime, as real exporters send
					body = binary.BigEndian.AppendUint32(body, uptime-uint32(next())*1000)
				case fs.typ == 152 || fs.typ == 153:
					body = binary.BigEndian.AppendUint64(body, uint64(secs)*1000-uint64(next()))
				case fs.typ == 150 || fs.typ == 151:
					body = binary.BigEndian.AppendUint32(body, secs-uint32(next()))
				default:
					for range fs.length {
						body = append(body, next())
					}
				}
			}
		}
		var tmpl, data []byte
		if version == 9 {
			tmpl = v9Datagram(uptime, secs, 3, set(0, tmplRecord(256, fields...)))
			data = v9Datagram(uptime, secs, 3, set(256, body))
		} else {
			tmpl = ipfixDatagram(secs, 3, set(2, tmplRecord(256, fields...)))
			data = ipfixDatagram(secs, 3, set(256, body))
		}
		if len(data) > 65535 {
			return
		}
		d := New(DefaultConfiguration())
		ref := newGoflowRef()
		var rec flow.Record
		sink := &collectSink{}
		for _, p := range [][]byte{tmpl, data} {
			dg := flow.Datagram{Exporter: exporterA, Payload: p, Received: 5}
			sink.recs = sink.recs[:0]
			d.Decode(&dg, &rec, sink)
			want, err := ref.decode(&dg)
			if err != nil {
				t.Fatalf("goflow2 rejected a well-formed datagram: %v", err)
			}
			if sink.errorCount() != 0 {
				t.Fatalf("errors %v on a well-formed datagram", sink.errors)
			}
			if len(sink.recs) != len(want) {
				t.Fatalf("%d records, goflow2 %d", len(sink.recs), len(want))
			}
			for j := range want {
				got := sink.recs[j]
				got.Exported, got.Kind = 0, 0
				if got != want[j] {
					t.Fatalf("record %d (fields %v):\n got  %+v\n want %+v", j, fields, got, want[j])
				}
			}
		}
		if len(sink.recs) != n {
			t.Fatalf("%d records, built %d", len(sink.recs), n)
		}
	})
}

// FuzzRestoreTemplates restores arbitrary saved templates (as a damaged
// store might hold them) and decodes a datagram with them: no panic, no
// hang, records bounded by the bytes.
func FuzzRestoreTemplates(fz *testing.F) {
	const uptime = 3_600_000
	fz.Add(uint8(9), false, uint8(0), appendFields(nil, routerOSV9Fields), v9Datagram(uptime, 1, 0, routerOSV9DataSet(256, routerOSV9Fields, 2, uptime)))
	fz.Add(uint8(10), true, uint8(1), appendFields(nil, []fieldSpec{f(302, 4), f(305, 4), f(306, 4)}), ipfixDatagram(1, 0, set(256, []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9})))
	fz.Fuzz(func(t *testing.T, version uint8, options bool, scope uint8, raw, data []byte) {
		var fields []TemplateField
		for i := 0; i+8 <= len(raw) && len(fields) < 1000; i += 8 {
			fields = append(fields, TemplateField{
				Type:       binary.BigEndian.Uint16(raw[i:]),
				Length:     binary.BigEndian.Uint16(raw[i+2:]),
				Enterprise: binary.BigEndian.Uint32(raw[i+4:]) & 0xff, // mostly IANA
			})
		}
		d := New(DefaultConfiguration())
		d.RestoreTemplates([]SavedTemplate{{
			Exporter: exporterA, Version: uint16(version), TemplateID: 256, Options: options,
			ScopeFields: uint16(scope), Fields: fields, SamplingRate: 10, Samplers: map[uint64]uint32{1: 5},
			ActiveTimeoutSec: 60, InactiveTimeoutSec: uint32(scope) * 1000, // over a day from scope 87 on: skipped
		}})
		sink := &countSink{}
		var rec flow.Record
		d.Decode(&flow.Datagram{Exporter: exporterA, Payload: data}, &rec, sink)
		if sink.records > len(data) {
			t.Fatalf("%d records from %d bytes", sink.records, len(data))
		}
		for _, e := range d.Exporters() {
			if e.ActiveTimeout > maxTimeoutSec*time.Second || e.InactiveTimeout > maxTimeoutSec*time.Second {
				t.Fatalf("restored timers %v/%v", e.ActiveTimeout, e.InactiveTimeout)
			}
		}
	})
}
