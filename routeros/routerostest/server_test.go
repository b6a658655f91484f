package routerostest

import (
	"bufio"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func start(t *testing.T, cfg Configuration) *Server {
	t.Helper()
	s := New(cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func dialRaw(t *testing.T, s *Server, login bool) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	if login {
		rep := c.call("/login", "=name="+s.cfg.User, "=password="+s.cfg.Password)
		if rep[len(rep)-1][0] != "!done" || len(rep) != 1 {
			t.Fatalf("login: %q", rep)
		}
	}
	return c
}

// call sends a sentence and reads replies up to !done or !fatal; nil when
// the connection ends first.
func (c *rawClient) call(words ...string) [][]string {
	c.t.Helper()
	c.nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(AppendSentence(nil, words...)); err != nil {
		return nil
	}
	var out [][]string
	for {
		w, err := ReadSentence(c.br)
		if err != nil {
			return nil
		}
		out = append(out, w)
		if w[0] == "!done" || w[0] == "!fatal" {
			return out
		}
	}
}

func attr(s []string, k string) string {
	for _, w := range s {
		if v, ok := strings.CutPrefix(w, "="+k+"="); ok {
			return v
		}
	}
	return ""
}

func TestLogin(t *testing.T) {
	s := start(t, DefaultConfiguration())
	c := dialRaw(t, s, false)
	rep := c.call("/login", "=name=admin", "=password=wrong")
	if len(rep) != 2 || rep[0][0] != "!trap" || attr(rep[0], "message") != "invalid user name or password (6)" || rep[1][0] != "!done" {
		t.Fatalf("wrong password: %q", rep)
	}
	rep = c.call("/ip/route/print")
	if len(rep) != 1 || rep[0][0] != "!fatal" || rep[0][1] != "not logged in" {
		t.Fatalf("command before login: %q", rep)
	}
	if rep := c.call("/system/resource/print"); rep != nil {
		t.Fatalf("connection still open after !fatal: %q", rep)
	}
	if s.Logins() != 0 {
		t.Fatalf("logins %d", s.Logins())
	}
}

func TestMenus(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := DefaultConfiguration()
	cfg.Now = clock.Now
	s := start(t, cfg)
	c := dialRaw(t, s, true)

	// print of nothing: !empty then !done, tagged
	rep := c.call("/ip/firewall/address-list/print", ".tag=7")
	if len(rep) != 2 || rep[0][0] != "!empty" || rep[1][0] != "!done" || rep[1][1] != ".tag=7" {
		t.Fatalf("empty print: %q", rep)
	}
	s.SetEmptyReply(false)
	if rep := c.call("/ip/firewall/address-list/print"); len(rep) != 1 || rep[0][0] != "!done" {
		t.Fatalf("empty print without !empty: %q", rep)
	}

	rep = c.call("/ip/firewall/address-list/add", "=list=in", "=address=192.0.2.1/32", "=timeout=600s", "=comment=flowshield 1 udp_flood")
	id := attr(rep[0], "ret")
	if rep[0][0] != "!done" || !strings.HasPrefix(id, "*") {
		t.Fatalf("add: %q", rep)
	}
	rep = c.call("/ip/firewall/address-list/add", "=list=in", "=address=192.0.2.1")
	if rep[0][0] != "!trap" || attr(rep[0], "message") != "failure: already have such entry" {
		t.Fatalf("duplicate add: %q", rep)
	}
	c.call("/ip/firewall/address-list/add", "=list=other", "=address=198.51.100.0/24")
	clock.Advance(2 * time.Second)
	rep = c.call("/ip/firewall/address-list/print", "=.proplist=.id,address,timeout,dynamic", "?list=in", "?list=nope", "?#|")
	if len(rep) != 2 || attr(rep[0], "address") != "192.0.2.1" || attr(rep[0], "timeout") != "9m58s" || attr(rep[0], "dynamic") != "true" || attr(rep[0], "list") != "" {
		t.Fatalf("print with query and proplist: %q", rep)
	}
	if rep := c.call("/ip/firewall/address-list/print", "=count-only="); attr(rep[0], "ret") != "2" {
		t.Fatalf("count-only: %q", rep)
	}
	c.call("/ip/firewall/address-list/set", "=.id="+id, "=timeout=1h")
	rep = c.call("/ip/firewall/address-list/print", "?.id="+id)
	if attr(rep[0], "timeout") != "1h" {
		t.Fatalf("after set timeout=1h: %q", rep)
	}
	clock.Advance(time.Hour)
	if got := s.Objects(MenuAddressList); len(got) != 1 || got[0].Props["list"] != "other" {
		t.Fatalf("after the timeout ran out: %v", got)
	}
	rep = c.call("/ip/firewall/address-list/remove", "=.id="+id)
	if rep[0][0] != "!trap" || attr(rep[0], "message") != "no such item" {
		t.Fatalf("remove of an expired id: %q", rep)
	}

	// IPv6 keeps the length; a v4 address there is refused
	c.call("/ipv6/firewall/address-list/add", "=list=in", "=address=2001:db8::5")
	if got := s.Objects(MenuAddressListV6); len(got) != 1 || got[0].Props["address"] != "2001:db8::5/128" {
		t.Fatalf("ipv6 entry: %v", got)
	}
	if rep := c.call("/ipv6/firewall/address-list/add", "=list=in", "=address=192.0.2.9"); rep[0][0] != "!trap" {
		t.Fatalf("v4 address in ipv6 list: %q", rep)
	}

	// raw: place-before, counters, comma remove
	foreign, _ := s.Seed(MenuRaw, map[string]string{"chain": "prerouting", "action": "accept", "comment": "admin's"})
	rep = c.call("/ip/firewall/raw/add", "=chain=prerouting", "=action=drop", "=dst-address=192.0.2.7", "=place-before="+foreign)
	first := attr(rep[0], "ret")
	if err := s.AddCounters(MenuRaw, first, 10, 1000); err != nil {
		t.Fatal(err)
	}
	rep = c.call("/ip/firewall/raw/print", "?chain=prerouting")
	if len(rep) != 3 || attr(rep[0], ".id") != first || attr(rep[0], "packets") != "10" || attr(rep[1], ".id") != foreign {
		t.Fatalf("raw order/counters: %q", rep)
	}
	if rep := c.call("/ip/firewall/raw/add", "=chain=prerouting", "=place-before=*FFF"); attr(rep[0], "message") != "no such item" {
		t.Fatalf("place-before unknown: %q", rep)
	}
	second := attr(c.call("/ip/firewall/raw/add", "=chain=forward")[0], "ret")
	if rep := c.call("/ip/firewall/raw/remove", "=.id="+first+","+second); rep[0][0] != "!done" {
		t.Fatalf("comma remove: %q", rep)
	}
	if got := s.Objects(MenuRaw); len(got) != 1 || got[0].ID != foreign {
		t.Fatalf("after comma remove: %v", got)
	}

	// routes: blackhole=yes prints true, boolean queries accept yes/true
	c.call("/ip/route/add", "=dst-address=192.0.2.8", "=blackhole=yes", "=comment=flowshield x y")
	c.call("/ip/route/add", "=dst-address=10.0.0.0/8", "=gateway=192.0.2.254")
	for _, q := range []string{"?blackhole=yes", "?blackhole=true"} {
		rep := c.call("/ip/route/print", q)
		if len(rep) != 2 || attr(rep[0], "dst-address") != "192.0.2.8/32" || attr(rep[0], "blackhole") != "true" {
			t.Fatalf("route %s: %q", q, rep)
		}
	}
	if rep := c.call("/ip/route/add", "=dst-address=192.0.2.9", "=type=blackhole"); attr(rep[0], "message") != "unknown parameter type" {
		t.Fatalf("RouterOS 6 type=blackhole on 7: %q", rep)
	}

	// unknown command, resource, users
	rep = c.call("/ip/nope/print")
	if len(rep) != 3 || attr(rep[1], "message") != "no such command prefix" {
		t.Fatalf("unknown menu: %q", rep)
	}
	rep = c.call("/system/resource/print")
	if attr(rep[0], "version") != "7.18.2 (stable)" || attr(rep[0], "board-name") != "CHR" {
		t.Fatalf("resource: %q", rep)
	}
	rep = c.call("/user/group/print", "?name=full")
	if !strings.Contains(attr(rep[0], "policy"), "write") {
		t.Fatalf("group: %q", rep)
	}

	// restart: timed entries gone, static stay, counters reset
	c.call("/ip/firewall/address-list/add", "=list=in", "=address=192.0.2.30", "=timeout=1d")
	s.Restart()
	if rep := c.call("/system/resource/print"); rep != nil {
		t.Fatalf("connection survived the restart: %q", rep)
	}
	got := s.Objects(MenuAddressList)
	if len(got) != 1 || got[0].Props["list"] != "other" {
		t.Fatalf("after restart: %v", got)
	}
}

func TestPermissions(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Group = "read"
	s := start(t, cfg)
	c := dialRaw(t, s, true)
	if rep := c.call("/ip/route/print"); rep[len(rep)-1][0] != "!done" || rep[0][0] == "!trap" {
		t.Fatalf("read: %q", rep)
	}
	if rep := c.call("/ip/route/add", "=dst-address=192.0.2.1", "=blackhole=yes"); attr(rep[0], "message") != "not enough permissions (9)" {
		t.Fatalf("write as read-only: %q", rep)
	}
}

func TestFaults(t *testing.T) {
	s := start(t, DefaultConfiguration())
	add := []string{"/ip/firewall/address-list/add", "=list=in", "=address=192.0.2.1"}

	t.Run("drop before apply", func(t *testing.T) {
		c := dialRaw(t, s, true)
		s.Inject(Fault{Kind: DropBeforeApply, Match: "/add"})
		if rep := c.call(add...); rep != nil {
			t.Fatalf("reply %q", rep)
		}
		if n := len(s.Objects(MenuAddressList)); n != 0 {
			t.Fatalf("%d entries", n)
		}
	})
	t.Run("drop after apply", func(t *testing.T) {
		c := dialRaw(t, s, true)
		s.Inject(Fault{Kind: DropAfterApply, Match: "/add"})
		if rep := c.call(add...); rep != nil {
			t.Fatalf("reply %q", rep)
		}
		if n := len(s.Objects(MenuAddressList)); n != 1 {
			t.Fatalf("%d entries", n)
		}
	})
	t.Run("drop after n", func(t *testing.T) {
		c := dialRaw(t, s, true)
		s.DropAfter(2)
		for i := range 2 {
			if rep := c.call("/ip/route/print"); rep == nil {
				t.Fatalf("command %d dropped", i)
			}
		}
		if rep := c.call("/ip/route/print"); rep != nil {
			t.Fatalf("third command answered: %q", rep)
		}
	})
	t.Run("trap next", func(t *testing.T) {
		c := dialRaw(t, s, true)
		s.TrapNext(2, "failure: out of memory")
		for range 2 {
			if rep := c.call("/ip/route/print"); attr(rep[0], "message") != "failure: out of memory" {
				t.Fatalf("reply %q", rep)
			}
		}
		if rep := c.call("/ip/route/print"); rep[0][0] == "!trap" {
			t.Fatalf("third trapped: %q", rep)
		}
	})
	t.Run("fatal", func(t *testing.T) {
		c := dialRaw(t, s, true)
		s.Inject(Fault{Kind: Fatal, Message: "out of sessions"})
		if rep := c.call("/ip/route/print"); len(rep) != 1 || !slices.Equal(rep[0], []string{"!fatal", "out of sessions"}) {
			t.Fatalf("reply %q", rep)
		}
	})
	t.Run("stall", func(t *testing.T) {
		c := dialRaw(t, s, true)
		s.StallNext(1, 300*time.Millisecond)
		t0 := time.Now()
		if rep := c.call("/ip/route/print"); rep == nil {
			t.Fatal("no reply")
		}
		if d := time.Since(t0); d < 300*time.Millisecond {
			t.Fatalf("replied after %s", d)
		}
		// a stall ends early when the connection is closed (no stuck goroutine)
		s.StallNext(1, time.Hour)
		c.nc.Write(AppendSentence(nil, "/ip/route/print"))
		time.Sleep(50 * time.Millisecond)
		s.Restart()
	})
	if n := s.CountCommands("/add"); n != 2 {
		t.Fatalf("counted %d adds", n)
	}
}
