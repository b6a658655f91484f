package routeros_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// TestMatchOf: each kind of fingerprint vector and the RouterOS words of
// its rule (checked against the RouterOS manual's /ip/firewall/raw
// properties: protocol, src-port, dst-port as a comma list, tcp-flags
// with "!" for a clear flag, fragment=yes, packet-size as min-max).
func TestMatchOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    detect.Vector
		ipv6 bool
		want string // "" : no rule
	}{
		{"dns amplification", detect.Vector{Protocol: flow.ProtoUDP, SrcPort: 53, SizeMin: 1200, SizeMax: 1500}, false,
			"protocol=udp src-port=53 packet-size=1200-1500"},
		{"ntp amplification", detect.Vector{Protocol: flow.ProtoUDP, SrcPort: 123, SizeMin: 468, SizeMax: 468}, false,
			"protocol=udp src-port=123 packet-size=468-468"},
		{"syn flood", detect.Vector{Protocol: flow.ProtoTCP, DstPorts: []uint16{80, 443}, TCPFlags: flow.TCPFlagSYN, TCPMask: flow.TCPFlagSYN | flow.TCPFlagACK}, false,
			"protocol=tcp dst-port=80,443 tcp-flags=syn,!ack"},
		{"fragments", detect.Vector{Fragment: true}, false, "fragment=yes"},
		{"udp fragments", detect.Vector{Protocol: flow.ProtoUDP, Fragment: true, SizeMin: 1480, SizeMax: 1500}, false,
			"protocol=udp fragment=yes packet-size=1480-1500"},
		{"protocol only", detect.Vector{Protocol: flow.ProtoICMP}, false, "protocol=icmp"},
		{"port 0 among others", detect.Vector{Protocol: flow.ProtoUDP, DstPorts: []uint16{0, 53}}, false, "protocol=udp dst-port=53"},
		{"icmpv6", detect.Vector{Protocol: flow.ProtoICMPv6}, true, "protocol=icmpv6"},
		{"ipv6 fragments: no matcher", detect.Vector{Fragment: true}, true, ""},
		{"anything: that is raw-drop", detect.Vector{}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := routeros.MatchOf(&tc.v, tc.ipv6)
			if got := m.String(); ok != (tc.want != "") || got != tc.want {
				t.Errorf("MatchOf = %q, %v; want %q", got, ok, tc.want)
			}
		})
	}
}

// TestFilterRules: filter rules through the real wire: the words on the
// router, placed first, listed back as filters with their matchers (apart
// from a raw-drop of the same victim), one key per vector, counting only
// the traffic they match, removed one by one.
func TestFilterRules(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	for _, menu := range []string{routerostest.MenuRaw, routerostest.MenuRawV6} {
		f.emu.Seed(menu, map[string]string{"chain": "prerouting", "action": "accept", "comment": "foreign"})
	}
	v4, v6 := netip.MustParsePrefix("203.0.113.5/32"), netip.MustParsePrefix("2001:db8::5/128")
	objs := []routeros.Object{
		{Action: routeros.ActionRawDrop, Prefix: v4}, // added first: the filters go before it
		{Action: routeros.ActionFilter, Prefix: v4, Match: routeros.Match{Protocol: "udp", SrcPort: 53, SizeMin: 1200, SizeMax: 1500}},
		{Action: routeros.ActionFilter, Prefix: v4, Match: routeros.Match{Protocol: "tcp", DstPorts: "80,443", TCPFlags: "syn,!ack"}},
		{Action: routeros.ActionFilter, Prefix: v4, Match: routeros.Match{Fragment: true}},
		{Action: routeros.ActionFilter, Prefix: v4, Direction: detect.Out, Match: routeros.Match{Protocol: "udp", SrcPort: 123}},
		{Action: routeros.ActionFilter, Prefix: v6, Match: routeros.Match{Protocol: "udp", SrcPort: 11211}},
	}
	ids := map[string]string{}
	for _, o := range objs {
		o.Comment = "flowshield a1 dns_amplification"
		id, err := f.r.Add(ctx, o)
		if err != nil {
			t.Fatalf("add %s: %v", o, err)
		}
		ids[o.Key()] = id
	}
	if len(ids) != len(objs) {
		t.Fatalf("%d keys for %d objects", len(ids), len(objs))
	}
	rules := f.emu.Objects(routerostest.MenuRaw)
	if last := rules[len(rules)-1]; last.Props["comment"] != "foreign" {
		t.Fatalf("the foreign rule is not last: flowshield's rules are not placed first: %v", rules)
	}
	want := map[string]string{ // the rule of each id as the router prints it
		ids[objs[1].Key()]: "chain=prerouting action=drop dst-address=203.0.113.5 protocol=udp src-port=53 packet-size=1200-1500",
		ids[objs[2].Key()]: "chain=prerouting action=drop dst-address=203.0.113.5 protocol=tcp dst-port=80,443 tcp-flags=syn,!ack",
		ids[objs[3].Key()]: "chain=prerouting action=drop dst-address=203.0.113.5 fragment=true",
		ids[objs[4].Key()]: "chain=prerouting action=drop src-address=203.0.113.5 protocol=udp src-port=123",
		ids[objs[0].Key()]: "chain=prerouting action=drop dst-address=203.0.113.5",
	}
	keys := []string{"chain", "action", "src-address", "dst-address", "protocol", "src-port", "dst-port", "tcp-flags", "fragment", "packet-size"}
	for _, r := range rules {
		w, ok := want[r.ID]
		if !ok {
			continue
		}
		var words []string
		for _, k := range keys {
			if v := r.Props[k]; v != "" {
				words = append(words, k+"="+v)
			}
		}
		if got := strings.Join(words, " "); got != w {
			t.Errorf("%s: %s\nwant %s", r.ID, got, w)
		}
	}
	v6rules := f.emu.Objects(routerostest.MenuRawV6)
	if r := v6rules[0]; r.Props["dst-address"] != "2001:db8::5/128" || r.Props["src-port"] != "11211" || r.Props["protocol"] != "udp" {
		t.Errorf("ipv6 rule %v", r.Props)
	}
	if _, err := f.r.Add(ctx, routeros.Object{Action: routeros.ActionFilter, Prefix: v6, Match: routeros.Match{Fragment: true}, Comment: "flowshield x"}); err == nil {
		t.Error("an IPv6 fragment filter was added: /ipv6/firewall/raw has no fragment matcher")
	}

	// Only what a rule matches is dropped and counted.
	victim, src := v4.Addr(), netip.MustParseAddr("198.51.100.9")
	for _, tc := range []struct {
		p       routerostest.Packet
		dropped string // the key of the rule that drops it; "" passes... except the raw-drop
	}{
		{routerostest.Packet{Src: src, Dst: victim, Proto: 17, SrcPort: 53, DstPort: 40000, Packets: 10, Bytes: 14000}, objs[1].Key()},
		{routerostest.Packet{Src: src, Dst: victim, Proto: 17, SrcPort: 53, DstPort: 40000, Packets: 10, Bytes: 800}, objs[0].Key()},
		{routerostest.Packet{Src: src, Dst: victim, Proto: 6, SrcPort: 5000, DstPort: 443, TCPFlags: routerostest.TCPSyn, Packets: 10, Bytes: 600}, objs[2].Key()},
		{routerostest.Packet{Src: src, Dst: victim, Proto: 6, SrcPort: 5000, DstPort: 443, TCPFlags: routerostest.TCPSyn | routerostest.TCPAck, Packets: 10, Bytes: 600}, objs[0].Key()},
		{routerostest.Packet{Src: src, Dst: victim, Proto: 17, Fragment: true, Packets: 10, Bytes: 15000}, objs[3].Key()},
	} {
		v := f.emu.Forward(tc.p)
		if !v.Dropped || v.ID != ids[tc.dropped] {
			t.Errorf("%+v: verdict %+v, want dropped by %s (%s)", tc.p, v, ids[tc.dropped], tc.dropped)
		}
	}
	if u := f.emu.UnknownMatchers(); len(u) != 0 {
		t.Errorf("matchers the emulator could not evaluate: %v", u)
	}

	got, err := f.r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(objs) {
		t.Fatalf("listed %d, want %d: %v", len(got), len(objs), got)
	}
	for _, g := range got {
		if ids[g.Key()] != g.ID {
			t.Errorf("listed %s (key %q) as %s, added as %s", g, g.Key(), g.ID, ids[g.Key()])
		}
		if g.Key() == objs[1].Key() {
			p, b, err := f.r.Counters(ctx, g)
			if err != nil || p != 10 || b != 14000 {
				t.Errorf("counters of %s: %d %d %v", g, p, b, err)
			}
		}
	}
	for _, o := range objs {
		found, err := f.r.Find(ctx, o)
		if err != nil || found.ID != ids[o.Key()] {
			t.Errorf("find %s: %s %v", o, found.ID, err)
		}
	}
	for _, o := range objs[1:4] {
		if err := f.r.Remove(ctx, o); err != nil {
			t.Fatalf("remove %s: %v", o, err)
		}
	}
	got, _ = f.r.List(ctx)
	if len(got) != 3 {
		t.Fatalf("after removing three rules: %v", got)
	}
}
