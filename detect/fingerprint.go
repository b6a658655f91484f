package detect

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"unsafe"

	"github.com/flowshield/flowshield/flow"
)

// Fingerprint is what an attack's packets have in common, in the terms a
// RouterOS /ip/firewall/raw rule matches (protocol, ports, tcp-flags,
// fragment, packet-size): what ACTION=filter drops instead of the
// victim's whole traffic. It is made from the attack's flow sample when
// its details are (see fingerprintOf), from the host's counters when
// there is no sample, and never changed afterwards: a new one replaces
// it, so copies of an Attack may share it.
type Fingerprint struct {
	// Vectors are the kinds of packet that carry the attack, at most
	// MaxVectors, the largest share first. None: nothing characterises
	// the attack (no kind of packet carries MinVectorShare of it), and a
	// filter cannot hold it.
	Vectors []Vector
	// Share is the part of the attack's packets that some vector matches
	// (0..1).
	Share float64
	// Records is how many sampled flow records it comes from; 0: from the
	// host's (or group's) counters, with no ports and no sizes, and
	// shares that are those of the counters' protocol categories.
	Records int
}

// Vector is one kind of packet of an attack. A packet matches when it
// matches every field that is set; a field at its zero value matches any
// packet.
type Vector struct {
	// Protocol is the IP protocol (6 tcp, 17 udp, 1 icmp, 58 icmpv6 ...);
	// 0 (any) only for a fragment vector made from the counters.
	Protocol uint8
	// SrcPort is the source port the packets share: the reflector's
	// service port of an amplification (53, 123, 11211 ...). 0: any.
	SrcPort uint16
	// DstPorts, ascending, are the few destination ports the packets go
	// to, when at most MaxDstPorts carry most of them. nil: any.
	DstPorts []uint16
	// TCPFlags and TCPMask: the flags in TCPMask are set as in TCPFlags
	// (SYN without ACK: TCPFlags SYN, TCPMask SYN|ACK). TCPMask 0: any.
	TCPFlags, TCPMask uint8
	// Fragment: non-first IP fragments only, which carry no ports
	// (RouterOS fragment=yes; a first fragment matches as an ordinary
	// packet).
	Fragment bool
	// SizeMin and SizeMax bound the IP packet size in bytes (layer 3, as
	// RouterOS packet-size counts it). Both 0: any size.
	SizeMin, SizeMax uint16
	// Share is the part of the attack's packets the vector matches (0..1).
	Share float64
}

// Fingerprint bounds and rules (see fingerprintOf).
const (
	// MaxVectors bounds a fingerprint's vectors: the rules a filter needs.
	MaxVectors = 4
	// MaxDstPorts bounds a vector's destination ports.
	MaxDstPorts = 8
	// MinVectorShare is the least a vector must add to what the vectors
	// before it match: under it a kind of packet is noise, not a vector.
	MinVectorShare = 0.05
	// minRelativeShare: a vector after the first must add at least this
	// fraction of the first's share. The victim's own traffic (its
	// visitors, the answers to its queries) rides along with the flood,
	// smaller than it: it must not become a vector the filter drops.
	minRelativeShare = 1.0 / 3
	// cover is the part of a vector's packets its destination ports (the
	// fewest that carry it, if at most MaxDstPorts) and its packet-size
	// range (that of the narrowest span of record sizes that carries it)
	// match: the rest may be the victim's own (its DNS answers among the
	// DNS amplification's packets stay out).
	cover = 0.9
	// ethernetMTU: a size range reaching past it is cut there when no
	// record was larger (no larger packet crosses such a link).
	ethernetMTU = 1500
)

// Protocol-only vectors (see fingerprintOfCounters) use these masks.
const synMask = flow.TCPFlagSYN | flow.TCPFlagACK

// Matches reports whether a record's packets match v, as a RouterOS rule
// with v's matchers would: a port or tcp-flags matcher needs the
// transport header, which a non-first fragment does not carry. The size
// is the record's average packet size.
func (v *Vector) Matches(r *flow.Record) bool {
	if v.Protocol != 0 && r.Proto != v.Protocol {
		return false
	}
	later := laterFragment(r)
	if v.Fragment && !later {
		return false
	}
	if later && (v.SrcPort != 0 || v.DstPorts != nil || v.TCPMask != 0) {
		return false
	}
	if v.SrcPort != 0 && r.SrcPort != v.SrcPort {
		return false
	}
	if v.DstPorts != nil && !slices.Contains(v.DstPorts, r.DstPort) {
		return false
	}
	if v.TCPMask != 0 && (r.Proto != flow.ProtoTCP || r.TCPFlags&v.TCPMask != v.TCPFlags) {
		return false
	}
	if v.SizeMax != 0 {
		s := recordSize(r)
		return s >= float64(v.SizeMin) && s <= float64(v.SizeMax)
	}
	return true
}

// laterFragment reports whether r is non-first fragments. For TCP and UDP
// that is a record without ports (a first fragment has its ports), flagged
// or not: NetFlow v9 and RouterOS do not flag fragments, and port 0 on both
// sides is no real TCP or UDP traffic. Other protocols need the flag.
func laterFragment(r *flow.Record) bool {
	if r.Proto == flow.ProtoTCP || r.Proto == flow.ProtoUDP {
		return r.SrcPort == 0 && r.DstPort == 0
	}
	return r.Fragment
}

// recordSize is the record's average IP packet size in bytes.
func recordSize(r *flow.Record) float64 {
	if r.Packets == 0 {
		return 0
	}
	return float64(r.Bytes) / float64(r.Packets)
}

// fpRecord is one sampled record as fingerprintOf weighs it.
type fpRecord struct {
	r     *flow.Record
	w     float64 // packets per second, sampling rate included
	size  float64
	class fpClass
}

// fpClass is a kind of packet a vector may stand for: a protocol, non-first
// fragments or not, for TCP SYN without ACK or not, and a shared source
// port (0: the class's records from no such port).
type fpClass struct {
	proto   uint8
	frag    bool
	syn     bool
	srcPort uint16
}

func (c fpClass) compare(o fpClass) int {
	return cmp.Or(cmp.Compare(c.proto, o.proto), boolCompare(c.frag, o.frag), boolCompare(c.syn, o.syn),
		cmp.Compare(c.srcPort, o.srcPort))
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func classOf(r *flow.Record) fpClass {
	c := fpClass{proto: r.Proto, frag: laterFragment(r)}
	c.syn = !c.frag && r.Proto == flow.ProtoTCP && r.TCPFlags&synMask == flow.TCPFlagSYN
	return c
}

// fingerprintOf is the fingerprint of a flow sample, each record weighed by
// its packet rate: its packets times its sampling rate (0: defaultRate)
// over its duration, at least a second (a long flow reported once weighs
// what it carried each second, not its whole life); nil when no record
// carries packets. Deterministic: the same sample gives the same
// fingerprint.
//
// The records fall into classes: protocol, non-first fragments (no
// ports), TCP SYN without ACK. A source port of TCP or UDP that carries
// MinVectorShare of all the packets and is sent from by more than one
// address (reflectors answer from their service port; spoofed floods
// draw random ones) is a class of its own. Each class gives a candidate
// vector: its destination ports if concentrated (cover, at most
// MaxDstPorts), and the packet-size range of the narrowest span of its
// records' average sizes carrying cover of them, widened by an eighth
// each way (a record's packets are not all its average) and rounded
// outward to tens (hundreds from 1,000). The candidates, heaviest class
// first, become vectors while each adds MinVectorShare, and a third of the
// first's share, to what the vectors before it match, up to MaxVectors.
// A vector's share is all it matches, its class's packets or not.
//
// With mix (the counters' packet rates by kind: SYN without ACK, other
// TCP, UDP, ICMP, others; the engine gives those of each kind's busiest
// second in the window, which at the start of a flood is its flood's,
// where the window's average still holds the seconds before it), the
// shares are of the attack's packets as the counters saw them: a record
// weighs its part of its kind's sampled packets times the kind's part in
// mix. The counters hold every packet, where 40 sampled records hold a
// vector in a handful: the sample says what a kind's packets are, the
// counters how many.
func fingerprintOf(sample []flow.Record, defaultRate uint32, mix *protoMix) *Fingerprint {
	recs := make([]fpRecord, 0, len(sample))
	total := 0.0
	var byKind protoMix
	for i := range sample {
		r := &sample[i]
		if r.Packets == 0 {
			continue
		}
		rate := r.SamplingRate
		if rate == 0 {
			rate = max(defaultRate, 1)
		}
		// a long flow reported once counts for its rate, not for the
		// packets of its whole life
		secs := max(float64(r.End-r.Start)/1e9, 1)
		w := float64(r.Packets) * float64(rate) / secs
		recs = append(recs, fpRecord{r: r, w: w, size: recordSize(r), class: classOf(r)})
		total += w
		byKind[mixIndex(r)] += w
	}
	if total <= 0 {
		return nil
	}
	fp := &Fingerprint{Records: len(recs)}
	if all := mix.sum(); all > 0 {
		// What the counters say of the kinds the sample holds; those it
		// lacks stay unmatched, and one they lack does not count.
		kept := recs[:0]
		for _, r := range recs {
			k := mixIndex(r.r)
			if r.w *= mix[k] / all / byKind[k]; r.w > 0 {
				kept = append(kept, r)
			}
		}
		if recs, total = kept, 1; len(recs) == 0 {
			return fp
		}
	}
	assignSourcePorts(recs, total)
	// The classes as runs of records; records keep their order within.
	slices.SortStableFunc(recs, func(a, b fpRecord) int { return a.class.compare(b.class) })
	// Candidates in the order of their classes' weights: a class's vector
	// may match more than its class (a UDP vector without a port matches
	// the reflector's packets of its sizes too), and the narrower one
	// that stands for the flood goes first. matches[c*len(recs)+i]: the
	// candidate c matches record i.
	type candidate struct {
		v      Vector
		weight float64
		index  int
	}
	var cands []candidate
	var matches []bool
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].class == recs[i].class {
			j++
		}
		c := candidate{v: vectorOf(recs[i].class, recs[i:j]), index: len(cands)}
		for _, r := range recs[i:j] {
			c.weight += r.w
		}
		matched := 0.0
		for k := range recs {
			m := c.v.Matches(recs[k].r)
			matches = append(matches, m)
			if m {
				matched += recs[k].w
			}
		}
		c.v.Share = min(matched/total, 1)
		cands = append(cands, c)
		i = j
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(b.weight, a.weight) })

	covered := make([]bool, len(recs))
	for _, c := range cands {
		if len(fp.Vectors) == MaxVectors {
			break
		}
		m := matches[c.index*len(recs) : (c.index+1)*len(recs)]
		added := 0.0
		for i := range recs {
			if m[i] && !covered[i] {
				added += recs[i].w
			}
		}
		added /= total
		if added < MinVectorShare || (len(fp.Vectors) > 0 && added < minRelativeShare*fp.Vectors[0].Share) {
			continue
		}
		for i := range recs {
			if m[i] && !covered[i] {
				covered[i] = true
				fp.Share += recs[i].w / total
			}
		}
		fp.Vectors = append(fp.Vectors, c.v)
	}
	// Largest share first, as the vectors match (the order they were
	// taken in is that of their classes).
	slices.SortStableFunc(fp.Vectors, func(a, b Vector) int { return cmp.Compare(b.Share, a.Share) })
	fp.Share = min(fp.Share, 1)
	return fp
}

// protoMix is packets (or their rates) by kind as the counters keep them:
// TCP SYN without ACK, other TCP, UDP, ICMP (and ICMPv6), others.
type protoMix [5]float64

// mixIndex is a record's kind in a protoMix.
func mixIndex(r *flow.Record) int {
	switch r.Proto {
	case flow.ProtoTCP:
		if r.TCPFlags&synMask == flow.TCPFlagSYN {
			return 0
		}
		return 1
	case flow.ProtoUDP:
		return 2
	case flow.ProtoICMP, flow.ProtoICMPv6:
		return 3
	}
	return 4
}

// mixOf is the rates' packets by kind.
func mixOf(v *vec) *protoMix {
	tcp, udp, icmp, syn := v[mPPS+catTCP], v[mPPS+catUDP], v[mPPS+catICMP], v[mPPS+catSYN]
	return &protoMix{syn, max(tcp-syn, 0), udp, icmp, max(v[mPPS+catAll]-tcp-udp-icmp, 0)}
}

// sum is all the packets, 0 for a nil mix.
func (m *protoMix) sum() float64 {
	if m == nil {
		return 0
	}
	return m[0] + m[1] + m[2] + m[3] + m[4]
}

// assignSourcePorts puts records of TCP and UDP from a source port that
// carries MinVectorShare of the packets (of total) from more than one
// address in a class of that port (see fingerprintOf).
func assignSourcePorts(recs []fpRecord, total float64) {
	var from []int // records with a source port that may be a reflector's
	for i := range recs {
		c, r := &recs[i].class, recs[i].r
		if !c.frag && r.SrcPort != 0 && (c.proto == flow.ProtoTCP || c.proto == flow.ProtoUDP) {
			from = append(from, i)
		}
	}
	key := func(i int) fpClass {
		k := recs[i].class
		k.srcPort = recs[i].r.SrcPort
		return k
	}
	slices.SortStableFunc(from, func(a, b int) int { return key(a).compare(key(b)) })
	var ports []fpClass
	for i := 0; i < len(from); {
		k, first := key(from[i]), recs[from[i]].r.SrcAddr
		w, many := 0.0, false
		j := i
		for ; j < len(from) && key(from[j]) == k; j++ {
			w += recs[from[j]].w
			many = many || recs[from[j]].r.SrcAddr != first
		}
		if many && w >= MinVectorShare*total {
			ports = append(ports, k) // at most 1/MinVectorShare of them
		}
		i = j
	}
	for _, i := range from {
		if k := key(i); slices.Contains(ports, k) {
			recs[i].class = k
		}
	}
}

// vectorOf is the candidate vector of a class and its records.
func vectorOf(c fpClass, recs []fpRecord) Vector {
	v := Vector{Protocol: c.proto, Fragment: c.frag, SrcPort: c.srcPort}
	if c.syn {
		v.TCPFlags, v.TCPMask = flow.TCPFlagSYN, synMask
	}
	if !c.frag && (c.proto == flow.ProtoTCP || c.proto == flow.ProtoUDP) {
		v.DstPorts = concentratedPorts(recs)
	}
	if v.DstPorts != nil {
		kept := recs[:0:0]
		for i := range recs {
			if slices.Contains(v.DstPorts, recs[i].r.DstPort) {
				kept = append(kept, recs[i])
			}
		}
		recs = kept
	}
	v.SizeMin, v.SizeMax = sizeRange(recs)
	return v
}

// concentratedPorts are the fewest destination ports carrying cover of
// the records' packets, ascending, or nil when that takes more than
// MaxDstPorts, or more than half as many as the records they cover.
func concentratedPorts(recs []fpRecord) []uint16 {
	type port struct {
		p    uint16
		w    float64
		recs int
	}
	byPort := make([]port, len(recs))
	total := 0.0
	for i := range recs {
		byPort[i] = port{recs[i].r.DstPort, recs[i].w, 1}
		total += recs[i].w
	}
	slices.SortFunc(byPort, func(a, b port) int { return cmp.Compare(a.p, b.p) })
	n := 0
	for _, p := range byPort {
		if n > 0 && byPort[n-1].p == p.p {
			byPort[n-1].w += p.w
			byPort[n-1].recs++
			continue
		}
		byPort[n] = p
		n++
	}
	byPort = byPort[:n]
	slices.SortStableFunc(byPort, func(a, b port) int { return cmp.Compare(b.w, a.w) })
	sum, count := 0.0, 0
	for i, p := range byPort {
		if i == MaxDstPorts {
			return nil
		}
		sum += p.w
		count += p.recs
		if sum < cover*total {
			continue
		}
		// Ports that repeat: a few records of a flood to random ports
		// are a few ports too.
		if 2*(i+1) > count {
			return nil
		}
		kept := make([]uint16, i+1)
		for k := range kept {
			kept[k] = byPort[k].p
		}
		slices.Sort(kept)
		return kept
	}
	return nil
}

// sizeRange is the packet-size range of the records (see fingerprintOf);
// 0, 0 for none.
func sizeRange(recs []fpRecord) (lo, hi uint16) {
	if len(recs) == 0 {
		return 0, 0
	}
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b fpRecord) int { return cmp.Compare(a.size, b.size) })
	total := 0.0
	for i := range sorted {
		total += sorted[i].w
	}
	need := cover * total
	// Two pointers: for each first record, the fewest after it that carry
	// the share; the narrowest such span by ratio (sizes scale).
	bestLo, bestHi, best := 0, len(sorted)-1, math.Inf(1)
	sum, j := 0.0, 0
	for i := range sorted {
		for j < len(sorted) && (sum < need || j <= i) {
			sum += sorted[j].w
			j++
		}
		if sum < need {
			break
		}
		if ratio := (sorted[j-1].size + 1) / (sorted[i].size + 1); ratio < best {
			bestLo, bestHi, best = i, j-1, ratio
		}
		sum -= sorted[i].w
	}
	return roundSizes(sorted[bestLo].size, sorted[bestHi].size)
}

// roundSizes widens the sizes by an eighth each way and rounds them
// outward to tens (hundreds from 1,000 bytes): RouterOS packet-size
// bounds an operator reads at a glance. An upper bound past the Ethernet
// MTU is cut there when no record was larger.
func roundSizes(minSize, maxSize float64) (lo, hi uint16) {
	step := func(v float64) float64 {
		if v < 1000 {
			return 10
		}
		return 100
	}
	l := minSize * 7 / 8
	l = math.Floor(l/step(l)) * step(l)
	h := maxSize * 9 / 8
	h = math.Ceil(h/step(h)) * step(h)
	if maxSize <= ethernetMTU && h > ethernetMTU {
		h = ethernetMTU
	}
	h = min(max(h, 1), math.MaxUint16)
	l = min(max(l, 0), h)
	return uint16(l), uint16(h)
}

// fingerprintOfCounters is the fingerprint when there is no flow sample
// (the attack holds none, or a ban blinded the flows before it filled):
// from the rates' protocol categories, protocol-only vectors (TCP SYN
// without ACK, fragments, UDP from the reflector port ampPort when the
// attack is an amplification), with the categories' shares. Fragments are
// taken for UDP's (the usual case) when both are counted. ipv6 picks
// ICMPv6. nil when the rates carry no packets.
func fingerprintOfCounters(v *vec, ampPort uint16, ipv6 bool) *Fingerprint {
	all := v[mPPS+catAll]
	if all <= 0 {
		return nil
	}
	tcp, udp, icmp := v[mPPS+catTCP], v[mPPS+catUDP], v[mPPS+catICMP]
	syn, frag := v[mPPS+catSYN], v[mPPS+catFrag]
	icmpProto := uint8(flow.ProtoICMP)
	if ipv6 {
		icmpProto = flow.ProtoICMPv6
	}
	var cands []Vector
	if frag > 0 {
		cands = append(cands, Vector{Fragment: true, Share: frag / all})
		udp = max(udp-frag, 0)
	}
	if syn >= 0.5*tcp && syn > 0 {
		cands = append(cands, Vector{Protocol: flow.ProtoTCP, TCPFlags: flow.TCPFlagSYN, TCPMask: synMask, Share: syn / all})
	} else if tcp > 0 {
		cands = append(cands, Vector{Protocol: flow.ProtoTCP, Share: tcp / all})
	}
	if udp > 0 {
		cands = append(cands, Vector{Protocol: flow.ProtoUDP, SrcPort: ampPort, Share: udp / all})
	}
	if icmp > 0 {
		cands = append(cands, Vector{Protocol: icmpProto, Share: icmp / all})
	}
	slices.SortStableFunc(cands, func(a, b Vector) int { return cmp.Compare(b.Share, a.Share) })
	fp := &Fingerprint{}
	for _, c := range cands {
		c.Share = min(c.Share, 1)
		if len(fp.Vectors) == MaxVectors || c.Share < MinVectorShare ||
			(len(fp.Vectors) > 0 && c.Share < minRelativeShare*fp.Vectors[0].Share) {
			continue
		}
		fp.Vectors = append(fp.Vectors, c)
		fp.Share += c.Share
	}
	fp.Share = min(fp.Share, 1)
	return fp
}

// sameVectors reports whether f and o describe the same kinds of packet:
// for each vector of one, a vector of the other with the same matchers
// and a packet-size range that overlaps (a new sample's sizes move a
// little), in any order, shares aside.
func (f *Fingerprint) sameVectors(o *Fingerprint) bool {
	if f == nil || o == nil {
		return f == o
	}
	if len(f.Vectors) != len(o.Vectors) {
		return false
	}
	for i := range f.Vectors {
		a := &f.Vectors[i]
		if !slices.ContainsFunc(o.Vectors, func(b Vector) bool {
			return a.Protocol == b.Protocol && a.SrcPort == b.SrcPort && slices.Equal(a.DstPorts, b.DstPorts) &&
				a.TCPFlags == b.TCPFlags && a.TCPMask == b.TCPMask && a.Fragment == b.Fragment &&
				(a.SizeMax == 0) == (b.SizeMax == 0) && a.SizeMin <= b.SizeMax && b.SizeMin <= a.SizeMax
		}) {
			return false
		}
	}
	return true
}

// fingerprintBytes estimates what a fingerprint holds, for the ended
// attacks' byte bound.
func fingerprintBytes(f *Fingerprint) int {
	if f == nil {
		return 0
	}
	n := int(unsafe.Sizeof(*f)) + cap(f.Vectors)*int(unsafe.Sizeof(Vector{}))
	for i := range f.Vectors {
		n += 2 * cap(f.Vectors[i].DstPorts)
	}
	return n
}

// ProtocolName is the vector's protocol as RouterOS names it ("udp",
// "tcp", "icmp", "icmpv6", else its number), or "" for any.
func (v *Vector) ProtocolName() string {
	if v.Protocol == 0 {
		return ""
	}
	return protoName(v.Protocol)
}

// TCPFlagsText is the vector's TCP flags as RouterOS writes tcp-flags
// ("syn,!ack"), or "" when it has none.
func (v *Vector) TCPFlagsText() string {
	return string(appendTCPMask(nil, v.TCPFlags, v.TCPMask))
}

func appendTCPMask(b []byte, flags, mask uint8) []byte {
	names := [...]string{"fin", "syn", "rst", "psh", "ack", "urg"}
	first := true
	for i, n := range names {
		bit := uint8(1) << i
		if mask&bit == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		if flags&bit == 0 {
			b = append(b, '!')
		}
		b = append(b, n...)
		first = false
	}
	return b
}

// String is the vector as the details text's Fingerprint section writes
// it, in RouterOS's words: "udp src-port 53 packet-size 1200-1500 share
// 97%".
func (v *Vector) String() string { return string(appendVector(nil, v)) }

func appendVector(b []byte, v *Vector) []byte {
	start := len(b)
	word := func(w string) {
		if len(b) > start {
			b = append(b, ' ')
		}
		b = append(b, w...)
	}
	if v.Protocol != 0 {
		word("")
		b = appendProtoName(b, v.Protocol)
	}
	if v.Fragment {
		word("fragment")
	}
	if v.TCPMask != 0 {
		word("tcp-flags ")
		b = appendTCPMask(b, v.TCPFlags, v.TCPMask)
	}
	if v.SrcPort != 0 {
		word("src-port ")
		b = strconv.AppendUint(b, uint64(v.SrcPort), 10)
	}
	if v.DstPorts != nil {
		word("dst-port ")
		for i, p := range v.DstPorts {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(p), 10)
		}
	}
	if v.SizeMax != 0 {
		word("packet-size ")
		b = strconv.AppendUint(b, uint64(v.SizeMin), 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(v.SizeMax), 10)
	}
	word("share ")
	b = appendPercent(b, v.Share)
	return b
}

func appendPercent(b []byte, share float64) []byte {
	return append(strconv.AppendFloat(b, share*100, 'f', 0, 64), '%')
}

// appendFingerprint appends the details text's Fingerprint section.
func appendFingerprint(b []byte, f *Fingerprint) []byte {
	b = append(b, "\nFingerprint: "...)
	switch {
	case len(f.Vectors) == 0:
		b = append(b, "none (no kind of packet carries "...)
		b = appendPercent(b, MinVectorShare)
		b = append(b, " of the attack)"...)
	default:
		b = appendPercent(b, f.Share)
		b = append(b, " of the attack's packets"...)
	}
	if f.Records > 0 {
		b = append(b, ", from "...)
		b = strconv.AppendInt(b, int64(f.Records), 10)
		b = append(b, " sampled records\n"...)
	} else {
		b = append(b, ", from the counters (no flow sample)\n"...)
	}
	for i := range f.Vectors {
		b = append(appendVector(b, &f.Vectors[i]), '\n')
	}
	return b
}
