package detect

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
	mBps       = numCats
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
	width  int              // columns per slot
	nslots int              // seconds in the ring: the window, one second late, and the second being filled
}

func newLayout(nslots int, bitsNeeded [numCats]bool) layout {
	l := layout{nslots: nslots}
	for i := range l.col {
		l.col[i] = -1
	}
	for i := 0; i < numMetrics; i++ {
		if i >= mBps && i < mFlows && i != mBps+catAll && !bitsNeeded[i-mBps] {
			continue
		}
		l.col[i] = int8(l.width)
		l.width++
	}
	return l
}

func (l *layout) addTraffic(s []float32, mask uint8, pkts, bits, flows float32) {
	for c := 0; c < numCats; c++ {
		if mask&(1<<c) != 0 {
			s[l.col[mPPS+c]] += pkts
			if k := l.col[mBps+c]; k >= 0 {
				s[k] += bits
			}
		}
	}
	s[l.col[mFlows]] += flows
}

// read expands a stored slot into a vec.
func (l *layout) read(s []float32, v *vec) {
	for i, k := range l.col {
		if k >= 0 {
			v[i] = float64(s[k])
		} else {
			v[i] = 0
		}
	}
}

// dirState is one host's traffic in one direction: a ring of per-second
// slots and the attack, if any.
type dirState struct {
	slots []float32 // nslots x width, nil until the first record in this direction
	head  int64     // Unix second of the newest slot

	// Majority vote (Boyer-Moore, weighted by packets) over the source ports
	// of non-fragment UDP packets: names an amplification's reflector port
	// at the start of an attack, before any flow sample exists.
	bmPort            uint16
	bmWeight, bmTotal float32

	aboveSince int64 // Unix ns of the first evaluation above a threshold, 0 if below
	att        *attackState
}

func (d *dirState) slotFor(sec int64, l *layout) []float32 {
	n := int64(l.nslots)
	i := int(((sec%n)+n)%n) * l.width
	return d.slots[i : i+l.width : i+l.width]
}

// advance makes sec the newest second, clearing the seconds it skips.
func (d *dirState) advance(sec int64, l *layout) {
	if d.slots == nil {
		d.slots = make([]float32, l.nslots*l.width)
		d.head = sec
		return
	}
	if sec <= d.head {
		return
	}
	gap := sec - d.head
	if gap >= int64(l.nslots) {
		clear(d.slots)
		d.bmWeight, d.bmTotal = 0, 0
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
	d.head = sec
}

// add accounts one sane record. Records up to one second long go whole into
// the second they end in (so a flood exported every second shows in full
// one second after it starts); longer ones are spread evenly over the
// seconds they span, and what falls before the ring is dropped.
func (d *dirState) add(n *norm, l *layout) {
	d.advance(n.recvSec, l)
	oldest := d.head - int64(l.nslots) + 1
	endSec := floorSec(n.end)
	dur := n.end - n.start
	if dur <= 1e9 {
		if endSec >= oldest && endSec <= d.head {
			l.addTraffic(d.slotFor(endSec, l), n.mask, n.pkts, n.bits, 1)
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
			l.addTraffic(d.slotFor(s, l), n.mask, n.pkts*f, n.bits*f, 1)
		}
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
	if d.slots == nil || d.head < S-W-1 {
		return
	}
	var lead, lag vec
	n := int64(l.nslots)
	for k := int64(0); k < n; k++ {
		sec := d.head - k
		if sec > S || sec < S-W-1 {
			continue
		}
		var v vec
		l.read(d.slotFor(sec, l), &v)
		fast.max(&v)
		if sec < S && sec >= S-W {
			lead.add(&v)
		}
		if sec < S-1 {
			lag.add(&v)
		}
		if sec == S-1 {
			prev = v
		}
	}
	for i := range win {
		win[i] = max(lead[i], lag[i]) / float64(W)
	}
	return
}

// addSeconds adds each second S-k (k = 0..W+1) into secs[k], so a
// hostgroup's per-second sums can be evaluated like a host's.
func (d *dirState) addSeconds(S, W int64, secs []vec, l *layout) {
	n := int64(l.nslots)
	for k := int64(0); k < n; k++ {
		sec := d.head - k
		if sec > S || sec < S-W-1 {
			continue
		}
		var v vec
		l.read(d.slotFor(sec, l), &v)
		secs[S-sec].add(&v)
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
