package appliance

import (
	"context"
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/telemetry/graphite"
	"github.com/flowshield/flowshield/telemetry/hostmetrics"
	"github.com/flowshield/flowshield/telemetry/push"
)

// startTelemetry registers the daemon's own series and the top-N host
// series in /metrics, and starts the Graphite output and the metrics push
// when configured. One sampler of the detector's hosts serves all three.
func (a *Appliance) startTelemetry(ctx context.Context) error {
	a.registerMetrics()
	hm := hostmetrics.DefaultConfiguration()
	// While snapshots are asked for, detectLoop refreshes the sampler
	// after every tick; scrapes in between share that snapshot, so
	// rendering /metrics never walks the host table (about 70 ms of CPU at
	// 100,000 hosts).
	hm.MaxAge = 2 * a.options.TickEvery
	sampler := hm.NewSampler(a.engine)
	a.sampler = sampler
	hostmetrics.New(hm, sampler).Register(a.metrics)
	metrics.RegisterSet(a.metrics)

	if a.cfg.GraphiteAddress != "" {
		g := graphite.DefaultConfiguration()
		g.Address, g.Prefix = a.cfg.GraphiteAddress, a.cfg.GraphitePrefix
		a.graphite = graphite.New(g, sampler, a.log.With("component", "graphite"))
		metrics.RegisterSet(a.graphite.Metrics())
		if err := a.graphite.Start(ctx); err != nil {
			return fmt.Errorf("starting Graphite output to FLOWSHIELD_GRAPHITE_ADDRESS=%s: %w", a.cfg.GraphiteAddress, err)
		}
	}
	if a.cfg.MetricsPushURL != "" {
		p := push.DefaultConfiguration()
		p.URL = a.cfg.MetricsPushURL
		a.pusher = push.New(p, nil, a.log.With("component", "push"))
		metrics.RegisterSet(a.pusher.Metrics())
		if err := a.pusher.Start(ctx); err != nil {
			return fmt.Errorf("starting the metrics push (FLOWSHIELD_METRICS_PUSH_URL): %w", err)
		}
	}
	return nil
}

func (a *Appliance) stopTelemetry() {
	if a.graphite != nil {
		a.graphite.Stop()
		metrics.UnregisterSet(a.graphite.Metrics(), true)
	}
	if a.pusher != nil {
		a.pusher.Stop()
		metrics.UnregisterSet(a.pusher.Metrics(), true)
	}
	if a.metrics != nil {
		metrics.UnregisterSet(a.metrics, true)
		metrics.UnregisterSet(a.netflow.Metrics(), false)
	}
}
