package collector

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// Trusted exporters (EXPORTERS). Anyone who can reach the flow ports could
// otherwise claim a flood on any protected address and have it banned, so
// a datagram whose source is not inside Configuration.Exporters is dropped
// before anything reads it: no decoding, no template state, no exporter
// entry. Refusals are counted in total and per source, in a table bounded
// by MaxRefusedSources that forgets the least recently refused source.
//
// The check is on every datagram, so it is compiled into masks: with
// Exporters empty it is one predictable branch, and a reader remembers the
// last source it admitted, which a router's steady stream always is.

// sourceFilter admits the sources inside the configured prefixes.
type sourceFilter struct {
	restricted bool // Exporters was set: only v4 and v6 are admitted
	v4         []prefix4
	v6         []prefix6
}

type prefix4 struct{ net, mask uint32 }

type prefix6 struct{ hi, lo, maskHi, maskLo uint64 }

// newSourceFilter compiles prefixes. An IPv4-mapped IPv6 prefix is taken
// as the IPv4 prefix it maps (sources are unmapped when read). Invalid
// prefixes match nothing and are returned so that New can warn: with
// Exporters set, a typo must not open the collector to everyone.
func newSourceFilter(prefixes []netip.Prefix) (f sourceFilter, invalid []netip.Prefix) {
	f.restricted = len(prefixes) > 0
	for _, p := range prefixes {
		if !p.IsValid() {
			invalid = append(invalid, p)
			continue
		}
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		if a.Is4() {
			mask := uint32(0)
			if bits > 0 {
				mask = ^uint32(0) << (32 - bits)
			}
			b := a.As4()
			f.v4 = append(f.v4, prefix4{net: binary.BigEndian.Uint32(b[:]) & mask, mask: mask})
			continue
		}
		var mhi, mlo uint64
		switch {
		case bits >= 64:
			mhi, mlo = ^uint64(0), ^uint64(0)<<(128-bits) // 0 for a /64
		case bits > 0:
			mhi = ^uint64(0) << (64 - bits)
		}
		b := a.As16()
		hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		f.v6 = append(f.v6, prefix6{hi: hi & mhi, lo: lo & mlo, maskHi: mhi, maskLo: mlo})
	}
	return f, invalid
}

// allows reports whether a may export.
func (f *sourceFilter) allows(a netip.Addr) bool {
	if !f.restricted {
		return true
	}
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		for _, p := range f.v4 {
			if x&p.mask == p.net {
				return true
			}
		}
		return false
	}
	if !a.Is6() {
		return false
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for _, p := range f.v6 {
		if hi&p.maskHi == p.hi && lo&p.maskLo == p.lo {
			return true
		}
	}
	return false
}

// admit reports whether a datagram from from may be decoded. A refused one
// is counted here and must be dropped by the caller.
func (r *reader) admit(size int, from netip.Addr, now int64) bool {
	f := &r.c.sources
	if !f.restricted || from == r.lastAdmitted && from.IsValid() {
		return true
	}
	if f.allows(from) {
		r.lastAdmitted = from
		return true
	}
	if !from.IsValid() {
		// No source address: not a datagram from anyone but the empty
		// read a shut-down socket gives at Stop. Dropped, not counted.
		return false
	}
	r.c.refuse(r.l, from, size, now)
	return false
}

// refuse counts a datagram refused by Exporters, and logs at most once a
// minute so that an operator who forgot a router sees it.
func (c *Collector) refuse(l *listener, from netip.Addr, size int, now int64) {
	c.totals.refusedDatagrams.Inc()
	c.totals.refusedBytes.Add(size)
	if c.refused.note(exporterKey{from, l.protocol}, size, now) {
		c.totals.refusedForgotten.Inc()
	}
	if logDueAt(&c.lastRefusedLog, now) {
		c.log.Warn("refusing flow datagrams from a source outside EXPORTERS", "source", from.String(),
			"listener", l.protocol.String(), "refused_datagrams", c.totals.refusedDatagrams.Get())
	}
}

// refusedTable counts refusals per source, keeping the MaxRefusedSources
// most recently refused: a spoofed flood from random addresses churns the
// table but cannot grow it. Entries live in a fixed slice linked in recency
// order, so a refusal allocates nothing once the table is full.
type refusedTable struct {
	mu         sync.Mutex
	index      map[exporterKey]int32
	entries    []refusedEntry
	head, tail int32 // most and least recently refused, -1 when empty
}

type refusedEntry struct {
	key              exporterKey
	datagrams, bytes uint64
	first, last      int64 // Unix ns
	prev, next       int32
}

func (t *refusedTable) init(max int) {
	t.index = make(map[exporterKey]int32, max)
	t.entries = make([]refusedEntry, 0, max)
	t.head, t.tail = -1, -1
}

// note counts one refused datagram of k; it reports whether a source had
// to be forgotten to make room for k.
func (t *refusedTable) note(k exporterKey, size int, now int64) (forgot bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[k]
	if !ok {
		if len(t.entries) < cap(t.entries) {
			i = int32(len(t.entries))
			t.entries = append(t.entries, refusedEntry{})
		} else {
			i = t.tail
			t.unlink(i)
			delete(t.index, t.entries[i].key)
			forgot = true
		}
		t.entries[i] = refusedEntry{key: k, first: now, prev: -1, next: -1}
		t.index[k] = i
		t.pushFront(i)
	} else if i != t.head {
		t.unlink(i)
		t.pushFront(i)
	}
	e := &t.entries[i]
	e.datagrams++
	e.bytes += uint64(size)
	e.last = now
	return forgot
}

func (t *refusedTable) unlink(i int32) {
	e := &t.entries[i]
	if e.prev >= 0 {
		t.entries[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.entries[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (t *refusedTable) pushFront(i int32) {
	e := &t.entries[i]
	e.prev, e.next = -1, t.head
	if t.head >= 0 {
		t.entries[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

func (t *refusedTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// sources returns the table, most recently refused first.
func (t *refusedTable) sources() []RefusedSource {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]RefusedSource, 0, len(t.entries))
	for i := t.head; i >= 0; i = t.entries[i].next {
		e := &t.entries[i]
		out = append(out, RefusedSource{
			Address: e.key.addr, Protocol: e.key.protocol.String(),
			Datagrams: e.datagrams, Bytes: e.bytes,
			FirstSeen: time.Unix(0, e.first).UTC(), LastSeen: time.Unix(0, e.last).UTC(),
		})
	}
	return out
}

// RefusedStats counts the datagrams refused because their source is not
// inside Configuration.Exporters ("exporters refused by EXPORTERS").
// Counters count since Start.
type RefusedStats struct {
	Datagrams uint64 `json:"datagrams"`
	Bytes     uint64 `json:"bytes"`
	// SourcesForgotten counts sources dropped from Sources to make room
	// for a newly refused one; their datagrams stay in the totals.
	SourcesForgotten uint64 `json:"sources_forgotten"`
	// Sources are the most recently refused sources, at most
	// MaxRefusedSources, most recent first.
	Sources []RefusedSource `json:"sources"`
}

// RefusedSource is one refused source: an address on one listener.
type RefusedSource struct {
	Address   netip.Addr `json:"address"`
	Protocol  string     `json:"protocol"` // the listener: netflow or sflow
	Datagrams uint64     `json:"datagrams"`
	Bytes     uint64     `json:"bytes"`
	FirstSeen time.Time  `json:"first_seen"` // since it last entered the table
	LastSeen  time.Time  `json:"last_seen"`
}
