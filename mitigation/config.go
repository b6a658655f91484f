package mitigation

import (
	"net/netip"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// Configuration of the manager.
type Configuration struct {
	Actions []routeros.Action // ACTION, in the operator's order; empty or "none": no router objects
	// EscalateAfter (ESCALATE_AFTER): 0 puts every action of a ban on the
	// router at once. Otherwise Actions is a ladder: a ban starts with the
	// first action and takes the next when, this long after its last step,
	// the attack still holds (ladder.go).
	EscalateAfter time.Duration
	// AboveThreshold says whether what still reaches a host, as the
	// detector's current windowed rates show it (after a filter: the
	// traffic the filter lets pass), is above one of the host's
	// thresholds. nil: never. Called without the manager's lock.
	AboveThreshold func(ip netip.Addr, dir detect.Direction) bool
	// RateWindow is the detector's averaging window (WINDOW): a step is
	// judged no sooner than this plus 2 s after it was taken, when the
	// rates hold nothing from before it.
	RateWindow time.Duration
	// UplinkSaturated says whether the uplink is full, when no local drop
	// helps: a ban on a ladder with blackhole goes to it at once. nil:
	// never. It must be cheap and must not call the manager.
	UplinkSaturated func() bool
	BanTime         time.Duration
	Directions      []detect.Direction // BAN_DIRECTIONS
	MaxBans         int
	Whitelist       []netip.Prefix
	ListIn          string // ROUTEROS_LIST_IN
	ListOut         string // ROUTEROS_LIST_OUT
	// Networks are where bans may go: NETWORKS and every hostgroup's
	// prefixes. A ban outside all of them is refused (safety.go); none
	// refuses every ban.
	Networks []netip.Prefix
	// OwnAddresses are flowshield's own host's addresses (loopback
	// included): no ban may cover one.
	OwnAddresses []netip.Addr
	// AwaitRouterAddresses: a router is not synced before
	// SetRouterAddresses gave its addresses once, so a stored ban of one
	// never reaches it.
	AwaitRouterAddresses bool
	// HostGroupPolicy returns a hostgroup's action and ban_time for a host;
	// nil actions or a zero banTime mean "the global value". Returning
	// []routeros.Action{routeros.ActionNone} disables bans for the group.
	HostGroupPolicy func(netip.Addr) (actions []routeros.Action, banTime time.Duration)
	// DropThresholdPPS: a raw-drop ban whose attack has ended is extended
	// while its rule's counter grows faster than this (0: never extended).
	DropThresholdPPS float64
	// DropThresholdFor, when set, gives the threshold per host (hostgroups).
	DropThresholdFor func(netip.Addr) float64
	// OnDropRate, when set, is told every counter reading of a ban that
	// can be attributed (a raw-drop rule; an address-list entry while its
	// list holds no other ban of its family on that router): the packets
	// per second the router dropped for it. A ban that works blinds the
	// flows, so this is how the detector learns the flood goes on.
	OnDropRate func(prefix netip.Prefix, dir detect.Direction, pps float64, at time.Time)

	ReconcileInterval time.Duration // full pass per router
	CounterInterval   time.Duration // drop counter reads (raw-drop rules, address-list drop rules)
	CallTimeout       time.Duration // per router call
	// TimeoutTolerance: an address-list timeout within this of the wanted
	// remaining time is left alone. Refreshes after extensions are also
	// batched to one per max(TimeoutTolerance, BanTime/10), so a steady
	// attack costs a SetTimeout per ban per minute at BAN_TIME=10m, not one
	// per detector update.
	TimeoutTolerance time.Duration
	// PersistInterval batches the store writes of ban extensions; new
	// bans and unbans are written at once.
	PersistInterval time.Duration
	EventBuffer     int
	// AdoptRouterBans: the store was lost (moved aside as damaged), so the
	// first full pass on each router takes the flowshield objects it finds
	// as bans instead of removing them as orphans.
	AdoptRouterBans bool
	Now             func() time.Time
}

// DefaultConfiguration is the contract's defaults.
func DefaultConfiguration() Configuration {
	return Configuration{
		Actions:           []routeros.Action{routeros.ActionNone},
		BanTime:           10 * time.Minute,
		Directions:        []detect.Direction{detect.In},
		MaxBans:           50,
		ListIn:            "flowshield-in",
		ListOut:           "flowshield-out",
		ReconcileInterval: 30 * time.Second,
		CounterInterval:   5 * time.Second,
		CallTimeout:       10 * time.Second,
		TimeoutTolerance:  5 * time.Second,
		PersistInterval:   30 * time.Second,
		EventBuffer:       1024,
		Now:               time.Now,
	}
}

// withDefaults fills what the caller left zero.
func (cfg Configuration) withDefaults() Configuration {
	def := DefaultConfiguration()
	if cfg.BanTime <= 0 {
		cfg.BanTime = def.BanTime
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = def.ReconcileInterval
	}
	if cfg.CounterInterval <= 0 {
		cfg.CounterInterval = def.CounterInterval
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = def.CallTimeout
	}
	if cfg.TimeoutTolerance <= 0 {
		cfg.TimeoutTolerance = def.TimeoutTolerance
	}
	if cfg.PersistInterval <= 0 {
		cfg.PersistInterval = def.PersistInterval
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = def.EventBuffer
	}
	if cfg.ListIn == "" {
		cfg.ListIn = def.ListIn
	}
	if cfg.ListOut == "" {
		cfg.ListOut = def.ListOut
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}
