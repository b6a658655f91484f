package appliance

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/detect"
)

// HostGroup is one FLOWSHIELD_HOSTGROUPS entry, parsed and completed.
type HostGroup struct {
	Name     string
	Prefixes []netip.Prefix
	// Thresholds are complete: keys the entry did not give are the global
	// THRESHOLD_* values.
	Thresholds                      detect.Thresholds
	GroupPPS, GroupMbps, GroupFlows uint64        // on the sum over the group; 0 disables
	Actions                         []Action      // nil: the global ACTION
	BanTime                         time.Duration // 0: the global BAN_TIME

	given []string // keys the entry gave, in order (for Effective)
}

// DetectHostGroups gives the host groups in the detector's form.
func (c Configuration) DetectHostGroups() []detect.HostGroup {
	out := make([]detect.HostGroup, 0, len(c.HostGroups))
	for _, g := range c.HostGroups {
		out = append(out, detect.HostGroup{
			Name:       g.Name,
			Prefixes:   append([]netip.Prefix(nil), g.Prefixes...),
			Thresholds: g.Thresholds,
			GroupPPS:   g.GroupPPS,
			GroupMbps:  g.GroupMbps,
			GroupFlows: g.GroupFlows,
		})
	}
	return out
}

// HostGroupOf is the group of addr: the one with the longest prefix that
// contains it, whatever NETWORKS says.
func (c Configuration) HostGroupOf(addr netip.Addr) (HostGroup, bool) {
	addr = addr.Unmap()
	best, bestBits := -1, -1
	for i, g := range c.HostGroups {
		for _, p := range g.Prefixes {
			if p.Bits() > bestBits && p.Contains(addr) {
				best, bestBits = i, p.Bits()
			}
		}
	}
	if best < 0 {
		return HostGroup{}, false
	}
	return c.HostGroups[best], true
}

// GroupActions is the ban action for a host of group name ("" for none):
// the group's override, else the global ACTION.
func (c Configuration) GroupActions(name string) []Action {
	for _, g := range c.HostGroups {
		if g.Name == name && g.Actions != nil {
			return g.Actions
		}
	}
	return c.Actions
}

// GroupBanTime is the ban time for a host of group name ("" for none).
func (c Configuration) GroupBanTime(name string) time.Duration {
	for _, g := range c.HostGroups {
		if g.Name == name && g.BanTime != 0 {
			return g.BanTime
		}
	}
	return c.BanTime
}

// thresholdKey names one per-host threshold: THRESHOLD_<KEY> globally, <key>
// in a hostgroup.
type thresholdKey struct {
	key   string
	mbps  bool
	field func(*detect.Thresholds) *uint64
}

var thresholdKeys = []thresholdKey{
	{"pps", false, func(t *detect.Thresholds) *uint64 { return &t.PPS }},
	{"mbps", true, func(t *detect.Thresholds) *uint64 { return &t.Mbps }},
	{"flows", false, func(t *detect.Thresholds) *uint64 { return &t.Flows }},
	{"tcp_pps", false, func(t *detect.Thresholds) *uint64 { return &t.TCPPPS }},
	{"tcp_mbps", true, func(t *detect.Thresholds) *uint64 { return &t.TCPMbps }},
	{"udp_pps", false, func(t *detect.Thresholds) *uint64 { return &t.UDPPPS }},
	{"udp_mbps", true, func(t *detect.Thresholds) *uint64 { return &t.UDPMbps }},
	{"icmp_pps", false, func(t *detect.Thresholds) *uint64 { return &t.ICMPPPS }},
	{"icmp_mbps", true, func(t *detect.Thresholds) *uint64 { return &t.ICMPMbps }},
	{"syn_pps", false, func(t *detect.Thresholds) *uint64 { return &t.SYNPPS }},
	{"syn_mbps", true, func(t *detect.Thresholds) *uint64 { return &t.SYNMbps }},
	{"frag_pps", false, func(t *detect.Thresholds) *uint64 { return &t.FragPPS }},
	{"frag_mbps", true, func(t *detect.Thresholds) *uint64 { return &t.FragMbps }},
}

// groupKeys are the hostgroup keys beyond the per-host thresholds.
var groupKeys = []thresholdKey{
	{"group_pps", false, nil},
	{"group_mbps", true, nil},
	{"group_flows", false, nil},
}

var hostGroupName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// commaSpaces lets an operator write "a=10.0.0.0/8, 10.1.0.0/16" (the space
// would otherwise end the prefix list).
var commaSpaces = regexp.MustCompile(`\s*,\s*`)

func hostGroupKeyList() string {
	var keys []string
	for _, k := range thresholdKeys {
		keys = append(keys, k.key)
	}
	for _, k := range groupKeys {
		keys = append(keys, k.key)
	}
	return strings.Join(append(keys, "action", "ban_time"), ", ")
}

// parseHostGroups reads FLOWSHIELD_HOSTGROUPS:
//
//	NAME=PREFIX[,PREFIX...] KEY=VALUE ... [; NAME=... ...]
//
// NAME is 1 to 64 of [A-Za-z0-9_.-], unique. Keys: the threshold names in
// lower case without THRESHOLD_ (pps, mbps, flows, udp_pps, ...), group_pps,
// group_mbps, group_flows, action (as ACTION), ban_time (as BAN_TIME); each
// at most once. A prefix may belong to one group only. Empty entries (a
// trailing ;) are ignored.
func parseHostGroups(probs *problems, value string, global detect.Thresholds) []HostGroup {
	const name = "HOSTGROUPS"
	var groups []HostGroup
	names := map[string]bool{}
	owner := map[netip.Prefix]string{}
	for i, entry := range strings.Split(value, ";") {
		entry = strings.TrimSpace(commaSpaces.ReplaceAllString(entry, ","))
		if entry == "" {
			continue
		}
		where := fmt.Sprintf("in entry %d", i+1)
		tokens := strings.Fields(entry)
		groupName, prefixes, ok := strings.Cut(tokens[0], "=")
		if !ok || !hostGroupName.MatchString(groupName) {
			probs.addWhere(name, tokens[0], where, "NAME=PREFIX[,PREFIX...] first, NAME of 1 to 64 letters, digits, _ . -")
			continue
		}
		where = fmt.Sprintf("in group %q", groupName)
		if names[groupName] {
			probs.addWhere(name, groupName, where, "each group name once")
			continue
		}
		names[groupName] = true
		g := HostGroup{Name: groupName, Thresholds: global}
		before := len(probs.list)
		g.Prefixes = parsePrefixListWhere(probs, name, prefixes, where)
		if len(g.Prefixes) == 0 && len(probs.list) == before {
			probs.addWhere(name, tokens[0], where, "at least one prefix after "+groupName+"=")
		}
		for _, p := range g.Prefixes {
			if other, taken := owner[p]; taken {
				probs.addWhere(name, p.String(), where, fmt.Sprintf("a prefix in one group only (it is also in %q)", other))
				continue
			}
			owner[p] = groupName
		}
		given := map[string]bool{}
		for _, tok := range tokens[1:] {
			key, val, ok := strings.Cut(tok, "=")
			key = strings.ToLower(key)
			if !ok || key == "" {
				probs.addWhere(name, tok, where, "KEY=VALUE with KEY one of "+hostGroupKeyList())
				continue
			}
			if given[key] {
				probs.addWhere(name, tok, where, "each key once per group")
				continue
			}
			given[key] = true
			if !g.setKey(probs, where, key, val, tok) {
				continue
			}
			g.given = append(g.given, key)
		}
		groups = append(groups, g)
	}
	return groups
}

// setKey applies one KEY=VALUE to g; it reports false (and a problem) if
// the key or its value is bad.
func (g *HostGroup) setKey(probs *problems, where, key, val, tok string) bool {
	const name = "HOSTGROUPS"
	for _, k := range thresholdKeys {
		if k.key == key {
			n, ok := parseThreshold(probs, name, where, k, val)
			if ok {
				*k.field(&g.Thresholds) = n
			}
			return ok
		}
	}
	for _, k := range groupKeys {
		if k.key == key {
			n, ok := parseThreshold(probs, name, where, k, val)
			if !ok {
				return false
			}
			switch key {
			case "group_pps":
				g.GroupPPS = n
			case "group_mbps":
				g.GroupMbps = n
			case "group_flows":
				g.GroupFlows = n
			}
			return true
		}
	}
	switch key {
	case "action":
		before := len(probs.list)
		actions := parseActions(probs, name, where, val)
		if len(probs.list) != before {
			return false
		}
		g.Actions = actions
		return true
	case "ban_time":
		d, err := time.ParseDuration(val)
		if err != nil || d < time.Second || d > maxBanTime || d%time.Second != 0 {
			probs.addWhere(name, tok, where, "ban_time= a Go duration such as 5s or 1m, in whole seconds, from 1s to 8760h")
			return false
		}
		g.BanTime = d
		return true
	}
	probs.addWhere(name, tok, where, "KEY=VALUE with KEY one of "+hostGroupKeyList())
	return false
}

// String is the group in the HOSTGROUPS grammar with the keys it gave.
func (g HostGroup) String() string {
	var b strings.Builder
	b.WriteString(g.Name)
	b.WriteString("=")
	for i, p := range g.Prefixes {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(p.String())
	}
	for _, key := range g.given {
		b.WriteString(" ")
		b.WriteString(key)
		b.WriteString("=")
		b.WriteString(g.keyValue(key))
	}
	return b.String()
}

func (g HostGroup) keyValue(key string) string {
	for _, k := range thresholdKeys {
		if k.key == key {
			t := g.Thresholds
			return strconv.FormatUint(*k.field(&t), 10)
		}
	}
	switch key {
	case "group_pps":
		return strconv.FormatUint(g.GroupPPS, 10)
	case "group_mbps":
		return strconv.FormatUint(g.GroupMbps, 10)
	case "group_flows":
		return strconv.FormatUint(g.GroupFlows, 10)
	case "action":
		return joinActions(g.Actions)
	case "ban_time":
		return shortDuration(g.BanTime)
	}
	return ""
}

func joinActions(actions []Action) string {
	s := make([]string, len(actions))
	for i, a := range actions {
		s[i] = string(a)
	}
	return strings.Join(s, ",")
}
