package flowgen

import (
	"encoding/binary"
	"time"
)

const (
	sflowHeaderLenV4   = 28 // version, ip version, agent v4, sub agent, sequence, uptime, samples
	sflowSampleFixed   = 8 + 32
	sflowRecordFixed   = 8 + 16
	sflowMaxHeaderSize = 14 + 40 + 20
	ethHeaderLen       = 14
)

// sFlow v5 datagrams: one flow sample (format 1) per Flow, each with one raw
// packet header record (Ethernet + IPv4/IPv6 + TCP/UDP/ICMP). A sample stands
// for one packet, so the Flow is reduced to one packet of its average size;
// the sample's sampling rate is the Flow's (1 when it has none). The frame
// length is the IP total length plus 14 bytes of Ethernet (no FCS), so a
// collector counting layer-3 bytes takes the IP header's total length.
func (e *Encoder) appendSFlow(dst []byte, flows []Flow, now time.Time, tot *Totals) ([]byte, int) {
	start := len(dst)
	agent := e.cfg.AgentAddr
	hl := sflowHeaderLenV4
	if !agent.Is4() {
		hl += 12
	}
	dst = grow(dst, hl)
	limit := e.cfg.MaxDatagramSize
	maxN := e.maxRecords(1 << 30)
	n, consumed := 0, 0
	for consumed < len(flows) && n < maxN {
		if n > 0 && len(dst)-start+sflowSampleFixed+sflowRecordFixed+sflowMaxHeaderSize > limit {
			break
		}
		f := sflowPacket(flows[consumed])
		dst = e.appendFlowSample(dst, &f)
		if tot != nil {
			tot.Add(&f)
		}
		n++
		consumed++
	}
	h := dst[start:]
	binary.BigEndian.PutUint32(h[0:], 5)
	o := 8
	if agent.Is4() {
		binary.BigEndian.PutUint32(h[4:], 1)
		a := agent.As4()
		copy(h[8:], a[:])
		o += 4
	} else {
		binary.BigEndian.PutUint32(h[4:], 2)
		a := agent.As16()
		copy(h[8:], a[:])
		o += 16
	}
	binary.BigEndian.PutUint32(h[o:], e.cfg.ObservationDomain)
	binary.BigEndian.PutUint32(h[o+4:], e.sequence)
	binary.BigEndian.PutUint32(h[o+8:], e.cfg.Clock.headerUptimeMs(now))
	binary.BigEndian.PutUint32(h[o+12:], uint32(n))
	e.sequence++
	e.datagrams++
	if tot != nil {
		tot.Datagrams++
	}
	return dst, consumed
}

// sflowPacket reduces f to the one packet an sFlow sample carries.
func sflowPacket(f Flow) Flow {
	size := uint64(0)
	if f.Packets > 0 {
		size = f.Bytes / f.Packets
	}
	if min := uint64(ipHeaderLen(&f) + l4HeaderLen(&f)); size < min {
		size = min
	}
	if size > 65535 {
		size = 65535
	}
	if f.SamplingRate == 0 {
		f.SamplingRate = 1
	}
	f.Packets, f.Bytes = 1, size
	if l4HeaderLen(&f) == 0 {
		f.SrcPort, f.DstPort = 0, 0 // nothing after the IP header to carry them
	}
	if f.Proto != 6 || l4HeaderLen(&f) == 0 {
		f.TCPFlags = 0
	}
	if f.Proto == 1 || f.Proto == 58 {
		f.SrcPort = 0 // ICMP carries type/code only (in DstPort)
	}
	return f
}

func ipHeaderLen(f *Flow) int {
	if f.Src.Is4() && f.Dst.Is4() {
		return 20
	}
	return 40
}

// l4HeaderLen is what the sampled header carries after IP: nothing for a
// non-first fragment (IPv4 only; IPv6 fragments are sent unfragmented).
func l4HeaderLen(f *Flow) int {
	if f.Fragment && ipHeaderLen(f) == 20 {
		return 0
	}
	switch f.Proto {
	case 6:
		return 20
	case 17, 1, 58:
		return 8
	}
	return 0
}

func (e *Encoder) appendFlowSample(dst []byte, f *Flow) []byte {
	hdrLen := ethHeaderLen + ipHeaderLen(f) + l4HeaderLen(f)
	padded := (hdrLen + 3) &^ 3
	recLen := 16 + padded
	sampleLen := 32 + 8 + recLen
	off := len(dst)
	dst = grow(dst, 8+sampleLen)
	b := dst[off:]
	e.sampleSeq++
	e.samplePool += f.SamplingRate
	binary.BigEndian.PutUint32(b[0:], 1) // enterprise 0, format 1: flow sample
	binary.BigEndian.PutUint32(b[4:], uint32(sampleLen))
	binary.BigEndian.PutUint32(b[8:], e.sampleSeq)
	binary.BigEndian.PutUint32(b[12:], f.InIf&0xffffff) // source id: type 0 (ifIndex)
	binary.BigEndian.PutUint32(b[16:], f.SamplingRate)
	binary.BigEndian.PutUint32(b[20:], e.samplePool)
	binary.BigEndian.PutUint32(b[24:], 0) // drops
	binary.BigEndian.PutUint32(b[28:], f.InIf)
	binary.BigEndian.PutUint32(b[32:], f.OutIf)
	binary.BigEndian.PutUint32(b[36:], 1) // one record
	r := b[40:]
	binary.BigEndian.PutUint32(r[0:], 1) // raw packet header
	binary.BigEndian.PutUint32(r[4:], uint32(recLen))
	binary.BigEndian.PutUint32(r[8:], 1) // header protocol: Ethernet
	binary.BigEndian.PutUint32(r[12:], uint32(f.Bytes)+ethHeaderLen)
	binary.BigEndian.PutUint32(r[16:], 0) // stripped
	binary.BigEndian.PutUint32(r[20:], uint32(hdrLen))
	writePacketHeader(r[24:24+padded], f)
	return dst
}

// writePacketHeader writes Ethernet + IP + L4 headers of f's one packet
// (f.Bytes is the IP total length) into b, zero-padded.
func writePacketHeader(b []byte, f *Flow) {
	clear(b)
	// Ethernet: locally administered MACs, ethertype.
	copy(b[0:6], []byte{0x02, 0, 0, 0, 0, 0x02})
	copy(b[6:12], []byte{0x02, 0, 0, 0, 0, 0x01})
	ip := b[ethHeaderLen:]
	var l4 []byte
	if ipHeaderLen(f) == 20 {
		binary.BigEndian.PutUint16(b[12:], 0x0800)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(f.Bytes))
		binary.BigEndian.PutUint16(ip[4:], 0x1234) // identification
		if f.Fragment {
			binary.BigEndian.PutUint16(ip[6:], 0x2000|185) // MF, offset 1480 bytes
		}
		ip[8] = 64
		ip[9] = f.Proto
		s, d := f.Src.As4(), f.Dst.As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip[:20]))
		l4 = ip[20:]
	} else {
		binary.BigEndian.PutUint16(b[12:], 0x86dd)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(f.Bytes-40)) // payload length
		ip[6] = f.Proto
		ip[7] = 64
		s, d := f.Src.As16(), f.Dst.As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		l4 = ip[40:]
	}
	switch l4HeaderLen(f) {
	case 0:
		return
	}
	switch f.Proto {
	case 6:
		binary.BigEndian.PutUint16(l4[0:], f.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], f.DstPort)
		l4[12] = 5 << 4 // data offset
		l4[13] = f.TCPFlags
		binary.BigEndian.PutUint16(l4[14:], 65535) // window
	case 17:
		binary.BigEndian.PutUint16(l4[0:], f.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], f.DstPort)
		binary.BigEndian.PutUint16(l4[4:], uint16(f.Bytes)-uint16(ipHeaderLen(f)))
	case 1, 58:
		l4[0] = byte(f.DstPort >> 8) // type
		l4[1] = byte(f.DstPort)      // code
	}
}

func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
