package container

// The setup script's firewall part run against the RouterOS emulator over
// the real API: its raw rules and address lists, followed statement by
// statement as RouterOS runs them (guards, place-before, set and remove on
// [find where ...]), then traffic through the emulated router. Every other
// statement needs a real router and is skipped; the run fails if a skipped
// one holds a firewall command.

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-routeros/routeros/v3"

	"github.com/flowshield/flowshield/routeros/routerostest"
)

// firewallMenus are the menus the run executes.
var firewallMenus = []string{routerostest.MenuRaw, routerostest.MenuRawV6, routerostest.MenuAddressList}

func isFirewallMenu(menu string) bool { return slices.Contains(firewallMenus, menu) }

// scriptRun runs a script's firewall statements on an emulated router.
type scriptRun struct {
	t      *testing.T
	c      *routeros.Client
	locals map[string][]string // locals holding the ids of a find
	puts   []string
}

func runFirewall(t *testing.T, c *routeros.Client, script string) []string {
	t.Helper()
	stmts, err := parseScript(script)
	if err != nil {
		t.Fatal(err)
	}
	r := &scriptRun{t: t, c: c, locals: map[string][]string{}}
	r.exec(stmts)
	return r.puts
}

func (r *scriptRun) exec(stmts []stmt) {
	for _, s := range stmts {
		r.stmt(s)
	}
}

func (r *scriptRun) stmt(s stmt) {
	head := s[0]
	switch {
	case head.kind == iBlock && len(s) == 1:
		r.exec(head.stmts)
	case head.text == ":local" && len(s) == 3 && s[2].kind == iSubst:
		if ids, ok := r.ids(s[2], ""); ok {
			r.locals[s[1].text] = ids
			return
		}
		r.skip(s)
	case head.text == ":if":
		n, ok := r.count(s[1])
		if !ok {
			r.skip(s)
			return
		}
		op := s[1].stmts[0][1].text
		if op == "=" && n == 0 || op == ">" && n > 0 {
			r.exec(s[3].stmts)
		} else if len(s) == 6 {
			r.exec(s[5].stmts)
		}
	case head.text == ":put" && len(s) == 2 && s[1].kind == iString:
		r.puts = append(r.puts, s[1].text)
	case head.kind == iWord && strings.HasPrefix(head.text, "/"):
		i := strings.LastIndexByte(head.text, '/')
		if !isFirewallMenu(head.text[:i]) {
			r.skip(s)
			return
		}
		r.command(head.text[:i], head.text[i+1:], s[1:])
	default:
		r.skip(s)
	}
}

// skip passes over a statement that needs a real router; it must not hold
// a firewall command.
func (r *scriptRun) skip(s stmt) {
	for _, it := range s {
		if it.kind == iWord {
			for _, m := range firewallMenus {
				if strings.HasPrefix(it.text, m+"/") {
					r.t.Fatalf("line %d: %s is in a statement the run cannot follow", it.line, it.text)
				}
			}
		}
		for _, inner := range it.stmts {
			r.skip(inner)
		}
	}
}

// count evaluates ([:len X] = 0) or ([:len X] > 0), X a firewall find or a
// local holding one; ok is false for any other condition.
func (r *scriptRun) count(cond item) (int, bool) {
	if cond.kind != iExpr || len(cond.stmts) != 1 {
		return 0, false
	}
	e := cond.stmts[0]
	if len(e) != 3 || e[0].kind != iSubst || len(e[0].stmts) != 1 || e[2].text != "0" || e[1].text != "=" && e[1].text != ">" {
		return 0, false
	}
	l := e[0].stmts[0]
	if len(l) != 2 || l[0].text != ":len" {
		return 0, false
	}
	if l[1].kind == iWord && strings.HasPrefix(l[1].text, "$") {
		ids, ok := r.locals[l[1].text[1:]]
		return len(ids), ok
	}
	ids, ok := r.ids(l[1], "")
	return len(ids), ok
}

// ids runs [/menu/find where ...] (or [find where ...] in menu): the ids
// of the objects that match; ok is false for anything else.
func (r *scriptRun) ids(sub item, menu string) ([]string, bool) {
	if sub.kind != iSubst || len(sub.stmts) != 1 || len(sub.stmts[0]) < 2 || sub.stmts[0][1].text != "where" {
		return nil, false
	}
	find := sub.stmts[0]
	if find[0].text != "find" {
		var ok bool
		menu, ok = strings.CutSuffix(find[0].text, "/find")
		if !ok || !isFirewallMenu(menu) {
			return nil, false
		}
	}
	var ids []string
	for _, o := range r.print(menu) {
		if r.matches(o, find[2:]) {
			ids = append(ids, o[".id"])
		}
	}
	return ids, true
}

// matches evaluates a where clause of k=v and k!=v joined by and.
func (r *scriptRun) matches(o map[string]string, where []item) bool {
	for i := 0; i < len(where); i++ {
		w := where[i]
		if w.kind == iWord && w.text == "and" {
			continue
		}
		k, v, ok := strings.Cut(w.text, "=")
		if w.kind != iWord || !ok {
			r.t.Fatalf("line %d: where %q: only k=v and k!=v joined by and", w.line, w.text)
		}
		if v == "" && i+1 < len(where) && where[i+1].kind == iString {
			v = where[i+1].text
			i++
		}
		k, negated := strings.CutSuffix(k, "!")
		got := o[k]
		equal := got == v || v == "no" && got == "false" || v == "yes" && got == "true"
		if equal == negated {
			return false
		}
	}
	return true
}

func (r *scriptRun) print(menu string) []map[string]string {
	rep, err := r.c.Run(menu + "/print")
	if err != nil {
		r.t.Fatalf("%s/print: %v", menu, err)
	}
	out := make([]map[string]string, len(rep.Re))
	for i, s := range rep.Re {
		out[i] = s.Map
	}
	return out
}

// command runs add, set or remove as the router's CLI would: set and
// remove on a find that matches nothing do nothing.
func (r *scriptRun) command(menu, verb string, args []item) {
	words := []string{menu + "/" + verb}
	if verb == "set" || verb == "remove" {
		ids, ok := r.ids(args[0], menu)
		if !ok {
			r.t.Fatalf("line %d: %s %s without [find where ...]", args[0].line, menu, verb)
		}
		if len(ids) == 0 {
			return
		}
		words = append(words, "=.id="+strings.Join(ids, ","))
		args = args[1:]
	} else if verb != "add" {
		r.t.Fatalf("%s %s: the run knows add, set and remove", menu, verb)
	}
	for i := 0; i < len(args); i++ {
		k, v, _ := strings.Cut(args[i].text, "=")
		if v == "" && i+1 < len(args) {
			next := args[i+1]
			i++
			switch {
			case next.kind == iString:
				v = next.text
			case k == "place-before" && next.kind == iSubst && len(next.stmts) == 1 && len(next.stmts[0]) == 3 &&
				next.stmts[0][0].text == ":pick" && next.stmts[0][2].text == "0":
				ids := r.locals[strings.TrimPrefix(next.stmts[0][1].text, "$")]
				if len(ids) == 0 {
					r.t.Fatalf("line %d: [:pick %s 0] of nothing", next.line, next.stmts[0][1].text)
				}
				v = ids[0]
			default:
				r.t.Fatalf("line %d: %s= takes what the run cannot evaluate", next.line, k)
			}
		}
		words = append(words, "="+k+"="+v)
	}
	if _, err := r.c.Run(words...); err != nil {
		r.t.Fatalf("%q: %v", words, err)
	}
}

// emulatedRouter is a started emulator and an API client logged in to it.
func emulatedRouter(t *testing.T) (*routerostest.Server, *routeros.Client) {
	t.Helper()
	s := routerostest.New(routerostest.DefaultConfiguration())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	c, err := routeros.DialTimeout(s.Addr(), "admin", "admin", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

// firewallState is every firewall object as print shows it, ids included,
// but for the counters traffic moves.
func firewallState(s *routerostest.Server) map[string][]map[string]string {
	state := map[string][]map[string]string{}
	for _, m := range firewallMenus {
		for _, o := range s.Objects(m) {
			props := maps.Clone(o.Props)
			delete(props, "packets")
			delete(props, "bytes")
			props[".id"] = o.ID
			state[m] = append(state[m], props)
		}
	}
	return state
}

// listEntries are a list's entries as "address comment".
func listEntries(s *routerostest.Server, list string) []string {
	var out []string
	for _, o := range s.Objects(routerostest.MenuAddressList) {
		if o.Props["list"] == list {
			out = append(out, o.Props["address"]+" "+o.Props["comment"])
		}
	}
	slices.Sort(out)
	return out
}

func TestScriptOnEmulator(t *testing.T) {
	s, c := emulatedRouter(t)
	// An admin's rule the script's must go before, and an admin's entry
	// of the admin list the script must leave alone.
	adminRule, err := s.Seed(routerostest.MenuRaw, map[string]string{"chain": "prerouting", "action": "accept", "comment": "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seed(routerostest.MenuAddressList, map[string]string{"list": AdminList, "address": "10.9.9.9", "comment": "mine"}); err != nil {
		t.Fatal(err)
	}
	first := params(func(p *Params) {
		p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		p.Actions = []string{"address-list"}
		p.Exporters = []netip.Prefix{netip.MustParsePrefix("172.17.0.1/32"), netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("2001:db8::2/128")}
		p.AdminNetworks = []netip.Prefix{netip.MustParsePrefix("192.168.88.0/24")}
	})
	script, err := Script(first)
	if err != nil {
		t.Fatal(err)
	}
	puts := runFirewall(t, c, script)

	raw := s.Objects(routerostest.MenuRaw)
	var comments []string
	for _, o := range raw {
		comments = append(comments, o.Props["comment"])
	}
	wantComments := []string{
		"flowshield-setup: forged router address to the container",
		"flowshield-setup: HTTP to the container only from flowshield-admin",
		"flowshield-setup: flows to the container only from flowshield-exporters",
		"flowshield-setup: drop in flowshield-in",
		"admin",
	}
	if !slices.Equal(comments, wantComments) {
		t.Fatalf("raw rules, first to last:\n%q\nwant\n%q", comments, wantComments)
	}
	if got, want := listEntries(s, ExportersList), []string{"10.0.0.2 flowshield-setup: exporter"}; !slices.Equal(got, want) {
		t.Errorf("%s: %q, want %q (the router's own address and IPv6 need no entry)", ExportersList, got, want)
	}
	if got, want := listEntries(s, AdminList), []string{"10.9.9.9 mine", "192.168.88.0/24 flowshield-setup: admin"}; !slices.Equal(got, want) {
		t.Errorf("%s: %q, want %q", AdminList, got, want)
	}
	if slices.ContainsFunc(puts, func(p string) bool { return strings.Contains(p, "which is empty") }) {
		t.Errorf("the empty admin list notice with entries in it: %q", puts)
	}
	if _, err := c.Run(routerostest.MenuAddressList+"/add", "=list=flowshield-in", "=address=203.0.113.10", "=timeout=10m", "=comment=flowshield 1 udp_flood"); err != nil {
		t.Fatal(err)
	}

	container := netip.MustParseAddr("172.17.0.2")
	packet := func(src string, proto uint8, dport uint16) routerostest.Packet {
		return routerostest.Packet{Src: netip.MustParseAddr(src), Dst: container, Proto: proto, SrcPort: 40000, DstPort: dport, Packets: 10, Bytes: 5000}
	}
	const udp, tcp = 17, 6
	steps := []struct {
		name    string
		p       routerostest.Packet
		dropped bool
		comment string
	}{
		{"outsider to NetFlow", packet("198.51.100.7", udp, 2055), true, wantComments[2]},
		{"outsider to sFlow", packet("198.51.100.7", udp, 6343), true, wantComments[2]},
		{"listed exporter", packet("10.0.0.2", udp, 2055), false, "admin"},
		{"forged router address", packet("172.17.0.1", udp, 2055), true, wantComments[0]},
		{"outsider to the web UI", packet("198.51.100.7", tcp, 8080), true, wantComments[1]},
		{"admin network to the web UI", packet("192.168.88.10", tcp, 8080), false, "admin"},
		{"the admin's own entry", packet("10.9.9.9", tcp, 8080), false, "admin"},
		{"outsider to another port", packet("198.51.100.7", tcp, 22), false, "admin"},
		{"a ban still drops", routerostest.Packet{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("203.0.113.10"),
			Proto: udp, SrcPort: 53, DstPort: 40000, Packets: 10, Bytes: 5000}, true, wantComments[3]},
	}
	for _, st := range steps {
		if v := s.Forward(st.p); v.Dropped != st.dropped || v.Comment != st.comment {
			t.Errorf("%s: %+v, want dropped %v by %q", st.name, v, st.dropped, st.comment)
		}
	}
	if u := s.UnknownMatchers(); len(u) > 0 {
		t.Errorf("matchers the emulator does not evaluate: %v", u)
	}

	// Running it again changes nothing, not even an id.
	before := firewallState(s)
	runFirewall(t, c, script)
	if after := firewallState(s); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a second run changed the firewall:\nbefore %v\nafter  %v", before, after)
	}

	// Another configuration: the rules keep their place and take the new
	// ports; the script's entries no longer wanted go, the admin's stay.
	second := first
	second.Exporters, second.AdminNetworks = nil, []netip.Prefix{netip.MustParsePrefix("192.168.89.0/24")}
	second.HTTPPort, second.SFlowPort = 9090, 0
	if script, err = Script(second); err != nil {
		t.Fatal(err)
	}
	runFirewall(t, c, script)
	after := s.Objects(routerostest.MenuRaw)
	if len(after) != len(raw) || after[len(after)-1].ID != adminRule {
		t.Fatalf("raw rules after a changed run: %v", after)
	}
	for i := range after {
		if after[i].ID != raw[i].ID {
			t.Errorf("rule %d: id %s, was %s", i, after[i].ID, raw[i].ID)
		}
	}
	if p := after[1].Props; p["dst-port"] != "9090" || p["protocol"] != "tcp" {
		t.Errorf("HTTP rule %v, want dst-port 9090", p)
	}
	if p := after[2].Props; p["dst-port"] != "2055" {
		t.Errorf("flow rule %v, want dst-port 2055 (sFlow off)", p)
	}
	if got := listEntries(s, ExportersList); len(got) != 0 {
		t.Errorf("%s: %q, want empty", ExportersList, got)
	}
	if got, want := listEntries(s, AdminList), []string{"10.9.9.9 mine", "192.168.89.0/24 flowshield-setup: admin"}; !slices.Equal(got, want) {
		t.Errorf("%s: %q, want %q", AdminList, got, want)
	}
	if v := s.Forward(packet("10.0.0.2", udp, 2055)); !v.Dropped || v.Comment != wantComments[2] {
		t.Errorf("the exporter taken out of EXPORTERS still reaches the flow port: %+v", v)
	}

	// No admin network at all: the script says how to add one.
	third := second
	third.AdminNetworks = nil
	if script, err = Script(third); err != nil {
		t.Fatal(err)
	}
	for _, o := range s.Objects(routerostest.MenuAddressList) {
		if o.Props["comment"] == "mine" {
			if _, err := c.Run(routerostest.MenuAddressList+"/remove", "=.id="+o.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	puts = runFirewall(t, c, script)
	if got := listEntries(s, AdminList); len(got) != 0 {
		t.Errorf("%s: %q, want empty", AdminList, got)
	}
	if !slices.ContainsFunc(puts, func(p string) bool {
		return strings.Contains(p, "which is empty") && strings.Contains(p, "/ip/firewall/address-list/add list=flowshield-admin address=")
	}) {
		t.Errorf("no notice of the empty admin list: %q", puts)
	}
	if v := s.Forward(packet("192.168.88.10", tcp, 9090)); !v.Dropped {
		t.Errorf("the web UI reached with an empty admin list: %+v", v)
	}
}
