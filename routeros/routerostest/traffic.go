package routerostest

// The traffic model: what a router does to packets entering it, so that a
// test sees what a real router would show after a ban: traffic dropped in
// /ip(v6)/firewall/raw prerouting or by a blackhole route never reaches
// traffic-flow, and the raw rules that matched it count its packets and
// bytes.
//
// Semantics, checked against the RouterOS manual (help.mikrotik.com,
// "RAW" and "Common Firewall Matchers and Actions", and the v2.9/v3
// reference manuals for matcher syntax):
//   - raw's prerouting chain processes every packet entering the router,
//     before connection tracking; rules run top to bottom, disabled ones
//     skipped; the first rule whose every matcher matches acts:
//     accept ends the table (not dropped), drop ends it (dropped), jump
//     runs jump-target's chain and comes back unless that chain accepted
//     or dropped, return goes back to the calling chain; passthrough, log
//     and the rest (notrack, add-src/dst-to-address-list, applied by no
//     one here) count and go on to the next rule. Every rule that matches
//     counts the traffic in its packets and bytes, as print shows them.
//     A chain that ends accepts.
//   - matchers: src-address, dst-address (address, prefix or a-b range,
//     "!" negates), src-address-list, dst-address-list (enabled entries of
//     the family's address-list not yet timed out: address, prefix or
//     range; a DNS name never matches), protocol (name or number, "!"),
//     src-port, dst-port and port (either port) as "53", "1000-2000" or
//     comma lists, "!" negating, for tcp, udp, udp-lite, dccp and sctp
//     only and never on a non-first fragment, which has no ports;
//     tcp-flags ("syn,!ack": each listed flag set, each "!flag" clear);
//     fragment (yes: non-first fragments); packet-size ("64" or
//     "64-128", "!") against the average packet (Bytes/Packets);
//     in-interface (name, "!"; Packet.InInterface empty matches only a
//     negation); icmp-options ("type[:code]", each a number or range)
//     against DstPort as type<<8|code (NetFlow's convention).
//   - any other matcher (ttl, limit, dst-limit, in-interface-list, ...)
//     makes its rule never match, and is recorded for UnknownMatchers.
//   - traffic raw did not drop is routed: the longest prefix in the
//     family's route menu that covers Dst, among enabled routes of the
//     main table (RouterOS 6: without routing-mark), the lowest distance
//     on a tie, decides; a blackhole route (blackhole=yes on RouterOS 7,
//     type=blackhole, unreachable or prohibit on 6) drops it, with no
//     counter (routes have none). Traffic no route covers is forwarded
//     (the emulator holds no connected or default routes).

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Packet is traffic crossing the router: Packets packets and Bytes bytes
// (layer 3) of one flow, entering through InInterface. For ICMP, DstPort is
// type<<8|code. Fragment is a non-first IP fragment (no ports, no TCP
// header). Rule counters grow by Packets and Bytes: pass a sampled flow's
// counts times its sampling rate for counters that read as a router's.
// Adapting flowgen (which this package does not import):
//
//	flowgen.NewDropSource(src, func(f *flowgen.Flow) bool {
//		return router.Forward(routerostest.Packet{Src: f.Src, Dst: f.Dst, Proto: f.Proto,
//			SrcPort: f.SrcPort, DstPort: f.DstPort, TCPFlags: f.TCPFlags, Fragment: f.Fragment,
//			Packets: f.Packets, Bytes: f.Bytes}).Dropped
//	})
type Packet struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	TCPFlags         uint8
	Fragment         bool
	Packets, Bytes   uint64
	InInterface      string
}

// Verdict is what the router did with traffic.
type Verdict struct {
	Dropped bool
	// Menu, ID and Comment name what decided: the raw rule that dropped
	// or accepted it (MenuRaw, MenuRawV6) or the route that dropped it
	// (MenuRoute, MenuRouteV6); empty when no raw rule ended the chain
	// and no blackhole route covered Dst.
	Menu, ID, Comment string
}

// Counters are a raw rule's packet and byte counters.
type Counters struct {
	Packets, Bytes uint64
}

// TCP flag bits as in the TCP header (and NetFlow's tcpControlBits).
const (
	TCPFin uint8 = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
	TCPEce
	TCPCwr
)

var tcpFlagBits = map[string]uint8{
	"fin": TCPFin, "syn": TCPSyn, "rst": TCPRst, "psh": TCPPsh,
	"ack": TCPAck, "urg": TCPUrg, "ece": TCPEce, "cwr": TCPCwr,
}

// ipProtocols are the protocol names RouterOS takes.
var ipProtocols = map[string]uint8{
	"icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6, "egp": 8,
	"pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29,
	"dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6-encap": 41,
	"ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47,
	"ipsec-esp": 50, "ipsec-ah": 51, "icmpv6": 58, "ipv6-icmp": 58,
	"ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "ospf": 89,
	"ipip": 94, "etherip": 97, "encap": 98, "pim": 103, "vrrp": 112,
	"l2tp": 115, "sctp": 132, "udp-lite": 136,
}

// portProtocols carry ports.
func portProtocol(p uint8) bool {
	switch p {
	case 6, 17, 33, 132, 136:
		return true
	}
	return false
}

// rawActions are the actions /ip/firewall/raw takes.
var rawActions = set("accept", "add-dst-to-address-list", "add-src-to-address-list", "drop", "jump", "log", "notrack", "passthrough", "return")

// rawSettings are raw rule properties that are not matchers.
var rawSettings = set("chain", "action", "comment", "disabled", "log", "log-prefix", "jump-target",
	"address-list", "address-list-timeout", "dynamic", "invalid", "packets", "bytes")

// rawOtherMatchers are RouterOS raw matchers the emulator stores but does
// not evaluate: a rule using one never matches (UnknownMatchers).
var rawOtherMatchers = []string{"dscp", "dst-address-type", "dst-limit", "hop-limit", "in-bridge-port",
	"in-interface-list", "ingress-priority", "ipv4-options", "headers", "limit", "nth",
	"out-interface", "out-interface-list", "per-connection-classifier", "priority", "psd",
	"random", "src-address-type", "src-mac-address", "tcp-mss", "ttl", "content", "time"}

// trafficState caches the compiled raw rules, address lists and routes;
// gen moves on every change to a menu.
type trafficState struct {
	gen      uint64
	builtGen uint64
	built    bool
	fams     [2]*compiled // IPv4, IPv6
	unknown  map[string]bool
}

// changedLocked invalidates the compiled rules.
func (s *Server) changedLocked() { s.traffic.gen++ }

type compiled struct {
	rawMenu, routeMenu string
	chains             map[string][]*rule
	routes             routeTable
	unknown            map[string]bool // trafficState.unknown
}

type evalCtx struct {
	p    *Packet
	now  time.Time
	size uint64 // average packet size
}

type cond func(e *evalCtx) bool

type rule struct {
	obj     *object
	action  string
	jump    string
	conds   []cond
	unknown []string // matchers not evaluated: the rule never matches
}

// addrList is one address list: single addresses by address, the rest
// (prefixes, ranges) in a slice; expires zero is no timeout.
type addrList struct {
	hosts map[netip.Addr]time.Time
	nets  []listNet
}

type listNet struct {
	match   func(netip.Addr) bool
	expires time.Time
}

func live(expires, now time.Time) bool { return expires.IsZero() || now.Before(expires) }

func (l *addrList) contains(a netip.Addr, now time.Time) bool {
	if l == nil {
		return false
	}
	if exp, ok := l.hosts[a]; ok && live(exp, now) {
		return true
	}
	for _, n := range l.nets {
		if live(n.expires, now) && n.match(a) {
			return true
		}
	}
	return false
}

type route struct {
	obj       *object
	distance  int
	blackhole bool
}

type routeTable struct {
	lens  []int // prefix lengths present, longest first
	byLen map[int]map[netip.Prefix]*route
}

func (rt *routeTable) lookup(a netip.Addr) *route {
	for _, bits := range rt.lens {
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if r := rt.byLen[bits][p]; r != nil {
			return r
		}
	}
	return nil
}

// Forward passes traffic through the router's prerouting path: raw
// prerouting (IPv4 or IPv6 by Dst's family), then the routing decision.
// It counts the traffic on every raw rule that matched and reports whether
// it was dropped, and by what. Safe for concurrent use with the API.
func (s *Server) Forward(p Packet) Verdict {
	p.Src, p.Dst = p.Src.Unmap(), p.Dst.Unmap()
	if !p.Dst.IsValid() {
		return Verdict{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countInterfaceLocked(p) // received, whatever raw does next
	c := s.compiledLocked(p.Dst.Is6())
	e := &evalCtx{p: &p, now: s.cfg.Now(), size: p.Bytes / max(p.Packets, 1)}
	out, r := c.run(e, "prerouting", 0)
	if out == outDrop {
		return Verdict{Dropped: true, Menu: c.rawMenu, ID: formatID(r.obj.id), Comment: r.obj.props["comment"]}
	}
	// accept ends raw only: the routing decision still comes
	if rt := c.routes.lookup(p.Dst); rt != nil && rt.blackhole {
		return Verdict{Dropped: true, Menu: c.routeMenu, ID: formatID(rt.obj.id), Comment: rt.obj.props["comment"]}
	}
	if out == outAccept {
		return Verdict{Menu: c.rawMenu, ID: formatID(r.obj.id), Comment: r.obj.props["comment"]}
	}
	return Verdict{}
}

// RuleCounters is the packets and bytes of each rule of a raw menu, keyed
// by id ("*3") and also by comment when the comment is not empty and no
// other rule of the menu has it.
func (s *Server) RuleCounters(menu string) map[string]Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[menu]
	if t == nil {
		return nil
	}
	out := make(map[string]Counters, 2*len(t.objs))
	comments := map[string]int{}
	for _, o := range t.objs {
		out[formatID(o.id)] = Counters{Packets: o.packets, Bytes: o.bytes}
		if c := o.props["comment"]; c != "" {
			comments[c]++
		}
	}
	for _, o := range t.objs {
		if c := o.props["comment"]; c != "" && comments[c] == 1 {
			out[c] = Counters{Packets: o.packets, Bytes: o.bytes}
		}
	}
	return out
}

// UnknownMatchers lists, since the emulator started, the matchers of the
// raw rules Forward reached but could not evaluate ("/ip/firewall/raw *3
// ttl=equal:64"), which therefore never matched; sorted.
func (s *Server) UnknownMatchers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.traffic.unknown))
	for k := range s.traffic.unknown {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const (
	outContinue = iota
	outAccept
	outDrop
)

// maxJumpDepth bounds jumps; RouterOS refuses loops, the emulator stops.
const maxJumpDepth = 16

func (c *compiled) run(e *evalCtx, chain string, depth int) (int, *rule) {
	for _, r := range c.chains[chain] {
		if len(r.unknown) > 0 {
			for _, u := range r.unknown {
				c.unknown[u] = true
			}
			continue
		}
		if !r.match(e) {
			continue
		}
		r.obj.packets += e.p.Packets
		r.obj.bytes += e.p.Bytes
		switch r.action {
		case "drop":
			return outDrop, r
		case "accept":
			return outAccept, r
		case "return":
			return outContinue, nil
		case "jump":
			if depth < maxJumpDepth && r.jump != "" {
				if out, by := c.run(e, r.jump, depth+1); out != outContinue {
					return out, by
				}
			}
		}
	}
	return outContinue, nil
}

func (r *rule) match(e *evalCtx) bool {
	for _, c := range r.conds {
		if !c(e) {
			return false
		}
	}
	return true
}

// compiledLocked is the family's compiled configuration, rebuilt after a
// change.
func (s *Server) compiledLocked(v6 bool) *compiled {
	tr := &s.traffic
	if !tr.built || tr.builtGen != tr.gen {
		if tr.unknown == nil {
			tr.unknown = map[string]bool{}
		}
		tr.fams[0] = s.compile(MenuRaw, MenuAddressList, MenuRoute)
		tr.fams[1] = s.compile(MenuRawV6, MenuAddressListV6, MenuRouteV6)
		tr.built, tr.builtGen = true, tr.gen
	}
	if v6 {
		return tr.fams[1]
	}
	return tr.fams[0]
}

func (s *Server) compile(rawMenu, listMenu, routeMenu string) *compiled {
	c := &compiled{rawMenu: rawMenu, routeMenu: routeMenu, chains: map[string][]*rule{}, unknown: s.traffic.unknown}
	lists := map[string]*addrList{}
	for _, o := range s.tables[listMenu].objs {
		if o.props["disabled"] == "true" {
			continue
		}
		l := lists[o.props["list"]]
		if l == nil {
			l = &addrList{hosts: map[netip.Addr]time.Time{}}
			lists[o.props["list"]] = l
		}
		v := o.props["address"]
		if a, err := netip.ParseAddr(v); err == nil {
			l.hosts[a.Unmap()] = o.expires
		} else if p, err := netip.ParsePrefix(v); err == nil && p.IsSingleIP() {
			l.hosts[p.Addr().Unmap()] = o.expires
		} else if m, err := parseAddressMatch(v); err == nil {
			l.nets = append(l.nets, listNet{match: m, expires: o.expires})
		}
		// a DNS name: the emulator resolves nothing, it never matches
	}
	for _, o := range s.tables[rawMenu].objs {
		if o.props["disabled"] == "true" {
			continue
		}
		r := &rule{obj: o, action: o.props["action"], jump: o.props["jump-target"]}
		keys := make([]string, 0, len(o.props))
		for k := range o.props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := o.props[k]
			if rawSettings[k] || v == "" {
				continue
			}
			cd, err := matcher(k, v, lists)
			if err != nil {
				r.unknown = append(r.unknown, fmt.Sprintf("%s %s %s=%s", rawMenu, formatID(o.id), k, v))
				continue
			}
			r.conds = append(r.conds, cd)
		}
		chain := o.props["chain"]
		c.chains[chain] = append(c.chains[chain], r)
	}
	c.routes = s.compileRoutes(routeMenu)
	return c
}

func (s *Server) compileRoutes(menu string) routeTable {
	rt := routeTable{byLen: map[int]map[netip.Prefix]*route{}}
	for _, o := range s.tables[menu].objs {
		if o.props["disabled"] == "true" {
			continue
		}
		if tbl, ok := o.props["routing-table"]; ok && tbl != "main" && tbl != "" {
			continue
		}
		if o.props["routing-mark"] != "" {
			continue
		}
		p, err := netip.ParsePrefix(o.props["dst-address"])
		if err != nil {
			a, err2 := netip.ParseAddr(o.props["dst-address"])
			if err2 != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
		dist, err := strconv.Atoi(o.props["distance"])
		if err != nil {
			dist = 1
		}
		r := &route{obj: o, distance: dist}
		switch o.props["type"] {
		case "blackhole", "unreachable", "prohibit":
			r.blackhole = true
		}
		if o.props["blackhole"] == "true" {
			r.blackhole = true
		}
		m := rt.byLen[p.Bits()]
		if m == nil {
			m = map[netip.Prefix]*route{}
			rt.byLen[p.Bits()] = m
			rt.lens = append(rt.lens, p.Bits())
		}
		if old := m[p]; old == nil || r.distance < old.distance {
			m[p] = r
		}
	}
	slices.Sort(rt.lens)
	slices.Reverse(rt.lens)
	return rt
}
