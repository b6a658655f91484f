package demo

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// TestDemoDetectsBansAndUnbans runs the demo with a short flood and checks
// that a newcomer sees what the README promises: the attack with its type,
// the ban on the emulated router, and the unban after the flood.
func TestDemoDetectsBansAndUnbans(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ready := make(chan struct{})
	var app *appliance.Appliance
	var victim netip.Addr
	var router *routerostest.Server
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, map[string]string{
			"FLOWSHIELD_HTTP_LISTEN": "127.0.0.1:0",
			"FLOWSHIELD_BAN_TIME":    "2s",
		}, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{
			FloodStart: 2 * time.Second, FloodFor: 5 * time.Second, FloodEvery: time.Hour,
			Ready: func(a *appliance.Appliance, r *routerostest.Server, v netip.Addr) {
				app, router, victim = a, r, v
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("demo stopped early: %v", err)
	}
	onRouter := func() bool {
		for _, o := range router.Objects(routerostest.MenuAddressList) {
			if o.Props["address"] == victim.String() && strings.HasPrefix(o.Props["comment"], "flowshield ") {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("demo: %s did not happen within %v", what, d)
	}
	waitFor("the ban on the router", 15*time.Second, onRouter)
	attacks := app.Engine().Attacks(false)
	if len(attacks) == 0 || attacks[0].Type != "udp_flood" || attacks[0].IP != victim {
		t.Fatalf("attacks %+v, want a udp_flood on %s", attacks, victim)
	}
	if len(app.Mitigator().Bans()) != 1 {
		t.Fatalf("bans %+v", app.Mitigator().Bans())
	}
	waitFor("the unban", 45*time.Second, func() bool { return !onRouter() && len(app.Mitigator().Bans()) == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
}
