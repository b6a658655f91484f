// Package pcapfile reads the UDP payloads out of classic libpcap files
// (Ethernet, raw IP, Linux SLL; IPv4 and IPv6), for decoder conformance
// tests and replays. It does not reassemble fragments.
package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"
)

// Packet is one UDP datagram read from a capture.
type Packet struct {
	Time    time.Time
	Src     netip.AddrPort
	Dst     netip.AddrPort
	Payload []byte
}

// ReadFile returns every UDP datagram in the capture at path.
func ReadFile(path string) ([]Packet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening capture: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading capture %s: %w", path, err)
	}
	pkts, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parsing capture %s: %w", path, err)
	}
	return pkts, nil
}

// Parse returns every UDP datagram in a libpcap file image.
func Parse(data []byte) ([]Packet, error) {
	if len(data) < 24 {
		return nil, errors.New("short pcap header")
	}
	var bo binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nano = binary.LittleEndian, true
	default:
		switch binary.BigEndian.Uint32(data) {
		case 0xa1b2c3d4:
			bo = binary.BigEndian
		case 0xa1b23c4d:
			bo, nano = binary.BigEndian, true
		default:
			return nil, errors.New("not a libpcap file (pcapng is not supported)")
		}
	}
	linkType := bo.Uint32(data[20:])
	var out []Packet
	off := 24
	for off+16 <= len(data) {
		sec := bo.Uint32(data[off:])
		frac := bo.Uint32(data[off+4:])
		incl := int(bo.Uint32(data[off+8:]))
		off += 16
		if incl < 0 || off+incl > len(data) {
			return out, errors.New("truncated packet record")
		}
		frame := data[off : off+incl]
		off += incl
		ns := int64(frac) * 1000
		if nano {
			ns = int64(frac)
		}
		p, ok := udpFromFrame(linkType, frame)
		if !ok {
			continue
		}
		p.Time = time.Unix(int64(sec), ns).UTC()
		out = append(out, p)
	}
	return out, nil
}

func udpFromFrame(linkType uint32, b []byte) (Packet, bool) {
	switch linkType {
	case 1: // Ethernet
		if len(b) < 14 {
			return Packet{}, false
		}
		et := binary.BigEndian.Uint16(b[12:])
		b = b[14:]
		for et == 0x8100 || et == 0x88a8 {
			if len(b) < 4 {
				return Packet{}, false
			}
			et = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		}
		if et != 0x0800 && et != 0x86dd {
			return Packet{}, false
		}
	case 101, 12, 14: // raw IP
	case 113: // Linux cooked
		if len(b) < 16 {
			return Packet{}, false
		}
		b = b[16:]
	case 276: // Linux cooked v2
		if len(b) < 20 {
			return Packet{}, false
		}
		b = b[20:]
	case 0: // BSD loopback
		if len(b) < 4 {
			return Packet{}, false
		}
		b = b[4:]
	default:
		return Packet{}, false
	}
	return udpFromIP(b)
}

func udpFromIP(b []byte) (Packet, bool) {
	if len(b) < 1 {
		return Packet{}, false
	}
	var src, dst netip.Addr
	var l4 []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return Packet{}, false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if b[9] != 17 || ihl < 20 || len(b) < ihl {
			return Packet{}, false
		}
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			return Packet{}, false // non-first fragment
		}
		if total > len(b) || total < ihl {
			total = len(b)
		}
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:total]
	case 6:
		if len(b) < 40 || b[6] != 17 {
			return Packet{}, false
		}
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		plen := int(binary.BigEndian.Uint16(b[4:]))
		l4 = b[40:]
		if plen <= len(l4) {
			l4 = l4[:plen]
		}
	default:
		return Packet{}, false
	}
	if len(l4) < 8 {
		return Packet{}, false
	}
	sport := binary.BigEndian.Uint16(l4)
	dport := binary.BigEndian.Uint16(l4[2:])
	ulen := int(binary.BigEndian.Uint16(l4[4:]))
	payload := l4[8:]
	if ulen >= 8 && ulen-8 <= len(payload) {
		payload = payload[:ulen-8]
	}
	return Packet{
		Src:     netip.AddrPortFrom(src, sport),
		Dst:     netip.AddrPortFrom(dst, dport),
		Payload: append([]byte(nil), payload...),
	}, true
}
