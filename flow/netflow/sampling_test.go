package netflow

import (
	"math"
	"net/netip"
	"testing"

	"github.com/flowshield/flowshield/flow"
)

// TestSamplingRateBound: a sampling rate above flow.MaxSamplingRate, from
// options data (34, 50, 305/306) or inside data records (34, RouterOS), is
// counted as ErrBadSamplingRate and not believed. The scope keeps the rate
// it had and the records get it, on the fast path and the generic one.
func TestSamplingRateBound(t *testing.T) {
	const uptime, secs = 3_600_000, 1_700_000_000
	opts34 := func(rate uint32) []byte {
		return v9Datagram(uptime, secs, 0,
			set(1, v9OptionsRecord(260, []fieldSpec{f(1, 4)}, []fieldSpec{f(34, 4)})),
			set(260, be32([]byte{0, 0, 0, 0}, rate)))
	}
	opts50 := func(rate uint32) []byte {
		return ipfixDatagram(secs, 0,
			set(3, ipfixOptionsRecord(261, []fieldSpec{f(149, 4)}, []fieldSpec{f(50, 4)})),
			set(261, be32([]byte{0, 0, 0, 0}, rate)))
	}
	opts305 := func(interval, space uint64) []byte {
		body := append([]byte{0, 0, 0, 0}, beN(interval, 8)...)
		return ipfixDatagram(secs, 0,
			set(3, ipfixOptionsRecord(262, []fieldSpec{f(149, 4)}, []fieldSpec{f(305, 8), f(306, 8)})),
			set(262, append(body, beN(space, 8)...)))
	}
	// A flow template without a rate of its own, to read the scope's.
	plain := []fieldSpec{f(8, 4), f(12, 4), f(2, 4), f(1, 4)}
	plainData := func(version uint16) []byte {
		rec := encodeRecord(plain, flowSpec{src: netip.MustParseAddr("198.51.100.1"), dst: netip.MustParseAddr("203.0.113.1"), packets: 1, bytes: 60})
		if version == 9 {
			return v9Datagram(uptime, secs, 0, set(0, tmplRecord(300, plain...)), set(300, rec))
		}
		return ipfixDatagram(secs, 0, set(2, tmplRecord(300, plain...)), set(300, rec))
	}
	// RouterOS data records carrying field 34 (written little-endian).
	routerOS := func(rateLE uint32, n int) []byte {
		var body []byte
		for i := range n {
			body = append(body, encodeRecord(routerOSV9Fields, flowSpec{
				src: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), dst: netip.MustParseAddr("203.0.113.7"),
				packets: 1, bytes: 60, first: uptime - 10, last: uptime, samplingLE: rateLE,
			})...)
		}
		return v9Datagram(uptime, secs, 0, set(0, tmplRecord(256, routerOSV9Fields...)), set(256, body))
	}
	tests := []struct {
		name     string
		setup    [][]byte
		data     []byte
		wantRate uint32 // of every record of data
		refused  int    // ErrBadSamplingRate over setup and data
	}{
		{"v9 options 34 typical", [][]byte{opts34(2048)}, plainData(9), 2048, 0},
		{"v9 options 34 at the bound", [][]byte{opts34(flow.MaxSamplingRate)}, plainData(9), flow.MaxSamplingRate, 0},
		{"v9 options 34 above the bound keeps the previous rate", [][]byte{opts34(100), opts34(flow.MaxSamplingRate + 1)}, plainData(9), 100, 1},
		{"v9 options 34 forged 2^32-1 with none before", [][]byte{opts34(math.MaxUint32)}, plainData(9), 0, 1},
		{"ipfix options 50 forged", [][]byte{opts50(1000), opts50(math.MaxUint32)}, plainData(10), 1000, 1},
		{"ipfix 305/306 at the bound", [][]byte{opts305(1, flow.MaxSamplingRate-1)}, plainData(10), flow.MaxSamplingRate, 0},
		{"ipfix 305/306 above the bound", [][]byte{opts305(1, flow.MaxSamplingRate)}, plainData(10), 0, 1},
		{"ipfix 305/306 that would overflow 64 bits", [][]byte{opts305(1, math.MaxUint64)}, plainData(10), 0, 1},
		{"routeros 34 typical", nil, routerOS(512, 3), 512, 0},
		{"routeros 34 forged 2^32-1, one per record", nil, routerOS(math.MaxUint32, 3), 0, 3},
		{"routeros 34 above the bound falls back to options", [][]byte{opts34(64)}, routerOS(0x01000001, 2), 64, 2},
	}
	for _, tc := range tests {
		for _, generic := range []bool{false, true} {
			d := New(DefaultConfiguration())
			d.genericOnly = generic
			sink := decodeAll(t, d, append(tc.setup, tc.data)...)
			if len(sink.recs) == 0 {
				t.Fatalf("%s: no records, errors %v", tc.name, sink.errors)
			}
			for i, r := range sink.recs {
				if r.SamplingRate != tc.wantRate {
					t.Errorf("%s (generic %v): record %d rate %d, want %d", tc.name, generic, i, r.SamplingRate, tc.wantRate)
				}
			}
			if got := sink.errors[flow.ErrBadSamplingRate]; got != tc.refused || sink.errorCount() != got {
				t.Errorf("%s (generic %v): errors %v, want %d %v", tc.name, generic, sink.errors, tc.refused, flow.ErrBadSamplingRate)
			}
			for _, e := range d.Exporters() {
				if e.SamplingRate > flow.MaxSamplingRate {
					t.Errorf("%s: scope rate %d believed", tc.name, e.SamplingRate)
				}
			}
		}
	}
}

// TestSamplingRateV5: the v5 header's interval has 14 bits, so even an
// all-ones field is a believable 16,383 (the two mode bits are not part
// of it).
func TestSamplingRateV5(t *testing.T) {
	sink := decodeAll(t, New(DefaultConfiguration()), v5Datagram(2, 3_600_000, 1, 0xffff))
	if sink.errorCount() != 0 || len(sink.recs) != 2 || sink.recs[0].SamplingRate != 16383 {
		t.Fatalf("records %+v errors %v", sink.recs, sink.errors)
	}
}

// TestRestoreSamplingRateBound: a store holding rates above the bound (a
// damaged file, or one written before the bound) restores none of them.
func TestRestoreSamplingRateBound(t *testing.T) {
	d := New(DefaultConfiguration())
	d.RestoreTemplates([]SavedTemplate{{
		Exporter: exporterA, Version: 9, TemplateID: 300, Fields: []TemplateField{{Type: 8, Length: 4}},
		SamplingRate: math.MaxUint32, Samplers: map[uint64]uint32{1: math.MaxUint32, 2: 10},
	}})
	ex := d.Exporters()
	if len(ex) != 1 || ex[0].SamplingRate != 0 {
		t.Fatalf("restored %+v", ex)
	}
	samplers := *d.lookupScope(scopeKey{addr: exporterA, version: 9}).samplers.Load()
	if len(samplers) != 1 || samplers[2] != 10 {
		t.Errorf("samplers %v", samplers)
	}
}
