package appliance

import (
	"context"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/notify"
)

// startNotifier starts the notifications and the goroutine that forwards
// the ban manager's events to them.
func (a *Appliance) startNotifier(ctx context.Context) error {
	ncfg := notify.DefaultConfiguration()
	ncfg.Script = a.cfg.NotifyScript
	ncfg.WebhookURL = a.cfg.WebhookURL
	ncfg.SlackURL = a.cfg.SlackWebhookURL
	a.notifier = notify.New(ncfg, a.log.With("component", "notify"))
	if err := a.notifier.Start(ctx); err != nil {
		return err
	}
	metrics.RegisterSet(a.notifier.Metrics())
	events := a.mitigator.Events()
	a.loops.Add(1)
	go func() {
		defer a.loops.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-events:
				if !ok {
					return
				}
				a.notifier.Notify(notify.FromMitigation(ev))
			}
		}
	}()
	return nil
}

// notifyDetect passes a detector decision to the notifications.
func (a *Appliance) notifyDetect(ev detect.Event) {
	if e, ok := notify.FromDetect(ev); ok {
		a.notifier.Notify(e)
	}
}

func (a *Appliance) stopNotifier() {
	if a.notifier == nil {
		return
	}
	a.notifier.Stop()
	metrics.UnregisterSet(a.notifier.Metrics(), false)
}
