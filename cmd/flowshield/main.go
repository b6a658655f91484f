// Command flowshield detects DDoS attacks in the flows a MikroTik router
// exports and bans them on the router. main only parses the subcommand and
// its flags; the work is in the packages (appliance.Run for the daemon).
//
// Exit codes: 0 success; 1 failure (configuration problems, `check`
// problems, the daemon stopped on an error); 2 usage (unknown command or
// flag, or a command this build does not have yet).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/caarlos0/env/v11"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/config"
)

const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `Usage: flowshield COMMAND [FLAGS]

Commands:
  run              the daemon: flow listeners, detection, mitigation, HTTP API and web UI
  check            validate the configuration, print the effective settings (secrets
                   redacted), verify the router login; exit 0 if all is well, else 1
                   with one line per problem
  top              live top talkers from a running daemon, refreshing in place
                   (--once prints one table; --url picks the daemon)
  bans             list, add PREFIX or remove PREFIX bans through the daemon's API
  attacks          active and recent attacks (--json, --active; ID: one attack's details)
  demo             the daemon with an emulated router and generated traffic
  routeros-script  print the RouterOS setup script for this configuration
  version          version, commit, Go version, GOOS/GOARCH (also --version)
  help             this text

Configuration is read from FLOWSHIELD_* environment variables; FLOWSHIELD_NETWORKS
(or FLOWSHIELD_NETWORKS_FILE) is required. See the README for the full list.

Exit codes: 0 success, 1 failure, 2 usage error.
`

// daemonFunc is appliance.Run; tests put a fake in its place.
type daemonFunc func(ctx context.Context, cfg config.Configuration, log *slog.Logger) error

// cli is one invocation: its environment and outputs, for tests.
type cli struct {
	environ        map[string]string
	stdout, stderr io.Writer
	daemon         daemonFunc
	// checkRouters is appliance.CheckRouters; tests put a fake in its place.
	checkRouters func(ctx context.Context, cfg config.Configuration, log *slog.Logger) []string
}

func main() {
	c := cli{
		environ:      env.ToMap(os.Environ()),
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		daemon:       appliance.Run,
		checkRouters: appliance.CheckRouters,
	}
	os.Exit(c.main(context.Background(), os.Args[1:]))
}

func (c cli) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return c.run(ctx, rest)
	case "check":
		return c.check(ctx, rest)
	case "version", "--version", "-version":
		return c.version(rest)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(c.stdout, usage)
		return exitOK
	case "routeros-script":
		return c.routerosScript(rest)
	case "demo":
		return c.demo(ctx, rest)
	case "top":
		return c.top(ctx, rest)
	case "bans":
		return c.bans(ctx, rest)
	case "attacks":
		return c.attacks(ctx, rest)
	}
	fmt.Fprintf(c.stderr, "flowshield: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

// parseFlags parses a command's flags; a command without positional
// arguments refuses them. ok false carries the exit code.
func (c cli) parseFlags(fs *flag.FlagSet, args []string, synopsis string) (int, bool) {
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: flowshield %s\n", synopsis)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "flowshield %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return exitUsage, false
	}
	return exitOK, true
}

// loadConfiguration prints every problem, one a line, on stderr.
func (c cli) loadConfiguration() (config.Configuration, bool) {
	cfg, err := config.FromEnv(c.environ)
	if err != nil {
		fmt.Fprintln(c.stderr, err.Error())
		return cfg, false
	}
	return cfg, true
}

func (c cli) run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	if code, ok := c.parseFlags(fs, args, "run"); !ok {
		return code
	}
	cfg, ok := c.loadConfiguration()
	if !ok {
		return exitFailure
	}
	log := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
	b := appliance.BuildInfo()
	log.Info("flowshield starting", "version", b.Version, "commit", b.Commit, "go", b.GoVersion)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the default action comes back, so a
		// second ^C ends a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	err := c.daemon(ctx, cfg, log)
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		log.Error("flowshield stopped", "error", err)
		return exitFailure
	}
	log.Info("flowshield stopped")
	return exitOK
}

func (c cli) check(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	offline := fs.Bool("offline", false, "do not log in to the routers")
	if code, ok := c.parseFlags(fs, args, "check [--offline]"); !ok {
		return code
	}
	cfg, err := config.FromEnv(c.environ)
	if werr := cfg.WriteEffective(c.stdout); werr != nil {
		fmt.Fprintln(c.stderr, werr)
		return exitFailure
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(c.stderr, "warning: "+w)
	}
	if err != nil {
		fmt.Fprintln(c.stderr, err.Error())
		return exitFailure
	}
	if *offline || len(cfg.RouterOSAddresses) == 0 {
		return exitOK
	}
	log := newLogger(c.stderr, cfg.LogLevel, cfg.LogFormat)
	problems := c.checkRouters(ctx, cfg, log)
	for _, p := range problems {
		fmt.Fprintln(c.stderr, p)
	}
	if len(problems) > 0 {
		return exitFailure
	}
	return exitOK
}

func (c cli) version(args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if code, ok := c.parseFlags(fs, args, "version"); !ok {
		return code
	}
	b := appliance.BuildInfo()
	commit := b.Commit
	if b.Modified {
		commit += "-dirty"
	}
	fmt.Fprintf(c.stdout, "flowshield %s\ncommit %s\n%s %s/%s\n", b.Version, commit, b.GoVersion, b.OS, b.Arch)
	return exitOK
}
