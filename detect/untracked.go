package detect

import (
	"math"
	"math/bits"

	"github.com/flowshield/flowshield/flow"
)

// The host table is bounded (MaxHosts, split evenly over the shards). A new
// host past the bound takes the place of the quietest of evictSample hosts
// of its shard, sampled where a map iteration starts (at random), that are
// neither under attack nor above a threshold: bounded work per insertion,
// never a scan. The evicted host's seconds go into its shard's untracked
// rings, and so do the records of a host that found no place (every
// sampled host under attack): the totals, the networks' sums and the
// hostgroups' group_* sums count all protected traffic, so a carpet
// bombing over more addresses than the table holds is still seen at group
// scope. Only per-host rates and attacks need a tracked host.
const evictSample = 8

// untracked is one shard's traffic counted outside the host table: per
// direction, rings summed over such hosts per NETWORKS prefix and per
// hostgroup, and the distinct addresses since the last Tick that were
// evicted or found no place. It is made on
// the shard's first untracked record; its size is fixed by the
// configuration (see doc.go: Memory).
type untracked struct {
	nets   [][2]dirState // per NETWORKS prefix at its index + 1; addresses in none at 0
	groups [][2]dirState
	hosts  hll
}

func (e *Engine) untrackedOf(sh *shard) *untracked {
	if sh.over == nil {
		sh.over = &untracked{
			nets:   make([][2]dirState, len(e.cfg.Networks)+1),
			groups: make([][2]dirState, len(e.cfg.HostGroups)),
		}
	}
	return sh.over
}

// add counts one record toward the rings of network and group (-1: none)
// in direction dir.
func (u *untracked) add(network, group int32, dir Direction, n *norm, l *layout) {
	u.nets[network+1][dir].add(n, l)
	if group >= 0 {
		u.groups[group][dir].add(n, l)
	}
}

// fold moves an evicted host's seconds into the rings, so the sums keep
// what it carried in the window.
func (u *untracked) fold(h *host, l *layout) {
	for d := range h.dir {
		src := &h.dir[d]
		u.nets[h.network+1][d].fold(src, l)
		if h.group >= 0 {
			u.groups[h.group][d].fold(src, l)
		}
	}
}

// fold adds src's seconds that fall within d's ring once d is advanced to
// src's newest second (if that is later).
func (d *dirState) fold(src *dirState, l *layout) {
	if src.slots == nil {
		return
	}
	d.advance(src.head, l)
	d.late = max(d.late, src.late)
	for k := 0; k < l.nslots; k++ {
		back := d.head - (src.head - int64(k))
		if back >= int64(l.nslots) {
			break
		}
		dst, s := d.recent(int(back), l), src.recent(k, l)
		for c := range s {
			dst[c] += s[c]
		}
	}
}

// accountUntracked counts entry en of a host that is not tracked; sh.mu is
// held. k6 is the IPv6 key when en.v6.
func (e *Engine) accountUntracked(sh *shard, en *entry, k6 *[16]byte, n *norm, r *flow.Record) {
	var network, gi int32
	if en.v6 {
		a := hostAddr6(*k6)
		network, gi = e.networks.lookup6(a), e.groups.lookup6(a)
	} else {
		network, gi = e.networks.lookup4(en.k4), e.groups.lookup4(en.k4)
	}
	group := int32(-1)
	if gi >= 0 {
		group = e.groupOf[gi]
	}
	u := e.untrackedOf(sh)
	u.add(network, group, en.dir, n, &e.lay)
	u.hosts.add(hostHash(en.v6, en.k4, k6))
	sh.untracked++
	if group >= 0 {
		if gc := e.groupCols[group][en.dir].Load(); gc != nil && !gc.full.Load() {
			gc.add(r, n)
		}
	}
}

// placeFor returns a host for a new key, made or taken from the quietest
// sampled host when the shard is full, or nil when every sampled host is
// under attack; sh.mu is held, now is the record's arrival second.
func (e *Engine) placeFor(sh *shard, now int64) *host {
	if sh.len() < sh.max {
		return &host{}
	}
	var c evictCandidate
	c.score = math.Inf(1)
	total := sh.len()
	n4 := (evictSample*len(sh.v4) + total - 1) / total
	i := 0
	for k, h := range sh.v4 {
		if i == n4 || c.consider(e, h, now, k, nil) {
			break
		}
		i++
	}
	if c.score > 0 {
		i = 0
		for k, h := range sh.v6 {
			if i == evictSample-n4 || c.consider(e, h, now, 0, &k) {
				break
			}
			i++
		}
	}
	h := c.h
	if h == nil {
		return nil
	}
	if c.v6 {
		delete(sh.v6, c.k6)
	} else {
		delete(sh.v4, c.k4)
	}
	u := e.untrackedOf(sh)
	u.fold(h, &e.lay)
	u.hosts.add(hostHash(c.v6, c.k4, &c.k6))
	sh.evicted++
	// The host's rings are kept for its successor: a ring whose head is 0
	// is empty to every reader, and the first record clears it.
	*h = host{dir: [2]dirState{{slots: h.dir[In].slots}, {slots: h.dir[Out].slots}}}
	return h
}

// evictCandidate is the quietest host sampled so far.
type evictCandidate struct {
	h     *host
	score float64
	k4    uint32
	k6    [16]byte
	v6    bool
}

// consider takes h (key k4, or *k6) if it may go and is quieter than the
// candidate so far; it reports whether the search can stop (h carried
// nothing in the ring).
func (c *evictCandidate) consider(e *Engine, h *host, now int64, k4 uint32, k6 *[16]byte) bool {
	for d := range h.dir {
		if h.dir[d].att != nil || h.dir[d].aboveSince != 0 {
			return false
		}
	}
	s := h.ringPackets(now, &e.lay)
	if s >= c.score {
		return false
	}
	c.h, c.score, c.k4, c.v6 = h, s, k4, k6 != nil
	if k6 != nil {
		c.k6 = *k6
	}
	return s == 0
}

// ringPackets is the packets a host's rings hold for the seconds a ring
// spans up to now, both directions.
func (h *host) ringPackets(now int64, l *layout) float64 {
	oldest := now - int64(l.nslots) + 1
	if h.lastSeen < oldest {
		return 0
	}
	var sum float64
	col := l.col[mPPS+catAll]
	for d := range h.dir {
		ds := &h.dir[d]
		if ds.slots == nil {
			continue
		}
		for k := 0; k < l.nslots && ds.head-int64(k) >= oldest; k++ {
			sum += float64(ds.recent(k, l)[col])
		}
	}
	return sum
}

// hllBits: 2^10 one-byte registers, a standard error of 1.04/sqrt(1024),
// about 3 %.
const hllBits = 10

// hll is a HyperLogLog estimate of the number of distinct keys added (of
// hashes: add takes a key already mixed).
type hll [1 << hllBits]uint8

func (h *hll) add(x uint64) {
	i := x >> (64 - hllBits)
	// leading zeros of the other bits, plus one; the set bit bounds the rank
	rank := uint8(bits.LeadingZeros64(x<<hllBits|1<<(hllBits-1))) + 1
	if rank > h[i] {
		h[i] = rank
	}
}

// merge makes h the estimate of the union of h and o.
func (h *hll) merge(o *hll) {
	for i, r := range o {
		h[i] = max(h[i], r)
	}
}

// estimate is the number of distinct keys, with the small-range (linear
// counting) correction; 64-bit hashes need no large-range one.
func (h *hll) estimate() float64 {
	const m = float64(len(hll{}))
	var sum float64
	zeros := 0
	for _, r := range h {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros))
	}
	return est
}

// hostHash is the hll key of a host table key (k4, or *k6 if v6).
func hostHash(v6 bool, k4 uint32, k6 *[16]byte) uint64 {
	if !v6 {
		return mix64(uint64(k4))
	}
	k := v6key(hostAddr6(*k6))
	return mix64(k[0] ^ mix64(k[1]))
}

// mix64 is splitmix64's finalizer: every bit of x moves every bit of the
// result, so addresses that differ in a few bits spread over the registers.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
