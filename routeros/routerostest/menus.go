package routerostest

import (
	"fmt"
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
)

// schema says what a menu accepts and prints.
type schema struct {
	kind     menuKind
	ipv6     bool
	writable map[string]bool
	bools    map[string]bool
	required []string
	defaults map[string]string
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
)

// newSchemas builds the menus; legacy is RouterOS 6, whose routes say
// type=blackhole where RouterOS 7 has blackhole=yes.
func newSchemas(legacy bool) map[string]*schema {
	addressList := func(v6 bool) *schema {
		return &schema{kind: kindAddressList, ipv6: v6,
			writable: set("list", "address", "timeout", "comment", "disabled"),
			bools:    set("disabled", "dynamic"),
			required: []string{"list", "address"},
			defaults: map[string]string{"disabled": "false"}}
	}
	raw := func(v6 bool) *schema {
		return &schema{kind: kindRaw, ipv6: v6,
			writable: set("chain", "action", "src-address", "dst-address", "comment", "disabled", "protocol", "src-address-list", "dst-address-list", "in-interface", "log", "log-prefix"),
			bools:    set("disabled", "dynamic", "invalid", "log"),
			required: []string{"chain"},
			defaults: map[string]string{"action": "accept", "disabled": "false", "log": "false", "log-prefix": ""}}
	}
	route := func(v6 bool) *schema {
		sc := &schema{kind: kindRoute, ipv6: v6,
			writable: set("dst-address", "gateway", "blackhole", "comment", "distance", "disabled", "routing-table", "scope", "target-scope"),
			bools:    set("disabled", "blackhole", "dynamic", "active", "static"),
			required: []string{"dst-address"},
			defaults: map[string]string{"distance": "1", "disabled": "false", "routing-table": "main", "scope": "30", "target-scope": "10"}}
		if legacy {
			delete(sc.writable, "blackhole")
			delete(sc.bools, "blackhole")
			delete(sc.defaults, "routing-table")
			sc.writable["type"] = true
			sc.writable["routing-mark"] = true
			sc.defaults["type"] = "unicast"
		}
		return sc
	}
	return map[string]*schema{
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
	}
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
		switch val {
		case "unicast", "blackhole", "prohibit", "unreachable":
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
	}
	return m
}
