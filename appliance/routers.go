package appliance

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// routerClient adapts one routeros.Router to the ban manager's Router
// interface, and turns the router's connect notifications into
// reconciliation passes.
type routerClient struct {
	*routeros.Router
	onConnect func()
	connected chan struct{}
	done      chan struct{}
	wg        sync.WaitGroup

	mu        sync.Mutex
	lastErr   error
	lastErrAt time.Time
}

// routerConfiguration is the RouterOS client configuration for the router
// at address, from ROUTEROS_*: the daemon's and `flowshield check`'s.
func routerConfiguration(cfg config.Configuration, address string) routeros.Configuration {
	rcfg := routeros.DefaultConfiguration()
	rcfg.Address = address
	rcfg.User, rcfg.Password = cfg.RouterOSUser, cfg.RouterOSPassword
	rcfg.TLS, rcfg.TLSInsecure = cfg.RouterOSTLS, cfg.RouterOSTLSInsecure
	rcfg.ListIn, rcfg.ListOut = cfg.RouterOSListIn, cfg.RouterOSListOut
	return rcfg
}

func newRouterClient(cfg config.Configuration, address string, log *slog.Logger) *routerClient {
	rc := &routerClient{connected: make(chan struct{}, 1), done: make(chan struct{})}
	rcfg := routerConfiguration(cfg, address)
	// OnConnect runs on the router's maintenance goroutine, which Stop
	// waits for: only poke a channel there, reconcile on our own goroutine.
	rcfg.OnConnect = func() {
		select {
		case rc.connected <- struct{}{}:
		default:
		}
	}
	rc.Router = routeros.New(rcfg, log.With("component", "routeros"))
	return rc
}

// Start connects in the background; bans wait for reconciliation.
func (rc *routerClient) Start(ctx context.Context) error {
	rc.Router.Start(ctx)
	rc.wg.Add(1)
	go func() {
		defer rc.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-rc.done:
				return
			case <-rc.connected:
				if rc.onConnect != nil {
					rc.onConnect()
				}
			}
		}
	}()
	return nil
}

func (rc *routerClient) Stop() {
	close(rc.done)
	rc.wg.Wait()
	rc.Router.Stop()
}

// lastFailure is the router's last error and when it was first seen, for
// the status API.
func (rc *routerClient) lastFailure() (time.Time, error) {
	err := rc.Router.LastError()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err == nil {
		rc.lastErr = nil
		return time.Time{}, nil
	}
	if rc.lastErr == nil || rc.lastErr.Error() != err.Error() {
		rc.lastErr, rc.lastErrAt = err, time.Now()
	}
	return rc.lastErrAt, err
}

// List returns the router's flowshield ban objects. Disabled ones are left
// out: an operator who disabled a ban rule meant it, and a disabled object
// does not ban, so reconciliation adds an enabled one beside it.
func (rc *routerClient) List(ctx context.Context) ([]routeros.Object, error) {
	objs, err := rc.Router.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]routeros.Object, 0, len(objs))
	for _, o := range objs {
		if o.Disabled {
			continue
		}
		out = append(out, o)
	}
	return out, nil
}

// routerTimers reads the router's traffic-flow settings after a connect:
// its timers go to the detector for the exporters that are this router
// (its API address, and the source address its targets export from), and
// what they cost in detection latency, or an L3 hardware offload that
// hides traffic from the export, is logged. A router that does not answer
// (no read policy, RouterOS without the menu) only loses the log line:
// the detector learns the timers from the records anyway.
func (a *Appliance) routerTimers(ctx context.Context, r *routerClient) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tf, err := r.TrafficFlow(ctx)
	if err != nil {
		a.log.Debug("cannot read the router's traffic-flow settings", "router", r.Address(), "err", err)
		return
	}
	for _, addr := range routerExporters(r.Address(), tf) {
		a.engine.SetExporterTimers(addr, tf.ActiveTimeout, tf.InactiveTimeout, detect.TimerRouter)
	}
	offloaded, err := r.L3HWOffload(ctx)
	if err != nil {
		offloaded = nil
	}
	advice := routeros.AdviseTrafficFlow(tf, offloaded, "", a.detectConfiguration().EndAfter)
	for _, p := range advice.Problems {
		a.log.Warn(p, "router", r.Address())
	}
	for _, w := range advice.Warnings {
		a.log.Warn(w, "router", r.Address())
	}
	a.log.Info("router traffic-flow", "router", r.Address(), "active_flow_timeout", tf.ActiveTimeout,
		"inactive_flow_timeout", tf.InactiveTimeout, "detection", advice.Summary)
}

// routerExporters are the addresses a router's exports may come from: the
// host of its API address and its targets' explicit source addresses.
func routerExporters(apiAddress string, tf routeros.TrafficFlow) []netip.Addr {
	var out []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !a.IsUnspecified() {
			out = append(out, a.Unmap())
		}
	}
	if host, _, err := net.SplitHostPort(apiAddress); err == nil {
		add(host)
	} else {
		add(apiAddress)
	}
	for _, t := range tf.Targets {
		if !t.Disabled {
			add(t.SrcAddress)
		}
	}
	return out
}
