package mitigation

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

func TestRestartRestoresAndReconciles(t *testing.T) {
	h := newHarness(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionAddressList, routeros.ActionRawDrop}
	})
	for i := range 4 {
		h.event(detect.AttackStart, attack(fmt.Sprintf("a%d", i), victim(i), detect.In))
	}
	h.sync(false)
	stored := h.storedKeys()
	if len(stored) != 4 || len(h.router.ourObjects()) != 8 {
		t.Fatalf("setup: stored %v router %v", stored, h.router.ourObjects())
	}
	// kill -9: no Stop. Meanwhile on the router: victim 0's entry vanished
	// (reboot), an orphan flowshield entry and a duplicate rule appeared,
	// and an operator added foreign objects.
	h.store.Close()
	h.router.removeDirect(func(o routeros.Object) bool {
		return o.Prefix.Addr() == victim(0) && o.Action == routeros.ActionAddressList
	})
	h.router.addDirect(routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.PrefixFrom(victim(9), 32), List: "flowshield-in", Comment: "flowshield a9 udp_flood", Timeout: time.Hour})
	h.router.addDirect(routeros.Object{Action: routeros.ActionRawDrop, Prefix: netip.PrefixFrom(victim(1), 32), Comment: "flowshield a1 udp_flood"})
	foreign1 := h.router.addDirect(routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.PrefixFrom(victim(9), 32), List: "flowshield-in", Comment: "added by admin"})
	foreign2 := h.router.addDirect(routeros.Object{Action: routeros.ActionRawDrop, Prefix: netip.PrefixFrom(victim(2), 32), Comment: ""})
	h.clock.Advance(time.Minute)

	store := openStore(t, h.path)
	defer store.Close()
	cfg := h.cfg
	cfg.ReconcileInterval = time.Hour
	m := New(cfg, store, []Router{h.router}, quiet)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	m.Stop()

	bans := m.Bans()
	if len(bans) != 4 {
		t.Fatalf("restored %d bans, want 4", len(bans))
	}
	var keys []string
	for _, b := range bans {
		keys = append(keys, banKey(b.Prefix, b.Direction))
		if b.Routers[0].State != BanActive {
			t.Fatalf("ban %s state %s", b.Prefix, b.Routers[0].State)
		}
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != strings.Join(stored, ",") {
		t.Fatalf("bans %v, stored %v", keys, stored)
	}
	seen := map[objKey]int{}
	foreign := 0
	for _, o := range h.router.snapshot() {
		if !ours(o) {
			foreign++
			if o.ID != foreign1 && o.ID != foreign2 {
				t.Fatalf("unexpected foreign object %+v", o)
			}
			continue
		}
		seen[keyOf(o)]++
		if o.Prefix.Addr() == victim(9) {
			t.Fatalf("orphan %+v not removed", o)
		}
		if o.Action == routeros.ActionAddressList && (o.Timeout > 10*time.Minute || o.Timeout < 8*time.Minute) {
			t.Fatalf("entry %s timeout %s, want the remaining ~9m", o.Prefix, o.Timeout)
		}
	}
	if foreign != 2 {
		t.Fatalf("foreign objects touched: %d left", foreign)
	}
	if len(seen) != 8 {
		t.Fatalf("router has %d distinct objects, want 8: %v", len(seen), seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%v present %d times", k, n)
		}
	}
	// Restarted bans still end on time, and only then.
	m.expire(h.clock.Now().Add(8 * time.Minute))
	if len(m.Bans()) != 4 {
		t.Fatal("restored bans ended early")
	}
	m.expire(h.clock.Now().Add(9*time.Minute + time.Second))
	if len(m.Bans()) != 0 {
		t.Fatal("restored bans did not end")
	}
}

// TestAdoptAfterStoreLoss: with the store moved aside as damaged, the first
// pass takes the router's flowshield objects as bans instead of removing them.
func TestAdoptAfterStoreLoss(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.AdoptRouterBans = true; c.MaxBans = 2 })
	h.router.addDirect(routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.PrefixFrom(victim(1), 32), List: "flowshield-in", Comment: "flowshield a1 udp_flood", Timeout: 5 * time.Minute})
	h.router.addDirect(routeros.Object{Action: routeros.ActionRawDrop, Prefix: netip.PrefixFrom(victim(1), 32), Direction: detect.In, Comment: "flowshield a1 udp_flood"})
	h.router.addDirect(routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.PrefixFrom(victim(2), 32), List: "flowshield-out", Comment: "flowshield a2 udp_flood", Timeout: time.Minute})
	h.router.addDirect(routeros.Object{Action: routeros.ActionBlackhole, Prefix: netip.PrefixFrom(victim(3), 32), Comment: "flowshield a3 udp_flood"}) // over MAX_BANS
	if err := h.sync(true); err != nil {
		t.Fatal(err)
	}
	bans := h.m.Bans()
	if len(bans) != 2 {
		t.Fatalf("adopted %d bans, want 2 (MAX_BANS)", len(bans))
	}
	if n := len(h.router.ourObjects()); n != 3 {
		t.Fatalf("router keeps %d objects, want 3", n)
	}
	if got := len(h.storedKeys()); got != 2 {
		t.Fatalf("stored %d adopted bans, want 2", got)
	}
	// Adoption happens once: a later orphan is removed.
	h.router.addDirect(routeros.Object{Action: routeros.ActionBlackhole, Prefix: netip.PrefixFrom(victim(4), 32), Comment: "flowshield a4 udp_flood"})
	h.sync(true)
	if n := len(h.router.ourObjects()); n != 3 {
		t.Fatalf("router has %d objects after a second pass, want 3", n)
	}
}

// TestExtensionsBatched: a long attack writes its extensions in the
// periodic batch, not on every update.
func TestExtensionsBatched(t *testing.T) {
	h := newHarness(t, nil)
	a := attack("x", victim(0), detect.In)
	h.event(detect.AttackStart, a)
	commits := h.store.Stats().Commits
	for range 60 {
		h.clock.Advance(5 * time.Second)
		h.event(detect.AttackUpdate, a)
		h.m.tick(context.Background())
	}
	got := h.store.Stats().Commits - commits
	if got == 0 || got > 10 {
		t.Fatalf("5 minutes of updates made %d commits, want a few", got)
	}
	stored, _, err := h.store.LoadBans(context.Background())
	if err != nil || len(stored) != 1 || stored[0].Key() != banKey(netip.PrefixFrom(victim(0), 32), detect.In) {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	b := stored[0]
	if lag := h.m.Bans()[0].ExpiresAt.Sub(b.ExpiresAt); lag < 0 || lag > 2*time.Minute {
		t.Fatalf("stored end lags %s behind", lag)
	}
}

// TestIdleHourWritesNothing: with bans in place but no attack and no
// change, an hour of ticks and router passes commits nothing to the store.
func TestIdleHourWritesNothing(t *testing.T) {
	h := newHarness(t, func(c *Configuration) {
		c.Actions = []routeros.Action{routeros.ActionAddressList, routeros.ActionRawDrop}
		c.DropThresholdPPS = 1000
	})
	if _, err := h.m.AddManual(context.Background(), netip.MustParsePrefix("198.51.100.7/32"), 2*time.Hour, "", detect.In); err != nil {
		t.Fatal(err)
	}
	h.sync(true)
	commits := h.store.Stats().Commits
	for s := 0; s < 3600; s++ {
		h.clock.Advance(time.Second)
		h.m.tick(context.Background())
		if s%5 == 0 {
			h.sync(s%30 == 0)
		}
	}
	if got := h.store.Stats().Commits - commits; got != 0 {
		t.Fatalf("an idle hour made %d commits", got)
	}
	if len(h.router.ourObjects()) != 2 {
		t.Fatalf("router lost the ban: %v", h.router.ourObjects())
	}
}
