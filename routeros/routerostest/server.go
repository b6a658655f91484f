// Package routerostest is a RouterOS API server emulator for tests: a real
// TCP (optionally TLS) listener on loopback speaking the binary API protocol
// (length-prefixed words, sentences, .tag, !re/!done/!trap/!fatal/!empty),
// post-6.43 login, and the menus flowshield uses, with address-list timeouts
// that count down on an injectable clock, a reboot that drops timed entries,
// and fault injection (drops, stalls, traps, !fatal). It also serves the
// flow export flowshield checks: /ip/traffic-flow (one settings object,
// RouterOS defaults: off, 30m/15s; SetTrafficFlow or the API's set change
// it), /ip/traffic-flow/target, and /interface/ethernet/switch (Seed a chip,
// with l3-hw-offloading on RouterOS 7), each in RouterOS 6 form when
// Version is "6.x". Forward passes traffic through raw prerouting and the
// routes as RouterOS would, counting on the raw rules it matches, so a
// flow generator can leave out what a ban drops (traffic.go).
package routerostest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

// Configuration of an emulated router.
type Configuration struct {
	User, Password string
	// Group of User: "full", "write" or "read" (the RouterOS defaults), or
	// one added later with Seed(MenuUserGroup, ...).
	Group string
	// Version is /system/resource's version; "6.x" makes routes take
	// RouterOS 6's type=blackhole instead of blackhole=yes, traffic-flow
	// targets take address=IP:port instead of dst-address and port,
	// traffic-flow timeouts print as a clock ("00:30:00"), and switch chips
	// have no l3-hw-offloading.
	Version      string
	BoardName    string
	Architecture string
	// EmptyReply sends !empty before !done for a print that matches nothing,
	// as RouterOS 7.18 and later do.
	EmptyReply bool
	// Now is the emulator's clock (address-list timeouts, uptime).
	Now func() time.Time
	// TLS makes the listener speak API-SSL.
	TLS *tls.Config
	// MinActiveFlowTimeout makes /ip/traffic-flow refuse a shorter
	// active-flow-timeout, as RouterOS 6 releases before the change did
	// under 1m; 0 takes any.
	MinActiveFlowTimeout time.Duration
}

// DefaultConfiguration is a RouterOS 7.18 CHR with user admin/admin.
func DefaultConfiguration() Configuration {
	return Configuration{
		User: "admin", Password: "admin", Group: "full",
		Version: "7.18.2 (stable)", BoardName: "CHR", Architecture: "x86_64",
		EmptyReply: true, Now: time.Now,
	}
}

// FaultKind is what an injected fault does to a command.
type FaultKind int

const (
	// DropBeforeApply closes the connection once the command is read,
	// without acting on it.
	DropBeforeApply FaultKind = iota + 1
	// DropAfterApply acts on the command, then closes without replying.
	DropAfterApply
	// Stall acts on the command, then holds its reply for Fault.Duration
	// (or until the connection is closed).
	Stall
	// Trap replies !trap with Fault.Message without acting.
	Trap
	// Fatal replies !fatal with Fault.Message without acting, then closes.
	Fatal
)

// Fault is injected into the commands the emulator receives.
type Fault struct {
	Kind FaultKind
	// Match restricts the fault to commands containing it ("/add",
	// "address-list/add"); empty matches every command but /login.
	Match string
	// Skip lets that many matching commands through first.
	Skip int
	// Times is how many matching commands it hits; 0 means 1.
	Times    int
	Duration time.Duration
	Message  string
}

// Object is an item of a menu as a print shows it.
type Object struct {
	ID    string
	Props map[string]string
}

// Server is the emulated router.
type Server struct {
	cfg Configuration

	mu       sync.Mutex
	ln       net.Listener
	tables   map[string]*table
	settings map[string]*settings
	conns    map[*conn]struct{}
	faults   []*Fault
	commands []string
	empty    bool
	boot     time.Time
	stopped  bool
	down     bool
	addr     string // the listener's address while down

	traffic trafficState // Forward's compiled rules (traffic.go)

	logins   atomic.Int64
	accepted atomic.Int64
	wg       sync.WaitGroup
}

// maxCommandLog bounds the command log kept for tests.
const maxCommandLog = 100000

type conn struct {
	nc       net.Conn
	user     string
	done     chan struct{}
	closeOne sync.Once
}

func (c *conn) close() {
	c.closeOne.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

// New returns an emulator with the default users and groups; Start listens.
func New(cfg Configuration) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Group == "" {
		cfg.Group = "full"
	}
	s := &Server{cfg: cfg, conns: map[*conn]struct{}{}, empty: cfg.EmptyReply}
	s.reset()
	return s
}

// settings is a menu of one object without id, such as /ip/traffic-flow.
type settings struct {
	schema *schema
	props  map[string]string
}

func (s *Server) reset() {
	s.changedLocked()
	legacy := strings.HasPrefix(s.cfg.Version, "6.")
	s.tables = map[string]*table{}
	for menu, sc := range newSchemas(legacy) {
		t := &table{schema: sc, nextID: 1}
		if sc.kind == kindSwitch {
			t.nextID = 0 // the first switch chip is *0
		}
		s.tables[menu] = t
	}
	tf := trafficFlowSchema(legacy, s.cfg.MinActiveFlowTimeout)
	s.settings = map[string]*settings{MenuTrafficFlow: {schema: tf, props: maps.Clone(tf.defaults)}}
	s.boot = s.cfg.Now()
	for _, g := range []struct{ name, policy string }{{"read", PolicyRead}, {"write", PolicyWrite}, {"full", PolicyFull}} {
		s.addLocked(MenuUserGroup, map[string]string{"name": g.name, "policy": g.policy}, "")
	}
	s.addLocked(MenuUser, map[string]string{"name": s.cfg.User, "group": s.cfg.Group}, "")
}

// Start listens on 127.0.0.1 on a free port.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("emulator listen: %w", err)
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

// Down makes the router unreachable, as while it reboots: the listener
// closes (connection refused) and every connection drops. Up listens again
// on the same address.
func (s *Server) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil || s.down {
		return
	}
	s.down = true
	s.addr = s.ln.Addr().String()
	s.ln.Close()
	for c := range s.conns {
		c.close()
	}
}

// Up ends Down, listening on the same address again.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down || s.stopped {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("emulator listen again on %s: %w", s.addr, err)
	}
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	s.ln, s.down = ln, false
	s.wg.Add(1)
	go s.accept(ln)
	return nil
}

// Addr is host:port of the listener.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return s.addr
	}
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop closes the listener and every connection and waits for them.
func (s *Server) Stop() {
	s.mu.Lock()
	s.stopped = true
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Restart is a reboot: every connection drops, address-list entries with a
// timeout vanish (static ones stay), rule counters return to zero, uptime
// starts again. The listener stays on the same address.
func (s *Server) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.close()
	}
	s.changedLocked()
	for _, t := range s.tables {
		kept := t.objs[:0]
		for _, o := range t.objs {
			if o.expires.IsZero() {
				o.packets, o.bytes = 0, 0
				kept = append(kept, o)
			}
		}
		t.objs = kept
	}
	s.boot = s.cfg.Now()
}

// Wipe empties every menu but the users, like a router reset to no
// configuration, and drops every connection.
func (s *Server) Wipe() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.close()
	}
	s.reset()
}

// SetEmptyReply switches !empty for a print matching nothing (RouterOS 7.18+).
func (s *Server) SetEmptyReply(on bool) {
	s.mu.Lock()
	s.empty = on
	s.mu.Unlock()
}

// Inject adds a fault; faults apply in the order they were added.
func (s *Server) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// DropAfter drops the connection at the command after the next n commands
// (before acting on it).
func (s *Server) DropAfter(n int) { s.Inject(Fault{Kind: DropBeforeApply, Skip: n}) }

// StallNext holds the replies of the next k commands for d.
func (s *Server) StallNext(k int, d time.Duration) {
	s.Inject(Fault{Kind: Stall, Times: k, Duration: d})
}

// TrapNext answers the next k commands with !trap message.
func (s *Server) TrapNext(k int, message string) {
	s.Inject(Fault{Kind: Trap, Times: k, Message: message})
}

// Objects lists the items of a menu as a print shows them now.
func (s *Server) Objects(menu string) []Object {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.settings[menu]; st != nil {
		return []Object{{Props: maps.Clone(st.props)}}
	}
	t := s.tables[menu]
	if t == nil {
		return nil
	}
	now := s.expireLocked()
	out := make([]Object, 0, len(t.objs))
	for _, o := range t.objs {
		out = append(out, Object{ID: formatID(o.id), Props: t.render(o, now)})
	}
	return out
}

// Seed adds an object directly, as another admin would (no faults, no
// command counted): foreign entries, rules, users, groups.
func (s *Server) Seed(menu string, props map[string]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tables[menu] == nil {
		return "", fmt.Errorf("no menu %s", menu)
	}
	s.expireLocked()
	clean := make(map[string]string, len(props))
	for k, v := range props {
		if k != "place-before" {
			clean[k] = v
		}
	}
	return s.addLocked(menu, clean, props["place-before"])
}

// SetTrafficFlow changes /ip/traffic-flow as the API's set does ("enabled",
// "active-flow-timeout", "inactive-flow-timeout", "cache-entries", ...),
// with the same checks, whatever the user's policies.
func (s *Server) SetTrafficFlow(props map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings[MenuTrafficFlow].set(props)
}

// set applies the writable properties, all or none.
func (st *settings) set(attrs map[string]string) error {
	changes := map[string]string{}
	for k, v := range attrs {
		if k == ".id" || k == "numbers" {
			continue
		}
		if !st.schema.writable[k] {
			return fmt.Errorf("unknown parameter %s", k)
		}
		nv, err := st.schema.normalize(k, v)
		if err != nil {
			return err
		}
		changes[k] = nv
	}
	maps.Copy(st.props, changes)
	return nil
}

// AddCounters bumps a raw rule's packet and byte counters, as dropped
// traffic would.
func (s *Server) AddCounters(menu, id string, packets, bytes uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[menu]
	if t == nil {
		return fmt.Errorf("no menu %s", menu)
	}
	_, o := t.find(id)
	if o == nil {
		return fmt.Errorf("no item %s in %s", id, menu)
	}
	o.packets += packets
	o.bytes += bytes
	return nil
}

// Commands is the log of command words received (login included), oldest first.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// CountCommands counts received commands containing substr.
func (s *Server) CountCommands(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.commands {
		if strings.Contains(c, substr) {
			n++
		}
	}
	return n
}

// Connections is the number of open API connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Accepted counts connections accepted since start.
func (s *Server) Accepted() int { return int(s.accepted.Load()) }

// Logins counts successful logins since start.
func (s *Server) Logins() int { return int(s.logins.Load()) }

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		c := &conn{nc: nc, done: make(chan struct{})}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.accepted.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c *conn) {
	defer s.wg.Done()
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(c.nc)
	for {
		words, err := ReadSentence(br)
		if err != nil {
			return
		}
		if len(words) == 0 {
			continue // the API says to ignore empty sentences
		}
		if !s.handle(c, words) {
			return
		}
	}
}

// request is a parsed command sentence.
type request struct {
	command string
	tag     string
	attrs   map[string]string
	queries []string
}

func parseRequest(words []string) request {
	r := request{command: words[0], attrs: map[string]string{}}
	for _, w := range words[1:] {
		switch {
		case strings.HasPrefix(w, ".tag="):
			r.tag = w[len(".tag="):]
		case strings.HasPrefix(w, "="):
			k, v, _ := strings.Cut(w[1:], "=")
			r.attrs[k] = v
		case strings.HasPrefix(w, "?"):
			r.queries = append(r.queries, w[1:])
		}
	}
	return r
}

// reply accumulates the sentences answering one command.
type reply struct {
	tag string
	buf []byte
}

func (r *reply) sentence(words ...string) {
	if r.tag != "" {
		words = append(words, ".tag="+r.tag)
	}
	r.buf = AppendSentence(r.buf, words...)
}

func (r *reply) trap(message string) {
	r.sentence("!trap", "=message="+message)
	r.sentence("!done")
}

// handle answers one command; false closes the connection.
func (s *Server) handle(c *conn, words []string) bool {
	req := parseRequest(words)
	rep := &reply{tag: req.tag}

	s.mu.Lock()
	if len(s.commands) < maxCommandLog {
		s.commands = append(s.commands, req.command)
	}
	var fault *Fault
	if c.user != "" || req.command == "/login" {
		fault = s.takeFaultLocked(req.command)
	}
	s.mu.Unlock()

	if c.user == "" && req.command != "/login" {
		c.nc.Write(AppendSentence(nil, "!fatal", "not logged in"))
		return false
	}
	if fault != nil {
		switch fault.Kind {
		case DropBeforeApply:
			return false
		case Trap:
			msg := fault.Message
			if msg == "" {
				msg = "failure: injected"
			}
			rep.trap(msg)
			_, err := c.nc.Write(rep.buf)
			return err == nil
		case Fatal:
			msg := fault.Message
			if msg == "" {
				msg = "session terminated"
			}
			c.nc.Write(AppendSentence(nil, "!fatal", msg))
			return false
		}
	}

	keep := s.execute(c, req, rep)

	if fault != nil {
		switch fault.Kind {
		case DropAfterApply:
			return false
		case Stall:
			t := time.NewTimer(fault.Duration)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
				return false
			}
		}
	}
	if _, err := c.nc.Write(rep.buf); err != nil {
		return false
	}
	return keep
}

func (s *Server) takeFaultLocked(command string) *Fault {
	for i, f := range s.faults {
		if f.Match == "" && command == "/login" {
			continue
		}
		if !strings.Contains(command, f.Match) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			return nil
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}

// execute acts on a command and writes its reply into rep; false means the
// connection ends after the reply.
func (s *Server) execute(c *conn, req request, rep *reply) bool {
	switch req.command {
	case "/login":
		if req.attrs["name"] == s.cfg.User && req.attrs["password"] == s.cfg.Password {
			c.user = req.attrs["name"]
			s.logins.Add(1)
			rep.sentence("!done")
		} else {
			rep.trap("invalid user name or password (6)")
		}
		return true
	case "/quit":
		rep.sentence("!fatal", "session terminated on request")
		return false
	case "/cancel":
		rep.sentence("!done")
		return true
	}
	i := strings.LastIndexByte(req.command, '/')
	menu, verb := req.command[:i], req.command[i+1:]

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.expireLocked()
	policy := s.policyLocked(c.user)
	if !policy["api"] {
		rep.trap("not enough permissions (9)")
		return true
	}

	if menu == MenuResource {
		if verb != "print" && verb != "getall" {
			rep.trap("no such command")
			return true
		}
		s.printResource(req, rep, now)
		return true
	}
	if st := s.settings[menu]; st != nil {
		s.executeSettings(st, verb, req, rep, policy)
		return true
	}
	t := s.tables[menu]
	if t == nil {
		dir := menu[strings.LastIndexByte(menu, '/')+1:]
		rep.sentence("!trap", "=category=0", "=message=no such command or directory ("+dir+")")
		rep.trap("no such command prefix")
		return true
	}
	needs := "write"
	if verb == "print" || verb == "getall" {
		needs = "read"
	}
	if !policy[needs] || (t.schema.kind == kindUser || t.schema.kind == kindGroup) && needs == "write" && !policy["policy"] {
		rep.trap("not enough permissions (9)")
		return true
	}
	if t.schema.fixed && (verb == "add" || verb == "remove") {
		rep.trap("no such command")
		return true
	}
	switch verb {
	case "print", "getall":
		s.print(t, req, rep, now)
	case "add":
		props := map[string]string{}
		for k, v := range req.attrs {
			if k != "place-before" {
				props[k] = v
			}
		}
		id, err := s.addLocked(menu, props, req.attrs["place-before"])
		if err != nil {
			rep.trap(err.Error())
			return true
		}
		rep.sentence("!done", "=ret="+id)
	case "remove":
		if err := s.removeLocked(t, idList(req.attrs)); err != nil {
			rep.trap(err.Error())
			return true
		}
		rep.sentence("!done")
	case "set":
		if err := s.setLocked(t, idList(req.attrs), req.attrs, now); err != nil {
			rep.trap(err.Error())
			return true
		}
		rep.sentence("!done")
	default:
		rep.trap("no such command")
	}
	return true
}

// executeSettings answers print and set on a settings menu.
func (s *Server) executeSettings(st *settings, verb string, req request, rep *reply, policy map[string]bool) {
	switch verb {
	case "print", "getall":
		if !policy["read"] {
			rep.trap("not enough permissions (9)")
			return
		}
		rep.sentence(renderWords("!re", st.props, proplist(req.attrs))...)
		rep.sentence("!done")
	case "set":
		if !policy["write"] {
			rep.trap("not enough permissions (9)")
			return
		}
		if err := st.set(req.attrs); err != nil {
			rep.trap(err.Error())
			return
		}
		rep.sentence("!done")
	default:
		rep.trap("no such command")
	}
}

func idList(attrs map[string]string) []string {
	v, ok := attrs[".id"]
	if !ok {
		v = attrs["numbers"]
	}
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func (s *Server) policyLocked(user string) map[string]bool {
	var group string
	for _, o := range s.tables[MenuUser].objs {
		if o.props["name"] == user {
			group = o.props["group"]
		}
	}
	out := map[string]bool{}
	for _, o := range s.tables[MenuUserGroup].objs {
		if o.props["name"] == group {
			for _, p := range strings.Split(o.props["policy"], ",") {
				if p != "" && p[0] != '!' {
					out[p] = true
				}
			}
		}
	}
	return out
}

func (s *Server) printResource(req request, rep *reply, now time.Time) {
	m := map[string]string{
		"uptime":            rosfmt.FormatDuration(now.Sub(s.boot)),
		"version":           s.cfg.Version,
		"build-time":        "2025-03-11 11:59:04",
		"free-memory":       "912345088",
		"total-memory":      "1073741824",
		"cpu":               "QEMU",
		"cpu-count":         "2",
		"cpu-frequency":     "2400",
		"cpu-load":          "1",
		"free-hdd-space":    "85000000",
		"total-hdd-space":   "134217728",
		"architecture-name": s.cfg.Architecture,
		"board-name":        s.cfg.BoardName,
		"platform":          "MikroTik",
	}
	rep.sentence(renderWords("!re", m, proplist(req.attrs))...)
	rep.sentence("!done")
}

func proplist(attrs map[string]string) map[string]bool {
	v, ok := attrs[".proplist"]
	if !ok {
		return nil
	}
	return set(strings.Split(v, ",")...)
}

func renderWords(word string, m map[string]string, only map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if only == nil || only[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := []string{word}
	for _, k := range keys {
		out = append(out, "="+k+"="+m[k])
	}
	return out
}

func (s *Server) print(t *table, req request, rep *reply, now time.Time) {
	only := proplist(req.attrs)
	n := 0
	var sentences [][]string
	for _, o := range t.objs {
		m := t.render(o, now)
		ok, err := matchQuery(t.schema, m, req.queries)
		if err != nil {
			rep.trap(err.Error())
			return
		}
		if !ok {
			continue
		}
		n++
		sentences = append(sentences, renderWords("!re", m, only))
	}
	if _, ok := req.attrs["count-only"]; ok {
		rep.sentence("!done", "=ret="+strconv.Itoa(n))
		return
	}
	for _, w := range sentences {
		rep.sentence(w...)
	}
	if n == 0 && s.empty {
		rep.sentence("!empty")
	}
	rep.sentence("!done")
}

// matchQuery evaluates the API query words on a printed object: each word
// pushes a result on a stack, "?#" words combine them, and the object
// matches when every value left on the stack is true.
func matchQuery(sc *schema, m map[string]string, queries []string) (bool, error) {
	var st []bool
	pop := func() bool {
		if len(st) == 0 {
			return false
		}
		v := st[len(st)-1]
		st = st[:len(st)-1]
		return v
	}
	for _, q := range queries {
		switch {
		case strings.HasPrefix(q, "#"):
			for _, op := range q[1:] {
				switch op {
				case '!':
					st = append(st, !pop())
				case '&':
					a, b := pop(), pop()
					st = append(st, a && b)
				case '|':
					a, b := pop(), pop()
					st = append(st, a || b)
				case '.':
					v := pop()
					st = append(st, v, v)
				default:
					return false, fmt.Errorf("unknown query operation %q", op)
				}
			}
		case strings.HasPrefix(q, "-"):
			_, has := m[q[1:]]
			st = append(st, !has)
		case strings.HasPrefix(q, "<") || strings.HasPrefix(q, ">"):
			k, v, _ := strings.Cut(q[1:], "=")
			a, b := m[k], v
			var less bool
			if x, err1 := strconv.ParseInt(a, 10, 64); err1 == nil {
				if y, err2 := strconv.ParseInt(b, 10, 64); err2 == nil {
					if q[0] == '<' {
						less = x < y
					} else {
						less = x > y
					}
					st = append(st, less)
					continue
				}
			}
			if q[0] == '<' {
				st = append(st, a < b)
			} else {
				st = append(st, a > b)
			}
		default:
			k, v, hasValue := strings.Cut(q, "=")
			got, has := m[k]
			if !hasValue {
				st = append(st, has)
				continue
			}
			if sc.bools[k] {
				want, err := rosfmt.ParseBool(v)
				if err == nil {
					gb, _ := rosfmt.ParseBool(got)
					st = append(st, has && gb == want)
					continue
				}
			}
			st = append(st, has && got == v)
		}
	}
	for _, v := range st {
		if !v {
			return false, nil
		}
	}
	return true, nil
}

// expireLocked removes address-list entries whose timeout ran out and
// returns the clock's now.
func (s *Server) expireLocked() time.Time {
	now := s.cfg.Now()
	for _, t := range s.tables {
		if t.schema.kind != kindAddressList {
			continue
		}
		kept := t.objs[:0]
		for _, o := range t.objs {
			if o.expires.IsZero() || now.Before(o.expires) {
				kept = append(kept, o)
			}
		}
		t.objs = kept
	}
	return now
}

func (s *Server) addLocked(menu string, props map[string]string, placeBefore string) (string, error) {
	s.changedLocked()
	t := s.tables[menu]
	sc := t.schema
	o := &object{props: map[string]string{}, created: s.cfg.Now()}
	for k, v := range sc.defaults {
		o.props[k] = v
	}
	for k, v := range props {
		if !sc.writable[k] && !sc.seedable[k] {
			return "", fmt.Errorf("unknown parameter %s", k)
		}
		nv, err := sc.normalize(k, v)
		if err != nil {
			return "", err
		}
		o.props[k] = nv
	}
	for _, k := range sc.required {
		if o.props[k] == "" {
			return "", fmt.Errorf("failure: missing value(s) of argument(s) %s", k)
		}
	}
	if err := s.applyTimeout(o, sc); err != nil {
		return "", err
	}
	if err := t.checkDuplicate(o); err != nil {
		return "", err
	}
	pos := len(t.objs)
	if placeBefore != "" {
		if sc.kind != kindRaw {
			return "", fmt.Errorf("unknown parameter place-before")
		}
		i, _ := t.find(placeBefore)
		if i < 0 {
			return "", errors.New("no such item")
		}
		pos = i
	}
	o.id = t.nextID
	t.nextID++
	t.objs = append(t.objs, nil)
	copy(t.objs[pos+1:], t.objs[pos:])
	t.objs[pos] = o
	return formatID(o.id), nil
}

// applyTimeout turns the timeout property into an expiry on the clock.
func (s *Server) applyTimeout(o *object, sc *schema) error {
	v, ok := o.props["timeout"]
	if !ok || sc.kind != kindAddressList {
		return nil
	}
	d, err := rosfmt.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("invalid value for argument timeout")
	}
	if d <= 0 {
		o.expires = time.Time{}
		delete(o.props, "timeout")
		return nil
	}
	o.expires = s.cfg.Now().Add(d)
	return nil
}

func (t *table) checkDuplicate(o *object) error {
	switch t.schema.kind {
	case kindAddressList:
		for _, x := range t.objs {
			if x != o && x.props["list"] == o.props["list"] && x.props["address"] == o.props["address"] {
				return errors.New("failure: already have such entry")
			}
		}
	case kindUser, kindGroup:
		for _, x := range t.objs {
			if x != o && x.props["name"] == o.props["name"] {
				return errors.New("failure: already have such name")
			}
		}
	}
	return nil
}

func (s *Server) removeLocked(t *table, ids []string) error {
	s.changedLocked()
	if len(ids) == 0 {
		return errors.New("no such item")
	}
	for _, id := range ids {
		if i, _ := t.find(id); i < 0 {
			return errors.New("no such item")
		}
	}
	for _, id := range ids {
		i, _ := t.find(id)
		t.objs = append(t.objs[:i], t.objs[i+1:]...)
	}
	return nil
}

func (s *Server) setLocked(t *table, ids []string, attrs map[string]string, now time.Time) error {
	s.changedLocked()
	if len(ids) == 0 {
		return errors.New("no such item")
	}
	var objs []*object
	for _, id := range ids {
		_, o := t.find(id)
		if o == nil {
			return errors.New("no such item")
		}
		objs = append(objs, o)
	}
	changes := map[string]string{}
	for k, v := range attrs {
		if k == ".id" || k == "numbers" {
			continue
		}
		if !t.schema.writable[k] {
			return fmt.Errorf("unknown parameter %s", k)
		}
		nv, err := t.schema.normalize(k, v)
		if err != nil {
			return err
		}
		changes[k] = nv
	}
	for _, o := range objs {
		old := o.props
		o.props = make(map[string]string, len(old))
		for k, v := range old {
			o.props[k] = v
		}
		for k, v := range changes {
			o.props[k] = v
		}
		if err := t.checkDuplicate(o); err != nil {
			o.props = old
			return err
		}
		if _, ok := changes["timeout"]; ok {
			if err := s.applyTimeout(o, t.schema); err != nil {
				o.props = old
				return err
			}
		}
	}
	return nil
}
