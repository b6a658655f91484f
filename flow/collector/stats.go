package collector

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/telemetry/promtext"
)

// totals are the collector-wide counters, kept as metrics counters so they
// are exported as they are.
type totals struct {
	datagrams         *metrics.Counter
	records           *metrics.Counter
	flowPackets       *metrics.Counter
	flowBytes         *metrics.Counter
	dropped           *metrics.Counter
	inOrder           *metrics.Counter
	inline            *metrics.Counter
	reads             *metrics.Counter
	takeovers         *metrics.Counter
	decoderPanics     *metrics.Counter
	consumerPanics    *metrics.Counter
	exportersOverflow *metrics.Counter
	refusedDatagrams  *metrics.Counter
	refusedBytes      *metrics.Counter
	refusedForgotten  *metrics.Counter
	decodeErrors      [flow.NumErrorKinds]*metrics.Counter
}

// help documents the collector's series (promtext fills the HELP lines
// the metrics library writes empty).
var help = map[string]string{
	"flowshield_collector_datagrams_total":                    "Flow datagrams accepted from allowed exporters.",
	"flowshield_collector_records_total":                      "Flow records decoded.",
	"flowshield_collector_flow_packets_total":                 "Packets the decoded records count, times their sampling rate.",
	"flowshield_collector_flow_bytes_total":                   "Bytes the decoded records count, times their sampling rate.",
	"flowshield_collector_dropped_datagrams_total":            "Datagrams dropped because the decode queue was full (overload).",
	"flowshield_collector_in_order_datagrams_total":           "Datagrams decoded in arrival order because they carry templates.",
	"flowshield_collector_inline_datagrams_total":             "Datagrams decoded on the reading goroutine rather than queued for a worker.",
	"flowshield_collector_socket_reads_total":                 "Reads of the flow sockets (each takes up to a batch of datagrams).",
	"flowshield_collector_standby_takeovers_total":            "Times the standby reader took a socket over because detection held the primary reader up.",
	"flowshield_collector_decoder_panics_total":               "Datagrams whose decoder panicked (counted and skipped).",
	"flowshield_collector_consumer_panics_total":              "Record batches whose consumer (detection) panicked (counted and skipped).",
	"flowshield_collector_exporters_overflow_datagrams_total": "Datagrams from exporters past MaxExporters: decoded and counted in the totals, not per exporter.",
	"flowshield_collector_refused_datagrams_total":            "Datagrams dropped before decoding because their source is outside EXPORTERS.",
	"flowshield_collector_refused_bytes_total":                "Bytes of the datagrams refused by EXPORTERS.",
	"flowshield_collector_refused_sources_forgotten_total":    "Refused sources forgotten from the bounded per-source table (MaxRefusedSources) to make room.",
	"flowshield_collector_refused_sources":                    "Refused sources in the per-source table now.",
	"flowshield_collector_decode_errors_total":                "Datagrams or records the decoders rejected, by kind.",
	"flowshield_collector_queue_datagrams":                    "Datagrams waiting for a decode worker.",
	"flowshield_collector_queue_bytes":                        "Payload bytes waiting for a decode worker.",
	"flowshield_collector_receive_buffer_bytes":               "Effective receive buffer of the listener's socket, as the kernel reports it.",
	"flowshield_collector_listener_up":                        "1 while the listener's socket is open and read, else 0.",
	"flowshield_collector_read_errors_total":                  "Failed reads of the listener's socket.",
	"flowshield_collector_kernel_dropped_datagrams_total":     "Datagrams the kernel dropped because the socket's receive buffer was full.",
	"flowshield_exporter_datagrams_total":                     "Datagrams accepted from the exporter.",
	"flowshield_exporter_dropped_datagrams_total":             "Datagrams of the exporter dropped because the decode queue was full.",
	"flowshield_exporter_records_total":                       "Flow records decoded from the exporter.",
	"flowshield_exporter_flow_packets_total":                  "Packets the exporter's records count, times their sampling rate.",
	"flowshield_exporter_flow_bytes_total":                    "Bytes the exporter's records count, times their sampling rate.",
	"flowshield_exporter_decoder_panics_total":                "Datagrams of the exporter whose decoder panicked.",
	"flowshield_exporter_decode_errors_total":                 "Datagrams or records of the exporter the decoders rejected, by kind.",
	"flowshield_exporter_last_seen_seconds":                   "When the exporter's last datagram arrived, in seconds since the Unix epoch.",
	"flowshield_exporter_sampling_rate":                       "The exporter's last announced sampling rate (or SAMPLING_RATE); a ratio, 1 is unsampled.",
	"flowshield_exporter_clock_skew_seconds":                  "Receive time minus the exporter's export time, averaged: network delay plus the exporter's clock lag.",
	"flowshield_exporter_info":                                "The exporter's protocol version, as a label; always 1.",
}

func init() { promtext.Describe(help) }

func (t *totals) register(s *metrics.Set) {
	t.datagrams = s.NewCounter(`flowshield_collector_datagrams_total`)
	t.records = s.NewCounter(`flowshield_collector_records_total`)
	t.flowPackets = s.NewCounter(`flowshield_collector_flow_packets_total`)
	t.flowBytes = s.NewCounter(`flowshield_collector_flow_bytes_total`)
	t.dropped = s.NewCounter(`flowshield_collector_dropped_datagrams_total`)
	t.inOrder = s.NewCounter(`flowshield_collector_in_order_datagrams_total`)
	t.inline = s.NewCounter(`flowshield_collector_inline_datagrams_total`)
	t.reads = s.NewCounter(`flowshield_collector_socket_reads_total`)
	t.takeovers = s.NewCounter(`flowshield_collector_standby_takeovers_total`)
	t.decoderPanics = s.NewCounter(`flowshield_collector_decoder_panics_total`)
	t.consumerPanics = s.NewCounter(`flowshield_collector_consumer_panics_total`)
	t.exportersOverflow = s.NewCounter(`flowshield_collector_exporters_overflow_datagrams_total`)
	t.refusedDatagrams = s.NewCounter(`flowshield_collector_refused_datagrams_total`)
	t.refusedBytes = s.NewCounter(`flowshield_collector_refused_bytes_total`)
	t.refusedForgotten = s.NewCounter(`flowshield_collector_refused_sources_forgotten_total`)
	for k := range t.decodeErrors {
		t.decodeErrors[k] = s.NewCounter(fmt.Sprintf(`flowshield_collector_decode_errors_total{kind=%q}`, flow.ErrorKind(k).String()))
	}
}

type exporterKey struct {
	addr     netip.Addr
	protocol Protocol
}

// exporterTable maps exporters to their counters. Lookups happen once per
// new exporter per reader (readers cache the pointers), so a RWMutex is
// plenty; the counters themselves are atomics.
type exporterTable struct {
	max int
	mu  sync.RWMutex
	m   map[exporterKey]*exporterStats
}

func (t *exporterTable) init(max int) {
	t.max = max
	t.m = make(map[exporterKey]*exporterStats)
}

// lookup returns the exporter's counters, creating them on first sight, or
// nil when the table is full.
func (t *exporterTable) lookup(addr netip.Addr, p Protocol) *exporterStats {
	k := exporterKey{addr, p}
	t.mu.RLock()
	st, ok := t.m[k]
	full := len(t.m) >= t.max
	t.mu.RUnlock()
	if ok {
		return st
	}
	if full {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.m[k]; ok {
		return st
	}
	if len(t.m) >= t.max {
		return nil
	}
	st = &exporterStats{key: k}
	t.m[k] = st
	return st
}

func (t *exporterTable) all() []*exporterStats {
	t.mu.RLock()
	out := make([]*exporterStats, 0, len(t.m))
	for _, st := range t.m {
		out = append(out, st)
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].key.protocol != out[j].key.protocol {
			return out[i].key.protocol < out[j].key.protocol
		}
		return out[i].key.addr.Less(out[j].key.addr)
	})
	return out
}

// exporterStats are one exporter's counters. Readers write datagrams,
// dropped, lastSeen and version; workers the rest, once per datagram.
type exporterStats struct {
	key           exporterKey
	datagrams     atomic.Uint64
	dropped       atomic.Uint64
	lastSeen      atomic.Int64
	version       atomic.Uint32
	records       atomic.Uint64
	flowPackets   atomic.Uint64
	flowBytes     atomic.Uint64
	samplingRate  atomic.Uint32
	decoderPanics atomic.Uint64
	decodeErrors  [flow.NumErrorKinds]atomic.Uint64
	skew          skewStats
}

// skewStats tracks Received - Exported: how far the exporter's clock (plus
// the export delay) is from ours. A large value means records' times are
// wrong or the export path is backed up.
type skewStats struct {
	samples atomic.Uint64
	latest  atomic.Int64
	ewma    atomic.Int64 // alpha 1/8
	min     atomic.Int64
	max     atomic.Int64
}

func (s *skewStats) observe(d int64) {
	s.latest.Store(d)
	if s.samples.Add(1) == 1 {
		s.ewma.Store(d)
		s.min.Store(d)
		s.max.Store(d)
		return
	}
	for range 8 { // bounded: under contention a lost update is acceptable
		old := s.ewma.Load()
		if s.ewma.CompareAndSwap(old, old+(d-old)/8) {
			break
		}
	}
	for range 8 {
		old := s.min.Load()
		if d >= old || s.min.CompareAndSwap(old, d) {
			break
		}
	}
	for range 8 {
		old := s.max.Load()
		if d <= old || s.max.CompareAndSwap(old, d) {
			break
		}
	}
}

// Stats is a snapshot of the collector's counters, for /api/v1/status.
// Counters count since Start.
type Stats struct {
	Datagrams   uint64 `json:"datagrams"`
	Records     uint64 `json:"records"`
	FlowPackets uint64 `json:"flow_packets"` // records' packets times their sampling rate
	FlowBytes   uint64 `json:"flow_bytes"`
	// Dropped counts datagrams dropped because the queue was full (and
	// those still queued at Stop); KernelDropped those the kernel dropped
	// because the socket buffer was full.
	Dropped           uint64            `json:"dropped"`
	KernelDropped     uint64            `json:"kernel_dropped"`
	InOrder           uint64            `json:"in_order_datagrams"` // carrying v9/IPFIX templates
	Inline            uint64            `json:"inline_datagrams"`   // decoded on a reader, not handed to a worker
	Reads             uint64            `json:"socket_reads"`       // recvmmsg calls that returned datagrams
	StandbyTakeovers  uint64            `json:"standby_takeovers"`  // times a standby reader read for a held-up primary
	DecoderPanics     uint64            `json:"decoder_panics"`
	ConsumerPanics    uint64            `json:"consumer_panics"`
	ExportersOverflow uint64            `json:"exporters_overflow"` // datagrams from exporters beyond MaxExporters
	DecodeErrors      map[string]uint64 `json:"decode_errors"`      // by flow.ErrorKind name, non-zero only
	QueueDatagrams    int               `json:"queue_datagrams"`
	QueueCapacity     int               `json:"queue_capacity"`
	QueueBytes        int64             `json:"queue_bytes"`
	Listeners         []ListenerStats   `json:"listeners"`
	Exporters         []ExporterStats   `json:"exporters"`
	// Refused are the datagrams dropped undecoded because their source is
	// not inside Configuration.Exporters; they are in no other counter.
	Refused RefusedStats `json:"refused"`
}

// ListenerStats describes one socket.
type ListenerStats struct {
	Protocol               string `json:"protocol"`
	Address                string `json:"address"` // bound local address
	Up                     bool   `json:"up"`
	Error                  string `json:"error,omitempty"`
	ReceiveBuffer          int    `json:"receive_buffer"` // effective, as the kernel reports it (Linux: twice the granted size)
	ReceiveBufferRequested int    `json:"receive_buffer_requested"`
	ReadErrors             uint64 `json:"read_errors"`
	KernelDropped          uint64 `json:"kernel_dropped"`
}

// ExporterStats are one exporter's counters.
type ExporterStats struct {
	Address       netip.Addr        `json:"address"`
	Protocol      string            `json:"protocol"` // netflow or sflow
	Version       uint32            `json:"version"`  // the header's: 5, 9, 10 (IPFIX) for netflow; 5 for sflow; 0 until seen
	Datagrams     uint64            `json:"datagrams"`
	Dropped       uint64            `json:"dropped"`
	Records       uint64            `json:"records"`
	FlowPackets   uint64            `json:"flow_packets"`
	FlowBytes     uint64            `json:"flow_bytes"`
	DecodeErrors  map[string]uint64 `json:"decode_errors"` // by flow.ErrorKind name, non-zero only
	DecoderPanics uint64            `json:"decoder_panics"`
	LastSeen      time.Time         `json:"last_seen"`
	SamplingRate  uint32            `json:"sampling_rate"` // of the last record, after the default was applied
	ClockSkew     *ClockSkew        `json:"clock_skew"`    // nil for formats without an export clock
}

// ClockSkew is Received - Exported, in seconds: positive when the exporter's
// clock is behind ours (or its datagrams are delayed).
type ClockSkew struct {
	Latest  float64 `json:"latest"`
	Average float64 `json:"average"` // exponentially weighted, alpha 1/8
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
}

// Stats returns a snapshot of the counters.
func (c *Collector) Stats() Stats {
	t := &c.totals
	s := Stats{
		Datagrams:         t.datagrams.Get(),
		Records:           t.records.Get(),
		FlowPackets:       t.flowPackets.Get(),
		FlowBytes:         t.flowBytes.Get(),
		Dropped:           t.dropped.Get(),
		InOrder:           t.inOrder.Get(),
		Inline:            t.inline.Get(),
		Reads:             t.reads.Get(),
		StandbyTakeovers:  t.takeovers.Get(),
		DecoderPanics:     t.decoderPanics.Get(),
		ConsumerPanics:    t.consumerPanics.Get(),
		ExportersOverflow: t.exportersOverflow.Get(),
		DecodeErrors:      map[string]uint64{},
		QueueDatagrams:    len(c.queue),
		QueueCapacity:     c.cfg.QueueDatagrams,
		QueueBytes:        c.queued.Load(),
		Refused: RefusedStats{
			Datagrams:        t.refusedDatagrams.Get(),
			Bytes:            t.refusedBytes.Get(),
			SourcesForgotten: t.refusedForgotten.Get(),
			Sources:          c.refused.sources(),
		},
	}
	for k, ctr := range t.decodeErrors {
		if v := ctr.Get(); v != 0 {
			s.DecodeErrors[flow.ErrorKind(k).String()] = v
		}
	}
	for _, l := range c.listeners {
		ls := ListenerStats{
			Protocol:               l.protocol.String(),
			Address:                l.address,
			Up:                     l.up.Load(),
			ReceiveBuffer:          l.receiveBuffer,
			ReceiveBufferRequested: l.requestedBuf,
			ReadErrors:             l.readErrors.Load(),
			KernelDropped:          l.kernelDrops.Load(),
		}
		if l.local.IsValid() {
			ls.Address = l.local.String()
		}
		if err := l.health(); err != nil && c.isRunning() {
			ls.Error = err.Error()
		}
		s.KernelDropped += ls.KernelDropped
		s.Listeners = append(s.Listeners, ls)
	}
	for _, st := range c.exporters.all() {
		s.Exporters = append(s.Exporters, st.snapshot())
	}
	return s
}

func (c *Collector) isRunning() bool {
	c.lifecycle.Lock()
	defer c.lifecycle.Unlock()
	return c.started && !c.stopped
}

func (st *exporterStats) snapshot() ExporterStats {
	e := ExporterStats{
		Address:       st.key.addr,
		Protocol:      st.key.protocol.String(),
		Version:       st.version.Load(),
		Datagrams:     st.datagrams.Load(),
		Dropped:       st.dropped.Load(),
		Records:       st.records.Load(),
		FlowPackets:   st.flowPackets.Load(),
		FlowBytes:     st.flowBytes.Load(),
		DecodeErrors:  map[string]uint64{},
		DecoderPanics: st.decoderPanics.Load(),
		SamplingRate:  st.samplingRate.Load(),
	}
	if ns := st.lastSeen.Load(); ns != 0 {
		e.LastSeen = time.Unix(0, ns).UTC()
	}
	for k := range st.decodeErrors {
		if v := st.decodeErrors[k].Load(); v != 0 {
			e.DecodeErrors[flow.ErrorKind(k).String()] = v
		}
	}
	if st.skew.samples.Load() != 0 {
		e.ClockSkew = &ClockSkew{
			Latest:  seconds(st.skew.latest.Load()),
			Average: seconds(st.skew.ewma.Load()),
			Min:     seconds(st.skew.min.Load()),
			Max:     seconds(st.skew.max.Load()),
		}
	}
	return e
}

func seconds(ns int64) float64 { return float64(ns) / 1e9 }

// writeMetrics writes the per-listener and per-exporter series from the
// collector's own structures (the cardinality is bounded by MaxExporters).
func (c *Collector) writeMetrics(w io.Writer) {
	family := func(name, typ string) { metrics.WriteMetadataIfNeeded(w, name, typ) }

	family("flowshield_collector_receive_buffer_bytes", "gauge")
	for _, l := range c.listeners {
		fmt.Fprintf(w, "flowshield_collector_receive_buffer_bytes{listener=%q} %d\n", l.protocol.String(), l.receiveBuffer)
	}
	family("flowshield_collector_listener_up", "gauge")
	for _, l := range c.listeners {
		fmt.Fprintf(w, "flowshield_collector_listener_up{listener=%q} %d\n", l.protocol.String(), b2i(l.up.Load()))
	}
	family("flowshield_collector_read_errors_total", "counter")
	for _, l := range c.listeners {
		fmt.Fprintf(w, "flowshield_collector_read_errors_total{listener=%q} %d\n", l.protocol.String(), l.readErrors.Load())
	}
	family("flowshield_collector_kernel_dropped_datagrams_total", "counter")
	for _, l := range c.listeners {
		fmt.Fprintf(w, "flowshield_collector_kernel_dropped_datagrams_total{listener=%q} %d\n", l.protocol.String(), l.kernelDrops.Load())
	}

	exporters := c.exporters.all()
	labels := make([]string, len(exporters))
	for i, st := range exporters {
		labels[i] = fmt.Sprintf("exporter=%q,protocol=%q", st.key.addr.String(), st.key.protocol.String())
	}
	counter := func(name string, get func(*exporterStats) uint64) {
		family(name, "counter")
		for i, st := range exporters {
			fmt.Fprintf(w, "%s{%s} %d\n", name, labels[i], get(st))
		}
	}
	counter("flowshield_exporter_datagrams_total", func(st *exporterStats) uint64 { return st.datagrams.Load() })
	counter("flowshield_exporter_dropped_datagrams_total", func(st *exporterStats) uint64 { return st.dropped.Load() })
	counter("flowshield_exporter_records_total", func(st *exporterStats) uint64 { return st.records.Load() })
	counter("flowshield_exporter_flow_packets_total", func(st *exporterStats) uint64 { return st.flowPackets.Load() })
	counter("flowshield_exporter_flow_bytes_total", func(st *exporterStats) uint64 { return st.flowBytes.Load() })
	counter("flowshield_exporter_decoder_panics_total", func(st *exporterStats) uint64 { return st.decoderPanics.Load() })
	family("flowshield_exporter_decode_errors_total", "counter")
	for i, st := range exporters {
		for k := range st.decodeErrors {
			fmt.Fprintf(w, "flowshield_exporter_decode_errors_total{%s,kind=%q} %d\n", labels[i], flow.ErrorKind(k).String(), st.decodeErrors[k].Load())
		}
	}
	family("flowshield_exporter_last_seen_seconds", "gauge")
	for i, st := range exporters {
		fmt.Fprintf(w, "flowshield_exporter_last_seen_seconds{%s} %g\n", labels[i], seconds(st.lastSeen.Load()))
	}
	family("flowshield_exporter_sampling_rate", "gauge")
	for i, st := range exporters {
		fmt.Fprintf(w, "flowshield_exporter_sampling_rate{%s} %d\n", labels[i], st.samplingRate.Load())
	}
	family("flowshield_exporter_clock_skew_seconds", "gauge")
	for i, st := range exporters {
		if st.skew.samples.Load() != 0 {
			fmt.Fprintf(w, "flowshield_exporter_clock_skew_seconds{%s} %g\n", labels[i], seconds(st.skew.ewma.Load()))
		}
	}
	family("flowshield_exporter_info", "gauge")
	for i, st := range exporters {
		if v := versionName(st.key.protocol, st.version.Load()); v != "" {
			fmt.Fprintf(w, "flowshield_exporter_info{%s,version=%q} 1\n", labels[i], v)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
