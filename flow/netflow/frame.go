package netflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowshield/flowshield/flow"
)

// parseFrame fills rec from a sampled Ethernet frame (IPFIX
// dataLinkFrameSection, RFC 7133): VLAN tags and MPLS labels are skipped,
// the outermost IPv4/IPv6 header gives addresses, protocol and the fragment
// bit, and TCP/UDP give ports and flags. A truncated frame fills what it
// holds. After an MPLS stack only a following IP header is followed (as
// goflow2 does); a pseudowire control word ends the parse.
func parseFrame(b []byte, rec *flow.Record) {
	if len(b) < 14 {
		return
	}
	etype := binary.BigEndian.Uint16(b[12:])
	b = b[14:]
	for range 8 { // VLAN and MPLS layers, bounded
		switch etype {
		case 0x8100, 0x88a8:
			if len(b) < 4 {
				return
			}
			etype = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
			continue
		case 0x8847:
			etype = 0
			for range 16 {
				if len(b) < 4 {
					return
				}
				bottom := b[2]&1 == 1
				b = b[4:]
				if bottom {
					break
				}
			}
			if len(b) > 0 {
				switch b[0] >> 4 {
				case 4:
					etype = 0x0800
				case 6:
					etype = 0x86dd
				}
			}
			continue
		}
		break
	}
	var proto uint8
	var l4 []byte
	switch etype {
	case 0x0800:
		if len(b) < 20 {
			return
		}
		rec.SrcAddr = netip.AddrFrom4([4]byte(b[12:16]))
		rec.DstAddr = netip.AddrFrom4([4]byte(b[16:20]))
		proto = b[9]
		rec.Proto = proto
		frag := binary.BigEndian.Uint16(b[6:])
		if frag&0x3fff != 0 { // MF or offset
			rec.Fragment = true
		}
		if frag&0x1fff != 0 {
			return // no transport header in a non-first fragment
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || ihl > len(b) {
			return
		}
		l4 = b[ihl:]
	case 0x86dd:
		if len(b) < 40 {
			return
		}
		rec.SrcAddr = netip.AddrFrom16([16]byte(b[8:24]))
		rec.DstAddr = netip.AddrFrom16([16]byte(b[24:40]))
		proto = b[6]
		l4 = b[40:]
	ext:
		for range 8 {
			switch proto {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(l4) < 8 {
					break ext
				}
				n := (int(l4[1]) + 1) * 8
				proto = l4[0]
				if n > len(l4) {
					l4 = nil
					break ext
				}
				l4 = l4[n:]
			case 44:
				if len(l4) < 8 {
					break ext
				}
				rec.Fragment = true
				proto = l4[0]
				off := binary.BigEndian.Uint16(l4[2:]) >> 3
				l4 = l4[8:]
				if off != 0 {
					l4 = nil
				}
			default:
				break ext
			}
		}
		rec.Proto = proto
	default:
		return
	}
	switch proto {
	case flow.ProtoTCP:
		if len(l4) >= 14 {
			rec.TCPFlags = l4[13]
		}
		fallthrough
	case flow.ProtoUDP:
		if len(l4) >= 4 {
			rec.SrcPort = binary.BigEndian.Uint16(l4)
			rec.DstPort = binary.BigEndian.Uint16(l4[2:])
		}
	}
}
