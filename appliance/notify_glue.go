package appliance

import (
	"context"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/notify"
	"github.com/flowshield/flowshield/telemetry/promtext"
)

// notifyHelp documents the notifier's series, which the notify package
// names: promtext fills their HELP lines from it. The last two come with
// notify's per-kind drop counts.
var notifyHelp = map[string]string{
	"flowshield_notify_sent_total":            "Events delivered by the sink (script: exit status 0; HTTP: 2xx).",
	"flowshield_notify_failed_total":          "Events the sink gave up on: script error, non-zero exit or timeout; HTTP error after the retries.",
	"flowshield_notify_dropped_total":         "Events the sink never got: its queue was full, or they were still queued at stop.",
	"flowshield_notify_retries_total":         "HTTP attempts after the first.",
	"flowshield_notify_skipped_total":         "Events the script sink skipped (no address to pass).",
	"flowshield_notify_timeouts_total":        "Script runs killed after the script timeout (also counted as failed).",
	"flowshield_notify_queue_length":          "Events waiting in the sink's queue.",
	"flowshield_notify_superseded_bans_total": "Dropped ban events that a later queued unban of the same prefix made moot (also counted as dropped).",
	"flowshield_notify_dropped_events_total":  "Events the sink never got, by event kind.",
}

func init() { promtext.Describe(notifyHelp) }

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
