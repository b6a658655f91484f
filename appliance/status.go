package appliance

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow/collector"
)

// Status answers GET /api/v1/status from the collector, the detector, the
// template store and the routers.
func (a *Appliance) Status() api.Status {
	b := BuildInfo()
	s := api.Status{
		Version: b.Version, Commit: b.Commit,
		StartedAt: a.startedAt, UptimeSeconds: time.Since(a.startedAt).Seconds(),
	}
	in, out := a.engine.Totals()
	s.Totals = api.Totals{In: ratesOf(in), Out: ratesOf(out)}

	cs := a.collector.Stats()
	s.Records, s.FlowPackets, s.FlowBytes, s.Dropped = cs.Records, cs.FlowPackets, cs.FlowBytes, cs.Dropped

	detected := map[netip.Addr]detect.ExporterStats{}
	for _, e := range a.engine.ExporterStats() {
		detected[e.Exporter] = e
	}
	templates := map[netip.Addr]int{}
	for _, t := range a.netflow.Exporters() {
		templates[t.Exporter] += t.Templates
	}
	for _, e := range cs.Exporters {
		es := api.Exporter{
			Address: e.Address.String(), Protocol: e.Protocol,
			Datagrams: e.Datagrams, Records: e.Records, FlowPackets: e.FlowPackets, FlowBytes: e.FlowBytes,
			Garbage: detected[e.Address].Garbage, DecodeErrors: e.DecodeErrors, Templates: templates[e.Address],
			LastSeen: e.LastSeen, SamplingRate: e.SamplingRate, Version: e.Version,
		}
		if d, ok := detected[e.Address]; ok {
			if at := d.Timers.ActiveTimeout; at > 0 {
				v := at.Seconds()
				es.ActiveTimeoutSeconds, es.ActiveTimeoutFrom = &v, d.Timers.ActiveFrom
			}
			if d.Timers.Samples > 0 {
				v := d.Timers.InactiveLag.Seconds()
				es.InactiveLagSeconds = &v
			}
		}
		if e.Protocol == collector.ProtocolNetFlow.String() && e.Version == 10 {
			es.Protocol = "ipfix"
		}
		if e.ClockSkew != nil {
			// The collector measures receive minus export time; the
			// contract's skew is the exporter's clock minus ours.
			es.ClockSkewSeconds = -e.ClockSkew.Average
		}
		s.Exporters = append(s.Exporters, es)
	}
	sort.Slice(s.Exporters, func(i, j int) bool { return s.Exporters[i].Address < s.Exporters[j].Address })
	s.RefusedExporters = api.RefusedExporters{Datagrams: cs.Refused.Datagrams, Bytes: cs.Refused.Bytes,
		SourcesForgotten: cs.Refused.SourcesForgotten, Sources: make([]api.RefusedExporter, 0, len(cs.Refused.Sources))}
	for _, r := range cs.Refused.Sources {
		s.RefusedExporters.Sources = append(s.RefusedExporters.Sources, api.RefusedExporter{
			Address: r.Address.String(), Protocol: r.Protocol, Datagrams: r.Datagrams, Bytes: r.Bytes,
			FirstSeen: r.FirstSeen.UTC(), LastSeen: r.LastSeen.UTC()})
	}
	for _, r := range a.routers {
		rs := api.Router{Address: r.Address(), Connected: r.Connected()}
		if at, err := r.lastFailure(); err != nil {
			rs.LastError, rs.LastErrorAt = err.Error(), at
		}
		s.Routers = append(s.Routers, rs)
	}
	return s
}

func ratesOf(r detect.Rates) api.Rates {
	return api.Rates{PPS: r.PPS, BPS: r.Bps, Flows: r.Flows}
}

// registerMetrics adds the daemon's own series to its metrics set: the
// collector's counters are written from its own structures, detection
// totals and ban counts as gauges read at scrape time.
func (a *Appliance) registerMetrics() {
	m := a.metrics
	m.NewGauge(`flowshield_attacks_active`, func() float64 { return float64(len(a.engine.Attacks(true))) })
	m.NewGauge(`flowshield_bans_active`, func() float64 { return float64(len(a.mitigator.Bans())) })
	// Attacks declared without a flow sample (detect.MaxSampledAttacks).
	m.NewGauge(`flowshield_attacks_unsampled_total`, func() float64 { return float64(a.engine.Stats().UnsampledAttacks) })
	m.NewGauge(`flowshield_uptime_seconds`, func() float64 { return time.Since(a.startedAt).Seconds() })
	m.NewGauge(`flowshield_exporters_forgotten_total`, func() float64 { return float64(a.engine.Stats().ExportersForgotten) })
	m.RegisterMetricsWriter(a.writeExporterTimers)
	for _, r := range a.routers {
		r := r
		m.NewGauge(`flowshield_router_connected{router="`+r.Address()+`"}`, func() float64 {
			if r.Connected() {
				return 1
			}
			return 0
		})
	}
}

// writeExporterTimers writes each exporter's reporting timers as the
// detector uses them (the table is bounded by detect's MaxExporters).
func (a *Appliance) writeExporterTimers(w io.Writer) {
	stats := a.engine.ExporterStats()
	gauge := func(name string, get func(t detect.ExporterTimers) (float64, bool)) {
		metrics.WriteMetadataIfNeeded(w, name, "gauge")
		for _, e := range stats {
			if v, ok := get(e.Timers); ok {
				fmt.Fprintf(w, "%s{exporter=%q} %g\n", name, e.Exporter.String(), v)
			}
		}
	}
	gauge("flowshield_exporter_active_timeout_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.ActiveTimeout.Seconds(), t.ActiveTimeout > 0
	})
	gauge("flowshield_exporter_inactive_lag_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.InactiveLag.Seconds(), t.Samples > 0
	})
	// How far late records are moved forward, and how long an attack is
	// held after its last sign (see detect/timers.go).
	gauge("flowshield_exporter_lag_shift_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.Shift.Seconds(), t.Samples > 0
	})
	gauge("flowshield_exporter_attack_hold_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.Hold.Seconds(), t.Samples > 0
	})
}
