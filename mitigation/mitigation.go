// Package mitigation is the ban manager: it turns the detector's attack
// events and the API's manual bans into the desired set of bans, keeps that
// set in memory and in the store, and makes every router match it.
//
// Rules, in the contract's words: bans per ACTION (none: detect and notify
// only), only for BAN_DIRECTIONS, only where the ban-safety rules allow
// (safety.go: inside NETWORKS or a hostgroup, IPv4 /24 and IPv6 /64 or
// longer, never a router's or flowshield's own address; a ban_skipped
// event with the rule as reason says so), never for a WHITELIST prefix (a
// ban_skipped event with reason "whitelist" says so), at most MAX_BANS at
// once in the order attacks start (past the cap a ban_skipped event with
// reason "max_bans"; a skipped attack gets its ban on a later update if room
// opens while it goes on). A ban lasts BAN_TIME; every AttackUpdate of its
// attack extends it, and the router's address-list timeout= follows (whole
// seconds). A ban ends only when its attack has ended and its time has run
// out.
//
// Whether an attack is still on after its ban: traffic dropped in raw
// prerouting or by a blackhole route never reaches the router's
// traffic-flow export, so the flows go silent however hard the flood goes
// on. The manager reads what the router counts every CounterInterval: the
// ban's raw rule for raw-drop, and for address-list the setup script's
// raw rules that drop the list, attributable to a ban while the list holds
// no other ban of its family and direction on that router. Each reading is
// handed to OnDropRate (the detector keeps the attack on while it is above
// its threshold: one flood, one attack), and while it grows faster than the
// drop threshold (DropThresholdPPS, or DropThresholdFor the host) a ban
// whose attack has ended anyway is extended. Blackhole routes count
// nothing: such a ban runs out, the flood shows again in the flows, and
// the detector's next AttackStart bans again at once; so does an
// address-list ban sharing its list. With a threshold of 0 the ban also
// just runs out (a drop rule drops the host's legitimate traffic too, so
// "any packet" would keep it forever).
//
// Routers are reconciled against the desired set one by one (a worker per
// router, so a stalled router delays nobody): on Start, on Reconcile (the
// caller's reconnect hook), every ReconcileInterval, and after an error a
// full pass lists the router's flowshield objects, adds what is missing,
// removes what expired, is orphaned or duplicated, and fixes a wrong
// address-list timeout; between full passes, changes are applied from the
// manager's memory of what it put there. After any failed call the next
// pass lists before it adds, so a lost reply never makes a duplicate.
// Objects whose comment does not start with "flowshield" are never touched.
//
// The files: mitigation.go the bans' state machine, manual.go the
// operator's side (the ban list, manual bans and unbans), safety.go the
// rules no ban may break, persist.go the store, router.go and reconcile.go
// the routers, config.go the settings.
package mitigation

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/storage"
)

// CommentPrefix starts the comment of every object flowshield creates.
const CommentPrefix = "flowshield"

// Event reasons.
const (
	ReasonWhitelist = "whitelist"
	ReasonMaxBans   = "max_bans"
	ReasonManual    = "manual"
	ReasonExpired   = "expired"
	ReasonRestored  = "restored from router"
	// Escalation reasons (ladder.go).
	ReasonNoFingerprint   = "no_fingerprint"
	ReasonNotHeld         = "not_held"
	ReasonUplinkSaturated = "uplink_saturated"
)

var (
	ErrNotFound    = errors.New("no such ban")
	ErrMaxBans     = errors.New("MAX_BANS reached")
	ErrWhitelisted = errors.New("prefix is whitelisted")
)

// Router is one router as the manager needs it.
type Router interface {
	Address() string
	Connected() bool
	// List returns only objects whose comment starts with CommentPrefix.
	List(ctx context.Context) ([]routeros.Object, error)
	Add(ctx context.Context, o routeros.Object) (id string, err error)
	Remove(ctx context.Context, o routeros.Object) error
	SetTimeout(ctx context.Context, o routeros.Object, timeout time.Duration) error
	Counters(ctx context.Context, o routeros.Object) (packets, bytes uint64, err error)
}

// Ban is one desired ban.
type Ban struct {
	Prefix    netip.Prefix
	Direction detect.Direction
	// Actions are the actions in force, in the order taken: with a ladder
	// (ESCALATE_AFTER), its steps so far, the last one the current step.
	Actions []routeros.Action
	// Ladder is the whole ladder, in order, when the ban climbs one; nil
	// when every action is in force at once.
	Ladder    []routeros.Action
	Reason    string
	AttackID  string
	Manual    bool
	CreatedAt time.Time
	ExpiresAt time.Time
	Routers   []RouterState
}

// EventKind is what the manager did.
type EventKind string

const (
	EventBan        EventKind = "ban"
	EventBanSkipped EventKind = "ban_skipped"
	// EventEscalate: a ban took the next step of its ladder (Ban.Actions
	// ends with it; Reason says why).
	EventEscalate EventKind = "escalate"
	EventUnban    EventKind = "unban"
)

// Event goes to the notification stage.
type Event struct {
	Kind   EventKind
	Ban    Ban
	Attack detect.Attack // zero for manual bans and restored ones
	Reason string
	Time   time.Time
}

// Stats count what the manager did.
type Stats struct {
	Bans, Unbans, Skipped, Extensions, CounterExtensions uint64
	// Escalations counts ladder steps taken after a ban's first.
	Escalations                                uint64
	EventsDropped, PersistErrors, DecodeErrors uint64
	RouterCalls, RouterErrors, Reconciles      uint64
	Added, Removed, TimeoutsSet                uint64
	// Refused counts the bans a safety rule refused, automatic and
	// manual, per rule (every Rule has an entry).
	Refused map[Rule]uint64
	// UnsafeDropped counts bans dropped after the fact because a rule
	// refuses them now: stored by an older version, adopted from a router,
	// or covering a router's newly read address.
	UnsafeDropped uint64
}

type counters struct {
	bans, unbans, skipped, extensions, counterExtensions atomic.Uint64
	escalations                                          atomic.Uint64
	eventsDropped, persistErrors, decodeErrors           atomic.Uint64
	routerCalls, routerErrors, reconciles                atomic.Uint64
	added, removed, timeoutsSet                          atomic.Uint64
	refused                                              ruleCounters
	unsafeDropped                                        atomic.Uint64
}

type ban struct {
	Ban
	key              string
	banTime          time.Duration
	dropPPS          float64
	attackActive     bool
	persistedExpires time.Time
	// stepAt is when the ban took its current step (ladder.go).
	stepAt time.Time
	// matches are the filter rules' matchers, one per fingerprint vector
	// RouterOS can match; fpKnown once a fingerprint (or the router's
	// rules after a restart) gave them. A filter without them has no rule.
	matches []routeros.Match
	fpKnown bool
	// drops is the last drop-rate reading of each router, per action.
	drops map[*routerState]dropReading
}

type attackState struct {
	attack   detect.Attack
	key      string // the ban's key while banned
	banned   bool
	skipped  bool // max_bans: retried on updates
	released bool // operator removed its ban: not banned again
	done     bool // never to be banned (whitelist, no action)
}

// Manager is the ban manager.
type Manager struct {
	cfg     Configuration
	store   BanStore
	log     *slog.Logger
	events  chan Event
	routers []*routerState
	stats   counters

	persistMu sync.Mutex // one store write at a time, in order
	// persistLoggedAt is when a store write failure was last logged
	// (under mu).
	persistLoggedAt time.Time

	mu            sync.Mutex
	bans          map[string]*ban
	attacks       map[string]*attackState
	dirty         map[string]bool // keys to write (present) or delete (absent)
	lazy          map[string]bool // extended bans, written at the next batch
	lastLazyFlush time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New makes an inert manager; Start restores the bans and runs it.
func New(cfg Configuration, store BanStore, routers []Router, log *slog.Logger) *Manager {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	m := &Manager{
		cfg:     cfg,
		store:   store,
		log:     log.With("component", "mitigation"),
		events:  make(chan Event, cfg.EventBuffer),
		bans:    make(map[string]*ban),
		attacks: make(map[string]*attackState),
		dirty:   make(map[string]bool),
		lazy:    make(map[string]bool),
	}
	m.stats.refused = newRuleCounters()
	for _, r := range routers {
		m.routers = append(m.routers, newRouterState(r))
	}
	return m
}

// Events is the bounded stream of ban, ban_skipped and unban events. When
// the consumer falls behind, events are dropped and counted, never waited for.
func (m *Manager) Events() <-chan Event { return m.events }

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	c := &m.stats
	return Stats{
		Bans: c.bans.Load(), Unbans: c.unbans.Load(), Skipped: c.skipped.Load(),
		Extensions: c.extensions.Load(), CounterExtensions: c.counterExtensions.Load(), Escalations: c.escalations.Load(),
		EventsDropped: c.eventsDropped.Load(), PersistErrors: c.persistErrors.Load(), DecodeErrors: c.decodeErrors.Load(),
		RouterCalls: c.routerCalls.Load(), RouterErrors: c.routerErrors.Load(), Reconciles: c.reconciles.Load(),
		Added: c.added.Load(), Removed: c.removed.Load(), TimeoutsSet: c.timeoutsSet.Load(),
		Refused: c.refused.snapshot(), UnsafeDropped: c.unsafeDropped.Load(),
	}
}

// Start restores the stored bans and starts the expiry loop and one worker
// per router (each begins with a full reconciliation).
func (m *Manager) Start(ctx context.Context) error {
	if err := m.restore(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	m.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.tick(ctx)
			}
		}
	}()
	for i := range m.routers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.runRouter(ctx, i)
		}()
	}
	return nil
}

// Stop ends the loops and writes what is still unsaved.
func (m *Manager) Stop() {
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	m.mu.Lock()
	for k := range m.lazy {
		m.dirty[k] = true
	}
	clear(m.lazy)
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.flush(ctx)
}

func (m *Manager) now() time.Time { return m.cfg.Now() }

// banKey is the store's key of a ban, and the manager's.
func banKey(p netip.Prefix, d detect.Direction) string { return storage.BanKey(p, d) }

func (m *Manager) emit(e Event) {
	select {
	case m.events <- e:
	default:
		m.stats.eventsDropped.Add(1)
	}
}

func (m *Manager) directionEnabled(d detect.Direction) bool {
	return slices.Contains(m.cfg.Directions, d)
}

func (m *Manager) whitelisted(p netip.Prefix) bool {
	for _, w := range m.cfg.Whitelist {
		if w.Overlaps(p) {
			return true
		}
	}
	return false
}

// cleanActions keeps the actions the manager puts on routers, once each, in
// order: "none" and unknown names go.
func cleanActions(in []routeros.Action) []routeros.Action {
	var out []routeros.Action
	for _, a := range in {
		switch a {
		case routeros.ActionFilter, routeros.ActionAddressList, routeros.ActionRawDrop, routeros.ActionBlackhole:
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// policy resolves the actions, ban time and drop threshold for a host.
func (m *Manager) policy(ip netip.Addr) (actions []routeros.Action, banTime time.Duration, dropPPS float64) {
	actions, banTime = m.cfg.Actions, m.cfg.BanTime
	if m.cfg.HostGroupPolicy != nil {
		ga, gt := m.cfg.HostGroupPolicy(ip)
		if ga != nil {
			actions = ga
		}
		if gt > 0 {
			banTime = gt
		}
	}
	dropPPS = m.cfg.DropThresholdPPS
	if m.cfg.DropThresholdFor != nil {
		dropPPS = m.cfg.DropThresholdFor(ip)
	}
	return cleanActions(actions), banTime, dropPPS
}

// HandleEvent applies one detector event. It never waits for a router;
// it waits for the store write of a changed ban.
func (m *Manager) HandleEvent(ev detect.Event) {
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	m.mu.Lock()
	changed := false
	switch ev.Kind {
	case detect.AttackStart:
		changed = m.onStart(ev)
	case detect.AttackUpdate:
		changed = m.onUpdate(ev)
	case detect.AttackDetails:
		changed = m.onDetails(ev)
	case detect.AttackEnd:
		changed = m.onEnd(ev)
	}
	m.mu.Unlock()
	switch {
	case changed:
		m.flush(context.Background())
		m.kickRouters()
	case ev.Kind == detect.AttackUpdate:
		// An extension may need the router's timeout= refreshed; the
		// light pass decides, without a router call when nothing is due.
		m.kickRouters()
	}
}

func (m *Manager) onStart(ev detect.Event) bool {
	a := ev.Attack
	if a.Scope != detect.ScopeHost || !a.IP.IsValid() || !m.directionEnabled(a.Direction) {
		return false
	}
	if st := m.attacks[a.ID]; st != nil {
		return m.onUpdate(ev)
	}
	st := &attackState{attack: a}
	m.attacks[a.ID] = st
	return m.tryBan(st, ev.Time)
}

// tryBan gives the attack its ban if the rules allow. Called with m.mu held.
func (m *Manager) tryBan(st *attackState, now time.Time) bool {
	a := st.attack
	actions, banTime, dropPPS := m.policy(a.IP)
	if len(actions) == 0 {
		st.done = true // ACTION=none: detect and notify only
		return false
	}
	prefix := netip.PrefixFrom(a.IP.Unmap(), a.IP.Unmap().BitLen())
	if e := m.refusalLocked(prefix, banTime); e != nil {
		// Detected and reported, never banned: once per attack.
		st.done = true
		m.stats.skipped.Add(1)
		m.refuseLocked(e, "attack_id", a.ID, "direction", a.Direction)
		m.emit(Event{Kind: EventBanSkipped, Attack: a, Reason: string(e.Rule), Time: now,
			Ban: Ban{Prefix: prefix, Direction: a.Direction, Actions: actions, Reason: a.Type, AttackID: a.ID}})
		return false
	}
	if m.whitelisted(prefix) {
		st.done = true
		m.stats.skipped.Add(1)
		m.emit(Event{Kind: EventBanSkipped, Attack: a, Reason: ReasonWhitelist, Time: now,
			Ban: Ban{Prefix: prefix, Direction: a.Direction, Actions: actions, Reason: a.Type, AttackID: a.ID}})
		return false
	}
	key := banKey(prefix, a.Direction)
	if b := m.bans[key]; b != nil {
		// Already banned (a manual ban, or the last attack's ban still
		// running): the attack takes it over.
		b.attackActive = true
		if !b.Manual {
			b.AttackID = a.ID
			m.applyFingerprint(b, a.Fingerprint, now)
		}
		st.banned, st.skipped, st.key = true, false, key
		m.extend(b, now)
		return true
	}
	if m.cfg.MaxBans > 0 && len(m.bans) >= m.cfg.MaxBans {
		if !st.skipped {
			st.skipped = true
			m.stats.skipped.Add(1)
			m.emit(Event{Kind: EventBanSkipped, Attack: a, Reason: ReasonMaxBans, Time: now,
				Ban: Ban{Prefix: prefix, Direction: a.Direction, Actions: actions, Reason: a.Type, AttackID: a.ID}})
			m.log.Warn("MAX_BANS reached: attack not banned", "attack_id", a.ID, "ip", a.IP, "max_bans", m.cfg.MaxBans)
		}
		return false
	}
	b := &ban{
		Ban: Ban{Prefix: prefix, Direction: a.Direction, Actions: actions, Reason: a.Type, AttackID: a.ID,
			CreatedAt: now, ExpiresAt: now.Add(banTime)},
		key: key, banTime: banTime, dropPPS: dropPPS, attackActive: true, stepAt: now,
	}
	m.startLadder(b, actions)
	m.bans[key] = b
	m.dirty[key] = true
	st.banned, st.skipped, st.key = true, false, key
	m.stats.bans.Add(1)
	m.emit(Event{Kind: EventBan, Ban: m.publicBan(b), Attack: a, Reason: a.Type, Time: now})
	m.log.Info("ban", "prefix", prefix, "direction", a.Direction, "actions", b.Actions, "ladder", b.Ladder, "attack_id", a.ID, "expires_at", b.ExpiresAt)
	m.applyFingerprint(b, a.Fingerprint, now)
	if m.cfg.UplinkSaturated != nil && m.cfg.UplinkSaturated() {
		m.toBlackholeLocked(b, now)
	}
	return true
}

// extend pushes the ban's end to now+banTime. The store learns of it only
// when the end moved by more than the refresh slack, and then in the next
// periodic batch (PersistInterval) with the other extended bans: a crash
// loses at most that much of an extension, and a long attack on many hosts
// costs one commit per interval instead of one per host and update.
func (m *Manager) extend(b *ban, now time.Time) {
	until := now.Add(b.banTime)
	if !until.After(b.ExpiresAt) {
		return
	}
	b.ExpiresAt = until
	m.stats.extensions.Add(1)
	if until.Sub(b.persistedExpires) > m.refreshSlack(b) {
		m.lazy[b.key] = true
	}
}

// refreshSlack is how far the router's timeout may lag the ban's end
// before it is refreshed: a tenth of the ban time (at least the tolerance),
// but never more than a third of it, so a short BAN_TIME's entry is
// refreshed well before the router expires it.
func (m *Manager) refreshSlack(b *ban) time.Duration {
	return min(max(m.cfg.TimeoutTolerance, b.banTime/10), b.banTime/3)
}

func (m *Manager) onUpdate(ev detect.Event) bool {
	st := m.attacks[ev.Attack.ID]
	if st == nil {
		if ev.Attack.EndedAt.IsZero() {
			return m.onStart(detect.Event{Kind: detect.AttackStart, Time: ev.Time, Attack: ev.Attack})
		}
		return false
	}
	st.attack = ev.Attack
	switch {
	case st.banned:
		b := m.bans[st.key]
		if b == nil {
			st.banned, st.released = false, true
			return false
		}
		b.attackActive = true
		m.extend(b, ev.Time)
		return false
	case st.skipped && !st.released && !st.done:
		return m.tryBan(st, ev.Time)
	}
	return false
}

func (m *Manager) onEnd(ev detect.Event) bool {
	st := m.attacks[ev.Attack.ID]
	if st == nil {
		return false
	}
	delete(m.attacks, ev.Attack.ID)
	if !st.banned {
		return false
	}
	if b := m.bans[st.key]; b != nil && (b.AttackID == ev.Attack.ID || b.Manual) {
		b.attackActive = false
	}
	return false
}

// tick expires bans, climbs the ladders, writes the batch of extended
// bans when due, and retries a failed store write.
func (m *Manager) tick(ctx context.Context) {
	now := m.now()
	if m.expire(now) {
		m.kickRouters()
	}
	if m.climb(now) {
		m.flush(ctx)
		m.kickRouters()
	}
	m.mu.Lock()
	if now.Sub(m.lastLazyFlush) >= m.cfg.PersistInterval {
		m.lastLazyFlush = now
		for k := range m.lazy {
			m.dirty[k] = true
		}
		clear(m.lazy)
	}
	m.mu.Unlock()
	m.flush(ctx)
}

// expire ends the bans whose time ran out and whose attack is over; a ban
// whose attack is still on (no update came in time) is extended instead.
func (m *Manager) expire(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for _, b := range m.bans {
		if now.Before(b.ExpiresAt) {
			continue
		}
		if b.attackActive {
			m.extend(b, now)
			continue
		}
		m.unbanLocked(b, now, ReasonExpired)
		changed = true
	}
	return changed
}

func (m *Manager) unbanLocked(b *ban, now time.Time, reason string) {
	delete(m.bans, b.key)
	m.dirty[b.key] = true
	m.stats.unbans.Add(1)
	m.emit(Event{Kind: EventUnban, Ban: m.publicBan(b), Reason: reason, Time: now})
	m.log.Info("unban", "prefix", b.Prefix, "direction", b.Direction, "reason", reason)
}
