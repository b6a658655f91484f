package detect

// The engine and its hot path: Consume, from a batch of records to the
// per-host seconds, routing by shard and applying each shard once. The
// file is longer than the others on purpose: the hot path is read,
// profiled and changed as one piece (its benchmarks are in bench_test.go).

import (
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// Engine accounts flow records per protected host and turns the rates into
// attack events. Consume may be called from many goroutines at once; Tick
// from one (a ticker, or a test with simulated time).
type Engine struct {
	cfg    Configuration
	now    func() time.Time
	log    *slog.Logger
	lay    layout
	winSec int64 // window in seconds

	protected prefixTable // NETWORKS and every hostgroup prefix
	networks  prefixTable
	groups    prefixTable // value: index into groupOf
	groupOf   []int32     // prefix index in groups table -> hostgroup index
	whitelist prefixTable
	limits    []limits // per hostgroup; last entry: global
	colLimits []cvec   // limits in the layout's column space
	groupLim  []limits // group_* thresholds per hostgroup

	shardBits int
	shards    []shard
	scratch   sync.Pool

	exporters exporterTable
	counters  counters

	// groupCols[g][dir] is the flow sampler of group g's active attack,
	// read lock-free on the hot path.
	groupCols [][2]atomic.Pointer[sampler]

	tickMu    sync.Mutex // serializes Tick; guards what only Tick touches
	groupSt   [][2]groupDir
	seq       uint64
	sampled   int           // active attacks keeping a flow sample (MaxSampledAttacks)
	unsampled atomic.Uint64 // attacks declared without one since start

	mu     sync.Mutex // guards the attack registry and the totals snapshot
	active map[string]*Attack
	ended  []Attack // oldest first
	// endedBytes estimates what ended holds (attackBytes); ended[:endedBare]
	// have had their details shed for MaxEndedBytes (or had none).
	// endedBase counts the ended attacks forgotten since start: ended[i]
	// is the (endedBase+i)th kept, whatever was dropped before it.
	endedBytes, endedBare, endedBase int
	endedForgotten, endedShed        uint64
	totals                           [2]vec
	netRates                         [][2]vec
	// what the last Tick counted outside the host table
	untrackedRates [2]vec
	untrackedHosts uint64
}

// limits is a threshold set in the vec layout (pps, bits/s, flows/s); 0 disables.
type limits vec

func limitsOf(t Thresholds) limits {
	var l limits
	l[mPPS+catAll], l[mBPS+catAll], l[mFlows] = float64(t.PPS), float64(t.Mbps)*1e6, float64(t.Flows)
	l[mPPS+catTCP], l[mBPS+catTCP] = float64(t.TCPPPS), float64(t.TCPMbps)*1e6
	l[mPPS+catUDP], l[mBPS+catUDP] = float64(t.UDPPPS), float64(t.UDPMbps)*1e6
	l[mPPS+catICMP], l[mBPS+catICMP] = float64(t.ICMPPPS), float64(t.ICMPMbps)*1e6
	l[mPPS+catSYN], l[mBPS+catSYN] = float64(t.SYNPPS), float64(t.SYNMbps)*1e6
	l[mPPS+catFrag], l[mBPS+catFrag] = float64(t.FragPPS), float64(t.FragMbps)*1e6
	return l
}

// shard is a part of the host table with its own lock. IPv4 hosts are keyed
// by their address as a uint32, which the runtime's map hashes and
// compares faster than a 16-byte array and stores in a smaller slot.
type shard struct {
	mu        sync.Mutex
	v4        map[uint32]*host
	v6        map[[16]byte]*host
	max       int
	over      *untracked // traffic counted outside the table; nil until there is some
	evicted   uint64     // hosts evicted to make room for a new one
	untracked uint64     // entries counted in over because their host found no place
	_         [64]byte
}

func (sh *shard) len() int { return len(sh.v4) + len(sh.v6) }

// hostOf is the host of an unmapped address, or nil; sh.mu is held.
func (sh *shard) hostOf(ip netip.Addr) *host {
	if ip.Is4() {
		return sh.v4[v4key(ip)]
	}
	return sh.v6[ip.As16()]
}

// get returns the host at key (k4 for IPv4, else k6), or nil.
func (sh *shard) get(v6 bool, k4 uint32, k6 *[16]byte) *host {
	if !v6 {
		return sh.v4[k4]
	}
	return sh.v6[*k6]
}

// host is one protected address. Rings are allocated per direction on first
// traffic, so a host seen only one way costs one ring.
//
// The address is not stored here: the shard maps' keys hold it, which keeps
// a host within a smaller allocation size class (memory per host matters at
// 100,000 hosts).
type host struct {
	lastSeen int64 // Unix second of the last record's arrival
	network  int32 // index into Configuration.Networks, -1 if only in a hostgroup
	group    int32 // hostgroup index, -1 if none
	dir      [2]dirState
	// total counts since the host was first tracked, times the sampling
	// rate, per direction: exact, unlike the float rates.
	total [2]Total
}

// Total is what a host sent or received since it was first tracked: the
// records' packets and bytes times their sampling rate.
type Total struct {
	Packets, Bytes uint64
}

// hostAddr4 and hostAddr6 are the addresses of host table keys.
func hostAddr4(k uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(k >> 24), byte(k >> 16), byte(k >> 8), byte(k)})
}

func hostAddr6(k [16]byte) netip.Addr { return netip.AddrFrom16(k) }

// counters are engine-wide totals since start. Consume adds its batch's
// counts once, not per record, so cores do not fight over them.
type counters struct {
	records, accounted, unprotected, whitelisted, garbage, empty, clockFixed atomic.Uint64
}

// Stats are engine-wide counters since start.
type Stats struct {
	Records      uint64 // records consumed
	Accounted    uint64 // records counted toward at least one host
	Unprotected  uint64 // records with neither side protected
	Whitelisted  uint64 // host directions skipped because the remote side is in WHITELIST_SOURCES
	Garbage      uint64 // records impossible on LINK_MBPS, discarded
	Empty        uint64 // records with no packets and no bytes
	ClockFixed   uint64 // records whose times were replaced by the arrival time
	HostsTracked int
	// HostsEvicted counts tracked hosts that made room for a new one
	// (MaxHosts): the quietest of a sample, never one under attack.
	HostsEvicted uint64
	// UntrackedRecords counts record sides (a record counts once per
	// protected address it has) whose host found no place in the table
	// (every sampled host under attack or above a threshold): counted in
	// the totals, the networks and the hostgroup sums, not per host.
	UntrackedRecords uint64
	// UntrackedHosts estimates the distinct addresses the table did not
	// keep between the last two Ticks (a second): evicted, or whose
	// records found no place. A HyperLogLog, about 3 % standard error.
	UntrackedHosts uint64
	// UntrackedInPPS and UntrackedOutPPS are the windowed packets per
	// second, as of the last Tick, counted in the totals but in no tracked
	// host's rates: untracked records, and the window's seconds of hosts
	// evicted since.
	UntrackedInPPS, UntrackedOutPPS float64
	// UnsampledAttacks counts attacks declared without a flow sample
	// because MaxSampledAttacks others held one.
	UnsampledAttacks uint64
	// ExportersForgotten counts exporters dropped from the exporter table
	// (MaxExporters) to make room for a new one.
	ExportersForgotten uint64
	// EndedAttacks and EndedBytes are the ended attacks kept for the API
	// and what they hold (estimated: summaries, details, flow samples).
	EndedAttacks int
	EndedBytes   int
	// EndedForgotten counts ended attacks forgotten before the contract's
	// retention (24 hours) ran out, to stay within MaxEnded or
	// MaxEndedBytes; EndedDetailsShed those that lost their details text
	// to stay within MaxEndedBytes (still listed).
	EndedForgotten, EndedDetailsShed uint64
}

// New validates cfg and returns an engine; now is its clock (time.Now if nil).
func New(cfg Configuration, now func() time.Time) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("detect configuration: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DefaultSamplingRate == 0 {
		cfg.DefaultSamplingRate = 1
	}
	if cfg.MinFrameBytes == 0 {
		cfg.MinFrameBytes = 64
	}
	e := &Engine{
		cfg:    cfg,
		now:    now,
		log:    cfg.Logger,
		winSec: int64(cfg.Window / time.Second),
		active: map[string]*Attack{},
	}
	all := append([]netip.Prefix(nil), cfg.Networks...)
	var groupPrefixes []netip.Prefix
	for gi, g := range cfg.HostGroups {
		all = append(all, g.Prefixes...)
		for _, p := range g.Prefixes {
			groupPrefixes = append(groupPrefixes, p)
			e.groupOf = append(e.groupOf, int32(gi))
		}
		e.limits = append(e.limits, limitsOf(g.Thresholds))
		var gl limits
		gl[mPPS], gl[mBPS], gl[mFlows] = float64(g.GroupPPS), float64(g.GroupMbps)*1e6, float64(g.GroupFlows)
		e.groupLim = append(e.groupLim, gl)
	}
	e.limits = append(e.limits, limitsOf(cfg.Global))
	var bitsNeeded [numCats]bool
	for _, l := range e.limits {
		for c := 0; c < numCats; c++ {
			bitsNeeded[c] = bitsNeeded[c] || l[mBPS+c] > 0
		}
	}
	e.lay = newLayout(ringSeconds(e.winSec), bitsNeeded)
	e.colLimits = make([]cvec, len(e.limits))
	for i := range e.limits {
		for c := 0; c < e.lay.width; c++ {
			e.colLimits[i][c] = e.limits[i][e.lay.metric[c]]
		}
	}
	e.protected = newPrefixTable(all)
	e.networks = newPrefixTable(cfg.Networks)
	e.groups = newPrefixTable(groupPrefixes)
	e.whitelist = newPrefixTable(cfg.WhitelistSources)
	e.groupCols = make([][2]atomic.Pointer[sampler], len(cfg.HostGroups))
	e.groupSt = make([][2]groupDir, len(cfg.HostGroups))
	e.netRates = make([][2]vec, len(cfg.Networks))

	n := cfg.Shards
	if n == 0 {
		n = 1 << bits.Len(uint(4*runtime.GOMAXPROCS(0)-1))
		n = max(n, 16)
	}
	e.shardBits = bits.TrailingZeros(uint(n))
	e.shards = make([]shard, n)
	for i := range e.shards {
		e.shards[i].v4 = map[uint32]*host{}
		e.shards[i].v6 = map[[16]byte]*host{}
		e.shards[i].max = max(1, (cfg.MaxHosts+n-1)/n)
	}
	e.scratch.New = func() any {
		sc := &scratch{heads: make([]int32, n)}
		for i := range sc.heads {
			sc.heads[i] = -1
		}
		return sc
	}
	e.exporters.m = map[netip.Addr]*exporterState{}
	e.exporters.max = cfg.MaxExporters
	if e.exporters.max == 0 {
		e.exporters.max = DefaultConfiguration().MaxExporters
	}
	return e, nil
}

// norm is a record made sane: its times, its sampled-up counters and its
// category mask.
type norm struct {
	start, end int64 // Unix ns
	recvSec    int64
	endSec     int64 // floorSec(end)
	pkts, bits float32
	rec        int32  // index into the batch
	udpPort    uint16 // source port of non-fragment UDP, else 0
	mask       uint8
	hold       uint8 // holdCode (with holdCutFlag for a cut record): how long its exporter may stay silent about this traffic
}

// entry is one host direction a record counts toward. The host's key is
// k4 for IPv4; an IPv6 key is taken from the record again when applied.
type entry struct {
	k4    uint32
	norm  int32
	next  int32 // next entry of the same shard in batch order, -1 at the end
	shard uint16
	dir   Direction
	v6    bool
}

type scratch struct {
	norms   []norm
	entries []entry
	hostOf  []*host  // per entry, during applyShard
	touch   float32  // sink of applyShard's prefetching loads
	heads   []int32  // first entry of each shard, -1 if none (all -1 between batches)
	touched []uint16 // shards with entries, each once
	exp     expDeltas
}

// Consume accounts a batch of records. It keeps no reference to records.
// Safe for concurrent use; a batch locks each shard it touches once.
func (e *Engine) Consume(records []flow.Record) {
	if len(records) == 0 {
		return
	}
	sc := e.scratch.Get().(*scratch)
	sc.norms = sc.norms[:0]
	sc.entries = sc.entries[:0]
	var nowNs int64
	var local struct{ accounted, unprotected, whitelisted, garbage, empty, fixed uint64 }
	wl := !e.whitelist.empty()
	var lastRecv, lastRecvSec int64 = 0, 0
	// one record in stride feeds the timer learner: at most batchSamples,
	// and no more than one in minStride (a datagram's 24 need not all)
	stride := max((len(records)+batchSamples-1)/batchSamples, minStride)
	var xd *expDelta // the exporter of the record before
	for i := range records {
		r := &records[i]
		dk, d4 := addrKey4(r.DstAddr)
		sk, s4 := addrKey4(r.SrcAddr)
		var dstProt, srcProt bool
		if d4 {
			dstProt = e.protected.lookup4(dk) >= 0
		} else if r.DstAddr.Is6() {
			dstProt = e.protected.lookup6(r.DstAddr) >= 0
		}
		if s4 {
			srcProt = e.protected.lookup4(sk) >= 0
		} else if r.SrcAddr.Is6() {
			srcProt = e.protected.lookup6(r.SrcAddr) >= 0
		}
		if !dstProt && !srcProt {
			local.unprotected++
			continue
		}
		if wl {
			if dstProt && e.whitelist.lookup(r.SrcAddr.Unmap()) >= 0 {
				dstProt = false
				local.whitelisted++
			}
			if srcProt && e.whitelist.lookup(r.DstAddr.Unmap()) >= 0 {
				srcProt = false
				local.whitelisted++
			}
			if !dstProt && !srcProt {
				continue
			}
		}
		if r.Packets == 0 && r.Bytes == 0 {
			local.empty++
			continue
		}
		recv := r.Received
		if recv == 0 {
			if nowNs == 0 {
				nowNs = e.now().UnixNano()
			}
			recv = nowNs
		}
		// A batch is mostly one datagram's records, which share their
		// arrival time: its second is computed once.
		if recv != lastRecv || lastRecvSec == 0 {
			lastRecv, lastRecvSec = recv, floorSec(recv)
		}
		// The next norm in place, not zeroed: normalizeInto sets every
		// field but rec, set below.
		ni := int32(len(sc.norms))
		if len(sc.norms) == cap(sc.norms) {
			sc.norms = append(sc.norms, norm{})[:ni]
		}
		sc.norms = sc.norms[:ni+1]
		n := &sc.norms[ni]
		fix, garbage := e.normalizeInto(r, recv, lastRecvSec, n)
		if xd == nil || xd.exporter != r.Exporter {
			xd = sc.exp.find(e, r.Exporter)
		}
		xd.lastRecv = max(xd.lastRecv, recv)
		if fix != fixNone {
			local.fixed++
			xd.count[fix]++
		}
		if garbage {
			local.garbage++
			xd.count[fixGarbage]++
			sc.norms = sc.norms[:ni]
			continue
		}
		local.accounted++
		// The exporter's timers, inline: most records are neither sampled
		// nor moved.
		dur := n.end - n.start
		if xd.skip == 0 || dur >= 15e8 {
			xd.sample(n.recvSec-n.endSec, dur, stride)
		} else {
			xd.skip--
		}
		if xd.p.shift > 0 {
			shiftLate(&xd.p, n, recv, dur)
		}
		n.hold = xd.p.holdLate
		if xd.p.active > 0 {
			if dur >= xd.p.active-cutSlackNs {
				n.hold = xd.p.holdCut
			}
		} else if dur >= unknownCutNs {
			// The active timeout is not known yet (the exporter's first
			// cut records are arriving now): a long record may have been
			// cut, and the flow's next report may come as long after.
			n.hold = holdCode(dur/1e9+holdSlack) | holdCutFlag
		}
		n.rec = int32(i)
		if dstProt {
			if d4 {
				sc.addEntry4(dk, e.shardOf4(dk), In, ni)
			} else {
				sc.entries = append(sc.entries, e.entryOf6(r.DstAddr, In, ni))
			}
		}
		if srcProt {
			if s4 {
				sc.addEntry4(sk, e.shardOf4(sk), Out, ni)
			} else {
				sc.entries = append(sc.entries, e.entryOf6(r.SrcAddr, Out, ni))
			}
		}
	}
	e.apply(sc, records)
	sc.exp.flush(e)
	c := &e.counters
	c.records.Add(uint64(len(records)))
	if local.accounted != 0 {
		c.accounted.Add(local.accounted)
	}
	if local.unprotected != 0 {
		c.unprotected.Add(local.unprotected)
	}
	if local.whitelisted != 0 {
		c.whitelisted.Add(local.whitelisted)
	}
	if local.garbage != 0 {
		c.garbage.Add(local.garbage)
	}
	if local.empty != 0 {
		c.empty.Add(local.empty)
	}
	if local.fixed != 0 {
		c.clockFixed.Add(local.fixed)
	}
	e.scratch.Put(sc)
}

// shiftLate moves a record forward by the lag its exporter reports it
// with: the inactive lag, or for a record long enough that the active
// timeout came first (its first packet + active timeout < its last packet
// + inactive timeout), the active timeout less its length. A record whose
// own lag reaches that is moved by it, so never past its arrival; one
// within a second below it to its arrival (whole-second lags are a second
// off at most; a second's worth of records may share a slot, as with 1 s
// timers); others stay (see timers.go: moving them less would pile records
// that ended over many seconds into a few).
func shiftLate(p *params, n *norm, recv, dur int64) {
	e := p.shift
	if p.active > 0 && p.active-dur < e {
		e = p.active - dur
	}
	if e < minShiftNs {
		return
	}
	switch lag := recv - n.end; {
	case lag >= e:
		n.start += e
		n.end += e
		n.endSec = floorSec(n.end)
	case lag >= e-1e9:
		n.start += lag
		n.end = recv
		n.endSec = n.recvSec
	}
}

// addEntry4 appends an IPv4 entry field by field (a composite literal is
// built on the stack and copied with wide loads that stall on its narrow
// stores).
func (sc *scratch) addEntry4(k4 uint32, shard uint16, dir Direction, ni int32) {
	sc.entries = append(sc.entries, entry{})
	en := &sc.entries[len(sc.entries)-1]
	en.k4, en.norm, en.shard, en.dir = k4, ni, shard, dir
}

// addrKey4 is a's IPv4 host key, for IPv4 and IPv4-mapped IPv6 addresses
// alike (the host table keeps IPv4 hosts unmapped); ok is false otherwise.
func addrKey4(a netip.Addr) (k uint32, ok bool) {
	if !a.Is4() && !a.Is4In6() {
		return 0, false
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), true
}

// entryOf6 is the entry of the protected IPv6 address a for direction dir
// of norm ni.
func (e *Engine) entryOf6(a netip.Addr, dir Direction, ni int32) entry {
	k := a.As16()
	return entry{norm: ni, shard: e.shardOf6(&k), dir: dir, v6: true}
}

// shardOf4 is shardOf6 of k's IPv4-mapped form (::ffff:a.b.c.d), computed
// from the four bytes: the same shard either way.
func (e *Engine) shardOf4(k uint32) uint16 {
	h := (uint64(bits.ReverseBytes32(k))<<32 | 0xffff0000) * 0x9E3779B97F4A7C15
	return uint16(h >> (64 - e.shardBits) & uint64(len(e.shards)-1))
}

func (e *Engine) shardOf6(k *[16]byte) uint16 {
	var h uint64
	for i := 0; i < 16; i += 8 {
		h ^= uint64(k[i]) | uint64(k[i+1])<<8 | uint64(k[i+2])<<16 | uint64(k[i+3])<<24 |
			uint64(k[i+4])<<32 | uint64(k[i+5])<<40 | uint64(k[i+6])<<48 | uint64(k[i+7])<<56
	}
	h *= 0x9E3779B97F4A7C15
	return uint16(h >> (64 - e.shardBits) & uint64(len(e.shards)-1))
}

// shardOf is the shard of an unmapped address.
func (e *Engine) shardOf(a netip.Addr) *shard {
	if a.Is4() {
		return &e.shards[e.shardOf4(v4key(a))]
	}
	k := a.As16()
	return &e.shards[e.shardOf6(&k)]
}

// apply links the entries of each shard into a list (in batch order, so a
// host sees its records in order) and takes each shard's lock once for all
// its entries. Linking costs a write per entry, where sorting the entries
// by shard would copy them twice.
func (e *Engine) apply(sc *scratch, records []flow.Record) {
	if len(sc.entries) == 0 {
		return
	}
	heads, touched := sc.heads, sc.touched[:0]
	for i := len(sc.entries) - 1; i >= 0; i-- {
		en := &sc.entries[i]
		if heads[en.shard] < 0 {
			touched = append(touched, en.shard)
		}
		en.next = heads[en.shard]
		heads[en.shard] = int32(i)
	}
	sc.touched = touched
	// Shards in ascending order, as the table is laid out: a hostgroup's
	// attack sampler then sees a single-threaded batch's records in a
	// fixed order whatever the batch's order of first appearance. A small
	// table (the default 16 shards) is scanned; a large one has its few
	// touched shards sorted, or is scanned when many are.
	if len(touched) <= 32 && len(heads) > 64 {
		for i := 1; i < len(touched); i++ {
			for j := i; j > 0 && touched[j] < touched[j-1]; j-- {
				touched[j], touched[j-1] = touched[j-1], touched[j]
			}
		}
	} else {
		touched = touched[:0]
		for s, h := range heads {
			if h >= 0 {
				touched = append(touched, uint16(s))
			}
		}
	}
	// TryLock first and come back to busy shards, so two workers touching
	// the same shards interleave instead of queueing; when a whole pass
	// found every remaining shard busy, wait for one (progress each pass).
	// heads[s] goes back to -1 once shard s is applied.
	left := len(touched)
	for left > 0 {
		progress := false
		for _, s := range touched {
			if heads[s] < 0 {
				continue
			}
			sh := &e.shards[s]
			if !sh.mu.TryLock() {
				continue
			}
			e.applyShard(sh, heads[s], sc, records)
			sh.mu.Unlock()
			heads[s] = -1
			left--
			progress = true
		}
		if progress || left == 0 {
			continue
		}
		for _, s := range touched {
			if heads[s] >= 0 {
				sh := &e.shards[s]
				sh.mu.Lock()
				e.applyShard(sh, heads[s], sc, records)
				sh.mu.Unlock()
				heads[s] = -1
				left--
				break
			}
		}
	}
}

// applyShard accounts the list of entries of one shard starting at entry
// i; the shard's lock is held.
func (e *Engine) applyShard(sh *shard, first int32, sc *scratch, records []flow.Record) {
	// Two passes before the work. With thousands of hosts hit in random
	// order, the daemon's Consume was mostly cache misses, one after the
	// other for each record: the host table, the host, its ring line. The
	// first pass finds every entry's host, the second loads its lines and
	// the ring line the record will add to. Within a pass the loads of
	// different entries do not depend on one another and the loop body is
	// short, so the processor keeps many misses in flight instead of one
	// or two (BenchmarkPipeline/net=20/cold: 180 -> 143 ns/record).
	if cap(sc.hostOf) < len(sc.entries) {
		sc.hostOf = make([]*host, len(sc.entries), 2*len(sc.entries))
	}
	hostOf := sc.hostOf[:len(sc.entries)]
	pending := 0
	for i := first; i >= 0; i = sc.entries[i].next {
		en := &sc.entries[i]
		var k6 [16]byte
		if en.v6 {
			k6 = e.key6(en, &sc.norms[en.norm], records)
		}
		h := sh.get(en.v6, en.k4, &k6)
		if h == nil {
			pending++
		}
		hostOf[i] = h
	}
	// The host's lines (its direction's ring header and totals) and the
	// ring line the record adds to (its end second's slot).
	var touch uint64
	var ftouch float32
	for i := first; i >= 0; i = sc.entries[i].next {
		if h := hostOf[i]; h != nil {
			en := &sc.entries[i]
			dir := en.dir & 1
			touch += h.total[dir].Packets
			if d := &h.dir[dir]; len(d.slots) > 0 {
				n := &sc.norms[en.norm]
				ftouch += d.slots[d.slotIndex(n.endSec, n.recvSec, &e.lay)]
			}
		}
	}
	sc.touch = ftouch + float32(touch&1) // keeps the loads
	// Entries whose host was not tracked when the batch came go in a
	// second round, once every other entry is accounted: placing one may
	// evict a host, which must have all its records by then.
	for placing := false; ; placing = true {
		for i := first; i >= 0; i = sc.entries[i].next {
			h := hostOf[i]
			en := &sc.entries[i]
			n := &sc.norms[en.norm]
			if placing {
				if h != nil {
					continue
				}
				if h = e.place(sh, en, n, records); h == nil {
					continue
				}
			} else if h == nil {
				continue
			}
			r := &records[n.rec]
			h.lastSeen = max(h.lastSeen, n.recvSec)
			rate := uint64(r.SamplingRate)
			if rate == 0 {
				rate = uint64(e.cfg.DefaultSamplingRate)
			}
			t := &h.total[en.dir]
			t.Packets += r.Packets * rate
			t.Bytes += r.Bytes * rate
			d := &h.dir[en.dir]
			d.add(n, &e.lay)
			if d.att != nil {
				d.att.col.add(r, n)
				if n.hold&holdCutFlag != 0 {
					d.att.lastCut = max(d.att.lastCut, n.recvSec)
				}
			}
			if h.group >= 0 {
				if gc := e.groupCols[h.group][en.dir].Load(); gc != nil && !gc.full.Load() {
					gc.add(r, n)
				}
			}
		}
		if placing || pending == 0 {
			break
		}
	}
	clear(hostOf) // no host kept alive by the pooled scratch
}

// place returns the host of entry en, whose host was not tracked when its
// batch came: placed by an earlier entry, or placed now (see placeFor), or
// nil when it found no place and was counted untracked. The shard's lock
// is held.
func (e *Engine) place(sh *shard, en *entry, n *norm, records []flow.Record) *host {
	var k6 [16]byte
	if en.v6 {
		k6 = e.key6(en, n, records)
	}
	if h := sh.get(en.v6, en.k4, &k6); h != nil {
		return h
	}
	h := e.placeFor(sh, n.recvSec)
	if h == nil {
		e.accountUntracked(sh, en, &k6, n, &records[n.rec])
		return nil
	}
	if en.v6 {
		e.initHost(h, hostAddr6(k6))
		sh.v6[k6] = h
	} else {
		e.initHost(h, hostAddr4(en.k4))
		sh.v4[en.k4] = h
	}
	return h
}

// key6 is the IPv6 host key of entry en.
func (e *Engine) key6(en *entry, n *norm, records []flow.Record) [16]byte {
	r := &records[n.rec]
	if en.dir == In {
		return r.DstAddr.As16()
	}
	return r.SrcAddr.As16()
}

// initHost sets a new host's network and hostgroup.
func (e *Engine) initHost(h *host, a netip.Addr) {
	h.network, h.group = e.networks.lookup(a), -1
	if gi := e.groups.lookup(a); gi >= 0 {
		h.group = e.groupOf[gi]
	}
}

// Stats returns the engine-wide counters.
func (e *Engine) Stats() Stats {
	c := &e.counters
	s := Stats{
		Records: c.records.Load(), Accounted: c.accounted.Load(), Unprotected: c.unprotected.Load(),
		Whitelisted: c.whitelisted.Load(), Garbage: c.garbage.Load(), Empty: c.empty.Load(),
		ClockFixed: c.clockFixed.Load(), UnsampledAttacks: e.unsampled.Load(),
		ExportersForgotten: e.exporters.evicted.Load(),
	}
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		s.HostsTracked += sh.len()
		s.HostsEvicted += sh.evicted
		s.UntrackedRecords += sh.untracked
		sh.mu.Unlock()
	}
	e.mu.Lock()
	s.EndedAttacks, s.EndedBytes = len(e.ended), e.endedBytes
	s.EndedForgotten, s.EndedDetailsShed = e.endedForgotten, e.endedShed
	s.UntrackedHosts = e.untrackedHosts
	s.UntrackedInPPS, s.UntrackedOutPPS = e.untrackedRates[In][mPPS], e.untrackedRates[Out][mPPS]
	e.mu.Unlock()
	return s
}
