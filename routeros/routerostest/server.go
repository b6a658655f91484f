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
// Version is "6.x", and the router's own addresses, /ip/address and
// /ipv6/address (Seed them). Forward passes traffic through raw prerouting and the
// routes as RouterOS would, counting on the raw rules it matches, so a
// flow generator can leave out what a ban drops (traffic.go).
//
// Files: server.go the server, its lifecycle and what tests read of it;
// faults.go fault injection; wire.go the API's sentences; conn.go the
// connections; commands.go what each command does; menus.go the menus'
// schemas and tables.go their objects; traffic.go and matchers.go the
// packet path.
package routerostest

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Configuration of an emulated router.
type Configuration struct {
	User, Password string
	// Group of User: "full", "write" or "read" (the RouterOS defaults), or
	// one added later with Seed(MenuUserGroup, ...).
	Group string
	// Version is /system/resource's version; "6.x" makes routes take
	// RouterOS 6's type=blackhole instead of blackhole=yes (IPv6 routes
	// only type=unreachable) and refuse blackhole=yes, traffic-flow
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
	s.restartLocked()
}

func (s *Server) restartLocked() {
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

// Upgrade is a reboot into another RouterOS version ("7.18.2 (stable)"
// after "6.49.18 (long-term)", or back): what Restart does, then every
// menu takes the new version's syntax and its objects are converted as
// the upgrade does (a type=blackhole route becomes blackhole=yes, an IPv6
// type=unreachable one too; traffic-flow targets and timers change form).
func (s *Server) Upgrade(version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.restartLocked()
	s.cfg.Version = version
	legacy := strings.HasPrefix(version, "6.")
	for menu, sc := range newSchemas(legacy) {
		t := s.tables[menu]
		for _, o := range t.objs {
			o.props = migrate(sc, o.props)
		}
		t.schema = sc
	}
	st := s.settings[MenuTrafficFlow]
	st.schema = trafficFlowSchema(legacy, s.cfg.MinActiveFlowTimeout)
	st.props = migrate(st.schema, st.props)
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
