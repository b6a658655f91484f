package detect

import (
	"encoding/binary"
	"net/netip"
	"sort"
)

// prefixTable answers "which of these prefixes is the longest that holds
// this address" with one map lookup per distinct prefix length, so a
// NETWORKS_FILE of thousands of prefixes costs the hot path no more than a
// handful of lookups. Addresses must be unmapped (IPv4 as IPv4).
//
// A table of few prefixes of one family (the usual NETWORKS: a handful)
// is also kept as a list, longest first, which a linear scan answers
// faster than a map lookup: see linearMax.
type prefixTable struct {
	v4 []v4level // longest first
	v6 []v6level

	v4list []v4net // longest first, duplicates dropped; nil if more than linearMax
	v6list []v6net
}

// linearMax is the number of prefixes of a family up to which lookups scan
// a list instead of the per-length maps.
const linearMax = 8

type v4net struct {
	net, mask uint32
	idx       int32
}

type v6net struct {
	hi, lo, mhi, mlo uint64
	idx              int32
}

type v4level struct {
	mask uint32
	m    map[uint32]int32
}

type v6level struct {
	hi, lo uint64 // masks
	m      map[[2]uint64]int32
}

// newPrefixTable maps each prefix to its index in ps; the first of
// duplicates wins.
func newPrefixTable(ps []netip.Prefix) prefixTable {
	var t prefixTable
	v4 := map[int]map[uint32]int32{}
	v6 := map[int]map[[2]uint64]int32{}
	for i, p := range ps {
		p = normPrefix(p)
		if !p.IsValid() {
			continue
		}
		bits := p.Bits()
		if p.Addr().Is4() {
			m := v4[bits]
			if m == nil {
				m = map[uint32]int32{}
				v4[bits] = m
			}
			k := v4key(p.Addr()) & mask4(bits)
			if _, dup := m[k]; !dup {
				m[k] = int32(i)
			}
			continue
		}
		m := v6[bits]
		if m == nil {
			m = map[[2]uint64]int32{}
			v6[bits] = m
		}
		hi, lo := mask6(bits)
		a := v6key(p.Addr())
		k := [2]uint64{a[0] & hi, a[1] & lo}
		if _, dup := m[k]; !dup {
			m[k] = int32(i)
		}
	}
	for bits, m := range v4 {
		t.v4 = append(t.v4, v4level{mask: mask4(bits), m: m})
	}
	sort.Slice(t.v4, func(i, j int) bool { return t.v4[i].mask > t.v4[j].mask })
	for bits, m := range v6 {
		hi, lo := mask6(bits)
		t.v6 = append(t.v6, v6level{hi: hi, lo: lo, m: m})
	}
	sort.Slice(t.v6, func(i, j int) bool {
		if t.v6[i].hi != t.v6[j].hi {
			return t.v6[i].hi > t.v6[j].hi
		}
		return t.v6[i].lo > t.v6[j].lo
	})
	// The lists hold the same entries as the maps, in the maps' order.
	n4, n6 := 0, 0
	for _, l := range t.v4 {
		n4 += len(l.m)
	}
	for _, l := range t.v6 {
		n6 += len(l.m)
	}
	if n4 <= linearMax {
		t.v4list = []v4net{}
		for _, l := range t.v4 {
			for k, v := range l.m {
				t.v4list = append(t.v4list, v4net{net: k, mask: l.mask, idx: v})
			}
		}
	}
	if n6 <= linearMax {
		t.v6list = []v6net{}
		for _, l := range t.v6 {
			for k, v := range l.m {
				t.v6list = append(t.v6list, v6net{hi: k[0], lo: k[1], mhi: l.hi, mlo: l.lo, idx: v})
			}
		}
	}
	return t
}

func (t *prefixTable) empty() bool { return len(t.v4) == 0 && len(t.v6) == 0 }

// lookup returns the index of the longest prefix holding a, or -1.
func (t *prefixTable) lookup(a netip.Addr) int32 {
	if a.Is4() {
		return t.lookup4(v4key(a))
	}
	if !a.Is6() {
		return -1
	}
	return t.lookup6(a)
}

// lookup4 is lookup for the IPv4 address k (big-endian).
func (t *prefixTable) lookup4(k uint32) int32 {
	if t.v4list != nil {
		for i := range t.v4list {
			if n := &t.v4list[i]; k&n.mask == n.net {
				return n.idx
			}
		}
		return -1
	}
	for i := range t.v4 {
		l := &t.v4[i]
		if v, ok := l.m[k&l.mask]; ok {
			return v
		}
	}
	return -1
}

// lookup6 is lookup for an IPv6 address (not IPv4-mapped).
func (t *prefixTable) lookup6(a netip.Addr) int32 {
	if len(t.v6) == 0 {
		return -1
	}
	k := v6key(a)
	if t.v6list != nil {
		for i := range t.v6list {
			if n := &t.v6list[i]; k[0]&n.mhi == n.hi && k[1]&n.mlo == n.lo {
				return n.idx
			}
		}
		return -1
	}
	for i := range t.v6 {
		l := &t.v6[i]
		if v, ok := l.m[[2]uint64{k[0] & l.hi, k[1] & l.lo}]; ok {
			return v
		}
	}
	return -1
}

func normPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}

func v4key(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func v6key(a netip.Addr) [2]uint64 {
	b := a.As16()
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func mask4(bits int) uint32 {
	if bits <= 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

func mask6(bits int) (hi, lo uint64) {
	switch {
	case bits <= 0:
		return 0, 0
	case bits < 64:
		return ^uint64(0) << (64 - bits), 0
	case bits == 64:
		return ^uint64(0), 0
	case bits < 128:
		return ^uint64(0), ^uint64(0) << (128 - bits)
	}
	return ^uint64(0), ^uint64(0)
}
