package storage

import (
	"context"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
)

func testAttack() AttackRecord {
	return AttackRecord{
		ID: "a7", Scope: "host", IP: netip.MustParseAddr("203.0.113.66"), Group: "web", Direction: detect.In,
		Type: "dns_amplification", Protocol: "udp", Threshold: "udp_pps",
		StartedAt: time.Date(2026, 11, 25, 5, 53, 30, 0, time.UTC), EndedAt: time.Date(2026, 11, 25, 6, 1, 2, 0, time.UTC),
		PeakPPS: 123456.5, PeakBPS: 9.87e8,
	}
}

// testDetails is a details text of about textBytes and a sample of n flows.
func testDetails(textBytes, n int) *AttackDetails {
	d := &AttackDetails{Text: strings.Repeat("Attack type: dns_amplification\n", textBytes/31+1)[:textBytes]}
	t0 := time.Date(2026, 11, 25, 5, 53, 36, 250e6, time.UTC).UnixNano()
	for i := range n {
		d.Flows = append(d.Flows, flow.Record{
			Exporter: netip.MustParseAddr("192.0.2.1"), SrcAddr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
			DstAddr: netip.MustParseAddr("203.0.113.66"), SrcPort: 53, DstPort: uint16(40000 + i), Proto: flow.ProtoUDP,
			Packets: 1000, Bytes: 1500000, SamplingRate: 512, Start: t0 + int64(i), End: t0 + int64(i)*1e6 + 750e6,
			Received: t0 + 2e9,
		})
	}
	return d
}

// TestAttackHistoryRoundTrip: what is saved is what loads, flows' times
// and all, for a host attack with odd flows and a group attack.
func TestAttackHistoryRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, quietOptions())
	host := testAttack()
	host.Details = testDetails(200, 3)
	host.Details.Flows = append(host.Details.Flows, flow.Record{
		SrcAddr: netip.MustParseAddr("2001:db8:1::7"), DstAddr: netip.MustParseAddr("2001:db8::66"), Proto: 6,
		TCPFlags: 0x12, Fragment: true, Packets: 3, Bytes: 180, Received: 1764050000e9, // no exporter, no start or end
	})
	host.Details.Fingerprint = testFingerprint()
	group := AttackRecord{ID: "g1", Scope: "group", Group: "customers", Direction: detect.Out, Type: "udp_flood",
		Protocol: "udp", Threshold: "group_mbps", StartedAt: host.StartedAt.Add(time.Hour), PeakPPS: 5, PeakBPS: 1e-7,
		Details: &AttackDetails{Text: "Group: customers\n", Fingerprint: &detect.Fingerprint{Records: 12}}} // nothing characterised it
	if err := s.SaveAttacks(ctx, []AttackRecord{host, group}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAttacks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []AttackRecord{host, group}; !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded\n%+v\n%+v\nwant\n%+v\n%+v", got[0], got[1], want[0], want[1])
	}
}

// testFingerprint has a vector of each kind of matcher.
func testFingerprint() *detect.Fingerprint {
	return &detect.Fingerprint{Share: 0.97, Records: 40, Vectors: []detect.Vector{
		{Protocol: flow.ProtoUDP, SrcPort: 53, SizeMin: 1200, SizeMax: 1500, Share: 0.6},
		{Protocol: flow.ProtoTCP, TCPFlags: flow.TCPFlagSYN, TCPMask: flow.TCPFlagSYN | flow.TCPFlagACK, DstPorts: []uint16{80, 443},
			SizeMin: 50, SizeMax: 70, Share: 0.3},
		{Protocol: flow.ProtoUDP, Fragment: true, SizeMin: 1300, SizeMax: 1500, Share: 0.07},
	}}
}

// detailsNoFingerprint is what the version before fingerprints wrote for
// an attack's details (format 2, no "fingerprint").
const detailsNoFingerprint = `{"format":2,"details":"IP: 203.0.113.66\n","flows":[{"exporter":"192.0.2.1","src":"198.51.100.7","dst":"203.0.113.66","src_port":53,"dst_port":40000,"protocol":17,"packets":1000,"bytes":1500000,"sampling_rate":512,"start_ns":1764050016250000000,"end_ns":1764050017000000000,"received_ns":1764050018250000000}]}`

// TestAttackHistoryWithoutFingerprint: details saved before fingerprints
// were made load with none; saved again with one, it loads.
func TestAttackHistoryWithoutFingerprint(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, quietOptions())
	host := testAttack()
	key := string(attackKey(host.StartedAt, host.ID))
	if err := s.SaveAttacks(ctx, []AttackRecord{host}); err != nil {
		t.Fatal(err)
	}
	if err := s.saveBatch(ctx, bucketAttackDetails, "test", map[string][]byte{key: []byte(detailsNoFingerprint)}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAttacks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := &AttackDetails{Text: "IP: 203.0.113.66\n", Flows: []flow.Record{{
		Exporter: netip.MustParseAddr("192.0.2.1"), SrcAddr: netip.MustParseAddr("198.51.100.7"), DstAddr: netip.MustParseAddr("203.0.113.66"),
		SrcPort: 53, DstPort: 40000, Proto: 17, Packets: 1000, Bytes: 1500000, SamplingRate: 512,
		Start: 1764050016250000000, End: 1764050017000000000, Received: 1764050018250000000}}}
	if len(got) != 1 || !reflect.DeepEqual(got[0].Details, want) {
		t.Fatalf("loaded %+v, want the details without a fingerprint", got)
	}
	host.Details = &AttackDetails{Text: want.Text, Flows: want.Flows, Fingerprint: testFingerprint()}
	if err := s.SaveAttacks(ctx, []AttackRecord{host}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.LoadAttacks(ctx, 10); len(got) != 1 || !reflect.DeepEqual(got[0].Details, host.Details) {
		t.Fatalf("loaded %+v, want the fingerprint saved", got[0].Details)
	}
	raw, _ := s.loadAll(ctx, bucketAttackDetails, "test")
	if v := string(raw[key]); !strings.Contains(v, `"fingerprint":{"share":0.97,"records":40,"vectors":[{"protocol":17,"src_port":53,"size_min":1200,"size_max":1500,"share":0.6},`) {
		t.Errorf("stored details %s", v)
	}
}

// The first version kept the API's attack JSON. These values are what it
// wrote (its appendAttackJSON) for testAttack with three flows (the last
// one without an exporter or a start), and for a group attack.
const (
	legacySummaryHost  = `{"id":"a7","scope":"host","ip":"203.0.113.66","group":"web","direction":"in","type":"dns_amplification","protocol":"udp","threshold":"udp_pps","started_at":"2026-11-25T05:53:30Z","ended_at":"2026-11-25T06:01:02Z","peak_pps":123456.5,"peak_bps":987000000,"banned":false}`
	legacyDetailsHost  = `{"details":"IP: 203.0.113.66\nAttack type: dns_amplification\n","flows":[{"time":"2026-11-25T05:53:37Z","src":"198.51.100.7","dst":"203.0.113.66","src_port":53,"dst_port":40000,"protocol":17,"tcp_flags":0,"fragment":false,"packets":1000,"bytes":1500000,"sampling_rate":512,"exporter":"192.0.2.1","line":"2026-11-25 05:53:36.250 198.51.100.7:53 \u003e 203.0.113.66:40000 protocol: udp flags: - packets: 1000 size: 1500000 bytes sample ratio: 512"},{"time":"2026-11-25T05:54:01.123456789Z","src":"2001:db8:1::7","dst":"2001:db8::66","src_port":0,"dst_port":0,"protocol":6,"tcp_flags":18,"fragment":true,"packets":3,"bytes":180,"sampling_rate":1,"exporter":"2001:db8::1","line":"2026-11-25 05:54:00.005 [2001:db8:1::7]:0 \u003e [2001:db8::66]:0 protocol: tcp flags: syn,ack packets: 3 size: 180 bytes sample ratio: 1"},{"time":"2026-11-25T05:54:59Z","src":"198.51.100.8","dst":"203.0.113.66","src_port":123,"dst_port":5,"protocol":17,"tcp_flags":0,"fragment":false,"packets":2,"bytes":980,"sampling_rate":0,"exporter":"invalid IP","line":"2026-11-25 05:55:00.000 198.51.100.8:123 \u003e 203.0.113.66:5 protocol: udp flags: - packets: 2 size: 980 bytes sample ratio: 1"}]}`
	legacySummaryGroup = `{"id":"g1","scope":"group","ip":null,"group":"customers","direction":"out","type":"udp_flood","protocol":"udp","threshold":"group_mbps","started_at":"2026-11-25T07:00:00Z","ended_at":null,"peak_pps":5,"peak_bps":1e-7,"banned":false}`
)

// TestAttackHistoryOldRecords: records the first version wrote load as
// typed records (a flow's start from its line, the only place that
// version kept it; an exporter it wrote as "invalid IP" as none);
// rewritten without details at the attack's end, the summary takes the
// new form and the old details still load.
func TestAttackHistoryOldRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, quietOptions())
	host, group := testAttack(), AttackRecord{ID: "g1", Scope: "group", Group: "customers", Direction: detect.Out,
		Type: "udp_flood", Protocol: "udp", Threshold: "group_mbps", StartedAt: time.Date(2026, 11, 25, 7, 0, 0, 0, time.UTC),
		PeakPPS: 5, PeakBPS: 1e-7}
	value := func(ended time.Time, data string) []byte { return append(attackHeader(ended), data...) }
	hostKey, groupKey := string(attackKey(host.StartedAt, host.ID)), string(attackKey(group.StartedAt, group.ID))
	if err := s.saveBatch(ctx, bucketAttacks, "test", map[string][]byte{
		hostKey: value(host.EndedAt, legacySummaryHost), groupKey: value(time.Time{}, legacySummaryGroup),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.saveBatch(ctx, bucketAttackDetails, "test", map[string][]byte{hostKey: []byte(legacyDetailsHost)}, nil); err != nil {
		t.Fatal(err)
	}
	host.Details = &AttackDetails{Text: "IP: 203.0.113.66\nAttack type: dns_amplification\n", Flows: []flow.Record{
		{Exporter: netip.MustParseAddr("192.0.2.1"), SrcAddr: netip.MustParseAddr("198.51.100.7"), DstAddr: netip.MustParseAddr("203.0.113.66"),
			SrcPort: 53, DstPort: 40000, Proto: 17, Packets: 1000, Bytes: 1500000, SamplingRate: 512,
			Start: time.Date(2026, 11, 25, 5, 53, 36, 250e6, time.UTC).UnixNano(), End: time.Date(2026, 11, 25, 5, 53, 37, 0, time.UTC).UnixNano()},
		{Exporter: netip.MustParseAddr("2001:db8::1"), SrcAddr: netip.MustParseAddr("2001:db8:1::7"), DstAddr: netip.MustParseAddr("2001:db8::66"),
			Proto: 6, TCPFlags: 0x12, Fragment: true, Packets: 3, Bytes: 180, SamplingRate: 1,
			Start: time.Date(2026, 11, 25, 5, 54, 0, 5e6, time.UTC).UnixNano(), End: time.Date(2026, 11, 25, 5, 54, 1, 123456789, time.UTC).UnixNano()},
		{SrcAddr: netip.MustParseAddr("198.51.100.8"), DstAddr: netip.MustParseAddr("203.0.113.66"), SrcPort: 123, DstPort: 5, Proto: 17,
			Packets: 2, Bytes: 980, Start: time.Date(2026, 11, 25, 5, 55, 0, 0, time.UTC).UnixNano(), End: time.Date(2026, 11, 25, 5, 54, 59, 0, time.UTC).UnixNano()},
	}}
	got, err := s.LoadAttacks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []AttackRecord{host, group}; !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded\n%+v\n%+v\nwant\n%+v\n%+v", got[0], got[1], want[0], want[1])
	}

	// The restart ends the group attack: its summary is saved again.
	group.EndedAt = group.StartedAt.Add(time.Hour)
	if err := s.SaveAttacks(ctx, []AttackRecord{group}); err != nil {
		t.Fatal(err)
	}
	raw, _ := s.loadAll(ctx, bucketAttacks, "test")
	if v := raw[groupKey]; !strings.HasPrefix(string(v[8:]), `{"format":2,`) {
		t.Fatalf("rewritten summary %s: not in the current form", v[8:])
	}
	if got, _ = s.LoadAttacks(ctx, 10); !reflect.DeepEqual(got, []AttackRecord{host, group}) {
		t.Fatalf("after the rewrite\n%+v\n%+v", got[0], got[1])
	}
}

// TestAttackHistoryBadRecords: a record that does not encode is left out
// of the save and named; one that does not decode is left out of the load
// and counted; the others go through.
func TestAttackHistoryBadRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, quietOptions())
	good, nan := testAttack(), testAttack()
	nan.ID, nan.PeakPPS = "nan", math.NaN()
	err := s.SaveAttacks(ctx, []AttackRecord{nan, good})
	if err == nil || !strings.Contains(err.Error(), "attack nan") {
		t.Fatalf("saving a NaN peak: %v, want an error naming it", err)
	}
	k := string(attackKey(good.StartedAt.Add(time.Second), "junk"))
	if err := s.saveBatch(ctx, bucketAttacks, "test", map[string][]byte{k: append(attackHeader(time.Time{}), `{"direction":"up"}`...)}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAttacks(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != good.ID || s.Stats().Undecodable != 1 {
		t.Fatalf("loaded %+v, %d undecodable; want %s only, 1", got, s.Stats().Undecodable, good.ID)
	}
}
