package routeros_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"

	"github.com/flowshield/flowshield/detect"
)

// How the ban manager drives a router: reconcile on every (re)connect, add
// only what Find does not see after an uncertain failure, extend with
// SetTimeout.
func Example() {
	emu := routerostest.New(routerostest.DefaultConfiguration())
	if err := emu.Start(); err != nil {
		panic(err)
	}
	defer emu.Stop()

	reconcile := make(chan struct{}, 1)
	cfg := routeros.DefaultConfiguration()
	cfg.Address, cfg.User, cfg.Password = emu.Addr(), "admin", "admin"
	cfg.OnConnect = func() {
		select {
		case reconcile <- struct{}{}: // the ban manager's loop lists and fixes
		default:
		}
	}
	r := routeros.New(cfg, slog.Default())
	ctx := context.Background()
	r.Start(ctx)
	defer r.Stop()
	<-reconcile

	ban := routeros.Object{
		Action:    routeros.ActionAddressList,
		Prefix:    netip.MustParsePrefix("203.0.113.5/32"),
		Direction: detect.In,
		Comment:   "flowshield a1b2c3 udp_flood",
		Timeout:   10 * time.Minute,
	}
	id, err := r.Add(ctx, ban)
	if err != nil && !routeros.IsTrap(err) {
		// the connection broke: the add may or may not have happened
		var got routeros.Object
		if got, err = r.Find(ctx, ban); err == nil {
			id = got.ID
		} else if errors.Is(err, routeros.ErrNotFound) {
			id, err = r.Add(ctx, ban)
		}
	}
	if err != nil {
		return
	}
	ban.ID = id
	_ = r.SetTimeout(ctx, ban, 10*time.Minute) // the attack goes on
	_ = r.Remove(ctx, ban)
}
