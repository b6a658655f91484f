package flowgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// goldenScenario exercises every default code path of Scenario: background
// (with its long transfers) and every flood kind, IPv4 and IPv6, incoming
// and outgoing, sampled and not.
func goldenScenario() ScenarioConfiguration {
	v := netip.MustParsePrefix("203.0.113.9/32")
	v6 := netip.MustParsePrefix("2001:db8::5/128")
	cfg := ScenarioConfiguration{Seed: 42, SamplingRate: 10,
		Background: &Background{Prefix: netip.MustParsePrefix("203.0.113.0/24"), FlowsPerSecond: 300}}
	for k := FloodUDP; k <= FloodAmplification; k++ {
		cfg.Floods = append(cfg.Floods, Flood{Kind: k, Target: v, PPS: 50000, FlowsPerSecond: 20, SourcePort: 1900, StartAt: time.Second})
		if k != FloodFragment {
			cfg.Floods = append(cfg.Floods, Flood{Kind: k, Target: v6, PPS: 7000, SourcePort: 389, Outgoing: true, SamplingRate: 1})
		}
	}
	return cfg
}

func scenarioDigest(t *testing.T, s Source, seconds int) string {
	t.Helper()
	h := sha256.New()
	var flows []Flow
	for sec := range seconds {
		flows = s.Second(flows[:0], sec, t0.Add(time.Duration(sec)*time.Second))
		for _, f := range flows {
			fmt.Fprintf(h, "%v %v %d %d %d %#x %v %d %d %d %d %d %d %d\n", f.Src, f.Dst, f.SrcPort, f.DstPort, f.Proto,
				f.TCPFlags, f.Fragment, f.Packets, f.Bytes, f.Start.UnixNano(), f.End.UnixNano(), f.SamplingRate, f.InIf, f.OutIf)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// The default Scenario output is pinned: options added later (persistent
// floods, streamed long transfers) must not change what existing callers get.
func TestScenarioGolden(t *testing.T) {
	const want = "81feea58e2a8c7aea207d35bbe25815e864617710da778d7084ec305a984c398"
	if got := scenarioDigest(t, mustScenario(t, goldenScenario()), 4); got != want {
		t.Fatalf("default scenario output changed: digest %s, want %s", got, want)
	}
}

// The encoders' default output is pinned too: announcing timers is opt-in.
func TestEncoderGolden(t *testing.T) {
	flows := mustScenario(t, goldenScenario()).Second(nil, 1, testNow.Add(-time.Second))
	want := map[Format]string{
		FormatNetFlowV5:     "d04f879c10d1de95edfa600043ba59ea1abf845b9c94573e3b8eb04a67ccc6cd",
		FormatNetFlowV9:     "4fadfb0b959148c2a1d847922aa19992856078a5e68ec84335c5ce9705a71f86",
		FormatIPFIX:         "7681538eac3c1269c09de15f9ecc4cda11213811240bdc39a98235be2c45b71e",
		FormatSFlow:         "793ea596d3c146b3290e3dc72d63327586d0b5015b84c33a20a475d72dcacbb4",
		FormatRouterOSV9:    "40a0b90753b422a981839ca75a9730d6fb95d2889d9966d1601c6632b33bbdd8",
		FormatRouterOSIPFIX: "9391672986d97b5c91b6d1da6341a9920a5093b8ef9c7330515c884bfea01e6c",
	}
	for _, format := range Formats() {
		cfg := DefaultEncoderConfiguration()
		cfg.Format = format
		cfg.TemplateRefresh = 5
		cfg.MaxDatagramSize = 1500 // v5 always packs 30 records (1464 bytes), whatever the size
		dgs, _ := encodeAll(t, cfg, flows)
		h := sha256.New()
		for _, d := range dgs {
			h.Write(d)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want[format] {
			t.Errorf("%v: default encoding changed: digest %s, want %s", format, got, want[format])
		}
	}
}
