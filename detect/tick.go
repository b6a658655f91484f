package detect

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// Tick evaluates every tracked host and hostgroup at now (call it once a
// second) and returns what happened: starts, details, updates, ends. It also
// forgets idle hosts and refreshes the totals.
func (e *Engine) Tick(now time.Time) []Event {
	e.tickMu.Lock()
	defer e.tickMu.Unlock()
	S := floorSec(now.UnixNano())
	W := e.winSec
	idle := int64(e.cfg.IdleTimeout / time.Second)
	ng := len(e.cfg.HostGroups)
	var totals [2]vec
	nets := make([][2]vec, len(e.cfg.Networks))
	gSecs := make([][2][]vec, ng)
	for g := range gSecs {
		gSecs[g] = [2][]vec{make([]vec, W+2), make([]vec, W+2)}
	}
	var events []Event

	for si := range e.shards {
		sh := &e.shards[si]
		sh.mu.Lock()
		for k, h := range sh.hosts {
			if S-h.lastSeen > idle && h.dir[In].att == nil && h.dir[Out].att == nil {
				delete(sh.hosts, k)
				continue
			}
			var win, fast, prev [2]vec
			for d := In; d <= Out; d++ {
				win[d], fast[d], prev[d] = h.dir[d].rates(S, W, &e.lay)
				totals[d].add(&win[d])
				if h.network >= 0 {
					nets[h.network][d].add(&win[d])
				}
				if h.group >= 0 && h.dir[d].slots != nil {
					h.dir[d].addSeconds(S, W, gSecs[h.group][d], &e.lay)
				}
			}
			// What the details text shows: the larger of the window
			// average and the last complete second, so an attack declared
			// before the window filled shows its real power.
			shown := win
			shown[In].max(&prev[In])
			shown[Out].max(&prev[Out])
			for d := In; d <= Out; d++ {
				if h.dir[d].slots == nil && h.dir[d].att == nil {
					continue
				}
				e.evalHost(now, hostAddr(k), h, d, &win[d], &fast[d], &shown, &events)
			}
		}
		sh.mu.Unlock()
	}
	for g := 0; g < ng; g++ {
		var win, fast, prev [2]vec
		for d := In; d <= Out; d++ {
			win[d], fast[d], prev[d] = ratesOfSeconds(gSecs[g][d], W)
		}
		shown := win
		shown[In].max(&prev[In])
		shown[Out].max(&prev[Out])
		for d := In; d <= Out; d++ {
			e.evalGroup(now, g, d, &win[d], &fast[d], &shown, &events)
		}
	}

	e.mu.Lock()
	e.totals = totals
	e.netRates = nets
	e.applyEvents(now, events)
	e.mu.Unlock()
	return events
}

func (e *Engine) hostLimits(h *host) *limits {
	if h.group >= 0 {
		return &e.limits[h.group]
	}
	return &e.limits[len(e.limits)-1]
}

func (e *Engine) evalHost(now time.Time, ip netip.Addr, h *host, dir Direction, win, fast *vec, shown *[2]vec, events *[]Event) {
	d := &h.dir[dir]
	lim := e.hostLimits(h)
	if d.att == nil {
		port, share := d.portVote()
		if share < 0.2 {
			port = 0
		}
		group := ""
		if h.group >= 0 {
			group = e.cfg.HostGroups[h.group].Name
		}
		d.att = e.maybeStart(now, &d.aboveSince, lim, win, fast, port, ScopeHost, ip, group, dir, events)
		return
	}
	st := d.att
	port := st.ampPort
	if port == 0 {
		if p, share := d.portVote(); share >= 0.2 {
			port = p
		}
	}
	if e.progress(now, st, lim, win, fast, port, shown, events) {
		d.att = nil
		d.aboveSince = 0
	}
}

func (e *Engine) evalGroup(now time.Time, g int, dir Direction, win, fast *vec, shown *[2]vec, events *[]Event) {
	gs := &e.groupSt[g][dir]
	lim := &e.groupLim[g]
	name := e.cfg.HostGroups[g].Name
	if gs.att == nil {
		gs.att = e.maybeStart(now, &gs.aboveSince, lim, win, fast, 0, ScopeGroup, netip.Addr{}, name, dir, events)
		if gs.att != nil {
			e.groupCols[g][dir].Store(gs.att.col)
		}
		return
	}
	if e.progress(now, gs.att, lim, win, fast, gs.att.ampPort, shown, events) {
		gs.att = nil
		gs.aboveSince = 0
		e.groupCols[g][dir].Store(nil)
	}
}

// maybeStart declares an attack when a limit is crossed: at once for a fast
// crossing, else once the window stayed above for DetectionPeriod.
func (e *Engine) maybeStart(now time.Time, aboveSince *int64, lim *limits, win, fast *vec, ampPort uint16,
	scope string, ip netip.Addr, group string, dir Direction, events *[]Event) *attackState {
	name, isFast := crossed(lim, win, fast, e.cfg.FastFactor)
	if name == "" {
		*aboveSince = 0
		return nil
	}
	if scope == ScopeGroup {
		name = "group_" + name
	}
	if !isFast {
		if *aboveSince == 0 {
			*aboveSince = now.UnixNano()
		}
		if now.UnixNano()-*aboveSince < int64(e.cfg.DetectionPeriod) {
			return nil
		}
	}
	basis := win
	if isFast {
		basis = fast
	}
	typ, proto := classify(basis, ampPort, e.udpSize(basis))
	pps, bps := max(win[mPPS], fast[mPPS]), max(win[mBps], fast[mBps])
	e.seq++
	st := &attackState{
		a: Attack{
			ID:    fmt.Sprintf("%s-%06d", now.UTC().Format("20060102T150405.000Z"), e.seq%1000000),
			Scope: scope, IP: ip, Group: group, Direction: dir,
			Type: typ, Protocol: proto, Threshold: name,
			StartedAt:  now,
			InitialPPS: pps, InitialBps: bps,
			PPS: win[mPPS], Bps: win[mBps], Flows: win[mFlows],
			PeakPPS: pps, PeakBps: bps,
		},
		lastAbove:  now,
		nextUpdate: now.Add(e.cfg.UpdateEvery),
		col:        newCollector(e.cfg.SampleFlows),
	}
	*events = append(*events, Event{Kind: AttackStart, Time: now, Attack: st.a})
	return st
}

// progress moves an active attack on by one evaluation; it reports whether
// the attack ended.
func (e *Engine) progress(now time.Time, st *attackState, lim *limits, win, fast *vec, ampPort uint16,
	rates *[2]vec, events *[]Event) bool {
	a := &st.a
	above := anyAbove(lim, win, e.cfg.EndFraction) || (e.cfg.FastFactor > 0 && anyAbove(lim, fast, e.cfg.FastFactor))
	if above {
		st.lastAbove = now
	}
	a.PPS, a.Bps, a.Flows = win[mPPS], win[mBps], win[mFlows]
	a.PeakPPS = max(a.PeakPPS, win[mPPS], fast[mPPS])
	a.PeakBps = max(a.PeakBps, win[mBps], fast[mBps])
	if now.Sub(st.lastAbove) >= e.cfg.EndAfter {
		a.EndedAt = now
		*events = append(*events, Event{Kind: AttackEnd, Time: now, Attack: *a})
		st.col.full.Store(true)
		return true
	}
	changed := false
	if above && win[mPPS] > 0 {
		size := e.udpSize(win)
		if st.udpSize > 0 {
			size = st.udpSize
		}
		if typ, proto := classify(win, ampPort, size); typ != a.Type || proto != a.Protocol {
			a.Type, a.Protocol, changed = typ, proto, true
		}
	}
	c := st.col
	if !st.detailsSent {
		c.mu.Lock()
		seen := c.seen
		c.mu.Unlock()
		if seen >= e.cfg.DetailsFlows || now.Sub(a.StartedAt) >= e.cfg.DetailsAfter {
			st.detailsSent = true
			c.full.Store(true)
			c.mu.Lock()
			st.ampPort = c.reflectorPort()
			if c.udpAll > 0 {
				st.udpSize = c.udpBits / 8 / c.udpAll
			}
			a.Sample = append([]flow.Record(nil), c.sample...)
			c.mu.Unlock()
			basis := win
			if win[mPPS] <= 0 {
				basis = fast
			}
			if basis[mPPS] > 0 {
				size := e.udpSize(basis)
				if st.udpSize > 0 {
					size = st.udpSize
				}
				a.Type, a.Protocol = classify(basis, st.ampPort, size)
			}
			a.Details = e.detailsText(a, rates, c)
			*events = append(*events, Event{Kind: AttackDetails, Time: now, Attack: *a})
			st.nextUpdate = now.Add(e.cfg.UpdateEvery)
			return false
		}
	}
	// A tick that comes a little early (timer jitter) still counts as due:
	// with 1 s ticks and 1 s updates, a strict comparison would skip every
	// other update.
	if changed || !now.Add(e.cfg.UpdateEvery/10).Before(st.nextUpdate) {
		*events = append(*events, Event{Kind: AttackUpdate, Time: now, Attack: *a})
		st.nextUpdate = now.Add(e.cfg.UpdateEvery)
	}
	return false
}

// applyEvents keeps the registry of active and ended attacks; e.mu is held.
func (e *Engine) applyEvents(now time.Time, events []Event) {
	for i := range events {
		ev := &events[i]
		switch ev.Kind {
		case AttackEnd:
			delete(e.active, ev.Attack.ID)
			e.ended = append(e.ended, ev.Attack)
		default:
			a := ev.Attack
			e.active[a.ID] = &a
		}
	}
	// Keep the last RetainEndedCount, and beyond them those younger than
	// RetainEnded, up to MaxEnded. Samples are dropped past the last
	// RetainEndedCount to bound memory.
	drop := 0
	for drop < len(e.ended) && len(e.ended)-drop > e.cfg.RetainEndedCount &&
		(len(e.ended)-drop > e.cfg.MaxEnded || now.Sub(e.ended[drop].EndedAt) > e.cfg.RetainEnded) {
		drop++
	}
	if drop > 0 {
		e.ended = append(e.ended[:0], e.ended[drop:]...)
	}
	for k := len(e.ended) - e.cfg.RetainEndedCount - 1; k >= 0 && e.ended[k].Sample != nil; k-- {
		e.ended[k].Sample = nil
	}
}

// Attacks returns active attacks, and with activeOnly false the retained
// ended ones too, newest first. Samples are left out; see Attack.
func (e *Engine) Attacks(activeOnly bool) []Attack {
	e.mu.Lock()
	out := make([]Attack, 0, len(e.active)+len(e.ended))
	for _, a := range e.active {
		out = append(out, *a)
	}
	if !activeOnly {
		out = append(out, e.ended...)
	}
	e.mu.Unlock()
	for i := range out {
		out[i].Sample = nil
		out[i].Details = ""
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out
}

// Attack returns one attack with its details and sample.
func (e *Engine) Attack(id string) (Attack, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a, ok := e.active[id]; ok {
		return *a, true
	}
	for i := len(e.ended) - 1; i >= 0; i-- {
		if e.ended[i].ID == id {
			return e.ended[i], true
		}
	}
	return Attack{}, false
}
