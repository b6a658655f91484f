package appliance

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/mitigation"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/storage"
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

// hostOf is h as the API shows it.
func hostOf(h detect.HostRates) api.Host {
	j := api.Host{
		IP: h.IP.String(), Direction: h.Direction.String(),
		PPS: h.PPS, BPS: h.BPS, Flows: h.Flows,
		TCPPPS: h.TCPPPS, UDPPPS: h.UDPPPS, ICMPPPS: h.ICMPPPS, SYNPPS: h.SYNPPS, FragPPS: h.FragPPS,
		TCPBPS: h.TCPBPS, UDPBPS: h.UDPBPS, ICMPBPS: h.ICMPBPS, SYNBPS: h.SYNBPS, FragBPS: h.FragBPS,
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
		sortBy = detect.SortBPS
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
	out := make([]api.Host, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, hostOf(h))
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
	web.WriteJSON(w, http.StatusOK, api.HostDirections{IP: ip.String(), In: hostOf(in), Out: hostOf(out)})
}

// attackOf is at as the API lists it; full adds the details text, the
// flow sample and the fingerprint (GET /api/v1/attacks/{id}).
func attackOf(at detect.Attack, banned, full bool) api.Attack {
	j := api.Attack{
		ID: at.ID, Scope: at.Scope, Direction: at.Direction.String(), Type: at.Type,
		Protocol: at.Protocol, Threshold: at.Threshold, StartedAt: at.StartedAt.UTC(),
		PeakPPS: at.PeakPPS, PeakBPS: at.PeakBPS, Banned: banned,
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
	if full {
		d := at.Details
		j.Details = &d
		j.Flows = make([]api.Flow, 0, len(at.Sample))
		for i := range at.Sample {
			f := &at.Sample[i]
			j.Flows = append(j.Flows, api.Flow{
				Time: time.Unix(0, f.End).UTC(), Src: f.SrcAddr.String(), Dst: f.DstAddr.String(),
				SrcPort: f.SrcPort, DstPort: f.DstPort, Protocol: f.Proto, TCPFlags: f.TCPFlags,
				Fragment: f.Fragment, Packets: f.Packets, Bytes: f.Bytes, SamplingRate: f.SamplingRate,
				Exporter: f.Exporter.String(), Line: detect.FlowLine(f, 1),
			})
		}
		fp := fingerprintOf(at.Fingerprint)
		j.Fingerprint = &fp
	}
	return j
}

// fingerprintOf is f as the API shows it; nil (unknown) for nil.
func fingerprintOf(f *detect.Fingerprint) *api.Fingerprint {
	if f == nil {
		return nil
	}
	j := &api.Fingerprint{Share: f.Share, Records: f.Records, Vectors: make([]api.FingerprintVector, 0, len(f.Vectors))}
	for i := range f.Vectors {
		v := &f.Vectors[i]
		jv := api.FingerprintVector{DstPorts: v.DstPorts, Fragment: v.Fragment, Share: v.Share}
		if p := v.ProtocolName(); p != "" {
			jv.Protocol = &p
		}
		if v.SrcPort != 0 {
			jv.SrcPorts = []uint16{v.SrcPort}
		}
		if t := v.TCPFlagsText(); t != "" {
			jv.TCPFlags = &t
		}
		if v.SizeMax != 0 {
			jv.PacketSize = &api.SizeRange{Min: v.SizeMin, Max: v.SizeMax}
		}
		j.Vectors = append(j.Vectors, jv)
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
	out := make([]api.Attack, 0, len(attacks))
	for _, at := range attacks {
		out = append(out, attackOf(at, a.banned(at.ID), false))
	}
	web.WriteJSON(w, http.StatusOK, out)
}

func (a *Appliance) getAttack(w http.ResponseWriter, r *http.Request) {
	at, ok := a.engine.Attack(r.PathValue("id"))
	if !ok {
		web.WriteError(w, http.StatusNotFound, "no attack with that id")
		return
	}
	web.WriteJSON(w, http.StatusOK, attackOf(at, a.banned(at.ID), true))
}

// banOf is b as the API lists it.
func banOf(b mitigation.Ban) api.Ban {
	j := api.Ban{
		Prefix: b.Prefix.String(), Direction: b.Direction.String(), Actions: b.Actions,
		Reason: b.Reason, AttackID: b.AttackID,
		CreatedAt: b.CreatedAt.UTC(), ExpiresAt: b.ExpiresAt.UTC(), Routers: make([]api.BanRouter, 0, len(b.Routers)),
	}
	if j.Actions == nil {
		j.Actions = []routeros.Action{}
	}
	for _, r := range b.Routers {
		state := r.State.String()
		if r.State == mitigation.BanFailed {
			state += ": " + r.Error
		}
		j.Routers = append(j.Routers, api.BanRouter{Address: r.Address, State: state})
	}
	return j
}

func (a *Appliance) listBans(w http.ResponseWriter, r *http.Request) {
	bans := a.mitigator.Bans()
	out := make([]api.Ban, 0, len(bans))
	for _, b := range bans {
		out = append(out, banOf(b))
	}
	web.WriteJSON(w, http.StatusOK, out)
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
	var req api.BanRequest
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
		// Whole seconds from 1s to 8760h is the manager's ttl rule (422);
		// what is not a positive duration at all is a bad request.
		ttl, err = time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			web.WriteError(w, http.StatusBadRequest, "ttl: expected a Go duration of at least 1s, such as 10m")
			return
		}
	}
	dir, ok := parseDirection(req.Direction)
	if !ok {
		web.WriteError(w, http.StatusBadRequest, "direction: expected in or out")
		return
	}
	// The manager makes the reason one bounded line; "" is "manual".
	ban, err := a.mitigator.AddManual(r.Context(), prefix, ttl, req.Reason, dir)
	var writeErr *storage.WriteError
	var refused *mitigation.RefusedError
	switch {
	case errors.As(err, &refused):
		// Well-formed but against the ban-safety rules: 422, naming the rule.
		web.WriteError(w, http.StatusUnprocessableEntity, refused.Error())
		return
	case errors.Is(err, mitigation.ErrWhitelisted):
		web.WriteError(w, http.StatusConflict, prefix.String()+" is in FLOWSHIELD_WHITELIST")
		return
	case errors.Is(err, mitigation.ErrMaxBans):
		web.WriteError(w, http.StatusConflict, "FLOWSHIELD_MAX_BANS reached")
		return
	case errors.As(err, &writeErr):
		// The ban is in force in memory and on the routers; only its
		// record is missing, and the write is retried. No file path in
		// the answer: the log has it.
		web.WriteError(w, http.StatusServiceUnavailable, "the ban is in force but the store could not save it (retried; see the log)")
		return
	case err != nil:
		web.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	web.WriteJSON(w, http.StatusCreated, banOf(ban))
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
	err = a.mitigator.Unban(r.Context(), prefix)
	if errors.Is(err, mitigation.ErrNotFound) {
		web.WriteError(w, http.StatusNotFound, "no ban for "+prefix.String())
		return
	}
	var writeErr *storage.WriteError
	if errors.As(err, &writeErr) {
		web.WriteError(w, http.StatusServiceUnavailable, "the ban is lifted but the store could not save that (retried; see the log)")
		return
	}
	if err != nil {
		web.WriteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
