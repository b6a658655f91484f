// Package uplink watches the routers' uplink interfaces through their own
// receive counters (RouterOS /interface, for the interfaces in the list
// the setup script makes): the rates per interface and summed, whether the
// uplink is saturated (a flood no local drop can help: only the upstream
// blackhole can), and the flow-blind alarm: the interfaces receive far
// more packets than the flows account for (hardware offload, an
// overloaded exporter), which never bans by itself.
//
// The interface table holds at most routeros.MaxListInterfaces interfaces
// per router; an interface missing from a reading is forgotten.
package uplink

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/routeros"
)

// Kind names a state the monitor reports.
type Kind string

// The states.
const (
	KindSaturated Kind = "saturated"
	KindFlowBlind Kind = "flow_blind"
)

// Event is a change of state: On is the new state.
type Event struct {
	Kind Kind
	On   bool
	At   time.Time
	// The rates of the poll that changed it: received bits and packets
	// per second over all interfaces, and the flows' packets per second.
	RxBPS, RxPPS, FlowPPS float64
	LinkMbps              uint64
	// Stale: cleared because no router answered for StalePolls polls.
	Stale bool
}

// Interface is one interface's rates as of its last reading.
type Interface struct {
	Router, Name string
	Running      bool
	RxBPS, RxPPS float64
}

// Status is what the monitor knows now.
type Status struct {
	Interfaces            []Interface
	RxBPS, RxPPS, FlowPPS float64
	LinkMbps              uint64
	Saturated, FlowBlind  bool
	LastPoll              time.Time // zero: never polled
	Poll                  uint64    // the poll it is from, counted from 1
}

// Stats counts what the monitor did since New.
type Stats struct {
	Polls, Failures uint64 // polls; failed reads of one router
	// Resets are counters that went down (reboot, reset-counters), Wraps
	// counters that wrapped; a reset gives no rate for that poll.
	Resets, Wraps    uint64
	SaturatedSeconds float64
	SaturatedEvents  uint64 // times the uplink became saturated
	FlowBlindEvents  uint64 // times the flow-blind alarm was raised
	StaleClears      uint64
}

type ifKey struct{ router, name string }

type ifState struct {
	rxBytes, rxPackets uint64
	at                 time.Time
	rate               Interface
	fresh              bool // rate measured in the last poll
}

// Monitor polls the routers; New is inert, Start polls until Stop.
type Monitor struct {
	cfg  Configuration
	deps Dependencies
	log  *slog.Logger

	saturated, blind atomic.Bool
	polling          sync.Mutex // one poll at a time

	mu       sync.Mutex // guards the fields below
	ifaces   map[ifKey]*ifState
	sat, fb  latch
	noData   int
	lastPoll time.Time
	last     Status
	stats    Stats
	cancel   context.CancelFunc
	done     chan struct{}
}

// New returns an inert monitor; zero fields of cfg take the defaults.
func New(cfg Configuration, deps Dependencies) *Monitor {
	d := DefaultConfiguration()
	if cfg.Interval <= 0 {
		cfg.Interval = d.Interval
	}
	if cfg.List == "" {
		cfg.List = d.List
	}
	for _, f := range []struct{ v, d *float64 }{
		{&cfg.SaturatedShare, &d.SaturatedShare}, {&cfg.ClearShare, &d.ClearShare},
		{&cfg.BlindRatio, &d.BlindRatio}, {&cfg.BlindClearRatio, &d.BlindClearRatio}, {&cfg.BlindMinPPS, &d.BlindMinPPS},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *int }{
		{&cfg.SaturatedPolls, &d.SaturatedPolls}, {&cfg.ClearPolls, &d.ClearPolls},
		{&cfg.BlindPolls, &d.BlindPolls}, {&cfg.BlindClearPolls, &d.BlindClearPolls}, {&cfg.StalePolls, &d.StalePolls},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Monitor{cfg: cfg, deps: deps, log: deps.Logger, ifaces: map[ifKey]*ifState{}}
}

// Configuration is the effective configuration.
func (m *Monitor) Configuration() Configuration { return m.cfg }

// Start polls every Interval until Stop or ctx ends.
func (m *Monitor) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return nil
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.cfg.Interval)
		defer t.Stop()
		for {
			m.Poll(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the polling and waits for it.
func (m *Monitor) Stop() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Saturated says whether the uplink is saturated now: what the routers
// receive on it has stayed at SaturatedShare of LinkMbps or more. Cheap
// and safe from any goroutine.
func (m *Monitor) Saturated() bool { return m.saturated.Load() }

// FlowBlind says whether the flow-blind alarm is raised.
func (m *Monitor) FlowBlind() bool { return m.blind.Load() }

// Status is a snapshot of the rates and states as of the last poll.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.last
	s.Interfaces = append([]Interface(nil), m.last.Interfaces...)
	return s
}

// Stats is a snapshot of the counters.
func (m *Monitor) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Poll reads every router once and updates the rates and states (Start
// calls it every Interval; tests call it directly).
func (m *Monitor) Poll(ctx context.Context) {
	m.polling.Lock()
	defer m.polling.Unlock()
	type reading struct {
		src      Source
		counters []routeros.InterfaceCounters
		err      error
	}
	readings := make([]reading, 0, len(m.deps.Sources))
	for _, src := range m.deps.Sources {
		rctx, cancel := context.WithTimeout(ctx, m.cfg.Interval)
		cs, err := src.Reader.InterfaceCounters(rctx, m.cfg.List)
		cancel()
		readings = append(readings, reading{src: src, counters: cs, err: err})
	}
	flowPPS := 0.0
	if m.deps.FlowPPS != nil {
		flowPPS = m.deps.FlowPPS()
	}
	hold := m.deps.HoldBlind != nil && m.deps.HoldBlind()
	now := m.deps.Now()

	m.mu.Lock()
	var events []Event
	m.stats.Polls++
	elapsed := time.Duration(0)
	if !m.lastPoll.IsZero() {
		elapsed = now.Sub(m.lastPoll)
	}
	m.lastPoll = now
	for _, st := range m.ifaces {
		st.fresh = false
	}
	for _, r := range readings {
		if r.err != nil {
			m.stats.Failures++
			if ctx.Err() == nil {
				m.log.Debug("cannot read the uplink counters", "router", r.src.Name, "err", r.err)
			}
			continue // its interfaces keep their last sample for the next reading
		}
		m.update(r.src.Name, r.counters, now)
	}
	st := Status{LinkMbps: m.cfg.LinkMbps, FlowPPS: flowPPS, LastPoll: now, Poll: m.stats.Polls}
	fresh := false
	for _, s := range m.ifaces {
		st.Interfaces = append(st.Interfaces, s.rate)
		if s.fresh {
			fresh = true
			st.RxBPS += s.rate.RxBPS
			st.RxPPS += s.rate.RxPPS
		}
	}
	sortInterfaces(st.Interfaces)
	ev := func(k Kind, on, stale bool) Event {
		return Event{Kind: k, On: on, At: now, RxBPS: st.RxBPS, RxPPS: st.RxPPS, FlowPPS: flowPPS, LinkMbps: m.cfg.LinkMbps, Stale: stale}
	}
	if m.sat.on {
		m.stats.SaturatedSeconds += elapsed.Seconds()
	}
	if !fresh {
		m.noData++
		if m.noData == m.cfg.StalePolls {
			m.stats.StaleClears++
			for _, l := range []struct {
				k Kind
				l *latch
			}{{KindSaturated, &m.sat}, {KindFlowBlind, &m.fb}} {
				if l.l.on {
					events = append(events, ev(l.k, false, true))
				}
				*l.l = latch{}
			}
			clear(m.ifaces)
			st.Interfaces = nil
		}
	} else {
		m.noData = 0
		if link := float64(m.cfg.LinkMbps) * 1e6; link > 0 {
			if m.sat.update(st.RxBPS >= m.cfg.SaturatedShare*link, st.RxBPS < m.cfg.ClearShare*link, m.cfg.SaturatedPolls, m.cfg.ClearPolls) {
				if m.sat.on {
					m.stats.SaturatedEvents++
				}
				events = append(events, ev(KindSaturated, m.sat.on, false))
			}
		}
		if !hold {
			excess := st.RxPPS - flowPPS
			raise := excess >= m.cfg.BlindMinPPS && st.RxPPS >= m.cfg.BlindRatio*flowPPS
			drop := excess < m.cfg.BlindMinPPS || st.RxPPS < m.cfg.BlindClearRatio*flowPPS
			if m.fb.update(raise, drop, m.cfg.BlindPolls, m.cfg.BlindClearPolls) {
				if m.fb.on {
					m.stats.FlowBlindEvents++
				}
				events = append(events, ev(KindFlowBlind, m.fb.on, false))
			}
		}
	}
	st.Saturated, st.FlowBlind = m.sat.on, m.fb.on
	m.saturated.Store(m.sat.on)
	m.blind.Store(m.fb.on)
	m.last = st
	m.mu.Unlock()

	for _, e := range events {
		if m.deps.OnEvent != nil {
			m.deps.OnEvent(e)
		}
	}
}

// update takes one router's reading: rates for the interfaces seen before,
// a first sample for new ones; the router's interfaces not in it are
// forgotten.
func (m *Monitor) update(router string, counters []routeros.InterfaceCounters, now time.Time) {
	seen := make(map[string]bool, len(counters))
	for _, c := range counters {
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		k := ifKey{router, c.Name}
		s := m.ifaces[k]
		if s == nil {
			m.ifaces[k] = &ifState{rxBytes: c.RxBytes, rxPackets: c.RxPackets, at: now,
				rate: Interface{Router: router, Name: c.Name, Running: c.Running}}
			continue
		}
		dt := now.Sub(s.at).Seconds()
		db, okB, wrapB := counterDelta(s.rxBytes, c.RxBytes)
		dp, okP, wrapP := counterDelta(s.rxPackets, c.RxPackets)
		s.rxBytes, s.rxPackets, s.at = c.RxBytes, c.RxPackets, now
		s.rate.Running = c.Running
		if wrapB || wrapP {
			m.stats.Wraps++
		}
		if !okB || !okP {
			m.stats.Resets++
			m.log.Info("uplink interface counters went down (router reboot or reset-counters)", "router", router, "interface", c.Name)
			continue
		}
		if dt <= 0 {
			continue
		}
		s.rate.RxBPS, s.rate.RxPPS = float64(db)*8/dt, float64(dp)/dt
		s.fresh = true
	}
	for k := range m.ifaces {
		if k.router == router && !seen[k.name] {
			delete(m.ifaces, k)
		}
	}
}

// counterDelta is how far a counter moved from old to cur. A counter that
// went down wrapped when old was in the top half of a 32- or 64-bit range
// and cur is in the bottom half (RouterOS 7 counters are 64-bit, some
// RouterOS 6 ones 32-bit); otherwise it was reset (ok false).
func counterDelta(old, cur uint64) (d uint64, ok, wrapped bool) {
	switch {
	case cur >= old:
		return cur - old, true, false
	case old <= math.MaxUint32 && old >= 1<<31 && cur < 1<<31:
		return uint64(uint32(cur) - uint32(old)), true, true
	case old >= 1<<63 && cur < 1<<63:
		return cur - old, true, true // uint64 arithmetic wraps at 2^64
	}
	return 0, false, false
}

// latch is a state with hysteresis: it turns on after raiseAfter polls
// that say raise, off after clearAfter polls that say clear.
type latch struct {
	on     bool
	streak int
}

// update takes one poll's verdict and says whether the state changed.
func (l *latch) update(raise, clear bool, raiseAfter, clearAfter int) bool {
	want, after := raise, raiseAfter
	if l.on {
		want, after = clear, clearAfter
	}
	if !want {
		l.streak = 0
		return false
	}
	l.streak++
	if l.streak < after {
		return false
	}
	l.on, l.streak = !l.on, 0
	return true
}

func sortInterfaces(s []Interface) {
	slices.SortFunc(s, func(a, b Interface) int {
		return cmp.Or(cmp.Compare(a.Router, b.Router), cmp.Compare(a.Name, b.Name))
	})
}
