package routeros

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

// Interface counters, checked against the RouterOS manual (help.mikrotik.com,
// "Interface stats and monitor-traffic" and "Interface Lists", via the
// project's search tool) and monitoring tools that read them over the API:
//   - /interface/print prints every interface with its running flag and its
//     counters since boot (or the last reset-counters): rx-byte, rx-packet,
//     tx-byte, tx-packet; the CLI shows them with "print stats", the API
//     takes the same flag as the attribute =stats= and prints them with or
//     without it. RouterOS 6 and 7 use the same words (7 adds fp-* fast-path
//     counters, not read here). Bytes are layer 2 (Ethernet header
//     included), counted as a frame is received, before any firewall: what
//     raw prerouting drops is counted too.
//   - /interface/list/member/print lists the members of interface lists
//     (list, interface, disabled); RouterOS 6.41 and later, and 7.

// UplinkList is the interface list the setup script makes for the uplink
// interfaces whose counters flowshield reads.
const UplinkList = "flowshield-uplinks"

// MaxListInterfaces bounds the interfaces InterfaceCounters reads from one
// list; members past it are left out (a list of uplinks is a handful).
const MaxListInterfaces = 64

// InterfaceCounters are one interface's receive counters as printed.
type InterfaceCounters struct {
	Name               string
	RxBytes, RxPackets uint64
	Running            bool
}

// ListInterfaces are the enabled members of the interface list, at most
// MaxListInterfaces of them, in the router's order; a list without members
// (or no such list) gives none.
func (r *Router) ListInterfaces(ctx context.Context, list string) ([]string, error) {
	reply, err := r.call(ctx, true, "/interface/list/member/print",
		"=.proplist=.id,list,interface,disabled", "?list="+list)
	if err != nil {
		return nil, fmt.Errorf("read /interface/list/member %s: %w", list, err)
	}
	var names []string
	for _, re := range reply.Re {
		m := re.Map
		if m["list"] != list || m["interface"] == "" {
			continue
		}
		if off, err := rosfmt.ParseBool(m["disabled"]); err == nil && off {
			continue
		}
		if len(names) == MaxListInterfaces {
			// Debug: the caller polls every few seconds
			r.log.Debug("interface list longer than flowshield reads", "list", list, "max", MaxListInterfaces)
			break
		}
		names = append(names, m["interface"])
	}
	return names, nil
}

// InterfaceCounters reads the receive counters of the interfaces in list
// (ListInterfaces, then one /interface/print of those names). An interface
// the list names that the router does not have is left out.
func (r *Router) InterfaceCounters(ctx context.Context, list string) ([]InterfaceCounters, error) {
	names, err := r.ListInterfaces(ctx, list)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	words := append([]string{"/interface/print", "=stats=", "=.proplist=name,rx-byte,rx-packet,running"}, nameQuery(names)...)
	reply, err := r.call(ctx, true, words...)
	if err != nil {
		return nil, fmt.Errorf("read /interface counters: %w", err)
	}
	out := make([]InterfaceCounters, 0, len(reply.Re))
	for _, re := range reply.Re {
		c, err := parseInterfaceCounters(re.Map)
		if err != nil {
			return nil, fmt.Errorf("read /interface counters of %s: %w", r.cfg.Address, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// nameQuery is the API query for any of names: ?name=a ?name=b ?#|.
func nameQuery(names []string) []string {
	q := make([]string, 0, len(names)+1)
	for _, n := range names {
		q = append(q, "?name="+n)
	}
	if len(names) > 1 {
		q = append(q, "?#"+strings.Repeat("|", len(names)-1))
	}
	return q
}

func parseInterfaceCounters(m map[string]string) (InterfaceCounters, error) {
	const menu = "/interface"
	c := InterfaceCounters{Name: m["name"]}
	for _, p := range []struct {
		name string
		v    *uint64
	}{{"rx-byte", &c.RxBytes}, {"rx-packet", &c.RxPackets}} {
		n, err := strconv.ParseUint(m[p.name], 10, 64)
		if err != nil {
			return InterfaceCounters{}, &ValueError{Menu: menu, Property: p.name, Value: m[p.name], Err: err}
		}
		*p.v = n
	}
	running, err := rosfmt.ParseBool(m["running"])
	if err != nil {
		return InterfaceCounters{}, &ValueError{Menu: menu, Property: "running", Value: m["running"], Err: err}
	}
	c.Running = running
	return c, nil
}
