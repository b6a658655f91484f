package netflow

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/flowshield/flowshield/flow"
)

// The fast path. A fixed-length flow template is compiled, besides its
// generic ops, into a fastPlan: where each common field sits and how wide it
// is, resolved once. Decoding a record is then straight-line code: one
// 8-byte load, a shift and a mask per unsigned field (an absent field reads
// 0), no per-field switch, and the common finish (v9 sysUpTime times, IPFIX
// times from systemInitTimeMilliseconds, RouterOS field 34) inline. What
// the plan does not cover stays a short list of generic ops (rest), run
// after the plan's fields.
//
// Equality with the generic path (decodeData's other loops, kept as the
// reference) holds by construction: a field goes into the plan only when
// exactly one op of the template writes its target (a record field or a
// recTimes field), so the order of writes cannot matter; every other op
// keeps its template order in rest. The fragment flag, which two kinds of
// op may set, is only ever set, never cleared, on both paths; finish's
// sampled-frame step runs last on both. Each record starts from a full copy
// of the base record: a Sink may modify the record it is given (the
// collector fills in SamplingRate), so no field can be assumed unchanged.
// TestFastPathMatchesGenericOn* and FuzzFastPath* check all this.

// fastMinRecord is the shortest record the plan decodes: every load reads
// 8 bytes inside the record.
const fastMinRecord = 8

// uintAt reads an unsigned big-endian field of 1 to 8 bytes as
// Uint64(r[lo:lo+8]) >> shr & mask: one load, one shift, one and. lo is
// the field's offset, or the record's last 8 bytes when the field ends
// within them; mask keeps the field's n bytes, and is 0 for an absent
// field, which then reads 0 (the base record's value).
type uintAt struct {
	mask uint64
	lo   uint16
	shr  uint8
}

var absentUint = uintAt{}

func newUintAt(op fieldOp, recLen int) uintAt {
	off, n := int(op.off), int(op.n)
	lo := off
	if off+8 > recLen {
		lo = recLen - 8
	}
	return uintAt{lo: uint16(lo), shr: uint8(8 * (lo + 8 - off - n)), mask: ^uint64(0) >> (64 - 8*n)}
}

func (u uintAt) read(r []byte) uint64 {
	lo := int(u.lo)
	return binary.BigEndian.Uint64(r[lo:lo+8:lo+8]) >> (u.shr & 63) & u.mask
}

// addrAt is an address field: 4 or 16 bytes at off, len 0 when absent.
type addrAt struct {
	off uint16
	len uint8
}

// addr16 is out of line so that decodeFast keeps the IPv4 case inline.
func (a addrAt) addr16(r []byte) netip.Addr {
	off := int(a.off)
	return netip.AddrFrom16([16]byte(r[off : off+16 : off+16]))
}

// fastPlan is a fixed-length flow template's specialised decoder.
type fastPlan struct {
	srcAddr, dstAddr                  addrAt
	srcPort, dstPort, proto, tcpFlags uintAt
	packets, bytes, inIf, outIf       uintAt
	fragOffset, fragFlags             uintAt
	first, last, sysInitMs            uintAt
	start, end                        uintAt // absolute or delta times, as startKind/endKind say
	rate34, samplerID                 uintAt
	startKind, endKind                opKind // opSkip when absent
	rate34Len                         uint8
	hasFirst, hasLast                 bool
	hasRate34, hasSampler             bool
	// timesOrFragment: the plan has start, end or fragment fields, which
	// RouterOS does not send; one branch skips them all.
	timesOrFragment bool
	// rest are the template's other ops, in template order.
	rest []fieldOp
	// restTimes: some op of rest feeds recTimes (a sampled frame, a
	// duplicated time or rate), so the record is finished by the generic
	// finish.
	restTimes bool
}

// fastTarget names what an op writes, for the one-writer rule; -1 for ops
// the plan does not take.
func fastTarget(k opKind) int {
	switch k {
	case opSrc4, opSrc6:
		return 0
	case opDst4, opDst6:
		return 1
	case opSrcPort:
		return 2
	case opDstPort:
		return 3
	case opProto:
		return 4
	case opTCPFlags:
		return 5
	case opBytes:
		return 6
	case opPackets:
		return 7
	case opInIf:
		return 8
	case opOutIf:
		return 9
	case opFirstUptime:
		return 10
	case opLastUptime:
		return 11
	case opSysInitMs:
		return 12
	case opSamplingInData:
		return 13
	case opStartSec, opStartMs, opStartNTP, opStartDeltaUs:
		return 14
	case opEndSec, opEndMs, opEndNTP, opEndDeltaUs:
		return 15
	case opSamplerID:
		return 16
	case opFragOffset:
		return 17
	case opFragFlags:
		return 18
	}
	return -1
}

const numFastTargets = 19

// touchesTimes is true for ops whose effect goes through recTimes.
func touchesTimes(k opKind) bool {
	switch k {
	case opFirstUptime, opLastUptime, opStartSec, opEndSec, opStartMs, opEndMs,
		opStartNTP, opEndNTP, opStartDeltaUs, opEndDeltaUs, opSysInitMs,
		opSamplerID, opSamplingInData, opFrameSize, opFrameSection:
		return true
	}
	return false
}

// newFastPlan builds the plan for a compiled fixed-length flow template,
// or returns nil when the template is not one (the generic path decodes it).
func newFastPlan(t *template) *fastPlan {
	if !t.fixed || t.options || t.minLen < fastMinRecord {
		return nil
	}
	var writers [numFastTargets]int
	for _, op := range t.ops {
		if tg := fastTarget(op.kind); tg >= 0 {
			writers[tg]++
		}
	}
	p := &fastPlan{}
	for _, op := range t.ops {
		tg := fastTarget(op.kind)
		if tg < 0 || writers[tg] != 1 {
			p.rest = append(p.rest, op)
			if touchesTimes(op.kind) {
				p.restTimes = true
			}
			continue
		}
		if op.kind == opSrc4 || op.kind == opSrc6 {
			p.srcAddr = addrAt{off: op.off, len: uint8(op.n)}
			continue
		}
		if op.kind == opDst4 || op.kind == opDst6 {
			p.dstAddr = addrAt{off: op.off, len: uint8(op.n)}
			continue
		}
		u := newUintAt(op, t.minLen) // every other plan kind is 1 to 8 bytes (dataKind)
		switch op.kind {
		case opSrcPort:
			p.srcPort = u
		case opDstPort:
			p.dstPort = u
		case opProto:
			p.proto = u
		case opTCPFlags:
			p.tcpFlags = u
		case opBytes:
			p.bytes = u
		case opPackets:
			p.packets = u
		case opInIf:
			p.inIf = u
		case opOutIf:
			p.outIf = u
		case opFragOffset:
			p.fragOffset = u
		case opFragFlags:
			p.fragFlags = u
		case opFirstUptime:
			p.first, p.hasFirst = u, true
		case opLastUptime:
			p.last, p.hasLast = u, true
		case opSysInitMs:
			p.sysInitMs = u
		case opSamplingInData:
			p.rate34, p.hasRate34, p.rate34Len = u, true, uint8(op.n)
		case opSamplerID:
			p.samplerID, p.hasSampler = u, true
		case opStartSec, opStartMs, opStartNTP, opStartDeltaUs:
			p.start, p.startKind = u, op.kind
		case opEndSec, opEndMs, opEndNTP, opEndDeltaUs:
			p.end, p.endKind = u, op.kind
		}
	}
	p.timesOrFragment = p.startKind != opSkip || p.endKind != opSkip || p.fragOffset != absentUint || p.fragFlags != absentUint
	return p
}

// samplingRateFromBE is routerOSSamplingRate for a field of n bytes already
// read big-endian as be.
func samplingRateFromBE(be uint64, n uint8) uint64 {
	if n > 2 && be >= 1<<16 {
		if le := bits.ReverseBytes64(be) >> ((64 - 8*uint(n)) & 63); le < 1<<16 {
			return le
		}
	}
	return be
}

// flowTime is what applyOne leaves in recTimes.start/end for a time field
// of kind k read as v: absolute Unix ns, or -1-µs before export for a delta.
func flowTime(k opKind, v uint64) int64 {
	switch k {
	case opStartSec, opEndSec:
		return int64(v) * 1e9
	case opStartMs, opEndMs:
		return int64(v) * 1e6
	case opStartNTP, opEndNTP:
		return ntpToUnixNano(v)
	case opStartDeltaUs, opEndDeltaUs:
		return -1 - int64(v)
	}
	return 0
}

// resolveTime is finish's reading of a recTimes.start/end value t: kept
// when 0.
func resolveTime(cur, t, exported int64) int64 {
	switch {
	case t > 0:
		return t
	case t < 0:
		return exported - (-1-t)*1e3
	}
	return cur
}

// timesAndFragment sets the fragment flag and returns the absolute or
// delta times as recTimes would hold them. Out of line: RouterOS has none.
func (p *fastPlan) timesAndFragment(r []byte, rec *flow.Record) (start, end int64) {
	// The generic ops only ever set Fragment, never clear it.
	if p.fragOffset.read(r)&0x1fff != 0 || p.fragFlags.read(r)&0x20 != 0 {
		rec.Fragment = true
	}
	if p.startKind != opSkip {
		start = flowTime(p.startKind, p.start.read(r))
	}
	if p.endKind != opSkip {
		end = flowTime(p.endKind, p.end.read(r))
	}
	return start, end
}

// finishGeneric runs the rest ops and the generic finish, with recTimes
// filled from the plan's fields as the generic ops would have filled it.
func (p *fastPlan) finishGeneric(h *header, sc *scope, t *template, r []byte, rec *flow.Record, first, last uint64, start, end int64, rate34 uint64, samplers map[uint64]uint32, sink flow.Sink) {
	rt := recTimes{
		first: first, last: last, hasFirst: p.hasFirst, hasLast: p.hasLast,
		sysInitMs: p.sysInitMs.read(r), start: start, end: end, rate34: rate34,
		samplerID: p.samplerID.read(r), hasSampler: p.hasSampler,
	}
	applyOps(r, p.rest, rec, &rt)
	finish(h, sc, t, rec, &rt, samplers, sink)
}

// applyRecordOps runs rest ops that set record fields only (a duplicated
// address, port, ...): recTimes is not read afterwards.
func applyRecordOps(r []byte, ops []fieldOp, rec *flow.Record) {
	var rt recTimes
	applyOps(r, ops, rec, &rt)
}

// decodeFast decodes the records of a data set with t's plan; the caller
// reports trailing bytes. It leaves what decodeData's generic fixed-length
// loop would leave, record for record.
func decodeFast(h *header, sc *scope, t *template, p *fastPlan, base *flow.Record, body []byte, rec *flow.Record, sink flow.Sink, samplers map[uint64]uint32) []byte {
	n := t.minLen
	v9 := h.key.version == 9
	for len(body) >= n {
		r := body[:n:n]
		body = body[n:]
		*rec = *base
		// With one op per address the generic path's "first non-unspecified
		// wins" always takes it: the base record has none.
		if a, off := p.srcAddr, int(p.srcAddr.off); a.len == 4 {
			rec.SrcAddr = netip.AddrFrom4([4]byte(r[off : off+4 : off+4]))
		} else if a.len == 16 {
			rec.SrcAddr = a.addr16(r)
		}
		if a, off := p.dstAddr, int(p.dstAddr.off); a.len == 4 {
			rec.DstAddr = netip.AddrFrom4([4]byte(r[off : off+4 : off+4]))
		} else if a.len == 16 {
			rec.DstAddr = a.addr16(r)
		}
		rec.SrcPort = uint16(p.srcPort.read(r))
		rec.DstPort = uint16(p.dstPort.read(r))
		rec.Proto = uint8(p.proto.read(r))
		rec.TCPFlags = uint8(p.tcpFlags.read(r))
		rec.Packets = p.packets.read(r)
		rec.Bytes = p.bytes.read(r)
		rec.InIf = uint32(p.inIf.read(r))
		rec.OutIf = uint32(p.outIf.read(r))
		first, last := p.first.read(r), p.last.read(r)
		var rate34 uint64
		if p.hasRate34 {
			rate34 = samplingRateFromBE(p.rate34.read(r), p.rate34Len)
		}
		var start, end int64
		if p.timesOrFragment {
			start, end = p.timesAndFragment(r, rec)
		}
		if p.restTimes {
			p.finishGeneric(h, sc, t, r, rec, first, last, start, end, rate34, samplers, sink)
			sink.Record(rec)
			continue
		}
		if p.rest != nil {
			applyRecordOps(r, p.rest, rec)
		}
		// finish, for what the plan can hold.
		if v9 {
			if p.hasFirst {
				rec.Start = h.exported - int64(int32(h.sysUptime-uint32(first)))*1e6
			}
			if p.hasLast {
				rec.End = h.exported - int64(int32(h.sysUptime-uint32(last)))*1e6
			}
		} else if p.hasFirst || p.hasLast {
			initMs := p.sysInitMs.read(r)
			if initMs == 0 {
				initMs = sc.sysInitMs.Load()
			}
			if initMs != 0 {
				if p.hasFirst {
					rec.Start = int64(initMs+first) * 1e6
				}
				if p.hasLast {
					rec.End = int64(initMs+last) * 1e6
				}
			}
		}
		if start != 0 {
			rec.Start = resolveTime(rec.Start, start, h.exported)
		}
		if end != 0 {
			rec.End = resolveTime(rec.End, end, h.exported)
		}
		if rate34 != 0 {
			if rate34 <= flow.MaxSamplingRate {
				setRecordRate(sc, rec, uint32(rate34))
			} else {
				sink.DecodeError(flow.ErrBadSamplingRate)
			}
		} else if p.hasSampler {
			if rate, ok := samplers[p.samplerID.read(r)]; ok && rate != 0 {
				rec.SamplingRate = rate
			}
		}
		sink.Record(rec)
	}
	return body
}
