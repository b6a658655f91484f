package appliance

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
)

// TestAttackJSONMatchesEncodingJSON holds the hand-written encoder to
// json.Marshal of the contract type, byte for byte, on random attacks with
// strings that need escaping, odd floats and times.
func TestAttackJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "udp_flood", "web <&> \"q\" \\ \n\t\r\b\f \x01 \x7f", "caf\xc3\xa9 \xff\xfe bad", "\u2028x\u2029", "日本語",
		"IP: 203.0.113.5\nFlow sample (2 of 9 records seen):\n2026-11-25 05:53:36.000 1.2.3.4:53 > 203.0.113.5:80 protocol: udp\n"}
	floats := []float64{0, 1, 0.5, 1e-7, 1e-6, 123456789.125, 1e20, 1e21, 5e300, -3.25, math.SmallestNonzeroFloat64,
		math.NaN(), math.Inf(1)}
	addrs := []netip.Addr{{}, netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:198.51.100.7"), netip.MustParseAddr("fe80::1%eth<0>")}
	times := []time.Time{{}, time.Unix(1764050000, 123456789), time.Unix(1764050000, 0).In(time.FixedZone("x", 3600)),
		time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	tm := func() time.Time { // the last two do not encode: rarely
		if rng.IntN(20) == 0 {
			return times[rng.IntN(len(times))]
		}
		return times[rng.IntN(len(times)-2)]
	}
	f := func() float64 {
		if rng.IntN(10) == 0 {
			return floats[rng.IntN(len(floats))]
		}
		return rng.Float64() * math.Pow(10, float64(rng.IntN(30)-8))
	}
	errs := 0
	for i := range 3000 {
		at := detect.Attack{
			ID: pick(strs), Scope: pick(strs), IP: addrs[rng.IntN(len(addrs))], Group: pick(strs),
			Direction: detect.Direction(rng.IntN(2)), Type: pick(strs), Protocol: pick(strs), Threshold: pick(strs),
			StartedAt: tm(), EndedAt: tm(),
			PeakPPS: f(), PeakBps: f(), Details: pick(strs),
		}
		for range rng.IntN(4) * 10 {
			at.Sample = append(at.Sample, flow.Record{
				Exporter: addrs[rng.IntN(len(addrs))], SrcAddr: addrs[rng.IntN(len(addrs))], DstAddr: addrs[rng.IntN(len(addrs))],
				SrcPort: uint16(rng.IntN(65536)), DstPort: uint16(rng.IntN(65536)), Proto: uint8(rng.IntN(256)),
				TCPFlags: uint8(rng.IntN(256)), Fragment: rng.IntN(2) == 0,
				Packets: rng.Uint64() >> rng.IntN(64), Bytes: rng.Uint64() >> rng.IntN(64),
				SamplingRate: rng.Uint32() >> rng.IntN(32), Start: int64(rng.Uint64() >> 2), End: int64(rng.Uint64()>>1) - math.MaxInt64/2,
			})
		}
		banned, full := rng.IntN(2) == 0, rng.IntN(3) != 0
		want, wantErr := json.Marshal(attackJSONOf(at, func(string) bool { return banned }, full))
		got, gotErr := appendAttackJSON([]byte("prefix"), &at, banned, full)
		if (wantErr != nil) != (gotErr != nil) {
			t.Fatalf("attack %d: error %v, json.Marshal's %v", i, gotErr, wantErr)
		}
		if wantErr != nil {
			errs++
			continue
		}
		if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[6:], want) {
			t.Fatalf("attack %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if errs == 0 || errs > 1000 {
		t.Fatalf("%d of 3000 attacks did not encode: the cases do not cover both outcomes", errs)
	}
}

func BenchmarkAttackRecord(b *testing.B) {
	at := detect.Attack{
		ID: "a1", Scope: detect.ScopeHost, IP: netip.MustParseAddr("203.0.113.5"), Type: "udp_flood",
		Protocol: "udp", Threshold: "pps", StartedAt: time.Unix(1764050000, 0), PeakPPS: 123456, PeakBps: 9.87e8,
		Details: "IP: 203.0.113.5\nAttack type: udp_flood\n",
	}
	for i := range 40 {
		at.Sample = append(at.Sample, flow.Record{
			Exporter: netip.MustParseAddr("192.0.2.1"), SrcAddr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
			DstAddr: at.IP, SrcPort: 53, DstPort: uint16(1024 + i), Proto: flow.ProtoUDP, Packets: 1000, Bytes: 1500000,
			SamplingRate: 1, Start: 1764050000e9, End: 1764050001e9,
		})
	}
	for range 20 {
		at.Details += detect.FlowLine(&at.Sample[0], 1) + "\n"
	}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(attackJSONOf(at, nil, true)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			if _, err := attackRecord(&at, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
