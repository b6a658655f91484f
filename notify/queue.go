package notify

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/flowshield/flowshield/detect"
)

// A sink's queue is bounded, ordered, and never loses an unban or an
// attack_end to make room for a ban. The rules, when it is full:
//
//   - Events are delivered in the order they were queued; nothing jumps
//     ahead (an unban before its ban would leave the ban on the router).
//   - QueueSize bounds every event; unban and attack_end alone may use a
//     reserve of as many slots again (so 2 x QueueSize in all).
//   - To make room, the queue drops, oldest first: an informational event
//     (attack_start, attack_details, ban_skipped), then a ban that a later
//     queued unban of the same prefix and direction supersedes. An unban or
//     attack_end with neither to drop and no reserve left drops the oldest
//     ban still queued, then (an unban) the oldest attack_end.
//   - Otherwise the incoming event is dropped. For an unban that happens
//     only when 2 x QueueSize unbans wait at once; an unban whose prefix
//     already has an unban queued (with no ban after it) is then dropped
//     first, as it changes nothing.
//
// Why a superseded ban goes but its unban stays (rather than cancelling
// both): a script's router state is that of the last ban or unban it ran
// for a prefix. The ban manager can send ban twice for one prefix (a manual
// ban over a running one), so an earlier ban may have run already; only
// the unban, kept, is sure to leave the router unbanned. An unban of a
// prefix the script never banned is harmless to FastNetMon's scripts (they
// delete what matches).

// class is how hard the queue tries to keep an event.
type class uint8

const (
	classInfo class = iota // dropped first
	classBan               // dropped before unbans and attack ends
	classMust              // unban, attack_end: never dropped for the others
)

func classOf(k Kind) class {
	switch k {
	case KindBan:
		return classBan
	case KindUnban, KindAttackEnd:
		return classMust
	}
	return classInfo
}

type entry struct {
	e Event
	// superseded: a ban with a later unban of the same prefix and
	// direction queued.
	superseded bool
}

// banTarget is the prefix and direction a ban or unban is about; ok is
// false when the event names neither a prefix nor an address.
type banTarget struct {
	prefix netip.Prefix
	dir    detect.Direction
}

func targetOf(e Event) (banTarget, bool) {
	switch {
	case e.Prefix.IsValid():
		return banTarget{e.Prefix.Masked(), e.Direction}, true
	case e.IP.IsValid():
		a := e.IP.Unmap()
		return banTarget{netip.PrefixFrom(a, a.BitLen()), e.Direction}, true
	}
	return banTarget{}, false
}

// drop is what a push left out: the incoming event or one queued before.
type drop struct {
	e          Event
	superseded bool // a ban superseded by a queued unban
	closed     bool // the queue was closed (Stop)
}

type queue struct {
	mu     sync.Mutex
	items  []*entry
	size   int // bound for every event
	limit  int // bound for unban and attack_end
	closed bool
	wake   chan struct{} // one pending wake-up for the worker
}

func newQueue(size int) *queue {
	return &queue{size: size, limit: 2 * size, wake: make(chan struct{}, 1)}
}

// push queues e by the rules above and says what was dropped, if anything.
func (q *queue) push(e Event) (drop, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return drop{e: e, closed: true}, true
	}
	c := classOf(e.Kind)
	if e.Kind == KindUnban {
		q.supersede(e)
	}
	var d drop
	dropped := false
	if len(q.items) >= q.size {
		i := q.victim(c, e, len(q.items) >= q.limit)
		if i < 0 {
			return drop{e: e}, true
		}
		if i < len(q.items) { // else: the reserve has room
			d, dropped = drop{e: q.items[i].e, superseded: q.items[i].superseded}, true
			q.items = slices.Delete(q.items, i, i+1)
		}
	}
	q.items = append(q.items, &entry{e: e})
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return d, dropped
}

// supersede marks the queued bans that the unban u makes moot.
func (q *queue) supersede(u Event) {
	t, ok := targetOf(u)
	if !ok {
		return
	}
	for _, it := range q.items {
		if it.e.Kind == KindBan {
			if bt, ok := targetOf(it.e); ok && bt == t {
				it.superseded = true
			}
		}
	}
}

// victim picks the queued event to drop for e, of class c, in a queue at
// or past QueueSize: its index; len(q.items) when e may use the reserve
// instead (full: the reserve is used up too); -1 when e itself goes.
func (q *queue) victim(c class, e Event, full bool) int {
	if i := q.oldest(func(it *entry) bool { return classOf(it.e.Kind) == classInfo }); i >= 0 {
		return i
	}
	if i := q.oldest(func(it *entry) bool { return it.superseded }); i >= 0 {
		return i
	}
	if c != classMust {
		return -1
	}
	if !full {
		return len(q.items)
	}
	if i := q.oldest(func(it *entry) bool { return it.e.Kind == KindBan }); i >= 0 {
		return i
	}
	if e.Kind != KindUnban {
		return -1
	}
	if q.redundant(e) {
		return -1
	}
	if i := q.oldest(func(it *entry) bool { return it.e.Kind == KindAttackEnd }); i >= 0 {
		return i
	}
	return -1
}

// redundant says whether the unban u changes nothing: an unban of its
// prefix and direction is queued with no ban after it.
func (q *queue) redundant(u Event) bool {
	t, ok := targetOf(u)
	if !ok {
		return false
	}
	for i := len(q.items) - 1; i >= 0; i-- {
		it := q.items[i].e
		if it.Kind != KindBan && it.Kind != KindUnban {
			continue
		}
		if bt, ok := targetOf(it); ok && bt == t {
			return it.Kind == KindUnban
		}
	}
	return false
}

func (q *queue) oldest(match func(*entry) bool) int {
	return slices.IndexFunc(q.items, match)
}

// pop waits for the next event; false once the queue is closed and empty,
// or ctx ends.
func (q *queue) pop(ctx context.Context) (Event, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			it := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			q.mu.Unlock()
			return it.e, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return Event{}, false
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

// close refuses further events and wakes the worker to drain the rest.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// takeAll empties the queue and returns what it held.
func (q *queue) takeAll() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Event, len(q.items))
	for i, it := range q.items {
		out[i] = it.e
	}
	q.items = nil
	return out
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
