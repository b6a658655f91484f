package routerostest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/container"
	"github.com/flowshield/flowshield/routeros"

	"github.com/flowshield/flowshield/detect"
)

func seedT(t *testing.T, s *Server, menu string, props map[string]string) string {
	t.Helper()
	id, err := s.Seed(menu, props)
	if err != nil {
		t.Fatalf("seed %s %v: %v", menu, props, err)
	}
	return id
}

func noUnknownMatchers(t *testing.T, s *Server) {
	t.Helper()
	if u := s.UnknownMatchers(); len(u) != 0 {
		t.Errorf("unknown matchers used: %q", u)
	}
}

// base is 10 packets of 500 bytes of UDP 198.51.100.7:53 -> 203.0.113.10:4444 on ether1.
func base() Packet {
	return Packet{
		Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("203.0.113.10"),
		Proto: 17, SrcPort: 53, DstPort: 4444, Packets: 10, Bytes: 5000, InInterface: "ether1",
	}
}

func TestForwardRuleOrder(t *testing.T) {
	s := New(DefaultConfiguration())
	rule := func(props ...string) string {
		m := map[string]string{}
		for _, kv := range props {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return seedT(t, s, MenuRaw, m)
	}
	all := rule("chain=prerouting", "action=passthrough", "comment=count all")
	logTCP := rule("chain=prerouting", "action=log", "protocol=tcp")
	off := rule("chain=prerouting", "action=drop", "disabled=yes")
	allow := rule("chain=prerouting", "action=accept", "src-address=192.0.2.1", "comment=allow")
	jump := rule("chain=prerouting", "action=jump", "jump-target=udp", "protocol=udp")
	dropNet := rule("chain=prerouting", "action=drop", "dst-address=203.0.113.0/24", "comment=drop net")
	ret := rule("chain=udp", "action=return", "protocol=udp", "src-port=53")
	chargen := rule("chain=udp", "action=drop", "protocol=udp", "dst-port=19")
	udpRest := rule("chain=udp", "action=passthrough")
	output := rule("chain=output", "action=drop")

	p := func(src, dst string, proto uint8, sport, dport uint16) Packet {
		return Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: proto,
			SrcPort: sport, DstPort: dport, Packets: 2, Bytes: 200}
	}
	steps := []struct {
		p      Packet
		want   Verdict
		counts []string // rules that match, in order
	}{
		{p("192.0.2.1", "203.0.113.5", 6, 1000, 80), Verdict{Menu: MenuRaw, ID: allow, Comment: "allow"}, []string{all, logTCP, allow}},
		{p("192.0.2.2", "203.0.113.5", 6, 1000, 80), Verdict{true, MenuRaw, dropNet, "drop net"}, []string{all, logTCP, dropNet}},
		{p("192.0.2.2", "198.51.100.1", 17, 53, 1000), Verdict{}, []string{all, jump, ret}},
		{p("192.0.2.2", "203.0.113.1", 17, 53, 1000), Verdict{true, MenuRaw, dropNet, "drop net"}, []string{all, jump, ret, dropNet}},
		{p("192.0.2.2", "198.51.100.1", 17, 1000, 19), Verdict{true, MenuRaw, chargen, ""}, []string{all, jump, chargen}},
		{p("192.0.2.2", "198.51.100.1", 17, 1000, 20), Verdict{}, []string{all, jump, udpRest}},
		{p("192.0.2.3", "203.0.113.1", 17, 1000, 19), Verdict{true, MenuRaw, chargen, ""}, []string{all, jump, chargen}},
	}
	want := map[string]Counters{}
	for i, st := range steps {
		if got := s.Forward(st.p); got != st.want {
			t.Errorf("step %d: %+v, want %+v", i, got, st.want)
		}
		for _, id := range st.counts {
			c := want[id]
			c.Packets += 2
			c.Bytes += 200
			want[id] = c
		}
	}
	got := s.RuleCounters(MenuRaw)
	for _, id := range []string{all, logTCP, off, allow, jump, dropNet, ret, chargen, udpRest, output} {
		if got[id] != want[id] {
			t.Errorf("rule %s: %+v, want %+v", id, got[id], want[id])
		}
	}
	if got["count all"] != want[all] || got["drop net"] != want[dropNet] {
		t.Errorf("by comment: %+v", got)
	}
	noUnknownMatchers(t, s)

	// a jump loop ends rather than hanging
	s2 := New(DefaultConfiguration())
	seedT(t, s2, MenuRaw, map[string]string{"chain": "prerouting", "action": "jump", "jump-target": "a"})
	seedT(t, s2, MenuRaw, map[string]string{"chain": "a", "action": "jump", "jump-target": "a"})
	if v := s2.Forward(base()); v.Dropped {
		t.Fatalf("jump loop: %+v", v)
	}
}

func TestForwardCountersThroughAPI(t *testing.T) {
	s := start(t, DefaultConfiguration())
	c := dialRaw(t, s, true)
	rep := c.call("/ip/firewall/raw/add", "=chain=prerouting", "=action=drop", "=dst-address=203.0.113.10",
		"=protocol=udp", "=src-port=53", "=comment=flowshield dns amplification")
	id := attr(rep[0], "ret")
	if rep[0][0] != "!done" {
		t.Fatalf("add: %q", rep)
	}
	for i := range 3 {
		p := base()
		p.Packets, p.Bytes = uint64(i+1), uint64(1000*(i+1))
		if !s.Forward(p).Dropped {
			t.Fatal("not dropped")
		}
	}
	p := base()
	p.SrcPort = 123
	if s.Forward(p).Dropped {
		t.Fatal("NTP dropped by the DNS rule")
	}
	for _, words := range [][]string{
		{"/ip/firewall/raw/print", "=.proplist=.id,packets,bytes", "?.id=" + id},
		{"/ip/firewall/raw/print", "=stats=", "?.id=" + id},
		{"/ip/firewall/raw/print", "=.proplist=.id,comment,packets,bytes", "?.id=" + id},
	} {
		rep := c.call(words...)
		if len(rep) != 2 || attr(rep[0], "packets") != "6" || attr(rep[0], "bytes") != "6000" {
			t.Fatalf("%q: %q", words, rep)
		}
	}
	s.Restart()
	if got := s.RuleCounters(MenuRaw)[id]; got != (Counters{}) {
		t.Fatalf("counters after a reboot: %+v", got)
	}
}

// newRouter is flowshield's own client on the emulator.
func newRouter(t *testing.T, s *Server) *routeros.Router {
	t.Helper()
	cfg := routeros.DefaultConfiguration()
	cfg.Address, cfg.User, cfg.Password = s.Addr(), s.cfg.User, s.cfg.Password
	cfg.CallTimeout, cfg.DialTimeout = 5*time.Second, 5*time.Second
	r := routeros.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(r.Stop)
	return r
}

func ctxTest(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestForwardFlowshieldBans bans through flowshield's client and reads the
// counters back with it.
func TestForwardFlowshieldBans(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultConfiguration()
	cfg.Now = clock.Now
	s := start(t, cfg)
	r := newRouter(t, s)
	ctx := ctxTest(t)
	seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "action": "accept", "comment": "admin: accept all"})

	victim := netip.MustParsePrefix("203.0.113.10/32")
	rawDrop := routeros.Object{Action: routeros.ActionRawDrop, Prefix: victim, Comment: "flowshield 1 udp_flood"}
	id, err := r.Add(ctx, rawDrop)
	if err != nil {
		t.Fatal(err)
	}
	rawDrop.ID = id
	for range 4 {
		if v := s.Forward(base()); !v.Dropped || v.ID != id {
			t.Fatalf("raw-drop: %+v", v)
		}
	}
	if p, b, err := r.Counters(ctx, rawDrop); err != nil || p != 40 || b != 20000 {
		t.Fatalf("Counters: %d %d %v", p, b, err)
	}
	objs, err := r.List(ctx)
	if err != nil || len(objs) != 1 || objs[0].Packets != 40 || objs[0].Bytes != 20000 {
		t.Fatalf("List: %+v %v", objs, err)
	}
	if err := r.Remove(ctx, rawDrop); err != nil {
		t.Fatal(err)
	}
	if v := s.Forward(base()); v.Dropped || v.Comment != "admin: accept all" {
		t.Fatalf("after unban: %+v", v)
	}

	// blackhole, v4 and v6
	for _, pfx := range []string{"203.0.113.10/32", "2001:db8::10/128"} {
		o := routeros.Object{Action: routeros.ActionBlackhole, Prefix: netip.MustParsePrefix(pfx), Comment: "flowshield 2 syn_flood"}
		if _, err := r.Add(ctx, o); err != nil {
			t.Fatal(err)
		}
		p := base()
		p.Dst = o.Prefix.Addr()
		if p.Dst.Is6() {
			p.Src = netip.MustParseAddr("2001:db8:ffff::1")
		}
		if v := s.Forward(p); !v.Dropped || !strings.HasPrefix(v.Menu, "/ip") || !strings.HasSuffix(v.Menu, "/route") {
			t.Fatalf("blackhole %s: %+v", pfx, v)
		}
	}
	noUnknownMatchers(t, s)
}

func TestForwardAddressListExpiry(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultConfiguration()
	cfg.Now = clock.Now
	s := start(t, cfg)
	c := dialRaw(t, s, true)
	rule := attr(c.call("/ip/firewall/raw/add", "=chain=prerouting", "=action=drop", "=dst-address-list=flowshield-in")[0], "ret")
	entry := attr(c.call("/ip/firewall/address-list/add", "=list=flowshield-in", "=address=203.0.113.10", "=timeout=10s")[0], "ret")
	if !s.Forward(base()).Dropped {
		t.Fatal("listed host not dropped")
	}
	clock.Advance(9 * time.Second)
	if !s.Forward(base()).Dropped {
		t.Fatal("dropped no more before the timeout")
	}
	clock.Advance(time.Second)
	// no API call in between: the compiled list sees the expiry itself
	if v := s.Forward(base()); v.Dropped {
		t.Fatalf("still dropped after the timeout: %+v", v)
	}
	if got := s.RuleCounters(MenuRaw)[rule]; got != (Counters{20, 10000}) {
		t.Fatalf("counters %+v", got)
	}
	if rep := c.call("/ip/firewall/address-list/print", "?.id="+entry); rep[0][0] == "!re" {
		t.Fatalf("entry still printed: %q", rep)
	}
	// a static entry, then disabled, then removed
	entry = attr(c.call("/ip/firewall/address-list/add", "=list=flowshield-in", "=address=203.0.113.0/28")[0], "ret")
	clock.Advance(time.Hour)
	if !s.Forward(base()).Dropped {
		t.Fatal("static entry not dropped")
	}
	c.call("/ip/firewall/address-list/set", "=.id="+entry, "=disabled=yes")
	if s.Forward(base()).Dropped {
		t.Fatal("disabled entry dropped")
	}
	c.call("/ip/firewall/address-list/set", "=.id="+entry, "=disabled=no", "=timeout=5s")
	if !s.Forward(base()).Dropped {
		t.Fatal("re-enabled entry not dropped")
	}
	c.call("/ip/firewall/address-list/remove", "=.id="+entry)
	if s.Forward(base()).Dropped {
		t.Fatal("removed entry dropped")
	}
	// a timed entry vanishes on reboot
	c.call("/ip/firewall/address-list/add", "=list=flowshield-in", "=address=203.0.113.10", "=timeout=1d")
	if !s.Forward(base()).Dropped {
		t.Fatal("new entry not dropped")
	}
	s.Restart()
	if s.Forward(base()).Dropped {
		t.Fatal("timed entry survived the reboot")
	}
}

func TestForwardBlackhole(t *testing.T) {
	type route struct{ dst, kind, extra string } // kind: blackhole, or a gateway
	tests := []struct {
		name    string
		version string
		routes  []route
		dst     string
		want    int // index of the dropping route, -1 for forwarded
	}{
		{"no route", "", nil, "203.0.113.8", -1},
		{"covering /24", "", []route{{"203.0.113.0/24", "blackhole", ""}}, "203.0.113.8", 0},
		{"more specific unicast wins", "", []route{{"203.0.113.0/24", "blackhole", ""}, {"203.0.113.8/32", "192.0.2.254", ""}}, "203.0.113.8", -1},
		{"more specific blackhole wins", "", []route{{"10.0.0.0/8", "192.0.2.254", ""}, {"10.1.2.3", "blackhole", ""}}, "10.1.2.3", 1},
		{"neighbour of a /32", "", []route{{"10.0.0.0/8", "192.0.2.254", ""}, {"10.1.2.3", "blackhole", ""}}, "10.1.2.4", -1},
		{"disabled", "", []route{{"203.0.113.8", "blackhole", "disabled=yes"}}, "203.0.113.8", -1},
		{"other routing table", "", []route{{"203.0.113.8", "blackhole", "routing-table=vrf1"}}, "203.0.113.8", -1},
		{"same prefix, lower distance blackhole", "", []route{{"203.0.113.8", "192.0.2.254", "distance=5"}, {"203.0.113.8", "blackhole", "distance=1"}}, "203.0.113.8", 1},
		{"same prefix, lower distance gateway", "", []route{{"203.0.113.8", "192.0.2.254", "distance=1"}, {"203.0.113.8", "blackhole", "distance=5"}}, "203.0.113.8", -1},
		{"v6 /128", "", []route{{"2001:db8::/32", "2001:db8:ffff::1", ""}, {"2001:db8::66", "blackhole", ""}}, "2001:db8::66", 1},
		{"v6 /48 under a more specific gateway", "", []route{{"2001:db8::/48", "blackhole", ""}, {"2001:db8::/64", "2001:db8:ffff::1", ""}}, "2001:db8::66", -1},
		{"v6 /48", "", []route{{"2001:db8::/48", "blackhole", ""}, {"2001:db8::/64", "2001:db8:ffff::1", ""}}, "2001:db8:0:1::66", 0},
		{"v6 route for a v4 packet", "", []route{{"::/0", "blackhole", ""}}, "203.0.113.8", -1},
		{"RouterOS 6 type=blackhole", "6.49.10 (long-term)", []route{{"203.0.113.0/24", "blackhole", ""}}, "203.0.113.8", 0},
		{"RouterOS 6 unicast", "6.49.10 (long-term)", []route{{"203.0.113.0/24", "192.0.2.254", ""}}, "203.0.113.8", -1},
		{"RouterOS 6 routing-mark", "6.49.10 (long-term)", []route{{"203.0.113.0/24", "blackhole", "routing-mark=isp2"}}, "203.0.113.8", -1},
		// RouterOS 6 has no IPv6 blackhole routes, only unreachable (Manual:IPv6/Route)
		{"RouterOS 6 v6 unreachable", "6.49.10 (long-term)", []route{{"2001:db8::66/128", "blackhole", ""}}, "2001:db8::66", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfiguration()
			if tc.version != "" {
				cfg.Version = tc.version
			}
			s := start(t, cfg)
			c := dialRaw(t, s, true)
			var ids []string
			for _, r := range tc.routes {
				menu := "/ip/route"
				if strings.Contains(r.dst, ":") {
					menu = "/ipv6/route"
				}
				words := []string{menu + "/add", "=dst-address=" + r.dst}
				switch {
				case r.kind != "blackhole":
					words = append(words, "=gateway="+r.kind)
				case tc.version != "" && menu == "/ipv6/route":
					words = append(words, "=type=unreachable")
				case tc.version != "":
					words = append(words, "=type=blackhole")
				default:
					words = append(words, "=blackhole=yes")
				}
				for _, kv := range strings.Fields(r.extra) {
					words = append(words, "="+kv)
				}
				rep := c.call(words...)
				if rep[0][0] != "!done" {
					t.Fatalf("%q: %q", words, rep)
				}
				ids = append(ids, attr(rep[0], "ret"))
			}
			p := base()
			p.Dst = netip.MustParseAddr(tc.dst)
			v := s.Forward(p)
			if tc.want < 0 {
				if v != (Verdict{}) {
					t.Fatalf("dropped: %+v", v)
				}
				return
			}
			menu := MenuRoute
			if p.Dst.Is6() {
				menu = MenuRouteV6
			}
			if v != (Verdict{Dropped: true, Menu: menu, ID: ids[tc.want]}) {
				t.Fatalf("verdict %+v, want route %s", v, ids[tc.want])
			}
		})
	}

	// accept in raw ends raw only; a blackhole route still drops
	s := New(DefaultConfiguration())
	seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "action": "accept"})
	bh := seedT(t, s, MenuRoute, map[string]string{"dst-address": "203.0.113.10", "blackhole": "yes"})
	if v := s.Forward(base()); v != (Verdict{Dropped: true, Menu: MenuRoute, ID: bh}) {
		t.Fatalf("raw accept then blackhole: %+v", v)
	}
	// a mapped v4 address is v4
	p := base()
	p.Dst = netip.AddrFrom16(p.Dst.As16())
	if !s.Forward(p).Dropped {
		t.Fatal("::ffff:203.0.113.10 not routed as IPv4")
	}
}

// TestSetupScriptDropRules adds the raw rules the setup script makes, as
// the script adds them, then bans as flowshield does: the listed host's
// traffic is dropped and counted on the script's rule.
func TestSetupScriptDropRules(t *testing.T) {
	p := container.DefaultParams()
	p.Actions = []string{"address-list"}
	p.BanDirections = []string{"in", "out"}
	p.APIPassword = "s3cretpassw0rd"
	p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/48")}
	script, err := container.Script(p)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, DefaultConfiguration())
	c := dialRaw(t, s, true)
	// an admin's rules the script must go before
	admin4 := seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "action": "accept", "comment": "admin"})
	admin6 := seedT(t, s, MenuRawV6, map[string]string{"chain": "prerouting", "action": "accept", "comment": "admin"})

	addLine := regexp.MustCompile(`^\s*(/ip(?:v6)?/firewall/raw)/add (.*) place-before=\[:pick \$first 0\]$`)
	token := regexp.MustCompile(`([a-z-]+)=("(?:[^"\\]|\\.)*"|\S+)`)
	n := 0
	for line := range strings.SplitSeq(script, "\n") {
		m := addLine.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			continue
		}
		first := c.call(m[1]+"/print", "=.proplist=.id", "?chain=prerouting", "?dynamic=no")
		words := []string{m[1] + "/add", "=place-before=" + attr(first[0], ".id")}
		for _, kv := range token.FindAllStringSubmatch(m[2], -1) {
			v := kv[2]
			if strings.HasPrefix(v, `"`) {
				v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
			}
			words = append(words, "="+kv[1]+"="+v)
		}
		if rep := c.call(words...); rep[0][0] != "!done" {
			t.Fatalf("%q: %q", words, rep)
		}
		n++
	}
	if n != 7 {
		t.Fatalf("%d raw add lines in the script, want 7 (in and out, IPv4 and IPv6, and the container's flow, HTTP and forged-address rules)", n)
	}
	for menu, want := range map[string]int{MenuRaw: 6, MenuRawV6: 3} {
		objs := s.Objects(menu)
		if len(objs) != want || objs[want-1].Props["comment"] != "admin" {
			t.Fatalf("%s: the script's rules are not before the admin's: %v", menu, objs)
		}
	}

	r := newRouter(t, s)
	ctx := ctxTest(t)
	bans := []routeros.Object{
		{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("203.0.113.10/32"), Timeout: 10 * time.Minute, Comment: "flowshield 1 udp_flood"},
		{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("203.0.113.20/32"), Direction: detect.Out, Timeout: 10 * time.Minute, Comment: "flowshield 2 udp_flood"},
		{Action: routeros.ActionAddressList, Prefix: netip.MustParsePrefix("2001:db8::10/128"), Timeout: 10 * time.Minute, Comment: "flowshield 3 udp_flood"},
	}
	for _, b := range bans {
		if _, err := r.Add(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	flow := func(src, dst string) Packet {
		return Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), Proto: 17, SrcPort: 123, DstPort: 9999, Packets: 100, Bytes: 46000}
	}
	steps := []struct {
		p       Packet
		dropped bool
		menu    string
		comment string
	}{
		{flow("198.51.100.1", "203.0.113.10"), true, MenuRaw, "flowshield-setup: drop in flowshield-in"},
		{flow("203.0.113.20", "198.51.100.1"), true, MenuRaw, "flowshield-setup: drop out flowshield-out"},
		{flow("198.51.100.1", "203.0.113.20"), false, MenuRaw, "admin"}, // out ban: inbound traffic passes
		{flow("198.51.100.1", "203.0.113.11"), false, MenuRaw, "admin"},
		{flow("2001:db8:ffff::1", "2001:db8::10"), true, MenuRawV6, "flowshield-setup: drop in flowshield-in"},
		{flow("2001:db8:ffff::1", "2001:db8::11"), false, MenuRawV6, "admin"},
	}
	for _, st := range steps {
		if v := s.Forward(st.p); v.Dropped != st.dropped || v.Menu != st.menu || v.Comment != st.comment {
			t.Errorf("%v -> %v: %+v", st.p.Src, st.p.Dst, v)
		}
	}
	in4 := s.RuleCounters(MenuRaw)
	if in4["flowshield-setup: drop in flowshield-in"] != (Counters{100, 46000}) ||
		in4["flowshield-setup: drop out flowshield-out"] != (Counters{100, 46000}) || in4[admin4] != (Counters{200, 92000}) {
		t.Errorf("IPv4 counters %+v", in4)
	}
	if in6 := s.RuleCounters(MenuRawV6); in6["flowshield-setup: drop in flowshield-in"] != (Counters{100, 46000}) || in6[admin6] != (Counters{100, 46000}) {
		t.Errorf("IPv6 counters %+v", in6)
	}
	rep := c.call("/ip/firewall/raw/print", "=.proplist=packets,bytes", "?comment=flowshield-setup: drop in flowshield-in")
	if attr(rep[0], "packets") != "100" || attr(rep[0], "bytes") != "46000" {
		t.Errorf("print: %q", rep)
	}
	noUnknownMatchers(t, s)
}

func TestForwardConcurrent(t *testing.T) {
	s := start(t, DefaultConfiguration())
	all := seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "action": "passthrough"})
	seedT(t, s, MenuRaw, map[string]string{"chain": "prerouting", "action": "drop", "dst-address-list": "flowshield-in"})
	const workers, per = 4, 2000
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // flowshield banning and unbanning meanwhile
		defer wg.Done()
		c := dialRaw(t, s, true)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			addr := fmt.Sprintf("203.0.113.%d", i%8)
			rep := c.call("/ip/firewall/address-list/add", "=list=flowshield-in", "=address="+addr, "=timeout=1m")
			c.call("/ip/firewall/raw/print", "=.proplist=packets,bytes")
			c.call("/ip/firewall/address-list/remove", "=.id="+attr(rep[0], "ret"))
			_ = s.RuleCounters(MenuRaw)
		}
	}()
	var fw sync.WaitGroup
	for w := range workers {
		fw.Add(1)
		go func() {
			defer fw.Done()
			for i := range per {
				p := base()
				p.Dst = netip.AddrFrom4([4]byte{203, 0, 113, byte((w + i) % 8)})
				p.Packets, p.Bytes = 1, 100
				s.Forward(p)
			}
		}()
	}
	fw.Wait()
	close(stop)
	wg.Wait()
	if got := s.RuleCounters(MenuRaw)[all]; got != (Counters{workers * per, workers * per * 100}) {
		t.Fatalf("passthrough counted %+v", got)
	}
}

func BenchmarkForward(b *testing.B) {
	s := New(DefaultConfiguration())
	for i := range 50 {
		s.Seed(MenuRaw, map[string]string{"chain": "prerouting", "action": "drop", "protocol": "tcp", "dst-address": fmt.Sprintf("192.0.2.%d", i)})
	}
	s.Seed(MenuRaw, map[string]string{"chain": "prerouting", "action": "drop", "dst-address-list": "flowshield-in"})
	for i := range 1000 {
		s.Seed(MenuAddressList, map[string]string{"list": "flowshield-in", "address": fmt.Sprintf("10.0.%d.%d", i/256, i%256), "timeout": "1h"})
	}
	for i := range 1000 {
		s.Seed(MenuRoute, map[string]string{"dst-address": fmt.Sprintf("10.1.%d.%d", i/256, i%256), "blackhole": "yes"})
	}
	p := base()
	b.ReportAllocs()
	for b.Loop() {
		s.Forward(p)
	}
}
