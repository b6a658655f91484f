package mitigation

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// passResult collects one pass's outcome, applied under m.mu at the end.
type passResult struct {
	failed  bool
	aborted bool // the router stalled or went away: skip the rest of the pass
	first   error
}

func (p *passResult) fail(err error) {
	p.failed = true
	if p.first == nil {
		p.first = err
	}
}

// failCall records a failed call; a timeout or a lost connection ends the
// pass, so a stalled router costs one CallTimeout, not one per object.
func (p *passResult) failCall(rs *routerState, err, wrapped error) {
	p.fail(wrapped)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || !rs.r.Connected() {
		p.aborted = true
	}
}

func (m *Manager) add(ctx context.Context, rs *routerState, k objKey, o routeros.Object, now time.Time, res *passResult) {
	if res.aborted {
		return
	}
	var id string
	err := m.call(ctx, func(ctx context.Context) (err error) {
		id, err = rs.r.Add(ctx, o)
		return err
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		rs.objErr[k] = err.Error()
		res.failCall(rs, err, fmt.Errorf("adding %s %s: %w", o.Action, o.Prefix, err))
		return
	}
	o.ID = id
	delete(rs.objErr, k)
	rs.objs[k] = &objState{obj: o, timeout: o.Timeout, setAt: now}
	m.stats.added.Add(1)
}

func (m *Manager) remove(ctx context.Context, rs *routerState, k objKey, o routeros.Object, res *passResult) {
	if res.aborted {
		return
	}
	err := m.call(ctx, func(ctx context.Context) error { return rs.r.Remove(ctx, o) })
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		res.failCall(rs, err, fmt.Errorf("removing %s %s (%s): %w", o.Action, o.Prefix, o.ID, err))
		return
	}
	if st := rs.objs[k]; st != nil && st.obj.ID == o.ID {
		delete(rs.objs, k)
	}
	m.stats.removed.Add(1)
}

func (m *Manager) setTimeout(ctx context.Context, rs *routerState, k objKey, o routeros.Object, want time.Duration, now time.Time, res *passResult) {
	if res.aborted {
		return
	}
	err := m.call(ctx, func(ctx context.Context) error { return rs.r.SetTimeout(ctx, o, want) })
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		rs.objErr[k] = err.Error()
		res.failCall(rs, err, fmt.Errorf("setting timeout of %s (%s): %w", o.Prefix, o.ID, err))
		return
	}
	delete(rs.objErr, k)
	if st := rs.objs[k]; st != nil {
		st.timeout, st.setAt = want, now
	}
	m.stats.timeoutsSet.Add(1)
}

// timeoutWrong says whether an address-list entry's remaining time needs a
// set: longer than wanted by more than the tolerance (a shortened ban), or
// shorter by more than the refresh slack (an extended one).
func (m *Manager) timeoutWrong(routerRemaining, want time.Duration, banKey string) bool {
	if routerRemaining <= 0 {
		return true // no timeout: permanent, or about to vanish
	}
	slack := m.cfg.TimeoutTolerance
	if b := m.bans[banKey]; b != nil {
		slack = m.refreshSlack(b)
	}
	d := want - routerRemaining
	return d > slack || -d > m.cfg.TimeoutTolerance
}

// apply is the light pass: the differences between the desired objects and
// what the manager knows it put on the router.
func (m *Manager) apply(ctx context.Context, rs *routerState) error {
	now := m.now()
	m.mu.Lock()
	desired := m.desiredObjects(now)
	known := make(map[objKey]objState, len(rs.objs))
	for k, st := range rs.objs {
		known[k] = *st
	}
	var refresh []objKey
	for k, d := range desired {
		st, ok := known[k]
		if !ok || k.action != routeros.ActionAddressList || st.timeout <= 0 {
			continue
		}
		left := st.timeout - now.Sub(st.setAt)
		if left <= 0 {
			// The router has expired it by itself: add it again.
			delete(known, k)
			delete(rs.objs, k)
			continue
		}
		if m.timeoutWrong(left, d.obj.Timeout, d.banKey) {
			refresh = append(refresh, k)
		}
	}
	m.mu.Unlock()

	var res passResult
	for k, st := range known {
		if _, ok := desired[k]; !ok {
			m.remove(ctx, rs, k, st.obj, &res)
		}
	}
	for k, d := range desired {
		if _, ok := known[k]; !ok {
			m.add(ctx, rs, k, d.obj, now, &res)
		}
	}
	for _, k := range refresh {
		o := known[k].obj
		m.setTimeout(ctx, rs, k, o, desired[k].obj.Timeout, now, &res)
	}
	m.mu.Lock()
	rs.uncertain = res.failed
	m.mu.Unlock()
	return res.first
}

// reconcile is the full pass: list, then add, remove and fix.
func (m *Manager) reconcile(ctx context.Context, rs *routerState) error {
	m.stats.reconciles.Add(1)
	var listed []routeros.Object
	err := m.call(ctx, func(ctx context.Context) (err error) {
		listed, err = rs.r.List(ctx)
		return err
	})
	if err != nil {
		m.mu.Lock()
		rs.uncertain = true
		m.mu.Unlock()
		return fmt.Errorf("listing: %w", err)
	}
	now := m.now()
	found := make(map[objKey][]routeros.Object)
	for _, o := range listed {
		if !strings.HasPrefix(o.Comment, CommentPrefix) || o.ID == "" {
			continue // never touch what is not ours
		}
		if o.Action == routeros.ActionAddressList && o.List == "" {
			o.List = m.listFor(o.Direction)
		}
		k := keyOf(o)
		found[k] = append(found[k], o)
	}

	m.mu.Lock()
	adopting := m.cfg.AdoptRouterBans && !rs.adopted
	if adopting {
		m.adoptLocked(found, now)
	}
	rs.adopted = true
	m.takeRouterMatchesLocked(found)
	desired := m.desiredObjects(now)
	old := rs.objs
	rs.objs = make(map[objKey]*objState)
	type fix struct {
		k    objKey
		o    routeros.Object
		want time.Duration
	}
	var fixes []fix
	var extra []routeros.Object
	var extraKeys []objKey
	for k, list := range found {
		d, want := desired[k]
		start := 0
		if want {
			o := list[0]
			st := &objState{obj: o, timeout: o.Timeout, setAt: now, packets: o.Packets, packetsAt: now}
			if prev := old[k]; prev != nil && prev.obj.ID == o.ID && !prev.packetsAt.IsZero() {
				st.packets, st.packetsAt = prev.packets, prev.packetsAt // keep the rate's base
			}
			rs.objs[k] = st
			delete(rs.objErr, k)
			if k.action == routeros.ActionAddressList && m.timeoutWrong(o.Timeout, d.obj.Timeout, d.banKey) {
				fixes = append(fixes, fix{k, o, d.obj.Timeout})
			}
			start = 1
		}
		for _, o := range list[start:] {
			extra = append(extra, o)
			extraKeys = append(extraKeys, k)
		}
	}
	var missing []objKey
	for k := range desired {
		if rs.objs[k] == nil {
			missing = append(missing, k)
		}
	}
	m.mu.Unlock()
	if adopting {
		m.flush(ctx)
	}

	var res passResult
	for i, o := range extra {
		m.remove(ctx, rs, extraKeys[i], o, &res)
	}
	for _, f := range fixes {
		m.setTimeout(ctx, rs, f.k, f.o, f.want, now, &res)
	}
	for _, k := range missing {
		m.add(ctx, rs, k, desired[k].obj, now, &res)
	}
	m.mu.Lock()
	rs.listed = true
	rs.uncertain = res.failed
	m.mu.Unlock()
	return res.first
}

// adoptLocked turns the flowshield objects found on a router into bans
// when the store was lost. m.mu held.
func (m *Manager) adoptLocked(found map[objKey][]routeros.Object, now time.Time) {
	keys := make([]objKey, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	// In address order, so MAX_BANS keeps a predictable set.
	sort.Slice(keys, func(i, j int) bool {
		if c := keys[i].prefix.Addr().Compare(keys[j].prefix.Addr()); c != 0 {
			return c < 0
		}
		if keys[i].action != keys[j].action {
			return keys[i].action < keys[j].action
		}
		return keys[i].side < keys[j].side
	})
	for _, k := range keys {
		o := found[k][0]
		dir := o.Direction
		switch k.action {
		case routeros.ActionAddressList:
			dir = detect.In
			if o.List == m.cfg.ListOut {
				dir = detect.Out
			}
		case routeros.ActionBlackhole:
			dir = detect.In
		}
		key := banKey(k.prefix, dir)
		b := m.bans[key]
		if b == nil {
			if m.cfg.MaxBans > 0 && len(m.bans) >= m.cfg.MaxBans {
				continue // removed as an orphan
			}
			_, banTime, dropPPS := m.policy(k.prefix.Addr())
			if e := m.refusalLocked(k.prefix, banTime); e != nil {
				m.stats.unsafeDropped.Add(1)
				m.log.Warn("not adopting a router object the safety rules refuse; removing it", "prefix", k.prefix,
					"action", k.action, "rule", e.Rule, "detail", e.Detail)
				continue // removed as an orphan
			}
			b = &ban{Ban: Ban{Prefix: k.prefix, Direction: dir, Reason: ReasonRestored, CreatedAt: now, ExpiresAt: now.Add(banTime)},
				key: key, banTime: banTime, dropPPS: dropPPS}
			m.bans[key] = b
			m.dirty[key] = true
			m.log.Info("adopted ban from router", "prefix", k.prefix, "direction", dir, "action", k.action)
		}
		if !slices.Contains(b.Actions, k.action) {
			b.Actions = append(b.Actions, k.action)
			m.dirty[key] = true
		}
		if o.Timeout > 0 && k.action == routeros.ActionAddressList {
			b.ExpiresAt = now.Add(o.Timeout)
		}
	}
}

// takeRouterMatchesLocked gives a filter ban whose fingerprint is not
// known (restored from the store after a restart, or adopted) the
// matchers of its rules on the router, so they stay. m.mu held.
func (m *Manager) takeRouterMatchesLocked(found map[objKey][]routeros.Object) {
	taken := map[*ban][]routeros.Match{}
	for k, list := range found {
		if k.action != routeros.ActionFilter {
			continue
		}
		b := m.bans[banKey(k.prefix, list[0].Direction)]
		if b == nil || b.fpKnown || !slices.Contains(b.Actions, routeros.ActionFilter) {
			continue
		}
		if len(taken[b]) < detect.MaxVectors {
			taken[b] = append(taken[b], list[0].Match)
		}
	}
	for b, ms := range taken {
		sort.Slice(ms, func(i, j int) bool { return ms[i].String() < ms[j].String() })
		b.matches, b.fpKnown = ms, true
		m.log.Info("filter rules taken from the router", "prefix", b.Prefix, "direction", b.Direction, "rules", len(ms))
	}
}

// readCounters samples what the router dropped for each ban that can be
// told apart (raw-drop and filter rules; address-list entries alone in
// their list), reports each ban's sum (OnDropRate), keeps it per action
// for the ladder, and extends the bans whose attack the flows no longer
// show but whose rules still drop a flood.
func (m *Manager) readCounters(ctx context.Context, rs *routerState) error {
	now := m.now()
	type sample struct {
		k      objKey
		o      routeros.Object
		banKey string
	}
	type listKey struct {
		v4   bool
		list string
	}
	var due []sample
	m.mu.Lock()
	inList := map[listKey]int{}
	for k, st := range rs.objs {
		if k.action == routeros.ActionAddressList {
			inList[listKey{st.obj.Prefix.Addr().Is4(), k.side}]++
		}
	}
	for k, st := range rs.objs {
		if st.obj.ID == "" {
			continue
		}
		switch k.action {
		case routeros.ActionRawDrop, routeros.ActionFilter:
		case routeros.ActionAddressList:
			if inList[listKey{st.obj.Prefix.Addr().Is4(), k.side}] != 1 {
				// Shared counters: whose drops they are is not known, and a
				// later rate must not span this time.
				st.packetsAt = time.Time{}
				continue
			}
		default:
			continue
		}
		if !st.packetsAt.IsZero() && now.Sub(st.packetsAt) < m.cfg.CounterInterval {
			continue
		}
		b := m.bans[banKey(k.prefix, st.obj.Direction)]
		if b == nil || (b.dropPPS <= 0 && b.Ladder == nil) {
			continue
		}
		due = append(due, sample{k, st.obj, b.key})
	}
	m.mu.Unlock()

	var first error
	rates := map[string]map[routeros.Action]float64{} // per ban, per action
	for _, s := range due {
		var packets uint64
		err := m.call(ctx, func(ctx context.Context) (err error) {
			packets, _, err = rs.r.Counters(ctx, s.o)
			return err
		})
		if err != nil {
			if first == nil {
				first = fmt.Errorf("reading counters of %s: %w", s.o.Prefix, err)
			}
			continue
		}
		m.mu.Lock()
		if st := rs.objs[s.k]; st != nil && st.obj.ID == s.o.ID {
			if !st.packetsAt.IsZero() && packets >= st.packets && now.After(st.packetsAt) {
				if rates[s.banKey] == nil {
					rates[s.banKey] = map[routeros.Action]float64{}
				}
				rates[s.banKey][s.k.action] += float64(packets-st.packets) / now.Sub(st.packetsAt).Seconds()
			}
			st.packets, st.packetsAt = packets, now
		}
		m.mu.Unlock()
	}
	type report struct {
		prefix netip.Prefix
		dir    detect.Direction
		pps    float64
	}
	var reports []report
	m.mu.Lock()
	for key, byAction := range rates {
		b := m.bans[key]
		if b == nil {
			continue
		}
		sum := 0.0
		for _, v := range byAction {
			sum += v
		}
		if !b.attackActive && b.dropPPS > 0 && sum >= b.dropPPS {
			m.extend(b, now)
			m.stats.counterExtensions.Add(1)
		}
		if b.drops == nil {
			b.drops = map[*routerState]dropReading{}
		}
		b.drops[rs] = dropReading{pps: byAction, at: now}
		reports = append(reports, report{b.Prefix, b.Direction, sum})
	}
	m.mu.Unlock()
	if m.cfg.OnDropRate != nil {
		for _, r := range reports {
			m.cfg.OnDropRate(r.prefix, r.dir, r.pps, now)
		}
	}
	if len(due) > 0 {
		m.flush(ctx)
	}
	return first
}
