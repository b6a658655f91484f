package netflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowshield/flowshield/flow"
)

const (
	v5HeaderLen    = 24
	v5RecordLen    = 48
	v9HeaderLen    = 20
	ipfixHeaderLen = 16
)

// header is what the data path needs from a v9/IPFIX message header.
type header struct {
	key       scopeKey
	exported  int64  // Unix ns
	sysUptime uint32 // v9 only, ms
}

func (d *Decoder) decodeV9(dg *flow.Datagram, rec *flow.Record, sink flow.Sink) {
	p := dg.Payload
	if len(p) < v9HeaderLen {
		sink.DecodeError(flow.ErrTruncated)
		return
	}
	h := header{
		key:       scopeKey{addr: dg.Exporter, version: 9, domain: binary.BigEndian.Uint32(p[16:])},
		sysUptime: binary.BigEndian.Uint32(p[4:]),
		exported:  int64(binary.BigEndian.Uint32(p[8:])) * 1e9,
	}
	d.decodeSets(dg, &h, p[v9HeaderLen:], 0, 1, rec, sink)
}

func (d *Decoder) decodeIPFIX(dg *flow.Datagram, rec *flow.Record, sink flow.Sink) {
	p := dg.Payload
	if len(p) < ipfixHeaderLen {
		sink.DecodeError(flow.ErrTruncated)
		return
	}
	l := int(binary.BigEndian.Uint16(p[2:]))
	if l < ipfixHeaderLen || l > len(p) {
		sink.DecodeError(flow.ErrBadLength)
		return
	}
	h := header{
		key:      scopeKey{addr: dg.Exporter, version: 10, domain: binary.BigEndian.Uint32(p[12:])},
		exported: int64(binary.BigEndian.Uint32(p[4:])) * 1e9,
	}
	d.decodeSets(dg, &h, p[ipfixHeaderLen:l], 2, 3, rec, sink)
}

// decodeSets walks the sets of a v9/IPFIX message in order, so a template
// set ahead of its data in the same datagram is installed first.
func (d *Decoder) decodeSets(dg *flow.Datagram, h *header, p []byte, tmplID, optsID uint16, rec *flow.Record, sink flow.Sink) {
	d.tick(dg.Received)
	var sc *scope // looked up once per datagram, after any template set
	looked := false
	for len(p) >= 4 {
		id := binary.BigEndian.Uint16(p)
		l := int(binary.BigEndian.Uint16(p[2:]))
		if l < 4 || l > len(p) {
			if id == 0 && l == 0 && allZero(p) {
				return // trailing padding
			}
			sink.DecodeError(flow.ErrBadLength)
			return
		}
		body := p[4:l]
		p = p[l:]
		switch {
		case id == tmplID:
			d.parseTemplateSet(h.key, body, false, dg.Received, sink)
			looked = false
		case id == optsID:
			d.parseTemplateSet(h.key, body, true, dg.Received, sink)
			looked = false
		case id >= 256:
			if !looked {
				sc, looked = d.lookupScope(h.key), true
				if sc != nil {
					sc.touch(dg.Received, true)
				}
			}
			var t *template
			if sc != nil {
				t = (*sc.templates.Load())[id]
			}
			if t == nil {
				sink.DecodeError(flow.ErrNoTemplate)
				continue
			}
			if t.options {
				d.decodeOptionsData(sc, t, body, dg.Received, sink)
				continue
			}
			decodeData(dg, h, sc, t, body, rec, sink, d.genericOnly)
		default:
			sink.DecodeError(flow.ErrUnsupported)
		}
	}
	if len(p) > 0 && !allZero(p) {
		sink.DecodeError(flow.ErrTruncated)
	}
}

// beUint reads a big-endian unsigned number of 1 to 8 bytes.
func beUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	case 8:
		return binary.BigEndian.Uint64(b)
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// recTimes collects a record's time fields until all are read.
type recTimes struct {
	first, last       uint64
	hasFirst, hasLast bool
	sysInitMs         uint64
	start, end        int64 // absolute, 0 when absent
	samplerID         uint64
	hasSampler        bool
	rate34            uint64 // as read; checked against flow.MaxSamplingRate in finish
	frameSize         uint64
	frame             []byte
}

// decodeData decodes one data set with a flow template.
// genericOnly skips the fast plan (the reference, for tests).
func decodeData(dg *flow.Datagram, h *header, sc *scope, t *template, body []byte, rec *flow.Record, sink flow.Sink, genericOnly bool) {
	base := flow.Record{
		Exporter:          dg.Exporter,
		Received:          dg.Received,
		Exported:          h.exported,
		Start:             h.exported,
		End:               h.exported,
		SamplingRate:      sc.samplingRate.Load(),
		ObservationDomain: h.key.domain,
		Format:            flow.FormatNetFlowV9,
	}
	if h.key.version == 10 {
		base.Format = flow.FormatIPFIX
	}
	var samplers map[uint64]uint32
	if t.sampler {
		samplers = *sc.samplers.Load()
	}
	if t.fast != nil && !genericOnly {
		body = decodeFast(h, sc, t, t.fast, &base, body, rec, sink, samplers)
		if len(body) > 0 && !allZero(body) && len(body) > 3 {
			sink.DecodeError(flow.ErrBadLength)
		}
		return
	}
	if t.fixed {
		n := t.minLen
		for len(body) >= n {
			*rec = base
			var rt recTimes
			applyOps(body[:n], t.ops, rec, &rt)
			body = body[n:]
			finish(h, sc, t, rec, &rt, samplers, sink)
			sink.Record(rec)
		}
		if len(body) > 0 && !allZero(body) && len(body) > 3 {
			sink.DecodeError(flow.ErrBadLength)
		}
		return
	}
	// Variable-length fields: offsets move per record.
	for len(body) >= t.minLen {
		*rec = base
		var rt recTimes
		off := 0
		ok := true
		for _, op := range t.allKinds {
			n := int(op.n)
			if op.n == varLen {
				if off >= len(body) {
					ok = false
					break
				}
				n = int(body[off])
				off++
				if n == 255 {
					if off+2 > len(body) {
						ok = false
						break
					}
					n = int(binary.BigEndian.Uint16(body[off:]))
					off += 2
				}
			}
			if off+n > len(body) {
				ok = false
				break
			}
			if op.kind != opSkip {
				applyOne(op.kind, body[off:off+n], rec, &rt)
			}
			off += n
		}
		if !ok {
			if !allZero(body) {
				sink.DecodeError(flow.ErrBadLength)
			}
			return
		}
		body = body[off:]
		finish(h, sc, t, rec, &rt, samplers, sink)
		sink.Record(rec)
	}
	if len(body) > 3 && !allZero(body) {
		sink.DecodeError(flow.ErrBadLength)
	}
}

// applyOps runs a fixed template's steps over one record. The common
// fields are set here, in line; the rest go through applyOne.
func applyOps(b []byte, ops []fieldOp, rec *flow.Record, rt *recTimes) {
	for _, op := range ops {
		v := b[op.off : op.off+op.n]
		switch op.kind {
		case opSrc4:
			if a := netip.AddrFrom4([4]byte(v)); !a.IsUnspecified() || !rec.SrcAddr.IsValid() {
				rec.SrcAddr = a
			}
		case opDst4:
			if a := netip.AddrFrom4([4]byte(v)); !a.IsUnspecified() || !rec.DstAddr.IsValid() {
				rec.DstAddr = a
			}
		case opSrcPort:
			rec.SrcPort = uint16(beUint(v))
		case opDstPort:
			rec.DstPort = uint16(beUint(v))
		case opProto:
			rec.Proto = uint8(beUint(v))
		case opTCPFlags:
			rec.TCPFlags = uint8(beUint(v))
		case opBytes:
			rec.Bytes = beUint(v)
		case opPackets:
			rec.Packets = beUint(v)
		case opInIf:
			rec.InIf = uint32(beUint(v))
		case opOutIf:
			rec.OutIf = uint32(beUint(v))
		case opFirstUptime:
			rt.first, rt.hasFirst = beUint(v), true
		case opLastUptime:
			rt.last, rt.hasLast = beUint(v), true
		default:
			applyOne(op.kind, v, rec, rt)
		}
	}
}

func applyOne(k opKind, v []byte, rec *flow.Record, rt *recTimes) {
	switch k {
	case opSrc4:
		if a := netip.AddrFrom4([4]byte(v)); !a.IsUnspecified() || !rec.SrcAddr.IsValid() {
			rec.SrcAddr = a
		}
	case opDst4:
		if a := netip.AddrFrom4([4]byte(v)); !a.IsUnspecified() || !rec.DstAddr.IsValid() {
			rec.DstAddr = a
		}
	case opSrc6:
		if a := netip.AddrFrom16([16]byte(v)); !a.IsUnspecified() || !rec.SrcAddr.IsValid() {
			rec.SrcAddr = a
		}
	case opDst6:
		if a := netip.AddrFrom16([16]byte(v)); !a.IsUnspecified() || !rec.DstAddr.IsValid() {
			rec.DstAddr = a
		}
	case opSrcPort:
		rec.SrcPort = uint16(beUint(v))
	case opDstPort:
		rec.DstPort = uint16(beUint(v))
	case opProto:
		rec.Proto = uint8(beUint(v))
	case opTCPFlags:
		rec.TCPFlags = uint8(beUint(v))
	case opBytes:
		rec.Bytes = beUint(v)
	case opPackets:
		rec.Packets = beUint(v)
	case opInIf:
		rec.InIf = uint32(beUint(v))
	case opOutIf:
		rec.OutIf = uint32(beUint(v))
	case opFragOffset:
		if beUint(v)&0x1fff != 0 {
			rec.Fragment = true
		}
	case opFragFlags:
		if beUint(v)&0x20 != 0 {
			rec.Fragment = true
		}
	case opFirstUptime:
		rt.first, rt.hasFirst = beUint(v), true
	case opLastUptime:
		rt.last, rt.hasLast = beUint(v), true
	case opStartSec:
		rt.start = int64(beUint(v)) * 1e9
	case opEndSec:
		rt.end = int64(beUint(v)) * 1e9
	case opStartMs:
		rt.start = int64(beUint(v)) * 1e6
	case opEndMs:
		rt.end = int64(beUint(v)) * 1e6
	case opStartNTP:
		rt.start = ntpToUnixNano(binary.BigEndian.Uint64(v))
	case opEndNTP:
		rt.end = ntpToUnixNano(binary.BigEndian.Uint64(v))
	case opStartDeltaUs:
		rt.start = -1 - int64(beUint(v)) // resolved in finish; negative marks delta
	case opEndDeltaUs:
		rt.end = -1 - int64(beUint(v))
	case opSysInitMs:
		rt.sysInitMs = beUint(v)
	case opSamplerID:
		rt.samplerID, rt.hasSampler = beUint(v), true
	case opSamplingInData:
		rt.rate34 = routerOSSamplingRate(v)
	case opFrameSize:
		rt.frameSize = beUint(v)
	case opFrameSection:
		rt.frame = v
	}
}

// routerOSSamplingRate reads field 34 found inside a data record. RouterOS
// writes it little-endian (4 bytes); everyone else big-endian. Sampling
// intervals are small numbers, so the rule is: when the big-endian reading
// is 65536 or more and the little-endian reading is below 65536, the value
// is little-endian. A genuine big-endian rate of 65536 or more with its low
// 16 bits zero would be misread; no exporter samples that sparsely. The
// value is returned as read, whatever its size: finish refuses one above
// flow.MaxSamplingRate.
func routerOSSamplingRate(v []byte) uint64 {
	be := beUint(v)
	if len(v) > 2 && be >= 1<<16 {
		var le uint64
		for i := len(v) - 1; i >= 0; i-- {
			le = le<<8 | uint64(v[i])
		}
		if le < 1<<16 {
			return le
		}
	}
	return be
}

// setRecordRate gives rec the rate a data record carried (RouterOS field
// 34, checked against flow.MaxSamplingRate) and makes it the scope's, for
// the records that carry none.
func setRecordRate(sc *scope, rec *flow.Record, rate uint32) {
	rec.SamplingRate = rate
	if sc.samplingRate.Load() != rate {
		sc.samplingRate.Store(rate)
	}
}

// ntpToUnixNano converts a 64-bit NTP timestamp to Unix nanoseconds.
func ntpToUnixNano(v uint64) int64 {
	sec := int64(v>>32) - 2208988800
	frac := (v & 0xffffffff) * 1e9 >> 32
	return sec*1e9 + int64(frac)
}

// finish resolves times, sampling and sampled frames once all fields of a
// record are read. A field 34 above flow.MaxSamplingRate is reported to
// sink and ignored: the record keeps the scope's rate.
func finish(h *header, sc *scope, t *template, rec *flow.Record, rt *recTimes, samplers map[uint64]uint32, sink flow.Sink) {
	if t.hasTimes {
		if h.key.version == 9 {
			// sysUpTime ms: the signed 32-bit difference handles wrap and skew.
			if rt.hasFirst {
				rec.Start = h.exported - int64(int32(h.sysUptime-uint32(rt.first)))*1e6
			}
			if rt.hasLast {
				rec.End = h.exported - int64(int32(h.sysUptime-uint32(rt.last)))*1e6
			}
		} else if rt.hasFirst || rt.hasLast {
			initMs := rt.sysInitMs
			if initMs == 0 {
				initMs = sc.sysInitMs.Load()
			}
			if initMs != 0 {
				if rt.hasFirst {
					rec.Start = int64(initMs+rt.first) * 1e6
				}
				if rt.hasLast {
					rec.End = int64(initMs+rt.last) * 1e6
				}
			}
		}
		switch {
		case rt.start > 0:
			rec.Start = rt.start
		case rt.start < 0:
			rec.Start = h.exported - (-1-rt.start)*1e3
		}
		switch {
		case rt.end > 0:
			rec.End = rt.end
		case rt.end < 0:
			rec.End = h.exported - (-1-rt.end)*1e3
		}
	}
	if t.rate34 && rt.rate34 != 0 {
		if rt.rate34 <= flow.MaxSamplingRate {
			setRecordRate(sc, rec, uint32(rt.rate34))
		} else {
			sink.DecodeError(flow.ErrBadSamplingRate)
		}
	} else if rt.hasSampler {
		if r, ok := samplers[rt.samplerID]; ok && r != 0 {
			rec.SamplingRate = r
		}
	}
	if t.hasFrame {
		rec.Packets = 1
		rec.Bytes = rt.frameSize
		if rt.frame != nil {
			if rec.Bytes == 0 {
				rec.Bytes = uint64(len(rt.frame))
			}
			parseFrame(rt.frame, rec)
		}
	}
}

// decodeOptionsData reads sampling state, systemInitTimeMilliseconds and
// the reporting timers from an options data set received at received
// (Unix ns).
func (d *Decoder) decodeOptionsData(sc *scope, t *template, body []byte, received int64, sink flow.Sink) {
	for len(body) >= t.minLen {
		var id uint64
		var hasID bool
		var r34, r50, pi, ps, initMs, active, inactive uint64
		off := 0
		ops := t.ops
		if !t.fixed {
			ops = t.allKinds
		}
		ok := true
		for _, op := range ops {
			n := int(op.n)
			if t.fixed {
				off = int(op.off)
			} else if op.n == varLen {
				if off >= len(body) {
					ok = false
					break
				}
				n = int(body[off])
				off++
				if n == 255 {
					if off+2 > len(body) {
						ok = false
						break
					}
					n = int(binary.BigEndian.Uint16(body[off:]))
					off += 2
				}
			}
			if off+n > len(body) {
				ok = false
				break
			}
			v := body[off : off+n]
			if !t.fixed {
				off += n
			}
			switch op.kind {
			case opSamplerID:
				id, hasID = beUint(v), true
			case opOptRate34:
				r34 = beUint(v)
			case opOptRate50:
				r50 = beUint(v)
			case opOptPktInterval:
				pi = beUint(v)
			case opOptPktSpace:
				ps = beUint(v)
			case opSysInitMs:
				initMs = beUint(v)
			case opOptActiveTimeout:
				active = beUint(v)
			case opOptInactiveTimeout:
				inactive = beUint(v)
			}
		}
		if !ok {
			if !allZero(body) {
				sink.DecodeError(flow.ErrBadLength)
			}
			return
		}
		if t.fixed {
			off = t.minLen
		}
		body = body[off:]
		var rate uint64
		switch {
		case r34 != 0:
			rate = r34
		case r50 != 0:
			rate = r50
		case pi != 0:
			// (pi+ps)/pi, saturated above the bound rather than overflowed
			rate = min(ps/pi, flow.MaxSamplingRate) + 1
		}
		switch {
		case rate > flow.MaxSamplingRate:
			// Not believed: the scope keeps the rate it had.
			sink.DecodeError(flow.ErrBadSamplingRate)
		case rate != 0:
			if hasID {
				sc.setSampler(id, uint32(rate), d.cfg.MaxSamplersPerExporter)
			}
			if sc.samplingRate.Load() != uint32(rate) {
				sc.samplingRate.Store(uint32(rate))
			}
		}
		if initMs != 0 && sc.sysInitMs.Load() != initMs {
			sc.sysInitMs.Store(initMs)
		}
		// Timers out of range are ignored (the previous ones stay): an
		// unconfigured 0 or a misread, neither worth a decode error.
		announced := false
		if v, ok := timeoutSec(active); ok {
			if sc.activeTimeout.Load() != v {
				sc.activeTimeout.Store(v)
			}
			announced = true
		}
		if v, ok := timeoutSec(inactive); ok {
			if sc.inactiveTimeout.Load() != v {
				sc.inactiveTimeout.Store(v)
			}
			announced = true
		}
		if announced && sc.timeoutsAt.Load() != received {
			sc.timeoutsAt.Store(received)
		}
	}
	if len(body) > 3 && !allZero(body) {
		sink.DecodeError(flow.ErrBadLength)
	}
}
