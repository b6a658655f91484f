package netflow

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/telemetry/promtext"
)

// Template state and its bounds.
//
// Templates are kept per scope (exporter address, version, observation
// domain), which any sender can create: the state is bounded four ways,
// each counted (Stats, Metrics).
//   - Scopes: at most MaxExporters. A new scope takes the place of the
//     least recently used one rather than being refused, so a flood of
//     spoofed scopes cannot lock real exporters out.
//   - Scopes per exporter address: at most MaxDomainsPerExporter; a new
//     domain evicts that address's least recently used one, so one sender
//     cycling observation domains only churns its own scopes.
//   - Template memory: the templates' estimated bytes (template.cost) stay
//     within TemplateBudget; a template that would exceed it evicts the
//     least recently used scopes of others, and is refused only when it
//     cannot fit even then. Within a scope MaxTemplatesPerExporter bounds
//     the count (refused beyond).
//   - Idle expiry: a scope not heard from (no datagram at all) for
//     IdleTimeout is dropped, and is never in a snapshot, so what is saved
//     to the store is only what exporters still use.
//
// "Least recently used" ranks first by the last data set decoded with the
// scope's templates, then by the last datagram heard, then by age: a
// scope that only ever received templates (what a template flood creates,
// and what a restore brings back before its exporter speaks) goes before
// any scope that carries flows, and an exporter whose flows are being
// decoded is the last to go.
//
// Time is the datagrams' receive time, not a clock read: the data path
// only compares it with two atomics per datagram and stores them at most
// every touchEvery, so decoding stays allocation-free and as fast as it
// was. The decoder's clock is the newest receive time seen; idle expiry
// and snapshots are measured against it, and restored scopes count as
// heard when the first datagram arrives.
//
// Scopes live in scopeShards copy-on-write maps that the data path reads
// without locks; changing one copies a 64th of the scopes, which keeps a
// flood of new scopes at capacity cheap.

const (
	scopeShardBits = 6
	scopeShards    = 1 << scopeShardBits

	// touchEvery is how stale a scope's heard and used times may get
	// before the data path stores them again (Unix ns).
	touchEvery = int64(100e6)
	// clockEvery is how far the decoder's clock may lag the datagrams.
	clockEvery = int64(1e9)
)

// Eviction reasons, for the counters.
const (
	evictScopes  = iota // MaxExporters
	evictDomains        // MaxDomainsPerExporter
	evictBudget         // TemplateBudget
	numEvictReasons
)

var evictReasonNames = [numEvictReasons]string{"scope_limit", "domain_limit", "budget"}

// stateCounters count what the bounds did. They are atomics so that Stats
// and the metrics read them without the decoder's lock.
type stateCounters struct {
	evicted         [numEvictReasons]atomic.Uint64
	expired         atomic.Uint64
	refusedPerScope atomic.Uint64 // MaxTemplatesPerExporter
	refusedBudget   atomic.Uint64 // TemplateBudget, with nothing left to evict
	scopes          atomic.Int64  // mirrors of the state under mu, for readers
	templates       atomic.Int64
	templateBytes   atomic.Int64
}

// shardOf spreads scope keys over the shards.
func shardOf(k scopeKey) int {
	a := k.addr.As16()
	h := binary.LittleEndian.Uint64(a[8:]) ^ binary.LittleEndian.Uint64(a[:8])*0x9e3779b97f4a7c15 ^
		uint64(k.domain)<<16 ^ uint64(k.version)
	h *= 0xbf58476d1ce4e5b9
	return int(h >> (64 - scopeShardBits))
}

// lookupScope returns the scope for k, or nil. It takes no lock.
func (d *Decoder) lookupScope(k scopeKey) *scope {
	return (*d.shards[shardOf(k)].Load())[k]
}

// eachScope calls fn for every scope; a consistent view only under mu.
func (d *Decoder) eachScope(fn func(k scopeKey, s *scope)) {
	for i := range d.shards {
		for k, s := range *d.shards[i].Load() {
			fn(k, s)
		}
	}
}

// tick advances the decoder's clock to now, at most every clockEvery.
func (d *Decoder) tick(now int64) {
	if now-d.clock.Load() >= clockEvery {
		d.advance(now)
	}
}

func (d *Decoder) advance(now int64) {
	d.firstClock.CompareAndSwap(0, now)
	for range 8 { // bounded: losing a race to a newer time is fine
		c := d.clock.Load()
		if now-c < clockEvery || d.clock.CompareAndSwap(c, now) {
			return
		}
	}
}

// touch records that a datagram for s arrived at now; data says it
// carried data sets for s's templates.
func (s *scope) touch(now int64, data bool) {
	if now-s.heard.Load() >= touchEvery {
		s.heard.Store(now)
	}
	if data && now-s.used.Load() >= touchEvery {
		s.used.Store(now)
	}
}

// idle reports whether s has not been heard from for IdleTimeout at the
// decoder's clock. A scope restored before any datagram arrived counts as
// heard at the first one.
func (d *Decoder) idle(s *scope) bool {
	heard := max(s.heard.Load(), d.firstClock.Load())
	return d.clock.Load()-heard > int64(d.cfg.IdleTimeout)
}

// lessRecent reports whether a is a better eviction victim than b.
func lessRecent(a, b *scope) bool {
	if au, bu := a.used.Load(), b.used.Load(); au != bu {
		return au < bu
	}
	if ah, bh := a.heard.Load(), b.heard.Load(); ah != bh {
		return ah < bh
	}
	return a.seq < b.seq
}

// victimLocked returns the least recently used scope that ok accepts, or
// nil. O(scopes), only when a bound is reached.
func (d *Decoder) victimLocked(ok func(k scopeKey, s *scope) bool) *scope {
	var v *scope
	d.eachScope(func(k scopeKey, s *scope) {
		if ok(k, s) && (v == nil || lessRecent(s, v)) {
			v = s
		}
	})
	return v
}

// scopeFor returns the scope for k, creating it, and making room for it,
// if needed; now is the datagram's receive time (the decoder's clock for a
// restore). It returns nil only when no scope can be kept at all.
func (d *Decoder) scopeFor(k scopeKey, now int64) *scope {
	if s := d.lookupScope(k); s != nil {
		s.touch(now, false)
		return s
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.lookupScope(k); s != nil {
		s.touch(now, false)
		return s
	}
	d.expireLocked()
	if d.perAddr[k.addr] >= d.cfg.MaxDomainsPerExporter {
		if v := d.victimLocked(func(vk scopeKey, _ *scope) bool { return vk.addr == k.addr }); v != nil {
			d.evictLocked(v, evictDomains)
		}
	}
	if d.nscopes >= d.cfg.MaxExporters {
		if v := d.victimLocked(func(scopeKey, *scope) bool { return true }); v != nil {
			d.evictLocked(v, evictScopes)
		}
	}
	if d.nscopes >= d.cfg.MaxExporters || d.perAddr[k.addr] >= d.cfg.MaxDomainsPerExporter {
		return nil // bounds of 0: nothing can be kept
	}
	d.seq++
	s := newScope(k, d.seq)
	s.touch(now, false)
	d.putShardLocked(k, s)
	d.nscopes++
	d.perAddr[k.addr]++
	d.counters.scopes.Store(int64(d.nscopes))
	return s
}

// putShardLocked publishes s under k (nil removes k) in a copy of k's shard.
func (d *Decoder) putShardLocked(k scopeKey, s *scope) {
	sh := &d.shards[shardOf(k)]
	m := maps.Clone(*sh.Load())
	if s == nil {
		delete(m, k)
	} else {
		m[k] = s
	}
	sh.Store(&m)
}

// evictLocked drops scope s and its templates; reason < 0 is an expiry.
func (d *Decoder) evictLocked(s *scope, reason int) {
	d.putShardLocked(s.key, nil)
	s.evicted = true
	d.nscopes--
	if d.perAddr[s.key.addr]--; d.perAddr[s.key.addr] <= 0 {
		delete(d.perAddr, s.key.addr)
	}
	d.templateBytes -= s.bytes
	d.templates -= len(*s.templates.Load())
	d.publishLocked()
	if reason < 0 {
		d.counters.expired.Add(1)
	} else {
		d.counters.evicted[reason].Add(1)
	}
}

func (d *Decoder) publishLocked() {
	d.counters.scopes.Store(int64(d.nscopes))
	d.counters.templates.Store(int64(d.templates))
	d.counters.templateBytes.Store(d.templateBytes)
}

// maybeExpire sweeps idle scopes when a sweep is due. The template path
// calls it, so that idle scopes go even when no new scope comes: routers
// re-send templates every few minutes.
func (d *Decoder) maybeExpire() {
	if d.clock.Load() < d.nextSweep.Load() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireLocked()
}

// expireLocked drops idle scopes, at most every IdleTimeout/8 of the
// decoder's clock: a sweep costs O(scopes).
func (d *Decoder) expireLocked() {
	now := d.clock.Load()
	if now < d.nextSweep.Load() {
		return
	}
	d.nextSweep.Store(now + int64(d.cfg.IdleTimeout)/8)
	var idle []*scope
	d.eachScope(func(_ scopeKey, s *scope) {
		if d.idle(s) {
			idle = append(idle, s)
		}
	})
	for _, s := range idle {
		d.evictLocked(s, -1)
	}
}

// templateMapEntry approximates what one entry of a scope's template map
// costs besides the template.
const templateMapEntry = 32

// cost estimates the heap bytes of a compiled template: the struct, its
// field list, the raw specifiers, the ops and the fast plan. It is what
// TemplateBudget counts (TestTemplateBudgetMatchesHeap checks it against
// the heap).
func (t *template) cost() int64 {
	const op = int64(unsafe.Sizeof(fieldOp{}))
	n := int64(unsafe.Sizeof(template{})) + templateMapEntry
	n += int64(cap(t.fields))*int64(unsafe.Sizeof(TemplateField{})) + int64(cap(t.raw))
	n += int64(cap(t.ops)+cap(t.allKinds)) * op
	if t.fast != nil {
		n += int64(unsafe.Sizeof(fastPlan{})) + int64(cap(t.fast.rest))*op
	}
	return n
}

// installLocked publishes t in s within the bounds; it reports the error
// kind of a refusal.
func (d *Decoder) installLocked(s *scope, t *template) (flow.ErrorKind, bool) {
	if s.evicted {
		// Dropped by another goroutine meanwhile: the exporter re-sends
		// its templates, and they will find a new scope.
		return 0, true
	}
	old := *s.templates.Load()
	prev, exists := old[t.id]
	if !exists && len(old) >= d.cfg.MaxTemplatesPerExporter {
		d.counters.refusedPerScope.Add(1)
		return flow.ErrTooManyRecords, false
	}
	t.bytes = t.cost()
	delta := t.bytes
	if exists {
		delta -= prev.bytes
	}
	for d.templateBytes+delta > d.cfg.TemplateBudget {
		v := d.victimLocked(func(_ scopeKey, v *scope) bool { return v != s })
		if v == nil {
			d.counters.refusedBudget.Add(1)
			return flow.ErrTooManyRecords, false
		}
		d.evictLocked(v, evictBudget)
	}
	m := make(map[uint16]*template, len(old)+1)
	maps.Copy(m, old)
	m[t.id] = t
	s.templates.Store(&m)
	s.bytes += delta
	d.templateBytes += delta
	if !exists {
		d.templates++
	}
	d.publishLocked()
	return 0, true
}

// withdrawLocked removes template id from s (IPFIX withdrawal).
func (d *Decoder) withdrawLocked(s *scope, id uint16) {
	old := *s.templates.Load()
	t, ok := old[id]
	if !ok || s.evicted {
		return
	}
	m := maps.Clone(old)
	delete(m, id)
	s.templates.Store(&m)
	s.bytes -= t.bytes
	d.templateBytes -= t.bytes
	d.templates--
	d.publishLocked()
}

// Stats describes the template state against its bounds, and what the
// bounds did since New.
type Stats struct {
	Scopes         int   `json:"scopes"` // exporter scopes (address, version, domain) kept
	MaxScopes      int   `json:"max_scopes"`
	Templates      int   `json:"templates"`       // templates kept, all scopes
	TemplateBytes  int64 `json:"template_bytes"`  // their estimated memory
	TemplateBudget int64 `json:"template_budget"` // the bound of TemplateBytes
	// ScopesEvicted counts scopes dropped, least recently used first, to
	// make room: for a new scope (scope_limit), for a new domain of an
	// address at its cap (domain_limit), for a template (budget).
	ScopesEvicted map[string]uint64 `json:"scopes_evicted"`
	ScopesExpired uint64            `json:"scopes_expired"` // not heard from for IdleTimeout
	// TemplatesRefused counts valid templates not kept: past
	// MaxTemplatesPerExporter in their scope (per_scope), or larger than
	// the budget left after evicting every other scope (budget). Each is
	// also a flow.ErrTooManyRecords decode error of its exporter.
	TemplatesRefused map[string]uint64 `json:"templates_refused"`
}

// Stats returns the template state's figures and counters.
func (d *Decoder) Stats() Stats {
	c := &d.counters
	s := Stats{
		Scopes: int(c.scopes.Load()), MaxScopes: d.cfg.MaxExporters,
		Templates: int(c.templates.Load()), TemplateBytes: c.templateBytes.Load(), TemplateBudget: d.cfg.TemplateBudget,
		ScopesEvicted: map[string]uint64{}, ScopesExpired: c.expired.Load(),
		TemplatesRefused: map[string]uint64{"per_scope": c.refusedPerScope.Load(), "budget": c.refusedBudget.Load()},
	}
	for r := range c.evicted {
		s.ScopesEvicted[evictReasonNames[r]] = c.evicted[r].Load()
	}
	return s
}

// help documents the decoder's series (promtext fills the HELP lines the
// metrics library writes empty).
var help = map[string]string{
	"flowshield_netflow_scopes":                  "Exporter scopes (address, version, observation domain) whose templates are kept.",
	"flowshield_netflow_scopes_limit":            "The most exporter scopes kept (MaxExporters).",
	"flowshield_netflow_templates":               "NetFlow v9 and IPFIX templates kept, all scopes.",
	"flowshield_netflow_template_bytes":          "Estimated memory of the templates kept.",
	"flowshield_netflow_template_budget_bytes":   "The bound of the templates' estimated memory (TemplateBudget).",
	"flowshield_netflow_scopes_expired_total":    "Scopes dropped after IdleTimeout without a datagram.",
	"flowshield_netflow_scopes_evicted_total":    "Scopes dropped, least recently used first, to make room: for a new scope (scope_limit), a new domain of an address at its cap (domain_limit), a template (budget).",
	"flowshield_netflow_templates_refused_total": "Valid templates not kept: past the per-scope cap (per_scope), or larger than the budget left after evicting every other scope (budget).",
}

func init() { promtext.Describe(help) }

// Metrics returns the decoder's series (flowshield_netflow_*), for
// metrics.RegisterSet. They are written from Stats at each scrape.
func (d *Decoder) Metrics() *metrics.Set {
	d.metricsOnce.Do(func() {
		d.metrics = metrics.NewSet()
		d.metrics.RegisterMetricsWriter(d.writeMetrics)
	})
	return d.metrics
}

func (d *Decoder) writeMetrics(w io.Writer) {
	s := d.Stats()
	metrics.WriteGaugeUint64(w, "flowshield_netflow_scopes", uint64(s.Scopes))
	metrics.WriteGaugeUint64(w, "flowshield_netflow_scopes_limit", uint64(s.MaxScopes))
	metrics.WriteGaugeUint64(w, "flowshield_netflow_templates", uint64(s.Templates))
	metrics.WriteGaugeUint64(w, "flowshield_netflow_template_bytes", uint64(max(s.TemplateBytes, 0)))
	metrics.WriteGaugeUint64(w, "flowshield_netflow_template_budget_bytes", uint64(s.TemplateBudget))
	metrics.WriteCounterUint64(w, "flowshield_netflow_scopes_expired_total", s.ScopesExpired)
	labelled := func(name, label string, values map[string]uint64) {
		metrics.WriteMetadataIfNeeded(w, name, "counter")
		for _, k := range slices.Sorted(maps.Keys(values)) {
			fmt.Fprintf(w, "%s{%s=%q} %d\n", name, label, k, values[k])
		}
	}
	labelled("flowshield_netflow_scopes_evicted_total", "reason", s.ScopesEvicted)
	labelled("flowshield_netflow_templates_refused_total", "reason", s.TemplatesRefused)
}
