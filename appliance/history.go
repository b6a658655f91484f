package appliance

import (
	"context"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/storage"
)

// restoreHistory gives the engine the attacks that ended before this
// start, from the store, so GET /api/v1/attacks keeps listing them (the
// contract: 24 hours or the last 1,000). An attack still active when the
// last process stopped is not tracked any more: it is listed as ended at
// this start, and the store is told so. If it goes on, detection declares
// it again.
func (a *Appliance) restoreHistory(ctx context.Context, keep int) {
	recs, err := a.store.LoadAttacks(ctx, keep)
	if err != nil {
		a.log.Warn("loading the attack history", "err", err)
		return
	}
	now := a.options.Now()
	attacks := make([]detect.Attack, 0, len(recs))
	var closed []storage.AttackRecord
	for _, r := range recs {
		at := attackOfRecord(r)
		if at.EndedAt.IsZero() {
			at.EndedAt = now
			closed = append(closed, historyRecord(&at, false))
		}
		attacks = append(attacks, at)
	}
	if len(closed) > 0 {
		if err := a.store.SaveAttacks(ctx, closed); err != nil {
			a.log.Warn("saving the attacks ended by the restart", "err", err)
		}
	}
	if n := a.engine.RestoreEnded(now, attacks); n > 0 {
		a.log.Info("restored the attack history from the store", "attacks", n, "ended_by_restart", len(closed))
	}
}

// historyRecord is an attack as the store's history keeps it; with
// details, its details text, flow sample and fingerprint too (written with
// each AttackDetails event, the first and the one after a vector change;
// the end only updates the rest).
func historyRecord(at *detect.Attack, details bool) storage.AttackRecord {
	r := storage.AttackRecord{
		ID: at.ID, Scope: at.Scope, IP: at.IP, Group: at.Group, Direction: at.Direction,
		Type: at.Type, Protocol: at.Protocol, Threshold: at.Threshold,
		StartedAt: at.StartedAt, EndedAt: at.EndedAt, PeakPPS: at.PeakPPS, PeakBPS: at.PeakBPS,
	}
	if details {
		r.Details = &storage.AttackDetails{Text: at.Details, Flows: at.Sample, Fingerprint: at.Fingerprint}
	}
	return r
}

// attackOfRecord is the attack a history record describes.
func attackOfRecord(r storage.AttackRecord) detect.Attack {
	at := detect.Attack{
		ID: r.ID, Scope: r.Scope, IP: r.IP, Group: r.Group, Direction: r.Direction,
		Type: r.Type, Protocol: r.Protocol, Threshold: r.Threshold,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, PeakPPS: r.PeakPPS, PeakBPS: r.PeakBPS,
	}
	if r.Details != nil {
		at.Details, at.Sample, at.Fingerprint = r.Details.Text, r.Details.Flows, r.Details.Fingerprint
	}
	return at
}
