package appliance

import (
	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/uplink"
)

// newUplink builds the uplink monitor over the routers' interface list
// routeros.UplinkList, LINK_MBPS and the detector's incoming packet rate;
// flow-blind holds while a ban is in force (a ban blinds the flows to its
// traffic on purpose). Without a router it reads nothing; with LINK_MBPS
// 0 it never reports saturation.
func (a *Appliance) newUplink() *uplink.Monitor {
	cfg := a.options.Uplink
	cfg.List = routeros.UplinkList
	cfg.LinkMbps = a.cfg.LinkMbps
	deps := uplink.Dependencies{
		FlowPPS: func() float64 {
			in, _ := a.engine.Totals()
			return in.PPS
		},
		HoldBlind: func() bool { return a.mitigator != nil && len(a.mitigator.Bans()) > 0 },
		OnEvent:   a.uplinkEvent,
		Logger:    a.log.With("component", "uplink"),
	}
	for _, r := range a.routers {
		deps.Sources = append(deps.Sources, uplink.Source{Name: r.Address(), Reader: r.Router})
	}
	return uplink.New(cfg, deps)
}

// UplinkSaturated says whether the uplink is saturated now (the uplink
// monitor's Saturated): the ban manager's cue to go straight to the
// blackhole step.
func (a *Appliance) UplinkSaturated() bool {
	return a.uplink != nil && a.uplink.Saturated()
}

// uplinkEvent logs a change of the uplink's state; neither is a webhook
// event, and flow-blind never bans.
func (a *Appliance) uplinkEvent(e uplink.Event) {
	log := a.log.With("component", "uplink", "rx_mbps", e.RxBPS/1e6, "rx_pps", e.RxPPS)
	switch {
	case e.Kind == uplink.KindSaturated && e.On:
		log.Warn("uplink saturated: the flood fills the link, only an upstream blackhole helps", "link_mbps", e.LinkMbps)
	case e.Kind == uplink.KindSaturated:
		log.Info("uplink no longer saturated", "link_mbps", e.LinkMbps, "stale", e.Stale)
	case e.On:
		log.Warn("flow-blind: the uplink interfaces receive far more packets than the flows account for (hardware offload, an overloaded exporter, or long export timers); detection misses that traffic",
			"flow_pps", e.FlowPPS)
	default:
		log.Info("flow-blind alarm cleared", "flow_pps", e.FlowPPS, "stale", e.Stale)
	}
}

// uplinkStatus is the status API's uplink object.
func (a *Appliance) uplinkStatus() api.Uplink {
	u := api.Uplink{LinkMbps: a.cfg.LinkMbps, Interfaces: []api.UplinkInterface{}}
	if a.uplink == nil {
		return u
	}
	s := a.uplink.Status()
	u.RxBPS, u.RxPPS, u.FlowPPS, u.Saturated, u.FlowBlind = s.RxBPS, s.RxPPS, s.FlowPPS, s.Saturated, s.FlowBlind
	for _, i := range s.Interfaces {
		u.Interfaces = append(u.Interfaces, api.UplinkInterface{Router: i.Router, Name: i.Name, Running: i.Running, RxBPS: i.RxBPS, RxPPS: i.RxPPS})
	}
	return u
}
