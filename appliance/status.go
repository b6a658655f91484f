package appliance

import (
	"net/netip"
	"sort"
	"time"

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
		st := r.Stats()
		rs := api.Router{Address: r.Address(), Connected: r.Connected(),
			Calls: st.Calls, CallErrors: st.Traps + st.Timeouts + st.ConnErrors,
			Connects: st.Logins, ConnectFailures: st.DialFailures, RejectedReplies: st.RejectedReplies}
		if at, err := r.lastFailure(); err != nil {
			rs.LastError, rs.LastErrorAt = err.Error(), at
		}
		s.Routers = append(s.Routers, rs)
	}
	return s
}

func ratesOf(r detect.Rates) api.Rates {
	return api.Rates{PPS: r.PPS, BPS: r.BPS, Flows: r.Flows}
}
