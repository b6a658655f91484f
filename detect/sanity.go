package detect

import (
	"container/list"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// timeFix says why a record's times were replaced by its arrival time.
type timeFix uint8

const (
	fixNone     timeFix = iota
	fixZero             // start or end is zero
	fixFuture           // ends after its arrival (+ClockSlack): exporter clock ahead
	fixPast             // ended more than MaxExportDelay before its arrival: clock behind or sysUpTime reset
	fixDuration         // negative or longer than MaxFlowDuration
	fixGarbage          // not a time fix: impossible on LINK_MBPS
	numFixes
)

// normalize makes a record's times trustworthy and decides whether it is
// exporter garbage. Times that disagree with the arrival are replaced by
// the arrival, keeping the record's own duration where that is plausible
// (so a long flow from a broken clock is still spread, not a spike).
func (e *Engine) normalize(r *flow.Record, recv int64) (n norm, fix timeFix, garbage bool) {
	// normalizeInto sets every field but rec, which n, fresh, has zero.
	fix, garbage = e.normalizeInto(r, recv, floorSec(recv), &n)
	return n, fix, garbage
}

// normalizeInto is normalize writing into n, which the hot path has in
// place in its scratch; recvSec is floorSec(recv).
func (e *Engine) normalizeInto(r *flow.Record, recv, recvSec int64, n *norm) (fix timeFix, garbage bool) {
	start, end := r.Start, r.End
	maxDur := int64(e.cfg.MaxFlowDuration)
	switch {
	case start == 0 || end == 0:
		fix = fixZero
		end, start = recv, recv-int64(e.cfg.FallbackDuration)
	default:
		dur := end - start
		if dur < 0 || dur > maxDur {
			fix = fixDuration
			dur = min(max(dur, 0), maxDur)
			start = end - dur
		}
		switch {
		case end > recv+int64(e.cfg.ClockSlack):
			fix = fixFuture
			end, start = recv, recv-dur
		case end < recv-int64(e.cfg.MaxExportDelay):
			fix = fixPast
			end, start = recv, recv-dur
		case end > recv:
			// A little ahead, within the slack: clamp without counting.
			end = recv
			start = min(start, end)
		}
	}
	rate := r.SamplingRate
	if rate == 0 {
		rate = e.cfg.DefaultSamplingRate
	}
	pkts := float64(r.Packets) * float64(rate)
	bitsN := float64(r.Bytes) * 8 * float64(rate)
	// Counters no link can carry within MaxFlowDuration (10^13 packets,
	// 10^16 bits) are garbage whatever LINK_MBPS says; they would otherwise
	// overflow the float32 slots into infinite rates.
	if pkts > 1e13 || bitsN > 1e16 {
		garbage = true
	}
	if link := float64(e.cfg.LinkMbps) * 1e6; link > 0 {
		secs := max(float64(end-start)/1e9, 1)
		if bitsN/secs > link || pkts*float64(e.cfg.MinFrameBytes)*8/secs > link {
			garbage = true
		}
	}
	mask := uint8(1 << catAll)
	var udpPort uint16
	switch r.Proto {
	case flow.ProtoTCP:
		mask |= 1 << catTCP
		if r.TCPFlags&flow.TCPFlagSYN != 0 && r.TCPFlags&flow.TCPFlagACK == 0 {
			mask |= 1 << catSYN
		}
	case flow.ProtoUDP:
		mask |= 1 << catUDP
		if !r.Fragment {
			udpPort = r.SrcPort
		}
	case flow.ProtoICMP, flow.ProtoICMPv6:
		mask |= 1 << catICMP
	}
	if r.Fragment {
		mask |= 1 << catFrag
	}
	// Field by field: a composite literal is built on the stack and copied
	// with wide loads that cannot forward from its narrow stores.
	n.start, n.end, n.recvSec, n.endSec = start, end, recvSec, floorSec(end)
	n.pkts, n.bits = float32(pkts), float32(bitsN)
	n.mask, n.udpPort = mask, udpPort
	return fix, garbage
}

// ExporterStats are, per exporter, the records whose clock was fixed and
// those discarded as garbage, and its reporting timers.
type ExporterStats struct {
	Exporter      netip.Addr
	Garbage       uint64 // impossible on LINK_MBPS, discarded from detection
	ClockZero     uint64 // zero start/end
	ClockFuture   uint64 // ending after arrival
	ClockPast     uint64 // ending long before arrival (sysUpTime reset, clock behind)
	ClockDuration uint64 // negative or impossibly long duration
	LastGarbage   time.Time
	Timers        ExporterTimers
}

type exporterState struct {
	ExporterStats
	lastLog time.Time
	learn   timerLearner
	params  params        // what Consume uses, from learn
	hold    uint8         // the larger holdCode of params, counted in the table's holds
	recency *list.Element // in the table's recency list
}

// exporterTable is touched once per batch and exporter: to read the
// exporter's params, and to add the batch's samples and anomalies. It is
// bounded (MaxExporters): a new exporter past the bound takes the place of
// the one heard from least recently (a list kept in that order: no scan),
// so spoofed sources cannot grow it nor make its upkeep costly.
type exporterTable struct {
	mu      sync.Mutex
	m       map[netip.Addr]*exporterState
	recency list.List // of *exporterState, heard from last first
	max     int
	evicted atomic.Uint64
	// holds counts the exporters per hold code; maxHold is the largest
	// with a count, kept as they change (a group's attack reads it).
	holds   [128]uint32
	maxHold atomic.Uint32
}

// get returns the exporter's state, made (and the table kept in its
// bound) if new, and makes it the most recent; t.mu is held.
func (t *exporterTable) get(exporter netip.Addr) *exporterState {
	if st := t.m[exporter]; st != nil {
		t.recency.MoveToFront(st.recency)
		return st
	}
	if len(t.m) >= t.max {
		old := t.recency.Remove(t.recency.Back()).(*exporterState)
		delete(t.m, old.Exporter)
		t.setHold(old, 0)
		t.holds[0]--
		t.evicted.Add(1)
	}
	st := &exporterState{ExporterStats: ExporterStats{Exporter: exporter}}
	st.recency = t.recency.PushFront(st)
	t.holds[0]++
	t.m[exporter] = st
	return st
}

// setParams makes p what Consume uses for the exporter's records.
func (t *exporterTable) setParams(st *exporterState, p params) {
	st.params = p
	t.setHold(st, max(p.holdCut&^holdCutFlag, p.holdLate))
}

// setHold moves the exporter to hold code h in the counts and refreshes
// maxHold: at most 128 counts read, whatever the table's size.
func (t *exporterTable) setHold(st *exporterState, h uint8) {
	if h == st.hold {
		return
	}
	t.holds[st.hold]--
	t.holds[h]++
	st.hold = h
	top := len(t.holds) - 1
	for top > 0 && t.holds[top] == 0 {
		top--
	}
	t.maxHold.Store(uint32(top))
}

// paramsOf is what Consume uses for the exporter's records.
func (t *exporterTable) paramsOf(exporter netip.Addr) params {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.m[exporter]; st != nil {
		return st.params
	}
	return params{}
}

// expDeltas collects what a batch says of each exporter (a batch is usually
// one datagram, so one exporter) and flushes it under one lock.
type expDeltas struct {
	n    int
	last int // the delta found last
	d    [4]expDelta
	// known are the params of the exporters flushed last, refreshed by
	// each flush (which holds the table's lock anyway), so the next batch
	// of the same exporter takes no lock to read them.
	known     [4]knownParams
	nextKnown int
}

type knownParams struct {
	exporter netip.Addr
	p        params
}

type expDelta struct {
	exporter netip.Addr
	p        params
	count    [numFixes]uint64
	lastRecv int64
	ns       int // samples taken
	skip     int // records to pass over before the next sample
	lag      [batchSamples]int64
	nl       int // long records' durations taken
	long     [batchSamples]int64
}

// find returns the batch's delta of exporter, made with the exporter's
// params if new.
func (x *expDeltas) find(e *Engine, exporter netip.Addr) *expDelta {
	if x.n > 0 && x.d[x.last].exporter == exporter {
		return &x.d[x.last]
	}
	for i := 0; i < x.n; i++ {
		if x.d[i].exporter == exporter {
			x.last = i
			return &x.d[i]
		}
	}
	if x.n == len(x.d) {
		x.flush(e)
	}
	d := &x.d[x.n]
	d.exporter = exporter
	found := false
	for i := range x.known {
		if k := &x.known[i]; k.exporter == exporter && exporter.IsValid() {
			d.p, found = k.p, true
			break
		}
	}
	if !found {
		d.p = e.exporters.paramsOf(exporter)
	}
	d.count, d.lastRecv, d.ns, d.skip, d.nl = [numFixes]uint64{}, 0, 0, 0, 0
	x.last = x.n
	x.n++
	return d
}

// remember keeps an exporter's params for the scratch's next batches.
func (x *expDeltas) remember(exporter netip.Addr, p params) {
	for i := range x.known {
		if x.known[i].exporter == exporter {
			x.known[i].p = p
			return
		}
	}
	x.known[x.nextKnown] = knownParams{exporter, p}
	x.nextKnown = (x.nextKnown + 1) % len(x.known)
}

// sample gives the learner the lag of short records spread over the batch
// (one in stride, batchSamples at most), so that a datagram's order does
// not bias it; and the duration of every long record (up to
// batchSamples), which the active timeout is learned from and which are
// few, as a report of cut records comes in one burst.
// Consume calls it only for a long record or when skip is 0, and counts
// skip down over the others itself.
func (d *expDelta) sample(lagSec, durNs int64, stride int) {
	if durNs >= 15e8 {
		// A long record's lag depends on its length (an active timeout
		// reached before the inactive one exports it sooner): only short
		// ones tell the inactive lag.
		if d.nl < batchSamples {
			d.long[d.nl] = durNs
			d.nl++
		}
		return
	}
	if d.ns < batchSamples {
		d.lag[d.ns] = lagSec
		d.ns++
		d.skip = stride - 1
	}
}

func (x *expDeltas) flush(e *Engine) {
	if x.n == 0 {
		return
	}
	type logLine struct {
		exporter netip.Addr
		total    uint64
	}
	var logs [4]logLine
	nlogs := 0
	t := &e.exporters
	t.mu.Lock()
	for i := 0; i < x.n; i++ {
		d := &x.d[i]
		st := t.get(d.exporter)
		st.ClockZero += d.count[fixZero]
		st.ClockFuture += d.count[fixFuture]
		st.ClockPast += d.count[fixPast]
		st.ClockDuration += d.count[fixDuration]
		if g := d.count[fixGarbage]; g > 0 {
			st.Garbage += g
			at := time.Unix(0, d.lastRecv)
			st.LastGarbage = at
			if at.Sub(st.lastLog) >= e.cfg.GarbageLogEvery || st.lastLog.IsZero() {
				st.lastLog = at
				logs[nlogs] = logLine{d.exporter, st.Garbage}
				nlogs++
			}
		}
		l := &st.learn
		for k := 0; k < d.ns; k++ {
			l.add(d.lag[k])
		}
		for k := 0; k < d.nl; k++ {
			l.addDur(d.long[k])
		}
		if l.sinceRun >= learnEvery || (l.samples < learnEvery && d.ns > 0) {
			l.learn(d.lastRecv)
			t.setParams(st, l.params())
		}
		x.remember(d.exporter, st.params)
	}
	t.mu.Unlock()
	for _, l := range logs[:nlogs] {
		e.log.Warn("exporter sent records impossible on the link; discarded from detection",
			"exporter", l.exporter, "link_mbps", e.cfg.LinkMbps, "garbage_total", l.total)
	}
	x.n = 0
}

// ExporterStats returns the anomaly counters and timers of every exporter
// heard from (at most MaxExporters, those heard from last), sorted by
// address.
func (e *Engine) ExporterStats() []ExporterStats {
	t := &e.exporters
	t.mu.Lock()
	out := make([]ExporterStats, 0, len(t.m))
	for _, st := range t.m {
		s := st.ExporterStats
		s.Timers = st.learn.timers()
		out = append(out, s)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Exporter.Less(out[j].Exporter) })
	return out
}
