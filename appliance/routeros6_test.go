package appliance

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// TestRouterOS6ThroughDaemon: the daemon against the emulator in RouterOS 6
// mode, which refuses RouterOS 7's blackhole=yes as RouterOS 6 does. A
// flood gets an address-list entry and a type=blackhole route, a manual
// IPv6 ban a type=unreachable route (RouterOS 6 has no IPv6 blackhole
// routes); then the router reboots upgraded to RouterOS 7: the daemon
// reads the new version on reconnect, puts back the address-list entries
// the reboot dropped, keeps the converted routes without duplicating them,
// and the next flood gets blackhole=yes.
func TestRouterOS6ThroughDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	cfg := routerostest.DefaultConfiguration()
	cfg.User, cfg.Password = faultUser, faultPassword
	cfg.Version = "6.49.18 (long-term)"
	emu := routerostest.New(cfg)
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	a := startApplianceWith(t, routerEnv(emu, "address-list,blackhole"), Options{})
	base := apiBase(a)
	target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	waitConnected(t, a, 10*time.Second)

	flood := func(victim netip.Addr) time.Duration {
		t.Helper()
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- sendFlood(target, victim, 60000, 3*time.Second) }()
		latency := waitObject(t, emu, routerostest.MenuRoute, "dst-address", victim, 10*time.Second, start)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return latency
	}
	v1 := netip.MustParseAddr("203.0.113.61")
	t.Logf("RouterOS 6: first flood record to the blackhole route: %v", flood(v1).Round(time.Millisecond))
	postBan(t, base, "2001:db8:1::61/128", "10m")
	want := func() map[string]int { return storedBanKeys(t, a) }
	waitRouterMatches(t, emu, "address-list", 10*time.Second, want)
	waitRouterMatches(t, emu, "blackhole", 10*time.Second, want)
	if o, _ := findObject(emu, routerostest.MenuRoute, "dst-address", v1); o.Props["type"] != "blackhole" {
		t.Fatalf("IPv4 route on RouterOS 6: %v", o.Props)
	}
	v6 := netip.MustParseAddr("2001:db8:1::61")
	if o, ok := findObject(emu, routerostest.MenuRouteV6, "dst-address", v6); !ok || o.Props["type"] != "unreachable" {
		t.Fatalf("IPv6 route on RouterOS 6: %v", o.Props)
	}

	before := emu.Logins()
	emu.Upgrade("7.18.2 (stable)")
	if len(routerBans(emu, "address-list")) != 0 {
		t.Fatal("the reboot kept timed address-list entries")
	}
	for deadline := time.Now().Add(10 * time.Second); emu.Logins() <= before; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no login after the upgrade")
		}
	}
	waitRouterMatches(t, emu, "address-list", 15*time.Second, want)
	waitRouterMatches(t, emu, "blackhole", 10*time.Second, want)
	if v := a.routers[0].Version(); v != "7.18.2 (stable)" {
		t.Fatalf("version after the upgrade %q", v)
	}
	v2 := netip.MustParseAddr("203.0.113.62")
	t.Logf("RouterOS 7 after the upgrade: first flood record to the blackhole route: %v", flood(v2).Round(time.Millisecond))
	if o, _ := findObject(emu, routerostest.MenuRoute, "dst-address", v2); o.Props["blackhole"] != "true" {
		t.Fatalf("IPv4 route on RouterOS 7: %v", o.Props)
	}
	waitRouterMatches(t, emu, "address-list", 10*time.Second, want)
	waitRouterMatches(t, emu, "blackhole", 10*time.Second, want)
	if s := getStatus(t, a); len(s.Routers) != 1 || !s.Routers[0].Connected || s.Routers[0].LastError != "" {
		t.Fatalf("router status %+v", s.Routers)
	}
}

// waitConnected waits until every router of the daemon is logged in, so a
// latency measures detection and mitigation, not the first login.
func waitConnected(t *testing.T, a *Appliance, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		all := true
		for _, r := range a.routers {
			all = all && r.Connected()
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("routers not connected after %v", timeout)
		}
	}
}

// waitObject waits for flowshield's object for victim in menu and returns
// the time since start.
func waitObject(t *testing.T, emu *routerostest.Server, menu, key string, victim netip.Addr, timeout time.Duration, start time.Time) time.Duration {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := findObject(emu, menu, key, victim); ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no object for %s in %s of %s after %v: %+v", victim, menu, emu.Addr(), timeout, emu.Objects(menu))
		}
	}
}
