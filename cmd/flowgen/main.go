// Command flowgen sends generated NetFlow v5/v9/IPFIX or sFlow traffic to a
// collector and prints, as JSON, exactly what it sent, so scripts can compare
// it with flowshield's counters. It only parses flags; the work is done by
// package flow/flowgen.
//
//	flowgen -target 127.0.0.1:2055 -format routeros-v9 -rate 200000 -duration 10s \
//	        -scenario background+udpflood -prefix 203.0.113.0/24
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowshield/flowshield/flow/flowgen"
)

func main() {
	err := run(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowgen:", err)
		os.Exit(1)
	}
}

// report is the JSON printed at the end.
type report struct {
	Format   string  `json:"format"`
	Target   string  `json:"target"`
	Blast    bool    `json:"blast"`
	Seconds  float64 `json:"seconds"`
	RecordsS float64 `json:"records_per_second"`
	flowgen.Totals
}

func run(args []string, stdout, stderr io.Writer) error {
	def := flowgen.DefaultSenderConfiguration()
	fs := flag.NewFlagSet("flowgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		target      = fs.String("target", def.Target, "collector `host:port`")
		source      = fs.String("source", "", "local `host:port` to send from (default: any)")
		format      = fs.String("format", def.Encoder.Format.String(), "v5, v9, ipfix, sflow, routeros-v9 or routeros-ipfix")
		rate        = fs.Int("rate", def.RecordsPerSecond, "background records per second")
		duration    = fs.Duration("duration", def.Duration, "how long to send (0: until -count)")
		count       = fs.Uint64("count", 0, "stop after this many records (0: until -duration)")
		perDatagram = fs.Int("per-datagram", 0, "records per datagram at most (0: as many as fit)")
		dgSize      = fs.Int("datagram-size", 1400, "UDP payload size limit in bytes")
		refresh     = fs.Int("template-refresh", 20, "send v9/IPFIX templates every N datagrams")
		domain      = fs.Uint("domain", 0, "v9 source id / IPFIX observation domain / sFlow sub-agent")
		scenario    = fs.String("scenario", "background", "parts joined by + : background, udpflood, synflood, tcpflood, icmpflood, fragflood, dnsamp, ntpamp, memcachedamp, ssdpamp, cldapamp, chargenamp, snmpamp, outflood, ipv6flood, carpet")
		prefix      = fs.String("prefix", "203.0.113.0/24", "protected `prefix` (background hosts, carpet target)")
		hosts       = fs.Int("hosts", 0, "background hosts (0: the whole prefix, at most 65536)")
		victim      = fs.String("victim", "", "flood target `address` (default: the prefix's 10th address)")
		victim6     = fs.String("victim6", "2001:db8::5", "ipv6flood target `address`")
		floodPPS    = fs.Int("flood-pps", 100000, "packets per second of each flood, before sampling")
		floodFlows  = fs.Int("flood-flows", 100, "records per second of each flood")
		floodSize   = fs.Int("flood-size", 0, "flood packet size in bytes (0: by kind)")
		floodSrcs   = fs.Int("flood-sources", 1000, "distinct attacking addresses")
		floodStart  = fs.Duration("flood-start", 0, "when floods start")
		floodStop   = fs.Duration("flood-stop", 0, "when floods stop (0: never)")
		floodPeriod = fs.Duration("flood-period", 0, "repeat the flood-start..flood-stop window every this long")
		sampling    = fs.Uint("sampling", 0, "sampling rate 1-in-N set on every record (0: unsampled)")
		seed        = fs.Uint64("seed", 1, "random seed: same seed, same traffic")
		blast       = fs.Bool("blast", false, "pre-encode and send as fast as possible (overload tests)")
		workers     = fs.Int("workers", 1, "blast sockets/goroutines")
		blastDgs    = fs.Int("blast-datagrams", 1024, "distinct datagrams pre-encoded for -blast")
		perHost     = fs.Bool("per-host", false, "report totals per host of -prefix")
		upOffset    = fs.Duration("uptime-offset", 0, "add to the exporter's header sysUpTime (negative: jumped backwards)")
		zeroUptime  = fs.Bool("zero-uptime", false, "send sysUpTime 0 in headers")
		zeroTimes   = fs.Bool("zero-flow-times", false, "send 0 as flows' first/last switched")
		unixOffset  = fs.Duration("unix-offset", 0, "shift the exporter's wall clock")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: %w", *logLevel, err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	f, err := flowgen.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("-format: %w", err)
	}
	pfx, err := netip.ParsePrefix(*prefix)
	if err != nil {
		return fmt.Errorf("-prefix %q: %w", *prefix, err)
	}
	spec := flowgen.ScenarioSpec{
		Parts: *scenario, Seed: *seed, SamplingRate: uint32(*sampling), Prefix: pfx, Hosts: *hosts,
		BackgroundFlows: *rate, FloodPPS: *floodPPS, FloodFlows: *floodFlows, FloodSize: *floodSize,
		FloodSources: *floodSrcs, FloodStart: *floodStart, FloodStop: *floodStop,
		FloodPeriod: *floodPeriod,
	}
	if *victim != "" {
		if spec.Victim, err = netip.ParseAddr(*victim); err != nil {
			return fmt.Errorf("-victim %q: %w", *victim, err)
		}
	}
	if spec.Victim6, err = netip.ParseAddr(*victim6); err != nil {
		return fmt.Errorf("-victim6 %q: %w", *victim6, err)
	}
	scfg, err := spec.Configuration()
	if err != nil {
		return fmt.Errorf("-scenario: %w", err)
	}
	sc, err := flowgen.NewScenario(scfg)
	if err != nil {
		return err
	}

	cfg := def
	cfg.Target, cfg.SourceAddr = *target, *source
	cfg.Encoder.Format = f
	cfg.Encoder.MaxRecordsPerDatagram = *perDatagram
	cfg.Encoder.MaxDatagramSize = *dgSize
	cfg.Encoder.TemplateRefresh = *refresh
	cfg.Encoder.ObservationDomain = uint32(*domain)
	cfg.Encoder.Clock = flowgen.ExporterClock{UptimeOffset: *upOffset, ZeroUptime: *zeroUptime, ZeroFlowTimes: *zeroTimes, UnixOffset: *unixOffset}
	cfg.RecordsPerSecond = *rate
	cfg.Duration, cfg.Count = *duration, *count
	cfg.Blast, cfg.BlastWorkers, cfg.BlastDatagrams = *blast, *workers, *blastDgs
	if *perHost {
		cfg.HostPrefix = pfx
	}
	cfg.Logger = logger
	s, err := flowgen.NewSender(cfg, sc)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	began := time.Now()
	tot, err := s.Run(ctx)
	secs := time.Since(began).Seconds()
	out := report{Format: f.String(), Target: *target, Blast: *blast, Seconds: secs, Totals: tot}
	if secs > 0 {
		out.RecordsS = float64(tot.Records) / secs
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if jerr := enc.Encode(out); jerr != nil {
		return fmt.Errorf("printing totals: %w", jerr)
	}
	return err
}
