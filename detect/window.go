package detect

import mbits "math/bits"

// Traffic categories every counter is split into. syn is TCP with SYN and
// without ACK; frag is IP fragments of any protocol.
const (
	catAll = iota
	catTCP
	catUDP
	catICMP
	catSYN
	catFrag
	numCats
)

// A vec holds one value per metric: packets for each category, then bits for
// each category, then flows. Thresholds use the same layout (limits).
const (
	mPPS       = 0
	mBPS       = numCats
	mFlows     = 2 * numCats
	numMetrics = 2*numCats + 1
)

type vec [numMetrics]float64

var metricNames = [numMetrics]string{
	"pps", "tcp_pps", "udp_pps", "icmp_pps", "syn_pps", "frag_pps",
	"mbps", "tcp_mbps", "udp_mbps", "icmp_mbps", "syn_mbps", "frag_mbps",
	"flows",
}

func (v *vec) add(o *vec) {
	for i := range v {
		v[i] += o[i]
	}
}

func (v *vec) max(o *vec) {
	for i := range v {
		if o[i] > v[i] {
			v[i] = o[i]
		}
	}
}

// layout says which metrics a ring slot stores and where: packets of every
// category, all bits and flows always; the bits of a protocol category only
// when some threshold uses them (no API shows them otherwise). float32
// keeps a host small (32 bytes a second with no per-protocol Mbps
// threshold); spread fractions need no integer rounding, and the precision
// lost is negligible below 2^24 packets or 2^31 bits per second and host.
type layout struct {
	col    [numMetrics]int8 // column of each metric in a slot, -1 if not stored
	metric [numMetrics]int8 // metric of each column (the inverse of col), for width columns
	width  int              // columns per slot
	nslots int              // seconds in the ring: the window, winLate seconds late, and the second being filled
}

// A second's records arrive up to winLate whole seconds after it without
// being moved (shiftLate moves only those lateSec or more late): the
// exporter's inactive timeout and scan (RouterOS with 1 s timers: a second
// or two), and NetFlow v9's header clock in whole seconds, which the
// decoder's sysUpTime times are counted from, put a record's times up to a
// second early. So the rates take the larger of the window ending at the
// last second, S-1, and of those ending at each of the L seconds before,
// L being how late a ring's records came (dirState.late: 1 for most, so
// Tick costs what it did). A window that waited only one second saw a
// later exporter's seconds only partly, or (WINDOW 1s, and a Tick earlier
// in the second than the records' arrival) never: a flood of 500-packet
// records, seen in the host table at its full rate, was never declared.
const (
	winLate   = lateSec - 1
	winAligns = winLate + 1
)

// ringSeconds is the length of the ring for a window of W seconds.
func ringSeconds(W int64) int { return int(W) + winAligns }

func newLayout(nslots int, bitsNeeded [numCats]bool) layout {
	l := layout{nslots: nslots}
	for i := range l.col {
		l.col[i] = -1
		l.metric[i] = -1
	}
	for i := 0; i < numMetrics; i++ {
		if i >= mBPS && i < mFlows && i != mBPS+catAll && !bitsNeeded[i-mBPS] {
			continue
		}
		l.col[i] = int8(l.width)
		l.metric[l.width] = int8(i)
		l.width++
	}
	return l
}

// addTraffic adds one record's share to a slot. catAll is in every mask, so
// its columns and flows are added straight; only the other categories set
// in the mask are looked up. Each column gets the same additions in the
// same order as a loop over all categories would give it.
func (l *layout) addTraffic(s []float32, mask uint8, pkts, bits, flows float32) {
	s[l.col[mPPS+catAll]] += pkts
	s[l.col[mBPS+catAll]] += bits
	for m := mask &^ (1 << catAll); m != 0; m &= m - 1 {
		c := mbits.TrailingZeros8(m)
		s[l.col[mPPS+c]] += pkts
		if k := l.col[mBPS+c]; k >= 0 {
			s[k] += bits
		}
	}
	s[l.col[mFlows]] += flows
}

// dirState is one host's traffic in one direction: a ring of per-second
// slots and the attack, if any.
type dirState struct {
	slots []float32 // nslots x width, nil until the first record in this direction
	head  int64     // Unix second of the newest slot

	// Majority vote (Boyer-Moore, weighted by packets) over the source ports
	// of non-fragment UDP packets: names an amplification's reflector port
	// at the start of an attack, before any flow sample exists.
	bmPort uint16
	// headSlot is head modulo nslots (the newest slot's index in the ring),
	// kept so the hot path finds a second's slot without a division. It
	// lives in what would be padding.
	headSlot uint8
	// holdCut and holdLate are the largest hold codes of the cut records
	// and of the others since the ring last emptied: how long their
	// exporter may stay silent about traffic that goes on (a long flow cut
	// by the active timeout is reported again only that much later). They
	// live in what would be padding.
	holdCut           uint8
	bmWeight, bmTotal float32
	holdLate          uint8
	// late is how many whole seconds after the last second it added to a
	// record arrived, at most winLate, since the ring last emptied (0:
	// none yet, taken as 1): how long the windows wait (see winLate). In
	// what would be padding.
	late uint8

	aboveSince int64 // Unix ns of the first evaluation above a threshold, 0 if below
	att        *attackState
}

func (d *dirState) slotFor(sec int64, l *layout) []float32 {
	n := int64(l.nslots)
	i := int(((sec%n)+n)%n) * l.width
	return d.slots[i : i+l.width : i+l.width]
}

// recent is the slot of second head-back, for 0 <= back < nslots: the same
// slot as slotFor, found by subtraction from headSlot.
func (d *dirState) recent(back int, l *layout) []float32 {
	i := int(d.headSlot) - back
	if i < 0 {
		i += l.nslots
	}
	i *= l.width
	return d.slots[i : i+l.width : i+l.width]
}

// slotIndex is the index in slots of second sec's first column once the
// ring has advanced to recvSec (what add does first), or of the newest slot
// when sec will not be in the ring then: where add will write, to load it
// early. No division as long as the ring moves less than its length.
func (d *dirState) slotIndex(sec, recvSec int64, l *layout) int {
	head, hs := d.head, int64(d.headSlot)
	if adv := recvSec - head; adv > 0 && adv < int64(l.nslots) {
		head, hs = recvSec, hs+adv
		if hs >= int64(l.nslots) {
			hs -= int64(l.nslots)
		}
	} else if adv > 0 { // the ring restarts: rare, so the division is fine
		n := int64(l.nslots)
		head, hs = recvSec, ((recvSec%n)+n)%n
	}
	if back := head - sec; back > 0 && back < int64(l.nslots) {
		hs -= back
		if hs < 0 {
			hs += int64(l.nslots)
		}
	}
	return int(hs) * l.width
}

// setHead makes sec the newest second.
func (d *dirState) setHead(sec int64, l *layout) {
	n := int64(l.nslots)
	d.head = sec
	d.headSlot = uint8(((sec % n) + n) % n)
}

// advance makes sec the newest second, clearing the seconds it skips.
func (d *dirState) advance(sec int64, l *layout) {
	if d.slots == nil {
		d.slots = make([]float32, l.nslots*l.width)
		d.setHead(sec, l)
		return
	}
	if sec <= d.head {
		return
	}
	gap := sec - d.head
	if gap >= int64(l.nslots) {
		clear(d.slots)
		d.bmWeight, d.bmTotal = 0, 0
		d.holdCut, d.holdLate, d.late = 0, 0, 0
	} else {
		for s := d.head + 1; s <= sec; s++ {
			clear(d.slotFor(s, l))
		}
		// Halve the port vote every second so an old majority fades.
		for ; gap > 0; gap-- {
			d.bmWeight *= 0.5
			d.bmTotal *= 0.5
		}
	}
	d.setHead(sec, l)
}

// add accounts one sane record. Records up to one second long go whole into
// the second they end in (so a flood exported every second shows in full
// one second after it starts); longer ones are spread evenly over the
// seconds they span, and what falls before the ring is dropped.
func (d *dirState) add(n *norm, l *layout) {
	d.advance(n.recvSec, l)
	oldest := d.head - int64(l.nslots) + 1
	endSec := n.endSec
	dur := n.end - n.start
	if dur <= 1e9 {
		if endSec >= oldest && endSec <= d.head {
			l.addTraffic(d.recent(int(d.head-endSec), l), n.mask, n.pkts, n.bits, 1)
		}
	} else {
		from := max(floorSec(n.start), oldest)
		to := min(endSec, d.head)
		fdur := float64(dur)
		for s := from; s <= to; s++ {
			lo := max(n.start, s*1e9)
			hi := min(n.end, (s+1)*1e9)
			if hi <= lo {
				continue
			}
			f := float32(float64(hi-lo) / fdur)
			l.addTraffic(d.recent(int(d.head-s), l), n.mask, n.pkts*f, n.bits*f, 1)
		}
	}
	if lag := n.recvSec - endSec; lag > int64(d.late) {
		d.late = uint8(min(lag, winLate))
	}
	if n.hold&holdCutFlag != 0 {
		d.holdCut = max(d.holdCut, n.hold&^holdCutFlag)
	} else {
		d.holdLate = max(d.holdLate, n.hold)
	}
	if n.udpPort != 0 {
		w := n.pkts
		switch {
		case n.udpPort == d.bmPort:
			d.bmWeight += w
		case d.bmWeight >= w:
			d.bmWeight -= w
		default:
			d.bmPort, d.bmWeight = n.udpPort, w-d.bmWeight
		}
		d.bmTotal += w
	}
}

// cvec is a vec in a layout's column space: only the stored metrics, in
// the first width entries. Sums over it are the same sums, in the same
// order, as over the vec it expands to (the metrics not stored are zero).
type cvec [numMetrics]float64

// expand writes c as a vec: stored metrics from their columns, others zero.
func (l *layout) expand(c *cvec, v *vec) {
	for i, k := range l.col {
		if k >= 0 {
			v[i] = c[k]
		} else {
			v[i] = 0
		}
	}
}

// addCols adds the first width entries of o to c.
func (c *cvec) addCols(o *cvec, width int) {
	for i := 0; i < width; i++ {
		c[i] += o[i]
	}
}

// lateSecs is d.late, at least 1.
func (d *dirState) lateSecs() int64 { return max(int64(d.late), 1) }

// oldestSec is the oldest second the rates at S read for records late
// seconds late: that of the window ending late seconds before S-1.
func oldestSec(S, W, late int64) int64 { return S - W - late }

// rates returns, at second S, with L the ring's lateSecs:
//   - win: the window average per metric, the largest of the W seconds
//     S-W..S-1, S-W-1..S-2, and so on to S-W-L..S-L-1. Records arrive up
//     to L seconds after the second they end in, so the last seconds may
//     still be filling; a lagging window is then the complete one.
//   - fast: the largest single second per metric from S-W-L to S. No second
//     of steady traffic at rate r holds more than 2r (a record of at most a
//     second lands in the second it ends in, so each flow puts at most two
//     seconds' worth into one), which is what makes FastFactor 2 safe.
//   - prev: the last complete second, S-1.
func (d *dirState) rates(S, W int64, l *layout) (win, fast, prev vec) {
	var cw, cf, cp cvec
	if d.colRates(S, W, l, &cw, &cf, &cp) {
		l.expand(&cw, &win)
		l.expand(&cf, &fast)
		l.expand(&cp, &prev)
	}
	return
}

// colRates is rates in column space; it reports whether the ring holds
// any second from S-W-L on (else it leaves win, fast and prev alone).
// win, fast and prev must be zero; prev may be nil when not wanted.
func (d *dirState) colRates(S, W int64, l *layout, win, fast, prev *cvec) bool {
	var s winSums
	if !d.colSums(S, W, l, &s, fast, prev) {
		return false
	}
	s.rate(W, l.width, win)
	return true
}

// winSums are the sums over the window's seconds in the alignments up to
// late, in column space: at j, S-W-j..S-1-j. Summed over rings, their
// rate is the windowed rate of the rings' per-second sums; a ring whose
// records come less late counts at every later alignment with its last
// (a complete window).
type winSums struct {
	a    [winAligns]cvec
	late int64
}

func (s *winSums) add(o *winSums, width int) {
	// The rings summed so far count at the alignments o adds with their
	// last: the same additions, in the same order, as if each had been.
	for ; s.late < o.late; s.late++ {
		s.a[s.late+1] = s.a[s.late]
	}
	for j := int64(0); j <= s.late; j++ {
		s.a[j].addCols(&o.a[min(j, o.late)], width)
	}
}

// rate writes the windowed rate, the largest alignment's average, to win.
func (s *winSums) rate(W int64, width int, win *cvec) {
	fw := float64(W)
	for c := 0; c < width; c++ {
		m := s.a[0][c]
		for j := int64(1); j <= s.late; j++ {
			m = max(m, s.a[j][c])
		}
		win[c] = m / fw
	}
}

// aligns are the alignments up to late whose window holds the second back
// seconds before S: from lo to hi, none when lo > hi.
func aligns(back, W, late int64) (lo, hi int) {
	return int(max(back-W, 0)), int(min(back-1, late))
}

// colSums is colRates before the window's average: it writes the sums
// (zero before) instead. Seconds are visited
// newest first, reading only the stored columns.
func (d *dirState) colSums(S, W int64, l *layout, sums *winSums, fast, prev *cvec) bool {
	late := d.lateSecs()
	oldest := oldestSec(S, W, late)
	if d.slots == nil || d.head < oldest {
		return false
	}
	w := l.width
	sums.late = late
	for k := 0; k < l.nslots; k++ {
		sec := d.head - int64(k)
		if sec > S {
			continue
		}
		if sec < oldest {
			break // older seconds are older still
		}
		s := d.recent(k, l)[:w]
		// A second is in one or two alignments, or more for a ring
		// whose records come late: the usual cases in one pass.
		switch lo, hi := aligns(S-sec, W, late); {
		case hi == lo:
			a := &sums.a[lo]
			for c, f := range s {
				v := float64(f)
				fast[c] = max(fast[c], v)
				a[c] += v
			}
		case hi == lo+1:
			a, b := &sums.a[lo], &sums.a[hi]
			for c, f := range s {
				v := float64(f)
				fast[c] = max(fast[c], v)
				a[c] += v
				b[c] += v
			}
		default:
			for c, f := range s {
				v := float64(f)
				fast[c] = max(fast[c], v)
				for j := lo; j <= hi; j++ {
					sums.a[j][c] += v
				}
			}
		}
		if sec == S-1 && prev != nil {
			for c, f := range s {
				prev[c] = float64(f)
			}
		}
	}
	return true
}

// prevCols is the prev of colRates alone: second S-1 in column space, or
// zero.
func (d *dirState) prevCols(S, W int64, l *layout, prev *cvec) {
	back := d.head - (S - 1)
	if d.slots == nil || d.head < oldestSec(S, W, d.lateSecs()) || back < 0 || back >= int64(l.nslots) {
		return
	}
	for c, f := range d.recent(int(back), l)[:l.width] {
		prev[c] = float64(f)
	}
}

// addSeconds adds each second S-k (k = 0..W+winLate, whatever the ring's
// own lateness: the sums' may be larger) into secs[k], in column space, so
// a hostgroup's per-second sums can be evaluated like a host's.
func (d *dirState) addSeconds(S, W int64, secs []cvec, l *layout) {
	if d.slots == nil {
		return
	}
	for k := 0; k < l.nslots; k++ {
		sec := d.head - int64(k)
		if sec > S {
			continue
		}
		if sec < oldestSec(S, W, winLate) {
			break
		}
		dst := &secs[S-sec]
		for c, f := range d.recent(k, l)[:l.width] {
			dst[c] += float64(f)
		}
	}
}

// ratesOfSeconds is rates over per-second sums secs[k] = second S-k, k
// from 0 to W+winLate, for records late seconds late (lateSecs).
func ratesOfSeconds(secs []vec, W, late int64) (win, fast, prev vec) {
	var sums [winAligns]vec
	for k := int64(0); k <= W+late && k < int64(len(secs)); k++ {
		s := &secs[k]
		fast.max(s)
		lo, hi := aligns(k, W, late)
		for j := lo; j <= hi; j++ {
			sums[j].add(s)
		}
	}
	prev = secs[1]
	for i := range win {
		m := sums[0][i]
		for j := int64(1); j <= late; j++ {
			m = max(m, sums[j][i])
		}
		win[i] = m / float64(W)
	}
	return
}

// portVote is the majority UDP source port and how sure the vote is: its
// net weight over all votes (>= 0.2 means the port carries 60 % or more).
func (d *dirState) portVote() (uint16, float64) {
	if d.bmTotal <= 0 {
		return 0, 0
	}
	return d.bmPort, float64(d.bmWeight / d.bmTotal)
}

func floorSec(ns int64) int64 {
	if ns >= 0 {
		return ns / 1e9
	}
	return (ns - 1e9 + 1) / 1e9
}
