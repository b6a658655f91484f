package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/container"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/netflow"
	"github.com/flowshield/flowshield/flow/sflow"
	"github.com/flowshield/flowshield/mitigation"
	"github.com/flowshield/flowshield/notify"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/storage"
	"github.com/flowshield/flowshield/telemetry/graphite"
	"github.com/flowshield/flowshield/telemetry/hostmetrics"
	"github.com/flowshield/flowshield/telemetry/push"
	"github.com/flowshield/flowshield/uplink"
	"github.com/flowshield/flowshield/web"
	"github.com/flowshield/flowshield/web/ui"
)

// Appliance is the whole daemon wired from a Configuration: the data path
// router -> collector -> decoders -> detect -> mitigation -> routers, with
// the store, notifications and the HTTP API around it. New is inert; Start
// runs it; Stop shuts it down in the reverse order.
type Appliance struct {
	cfg     config.Configuration
	log     *slog.Logger
	options Options

	store     *storage.Store
	netflow   *netflow.Decoder
	sflow     *sflow.Decoder
	engine    *detect.Engine
	routers   []*routerClient
	uplink    *uplink.Monitor
	mitigator *mitigation.Manager
	notifier  *notify.Notifier
	graphite  *graphite.Exporter
	pusher    *push.Pusher
	sampler   *hostmetrics.Sampler
	collector *collector.Collector
	web       *web.Server
	metrics   *metrics.Set
	// templateKeys are the template keys in the store (only the snapshot
	// loop and start-up touch it).
	templateKeys map[string]bool
	startedAt    time.Time

	cancel context.CancelFunc
	loops  sync.WaitGroup

	mu          sync.Mutex
	healthErr   error
	attacksSeen map[string]bool
}

// Options are what the embedding program (tests, the demo) may change
// beyond the environment configuration.
type Options struct {
	// Now is the clock of detection and mitigation (default time.Now).
	Now func() time.Time
	// TickEvery is how often detection evaluates (default 1s).
	TickEvery time.Duration
	// SnapshotEvery is how often templates are written to the store
	// (default 5m; also at shutdown).
	SnapshotEvery time.Duration
	// ReconcileInterval overrides the ban manager's periodic full pass.
	ReconcileInterval time.Duration
	// Uplink overrides the uplink monitor's polling and thresholds (its
	// List and LinkMbps come from the configuration).
	Uplink uplink.Configuration
	// CounterInterval overrides how often the ban manager reads drop
	// counters (default 5s).
	CounterInterval time.Duration
	// UplinkSaturated overrides the uplink monitor's answer to whether
	// the uplink is full (tests); nil: the monitor's. An ESCALATE_AFTER
	// ladder with blackhole goes to it at once while it is.
	UplinkSaturated func() bool
}

// Run starts the daemon and blocks until ctx is cancelled.
//
// As a container's first process (PID 1, as the image's entrypoint is on
// RouterOS) started as root, it first hands DATA_DIR to an unprivileged
// user and drops root, before opening the store, a socket or parsing
// anything from the network: the flow ports take untrusted UDP. Off-box
// it leaves users to the service manager (systemd's User=) and never
// changes the owner of an operator's directory.
func Run(ctx context.Context, cfg config.Configuration, log *slog.Logger) error {
	if os.Getpid() == 1 {
		if err := container.DropPrivileges(cfg.DataDir, log); err != nil {
			return fmt.Errorf("drop root: %w", err)
		}
	}
	a, err := New(cfg, log, Options{})
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.Stop(stopCtx)
}

// New checks the configuration against what the components accept and
// builds them, without opening files or sockets.
func New(cfg config.Configuration, log *slog.Logger, opts Options) (*Appliance, error) {
	if log == nil {
		log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TickEvery <= 0 {
		opts.TickEvery = time.Second
	}
	if opts.SnapshotEvery <= 0 {
		opts.SnapshotEvery = 5 * time.Minute
	}
	a := &Appliance{cfg: cfg, log: log, options: opts, attacksSeen: map[string]bool{}}

	engine, err := detect.New(a.detectConfiguration(), opts.Now)
	if err != nil {
		return nil, fmt.Errorf("configuring detection: %w", err)
	}
	a.engine = engine
	a.netflow = netflow.New(netflow.DefaultConfiguration())
	a.sflow = sflow.New(sflow.DefaultConfiguration())
	return a, nil
}

func (a *Appliance) detectConfiguration() detect.Configuration {
	c := detect.DefaultConfiguration()
	c.Networks = a.cfg.Networks
	c.HostGroups = a.cfg.DetectHostGroups()
	c.WhitelistSources = a.cfg.WhitelistSources
	c.Global = a.cfg.Thresholds.Detect()
	if a.cfg.Window > 0 {
		c.Window = a.cfg.Window
	}
	c.LinkMbps = a.cfg.LinkMbps
	c.DefaultSamplingRate = a.cfg.SamplingRate
	c.Logger = a.log.With("component", "detect")
	return c
}

func (a *Appliance) mitigationConfiguration() mitigation.Configuration {
	c := mitigation.DefaultConfiguration()
	c.Actions = a.cfg.Actions
	c.BanTime = a.cfg.BanTime
	c.Directions = a.cfg.BanDirections
	c.MaxBans = a.cfg.MaxBans
	c.Whitelist = a.cfg.Whitelist
	// Ban safety: bans only inside NETWORKS or a hostgroup, never on
	// flowshield's host, nor on a router before its addresses are read.
	c.Networks = slices.Clone(a.cfg.Networks)
	for _, g := range a.cfg.HostGroups.List {
		c.Networks = append(c.Networks, g.Prefixes...)
	}
	c.OwnAddresses = hostAddresses(a.log)
	c.AwaitRouterAddresses = true
	c.ListIn = a.cfg.RouterOSListIn
	c.ListOut = a.cfg.RouterOSListOut
	c.HostGroupPolicy = func(ip netip.Addr) ([]routeros.Action, time.Duration) {
		g, ok := a.cfg.HostGroupOf(ip)
		if !ok {
			return nil, 0
		}
		return g.Actions, g.BanTime
	}
	c.DropThresholdPPS = float64(a.cfg.Thresholds.PPS)
	c.DropThresholdFor = func(ip netip.Addr) float64 {
		if g, ok := a.cfg.HostGroupOf(ip); ok {
			return float64(g.Thresholds.PPS)
		}
		return float64(a.cfg.Thresholds.PPS)
	}
	// A ban that works blinds the flows: what its rule drops keeps the
	// host's attack on, so one flood stays one attack and one ban.
	c.OnDropRate = func(p netip.Prefix, dir detect.Direction, pps float64, at time.Time) {
		if p.IsSingleIP() {
			a.engine.Sustain(p.Addr(), dir, pps, at)
		}
	}
	if a.options.ReconcileInterval > 0 {
		c.ReconcileInterval = a.options.ReconcileInterval
	}
	if a.options.CounterInterval > 0 {
		c.CounterInterval = a.options.CounterInterval
	}
	// The ladder: what still reaches the host is the detector's current
	// rates (after a filter, the traffic it lets pass), against the
	// host's thresholds (its hostgroup's, else the global ones).
	c.EscalateAfter = a.cfg.EscalateAfter
	c.RateWindow = a.detectConfiguration().Window
	c.AboveThreshold = func(ip netip.Addr, dir detect.Direction) bool {
		in, out, ok := a.engine.Host(ip)
		if !ok {
			return false
		}
		r := in.Rates
		if dir == detect.Out {
			r = out.Rates
		}
		t := a.cfg.Thresholds.Detect()
		if g, ok := a.cfg.HostGroupOf(ip); ok {
			t = g.Thresholds
		}
		return ratesAbove(r, t)
	}
	c.UplinkSaturated = a.UplinkSaturated
	if a.options.UplinkSaturated != nil {
		c.UplinkSaturated = a.options.UplinkSaturated
	}
	c.Now = a.options.Now
	return c
}

// Start logs the configuration's warnings, opens the store, connects the
// routers, binds the listeners and the HTTP server, and starts the loops.
// On error everything already started is stopped again.
func (a *Appliance) Start(ctx context.Context) (err error) {
	a.startedAt = time.Now()
	for _, w := range a.cfg.Warnings {
		a.log.Warn(w)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	defer func() {
		if err != nil {
			stopCtx, c := context.WithTimeout(context.Background(), 5*time.Second)
			defer c()
			_ = a.Stop(stopCtx)
		}
	}()

	dbPath := filepath.Join(a.cfg.DataDir, "flowshield.db")
	a.store, err = storage.Open(ctx, dbPath, storage.DefaultOptions())
	if err != nil {
		return fmt.Errorf("opening the store (FLOWSHIELD_DATA_DIR=%s): %w", a.cfg.DataDir, err)
	}
	if moved := a.store.Recovered(); moved != "" {
		a.log.Warn("the store was damaged and moved aside; bans are rebuilt from the routers", "moved_to", moved)
	}
	a.restoreTemplates(ctx)
	a.restoreHistory(ctx, detect.DefaultConfiguration().RetainEndedCount)

	for _, addr := range a.cfg.RouterOSAddresses {
		a.routers = append(a.routers, newRouterClient(a.cfg, addr, a.log))
	}
	a.uplink = a.newUplink()
	mcfg := a.mitigationConfiguration()
	mcfg.AdoptRouterBans = a.store.Recovered() != ""
	routers := make([]mitigation.Router, len(a.routers))
	for i, r := range a.routers {
		routers[i] = r
	}
	a.mitigator = mitigation.New(mcfg, a.store, routers, a.log)
	if err := a.mitigator.Start(runCtx); err != nil {
		return fmt.Errorf("starting the ban manager: %w", err)
	}
	if err := a.startNotifier(runCtx); err != nil {
		return fmt.Errorf("starting notifications: %w", err)
	}
	for i, r := range a.routers {
		r.onConnect = func() {
			a.routerAddresses(runCtx, i, r)
			if err := a.mitigator.Reconcile(runCtx, i); err != nil {
				a.log.Warn("reconciling after connect", "router", r.Address(), "err", err)
			}
			a.routerTimers(runCtx, r)
		}
		if err := r.Start(runCtx); err != nil {
			return fmt.Errorf("starting router client %s: %w", r.Address(), err)
		}
	}
	if err := a.uplink.Start(runCtx); err != nil {
		return fmt.Errorf("starting the uplink monitor: %w", err)
	}

	ccfg := collector.DefaultConfiguration()
	ccfg.NetFlowListen = a.cfg.NetflowListen
	ccfg.SFlowListen = a.cfg.SFlowListen
	ccfg.DefaultSamplingRate = a.cfg.SamplingRate
	ccfg.Exporters = a.cfg.Exporters // empty: any source, and the collector warns
	if a.cfg.DecodeWorkers > 0 {
		ccfg.Workers = a.cfg.DecodeWorkers
	}
	a.collector = collector.New(ccfg, collector.Decoders{
		NetFlow:        a.netflow,
		NetFlowInOrder: netflow.CarriesTemplates,
		SFlow:          a.sflow,
	}, a.engine, a.log)
	if err := a.collector.Start(runCtx); err != nil {
		return err
	}

	a.metrics = metrics.NewSet()
	metrics.RegisterSet(a.netflow.Metrics())
	if err := a.startTelemetry(runCtx); err != nil {
		return err
	}

	if a.cfg.HTTPListen != "" {
		a.web = web.New(web.Configuration{Listen: a.cfg.HTTPListen, Token: a.cfg.APIToken},
			web.Dependencies{Status: a, Health: a, Logger: a.log})
		a.registerRoutes()
		ui.Register(a.web)
		if err := a.web.Start(runCtx); err != nil {
			return fmt.Errorf("starting the HTTP server on FLOWSHIELD_HTTP_LISTEN=%s: %w", a.cfg.HTTPListen, err)
		}
	}

	a.loops.Add(2)
	go a.detectLoop(runCtx)
	go a.snapshotLoop(runCtx)
	a.log.Info("flowshield running",
		"networks", len(a.cfg.Networks), "netflow", a.cfg.NetflowListen, "sflow", a.cfg.SFlowListen,
		"http", a.cfg.HTTPListen, "routers", len(a.routers), "actions", a.cfg.Actions)
	return nil
}

// Stop shuts everything down: listeners first so nothing new arrives, the
// loops, the routers, then a last snapshot and the store.
func (a *Appliance) Stop(ctx context.Context) error {
	var errs []error
	if a.collector != nil {
		a.collector.Stop()
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.loops.Wait()
	if a.web != nil {
		if err := a.web.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping HTTP: %w", err))
		}
	}
	if a.mitigator != nil {
		a.mitigator.Stop()
	}
	a.stopNotifier()
	if a.uplink != nil {
		a.uplink.Stop()
	}
	for _, r := range a.routers {
		r.Stop()
	}
	a.stopTelemetry()
	if a.store != nil {
		a.saveTemplates(ctx)
		if err := a.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// HTTPAddr is the bound HTTP address (for tests and the demo).
func (a *Appliance) HTTPAddr() net.Addr {
	if a.web == nil {
		return nil
	}
	return a.web.Addr()
}

// Collector exposes the collector's bound addresses and counters.
func (a *Appliance) Collector() *collector.Collector { return a.collector }

// Engine is the detection engine (read-only use).
func (a *Appliance) Engine() *detect.Engine { return a.engine }

// Mitigator is the ban manager.
func (a *Appliance) Mitigator() *mitigation.Manager { return a.mitigator }

// Health is up when the listeners and the store are.
func (a *Appliance) Health() error {
	if a.collector != nil {
		if err := a.collector.Health(); err != nil {
			return err
		}
	}
	if a.store == nil {
		return errors.New("store not open")
	}
	if _, err := os.Stat(a.store.Path()); err != nil {
		return fmt.Errorf("store file: %w", err)
	}
	return nil
}

// ratesAbove says whether a rate is above its threshold (0: not checked).
func ratesAbove(r detect.Rates, t detect.Thresholds) bool {
	above := func(v float64, limit uint64) bool { return limit > 0 && v > float64(limit) }
	mbps := func(bps float64, limit uint64) bool { return above(bps/1e6, limit) }
	return above(r.PPS, t.PPS) || mbps(r.BPS, t.Mbps) || above(r.Flows, t.Flows) ||
		above(r.TCPPPS, t.TCPPPS) || mbps(r.TCPBPS, t.TCPMbps) || above(r.UDPPPS, t.UDPPPS) || mbps(r.UDPBPS, t.UDPMbps) ||
		above(r.ICMPPPS, t.ICMPPPS) || mbps(r.ICMPBPS, t.ICMPMbps) || above(r.SYNPPS, t.SYNPPS) || mbps(r.SYNBPS, t.SYNMbps) ||
		above(r.FragPPS, t.FragPPS) || mbps(r.FragBPS, t.FragMbps)
}
