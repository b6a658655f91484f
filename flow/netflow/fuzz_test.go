package netflow

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
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
	// Forged sampling rates: options 34 of 2^32-1, then RouterOS records
	// whose field 34 is above the bound.
	fz.Add(timerOptionsV9(2, 2, 0xffffffff, 60, 15), v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...)),
		set(256, encodeRecord(routerOSV9Fields, flowSpec{src: exporterA, dst: exporterA, packets: 1, bytes: 60, samplingLE: 0xffffffff}))))
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
				got.Exported, got.Format = 0, 0
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

// FuzzDecodeV5 feeds arbitrary v5 datagrams: either the header's count
// fits the bytes and exactly that many records come out, at the header's
// 14-bit rate, or the datagram is one ErrTooManyRecords (or ErrTruncated
// when shorter than a header) and nothing else.
func FuzzDecodeV5(fz *testing.F) {
	fz.Add(v5Datagram(2, 3_600_000, 1, 0x4000|10)[2:])
	fz.Add(v5Datagram(30, 1, 0, 0xffff)[2:])
	fz.Add(v5Datagram(1, 1, 0, 0)[2:30])
	fz.Fuzz(func(t *testing.T, tail []byte) {
		p := append([]byte{0, 5}, tail...)
		d := New(DefaultConfiguration())
		sink := &collectSink{}
		var rec flow.Record
		d.Decode(&flow.Datagram{Exporter: exporterA, Payload: p, Received: 5}, &rec, sink)
		if len(p) < v5HeaderLen {
			if sink.errors[flow.ErrTruncated] != 1 || sink.errorCount() != 1 || len(sink.recs) != 0 {
				t.Fatalf("short datagram: %d records, errors %v", len(sink.recs), sink.errors)
			}
			return
		}
		count := int(binary.BigEndian.Uint16(p[2:]))
		if v5HeaderLen+count*v5RecordLen > len(p) {
			if sink.errors[flow.ErrTooManyRecords] != 1 || sink.errorCount() != 1 || len(sink.recs) != 0 {
				t.Fatalf("count %d beyond %d bytes: %d records, errors %v", count, len(p), len(sink.recs), sink.errors)
			}
			return
		}
		if sink.errorCount() != 0 || len(sink.recs) != count {
			t.Fatalf("count %d: %d records, errors %v", count, len(sink.recs), sink.errors)
		}
		rate := uint32(binary.BigEndian.Uint16(p[22:]) & 0x3fff)
		for _, r := range sink.recs {
			if r.SamplingRate != rate || r.Format != flow.FormatNetFlowV5 || r.Exporter != exporterA || !r.SrcAddr.Is4() {
				t.Fatalf("record %+v", r)
			}
		}
	})
}

// FuzzTemplateState drives the template state with arbitrary sequences of
// templates, data, withdrawals and silences from a few exporters, under
// small bounds, and checks after every step that every bound holds and
// that the accounting matches what is held; then that a snapshot restores
// within the same bounds.
func FuzzTemplateState(fz *testing.F) {
	fz.Add([]byte{0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 200}, uint8(3))
	fz.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 1, 0, 2, 0, 2, 0, 0, 255}, uint8(0))
	fz.Add(bytes.Repeat([]byte{7, 7, 0x45, 3}, 40), uint8(15))
	catalog := []fieldSpec{f(8, 4), f(12, 4), f(2, 4), f(1, 4), f(7, 2), f(11, 2), f(4, 1), f(6, 1), f(22, 4), f(21, 4), f(34, 4), f(100, 8)}
	fz.Fuzz(func(t *testing.T, ops []byte, budgetK uint8) {
		cfg := Configuration{
			MaxExporters: 8, MaxDomainsPerExporter: 3, MaxTemplatesPerExporter: 4,
			TemplateBudget: int64(budgetK%16+1) << 10, IdleTimeout: time.Minute,
		}
		check := func(d *Decoder, where string) {
			st := d.Stats()
			held, bytes, scopes := 0, int64(0), 0
			perAddr := map[netip.Addr]int{}
			d.eachScope(func(k scopeKey, sc *scope) {
				scopes++
				perAddr[k.addr]++
				for _, tm := range *sc.templates.Load() {
					held++
					bytes += tm.bytes
				}
			})
			if st.Scopes != scopes || st.Templates != held || st.TemplateBytes != bytes || len(d.Exporters()) != scopes {
				t.Fatalf("%s: stats %+v, held %d scopes %d templates %d bytes", where, st, scopes, held, bytes)
			}
			if scopes > cfg.MaxExporters || bytes > cfg.TemplateBudget {
				t.Fatalf("%s: %d scopes, %d bytes: over the bounds", where, scopes, bytes)
			}
			for a, n := range perAddr {
				if n > cfg.MaxDomainsPerExporter {
					t.Fatalf("%s: %v holds %d scopes", where, a, n)
				}
			}
		}
		d := New(cfg)
		at := time.Duration(0)
		for i := 0; i+4 <= len(ops) && i < 4*200; i += 4 {
			from, domain, kind, step := addr(int(ops[i]%12)), uint32(ops[i+1]%5), ops[i+2], ops[i+3]
			at += time.Duration(step) * time.Second
			id := 256 + uint16(kind>>2)%6
			n := 1 + int(kind>>2)%len(catalog)
			var p []byte
			switch kind % 4 {
			case 0: // a template, v9
				p = v9Datagram(1000, 1, domain, set(0, tmplRecord(id, catalog[:n]...)))
			case 1: // an IPFIX template
				p = ipfixDatagram(1, domain, set(2, tmplRecord(id, catalog[:n]...)))
			case 2: // data
				p = v9Datagram(1000, 1, domain, set(id, make([]byte, 64)))
			case 3: // an IPFIX withdrawal
				p = ipfixDatagram(1, domain, set(2, be16(be16(nil, id), 0)))
			}
			decodeAt(d, from, at, p)
			check(d, fmt.Sprintf("op %d", i/4))
		}
		d2 := New(cfg)
		d2.RestoreTemplates(d.SnapshotTemplates())
		check(d2, "restored")
	})
}
