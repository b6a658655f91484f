package flowgen

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// Timers are an exporter's traffic-flow cache settings: RouterOS's
// /ip traffic-flow active-flow-timeout, inactive-flow-timeout and
// cache-entries, plus how often the exporter scans its cache. Operators run
// 1m/15s, 1m/1m or RouterOS's default 30m/15s; {Active: time.Second,
// Inactive: time.Second} is what a Scenario alone stands for.
type Timers struct {
	// Active cuts a flow that has lasted this long: its record covers
	// [first packet, cut] and goes out, the flow stays in the cache, and
	// its next record starts with its first packet after the cut.
	// Default 30m.
	Active time.Duration
	// Inactive exports a flow idle this long (its record ends at its last
	// packet) and forgets it. Default 15s.
	Inactive time.Duration
	// ScanInterval is how often the exporter looks for expired flows, a
	// whole number of seconds (default 1s): a flow goes out at the first
	// scan at or after its deadline, so a short flow arrives Inactive to
	// Inactive+ScanInterval after its last packet.
	ScanInterval time.Duration
	// CacheEntries bounds the flows held (RouterOS cache-entries): a new
	// flow arriving in a full cache first evicts, and exports, the oldest
	// one (the first created). Default 1<<20.
	CacheEntries int
}

// DefaultTimers are RouterOS's defaults: 30m active, 15s inactive.
func DefaultTimers() Timers {
	return Timers{Active: 30 * time.Minute, Inactive: 15 * time.Second, ScanInterval: time.Second, CacheEntries: 1 << 20}
}

// CacheStats are what a TimedSource did since its run began.
type CacheStats struct {
	Entries    int `json:"entries"`     // flows in the cache now
	MaxEntries int `json:"max_entries"` // the most it held
	// Received are the 1 s flows that entered the cache, Exported the
	// records that left it. Once flushed, their packets and bytes agree.
	Received Counters `json:"received"`
	Exported Counters `json:"exported"`
	// Records exported by each cause: the inactive timeout, the active
	// timeout (cuts), eviction from a full cache, Flush.
	Inactive uint64 `json:"inactive"`
	Active   uint64 `json:"active"`
	Evicted  uint64 `json:"evicted"`
	Flushed  uint64 `json:"flushed"`
	// EvictedFlows counts every flow evicted, with or without traffic
	// since its last cut (an idle one exports nothing).
	EvictedFlows uint64 `json:"evicted_flows"`
}

// TimedSource models an exporter's flow cache on top of a Source whose
// flows are 1 s slices of traffic (a Scenario's are): it aggregates them
// per flow key and exports records when the inactive or active timeout says
// so, as a router's traffic-flow does. Detection can then be tested at real
// operators' timers through the real encoders: records that arrive up to
// Inactive late, and long flows reported once per Active.
//
// Each flow inner.Second(dst, index, start) gives is the traffic of its key
// during [start, start+1s), between its Start and End. The key is the
// addresses, ports, protocol, interfaces, fragment flag and sampling rate
// (a router has one rate; the generator's per-flood rates must not mix);
// TCP flags are OR-ed, packets and bytes summed. The cache is scanned at
// every ScanInterval boundary after the first second began: Second(dst,
// index, start) returns the records exported by the scan at start+1s (if
// one falls there) and those evicted while the second's traffic entered.
// Their times are the flows' own, not the export time.
//
// A flow goes out at the first scan at or after the earlier of its last
// packet + Inactive (the record ends at that packet; the flow is forgotten)
// and its record's first packet + Active (a cut). So with Active <=
// Inactive (1m/1m) even a short flow leaves at its first packet + Active.
// A flow still sending in the second before a cut ends at the cut and its
// next record starts there, so a steady flow's records tile time, Active
// long each; one gone quiet ends at its last packet. A full cache evicts
// the flow created first.
//
// The same configuration gives the same records in the same order. The
// cache holds state, so Second must be called with index 0, 1, 2, ... and
// start advancing by a second each time, as the Sender does; index 0 starts
// a new run (the cache is emptied, Flush it first to keep what it held) and
// any other index out of turn panics. Second and Flush must not be called
// concurrently; Stats may be called at any time.
type TimedSource struct {
	inner Source
	t     Timers
	scan  int64 // seconds

	mu      sync.Mutex // guards stats against Stats during Second
	stats   CacheStats
	next    int       // the index Second expects
	origin  time.Time // start of second 0: scan n is at origin + n*ScanInterval
	scanned int64     // last scan done
	flows   map[flowKey]*cacheEntry
	oldest  *cacheEntry // creation order, for eviction
	newest  *cacheEntry
	buckets map[int64][]*cacheEntry // scan number -> flows that may expire then
	spare   [][]*cacheEntry
	in      []Flow
}

type flowKey struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
	proto            uint8
	fragment         bool
	inIf, outIf      uint32
	rate             uint32
}

func keyOf(f *Flow) flowKey {
	return flowKey{f.Src, f.Dst, f.SrcPort, f.DstPort, f.Proto, f.Fragment, f.InIf, f.OutIf, f.SamplingRate}
}

// cacheEntry is one flow in the cache. rec is the record being built:
// Packets 0 means nothing since the last cut.
type cacheEntry struct {
	rec  Flow
	last time.Time // last packet of the flow, across cuts
	cut  time.Time // end of the last record cut (the next starts no earlier)
	// queued is the scan whose bucket holds this entry (at most one does;
	// others holding it are stale), 0 for none. It is never later than
	// the entry's deadline.
	queued       int64
	gone         bool
	older, newer *cacheEntry
}

// NewTimedSource wraps inner in an exporter cache with timers t (zero
// fields take DefaultTimers' values).
func NewTimedSource(inner Source, t Timers) (*TimedSource, error) {
	def := DefaultTimers()
	if t.Active == 0 {
		t.Active = def.Active
	}
	if t.Inactive == 0 {
		t.Inactive = def.Inactive
	}
	if t.ScanInterval == 0 {
		t.ScanInterval = def.ScanInterval
	}
	if t.CacheEntries == 0 {
		t.CacheEntries = def.CacheEntries
	}
	switch {
	case inner == nil:
		return nil, fmt.Errorf("creating flow cache: no source")
	case t.Active < 0 || t.Inactive < 0:
		return nil, fmt.Errorf("creating flow cache: negative timeout (active %v, inactive %v)", t.Active, t.Inactive)
	case t.ScanInterval < time.Second || t.ScanInterval%time.Second != 0:
		return nil, fmt.Errorf("creating flow cache: scan interval %v is not a whole number of seconds", t.ScanInterval)
	case t.CacheEntries < 0:
		return nil, fmt.Errorf("creating flow cache: negative cache entries %d", t.CacheEntries)
	}
	s := &TimedSource{inner: inner, t: t, scan: int64(t.ScanInterval / time.Second)}
	s.reset()
	return s, nil
}

// Timers returns the effective timers.
func (s *TimedSource) Timers() Timers { return s.t }

// Stats returns what the cache did since the run began.
func (s *TimedSource) Stats() CacheStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *TimedSource) reset() {
	s.mu.Lock()
	s.stats = CacheStats{}
	s.mu.Unlock()
	s.next, s.scanned = 0, 0
	s.flows = make(map[flowKey]*cacheEntry)
	s.oldest, s.newest = nil, nil
	clear(s.buckets)
	if s.buckets == nil {
		s.buckets = make(map[int64][]*cacheEntry)
	}
}

// Second implements Source (see TimedSource for the calling order).
func (s *TimedSource) Second(dst []Flow, index int, start time.Time) []Flow {
	if index != s.next {
		if index != 0 {
			panic(fmt.Sprintf("flowgen: TimedSource.Second(%d) called when second %d was due: an exporter cache "+
				"runs its seconds in order (0, 1, 2, ...; 0 restarts)", index, s.next))
		}
		s.reset()
	}
	if index == 0 {
		s.origin = start
	}
	s.next = index + 1
	s.in = s.inner.Second(s.in[:0], index, start)

	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.in {
		if s.in[i].Packets > 0 {
			dst = s.add(dst, &s.in[i])
		}
	}
	// the scan at the end of this second, if one falls there
	if end := int64(index) + 1; end%s.scan == 0 {
		dst = s.runScan(dst, end/s.scan)
	}
	s.stats.Entries = len(s.flows)
	return dst
}

// Flush exports every flow in the cache, oldest first, as an exporter does
// when it shuts down, and empties the cache. The run goes on.
func (s *TimedSource) Flush(dst []Flow) []Flow {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.oldest; e != nil; e = e.newer {
		e.gone = true
		if e.rec.Packets > 0 {
			dst = s.export(dst, e, e.rec.End)
			s.stats.Flushed++
		}
	}
	clear(s.flows)
	clear(s.buckets)
	s.oldest, s.newest = nil, nil
	s.stats.Entries = 0
	return dst
}

// add puts one 1 s flow into the cache.
func (s *TimedSource) add(dst []Flow, f *Flow) []Flow {
	s.stats.Received.add(f)
	k := keyOf(f)
	e := s.flows[k]
	if e == nil {
		if len(s.flows) >= s.t.CacheEntries && s.oldest != nil {
			dst = s.evict(dst)
		}
		e = &cacheEntry{rec: *f, last: f.End, older: s.newest}
		if e.rec.End.Before(e.rec.Start) {
			e.rec.End = e.rec.Start
		}
		if s.newest != nil {
			s.newest.newer = e
		} else {
			s.oldest = e
		}
		s.newest = e
		s.flows[k] = e
		s.stats.MaxEntries = max(s.stats.MaxEntries, len(s.flows))
		s.enqueue(e)
		return dst
	}
	r := &e.rec
	if r.Packets == 0 {
		// the first packet since the cut starts the next record
		r.Start, r.End, r.TCPFlags = f.Start, f.End, f.TCPFlags
		if r.Start.Before(e.cut) {
			r.Start = e.cut
		}
	} else {
		if f.Start.Before(r.Start) {
			r.Start = f.Start
		}
		if f.End.After(r.End) {
			r.End = f.End
		}
		r.TCPFlags |= f.TCPFlags
	}
	if r.End.Before(r.Start) {
		r.End = r.Start
	}
	r.Packets += f.Packets
	r.Bytes += f.Bytes
	if f.End.After(e.last) {
		e.last = f.End
	}
	s.enqueue(e)
	return dst
}

// evict exports and forgets the oldest flow.
func (s *TimedSource) evict(dst []Flow) []Flow {
	e := s.oldest
	s.unlink(e)
	s.stats.EvictedFlows++
	if e.rec.Packets > 0 {
		dst = s.export(dst, e, e.rec.End)
		s.stats.Evicted++
	}
	return dst
}

func (s *TimedSource) unlink(e *cacheEntry) {
	e.gone = true
	delete(s.flows, keyOf(&e.rec))
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		s.oldest = e.newer
	}
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		s.newest = e.older
	}
	e.older, e.newer = nil, nil
}

func (s *TimedSource) export(dst []Flow, e *cacheEntry, end time.Time) []Flow {
	f := e.rec
	f.End = end
	s.stats.Exported.add(&f)
	return append(dst, f)
}

// deadline is the scan at which e must be looked at: when it has been idle
// for Inactive, or (with traffic since the last cut) has lasted Active.
func (s *TimedSource) deadline(e *cacheEntry) int64 {
	d := e.last.Add(s.t.Inactive)
	if e.rec.Packets > 0 {
		if a := e.rec.Start.Add(s.t.Active); a.Before(d) {
			d = a
		}
	}
	n := s.scanned + 1 // the first scan still to come
	if off := d.Sub(s.origin); off > 0 {
		per := s.t.ScanInterval
		n = max(n, int64((off+per-1)/per))
	}
	return n
}

// enqueue makes sure e sits in the bucket of its deadline or an earlier
// one (a deadline only moves later, except when traffic after a cut starts
// a record whose active deadline comes first).
func (s *TimedSource) enqueue(e *cacheEntry) {
	n := s.deadline(e)
	if e.queued != 0 && e.queued <= n {
		return
	}
	e.queued = n
	b := s.buckets[n]
	if b == nil && len(s.spare) > 0 {
		b = s.spare[len(s.spare)-1]
		s.spare = s.spare[:len(s.spare)-1]
	}
	s.buckets[n] = append(b, e)
}

// runScan is the exporter's scan number n.
func (s *TimedSource) runScan(dst []Flow, n int64) []Flow {
	s.scanned = n
	now := s.origin.Add(time.Duration(n) * s.t.ScanInterval)
	b := s.buckets[n]
	delete(s.buckets, n)
	for _, e := range b {
		if e.gone || e.queued != n {
			continue // stale: exported, or queued elsewhere since
		}
		e.queued = 0
		idle := !now.Before(e.last.Add(s.t.Inactive))
		switch {
		case e.rec.Packets > 0 && idle:
			s.unlink(e)
			dst = s.export(dst, e, e.rec.End)
			s.stats.Inactive++
		case idle:
			s.unlink(e) // nothing since the last cut: forgotten silently
		case e.rec.Packets > 0 && !now.Before(e.rec.Start.Add(s.t.Active)):
			// a flow still sending in the last second is cut at the scan and
			// its next record starts there; one gone quiet ends at its last packet
			end := e.rec.End
			if end.Before(now) && !end.Before(now.Add(-time.Second)) {
				end = now
			}
			dst = s.export(dst, e, end)
			s.stats.Active++
			e.cut = end
			e.rec.Packets, e.rec.Bytes, e.rec.TCPFlags = 0, 0, 0
			s.enqueue(e)
		default:
			s.enqueue(e) // its deadline moved on
		}
	}
	if b != nil {
		clear(b)
		s.spare = append(s.spare, b[:0])
	}
	return dst
}
