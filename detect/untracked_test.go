package detect

import (
	"fmt"
	"math"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// carpetTo spreads a source's flows over n addresses of 10.9.0.0/16, one
// flow each.
func carpetTo(n int) func(int, *flow.Record) {
	return func(i int, r *flow.Record) {
		udpTo("10.9.0.1", 0)(i, r)
		h := i % n
		r.DstAddr = netip.AddrFrom4([4]byte{10, 9, byte(h >> 8), byte(h)})
	}
}

func carpetConfig(maxHosts int) Configuration {
	cfg := testConfig()
	cfg.Networks = append(cfg.Networks, netip.MustParsePrefix("10.9.0.0/16"))
	cfg.HostGroups = []HostGroup{{Name: "customers", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
		Thresholds: cfg.Global, GroupPPS: 10000}}
	cfg.MaxHosts = maxHosts
	cfg.Shards = 4
	return cfg
}

// TestCarpetBombingBeyondMaxHosts: a carpet bombing over more addresses
// than the host table holds (each far under the host threshold, the sum
// over the group's) is declared at group scope as with a table that holds
// them all, with the same rates in the totals.
func TestCarpetBombingBeyondMaxHosts(t *testing.T) {
	const maxHosts = 64
	for _, addrs := range []int{2 * maxHosts, 8 * maxHosts} {
		pps := 25600.0
		run := func(maxHosts int) (*sim, Rates, Stats) {
			src := &source{from: 10 * time.Second, to: 40 * time.Second, pps: pps, size: 500, flows: addrs, record: carpetTo(addrs)}
			s := newSim(t, carpetConfig(maxHosts), src)
			s.tickPhase = 370 * time.Millisecond
			s.run(30 * time.Second)
			in, _ := s.e.Totals()
			st := s.e.Stats()
			s.run(70 * time.Second)
			return s, in, st
		}
		bounded, in, st := run(maxHosts)
		all, inAll, _ := run(1 << 20)
		for _, s := range []*sim{bounded, all} {
			starts := s.starts()
			if len(starts) != 1 || starts[0].Attack.Scope != ScopeGroup || starts[0].Attack.Group != "customers" ||
				starts[0].Attack.Threshold != "group_pps" {
				t.Fatalf("%d addresses: starts %+v, want one group_pps attack on customers", addrs, starts)
			}
		}
		if bounded.starts()[0].Time != all.starts()[0].Time {
			t.Errorf("%d addresses: declared at %v with %d hosts tracked, at %v with all", addrs,
				bounded.starts()[0].Time, maxHosts, all.starts()[0].Time)
		}
		if math.Abs(in.PPS-pps) > 1 || math.Abs(inAll.PPS-pps) > 1 {
			t.Errorf("%d addresses: total %v pps (%v with all tracked), want %v", addrs, in.PPS, inAll.PPS, pps)
		}
		a, _ := bounded.e.Attack(bounded.starts()[0].Attack.ID)
		if a.PeakPPS < pps*0.99 || len(a.Sample) == 0 {
			t.Errorf("%d addresses: group attack peak %v pps, %d sampled records", addrs, a.PeakPPS, len(a.Sample))
		}
		if st.HostsEvicted == 0 || st.UntrackedHosts == 0 || float64(st.UntrackedHosts) > 1.1*float64(addrs) {
			t.Errorf("%d addresses: stats %+v, want evictions, and up to the addresses' number untracked", addrs, st)
		}
		t.Logf("%d addresses, %d tracked at most: %d evicted, %d untracked in the last second", addrs, maxHosts, st.HostsEvicted, st.UntrackedHosts)
	}
}

// TestAttackedHostsStay: with every place of the table taken by a host
// under attack, those hosts are never evicted (their attacks go on, one
// each), and a carpet bombing over 2,000 other addresses is counted
// untracked: in the group's sum (declared), the untracked counters and the
// estimate of distinct untracked addresses.
func TestAttackedHostsStay(t *testing.T) {
	cfg := carpetConfig(8)
	cfg.Shards = 1
	var srcs []*source
	for i := 0; i < 8; i++ {
		srcs = append(srcs, &source{from: 5 * time.Second, to: 60 * time.Second, pps: 50000, size: 500, flows: 4,
			record: udpTo(netip.AddrFrom4([4]byte{10, 0, 7, byte(i + 1)}).String(), 0)})
	}
	const addrs = 2000
	srcs = append(srcs, &source{from: 15 * time.Second, to: 50 * time.Second, pps: 200000, size: 500, flows: addrs,
		record: carpetTo(addrs)})
	s := newSim(t, cfg, srcs...)
	s.tickPhase = 370 * time.Millisecond
	s.run(30 * time.Second)
	st := s.e.Stats()
	if st.HostsTracked != 8 || st.HostsEvicted != 0 || st.UntrackedRecords == 0 {
		t.Errorf("stats %+v, want the 8 attacked hosts tracked, none evicted, records untracked", st)
	}
	if math.Abs(float64(st.UntrackedHosts)-addrs) > 0.1*addrs {
		t.Errorf("%d untracked hosts estimated, want %d within 10 %%", st.UntrackedHosts, addrs)
	}
	if math.Abs(st.UntrackedInPPS-200000) > 1 {
		t.Errorf("untracked %v pps, want 200000", st.UntrackedInPPS)
	}
	s.run(90 * time.Second)
	hosts, groups := 0, 0
	for _, ev := range s.starts() {
		switch ev.Attack.Scope {
		case ScopeHost:
			hosts++
		case ScopeGroup:
			groups++
		}
	}
	if hosts != 8 || groups != 1 {
		t.Errorf("%d host and %d group attacks, want 8 (one per flooded host, never evicted) and 1", hosts, groups)
	}
	for _, a := range s.e.Attacks(false) {
		if a.Scope == ScopeHost && a.EndedAt.Before(t0.Add(60*time.Second)) {
			t.Errorf("attack on %v ended at %v, before its flood", a.IP, a.EndedAt.Sub(t0))
		}
	}
}

// TestEvictsTheQuietest: with a sample as large as the table, the hosts a
// new one replaces are the ones whose ring holds nothing, not the busy ones.
func TestEvictsTheQuietest(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHosts, cfg.Shards = evictSample, 1
	now := t0
	e, err := New(cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	rec := func(h byte, at time.Time) flow.Record {
		return flow.Record{SrcAddr: netip.MustParseAddr("198.51.100.1"), DstAddr: netip.AddrFrom4([4]byte{10, 0, 8, h}),
			Received: at.UnixNano(), Start: at.UnixNano() - 1e9, End: at.UnixNano(), Packets: 10, Bytes: 1000, Proto: flow.ProtoUDP}
	}
	var recs []flow.Record
	for h := range byte(evictSample) {
		recs = append(recs, rec(h, t0))
	}
	e.Consume(recs) // 8 hosts, the first half about to go quiet
	for sec := 1; sec <= 10; sec++ {
		now = t0.Add(time.Duration(sec) * time.Second)
		recs = recs[:0]
		for h := byte(evictSample / 2); h < evictSample; h++ {
			recs = append(recs, rec(h, now))
		}
		e.Consume(recs)
		e.Tick(now)
	}
	recs = recs[:0]
	for h := byte(100); h < 100+evictSample/2; h++ {
		recs = append(recs, rec(h, now))
	}
	e.Consume(recs)
	for h := range byte(evictSample) {
		_, _, ok := e.Host(netip.AddrFrom4([4]byte{10, 0, 8, h}))
		if want := h >= evictSample/2; ok != want {
			t.Errorf("10.0.8.%d tracked %v, want %v", h, ok, want)
		}
	}
	if st := e.Stats(); st.HostsEvicted != evictSample/2 {
		t.Errorf("%d evicted, want %d", st.HostsEvicted, evictSample/2)
	}
}

// TestHostTableMemoryBounded: a scan over 50 times MaxHosts addresses
// leaves the heap where 2 times left it: the table holds MaxHosts hosts,
// and what it cannot hold costs fixed rings.
func TestHostTableMemoryBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("heap figures under -race are not the program's")
	}
	const maxHosts = 2000
	cfg := testConfig()
	cfg.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cfg.MaxHosts = maxHosts
	now := t0
	e, err := New(cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]flow.Record, 256)
	next := 0
	scan := func(hosts int) {
		for ; hosts > 0; hosts -= len(recs) {
			for i := range recs {
				h := next
				next++
				recs[i] = flow.Record{SrcAddr: netip.MustParseAddr("198.51.100.1"),
					DstAddr:  netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)}),
					Received: now.UnixNano(), Start: now.UnixNano() - 1e9, End: now.UnixNano(), Packets: 1, Bytes: 60, Proto: flow.ProtoTCP}
			}
			e.Consume(recs)
			if next%(20*len(recs)) == 0 {
				now = now.Add(time.Second)
				e.Tick(now)
			}
		}
	}
	scan(2 * maxHosts)
	before := heapInUse()
	scan(48 * maxHosts)
	after := heapInUse()
	st := e.Stats()
	if st.HostsTracked > maxHosts || st.HostsEvicted < 48*maxHosts {
		t.Errorf("stats %+v", st)
	}
	grown := int64(after) - int64(before)
	t.Logf("%d hosts tracked of %d scanned: heap grew %d bytes over the last %d", st.HostsTracked, next, grown, 48*maxHosts)
	// Tracking them all would take 96,000 x 424 bytes (~40 MB).
	if grown > 256<<10 {
		t.Errorf("heap grew %d bytes while the table was full", grown)
	}
}

// TestExporterTableBounded: the exporter table keeps the MaxExporters
// heard from last (a record makes an exporter recent again), counts those
// it forgets, and a forgotten exporter's hold no longer holds group
// attacks.
func TestExporterTableBounded(t *testing.T) {
	cfg := testConfig()
	cfg.MaxExporters = 4
	e, err := New(cfg, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	exp := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	from := func(i int) {
		e.Consume([]flow.Record{{Exporter: exp(i), SrcAddr: netip.MustParseAddr("198.51.100.1"),
			DstAddr: netip.MustParseAddr("10.0.0.1"), Received: t0.UnixNano(), Start: t0.UnixNano() - 1e9, End: t0.UnixNano(),
			Packets: 1, Bytes: 100, Proto: flow.ProtoUDP}})
	}
	e.SetExporterTimers(exp(1), time.Minute, 15*time.Second, TimerOptions)
	if h := holdDuration(uint8(e.exporters.maxHold.Load())); h < time.Minute {
		t.Fatalf("max hold %v with a 1 min active timeout announced", h)
	}
	for _, i := range []int{2, 3, 4, 1, 5, 6} { // 1 again: 2 and 3 go, not 1
		from(i)
	}
	var got []int
	for _, st := range e.ExporterStats() {
		got = append(got, int(st.Exporter.As4()[3]))
	}
	if fmt.Sprint(got) != "[1 4 5 6]" {
		t.Errorf("exporters %v, want [1 4 5 6]", got)
	}
	if n := e.Stats().ExportersForgotten; n != 2 {
		t.Errorf("%d forgotten, want 2", n)
	}
	for i := 7; i <= 10; i++ {
		from(i)
	}
	if n, h := e.Stats().ExportersForgotten, e.exporters.maxHold.Load(); n != 6 || h != 0 {
		t.Errorf("%d forgotten, max hold %d once the exporter with the 1 min timeout is: want 6, 0", n, h)
	}
}

// TestEndedAttacksBounded: an attack storm (10,000 attacks, 200 new ones a
// second, each with its flow sample) keeps the last RetainEndedCount whole, and beyond them stays
// within MaxEndedBytes, shedding details before forgetting; the heap it
// leaves is printed and bounded.
func TestEndedAttacksBounded(t *testing.T) {
	cfg := testConfig()
	cfg.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cfg.EndAfter = 2 * time.Second
	cfg.DetailsAfter = time.Second
	cfg.IdleTimeout = 10 * time.Second
	cfg.RetainEndedCount = 200
	cfg.MaxEndedBytes = 4 << 20
	cfg.MaxSampledAttacks = 0 // every attack keeps a sample
	now := t0
	e, err := New(cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	before := heapInUse()
	const perSecond, seconds = 200, 50
	recs := make([]flow.Record, 0, perSecond*cfg.SampleFlows)
	ends := 0
	for sec := 0; sec < seconds+30; sec++ {
		now = t0.Add(time.Duration(sec) * time.Second)
		recs = recs[:0]
		// each host flooded for two seconds: the second one's records
		// make its flow sample
		for h := max(sec-1, 0) * perSecond; h < min(sec+1, seconds)*perSecond; h++ {
			for f := 0; f < cfg.SampleFlows; f++ {
				recs = append(recs, flow.Record{SrcAddr: netip.AddrFrom4([4]byte{198, 51, 100, byte(f)}),
					DstAddr:  netip.AddrFrom4([4]byte{10, byte(h >> 16), byte(h >> 8), byte(h)}),
					Received: now.UnixNano(), Start: now.UnixNano() - 9e8, End: now.UnixNano() - 1e7,
					Packets: 5000, Bytes: 5000 * 500, Proto: flow.ProtoUDP, SrcPort: 53, DstPort: uint16(f)})
			}
		}
		e.Consume(recs)
		for _, ev := range e.Tick(now) {
			if ev.Kind == AttackEnd {
				ends++
			}
		}
	}
	st := e.Stats()
	if ends != perSecond*seconds || st.HostsTracked != 0 {
		t.Fatalf("%d attacks ended, %d hosts tracked: want %d, 0", ends, st.HostsTracked, perSecond*seconds)
	}
	all := e.Attacks(false)
	if len(all) != st.EndedAttacks || st.EndedAttacks < cfg.RetainEndedCount || st.EndedForgotten == 0 || st.EndedDetailsShed == 0 ||
		st.EndedAttacks+int(st.EndedForgotten) != ends {
		t.Errorf("stats %+v, %d listed", st, len(all))
	}
	whole := 0
	for i, a := range all {
		full, _ := e.Attack(a.ID)
		hasAll := full.Details != "" && len(full.Sample) > 0
		if i < cfg.RetainEndedCount && !hasAll {
			t.Fatalf("attack %d from the newest lost its details or sample: %d details bytes, %d records", i, len(full.Details), len(full.Sample))
		}
		if hasAll {
			whole++
		}
	}
	last := 0 // the last RetainEndedCount's bytes, kept whatever the budget
	for i := len(e.ended) - cfg.RetainEndedCount; i < len(e.ended); i++ {
		last += attackBytes(&e.ended[i])
	}
	perWhole, perBare := last/cfg.RetainEndedCount, attackBytes(&e.ended[0])
	if whole != cfg.RetainEndedCount || st.EndedBytes > max(cfg.MaxEndedBytes, last) {
		t.Errorf("%d whole, %d bytes estimated: want %d, at most %d", whole, st.EndedBytes, cfg.RetainEndedCount, max(cfg.MaxEndedBytes, last))
	}
	after := heapInUse()
	t.Logf("%d ended attacks kept of %d: %d whole (%d bytes each), %d bytes estimated, heap grew %d; %d forgotten early, %d shed (%d bytes each bare)",
		st.EndedAttacks, ends, whole, perWhole, st.EndedBytes, int64(after)-int64(before), st.EndedForgotten, st.EndedDetailsShed, perBare)
	if !raceEnabled && int64(after)-int64(before) > 2*int64(cfg.MaxEndedBytes) {
		t.Errorf("heap grew %d bytes, want within twice MaxEndedBytes", int64(after)-int64(before))
	}
	runtime.KeepAlive(e)
}

// TestVisitHostsInChunks: a visit of a shard of many chunks sees each host
// once, holds no lock while fn runs (fn may call the engine, and Consume
// goes on meanwhile), and Attacks lists ended attacks of many chunks once
// each.
func TestVisitHostsInChunks(t *testing.T) {
	cfg := testConfig()
	cfg.Shards = 1
	now := t0
	e, err := New(cfg, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	const hosts = 5*visitChunk + 17
	rec := func(h int) flow.Record {
		return flow.Record{SrcAddr: netip.MustParseAddr("198.51.100.1"), DstAddr: netip.AddrFrom4([4]byte{10, 0, byte(h >> 8), byte(h)}),
			Received: t0.UnixNano(), Start: t0.UnixNano() - 1e9, End: t0.UnixNano(), Packets: 1, Bytes: 100, Proto: flow.ProtoUDP}
	}
	var recs []flow.Record
	for h := range hosts {
		recs = append(recs, rec(h))
	}
	e.Consume(recs)
	now = now.Add(time.Second) // their second complete, in the window
	seen := map[netip.Addr]int{}
	e.VisitHosts(In, func(r *HostRates) {
		seen[r.IP]++
		if _, _, ok := e.Host(r.IP); !ok { // would deadlock under the shard's lock
			t.Errorf("%v visited, not tracked", r.IP)
		}
		e.Consume([]flow.Record{rec(hosts + len(seen))}) // a new host meanwhile
	})
	if len(seen) != hosts {
		t.Errorf("%d hosts visited, want %d", len(seen), hosts)
	}
	for ip, n := range seen {
		if n != 1 {
			t.Errorf("%v visited %d times", ip, n)
		}
	}
	if n := len(e.Hosts(In, SortPPS, 0)); n != 2*hosts {
		t.Errorf("%d hosts listed, want %d", n, 2*hosts)
	}

	var ended []Event
	for i := range 3*endedChunk + 5 {
		ended = append(ended, Event{Kind: AttackEnd, Attack: Attack{ID: fmt.Sprintf("a%05d", i), EndedAt: now}})
	}
	e.mu.Lock()
	e.applyEvents(now, ended)
	e.mu.Unlock()
	ids := map[string]bool{}
	for _, a := range e.Attacks(false) {
		if ids[a.ID] {
			t.Errorf("%s listed twice", a.ID)
		}
		ids[a.ID] = true
	}
	if len(ids) != len(ended) {
		t.Errorf("%d attacks listed, want %d", len(ids), len(ended))
	}
	if _, ok := e.Attack("a00000"); !ok {
		t.Error("the oldest ended attack not found")
	}
}
