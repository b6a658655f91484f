package main

// `flowshield attacks [--json] [--active] [ID]`: active and recent attacks,
// or one attack: its row, its fingerprint and its details text.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/api"
)

func (c cli) attacks(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("attacks", flag.ContinueOnError)
	daemon := c.addAPIFlags(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	active := fs.Bool("active", false, "only attacks still going on")
	limit := fs.Int("n", 0, "at most this many attacks, newest first (0: all)")
	synopsis := "attacks [--json] [--active] [-n N] [ID] [--url URL] [--token T]"
	pos, code, ok := c.parseInterleaved(fs, args, synopsis)
	if !ok {
		return code
	}
	if len(pos) > 1 {
		return c.usageError(fs, "unexpected argument %q", pos[1])
	}
	if *limit < 0 {
		return c.usageError(fs, "-n %d: expected 0 or more", *limit)
	}
	client, err := c.newAPIClient(daemon)
	if err != nil {
		return c.usageError(fs, "%v", err)
	}
	fail := func(err error) int {
		fmt.Fprintln(c.stderr, "flowshield attacks: "+client.describe(err))
		return exitFailure
	}

	if len(pos) == 1 {
		// One attack: its details text (the notify script's stdin).
		var a api.Attack
		raw, err := client.call(ctx, "GET", "/api/v1/attacks/"+url.PathEscape(pos[0]), nil, nil, &a)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			c.stdout.Write(raw)
			return exitOK
		}
		fmt.Fprint(c.stdout, attacksTable([]api.Attack{a}))
		var fp *api.Fingerprint
		if a.Fingerprint != nil {
			fp = *a.Fingerprint
		}
		fmt.Fprint(c.stdout, "\n"+fingerprintText(fp))
		if a.Details != nil && *a.Details != "" {
			fmt.Fprintln(c.stdout)
			fmt.Fprintln(c.stdout, strings.TrimRight(*a.Details, "\n"))
		}
		return exitOK
	}

	var q url.Values
	if *active {
		q = url.Values{"active": {"true"}}
	}
	var items []json.RawMessage
	raw, err := client.call(ctx, "GET", "/api/v1/attacks", q, nil, &items)
	if err != nil {
		return fail(err)
	}
	if *asJSON && *limit == 0 {
		c.stdout.Write(raw)
		return exitOK
	}
	type item struct {
		attack api.Attack
		raw    json.RawMessage
	}
	all := make([]item, len(items))
	for i, r := range items {
		if err := json.Unmarshal(r, &all[i].attack); err != nil {
			return fail(fmt.Errorf("decoding attack %d of the answer: %w", i, err))
		}
		all[i].raw = r
	}
	// Active first, then the newest.
	sort.SliceStable(all, func(i, j int) bool {
		ai, aj := all[i].attack.EndedAt == nil, all[j].attack.EndedAt == nil
		if ai != aj {
			return ai
		}
		return all[i].attack.StartedAt.After(all[j].attack.StartedAt)
	})
	if *limit > 0 && len(all) > *limit {
		all = all[:*limit]
	}
	if *asJSON {
		// The API's own objects, only the kept ones.
		kept := make([]json.RawMessage, 0, len(all))
		for _, it := range all {
			kept = append(kept, it.raw)
		}
		out, err := json.Marshal(kept)
		if err != nil {
			return fail(err)
		}
		c.stdout.Write(append(out, '\n'))
		return exitOK
	}
	list := make([]api.Attack, 0, len(all))
	for _, it := range all {
		list = append(list, it.attack)
	}
	if len(list) == 0 {
		if *active {
			fmt.Fprintln(c.stdout, "no active attacks")
		} else {
			fmt.Fprintln(c.stdout, "no attacks")
		}
		return exitOK
	}
	fmt.Fprint(c.stdout, attacksTable(list))
	return exitOK
}

func attacksTable(list []api.Attack) string {
	t := newTextTable("ID", "STATE", "STARTED (UTC)", "TARGET", "DIR", "TYPE", "PROTO", ">PEAK PPS", ">PEAK MBPS", "BANNED", "ENDED (UTC)")
	for _, a := range list {
		state, ended := "active", "-"
		if a.EndedAt != nil {
			state, ended = "ended", fmtWhen(*a.EndedAt)
		}
		banned := "no"
		if a.Banned {
			banned = "yes"
		}
		proto := a.Protocol
		if proto == "" {
			proto = "-"
		}
		t.add(a.ID, state, fmtWhen(a.StartedAt), attackTarget(a), a.Direction, a.Type, proto,
			fmtCount(a.PeakPPS), fmtMbps(a.PeakBPS), banned, ended)
	}
	return t.String()
}

// fingerprintText is an attack's fingerprint in the details text's words:
// a summary line, then one line per vector.
func fingerprintText(f *api.Fingerprint) string {
	if f == nil {
		return "Fingerprint: not known (the attack's details are not out, or were shed)\n"
	}
	var b strings.Builder
	if len(f.Vectors) == 0 {
		b.WriteString("Fingerprint: none (no kind of packet characterises the attack)")
	} else {
		fmt.Fprintf(&b, "Fingerprint: %.0f%% of the attack's packets", 100*f.Share)
	}
	if f.Records > 0 {
		fmt.Fprintf(&b, ", from %d sampled records\n", f.Records)
	} else {
		b.WriteString(", from the counters (no flow sample)\n")
	}
	for _, v := range f.Vectors {
		var words []string
		if v.Protocol != nil {
			words = append(words, *v.Protocol)
		}
		if v.Fragment {
			words = append(words, "fragment")
		}
		if v.TCPFlags != nil {
			words = append(words, "tcp-flags "+*v.TCPFlags)
		}
		if v.SrcPorts != nil {
			words = append(words, "src-port "+portList(v.SrcPorts))
		}
		if v.DstPorts != nil {
			words = append(words, "dst-port "+portList(v.DstPorts))
		}
		if v.PacketSize != nil {
			words = append(words, fmt.Sprintf("packet-size %d-%d", v.PacketSize.Min, v.PacketSize.Max))
		}
		fmt.Fprintf(&b, "  %s share %.0f%%\n", strings.Join(words, " "), 100*v.Share)
	}
	return b.String()
}

func portList(ports []uint16) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}
