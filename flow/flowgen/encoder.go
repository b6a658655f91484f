package flowgen

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// EncoderConfiguration sets up one simulated exporter.
type EncoderConfiguration struct {
	Format Format
	Clock  ExporterClock
	// ObservationDomain is the v9 source id / IPFIX observation domain /
	// sFlow sub-agent id.
	ObservationDomain uint32
	// TemplateRefresh sends the templates (and options) every this many
	// datagrams, and always in the first; RouterOS's v9-template-refresh
	// default is 20.
	TemplateRefresh int
	// MaxDatagramSize bounds the UDP payload in bytes.
	MaxDatagramSize int
	// MaxRecordsPerDatagram bounds the flows per datagram (0: as many as
	// fit; NetFlow v5 never takes more than 30).
	MaxRecordsPerDatagram int
	// SamplingAlgorithm is announced next to the sampling interval in
	// options data (1 deterministic, 2 random).
	SamplingAlgorithm uint8
	// AgentAddr is the sFlow agent address (default 192.0.2.1).
	AgentAddr netip.Addr
	// EngineType and EngineID go in the NetFlow v5 header.
	EngineType, EngineID uint8
	// AnnounceTimers, when its Active or Inactive is set, makes a v9 or
	// IPFIX exporter announce both, with every template refresh, in an
	// options record scoped to the exporter: flowActiveTimeout (36) and
	// flowIdleTimeout (37), 2 bytes of whole seconds each, as some
	// exporters do, so a collector can learn how late and how long records
	// are. Give it the Timers of the TimedSource feeding the encoder. Other
	// fields and formats ignore it; zero announces nothing.
	AnnounceTimers Timers
}

// DefaultEncoderConfiguration is a RouterOS v9 exporter with a healthy clock.
func DefaultEncoderConfiguration() EncoderConfiguration {
	return EncoderConfiguration{
		Format:            FormatRouterOSV9,
		TemplateRefresh:   20,
		MaxDatagramSize:   1400,
		SamplingAlgorithm: 1,
		AgentAddr:         netip.AddrFrom4([4]byte{192, 0, 2, 1}),
	}
}

const (
	v5HeaderLen     = 24
	v5RecordLen     = 48
	v5MaxRecords    = 30
	v9HeaderLen     = 20
	ipfixHeaderLen  = 16
	optionsTemplate = 258 // template id of the sampling options
	timersTemplate  = 259 // template id of the timer options
	minDatagramSize = 200
)

// Encoder builds export datagrams for one simulated exporter. It keeps the
// exporter's state (sequence numbers, template refresh, the sampling rate it
// last announced). It is not safe for concurrent use.
type Encoder struct {
	cfg       EncoderConfiguration
	v4, v6    *template
	clockInit bool

	datagrams   uint64 // datagrams built
	sequence    uint32 // v5: flows; v9: datagrams; IPFIX: data records; sFlow: datagrams
	sinceTmpl   int
	announced   uint32 // sampling rate last announced in options data
	announcedOK bool
	samplePool  uint32 // sFlow: packets the sampler has seen
	sampleSeq   uint32
}

// NewEncoder checks cfg and fills in defaults.
func NewEncoder(cfg EncoderConfiguration) (*Encoder, error) {
	def := DefaultEncoderConfiguration()
	if cfg.TemplateRefresh <= 0 {
		cfg.TemplateRefresh = def.TemplateRefresh
	}
	if cfg.MaxDatagramSize == 0 {
		cfg.MaxDatagramSize = def.MaxDatagramSize
	}
	if cfg.MaxDatagramSize < minDatagramSize || cfg.MaxDatagramSize > 65507 {
		return nil, fmt.Errorf("creating %v encoder: datagram size %d out of [%d, 65507]", cfg.Format, cfg.MaxDatagramSize, minDatagramSize)
	}
	if cfg.MaxRecordsPerDatagram < 0 {
		return nil, fmt.Errorf("creating %v encoder: negative records per datagram", cfg.Format)
	}
	if cfg.SamplingAlgorithm == 0 {
		cfg.SamplingAlgorithm = def.SamplingAlgorithm
	}
	if !cfg.AgentAddr.IsValid() {
		cfg.AgentAddr = def.AgentAddr
	}
	e := &Encoder{cfg: cfg}
	switch cfg.Format {
	case FormatNetFlowV5, FormatSFlow:
	case FormatNetFlowV9:
		e.v4, e.v6 = genericV9Templates()
	case FormatIPFIX:
		e.v4, e.v6 = genericIPFIXTemplates()
	case FormatRouterOSV9:
		e.v4, e.v6 = routerOSV9Templates(false)
	case FormatRouterOSIPFIX:
		e.v4, e.v6 = routerOSV9Templates(true)
	default:
		return nil, fmt.Errorf("creating encoder: unknown format %v", cfg.Format)
	}
	return e, nil
}

// Configuration returns the effective configuration (defaults filled in,
// Clock.Boot set once the first datagram was built).
func (e *Encoder) Configuration() EncoderConfiguration { return e.cfg }

// AppendDatagram appends one export datagram to dst carrying a prefix of
// flows, and returns the extended buffer and how many flows it consumed. It
// consumes at least one flow when flows is not empty. Flows the format cannot
// carry (IPv6 in NetFlow v5) are consumed and not encoded. What went on the
// wire is added to tot (which may be nil), after the format's limits: 32-bit
// counters saturate, an sFlow sample is one packet of the flow's average
// size. now is the export time. When nothing was encoded (only skipped
// flows) dst is returned unchanged.
func (e *Encoder) AppendDatagram(dst []byte, flows []Flow, now time.Time, tot *Totals) ([]byte, int) {
	if len(flows) == 0 {
		return dst, 0
	}
	if !e.clockInit {
		e.cfg.Clock.init(now)
		e.clockInit = true
	}
	switch e.cfg.Format {
	case FormatNetFlowV5:
		return e.appendV5(dst, flows, now, tot)
	case FormatSFlow:
		return e.appendSFlow(dst, flows, now, tot)
	default:
		return e.appendTemplated(dst, flows, now, tot)
	}
}

func (e *Encoder) maxRecords(limit int) int {
	if e.cfg.MaxRecordsPerDatagram > 0 && e.cfg.MaxRecordsPerDatagram < limit {
		return e.cfg.MaxRecordsPerDatagram
	}
	return limit
}

func (e *Encoder) appendV5(dst []byte, flows []Flow, now time.Time, tot *Totals) ([]byte, int) {
	start := len(dst)
	dst = grow(dst, v5HeaderLen)
	maxN := e.maxRecords(v5MaxRecords)
	n, consumed := 0, 0
	var rate uint32
	for consumed < len(flows) && n < maxN {
		f := flows[consumed]
		if !f.Src.Is4() || !f.Dst.Is4() {
			consumed++ // v5 cannot carry IPv6: skipped, not counted
			continue
		}
		if f.SamplingRate > 0x3fff {
			f.SamplingRate = 0x3fff // the header has 14 bits for the interval
		}
		if n == 0 {
			rate = f.SamplingRate
		} else if f.SamplingRate != rate {
			break // one sampling interval per datagram
		}
		f.Packets, f.Bytes = clampTo(f.Packets, 4), clampTo(f.Bytes, 4)
		off := len(dst)
		dst = grow(dst, v5RecordLen)
		b := dst[off:]
		s, d := f.Src.As4(), f.Dst.As4()
		copy(b[0:4], s[:])
		copy(b[4:8], d[:])
		clear(b[8:12]) // next hop
		binary.BigEndian.PutUint16(b[12:], uint16(f.InIf))
		binary.BigEndian.PutUint16(b[14:], uint16(f.OutIf))
		binary.BigEndian.PutUint32(b[16:], uint32(f.Packets))
		binary.BigEndian.PutUint32(b[20:], uint32(f.Bytes))
		binary.BigEndian.PutUint32(b[24:], e.cfg.Clock.flowUptimeMs(f.Start))
		binary.BigEndian.PutUint32(b[28:], e.cfg.Clock.flowUptimeMs(f.End))
		binary.BigEndian.PutUint16(b[32:], f.SrcPort)
		binary.BigEndian.PutUint16(b[34:], f.DstPort)
		b[36] = 0
		b[37] = f.TCPFlags
		b[38] = f.Proto
		b[39] = 0       // tos
		clear(b[40:48]) // AS numbers, masks, pad: RouterOS sends no AS
		if tot != nil {
			tot.Add(&f)
		}
		n++
		consumed++
	}
	if n == 0 {
		return dst[:start], consumed
	}
	h := dst[start:]
	unix := e.cfg.Clock.unix(now)
	binary.BigEndian.PutUint16(h[0:], 5)
	binary.BigEndian.PutUint16(h[2:], uint16(n))
	binary.BigEndian.PutUint32(h[4:], e.cfg.Clock.headerUptimeMs(now))
	binary.BigEndian.PutUint32(h[8:], uint32(unix.Unix()))
	binary.BigEndian.PutUint32(h[12:], uint32(unix.Nanosecond()))
	binary.BigEndian.PutUint32(h[16:], e.sequence)
	h[20] = e.cfg.EngineType
	h[21] = e.cfg.EngineID
	var si uint16
	if rate > 0 {
		si = 1<<14 | uint16(rate) // mode 01: deterministic sampling
	}
	binary.BigEndian.PutUint16(h[22:], si)
	e.sequence += uint32(n)
	e.datagrams++
	if tot != nil {
		tot.Datagrams++
	}
	return dst, consumed
}

// routerOS formats carry the rate in every record; the others announce it in
// options data, one rate at a time.
func (e *Encoder) ratesInRecords() bool { return e.cfg.Format.ratesInRecordsFormat() }

func (f Format) ratesInRecordsFormat() bool {
	return f == FormatRouterOSV9 || f == FormatRouterOSIPFIX
}

func (e *Encoder) appendTemplated(dst []byte, flows []Flow, now time.Time, tot *Totals) ([]byte, int) {
	ipfix := e.cfg.Format.ipfix()
	start := len(dst)
	hl := v9HeaderLen
	if ipfix {
		hl = ipfixHeaderLen
	}
	dst = grow(dst, hl)
	count := 0 // v9 header count: all records, templates included
	sendTemplates := e.sinceTmpl == 0
	sendOptions := false
	rate := flows[0].SamplingRate
	if !e.ratesInRecords() {
		// an unsampled exporter (rate 0) announces nothing
		sendOptions = rate != 0 && (sendTemplates || !e.announcedOK || rate != e.announced)
	}

	timers := sendTemplates && (e.cfg.AnnounceTimers.Active > 0 || e.cfg.AnnounceTimers.Inactive > 0)
	if sendTemplates {
		dst, count = e.appendTemplateSet(dst, count, ipfix)
		if !e.ratesInRecords() {
			dst, count = e.appendOptionsTemplateSet(dst, count, ipfix)
		}
		if timers {
			dst, count = e.appendTimersTemplateSet(dst, count, ipfix)
		}
	}
	dataRecords := uint32(0)
	if sendOptions {
		dst = e.appendOptionsData(dst, rate, ipfix)
		count++
		dataRecords++
		e.announced, e.announcedOK = rate, true
	}
	if timers {
		dst = e.appendTimersData(dst)
		count++
		dataRecords++
	}

	limit := e.cfg.MaxDatagramSize
	maxN := e.maxRecords(1 << 30)
	n, consumed := 0, 0
	setStart := -1
	var cur *template
	closeSet := func() {
		if setStart >= 0 {
			dst = padSet(dst, setStart)
			setStart = -1
		}
	}
	for consumed < len(flows) && n < maxN {
		f := flows[consumed]
		if !e.ratesInRecords() && f.SamplingRate != rate {
			break
		}
		t := e.v4
		if !f.Src.Is4() || !f.Dst.Is4() {
			t = e.v6
			if f.Src.Is4() {
				f.Src = netip.AddrFrom16(f.Src.As16())
			}
			if f.Dst.Is4() {
				f.Dst = netip.AddrFrom16(f.Dst.As16())
			}
		}
		need := t.size
		if t != cur {
			need += 4 + 3 // set header and worst-case padding of the previous set
		}
		if n > 0 && len(dst)-start+need+3 > limit {
			break // the first record always goes, whatever the limit
		}
		if t != cur {
			closeSet()
			setStart = len(dst)
			dst = grow(dst, 4)
			binary.BigEndian.PutUint16(dst[setStart:], t.id)
			cur = t
		}
		cl := t.counterLen
		f.Packets, f.Bytes = clampTo(f.Packets, cl), clampTo(f.Bytes, cl)
		dst = t.appendRecord(dst, &f, &e.cfg.Clock, now)
		if tot != nil {
			tot.Add(&f)
		}
		n++
		consumed++
	}
	closeSet()
	count += n
	dataRecords += uint32(n)

	h := dst[start:]
	unix := e.cfg.Clock.unix(now)
	if ipfix {
		binary.BigEndian.PutUint16(h[0:], 10)
		binary.BigEndian.PutUint16(h[2:], uint16(len(dst)-start))
		binary.BigEndian.PutUint32(h[4:], uint32(unix.Unix()))
		binary.BigEndian.PutUint32(h[8:], e.sequence)
		binary.BigEndian.PutUint32(h[12:], e.cfg.ObservationDomain)
		e.sequence += dataRecords
	} else {
		binary.BigEndian.PutUint16(h[0:], 9)
		binary.BigEndian.PutUint16(h[2:], uint16(count))
		binary.BigEndian.PutUint32(h[4:], e.cfg.Clock.headerUptimeMs(now))
		binary.BigEndian.PutUint32(h[8:], uint32(unix.Unix()))
		binary.BigEndian.PutUint32(h[12:], e.sequence)
		binary.BigEndian.PutUint32(h[16:], e.cfg.ObservationDomain)
		e.sequence++
	}
	e.sinceTmpl++
	if e.sinceTmpl >= e.cfg.TemplateRefresh {
		e.sinceTmpl = 0
	}
	e.datagrams++
	if tot != nil {
		tot.Datagrams++
	}
	return dst, consumed
}

// padSet pads the set that began at setStart to 4 bytes and writes its length.
func padSet(dst []byte, setStart int) []byte {
	for (len(dst)-setStart)%4 != 0 {
		dst = append(dst, 0)
	}
	binary.BigEndian.PutUint16(dst[setStart+2:], uint16(len(dst)-setStart))
	return dst
}

func (e *Encoder) appendTemplateSet(dst []byte, count int, ipfix bool) ([]byte, int) {
	setStart := len(dst)
	id := uint16(0)
	if ipfix {
		id = 2
	}
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	for _, t := range [2]*template{e.v4, e.v6} {
		dst = binary.BigEndian.AppendUint16(dst, t.id)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.fields)))
		for _, f := range t.fields {
			dst = binary.BigEndian.AppendUint16(dst, f.id)
			dst = binary.BigEndian.AppendUint16(dst, f.length)
		}
		count++
	}
	return padSet(dst, setStart), count
}

// The sampling options: scope = the exporter (v9 System / IPFIX
// observationDomainId), options = samplingInterval (34) and
// samplingAlgorithm (35), as Cisco IOS and most probes send them.
func (e *Encoder) appendOptionsTemplateSet(dst []byte, count int, ipfix bool) ([]byte, int) {
	setStart := len(dst)
	dst = appendOptionsTemplateHeader(dst, optionsTemplate, ipfix)
	dst = appendField(dst, fieldSamplingInterval, 4)
	dst = appendField(dst, fieldSamplingAlgo, 1)
	return padSet(dst, setStart), count + 1
}

// appendOptionsTemplateHeader starts an options template set of id whose
// scope is the exporter (v9 System / IPFIX observationDomainId) and which
// has two option fields of 8 bytes in all (IPFIX: 3 fields, 1 of scope).
func appendOptionsTemplateHeader(dst []byte, id uint16, ipfix bool) []byte {
	if ipfix {
		dst = binary.BigEndian.AppendUint16(dst, 3)
		dst = binary.BigEndian.AppendUint16(dst, 0)
		dst = binary.BigEndian.AppendUint16(dst, id)
		dst = binary.BigEndian.AppendUint16(dst, 3) // field count
		dst = binary.BigEndian.AppendUint16(dst, 1) // scope field count
		return appendField(dst, fieldObservationDom, 4)
	}
	dst = binary.BigEndian.AppendUint16(dst, 1)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, id)
	dst = binary.BigEndian.AppendUint16(dst, 4) // scope length in bytes
	dst = binary.BigEndian.AppendUint16(dst, 8) // options length in bytes
	return appendField(dst, v9ScopeSystem, 4)
}

func appendField(dst []byte, id, length uint16) []byte {
	dst = binary.BigEndian.AppendUint16(dst, id)
	return binary.BigEndian.AppendUint16(dst, length)
}

func (e *Encoder) appendOptionsData(dst []byte, rate uint32, ipfix bool) []byte {
	setStart := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, optionsTemplate)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, e.cfg.ObservationDomain)
	dst = binary.BigEndian.AppendUint32(dst, rate)
	dst = append(dst, e.cfg.SamplingAlgorithm)
	return padSet(dst, setStart)
}

// The timer options: scope = the exporter, options = flowActiveTimeout
// (36) and flowIdleTimeout (37), unsigned16 seconds.
func (e *Encoder) appendTimersTemplateSet(dst []byte, count int, ipfix bool) ([]byte, int) {
	setStart := len(dst)
	dst = appendOptionsTemplateHeader(dst, timersTemplate, ipfix)
	dst = appendField(dst, fieldActiveTimeout, 2)
	dst = appendField(dst, fieldInactiveTimeout, 2)
	return padSet(dst, setStart), count + 1
}

func (e *Encoder) appendTimersData(dst []byte) []byte {
	seconds := func(d time.Duration) uint16 { return uint16(min(max(d/time.Second, 0), 0xffff)) }
	setStart := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, timersTemplate)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, e.cfg.ObservationDomain)
	dst = binary.BigEndian.AppendUint16(dst, seconds(e.cfg.AnnounceTimers.Active))
	dst = binary.BigEndian.AppendUint16(dst, seconds(e.cfg.AnnounceTimers.Inactive))
	return padSet(dst, setStart)
}

// Datagrams encodes all of flows into as many datagrams as they need, each
// in its own slice: fixtures for decoder tests, or a pre-encoded batch.
func (e *Encoder) Datagrams(flows []Flow, now time.Time, tot *Totals) [][]byte {
	var out [][]byte
	for len(flows) > 0 {
		b, n := e.AppendDatagram(nil, flows, now, tot)
		flows = flows[n:]
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}
