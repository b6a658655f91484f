package hostmetrics

import (
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/telemetry/promtext"
)

// Configuration of the per-host series.
type Configuration struct {
	// TopN hosts per direction and per sort key (pps, bps, flows) get
	// series; the union is exported, so at most 3*TopN hosts per direction.
	TopN int
	// MaxAge: scrapes, pushes and Graphite within this long of the last
	// reading of the detector share it (see Sampler).
	MaxAge time.Duration
	// Totals also writes flowshield_traffic_{pps,bps,flows}{direction} and
	// the per-protocol totals. Turn it off where those are exported
	// elsewhere, so no series is written twice.
	Totals bool
}

// DefaultConfiguration exports the top 20 per direction and key, and the
// totals. Readings are shared for half a second: less than Graphite's 1 s
// period, whose ticks would otherwise land just inside a reading's age and
// send it twice.
func DefaultConfiguration() Configuration {
	return Configuration{TopN: 20, MaxAge: 500 * time.Millisecond, Totals: true}
}

// NewSampler makes the Sampler this configuration describes.
func (c Configuration) NewSampler(src Source) *Sampler {
	return NewSampler(src, c.TopN, c.MaxAge, nil)
}

// Snapshotter is what the Writer reads; *Sampler satisfies it.
type Snapshotter interface {
	Sample() *Snapshot
}

// Writer writes the series in Prometheus text format at scrape time.
type Writer struct {
	cfg Configuration
	src Snapshotter

	renders       *metrics.Counter
	renderSeconds *metrics.FloatCounter

	mu  sync.Mutex // guards buf, reused between scrapes
	buf []byte
}

// New makes a Writer reading src (usually cfg.NewSampler(engine), shared
// with the Graphite exporter). It does nothing until WritePrometheus.
func New(cfg Configuration, src Snapshotter) *Writer {
	return &Writer{cfg: cfg, src: src}
}

// Register adds the writer to set (with metrics.Set.RegisterMetricsWriter)
// and the writer's own counters of renders and the time they took.
func (w *Writer) Register(set *metrics.Set) {
	w.renders = set.NewCounter(`flowshield_hostmetrics_renders_total`)
	w.renderSeconds = set.NewFloatCounter(`flowshield_hostmetrics_render_seconds_total`)
	set.RegisterMetricsWriter(w.WritePrometheus)
}

// The series written; SeriesNames lists them for the dashboards' tests.
const (
	hostPPS       = "flowshield_host_pps"
	hostBPS       = "flowshield_host_bps"
	hostFlows     = "flowshield_host_flows"
	hostProtoPPS  = "flowshield_host_protocol_pps"
	hostProtoBPS  = "flowshield_host_protocol_bps"
	hostsActive   = "flowshield_hosts_active"
	hostsExported = "flowshield_hosts_exported"
	totalPPS      = "flowshield_traffic_pps"
	totalBPS      = "flowshield_traffic_bps"
	totalFlows    = "flowshield_traffic_flows"
	totalProtoPPS = "flowshield_traffic_protocol_pps"
	totalProtoBPS = "flowshield_traffic_protocol_bps"
)

// SeriesNames are the metric names this package writes (totals included).
func SeriesNames() []string {
	return []string{hostPPS, hostBPS, hostFlows, hostProtoPPS, hostProtoBPS, hostsActive, hostsExported,
		totalPPS, totalBPS, totalFlows, totalProtoPPS, totalProtoBPS,
		"flowshield_hostmetrics_renders_total", "flowshield_hostmetrics_render_seconds_total"}
}

// help documents the series, for the HELP lines this package writes and
// for promtext (which fills the library's HELP of the two counters).
var help = map[string]string{
	hostPPS:       "Packets per second of a top host (the top TopN per direction by pps, bps and flows), windowed, times the sampling rate.",
	hostBPS:       "Bits per second of a top host, windowed, times the sampling rate.",
	hostFlows:     "Flows per second of a top host, windowed.",
	hostProtoPPS:  "Packets per second of a top host by protocol (tcp, udp, icmp, syn: TCP SYN without ACK, frag: IP fragments).",
	hostProtoBPS:  "Bits per second of a top host by protocol (tcp, udp, icmp, syn, frag).",
	hostsActive:   "Hosts with traffic in the window, by direction.",
	hostsExported: "Hosts that have per-host series now, by direction.",
	totalPPS:      "Packets per second over all protected hosts, windowed, times the sampling rate.",
	totalBPS:      "Bits per second over all protected hosts, windowed, times the sampling rate.",
	totalFlows:    "Flows per second over all protected hosts, windowed.",
	totalProtoPPS: "Packets per second over all protected hosts by protocol (tcp, udp, icmp, syn, frag).",
	totalProtoBPS: "Bits per second over all protected hosts by protocol (tcp, udp, icmp, syn, frag).",

	"flowshield_hostmetrics_renders_total":        "Renders of the per-host series (scrapes and pushes).",
	"flowshield_hostmetrics_render_seconds_total": "Time spent rendering the per-host series.",
}

func init() { promtext.Describe(help) }

type protoRate struct {
	name     string
	pps, bps func(*detect.Rates) float64
}

var protocols = []protoRate{
	{"tcp", func(r *detect.Rates) float64 { return r.TCPPPS }, func(r *detect.Rates) float64 { return r.TCPBPS }},
	{"udp", func(r *detect.Rates) float64 { return r.UDPPPS }, func(r *detect.Rates) float64 { return r.UDPBPS }},
	{"icmp", func(r *detect.Rates) float64 { return r.ICMPPPS }, func(r *detect.Rates) float64 { return r.ICMPBPS }},
	{"syn", func(r *detect.Rates) float64 { return r.SYNPPS }, func(r *detect.Rates) float64 { return r.SYNBPS }},
	{"frag", func(r *detect.Rates) float64 { return r.FragPPS }, func(r *detect.Rates) float64 { return r.FragBPS }},
}

// WritePrometheus writes the current series to out. It holds no lock of
// the source while writing: the snapshot is a copy.
func (w *Writer) WritePrometheus(out io.Writer) {
	start := time.Now()
	snap := w.src.Sample()

	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf[:0]
	b = AppendHosts(b, &snap.Top)
	if w.cfg.Totals {
		b = AppendTotals(b, &snap.In, &snap.Out)
	}
	w.buf = b
	_, _ = out.Write(b)
	if w.renders != nil {
		w.renders.Inc()
		w.renderSeconds.Add(time.Since(start).Seconds())
	}
}

// AppendHosts appends the per-host series of top to b, grouped by metric
// family as the text format wants.
func AppendHosts(b []byte, top *Top) []byte {
	dirs := []detect.Direction{detect.In, detect.Out}
	b = appendType(b, hostsActive)
	for _, d := range dirs {
		b = appendSample(b, hostsActive, "", d, "", float64(top.Active[d]))
	}
	b = appendType(b, hostsExported)
	for _, d := range dirs {
		b = appendSample(b, hostsExported, "", d, "", float64(len(top.Hosts[d])))
	}
	simple := []struct {
		name string
		v    func(*detect.Rates) float64
	}{
		{hostPPS, func(r *detect.Rates) float64 { return r.PPS }},
		{hostBPS, func(r *detect.Rates) float64 { return r.BPS }},
		{hostFlows, func(r *detect.Rates) float64 { return r.Flows }},
	}
	for _, s := range simple {
		b = appendType(b, s.name)
		for _, d := range dirs {
			for i := range top.Hosts[d] {
				h := &top.Hosts[d][i]
				b = appendSample(b, s.name, h.IP.String(), d, "", s.v(&h.Rates))
			}
		}
	}
	for _, fam := range []string{hostProtoPPS, hostProtoBPS} {
		b = appendType(b, fam)
		for _, d := range dirs {
			for i := range top.Hosts[d] {
				h := &top.Hosts[d][i]
				ip := h.IP.String()
				for _, p := range protocols {
					v := p.pps(&h.Rates)
					if fam == hostProtoBPS {
						v = p.bps(&h.Rates)
					}
					b = appendSample(b, fam, ip, d, p.name, v)
				}
			}
		}
	}
	return b
}

// AppendTotals appends the traffic totals in and out.
func AppendTotals(b []byte, in, out *detect.Rates) []byte {
	both := [2]*detect.Rates{in, out}
	simple := []struct {
		name string
		v    func(*detect.Rates) float64
	}{
		{totalPPS, func(r *detect.Rates) float64 { return r.PPS }},
		{totalBPS, func(r *detect.Rates) float64 { return r.BPS }},
		{totalFlows, func(r *detect.Rates) float64 { return r.Flows }},
	}
	for _, s := range simple {
		b = appendType(b, s.name)
		for d, r := range both {
			b = appendSample(b, s.name, "", detect.Direction(d), "", s.v(r))
		}
	}
	for _, fam := range []string{totalProtoPPS, totalProtoBPS} {
		b = appendType(b, fam)
		for d, r := range both {
			for _, p := range protocols {
				v := p.pps(r)
				if fam == totalProtoBPS {
					v = p.bps(r)
				}
				b = appendSample(b, fam, "", detect.Direction(d), p.name, v)
			}
		}
	}
	return b
}

// appendType writes the family's HELP and TYPE lines (every series here
// is a gauge).
func appendType(b []byte, family string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, family...)
	b = append(b, ' ')
	b = append(b, help[family]...)
	b = append(b, "\n# TYPE "...)
	b = append(b, family...)
	return append(b, " gauge\n"...)
}

// appendSample writes name{ip="..",direction="..",protocol=".."} v; empty
// labels are left out. Addresses and the fixed label values need no escaping.
func appendSample(b []byte, name, ip string, d detect.Direction, proto string, v float64) []byte {
	b = append(b, name...)
	b = append(b, '{')
	if ip != "" {
		b = append(b, `ip="`...)
		b = append(b, ip...)
		b = append(b, `",`...)
	}
	b = append(b, `direction="`...)
	b = append(b, d.String()...)
	b = append(b, '"')
	if proto != "" {
		b = append(b, `,protocol="`...)
		b = append(b, proto...)
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '\n')
}
