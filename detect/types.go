package detect

import (
	"net/netip"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// Direction is seen from the protected host: In is traffic to it, Out from it.
type Direction uint8

const (
	In Direction = iota
	Out
)

func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// Thresholds are per host and per direction; 0 disables a check. Mbps is
// megabits per second (10^6 bits).
type Thresholds struct {
	PPS, Mbps, Flows  uint64
	TCPPPS, TCPMbps   uint64
	UDPPPS, UDPMbps   uint64
	ICMPPPS, ICMPMbps uint64
	SYNPPS, SYNMbps   uint64
	FragPPS, FragMbps uint64
}

// HostGroup is a set of prefixes with their own thresholds. A host belongs to
// the group with its longest matching prefix, whatever NETWORKS says. Its
// Thresholds are complete (the configuration has already filled keys the
// operator did not give from the global thresholds). The Group* thresholds
// apply to the sum over all hosts of the group (carpet bombing); 0 disables.
type HostGroup struct {
	Name                            string
	Prefixes                        []netip.Prefix
	Thresholds                      Thresholds
	GroupPPS, GroupMbps, GroupFlows uint64
}

// EventKind is what happened to an attack.
type EventKind uint8

const (
	AttackStart   EventKind = iota // declared, with its initial power
	AttackDetails                  // enough flows seen to describe it: Details and Sample are filled
	AttackEnd                      // rates stayed below the thresholds (with hysteresis)
	AttackUpdate                   // periodic while active: current and peak power, type changes
)

func (k EventKind) String() string {
	switch k {
	case AttackStart:
		return "attack_start"
	case AttackDetails:
		return "attack_details"
	case AttackEnd:
		return "attack_end"
	case AttackUpdate:
		return "attack_update"
	}
	return "unknown"
}

// Scope of an attack: one host, or a hostgroup's sum (group_* thresholds).
const (
	ScopeHost  = "host"
	ScopeGroup = "group"
)

// Attack is a snapshot of one attack as the detector knows it. There is one
// active attack per scope, target and direction.
type Attack struct {
	ID        string
	Scope     string     // ScopeHost or ScopeGroup
	IP        netip.Addr // the host; invalid for ScopeGroup
	Group     string     // the host's hostgroup name, or the group for ScopeGroup; "" if none
	Direction Direction
	Type      string // one of the contract's attack types, e.g. "udp_flood"
	Protocol  string // dominant protocol: "udp", "tcp", "icmp", "other"
	Threshold string // which threshold was crossed, e.g. "pps", "udp_mbps", "group_mbps"

	StartedAt time.Time
	EndedAt   time.Time // zero while active

	InitialPPS, InitialBPS float64
	PPS, BPS, Flows        float64 // current windowed rates
	PeakPPS, PeakBPS       float64

	Details string        // the contract's details text, once known
	Sample  []flow.Record // a bounded sample of the attack's flow records
	// Fingerprint is what the attack's packets have in common, made with
	// the details (nil before, and for an ended attack that shed its
	// details). Never changed once set, only replaced.
	Fingerprint *Fingerprint
}

// Event is one detector decision.
type Event struct {
	Kind   EventKind
	Time   time.Time
	Attack Attack
}
