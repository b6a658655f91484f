// Package api is the vocabulary of flowshield's HTTP API (the contract's
// HTTP section): the JSON shapes of its requests and answers, shared by the
// daemon that serves them (appliance, web) and the command line that reads
// them (cmd/flowshield). It holds types only; the daemon fills them from
// the domain packages (detect, mitigation), which know nothing of JSON.
//
// The contract's conventions, which whoever fills these types keeps:
// direction is "in" or "out"; ip is a bare address; prefix always carries
// its length; times are RFC 3339 in UTC; rates are per second, bps in bits.
// A nil pointer field is JSON null; field order is the order on the wire.
package api

import (
	"time"

	"github.com/flowshield/flowshield/routeros"
)

// Error is the body of every error answer: {"error": "..."}.
type Error struct {
	Message string `json:"error"`
}

// Host is an element of GET /api/v1/hosts: one host's current windowed
// rates in one direction. Group is the host's hostgroup, null if none.
type Host struct {
	IP        string  `json:"ip"`
	Direction string  `json:"direction"`
	Group     *string `json:"group"`
	PPS       float64 `json:"pps"`
	BPS       float64 `json:"bps"`
	Flows     float64 `json:"flows"`
	TCPPPS    float64 `json:"tcp_pps"`
	UDPPPS    float64 `json:"udp_pps"`
	ICMPPPS   float64 `json:"icmp_pps"`
	SYNPPS    float64 `json:"syn_pps"`
	FragPPS   float64 `json:"frag_pps"`
	TCPBPS    float64 `json:"tcp_bps"`
	UDPBPS    float64 `json:"udp_bps"`
	ICMPBPS   float64 `json:"icmp_bps"`
	SYNBPS    float64 `json:"syn_bps"`
	FragBPS   float64 `json:"frag_bps"`
}

// HostDirections is GET /api/v1/hosts/{ip}: both directions of one host.
// The fields are in the order the answer always had ("in", "ip", "out").
type HostDirections struct {
	In  Host   `json:"in"`
	IP  string `json:"ip"`
	Out Host   `json:"out"`
}

// Attack is an element of GET /api/v1/attacks; GET /api/v1/attacks/{id}
// adds Details, Flows and Fingerprint. Scope is "host" or "group" (a
// hostgroup's group_* threshold); IP is null for a group attack, Group
// null when the host has no hostgroup, EndedAt null while the attack is
// active.
type Attack struct {
	ID        string     `json:"id"`
	Scope     string     `json:"scope"`
	IP        *string    `json:"ip"`
	Group     *string    `json:"group"`
	Direction string     `json:"direction"`
	Type      string     `json:"type"`
	Protocol  string     `json:"protocol"`
	Threshold string     `json:"threshold,omitempty"` // which threshold was crossed, e.g. "pps"
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	PeakPPS   float64    `json:"peak_pps"`
	PeakBPS   float64    `json:"peak_bps"`
	Banned    bool       `json:"banned"`
	Details   *string    `json:"details,omitempty"` // the contract's details text
	Flows     []Flow     `json:"flows,omitempty"`   // a sample of the attack's flow records
	// Fingerprint is only in GET /api/v1/attacks/{id} (the outer
	// pointer), where it is null (the inner one) until the attack's
	// details are known, and for an ended attack that shed them.
	Fingerprint **Fingerprint `json:"fingerprint,omitempty"`
}

// Fingerprint is what an attack's packets have in common: the kinds of
// packet a narrow RouterOS raw rule can drop (ACTION=filter), the largest
// share first, and the share of the attack's packets they match together
// (0..1). No vector: nothing characterises the attack. Records is how
// many sampled flow records it comes from; 0: from the per-host counters
// (no flow sample), which give protocols and TCP flags, no ports or
// sizes.
type Fingerprint struct {
	Share   float64             `json:"share"`
	Records int                 `json:"records"`
	Vectors []FingerprintVector `json:"vectors"` // never null
}

// FingerprintVector is one kind of packet of an attack. A packet is of it
// when it matches every field; a null field matches any packet.
type FingerprintVector struct {
	Protocol *string  `json:"protocol"`  // "udp", "tcp", "icmp", "icmpv6", or the IP protocol's number
	SrcPorts []uint16 `json:"src_ports"` // the reflector's port of an amplification
	DstPorts []uint16 `json:"dst_ports"` // when a few ports carry the vector
	TCPFlags *string  `json:"tcp_flags"` // as RouterOS writes tcp-flags: "syn,!ack" is SYN without ACK
	// Fragment: non-first IP fragments only, which carry no ports
	// (RouterOS fragment=yes).
	Fragment   bool       `json:"fragment"`
	PacketSize *SizeRange `json:"packet_size"` // the IP packet's size in bytes, as RouterOS packet-size
	Share      float64    `json:"share"`       // of the attack's packets, 0..1
}

// SizeRange is an inclusive range of sizes in bytes.
type SizeRange struct {
	Min uint16 `json:"min"`
	Max uint16 `json:"max"`
}

// Flow is one sampled flow record of an attack. Time is the flow's last
// packet; Line is the record as the details text writes it.
type Flow struct {
	Time         time.Time `json:"time"`
	Src          string    `json:"src"`
	Dst          string    `json:"dst"`
	SrcPort      uint16    `json:"src_port"`
	DstPort      uint16    `json:"dst_port"`
	Protocol     uint8     `json:"protocol"`
	TCPFlags     uint8     `json:"tcp_flags"`
	Fragment     bool      `json:"fragment"`
	Packets      uint64    `json:"packets"`
	Bytes        uint64    `json:"bytes"`
	SamplingRate uint32    `json:"sampling_rate"`
	Exporter     string    `json:"exporter"`
	Line         string    `json:"line"`
}

// Ban is an element of GET /api/v1/bans and the answer to POST
// /api/v1/bans. Actions and Routers are never null; AttackID is "" for a
// manual ban.
type Ban struct {
	Prefix    string            `json:"prefix"`
	Direction string            `json:"direction"`
	Actions   []routeros.Action `json:"actions"`
	// Ladder is the ESCALATE_AFTER ladder the ban climbs, in order (its
	// current step is the last of Actions); absent when every action is
	// in force at once.
	Ladder    []routeros.Action `json:"ladder,omitempty"`
	Reason    string            `json:"reason"`
	AttackID  string            `json:"attack_id"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at"`
	Routers   []BanRouter       `json:"routers"`
}

// BanRouter is a ban's state on one router: "pending", "active", or
// "error: " and what failed.
type BanRouter struct {
	Address string `json:"address"`
	State   string `json:"state"`
}

// BanRequest is the body of POST /api/v1/bans. Prefix may be a bare
// address; TTL is a Go duration ("" for BAN_TIME); Reason "" means
// "manual"; Direction "" means "in". The fields are in the order the
// command line always sent them.
type BanRequest struct {
	Direction string `json:"direction"`
	Prefix    string `json:"prefix"`
	Reason    string `json:"reason"`
	TTL       string `json:"ttl"`
}
