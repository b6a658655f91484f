package detect

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// TestMaxSampledAttacks: beyond MaxSampledAttacks active attacks, new ones
// are still declared and described, without a flow sample; once a sampled
// attack ends its place is free again.
func TestMaxSampledAttacks(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSampledAttacks = 2
	now := t0
	e, err := New(cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	remote := netip.MustParseAddr("198.51.100.7")
	flood := func(hosts ...byte) {
		var recs []flow.Record
		for _, h := range hosts {
			for range 30 { // more than DetailsFlows records each
				recs = append(recs, flow.Record{Exporter: exporterA, SrcAddr: remote, DstAddr: netip.AddrFrom4([4]byte{10, 0, 0, h}),
					Received: now.UnixNano(), Start: now.UnixNano() - 9e8, End: now.UnixNano() - 1e7,
					Packets: 5000, Bytes: 5000 * 500, Proto: flow.ProtoUDP, SrcPort: 4000, DstPort: 80})
			}
		}
		e.Consume(recs)
	}
	details := map[string]Attack{}
	starts := 0
	tick := func() {
		now = now.Add(time.Second)
		for _, ev := range e.Tick(now) {
			switch ev.Kind {
			case AttackStart:
				starts++
			case AttackDetails:
				details[ev.Attack.IP.String()] = ev.Attack
			}
		}
	}
	for range 5 {
		flood(1, 2, 3)
		tick()
	}
	if starts != 3 || len(details) != 3 {
		t.Fatalf("%d starts, %d details; want 3 and 3", starts, len(details))
	}
	withSample := 0
	for ip, a := range details {
		switch {
		case len(a.Sample) > 0 && !strings.Contains(a.Details, "Flow sample skipped"):
			withSample++
		case len(a.Sample) == 0 && strings.Contains(a.Details, "Flow sample skipped: 2 other attacks"):
		default:
			t.Errorf("%s: %d sampled flows, details %q", ip, len(a.Sample), a.Details)
		}
	}
	if withSample != 2 {
		t.Errorf("%d attacks with a sample, want 2 (MaxSampledAttacks)", withSample)
	}
	// Let them end, then a new attack has a sample again.
	for range 20 {
		tick()
	}
	if n := len(e.Attacks(true)); n != 0 {
		t.Fatalf("%d attacks still active", n)
	}
	clear(details)
	for range 5 {
		flood(4)
		tick()
	}
	if a, ok := details["10.0.0.4"]; !ok || len(a.Sample) == 0 {
		t.Errorf("attack after the others ended: details %v, sample %d; want a sample", ok, len(a.Sample))
	}
	if st := e.Stats(); e.sampled != 1 || st.UnsampledAttacks != 1 {
		t.Errorf("sampled %d unsampled %d, want 1 and 1", e.sampled, st.UnsampledAttacks)
	}
}
