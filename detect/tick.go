package detect

// The once-a-second pass: windowed rates per host and per hostgroup,
// thresholds crossed, attacks started, updated and ended. It is one
// file on purpose: an attack's lifecycle reads top to bottom here.

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"time"
	"unsafe"

	"github.com/flowshield/flowshield/flow"
)

// Tick evaluates every tracked host and hostgroup at now (call it once a
// second) and returns what happened: starts, details, updates, ends. It also
// forgets idle hosts and refreshes the totals.
func (e *Engine) Tick(now time.Time) []Event {
	e.tickMu.Lock()
	defer e.tickMu.Unlock()
	W := e.winSec
	t := tickPass{
		now:  now,
		S:    floorSec(now.UnixNano()),
		W:    W,
		idle: int64(e.cfg.IdleTimeout / time.Second),
	}
	ng := len(e.cfg.HostGroups)
	t.gSecs = make([]secSums, ng)
	for g := range t.gSecs {
		t.gSecs[g] = newSecSums(W)
	}
	t.nets = make([][2]winSums, len(e.cfg.Networks)+1)

	for si := range e.shards {
		sh := &e.shards[si]
		sh.mu.Lock()
		// Hosts go through in small batches whose memory is touched
		// first, so the cache misses of a batch overlap instead of
		// stalling one host after the other (100,000 hosts' rings are far
		// larger than the caches).
		var hs [tickBatch]*host
		var k4s [tickBatch]uint32
		n := 0
		for k, h := range sh.v4 {
			hs[n], k4s[n] = h, k
			if n++; n == tickBatch {
				e.tickBatch4(&t, sh, &hs, &k4s, n)
				n = 0
			}
		}
		e.tickBatch4(&t, sh, &hs, &k4s, n)
		for k, h := range sh.v6 {
			if e.tickHost(&t, h, 0, &k) {
				delete(sh.v6, k)
			}
		}
		if sh.over != nil {
			e.tickUntracked(&t, sh.over)
		}
		sh.mu.Unlock()
	}
	secs := make([]vec, ringSeconds(W))
	for g := 0; g < ng; g++ {
		win, fast, prev := t.gSecs[g].rates(W, &e.lay, secs)
		shown := win
		shown[In].max(&prev[In])
		shown[Out].max(&prev[Out])
		for d := In; d <= Out; d++ {
			e.evalGroup(now, g, d, &win[d], &fast[d], &shown, &t.events)
		}
	}

	// The totals and the networks' rates are those of the sums (as a
	// hostgroup's): a host's seconds split between its ring and the
	// untracked rings (it was evicted, then came back) count once.
	w := e.lay.width
	var all [2]winSums
	var totals, untracked [2]vec
	nets := make([][2]vec, len(e.cfg.Networks))
	for d := In; d <= Out; d++ {
		for i := range t.nets {
			all[d].add(&t.nets[i][d], w)
			if i > 0 {
				e.windowRate(&t.nets[i][d], &nets[i-1][d])
			}
		}
		e.windowRate(&all[d], &totals[d])
		e.windowRate(&t.untracked[d], &untracked[d])
	}
	e.mu.Lock()
	e.totals = totals
	e.netRates = nets
	e.untrackedRates = untracked
	e.untrackedHosts = uint64(math.Round(t.hosts.estimate()))
	e.applyEvents(now, t.events)
	e.mu.Unlock()
	return t.events
}

// tickBatch is how many hosts tickBatch4 touches ahead: enough misses to
// keep the memory system busy, few enough to stay in L1.
const tickBatch = 32

// tickBatch4 evaluates the first n IPv4 hosts of hs, keys k4s, after
// loading one word of every cache line it will read.
func (e *Engine) tickBatch4(t *tickPass, sh *shard, hs *[tickBatch]*host, k4s *[tickBatch]uint32, n int) {
	var sink int64
	for _, h := range hs[:n] {
		sink += h.lastSeen + h.dir[In].head + h.dir[Out].head + h.dir[In].aboveSince + h.dir[Out].aboveSince
	}
	var fsink float32
	for _, h := range hs[:n] {
		for d := range h.dir {
			s := h.dir[d].slots
			for i := 0; i < len(s); i += 16 {
				fsink += s[i]
			}
			if len(s) > 0 {
				fsink += s[len(s)-1]
			}
		}
	}
	t.sink += sink + int64(fsink)
	for i, h := range hs[:n] {
		if e.tickHost(t, h, k4s[i], nil) {
			delete(sh.v4, k4s[i])
		}
	}
}

// windowRate is the windowed rate of sums, as a vec.
func (e *Engine) windowRate(s *winSums, v *vec) {
	var c cvec
	s.rate(e.winSec, e.lay.width, &c)
	e.lay.expand(&c, v)
}

// tickUntracked adds a shard's untracked rings to the networks' and
// hostgroups' sums, and takes its distinct addresses (starting them over).
func (e *Engine) tickUntracked(t *tickPass, u *untracked) {
	w := e.lay.width
	for d := In; d <= Out; d++ {
		for i := range u.nets {
			var s winSums
			var fast cvec
			if u.nets[i][d].colSums(t.S, t.W, &e.lay, &s, &fast, nil) {
				t.nets[i][d].add(&s, w)
				t.untracked[d].add(&s, w)
			}
		}
		for g := range u.groups {
			t.gSecs[g].addRing(d, &u.groups[g][d], t.S, t.W, &e.lay)
		}
	}
	t.hosts.merge(&u.hosts)
	u.hosts = hll{}
}

// secSums are per-second sums over rings, per direction, in column
// space: second S-k at k; late is the largest lateSecs of the rings.
type secSums struct {
	secs [2][]cvec
	late [2]int64
}

func newSecSums(W int64) secSums {
	return secSums{secs: [2][]cvec{make([]cvec, ringSeconds(W)), make([]cvec, ringSeconds(W))}, late: [2]int64{1, 1}}
}

// addRing adds ring ds, of direction d, to the sums.
func (s *secSums) addRing(d Direction, ds *dirState, S, W int64, l *layout) {
	ds.addSeconds(S, W, s.secs[d], l)
	s.late[d] = max(s.late[d], ds.lateSecs())
}

// rates are ratesOfSeconds of the sums, per direction; secs (ringSeconds long) is
// scratch.
func (s *secSums) rates(W int64, l *layout, secs []vec) (win, fast, prev [2]vec) {
	for d := range s.secs {
		for k := range s.secs[d] {
			l.expand(&s.secs[d][k], &secs[k])
		}
		win[d], fast[d], prev[d] = ratesOfSeconds(secs, W, s.late[d])
	}
	return win, fast, prev
}

// tickPass is what one Tick accumulates over the hosts, in column space.
type tickPass struct {
	now        time.Time
	S, W, idle int64
	nets       [][2]winSums // per NETWORKS prefix at its index + 1; hosts in none at 0
	gSecs      []secSums    // per hostgroup
	untracked  [2]winSums   // the part of nets counted outside the host table
	hosts      hll          // the untracked addresses since the last Tick
	events     []Event
	sink       int64 // what prefetching loads read, so they are not elided
}

// tickHost evaluates one host (IPv4 key k4, or IPv6 key *k6) and reports
// whether it is idle and to be forgotten. Most hosts are far below every
// threshold: for them the rates stay in column space, and a direction
// without an attack whose rates cross nothing only has its aboveSince
// reset, which is all evalHost would do. Only a host with an attack or a
// crossing gets the full rates and evalHost.
func (e *Engine) tickHost(t *tickPass, h *host, k4 uint32, k6 *[16]byte) bool {
	if t.S-h.lastSeen > t.idle && h.dir[In].att == nil && h.dir[Out].att == nil {
		return true
	}
	w := e.lay.width
	lim := e.hostColLimits(h)
	var win, fast [2]cvec
	var eval [2]bool
	for d := In; d <= Out; d++ {
		ds := &h.dir[d]
		if ds.slots == nil && ds.att == nil {
			continue
		}
		var sums winSums
		if ds.colSums(t.S, t.W, &e.lay, &sums, &fast[d], nil) {
			sums.rate(t.W, w, &win[d])
			t.nets[h.network+1][d].add(&sums, w)
			if h.group >= 0 {
				t.gSecs[h.group].addRing(d, ds, t.S, t.W, &e.lay)
			}
		}
		if ds.att != nil || crossedCols(lim, w, &win[d], &fast[d], e.cfg.FastFactor) {
			eval[d] = true
		} else {
			ds.aboveSince = 0
		}
	}
	if !eval[In] && !eval[Out] {
		return false
	}
	var vwin, vfast, vprev [2]vec
	for d := In; d <= Out; d++ {
		var prev cvec
		h.dir[d].prevCols(t.S, t.W, &e.lay, &prev)
		e.lay.expand(&prev, &vprev[d])
		e.lay.expand(&win[d], &vwin[d])
		e.lay.expand(&fast[d], &vfast[d])
	}
	// What the details text shows: the larger of the window average and
	// the last complete second, so an attack declared before the window
	// filled shows its real power.
	shown := vwin
	shown[In].max(&vprev[In])
	shown[Out].max(&vprev[Out])
	var ip netip.Addr
	if k6 != nil {
		ip = hostAddr6(*k6)
	} else {
		ip = hostAddr4(k4)
	}
	for d := In; d <= Out; d++ {
		if eval[d] {
			e.evalHost(t.now, ip, h, d, &vwin[d], &vfast[d], &shown, &t.events)
		}
	}
	return false
}

// crossedCols reports whether crossed would name a metric, in column
// space: a metric not stored is zero and crosses no positive limit.
func crossedCols(l *cvec, width int, win, fast *cvec, factor float64) bool {
	for c := 0; c < width; c++ {
		if l[c] <= 0 {
			continue
		}
		if factor > 0 && fast[c] >= factor*l[c] {
			return true
		}
		if win[c] > l[c] {
			return true
		}
	}
	return false
}

func (e *Engine) hostColLimits(h *host) *cvec {
	if h.group >= 0 {
		return &e.colLimits[h.group]
	}
	return &e.colLimits[len(e.colLimits)-1]
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
		if d.att != nil {
			d.att.votePort = port
			d.att.holdCut, d.att.holdLate = d.holdCut, d.holdLate
			if d.holdCut != 0 {
				// the records that declared it were cut ones, or came
				// with some: the cut is about now
				d.att.lastCut = now.Unix()
			}
		}
		return
	}
	st := d.att
	st.holdCut, st.holdLate = max(st.holdCut, d.holdCut), max(st.holdLate, d.holdLate)
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
	// A group's attack is fed by every exporter: it holds as long as the
	// slowest one may stay silent.
	gs.att.holdLate = uint8(e.exporters.maxHold.Load())
	if e.progress(now, gs.att, lim, win, fast, gs.att.ampPort, shown, events) {
		gs.att = nil
		gs.aboveSince = 0
		e.groupCols[g][dir].Store(nil)
	} else if c := gs.att.col; e.groupCols[g][dir].Load() != c {
		e.groupCols[g][dir].Store(c) // a new sample (refingerprint)
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
	pps, bps := max(win[mPPS], fast[mPPS]), max(win[mBPS], fast[mBPS])
	e.seq++
	limit, sampled := e.cfg.SampleFlows, true
	if e.cfg.MaxSampledAttacks > 0 && e.sampled >= e.cfg.MaxSampledAttacks {
		limit, sampled = 0, false
		e.unsampled.Add(1)
	} else {
		e.sampled++
	}
	st := &attackState{
		a: Attack{
			ID:    fmt.Sprintf("%s-%06d", now.UTC().Format("20060102T150405.000Z"), e.seq%1000000),
			Scope: scope, IP: ip, Group: group, Direction: dir,
			Type: typ, Protocol: proto, Threshold: name,
			StartedAt:  now,
			InitialPPS: pps, InitialBPS: bps,
			PPS: win[mPPS], BPS: win[mBPS], Flows: win[mFlows],
			PeakPPS: pps, PeakBPS: bps,
		},
		lastAbove:  now,
		nextUpdate: now.Add(e.cfg.UpdateEvery),
		col:        newSampler(limit, scope == ScopeGroup),
		sampled:    sampled,
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
	a.PPS, a.BPS, a.Flows = win[mPPS], win[mBPS], win[mFlows]
	if !st.dropAt.IsZero() && now.Sub(st.dropAt) <= e.cfg.EndAfter {
		// The ban blinds the flows: the router's drops are the flood.
		a.PPS = max(a.PPS, st.dropPPS)
	}
	a.PeakPPS = max(a.PeakPPS, a.PPS, fast[mPPS])
	a.PeakBPS = max(a.PeakBPS, win[mBPS], fast[mBPS])
	if e.over(now, st) {
		if st.sampled {
			e.sampled--
		}
		a.EndedAt = now
		*events = append(*events, Event{Kind: AttackEnd, Time: now, Attack: *a})
		if !st.col.full.Load() {
			st.col.full.Store(true)
		}
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
	if !st.detailsSent && st.col.done(now, a.StartedAt, e.cfg.DetailsFlows, e.cfg.DetailsAfter) {
		st.detailsSent = true
		basis := win
		if win[mPPS] <= 0 {
			basis = fast
		}
		// No UDP in the sample: a ban that works blinds the flows within a
		// second, so the records that declared the attack may be all there
		// was. Their vote stands.
		t := st.takeSample(st.votePort)
		e.describe(st, &t, fingerprintOf(t.sample, e.cfg.DefaultSamplingRate, mixOf(fast)), basis, fast, rates)
		*events = append(*events, Event{Kind: AttackDetails, Time: now, Attack: *a})
		st.nextUpdate = now.Add(e.cfg.UpdateEvery)
		st.fingerprintAt = now
		return false
	}
	if !st.resampleFrom.IsZero() && st.col.done(now, st.resampleFrom, e.cfg.DetailsFlows, e.cfg.DetailsAfter) {
		if e.refingerprint(st, win, fast, rates) {
			*events = append(*events, Event{Kind: AttackDetails, Time: now, Attack: *a})
			st.nextUpdate = now.Add(e.cfg.UpdateEvery)
			st.fingerprintAt = now
			return false
		}
		st.fingerprintAt = now
	}
	if changed && st.detailsSent && st.sampled && e.cfg.SampleFlows > 0 {
		st.vectorChanged = true
	}
	if st.vectorChanged && st.resampleFrom.IsZero() && now.Sub(st.fingerprintAt) >= refingerprintAfter {
		// A vector change: a new sample, for a new fingerprint if it
		// differs (the first sample describes what came first).
		st.vectorChanged = false
		st.col = newSampler(e.cfg.SampleFlows, st.col.shared)
		st.resampleFrom = now
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

// refingerprintAfter is the least time between an attack's fingerprints:
// a vector change takes a new sample only this long after the last one,
// so an attack that flips between two vectors every few seconds makes a
// new AttackDetails (a notify script run, a Slack message) at most twice
// a minute.
const refingerprintAfter = 30 * time.Second

// describe makes an attack's details from what its sampler gathered
// (t) and the rates (basis: what classifies it; rates: what the details
// show): the reflector port, the type, the fingerprint (fp, the sample's;
// nil: that of the counters' busiest seconds, fast), the details text.
// Then the sampler goes.
func (e *Engine) describe(st *attackState, t *taken, fp *Fingerprint, basis, fast *vec, rates *[2]vec) {
	a := &st.a
	st.ampPort = t.ampPort
	if t.udpSize > 0 {
		st.udpSize = t.udpSize
	}
	a.Sample = t.sample
	if basis[mPPS] > 0 {
		size := e.udpSize(basis)
		if st.udpSize > 0 {
			size = st.udpSize
		}
		a.Type, a.Protocol = classify(basis, st.ampPort, size)
	}
	if fp == nil {
		port := uint16(0)
		if _, amp := reflectorTypes[st.ampPort]; amp && a.Type == reflectorTypes[st.ampPort] {
			port = st.ampPort
		}
		fp = fingerprintOfCounters(fast, port, a.IP.Is6() && !a.IP.Is4In6())
	}
	a.Fingerprint = fp
	a.Details = e.detailsText(a, rates, t.c)
	st.releaseSampler()
}

// refingerprint ends the new sample taken after a vector change: when it
// gives a fingerprint with other vectors, the attack is described again
// from it (and true is returned, for a new AttackDetails); else it stays
// as it was (a ban that blinds the flows leaves the sample empty).
func (e *Engine) refingerprint(st *attackState, win, fast *vec, rates *[2]vec) bool {
	st.resampleFrom = time.Time{}
	t := st.takeSample(st.ampPort)
	fp := fingerprintOf(t.sample, e.cfg.DefaultSamplingRate, mixOf(fast))
	if fp == nil || fp.sameVectors(st.a.Fingerprint) {
		st.releaseSampler()
		return false
	}
	basis := win
	if win[mPPS] <= 0 {
		basis = fast
	}
	e.describe(st, &t, fp, basis, fast, rates)
	return true
}

// over says whether an attack's hysteresis and holds have all passed: the
// end is not declared before the exporter could have reported traffic
// that goes on (a long flow cut by a 60 s active timeout shows again only
// a minute after its last cut).
func (e *Engine) over(now time.Time, st *attackState) bool {
	since := now.Sub(st.lastAbove)
	if since < e.cfg.EndAfter || since < holdDuration(st.holdLate) {
		return false
	}
	if st.holdCut == 0 {
		return true
	}
	from := st.lastAbove
	if cut := time.Unix(st.lastCut, 0); st.lastCut != 0 && cut.Before(from) {
		from = cut
	}
	return now.Sub(from) >= holdDuration(st.holdCut)
}

// applyEvents keeps the registry of active and ended attacks; e.mu is held.
func (e *Engine) applyEvents(now time.Time, events []Event) {
	for i := range events {
		ev := &events[i]
		switch ev.Kind {
		case AttackEnd:
			delete(e.active, ev.Attack.ID)
			e.ended = append(e.ended, ev.Attack)
			e.endedBytes += attackBytes(&ev.Attack)
		default:
			a := ev.Attack
			e.active[a.ID] = &a
		}
	}
	e.retainEnded(now)
}

// retainEnded keeps the last RetainEndedCount ended attacks whole, and
// beyond them those younger than RetainEnded, up to MaxEnded, without
// their flow samples, and within MaxEndedBytes: the oldest lose their
// details first, then go. e.mu is held.
func (e *Engine) retainEnded(now time.Time) {
	keep := e.cfg.RetainEndedCount
	drop := 0
	for drop < len(e.ended)-keep && (len(e.ended)-drop > e.cfg.MaxEnded || now.Sub(e.ended[drop].EndedAt) > e.cfg.RetainEnded) {
		if now.Sub(e.ended[drop].EndedAt) <= e.cfg.RetainEnded {
			e.endedForgotten++
		}
		drop++
	}
	e.dropEnded(drop)
	for k := len(e.ended) - keep - 1; k >= 0 && e.ended[k].Sample != nil; k-- {
		e.endedBytes -= sampleBytes(e.ended[k].Sample)
		e.ended[k].Sample = nil
	}
	// e.ended[:endedBare] have no details (nor sample): the shedding goes
	// on from there.
	for ; e.endedBytes > e.cfg.MaxEndedBytes && e.endedBare < len(e.ended)-keep; e.endedBare++ {
		a := &e.ended[e.endedBare]
		if a.Details != "" || a.Sample != nil || a.Fingerprint != nil {
			e.endedBytes -= len(a.Details) + sampleBytes(a.Sample) + fingerprintBytes(a.Fingerprint)
			a.Details, a.Sample, a.Fingerprint = "", nil, nil
			e.endedShed++
		}
	}
	drop = 0
	for bytes := e.endedBytes; bytes > e.cfg.MaxEndedBytes && drop < len(e.ended)-keep; drop++ {
		bytes -= attackBytes(&e.ended[drop])
		e.endedForgotten++
	}
	e.dropEnded(drop)
}

// dropEnded forgets the n oldest ended attacks; e.mu is held.
func (e *Engine) dropEnded(n int) {
	if n == 0 {
		return
	}
	for i := range e.ended[:n] {
		e.endedBytes -= attackBytes(&e.ended[i])
	}
	// Cleared so their strings and samples go; the array's front is
	// reused when append next grows it.
	clear(e.ended[:n])
	e.ended = e.ended[n:]
	e.endedBare = max(e.endedBare-n, 0)
	e.endedBase += n
}

// attackBytes estimates what a retained attack holds: its summary, its
// strings made per attack (the ID, the details) and its flow sample.
func attackBytes(a *Attack) int {
	return int(unsafe.Sizeof(*a)) + len(a.ID) + len(a.Details) + sampleBytes(a.Sample) + fingerprintBytes(a.Fingerprint)
}

func sampleBytes(s []flow.Record) int { return cap(s) * int(unsafe.Sizeof(flow.Record{})) }

// Attacks returns active attacks, and with activeOnly false the retained
// ended ones too, newest first. Samples are left out; see Attack. The
// ended ones are copied a chunk at a time (see eachEnded).
func (e *Engine) Attacks(activeOnly bool) []Attack {
	e.mu.Lock()
	out := make([]Attack, 0, len(e.active)+len(e.ended))
	for _, a := range e.active {
		out = append(out, *a)
	}
	from, to := e.endedSpan()
	e.mu.Unlock()
	if !activeOnly {
		e.eachEnded(from, to, func(chunk []Attack) bool {
			out = append(out, chunk...)
			return true
		})
	}
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
	if a, ok := e.active[id]; ok {
		e.mu.Unlock()
		return *a, true
	}
	from, to := e.endedSpan()
	e.mu.Unlock()
	var found Attack
	ok := false
	e.eachEnded(from, to, func(chunk []Attack) bool {
		for i := range chunk {
			if chunk[i].ID == id {
				found, ok = chunk[i], true
				return false
			}
		}
		return true
	})
	return found, ok
}

// endedChunk is how many ended attacks a reader copies or looks at per
// hold of e.mu (a few hundred KB of summaries): Tick waits behind a
// listing of 60,000 at most that long.
const endedChunk = 1024

// endedSpan is the ended attacks there are now, as positions counted since
// start; e.mu is held.
func (e *Engine) endedSpan() (from, to int) {
	return e.endedBase, e.endedBase + len(e.ended)
}

// eachEnded calls fn with e.mu held on the ended attacks of span
// [from, to), oldest first, endedChunk at a time, releasing e.mu between
// chunks, until fn returns false. Those forgotten meanwhile are skipped
// (a RestoreEnded meanwhile, at start, may make it miss or repeat some).
func (e *Engine) eachEnded(from, to int, fn func([]Attack) bool) {
	for from < to {
		e.mu.Lock()
		lo := max(from, e.endedBase) - e.endedBase
		hi := min(to-e.endedBase, len(e.ended), lo+endedChunk)
		if lo >= hi {
			e.mu.Unlock()
			return
		}
		more := fn(e.ended[lo:hi])
		from = e.endedBase + hi
		e.mu.Unlock()
		if !more {
			return
		}
	}
}

// RestoreEnded adds attacks that ended before a restart (from the store's
// history) to the ended ones, under the same retention, so the list the
// API gives survives restarts as the contract's 24 hours or 1,000 say.
// Attacks not ended, or already known, are skipped. It returns how many
// were added.
func (e *Engine) RestoreEnded(now time.Time, attacks []Attack) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	known := make(map[string]bool, len(e.ended)+len(e.active))
	for i := range e.ended {
		known[e.ended[i].ID] = true
	}
	for id := range e.active {
		known[id] = true
	}
	merged := make([]Attack, 0, len(attacks)+len(e.ended))
	for _, a := range attacks {
		if a.EndedAt.IsZero() || known[a.ID] {
			continue
		}
		known[a.ID] = true
		merged = append(merged, a)
	}
	added := len(merged)
	merged = append(merged, e.ended...)
	sort.SliceStable(merged, func(i, j int) bool { return merged[i].EndedAt.Before(merged[j].EndedAt) })
	e.ended = merged
	// Restored ones are interleaved: every sample past the retained count
	// goes here (retainEnded stops at the first already dropped), and the
	// shedding of details starts over from the oldest.
	for k := 0; k < len(e.ended)-e.cfg.RetainEndedCount; k++ {
		e.ended[k].Sample = nil
	}
	e.endedBytes, e.endedBare = 0, 0
	for i := range e.ended {
		e.endedBytes += attackBytes(&e.ended[i])
	}
	e.retainEnded(now)
	return added
}
