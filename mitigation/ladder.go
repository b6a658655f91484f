package mitigation

import (
	"net/netip"
	"slices"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// The filter action and the escalation ladder.
//
// Filter: a ban whose actions include filter gets one raw prerouting drop
// rule per vector of its attack's fingerprint that RouterOS can match
// (routeros.MatchOf; at most detect.MaxVectors), on the victim's address.
// The fingerprint comes with the attack's details (a few seconds after its
// start): until then the ban's filter has no rule and shows pending. When
// a new fingerprint replaces it during the attack, the rules follow (the
// new ones are added, the stale ones removed by the next pass). A
// fingerprint with no vector a rule can match cannot be filtered: on a
// ladder the ban takes its next step at once (reason no_fingerprint);
// with ESCALATE_AFTER=0 the other listed actions stand alone, and with
// filter alone the ban has nothing on the router (logged). After a
// restart, the fingerprint is not in the store: the ban takes its rules'
// matchers from the router on the first full pass. A manual ban has no
// fingerprint, so it takes the other actions only.
//
// Ladder (EscalateAfter > 0): a ban starts at the ladder's first action
// and takes the next one, keeping the earlier ones in force, when at least
// EscalateAfter after its last step (a filter's from when its fingerprint
// came; and never before the detector's
// window, RateWindow, plus 2 s: until then its rates still hold traffic
// from before the step) the attack is still on and holds:
//   - a filter step holds while its rules keep dropping (the summed rate
//     of their counters above 0) and what still reaches the victim, the
//     detector's current rates, is above one of the host's thresholds
//     (AboveThreshold): the filter misses part of the flood;
//   - an address-list or raw-drop step drops all of the victim's traffic,
//     so nothing reaches it: the step holds while the ban's drop counters
//     (all its steps' together: the filter placed first drops its part)
//     grow at least at the host's pps threshold (the flood goes on at
//     strength, and the next step, usually blackhole, moves the drop
//     upstream). An
//     address-list entry sharing its list with another ban of its family
//     has no counters of its own: such a step climbs on saturation only.
//
// When the uplink is saturated (UplinkSaturated) a ban whose ladder holds
// blackhole goes to it at once, however long its step has stood, and any
// other ladder's ban takes its next step once EscalateAfter has passed.
// Earlier steps stay in force: the narrow filter keeps dropping what it
// matches and its counters keep measuring the flood, which keeps the
// attack (and the ban) on after the next step blinds the flows and which a
// blackhole route cannot count. Every step after the first is an escalate
// event; the ladder restarts its clock (not its steps) after a restart.

// dropReading is one router's last drop rates for a ban, per action.
type dropReading struct {
	pps map[routeros.Action]float64
	at  time.Time
}

// startLadder sets the ban's first step. m.mu held.
func (m *Manager) startLadder(b *ban, actions []routeros.Action) {
	if m.cfg.EscalateAfter <= 0 || len(actions) < 2 {
		b.Actions, b.Ladder = actions, nil
		return
	}
	b.Ladder = actions
	b.Actions = actions[:1:1]
}

// currentStep is the last action taken, "" for none.
func currentStep(b *ban) routeros.Action {
	if len(b.Actions) == 0 {
		return ""
	}
	return b.Actions[len(b.Actions)-1]
}

// nextStep is the ladder's action after the current step.
func nextStep(b *ban) (routeros.Action, bool) {
	i := slices.Index(b.Ladder, currentStep(b))
	if i < 0 || i+1 >= len(b.Ladder) {
		return "", false
	}
	return b.Ladder[i+1], true
}

// filterMatches are the rules a fingerprint needs: one per vector RouterOS
// can match, without duplicates, at most detect.MaxVectors.
func filterMatches(fp *detect.Fingerprint, ipv6 bool) []routeros.Match {
	var out []routeros.Match
	for i := range fp.Vectors {
		mt, ok := routeros.MatchOf(&fp.Vectors[i], ipv6)
		if ok && !slices.Contains(out, mt) && len(out) < detect.MaxVectors {
			out = append(out, mt)
		}
	}
	return out
}

// applyFingerprint gives the ban its filter rules' matchers; true when
// they changed. m.mu held.
func (m *Manager) applyFingerprint(b *ban, fp *detect.Fingerprint, now time.Time) bool {
	if fp == nil || b.Manual {
		return false
	}
	matches := filterMatches(fp, b.Prefix.Addr().Is6())
	if b.fpKnown && slices.Equal(matches, b.matches) {
		return false
	}
	if !b.fpKnown && currentStep(b) == routeros.ActionFilter {
		// The filter's time starts when it has rules.
		b.stepAt = now
	}
	b.matches, b.fpKnown = matches, true
	if len(matches) > 0 {
		if slices.Contains(b.Actions, routeros.ActionFilter) {
			m.log.Info("filter rules", "prefix", b.Prefix, "direction", b.Direction, "attack_id", b.AttackID, "rules", len(matches))
		}
		return true
	}
	if currentStep(b) != routeros.ActionFilter {
		return true
	}
	if next, ok := nextStep(b); ok {
		m.escalateLocked(b, next, ReasonNoFingerprint, now)
	} else {
		m.log.Warn("the attack's fingerprint has no vector a rule can match: the filter holds nothing",
			"prefix", b.Prefix, "direction", b.Direction, "attack_id", b.AttackID, "actions", b.Actions)
	}
	return true
}

// onDetails takes an attack's new details: its ban's filter follows the
// fingerprint. m.mu held.
func (m *Manager) onDetails(ev detect.Event) bool {
	st := m.attacks[ev.Attack.ID]
	if st == nil {
		return false
	}
	st.attack = ev.Attack
	if !st.banned {
		return false
	}
	b := m.bans[st.key]
	if b == nil || b.AttackID != ev.Attack.ID {
		return false
	}
	return m.applyFingerprint(b, ev.Attack.Fingerprint, ev.Time)
}

// escalateLocked takes the step to, keeping the earlier ones. m.mu held.
func (m *Manager) escalateLocked(b *ban, to routeros.Action, reason string, now time.Time) {
	if slices.Contains(b.Actions, to) {
		return
	}
	b.Actions = append(slices.Clip(b.Actions), to)
	b.stepAt = now
	m.dirty[b.key] = true
	m.stats.escalations.Add(1)
	var a detect.Attack
	if st := m.attacks[b.AttackID]; st != nil {
		a = st.attack
	}
	m.emit(Event{Kind: EventEscalate, Ban: m.publicBan(b), Attack: a, Reason: reason, Time: now})
	m.log.Warn("escalate", "prefix", b.Prefix, "direction", b.Direction, "to", to, "reason", reason,
		"actions", b.Actions, "attack_id", b.AttackID)
}

// toBlackholeLocked sends a ban whose ladder holds blackhole there at
// once (a saturated uplink); false when it cannot. m.mu held.
func (m *Manager) toBlackholeLocked(b *ban, now time.Time) bool {
	if !slices.Contains(b.Ladder, routeros.ActionBlackhole) || slices.Contains(b.Actions, routeros.ActionBlackhole) {
		return false
	}
	m.escalateLocked(b, routeros.ActionBlackhole, ReasonUplinkSaturated, now)
	return true
}

// dropPPS is the summed drop rate over the routers of the current step's
// objects (all the ban's objects with all), from readings taken after the
// step began; false when there is none.
func dropPPS(b *ban, all bool) (float64, bool) {
	step := currentStep(b)
	sum, fresh := 0.0, false
	for _, r := range b.drops {
		if r.at.Before(b.stepAt) {
			continue
		}
		for a, v := range r.pps {
			if all || a == step {
				sum, fresh = sum+v, true
			}
		}
	}
	return sum, fresh
}

// judgeAfter is how long a step stands before it is judged: ESCALATE_AFTER,
// and at least until the detector's window (and the exports' second of
// delay) holds nothing from before the step.
func (m *Manager) judgeAfter() time.Duration {
	return max(m.cfg.EscalateAfter, m.cfg.RateWindow+2*time.Second)
}

// climb moves up their ladder the bans whose step does not hold; true
// when one moved.
func (m *Manager) climb(now time.Time) bool {
	if m.cfg.EscalateAfter <= 0 {
		return false
	}
	saturated := m.cfg.UplinkSaturated != nil && m.cfg.UplinkSaturated()
	type candidate struct {
		key string
		ip  netip.Addr
		dir detect.Direction
	}
	var due []candidate
	changed := false
	m.mu.Lock()
	for _, b := range m.bans {
		if _, ok := nextStep(b); !ok {
			continue
		}
		if saturated && m.toBlackholeLocked(b, now) {
			changed = true
			continue
		}
		if b.attackActive && now.Sub(b.stepAt) >= m.judgeAfter() {
			due = append(due, candidate{b.key, b.Prefix.Addr(), b.Direction})
		}
	}
	m.mu.Unlock()
	if len(due) == 0 {
		return changed
	}
	above := make([]bool, len(due))
	for i, c := range due {
		above[i] = m.cfg.AboveThreshold != nil && m.cfg.AboveThreshold(c.ip, c.dir)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range due {
		b := m.bans[c.key]
		if b == nil || !b.attackActive || now.Sub(b.stepAt) < m.judgeAfter() {
			continue
		}
		next, ok := nextStep(b)
		if !ok {
			continue
		}
		switch {
		case saturated:
			m.escalateLocked(b, next, ReasonUplinkSaturated, now)
		case attackHolds(b, above[i]):
			m.escalateLocked(b, next, ReasonNotHeld, now)
		default:
			continue
		}
		changed = true
	}
	return changed
}

// attackHolds says whether the attack holds against the ban's current step (see
// the file's comment); above is AboveThreshold's answer.
func attackHolds(b *ban, above bool) bool {
	switch currentStep(b) {
	case routeros.ActionFilter:
		pps, fresh := dropPPS(b, false)
		return fresh && pps > 0 && above
	case routeros.ActionAddressList, routeros.ActionRawDrop:
		pps, fresh := dropPPS(b, true)
		return fresh && pps > 0 && pps >= b.dropPPS
	}
	return false
}
