package detect

import (
	"container/heap"
	"net/netip"
	"sort"
	"time"
)

// Rates are per-second averages over the window; bps are bits per second.
type Rates struct {
	PPS, BPS, Flows                          float64
	TCPPPS, UDPPPS, ICMPPPS, SYNPPS, FragPPS float64
	TCPBPS, UDPBPS, ICMPBPS, SYNBPS, FragBPS float64
}

func ratesOf(v *vec) Rates {
	return Rates{
		PPS: v[mPPS], BPS: v[mBPS], Flows: v[mFlows],
		TCPPPS: v[mPPS+catTCP], UDPPPS: v[mPPS+catUDP], ICMPPPS: v[mPPS+catICMP],
		SYNPPS: v[mPPS+catSYN], FragPPS: v[mPPS+catFrag],
		TCPBPS: v[mBPS+catTCP], UDPBPS: v[mBPS+catUDP], ICMPBPS: v[mBPS+catICMP],
		SYNBPS: v[mBPS+catSYN], FragBPS: v[mBPS+catFrag],
	}
}

// HostRates is one host's rates in one direction.
type HostRates struct {
	IP        netip.Addr
	Direction Direction
	Group     string // hostgroup name, "" if none
	Rates
}

// NetworkRates are the rates of one NETWORKS prefix's traffic, of tracked
// hosts or not.
type NetworkRates struct {
	Prefix  netip.Prefix
	In, Out Rates
}

// Sort keys for Hosts.
const (
	SortPPS   = "pps"
	SortBPS   = "bps"
	SortFlows = "flows"
)

// Hosts returns the current windowed rates of the hosts in direction dir,
// largest first by sortBy ("pps", "bps" or "mbps", "flows"); limit <= 0
// means all. Hosts with nothing in the window are left out. With a limit,
// only that many are kept while visiting (a bounded heap), so a top-20 of
// 100,000 hosts neither builds nor sorts a slice of them all.
func (e *Engine) Hosts(dir Direction, sortBy string, limit int) []HostRates {
	key := func(r *HostRates) float64 { return r.PPS }
	switch sortBy {
	case SortBPS, "mbps":
		key = func(r *HostRates) float64 { return r.BPS }
	case SortFlows:
		key = func(r *HostRates) float64 { return r.Flows }
	}
	// less orders by key, then by address, so ties are stable.
	less := func(a, b *HostRates) bool {
		ka, kb := key(a), key(b)
		if ka != kb {
			return ka < kb
		}
		return b.IP.Less(a.IP)
	}
	var out []HostRates
	if limit <= 0 {
		e.VisitHosts(dir, func(r *HostRates) { out = append(out, *r) })
	} else {
		h := &hostHeap{less: less}
		e.VisitHosts(dir, func(r *HostRates) {
			if len(h.items) < limit {
				heap.Push(h, *r)
			} else if less(&h.items[0], r) {
				h.items[0] = *r
				heap.Fix(h, 0)
			}
		})
		out = h.items
	}
	sort.Slice(out, func(i, j int) bool { return less(&out[j], &out[i]) })
	return out
}

// VisitHosts calls fn with the current windowed rates of every host with
// traffic in direction dir, in no particular order. fn runs with no lock
// of the engine held, on rates read a chunk of hosts at a time (see
// visit); it must not keep the pointer.
func (e *Engine) VisitHosts(dir Direction, fn func(*HostRates)) {
	S := floorSec(e.now().UnixNano())
	buf := make([]HostRates, 0, visitChunk)
	e.visit(func(ip netip.Addr, h *host) {
		d := &h.dir[dir]
		if d.slots == nil {
			return
		}
		win, _, _ := d.rates(S, e.winSec, &e.lay)
		if win[mPPS] == 0 && win[mFlows] == 0 {
			return
		}
		buf = append(buf, HostRates{IP: ip, Direction: dir, Group: e.groupName(h), Rates: ratesOf(&win)})
	}, func() {
		for i := range buf {
			fn(&buf[i])
		}
		buf = buf[:0]
	})
}

// visitChunk is how many hosts a visit reads per hold of a shard's lock:
// Consume waits behind a listing of every host at most as long as these
// reads take (and a copy of the shard's keys), not a whole shard's.
const visitChunk = 256

// visit calls under for every tracked host, with its shard's lock held
// for at most visitChunk hosts at a time, and then after each such hold,
// with no lock held. A shard's keys are copied first; hosts that arrive
// during the visit are left out, those forgotten during it skipped.
func (e *Engine) visit(under func(netip.Addr, *host), then func()) {
	var k4 []uint32
	var k6 [][16]byte
	for si := range e.shards {
		sh := &e.shards[si]
		sh.mu.Lock()
		k4, k6 = k4[:0], k6[:0]
		for k := range sh.v4 {
			k4 = append(k4, k)
		}
		for k := range sh.v6 {
			k6 = append(k6, k)
		}
		sh.mu.Unlock()
		for i, j := 0, 0; i < len(k4) || j < len(k6); {
			sh.mu.Lock()
			for n := 0; n < visitChunk && (i < len(k4) || j < len(k6)); n++ {
				if i < len(k4) {
					if h := sh.v4[k4[i]]; h != nil {
						under(hostAddr4(k4[i]), h)
					}
					i++
				} else {
					if h := sh.v6[k6[j]]; h != nil {
						under(hostAddr6(k6[j]), h)
					}
					j++
				}
			}
			sh.mu.Unlock()
			then()
		}
	}
}

// hostHeap is a min-heap of host rates under less: its root is the
// smallest of the largest kept so far.
type hostHeap struct {
	items []HostRates
	less  func(a, b *HostRates) bool
}

func (h *hostHeap) Len() int           { return len(h.items) }
func (h *hostHeap) Less(i, j int) bool { return h.less(&h.items[i], &h.items[j]) }
func (h *hostHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *hostHeap) Push(x any)         { h.items = append(h.items, x.(HostRates)) }
func (h *hostHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

// Host returns one host's rates in both directions; false if not tracked.
func (e *Engine) Host(ip netip.Addr) (in, out HostRates, ok bool) {
	ip = ip.Unmap()
	sh := e.shardOf(ip)
	S := floorSec(e.now().UnixNano())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.hostOf(ip)
	if h == nil {
		return in, out, false
	}
	wi, _, _ := h.dir[In].rates(S, e.winSec, &e.lay)
	wo, _, _ := h.dir[Out].rates(S, e.winSec, &e.lay)
	g := e.groupName(h)
	return HostRates{IP: ip, Direction: In, Group: g, Rates: ratesOf(&wi)},
		HostRates{IP: ip, Direction: Out, Group: g, Rates: ratesOf(&wo)}, true
}

func (e *Engine) groupName(h *host) string {
	if h.group >= 0 {
		return e.cfg.HostGroups[h.group].Name
	}
	return ""
}

// Totals returns the rates of all protected traffic, of tracked hosts or
// not, in and out, as of the last Tick.
func (e *Engine) Totals() (in, out Rates) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return ratesOf(&e.totals[In]), ratesOf(&e.totals[Out])
}

// Networks returns the per-NETWORKS-prefix sums as of the last Tick.
func (e *Engine) Networks() []NetworkRates {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]NetworkRates, len(e.cfg.Networks))
	for i, p := range e.cfg.Networks {
		out[i] = NetworkRates{Prefix: p}
		if i < len(e.netRates) {
			out[i].In, out[i].Out = ratesOf(&e.netRates[i][In]), ratesOf(&e.netRates[i][Out])
		}
	}
	return out
}

// HostTotal is one host's exact counts since it was first tracked.
type HostTotal struct {
	In, Out Total
}

// HostTotals returns every tracked host's exact packet and byte counts
// since it was first tracked (records times their sampling rate). A host
// forgotten after IdleTimeout, or evicted for a new one, starts again from
// zero.
func (e *Engine) HostTotals() map[netip.Addr]HostTotal {
	out := make(map[netip.Addr]HostTotal)
	type hostTotal struct {
		ip netip.Addr
		t  HostTotal
	}
	buf := make([]hostTotal, 0, visitChunk)
	e.visit(func(ip netip.Addr, h *host) {
		buf = append(buf, hostTotal{ip, HostTotal{In: h.total[In], Out: h.total[Out]}})
	}, func() {
		for _, t := range buf {
			out[t.ip] = t.t
		}
		buf = buf[:0]
	})
	return out
}

// Sustain tells the engine that the router dropped pps packets a second
// of traffic to (In) or from (Out) ip, measured at at by a ban's drop
// counters. A ban that works blinds the flows (raw drops and blackholes
// act before traffic-flow), so without this the attack would end while
// the flood goes on. At or above EndFraction of the host's pps threshold it
// counts as a sign above the threshold for the host's active attack in
// that direction; it never starts one. It reports whether it did.
func (e *Engine) Sustain(ip netip.Addr, dir Direction, pps float64, at time.Time) bool {
	ip = ip.Unmap()
	if dir > Out || e.protected.lookup(ip) < 0 {
		return false
	}
	sh := e.shardOf(ip)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	h := sh.hostOf(ip)
	if h == nil || h.dir[dir].att == nil {
		return false
	}
	lim := e.hostLimits(h)[mPPS+catAll]
	if lim <= 0 || pps < e.cfg.EndFraction*lim {
		return false
	}
	st := h.dir[dir].att
	if at.After(st.lastAbove) {
		st.lastAbove = at
	}
	st.dropPPS, st.dropAt = pps, at
	return true
}
