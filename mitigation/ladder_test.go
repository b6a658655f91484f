package mitigation

import (
	"context"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/routeros"
)

var (
	dnsVector = detect.Vector{Protocol: flow.ProtoUDP, SrcPort: 53, SizeMin: 1200, SizeMax: 1500, Share: 0.8}
	synVector = detect.Vector{Protocol: flow.ProtoTCP, DstPorts: []uint16{443}, TCPFlags: flow.TCPFlagSYN,
		TCPMask: flow.TCPFlagSYN | flow.TCPFlagACK, Share: 0.15}
	fragVector = detect.Vector{Fragment: true, Share: 0.5}
)

func withFingerprint(a detect.Attack, vs ...detect.Vector) detect.Attack {
	a.Fingerprint = &detect.Fingerprint{Vectors: vs}
	return a
}

// rules are the router's filter rules as "direction prefix matchers".
func (h *harness) rules() []string {
	var out []string
	for _, o := range h.router.ourObjects() {
		if o.Action == routeros.ActionFilter {
			out = append(out, o.Prefix.String()+" "+o.Match.String())
		}
	}
	slices.Sort(out)
	return out
}

func (h *harness) actionsOnRouter() []routeros.Action {
	var out []routeros.Action
	for _, o := range h.router.ourObjects() {
		if !slices.Contains(out, o.Action) {
			out = append(out, o.Action)
		}
	}
	slices.Sort(out)
	return out
}

func (h *harness) mustSync() {
	h.t.Helper()
	if err := h.sync(false); err != nil {
		h.t.Fatal(err)
	}
}

// TestFilterFollowsFingerprint: a filter ban has no rule until the
// fingerprint comes with the details (pending meanwhile), then one rule
// per vector; a new fingerprint during the attack replaces them (new ones
// added, stale ones removed, the unchanged one kept).
func TestFilterFollowsFingerprint(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.Actions = []routeros.Action{routeros.ActionFilter} })
	a := attack("a", victim(0), detect.In)
	h.event(detect.AttackStart, a)
	h.mustSync()
	if r := h.rules(); len(r) != 0 {
		t.Fatalf("rules before any fingerprint: %v", r)
	}
	if b := h.m.Bans(); len(b) != 1 || b[0].Routers[0].State != BanPending || !slices.Equal(b[0].Actions, []routeros.Action{routeros.ActionFilter}) {
		t.Fatalf("ban before the fingerprint: %+v", b)
	}
	h.event(detect.AttackDetails, withFingerprint(a, dnsVector, synVector))
	h.mustSync()
	want := []string{"203.0.113.1/32 protocol=tcp dst-port=443 tcp-flags=syn,!ack", "203.0.113.1/32 protocol=udp src-port=53 packet-size=1200-1500"}
	if r := h.rules(); !slices.Equal(r, want) {
		t.Fatalf("rules %q, want %q", r, want)
	}
	if b := h.m.Bans(); b[0].Routers[0].State != BanActive {
		t.Fatalf("state %v", b[0].Routers[0].State)
	}
	var dnsID string
	for _, o := range h.router.ourObjects() {
		if o.Match.SrcPort == 53 {
			dnsID = o.ID
		}
	}
	h.event(detect.AttackDetails, withFingerprint(a, dnsVector, fragVector))
	h.mustSync()
	want = []string{"203.0.113.1/32 fragment=yes", "203.0.113.1/32 protocol=udp src-port=53 packet-size=1200-1500"}
	if r := h.rules(); !slices.Equal(r, want) {
		t.Fatalf("rules after the new fingerprint %q, want %q", r, want)
	}
	for _, o := range h.router.ourObjects() {
		if o.Match.SrcPort == 53 && o.ID != dnsID {
			t.Errorf("the unchanged vector's rule was replaced: %s, was %s", o.ID, dnsID)
		}
	}
	// A full pass finds exactly these and changes nothing.
	adds := h.router.calls["add"]
	if err := h.sync(true); err != nil || h.router.calls["add"] != adds || len(h.router.ourObjects()) != 2 {
		t.Fatalf("full pass: %v, %d adds, %v", err, h.router.calls["add"]-adds, h.router.ourObjects())
	}
	h.event(detect.AttackEnd, a)
	h.clock.Advance(11 * time.Minute)
	h.m.expire(h.clock.Now())
	h.mustSync()
	if o := h.router.ourObjects(); len(o) != 0 {
		t.Fatalf("left after unban: %v", o)
	}
}

// TestFilterCountersKeepBanAndReport: the filter rules' counters, summed
// over the ban's rules, are its drop rate (OnDropRate) and keep the ban
// while the flood goes on, as raw-drop's do.
func TestFilterCountersKeepBanAndReport(t *testing.T) {
	var reported atomic.Value
	h := newHarness(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionFilter}
		c.BanTime = time.Minute
		c.DropThresholdPPS = 1000
		c.OnDropRate = func(_ netip.Prefix, _ detect.Direction, pps float64, _ time.Time) { reported.Store(pps) }
	})
	a := withFingerprint(attack("a", victim(0), detect.In), dnsVector, synVector)
	h.event(detect.AttackStart, a)
	h.mustSync()
	objs := h.router.ourObjects()
	if len(objs) != 2 {
		t.Fatalf("objects %v", objs)
	}
	h.event(detect.AttackEnd, a)
	for range 30 {
		h.clock.Advance(5 * time.Second)
		h.router.addPackets(objs[0].ID, 4000) // 800 pps each: only their sum is above 1000
		h.router.addPackets(objs[1].ID, 4000)
		h.mustSync()
		h.m.expire(h.clock.Now())
	}
	if len(h.m.Bans()) != 1 || reported.Load() != 1600.0 {
		t.Fatalf("bans %v, reported %v pps, want the ban kept and 1600", h.m.Bans(), reported.Load())
	}
	for range 20 {
		h.clock.Advance(5 * time.Second)
		h.mustSync()
		h.m.expire(h.clock.Now())
	}
	h.mustSync()
	if len(h.m.Bans()) != 0 || len(h.router.ourObjects()) != 0 {
		t.Fatalf("ban outlived the flood: %v", h.m.Bans())
	}
}

type ladderHarness struct {
	*harness
	above, saturated atomic.Bool
}

func newLadder(t *testing.T, mod func(*Configuration)) *ladderHarness {
	l := &ladderHarness{}
	l.harness = newHarness(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionFilter, routeros.ActionAddressList, routeros.ActionBlackhole}
		c.EscalateAfter = 30 * time.Second
		c.DropThresholdPPS = 1000
		c.AboveThreshold = func(netip.Addr, detect.Direction) bool { return l.above.Load() }
		c.UplinkSaturated = l.saturated.Load
		if mod != nil {
			mod(c)
		}
	})
	return l
}

// run advances the clock second by second for d, the flood adding pps
// to every counting object of the router, the manager ticking and
// syncing as its loops would (counters every 5 s).
func (l *ladderHarness) run(d time.Duration, pps uint64) {
	l.t.Helper()
	for range int(d / time.Second) {
		l.clock.Advance(time.Second)
		for _, o := range l.router.ourObjects() {
			if o.Action != routeros.ActionBlackhole {
				l.router.addPackets(o.ID, pps)
			}
		}
		l.m.tick(context.Background())
		l.mustSync()
	}
}

func escalations(evs []Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == EventEscalate {
			out = append(out, string(currentStepOf(e.Ban))+" "+e.Reason)
		}
	}
	return out
}

func currentStepOf(b Ban) routeros.Action { return b.Actions[len(b.Actions)-1] }

// TestLadderFilterNotHeld: a filter whose rules drop while what passes
// stays above the threshold climbs to address-list after ESCALATE_AFTER,
// and, the flood still dropping at strength, to blackhole 30 s later; the
// earlier steps stay in force; each step is on the router in the pass
// after its decision.
func TestLadderFilterNotHeld(t *testing.T) {
	l := newLadder(t, nil)
	l.above.Store(true)
	l.event(detect.AttackStart, withFingerprint(attack("a", victim(0), detect.In), dnsVector))
	l.mustSync()
	start := l.clock.Now()
	if b := l.m.Bans()[0]; !slices.Equal(b.Actions, []routeros.Action{routeros.ActionFilter}) ||
		!slices.Equal(b.Ladder, []routeros.Action{routeros.ActionFilter, routeros.ActionAddressList, routeros.ActionBlackhole}) {
		t.Fatalf("first step %+v", b)
	}
	l.run(29*time.Second, 5000)
	if got := l.actionsOnRouter(); !slices.Equal(got, []routeros.Action{routeros.ActionFilter}) {
		t.Fatalf("before ESCALATE_AFTER: %v", got)
	}
	l.run(time.Second, 5000)
	if got := l.actionsOnRouter(); !slices.Equal(got, []routeros.Action{routeros.ActionAddressList, routeros.ActionFilter}) {
		t.Fatalf("at ESCALATE_AFTER (%s): %v", l.clock.Now().Sub(start), got)
	}
	l.run(29*time.Second, 5000)
	if got := l.actionsOnRouter(); slices.Contains(got, routeros.ActionBlackhole) {
		t.Fatalf("blackhole before its time: %v", got)
	}
	l.run(time.Second, 5000)
	if got := l.actionsOnRouter(); !slices.Equal(got, []routeros.Action{routeros.ActionAddressList, routeros.ActionBlackhole, routeros.ActionFilter}) {
		t.Fatalf("at 2 x ESCALATE_AFTER: %v", got)
	}
	want := []string{"address-list not_held", "blackhole not_held"}
	evs := l.events()
	if got := escalations(evs); !slices.Equal(got, want) {
		t.Fatalf("escalate events %q, want %q", got, want)
	}
	if n := countKind(evs, EventBan, ""); n != 1 {
		t.Fatalf("%d ban events, want 1 (the first step)", n)
	}
	l.run(time.Minute, 5000)
	if s := l.m.Stats(); s.Escalations != 2 {
		t.Fatalf("escalations %d after the top of the ladder", s.Escalations)
	}
	if stored := l.storedKeys(); len(stored) != 1 {
		t.Fatalf("stored %v", stored)
	}
}

// TestLadderHolds: no step while the filter holds (what passes is under
// the threshold), nor while its rules drop nothing (the attack is not
// what the rules match: legitimate traffic above a threshold is no
// reason to blackhole), nor after the attack ended.
func TestLadderHolds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		above bool
		pps   uint64
		end   bool
	}{
		{"filter holds", false, 5000, false},
		{"rules drop nothing", true, 0, false},
		{"attack over", true, 5000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLadder(t, nil)
			l.above.Store(tc.above)
			a := withFingerprint(attack("a", victim(0), detect.In), dnsVector)
			l.event(detect.AttackStart, a)
			l.mustSync()
			if tc.end {
				l.event(detect.AttackEnd, a)
			}
			l.run(2*time.Minute, tc.pps)
			if got := escalations(l.events()); len(got) != 0 {
				t.Fatalf("escalated: %q", got)
			}
		})
	}
}

// TestLadderNoFingerprint: an attack whose fingerprint has no vector
// cannot be filtered: the next step at once. With ESCALATE_AFTER=0 the
// other listed actions stand alone, with no event.
func TestLadderNoFingerprint(t *testing.T) {
	l := newLadder(t, nil)
	a := attack("a", victim(0), detect.In)
	l.event(detect.AttackStart, a)
	l.event(detect.AttackDetails, withFingerprint(a))
	l.mustSync()
	if got := escalations(l.events()); !slices.Equal(got, []string{"address-list no_fingerprint"}) {
		t.Fatalf("escalations %q", got)
	}
	if got := l.actionsOnRouter(); !slices.Equal(got, []routeros.Action{routeros.ActionAddressList}) {
		t.Fatalf("on the router: %v", got)
	}
	if b := l.m.Bans()[0]; b.Routers[0].State != BanActive {
		t.Fatalf("state %v", b.Routers[0].State)
	}

	h := newHarness(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionFilter, routeros.ActionAddressList}
	})
	h.event(detect.AttackStart, withFingerprint(attack("b", victim(1), detect.In)))
	h.mustSync()
	if got := h.actionsOnRouter(); !slices.Equal(got, []routeros.Action{routeros.ActionAddressList}) {
		t.Fatalf("ESCALATE_AFTER=0: on the router %v", got)
	}
	if got := escalations(h.events()); len(got) != 0 {
		t.Fatalf("ESCALATE_AFTER=0 escalated: %q", got)
	}
}

// TestLadderUplinkSaturated: a saturated uplink sends a ban to blackhole
// at once, at its start or while on an earlier step; without blackhole in
// the ladder it takes the next step after ESCALATE_AFTER whatever the
// counters say.
func TestLadderUplinkSaturated(t *testing.T) {
	l := newLadder(t, nil)
	l.saturated.Store(true)
	l.event(detect.AttackStart, withFingerprint(attack("a", victim(0), detect.In), dnsVector))
	l.mustSync()
	if got := l.actionsOnRouter(); !slices.Equal(got, []routeros.Action{routeros.ActionBlackhole, routeros.ActionFilter}) {
		t.Fatalf("on the router at the start: %v", got)
	}
	if got := escalations(l.events()); !slices.Equal(got, []string{"blackhole uplink_saturated"}) {
		t.Fatalf("escalations %q", got)
	}

	l = newLadder(t, nil)
	l.event(detect.AttackStart, withFingerprint(attack("a", victim(0), detect.In), dnsVector))
	l.run(3*time.Second, 0)
	l.saturated.Store(true)
	l.run(time.Second, 0)
	if got := l.actionsOnRouter(); !slices.Equal(got, []routeros.Action{routeros.ActionBlackhole, routeros.ActionFilter}) {
		t.Fatalf("on the router 1 s after saturation: %v", got)
	}

	l = newLadder(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionFilter, routeros.ActionAddressList}
	})
	l.saturated.Store(true)
	l.event(detect.AttackStart, withFingerprint(attack("a", victim(0), detect.In), dnsVector))
	l.run(29*time.Second, 0)
	if got := escalations(l.events()); len(got) != 0 {
		t.Fatalf("escalated before ESCALATE_AFTER without blackhole: %q", got)
	}
	l.run(time.Second, 0)
	if got := escalations(l.events()); !slices.Equal(got, []string{"address-list uplink_saturated"}) {
		t.Fatalf("escalations %q", got)
	}
}

// TestFilterRestoredAfterRestart: the store keeps the steps taken, not
// the fingerprint: a new manager takes the filter rules' matchers from the
// router, keeps them (neither orphans nor duplicates), and puts them back
// after a router reboot.
func TestFilterRestoredAfterRestart(t *testing.T) {
	l := newLadder(t, nil)
	l.above.Store(true)
	l.event(detect.AttackStart, withFingerprint(attack("a", victim(0), detect.In), dnsVector, synVector))
	l.run(30*time.Second, 5000)
	before := l.router.ourObjects()
	if len(before) != 3 {
		t.Fatalf("before the restart: %v", before)
	}
	m2 := New(l.cfg, l.store, []Router{l.router}, quiet)
	if err := m2.restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m2.syncRouter(context.Background(), 0, true); err != nil {
		t.Fatal(err)
	}
	after := l.router.ourObjects()
	if len(after) != 3 || l.router.calls["remove"] != 0 {
		t.Fatalf("after the restart: %v, %d removes", after, l.router.calls["remove"])
	}
	b := m2.Bans()[0]
	if !slices.Equal(b.Actions, []routeros.Action{routeros.ActionFilter, routeros.ActionAddressList}) || len(b.Ladder) != 3 || b.Routers[0].State != BanActive {
		t.Fatalf("restored ban %+v", b)
	}
	// The router reboots: everything flowshield made is gone.
	l.router.removeDirect(func(routeros.Object) bool { return true })
	if err := m2.syncRouter(context.Background(), 0, true); err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, o := range l.router.ourObjects() {
		rules = append(rules, string(o.Action)+" "+o.Match.String())
	}
	slices.Sort(rules)
	want := []string{"address-list ", "filter protocol=tcp dst-port=443 tcp-flags=syn,!ack", "filter protocol=udp src-port=53 packet-size=1200-1500"}
	if !slices.Equal(rules, want) {
		t.Fatalf("after the reboot %q, want %q", rules, want)
	}
}

// TestManualBanSkipsFilter: a manual ban has no fingerprint: the listed
// actions other than filter, or the ladder's first such step.
func TestManualBanSkipsFilter(t *testing.T) {
	for _, tc := range []struct {
		escalate time.Duration
		want     []routeros.Action
	}{
		{0, []routeros.Action{routeros.ActionAddressList, routeros.ActionBlackhole}},
		{30 * time.Second, []routeros.Action{routeros.ActionAddressList}},
	} {
		l := newLadder(t, func(c *Configuration) { c.EscalateAfter = tc.escalate })
		b, err := l.m.AddManual(context.Background(), hostPrefix(netipPrefixFrom(victim(0))), 0, "", detect.In)
		if err != nil || !slices.Equal(b.Actions, tc.want) || b.Ladder != nil {
			t.Fatalf("ESCALATE_AFTER=%s: %+v %v, want actions %v", tc.escalate, b, err, tc.want)
		}
	}
}

func netipPrefixFrom(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
