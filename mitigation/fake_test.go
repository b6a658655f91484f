package mitigation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flowshield/flowshield/routeros"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeEntry struct {
	obj   routeros.Object
	setAt time.Time // for the timeout countdown
}

// fakeRouter behaves like the RouterOS client over the emulator: ids like
// *1A, the duplicate trap for address-list entries, "no such item" for
// unknown ids, address-list timeouts that count down and expire, objects
// without the flowshield comment kept but never listed.
type fakeRouter struct {
	mu        sync.Mutex
	clock     *testClock
	addr      string
	connected bool
	nextID    int
	entries   []*fakeEntry // in creation order
	maxOurs   int          // most flowshield objects at once

	trapAdds      int  // trap the next K adds
	dropAfterAdd  bool // next add succeeds on the router, then the connection drops
	loseAddReply  bool // next add succeeds, its reply is lost (error, still connected)
	failLists     int
	calls         map[string]int
	setTimeouts   []time.Duration
	counterErrors int
	stall         bool // calls hang until their context ends
}

func (f *fakeRouter) stalled(ctx context.Context) error {
	f.mu.Lock()
	st := f.stall
	f.mu.Unlock()
	if !st {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func newFakeRouter(clock *testClock) *fakeRouter {
	return &fakeRouter{clock: clock, addr: "192.0.2.1:8728", connected: true, nextID: 0x10, calls: map[string]int{}}
}

var errConnLost = errors.New("connection lost")

func (f *fakeRouter) Address() string { return f.addr }

func (f *fakeRouter) Connected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.connected
}

func (f *fakeRouter) setConnected(c bool) {
	f.mu.Lock()
	f.connected = c
	f.mu.Unlock()
}

// expireLocked drops address-list entries whose timeout ran out.
func (f *fakeRouter) expireLocked() {
	now := f.clock.Now()
	kept := f.entries[:0]
	for _, e := range f.entries {
		if e.obj.Action == routeros.ActionAddressList && e.obj.Timeout > 0 && !now.Before(e.setAt.Add(e.obj.Timeout)) {
			continue
		}
		kept = append(kept, e)
	}
	f.entries = kept
}

func ours(o routeros.Object) bool { return strings.HasPrefix(o.Comment, CommentPrefix) }

func (f *fakeRouter) countOursLocked() int {
	n := 0
	for _, e := range f.entries {
		if ours(e.obj) {
			n++
		}
	}
	return n
}

func (f *fakeRouter) check(op string) error {
	f.calls[op]++
	if !f.connected {
		return errConnLost
	}
	return nil
}

func (f *fakeRouter) List(ctx context.Context) ([]routeros.Object, error) {
	if err := f.stalled(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("list"); err != nil {
		return nil, err
	}
	if f.failLists > 0 {
		f.failLists--
		return nil, errors.New("timeout")
	}
	f.expireLocked()
	now := f.clock.Now()
	var out []routeros.Object
	for _, e := range f.entries {
		if !ours(e.obj) {
			continue
		}
		o := e.obj
		if o.Action == routeros.ActionAddressList && o.Timeout > 0 {
			o.Timeout = (o.Timeout - now.Sub(e.setAt)).Truncate(time.Second)
		}
		out = append(out, o)
	}
	return out, nil
}

func (f *fakeRouter) Add(ctx context.Context, o routeros.Object) (string, error) {
	if err := f.stalled(ctx); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("add"); err != nil {
		return "", err
	}
	if f.trapAdds > 0 {
		f.trapAdds--
		return "", errors.New("from RouterOS device: failure: simulated trap")
	}
	f.expireLocked()
	if o.Action == routeros.ActionAddressList {
		for _, e := range f.entries {
			if e.obj.Action == routeros.ActionAddressList && e.obj.List == o.List && e.obj.Prefix == o.Prefix {
				return "", errors.New("from RouterOS device: failure: already have such entry")
			}
		}
	}
	o.ID = fmt.Sprintf("*%X", f.nextID)
	f.nextID++
	f.entries = append(f.entries, &fakeEntry{obj: o, setAt: f.clock.Now()})
	f.maxOurs = max(f.maxOurs, f.countOursLocked())
	switch {
	case f.dropAfterAdd:
		f.dropAfterAdd = false
		f.connected = false
		return "", errConnLost
	case f.loseAddReply:
		f.loseAddReply = false
		return "", errors.New("i/o timeout")
	}
	return o.ID, nil
}

func (f *fakeRouter) find(id string) *fakeEntry {
	for _, e := range f.entries {
		if e.obj.ID == id {
			return e
		}
	}
	return nil
}

func (f *fakeRouter) Remove(ctx context.Context, o routeros.Object) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("remove"); err != nil {
		return err
	}
	f.expireLocked()
	for i, e := range f.entries {
		if e.obj.ID == o.ID {
			if !ours(e.obj) {
				panic("manager removed a foreign object " + o.ID)
			}
			f.entries = append(f.entries[:i], f.entries[i+1:]...)
			return nil
		}
	}
	return errors.New("from RouterOS device: no such item")
}

func (f *fakeRouter) SetTimeout(ctx context.Context, o routeros.Object, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("set"); err != nil {
		return err
	}
	f.expireLocked()
	e := f.find(o.ID)
	if e == nil {
		return errors.New("from RouterOS device: no such item")
	}
	if !ours(e.obj) {
		panic("manager changed a foreign object " + o.ID)
	}
	if d%time.Second != 0 {
		return fmt.Errorf("timeout %s is not whole seconds", d)
	}
	e.obj.Timeout, e.setAt = d, f.clock.Now()
	f.setTimeouts = append(f.setTimeouts, d)
	return nil
}

func (f *fakeRouter) Counters(ctx context.Context, o routeros.Object) (uint64, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("counters"); err != nil {
		return 0, 0, err
	}
	if f.counterErrors > 0 {
		f.counterErrors--
		return 0, 0, errors.New("timeout")
	}
	e := f.find(o.ID)
	if e == nil {
		return 0, 0, errors.New("from RouterOS device: no such item")
	}
	return e.obj.Packets, e.obj.Packets * 100, nil
}

// addDirect puts an object on the router behind the manager's back.
func (f *fakeRouter) addDirect(o routeros.Object) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	o.ID = fmt.Sprintf("*%X", f.nextID)
	f.nextID++
	f.entries = append(f.entries, &fakeEntry{obj: o, setAt: f.clock.Now()})
	return o.ID
}

func (f *fakeRouter) removeDirect(pred func(routeros.Object) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.entries[:0]
	for _, e := range f.entries {
		if !pred(e.obj) {
			kept = append(kept, e)
		}
	}
	f.entries = kept
}

func (f *fakeRouter) addPackets(id string, n uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := f.find(id); e != nil {
		e.obj.Packets += n
	}
}

// snapshot is every object (ours and foreign) with its current remaining timeout.
func (f *fakeRouter) snapshot() []routeros.Object {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked()
	now := f.clock.Now()
	var out []routeros.Object
	for _, e := range f.entries {
		o := e.obj
		if o.Action == routeros.ActionAddressList && o.Timeout > 0 {
			o.Timeout = o.Timeout - now.Sub(e.setAt)
		}
		out = append(out, o)
	}
	return out
}

func (f *fakeRouter) ourObjects() []routeros.Object {
	var out []routeros.Object
	for _, o := range f.snapshot() {
		if ours(o) {
			out = append(out, o)
		}
	}
	return out
}
