package api

import "time"

// Status is GET /api/v1/status. Exporters and Routers are never null.
type Status struct {
	Version       string    `json:"version"`
	Commit        string    `json:"commit,omitempty"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime"` // seconds since StartedAt

	Totals Totals `json:"totals"` // current windowed rates over all protected hosts

	// Since start. FlowPackets and FlowBytes are the records' counters
	// times their sampling rate.
	Records     uint64 `json:"records"`
	FlowPackets uint64 `json:"flow_packets"`
	FlowBytes   uint64 `json:"flow_bytes"`
	Dropped     uint64 `json:"dropped"` // datagrams dropped under overload

	Exporters []Exporter `json:"exporters"`
	// RefusedExporters are the sources FLOWSHIELD_EXPORTERS refused:
	// their datagrams were dropped before decoding.
	RefusedExporters RefusedExporters `json:"refused_exporters"`
	Routers          []Router         `json:"routers"`
	Uplink           Uplink           `json:"uplink"`
}

// RefusedExporters counts datagrams from sources outside EXPORTERS, in
// total and for the most recently refused sources (a bounded table: the
// ones it forgot to make room are counted in SourcesForgotten). Sources
// is never null.
type RefusedExporters struct {
	Datagrams        uint64            `json:"datagrams"`
	Bytes            uint64            `json:"bytes"`
	SourcesForgotten uint64            `json:"sources_forgotten"`
	Sources          []RefusedExporter `json:"sources"`
}

// RefusedExporter is one refused source address on one listener.
type RefusedExporter struct {
	Address   string    `json:"address"`
	Protocol  string    `json:"protocol"` // the listener: "netflow" or "sflow"
	Datagrams uint64    `json:"datagrams"`
	Bytes     uint64    `json:"bytes"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Totals are the current rates in and out.
type Totals struct {
	In  Rates `json:"in"`
	Out Rates `json:"out"`
}

// Rates are per second; BPS is bits per second, Flows distinct flows per second.
type Rates struct {
	PPS   float64 `json:"pps"`
	BPS   float64 `json:"bps"`
	Flows float64 `json:"flows"`
}

// Exporter is one exporter (one UDP source address, and one observation
// domain / source id where the format has them) seen since start.
type Exporter struct {
	Address           string `json:"address"`                      // bare IP of the exporter
	ObservationDomain uint32 `json:"observation_domain,omitempty"` // v9 source id, IPFIX domain, sFlow sub-agent
	Protocol          string `json:"protocol"`                     // "netflow", "ipfix", "sflow"
	// Version is the export header's version number: 5 or 9 (NetFlow), 10
	// (IPFIX), 5 (sFlow v5); 0 until a datagram decoded.
	Version uint32 `json:"version"`

	Datagrams   uint64 `json:"datagrams"`
	Records     uint64 `json:"records"`
	FlowPackets uint64 `json:"flow_packets"` // times sampling rate
	FlowBytes   uint64 `json:"flow_bytes"`   // times sampling rate
	Garbage     uint64 `json:"garbage"`      // records impossible on LINK_MBPS, not counted toward detection

	// DecodeErrors by flow.ErrorKind name ("truncated", "no_template", ...);
	// kinds with zero count may be left out. Never null.
	DecodeErrors map[string]uint64 `json:"decode_errors"`
	Templates    int               `json:"templates"` // v9/IPFIX templates known for this exporter

	LastSeen         time.Time `json:"last_seen"`
	SamplingRate     uint32    `json:"sampling_rate"`      // last announced (or SAMPLING_RATE)
	ClockSkewSeconds float64   `json:"clock_skew_seconds"` // export header clock minus local receive time

	// The exporter's reporting timers, null until known: how often a long
	// flow is reported (learned from the records' durations, or announced
	// in options data, or read from the router), where that came from, and
	// the learned lag from a flow's last packet to its record's arrival.
	ActiveTimeoutSeconds *float64 `json:"active_timeout_s"`
	ActiveTimeoutFrom    string   `json:"active_timeout_from,omitempty"` // "learned", "options", "router", "override"
	InactiveLagSeconds   *float64 `json:"inactive_lag_s"`
}

// Router is one configured RouterOS API connection.
type Router struct {
	Address     string    `json:"address"` // host:port
	Connected   bool      `json:"connected"`
	LastError   string    `json:"last_error"`             // "" when the last call succeeded
	LastErrorAt time.Time `json:"last_error_at,omitzero"` // zero: never failed
	// Since start: RouterOS API commands sent and those that failed (the
	// router refused it, no reply in time, or the connection was lost),
	// logins (the first connection and each reconnection), failed
	// connection attempts, and replies refused for their size or form.
	Calls           uint64 `json:"calls"`
	CallErrors      uint64 `json:"call_errors"`
	Connects        uint64 `json:"connects"`
	ConnectFailures uint64 `json:"connect_failures"`
	RejectedReplies uint64 `json:"rejected_replies"`
}

// Uplink is the routers' uplink interfaces (the interface list
// flowshield-uplinks) as their own receive counters show them, polled
// every few seconds. Saturated: they receive 90 % of LinkMbps or more;
// FlowBlind: they receive far more packets than the flows account for
// (FlowPPS). Interfaces is never null.
type Uplink struct {
	LinkMbps   uint64            `json:"link_mbps"` // LINK_MBPS, 0: unknown (never saturated)
	RxBPS      float64           `json:"rx_bps"`
	RxPPS      float64           `json:"rx_pps"`
	FlowPPS    float64           `json:"flow_pps"`
	Saturated  bool              `json:"saturated"`
	FlowBlind  bool              `json:"flow_blind"`
	Interfaces []UplinkInterface `json:"interfaces"`
}

// UplinkInterface is one uplink interface of one router.
type UplinkInterface struct {
	Router  string  `json:"router"` // host:port
	Name    string  `json:"name"`
	Running bool    `json:"running"`
	RxBPS   float64 `json:"rx_bps"`
	RxPPS   float64 `json:"rx_pps"`
}
