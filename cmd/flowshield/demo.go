package main

import (
	"context"
	"errors"
	"flag"
	"os/signal"
	"syscall"

	"github.com/flowshield/flowshield/appliance"
)

// demo runs the daemon on embedded defaults with an emulated router and
// generated traffic (appliance.Demo).
func (c cli) demo(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if code, ok := c.parseFlags(fs, args, "demo"); !ok {
		return code
	}
	cfg := appliance.DefaultConfiguration()
	log := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := appliance.Demo(ctx, c.environ, log, appliance.DemoOptions{}); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("demo stopped", "error", err)
		return exitFailure
	}
	return exitOK
}
