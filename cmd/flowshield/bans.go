package main

// `flowshield bans [list|add PREFIX|remove PREFIX]`: manage bans through the
// daemon's API.

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/routeros"
)

func (c cli) bans(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("bans", flag.ContinueOnError)
	daemon := c.addAPIFlags(fs)
	asJSON := fs.Bool("json", false, "list: print the API's JSON")
	ttl := fs.String("ttl", "", "add: how long the ban lasts, e.g. 30m (default: the daemon's FLOWSHIELD_BAN_TIME)")
	reason := fs.String("reason", "", `add: why (default "manual")`)
	direction := fs.String("direction", "in", "add: in (ban a victim's incoming traffic) or out (a local source)")
	synopsis := "bans [list [--json] | add PREFIX [--ttl D] [--reason TEXT] [--direction in|out] | remove PREFIX] [--url URL] [--token T]"
	pos, code, ok := c.parseInterleaved(fs, args, synopsis)
	if !ok {
		return code
	}
	sub := "list"
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}
	// Flags that belong to another subcommand are a mistake worth saying.
	var misplaced []string
	fs.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "json" && sub != "list":
			misplaced = append(misplaced, "--json")
		case (f.Name == "ttl" || f.Name == "reason" || f.Name == "direction") && sub != "add":
			misplaced = append(misplaced, "--"+f.Name)
		}
	})
	if len(misplaced) > 0 {
		return c.usageError(fs, "%s: not for bans %s", strings.Join(misplaced, ", "), sub)
	}
	client, err := c.newAPIClient(daemon)
	if err != nil {
		return c.usageError(fs, "%v", err)
	}
	fail := func(err error) int {
		fmt.Fprintln(c.stderr, "flowshield bans: "+client.describe(err))
		return exitFailure
	}

	switch sub {
	case "list", "ls":
		if len(pos) > 0 {
			return c.usageError(fs, "unexpected argument %q", pos[0])
		}
		var bans []api.Ban
		raw, err := client.call(ctx, "GET", "/api/v1/bans", nil, nil, &bans)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			c.stdout.Write(raw)
			return exitOK
		}
		if len(bans) == 0 {
			fmt.Fprintln(c.stdout, "no bans")
			return exitOK
		}
		fmt.Fprint(c.stdout, bansTable(bans, time.Now()))
		return exitOK

	case "add":
		if len(pos) != 1 {
			return c.usageError(fs, "add needs exactly one PREFIX (an address or prefix such as 203.0.113.5/32)")
		}
		prefix, err := banPrefix(pos[0])
		if err != nil {
			return c.usageError(fs, "%v", err)
		}
		if *ttl != "" {
			if d, err := time.ParseDuration(*ttl); err != nil || d < time.Second {
				return c.usageError(fs, "--ttl %q: expected a duration of at least 1s, such as 30m or 2h", *ttl)
			}
		}
		if *direction != "in" && *direction != "out" {
			return c.usageError(fs, "--direction %q: expected in or out", *direction)
		}
		body := api.BanRequest{Prefix: prefix.String(), TTL: *ttl, Reason: *reason, Direction: *direction}
		var ban api.Ban
		if _, err := client.call(ctx, "POST", "/api/v1/bans", nil, body, &ban); err != nil {
			return fail(err)
		}
		actions := routeros.JoinActions(ban.Actions, ",")
		if actions == "" {
			actions = "none"
		}
		fmt.Fprintf(c.stdout, "banned %s (%s) until %s UTC, actions: %s\n", ban.Prefix, ban.Direction, fmtWhen(ban.ExpiresAt), actions)
		return exitOK

	case "remove", "rm", "delete", "del":
		if len(pos) != 1 {
			return c.usageError(fs, "remove needs exactly one PREFIX")
		}
		prefix, err := banPrefix(pos[0])
		if err != nil {
			return c.usageError(fs, "%v", err)
		}
		// The prefix is one path segment: its "/" must travel as %2F.
		if _, err := client.call(ctx, "DELETE", "/api/v1/bans/"+url.PathEscape(prefix.String()), nil, nil, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(c.stdout, "removed the ban of %s\n", prefix)
		return exitOK
	}
	return c.usageError(fs, "unknown subcommand %q: expected list, add or remove", sub)
}

// banPrefix reads a prefix or a bare address (then /32 or /128).
func banPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: expected an address or prefix such as 203.0.113.5/32 or 2001:db8::/64", s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: expected an address or prefix such as 203.0.113.5/32 or 2001:db8::/64", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

func bansTable(bans []api.Ban, now time.Time) string {
	t := newTextTable("PREFIX", "DIR", "ACTIONS", "REASON", "ATTACK", "CREATED (UTC)", ">EXPIRES IN", "ROUTERS")
	for _, b := range bans {
		var routers []string
		for _, r := range b.Routers {
			routers = append(routers, r.Address+"="+r.State)
		}
		actions := routeros.JoinActions(b.Actions, ",")
		if actions == "" {
			actions = "none"
		}
		attack := b.AttackID
		if attack == "" {
			attack = "-"
		}
		t.add(b.Prefix, b.Direction, actions, b.Reason, attack, fmtWhen(b.CreatedAt), fmtLeft(b.ExpiresAt.Sub(now)), strings.Join(routers, " "))
	}
	return t.String()
}
