package sflow

import (
	"encoding/binary"
	"net/netip"
)

// Builders of synthetic sFlow v5 datagrams and sampled packets for tests,
// fuzz seeds and benchmarks. They write exactly what the fields say; callers
// that want lies patch the bytes afterwards.

func put32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// datagram returns an sFlow v5 datagram from an IPv4 agent with the samples
// given (each a full sample: format, length, body).
func datagram(subAgent uint32, samples ...[]byte) []byte {
	b := put32(nil, 5)
	b = put32(b, 1)
	b = append(b, 192, 0, 2, 1)
	b = put32(b, subAgent)
	b = put32(b, 42)     // sequence
	b = put32(b, 123456) // uptime
	b = put32(b, uint32(len(samples)))
	for _, s := range samples {
		b = append(b, s...)
	}
	return b
}

func sample(format uint32, body []byte) []byte {
	b := put32(nil, format)
	b = put32(b, uint32(len(body)))
	return append(b, body...)
}

// flowSample is a compact flow sample (format 1).
func flowSample(rate, in, out uint32, records ...[]byte) []byte {
	b := put32(nil, 7)    // sequence
	b = put32(b, 3)       // source id
	b = put32(b, rate)    // sampling rate
	b = put32(b, 1000000) // pool
	b = put32(b, 0)       // drops
	b = put32(b, in)
	b = put32(b, out)
	b = put32(b, uint32(len(records)))
	for _, r := range records {
		b = append(b, r...)
	}
	return sample(sampleFlow, b)
}

// expandedFlowSample is an expanded flow sample (format 3).
func expandedFlowSample(rate, inFmt, in, outFmt, out uint32, records ...[]byte) []byte {
	b := put32(nil, 7)
	b = put32(b, 0)
	b = put32(b, 3)
	b = put32(b, rate)
	b = put32(b, 1000000)
	b = put32(b, 0)
	b = put32(b, inFmt)
	b = put32(b, in)
	b = put32(b, outFmt)
	b = put32(b, out)
	b = put32(b, uint32(len(records)))
	for _, r := range records {
		b = append(b, r...)
	}
	return sample(sampleExpandedFlow, b)
}

func counterSample() []byte {
	ifc := make([]byte, 88) // generic interface counters
	rec := put32(nil, 1)
	rec = put32(rec, uint32(len(ifc)))
	rec = append(rec, ifc...)
	b := put32(nil, 9)
	b = put32(b, 3)
	b = put32(b, 1)
	return sample(sampleCounter, append(b, rec...))
}

func record(format uint32, body []byte) []byte {
	b := put32(nil, format)
	b = put32(b, uint32(len(body)))
	return append(b, body...)
}

// rawHeader is a raw packet header record, padded to 4 bytes.
func rawHeader(proto, frameLen, stripped uint32, hdr []byte) []byte {
	b := put32(nil, proto)
	b = put32(b, frameLen)
	b = put32(b, stripped)
	b = put32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return record(recordRawHeader, b)
}

func sampledIPv4(length, proto uint32, src, dst netip.Addr, sport, dport, flags uint32) []byte {
	b := put32(nil, length)
	b = put32(b, proto)
	s4, d4 := src.As4(), dst.As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	b = put32(b, sport)
	b = put32(b, dport)
	b = put32(b, flags)
	b = put32(b, 0)
	return record(recordSampledIPv4, b)
}

func sampledIPv6(length, proto uint32, src, dst netip.Addr, sport, dport, flags uint32) []byte {
	b := put32(nil, length)
	b = put32(b, proto)
	s6, d6 := src.As16(), dst.As16()
	b = append(b, s6[:]...)
	b = append(b, d6[:]...)
	b = put32(b, sport)
	b = put32(b, dport)
	b = put32(b, flags)
	b = put32(b, 0)
	return record(recordSampledIPv6, b)
}

func extSwitch() []byte { return record(1001, make([]byte, 16)) }

// ethernet prefixes payload with an Ethernet header and the VLAN tags given.
func ethernet(etype uint16, vlans []uint16, payload []byte) []byte {
	b := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	for _, v := range vlans {
		b = binary.BigEndian.AppendUint16(b, etherVLAN)
		b = binary.BigEndian.AppendUint16(b, v)
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

// ipv4 returns an IPv4 header (no options) with total length totalLen
// followed by l4; fragOff is the flags+offset word.
func ipv4(proto uint8, src, dst netip.Addr, totalLen, fragOff uint16, l4 []byte) []byte {
	b := []byte{0x45, 0}
	b = binary.BigEndian.AppendUint16(b, totalLen)
	b = append(b, 0x12, 0x34)
	b = binary.BigEndian.AppendUint16(b, fragOff)
	b = append(b, 64, proto, 0, 0)
	s4, d4 := src.As4(), dst.As4()
	b = append(b, s4[:]...)
	b = append(b, d4[:]...)
	return append(b, l4...)
}

// ipv6 returns an IPv6 header with payload length plen followed by rest
// (extension headers and transport).
func ipv6(next uint8, src, dst netip.Addr, plen uint16, rest []byte) []byte {
	b := []byte{0x60, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, plen)
	b = append(b, next, 64)
	s6, d6 := src.As16(), dst.As16()
	b = append(b, s6[:]...)
	b = append(b, d6[:]...)
	return append(b, rest...)
}

func udp(sport, dport uint16, payloadLen int) []byte {
	b := binary.BigEndian.AppendUint16(nil, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(8+payloadLen))
	b = append(b, 0, 0)
	return append(b, make([]byte, payloadLen)...)
}

func tcp(sport, dport uint16, flags uint8) []byte {
	b := binary.BigEndian.AppendUint16(nil, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = append(b, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0)
	return b
}

// benchDatagram is a datagram of n flow samples, each a 128-byte raw header
// of an Ethernet/IPv4/UDP packet of 1,400 bytes, as a switch would send.
func benchDatagram(n int) []byte {
	samples := make([][]byte, n)
	for i := range samples {
		src := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		dst := netip.AddrFrom4([4]byte{203, 0, 113, byte(i * 7)})
		pkt := ethernet(etherIPv4, nil, ipv4(17, src, dst, 1400, 0, udp(uint16(1000+i), 53, 1372)))
		samples[i] = flowSample(1024, 3, 5, rawHeader(headerEthernet, 1418, 4, pkt[:128]), extSwitch())
	}
	return datagram(1, samples...)
}
