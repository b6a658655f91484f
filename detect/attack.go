package detect

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// attackState is an active attack as Tick tracks it.
type attackState struct {
	a           Attack
	lastAbove   time.Time
	nextUpdate  time.Time
	detailsSent bool
	ampPort     uint16 // reflector port confirmed by the flow sample, 0 if none
	// fingerprintAt is when the fingerprint was last made (or a new
	// sample for it gave the same); resampleFrom, when the new sample
	// after a vector change began (zero: none under way).
	fingerprintAt, resampleFrom time.Time
	vectorChanged               bool    // the type changed since the fingerprint was made
	udpSize                     float64 // average UDP packet size in the flow sample, 0 if unknown
	col                         *sampler
	sampled                     bool // counted in Engine.sampled: col keeps a sample
	// The attack's holds (see timers.go): holdLate after its last sign,
	// holdCut after the earlier of its last sign and lastCut, the arrival
	// (Unix s) of its host's last record cut by the active timeout.
	holdCut, holdLate uint8
	lastCut           int64
	votePort          uint16 // the host's reflector port vote at the start (0: none)
	// dropPPS is what the router last said it dropped for the attack's
	// ban (Sustain), at dropAt: the flood's power while the ban blinds it.
	dropPPS float64
	dropAt  time.Time
}

type groupDir struct {
	aboveSince int64
	att        *attackState
}

// sampler gathers what describes an attack from its records after the
// start: a bounded sample and top talkers. It stops once the details are
// out, so an attack costs the hot path only for its first seconds (and
// the seconds of a new sample after a vector change, see refingerprint).
// The sample is a reservoir sample of the records seen: every record has
// the same chance to be in it, so a vector whose records come after the
// others' in each batch is in it too (the fingerprint needs it).
//
// A host's sampler is only ever touched under its host's shard lock
// (Consume's applyShard, Tick's evaluation of the host), so adding to it
// takes no lock of its own; a hostgroup's is fed from every shard and
// read by Tick outside them: shared, it locks mu.
type sampler struct {
	mu       sync.Mutex
	full     atomic.Bool
	shared   bool
	limit    int
	sample   []flow.Record
	seen     int
	rnd      uint64  // the reservoir's random state (deterministic)
	udpPkts  float64 // non-fragment UDP packets, the base of the port share
	udpAll   float64 // all UDP packets (fragments too) ...
	udpBits  float64 // ... and their bits: the average UDP packet size
	srcs     top[netip.Addr]
	dsts     top[netip.Addr]
	srcPorts top[uint16]
	dstPorts top[uint16]
	// udpSrcPorts are the source ports of the non-fragment UDP packets
	// alone, the reflector vote: an amplification is UDP, and the
	// victim's own TCP (a large download from 443, one long record whose
	// packets may outweigh the flood's in the sample) must not win it.
	udpSrcPorts top[uint16]
}

// closedSampler stands for the sampler of every host attack whose
// details are out: full, it takes nothing, and is never written.
var closedSampler = func() *sampler {
	c := &sampler{}
	c.full.Store(true)
	return c
}()

func newSampler(limit int, shared bool) *sampler {
	return &sampler{limit: limit, shared: shared, sample: make([]flow.Record, 0, limit)}
}

func (c *sampler) add(r *flow.Record, n *norm) {
	if c.full.Load() {
		return
	}
	if !c.shared {
		c.addLocked(r, n)
		return
	}
	c.mu.Lock()
	c.addLocked(r, n)
	c.mu.Unlock()
}

// addLocked is add with the sampler's guard held (mu, or for a host's
// sampler its shard's lock).
func (c *sampler) addLocked(r *flow.Record, n *norm) {
	c.seen++
	if len(c.sample) < c.limit {
		c.sample = append(c.sample, *r)
	} else if c.limit > 0 {
		// Record number seen takes a random place with probability
		// limit/seen (Algorithm R); a PCG-style step is random enough.
		c.rnd = c.rnd*6364136223846793005 + 1442695040888963407
		if j := (c.rnd >> 32) % uint64(c.seen); j < uint64(c.limit) {
			c.sample[j] = *r
		}
	}
	w := float64(n.pkts)
	c.srcs.add(r.SrcAddr.Unmap(), w)
	c.dsts.add(r.DstAddr.Unmap(), w)
	if r.Proto == flow.ProtoTCP || r.Proto == flow.ProtoUDP {
		c.srcPorts.add(r.SrcPort, w)
		c.dstPorts.add(r.DstPort, w)
	}
	if n.udpPort != 0 {
		c.udpPkts += w
		c.udpSrcPorts.add(n.udpPort, w)
	}
	if r.Proto == flow.ProtoUDP {
		c.udpAll += w
		c.udpBits += float64(n.bits)
	}
}

// done reports whether the sampler, opened at from, has gathered enough
// to describe the attack: flows records, or after that long.
func (c *sampler) done(now, from time.Time, flows int, after time.Duration) bool {
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	return seen >= flows || now.Sub(from) >= after
}

// taken is what a sampler gathered, taken when it closes.
type taken struct {
	c       *sampler
	sample  []flow.Record // in time order
	ampPort uint16        // the sample's reflector port; with no UDP in it, the fallback
	udpSize float64       // the sample's average UDP packet size, 0 without UDP
}

// takeSample closes the attack's sampler and takes what it gathered;
// fallbackPort is the reflector port when the sample holds no UDP.
func (st *attackState) takeSample(fallbackPort uint16) taken {
	c := st.col
	c.full.Store(true)
	c.mu.Lock()
	t := taken{c: c, ampPort: c.reflectorPort()}
	if c.udpPkts == 0 {
		t.ampPort = fallbackPort
	}
	if c.udpAll > 0 {
		t.udpSize = c.udpBits / 8 / c.udpAll
	}
	// The sampler is full from now on: the attack takes its sample
	// over instead of copying it (an attack storm keeps thousands).
	t.sample = c.sample[:len(c.sample):len(c.sample)]
	c.sample = nil
	c.mu.Unlock()
	// The reservoir keeps records in no order; the details list them in
	// time order.
	slices.SortStableFunc(t.sample, func(a, b flow.Record) int { return cmp.Compare(recordTime(&a), recordTime(&b)) })
	return t
}

// releaseSampler lets a host attack's sampler go once its summaries
// are in the details (~800 bytes of an attack storm's thousands). A
// hostgroup's stays, read by Consume through groupCols.
func (st *attackState) releaseSampler() {
	if !st.col.shared {
		st.col = closedSampler
	}
}

// recordTime is when a record's flow started, or when it arrived if its
// start is not known.
func recordTime(r *flow.Record) int64 {
	if r.Start == 0 {
		return r.Received
	}
	return r.Start
}

// reflectorPort is the UDP source port carrying at least half of the
// sampled non-fragment UDP packets, or 0.
func (c *sampler) reflectorPort() uint16 {
	if c.udpPkts <= 0 {
		return 0
	}
	p, w := c.udpSrcPorts.best()
	if p != 0 && w >= 0.5*c.udpPkts {
		return p
	}
	return 0
}

const topK = 8

// top is a Space-Saving heavy-hitter summary: bounded, no allocation, exact
// for any key carrying more than 1/topK of the weight.
type top[K comparable] struct {
	n int
	k [topK]K
	w [topK]float64
}

func (t *top[K]) add(k K, w float64) {
	// One pass finds the key and, for a full summary, the first lightest
	// entry it replaces when the key is new.
	mi := 0
	for i := 0; i < t.n; i++ {
		if t.k[i] == k {
			t.w[i] += w
			return
		}
		if t.w[i] < t.w[mi] {
			mi = i
		}
	}
	if t.n < topK {
		t.k[t.n], t.w[t.n] = k, w
		t.n++
		return
	}
	t.k[mi] = k
	t.w[mi] += w
}

func (t *top[K]) best() (K, float64) {
	var bk K
	bw := -1.0
	for i := 0; i < t.n; i++ {
		if t.w[i] > bw {
			bk, bw = t.k[i], t.w[i]
		}
	}
	return bk, bw
}

// sorted returns the entries heaviest first.
func (t *top[K]) sorted() ([]K, []float64) {
	ks := append([]K(nil), t.k[:t.n]...)
	ws := append([]float64(nil), t.w[:t.n]...)
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ws[j] > ws[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
			ws[j], ws[j-1] = ws[j-1], ws[j]
		}
	}
	return ks, ws
}

// Amplification reflector source ports.
var reflectorTypes = map[uint16]string{
	53: "dns_amplification", 123: "ntp_amplification", 11211: "memcached_amplification",
	1900: "ssdp_amplification", 389: "cldap_amplification", 19: "chargen_amplification",
	161: "snmp_amplification",
	17:  "other_amplification", 69: "other_amplification", 111: "other_amplification",
	137: "other_amplification", 520: "other_amplification", 1434: "other_amplification",
	3283: "other_amplification", 3478: "other_amplification", 3702: "other_amplification",
	5353: "other_amplification", 5683: "other_amplification", 10001: "other_amplification",
	37810: "other_amplification",
}

// minAmplifiedSize is the average UDP packet size (bytes) above which
// traffic from a reflector port is amplification rather than a plain UDP
// flood that happens to use that port (a DNS query is under 100 bytes; the
// smallest amplified answers, SSDP and NTP monlist, are 300-500).
const minAmplifiedSize = 200

// classify names the dominant vector by packets. ampPort is a UDP source
// port known to carry most of the UDP packets, or 0.
// udpSize is the average UDP packet size in bytes.
func classify(v *vec, ampPort uint16, udpSize float64) (typ, proto string) {
	all := v[mPPS+catAll]
	tcp, udp, icmp := v[mPPS+catTCP], v[mPPS+catUDP], v[mPPS+catICMP]
	other := all - tcp - udp - icmp
	proto = "other"
	best := other
	if tcp > best {
		proto, best = "tcp", tcp
	}
	if udp > best {
		proto, best = "udp", udp
	}
	if icmp > best {
		proto = "icmp"
	}
	if all <= 0 {
		return "unknown", "other"
	}
	if proto == "udp" && ampPort != 0 {
		if t, ok := reflectorTypes[ampPort]; ok && udpSize >= minAmplifiedSize {
			return t, proto
		}
	}
	if v[mPPS+catFrag] >= 0.5*all {
		return "ip_fragmentation_flood", proto
	}
	switch proto {
	case "tcp":
		if v[mPPS+catSYN] >= 0.5*tcp {
			return "syn_flood", proto
		}
		return "tcp_flood", proto
	case "udp":
		return "udp_flood", proto
	case "icmp":
		return "icmp_flood", proto
	}
	return "unknown", proto
}

// crossed returns the first metric above its limit: a windowed rate above
// it, or one second at or above factor times it (fast).
func crossed(l *limits, win, fast *vec, factor float64) (name string, isFast bool) {
	for i := range l {
		if l[i] <= 0 {
			continue
		}
		if factor > 0 && fast[i] >= factor*l[i] {
			return metricNames[i], true
		}
		if win[i] > l[i] {
			return metricNames[i], false
		}
	}
	return "", false
}

func anyAbove(l *limits, v *vec, fraction float64) bool {
	for i := range l {
		if l[i] > 0 && v[i] > fraction*l[i] {
			return true
		}
	}
	return false
}

// Details text, in the spirit of FastNetMon's.

func dirWord(d Direction) string {
	if d == Out {
		return "outgoing"
	}
	return "incoming"
}

// udpSize is the average UDP packet size in v, or, when the ring does not
// keep UDP bits (no udp_mbps threshold), the average of all packets.
func (e *Engine) udpSize(v *vec) float64 {
	if e.lay.col[mBPS+catUDP] >= 0 && v[mPPS+catUDP] > 0 {
		return v[mBPS+catUDP] / 8 / v[mPPS+catUDP]
	}
	if v[mPPS] > 0 {
		return v[mBPS] / 8 / v[mPPS]
	}
	return 0
}

// detailsText is the contract's details text. It appends rather than
// formats: an attack storm writes one per attack, and fmt was most of the
// cost. TestDetailsTextMatchesFmt holds it to the fmt version byte for byte.
func (e *Engine) detailsText(a *Attack, rates *[2]vec, c *sampler) string {
	b := make([]byte, 0, 1536+128*len(a.Sample))
	if a.Scope == ScopeGroup {
		b = appendLine(b, "Group: ", a.Group)
	} else {
		b = append(b, "IP: "...)
		b = appendAddr(b, a.IP)
		b = append(b, '\n')
		if a.Group != "" {
			b = appendLine(b, "Hostgroup: ", a.Group)
		}
	}
	b = appendLine(b, "Attack type: ", a.Type)
	b = appendRate(b, "Initial attack power: ", a.InitialPPS, " packets per second\n")
	b = appendRate(b, "Peak attack power: ", a.PeakPPS, " packets per second\n")
	b = appendRate(b, "Initial attack bandwidth: ", a.InitialBPS/1e6, " mbps\n")
	b = appendRate(b, "Peak attack bandwidth: ", a.PeakBPS/1e6, " mbps\n")
	b = appendLine(b, "Attack direction: ", dirWord(a.Direction))
	b = appendLine(b, "Attack protocol: ", a.Protocol)
	b = appendLine(b, "Threshold crossed: ", a.Threshold)
	for d := In; d <= Out; d++ {
		v := &rates[d]
		w := dirWord(d)
		b = appendRate(append(append(b, "Total "...), w...), " traffic: ", v[mBPS]/1e6, " mbps\n")
		b = appendRate(append(append(b, "Total "...), w...), " pps: ", v[mPPS], " packets per second\n")
		b = appendRate(append(append(b, "Total "...), w...), " flows: ", v[mFlows], " flows per second\n")
	}
	for d := In; d <= Out; d++ {
		v := &rates[d]
		avg := 0.0
		if v[mPPS] > 0 {
			avg = v[mBPS] / 8 / v[mPPS]
		}
		b = appendRate(append(append(b, "Average "...), dirWord(d)...), " packet size: ", avg, " bytes\n")
	}
	cats := [...]struct {
		c    int
		name string
	}{{catFrag, "ip fragmented"}, {catTCP, "tcp"}, {catSYN, "syn tcp"}, {catUDP, "udp"}, {catICMP, "icmp"}}
	for d := In; d <= Out; d++ {
		v := &rates[d]
		w := "Incoming "
		if d == Out {
			w = "Outgoing "
		}
		for _, c := range cats {
			if e.lay.col[mBPS+c.c] >= 0 { // kept only when a threshold uses it
				b = appendRate(append(append(b, w...), c.name...), " traffic: ", v[mBPS+c.c]/1e6, " mbps\n")
			}
			b = appendRate(append(append(b, w...), c.name...), " pps: ", v[mPPS+c.c], " packets per second\n")
		}
	}
	if a.Fingerprint != nil {
		b = appendFingerprint(b, a.Fingerprint)
	}
	if c != nil {
		c.mu.Lock()
		b = appendTop(b, "Top source addresses", &c.srcs, appendAddr)
		b = appendTop(b, "Top destination addresses", &c.dsts, appendAddr)
		b = appendTop(b, "Top source ports", &c.srcPorts, appendPort)
		b = appendTop(b, "Top destination ports", &c.dstPorts, appendPort)
		if c.limit == 0 && e.cfg.SampleFlows > 0 {
			b = append(b, "\nFlow sample skipped: "...)
			b = strconv.AppendInt(b, int64(e.sampled), 10)
			b = append(b, " other attacks hold one (at most "...)
			b = strconv.AppendInt(b, int64(e.cfg.MaxSampledAttacks), 10)
			b = append(b, " at a time)\n"...)
		}
		b = append(b, "\nFlow sample ("...)
		b = strconv.AppendInt(b, int64(len(a.Sample)), 10)
		b = append(b, " of "...)
		b = strconv.AppendInt(b, int64(c.seen), 10)
		b = append(b, " records seen):\n"...)
		for i := range a.Sample {
			b = appendFlowLine(b, &a.Sample[i], e.cfg.DefaultSamplingRate)
		}
		c.mu.Unlock()
	}
	return string(b)
}

func appendLine(b []byte, label, value string) []byte {
	return append(append(append(b, label...), value...), '\n')
}

// appendRate appends label, v as fmt's %.0f would, and unit.
func appendRate(b []byte, label string, v float64, unit string) []byte {
	b = append(b, label...)
	b = strconv.AppendFloat(b, v, 'f', 0, 64)
	return append(b, unit...)
}

// appendAddr appends a as fmt's %v would ("invalid IP" for the zero Addr).
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, "invalid IP"...)
	}
	return a.AppendTo(b)
}

func appendPort(b []byte, p uint16) []byte { return strconv.AppendUint(b, uint64(p), 10) }

func appendTop[K comparable](b []byte, title string, t *top[K], appendKey func([]byte, K) []byte) []byte {
	ks, ws := t.sorted()
	b = append(append(append(b, '\n'), title...), " (packets, approximate):\n"...)
	for i := range ks {
		b = appendKey(b, ks[i])
		b = append(b, ' ')
		b = strconv.AppendFloat(b, ws[i], 'f', 0, 64)
		b = append(b, '\n')
	}
	return b
}

// FlowLine formats one record as the contract's details line:
// TIME SRC:PORT > DST:PORT protocol: P flags: F packets: N size: B bytes sample ratio: R
func FlowLine(r *flow.Record, defaultRate uint32) string {
	var buf [160]byte
	b := appendFlowLine(buf[:0], r, defaultRate)
	return string(b[:len(b)-1])
}

// appendFlowLine is the line with its newline. It appends rather than
// formats: an attack storm formats every attack's flow sample, and fmt was
// most of that cost.
func appendFlowLine(b []byte, r *flow.Record, defaultRate uint32) []byte {
	t := r.Start
	if t == 0 {
		t = r.Received
	}
	rate := r.SamplingRate
	if rate == 0 {
		rate = defaultRate
	}
	b = time.Unix(0, t).UTC().AppendFormat(b, "2006-01-02 15:04:05.000")
	b = append(b, ' ')
	b = netip.AddrPortFrom(r.SrcAddr.Unmap(), r.SrcPort).AppendTo(b)
	b = append(b, " > "...)
	b = netip.AddrPortFrom(r.DstAddr.Unmap(), r.DstPort).AppendTo(b)
	b = append(b, " protocol: "...)
	b = appendProtoName(b, r.Proto)
	b = append(b, " flags: "...)
	b = appendTCPFlags(b, r)
	b = append(b, " packets: "...)
	b = strconv.AppendUint(b, r.Packets, 10)
	b = append(b, " size: "...)
	b = strconv.AppendUint(b, r.Bytes, 10)
	b = append(b, " bytes sample ratio: "...)
	b = strconv.AppendUint(b, uint64(rate), 10)
	return append(b, '\n')
}

func appendProtoName(b []byte, p uint8) []byte {
	switch p {
	case flow.ProtoTCP, flow.ProtoUDP, flow.ProtoICMP, flow.ProtoICMPv6:
		return append(b, protoName(p)...)
	}
	return strconv.AppendUint(b, uint64(p), 10)
}

func appendTCPFlags(b []byte, r *flow.Record) []byte {
	if r.Proto != flow.ProtoTCP || r.TCPFlags == 0 {
		return append(b, '-')
	}
	names := [...]string{"fin", "syn", "rst", "psh", "ack", "urg"}
	first := true
	for i, n := range names {
		if r.TCPFlags&(1<<i) != 0 {
			if !first {
				b = append(b, ',')
			}
			b = append(b, n...)
			first = false
		}
	}
	return b
}

func protoName(p uint8) string {
	switch p {
	case flow.ProtoTCP:
		return "tcp"
	case flow.ProtoUDP:
		return "udp"
	case flow.ProtoICMP:
		return "icmp"
	case flow.ProtoICMPv6:
		return "icmpv6"
	}
	return fmt.Sprint(p)
}

// AppendFlowLine appends FlowLine's line (without a newline) to b.
func AppendFlowLine(b []byte, r *flow.Record, defaultRate uint32) []byte {
	b = appendFlowLine(b, r, defaultRate)
	return b[:len(b)-1]
}
