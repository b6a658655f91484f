package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// flowLineFmt is the contract's details line written with fmt: the
// reference appendFlowLine must match byte for byte.
func flowLineFmt(r *flow.Record, defaultRate uint32) string {
	t := r.Start
	if t == 0 {
		t = r.Received
	}
	rate := r.SamplingRate
	if rate == 0 {
		rate = defaultRate
	}
	flags := "-"
	if r.Proto == flow.ProtoTCP && r.TCPFlags != 0 {
		var parts []string
		for i, n := range []string{"fin", "syn", "rst", "psh", "ack", "urg"} {
			if r.TCPFlags&(1<<i) != 0 {
				parts = append(parts, n)
			}
		}
		flags = strings.Join(parts, ",")
	}
	proto := fmt.Sprint(r.Proto)
	switch r.Proto {
	case flow.ProtoTCP:
		proto = "tcp"
	case flow.ProtoUDP:
		proto = "udp"
	case flow.ProtoICMP:
		proto = "icmp"
	case flow.ProtoICMPv6:
		proto = "icmpv6"
	}
	return fmt.Sprintf("%s %s > %s protocol: %s flags: %s packets: %d size: %d bytes sample ratio: %d",
		time.Unix(0, t).UTC().Format("2006-01-02 15:04:05.000"),
		netip.AddrPortFrom(r.SrcAddr.Unmap(), r.SrcPort), netip.AddrPortFrom(r.DstAddr.Unmap(), r.DstPort),
		proto, flags, r.Packets, r.Bytes, rate)
}

func TestFlowLineMatchesFmt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	addrs := []netip.Addr{
		netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("::ffff:198.51.100.7"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0"),
	}
	protos := []uint8{flow.ProtoTCP, flow.ProtoUDP, flow.ProtoICMP, flow.ProtoICMPv6, 47, 0, 255}
	for i := range 2000 {
		r := flow.Record{
			SrcAddr: addrs[rng.IntN(len(addrs))], DstAddr: addrs[rng.IntN(len(addrs))],
			SrcPort: uint16(rng.IntN(65536)), DstPort: uint16(rng.IntN(65536)),
			Proto: protos[rng.IntN(len(protos))], TCPFlags: uint8(rng.IntN(64)),
			Packets: rng.Uint64() >> rng.IntN(64), Bytes: rng.Uint64() >> rng.IntN(64),
			SamplingRate: uint32(rng.IntN(3) * rng.IntN(5000)),
			Start:        int64(rng.Uint64() >> 2), Received: int64(rng.Uint64() >> 2),
		}
		if i%5 == 0 {
			r.Start = 0
		}
		want := flowLineFmt(&r, 64)
		if got := FlowLine(&r, 64); got != want {
			t.Fatalf("record %+v:\n got %q\nwant %q", r, got, want)
		}
		var b strings.Builder
		writeFlowLine(&b, &r, 64)
		if b.String() != want+"\n" {
			t.Fatalf("writeFlowLine %q, want %q", b.String(), want+"\n")
		}
	}
}
