package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// HostGroup is one FLOWSHIELD_HOSTGROUPS entry, parsed and completed.
type HostGroup struct {
	Name     string
	Prefixes []netip.Prefix
	// Thresholds are complete: keys the entry did not give are the global
	// THRESHOLD_* values.
	Thresholds                      detect.Thresholds
	GroupPPS, GroupMbps, GroupFlows uint64            // on the sum over the group; 0 disables
	Actions                         []routeros.Action // nil: the global ACTION
	BanTime                         time.Duration     // 0: the global BAN_TIME

	given []string // keys the entry gave, in order (for Effective)
}

// HostGroups are the FLOWSHIELD_HOSTGROUPS entries, in order. A struct
// rather than a slice: env takes a slice of structs for one read from
// FLOWSHIELD_HOSTGROUPS_0_* variables, and would walk into its elements.
type HostGroups struct {
	List []HostGroup `env:"-"`
}

// String is the groups in the HOSTGROUPS grammar.
func (g HostGroups) String() string {
	s := make([]string, len(g.List))
	for i, group := range g.List {
		s[i] = group.String()
	}
	return strings.Join(s, "; ")
}

// DetectHostGroups gives the host groups in the detector's form.
func (c Configuration) DetectHostGroups() []detect.HostGroup {
	out := make([]detect.HostGroup, 0, len(c.HostGroups.List))
	for _, g := range c.HostGroups.List {
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
	for i, g := range c.HostGroups.List {
		for _, p := range g.Prefixes {
			if p.Bits() > bestBits && p.Contains(addr) {
				best, bestBits = i, p.Bits()
			}
		}
	}
	if best < 0 {
		return HostGroup{}, false
	}
	return c.HostGroups.List[best], true
}

// GroupActions is the ban action for a host of group name ("" for none):
// the group's override, else the global ACTION.
func (c Configuration) GroupActions(name string) []routeros.Action {
	for _, g := range c.HostGroups.List {
		if g.Name == name && g.Actions != nil {
			return g.Actions
		}
	}
	return c.Actions
}

// GroupBanTime is the ban time for a host of group name ("" for none).
func (c Configuration) GroupBanTime(name string) time.Duration {
	for _, g := range c.HostGroups.List {
		if g.Name == name && g.BanTime != 0 {
			return g.BanTime
		}
	}
	return c.BanTime
}

// thresholdKey names one per-host threshold: the variable THRESHOLD_<KEY>
// globally, <key> in a hostgroup. They come from the tags of Thresholds.
type thresholdKey struct {
	key, variable, expected string
	mbps                    bool
	index                   int // of the field, in Thresholds and detect.Thresholds alike
}

var thresholdKeys = listThresholdKeys()

func listThresholdKeys() []thresholdKey {
	t := reflect.TypeFor[Thresholds]()
	keys := make([]thresholdKey, t.NumField())
	for i := range keys {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		key := strings.ToLower(strings.TrimPrefix(name, "THRESHOLD_"))
		mbps := strings.HasSuffix(key, "mbps")
		keys[i] = thresholdKey{key: key, variable: name, expected: rateForm(mbps), mbps: mbps, index: i}
	}
	return keys
}

func (k thresholdKey) get(t detect.Thresholds) uint64 {
	return reflect.ValueOf(t).Field(k.index).Uint()
}

func (k thresholdKey) set(t *detect.Thresholds, n uint64) {
	reflect.ValueOf(t).Elem().Field(k.index).SetUint(n)
}

// groupKeys are the hostgroup keys beyond the per-host thresholds.
var groupKeys = []struct {
	key   string
	mbps  bool
	field func(*HostGroup) *uint64
}{
	{"group_pps", false, func(g *HostGroup) *uint64 { return &g.GroupPPS }},
	{"group_mbps", true, func(g *HostGroup) *uint64 { return &g.GroupMbps }},
	{"group_flows", false, func(g *HostGroup) *uint64 { return &g.GroupFlows }},
}

// rateForm is the form of a pps or flows threshold, or of an mbps one.
func rateForm(mbps bool) string {
	if mbps {
		return "megabits per second, a whole number from 0 (disabled) to 1000000000"
	}
	return "a whole number from 0 (disabled) to 18446744073709551615"
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
// trailing ;) are ignored. The thresholds hold the keys given only:
// validate completes them from the global ones.
func parseHostGroups(value string) (HostGroups, valueErrors) {
	var groups HostGroups
	var refused valueErrors
	refuse := func(value, where, expected string) {
		refused = append(refused, valueError{Value: value, Where: where, Expected: expected})
	}
	names := map[string]bool{}
	owner := map[netip.Prefix]string{}
	for i, entry := range strings.Split(value, ";") {
		entry = strings.TrimSpace(commaSpaces.ReplaceAllString(entry, ","))
		if entry == "" {
			continue
		}
		tokens := strings.Fields(entry)
		groupName, prefixes, ok := strings.Cut(tokens[0], "=")
		if !ok || !hostGroupName.MatchString(groupName) {
			refuse(tokens[0], fmt.Sprintf("in entry %d", i+1), "NAME=PREFIX[,PREFIX...] first, NAME of 1 to 64 letters, digits, _ . -")
			continue
		}
		where := fmt.Sprintf("in group %q", groupName)
		if names[groupName] {
			refuse(groupName, where, "each group name once")
			continue
		}
		names[groupName] = true
		g := HostGroup{Name: groupName}
		if prefixes == "" {
			refuse(tokens[0], where, "at least one prefix after "+groupName+"=")
		} else {
			var bad valueErrors
			g.Prefixes, bad = parsePrefixList(prefixes, where)
			refused = append(refused, bad.resolved(prefixes, "")...)
		}
		for _, p := range g.Prefixes {
			if other, taken := owner[p]; taken {
				refuse(p.String(), where, fmt.Sprintf("a prefix in one group only (it is also in %q)", other))
				continue
			}
			owner[p] = groupName
		}
		seen := map[string]bool{}
		for _, tok := range tokens[1:] {
			key, val, ok := strings.Cut(tok, "=")
			key = strings.ToLower(key)
			switch {
			case !ok || key == "":
				refuse(tok, where, "KEY=VALUE with KEY one of "+hostGroupKeyList())
			case seen[key]:
				refuse(tok, where, "each key once per group")
			default:
				seen[key] = true
				if r := g.setKey(key, val, tok); r != nil {
					refuse(r.Value, where, r.Expected)
					continue
				}
				g.given = append(g.given, key)
			}
		}
		groups.List = append(groups.List, g)
	}
	return groups, refused
}

// setKey applies one KEY=VALUE to g, or says what it refused.
func (g *HostGroup) setKey(key, val, tok string) *valueError {
	for _, k := range thresholdKeys {
		if k.key == key {
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil || (k.mbps && n > maxMbps) {
				return &valueError{Value: val, Expected: k.expected}
			}
			k.set(&g.Thresholds, n)
			return nil
		}
	}
	for _, k := range groupKeys {
		if k.key == key {
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil || (k.mbps && n > maxMbps) {
				return &valueError{Value: val, Expected: rateForm(k.mbps)}
			}
			*k.field(g) = n
			return nil
		}
	}
	switch key {
	case "action":
		actions, r := parseActions(val)
		if r != nil {
			return r
		}
		g.Actions = actions
		return nil
	case "ban_time":
		d, err := parseSeconds(val)
		if err != nil || d < time.Second || d > maxBanTime {
			return &valueError{Value: tok, Expected: "ban_time= " + formOf("BAN_TIME")}
		}
		g.BanTime = d
		return nil
	}
	return &valueError{Value: tok, Expected: "KEY=VALUE with KEY one of " + hostGroupKeyList()}
}

// parseActions reads a hostgroup's action=, as env reads ACTION: items
// split at commas, then put in order.
func parseActions(value string) ([]routeros.Action, *valueError) {
	if value == "" {
		return nil, &valueError{Value: value, Expected: formOf("ACTION")}
	}
	var items []routeros.Action
	for _, item := range strings.Split(value, ",") {
		a, bad := parseAction(item)
		if bad != nil {
			return nil, &bad.resolved(value, formOf("ACTION"))[0]
		}
		items = append(items, a)
	}
	actions, ok := normalActions(items)
	if !ok {
		return nil, &valueError{Value: value, Expected: "none alone, not combined with other actions"}
	}
	return actions, nil
}

// complete fills in the thresholds the entry did not give from global.
func (g *HostGroup) complete(global detect.Thresholds) {
	t := global
	for _, k := range thresholdKeys {
		if slices.Contains(g.given, k.key) {
			k.set(&t, k.get(g.Thresholds))
		}
	}
	g.Thresholds = t
}

// String is the group in the HOSTGROUPS grammar with the keys it gave.
func (g HostGroup) String() string {
	var b strings.Builder
	b.WriteString(g.Name)
	b.WriteString("=")
	b.WriteString(formatValue(reflect.ValueOf(g.Prefixes)))
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
			return strconv.FormatUint(k.get(g.Thresholds), 10)
		}
	}
	for _, k := range groupKeys {
		if k.key == key {
			return strconv.FormatUint(*k.field(&g), 10)
		}
	}
	switch key {
	case "action":
		return joinActions(g.Actions)
	case "ban_time":
		return shortDuration(g.BanTime)
	}
	return ""
}

func joinActions(actions []routeros.Action) string { return formatValue(reflect.ValueOf(actions)) }
