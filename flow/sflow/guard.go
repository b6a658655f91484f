package sflow

import (
	"fmt"

	"github.com/flowshield/flowshield/flow"
)

// FramingError says why the guard refused a datagram and where.
type FramingError struct {
	Kind   flow.ErrorKind
	Offset int    // byte offset in the datagram of the field at fault
	Reason string // a fixed phrase, no datagram data
}

func (e *FramingError) Error() string {
	return fmt.Sprintf("sflow: %s at offset %d (%s)", e.Reason, e.Offset, e.Kind)
}

// The guard's verdicts are fixed values so that rejecting a flood of bad
// datagrams allocates nothing; Check adds the offset for callers that want it.
var (
	errShort         = &FramingError{Kind: flow.ErrTruncated, Reason: "datagram shorter than its header"}
	errVersion       = &FramingError{Kind: flow.ErrUnknownVersion, Reason: "not sFlow version 5"}
	errAgentAddr     = &FramingError{Kind: flow.ErrUnknownVersion, Reason: "unknown agent address type"}
	errManySamples   = &FramingError{Kind: flow.ErrTooManyRecords, Reason: "sample count beyond bound or bytes present"}
	errSampleTrunc   = &FramingError{Kind: flow.ErrTruncated, Reason: "sample extends past the datagram"}
	errSampleShort   = &FramingError{Kind: flow.ErrBadSample, Reason: "sample shorter than its fixed fields"}
	errManyRecords   = &FramingError{Kind: flow.ErrTooManyRecords, Reason: "record count beyond bound or bytes present"}
	errRecordTrunc   = &FramingError{Kind: flow.ErrBadSample, Reason: "record extends past its sample"}
	errRecordShort   = &FramingError{Kind: flow.ErrBadSample, Reason: "flow record shorter than its fixed fields"}
	errHeaderLenLies = &FramingError{Kind: flow.ErrBadSample, Reason: "raw header length exceeds its record"}
)

// Check validates the framing of a whole sFlow v5 datagram without decoding
// it: version, agent address type, sample and record counts against the
// configured bounds and against the bytes present, every sample and record
// length, the fixed fields of every sample and of the records Decode reads,
// and the header length inside raw header records. It returns nil or a
// *FramingError. Whatever Check accepts is safe to hand to goflow2 v2.2.6:
// no count above 1,000 and none that the bytes could not hold.
func (d *Decoder) Check(payload []byte) error {
	bad, off := d.check(payload)
	if bad == nil {
		return nil
	}
	e := *bad
	e.Offset = off
	return &e
}

// check is Check without allocation: the verdict and the offset at fault.
func (d *Decoder) check(p []byte) (*FramingError, int) {
	if len(p) < 8 {
		return errShort, 0
	}
	if be32(p) != 5 {
		return errVersion, 0
	}
	off := 8
	switch be32(p[4:]) {
	case 1:
		off += 4
	case 2:
		off += 16
	default:
		return errAgentAddr, 4
	}
	if len(p) < off+16 {
		return errShort, off
	}
	n := be32(p[off+12:])
	off += 16
	// Each sample takes at least its 8-byte header, so a count the bytes
	// cannot hold is a lie whatever the bound.
	if n > uint32(d.cfg.MaxSamplesPerDatagram) || int(n) > (len(p)-off)/8 {
		return errManySamples, off - 4
	}
	for range n {
		if len(p)-off < 8 {
			return errSampleTrunc, off
		}
		format := be32(p[off:])
		length := be32(p[off+4:])
		if uint64(length) > uint64(len(p)-off-8) {
			return errSampleTrunc, off + 4
		}
		body := p[off+8 : off+8+int(length)]
		if bad, at := d.checkSample(format, body); bad != nil {
			return bad, off + 8 + at
		}
		off += 8 + int(length)
	}
	return nil, 0
}

// checkSample validates one sample's body; the offset is within body.
func (d *Decoder) checkSample(format uint32, s []byte) (*FramingError, int) {
	if format>>12 != 0 {
		return nil, 0 // another enterprise's sample: opaque, skipped by length
	}
	var fixed int
	flowRecords := true
	switch format {
	case sampleFlow:
		fixed = flowSampleFixed
	case sampleExpandedFlow:
		fixed = expandedFlowSampleFixed
	case sampleDrop:
		fixed = dropSampleFixed
	case sampleCounter:
		fixed, flowRecords = counterSampleFixed, false
	case sampleExpandedCounter:
		fixed, flowRecords = expandedCounterFixed, false
	default:
		return nil, 0 // unknown standard format: skipped by length
	}
	if len(s) < fixed {
		return errSampleShort, 0
	}
	n := be32(s[fixed-4:])
	if n > uint32(d.cfg.MaxRecordsPerSample) || int(n) > (len(s)-fixed)/8 {
		return errManyRecords, fixed - 4
	}
	off := fixed
	for range n {
		if len(s)-off < 8 {
			return errRecordTrunc, off
		}
		rformat := be32(s[off:])
		rlen := be32(s[off+4:])
		if uint64(rlen) > uint64(len(s)-off-8) {
			return errRecordTrunc, off + 4
		}
		if flowRecords {
			r := s[off+8 : off+8+int(rlen)]
			switch rformat {
			case recordRawHeader:
				if len(r) < rawHeaderFixed {
					return errRecordShort, off + 4
				}
				if uint64(be32(r[12:])) > uint64(len(r)-rawHeaderFixed) {
					return errHeaderLenLies, off + 8 + 12
				}
			case recordSampledIPv4:
				if len(r) < sampledIPv4Len {
					return errRecordShort, off + 4
				}
			case recordSampledIPv6:
				if len(r) < sampledIPv6Len {
					return errRecordShort, off + 4
				}
			}
		}
		off += 8 + int(rlen)
	}
	return nil, 0
}
