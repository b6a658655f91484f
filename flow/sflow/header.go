package sflow

import (
	"net/netip"

	"github.com/flowshield/flowshield/flow"
)

// Header protocols of the raw packet header record (SFLOW-STRUCTS5).
const (
	headerEthernet = 1
	headerIPv4     = 11
	headerIPv6     = 12
	headerMPLS     = 13
)

const (
	etherIPv4      = 0x0800
	etherIPv6      = 0x86dd
	etherVLAN      = 0x8100
	etherQinQ      = 0x88a8
	etherQinQOld   = 0x9100
	etherMPLS      = 0x8847
	etherMPLSMulti = 0x8848

	maxVLANTags   = 8
	maxMPLSLabels = 16
	maxIPv6Ext    = 8
)

// decodeHeader fills rec from a sampled packet header. It reports whether an
// IP header was found (and so addresses, protocol, ports and an IP-derived
// byte count filled in). Otherwise only Bytes is set, from the frame length.
// Every loop is bounded by a fixed count and by len(h).
func decodeHeader(rec *flow.Record, proto, frameLen, stripped uint32, h []byte) bool {
	l2 := 0 // link-layer bytes walked before the network header
	var etype uint16
	rec.Bytes = 0
	switch proto {
	case headerEthernet:
		if len(h) < 14 {
			setFrameBytes(rec, frameLen, stripped, 0)
			return false
		}
		etype = be16(h[12:])
		l2 = 14
		for i := 0; i < maxVLANTags && (etype == etherVLAN || etype == etherQinQ || etype == etherQinQOld); i++ {
			if len(h) < l2+4 {
				setFrameBytes(rec, frameLen, stripped, l2)
				return false
			}
			etype = be16(h[l2+2:])
			l2 += 4
		}
		if etype == etherMPLS || etype == etherMPLSMulti {
			etype, l2 = skipMPLS(h, l2)
		}
	case headerIPv4:
		etype = etherIPv4
	case headerIPv6:
		etype = etherIPv6
	case headerMPLS:
		etype, l2 = skipMPLS(h, 0)
	}
	var ok bool
	switch etype {
	case etherIPv4:
		ok = decodeIPv4(rec, h[l2:])
	case etherIPv6:
		ok = decodeIPv6(rec, h[l2:])
	}
	if !ok || rec.Bytes == 0 {
		setFrameBytes(rec, frameLen, stripped, l2)
	}
	return ok
}

// skipMPLS walks the label stack from off to its bottom and guesses the
// payload from the first nibble, as MPLS carries no payload type. It returns
// etype 0 when the payload is not IP or the stack does not end in h.
func skipMPLS(h []byte, off int) (uint16, int) {
	for range maxMPLSLabels {
		if len(h) < off+4 {
			return 0, off
		}
		bottom := h[off+2]&1 == 1
		off += 4
		if bottom {
			if len(h) <= off {
				return 0, off
			}
			switch h[off] >> 4 {
			case 4:
				return etherIPv4, off
			case 6:
				return etherIPv6, off
			}
			return 0, off
		}
	}
	return 0, off
}

// setFrameBytes is the byte count when the header gives no IP length: what
// the agent says the frame held, less what it stripped and the link layer.
func setFrameBytes(rec *flow.Record, frameLen, stripped uint32, l2 int) {
	n := int64(frameLen) - int64(stripped) - int64(l2)
	rec.Bytes = uint64(max(n, 0))
}

func decodeIPv4(rec *flow.Record, b []byte) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	rec.SrcAddr = netip.AddrFrom4([4]byte(b[12:16]))
	rec.DstAddr = netip.AddrFrom4([4]byte(b[16:20]))
	rec.Proto = b[9]
	ihl := int(b[0]&0x0f) * 4
	total := int(be16(b[2:]))
	if total >= ihl && ihl >= 20 {
		rec.Bytes = uint64(total)
	} // else left 0: the caller falls back to the frame length
	frag := be16(b[6:])
	rec.Fragment = frag&0x3fff != 0 // MF or a non-zero offset
	if frag&0x1fff == 0 && ihl >= 20 && len(b) >= ihl {
		decodeL4(rec, b[ihl:])
	}
	return true
}

func decodeIPv6(rec *flow.Record, b []byte) bool {
	if len(b) < 40 || b[0]>>4 != 6 {
		return false
	}
	rec.SrcAddr = netip.AddrFrom16([16]byte(b[8:24]))
	rec.DstAddr = netip.AddrFrom16([16]byte(b[24:40]))
	if plen := be16(b[4:]); plen != 0 {
		rec.Bytes = 40 + uint64(plen)
	}
	next := b[6]
	off := 40
	l4 := true
walk:
	for range maxIPv6Ext {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < off+8 {
				l4 = false
				break walk
			}
			next = b[off]
			off += (int(b[off+1]) + 1) * 8
		case 51: // authentication header
			if len(b) < off+8 {
				l4 = false
				break walk
			}
			next = b[off]
			off += (int(b[off+1]) + 2) * 4
		case 44: // fragment
			if len(b) < off+8 {
				l4 = false
				break walk
			}
			fo := be16(b[off+2:])
			if fo&0xfff9 != 0 { // offset (bits 15-3) or M (bit 0)
				rec.Fragment = true
			}
			if fo>>3 != 0 {
				l4 = false // not the first fragment: no transport header
			}
			next = b[off]
			off += 8
		default:
			break walk
		}
	}
	rec.Proto = next
	if l4 && off <= len(b) {
		decodeL4(rec, b[off:])
	}
	return true
}

// decodeL4 reads ports and flags from as much of the transport header as the
// sample holds.
func decodeL4(rec *flow.Record, b []byte) {
	switch rec.Proto {
	case flow.ProtoTCP:
		if len(b) >= 4 {
			rec.SrcPort = be16(b)
			rec.DstPort = be16(b[2:])
		}
		if len(b) >= 14 {
			rec.TCPFlags = b[13]
		}
	case flow.ProtoUDP:
		if len(b) >= 4 {
			rec.SrcPort = be16(b)
			rec.DstPort = be16(b[2:])
		}
	case flow.ProtoICMP, flow.ProtoICMPv6:
		if len(b) >= 2 {
			rec.DstPort = uint16(b[0])<<8 | uint16(b[1])
		}
	}
}
