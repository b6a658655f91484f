package main

import (
	"context"
	"errors"
	"flag"
	"os/signal"
	"syscall"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/demo"
)

// demo runs the daemon on embedded defaults with an emulated router and
// generated traffic (package demo).
func (c cli) demo(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if code, ok := c.parseFlags(fs, args, "demo"); !ok {
		return code
	}
	cfg := config.DefaultConfiguration()
	log := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := demo.Run(ctx, c.environ, log, demo.Options{}); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("demo stopped", "error", err)
		return exitFailure
	}
	return exitOK
}
