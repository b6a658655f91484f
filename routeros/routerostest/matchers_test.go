package routerostest

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestForwardMatchers(t *testing.T) {
	with := func(f func(p *Packet)) Packet { p := base(); f(&p); return p }
	tcp := func(flags uint8) Packet {
		return with(func(p *Packet) { p.Proto, p.TCPFlags = 6, flags })
	}
	icmp := func(typ, code uint8) Packet {
		return with(func(p *Packet) { p.Proto, p.SrcPort, p.DstPort = 1, 0, uint16(typ)<<8|uint16(code) })
	}
	frag := with(func(p *Packet) { p.Fragment, p.SrcPort, p.DstPort = true, 0, 0 })
	v6 := func(f func(p *Packet)) Packet {
		return with(func(p *Packet) {
			p.Src, p.Dst = netip.MustParseAddr("2001:db8:1::7"), netip.MustParseAddr("2001:db8:2::10")
			if f != nil {
				f(p)
			}
		})
	}
	type entry struct{ list, address, disabled string }
	tests := []struct {
		name  string
		rule  string // space-separated key=value
		lists []entry
		p     Packet
		want  bool
	}{
		{"src-address host", "src-address=198.51.100.7", nil, base(), true},
		{"src-address other host", "src-address=198.51.100.8", nil, base(), false},
		{"src-address prefix", "src-address=198.51.100.0/24", nil, base(), true},
		{"src-address range", "src-address=198.51.100.1-198.51.100.9", nil, base(), true},
		{"src-address range outside", "src-address=198.51.100.8-198.51.100.9", nil, base(), false},
		{"src-address negated in", "src-address=!198.51.100.0/24", nil, base(), false},
		{"src-address negated out", "src-address=!192.0.2.0/24", nil, base(), true},
		{"dst-address host", "dst-address=203.0.113.10", nil, base(), true},
		{"dst-address other", "dst-address=203.0.113.11", nil, base(), false},
		{"dst-address /32", "dst-address=203.0.113.10/32", nil, base(), true},
		{"dst-address-list prefix entry", "dst-address-list=bad", []entry{{"bad", "203.0.113.0/24", ""}}, base(), true},
		{"dst-address-list host entry", "dst-address-list=bad", []entry{{"bad", "203.0.113.10", ""}}, base(), true},
		{"dst-address-list other list", "dst-address-list=bad", []entry{{"good", "203.0.113.10", ""}, {"bad", "203.0.113.11", ""}}, base(), false},
		{"dst-address-list missing list", "dst-address-list=bad", nil, base(), false},
		{"dst-address-list negated", "dst-address-list=!bad", nil, base(), true},
		{"dst-address-list disabled entry", "dst-address-list=bad", []entry{{"bad", "203.0.113.10", "yes"}}, base(), false},
		{"src-address-list range entry", "src-address-list=bad", []entry{{"bad", "198.51.100.5-198.51.100.9", ""}}, base(), true},
		{"src-address-list dns name", "src-address-list=bad", []entry{{"bad", "example.com", ""}}, base(), false},
		{"protocol name", "protocol=udp", nil, base(), true},
		{"protocol other name", "protocol=tcp", nil, base(), false},
		{"protocol number", "protocol=17", nil, base(), true},
		{"protocol negated", "protocol=!udp", nil, base(), false},
		{"protocol negated other", "protocol=!tcp", nil, base(), true},
		{"protocol gre", "protocol=gre", nil, with(func(p *Packet) { p.Proto, p.SrcPort, p.DstPort = 47, 0, 0 }), true},
		{"dst-port", "protocol=udp dst-port=4444", nil, base(), true},
		{"dst-port range", "protocol=udp dst-port=4440-4450", nil, base(), true},
		{"dst-port list miss", "protocol=udp dst-port=53,80", nil, base(), false},
		{"dst-port list hit", "protocol=udp dst-port=80,4000-4444", nil, base(), true},
		{"dst-port negated", "protocol=udp dst-port=!4444", nil, base(), false},
		{"dst-port negated other", "protocol=udp dst-port=!80", nil, base(), true},
		{"src-port", "protocol=udp src-port=53", nil, base(), true},
		{"src-port other", "protocol=udp src-port=123", nil, base(), false},
		{"port either src", "protocol=udp port=53", nil, base(), true},
		{"port either dst", "protocol=udp port=4444", nil, base(), true},
		{"port neither", "protocol=udp port=80", nil, base(), false},
		{"port on icmp", "dst-port=0", nil, icmp(8, 0), false},
		{"port on a fragment", "protocol=udp dst-port=0", nil, frag, false},
		{"negated port on a fragment", "protocol=udp dst-port=!53", nil, frag, false},
		{"tcp-flags syn,!ack on syn", "protocol=tcp tcp-flags=syn,!ack", nil, tcp(TCPSyn), true},
		{"tcp-flags syn,!ack on syn-ack", "protocol=tcp tcp-flags=syn,!ack", nil, tcp(TCPSyn | TCPAck), false},
		{"tcp-flags ack on fin-ack", "tcp-flags=ack", nil, tcp(TCPFin | TCPAck), true},
		{"tcp-flags rst on ack", "tcp-flags=rst", nil, tcp(TCPAck), false},
		{"tcp-flags on udp", "tcp-flags=!syn", nil, base(), false},
		{"fragment=yes on a fragment", "fragment=yes", nil, frag, true},
		{"fragment=yes on a whole packet", "fragment=yes", nil, base(), false},
		{"fragment=no on a whole packet", "fragment=no", nil, base(), true},
		{"packet-size range", "packet-size=400-600", nil, base(), true},
		{"packet-size exact", "packet-size=500", nil, base(), true},
		{"packet-size small", "packet-size=0-64", nil, base(), false},
		{"packet-size negated", "packet-size=!0-64", nil, base(), true},
		{"in-interface", "in-interface=ether1", nil, base(), true},
		{"in-interface other", "in-interface=ether2", nil, base(), false},
		{"in-interface negated", "in-interface=!ether2", nil, base(), true},
		{"in-interface unknown", "in-interface=ether1", nil, with(func(p *Packet) { p.InInterface = "" }), false},
		{"icmp-options echo request", "protocol=icmp icmp-options=8:0", nil, icmp(8, 0), true},
		{"icmp-options echo reply", "protocol=icmp icmp-options=8:0", nil, icmp(0, 0), false},
		{"icmp-options any code", "protocol=icmp icmp-options=3", nil, icmp(3, 3), true},
		{"icmp-options code range", "icmp-options=3:0-2", nil, icmp(3, 3), false},
		{"all matchers at once", "src-address=198.51.100.0/24 dst-address=203.0.113.10 protocol=udp src-port=53 dst-port=4444 packet-size=500 fragment=no in-interface=ether1",
			nil, base(), true},
		{"all but one", "src-address=198.51.100.0/24 dst-address=203.0.113.10 protocol=udp src-port=53 dst-port=4445", nil, base(), false},
		{"no matcher", "", nil, base(), true},
		{"v6 src-address", "src-address=2001:db8:1::/48", nil, v6(nil), true},
		{"v6 dst-address host", "dst-address=2001:db8:2::10", nil, v6(nil), true},
		{"v6 dst-address other", "dst-address=2001:db8:2::11/128", nil, v6(nil), false},
		{"v6 dst-address-list", "dst-address-list=bad", []entry{{"bad", "2001:db8:2::/64", ""}}, v6(nil), true},
		{"v6 icmpv6 echo", "protocol=icmpv6 icmp-options=128", nil, v6(func(p *Packet) { p.Proto, p.DstPort = 58, 128<<8 }), true},
		{"v6 protocol udp dst-port", "protocol=udp dst-port=4444", nil, v6(nil), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(DefaultConfiguration())
			raw, lists := MenuRaw, MenuAddressList
			if tc.p.Dst.Is6() {
				raw, lists = MenuRawV6, MenuAddressListV6
			}
			for _, e := range tc.lists {
				props := map[string]string{"list": e.list, "address": e.address}
				if e.disabled != "" {
					props["disabled"] = e.disabled
				}
				seedT(t, s, lists, props)
			}
			props := map[string]string{"chain": "prerouting", "action": "drop"}
			for _, kv := range strings.Fields(tc.rule) {
				k, v, _ := strings.Cut(kv, "=")
				props[k] = v
			}
			id := seedT(t, s, raw, props)
			got := s.Forward(tc.p)
			if got.Dropped != tc.want {
				t.Fatalf("%s on %+v: dropped %v, want %v (%+v)", tc.rule, tc.p, got.Dropped, tc.want, got)
			}
			want := Counters{}
			if tc.want {
				want = Counters{10, 5000}
				if got != (Verdict{Dropped: true, Menu: raw, ID: id}) {
					t.Errorf("verdict %+v", got)
				}
			}
			if c := s.RuleCounters(raw)[id]; c != want {
				t.Errorf("counters %+v, want %+v", c, want)
			}
			noUnknownMatchers(t, s)
		})
	}
}

func TestRawRuleValues(t *testing.T) {
	s := New(DefaultConfiguration())
	for _, bad := range []map[string]string{
		{"protocol": "udpp"}, {"dst-port": "70000"}, {"src-port": "9-1"}, {"tcp-flags": "syn,!nope"},
		{"fragment": "maybe"}, {"packet-size": "big"}, {"action": "reject"}, {"src-address": "!nonsense"},
		{"icmp-options": "8:x"}, {"dst-address": "2001:db8::1-2001:db8::5"}, {"dst-address": "2001:db8::1"},
	} {
		props := map[string]string{"chain": "prerouting"}
		maps.Copy(props, bad)
		if _, err := s.Seed(MenuRaw, props); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	id := seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "protocol": "TCP", "tcp-flags": "SYN,!ack",
		"fragment": "no", "src-address": "!192.0.2.0/24", "dst-address": "203.0.113.1/32", "ttl": "equal:64"})
	o := s.Objects(MenuRaw)[0]
	want := map[string]string{"protocol": "tcp", "tcp-flags": "syn,!ack", "fragment": "false",
		"src-address": "!192.0.2.0/24", "dst-address": "203.0.113.1", "packets": "0", "bytes": "0", "ttl": "equal:64"}
	for k, v := range want {
		if o.Props[k] != v {
			t.Errorf("%s %s=%q, want %q", id, k, o.Props[k], v)
		}
	}
}

func TestForwardUnknownMatcher(t *testing.T) {
	s := New(DefaultConfiguration())
	ttl := seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "action": "drop", "ttl": "equal:64", "comment": "ttl"})
	next := seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "action": "drop", "dst-address": "203.0.113.10"})
	if v := s.Forward(base()); v.ID != next {
		t.Fatalf("verdict %+v, want the second rule", v)
	}
	if c := s.RuleCounters(MenuRaw); c[ttl] != (Counters{}) || c[next] != (Counters{10, 5000}) {
		t.Fatalf("counters %+v", c)
	}
	if u := s.UnknownMatchers(); !slices.Equal(u, []string{MenuRaw + " " + ttl + " ttl=equal:64"}) {
		t.Fatalf("unknown matchers %q", u)
	}
	// a rule Forward never reaches is not reported
	s2 := New(DefaultConfiguration())
	seedT(t, s2, MenuRaw, map[string]string{"chain": "output", "action": "drop", "out-interface": "ether1"})
	seedT(t, s2, MenuRaw, map[string]string{"chain": "prerouting", "action": "drop", "in-interface-list": "WAN", "disabled": "yes"})
	s2.Forward(base())
	noUnknownMatchers(t, s2)
}
