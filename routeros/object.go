package routeros

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"

	"github.com/flowshield/flowshield/detect"
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
// has none.
func (o Object) Key() string {
	p := o.Prefix.Masked()
	if o.Action == ActionBlackhole {
		return fmt.Sprintf("%s %s", o.Action, p)
	}
	return fmt.Sprintf("%s %s %s", o.Action, o.Direction, p)
}

func (o Object) String() string {
	s := fmt.Sprintf("%s %s %s", o.Action, o.Direction, o.Prefix)
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
	case ActionBlackhole:
		if !o.Prefix.IsSingleIP() {
			return fmt.Errorf("%w: blackhole for %s: only a /32 or /128", errBadObject, o.Prefix)
		}
	default:
		return fmt.Errorf("%w: unknown action %q", errBadObject, o.Action)
	}
	return nil
}
