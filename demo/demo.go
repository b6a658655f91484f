// Package demo runs flowshield as a newcomer first sees it: the daemon on
// embedded defaults, an in-process emulated RouterOS router and generated
// traffic with a flood every minute. It is test tooling put to work (the
// emulator and the flow generator), so it lives here, wired by cmd, and
// not in the daemon's wiring (appliance).
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// Defaults: a /24 and a /48 to protect, an address-list ban that lasts
// long enough to see and short enough to see it go, and a UDP flood of
// 60,000 pps (3x the default threshold) for 20 s of every minute.
var defaults = map[string]string{
	"FLOWSHIELD_NETWORKS":       "203.0.113.0/24,2001:db8:1::/48",
	"FLOWSHIELD_HTTP_LISTEN":    "127.0.0.1:8080",
	"FLOWSHIELD_NETFLOW_LISTEN": "127.0.0.1:0",
	"FLOWSHIELD_SFLOW_LISTEN":   "",
	"FLOWSHIELD_ACTION":         "address-list",
	"FLOWSHIELD_BAN_TIME":       "20s",
	"FLOWSHIELD_ROUTEROS_USER":  "demo",
}

// Options tune the demo (tests shorten it).
type Options struct {
	FloodEvery    time.Duration // default 1m
	FloodStart    time.Duration // first flood this long after start (default 10s)
	FloodFor      time.Duration // default 20s
	FloodPPS      uint64        // default 60,000
	BackgroundFPS int           // background flow records per second (default 400)
	// Ready is called with the running appliance before Demo blocks.
	Ready func(a *appliance.Appliance, router *routerostest.Server, victim netip.Addr)
}

// Run runs flowshield on embedded defaults with an in-process emulated
// RouterOS router and generated RouterOS-shaped NetFlow v9 traffic: a
// background over 200 hosts and a UDP flood every minute, so detection, the
// ban on the router and the unban all show in the web UI without a router.
// FLOWSHIELD_* variables in environ override the demo defaults (except the
// router address, which is the emulator's). It blocks until ctx ends.
func Run(ctx context.Context, environ map[string]string, log *slog.Logger, opts Options) error {
	if opts.FloodEvery <= 0 {
		opts.FloodEvery = time.Minute
	}
	if opts.FloodStart <= 0 {
		opts.FloodStart = 10 * time.Second
	}
	if opts.FloodFor <= 0 {
		opts.FloodFor = 20 * time.Second
	}
	if opts.FloodPPS == 0 {
		opts.FloodPPS = 60000
	}
	if opts.BackgroundFPS <= 0 {
		opts.BackgroundFPS = 400
	}

	password := fmt.Sprintf("demo-%d", time.Now().UnixNano()%1000000)
	routerCfg := routerostest.DefaultConfiguration()
	routerCfg.User, routerCfg.Password = "demo", password
	router := routerostest.New(routerCfg)
	if err := router.Start(); err != nil {
		return fmt.Errorf("starting the emulated router: %w", err)
	}
	defer router.Stop()
	// The demo's exports are the setup script's: 1 s timers, IPFIX-like
	// records every second (the router's defaults, 30m/15s, would be read
	// at connect and shown for the demo's exporter).
	if err := router.SetTrafficFlow(map[string]string{"active-flow-timeout": "1s", "inactive-flow-timeout": "1s"}); err != nil {
		return fmt.Errorf("setting the emulated router's traffic-flow: %w", err)
	}

	env := map[string]string{}
	for k, v := range defaults {
		env[k] = v
	}
	for k, v := range environ {
		if strings.HasPrefix(k, "FLOWSHIELD_") {
			env[k] = v
		}
	}
	env["FLOWSHIELD_ROUTEROS_ADDRESS"] = router.Addr()
	env["FLOWSHIELD_ROUTEROS_PASSWORD"] = password
	env["FLOWSHIELD_ROUTEROS_USER"] = "demo"
	delete(env, "FLOWSHIELD_ROUTEROS_PASSWORD_FILE")
	if env["FLOWSHIELD_DATA_DIR"] == "" {
		dir, err := os.MkdirTemp("", "flowshield-demo-")
		if err != nil {
			return fmt.Errorf("making the demo's data directory: %w", err)
		}
		defer os.RemoveAll(dir)
		env["FLOWSHIELD_DATA_DIR"] = dir
	}
	cfg, err := config.FromEnv(env)
	if err != nil {
		return err
	}
	a, err := appliance.New(cfg, log, appliance.Options{ReconcileInterval: 5 * time.Second})
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Stop(stopCtx)
	}()

	target := a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	victim := victimOf(cfg.Networks)
	scenario, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{
		Seed: 1,
		Background: &flowgen.Background{
			Prefix: cfg.Networks[0], Hosts: 200, FlowsPerSecond: opts.BackgroundFPS,
		},
		Floods: []flowgen.Flood{{
			Kind: flowgen.FloodUDP, Target: netip.PrefixFrom(victim, victim.BitLen()),
			PPS: opts.FloodPPS, FlowsPerSecond: 200, Sources: 500,
			StartAt: opts.FloodStart, StopAt: opts.FloodStart + opts.FloodFor, Period: opts.FloodEvery,
		}},
	})
	if err != nil {
		return fmt.Errorf("making the demo traffic: %w", err)
	}
	scfg := flowgen.DefaultSenderConfiguration()
	scfg.Target = target
	scfg.Encoder.Format = flowgen.FormatRouterOSV9
	scfg.Duration = 365 * 24 * time.Hour // the context ends it
	scfg.Logger = log
	sender, err := flowgen.NewSender(scfg, scenario)
	if err != nil {
		return fmt.Errorf("making the demo traffic sender: %w", err)
	}
	sendErr := make(chan error, 1)
	go func() {
		_, err := sender.Run(ctx)
		sendErr <- err
	}()

	url := "http://" + a.HTTPAddr().String() + "/"
	log.Info("flowshield demo running: open the web UI", "url", url,
		"victim", victim, "flood", fmt.Sprintf("UDP %d pps for %s every %s, first at +%s", opts.FloodPPS, opts.FloodFor, opts.FloodEvery, opts.FloodStart),
		"router", router.Addr())
	if opts.Ready != nil {
		opts.Ready(a, router, victim)
	}
	select {
	case <-ctx.Done():
		<-sendErr
		return nil
	case err := <-sendErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("demo traffic: %w", err)
		}
		<-ctx.Done()
		return nil
	}
}

// victimOf is the host the demo floods: .66 of the first IPv4 network.
func victimOf(networks []netip.Prefix) netip.Addr {
	for _, p := range networks {
		if p.Addr().Is4() && p.Bits() <= 24 {
			b := p.Masked().Addr().As4()
			b[3] = 66
			return netip.AddrFrom4(b)
		}
	}
	return networks[0].Addr()
}
