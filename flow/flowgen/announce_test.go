package flowgen

import (
	"bytes"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// timerOptions parses one datagram with goflow2 and returns the
// flowActiveTimeout (36) and flowIdleTimeout (37) it announces, if any.
func timerOptions(t *testing.T, ts netflow.NetFlowTemplateSystem, d []byte) (active, idle uint64, found bool) {
	t.Helper()
	var p9 netflow.NFv9Packet
	var pfix netflow.IPFIXPacket
	if err := netflow.DecodeMessageVersion(bytes.NewBuffer(d), ts, &p9, &pfix); err != nil {
		t.Fatalf("goflow2: %v", err)
	}
	for _, s := range append(p9.FlowSets, pfix.FlowSets...) {
		od, ok := s.(netflow.OptionsDataFlowSet)
		if !ok {
			continue
		}
		for _, r := range od.Records {
			for _, v := range r.OptionsValues {
				b := v.Value.([]byte)
				switch v.Type {
				case fieldActiveTimeout:
					active, found = beUint(b), true
				case fieldInactiveTimeout:
					idle = beUint(b)
				}
			}
		}
	}
	return active, idle, found
}

// The v9 and IPFIX exporters announce their timers in options data with
// every template refresh when asked, and nothing otherwise; the flows
// decode as before.
func TestAnnounceTimers(t *testing.T) {
	var in []Flow
	for range 6 {
		in = append(in, testFlows()...)
	}
	for _, format := range []Format{FormatNetFlowV9, FormatIPFIX, FormatRouterOSV9, FormatRouterOSIPFIX} {
		for _, rate := range []uint32{0, 100} {
			for _, announce := range []bool{false, true} {
				cfg := DefaultEncoderConfiguration()
				cfg.Format = format
				cfg.TemplateRefresh = 3
				cfg.MaxRecordsPerDatagram = 2
				if announce {
					cfg.AnnounceTimers = Timers{Active: time.Minute, Inactive: 15 * time.Second}
				}
				flows := sampled(in, rate)
				dgs, tot := encodeAll(t, cfg, flows)
				routerOS := format == FormatRouterOSV9 || format == FormatRouterOSIPFIX
				got := decodeTemplated(t, dgs, routerOS) // also checks the v9 header counts
				if len(got) != len(flows) || tot.Records != uint64(len(flows)) {
					t.Fatalf("%v: decoded %d flows, want %d", format, len(got), len(flows))
				}
				for i := range got {
					sameFlow(t, i, got[i], expect(flows[i], format))
				}
				ts := netflow.CreateTemplateSystem()
				for i, d := range dgs {
					active, idle, found := timerOptions(t, ts, d)
					if want := announce && i%3 == 0; found != want {
						t.Fatalf("%v rate %d announce %v: datagram %d carries timers %v", format, rate, announce, i, found)
					}
					if found && (active != 60 || idle != 15) {
						t.Fatalf("%v: announced %d/%d s, want 60/15", format, active, idle)
					}
				}
			}
		}
	}
}
