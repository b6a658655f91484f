package netflow

import (
	"encoding/binary"
	"net/netip"
)

// Builders of hand-made v5/v9/IPFIX datagrams for tests, fuzz seeds and
// benchmarks.

type fieldSpec struct {
	typ, length uint16
	pen         uint32 // IPFIX enterprise number, 0 for IANA
}

func f(typ, length uint16) fieldSpec { return fieldSpec{typ: typ, length: length} }

func be16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func be32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// set frames body as a set with id.
func set(id uint16, body []byte) []byte {
	out := be16(nil, id)
	out = be16(out, uint16(4+len(body)))
	return append(out, body...)
}

// tmplRecord is one template record: id, field count, specifiers.
func tmplRecord(id uint16, fields ...fieldSpec) []byte {
	out := be16(nil, id)
	out = be16(out, uint16(len(fields)))
	return appendFields(out, fields)
}

func appendFields(out []byte, fields []fieldSpec) []byte {
	for _, fs := range fields {
		if fs.pen != 0 {
			out = be16(out, fs.typ|0x8000)
			out = be16(out, fs.length)
			out = be32(out, fs.pen)
			continue
		}
		out = be16(out, fs.typ)
		out = be16(out, fs.length)
	}
	return out
}

// v9OptionsRecord is a v9 options template record (scope and option
// lengths in bytes).
func v9OptionsRecord(id uint16, scopes, options []fieldSpec) []byte {
	out := be16(nil, id)
	out = be16(out, uint16(4*len(scopes)))
	out = be16(out, uint16(4*len(options)))
	out = appendFields(out, scopes)
	return appendFields(out, options)
}

// ipfixOptionsRecord is an IPFIX options template record.
func ipfixOptionsRecord(id uint16, scopes, options []fieldSpec) []byte {
	out := be16(nil, id)
	out = be16(out, uint16(len(scopes)+len(options)))
	out = be16(out, uint16(len(scopes)))
	out = appendFields(out, scopes)
	return appendFields(out, options)
}

func v9Datagram(uptimeMs, unixSecs, sourceID uint32, sets ...[]byte) []byte {
	out := be16(nil, 9)
	out = be16(out, uint16(len(sets)))
	out = be32(out, uptimeMs)
	out = be32(out, unixSecs)
	out = be32(out, 1) // sequence
	out = be32(out, sourceID)
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

func ipfixDatagram(exportSecs, domain uint32, sets ...[]byte) []byte {
	n := ipfixHeaderLen
	for _, s := range sets {
		n += len(s)
	}
	out := be16(nil, 10)
	out = be16(out, uint16(n))
	out = be32(out, exportSecs)
	out = be32(out, 1)
	out = be32(out, domain)
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

// v5Datagram builds a v5 datagram with n records derived from i.
func v5Datagram(n int, uptimeMs, unixSecs uint32, sampling uint16) []byte {
	out := be16(nil, 5)
	out = be16(out, uint16(n))
	out = be32(out, uptimeMs)
	out = be32(out, unixSecs)
	out = be32(out, 0)    // nsecs
	out = be32(out, 1000) // sequence
	out = append(out, 1, 2)
	out = be16(out, sampling)
	for i := range n {
		out = append(out, 10, 0, byte(i>>8), byte(i)) // src
		out = append(out, 192, 0, 2, byte(i))         // dst
		out = append(out, 0, 0, 0, 0)                 // next hop
		out = be16(out, 3)                            // in
		out = be16(out, 4)                            // out
		out = be32(out, uint32(i+1))                  // packets
		out = be32(out, uint32(64*(i+1)))             // bytes
		out = be32(out, uptimeMs-2000)                // first
		out = be32(out, uptimeMs-1000)                // last
		out = be16(out, uint16(1024+i))
		out = be16(out, 80)
		out = append(out, 0, flowTCPSyn, 6, 0)
		out = append(out, 0, 0, 0, 0, 24, 24, 0, 0)
	}
	return out
}

const flowTCPSyn = 0x02

// RouterOS-shaped templates. MikroTik's traffic-flow documentation lists
// what its v9/IPFIX records carry (addresses, ports, protocol, ToS, TCP
// flags, ICMP type/code, MACs, in/out interface, gateway, masks, NAT
// addresses and ports, first/last-forwarded, and for IPFIX sys-init-time);
// goflow2 issue 113, akvorado issue 417 and FastNetMon issue 985 show the
// sampling interval (34) sent inside the data records, little-endian. Times
// are sysUpTime milliseconds (22/21): v9 relative to the header's
// sysUpTime, IPFIX relative to systemInitTimeMilliseconds (160).
var routerOSV9Fields = []fieldSpec{
	f(22, 4), f(21, 4), f(1, 4), f(2, 4), f(10, 4), f(14, 4),
	f(56, 6), f(80, 6), f(8, 4), f(12, 4), f(4, 1), f(5, 1),
	f(7, 2), f(11, 2), f(15, 4), f(9, 1), f(13, 1), f(6, 1),
	f(32, 2), f(225, 4), f(226, 4), f(227, 2), f(228, 2), f(34, 4),
}

var routerOSV9v6Fields = []fieldSpec{
	f(22, 4), f(21, 4), f(1, 4), f(2, 4), f(10, 4), f(14, 4),
	f(56, 6), f(80, 6), f(27, 16), f(28, 16), f(4, 1), f(5, 1),
	f(7, 2), f(11, 2), f(62, 16), f(29, 1), f(30, 1), f(6, 1),
	f(139, 2), f(31, 4), f(34, 4),
}

var routerOSIPFIXFields = append(append([]fieldSpec(nil), routerOSV9Fields...), f(160, 8))

// flowSpec is what a built record carries.
type flowSpec struct {
	src, dst       netip.Addr
	sport, dport   uint16
	proto, flags   uint8
	packets, bytes uint32
	first, last    uint32 // sysUpTime ms
	inIf, outIf    uint32
	samplingLE     uint32 // written little-endian into field 34
	sysInitMs      uint64
}

// encodeRecord writes one record for fields from fs; unknown fields are
// filled with a recognisable pattern.
func encodeRecord(fields []fieldSpec, fs flowSpec) []byte {
	var out []byte
	for _, fl := range fields {
		switch fl.typ {
		case 22:
			out = be32(out, fs.first)
		case 21:
			out = be32(out, fs.last)
		case 1:
			out = be32(out, fs.bytes)
		case 2:
			out = be32(out, fs.packets)
		case 10:
			out = be32(out, fs.inIf)
		case 14:
			out = be32(out, fs.outIf)
		case 8:
			a := fs.src.As4()
			out = append(out, a[:]...)
		case 12:
			a := fs.dst.As4()
			out = append(out, a[:]...)
		case 27:
			a := fs.src.As16()
			out = append(out, a[:]...)
		case 28:
			a := fs.dst.As16()
			out = append(out, a[:]...)
		case 4:
			out = append(out, fs.proto)
		case 6:
			out = append(out, fs.flags)
		case 7:
			out = be16(out, fs.sport)
		case 11:
			out = be16(out, fs.dport)
		case 34:
			out = binary.LittleEndian.AppendUint32(out, fs.samplingLE)
		case 160:
			out = binary.BigEndian.AppendUint64(out, fs.sysInitMs)
		default:
			for i := range int(fl.length) {
				out = append(out, byte(0xa0+i))
			}
		}
	}
	return out
}

// routerOSV9DataSet returns a data set of n RouterOS-shaped IPv4 records.
func routerOSV9DataSet(id uint16, fields []fieldSpec, n int, uptime uint32) []byte {
	var body []byte
	for i := range n {
		body = append(body, encodeRecord(fields, flowSpec{
			src: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), dst: netip.AddrFrom4([4]byte{203, 0, 113, 7}),
			sport: uint16(40000 + i), dport: 53, proto: 17, flags: 0,
			packets: uint32(i + 1), bytes: uint32(100 * (i + 1)),
			first: uptime - 5000, last: uptime - 1000, inIf: 2, outIf: 3,
			samplingLE: 512, sysInitMs: 1_700_000_000_000,
		})...)
	}
	return set(id, body)
}
