package appliance

import (
	"net/netip"
	"sort"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/web"
)

// Status answers GET /api/v1/status from the collector, the detector, the
// template store and the routers.
func (a *Appliance) Status() web.Status {
	b := BuildInfo()
	s := web.Status{
		Version: b.Version, Commit: b.Commit,
		StartedAt: a.startedAt, UptimeSeconds: time.Since(a.startedAt).Seconds(),
	}
	in, out := a.engine.Totals()
	s.Totals = web.Totals{In: webRates(in), Out: webRates(out)}

	cs := a.collector.Stats()
	s.Records, s.FlowPackets, s.FlowBytes, s.Dropped = cs.Records, cs.FlowPackets, cs.FlowBytes, cs.Dropped

	garbage := map[netip.Addr]uint64{}
	for _, e := range a.engine.ExporterStats() {
		garbage[e.Exporter] = e.Garbage
	}
	templates := map[netip.Addr]int{}
	for _, t := range a.netflow.Exporters() {
		templates[t.Exporter] += t.Templates
	}
	for _, e := range cs.Exporters {
		es := web.ExporterStatus{
			Address: e.Address.String(), Protocol: e.Protocol,
			Datagrams: e.Datagrams, Records: e.Records, FlowPackets: e.FlowPackets, FlowBytes: e.FlowBytes,
			Garbage: garbage[e.Address], DecodeErrors: e.DecodeErrors, Templates: templates[e.Address],
			LastSeen: e.LastSeen, SamplingRate: e.SamplingRate,
		}
		switch e.Version {
		case "v5":
			es.Version = 5
		case "v9":
			es.Version = 9
		case "ipfix":
			es.Version, es.Protocol = 10, "ipfix"
		}
		if e.ClockSkew != nil {
			// The collector measures receive minus export time; the
			// contract's skew is the exporter's clock minus ours.
			es.ClockSkewSeconds = -e.ClockSkew.Average
		}
		s.Exporters = append(s.Exporters, es)
	}
	sort.Slice(s.Exporters, func(i, j int) bool { return s.Exporters[i].Address < s.Exporters[j].Address })
	for _, r := range a.routers {
		rs := web.RouterStatus{Address: r.Address(), Connected: r.Connected()}
		if at, err := r.lastFailure(); err != nil {
			rs.LastError, rs.LastErrorAt = err.Error(), at
		}
		s.Routers = append(s.Routers, rs)
	}
	return s
}

func webRates(r detect.Rates) web.Rates {
	return web.Rates{PPS: r.PPS, BPS: r.Bps, Flows: r.Flows}
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
