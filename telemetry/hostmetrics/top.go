// Package hostmetrics exports per-host traffic rates for the busiest hosts
// only, taken from the detector's own structures when asked, so the number
// of series stays bounded however many hosts are active: a counter or gauge
// per host in the metrics library would cost heap for every host ever seen.
//
// A Sampler selects the top hosts at most once per MaxAge and shares the
// result between /metrics, the push and Graphite: with 100,000 active hosts
// one selection costs the detector far more than formatting does.
package hostmetrics

import (
	"container/heap"
	"slices"

	"github.com/flowshield/flowshield/detect"
)

// Source is what the exporters read: the detector's current windowed rates.
// *detect.Engine satisfies it.
type Source interface {
	// Hosts returns the hosts with traffic in direction dir, largest first
	// by sortBy; limit <= 0 means all.
	Hosts(dir detect.Direction, sortBy string, limit int) []detect.HostRates
	// Totals returns the sums over all tracked hosts.
	Totals() (in, out detect.Rates)
}

// HostVisitor is an optional, cheaper way for a Source to hand over every
// active host: without building and sorting a slice of all of them. fn
// must not keep the pointer.
type HostVisitor interface {
	VisitHosts(dir detect.Direction, fn func(*detect.HostRates))
}

// NetworkSource is optional: a Source that also has per-NETWORKS-prefix
// sums (*detect.Engine does) gets them into the Snapshot, for Graphite's
// networks.* paths.
type NetworkSource interface {
	Networks() []detect.NetworkRates
}

// SortKeys are the keys the top lists are taken by: a host that is busy by
// any one of them (a flood of small packets, a few fat flows, a scan of many
// flows) gets its series.
var SortKeys = []string{detect.SortPPS, detect.SortBPS, detect.SortFlows}

// Top is the result of one selection: the union of the top n hosts by each
// sort key, per direction, and how many hosts had traffic.
type Top struct {
	Hosts  [2][]detect.HostRates // indexed by detect.Direction, largest pps first
	Active [2]int                // hosts with traffic in the window, per direction
}

// SelectTop reads every active host of each direction once and keeps the
// union of the n largest by pps, bps and flows (a host in several lists
// appears once). A host whose value for a key is 0 is not picked for that
// key. n <= 0 selects nothing but still counts the active hosts.
func SelectTop(src Source, n int) Top {
	var t Top
	for _, dir := range []detect.Direction{detect.In, detect.Out} {
		sel := newSelector(n)
		if v, ok := src.(HostVisitor); ok {
			v.VisitHosts(dir, sel.offer)
		} else {
			all := src.Hosts(dir, detect.SortPPS, 0)
			for i := range all {
				sel.offer(&all[i])
			}
		}
		t.Active[dir] = sel.seen
		t.Hosts[dir] = sel.result()
	}
	return t
}

func keyOf(sortBy string) func(*detect.HostRates) float64 {
	switch sortBy {
	case detect.SortBPS:
		return func(r *detect.HostRates) float64 { return r.BPS }
	case detect.SortFlows:
		return func(r *detect.HostRates) float64 { return r.Flows }
	}
	return func(r *detect.HostRates) float64 { return r.PPS }
}

// selector keeps the n largest hosts by each key in bounded min-heaps: one
// pass, O(hosts x log n), and only the kept hosts are copied.
type selector struct {
	n     int
	seen  int
	heaps []*minHeap
}

func newSelector(n int) *selector {
	s := &selector{n: n}
	if n > 0 {
		for _, k := range SortKeys {
			s.heaps = append(s.heaps, &minHeap{key: keyOf(k), items: make([]detect.HostRates, 0, n)})
		}
	}
	return s
}

func (s *selector) offer(r *detect.HostRates) {
	s.seen++
	for _, h := range s.heaps {
		if h.key(r) == 0 {
			continue
		}
		if len(h.items) < s.n {
			heap.Push(h, *r)
			continue
		}
		if h.greater(r, &h.items[0]) {
			h.items[0] = *r
			heap.Fix(h, 0)
		}
	}
}

// result is the union of the heaps, largest pps first, ties by address.
func (s *selector) result() []detect.HostRates {
	var out []detect.HostRates
	for _, h := range s.heaps {
		out = append(out, h.items...)
	}
	if len(out) == 0 {
		return nil
	}
	slices.SortFunc(out, func(a, b detect.HostRates) int {
		if a.PPS != b.PPS {
			if a.PPS > b.PPS {
				return -1
			}
			return 1
		}
		return a.IP.Compare(b.IP)
	})
	return slices.CompactFunc(out, func(a, b detect.HostRates) bool { return a.IP == b.IP })
}

// minHeap has the smallest kept host by key at the root: the one to evict
// when a larger host comes along.
type minHeap struct {
	items []detect.HostRates
	key   func(*detect.HostRates) float64
}

// greater orders by key, then by lower address (the detector's tie order).
func (h *minHeap) greater(a, b *detect.HostRates) bool {
	ka, kb := h.key(a), h.key(b)
	if ka != kb {
		return ka > kb
	}
	return a.IP.Less(b.IP)
}

func (h *minHeap) Len() int           { return len(h.items) }
func (h *minHeap) Less(a, b int) bool { return h.greater(&h.items[b], &h.items[a]) }
func (h *minHeap) Swap(a, b int)      { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *minHeap) Push(x any)         { h.items = append(h.items, x.(detect.HostRates)) }
func (h *minHeap) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}
