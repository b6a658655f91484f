package main

// `flowshield top`: live top talkers from a running daemon, refreshing in
// place like fastnetmon_client.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowshield/flowshield/api"
)

const (
	ansiHome       = "\x1b[H"  // cursor to the top left
	ansiClear      = "\x1b[2J" // erase the screen (once, at start)
	ansiClearLine  = "\x1b[K"  // erase to the end of the line
	ansiClearBelow = "\x1b[J"  // erase below the cursor
	minTopInterval = 100 * time.Millisecond
)

// topOptions are `top`'s choices.
type topOptions struct {
	directions []string // "in", "out"
	sort       string   // the API's sort key: pps, bps, flows
	sortLabel  string   // as the user wrote it
	limit      int
}

// topSnapshot is everything one screen shows.
type topSnapshot struct {
	at      time.Time
	status  api.Status
	hosts   map[string][]api.Host // by direction
	attacks []api.Attack          // active
	bans    int
}

func (c cli) top(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	daemon := c.addAPIFlags(fs)
	once := fs.Bool("once", false, "print one table and exit (for scripts)")
	direction := fs.String("direction", "", "in or out (default: both)")
	sortBy := fs.String("sort", "pps", "pps, mbps or flows")
	limit := fs.Int("n", 10, "hosts shown per direction")
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	synopsis := "top [--once] [--url URL] [--token T] [--direction in|out] [--sort pps|mbps|flows] [-n N] [--interval D]"
	if code, ok := c.parseFlags(fs, args, synopsis); !ok {
		return code
	}
	opt := topOptions{limit: *limit, sortLabel: *sortBy}
	switch *direction {
	case "":
		opt.directions = []string{"in", "out"}
	case "in", "out":
		opt.directions = []string{*direction}
	default:
		return c.usageError(fs, "--direction %q: expected in or out", *direction)
	}
	switch *sortBy {
	case "pps", "flows":
		opt.sort = *sortBy
	case "mbps", "bps":
		opt.sort, opt.sortLabel = "bps", "mbps"
	default:
		return c.usageError(fs, "--sort %q: expected pps, mbps or flows", *sortBy)
	}
	if *limit < 1 || *limit > 100000 {
		return c.usageError(fs, "-n %d: expected 1 to 100000", *limit)
	}
	if *interval < minTopInterval {
		return c.usageError(fs, "--interval %s: expected at least %s", *interval, minTopInterval)
	}
	client, err := c.newAPIClient(daemon)
	if err != nil {
		return c.usageError(fs, "%v", err)
	}

	if *once {
		snap, err := fetchTop(ctx, client, opt)
		if err != nil {
			fmt.Fprintln(c.stderr, "flowshield top: "+client.describe(err))
			return exitFailure
		}
		io.WriteString(c.stdout, strings.Join(renderTop(snap, opt, client.base, false), "\n")+"\n")
		return exitOK
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	io.WriteString(c.stdout, ansiHome+ansiClear)
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		var lines []string
		snap, err := fetchTop(ctx, client, opt)
		switch {
		case ctx.Err() != nil:
			io.WriteString(c.stdout, "\n")
			return exitOK
		case errors.Is(err, errUnauthorized):
			// Retrying cannot help: the token is missing or wrong.
			io.WriteString(c.stdout, ansiHome+ansiClearBelow)
			fmt.Fprintln(c.stderr, "flowshield top: "+client.describe(err))
			return exitFailure
		case err != nil:
			lines = []string{
				fmt.Sprintf("flowshield top  %s  %s UTC", client.base, time.Now().UTC().Format("2006-01-02 15:04:05")),
				"",
				client.describe(err),
				fmt.Sprintf("retrying every %s; ^C quits", *interval),
			}
		default:
			lines = renderTop(snap, opt, client.base, true)
		}
		// Overwrite in place (no blank flash between frames).
		var b strings.Builder
		b.WriteString(ansiHome)
		for _, l := range lines {
			b.WriteString(l + ansiClearLine + "\n")
		}
		b.WriteString(ansiClearBelow)
		io.WriteString(c.stdout, b.String())
		select {
		case <-ctx.Done():
			io.WriteString(c.stdout, "\n")
			return exitOK
		case <-tick.C:
		}
	}
}

// usageError prints a flag problem and the usage; exit 2.
func (c cli) usageError(fs *flag.FlagSet, format string, a ...any) int {
	fmt.Fprintf(c.stderr, "flowshield %s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return exitUsage
}

func fetchTop(ctx context.Context, client *apiClient, opt topOptions) (topSnapshot, error) {
	snap := topSnapshot{at: time.Now(), hosts: map[string][]api.Host{}}
	if _, err := client.call(ctx, "GET", "/api/v1/status", nil, nil, &snap.status); err != nil {
		return snap, err
	}
	for _, dir := range opt.directions {
		q := url.Values{"direction": {dir}, "sort": {opt.sort}, "limit": {strconv.Itoa(opt.limit)}}
		var hosts []api.Host
		if _, err := client.call(ctx, "GET", "/api/v1/hosts", q, nil, &hosts); err != nil {
			return snap, err
		}
		snap.hosts[dir] = hosts
	}
	if _, err := client.call(ctx, "GET", "/api/v1/attacks", url.Values{"active": {"true"}}, nil, &snap.attacks); err != nil {
		return snap, err
	}
	var bans []api.Ban
	if _, err := client.call(ctx, "GET", "/api/v1/bans", nil, nil, &bans); err != nil {
		return snap, err
	}
	snap.bans = len(bans)
	return snap, nil
}

// renderTop lays out one screen; live adds the refresh hint.
func renderTop(s topSnapshot, opt topOptions, base string, live bool) []string {
	head := fmt.Sprintf("flowshield top  %s  %s UTC  sorted by %s", base, s.at.UTC().Format("2006-01-02 15:04:05"), opt.sortLabel)
	if live {
		head += "  (^C quits)"
	}
	lines := []string{head}
	totals := newTextTable("", ">PPS", ">MBPS", ">FLOWS/S")
	totals.add("Total incoming", fmtCount(s.status.Totals.In.PPS), fmtMbps(s.status.Totals.In.BPS), fmtCount(s.status.Totals.In.Flows))
	totals.add("Total outgoing", fmtCount(s.status.Totals.Out.PPS), fmtMbps(s.status.Totals.Out.BPS), fmtCount(s.status.Totals.Out.Flows))
	lines = append(lines, "")
	lines = append(lines, totals.lines()...)
	for _, dir := range opt.directions {
		title := map[string]string{"in": "Incoming traffic", "out": "Outgoing traffic"}[dir]
		lines = append(lines, "", fmt.Sprintf("%s, top %d by %s", title, opt.limit, opt.sortLabel))
		hosts := s.hosts[dir]
		if len(hosts) == 0 {
			lines = append(lines, "  no traffic")
			continue
		}
		t := newTextTable("HOST", ">PPS", ">MBPS", ">FLOWS/S", "GROUP")
		for _, h := range hosts {
			group := ""
			if h.Group != nil {
				group = *h.Group
			}
			t.add(h.IP, fmtCount(h.PPS), fmtMbps(h.BPS), fmtCount(h.Flows), group)
		}
		lines = append(lines, t.lines()...)
	}
	lines = append(lines, "", fmt.Sprintf("Active attacks: %d   Bans: %d", len(s.attacks), s.bans))
	attacks := append([]api.Attack(nil), s.attacks...)
	sort.Slice(attacks, func(i, j int) bool { return attacks[i].StartedAt.After(attacks[j].StartedAt) })
	for _, a := range attacks {
		banned := ""
		if a.Banned {
			banned = "  banned"
		}
		lines = append(lines, fmt.Sprintf("  %s %s %s since %s, peak %s pps %s Mbps%s",
			attackTarget(a), a.Direction, a.Type, fmtWhen(a.StartedAt), fmtCount(a.PeakPPS), fmtMbps(a.PeakBPS), banned))
	}
	return lines
}
