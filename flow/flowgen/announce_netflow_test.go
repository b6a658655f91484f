package flowgen

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/netflow"
)

// countSink counts what flowshield's decoder reports.
type countSink struct {
	records int
	errors  int
}

func (s *countSink) Record(*flow.Record)        { s.records++ }
func (s *countSink) DecodeError(flow.ErrorKind) { s.errors++ }

// flowshield's own decoder learns the announced timers, per exporter, and
// decodes the flows as before.
func TestAnnounceTimersFlowshieldDecoder(t *testing.T) {
	timers := Timers{Active: 30 * time.Minute, Inactive: 15 * time.Second}
	for _, format := range []Format{FormatNetFlowV9, FormatIPFIX, FormatRouterOSV9, FormatRouterOSIPFIX} {
		for _, announce := range []bool{false, true} {
			cfg := DefaultEncoderConfiguration()
			cfg.Format = format
			cfg.ObservationDomain = 3
			if announce {
				cfg.AnnounceTimers = timers
			}
			flows := sampled(testFlows(), 100)
			dgs, tot := encodeAll(t, cfg, flows)
			d := netflow.New(netflow.DefaultConfiguration())
			var sink countSink
			var rec flow.Record
			for _, b := range dgs {
				d.Decode(&flow.Datagram{Exporter: netip.MustParseAddr("192.0.2.1"), Payload: b, Received: testNow.UnixNano()}, &rec, &sink)
			}
			if sink.errors != 0 || uint64(sink.records) != tot.Records {
				t.Fatalf("%v: %d records (%d errors), %d sent", format, sink.records, sink.errors, tot.Records)
			}
			ex := d.Exporters()
			if len(ex) != 1 {
				t.Fatalf("%v: exporters %+v", format, ex)
			}
			var want Timers
			if announce {
				want = timers
			}
			if ex[0].ActiveTimeout != want.Active || ex[0].InactiveTimeout != want.Inactive {
				t.Fatalf("%v announce %v: decoder learnt %v/%v, want %v/%v", format, announce,
					ex[0].ActiveTimeout, ex[0].InactiveTimeout, want.Active, want.Inactive)
			}
		}
	}
}
