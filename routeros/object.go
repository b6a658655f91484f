package routeros

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

// Action is what a ban does on the router: the kind of object flowshield
// puts there for it. It is the one Action of flowshield: the ACTION
// variable, the ban manager and the router client all speak it.
type Action string

const (
	// ActionNone puts nothing on the router: detect and notify only.
	ActionNone Action = "none"
	// ActionFilter is an /ip(v6)/firewall/raw rule in prerouting, placed
	// first, matching the victim and the attack's fingerprint only.
	ActionFilter Action = "filter"
	// ActionAddressList is an /ip(v6)/firewall/address-list entry with a
	// timeout, so the router expires it by itself.
	ActionAddressList Action = "address-list"
	// ActionRawDrop is an /ip(v6)/firewall/raw rule in prerouting, placed first.
	ActionRawDrop Action = "raw-drop"
	// ActionBlackhole is a blackhole route for a /32 or /128.
	ActionBlackhole Action = "blackhole"
)

// JoinActions is actions as text, sep between them.
func JoinActions(actions []Action, sep string) string {
	names := make([]string, len(actions))
	for i, a := range actions {
		names[i] = string(a)
	}
	return strings.Join(names, sep)
}

// CommentPrefix starts the comment of every object flowshield creates; it
// never changes or removes an object without it.
const CommentPrefix = "flowshield"

// Object is one thing flowshield manages on a router.
type Object struct {
	Action Action
	Prefix netip.Prefix
	// Direction is seen from the protected host: In bans the victim of an
	// incoming attack (dst-address), Out a local host sending one.
	Direction detect.Direction
	// List is the address-list name (address-list only); empty in Add
	// means the configured ListIn/ListOut for Direction.
	List    string
	Comment string
	// Timeout is the address-list timeout: wanted in Add, remaining in List.
	Timeout time.Duration
	// Match is a filter rule's matchers beyond the address (filter only).
	Match Match
	// ID is the router's id ("*1A"), filled by Add and List.
	ID string
	// Packets and Bytes are a raw rule's counters, filled by List.
	Packets, Bytes uint64
	Disabled       bool
}

// Key identifies the object's place on the router regardless of id,
// comment and timeout: what reconciliation compares desired against
// actual bans by. An address-list entry's list follows from its direction
// (List only reads the two configured lists), so the list is not part of
// it. A blackhole route has no direction (it drops both ways), so its key
// has none. A filter rule's matchers are part of it: one victim has a rule
// per vector of its attack.
func (o Object) Key() string {
	p := o.Prefix.Masked()
	switch o.Action {
	case ActionBlackhole:
		return fmt.Sprintf("%s %s", o.Action, p)
	case ActionFilter:
		return fmt.Sprintf("%s %s %s %s", o.Action, o.Direction, p, o.Match)
	}
	return fmt.Sprintf("%s %s %s", o.Action, o.Direction, p)
}

func (o Object) String() string {
	s := fmt.Sprintf("%s %s %s", o.Action, o.Direction, o.Prefix)
	if !o.Match.IsZero() {
		s += " " + o.Match.String()
	}
	if o.ID != "" {
		s += " " + o.ID
	}
	return s
}

// maxCommentLength keeps comments readable in WinBox and bounded.
const maxCommentLength = 200

// IsManaged says whether a comment marks an object as flowshield's.
func IsManaged(comment string) bool {
	if !strings.HasPrefix(comment, CommentPrefix) {
		return false
	}
	rest := comment[len(CommentPrefix):]
	return rest == "" || rest[0] == ' '
}

// clean drops control characters (a newline in a comment breaks the
// router's export) and bounds the length.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxCommentLength {
		s = s[:maxCommentLength]
		for !utf8ValidEnd(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

func utf8ValidEnd(s string) bool {
	return strings.ToValidUTF8(s, "\x00") == s
}

// parsePrefix reads an address as RouterOS prints it: a bare address
// ("192.0.2.1", "2001:db8::1") or a prefix ("2001:db8::1/128").
func parsePrefix(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %q: %w", s, err)
	}
	return p.Masked(), nil
}

// formatAddress writes a prefix for an address-list or firewall rule:
// a single address bare, else with its length.
func formatAddress(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.Masked().String()
}

var errBadObject = errors.New("bad object")

func (o Object) validate() error {
	if !o.Prefix.IsValid() {
		return fmt.Errorf("%w: no prefix", errBadObject)
	}
	if o.Prefix.Addr().Is4In6() {
		return fmt.Errorf("%w: IPv4-mapped IPv6 prefix %s", errBadObject, o.Prefix)
	}
	if !IsManaged(o.Comment) {
		return fmt.Errorf("%w: comment %q does not start with %q", errBadObject, o.Comment, CommentPrefix)
	}
	switch o.Action {
	case ActionAddressList, ActionRawDrop:
	case ActionFilter:
		if o.Match.IsZero() {
			return fmt.Errorf("%w: filter for %s without a matcher (that is raw-drop)", errBadObject, o.Prefix)
		}
		if o.Match.Fragment && o.Prefix.Addr().Is6() {
			return fmt.Errorf("%w: filter for %s: /ipv6/firewall/raw has no fragment matcher", errBadObject, o.Prefix)
		}
	case ActionBlackhole:
		if !o.Prefix.IsSingleIP() {
			return fmt.Errorf("%w: blackhole for %s: only a /32 or /128", errBadObject, o.Prefix)
		}
	default:
		return fmt.Errorf("%w: unknown action %q", errBadObject, o.Action)
	}
	return nil
}

// Match is what a filter rule matches beyond the victim's address: one
// vector of the attack's fingerprint in RouterOS raw matchers. Every field
// at its zero value matches any packet. It is comparable, so objects and
// keys may hold it.
type Match struct {
	// Protocol as RouterOS names it ("udp", "tcp", "icmp", "icmpv6") or
	// its number; "" any.
	Protocol string
	SrcPort  uint16
	// DstPorts is RouterOS's port list, ascending: "80,443". "" any.
	DstPorts string
	// TCPFlags is RouterOS's tcp-flags: "syn,!ack". "" any.
	TCPFlags string
	// Fragment: non-first IPv4 fragments only (fragment=yes).
	Fragment bool
	// SizeMin and SizeMax bound the IP packet size (packet-size=);
	// SizeMax 0: any size.
	SizeMin, SizeMax uint16
}

// IsZero reports whether m matches every packet.
func (m Match) IsZero() bool { return m == Match{} }

// Words are m's properties as /ip/firewall/raw/add takes them (without
// the leading "="), in a fixed order: "protocol=udp", "src-port=53",
// "dst-port=80,443", "tcp-flags=syn,!ack", "fragment=yes",
// "packet-size=1200-1500". RouterOS v6 and v7 read them alike.
func (m Match) Words() []string {
	var w []string
	if m.Protocol != "" {
		w = append(w, "protocol="+m.Protocol)
	}
	if m.SrcPort != 0 {
		w = append(w, "src-port="+strconv.FormatUint(uint64(m.SrcPort), 10))
	}
	if m.DstPorts != "" {
		w = append(w, "dst-port="+m.DstPorts)
	}
	if m.TCPFlags != "" {
		w = append(w, "tcp-flags="+m.TCPFlags)
	}
	if m.Fragment {
		w = append(w, "fragment=yes")
	}
	if m.SizeMax != 0 {
		w = append(w, fmt.Sprintf("packet-size=%d-%d", m.SizeMin, m.SizeMax))
	}
	return w
}

// String is m's words joined by spaces, as the RouterOS CLI writes them.
func (m Match) String() string { return strings.Join(m.Words(), " ") }

// MatchOf turns a fingerprint vector into a filter's matchers for an
// address of the given family; false when no rule can match the vector:
// a vector that matches any packet (a filter would be a raw-drop), or an
// IPv6 fragment vector (/ipv6/firewall/raw has no fragment matcher).
//
// Port 0 is no port (the detector makes portless TCP and UDP records a
// fragment vector): a dst-port=0 would match nothing, so it is left out.
func MatchOf(v *detect.Vector, ipv6 bool) (Match, bool) {
	m := Match{Protocol: v.ProtocolName(), SrcPort: v.SrcPort, TCPFlags: v.TCPFlagsText(), Fragment: v.Fragment}
	var ports []string
	for _, p := range v.DstPorts {
		if p != 0 {
			ports = append(ports, strconv.FormatUint(uint64(p), 10))
		}
	}
	m.DstPorts = strings.Join(ports, ",")
	if v.SizeMax != 0 {
		m.SizeMin, m.SizeMax = v.SizeMin, v.SizeMax
	}
	if m.IsZero() || (m.Fragment && ipv6) {
		return Match{}, false
	}
	return m, true
}

// matchOf reads a printed raw rule's matchers; ok false when it holds one
// flowshield does not make (or a value it cannot read): not a filter rule
// of flowshield's.
func matchOf(item map[string]string) (m Match, ok bool) {
	m.Protocol = item["protocol"]
	if v := item["src-port"]; v != "" {
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 {
			return Match{}, false
		}
		m.SrcPort = uint16(p)
	}
	m.DstPorts = item["dst-port"]
	m.TCPFlags = item["tcp-flags"]
	if v := item["fragment"]; v != "" {
		f, err := rosfmt.ParseBool(v)
		if err != nil {
			return Match{}, false
		}
		m.Fragment = f
	}
	if v := item["packet-size"]; v != "" {
		lo, hi, isRange := strings.Cut(v, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || b == 0 || a > b {
			return Match{}, false
		}
		m.SizeMin, m.SizeMax = uint16(a), uint16(b)
	}
	return m, true
}
