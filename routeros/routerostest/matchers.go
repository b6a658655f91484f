// The raw rule matchers Forward evaluates (traffic.go) and the values the
// API accepts for them, as RouterOS reads them.

package routerostest

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

// negated splits a leading "!".
func negated(v string) (bool, string) {
	if rest, ok := strings.CutPrefix(v, "!"); ok {
		return true, rest
	}
	return false, v
}

func not(neg bool, c cond) cond {
	if !neg {
		return c
	}
	return func(e *evalCtx) bool { return !c(e) }
}

// matcher compiles one raw matcher; an error for one the emulator does not
// evaluate (or a value it cannot read).
func matcher(key, val string, lists map[string]*addrList) (cond, error) {
	neg, v := negated(val)
	switch key {
	case "src-address", "dst-address":
		m, err := parseAddressMatch(v)
		if err != nil {
			return nil, err
		}
		if key == "src-address" {
			return not(neg, func(e *evalCtx) bool { return m(e.p.Src) }), nil
		}
		return not(neg, func(e *evalCtx) bool { return m(e.p.Dst) }), nil
	case "src-address-list", "dst-address-list":
		l := lists[v] // nil: an empty list; adding to it recompiles
		if key == "src-address-list" {
			return not(neg, func(e *evalCtx) bool { return l.contains(e.p.Src, e.now) }), nil
		}
		return not(neg, func(e *evalCtx) bool { return l.contains(e.p.Dst, e.now) }), nil
	case "protocol":
		p, err := parseProtocol(v)
		if err != nil {
			return nil, err
		}
		return not(neg, func(e *evalCtx) bool { return e.p.Proto == p }), nil
	case "src-port", "dst-port", "port":
		ports, err := parsePortList(v)
		if err != nil {
			return nil, err
		}
		pick := func(e *evalCtx) bool { return ports.has(e.p.SrcPort) }
		switch key {
		case "dst-port":
			pick = func(e *evalCtx) bool { return ports.has(e.p.DstPort) }
		case "port":
			pick = func(e *evalCtx) bool { return ports.has(e.p.SrcPort) || ports.has(e.p.DstPort) }
		}
		// a packet without ports matches neither a port nor its negation
		return func(e *evalCtx) bool {
			if e.p.Fragment || !portProtocol(e.p.Proto) {
				return false
			}
			return pick(e) != neg
		}, nil
	case "tcp-flags":
		on, off, err := parseTCPFlags(val)
		if err != nil {
			return nil, err
		}
		return func(e *evalCtx) bool {
			return e.p.Proto == 6 && !e.p.Fragment && e.p.TCPFlags&on == on && e.p.TCPFlags&off == 0
		}, nil
	case "fragment":
		want, err := rosfmt.ParseBool(val) // RouterOS takes yes/no and true/false
		if err != nil {
			return nil, err
		}
		return func(e *evalCtx) bool { return e.p.Fragment == want }, nil
	case "packet-size":
		lo, hi, err := parseRange(v, 65535)
		if err != nil {
			return nil, err
		}
		return not(neg, func(e *evalCtx) bool { return e.size >= uint64(lo) && e.size <= uint64(hi) }), nil
	case "in-interface":
		return not(neg, func(e *evalCtx) bool { return e.p.InInterface == v }), nil
	case "icmp-options":
		tlo, thi, clo, chi, err := parseICMPOptions(v)
		if err != nil {
			return nil, err
		}
		return not(neg, func(e *evalCtx) bool {
			if e.p.Proto != 1 && e.p.Proto != 58 {
				return false
			}
			typ, code := int(e.p.DstPort>>8), int(e.p.DstPort&0xff)
			return typ >= tlo && typ <= thi && code >= clo && code <= chi
		}), nil
	}
	return nil, fmt.Errorf("matcher %s not evaluated", key)
}

// parseAddressMatch reads an address, a prefix or an a-b range.
func parseAddressMatch(v string) (func(netip.Addr) bool, error) {
	if a, err := netip.ParseAddr(v); err == nil {
		a = a.Unmap()
		return func(x netip.Addr) bool { return x == a }, nil
	}
	if p, err := netip.ParsePrefix(v); err == nil {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked()
		return p.Contains, nil
	}
	if lo, hi, ok := strings.Cut(v, "-"); ok {
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err1 == nil && err2 == nil && a.Is4() == b.Is4() && a.Compare(b) <= 0 {
			return func(x netip.Addr) bool { return x.Is4() == a.Is4() && x.Compare(a) >= 0 && x.Compare(b) <= 0 }, nil
		}
	}
	return nil, fmt.Errorf("address %q", v)
}

func parseProtocol(v string) (uint8, error) {
	if p, ok := ipProtocols[strings.ToLower(v)]; ok {
		return p, nil
	}
	n, err := strconv.ParseUint(v, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("protocol %q", v)
	}
	return uint8(n), nil
}

type portRange struct{ lo, hi uint16 }

type portList []portRange

func (l portList) has(p uint16) bool {
	for _, r := range l {
		if p >= r.lo && p <= r.hi {
			return true
		}
	}
	return false
}

// parsePortList reads "53", "1000-2000", "53,80,1000-2000".
func parsePortList(v string) (portList, error) {
	var out portList
	for part := range strings.SplitSeq(v, ",") {
		lo, hi, err := parseRange(part, 65535)
		if err != nil {
			return nil, err
		}
		out = append(out, portRange{uint16(lo), uint16(hi)})
	}
	return out, nil
}

// parseRange reads "n" or "n-m", each at most limit.
func parseRange(v string, limit int) (lo, hi int, err error) {
	a, b, isRange := strings.Cut(strings.TrimSpace(v), "-")
	lo, err = strconv.Atoi(a)
	if err != nil || lo < 0 || lo > limit {
		return 0, 0, fmt.Errorf("range %q", v)
	}
	hi = lo
	if isRange {
		hi, err = strconv.Atoi(b)
		if err != nil || hi < lo || hi > limit {
			return 0, 0, fmt.Errorf("range %q", v)
		}
	}
	return lo, hi, nil
}

// parseTCPFlags reads "syn,!ack": flags that must be set and must be clear.
func parseTCPFlags(v string) (on, off uint8, err error) {
	for f := range strings.SplitSeq(v, ",") {
		neg, name := negated(strings.TrimSpace(f))
		bit, ok := tcpFlagBits[strings.ToLower(name)]
		if !ok {
			return 0, 0, fmt.Errorf("tcp flag %q", f)
		}
		if neg {
			off |= bit
		} else {
			on |= bit
		}
	}
	return on, off, nil
}

// parseICMPOptions reads "type[:code]", each a number or a range.
func parseICMPOptions(v string) (tlo, thi, clo, chi int, err error) {
	t, c, hasCode := strings.Cut(v, ":")
	if tlo, thi, err = parseRange(t, 255); err != nil {
		return
	}
	clo, chi = 0, 255
	if hasCode {
		clo, chi, err = parseRange(c, 255)
	}
	return
}

// normalizeRaw checks a raw rule property the way RouterOS refuses bad
// values; ok is false for a property it does not handle.
func normalizeRaw(key, val string, v6 bool) (out string, ok bool, err error) {
	invalid := fmt.Errorf("invalid value for argument %s", key)
	neg, v := negated(val)
	bang := ""
	if neg {
		bang = "!"
	}
	switch key {
	case "action":
		if !rawActions[val] {
			return "", true, fmt.Errorf("input does not match any value of action")
		}
		return val, true, nil
	case "src-address", "dst-address":
		if val == "" {
			return "", true, nil
		}
		if _, err := parseAddressMatch(v); err != nil {
			return "", true, invalid
		}
		if lo, _, isRange := strings.Cut(v, "-"); isRange {
			if netip.MustParseAddr(strings.TrimSpace(lo)).Is6() != v6 {
				return "", true, invalid
			}
			return val, true, nil
		}
		a, err := normalizeAddress(v, v6, false)
		if err != nil {
			return "", true, invalid
		}
		return bang + a, true, nil
	case "protocol":
		if _, err := parseProtocol(v); err != nil {
			return "", true, invalid
		}
		return bang + strings.ToLower(v), true, nil
	case "src-port", "dst-port", "port":
		if _, err := parsePortList(v); err != nil {
			return "", true, invalid
		}
		return val, true, nil
	case "packet-size":
		if _, _, err := parseRange(v, 65535); err != nil {
			return "", true, invalid
		}
		return val, true, nil
	case "tcp-flags":
		if _, _, err := parseTCPFlags(val); err != nil {
			return "", true, invalid
		}
		return strings.ToLower(val), true, nil
	case "icmp-options":
		if _, _, _, _, err := parseICMPOptions(v); err != nil {
			return "", true, invalid
		}
		return val, true, nil
	}
	return "", false, nil
}
