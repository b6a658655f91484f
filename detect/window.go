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
	nslots int              // seconds in the ring: the window, one second late, and the second being filled
}

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
		d.holdCut, d.holdLate = 0, 0
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

// rates returns, at second S:
//   - win: the window average per metric, the larger of the W complete
//     seconds S-W..S-1 and S-W-1..S-2. Records arrive up to a second after
//     the second they end in, so early in a second S-1 is still filling;
//     the lagging window is then the complete one.
//   - fast: the largest single second per metric from S-W-1 to S. No second
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
// any second from S-W-1 on (else it leaves win, fast and prev alone).
// win, fast and prev must be zero; prev may be nil when not wanted.
func (d *dirState) colRates(S, W int64, l *layout, win, fast, prev *cvec) bool {
	var s winSums
	if !d.colSums(S, W, l, &s, fast, prev) {
		return false
	}
	s.rate(W, l.width, win)
	return true
}

// winSums are the sums over the window's seconds, S-W..S-1 (lead) and
// S-W-1..S-2 (lag), in column space. Summed over rings, their rate is the
// windowed rate of the rings' per-second sums.
type winSums struct{ lead, lag cvec }

func (s *winSums) add(o *winSums, width int) {
	s.lead.addCols(&o.lead, width)
	s.lag.addCols(&o.lag, width)
}

// rate writes the windowed rate, the larger window's average, to win.
func (s *winSums) rate(W int64, width int, win *cvec) {
	fw := float64(W)
	for c := 0; c < width; c++ {
		win[c] = max(s.lead[c], s.lag[c]) / fw
	}
}

// colSums is colRates before the window's average: it adds the seconds to
// sums (zero, or a sum over rings so far) instead. Seconds are visited
// newest first, reading only the stored columns.
func (d *dirState) colSums(S, W int64, l *layout, sums *winSums, fast, prev *cvec) bool {
	if d.slots == nil || d.head < S-W-1 {
		return false
	}
	lead, lag := &sums.lead, &sums.lag
	w := l.width
	for k := 0; k < l.nslots; k++ {
		sec := d.head - int64(k)
		if sec > S {
			continue
		}
		if sec < S-W-1 {
			break // older seconds are older still
		}
		s := d.recent(k, l)[:w]
		switch inLead, inLag := sec < S && sec >= S-W, sec < S-1; {
		case inLead && inLag:
			for c, f := range s {
				v := float64(f)
				if v > fast[c] {
					fast[c] = v
				}
				lead[c] += v
				lag[c] += v
			}
		case inLead:
			for c, f := range s {
				v := float64(f)
				if v > fast[c] {
					fast[c] = v
				}
				lead[c] += v
			}
		case inLag:
			for c, f := range s {
				v := float64(f)
				if v > fast[c] {
					fast[c] = v
				}
				lag[c] += v
			}
		default:
			for c, f := range s {
				if v := float64(f); v > fast[c] {
					fast[c] = v
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
	if d.slots == nil || d.head < S-W-1 || back < 0 || back >= int64(l.nslots) {
		return
	}
	for c, f := range d.recent(int(back), l)[:l.width] {
		prev[c] = float64(f)
	}
}

// addSeconds adds each second S-k (k = 0..W+1) into secs[k], in column
// space, so a hostgroup's per-second sums can be evaluated like a host's.
func (d *dirState) addSeconds(S, W int64, secs []cvec, l *layout) {
	if d.slots == nil {
		return
	}
	for k := 0; k < l.nslots; k++ {
		sec := d.head - int64(k)
		if sec > S {
			continue
		}
		if sec < S-W-1 {
			break
		}
		dst := &secs[S-sec]
		for c, f := range d.recent(k, l)[:l.width] {
			dst[c] += float64(f)
		}
	}
}

// ratesOfSeconds is rates over per-second sums secs[k] = second S-k.
func ratesOfSeconds(secs []vec, W int64) (win, fast, prev vec) {
	var lead, lag vec
	for k := int64(0); k < int64(len(secs)); k++ {
		s := &secs[k]
		for i := range fast {
			fast[i] = max(fast[i], s[i])
			if k >= 1 && k <= W {
				lead[i] += s[i]
			}
			if k >= 2 {
				lag[i] += s[i]
			}
		}
	}
	prev = secs[1]
	for i := range win {
		win[i] = max(lead[i], lag[i]) / float64(W)
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
