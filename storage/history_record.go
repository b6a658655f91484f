package storage

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow"
)

// AttackRecord is one attack of the history as the store keeps it: what
// the attack list shows again after a restart. StartedAt must stay the
// same for one ID: with it, it forms the key.
type AttackRecord struct {
	ID        string
	Scope     string     // "host" or "group"
	IP        netip.Addr // the host; invalid for a group attack
	Group     string     // the hostgroup; "" if none
	Direction detect.Direction
	Type      string
	Protocol  string
	Threshold string
	StartedAt time.Time
	EndedAt   time.Time // zero while active: never pruned
	PeakPPS   float64
	PeakBPS   float64
	// Details is the attack's heavy part, kept apart and written once:
	// saving a record with nil Details leaves the stored ones as they are,
	// so the updates at the start and the end rewrite a few hundred bytes,
	// not 16 KB.
	Details *AttackDetails
}

// AttackDetails are an attack's details text, flow sample and
// fingerprint. Of each flow the store keeps the addresses, ports,
// protocol, TCP flags, fragment flag, counters, sampling rate and times
// (start, end, received). Fingerprint is nil in the records written before
// fingerprints were made.
type AttackDetails struct {
	Text        string
	Flows       []flow.Record
	Fingerprint *detect.Fingerprint
}

// historyFormat is the "format" of the records this version writes. The
// first version's records have none (0): they were the API's attack JSON,
// which the fields below still read (their names are that JSON's), all but
// a flow's times (see legacyTimes). They stay on disk until the history
// bounds prune them.
const historyFormat = 2

// summaryJSON is the stored form of an AttackRecord without its details;
// the ID, start and end are in the key and the value's header.
type summaryJSON struct {
	Format    int     `json:"format"`
	Scope     string  `json:"scope"`
	IP        string  `json:"ip,omitempty"` // first version: null for a group attack
	Group     string  `json:"group,omitempty"`
	Direction string  `json:"direction"`
	Type      string  `json:"type"`
	Protocol  string  `json:"protocol,omitempty"`
	Threshold string  `json:"threshold,omitempty"`
	PeakPPS   float64 `json:"peak_pps"`
	PeakBPS   float64 `json:"peak_bps"`
}

// detailsJSON is the stored form of AttackDetails.
type detailsJSON struct {
	Format      int              `json:"format"`
	Text        string           `json:"details"`
	Flows       []flowJSON       `json:"flows,omitempty"`
	Fingerprint *fingerprintJSON `json:"fingerprint,omitempty"` // none before fingerprints were made
}

// fingerprintJSON is the stored form of a detect.Fingerprint.
type fingerprintJSON struct {
	Share   float64      `json:"share"`
	Records int          `json:"records"`
	Vectors []vectorJSON `json:"vectors,omitempty"`
}

// vectorJSON is the stored form of a detect.Vector; a zero field matches
// any packet, as there.
type vectorJSON struct {
	Protocol uint8    `json:"protocol,omitempty"`
	SrcPort  uint16   `json:"src_port,omitempty"`
	DstPorts []uint16 `json:"dst_ports,omitempty"`
	TCPFlags uint8    `json:"tcp_flags,omitempty"`
	TCPMask  uint8    `json:"tcp_mask,omitempty"`
	Fragment bool     `json:"fragment,omitempty"`
	SizeMin  uint16   `json:"size_min,omitempty"`
	SizeMax  uint16   `json:"size_max,omitempty"`
	Share    float64  `json:"share"`
}

// flowJSON is one flow of a sample; times are Unix nanoseconds, as in
// flow.Record.
type flowJSON struct {
	Exporter     string `json:"exporter,omitempty"`
	Src          string `json:"src,omitempty"`
	Dst          string `json:"dst,omitempty"`
	SrcPort      uint16 `json:"src_port,omitempty"`
	DstPort      uint16 `json:"dst_port,omitempty"`
	Protocol     uint8  `json:"protocol,omitempty"`
	TCPFlags     uint8  `json:"tcp_flags,omitempty"`
	Fragment     bool   `json:"fragment,omitempty"`
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	SamplingRate uint32 `json:"sampling_rate,omitempty"`
	Start        int64  `json:"start_ns,omitempty"`
	End          int64  `json:"end_ns,omitempty"`
	Received     int64  `json:"received_ns,omitempty"`
	// Only in the first version's records: the end, and the display line
	// whose head is the start.
	LegacyTime time.Time `json:"time,omitzero"`
	LegacyLine string    `json:"line,omitempty"`
}

// encodeAttack appends the stored form of r's summary to b.
func encodeAttack(b []byte, r AttackRecord) ([]byte, error) {
	v, err := json.Marshal(summaryJSON{
		Format: historyFormat, Scope: r.Scope, IP: addrText(r.IP), Group: r.Group, Direction: r.Direction.String(),
		Type: r.Type, Protocol: r.Protocol, Threshold: r.Threshold, PeakPPS: r.PeakPPS, PeakBPS: r.PeakBPS,
	})
	if err != nil {
		return nil, err
	}
	return append(b, v...), nil
}

func decodeSummary(v []byte) (AttackRecord, error) {
	var j summaryJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return AttackRecord{}, err
	}
	d, err := parseDirection(j.Direction)
	if err != nil {
		return AttackRecord{}, err
	}
	r := AttackRecord{
		Scope: j.Scope, Group: j.Group, Direction: d, Type: j.Type, Protocol: j.Protocol,
		Threshold: j.Threshold, PeakPPS: j.PeakPPS, PeakBPS: j.PeakBPS,
	}
	if j.IP != "" {
		if r.IP, err = netip.ParseAddr(j.IP); err != nil {
			return AttackRecord{}, err
		}
	}
	return r, nil
}

func encodeDetails(d *AttackDetails) ([]byte, error) {
	j := detailsJSON{Format: historyFormat, Text: d.Text, Flows: make([]flowJSON, len(d.Flows)),
		Fingerprint: fingerprintToJSON(d.Fingerprint)}
	for i := range d.Flows {
		f := &d.Flows[i]
		j.Flows[i] = flowJSON{
			Exporter: addrText(f.Exporter), Src: addrText(f.SrcAddr), Dst: addrText(f.DstAddr),
			SrcPort: f.SrcPort, DstPort: f.DstPort, Protocol: f.Proto, TCPFlags: f.TCPFlags, Fragment: f.Fragment,
			Packets: f.Packets, Bytes: f.Bytes, SamplingRate: f.SamplingRate, Start: f.Start, End: f.End, Received: f.Received,
		}
	}
	return json.Marshal(j)
}

func decodeDetails(v []byte) (*AttackDetails, error) {
	var j detailsJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return nil, err
	}
	d := &AttackDetails{Text: j.Text, Fingerprint: fingerprintFromJSON(j.Fingerprint)}
	if len(j.Flows) > 0 {
		d.Flows = make([]flow.Record, len(j.Flows))
	}
	for i, f := range j.Flows {
		r := &d.Flows[i]
		*r = flow.Record{
			SrcPort: f.SrcPort, DstPort: f.DstPort, Proto: f.Protocol, TCPFlags: f.TCPFlags, Fragment: f.Fragment,
			Packets: f.Packets, Bytes: f.Bytes, SamplingRate: f.SamplingRate, Start: f.Start, End: f.End, Received: f.Received,
		}
		// An address that was not valid is stored as "" (the first
		// version wrote "invalid IP"): it stays the zero address.
		r.Exporter, _ = netip.ParseAddr(f.Exporter)
		r.SrcAddr, _ = netip.ParseAddr(f.Src)
		r.DstAddr, _ = netip.ParseAddr(f.Dst)
		if j.Format == 0 {
			r.Start, r.End = legacyTimes(f)
		}
	}
	return d, nil
}

func fingerprintToJSON(f *detect.Fingerprint) *fingerprintJSON {
	if f == nil {
		return nil
	}
	j := &fingerprintJSON{Share: f.Share, Records: f.Records}
	for _, v := range f.Vectors {
		j.Vectors = append(j.Vectors, vectorJSON{
			Protocol: v.Protocol, SrcPort: v.SrcPort, DstPorts: v.DstPorts, TCPFlags: v.TCPFlags, TCPMask: v.TCPMask,
			Fragment: v.Fragment, SizeMin: v.SizeMin, SizeMax: v.SizeMax, Share: v.Share,
		})
	}
	return j
}

func fingerprintFromJSON(j *fingerprintJSON) *detect.Fingerprint {
	if j == nil {
		return nil
	}
	f := &detect.Fingerprint{Share: j.Share, Records: j.Records}
	for _, v := range j.Vectors {
		f.Vectors = append(f.Vectors, detect.Vector{
			Protocol: v.Protocol, SrcPort: v.SrcPort, DstPorts: v.DstPorts, TCPFlags: v.TCPFlags, TCPMask: v.TCPMask,
			Fragment: v.Fragment, SizeMin: v.SizeMin, SizeMax: v.SizeMax, Share: v.Share,
		})
	}
	return f
}

// legacyLineTime is the layout the first version's flow lines start with:
// the flow's start, to the millisecond, which it kept nowhere else.
const legacyLineTime = "2006-01-02 15:04:05.000"

// legacyTimes are a first-version flow's start and end.
func legacyTimes(f flowJSON) (start, end int64) {
	end = f.LegacyTime.UnixNano()
	if len(f.LegacyLine) >= len(legacyLineTime) {
		if t, err := time.Parse(legacyLineTime, f.LegacyLine[:len(legacyLineTime)]); err == nil {
			return t.UnixNano(), end
		}
	}
	return end, end
}

// addrText is a as stored: "" when it is not valid.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
