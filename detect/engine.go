package detect

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
	groupLim  []limits // group_* thresholds per hostgroup

	shardBits int
	shards    []shard
	scratch   sync.Pool

	exporters exporterTable
	counters  counters

	// groupCols[g][dir] is the flow collector of group g's active attack,
	// read lock-free on the hot path.
	groupCols [][2]atomic.Pointer[collector]

	tickMu  sync.Mutex // serializes Tick; guards what only Tick touches
	groupSt [][2]groupDir
	seq     uint64

	mu       sync.Mutex // guards the attack registry and the totals snapshot
	active   map[string]*Attack
	ended    []Attack // oldest first
	totals   [2]vec
	netRates [][2]vec
}

// limits is a threshold set in the vec layout (pps, bits/s, flows/s); 0 disables.
type limits vec

func limitsOf(t Thresholds) limits {
	var l limits
	l[mPPS+catAll], l[mBps+catAll], l[mFlows] = float64(t.PPS), float64(t.Mbps)*1e6, float64(t.Flows)
	l[mPPS+catTCP], l[mBps+catTCP] = float64(t.TCPPPS), float64(t.TCPMbps)*1e6
	l[mPPS+catUDP], l[mBps+catUDP] = float64(t.UDPPPS), float64(t.UDPMbps)*1e6
	l[mPPS+catICMP], l[mBps+catICMP] = float64(t.ICMPPPS), float64(t.ICMPMbps)*1e6
	l[mPPS+catSYN], l[mBps+catSYN] = float64(t.SYNPPS), float64(t.SYNMbps)*1e6
	l[mPPS+catFrag], l[mBps+catFrag] = float64(t.FragPPS), float64(t.FragMbps)*1e6
	return l
}

type shard struct {
	mu      sync.Mutex
	hosts   map[[16]byte]*host
	max     int
	dropped uint64 // new hosts not tracked because the shard was full
	_       [64]byte
}

// host is one protected address. Rings are allocated per direction on first
// traffic, so a host seen only one way costs one ring.
//
// The address is not stored here: the shard map's key holds it, which keeps
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

// hostAddr is the address of a host table key.
func hostAddr(k [16]byte) netip.Addr { return netip.AddrFrom16(k).Unmap() }

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
	HostsDropped uint64 // new hosts not tracked because MaxHosts was reached
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
		gl[mPPS], gl[mBps], gl[mFlows] = float64(g.GroupPPS), float64(g.GroupMbps)*1e6, float64(g.GroupFlows)
		e.groupLim = append(e.groupLim, gl)
	}
	e.limits = append(e.limits, limitsOf(cfg.Global))
	var bitsNeeded [numCats]bool
	for _, l := range e.limits {
		for c := 0; c < numCats; c++ {
			bitsNeeded[c] = bitsNeeded[c] || l[mBps+c] > 0
		}
	}
	e.lay = newLayout(int(e.winSec)+2, bitsNeeded)
	e.protected = newPrefixTable(all)
	e.networks = newPrefixTable(cfg.Networks)
	e.groups = newPrefixTable(groupPrefixes)
	e.whitelist = newPrefixTable(cfg.WhitelistSources)
	e.groupCols = make([][2]atomic.Pointer[collector], len(cfg.HostGroups))
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
		e.shards[i].hosts = map[[16]byte]*host{}
		e.shards[i].max = max(1, (cfg.MaxHosts+n-1)/n)
	}
	e.scratch.New = func() any { return &scratch{counts: make([]int32, n+1)} }
	e.exporters.m = map[netip.Addr]*exporterState{}
	return e, nil
}

// norm is a record made sane: its times, its sampled-up counters and its
// category mask.
type norm struct {
	start, end int64 // Unix ns
	recvSec    int64
	pkts, bits float32
	mask       uint8
	udpPort    uint16 // source port of non-fragment UDP, else 0
	rec        int32  // index into the batch
}

type entry struct {
	key   [16]byte
	shard int32
	dir   Direction
	norm  int32
}

type scratch struct {
	norms   []norm
	entries []entry
	sorted  []entry
	counts  []int32
	runs    []int32
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
	for i := range records {
		r := &records[i]
		recv := r.Received
		if recv == 0 {
			if nowNs == 0 {
				nowNs = e.now().UnixNano()
			}
			recv = nowNs
		}
		src, dst := r.SrcAddr.Unmap(), r.DstAddr.Unmap()
		dstProt := e.protected.lookup(dst) >= 0
		srcProt := e.protected.lookup(src) >= 0
		if !dstProt && !srcProt {
			local.unprotected++
			continue
		}
		if dstProt && !e.whitelist.empty() && e.whitelist.lookup(src) >= 0 {
			dstProt = false
			local.whitelisted++
		}
		if srcProt && !e.whitelist.empty() && e.whitelist.lookup(dst) >= 0 {
			srcProt = false
			local.whitelisted++
		}
		if !dstProt && !srcProt {
			continue
		}
		if r.Packets == 0 && r.Bytes == 0 {
			local.empty++
			continue
		}
		n, fix, garbage := e.normalize(r, recv)
		if fix != fixNone {
			local.fixed++
			sc.exp.add(e, r.Exporter, fix, recv)
		}
		if garbage {
			local.garbage++
			sc.exp.add(e, r.Exporter, fixGarbage, recv)
			continue
		}
		local.accounted++
		n.rec = int32(i)
		ni := int32(len(sc.norms))
		sc.norms = append(sc.norms, n)
		if dstProt {
			k := dst.As16()
			sc.entries = append(sc.entries, entry{key: k, shard: e.shardOf(&k), dir: In, norm: ni})
		}
		if srcProt {
			k := src.As16()
			sc.entries = append(sc.entries, entry{key: k, shard: e.shardOf(&k), dir: Out, norm: ni})
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

func (e *Engine) shardOf(k *[16]byte) int32 {
	var h uint64
	for i := 0; i < 16; i += 8 {
		h ^= uint64(k[i]) | uint64(k[i+1])<<8 | uint64(k[i+2])<<16 | uint64(k[i+3])<<24 |
			uint64(k[i+4])<<32 | uint64(k[i+5])<<40 | uint64(k[i+6])<<48 | uint64(k[i+7])<<56
	}
	h *= 0x9E3779B97F4A7C15
	return int32(h >> (64 - e.shardBits) & uint64(len(e.shards)-1))
}

// apply groups the entries by shard (counting sort) and takes each shard's
// lock once for all its entries.
func (e *Engine) apply(sc *scratch, records []flow.Record) {
	if len(sc.entries) == 0 {
		return
	}
	counts := sc.counts
	clear(counts)
	for i := range sc.entries {
		counts[sc.entries[i].shard+1]++
	}
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	if cap(sc.sorted) < len(sc.entries) {
		sc.sorted = make([]entry, len(sc.entries), 2*len(sc.entries))
	}
	sorted := sc.sorted[:len(sc.entries)]
	for i := range sc.entries {
		s := sc.entries[i].shard
		sorted[counts[s]] = sc.entries[i]
		counts[s]++
	}
	// Runs of one shard; a run is cleared to -1 once applied.
	runs := sc.runs[:0]
	for i := 0; i < len(sorted); {
		runs = append(runs, int32(i))
		s := sorted[i].shard
		for i < len(sorted) && sorted[i].shard == s {
			i++
		}
	}
	sc.runs = runs
	// TryLock first and come back to busy shards, so two workers touching
	// the same shards interleave instead of queueing; when a whole pass
	// found every remaining shard busy, wait for one (progress each pass).
	left := len(runs)
	for left > 0 {
		progress := false
		for ri, start := range runs {
			if start < 0 {
				continue
			}
			sh := &e.shards[sorted[start].shard]
			if !sh.mu.TryLock() {
				continue
			}
			e.applyRun(sh, sorted, int(start), sc, records)
			sh.mu.Unlock()
			runs[ri] = -1
			left--
			progress = true
		}
		if progress || left == 0 {
			continue
		}
		for ri, start := range runs {
			if start >= 0 {
				sh := &e.shards[sorted[start].shard]
				sh.mu.Lock()
				e.applyRun(sh, sorted, int(start), sc, records)
				sh.mu.Unlock()
				runs[ri] = -1
				left--
				break
			}
		}
	}
}

// applyRun accounts the entries of one shard starting at sorted[i]; the
// shard's lock is held.
func (e *Engine) applyRun(sh *shard, sorted []entry, i int, sc *scratch, records []flow.Record) {
	s := sorted[i].shard
	for ; i < len(sorted) && sorted[i].shard == s; i++ {
		en := &sorted[i]
		n := &sc.norms[en.norm]
		h := sh.hosts[en.key]
		if h == nil {
			if len(sh.hosts) >= sh.max {
				sh.dropped++
				continue
			}
			h = e.newHost(en.key)
			sh.hosts[en.key] = h
		}
		h.lastSeen = max(h.lastSeen, n.recvSec)
		r := &records[n.rec]
		rate := uint64(r.SamplingRate)
		if rate == 0 {
			rate = uint64(e.cfg.DefaultSamplingRate)
		}
		h.total[en.dir].Packets += r.Packets * rate
		h.total[en.dir].Bytes += r.Bytes * rate
		d := &h.dir[en.dir]
		d.add(n, &e.lay)
		if d.att != nil {
			d.att.col.add(&records[n.rec], n)
		}
		if h.group >= 0 {
			if gc := e.groupCols[h.group][en.dir].Load(); gc != nil && !gc.full.Load() {
				gc.add(&records[n.rec], n)
			}
		}
	}
}

func (e *Engine) newHost(key [16]byte) *host {
	a := netip.AddrFrom16(key).Unmap()
	h := &host{network: e.networks.lookup(a), group: -1}
	if gi := e.groups.lookup(a); gi >= 0 {
		h.group = e.groupOf[gi]
	}
	return h
}

// Stats returns the engine-wide counters.
func (e *Engine) Stats() Stats {
	c := &e.counters
	s := Stats{
		Records: c.records.Load(), Accounted: c.accounted.Load(), Unprotected: c.unprotected.Load(),
		Whitelisted: c.whitelisted.Load(), Garbage: c.garbage.Load(), Empty: c.empty.Load(),
		ClockFixed: c.clockFixed.Load(),
	}
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		s.HostsTracked += len(sh.hosts)
		s.HostsDropped += sh.dropped
		sh.mu.Unlock()
	}
	return s
}
