package web

import "time"

// Status is the JSON of GET /api/v1/status. The daemon adapts its
// collector, detector and router clients to it through StatusSource.
// Times are UTC (the handler converts them); rates are per second, bps in
// bits.
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

	Exporters []ExporterStatus `json:"exporters"` // never null
	Routers   []RouterStatus   `json:"routers"`   // never null
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

// ExporterStatus is one exporter (one UDP source address, and one
// observation domain / source id where the format has them) seen since start.
type ExporterStatus struct {
	Address           string `json:"address"`                      // bare IP of the exporter
	ObservationDomain uint32 `json:"observation_domain,omitempty"` // v9 source id, IPFIX domain, sFlow sub-agent
	Protocol          string `json:"protocol"`                     // "netflow", "ipfix", "sflow"
	Version           int    `json:"version"`                      // 5, 9, 10 (IPFIX), 5 (sFlow v5)

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

// RouterStatus is one configured RouterOS API connection.
type RouterStatus struct {
	Address     string    `json:"address"` // host:port
	Connected   bool      `json:"connected"`
	LastError   string    `json:"last_error"`             // "" when the last call succeeded
	LastErrorAt time.Time `json:"last_error_at,omitzero"` // zero: never failed
}

// normalize makes the JSON stable: empty lists and maps instead of null,
// times in UTC.
func (s Status) normalize() Status {
	s.StartedAt = s.StartedAt.UTC()
	if s.Exporters == nil {
		s.Exporters = []ExporterStatus{}
	} else {
		s.Exporters = append([]ExporterStatus(nil), s.Exporters...)
	}
	for i := range s.Exporters {
		e := &s.Exporters[i]
		e.LastSeen = e.LastSeen.UTC()
		if e.DecodeErrors == nil {
			e.DecodeErrors = map[string]uint64{}
		}
	}
	if s.Routers == nil {
		s.Routers = []RouterStatus{}
	} else {
		s.Routers = append([]RouterStatus(nil), s.Routers...)
	}
	for i := range s.Routers {
		if !s.Routers[i].LastErrorAt.IsZero() {
			s.Routers[i].LastErrorAt = s.Routers[i].LastErrorAt.UTC()
		}
	}
	return s
}
