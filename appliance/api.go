package appliance

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/mitigation"
	"github.com/flowshield/flowshield/web"
)

// registerRoutes adds the contract's /api/v1 routes to the HTTP server.
func (a *Appliance) registerRoutes() {
	a.web.Handle(http.MethodGet, "/api/v1/hosts", web.Read, http.HandlerFunc(a.listHosts))
	a.web.Handle(http.MethodGet, "/api/v1/hosts/{ip}", web.Read, http.HandlerFunc(a.getHost))
	a.web.Handle(http.MethodGet, "/api/v1/attacks", web.Read, http.HandlerFunc(a.listAttacks))
	a.web.Handle(http.MethodGet, "/api/v1/attacks/{id}", web.Read, http.HandlerFunc(a.getAttack))
	a.web.Handle(http.MethodGet, "/api/v1/bans", web.Read, http.HandlerFunc(a.listBans))
	a.web.Handle(http.MethodPost, "/api/v1/bans", web.Write, http.HandlerFunc(a.addBan))
	a.web.Handle(http.MethodDelete, "/api/v1/bans/{prefix}", web.Write, http.HandlerFunc(a.removeBan))
}

// hostJSON is an element of GET /api/v1/hosts.
type hostJSON struct {
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

func hostJSONOf(h detect.HostRates) hostJSON {
	j := hostJSON{
		IP: h.IP.String(), Direction: h.Direction.String(),
		PPS: h.PPS, BPS: h.Bps, Flows: h.Flows,
		TCPPPS: h.TCPPPS, UDPPPS: h.UDPPPS, ICMPPPS: h.ICMPPPS, SYNPPS: h.SYNPPS, FragPPS: h.FragPPS,
		TCPBPS: h.TCPBps, UDPBPS: h.UDPBps, ICMPBPS: h.ICMPBps, SYNBPS: h.SYNBps, FragBPS: h.FragBps,
	}
	if h.Group != "" {
		g := h.Group
		j.Group = &g
	}
	return j
}

func parseDirection(s string) (detect.Direction, bool) {
	switch s {
	case "", "in":
		return detect.In, true
	case "out":
		return detect.Out, true
	}
	return detect.In, false
}

func (a *Appliance) listHosts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dir, ok := parseDirection(q.Get("direction"))
	if !ok {
		web.WriteError(w, http.StatusBadRequest, "direction: expected in or out")
		return
	}
	sortBy := q.Get("sort")
	switch sortBy {
	case "", "pps":
		sortBy = detect.SortPPS
	case "bps", "mbps":
		sortBy = detect.SortBps
	case "flows":
		sortBy = detect.SortFlows
	default:
		web.WriteError(w, http.StatusBadRequest, "sort: expected pps, bps or flows")
		return
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100000 {
			web.WriteError(w, http.StatusBadRequest, "limit: expected a number from 1 to 100000")
			return
		}
		limit = n
	}
	hosts := a.engine.Hosts(dir, sortBy, limit)
	out := make([]hostJSON, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, hostJSONOf(h))
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (a *Appliance) getHost(w http.ResponseWriter, r *http.Request) {
	ip, err := netip.ParseAddr(r.PathValue("ip"))
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "ip: expected an IPv4 or IPv6 address")
		return
	}
	ip = ip.Unmap()
	in, out, ok := a.engine.Host(ip)
	if !ok {
		web.WriteError(w, http.StatusNotFound, "no traffic seen for "+ip.String())
		return
	}
	in.IP, out.IP = ip, ip
	in.Direction, out.Direction = detect.In, detect.Out
	web.WriteJSON(w, http.StatusOK, map[string]any{
		"ip": ip.String(), "in": hostJSONOf(in), "out": hostJSONOf(out),
	})
}

// attackJSON is the contract's attack object; details and flows only for
// GET /api/v1/attacks/{id}.
type attackJSON struct {
	ID        string     `json:"id"`
	Scope     string     `json:"scope"`
	IP        *string    `json:"ip"`
	Group     *string    `json:"group"`
	Direction string     `json:"direction"`
	Type      string     `json:"type"`
	Protocol  string     `json:"protocol"`
	Threshold string     `json:"threshold,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	PeakPPS   float64    `json:"peak_pps"`
	PeakBPS   float64    `json:"peak_bps"`
	Banned    bool       `json:"banned"`
	Details   *string    `json:"details,omitempty"`
	Sample    []flowJSON `json:"flows,omitempty"`
}

// flowJSON is one sampled flow record of an attack.
type flowJSON struct {
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

func attackJSONOf(at detect.Attack, banned func(string) bool, full bool) attackJSON {
	j := attackJSON{
		ID: at.ID, Scope: at.Scope, Direction: at.Direction.String(), Type: at.Type,
		Protocol: at.Protocol, Threshold: at.Threshold, StartedAt: at.StartedAt.UTC(),
		PeakPPS: at.PeakPPS, PeakBPS: at.PeakBps,
	}
	if at.IP.IsValid() {
		s := at.IP.String()
		j.IP = &s
	}
	if at.Group != "" {
		g := at.Group
		j.Group = &g
	}
	if !at.EndedAt.IsZero() {
		t := at.EndedAt.UTC()
		j.EndedAt = &t
	}
	if banned != nil {
		j.Banned = banned(at.ID)
	}
	if full {
		d := at.Details
		j.Details = &d
		j.Sample = make([]flowJSON, 0, len(at.Sample))
		for i := range at.Sample {
			f := &at.Sample[i]
			j.Sample = append(j.Sample, flowJSON{
				Time: time.Unix(0, f.End).UTC(), Src: f.SrcAddr.String(), Dst: f.DstAddr.String(),
				SrcPort: f.SrcPort, DstPort: f.DstPort, Protocol: f.Proto, TCPFlags: f.TCPFlags,
				Fragment: f.Fragment, Packets: f.Packets, Bytes: f.Bytes, SamplingRate: f.SamplingRate,
				Exporter: f.Exporter.String(), Line: detect.FlowLine(f, 1),
			})
		}
	}
	return j
}

func (a *Appliance) banned(id string) bool {
	b, _ := a.mitigator.AttackBanned(id)
	return b
}

func (a *Appliance) listAttacks(w http.ResponseWriter, r *http.Request) {
	active := false
	switch r.URL.Query().Get("active") {
	case "", "false", "0":
	case "true", "1":
		active = true
	default:
		web.WriteError(w, http.StatusBadRequest, "active: expected true or false")
		return
	}
	attacks := a.engine.Attacks(active)
	out := make([]attackJSON, 0, len(attacks))
	for _, at := range attacks {
		out = append(out, attackJSONOf(at, a.banned, false))
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (a *Appliance) getAttack(w http.ResponseWriter, r *http.Request) {
	at, ok := a.engine.Attack(r.PathValue("id"))
	if !ok {
		web.WriteError(w, http.StatusNotFound, "no attack with that id")
		return
	}
	web.WriteJSON(w, http.StatusOK, attackJSONOf(at, a.banned, true))
}

func (a *Appliance) listBans(w http.ResponseWriter, r *http.Request) {
	bans := a.mitigator.Bans()
	if bans == nil {
		bans = []mitigation.Ban{}
	}
	web.WriteJSON(w, http.StatusOK, bans)
}

// banRequest is the body of POST /api/v1/bans.
type banRequest struct {
	Prefix    string `json:"prefix"`
	TTL       string `json:"ttl"`
	Reason    string `json:"reason"`
	Direction string `json:"direction"`
}

// parseBanPrefix is config.ParsePrefix (a prefix, or a bare address as /32 or
// /128, host bits cleared) with IPv4-mapped IPv6 taken as the IPv4 it is,
// as flow records carry it.
func parseBanPrefix(s string) (netip.Prefix, error) {
	p, ok := config.ParsePrefix(s)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

func (a *Appliance) addBan(w http.ResponseWriter, r *http.Request) {
	var req banRequest
	if !web.DecodeJSON(w, r, &req) {
		return
	}
	prefix, err := parseBanPrefix(req.Prefix)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "prefix: expected an address or prefix such as 203.0.113.5/32")
		return
	}
	ttl := a.cfg.BanTime
	if req.TTL != "" {
		ttl, err = time.ParseDuration(req.TTL)
		if err != nil || ttl < time.Second {
			web.WriteError(w, http.StatusBadRequest, "ttl: expected a Go duration of at least 1s, such as 10m")
			return
		}
	}
	dir, ok := parseDirection(req.Direction)
	if !ok {
		web.WriteError(w, http.StatusBadRequest, "direction: expected in or out")
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = "manual"
	}
	ban, err := a.mitigator.AddManual(r.Context(), prefix, ttl, reason, dir)
	switch {
	case errors.Is(err, mitigation.ErrWhitelisted):
		web.WriteError(w, http.StatusConflict, prefix.String()+" is in FLOWSHIELD_WHITELIST")
		return
	case errors.Is(err, mitigation.ErrMaxBans):
		web.WriteError(w, http.StatusConflict, "FLOWSHIELD_MAX_BANS reached")
		return
	case err != nil:
		web.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	web.WriteJSON(w, http.StatusCreated, ban)
}

func (a *Appliance) removeBan(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("prefix")
	if s, err := url.PathUnescape(raw); err == nil {
		raw = s
	}
	prefix, err := parseBanPrefix(raw)
	if err != nil {
		web.WriteError(w, http.StatusBadRequest, "prefix: expected an URL-escaped prefix such as 203.0.113.5%2F32")
		return
	}
	err = a.mitigator.RemoveManual(r.Context(), prefix)
	if errors.Is(err, mitigation.ErrNotFound) {
		web.WriteError(w, http.StatusNotFound, "no ban for "+prefix.String())
		return
	}
	if err != nil {
		web.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
