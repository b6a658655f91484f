package routerostest

import (
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

type menuKind int

const (
	kindAddressList menuKind = iota + 1
	kindRaw
	kindRoute
	kindUser
	kindGroup
	kindFlowTarget
	kindSwitch
	kindSettings // a menu of one settings object, without ids (/ip/traffic-flow)
	kindAddress  // the router's own addresses (/ip/address, /ipv6/address)
)

// schema says what a menu accepts and prints.
type schema struct {
	kind     menuKind
	ipv6     bool
	writable map[string]bool
	bools    map[string]bool
	required []string
	defaults map[string]string
	// seedable properties are read-only to the API but Seed may set them
	// (a switch chip's type).
	seedable map[string]bool
	// fixed menus take no add or remove through the API (switch chips).
	fixed bool
	// legacy is RouterOS 6: traffic-flow timeouts print as a clock
	// ("00:30:00") and targets take address=IP:port.
	legacy bool
	// minActive refuses a smaller active-flow-timeout.
	minActive time.Duration
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Menu paths the emulator serves.
const (
	MenuAddressList   = "/ip/firewall/address-list"
	MenuAddressListV6 = "/ipv6/firewall/address-list"
	MenuRaw           = "/ip/firewall/raw"
	MenuRawV6         = "/ipv6/firewall/raw"
	MenuRoute         = "/ip/route"
	MenuRouteV6       = "/ipv6/route"
	MenuUser          = "/user"
	MenuUserGroup     = "/user/group"
	MenuResource      = "/system/resource"
	// MenuTrafficFlow is one settings object (print, set), no ids.
	MenuTrafficFlow       = "/ip/traffic-flow"
	MenuTrafficFlowTarget = "/ip/traffic-flow/target"
	// MenuSwitch lists the switch chips; Seed adds one (name, type,
	// l3-hw-offloading on RouterOS 7), the API can only print and set.
	MenuSwitch = "/interface/ethernet/switch"
	// MenuAddress and MenuAddressV6 are the router's own addresses
	// ("192.0.2.1/24" on an interface); Seed adds one, dynamic=true for
	// one a DHCP client or SLAAC would give.
	MenuAddress   = "/ip/address"
	MenuAddressV6 = "/ipv6/address"
)

// newSchemas builds the menus; legacy is RouterOS 6, whose routes say
// type=blackhole where RouterOS 7 has blackhole=yes (and whose IPv6
// routes have no blackhole type, only unreachable).
func newSchemas(legacy bool) map[string]*schema {
	addressList := func(v6 bool) *schema {
		return &schema{kind: kindAddressList, ipv6: v6,
			writable: set("list", "address", "timeout", "comment", "disabled"),
			bools:    set("disabled", "dynamic"),
			required: []string{"list", "address"},
			defaults: map[string]string{"disabled": "false"}}
	}
	raw := func(v6 bool) *schema {
		sc := &schema{kind: kindRaw, ipv6: v6,
			writable: set("chain", "action", "src-address", "dst-address", "comment", "disabled", "protocol", "src-address-list", "dst-address-list", "in-interface", "log", "log-prefix",
				"src-port", "dst-port", "port", "tcp-flags", "fragment", "packet-size", "icmp-options", "jump-target", "address-list", "address-list-timeout"),
			bools:    set("disabled", "dynamic", "invalid", "log", "fragment"),
			required: []string{"chain"},
			defaults: map[string]string{"action": "accept", "disabled": "false", "log": "false", "log-prefix": ""}}
		// matchers RouterOS has that Forward does not evaluate (traffic.go)
		for _, k := range rawOtherMatchers {
			sc.writable[k] = true
		}
		return sc
	}
	route := func(v6 bool) *schema {
		sc := &schema{kind: kindRoute, ipv6: v6,
			writable: set("dst-address", "gateway", "blackhole", "comment", "distance", "disabled", "routing-table", "scope", "target-scope"),
			bools:    set("disabled", "blackhole", "dynamic", "active", "static"),
			required: []string{"dst-address"},
			defaults: map[string]string{"distance": "1", "disabled": "false", "routing-table": "main", "scope": "30", "target-scope": "10"}}
		if legacy {
			sc.legacy = true
			delete(sc.writable, "blackhole")
			delete(sc.bools, "blackhole")
			delete(sc.defaults, "routing-table")
			sc.writable["type"] = true
			sc.writable["routing-mark"] = true
			sc.defaults["type"] = "unicast"
		}
		return sc
	}
	schemas := map[string]*schema{
		MenuAddressList:   addressList(false),
		MenuAddressListV6: addressList(true),
		MenuRaw:           raw(false),
		MenuRawV6:         raw(true),
		MenuRoute:         route(false),
		MenuRouteV6:       route(true),
		MenuUser: {kind: kindUser, writable: set("name", "group", "password", "comment", "disabled", "address"),
			bools: set("disabled"), required: []string{"name", "group"}, defaults: map[string]string{"disabled": "false"}},
		MenuUserGroup: {kind: kindGroup, writable: set("name", "policy", "comment", "skin"),
			required: []string{"name"}, defaults: map[string]string{"skin": "default"}},
		MenuTrafficFlowTarget: flowTargetSchema(legacy),
		MenuSwitch:            switchSchema(legacy),
		MenuAddress:           addressSchema(false),
		MenuAddressV6:         addressSchema(true),
	}
	maps.Copy(schemas, interfaceSchemas())
	return schemas
}

// addressSchema is /ip/address or /ipv6/address, the same on RouterOS 6
// and 7 as far as their API print goes: address with the interface's
// prefix length, interface, and flags; IPv4 adds the network (computed
// when not given), IPv6 the SLAAC and DAD settings.
func addressSchema(v6 bool) *schema {
	sc := &schema{kind: kindAddress, ipv6: v6,
		writable: set("address", "interface", "comment", "disabled"),
		bools:    set("disabled", "dynamic", "invalid"),
		seedable: set("dynamic", "invalid"),
		required: []string{"address", "interface"},
		defaults: map[string]string{"disabled": "false", "dynamic": "false", "invalid": "false"}}
	if v6 {
		for _, k := range []string{"advertise", "eui-64", "no-dad", "from-pool"} {
			sc.writable[k] = true
		}
		for _, k := range []string{"advertise", "eui-64", "no-dad"} {
			sc.bools[k] = true
		}
		sc.defaults["advertise"], sc.defaults["eui-64"], sc.defaults["no-dad"], sc.defaults["from-pool"] = "true", "false", "false", ""
	} else {
		sc.writable["network"] = true
	}
	return sc
}

// normalizeInterfaceAddress writes an interface address as RouterOS
// prints it: unmasked, with its length ("192.0.2.1/24"); a bare address
// is a /32 (/128).
func normalizeInterfaceAddress(v string, v6 bool) (string, error) {
	p, err := netip.ParsePrefix(v)
	if err != nil {
		a, aerr := netip.ParseAddr(v)
		if aerr != nil {
			return "", fmt.Errorf("invalid value for argument address")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4() == v6 || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return "", fmt.Errorf("invalid value for argument address")
	}
	return p.String(), nil
}

// flowTargetSchema is /ip/traffic-flow/target: RouterOS 7 has dst-address,
// port and src-address, RouterOS 6 one address=IP:port.
func flowTargetSchema(legacy bool) *schema {
	if legacy {
		return &schema{kind: kindFlowTarget, legacy: true,
			writable: set("address", "version", "v9-template-refresh", "v9-template-timeout", "disabled"),
			bools:    set("disabled"),
			required: []string{"address"},
			defaults: map[string]string{"version": "9", "v9-template-refresh": "20", "v9-template-timeout": "00:30:00", "disabled": "false"}}
	}
	return &schema{kind: kindFlowTarget,
		writable: set("dst-address", "port", "src-address", "version", "v9-template-refresh", "v9-template-timeout", "disabled"),
		bools:    set("disabled"),
		required: []string{"dst-address"},
		defaults: map[string]string{"port": "2055", "src-address": "0.0.0.0", "version": "9",
			"v9-template-refresh": "20", "v9-template-timeout": "30m", "disabled": "false"}}
}

// switchSchema is /interface/ethernet/switch; RouterOS 6 has no
// l3-hw-offloading.
func switchSchema(legacy bool) *schema {
	sc := &schema{kind: kindSwitch, fixed: true, legacy: legacy,
		writable: set("name", "l3-hw-offloading", "cpu-flow-control", "mirror-source", "mirror-target"),
		bools:    set("l3-hw-offloading", "cpu-flow-control", "invalid"),
		seedable: set("type"),
		required: []string{"name"},
		defaults: map[string]string{"type": "Marvell-98DX3255", "l3-hw-offloading": "false", "cpu-flow-control": "true",
			"mirror-source": "none", "mirror-target": "none"}}
	if legacy {
		delete(sc.writable, "l3-hw-offloading")
		delete(sc.bools, "l3-hw-offloading")
		delete(sc.defaults, "l3-hw-offloading")
	}
	return sc
}

// trafficFlowSchema is /ip/traffic-flow with RouterOS's defaults (export
// off, 30m/15s); RouterOS 6 has no packet sampling. minActive refuses a
// shorter active-flow-timeout, as old RouterOS 6 releases did under 60 s.
func trafficFlowSchema(legacy bool, minActive time.Duration) *schema {
	sc := &schema{kind: kindSettings, legacy: legacy, minActive: minActive,
		writable: set("enabled", "interfaces", "cache-entries", "active-flow-timeout", "inactive-flow-timeout",
			"packet-sampling", "sampling-interval", "sampling-space"),
		bools: set("enabled", "packet-sampling"),
		defaults: map[string]string{"enabled": "false", "interfaces": "all", "cache-entries": "4k",
			"active-flow-timeout": "30m", "inactive-flow-timeout": "15s",
			"packet-sampling": "false", "sampling-interval": "0", "sampling-space": "0"}}
	if legacy {
		for _, k := range []string{"packet-sampling", "sampling-interval", "sampling-space"} {
			delete(sc.writable, k)
			delete(sc.bools, k)
			delete(sc.defaults, k)
		}
		sc.defaults["active-flow-timeout"] = formatFlowDuration(30*time.Minute, true)
		sc.defaults["inactive-flow-timeout"] = formatFlowDuration(15*time.Second, true)
	}
	return sc
}

// formatFlowDuration prints a traffic-flow timer: "30m", "1s", "500ms" on
// RouterOS 7, a clock ("00:30:00", "1d00:00:00") on RouterOS 6.
func formatFlowDuration(d time.Duration, legacy bool) string {
	ms := (d % time.Second).Milliseconds()
	if !legacy {
		if d < time.Second {
			return strconv.FormatInt(ms, 10) + "ms"
		}
		out := rosfmt.FormatDuration(d)
		if ms > 0 {
			out += strconv.FormatInt(ms, 10) + "ms"
		}
		return out
	}
	day := 24 * time.Hour
	out := fmt.Sprintf("%02d:%02d:%02d", d%day/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
	if ms > 0 {
		out += fmt.Sprintf(".%03d", ms)
	}
	if d >= day {
		out = strconv.FormatInt(int64(d/day), 10) + "d" + out
	}
	return out
}

// normalizeFlow checks the properties of traffic-flow and its targets; ok
// is false for a property it does not handle.
func (sc *schema) normalizeFlow(key, val string) (out string, ok bool, err error) {
	invalid := fmt.Errorf("invalid value for argument %s", key)
	switch key {
	case "active-flow-timeout", "inactive-flow-timeout", "v9-template-timeout":
		d, err := rosfmt.ParseDuration(val)
		if err != nil {
			return "", true, invalid
		}
		if key == "active-flow-timeout" && d < sc.minActive {
			return "", true, fmt.Errorf("value of active-flow-timeout out of range (%s..1d)", formatFlowDuration(sc.minActive, sc.legacy))
		}
		return formatFlowDuration(d, sc.legacy), true, nil
	case "dst-address", "src-address":
		a, err := netip.ParseAddr(val)
		if err != nil {
			return "", true, invalid
		}
		return a.String(), true, nil
	case "address":
		ap, err := netip.ParseAddrPort(val)
		if err != nil {
			return "", true, invalid
		}
		return ap.String(), true, nil
	case "port", "v9-template-refresh", "sampling-interval", "sampling-space":
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || key == "port" && (n == 0 || n > 65535) {
			return "", true, invalid
		}
		return strconv.FormatUint(n, 10), true, nil
	case "version":
		switch strings.ToUpper(val) {
		case "1", "5", "9", "IPFIX":
			return strings.ToUpper(val), true, nil
		}
		return "", true, invalid
	case "cache-entries":
		n := strings.TrimRight(val, "kM")
		if _, err := strconv.ParseUint(n, 10, 32); err != nil || len(val)-len(n) > 1 {
			return "", true, invalid
		}
		return val, true, nil
	case "interfaces":
		if val == "" {
			return "", true, invalid
		}
		return val, true, nil
	}
	return "", false, nil
}

// Default RouterOS 7 group policies.
const (
	PolicyFull  = "local,telnet,ssh,ftp,reboot,read,write,policy,test,winbox,password,web,sniff,sensitive,api,romon,rest-api"
	PolicyWrite = "local,telnet,ssh,reboot,read,write,test,winbox,password,web,sniff,sensitive,api,romon,rest-api,!ftp,!policy"
	PolicyRead  = "local,telnet,ssh,reboot,read,test,winbox,password,web,sniff,sensitive,api,romon,rest-api,!ftp,!write,!policy"
)

// object is one item of a menu.
type object struct {
	id      uint32
	props   map[string]string
	expires time.Time // zero: no timeout (static)
	created time.Time
	packets uint64
	bytes   uint64
}

type table struct {
	schema *schema
	nextID uint32
	objs   []*object
}

func formatID(id uint32) string { return "*" + strings.ToUpper(strconv.FormatUint(uint64(id), 16)) }

func (t *table) find(id string) (int, *object) {
	for i, o := range t.objs {
		if formatID(o.id) == id {
			return i, o
		}
	}
	return -1, nil
}

// normalizeAddress writes an address the way RouterOS prints it. withLength
// keeps "/32" ("/128") as routes print it; address lists and firewall rules
// print a bare IPv4 host. Values that are not IP (ranges, DNS names) of a
// foreign object are kept as given.
func normalizeAddress(v string, v6, withLength bool) (string, error) {
	var p netip.Prefix
	if a, err := netip.ParseAddr(v); err == nil {
		p = netip.PrefixFrom(a, a.BitLen())
	} else if q, err := netip.ParsePrefix(v); err == nil {
		p = q.Masked()
	} else {
		if strings.ContainsAny(v, "-") || (!v6 && strings.ContainsAny(v, "abcdefghijklmnopqrstuvwxyz")) {
			return v, nil
		}
		return "", fmt.Errorf("invalid value for argument address")
	}
	if p.Addr().Is4() == v6 || p.Addr().Is4In6() {
		return "", fmt.Errorf("invalid value for argument address")
	}
	if p.IsSingleIP() && !withLength && !v6 {
		return p.Addr().String(), nil
	}
	return p.String(), nil
}

// normalize checks and rewrites one writable property.
func (sc *schema) normalize(key, val string) (string, error) {
	if sc.bools[key] {
		b, err := rosfmt.ParseBool(val)
		if err != nil {
			return "", fmt.Errorf("invalid value for argument %s", key)
		}
		return strconv.FormatBool(b), nil
	}
	if sc.kind == kindFlowTarget || sc.kind == kindSettings {
		if out, ok, err := sc.normalizeFlow(key, val); ok {
			return out, err
		}
	}
	if sc.kind == kindRaw {
		if out, ok, err := normalizeRaw(key, val, sc.ipv6); ok {
			return out, err
		}
	}
	if sc.kind == kindAddress {
		switch key {
		case "address":
			return normalizeInterfaceAddress(val, sc.ipv6)
		case "network":
			a, err := netip.ParseAddr(val)
			if err != nil || !a.Is4() {
				return "", fmt.Errorf("invalid value for argument network")
			}
			return a.String(), nil
		case "interface":
			if val == "" {
				return "", fmt.Errorf("invalid value for argument interface")
			}
		}
		return val, nil
	}
	switch key {
	case "address", "src-address", "dst-address":
		if val == "" && key != "address" {
			return "", nil
		}
		return normalizeAddress(val, sc.ipv6, sc.kind == kindRoute)
	case "timeout":
		if _, err := rosfmt.ParseDuration(val); err != nil {
			return "", fmt.Errorf("invalid value for argument timeout")
		}
	case "distance":
		if n, err := strconv.Atoi(val); err != nil || n < 1 || n > 255 {
			return "", fmt.Errorf("invalid value for argument distance")
		}
	case "type":
		if sc.kind != kindRoute {
			break
		}
		switch val {
		case "unicast", "unreachable":
		case "blackhole", "prohibit":
			if sc.ipv6 { // RouterOS 6: "no blackhole or prohibit routes, only unreachable"
				return "", fmt.Errorf("invalid value for argument type")
			}
		default:
			return "", fmt.Errorf("invalid value for argument type")
		}
	case "chain", "list", "name":
		if val == "" {
			return "", fmt.Errorf("invalid value for argument %s", key)
		}
	}
	return val, nil
}

// render is the object as a print shows it, the timeout counted down to now.
func (t *table) render(o *object, now time.Time) map[string]string {
	m := make(map[string]string, len(o.props)+8)
	m[".id"] = formatID(o.id)
	for k, v := range o.props {
		if k == "timeout" || k == "password" || (k == "comment" && v == "") {
			continue
		}
		m[k] = v
	}
	switch t.schema.kind {
	case kindAddressList:
		m["dynamic"] = strconv.FormatBool(!o.expires.IsZero())
		if !o.expires.IsZero() {
			left := o.expires.Sub(now)
			m["timeout"] = rosfmt.FormatDuration(left)
		}
		m["creation-time"] = o.created.UTC().Format("2006-01-02 15:04:05")
	case kindRaw:
		m["dynamic"] = "false"
		m["invalid"] = "false"
		m["packets"] = strconv.FormatUint(o.packets, 10)
		m["bytes"] = strconv.FormatUint(o.bytes, 10)
	case kindRoute:
		m["dynamic"] = "false"
		m["static"] = "true"
		m["active"] = strconv.FormatBool(m["disabled"] != "true")
	case kindSwitch:
		m["invalid"] = "false"
	case kindInterface:
		renderInterface(o, m)
	case kindAddress:
		m["actual-interface"] = m["interface"]
		p, _ := netip.ParsePrefix(m["address"])
		if t.schema.ipv6 {
			m["link-local"] = strconv.FormatBool(p.Addr().IsLinkLocalUnicast())
		} else if m["network"] == "" {
			m["network"] = p.Masked().Addr().String()
		}
	}
	return m
}
