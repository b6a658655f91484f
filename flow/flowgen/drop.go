package flowgen

import (
	"sync"
	"time"
)

// DropSource removes from a Source the flows a ban drops. On a router,
// traffic dropped by a raw prerouting rule or a blackhole route never
// reaches traffic-flow, so once a ban is in place the exports stop showing
// the banned traffic (the detector goes blind to it). Put it under the
// exporter cache, so dropped traffic never enters it:
//
//	NewTimedSource(NewDropSource(scenario, drop), timers)
type DropSource struct {
	inner Source
	drop  func(f *Flow) bool

	mu      sync.Mutex
	dropped Counters
}

// NewDropSource wraps inner. drop is called for each flow inner gives, in
// order, and returns true to drop it; it must not modify the flow. The flow
// is a 1 s slice of traffic with its times, so drop can decide by when a
// ban took effect and count, per matching rule, what it removed: Packets
// and Bytes are as exported, multiply them by SamplingRate (when set) for
// what the wire carried. drop nil drops nothing. drop is called from
// Second, so in the Sender's goroutine during a run.
func NewDropSource(inner Source, drop func(f *Flow) bool) *DropSource {
	return &DropSource{inner: inner, drop: drop}
}

// Second implements Source.
func (d *DropSource) Second(dst []Flow, index int, start time.Time) []Flow {
	n := len(dst)
	dst = d.inner.Second(dst, index, start)
	if d.drop == nil {
		return dst
	}
	var gone Counters
	kept := dst[:n]
	for i := n; i < len(dst); i++ {
		if d.drop(&dst[i]) {
			gone.add(&dst[i])
			continue
		}
		kept = append(kept, dst[i])
	}
	d.mu.Lock()
	d.dropped.addTimes(&gone, 1)
	d.mu.Unlock()
	return kept
}

// Dropped is what was dropped so far (Records: the flows); safe to call
// during a run.
func (d *DropSource) Dropped() Counters {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}
