package mitigation

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/storage"
)

// BanStore persists the desired bans; storage.Store implements it. The
// store owns their encoding.
type BanStore interface {
	// LoadBans returns the stored bans, and apart the keys of stored
	// values that do not decode, to delete.
	LoadBans(ctx context.Context) ([]storage.BanRecord, []storage.BadRecord, error)
	UpdateBans(ctx context.Context, put []storage.BanRecord, del []string) error
}

func recordOf(b *ban) storage.BanRecord {
	return storage.BanRecord{
		Prefix: b.Prefix, Direction: b.Direction, Actions: actionNames(b.Actions), Reason: b.Reason, AttackID: b.AttackID,
		Manual: b.Manual, CreatedAt: b.CreatedAt, ExpiresAt: b.ExpiresAt, BanTime: b.banTime,
	}
}

func banOfRecord(r storage.BanRecord) *ban {
	b := &ban{Ban: Ban{Prefix: r.Prefix, Direction: r.Direction, Actions: cleanActions(actionsNamed(r.Actions)), Reason: r.Reason,
		AttackID: r.AttackID, Manual: r.Manual, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt},
		banTime: r.BanTime}
	b.key = r.Key()
	b.persistedExpires = b.ExpiresAt
	return b
}

// restore loads the stored bans: the ones still running come back (their
// attacks count as ended), the expired ones are unbanned, and the ones the
// safety rules refuse (an older version's) are dropped.
func (m *Manager) restore(ctx context.Context) error {
	if m.store == nil {
		return nil
	}
	stored, bad, err := m.store.LoadBans(ctx)
	if err != nil {
		return fmt.Errorf("restoring bans: %w", err)
	}
	now := m.now()
	m.mu.Lock()
	for _, r := range bad {
		m.stats.decodeErrors.Add(1)
		m.log.Warn("dropping undecodable stored ban", "key", r.Key, "error", r.Err)
		m.dirty[r.Key] = true // absent from m.bans: deleted at flush
	}
	for _, r := range stored {
		b := banOfRecord(r)
		if b.banTime <= 0 {
			b.banTime = m.cfg.BanTime
		}
		var ladder []routeros.Action
		ladder, _, b.dropPPS = m.policy(b.Prefix.Addr())
		if !b.Manual && m.cfg.EscalateAfter > 0 && len(ladder) > 1 && slices.Contains(ladder, currentStep(b)) {
			// The store holds the steps taken; the ladder is the
			// configuration's, and its clock starts again.
			b.Ladder, b.stepAt = ladder, now
		}
		m.bans[b.key] = b
	}
	m.dropUnsafeLocked(now)
	m.mu.Unlock()
	m.log.Info("restored bans", "count", len(m.bans))
	m.expire(now)
	return m.flush(ctx)
}

// flush writes the changed bans in one batch.
func (m *Manager) flush(ctx context.Context) error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	m.mu.Lock()
	if len(m.dirty) == 0 || m.store == nil {
		clear(m.dirty)
		m.mu.Unlock()
		return nil
	}
	var put []storage.BanRecord
	var del []string
	written := make(map[string]time.Time)
	for k := range m.dirty {
		b := m.bans[k]
		if b == nil {
			del = append(del, k)
			continue
		}
		put = append(put, recordOf(b))
		written[k] = b.ExpiresAt
	}
	clear(m.dirty)
	m.mu.Unlock()

	err := m.store.UpdateBans(ctx, put, del)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.stats.persistErrors.Add(1)
		// A failing disk fails every retry: one line a minute says so.
		if now := m.now(); now.Sub(m.persistLoggedAt) >= time.Minute {
			m.persistLoggedAt = now
			m.log.Error("saving bans failed; they stay in force and the write is retried (logged once a minute)",
				"error", err, "failures", m.stats.persistErrors.Load())
		}
		for _, r := range put {
			m.dirty[r.Key()] = true
		}
		for _, k := range del {
			m.dirty[k] = true
		}
		return fmt.Errorf("saving bans: %w", err)
	}
	for k, exp := range written {
		if b := m.bans[k]; b != nil {
			b.persistedExpires = exp
		}
	}
	return nil
}

// actionNames and actionsNamed convert to and from the store's plain names.
func actionNames(as []routeros.Action) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = string(a)
	}
	return out
}

func actionsNamed(names []string) []routeros.Action {
	out := make([]routeros.Action, len(names))
	for i, n := range names {
		out[i] = routeros.Action(n)
	}
	return out
}
