package netflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// t0 is the receive time the state tests start from.
const t0 = int64(1_700_000_000_000_000_000)

var (
	stateFields = []fieldSpec{f(8, 4), f(12, 4), f(2, 4), f(1, 4)}
	stateRec    = encodeRecord(stateFields, flowSpec{src: netip.MustParseAddr("198.51.100.1"), dst: netip.MustParseAddr("203.0.113.1"), packets: 1, bytes: 60})
)

// decodeAt decodes payloads from one exporter received at t0+at.
func decodeAt(d *Decoder, from netip.Addr, at time.Duration, payloads ...[]byte) *collectSink {
	sink := &collectSink{}
	var rec flow.Record
	for _, p := range payloads {
		d.Decode(&flow.Datagram{Exporter: from, Payload: p, Received: t0 + int64(at)}, &rec, sink)
	}
	return sink
}

func tmplDomain(domain uint32) []byte {
	return v9Datagram(1000, 1_700_000_000, domain, set(0, tmplRecord(256, stateFields...)))
}

func dataDomain(domain uint32) []byte {
	return v9Datagram(1000, 1_700_000_000, domain, set(256, stateRec))
}

func addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// decodes reports whether a's domain 0 still decodes its data.
func decodes(d *Decoder, a netip.Addr, at time.Duration) bool {
	s := decodeAt(d, a, at, dataDomain(0))
	return len(s.recs) == 1 && s.errorCount() == 0
}

// TestTemplateCost pins the figures DefaultConfiguration's budget is
// explained with.
func TestTemplateCost(t *testing.T) {
	cost := func(version uint16, fs []fieldSpec) int64 {
		var fields []TemplateField
		for _, f := range fs {
			fields = append(fields, TemplateField{Type: f.typ, Length: f.length, Enterprise: f.pen})
		}
		tm, ok := compile(version, false, 0, fields)
		if !ok {
			t.Fatalf("template of %d fields not compiled", len(fs))
		}
		tm.raw = appendFields(nil, fs)
		return tm.cost()
	}
	for _, fs := range [][]fieldSpec{routerOSV9Fields, routerOSV9v6Fields, routerOSIPFIXFields} {
		if c := cost(9, fs); c < 500 || c > 1100 {
			t.Errorf("RouterOS template of %d fields costs %d bytes, documented as about 1 KB", len(fs), c)
		}
	}
	var largest int64
	catalog := []uint16{8, 12, 7, 11, 4, 6, 1, 2, 10, 14, 22, 21, 100}
	for _, pen := range []uint32{0, 9} {
		var fs []fieldSpec
		for i := range DefaultConfiguration().MaxFieldsPerTemplate {
			fs = append(fs, fieldSpec{typ: catalog[i%len(catalog)], length: 4, pen: pen})
		}
		largest = max(largest, cost(10, fs))
	}
	t.Logf("RouterOS v9 template: %d bytes; largest accepted: %d bytes; default budget %d bytes", cost(9, routerOSV9Fields), largest, DefaultConfiguration().TemplateBudget)
	if largest > 7<<10 {
		t.Errorf("largest template costs %d bytes, documented as up to 7 KB", largest)
	}
}

// TestScopeLimitEvicts: at MaxExporters a new scope takes the place of the
// least recently used one: template-only scopes first, then the one whose
// flows stopped longest ago. An exporter whose flows are being decoded
// keeps its templates.
func TestScopeLimitEvicts(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.MaxExporters = 3
	d := New(cfg)
	a, b, c, x, y := addr(1), addr(2), addr(3), addr(4), addr(5)
	decodeAt(d, a, 1*time.Second, tmplDomain(0), dataDomain(0))
	decodeAt(d, b, 2*time.Second, tmplDomain(0), dataDomain(0))
	decodeAt(d, c, 3*time.Second, tmplDomain(0)) // templates only
	decodeAt(d, a, 4*time.Second, dataDomain(0))
	decodeAt(d, x, 5*time.Second, tmplDomain(0), dataDomain(0)) // evicts c
	if decodes(d, c, 5*time.Second) || !decodes(d, a, 5*time.Second) || !decodes(d, b, 6*time.Second) {
		t.Fatalf("after x: want c evicted, a and b kept: %+v", d.Exporters())
	}
	decodeAt(d, y, 7*time.Second, tmplDomain(0)) // evicts a (used at 5s; b at 6s, x at 5s but later)
	if decodes(d, a, 8*time.Second) || !decodes(d, b, 8*time.Second) || !decodes(d, x, 8*time.Second) {
		t.Fatalf("after y: want a evicted: %+v", d.Exporters())
	}
	s := d.Stats()
	if s.Scopes != 3 || s.ScopesEvicted["scope_limit"] != 2 || s.Templates != 3 || s.TemplateBytes <= 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestDomainLimit: one address cycling observation domains churns its own
// scopes only.
func TestDomainLimit(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.MaxDomainsPerExporter = 2
	d := New(cfg)
	a, b := addr(1), addr(2)
	decodeAt(d, b, 0, tmplDomain(0), dataDomain(0))
	for dom := range uint32(50) {
		decodeAt(d, a, time.Duration(dom+1)*time.Second, tmplDomain(dom), dataDomain(dom))
	}
	if n := d.perAddr[a]; n != 2 {
		t.Errorf("%d scopes of a, want 2", n)
	}
	if !decodes(d, b, time.Minute) {
		t.Errorf("b lost its templates to a's domains")
	}
	if s := d.Stats(); s.Scopes != 3 || s.ScopesEvicted["domain_limit"] != 48 || s.ScopesEvicted["scope_limit"] != 0 {
		t.Errorf("stats %+v", s)
	}
	// The newest two domains of a are the ones kept.
	if s := decodeAt(d, a, time.Minute, dataDomain(49), dataDomain(48), dataDomain(47)); len(s.recs) != 2 || s.errors[flow.ErrNoTemplate] != 1 {
		t.Errorf("a's domains: %d records, errors %v", len(s.recs), s.errors)
	}
}

// TestTemplateBudget: the templates' cost stays within the budget; a
// template beyond it evicts other scopes, least recently used first, and
// one that cannot fit even alone is refused and counted.
func TestTemplateBudget(t *testing.T) {
	one := New(DefaultConfiguration())
	decodeAt(one, addr(1), 0, tmplDomain(0))
	per := one.Stats().TemplateBytes
	cfg := DefaultConfiguration()
	cfg.TemplateBudget = 3*per + per/2 // room for three
	d := New(cfg)
	for i := range 3 {
		decodeAt(d, addr(i), time.Duration(i)*time.Second, tmplDomain(0), dataDomain(0))
	}
	decodeAt(d, addr(0), 10*time.Second, dataDomain(0)) // addr(1) is now the least recently used
	decodeAt(d, addr(9), 11*time.Second, tmplDomain(0))
	if decodes(d, addr(1), 12*time.Second) || !decodes(d, addr(0), 12*time.Second) || !decodes(d, addr(2), 12*time.Second) {
		t.Fatalf("want addr(1) evicted: %+v", d.Exporters())
	}
	s := d.Stats()
	if s.TemplateBytes > s.TemplateBudget || s.Templates != 3 || s.ScopesEvicted["budget"] != 1 || s.TemplateBudget != cfg.TemplateBudget {
		t.Errorf("stats %+v", s)
	}

	// A budget below one template: refused, counted, reported.
	cfg.TemplateBudget = per / 2
	d = New(cfg)
	sink := decodeAt(d, addr(1), 0, tmplDomain(0), dataDomain(0))
	if sink.errors[flow.ErrTooManyRecords] != 1 || sink.errors[flow.ErrNoTemplate] != 1 || d.Stats().TemplatesRefused["budget"] != 1 || d.Stats().TemplateBytes != 0 {
		t.Errorf("errors %v stats %+v", sink.errors, d.Stats())
	}
	// Per scope: refused past MaxTemplatesPerExporter, counted apart.
	cfg = DefaultConfiguration()
	cfg.MaxTemplatesPerExporter = 1
	d = New(cfg)
	sink = decodeAt(d, addr(1), 0, v9Datagram(1000, 1, 0, set(0, append(tmplRecord(256, stateFields...), tmplRecord(257, stateFields...)...))))
	if sink.errors[flow.ErrTooManyRecords] != 1 || d.Stats().TemplatesRefused["per_scope"] != 1 {
		t.Errorf("errors %v stats %+v", sink.errors, d.Stats())
	}
	// Replacing and withdrawing templates keep the accounting exact.
	d = New(DefaultConfiguration())
	decodeAt(d, addr(1), 0, ipfixDatagram(1, 0, set(2, tmplRecord(300, stateFields...))))
	decodeAt(d, addr(1), 0, ipfixDatagram(1, 0, set(2, tmplRecord(300, append(stateFields, f(7, 2), f(11, 2))...))))
	if s := d.Stats(); s.Templates != 1 || s.TemplateBytes <= per {
		t.Errorf("after replacement %+v", s)
	}
	decodeAt(d, addr(1), 0, ipfixDatagram(1, 0, set(2, be16(be16(nil, 300), 0))))
	if s := d.Stats(); s.Templates != 0 || s.TemplateBytes != 0 || s.Scopes != 1 {
		t.Errorf("after withdrawal %+v", s)
	}
}

// TestIdleExpiry: a scope silent for IdleTimeout leaves the snapshot at
// once, and the state at the next sweep, which the template sets
// exporters keep re-sending bring; restored scopes count as heard when
// traffic starts.
func TestIdleExpiry(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.IdleTimeout = time.Minute
	d := New(cfg)
	a, b, c := addr(1), addr(2), addr(3)
	decodeAt(d, a, 0, tmplDomain(0), dataDomain(0))
	for s := 0; s <= 50; s += 10 {
		decodeAt(d, b, time.Duration(s)*time.Second, tmplDomain(0), dataDomain(0))
	}
	decodeAt(d, b, 65*time.Second, dataDomain(0)) // data only: no sweep
	snap := d.SnapshotTemplates()
	if len(snap) != 1 || snap[0].Exporter != b {
		t.Errorf("snapshot at 65 s holds %+v, want only b", snap)
	}
	if len(d.Exporters()) != 2 {
		t.Errorf("a swept before a sweep was due")
	}
	decodeAt(d, b, 70*time.Second, tmplDomain(0)) // b's template refresh sweeps
	decodeAt(d, c, 75*time.Second, tmplDomain(0))
	if ex := d.Exporters(); len(ex) != 2 || ex[0].Exporter != b || ex[1].Exporter != c {
		t.Errorf("exporters %+v, want b and c", ex)
	}
	if s := d.Stats(); s.ScopesExpired != 1 || s.Scopes != 2 {
		t.Errorf("stats %+v", s)
	}
	for s := 80; s <= 150; s += 10 {
		decodeAt(d, b, time.Duration(s)*time.Second, tmplDomain(0), dataDomain(0))
	}
	if ex := d.Exporters(); len(ex) != 1 || ex[0].Exporter != b || d.Stats().ScopesExpired != 2 {
		t.Errorf("exporters %+v stats %+v, want c expired", ex, d.Stats())
	}

	// Restored at boot, before any datagram: kept for IdleTimeout after the
	// first one, then gone if its exporter stays silent.
	d2 := New(cfg)
	d2.RestoreTemplates(snap)
	decodeAt(d2, c, 10*time.Minute, tmplDomain(0))
	if len(d2.SnapshotTemplates()) != 2 {
		t.Errorf("restored scope not kept at the first datagram: %+v", d2.SnapshotTemplates())
	}
	decodeAt(d2, c, 11*time.Minute+time.Second, dataDomain(0))
	if snap := d2.SnapshotTemplates(); len(snap) != 1 || snap[0].Exporter != c {
		t.Errorf("silent restored scope still snapshotted: %+v", snap)
	}
}

// TestTemplateFloodBounded is the template flood of issue 13: one source
// sends the largest templates it may, cycling observation domains, and
// then ten thousand spoofed sources send a template each, while a real
// router keeps sending its templates and flows. Every bound holds, each
// is counted, the router's flows decode throughout, and the memory kept
// and the snapshot (what goes to the store) stay within the budget's
// figure. The peak heap is printed.
func TestTemplateFloodBounded(t *testing.T) {
	cfg := DefaultConfiguration()
	d := New(cfg)
	router := netip.MustParseAddr("192.0.2.1")
	const uptime = 3_600_000
	routerTmpl := v9Datagram(uptime, 1_700_000_000, 0, set(0, tmplRecord(256, routerOSV9Fields...)))
	routerData := v9Datagram(uptime, 1_700_000_000, 0, routerOSV9DataSet(256, routerOSV9Fields, 20, uptime))

	var big []fieldSpec
	for i := range cfg.MaxFieldsPerTemplate {
		big = append(big, fieldSpec{typ: []uint16{8, 12, 7, 11, 4, 6, 1, 2, 100}[i%9], length: 4, pen: uint32(i % 2)})
	}
	// Eight largest templates a datagram (~16 KB of specifiers).
	floodDatagram := func(domain uint32, first uint16) []byte {
		var body []byte
		for id := range uint16(8) {
			body = append(body, tmplRecord(first+id, big...)...)
		}
		return ipfixDatagram(1, domain, set(2, body))
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	flooder := netip.MustParseAddr("198.51.100.66")
	routerRecords, routerErrors := 0, 0
	at := time.Duration(0)
	router1 := func() {
		s := decodeAt(d, router, at, routerTmpl, routerData)
		routerRecords += len(s.recs)
		routerErrors += s.errorCount()
	}
	// First filling its 32 domains with 256 templates each (the budget),
	// then cycling new domains (the per-address cap).
	for i := range 2500 {
		at += time.Millisecond
		domain, first := uint32(i%32), uint16(256+8*((i/32)%32))
		if i >= 2000 {
			domain, first = uint32(i), 256
		}
		decodeAt(d, flooder, at, floodDatagram(domain, first))
		if i%20 == 0 {
			router1()
			sample()
		}
		if st := d.Stats(); st.TemplateBytes > st.TemplateBudget {
			t.Fatalf("template bytes %d over the budget", st.TemplateBytes)
		}
		if i == 1999 {
			// The store's share at the fullest: the snapshot of a full
			// budget.
			full, err := json.Marshal(d.SnapshotTemplates())
			if err != nil {
				t.Fatal(err)
			}
			st := d.Stats()
			t.Logf("budget full: %d scopes, %d templates, %d template bytes of %d; snapshot %d B JSON",
				st.Scopes, st.Templates, st.TemplateBytes, st.TemplateBudget, len(full))
			if bound := 2 * cfg.TemplateBudget; int64(len(full)) > bound || st.TemplateBytes < cfg.TemplateBudget*9/10 {
				t.Errorf("snapshot of %d B (bound %d), or budget not full", len(full), bound)
			}
		}
	}
	if n := d.perAddr[flooder]; n > cfg.MaxDomainsPerExporter {
		t.Errorf("flooder holds %d scopes", n)
	}
	for i := range 10_000 {
		at += time.Millisecond
		decodeAt(d, addr(i), at, tmplDomain(uint32(i)))
		if i%100 == 0 {
			router1()
			sample()
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	live := int64(ms.HeapAlloc) - int64(base)
	st := d.Stats()
	snap, err := json.Marshal(d.SnapshotTemplates())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the floods: %d scopes, %d templates, %d template bytes of %d; live heap +%d B, peak heap +%d B; snapshot %d B JSON; evicted %v, refused %v",
		st.Scopes, st.Templates, st.TemplateBytes, st.TemplateBudget, live, int64(peak)-int64(base), len(snap), st.ScopesEvicted, st.TemplatesRefused)
	if routerErrors != 0 || routerRecords != 225*20 {
		t.Errorf("router: %d records, %d errors during the floods; want %d and none", routerRecords, routerErrors, 225*20)
	}
	if st.Scopes > cfg.MaxExporters || st.TemplateBytes > cfg.TemplateBudget || st.ScopesEvicted["domain_limit"] == 0 ||
		st.ScopesEvicted["budget"] == 0 || st.ScopesEvicted["scope_limit"] == 0 {
		t.Errorf("bounds not held or not counted: %+v", st)
	}
	// Live memory: the templates within their budget, plus scopes, shards
	// and samplers, whose count is bounded by MaxExporters.
	if bound := cfg.TemplateBudget + int64(cfg.MaxExporters)*2048; live > bound {
		t.Errorf("live heap grew by %d B, over %d", live, bound)
	}
	if bound := 2 * cfg.TemplateBudget; int64(len(snap)) > bound {
		t.Errorf("snapshot of %d B, over %d", len(snap), bound)
	}
}

// TestTemplateBudgetMatchesHeap: the cost the budget counts is close to
// the heap the templates take.
func TestTemplateBudgetMatchesHeap(t *testing.T) {
	d := New(DefaultConfiguration())
	var big []fieldSpec
	for i := range 200 {
		big = append(big, f([]uint16{8, 12, 7, 11, 4, 6, 1, 2, 100}[i%9], 4))
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	for scope := range uint32(8) {
		for id := range uint16(64) {
			decodeAt(d, exporterA, 0, ipfixDatagram(1, scope, set(2, tmplRecord(256+id, big...))))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap := int64(ms.HeapAlloc) - int64(before)
	cost := d.Stats().TemplateBytes
	t.Logf("%d templates: cost %d B, heap %d B", d.Stats().Templates, cost, heap)
	if heap < cost/2 || heap > cost*3/2 {
		t.Errorf("heap %d B for a counted cost of %d B", heap, cost)
	}
	runtime.KeepAlive(d)
}

// TestStateConcurrent decodes flows of steady exporters while others
// flood new scopes past every bound (run with -race).
func TestStateConcurrent(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.MaxExporters = 64
	cfg.TemplateBudget = 40 << 10
	d := New(cfg)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rec flow.Record
			sink := &countSink{}
			for i := range 2000 {
				from := addr(w*100000 + i)
				if w < 2 {
					from = addr(w) // steady
				}
				dg := flow.Datagram{Exporter: from, Payload: tmplDomain(uint32(i % 40)), Received: t0 + int64(i)*int64(time.Millisecond)}
				d.Decode(&dg, &rec, sink)
				dg.Payload = dataDomain(uint32(i % 40))
				d.Decode(&dg, &rec, sink)
				if i%500 == 0 {
					d.SnapshotTemplates()
					d.Exporters()
				}
			}
		}()
	}
	wg.Wait()
	s := d.Stats()
	n := 0
	d.eachScope(func(_ scopeKey, sc *scope) { n += len(*sc.templates.Load()) })
	if s.Scopes > cfg.MaxExporters || s.TemplateBytes > cfg.TemplateBudget || s.Templates != n || len(d.Exporters()) != s.Scopes {
		t.Errorf("stats %+v, %d templates held", s, n)
	}
}

func TestMetrics(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.MaxExporters = 1
	d := New(cfg)
	decodeAt(d, addr(1), 0, tmplDomain(0))
	decodeAt(d, addr(2), 0, tmplDomain(0))
	var b bytes.Buffer
	d.Metrics().WritePrometheus(&b)
	for _, want := range []string{
		"flowshield_netflow_scopes 1\n",
		"flowshield_netflow_scopes_limit 1\n",
		"flowshield_netflow_templates 1\n",
		fmt.Sprintf("flowshield_netflow_template_bytes %d\n", d.Stats().TemplateBytes),
		fmt.Sprintf("flowshield_netflow_template_budget_bytes %d\n", cfg.TemplateBudget),
		`flowshield_netflow_scopes_evicted_total{reason="scope_limit"} 1`,
		`flowshield_netflow_scopes_evicted_total{reason="budget"} 0`,
		"flowshield_netflow_scopes_expired_total 0\n",
		`flowshield_netflow_templates_refused_total{reason="per_scope"} 0`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}
