package notify

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/mitigation"
	"github.com/flowshield/flowshield/routeros"
)

// Kind is the contract's webhook "event" value.
type Kind string

const (
	KindAttackStart   Kind = "attack_start"
	KindAttackDetails Kind = "attack_details"
	KindBan           Kind = "ban"
	KindBanSkipped    Kind = "ban_skipped"
	KindUnban         Kind = "unban"
	KindAttackEnd     Kind = "attack_end"
)

// Event is one notification, the contract's webhook event. Its JSON form
// (MarshalJSON) has exactly the contract's fields.
type Event struct {
	Kind      Kind
	Reason    string
	Time      time.Time
	AttackID  string
	IP        netip.Addr // invalid for group-scope attacks and bans wider than one host
	Direction detect.Direction
	Type      string // attack type, e.g. "udp_flood"; "" when not known
	Protocol  string
	PPS, BPS  float64
	Flows     float64
	PeakPPS   float64
	PeakBPS   float64
	Actions   []routeros.Action // the ban's router actions
	Details   string            // the contract's details text

	// Prefix is what a ban covers; not part of the webhook JSON (a ban of a
	// whole prefix has ip null and names the prefix in Details). The notify
	// script gets it as its IP argument when it is wider than one host.
	Prefix netip.Prefix
}

// wireEvent is the contract's webhook JSON.
type wireEvent struct {
	Event     Kind              `json:"event"`
	Reason    string            `json:"reason"`
	Time      time.Time         `json:"time"`
	AttackID  string            `json:"attack_id"`
	IP        *string           `json:"ip"`
	Direction string            `json:"direction"`
	Type      string            `json:"type"`
	Protocol  string            `json:"protocol"`
	PPS       float64           `json:"pps"`
	BPS       float64           `json:"bps"`
	Flows     float64           `json:"flows"`
	PeakPPS   float64           `json:"peak_pps"`
	PeakBPS   float64           `json:"peak_bps"`
	Actions   []routeros.Action `json:"actions"`
	Details   string            `json:"details"`
}

// MarshalJSON writes the contract's webhook event: ip a bare address or
// null, direction in|out, time RFC 3339 in UTC, actions never null.
func (e Event) MarshalJSON() ([]byte, error) {
	w := wireEvent{
		Event: e.Kind, Reason: e.Reason, Time: e.Time.UTC(), AttackID: e.AttackID,
		Direction: e.Direction.String(), Type: e.Type, Protocol: e.Protocol,
		PPS: e.PPS, BPS: e.BPS, Flows: e.Flows, PeakPPS: e.PeakPPS, PeakBPS: e.PeakBPS,
		Actions: e.Actions, Details: e.Details,
	}
	if e.IP.IsValid() {
		s := e.IP.Unmap().String()
		w.IP = &s
	}
	if w.Actions == nil {
		w.Actions = []routeros.Action{}
	}
	return json.Marshal(w)
}

// Target is the script's IP argument: the host, or a ban's prefix when it
// is wider than one host; "" when there is neither (group-scope attacks).
func (e Event) Target() string {
	if e.IP.IsValid() {
		return e.IP.Unmap().String()
	}
	if e.Prefix.IsValid() {
		return e.Prefix.String()
	}
	return ""
}

// FromDetect converts a detector event. AttackUpdate is not notified
// (ok false): it comes every few seconds while an attack goes on.
func FromDetect(ev detect.Event) (Event, bool) {
	var k Kind
	switch ev.Kind {
	case detect.AttackStart:
		k = KindAttackStart
	case detect.AttackDetails:
		k = KindAttackDetails
	case detect.AttackEnd:
		k = KindAttackEnd
	default:
		return Event{}, false
	}
	a := ev.Attack
	e := fromAttack(a)
	e.Kind, e.Time, e.Reason = k, ev.Time, a.Threshold
	if k == KindAttackDetails || k == KindAttackEnd {
		e.Details = a.Details
	}
	if e.Details == "" {
		e.Details = summary(a)
	}
	return e, true
}

// FromMitigation converts a ban manager event. Reason is the manager's:
// the attack type for a ban, "manual", "expired", "whitelist", "max_bans".
func FromMitigation(ev mitigation.Event) Event {
	b, a := ev.Ban, ev.Attack
	e := fromAttack(a)
	e.Kind, e.Time, e.Reason = Kind(ev.Kind), ev.Time, ev.Reason
	e.Direction = b.Direction
	e.Actions = slices.Clone(b.Actions)
	if e.AttackID == "" {
		e.AttackID = b.AttackID
	}
	if e.Type == "" && b.AttackID != "" && !b.Manual {
		e.Type = b.Reason // the manager's ban reason is its attack's type
	}
	if b.Prefix.IsValid() {
		p := b.Prefix.Masked()
		e.Prefix = p
		e.IP = netip.Addr{} // a wider ban is named in Details and the script's IP argument
		if p.IsSingleIP() {
			e.IP = p.Addr().Unmap()
		}
	}
	switch {
	case a.Details != "":
		e.Details = a.Details // the attack's full text once known
	case a.ID != "":
		e.Details = summary(a)
	default:
		e.Details = banSummary(ev)
	}
	return e
}

func fromAttack(a detect.Attack) Event {
	e := Event{
		AttackID: a.ID, Direction: a.Direction, Type: a.Type, Protocol: a.Protocol,
		PPS: a.PPS, BPS: a.BPS, Flows: a.Flows, PeakPPS: a.PeakPPS, PeakBPS: a.PeakBPS,
	}
	if a.Scope != detect.ScopeGroup && a.IP.IsValid() {
		e.IP = a.IP.Unmap()
	}
	return e
}

func dirWord(d detect.Direction) string {
	if d == detect.Out {
		return "outgoing"
	}
	return "incoming"
}

// summary is a short details text for events that come before the
// detector's full text (a ban is made at the attack's start): the same
// first lines as the detector's, so scripts that grep them keep working.
func summary(a detect.Attack) string {
	if a.ID == "" {
		return ""
	}
	var b strings.Builder
	if a.Scope == detect.ScopeGroup {
		fmt.Fprintf(&b, "Group: %s\n", a.Group)
	} else {
		fmt.Fprintf(&b, "IP: %s\n", a.IP)
		if a.Group != "" {
			fmt.Fprintf(&b, "Hostgroup: %s\n", a.Group)
		}
	}
	fmt.Fprintf(&b, "Attack type: %s\n", a.Type)
	fmt.Fprintf(&b, "Initial attack power: %.0f packets per second\n", a.InitialPPS)
	fmt.Fprintf(&b, "Peak attack power: %.0f packets per second\n", a.PeakPPS)
	fmt.Fprintf(&b, "Initial attack bandwidth: %.0f mbps\n", a.InitialBPS/1e6)
	fmt.Fprintf(&b, "Peak attack bandwidth: %.0f mbps\n", a.PeakBPS/1e6)
	fmt.Fprintf(&b, "Attack direction: %s\n", dirWord(a.Direction))
	fmt.Fprintf(&b, "Attack protocol: %s\n", a.Protocol)
	fmt.Fprintf(&b, "Threshold crossed: %s\n", a.Threshold)
	return b.String()
}

// banSummary describes a ban that has no attack snapshot (manual,
// restored, and every unban).
func banSummary(ev mitigation.Event) string {
	b := ev.Ban
	if !b.Prefix.IsValid() {
		return ""
	}
	var s strings.Builder
	fmt.Fprintf(&s, "Prefix: %s\n", b.Prefix)
	fmt.Fprintf(&s, "Direction: %s\n", dirWord(b.Direction))
	fmt.Fprintf(&s, "Ban reason: %s\n", b.Reason)
	if b.AttackID != "" {
		fmt.Fprintf(&s, "Attack ID: %s\n", b.AttackID)
	}
	if len(b.Actions) > 0 {
		fmt.Fprintf(&s, "Actions: %s\n", routeros.JoinActions(b.Actions, ","))
	}
	if !b.CreatedAt.IsZero() {
		fmt.Fprintf(&s, "Banned at: %s\n", b.CreatedAt.UTC().Format(time.RFC3339))
	}
	if ev.Kind != mitigation.EventUnban && !b.ExpiresAt.IsZero() {
		fmt.Fprintf(&s, "Expires at: %s\n", b.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return s.String()
}
