package mitigation

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// The operator's side of the manager: the ban list, and manual bans and
// unbans (the HTTP API's).

// MaxReasonBytes bounds a manual ban's reason, which the router's
// comment carries: longer ones are cut at a character boundary.
const MaxReasonBytes = 100

// AddManual bans prefix for ttl (the host's ban time when 0). An existing
// ban of the same prefix and direction becomes manual with the new reason
// and end. The reason is made one line of at most MaxReasonBytes (control
// characters become spaces); "" means "manual". A ban the safety rules
// refuse is a *RefusedError (a ttl over MaxBanTime included: refused, not
// cut); a whitelisted prefix ErrWhitelisted.
func (m *Manager) AddManual(ctx context.Context, prefix netip.Prefix, ttl time.Duration, reason string, dir detect.Direction) (Ban, error) {
	if !prefix.IsValid() {
		return Ban{}, fmt.Errorf("adding manual ban: invalid prefix")
	}
	prefix = hostPrefix(prefix)
	now := m.now()
	actions, banTime, dropPPS := m.policy(prefix.Addr())
	actions = manualActions(actions, m.cfg.EscalateAfter)
	if ttl == 0 {
		ttl = banTime
	}
	if reason = oneLine(reason, MaxReasonBytes); reason == "" {
		reason = ReasonManual
	}
	key := banKey(prefix, dir)
	// Checked in the section that adds the ban, so a router's addresses
	// set meanwhile cannot let an unsafe one in.
	m.mu.Lock()
	if e := m.refusalLocked(prefix, ttl); e != nil {
		m.refuseLocked(e, "manual", true)
		m.mu.Unlock()
		return Ban{}, fmt.Errorf("adding manual ban: %w", e)
	}
	if m.whitelisted(prefix) {
		m.mu.Unlock()
		return Ban{}, fmt.Errorf("adding manual ban of %s: %w", prefix, ErrWhitelisted)
	}
	b := m.bans[key]
	if b == nil {
		if m.cfg.MaxBans > 0 && len(m.bans) >= m.cfg.MaxBans {
			m.mu.Unlock()
			return Ban{}, fmt.Errorf("adding manual ban of %s: %w (%d)", prefix, ErrMaxBans, m.cfg.MaxBans)
		}
		b = &ban{Ban: Ban{Prefix: prefix, Direction: dir, Actions: actions, CreatedAt: now}, key: key, dropPPS: dropPPS}
		m.bans[key] = b
		m.stats.bans.Add(1)
	}
	b.Manual, b.Reason, b.banTime, b.ExpiresAt = true, reason, ttl, now.Add(ttl)
	b.AttackID = ""
	m.dirty[key] = true
	pub := m.publicBan(b)
	m.emit(Event{Kind: EventBan, Ban: pub, Reason: reason, Time: now})
	m.mu.Unlock()
	m.log.Info("manual ban", "prefix", prefix, "direction", dir, "ttl", ttl, "reason", reason)
	if err := m.flush(ctx); err != nil {
		return pub, err
	}
	m.kickRouters()
	return pub, nil
}

// manualActions are what a manual ban puts on the router: it has no
// attack, so no fingerprint to filter on and no attack to climb a ladder
// against: the listed actions other than filter, or with a ladder its
// first step that is not filter.
func manualActions(actions []routeros.Action, escalateAfter time.Duration) []routeros.Action {
	actions = slices.DeleteFunc(slices.Clone(actions), func(a routeros.Action) bool { return a == routeros.ActionFilter })
	if escalateAfter > 0 && len(actions) > 1 {
		actions = actions[:1]
	}
	return actions
}

// Unban lifts every ban of prefix (both directions), manual or made for
// an attack; an attack whose ban the operator lifted is not banned again.
func (m *Manager) Unban(ctx context.Context, prefix netip.Prefix) error {
	if !prefix.IsValid() {
		return fmt.Errorf("removing ban: invalid prefix")
	}
	prefix = hostPrefix(prefix)
	now := m.now()
	m.mu.Lock()
	found := false
	for _, d := range []detect.Direction{detect.In, detect.Out} {
		key := banKey(prefix, d)
		b := m.bans[key]
		if b == nil {
			continue
		}
		found = true
		m.unbanLocked(b, now, ReasonManual)
		for _, st := range m.attacks {
			if st.key == key && st.banned {
				st.banned, st.released = false, true
			}
		}
	}
	m.mu.Unlock()
	if !found {
		return fmt.Errorf("removing ban of %s: %w", prefix, ErrNotFound)
	}
	if err := m.flush(ctx); err != nil {
		return err
	}
	m.kickRouters()
	return nil
}

// AttackBanned says whether the attack holds a ban; known is false for an
// attack the manager does not track (ended, or not a host attack).
func (m *Manager) AttackBanned(id string) (banned, known bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.attacks[id]
	if st == nil {
		return false, false
	}
	return st.banned && m.bans[st.key] != nil, true
}

// Bans lists the desired bans with their state on each router, oldest first.
func (m *Manager) Bans() []Ban {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Ban, 0, len(m.bans))
	for _, b := range m.bans {
		out = append(out, m.publicBan(b))
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return banKey(out[i].Prefix, out[i].Direction) < banKey(out[j].Prefix, out[j].Direction)
	})
	return out
}

// publicBan copies b with its router states. Called with m.mu held.
func (m *Manager) publicBan(b *ban) Ban {
	out := b.Ban
	out.Actions = slices.Clone(b.Actions)
	out.Ladder = slices.Clone(b.Ladder)
	out.Routers = nil
	if len(b.Actions) == 0 {
		return out
	}
	for _, rs := range m.routers {
		out.Routers = append(out.Routers, m.routerBanState(rs, b))
	}
	return out
}

// hostPrefix is p masked, an IPv4-mapped prefix as the IPv4 one it is
// (::ffff:203.0.113.0/120 is 203.0.113.0/24).
func hostPrefix(p netip.Prefix) netip.Prefix {
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() {
		a, bits = a.Unmap(), max(bits-96, 0)
	}
	return netip.PrefixFrom(a.WithZone(""), bits).Masked()
}

// oneLine makes s fit on one line of at most maxBytes: control characters
// become spaces, invalid UTF-8 becomes U+FFFD, the ends are trimmed, and
// the cut falls between characters, never inside one.
func oneLine(s string, maxBytes int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.TrimSpace(s)
	if len(s) <= maxBytes {
		return s
	}
	cut := 0
	for i := range s { // i: the start of each character
		if i > maxBytes {
			break
		}
		cut = i
	}
	return strings.TrimSpace(s[:cut])
}
