package detect

import (
	"math"
	"net/netip"
	"time"
)

// An exporter's reporting timers, learned from what it sends.
//
// A router reports a flow when it has been idle for the inactive timeout
// (the record arrives that long after the flow's last packet) or when it
// has lasted the active timeout (the record is cut and the flow goes on in
// the cache). So records from an exporter fall into two populations: the
// prompt ones (cut records, 1 s timers) with an arrival lag under 4 s, and
// the late ones, whose lag starts at the inactive timeout (RouterOS: 15 s
// by default) and spreads by the exporter's scan interval (softflowd's
// expiry interval: up to a minute).
//
// The learner keeps two histograms per exporter: the arrival lag of a
// sample of its short records (under 1.5 s) in whole seconds, and the
// duration of its long records. A short record's lag is the inactive
// timeout; a long one's may be less, when the active timeout (counted from
// its first packet) came first: A - D for a record of length D. From them:
//   - shift: the lower edge of the late population (its 1st percentile),
//     taken at once when the population is tight (a router that scans its
//     cache every second), else once it held for 5 s. A record whose own lag reaches the shift
//     is moved forward by it (one within a second below it, to its
//     arrival: whole-second lags are up to a second off): it lands where the
//     exporter's usual lag puts it, at or just before its arrival, so it
//     counts in the per-host ring (WINDOW + 4 s) with its real length, and
//     every record moved by the same amount keeps its spacing to the
//     others: a burst of records that ended over a minute (softflowd's
//     expiry interval) is never piled into one second. A record not as late
//     is not moved (a prompt one lands in the ring as with 1 s timers; a
//     late one from before the shift settled falls before the ring and is
//     lost, never piled). Records are moved, not the ring stretched, so a
//     host costs no more memory whatever the timers.
//   - active timeout: the largest duration carried by a clear spike of
//     records (cut records all last the active timeout).
//   - hold: how long the exporter may stay silent about traffic that still
//     goes on. For a host with cut records, the larger of the active
//     timeout and the lag, counted from the last cut record (the next cut of
//     a flow that goes on comes an active timeout later) or the attack's
//     last sign, whichever is earlier; for a bursty exporter, the late
//     population's spread, from the attack's last sign.
const (
	lagBuckets    = 128 // whole seconds of lag; the last bucket holds all later
	durExact      = 128 // durations up to 127 s in 1 s buckets ...
	durStep       = 32  // ... then 32 s buckets
	durBuckets    = durExact + 64
	learnHalveAt  = 1 << 15 // samples after which both histograms are halved (recent timers win)
	batchSamples  = 32      // records per batch and exporter the learner sees
	learnEvery    = 1024    // new samples between recomputations
	minStride     = 8       // at most one record in this many is a lag sample
	lateMinShare  = 0.10    // late records must be this share of all for a shift
	lateMinCount  = 16
	spikeMinCount = 16
	holdSlack     = 2 // seconds added to a hold for the exporter's scan and the network
	cutSlackNs    = int64(1500 * time.Millisecond)
	unknownCutNs  = int64(10 * time.Second) // while the active timeout is unknown, a record this long may be a cut one
	shiftSettle   = 5 * time.Second         // a new shift is taken once learned that long
	// lateSec: a record at least this late (whole seconds) is a late one.
	// Records due sooner are never moved: they land in the ring's last
	// seconds as records always did with 1 s timers (a scan a second and
	// a paced sender make those up to 3 s late).
	lateSec     = 4
	minShiftNs  = int64(lateSec * time.Second)
	holdCutFlag = 0x80 // in a norm's hold: the record was cut by the active timeout
)

// Sources of a timer value, strongest last.
const (
	TimerLearned  = "learned"
	TimerRouter   = "router"   // /ip/traffic-flow read through the API
	TimerOptions  = "options"  // NetFlow v9 / IPFIX options data (36, 37)
	TimerOverride = "override" // the operator's setting
)

// ExporterTimers are what the engine knows of one exporter's timers.
type ExporterTimers struct {
	// ActiveTimeout is how often a long flow is reported, 0 if not known;
	// ActiveFrom says where it comes from (TimerLearned, ...).
	ActiveTimeout time.Duration
	ActiveFrom    string
	// InactiveTimeout is the exporter's announced or configured inactive
	// timeout, 0 if none was announced.
	InactiveTimeout time.Duration
	// InactiveLag is the median arrival lag of the exporter's late records
	// (those reported by the inactive timeout), or of all its records when
	// it has no late ones (1 s timers): the time from a flow's last packet
	// to its record's arrival. Learned only.
	InactiveLag time.Duration
	// Shift is how far the engine moves a late record forward (the late
	// records' lowest lag); Hold how long an attack whose host this
	// exporter reports is kept after its last sign, at most.
	Shift, Hold time.Duration
	// Samples is the weight of the histograms the values were learned from.
	Samples uint64
}

// timerLearner is one exporter's histograms and what was learned from them.
type timerLearner struct {
	lag      [lagBuckets]uint32
	dur      [durBuckets]uint32
	durSum   [durBuckets]float64 // seconds, so a spike's mean is exact in the coarse buckets
	total    uint32              // samples in the lag histogram
	durTotal uint32              // samples in the duration histogram
	sinceRun uint32              // samples since the last learn
	samples  uint64              // since start

	// configured timers, 0 when not set, with their sources
	active, inactive         time.Duration
	activeFrom, inactiveFrom string

	// learned, in force
	learnedActive int64 // ns, 0 unknown
	lagMedian     int64 // s
	shiftSec      int64 // in force; 0: no late population
	spreadSec     int64 // late population's p90 minus its lower edge
	// A new shift is taken only once the histograms gave it (within a
	// second) for shiftSettle of arrival time: an exporter's first report
	// may come sorted by expiry, oldest first, and its first samples then
	// show a lower edge far too late.
	candShift, candSince int64 // s, Unix ns
}

// durBucket is the histogram bucket of a duration in ns, rounded to
// seconds.
func durBucket(ns int64) uint16 {
	switch {
	case ns < 5e8:
		return 0
	case ns < 15e8:
		return 1
	}
	s := (ns + 5e8) / 1e9
	if s < durExact {
		return uint16(s)
	}
	return uint16(min(durExact+(s-durExact)/durStep, durBuckets-1))
}

// add counts one record's lag.
func (l *timerLearner) add(lagSec int64) {
	l.lag[min(max(lagSec, 0), lagBuckets-1)]++
	l.total++
	l.sinceRun++
	l.samples++
	if l.total >= learnHalveAt {
		l.total = 0
		for i := range l.lag {
			l.lag[i] /= 2
			l.total += l.lag[i]
		}
	}
}

// addDur counts one long record's duration (ns).
func (l *timerLearner) addDur(ns int64) {
	b := durBucket(ns)
	l.dur[b]++
	l.durSum[b] += float64(ns) / 1e9
	l.durTotal++
	l.sinceRun++
	if l.durTotal >= learnHalveAt {
		l.durTotal = 0
		for i := range l.dur {
			l.dur[i] /= 2
			l.durSum[i] /= 2
			l.durTotal += l.dur[i]
		}
	}
}

// learn recomputes the learned timers from the histograms; now is the
// arrival time of the samples just added.
func (l *timerLearner) learn(now int64) {
	l.sinceRun = 0
	var all, late uint64
	for b, c := range l.lag {
		all += uint64(c)
		if b >= lateSec {
			late += uint64(c)
		}
	}
	if all == 0 {
		return
	}
	var shift int64
	l.spreadSec = 0
	lo, hi := 0, lagBuckets-1 // the population the median is taken of
	if late >= lateMinCount && float64(late) >= lateMinShare*float64(all) {
		lo = lateSec
		shift = int64(quantile(l.lag[:], lateSec, late, 0.01))
		l.spreadSec = int64(quantile(l.lag[:], lateSec, late, 0.90)) - shift
	} else {
		hi = lateSec - 1
	}
	if shift < l.candShift-1 || shift > l.candShift+1 {
		l.candShift, l.candSince = shift, now
	}
	// A change of a second is left alone: shiftLate's second of margin
	// absorbs it, and each change puts two seconds' records into one slot
	// once. A tight lag (every late record within a second or two, as a
	// router scanning its cache each second sends them) is taken at once;
	// a spread one only once it held (see candShift).
	tight := shift > 0 && l.spreadSec <= 1
	if d := l.candShift - l.shiftSec; (d >= 2 || d <= -2) && (tight || now-l.candSince >= int64(shiftSettle)) {
		l.shiftSec = l.candShift
	}
	var n uint64
	for b := lo; b <= hi; b++ {
		n += uint64(l.lag[b])
	}
	l.lagMedian = int64(quantile(l.lag[:hi+1], lo, n, 0.5))

	// The active timeout: of the duration spikes (a bucket pair far above
	// its neighbours), the longest; the cut records of long flows all last
	// it, while other durations spread.
	l.learnedActive = 0
	for b := durBuckets - 2; b >= 1; b-- {
		pair := uint64(l.dur[b]) + uint64(l.dur[b+1])
		if pair < spikeMinCount {
			continue
		}
		var around, nb uint64
		for _, k := range [...]int{b - 4, b - 3, b - 2, b - 1, b + 2, b + 3, b + 4, b + 5} {
			if k >= 1 && k < durBuckets && (k > 1 || b > 2) {
				around += uint64(l.dur[k])
				nb++
			}
		}
		if nb > 0 && float64(pair) < 4*(float64(around)/float64(nb)+1) {
			continue
		}
		// the pair's mean duration, to the second
		mean := (l.durSum[b] + l.durSum[b+1]) / float64(pair)
		l.learnedActive = int64(math.Round(mean)) * 1e9
		break
	}
}

// quantile is the smallest bucket b >= from whose cumulative count from
// from reaches q of n.
func quantile(h []uint32, from int, n uint64, q float64) int {
	want := q * float64(n)
	var cum uint64
	for b := from; b < len(h); b++ {
		cum += uint64(h[b])
		if float64(cum) >= want && cum > 0 {
			return b
		}
	}
	return len(h) - 1
}

// params are the per-record values Consume uses for one exporter.
type params struct {
	shift    int64 // ns, whole seconds; 0: records are not moved
	active   int64 // ns, 0 unknown
	holdCut  uint8 // holdCode of a cut record, with holdCutFlag
	holdLate uint8 // holdCode of any other record
}

func (l *timerLearner) params() params {
	p := params{shift: l.shiftSec * 1e9, active: l.activeNs()}
	if p.shift == 0 && l.samples < lateMinCount {
		// Nothing learned yet: an announced inactive timeout is the best
		// guess (shiftLate leaves one under minShiftNs alone).
		p.shift = int64(l.inactive.Truncate(time.Second))
	}
	if p.active > 0 {
		p.holdCut = holdCode(max(p.active/1e9, l.lagMedian)+holdSlack) | holdCutFlag
	}
	if l.spreadSec > holdSlack {
		p.holdLate = holdCode(l.spreadSec + holdSlack)
	}
	return p
}

// activeNs is the active timeout in force: announced in the exports
// themselves (or the operator's), else learned from the records, else the
// router's configuration: a router read through the API is taken for an
// exporter by its address, which may be wrong, and its settings may have
// changed since; the records are what is being measured.
func (l *timerLearner) activeNs() int64 {
	switch {
	case l.active > 0 && l.activeFrom != TimerRouter:
		return int64(l.active)
	case l.learnedActive > 0:
		return l.learnedActive
	}
	return int64(l.active)
}

func (l *timerLearner) timers() ExporterTimers {
	t := ExporterTimers{
		InactiveTimeout: l.inactive,
		InactiveLag:     time.Duration(l.lagMedian) * time.Second,
		Shift:           time.Duration(l.shiftSec) * time.Second,
		Samples:         l.samples,
	}
	switch a := l.activeNs(); {
	case a == 0:
	case a == l.learnedActive && (l.active == 0 || l.activeFrom == TimerRouter):
		t.ActiveTimeout, t.ActiveFrom = time.Duration(a), TimerLearned
	default:
		t.ActiveTimeout, t.ActiveFrom = l.active, l.activeFrom
	}
	p := l.params()
	t.Hold = max(holdDuration(p.holdCut), holdDuration(p.holdLate))
	return t
}

// holdCode packs a hold in seconds into 7 bits (the eighth is the cut
// flag): exact below 64 s, then in 32 s steps, rounded up, to 34 minutes.
func holdCode(sec int64) uint8 {
	switch {
	case sec <= 0:
		return 0
	case sec < 64:
		return uint8(sec)
	}
	return uint8(min(64+(sec-64+31)/32, 127))
}

func holdDuration(c uint8) time.Duration {
	c &^= holdCutFlag
	if c < 64 {
		return time.Duration(c) * time.Second
	}
	return time.Duration(64+int64(c-64)*32) * time.Second
}

// SetExporterTimers records timers an exporter announced (TimerOptions),
// its router's configuration read through the API (TimerRouter) or the
// operator's (TimerOverride); a zero duration leaves that timer alone, and
// a weaker source does not replace a stronger one. An announced or
// operator's active timeout takes precedence over the learned one, a
// router's only stands until one is learned (see activeNs); an inactive
// timeout is the first guess of the lag until records teach it.
func (e *Engine) SetExporterTimers(exporter netip.Addr, active, inactive time.Duration, from string) {
	t := &e.exporters
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.get(exporter.Unmap())
	l := &st.learn
	if active > 0 && timerRank(from) >= timerRank(l.activeFrom) {
		l.active, l.activeFrom = active, from
	}
	if inactive > 0 && timerRank(from) >= timerRank(l.inactiveFrom) {
		l.inactive, l.inactiveFrom = inactive, from
	}
	t.setParams(st, l.params())
}

func timerRank(from string) int {
	switch from {
	case TimerRouter:
		return 1
	case TimerOptions:
		return 2
	case TimerOverride:
		return 3
	}
	return 0
}
