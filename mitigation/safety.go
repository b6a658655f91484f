package mitigation

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"
)

// Ban safety: rules every ban passes, automatic or manual, so that
// flowshield cannot be turned against the network it protects. A ban
// (raw-drop goes first in prerouting) of 0.0.0.0/0, of the router's own
// address or of flowshield's would cut the router or flowshield off.
//
// A ban is refused unless its prefix lies inside one prefix of Networks
// (NETWORKS and the hostgroups'), is an IPv4 /24 or longer or an IPv6 /64
// or longer, contains none of flowshield's addresses (OwnAddresses) nor
// the routers' (SetRouterAddresses), and its time is whole seconds from 1s
// to MaxBanTime. Refused bans are never cut down to something allowed:
// the operator asked for something else. The rules hold for what is
// already there too: a stored or adopted ban they refuse, or one a
// router's new addresses make unsafe, is dropped (with its router
// objects) and counted.

// Rule names a ban-safety rule. The names are stable: the API's errors,
// the ban_skipped events' reason and the counters use them.
type Rule string

const (
	// RuleTooWide: an IPv4 ban shorter than /24, an IPv6 one shorter than /64.
	RuleTooWide Rule = "too-wide"
	// RuleOutsideNetworks: not inside NETWORKS nor a hostgroup's prefix.
	RuleOutsideNetworks Rule = "outside-networks"
	// RuleOwnAddress: covers an address of flowshield's own host.
	RuleOwnAddress Rule = "own-address"
	// RuleRouterAddress: covers an address of a router.
	RuleRouterAddress Rule = "router-address"
	// RuleTTL: the ban's time is not whole seconds from 1s to MaxBanTime.
	RuleTTL Rule = "ttl"
)

// Rules are every rule, in the order they are checked.
var Rules = []Rule{RuleTooWide, RuleOutsideNetworks, RuleOwnAddress, RuleRouterAddress, RuleTTL}

// The shortest bans the rules allow, and the longest ban time (BAN_TIME's
// cap).
const (
	MinBitsIPv4 = 24
	MinBitsIPv6 = 64
	MaxBanTime  = 8760 * time.Hour
)

// RefusedError is a ban a safety rule refused; match it with errors.As.
type RefusedError struct {
	Prefix netip.Prefix
	Rule   Rule
	Detail string // what the rule found, for people
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("ban of %s refused by rule %s: %s", e.Prefix, e.Rule, e.Detail)
}

// ruleCounters count refusals per rule.
type ruleCounters map[Rule]*atomic.Uint64

func newRuleCounters() ruleCounters {
	c := make(ruleCounters, len(Rules))
	for _, r := range Rules {
		c[r] = new(atomic.Uint64)
	}
	return c
}

func (c ruleCounters) snapshot() map[Rule]uint64 {
	out := make(map[Rule]uint64, len(c))
	for r, n := range c {
		out[r] = n.Load()
	}
	return out
}

// checkTTL is RuleTTL alone.
func checkTTL(p netip.Prefix, ttl time.Duration) *RefusedError {
	if ttl < time.Second || ttl > MaxBanTime || ttl%time.Second != 0 {
		return &RefusedError{Prefix: p, Rule: RuleTTL,
			Detail: fmt.Sprintf("%s is not a whole number of seconds from 1s to %s", ttl, shortHours(MaxBanTime))}
	}
	return nil
}

func shortHours(d time.Duration) string { return fmt.Sprintf("%dh", int64(d/time.Hour)) }

// refusalLocked is the first rule that refuses a ban of p lasting ttl, or
// nil. Called with m.mu held (router addresses).
func (m *Manager) refusalLocked(p netip.Prefix, ttl time.Duration) *RefusedError {
	p = hostPrefix(p) // a stored ban may be an older version's ::ffff:0.0.0.0/96
	if p.Addr().Is4() && p.Bits() < MinBitsIPv4 || !p.Addr().Is4() && p.Bits() < MinBitsIPv6 {
		shortest := MinBitsIPv6
		if p.Addr().Is4() {
			shortest = MinBitsIPv4
		}
		return &RefusedError{Prefix: p, Rule: RuleTooWide,
			Detail: fmt.Sprintf("a ban must be a /%d or longer", shortest)}
	}
	inside := false
	for _, n := range m.cfg.Networks {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			inside = true
			break
		}
	}
	if !inside {
		return &RefusedError{Prefix: p, Rule: RuleOutsideNetworks,
			Detail: "not inside FLOWSHIELD_NETWORKS nor a hostgroup's prefixes"}
	}
	for _, a := range m.cfg.OwnAddresses {
		if p.Contains(a.Unmap()) {
			return &RefusedError{Prefix: p, Rule: RuleOwnAddress,
				Detail: fmt.Sprintf("covers %s, an address of flowshield's own host", a.Unmap())}
		}
	}
	for _, rs := range m.routers {
		for _, a := range rs.addrs {
			if p.Contains(a) {
				return &RefusedError{Prefix: p, Rule: RuleRouterAddress,
					Detail: fmt.Sprintf("covers %s, an address of router %s", a, rs.r.Address())}
			}
		}
	}
	return checkTTL(p, ttl)
}

// refuseLocked counts a refusal and says so in the log; automatic ones
// are logged once per attack (the attack is then done with).
func (m *Manager) refuseLocked(e *RefusedError, attrs ...any) {
	m.stats.refused[e.Rule].Add(1)
	m.log.Warn("ban refused by a safety rule", append([]any{"prefix", e.Prefix, "rule", e.Rule, "detail", e.Detail}, attrs...)...)
}

// dropUnsafeLocked drops the bans the rules refuse now (stored by an older
// version, or covering a router's new address): out of the store, an
// unban event with the rule as reason, and reconciliation removes their
// router objects as it does any object no ban wants. m.mu held.
func (m *Manager) dropUnsafeLocked(now time.Time) bool {
	dropped := false
	for _, b := range m.bans {
		e := m.refusalLocked(b.Prefix, b.banTime)
		if e == nil {
			continue
		}
		delete(m.bans, b.key)
		m.dirty[b.key] = true
		m.stats.unsafeDropped.Add(1)
		m.emit(Event{Kind: EventUnban, Ban: m.publicBan(b), Reason: string(e.Rule), Time: now})
		m.log.Warn("dropping a ban the safety rules refuse", "prefix", b.Prefix, "direction", b.Direction,
			"rule", e.Rule, "detail", e.Detail, "manual", b.Manual, "attack_id", b.AttackID)
		dropped = true
	}
	return dropped
}

// SetRouterAddresses gives router i's own addresses (its /ip/address and
// /ipv6/address entries, and its API address), read at every connect. No
// ban may cover one: bans that now do are dropped at once and their
// objects removed by the next pass. With AwaitRouterAddresses, router i is
// not synced before the first call.
func (m *Manager) SetRouterAddresses(i int, addrs []netip.Addr) error {
	if i < 0 || i >= len(m.routers) {
		return fmt.Errorf("setting the addresses of router %d: no such router", i)
	}
	clean := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a.IsValid() {
			clean = append(clean, a.Unmap().WithZone(""))
		}
	}
	m.mu.Lock()
	rs := m.routers[i]
	rs.addrs, rs.addrsSet = clean, true
	dropped := m.dropUnsafeLocked(m.now())
	m.mu.Unlock()
	if dropped {
		m.flush(context.Background())
		m.kickRouters()
	}
	return nil
}
