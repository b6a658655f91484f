package routeros_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// BenchmarkAddRemove is one ban and unban on the emulator over loopback:
// the client's own cost per round trip (the router's is not in it).
func BenchmarkAddRemove(b *testing.B) {
	emu := routerostest.New(routerostest.DefaultConfiguration())
	if err := emu.Start(); err != nil {
		b.Fatal(err)
	}
	defer emu.Stop()
	cfg := routeros.DefaultConfiguration()
	cfg.Address, cfg.User, cfg.Password = emu.Addr(), "admin", "admin"
	r := routeros.New(cfg, nil)
	defer r.Stop()
	ctx := context.Background()
	o := routeros.Object{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("192.0.2.1/32"),
		Comment: "flowshield manual bench", Timeout: time.Minute}
	calls0 := r.Stats().Calls
	t0 := time.Now()
	for b.Loop() {
		id, err := r.Add(ctx, o)
		if err != nil {
			b.Fatal(err)
		}
		o.ID = id
		if err := r.Remove(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	calls := float64(r.Stats().Calls - calls0)
	b.ReportMetric(calls/time.Since(t0).Seconds(), "calls/s")
	b.ReportMetric(calls/float64(b.N), "calls/ban")
}
