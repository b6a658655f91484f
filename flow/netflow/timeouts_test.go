package netflow

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// Reporting timers in options data: IPFIX 36 flowActiveTimeout and 37
// flowIdleTimeout (unsigned16 seconds, RFC 7012 / IANA registry), NetFlow
// v9 36 FLOW_ACTIVE_TIMEOUT and 37 FLOW_INACTIVE_TIMEOUT (2 bytes,
// seconds, RFC 3954 section 8).

// beN writes v big-endian in n bytes (the low n bytes of v).
func beN(v uint64, n int) []byte {
	out := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		out[i] = byte(v)
		v >>= 8
	}
	return out
}

// timerOptionsV9 is a v9 datagram with an options template (scope System,
// then 34 samplingInterval, 36 and 37 of the given lengths) and one options
// data record carrying rate, active and inactive.
func timerOptionsV9(activeLen, inactiveLen int, rate uint32, active, inactive uint64) []byte {
	tmpl := v9OptionsRecord(260, []fieldSpec{f(1, 4)}, []fieldSpec{f(34, 4), f(36, uint16(activeLen)), f(37, uint16(inactiveLen))})
	data := append([]byte{0, 0, 0, 0}, be32(nil, rate)...)
	data = append(append(data, beN(active, activeLen)...), beN(inactive, inactiveLen)...)
	return v9Datagram(1000, 1_700_000_000, 0, set(1, tmpl), set(260, data))
}

// timerOptionsIPFIX is the IPFIX equivalent: scope 149
// observationDomainId, then 36 and 37.
func timerOptionsIPFIX(activeLen, inactiveLen int, active, inactive uint64) []byte {
	tmpl := ipfixOptionsRecord(261, []fieldSpec{f(149, 4)}, []fieldSpec{f(36, uint16(activeLen)), f(37, uint16(inactiveLen))})
	data := append(append([]byte{0, 0, 0, 0}, beN(active, activeLen)...), beN(inactive, inactiveLen)...)
	return ipfixDatagram(1_700_000_000, 0, set(3, tmpl), set(261, data))
}

const testReceived = 1_700_000_000_000_000_000 // decodeAll's Received

func TestOptionsReportingTimers(t *testing.T) {
	tests := []struct {
		name             string
		p                []byte
		version          uint16
		active, inactive time.Duration
		rate             uint32
		announced        bool
	}{
		{name: "v9 2 bytes", p: timerOptionsV9(2, 2, 100, 60, 15), version: 9, active: time.Minute, inactive: 15 * time.Second, rate: 100, announced: true},
		{name: "v9 1 byte", p: timerOptionsV9(1, 1, 100, 120, 30), version: 9, active: 2 * time.Minute, inactive: 30 * time.Second, rate: 100, announced: true},
		{name: "v9 4 bytes", p: timerOptionsV9(4, 4, 100, 1800, 15), version: 9, active: 30 * time.Minute, inactive: 15 * time.Second, rate: 100, announced: true},
		{name: "v9 3 and 8 bytes", p: timerOptionsV9(3, 8, 100, 86400, 1), version: 9, active: 24 * time.Hour, inactive: time.Second, rate: 100, announced: true},
		{name: "ipfix 2 bytes", p: timerOptionsIPFIX(2, 2, 1800, 15), version: 10, active: 30 * time.Minute, inactive: 15 * time.Second, announced: true},
		{name: "ipfix 1 byte", p: timerOptionsIPFIX(1, 1, 60, 15), version: 10, active: time.Minute, inactive: 15 * time.Second, announced: true},
		{name: "ipfix 4 bytes", p: timerOptionsIPFIX(4, 4, 60, 300), version: 10, active: time.Minute, inactive: 5 * time.Minute, announced: true},
		{name: "v9 zero ignored", p: timerOptionsV9(2, 2, 100, 0, 0), version: 9, rate: 100},
		{name: "v9 over a day ignored", p: timerOptionsV9(4, 4, 100, 86401, 0xffffffff), version: 9, rate: 100},
		{name: "ipfix 8 bytes huge ignored", p: timerOptionsIPFIX(8, 8, 1<<63, 1<<40), version: 10},
		{name: "ipfix one valid one zero", p: timerOptionsIPFIX(2, 2, 0, 15), version: 10, inactive: 15 * time.Second, announced: true},
		{name: "ipfix 16 bytes not a number", p: timerOptionsIPFIX(16, 16, 60, 15), version: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := New(DefaultConfiguration())
			sink := decodeAll(t, d, tc.p)
			if sink.errorCount() != 0 || len(sink.recs) != 0 {
				t.Fatalf("records %d errors %v", len(sink.recs), sink.errors)
			}
			ex := d.Exporters()
			if len(ex) != 1 {
				t.Fatalf("exporters %+v", ex)
			}
			e := ex[0]
			if e.Version != tc.version || e.ActiveTimeout != tc.active || e.InactiveTimeout != tc.inactive || e.SamplingRate != tc.rate {
				t.Errorf("got v%d active %v inactive %v rate %d, want v%d %v %v %d",
					e.Version, e.ActiveTimeout, e.InactiveTimeout, e.SamplingRate, tc.version, tc.active, tc.inactive, tc.rate)
			}
			if want := int64(0); tc.announced {
				if e.TimeoutsAnnounced != testReceived {
					t.Errorf("TimeoutsAnnounced %d, want %d", e.TimeoutsAnnounced, int64(testReceived))
				}
			} else if e.TimeoutsAnnounced != want {
				t.Errorf("TimeoutsAnnounced %d with no valid timer", e.TimeoutsAnnounced)
			}
		})
	}
}

// A later announcement replaces the timers; one out of range keeps the
// previous value; several records in one set: the last wins.
func TestOptionsReportingTimersUpdate(t *testing.T) {
	d := New(DefaultConfiguration())
	tmpl := v9OptionsRecord(260, []fieldSpec{f(1, 4)}, []fieldSpec{f(36, 2), f(37, 2)})
	rec := func(a, i uint16) []byte { return be16(be16([]byte{0, 0, 0, 0}, a), i) }
	sink := decodeAll(t, d,
		v9Datagram(1000, 1, 0, set(1, tmpl), set(260, append(rec(60, 15), rec(1800, 30)...))),
		v9Datagram(1000, 1, 0, set(260, rec(0, 10))), // active 0: ignored
	)
	if sink.errorCount() != 0 {
		t.Fatalf("errors %v", sink.errors)
	}
	e := d.Exporters()[0]
	if e.ActiveTimeout != 30*time.Minute || e.InactiveTimeout != 10*time.Second {
		t.Errorf("active %v inactive %v, want 30m0s 10s", e.ActiveTimeout, e.InactiveTimeout)
	}
	// Scopes are separate: each observation domain has its own.
	other := New(DefaultConfiguration())
	decodeAll(t, other, v9Datagram(1000, 1, 7, set(1, tmpl), set(260, rec(60, 15))))
	if ex := other.Exporters(); len(ex) != 1 || ex[0].ObservationDomain != 7 || ex[0].ActiveTimeout != time.Minute {
		t.Errorf("domain 7: %+v", ex)
	}
}

// 36/37 inside flow data records are not read, and the data path, fast
// plan included, is untouched by an options template carrying them.
func TestReportingTimersOnlyFromOptions(t *testing.T) {
	opt, ok := compile(10, true, 1, []TemplateField{{Type: 149, Length: 4}, {Type: 36, Length: 2}, {Type: 37, Length: 2}})
	if !ok || opt.fast != nil {
		t.Fatalf("options template: ok %v, fast plan %v (must be nil)", ok, opt.fast)
	}
	kinds := map[opKind]bool{}
	for _, op := range opt.ops {
		kinds[op.kind] = true
	}
	if !kinds[opOptActiveTimeout] || !kinds[opOptInactiveTimeout] {
		t.Errorf("options template ops %+v", opt.ops)
	}
	fields := []fieldSpec{f(8, 4), f(36, 2), f(37, 2), f(12, 4), f(2, 4), f(1, 4)}
	var tfs []TemplateField
	for _, fs := range fields {
		tfs = append(tfs, TemplateField{Type: fs.typ, Length: fs.length})
	}
	data, ok := compile(9, false, 0, tfs)
	if !ok || data.fast == nil {
		t.Fatalf("flow template with 36/37: ok %v, no fast plan", ok)
	}
	for _, op := range append(append([]fieldOp(nil), data.ops...), data.fast.rest...) {
		if op.off == 4 || op.off == 6 {
			t.Errorf("flow template reads 36/37: %+v", op)
		}
	}
	d := New(DefaultConfiguration())
	rec := append([]byte{10, 0, 0, 1, 0, 60, 0, 15, 10, 0, 0, 2}, be32(be32(nil, 3), 180)...)
	sink := decodeAll(t, d, v9Datagram(1000, 1, 0, set(0, tmplRecord(256, fields...)), set(256, rec)))
	if sink.errorCount() != 0 || len(sink.recs) != 1 || sink.recs[0].Packets != 3 || sink.recs[0].Bytes != 180 {
		t.Fatalf("records %+v errors %v", sink.recs, sink.errors)
	}
	if e := d.Exporters()[0]; e.ActiveTimeout != 0 || e.InactiveTimeout != 0 || e.TimeoutsAnnounced != 0 {
		t.Errorf("timers taken from a data record: %+v", e)
	}

	// No allocation per data datagram once options with timers are known.
	d = New(DefaultConfiguration())
	decodeAll(t, d, timerOptionsV9(2, 2, 100, 60, 15), v9Datagram(1000, 1, 0, set(0, tmplRecord(256, fields...))))
	dg := flow.Datagram{Exporter: exporterA, Payload: v9Datagram(1000, 1, 0, set(256, rec))}
	var r flow.Record
	cs := &countSink{}
	if allocs := testing.AllocsPerRun(100, func() { d.Decode(&dg, &r, cs) }); allocs != 0 {
		t.Errorf("%v allocs per data datagram", allocs)
	}
	if cs.errors != 0 || cs.records == 0 {
		t.Errorf("records %d errors %d", cs.records, cs.errors)
	}
}

func TestExporterTemplatesJSON(t *testing.T) {
	d := New(DefaultConfiguration())
	decodeAll(t, d, timerOptionsIPFIX(2, 2, 1800, 15))
	e := d.Exporters()[0]
	js, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"active_timeout_s":1800`, `"inactive_timeout_s":15`, `"timeouts_announced":1700000000000000000`, `"exporter":"192.0.2.1"`, `"version":10`, `"sampling_rate":0`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON %s lacks %s", js, want)
		}
	}
	if strings.Contains(string(js), "ActiveTimeout") {
		t.Errorf("JSON %s carries the Duration field", js)
	}
	var back ExporterTemplates
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if back != e {
		t.Errorf("round trip %+v, want %+v", back, e)
	}
	// A slice, as a status page would marshal it; and no timers: zeros.
	js, err = json.Marshal(New(DefaultConfiguration()).Exporters())
	if err != nil || string(js) != "[]" {
		t.Errorf("empty: %s %v", js, err)
	}
	var none ExporterTemplates
	if js, _ = json.Marshal([]ExporterTemplates{none}); !strings.Contains(string(js), `"active_timeout_s":0,"inactive_timeout_s":0`) {
		t.Errorf("zero timers JSON %s", js)
	}
}

func TestSnapshotRestoreReportingTimers(t *testing.T) {
	d := New(DefaultConfiguration())
	decodeAll(t, d, timerOptionsV9(2, 2, 100, 60, 15))
	saved := d.SnapshotTemplates()
	if len(saved) != 1 || saved[0].ActiveTimeoutSec != 60 || saved[0].InactiveTimeoutSec != 15 {
		t.Fatalf("snapshot %+v", saved)
	}
	js, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `"active_timeout_s":60,"inactive_timeout_s":15`) {
		t.Errorf("snapshot JSON %s", js)
	}
	var back []SavedTemplate
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	d2 := New(DefaultConfiguration())
	d2.RestoreTemplates(back)
	e := d2.Exporters()[0]
	if e.ActiveTimeout != time.Minute || e.InactiveTimeout != 15*time.Second || e.TimeoutsAnnounced != 0 || e.SamplingRate != 100 {
		t.Errorf("restored %+v", e)
	}

	// Restored values do not replace announced ones; out of range ones are
	// skipped.
	d3 := New(DefaultConfiguration())
	decodeAll(t, d3, timerOptionsV9(2, 2, 100, 1800, 0))
	st := back[0]
	st.Received = 0 // as the appliance stores it
	st.ActiveTimeoutSec, st.InactiveTimeoutSec = 60, 86401
	d3.RestoreTemplates([]SavedTemplate{st})
	if e := d3.Exporters()[0]; e.ActiveTimeout != 30*time.Minute || e.InactiveTimeout != 0 {
		t.Errorf("restore over announced: %+v", e)
	}

	// A snapshot from before the timers were kept loads, with none.
	old := `[{"exporter":"192.0.2.1","observation_domain":0,"version":9,"template_id":260,"options":true,"scope_fields":1,` +
		`"fields":[{"type":1,"length":4},{"type":34,"length":4}],"received":5,"sampling_rate":100}]`
	var olds []SavedTemplate
	if err := json.Unmarshal([]byte(old), &olds); err != nil {
		t.Fatal(err)
	}
	d4 := New(DefaultConfiguration())
	d4.RestoreTemplates(olds)
	if ex := d4.Exporters(); len(ex) != 1 || ex[0].Templates != 1 || ex[0].SamplingRate != 100 || ex[0].ActiveTimeout != 0 || ex[0].InactiveTimeout != 0 {
		t.Errorf("old snapshot restored %+v", ex)
	}
	if s := d4.SnapshotTemplates(); len(s) != 1 || s[0].ActiveTimeoutSec != 0 {
		t.Errorf("old snapshot re-saved %+v", s)
	} else if js, _ := json.Marshal(s[0]); strings.Contains(string(js), "timeout") {
		t.Errorf("no timers, yet the snapshot names them: %s", js)
	}
}

// No shared capture carries 36/37 in an options template (the Cisco and
// Juniper/ipfixprobe ones announce sampling only): the decoder must not
// invent timers from them. Should a capture with timers be added, its
// values are checked to be in range, and this says to pin them.
func TestCapturesReportingTimers(t *testing.T) {
	if _, err := os.Stat(testdataDir); err != nil {
		t.Fatalf("shared testdata missing: %v", err)
	}
	for _, g := range captureGroups {
		pkts := readGroup(t, g.files)
		announces := false
		for _, p := range pkts {
			if len(p.Payload) < 2 || !CarriesTemplates(p.Payload) {
				continue
			}
			walkTemplates(p.Payload, func(fields [][2]uint16) {
				for _, fl := range fields {
					if fl[0] == 36 || fl[0] == 37 {
						announces = true
					}
				}
			})
		}
		d := New(DefaultConfiguration())
		decodeGroup(d, pkts)
		for _, e := range d.Exporters() {
			has := e.ActiveTimeout != 0 || e.InactiveTimeout != 0
			switch {
			case !announces && has:
				t.Errorf("%s: timers %v/%v from a capture that sends none", g.name, e.ActiveTimeout, e.InactiveTimeout)
			case announces:
				t.Errorf("%s: capture announces reporting timers (%v/%v): pin the values tshark shows here", g.name, e.ActiveTimeout, e.InactiveTimeout)
			}
		}
	}
}
