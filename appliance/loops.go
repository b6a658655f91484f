package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow/netflow"
	"github.com/flowshield/flowshield/storage"
)

// detectLoop evaluates detection once per tick and hands its decisions to
// the ban manager, the notifications and the attack history.
func (a *Appliance) detectLoop(ctx context.Context) {
	defer a.loops.Done()
	t := time.NewTicker(a.options.TickEvery)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if tick%10 == 0 {
			a.announcedTimers()
		}
		events := a.engine.Tick(a.options.Now())
		// Only while /metrics is scraped or Graphite/push send: walking
		// every host costs ~0.7 µs each.
		a.sampler.RefreshIfAsked(5 * time.Minute)
		var history []storage.AttackRecord
		for _, ev := range events {
			a.mitigator.HandleEvent(ev)
			a.notifyDetect(ev)
			switch ev.Kind {
			case detect.AttackStart, detect.AttackDetails, detect.AttackEnd:
				history = append(history, historyRecord(&ev.Attack, ev.Kind == detect.AttackDetails))
			}
		}
		if len(history) > 0 {
			if err := a.store.SaveAttacks(ctx, history); err != nil {
				a.log.Warn("saving attack history", "err", err)
			}
		}
	}
}

// announcedTimers hands the detector the reporting timers exporters
// announced in options data (NetFlow v9 / IPFIX 36 and 37).
func (a *Appliance) announcedTimers() {
	for _, t := range a.netflow.Exporters() {
		if t.ActiveTimeout > 0 || t.InactiveTimeout > 0 {
			a.engine.SetExporterTimers(t.Exporter, t.ActiveTimeout, t.InactiveTimeout, detect.TimerOptions)
		}
	}
}

// snapshotLoop writes the v9/IPFIX templates periodically, so that after a
// restart decoding works at once instead of waiting for the router's next
// template refresh. Unchanged templates cost no write (the store skips
// equal values), which keeps flash wear low.
func (a *Appliance) snapshotLoop(ctx context.Context) {
	defer a.loops.Done()
	t := time.NewTicker(a.options.SnapshotEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.saveTemplates(ctx)
		}
	}
}

func templateKey(t netflow.SavedTemplate) string {
	return fmt.Sprintf("%s|%d|%d|%d", t.Exporter, t.ObservationDomain, t.Version, t.TemplateID)
}

func (a *Appliance) saveTemplates(ctx context.Context) {
	saved := a.netflow.SnapshotTemplates()
	batch := make(map[string][]byte, len(saved))
	for _, t := range saved {
		// Received changes with every refresh; leave it out so an
		// unchanged template is an unchanged value and costs no write.
		t.Received = 0
		data, err := json.Marshal(t)
		if err != nil {
			continue
		}
		batch[templateKey(t)] = data
	}
	// The snapshot holds only scopes the decoder still keeps (idle and
	// evicted ones are gone): what the store has beyond it is deleted, so
	// the store is bounded like the decoder's template budget.
	kept := make(map[string]bool, len(batch))
	for k := range batch {
		kept[k] = true
	}
	for k := range a.templateKeys {
		if !kept[k] {
			batch[k] = nil
		}
	}
	if len(batch) == 0 {
		return
	}
	if err := a.store.SaveTemplates(ctx, batch); err != nil {
		a.log.Warn("saving templates", "err", err)
		return
	}
	a.templateKeys = kept
}

func (a *Appliance) restoreTemplates(ctx context.Context) {
	stored, err := a.store.LoadTemplates(ctx)
	if err != nil {
		a.log.Warn("loading saved templates", "err", err)
		return
	}
	saved := make([]netflow.SavedTemplate, 0, len(stored))
	a.templateKeys = make(map[string]bool, len(stored))
	for key, data := range stored {
		a.templateKeys[key] = true
		var t netflow.SavedTemplate
		if err := json.Unmarshal(data, &t); err != nil {
			a.log.Warn("skipping a saved template that does not decode", "key", key, "err", err)
			continue
		}
		saved = append(saved, t)
	}
	a.netflow.RestoreTemplates(saved)
	if len(saved) > 0 {
		a.log.Info("restored templates from the store", "templates", len(saved))
	}
}
