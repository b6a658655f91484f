package netflow

import (
	"net/netip"
	"testing"

	"github.com/flowshield/flowshield/flow"
)

func TestParseFrame(t *testing.T) {
	eth := func(etype uint16) []byte { return be16(make([]byte, 12), etype) }
	ipv4 := func(proto byte, frag uint16) []byte {
		h := []byte{0x45, 0, 0, 40, 0, 0}
		h = be16(h, frag)
		h = append(h, 64, proto, 0, 0, 198, 51, 100, 1, 203, 0, 113, 9)
		return h
	}
	tcp := []byte{0x30, 0x39, 0x00, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, flow.TCPFlagSYN}
	ipv6 := func(next byte) []byte {
		h := []byte{0x60, 0, 0, 0, 0, 8, next, 64}
		h = append(h, netip.MustParseAddr("2001:db8::1").AsSlice()...)
		return append(h, netip.MustParseAddr("2001:db8::2").AsSlice()...)
	}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	v4src, v4dst := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.9")
	v6src, v6dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	tests := []struct {
		name  string
		frame []byte
		want  flow.Record
	}{
		{"ipv4 tcp", cat(eth(0x0800), ipv4(6, 0), tcp), flow.Record{SrcAddr: v4src, DstAddr: v4dst, Proto: 6, SrcPort: 12345, DstPort: 80, TCPFlags: flow.TCPFlagSYN}},
		{"vlan ipv4 first fragment", cat(eth(0x8100), []byte{0, 5, 0x08, 0x00}, ipv4(17, 0x2000), tcp[:8]), flow.Record{SrcAddr: v4src, DstAddr: v4dst, Proto: 17, SrcPort: 12345, DstPort: 80, Fragment: true}},
		{"ipv4 later fragment has no ports", cat(eth(0x0800), ipv4(17, 0x00b9), tcp[:8]), flow.Record{SrcAddr: v4src, DstAddr: v4dst, Proto: 17, Fragment: true}},
		{"mpls two labels then ipv4", cat(eth(0x8847), []byte{0, 0x10, 0x00, 64, 0, 0x20, 0x01, 64}, ipv4(6, 0), tcp), flow.Record{SrcAddr: v4src, DstAddr: v4dst, Proto: 6, SrcPort: 12345, DstPort: 80, TCPFlags: flow.TCPFlagSYN}},
		{"mpls control word stops", cat(eth(0x8847), []byte{0, 0x10, 0x01, 64}, []byte{0, 0, 0, 0}, eth(0x0800), ipv4(6, 0)), flow.Record{}},
		{"ipv6 fragment header then udp", cat(eth(0x86dd), ipv6(44), []byte{17, 0, 0, 1, 0, 0, 0, 1}, tcp[:8]), flow.Record{SrcAddr: v6src, DstAddr: v6dst, Proto: 17, SrcPort: 12345, DstPort: 80, Fragment: true}},
		{"ipv6 hop-by-hop then tcp", cat(eth(0x86dd), ipv6(0), []byte{6, 0, 0, 0, 0, 0, 0, 0}, tcp), flow.Record{SrcAddr: v6src, DstAddr: v6dst, Proto: 6, SrcPort: 12345, DstPort: 80, TCPFlags: flow.TCPFlagSYN}},
		{"truncated ipv4", cat(eth(0x0800), ipv4(6, 0)[:12]), flow.Record{}},
		{"arp", cat(eth(0x0806), make([]byte, 28)), flow.Record{}},
		{"short", []byte{1, 2, 3}, flow.Record{}},
	}
	for _, tc := range tests {
		var got flow.Record
		parseFrame(tc.frame, &got)
		if got != tc.want {
			t.Errorf("%s:\n got  %+v\n want %+v", tc.name, got, tc.want)
		}
	}
}

// FuzzParseFrame: any bytes, no panic, and addresses only of one family.
func FuzzParseFrame(fz *testing.F) {
	fz.Add(append(be16(make([]byte, 12), 0x0800), 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8))
	fz.Add(append(be16(make([]byte, 12), 0x8847), 0, 0x10, 0x01, 64, 0x60))
	fz.Fuzz(func(t *testing.T, b []byte) {
		var r flow.Record
		parseFrame(b, &r)
		if r.SrcAddr.IsValid() != r.DstAddr.IsValid() || (r.SrcAddr.IsValid() && r.SrcAddr.Is4() != r.DstAddr.Is4()) {
			t.Fatalf("inconsistent addresses %v %v", r.SrcAddr, r.DstAddr)
		}
	})
}
