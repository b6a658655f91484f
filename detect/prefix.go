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
type prefixTable struct {
	v4 []v4level // longest first
	v6 []v6level
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
	return t
}

func (t *prefixTable) empty() bool { return len(t.v4) == 0 && len(t.v6) == 0 }

// lookup returns the index of the longest prefix holding a, or -1.
func (t *prefixTable) lookup(a netip.Addr) int32 {
	if a.Is4() {
		k := v4key(a)
		for i := range t.v4 {
			l := &t.v4[i]
			if v, ok := l.m[k&l.mask]; ok {
				return v
			}
		}
		return -1
	}
	if !a.Is6() || len(t.v6) == 0 {
		return -1
	}
	k := v6key(a)
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
