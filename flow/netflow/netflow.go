// Package netflow decodes NetFlow v5, NetFlow v9 and IPFIX export datagrams
// into flow.Record, the version detected per datagram.
//
// The data path is a zero-allocation decoder of its own: every v9/IPFIX
// template is compiled once into a list of (offset, length, setter) steps,
// and each data record is decoded by running those steps over its bytes.
// A fixed-length flow template also gets a fast plan (fast.go): the common
// fields' offsets and widths resolved once, so a record decodes as
// straight-line code with no per-field switch; the steps remain the
// reference the plan is tested against, and decode what it does not cover.
// Templates and sampling state are kept per exporter address (not ip:port,
// so a router that changes its source port keeps its templates),
// observation domain / source id and template id, with bounded counts, in
// copy-on-write maps that the data path reads without locks.
//
// Every guard runs before a byte is trusted: truncated datagrams, unknown
// versions, set lengths that lie, templates with no fields or only
// zero-length fields, absurd counts, data before its template. Each dropped
// part is reported to the sink under a flow.ErrorKind; nothing panics and no
// loop or allocation is bounded by anything but the datagram's own length.
//
// What is mapped (IANA element ids; v9 uses the same numbers):
//   - addresses: 8/12 (IPv4), 27/28 (IPv6); ports 7/11; protocol 4;
//     TCP flags 6 (low 8 bits); interfaces 10/14.
//   - bytes: 1 (octetDeltaCount), else 23 (postOctetDeltaCount), else 85
//     (octetTotalCount); packets: 2, else 24, else 86. A delta count is
//     preferred because a total repeats what earlier records counted.
//   - fragment: 88 fragmentOffset (low 13 bits non-zero) or 197
//     fragmentFlags (More Fragments bit 0x20), or the sampled header of 315.
//   - time: v9 22/21 are sysUpTime milliseconds, turned to wall clock with
//     the header's sysUpTime and unix seconds (the difference read as a
//     signed 32-bit number, so uptime wrap-around and small exporter
//     skew both come out right). IPFIX 150-157 absolute times, 158/159
//     delta microseconds from the export time, 22/21 relative to
//     systemInitTimeMilliseconds (160) from the same record or from options
//     data. Without any time field Start and End are the export time.
//   - RFC 7133 sampled frames: 315 dataLinkFrameSection is parsed for the
//     addresses, ports, protocol, flags and fragment bit; packets is 1 and
//     bytes is 312 dataLinkFrameSize (else the section's length).
//   - sampling rate: options data 34 samplingInterval, else 50
//     samplerRandomInterval, else 305/306 as (interval+space)/interval; with
//     sampler/selector id 48/302 each rate is also kept per id, and a data
//     record carrying 48/302 gets its own sampler's rate. RouterOS puts 34
//     inside the data records, little-endian: see routerOSSamplingRate.
//     Records are never multiplied by the rate. A rate above
//     flow.MaxSamplingRate, from options data or a data record, is counted
//     as flow.ErrBadSamplingRate and ignored: the scope keeps its rate, the
//     record gets the scope's (0 when none: the collector's default). v5's
//     14-bit header interval cannot exceed the bound.
//   - reporting timers: options data 36 flowActiveTimeout and 37
//     flowIdleTimeout (IPFIX; v9 FLOW_ACTIVE_TIMEOUT and
//     FLOW_INACTIVE_TIMEOUT), seconds, any length of 1 to 8 bytes read
//     big-endian. They are kept per exporter scope for Exporters
//     (ActiveTimeout, InactiveTimeout) and SnapshotTemplates; 0 and values
//     over 24 h are ignored, uncounted. 36/37 inside flow data records are
//     not read: the data path never looks at them.
package netflow

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/flow"
)

// Configuration bounds what one decoder keeps (see state.go for how).
type Configuration struct {
	// MaxExporters bounds the template scopes (exporter address, version,
	// observation domain) kept; a new scope beyond it takes the place of
	// the least recently used one.
	MaxExporters int
	// MaxDomainsPerExporter bounds the scopes of one exporter address; a
	// new one beyond it takes the place of that address's least recently
	// used scope.
	MaxDomainsPerExporter int
	// MaxTemplatesPerExporter bounds the templates kept per scope; further
	// ones are refused, counted as flow.ErrTooManyRecords.
	MaxTemplatesPerExporter int
	// MaxFieldsPerTemplate rejects templates with more fields (real ones
	// have a few dozen; the limit keeps compiled templates small).
	MaxFieldsPerTemplate int
	// MaxSamplersPerExporter bounds the sampler ids remembered per scope.
	MaxSamplersPerExporter int
	// TemplateBudget bounds the estimated memory of all templates kept, in
	// bytes. A template beyond it evicts other exporters' least recently
	// used scopes; one that cannot fit even then is refused.
	TemplateBudget int64
	// IdleTimeout drops a scope no datagram has come for in that long; a
	// snapshot holds only scopes heard from within it.
	IdleTimeout time.Duration
}

// DefaultConfiguration returns bounds that fit a few hundred routers.
//
// The template budget is 4 MiB: a RouterOS template costs about 1 KB
// compiled (TestTemplateCost), so it holds every template of more than a
// thousand RouterOS exporters (two flow templates and an options template
// each), or about 600 of the largest templates accepted (256 fields, up to
// 7 KB). The worst case used to be 1,024 scopes x 256
// templates, about 1 GiB. 32 domains per address covers routers that
// number their line cards (one per slot of the largest chassis, for v9
// and IPFIX). An hour of silence is longer than any exporter's template
// refresh (Cisco's default template timeout is 30 min) and than the
// default active flow timeout (30 min on RouterOS and Cisco), so a scope
// still in use is never dropped.
func DefaultConfiguration() Configuration {
	return Configuration{
		MaxExporters:            1024,
		MaxDomainsPerExporter:   32,
		MaxTemplatesPerExporter: 256,
		MaxFieldsPerTemplate:    256,
		MaxSamplersPerExporter:  64,
		TemplateBudget:          4 << 20,
		IdleTimeout:             time.Hour,
	}
}

// Decoder decodes NetFlow v5/v9 and IPFIX datagrams. It is safe for
// concurrent use; template changes are serialised, the data path takes no
// lock.
type Decoder struct {
	cfg Configuration
	// shards hold the scopes, copy-on-write: the data path loads one
	// without a lock (see state.go).
	shards [scopeShards]atomic.Pointer[map[scopeKey]*scope]
	// clock is the newest receive time seen (Unix ns, clockEvery steps),
	// firstClock the first; idle expiry and snapshots go by them.
	clock, firstClock atomic.Int64
	counters          stateCounters

	// mu serialises changes of scopes and templates, and guards what
	// follows.
	mu            sync.Mutex
	nscopes       int
	perAddr       map[netip.Addr]int // scopes per exporter address
	seq           uint64             // scopes created, for the eviction order
	templates     int
	templateBytes int64
	// nextSweep is the clock at which idle scopes are next looked for;
	// written under mu, read without.
	nextSweep atomic.Int64

	metricsOnce sync.Once
	metrics     *metrics.Set

	// genericOnly makes every data record go through the generic ops,
	// never the fast plans: the reference the fast path is tested against.
	genericOnly bool
}

// New returns a decoder with no templates.
func New(cfg Configuration) *Decoder {
	def := DefaultConfiguration()
	if cfg.MaxExporters <= 0 {
		cfg.MaxExporters = def.MaxExporters
	}
	if cfg.MaxTemplatesPerExporter <= 0 {
		cfg.MaxTemplatesPerExporter = def.MaxTemplatesPerExporter
	}
	if cfg.MaxFieldsPerTemplate <= 0 {
		cfg.MaxFieldsPerTemplate = def.MaxFieldsPerTemplate
	}
	if cfg.MaxSamplersPerExporter <= 0 {
		cfg.MaxSamplersPerExporter = def.MaxSamplersPerExporter
	}
	if cfg.MaxDomainsPerExporter <= 0 {
		cfg.MaxDomainsPerExporter = def.MaxDomainsPerExporter
	}
	if cfg.TemplateBudget <= 0 {
		cfg.TemplateBudget = def.TemplateBudget
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = def.IdleTimeout
	}
	d := &Decoder{cfg: cfg, perAddr: map[netip.Addr]int{}}
	for i := range d.shards {
		m := map[scopeKey]*scope{}
		d.shards[i].Store(&m)
	}
	return d
}

// Decode decodes one datagram. It calls sink.Record once per flow with rec
// (caller-owned, overwritten for each flow) and sink.DecodeError once per
// dropped part. Safe for concurrent use by several goroutines.
func (d *Decoder) Decode(dg *flow.Datagram, rec *flow.Record, sink flow.Sink) {
	p := dg.Payload
	if len(p) < 2 {
		sink.DecodeError(flow.ErrTruncated)
		return
	}
	switch binary.BigEndian.Uint16(p) {
	case 5:
		decodeV5(dg, rec, sink)
	case 9:
		d.decodeV9(dg, rec, sink)
	case 10:
		d.decodeIPFIX(dg, rec, sink)
	default:
		sink.DecodeError(flow.ErrUnknownVersion)
	}
}

// CarriesTemplates reports whether a v9 or IPFIX datagram holds a template
// or options-template set. It only walks the set headers.
func CarriesTemplates(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	var off int
	var tmpl, opts uint16
	switch binary.BigEndian.Uint16(payload) {
	case 9:
		off, tmpl, opts = v9HeaderLen, 0, 1
	case 10:
		off, tmpl, opts = ipfixHeaderLen, 2, 3
		if len(payload) >= 4 {
			if l := int(binary.BigEndian.Uint16(payload[2:])); l >= ipfixHeaderLen && l < len(payload) {
				payload = payload[:l]
			}
		}
	default:
		return false
	}
	for off+4 <= len(payload) {
		id := binary.BigEndian.Uint16(payload[off:])
		l := int(binary.BigEndian.Uint16(payload[off+2:]))
		if id == tmpl || id == opts {
			return true
		}
		if l < 4 {
			return false
		}
		off += l
	}
	return false
}

// ExporterTemplates describes the template state of one exporter scope.
type ExporterTemplates struct {
	Exporter          netip.Addr `json:"exporter"`
	Version           uint16     `json:"version"` // 9 or 10
	ObservationDomain uint32     `json:"observation_domain"`
	Templates         int        `json:"templates"`
	// SamplingRate is the rate in force from options data (or the last one
	// read from RouterOS data records), 0 when the exporter said nothing.
	SamplingRate uint32 `json:"sampling_rate"`
	LastTemplate int64  `json:"last_template"` // Unix ns of the last template received, 0 if restored only
	// ActiveTimeout and InactiveTimeout are the exporter's reporting timers
	// from options data (36 flowActiveTimeout, 37 flowIdleTimeout; v9
	// FLOW_ACTIVE_TIMEOUT, FLOW_INACTIVE_TIMEOUT), whole seconds, 0 when
	// not announced. In JSON they are integer seconds, active_timeout_s
	// and inactive_timeout_s (see MarshalJSON).
	ActiveTimeout   time.Duration `json:"-"`
	InactiveTimeout time.Duration `json:"-"`
	// TimeoutsAnnounced is the Unix ns an options record last announced a
	// timer (the datagram's receive time), 0 if none since start (restored
	// from a snapshot only, or never announced).
	TimeoutsAnnounced int64 `json:"timeouts_announced"`
}

// exporterTemplatesFields is ExporterTemplates without its JSON methods.
type exporterTemplatesFields ExporterTemplates

type exporterTemplatesJSON struct {
	exporterTemplatesFields
	ActiveTimeoutS   int64 `json:"active_timeout_s"`
	InactiveTimeoutS int64 `json:"inactive_timeout_s"`
}

// MarshalJSON writes the fields under their json tags, and the timers as
// whole seconds: active_timeout_s, inactive_timeout_s (0 when not
// announced).
func (e ExporterTemplates) MarshalJSON() ([]byte, error) {
	return json.Marshal(exporterTemplatesJSON{
		exporterTemplatesFields: exporterTemplatesFields(e),
		ActiveTimeoutS:          int64(e.ActiveTimeout / time.Second),
		InactiveTimeoutS:        int64(e.InactiveTimeout / time.Second),
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *ExporterTemplates) UnmarshalJSON(b []byte) error {
	var v exporterTemplatesJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = ExporterTemplates(v.exporterTemplatesFields)
	e.ActiveTimeout = time.Duration(v.ActiveTimeoutS) * time.Second
	e.InactiveTimeout = time.Duration(v.InactiveTimeoutS) * time.Second
	return nil
}

// Exporters returns per exporter scope statistics, sorted by exporter,
// version and domain.
func (d *Decoder) Exporters() []ExporterTemplates {
	out := make([]ExporterTemplates, 0, d.counters.scopes.Load())
	d.eachScope(func(k scopeKey, s *scope) {
		out = append(out, ExporterTemplates{
			Exporter:          k.addr,
			Version:           k.version,
			ObservationDomain: k.domain,
			Templates:         len(*s.templates.Load()),
			SamplingRate:      s.samplingRate.Load(),
			LastTemplate:      s.lastTemplate.Load(),
			ActiveTimeout:     time.Duration(s.activeTimeout.Load()) * time.Second,
			InactiveTimeout:   time.Duration(s.inactiveTimeout.Load()) * time.Second,
			TimeoutsAnnounced: s.timeoutsAt.Load(),
		})
	})
	slices.SortFunc(out, func(a, b ExporterTemplates) int {
		return scopeOrder(a.Exporter, a.Version, a.ObservationDomain, b.Exporter, b.Version, b.ObservationDomain)
	})
	return out
}

// scopeOrder orders template scopes by exporter, version, then domain.
func scopeOrder(ae netip.Addr, av uint16, ad uint32, be netip.Addr, bv uint16, bd uint32) int {
	return cmp.Or(ae.Compare(be), cmp.Compare(av, bv), cmp.Compare(ad, bd))
}
