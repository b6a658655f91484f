package mitigation

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// objKey identifies one router object whatever its id or comment: a
// blackhole route serves both directions of a prefix.
type objKey struct {
	action routeros.Action
	prefix netip.Prefix
	side   string // address-list: list name; raw-drop: direction; filter: direction and matchers; blackhole: ""
}

func keyOf(o routeros.Object) objKey {
	k := objKey{action: o.Action, prefix: o.Prefix.Masked()}
	switch o.Action {
	case routeros.ActionAddressList:
		k.side = o.List
	case routeros.ActionRawDrop:
		k.side = o.Direction.String()
	case routeros.ActionFilter:
		k.side = o.Direction.String() + " " + o.Match.String()
	}
	return k
}

// objState is what the manager put on (or found on) one router.
type objState struct {
	obj       routeros.Object // with its ID
	timeout   time.Duration   // address-list timeout as last set or listed
	setAt     time.Time
	packets   uint64 // raw-drop counter sample
	packetsAt time.Time
}

type routerState struct {
	r    Router
	io   sync.Mutex // one pass at a time on this router
	kick chan struct{}

	// Guarded by Manager.mu.
	objs      map[objKey]*objState
	objErr    map[objKey]string
	listed    bool // a full pass succeeded since start or reconnect
	uncertain bool // a call failed: list before the next add
	lastErr   string
	adopted   bool
	addrs     []netip.Addr // the router's own addresses (SetRouterAddresses)
	addrsSet  bool
}

func newRouterState(r Router) *routerState {
	return &routerState{r: r, kick: make(chan struct{}, 1), objs: map[objKey]*objState{}, objErr: map[objKey]string{}}
}

// BanState is where a ban stands on one router.
type BanState uint8

const (
	BanPending BanState = iota // some of its objects are not on the router yet
	BanActive                  // every object of the ban is on the router
	BanFailed                  // a call for it failed, or the router is unreachable: see RouterState.Error
)

func (s BanState) String() string {
	switch s {
	case BanActive:
		return "active"
	case BanFailed:
		return "error"
	}
	return "pending"
}

// RouterState is a ban's state on one router.
type RouterState struct {
	Address string
	State   BanState
	Error   string // what failed, when State is BanFailed
}

var (
	errNotConnected = errors.New("not connected")
	errNoAddresses  = errors.New("waiting for the router's own addresses")
)

type desiredObj struct {
	obj    routeros.Object
	banKey string
}

// maxCommentBytes bounds a router comment (readable in WinBox).
const maxCommentBytes = 120

// comment names the ban on the router: "flowshield <attack id> <type>" or
// "flowshield manual <reason>", on one line, at most maxCommentBytes and
// never cut inside a character.
func comment(b *ban) string {
	if b.Manual || b.AttackID == "" {
		return oneLine(CommentPrefix+" manual "+b.Reason, maxCommentBytes)
	}
	return oneLine(CommentPrefix+" "+b.AttackID+" "+b.Reason, maxCommentBytes)
}

// wholeSeconds rounds the remaining time up to the router's resolution.
func wholeSeconds(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

func (m *Manager) listFor(d detect.Direction) string {
	if d == detect.Out {
		return m.cfg.ListOut
	}
	return m.cfg.ListIn
}

func (m *Manager) objectsOf(b *ban, now time.Time) []routeros.Object {
	var out []routeros.Object
	for _, a := range b.Actions {
		o := routeros.Object{Action: a, Prefix: b.Prefix, Direction: b.Direction, Comment: comment(b)}
		switch a {
		case routeros.ActionFilter:
			for _, mt := range b.matches {
				o.Match = mt
				out = append(out, o)
			}
			continue
		case routeros.ActionAddressList:
			o.List = m.listFor(b.Direction)
			o.Timeout = wholeSeconds(b.ExpiresAt.Sub(now))
		case routeros.ActionBlackhole:
			o.Direction = detect.In
		}
		out = append(out, o)
	}
	return out
}

// desiredObjects is what every router should hold. Called with m.mu held.
func (m *Manager) desiredObjects(now time.Time) map[objKey]desiredObj {
	out := make(map[objKey]desiredObj)
	for _, b := range m.bans {
		for _, o := range m.objectsOf(b, now) {
			k := keyOf(o)
			if prev, ok := out[k]; ok && prev.obj.Timeout >= o.Timeout {
				continue
			}
			out[k] = desiredObj{obj: o, banKey: b.key}
		}
	}
	return out
}

// routerBanState is BanActive when every object of the ban is on the
// router, BanFailed when one failed (or, with one missing, the router's
// last pass did), else BanPending. m.mu held.
func (m *Manager) routerBanState(rs *routerState, b *ban) RouterState {
	out := RouterState{Address: rs.r.Address(), State: BanActive}
	for _, o := range m.objectsOf(b, m.now()) {
		k := keyOf(o)
		if e := rs.objErr[k]; e != "" {
			out.State, out.Error = BanFailed, e
			return out
		}
		if st := rs.objs[k]; st == nil || st.obj.ID == "" {
			out.State = BanPending
		}
	}
	if !b.fpKnown && slices.Contains(b.Actions, routeros.ActionFilter) {
		out.State = BanPending // no fingerprint yet: no rule
	}
	if out.State == BanPending && rs.lastErr != "" {
		out.State, out.Error = BanFailed, rs.lastErr
	}
	return out
}

func (m *Manager) kickRouters() {
	for _, rs := range m.routers {
		select {
		case rs.kick <- struct{}{}:
		default:
		}
	}
}

// Reconcile runs a full pass on one router now: the caller's hook after a
// (re)connect, and the periodic pass.
func (m *Manager) Reconcile(ctx context.Context, routerIndex int) error {
	if routerIndex < 0 || routerIndex >= len(m.routers) {
		return fmt.Errorf("reconciling router %d: no such router", routerIndex)
	}
	return m.syncRouter(ctx, routerIndex, true)
}

func (m *Manager) runRouter(ctx context.Context, i int) {
	rs := m.routers[i]
	full := time.NewTicker(m.cfg.ReconcileInterval)
	defer full.Stop()
	counters := time.NewTicker(m.cfg.CounterInterval)
	defer counters.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := time.Second

	err := m.syncRouter(ctx, i, true)
	for {
		if err != nil && ctx.Err() == nil {
			retry.Reset(backoff)
			backoff = min(backoff*2, m.cfg.ReconcileInterval)
		} else if err == nil {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-rs.kick:
			err = m.syncRouter(ctx, i, false)
		case <-counters.C:
			err = m.syncRouter(ctx, i, false)
		case <-retry.C:
			err = m.syncRouter(ctx, i, false)
		case <-full.C:
			err = m.syncRouter(ctx, i, true)
		}
	}
}

func (m *Manager) call(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.CallTimeout)
	defer cancel()
	m.stats.routerCalls.Add(1)
	err := fn(ctx)
	if err != nil {
		m.stats.routerErrors.Add(1)
	}
	return err
}

// syncRouter makes router i match the desired bans: a full pass (list
// first) when asked, before the first success, or after any failed call;
// otherwise only the differences from what the manager put there.
func (m *Manager) syncRouter(ctx context.Context, i int, full bool) error {
	rs := m.routers[i]
	rs.io.Lock()
	defer rs.io.Unlock()
	if !rs.r.Connected() {
		m.mu.Lock()
		rs.lastErr = errNotConnected.Error()
		rs.listed = false // the router may have rebooted: list after reconnect
		m.mu.Unlock()
		return fmt.Errorf("syncing router %s: %w", rs.r.Address(), errNotConnected)
	}
	m.mu.Lock()
	if m.cfg.AwaitRouterAddresses && !rs.addrsSet {
		rs.lastErr = errNoAddresses.Error()
		m.mu.Unlock()
		return fmt.Errorf("syncing router %s: %w", rs.r.Address(), errNoAddresses)
	}
	full = full || !rs.listed || rs.uncertain
	m.mu.Unlock()
	var err error
	if full {
		err = m.reconcile(ctx, rs)
	} else {
		err = m.apply(ctx, rs)
	}
	var cerr error
	if err == nil {
		cerr = m.readCounters(ctx, rs)
	}
	m.mu.Lock()
	if err != nil {
		rs.lastErr = err.Error()
	} else {
		rs.lastErr = ""
	}
	m.mu.Unlock()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing router %s: %w", rs.r.Address(), err)
	}
	return nil
}
