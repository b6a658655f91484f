// Command capture runs flowshield's NetFlow/sFlow collector, detector and
// Graphite output (nothing else) so its Graphite lines can be recorded for
// the same traffic that was fed to FastNetMon; see ../README.md. It lives
// under testdata so `go build ./...` and `go test ./...` leave it alone:
//
//	go run ./telemetry/graphite/testdata/capture -netflow 127.0.0.1:22056 -graphite 127.0.0.1:22004 -networks 203.0.113.0/24 -duration 25s
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/netflow"
	"github.com/flowshield/flowshield/flow/sflow"
	"github.com/flowshield/flowshield/telemetry/graphite"
	"github.com/flowshield/flowshield/telemetry/hostmetrics"
)

func main() {
	nf := flag.String("netflow", "127.0.0.1:22056", "NetFlow/IPFIX listen address")
	gr := flag.String("graphite", "127.0.0.1:22004", "Graphite receiver")
	prefix := flag.String("prefix", "flowshield", "Graphite prefix")
	nets := flag.String("networks", "203.0.113.0/24", "protected prefixes")
	dur := flag.Duration("duration", 25*time.Second, "how long to run")
	flag.Parse()
	if err := run(*nf, *gr, *prefix, *nets, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}

func run(nf, gr, prefix, nets string, dur time.Duration) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	dcfg := detect.DefaultConfiguration()
	for _, p := range strings.Split(nets, ",") {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("parsing -networks: %w", err)
		}
		dcfg.Networks = append(dcfg.Networks, pfx)
	}
	dcfg.Logger = log
	engine, err := detect.New(dcfg, time.Now)
	if err != nil {
		return fmt.Errorf("configuring detection: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()

	ccfg := collector.DefaultConfiguration()
	ccfg.NetFlowListen, ccfg.SFlowListen = nf, ""
	col := collector.New(ccfg, collector.Decoders{
		NetFlow: netflow.New(netflow.DefaultConfiguration()), NetFlowInOrder: netflow.CarriesTemplates,
		SFlow: sflow.New(sflow.DefaultConfiguration()),
	}, engine, log)
	if err := col.Start(ctx); err != nil {
		return fmt.Errorf("starting the collector: %w", err)
	}
	defer col.Stop()

	go func() { // the daemon's detect loop, without the rest
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				engine.Tick(now)
			}
		}
	}()

	hcfg := hostmetrics.DefaultConfiguration()
	gcfg := graphite.DefaultConfiguration()
	gcfg.Address, gcfg.Prefix = gr, prefix
	exp := graphite.New(gcfg, hcfg.NewSampler(engine), log)
	if err := exp.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	exp.Stop()
	return nil
}
