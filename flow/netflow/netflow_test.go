package netflow

import (
	"encoding/json"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

var exporterA = netip.MustParseAddr("192.0.2.1")

// decodeAll feeds payloads in order from one exporter and fails the test if
// decoding does not return promptly (the goflow2 traps loop forever).
func decodeAll(t *testing.T, d *Decoder, payloads ...[]byte) *collectSink {
	t.Helper()
	sink := &collectSink{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var rec flow.Record
		for _, p := range payloads {
			dg := flow.Datagram{Exporter: exporterA, Payload: p, Received: 1_700_000_000_000_000_000}
			d.Decode(&dg, &rec, sink)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Decode did not return within 5s")
	}
	return sink
}

func TestBadInput(t *testing.T) {
	simple := []fieldSpec{f(8, 4), f(12, 4), f(2, 4), f(1, 4)}
	simpleRec := encodeRecord(simple, flowSpec{src: netip.MustParseAddr("10.0.0.1"), dst: netip.MustParseAddr("10.0.0.2"), packets: 1, bytes: 60})
	tmplV9 := v9Datagram(1000, 1_700_000_000, 1, set(0, tmplRecord(256, simple...)))
	tests := []struct {
		name     string
		cfg      func(*Configuration)
		payloads [][]byte
		records  int
		errs     map[flow.ErrorKind]int
	}{
		{name: "empty", payloads: [][]byte{{}}, errs: map[flow.ErrorKind]int{flow.ErrTruncated: 1}},
		{name: "one byte", payloads: [][]byte{{0}}, errs: map[flow.ErrorKind]int{flow.ErrTruncated: 1}},
		{name: "unknown version", payloads: [][]byte{{0, 7, 0, 0, 0, 0}}, errs: map[flow.ErrorKind]int{flow.ErrUnknownVersion: 1}},
		{name: "v5 short header", payloads: [][]byte{v5Datagram(1, 5000, 1_700_000_000, 0)[:20]}, errs: map[flow.ErrorKind]int{flow.ErrTruncated: 1}},
		{name: "v5 count beyond datagram", payloads: [][]byte{v5Datagram(2, 5000, 1_700_000_000, 0)[:24+48]}, errs: map[flow.ErrorKind]int{flow.ErrTooManyRecords: 1}},
		{name: "v5 absurd count", payloads: [][]byte{func() []byte { p := v5Datagram(1, 5000, 1, 0); p[2], p[3] = 0xff, 0xff; return p }()}, errs: map[flow.ErrorKind]int{flow.ErrTooManyRecords: 1}},
		{name: "v9 short header", payloads: [][]byte{tmplV9[:19]}, errs: map[flow.ErrorKind]int{flow.ErrTruncated: 1}},
		{name: "ipfix short header", payloads: [][]byte{{0, 10, 0, 16, 0, 0}}, errs: map[flow.ErrorKind]int{flow.ErrTruncated: 1}},
		{name: "ipfix length beyond datagram", payloads: [][]byte{func() []byte { p := ipfixDatagram(1, 1); p[3] = 200; return p }()}, errs: map[flow.ErrorKind]int{flow.ErrBadLength: 1}},
		{name: "ipfix length below header", payloads: [][]byte{func() []byte { p := ipfixDatagram(1, 1); p[3] = 4; return p }()}, errs: map[flow.ErrorKind]int{flow.ErrBadLength: 1}},
		{
			name:     "data before template",
			payloads: [][]byte{v9Datagram(1000, 1_700_000_000, 1, set(256, simpleRec))},
			errs:     map[flow.ErrorKind]int{flow.ErrNoTemplate: 1},
		},
		{
			name:     "data for another observation domain",
			payloads: [][]byte{tmplV9, v9Datagram(1000, 1_700_000_000, 2, set(256, simpleRec))},
			errs:     map[flow.ErrorKind]int{flow.ErrNoTemplate: 1},
		},
		{
			name: "goflow2 trap: v9 template without fields, then data",
			payloads: [][]byte{
				v9Datagram(1000, 1, 1, set(0, tmplRecord(300))),
				v9Datagram(1000, 1, 1, set(300, make([]byte, 64))),
			},
			errs: map[flow.ErrorKind]int{flow.ErrBadTemplate: 1, flow.ErrNoTemplate: 1},
		},
		{
			name: "goflow2 trap: ipfix template of zero-length fields, then data",
			payloads: [][]byte{
				ipfixDatagram(1, 1, set(2, tmplRecord(300, f(8, 0), f(12, 0))), set(300, []byte{1, 2, 3, 4, 5, 6, 7, 8})),
			},
			errs: map[flow.ErrorKind]int{flow.ErrBadTemplate: 1, flow.ErrNoTemplate: 1},
		},
		{
			name: "goflow2 trap: v9 options template of zero-length fields, then data",
			payloads: [][]byte{
				v9Datagram(1000, 1, 1, set(1, v9OptionsRecord(301, []fieldSpec{f(1, 0)}, []fieldSpec{f(34, 0)})), set(301, make([]byte, 16))),
			},
			errs: map[flow.ErrorKind]int{flow.ErrBadTemplate: 1, flow.ErrNoTemplate: 1},
		},
		{
			name: "ipfix template withdrawn, then data",
			payloads: [][]byte{
				ipfixDatagram(1, 1, set(2, tmplRecord(256, simple...))),
				ipfixDatagram(1, 1, set(2, be16(be16(nil, 256), 0)), set(256, simpleRec)),
			},
			errs: map[flow.ErrorKind]int{flow.ErrNoTemplate: 1},
		},
		{
			name:     "set length beyond datagram",
			payloads: [][]byte{func() []byte { p := append([]byte(nil), tmplV9...); p[v9HeaderLen+3] = 200; return p }()},
			errs:     map[flow.ErrorKind]int{flow.ErrBadLength: 1},
		},
		{
			name:     "set length below 4",
			payloads: [][]byte{func() []byte { p := append([]byte(nil), tmplV9...); p[v9HeaderLen+3] = 2; return p }()},
			errs:     map[flow.ErrorKind]int{flow.ErrBadLength: 1},
		},
		{
			name:     "template field count lies",
			payloads: [][]byte{v9Datagram(1000, 1, 1, set(0, append(be16(be16(nil, 256), 40), 0, 8, 0, 4)))},
			errs:     map[flow.ErrorKind]int{flow.ErrTruncated: 1},
		},
		{
			name:     "template with absurd field count",
			cfg:      func(c *Configuration) { c.MaxFieldsPerTemplate = 3 },
			payloads: [][]byte{tmplV9},
			errs:     map[flow.ErrorKind]int{flow.ErrBadTemplate: 1},
		},
		{
			name:     "template id below 256",
			payloads: [][]byte{v9Datagram(1000, 1, 1, set(0, tmplRecord(10, simple...)))},
			errs:     map[flow.ErrorKind]int{flow.ErrBadTemplate: 1},
		},
		{
			name:     "template longer than any datagram",
			payloads: [][]byte{v9Datagram(1000, 1, 1, set(0, tmplRecord(256, f(8, 4), f(100, 65535))))},
			errs:     map[flow.ErrorKind]int{flow.ErrBadTemplate: 1},
		},
		{
			name:     "v9 options template scope length not a multiple of 4",
			payloads: [][]byte{v9Datagram(1000, 1, 1, set(1, append(be16(be16(be16(nil, 256), 3), 4), make([]byte, 8)...)))},
			errs:     map[flow.ErrorKind]int{flow.ErrBadTemplate: 1},
		},
		{
			name:     "reserved set id",
			payloads: [][]byte{v9Datagram(1000, 1, 1, set(7, []byte{0, 0, 0, 0}))},
			errs:     map[flow.ErrorKind]int{flow.ErrUnsupported: 1},
		},
		{
			name:     "data set with a partial record of garbage",
			payloads: [][]byte{tmplV9, v9Datagram(1000, 1, 1, set(256, append(append([]byte(nil), simpleRec...), 1, 2, 3, 4, 5, 6)))},
			records:  1,
			errs:     map[flow.ErrorKind]int{flow.ErrBadLength: 1},
		},
		{
			name:     "data set with padding",
			payloads: [][]byte{tmplV9, v9Datagram(1000, 1, 1, set(256, append(append([]byte(nil), simpleRec...), 0, 0, 0, 0)))},
			records:  1,
		},
		{
			name: "ipfix variable-length field overruns the set",
			payloads: [][]byte{ipfixDatagram(1, 1,
				set(2, tmplRecord(400, f(8, 4), f(82, 0xffff))),
				set(400, []byte{10, 0, 0, 1, 3, 'e', 't', 'h', 10, 0, 0, 2, 200, 'x'}))},
			records: 1,
			errs:    map[flow.ErrorKind]int{flow.ErrBadLength: 1},
		},
		{
			// The bound holds by evicting the least recently used scope,
			// not by refusing the new one (TestScopeLimitEvicts).
			name:     "too many exporter scopes",
			cfg:      func(c *Configuration) { c.MaxExporters = 1 },
			payloads: [][]byte{tmplV9, v9Datagram(1000, 1_700_000_000, 2, set(0, tmplRecord(256, simple...))), v9Datagram(1000, 1_700_000_000, 1, set(256, simpleRec))},
			errs:     map[flow.ErrorKind]int{flow.ErrNoTemplate: 1},
		},
		{
			name:     "too many templates",
			cfg:      func(c *Configuration) { c.MaxTemplatesPerExporter = 1 },
			payloads: [][]byte{v9Datagram(1000, 1, 1, set(0, append(tmplRecord(256, simple...), tmplRecord(257, simple...)...)))},
			errs:     map[flow.ErrorKind]int{flow.ErrTooManyRecords: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfiguration()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			sink := decodeAll(t, New(cfg), tc.payloads...)
			if len(sink.recs) != tc.records {
				t.Errorf("records = %d, want %d", len(sink.recs), tc.records)
			}
			var want [flow.NumErrorKinds]int
			for k, n := range tc.errs {
				want[k] = n
			}
			if sink.errors != want {
				t.Errorf("errors = %v, want %v", sink.errors, want)
			}
		})
	}
}

func TestRouterOSV9(t *testing.T) {
	const uptime, secs = 3_600_000, 1_700_000_000
	d := New(DefaultConfiguration())
	p := v9Datagram(uptime, secs, 0,
		set(0, append(tmplRecord(256, routerOSV9Fields...), tmplRecord(257, routerOSV9v6Fields...)...)),
		routerOSV9DataSet(256, routerOSV9Fields, 3, uptime))
	sink := decodeAll(t, d, p)
	if sink.errorCount() != 0 || len(sink.recs) != 3 {
		t.Fatalf("records %d errors %v", len(sink.recs), sink.errors)
	}
	r := sink.recs[2]
	want := flow.Record{
		Exporter: exporterA, Received: 1_700_000_000_000_000_000, Exported: secs * 1e9,
		SrcAddr: netip.MustParseAddr("198.51.100.2"), DstAddr: netip.MustParseAddr("203.0.113.7"),
		Start: secs*1e9 - 5000*1e6, End: secs*1e9 - 1000*1e6,
		Packets: 3, Bytes: 300, SamplingRate: 512, InIf: 2, OutIf: 3,
		SrcPort: 40002, DstPort: 53, Proto: 17, Format: flow.FormatNetFlowV9,
	}
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
	if ex := d.Exporters(); len(ex) != 1 || ex[0].Templates != 2 || ex[0].SamplingRate != 512 || ex[0].Version != 9 {
		t.Errorf("exporters = %+v", ex)
	}

	// IPv6 template of the same datagram.
	v6 := flowSpec{src: netip.MustParseAddr("2001:db8::1"), dst: netip.MustParseAddr("2001:db8::2"), sport: 1, dport: 443, proto: 6, flags: 0x12, packets: 7, bytes: 700, first: uptime - 10, last: uptime, samplingLE: 1024}
	sink = decodeAll(t, d, v9Datagram(uptime, secs, 0, set(257, encodeRecord(routerOSV9v6Fields, v6))))
	if len(sink.recs) != 1 || sink.recs[0].SrcAddr != v6.src || sink.recs[0].DstPort != 443 || sink.recs[0].TCPFlags != 0x12 || sink.recs[0].SamplingRate != 1024 {
		t.Errorf("v6 record %+v errors %v", sink.recs, sink.errors)
	}
}

func TestRouterOSIPFIX(t *testing.T) {
	const secs = 1_700_000_100
	const sysInit = uint64(1_699_990_000_000) // ms
	d := New(DefaultConfiguration())
	fs := flowSpec{src: netip.MustParseAddr("198.51.100.9"), dst: netip.MustParseAddr("203.0.113.1"), sport: 123, dport: 123, proto: 17, packets: 2, bytes: 152, first: 9_000_000, last: 9_500_000, samplingLE: 100, sysInitMs: sysInit}
	p := ipfixDatagram(secs, 0, set(2, tmplRecord(256, routerOSIPFIXFields...)), set(256, encodeRecord(routerOSIPFIXFields, fs)))
	sink := decodeAll(t, d, p)
	if sink.errorCount() != 0 || len(sink.recs) != 1 {
		t.Fatalf("records %d errors %v", len(sink.recs), sink.errors)
	}
	r := sink.recs[0]
	if r.Start != int64(sysInit+9_000_000)*1e6 || r.End != int64(sysInit+9_500_000)*1e6 {
		t.Errorf("times %d..%d, want from systemInitTimeMilliseconds", r.Start, r.End)
	}
	if r.SamplingRate != 100 || r.Format != flow.FormatIPFIX || r.Packets != 2 || r.Bytes != 152 || r.SrcAddr != fs.src {
		t.Errorf("record %+v", r)
	}
}

func TestRouterOSSamplingRate(t *testing.T) {
	tests := []struct {
		in   []byte
		want uint64
	}{
		{[]byte{0x00, 0x02, 0x00, 0x00}, 512},  // RouterOS little-endian 512
		{[]byte{0x01, 0x00, 0x00, 0x00}, 1},    // little-endian 1
		{[]byte{0xae, 0x08, 0x00, 0x00}, 2222}, // little-endian 2222
		{[]byte{0x00, 0x00, 0x08, 0x00}, 2048}, // big-endian 2048 (Cisco in data records)
		{[]byte{0x00, 0x00, 0x00, 0x01}, 1},    // big-endian 1
		{[]byte{0x00, 0x01, 0x00, 0x01}, 65537},
		{[]byte{0x07, 0xd0}, 2000}, // 2 bytes: always big-endian
		{[]byte{0x00, 0x00, 0x00, 0x00}, 0},
		// Read as is, refused later by finish (above flow.MaxSamplingRate).
		{[]byte{0xff, 0xff, 0xff, 0xff}, 0xffffffff},
		{[]byte{0x01, 0, 0, 0, 0, 0, 0, 0x01}, 1<<56 | 1},
	}
	for _, tc := range tests {
		if got := routerOSSamplingRate(tc.in); got != tc.want {
			t.Errorf("routerOSSamplingRate(% x) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestV5(t *testing.T) {
	const uptime, secs = 100_000, 1_700_000_000
	sink := decodeAll(t, New(DefaultConfiguration()), v5Datagram(30, uptime, secs, 0x4000|100))
	if sink.errorCount() != 0 || len(sink.recs) != 30 {
		t.Fatalf("records %d errors %v", len(sink.recs), sink.errors)
	}
	r := sink.recs[1]
	want := flow.Record{
		Exporter: exporterA, Received: 1_700_000_000_000_000_000, Exported: secs * 1e9,
		SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("192.0.2.1"),
		Start: secs*1e9 - 2000*1e6, End: secs*1e9 - 1000*1e6, Packets: 2, Bytes: 128,
		SamplingRate: 100, ObservationDomain: 0x0102, InIf: 3, OutIf: 4,
		SrcPort: 1025, DstPort: 80, Proto: 6, TCPFlags: flow.TCPFlagSYN, Format: flow.FormatNetFlowV5,
	}
	if r != want {
		t.Errorf("got  %+v\nwant %+v", r, want)
	}
}

func TestIPFIXVariableLengthAndEnterpriseFields(t *testing.T) {
	fields := []fieldSpec{f(8, 4), f(82, 0xffff), {typ: 100, length: 4, pen: 29305}, f(12, 4), f(83, 0xffff), f(2, 8), f(197, 1)}
	var body []byte
	body = append(body, 10, 0, 0, 1, 3, 'e', 't', 'h', 9, 9, 9, 9, 10, 0, 0, 2)
	body = append(body, 255, 0, 3, 'a', 'b', 'c') // three-byte length form
	body = append(body, 0, 0, 0, 0, 0, 0, 0, 42, 0x20)
	body = append(body, 10, 0, 0, 3, 0, 1, 2, 3, 4, 10, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0)
	sink := decodeAll(t, New(DefaultConfiguration()), ipfixDatagram(1, 5, set(2, tmplRecord(500, fields...)), set(500, body)))
	if sink.errorCount() != 0 || len(sink.recs) != 2 {
		t.Fatalf("records %d errors %v", len(sink.recs), sink.errors)
	}
	a, b := sink.recs[0], sink.recs[1]
	if a.SrcAddr != netip.MustParseAddr("10.0.0.1") || a.DstAddr != netip.MustParseAddr("10.0.0.2") || a.Packets != 42 || !a.Fragment {
		t.Errorf("first record %+v", a)
	}
	if b.SrcAddr != netip.MustParseAddr("10.0.0.3") || b.DstAddr != netip.MustParseAddr("10.0.0.4") || b.Packets != 7 || b.Fragment {
		t.Errorf("second record %+v", b)
	}
}

func TestOptionsSamplingPerSampler(t *testing.T) {
	d := New(DefaultConfiguration())
	opts := v9Datagram(1000, 1, 0,
		set(1, v9OptionsRecord(257, []fieldSpec{f(1, 4)}, []fieldSpec{f(48, 1), f(50, 4)})),
		set(257, []byte{0, 0, 0, 0, 1, 0, 0, 0x07, 0xd0, 0, 0, 0, 0, 2, 0, 0, 0x0f, 0xa0}))
	data := []fieldSpec{f(8, 4), f(48, 1)}
	p := v9Datagram(1000, 1, 0, set(0, tmplRecord(300, data...)),
		set(300, []byte{1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 9}))
	sink := decodeAll(t, d, opts, p)
	if sink.errorCount() != 0 || len(sink.recs) != 3 {
		t.Fatalf("records %d errors %v", len(sink.recs), sink.errors)
	}
	// Sampler 9 is unknown: the domain's latest rate applies.
	for i, want := range []uint32{2000, 4000, 4000} {
		if got := sink.recs[i].SamplingRate; got != want {
			t.Errorf("record %d sampling %d, want %d", i, got, want)
		}
	}
}

func TestCarriesTemplates(t *testing.T) {
	simple := []fieldSpec{f(8, 4)}
	tests := []struct {
		name string
		p    []byte
		want bool
	}{
		{"v9 template", v9Datagram(1, 1, 1, set(0, tmplRecord(256, simple...))), true},
		{"v9 options template after data", v9Datagram(1, 1, 1, set(256, []byte{1, 2, 3, 4}), set(1, v9OptionsRecord(257, []fieldSpec{f(1, 4)}, []fieldSpec{f(34, 4)}))), true},
		{"v9 data only", v9Datagram(1, 1, 1, set(256, []byte{1, 2, 3, 4})), false},
		{"ipfix template", ipfixDatagram(1, 1, set(2, tmplRecord(256, simple...))), true},
		{"ipfix options template", ipfixDatagram(1, 1, set(3, ipfixOptionsRecord(256, []fieldSpec{f(149, 4)}, []fieldSpec{f(34, 4)}))), true},
		{"ipfix data only", ipfixDatagram(1, 1, set(256, []byte{1, 2, 3, 4})), false},
		{"v5", v5Datagram(1, 1, 1, 0), false},
		{"garbage", []byte{0, 9, 1}, false},
		{"zero-length set", append(v9Datagram(1, 1, 1), 1, 0, 0, 0), false},
	}
	for _, tc := range tests {
		if got := CarriesTemplates(tc.p); got != tc.want {
			t.Errorf("%s: CarriesTemplates = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSnapshotRestore(t *testing.T) {
	d := New(DefaultConfiguration())
	const uptime = 3_600_000
	decodeAll(t, d,
		v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...))),
		ipfixDatagram(1, 7, set(3, ipfixOptionsRecord(600, []fieldSpec{f(302, 4)}, []fieldSpec{f(305, 4), f(306, 4)})),
			set(600, []byte{0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 99})))
	saved := d.SnapshotTemplates()
	if len(saved) != 2 {
		t.Fatalf("saved %d templates", len(saved))
	}
	js, err := json.Marshal(saved)
	if err != nil {
		t.Fatal(err)
	}
	var back []SavedTemplate
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	d2 := New(DefaultConfiguration())
	d2.RestoreTemplates(back)
	sink := decodeAll(t, d2, v9Datagram(uptime, 1, 0, routerOSV9DataSet(256, routerOSV9Fields, 2, uptime)))
	if sink.errorCount() != 0 || len(sink.recs) != 2 {
		t.Fatalf("after restore: records %d errors %v", len(sink.recs), sink.errors)
	}
	ex := d2.Exporters()
	if len(ex) != 2 || ex[1].SamplingRate != 100 {
		t.Errorf("restored exporters %+v", ex)
	}
}

func TestConcurrentDecode(t *testing.T) {
	d := New(DefaultConfiguration())
	const uptime = 3_600_000
	tmpl := v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...)))
	data := v9Datagram(uptime, 1, 0, routerOSV9DataSet(256, routerOSV9Fields, 10, uptime))
	decodeAll(t, d, tmpl)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sink := &countSink{}
			var rec flow.Record
			for i := range 200 {
				p := data
				if w == 0 && i%10 == 0 {
					p = tmpl // re-announcement and replacement while others read
					if i%20 == 0 {
						p = v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...)), set(0, tmplRecord(uint16(300+i), f(8, 4))))
					}
				}
				d.Decode(&flow.Datagram{Exporter: exporterA, Payload: p}, &rec, sink)
			}
			if sink.errors != 0 {
				t.Errorf("worker %d: %d errors", w, sink.errors)
			}
		}()
	}
	wg.Wait()
}

func TestZeroAllocs(t *testing.T) {
	const uptime = 3_600_000
	tests := []struct {
		name  string
		setup []byte
		data  []byte
	}{
		{"v5", nil, v5Datagram(30, uptime, 1, 0)},
		{"v9", v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...))), v9Datagram(uptime, 1, 0, routerOSV9DataSet(256, routerOSV9Fields, 30, uptime))},
		{"ipfix", ipfixDatagram(1, 0, set(2, tmplRecord(256, routerOSIPFIXFields...))), ipfixDatagram(1, 0, routerOSV9DataSet(256, routerOSIPFIXFields, 30, uptime))},
		{"v9 template re-announced with data", nil, v9Datagram(uptime, 1, 0, set(0, tmplRecord(256, routerOSV9Fields...)), routerOSV9DataSet(256, routerOSV9Fields, 30, uptime))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := New(DefaultConfiguration())
			sink := &countSink{}
			var rec flow.Record
			dg := flow.Datagram{Exporter: exporterA, Payload: tc.setup}
			if tc.setup != nil {
				d.Decode(&dg, &rec, sink)
			}
			dg.Payload = tc.data
			d.Decode(&dg, &rec, sink) // first sight of a template may allocate
			allocs := testing.AllocsPerRun(100, func() { d.Decode(&dg, &rec, sink) })
			if allocs != 0 {
				t.Errorf("%v allocs per datagram", allocs)
			}
			if sink.errors != 0 || sink.records != 30*102 {
				t.Errorf("records %d errors %d", sink.records, sink.errors)
			}
		})
	}
}
