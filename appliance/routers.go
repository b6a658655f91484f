package appliance

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
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

	// ownAddrs are the router's own addresses as last read (only the
	// onConnect goroutine touches them).
	ownAddrs []netip.Addr
}

// routerConfiguration is the RouterOS client configuration for the router
// at address, from ROUTEROS_*: the daemon's and `flowshield check`'s.
func routerConfiguration(cfg config.Configuration, address string) routeros.Configuration {
	rcfg := routeros.DefaultConfiguration()
	rcfg.Address = address
	rcfg.User, rcfg.Password = cfg.RouterOSUser, cfg.RouterOSPassword
	rcfg.TLS, rcfg.TLSInsecure = cfg.RouterOSTLS, cfg.RouterOSTLSInsecure
	rcfg.TLSCAFile = cfg.RouterOSTLSCAFile
	if cfg.RouterOSTLSFingerprint != "" {
		// config has checked it; a bad one could only pin nothing
		rcfg.TLSFingerprint, _ = routeros.ParseFingerprint(cfg.RouterOSTLSFingerprint)
	}
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
// the status API: what ended the connection, else the last command's
// error (a router refusing writes keeps its connection).
func (rc *routerClient) lastFailure() (time.Time, error) {
	err := rc.Router.LastError()
	if err == nil {
		err = rc.Router.LastCallError()
	}
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
	if a, ok := apiHost(apiAddress); ok {
		out = append(out, a)
	}
	for _, t := range tf.Targets {
		if a, err := netip.ParseAddr(t.SrcAddress); err == nil && !t.Disabled && !a.IsUnspecified() {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// apiHost is the IP of a router's API address ("192.0.2.1:8728", or
// without port); false for a DNS name.
func apiHost(apiAddress string) (netip.Addr, bool) {
	host := apiAddress
	if h, _, err := net.SplitHostPort(apiAddress); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// routerAddresses reads router i's own addresses after a connect and gives
// them, with its API address, to the ban manager, which keeps bans off
// them (and drops a ban that covers a new one) before it reconciles. When
// the read fails, the addresses last read stay in force (at the first
// connect: the API address alone), so the router is not left unsynced.
func (a *Appliance) routerAddresses(ctx context.Context, i int, r *routerClient) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := r.Addresses(ctx)
	switch {
	case err != nil:
		a.log.Warn("cannot read the router's own addresses; bans keep off the ones last read", "router", r.Address(),
			"known", len(r.ownAddrs), "err", err)
	default:
		r.ownAddrs = addrs
		a.log.Debug("router addresses", "router", r.Address(), "addresses", addrs)
	}
	known := slices.Clone(r.ownAddrs)
	if h, ok := apiHost(r.Address()); ok {
		known = append(known, h)
	}
	if err := a.mitigator.SetRouterAddresses(i, known); err != nil {
		a.log.Error("giving the router's addresses to the ban manager", "router", r.Address(), "err", err)
	}
}

// hostAddresses are flowshield's own addresses, which no ban may cover:
// every interface address of the host (the container's, in a container),
// and the loopback addresses whatever the interfaces say.
func hostAddresses(log *slog.Logger) []netip.Addr {
	out := []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		log.Warn("cannot read the host's addresses; bans keep off the loopback only", "err", err)
		return out
	}
	for _, ia := range addrs {
		n, ok := ia.(*net.IPNet)
		if !ok {
			continue
		}
		if a, ok := netip.AddrFromSlice(n.IP); ok && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}
