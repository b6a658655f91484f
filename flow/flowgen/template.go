package flowgen

import (
	"encoding/binary"
	"time"
)

// Information element ids used by the templates (NetFlow v9 numbering, which
// IPFIX shares for these).
const (
	fieldInBytes          = 1
	fieldInPkts           = 2
	fieldProtocol         = 4
	fieldTOS              = 5
	fieldTCPFlags         = 6
	fieldL4SrcPort        = 7
	fieldIPv4SrcAddr      = 8
	fieldSrcMask          = 9
	fieldInputSNMP        = 10
	fieldL4DstPort        = 11
	fieldIPv4DstAddr      = 12
	fieldDstMask          = 13
	fieldOutputSNMP       = 14
	fieldIPv4NextHop      = 15
	fieldLastSwitched     = 21 // flowEndSysUpTime
	fieldFirstSwitched    = 22 // flowStartSysUpTime
	fieldIPv6SrcAddr      = 27
	fieldIPv6DstAddr      = 28
	fieldIPv6SrcMask      = 29
	fieldIPv6DstMask      = 30
	fieldIPv6FlowLabel    = 31
	fieldSamplingInterval = 34
	fieldSamplingAlgo     = 35
	fieldActiveTimeout    = 36 // v9 FLOW_ACTIVE_TIMEOUT, IPFIX flowActiveTimeout (seconds)
	fieldInactiveTimeout  = 37 // v9 FLOW_INACTIVE_TIMEOUT, IPFIX flowIdleTimeout (seconds)
	fieldIPv6NextHop      = 62
	fieldFragmentOffset   = 88
	fieldObservationDom   = 149 // IPFIX observationDomainId (options scope)
	fieldFlowStartMs      = 152 // IPFIX flowStartMilliseconds
	fieldFlowEndMs        = 153 // IPFIX flowEndMilliseconds
	fieldSystemInitMs     = 160 // IPFIX systemInitTimeMilliseconds
	fieldPostNATSrcIPv4   = 225
	fieldPostNATDstIPv4   = 226
	fieldPostNAPTSrcPort  = 227
	fieldPostNAPTDstPort  = 228

	v9ScopeSystem = 1 // NetFlow v9 options scope "System"
)

type templateField struct{ id, length uint16 }

type fieldOp uint8

const (
	opZero fieldOp = iota
	opBytes
	opPkts
	opProto
	opTCPFlags
	opSrcPort
	opDstPort
	opSrc4
	opDst4
	opSrc6
	opDst6
	opInIf
	opOutIf
	opFirst
	opLast
	opStartMs
	opEndMs
	opSysInit
	opFragOffset
	opSampling
	opMask4
	opMask6
)

var fieldOps = map[uint16]fieldOp{
	fieldInBytes: opBytes, fieldInPkts: opPkts, fieldProtocol: opProto, fieldTCPFlags: opTCPFlags,
	fieldL4SrcPort: opSrcPort, fieldL4DstPort: opDstPort,
	fieldIPv4SrcAddr: opSrc4, fieldIPv4DstAddr: opDst4, fieldIPv6SrcAddr: opSrc6, fieldIPv6DstAddr: opDst6,
	fieldInputSNMP: opInIf, fieldOutputSNMP: opOutIf,
	fieldFirstSwitched: opFirst, fieldLastSwitched: opLast,
	fieldFlowStartMs: opStartMs, fieldFlowEndMs: opEndMs, fieldSystemInitMs: opSysInit,
	fieldFragmentOffset: opFragOffset, fieldSamplingInterval: opSampling,
	fieldSrcMask: opMask4, fieldDstMask: opMask4, fieldIPv6SrcMask: opMask6, fieldIPv6DstMask: opMask6,
}

// template is one data template: its id, its fields in wire order, and
// whether it carries IPv6 addresses.
type template struct {
	id     uint16
	ipv6   bool
	fields []templateField
	ops    []fieldOp // dense code of each field id, so appendRecord's switch is a jump table
	size   int       // bytes per data record
	// counterLen is the byte width of the packets/bytes counters.
	counterLen int
	// samplingLE: field 34 is written little-endian, as RouterOS does.
	samplingLE bool
}

func newTemplate(id uint16, ipv6, samplingLE bool, fields ...templateField) *template {
	t := &template{id: id, ipv6: ipv6, fields: fields, samplingLE: samplingLE, counterLen: 8}
	for _, f := range fields {
		t.size += int(f.length)
		t.ops = append(t.ops, fieldOps[f.id]) // unknown ids are sent as zeros
		if f.id == fieldInPkts {
			t.counterLen = int(f.length)
		}
	}
	return t
}

// Generic templates: what a Cisco-like v9 exporter or a generic IPFIX probe
// sends, with flow times as sysUpTime (v9) or absolute milliseconds (IPFIX),
// a fragment offset, and the sampling rate announced in options data.
func genericV9Templates() (v4, v6 *template) {
	v4 = newTemplate(256, false, false,
		templateField{fieldIPv4SrcAddr, 4}, templateField{fieldIPv4DstAddr, 4},
		templateField{fieldL4SrcPort, 2}, templateField{fieldL4DstPort, 2},
		templateField{fieldProtocol, 1}, templateField{fieldTCPFlags, 1}, templateField{fieldTOS, 1},
		templateField{fieldInputSNMP, 2}, templateField{fieldOutputSNMP, 2},
		templateField{fieldInPkts, 4}, templateField{fieldInBytes, 4},
		templateField{fieldFirstSwitched, 4}, templateField{fieldLastSwitched, 4},
		templateField{fieldFragmentOffset, 2},
	)
	v6 = newTemplate(257, true, false,
		templateField{fieldIPv6SrcAddr, 16}, templateField{fieldIPv6DstAddr, 16},
		templateField{fieldL4SrcPort, 2}, templateField{fieldL4DstPort, 2},
		templateField{fieldProtocol, 1}, templateField{fieldTCPFlags, 1}, templateField{fieldTOS, 1},
		templateField{fieldInputSNMP, 2}, templateField{fieldOutputSNMP, 2},
		templateField{fieldInPkts, 4}, templateField{fieldInBytes, 4},
		templateField{fieldFirstSwitched, 4}, templateField{fieldLastSwitched, 4},
		templateField{fieldFragmentOffset, 2},
	)
	return v4, v6
}

func genericIPFIXTemplates() (v4, v6 *template) {
	v4 = newTemplate(256, false, false,
		templateField{fieldIPv4SrcAddr, 4}, templateField{fieldIPv4DstAddr, 4},
		templateField{fieldL4SrcPort, 2}, templateField{fieldL4DstPort, 2},
		templateField{fieldProtocol, 1}, templateField{fieldTCPFlags, 1}, templateField{fieldTOS, 1},
		templateField{fieldInputSNMP, 4}, templateField{fieldOutputSNMP, 4},
		templateField{fieldInPkts, 8}, templateField{fieldInBytes, 8},
		templateField{fieldFlowStartMs, 8}, templateField{fieldFlowEndMs, 8},
		templateField{fieldFragmentOffset, 2},
	)
	v6 = newTemplate(257, true, false,
		templateField{fieldIPv6SrcAddr, 16}, templateField{fieldIPv6DstAddr, 16},
		templateField{fieldL4SrcPort, 2}, templateField{fieldL4DstPort, 2},
		templateField{fieldProtocol, 1}, templateField{fieldTCPFlags, 1}, templateField{fieldTOS, 1},
		templateField{fieldInputSNMP, 4}, templateField{fieldOutputSNMP, 4},
		templateField{fieldInPkts, 8}, templateField{fieldInBytes, 8},
		templateField{fieldFlowStartMs, 8}, templateField{fieldFlowEndMs, 8},
		templateField{fieldFragmentOffset, 2},
	)
	return v4, v6
}

// RouterOS-shaped templates.
//
// Sources (looked up with the project's search tool; no RouterOS capture is
// in the repository, so the field ORDER is a reconstruction and collectors
// must not depend on it):
//   - help.mikrotik.com "Traffic Flow": /ip traffic-flow ipfix lists the
//     elements RouterOS exports (bytes, packets, src/dst-address and masks,
//     src/dst-port, protocol, tos, tcp-flags, in/out-interface, gateway,
//     first-forwarded/last-forwarded, sys-init-time, nat-src/dst-address and
//     ports, ipv6-flow-label, ...); v9-template-refresh defaults to 20
//     packets (template every 20 datagrams).
//   - netsampler/goflow2#113 and #130, akvorado/akvorado#417 and
//     pavel-odintsov/fastnetmon#985 (RouterOS 6.49.6 and 7.x captures):
//     RouterOS puts SAMPLING_INTERVAL (34) inside the data template, not in
//     options data, and writes it LITTLE-endian.
//   - flow times are sysUpTime milliseconds, LAST_SWITCHED (21) before
//     FIRST_SWITCHED (22) as the first two fields; RouterOS IPFIX adds
//     systemInitTimeMilliseconds (160) so a collector can make them absolute.
//   - counters are 4 bytes (a long flow's bytes can exceed 2^32 only after
//     4 GB; RouterOS exports long flows once, at their end).
//
// RouterOS has no fragment field, so Flow.Fragment does not survive these
// formats.
func routerOSV9Templates(ipfix bool) (v4, v6 *template) {
	common4 := []templateField{
		{fieldLastSwitched, 4}, {fieldFirstSwitched, 4},
		{fieldInPkts, 4}, {fieldInBytes, 4},
		{fieldInputSNMP, 4}, {fieldOutputSNMP, 4},
		{fieldIPv4NextHop, 4},
		{fieldIPv4SrcAddr, 4}, {fieldSrcMask, 1},
		{fieldIPv4DstAddr, 4}, {fieldDstMask, 1},
		{fieldProtocol, 1}, {fieldTCPFlags, 1}, {fieldTOS, 1},
		{fieldL4SrcPort, 2}, {fieldL4DstPort, 2},
		{fieldPostNATSrcIPv4, 4}, {fieldPostNATDstIPv4, 4},
		{fieldPostNAPTSrcPort, 2}, {fieldPostNAPTDstPort, 2},
		{fieldSamplingInterval, 4},
	}
	common6 := []templateField{
		{fieldLastSwitched, 4}, {fieldFirstSwitched, 4},
		{fieldInPkts, 4}, {fieldInBytes, 4},
		{fieldInputSNMP, 4}, {fieldOutputSNMP, 4},
		{fieldIPv6NextHop, 16},
		{fieldIPv6SrcAddr, 16}, {fieldIPv6SrcMask, 1},
		{fieldIPv6DstAddr, 16}, {fieldIPv6DstMask, 1},
		{fieldProtocol, 1}, {fieldTCPFlags, 1}, {fieldTOS, 1},
		{fieldL4SrcPort, 2}, {fieldL4DstPort, 2},
		{fieldIPv6FlowLabel, 4},
		{fieldSamplingInterval, 4},
	}
	if ipfix {
		common4 = append(common4, templateField{fieldSystemInitMs, 8})
		common6 = append(common6, templateField{fieldSystemInitMs, 8})
	}
	return newTemplate(256, false, true, common4...), newTemplate(257, true, true, common6...)
}

// putUint writes the low n bytes of v big-endian.
func putUint(b []byte, v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

// clampTo is v limited to what n bytes can carry (what an exporter with an
// n-byte counter would send for a huge flow is implementation-defined; the
// generator saturates and accounts the saturated value).
func clampTo(v uint64, n int) uint64 {
	if n >= 8 {
		return v
	}
	max := uint64(1)<<(8*n) - 1
	if v > max {
		return max
	}
	return v
}

// appendRecord appends one data record for f (already clamped).
func (t *template) appendRecord(dst []byte, f *Flow, c *ExporterClock, now time.Time) []byte {
	off := len(dst)
	dst = grow(dst, t.size)
	b := dst[off:]
	for i, fd := range t.fields {
		n := int(fd.length)
		v := b[:n]
		switch t.ops[i] {
		case opBytes:
			putUint(v, f.Bytes, n)
		case opPkts:
			putUint(v, f.Packets, n)
		case opProto:
			v[0] = f.Proto
		case opTCPFlags:
			v[0] = f.TCPFlags
		case opSrcPort:
			binary.BigEndian.PutUint16(v, f.SrcPort)
		case opDstPort:
			binary.BigEndian.PutUint16(v, f.DstPort)
		case opSrc4:
			a := f.Src.As4()
			copy(v, a[:])
		case opDst4:
			a := f.Dst.As4()
			copy(v, a[:])
		case opSrc6:
			a := f.Src.As16()
			copy(v, a[:])
		case opDst6:
			a := f.Dst.As16()
			copy(v, a[:])
		case opInIf:
			putUint(v, uint64(f.InIf), n)
		case opOutIf:
			putUint(v, uint64(f.OutIf), n)
		case opFirst:
			putUint(v, uint64(c.flowUptimeMs(f.Start)), n)
		case opLast:
			putUint(v, uint64(c.flowUptimeMs(f.End)), n)
		case opStartMs:
			putUint(v, uint64(f.Start.Add(c.UnixOffset).UnixMilli()), n)
		case opEndMs:
			putUint(v, uint64(f.End.Add(c.UnixOffset).UnixMilli()), n)
		case opSysInit:
			putUint(v, c.systemInitMs(now), n)
		case opFragOffset:
			if f.Fragment {
				putUint(v, 185, n) // a non-first fragment: 1480 bytes in, in 8-byte units
			} else {
				clear(v)
			}
		case opSampling:
			if t.samplingLE {
				binary.LittleEndian.PutUint32(v, f.SamplingRate)
			} else {
				putUint(v, uint64(f.SamplingRate), n)
			}
		case opMask4:
			if f.Src.Is4() {
				v[0] = 24
			} else {
				v[0] = 0
			}
		case opMask6:
			v[0] = 48
		default: // next hop, TOS, NAT fields, flow label: zero
			clear(v)
		}
		b = b[n:]
	}
	return dst
}

// grow extends dst by n bytes (contents unspecified), reusing capacity.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst[:len(dst)+n]
	}
	return append(dst, make([]byte, n)...)
}
