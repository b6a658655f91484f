package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
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
	var attacks []detect.Attack
	var closed []storage.AttackRecord
	for _, r := range recs {
		at, err := attackFromRecord(r)
		if err != nil {
			a.log.Warn("skipping a stored attack that does not decode", "attack", r.ID, "err", err)
			continue
		}
		if at.EndedAt.IsZero() {
			at.EndedAt = now
			if rec, err := attackRecord(&at, false); err == nil {
				closed = append(closed, rec)
			}
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

// attackFromRecord decodes a history record written by attackRecord.
func attackFromRecord(r storage.AttackRecord) (detect.Attack, error) {
	var j attackJSON
	if err := json.Unmarshal(r.Data, &j); err != nil {
		return detect.Attack{}, fmt.Errorf("decoding attack %s: %w", r.ID, err)
	}
	at := detect.Attack{
		ID: r.ID, Scope: j.Scope, Type: j.Type, Protocol: j.Protocol, Threshold: j.Threshold,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, PeakPPS: j.PeakPPS, PeakBps: j.PeakBPS,
	}
	dir, ok := parseDirection(j.Direction)
	if !ok {
		return detect.Attack{}, fmt.Errorf("attack %s: direction %q", r.ID, j.Direction)
	}
	at.Direction = dir
	if j.IP != nil {
		ip, err := netip.ParseAddr(*j.IP)
		if err != nil {
			return detect.Attack{}, fmt.Errorf("attack %s: %w", r.ID, err)
		}
		at.IP = ip
	}
	if j.Group != nil {
		at.Group = *j.Group
	}
	if r.Details == nil {
		return at, nil
	}
	var d struct {
		Details string     `json:"details"`
		Flows   []flowJSON `json:"flows"`
	}
	if err := json.Unmarshal(r.Details, &d); err != nil {
		return detect.Attack{}, fmt.Errorf("decoding the details of attack %s: %w", r.ID, err)
	}
	at.Details = d.Details
	for _, f := range d.Flows {
		rec := flow.Record{
			End: f.Time.UnixNano(), SrcPort: f.SrcPort, DstPort: f.DstPort, Proto: f.Protocol, TCPFlags: f.TCPFlags,
			Fragment: f.Fragment, Packets: f.Packets, Bytes: f.Bytes, SamplingRate: f.SamplingRate,
		}
		rec.SrcAddr, _ = netip.ParseAddr(f.Src)
		rec.DstAddr, _ = netip.ParseAddr(f.Dst)
		rec.Exporter, _ = netip.ParseAddr(f.Exporter)
		// The line starts with the flow's start, to the millisecond, as
		// FlowLine writes it.
		rec.Start = rec.End
		if len(f.Line) >= len(flowLineTime) {
			if t, err := time.Parse(flowLineTime, f.Line[:len(flowLineTime)]); err == nil {
				rec.Start = t.UnixNano()
			}
		}
		at.Sample = append(at.Sample, rec)
	}
	return at, nil
}

// flowLineTime is the time layout FlowLine starts a line with.
const flowLineTime = "2006-01-02 15:04:05.000"
