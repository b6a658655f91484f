package netflow

import (
	"bytes"
	"encoding/binary"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/flowshield/flowshield/flow"
)

// scopeKey names where a template id is valid: the exporter's address (not
// its port), the protocol version and the observation domain / source id.
type scopeKey struct {
	addr    netip.Addr
	domain  uint32
	version uint16
}

// scope holds one exporter scope's templates and sampling state. Readers
// load the atomic pointers; writers replace the maps, holding the
// decoder's mu for templates and the scope's mu for samplers.
type scope struct {
	key scopeKey
	seq uint64 // creation order
	// heard and used are when a datagram for the scope, and one with data
	// for its templates, last arrived (Unix ns, touchEvery steps): the
	// eviction order and idle expiry (state.go).
	heard, used atomic.Int64
	// Under the decoder's mu: the templates' cost, and whether the scope
	// was dropped (a goroutine may still hold it).
	bytes   int64
	evicted bool

	mu           sync.Mutex
	templates    atomic.Pointer[map[uint16]*template]
	samplers     atomic.Pointer[map[uint64]uint32] // sampler/selector id -> rate
	samplingRate atomic.Uint32                     // from options data, 0 unknown
	sysInitMs    atomic.Uint64                     // IPFIX systemInitTimeMilliseconds from options data
	lastTemplate atomic.Int64
	// Reporting timers from options data (36/37), seconds, 0 unknown, and
	// when an options record last announced one (Unix ns).
	activeTimeout   atomic.Uint32
	inactiveTimeout atomic.Uint32
	timeoutsAt      atomic.Int64
}

func newScope(k scopeKey, seq uint64) *scope {
	s := &scope{key: k, seq: seq}
	t := map[uint16]*template{}
	s.templates.Store(&t)
	sm := map[uint64]uint32{}
	s.samplers.Store(&sm)
	return s
}

// TemplateField is one field specifier of a template as exported.
type TemplateField struct {
	Type       uint16 `json:"type"` // without the IPFIX enterprise bit
	Length     uint16 `json:"length"`
	Enterprise uint32 `json:"enterprise,omitempty"` // IPFIX private enterprise number, 0 for IANA
}

// SavedTemplate is a template in serialisable form, for persistence across
// restarts (routers re-send templates only every few minutes).
type SavedTemplate struct {
	Exporter          netip.Addr      `json:"exporter"`
	ObservationDomain uint32          `json:"observation_domain"`
	Version           uint16          `json:"version"`
	TemplateID        uint16          `json:"template_id"`
	Options           bool            `json:"options"`
	ScopeFields       uint16          `json:"scope_fields,omitempty"` // options templates: how many leading fields are scope fields
	Fields            []TemplateField `json:"fields"`
	Received          int64           `json:"received"` // Unix ns the template was last received
	// Sampling state of the scope, repeated on each of its templates so one
	// list restores everything.
	SamplingRate uint32            `json:"sampling_rate,omitempty"`
	Samplers     map[uint64]uint32 `json:"samplers,omitempty"`
	SysInitMs    uint64            `json:"sys_init_ms,omitempty"`
	// Reporting timers of the scope in seconds (options data 36/37), 0 when
	// not announced; absent from snapshots taken before they were kept.
	// When they were announced is not saved, so that an unchanged scope
	// snapshots to unchanged values.
	ActiveTimeoutSec   uint32 `json:"active_timeout_s,omitempty"`
	InactiveTimeoutSec uint32 `json:"inactive_timeout_s,omitempty"`
}

// opKind says what a template field sets in the record.
type opKind uint8

const (
	opSkip opKind = iota
	opSrc4
	opDst4
	opSrc6
	opDst6
	opSrcPort
	opDstPort
	opProto
	opTCPFlags
	opBytes
	opPackets
	opInIf
	opOutIf
	opFragOffset
	opFragFlags
	opFirstUptime // 22
	opLastUptime  // 21
	opStartSec
	opEndSec
	opStartMs
	opEndMs
	opStartNTP // micro- and nanosecond NTP timestamps
	opEndNTP
	opStartDeltaUs
	opEndDeltaUs
	opSysInitMs
	opSamplingInData // 34 inside data records (RouterOS)
	opSamplerID      // 48/302
	opFrameSize      // 312
	opFrameSection   // 315
	// options data only
	opOptRate34
	opOptRate50
	opOptPktInterval
	opOptPktSpace
	opOptActiveTimeout   // 36 flowActiveTimeout / FLOW_ACTIVE_TIMEOUT
	opOptInactiveTimeout // 37 flowIdleTimeout / FLOW_INACTIVE_TIMEOUT
)

// fieldOp is one compiled step: the field at off (fixed templates) or the
// idx-th field (variable-length templates) of length n sets kind.
type fieldOp struct {
	off  uint16
	n    uint16
	kind opKind
}

const varLen = 0xffff

// template is a compiled template; immutable once published.
type template struct {
	id          uint16
	options     bool
	scopeFields uint16
	fields      []TemplateField
	raw         []byte // field specifiers as received, to spot re-announcements cheaply
	received    int64
	bytes       int64 // cost(), as accounted against the budget

	minLen   int  // bytes per record at least (varlen fields count 1)
	fixed    bool // no variable-length field: ops carry offsets
	ops      []fieldOp
	allKinds []fieldOp // variable-length templates: one per field, in order
	hasTimes bool
	hasFrame bool
	sampler  bool      // records carry a sampler id
	rate34   bool      // records carry field 34
	fast     *fastPlan // fixed-length flow templates: see fast.go
}

// compile turns a field list into the decode steps. It returns false for
// templates no record can use: no fields, zero record length, or a record
// longer than any datagram.
func compile(version uint16, options bool, scopeFields int, fields []TemplateField) (*template, bool) {
	t := &template{options: options, scopeFields: uint16(scopeFields), fields: fields, fixed: true}
	if len(fields) == 0 {
		return nil, false
	}
	// Choose one counter per template: delta, else post, else total.
	bytesField, pktsField := uint16(0), uint16(0)
	if !options {
		for _, pref := range [...]uint16{85, 23, 1} {
			for _, f := range fields {
				if f.Enterprise == 0 && f.Type == pref && f.Length != varLen && f.Length <= 8 {
					bytesField = pref
				}
			}
		}
		for _, pref := range [...]uint16{86, 24, 2} {
			for _, f := range fields {
				if f.Enterprise == 0 && f.Type == pref && f.Length != varLen && f.Length <= 8 {
					pktsField = pref
				}
			}
		}
	}
	off := 0
	for i, f := range fields {
		k := opSkip
		if f.Enterprise == 0 && !(options && version == 9 && i < scopeFields) {
			if options {
				k = optionKind(f)
			} else {
				k = dataKind(version, f, bytesField, pktsField)
			}
		}
		if f.Length == varLen && version == 10 {
			t.fixed = false
			t.minLen++
			if k != opFrameSection {
				k = opSkip // no variable-length field we map needs its value, except a sampled frame
			}
		} else {
			t.minLen += int(f.Length)
		}
		switch k {
		case opFirstUptime, opLastUptime, opStartSec, opEndSec, opStartMs, opEndMs,
			opStartNTP, opEndNTP, opStartDeltaUs, opEndDeltaUs, opSysInitMs:
			t.hasTimes = true
		case opFrameSection, opFrameSize:
			t.hasFrame = true
		case opSamplerID:
			t.sampler = true
		case opSamplingInData:
			t.rate34 = true
		}
		op := fieldOp{off: uint16(off), n: f.Length, kind: k}
		t.allKinds = append(t.allKinds, op)
		if k != opSkip {
			t.ops = append(t.ops, op)
		}
		if t.fixed {
			off += int(f.Length)
		}
	}
	if t.minLen == 0 || t.minLen > 65535-v9HeaderLen-4 {
		return nil, false
	}
	if t.fixed {
		t.allKinds = nil
	} else {
		t.ops = nil
	}
	t.fast = newFastPlan(t)
	return t, true
}

func isUint(n uint16) bool { return n >= 1 && n <= 8 }

func dataKind(version uint16, f TemplateField, bytesField, pktsField uint16) opKind {
	n := f.Length
	switch f.Type {
	case 8:
		if n == 4 {
			return opSrc4
		}
	case 12:
		if n == 4 {
			return opDst4
		}
	case 27:
		if n == 16 {
			return opSrc6
		}
	case 28:
		if n == 16 {
			return opDst6
		}
	case 7:
		if isUint(n) {
			return opSrcPort
		}
	case 11:
		if isUint(n) {
			return opDstPort
		}
	case 4:
		if isUint(n) {
			return opProto
		}
	case 6:
		if isUint(n) {
			return opTCPFlags
		}
	case 1, 23, 85:
		if f.Type == bytesField && isUint(n) {
			return opBytes
		}
	case 2, 24, 86:
		if f.Type == pktsField && isUint(n) {
			return opPackets
		}
	case 10:
		if isUint(n) {
			return opInIf
		}
	case 14:
		if isUint(n) {
			return opOutIf
		}
	case 88:
		if isUint(n) {
			return opFragOffset
		}
	case 197:
		if isUint(n) {
			return opFragFlags
		}
	case 22:
		if isUint(n) {
			return opFirstUptime
		}
	case 21:
		if isUint(n) {
			return opLastUptime
		}
	case 150:
		if isUint(n) {
			return opStartSec
		}
	case 151:
		if isUint(n) {
			return opEndSec
		}
	case 152:
		if isUint(n) {
			return opStartMs
		}
	case 153:
		if isUint(n) {
			return opEndMs
		}
	case 154, 156:
		if n == 8 {
			return opStartNTP
		}
	case 155, 157:
		if n == 8 {
			return opEndNTP
		}
	case 158:
		if isUint(n) && version == 10 {
			return opStartDeltaUs
		}
	case 159:
		if isUint(n) && version == 10 {
			return opEndDeltaUs
		}
	case 160:
		if isUint(n) {
			return opSysInitMs
		}
	case 34:
		if isUint(n) {
			return opSamplingInData
		}
	case 48, 302:
		if isUint(n) {
			return opSamplerID
		}
	case 312:
		if isUint(n) && version == 10 {
			return opFrameSize
		}
	case 315:
		if version == 10 {
			return opFrameSection
		}
	}
	return opSkip
}

func optionKind(f TemplateField) opKind {
	if !isUint(f.Length) {
		return opSkip
	}
	switch f.Type {
	case 34:
		return opOptRate34
	case 50:
		return opOptRate50
	case 305:
		return opOptPktInterval
	case 306:
		return opOptPktSpace
	case 48, 302:
		return opSamplerID
	case 160:
		return opSysInitMs
	case 36:
		return opOptActiveTimeout
	case 37:
		return opOptInactiveTimeout
	}
	return opSkip
}

// maxTimeoutSec bounds the reporting timers taken from options data: a
// flow timer of more than a day is a misreading, not a configuration.
const maxTimeoutSec = 24 * 60 * 60

// timeoutSec returns a reporting timer read from options data, false when
// it is out of range (0, or more than maxTimeoutSec).
func timeoutSec(v uint64) (uint32, bool) {
	if v == 0 || v > maxTimeoutSec {
		return 0, false
	}
	return uint32(v), true
}

// parseTemplateSet reads a template (options=false) or options-template set
// body and installs what it finds. It stops at the first bad record:
// without its length the rest of the set cannot be framed.
func (d *Decoder) parseTemplateSet(k scopeKey, body []byte, options bool, received int64, sink flow.Sink) {
	d.maybeExpire()
	var sc *scope
	version := k.version
	for len(body) >= 4 {
		id := binary.BigEndian.Uint16(body)
		hdr := 4
		var count, scopeCount int
		withdraw := false
		switch {
		case !options:
			count = int(binary.BigEndian.Uint16(body[2:]))
		case version == 9:
			if len(body) < 6 {
				if allZero(body) {
					return
				}
				sink.DecodeError(flow.ErrTruncated)
				return
			}
			sl, ol := int(binary.BigEndian.Uint16(body[2:])), int(binary.BigEndian.Uint16(body[4:]))
			if sl%4 != 0 || ol%4 != 0 {
				sink.DecodeError(flow.ErrBadTemplate)
				return
			}
			scopeCount, count, hdr = sl/4, (sl+ol)/4, 6
		default:
			count = int(binary.BigEndian.Uint16(body[2:]))
			if count == 0 {
				break // withdrawal: id and a zero count only
			}
			if len(body) < 6 {
				sink.DecodeError(flow.ErrTruncated)
				return
			}
			scopeCount, hdr = int(binary.BigEndian.Uint16(body[4:])), 6
			if scopeCount > count {
				sink.DecodeError(flow.ErrBadTemplate)
				return
			}
		}
		if id < 256 {
			if id == 0 && allZero(body) {
				return // padding
			}
			sink.DecodeError(flow.ErrBadTemplate)
			return
		}
		if count == 0 {
			if version == 10 {
				withdraw = true
			} else {
				sink.DecodeError(flow.ErrBadTemplate)
				return
			}
		}
		if count > d.cfg.MaxFieldsPerTemplate {
			sink.DecodeError(flow.ErrBadTemplate)
			return
		}
		// Find the end of the field specifiers before allocating anything.
		end := hdr
		for i := 0; i < count; i++ {
			if end+4 > len(body) {
				sink.DecodeError(flow.ErrTruncated)
				return
			}
			if version == 10 && body[end]&0x80 != 0 {
				end += 8
			} else {
				end += 4
			}
		}
		if end > len(body) {
			sink.DecodeError(flow.ErrTruncated)
			return
		}
		raw := body[hdr:end]
		body = body[end:]
		if sc == nil {
			if sc = d.scopeFor(k, received); sc == nil {
				sink.DecodeError(flow.ErrTooManyRecords)
				return
			}
		}
		if withdraw {
			d.withdraw(sc, id)
			continue
		}
		sc.lastTemplate.Store(received)
		if cur := (*sc.templates.Load())[id]; cur != nil && cur.options == options &&
			int(cur.scopeFields) == scopeCount && bytes.Equal(cur.raw, raw) {
			continue // re-announcement of what we have: the common case, no allocation
		}
		fields := make([]TemplateField, 0, count)
		for off := 0; off < len(raw); {
			f := TemplateField{Type: binary.BigEndian.Uint16(raw[off:]), Length: binary.BigEndian.Uint16(raw[off+2:])}
			off += 4
			if version == 10 && f.Type&0x8000 != 0 {
				f.Type &^= 0x8000
				f.Enterprise = binary.BigEndian.Uint32(raw[off:])
				off += 4
			}
			fields = append(fields, f)
		}
		if kind, ok := d.install(sc, version, id, options, scopeCount, fields, bytes.Clone(raw), received); !ok {
			sink.DecodeError(kind)
		}
	}
	if len(body) > 0 && !allZero(body) {
		sink.DecodeError(flow.ErrBadLength)
	}
}

// install compiles and publishes a template. It fails with
// flow.ErrBadTemplate for a template no record can use and
// flow.ErrTooManyRecords past the per-scope bound or the budget.
func (d *Decoder) install(sc *scope, version, id uint16, options bool, scopeCount int, fields []TemplateField, raw []byte, received int64) (flow.ErrorKind, bool) {
	t, ok := compile(version, options, scopeCount, fields)
	if !ok {
		return flow.ErrBadTemplate, false
	}
	t.id, t.raw, t.received = id, raw, received
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.installLocked(sc, t)
}

func (d *Decoder) withdraw(sc *scope, id uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.withdrawLocked(sc, id)
}

// setSampler records rate for sampler id, within the bound, copying the
// map only when something changes.
func (s *scope) setSampler(id uint64, rate uint32, max int) {
	if (*s.samplers.Load())[id] == rate {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.samplers.Load()
	if _, ok := old[id]; !ok && len(old) >= max {
		return
	}
	m := maps.Clone(old)
	m[id] = rate
	s.samplers.Store(&m)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
