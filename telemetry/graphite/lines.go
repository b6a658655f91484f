// Package graphite sends traffic rates in Graphite's plaintext protocol
// (`path value timestamp\n` over TCP) with the metric paths FastNetMon
// 1.2.4 uses, so InfluxDB graphite templates and Grafana dashboards made
// for FastNetMon keep working. The paths were captured from the real
// Debian fastnetmon package; see testdata/README.md.
package graphite

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/telemetry/hostmetrics"
)

// FastNetMon's direction names in paths.
func directionName(d detect.Direction) string {
	if d == detect.Out {
		return "outgoing"
	}
	return "incoming"
}

// AppendLines appends the lines of one snapshot, stamped ts (Unix seconds),
// in FastNetMon's forms:
//
//	PREFIX.total.{incoming,outgoing}.{flows,pps,bps} V TS
//	PREFIX.networks.{203_0_113_0_24}.{incoming,outgoing}.{pps,bps} V TS
//	PREFIX.hosts.{203_0_113_5}.{incoming,outgoing}.average.{pps,bps,flows} V TS
//
// Values are whole numbers, as FastNetMon sends them; a host's zero values
// are left out, as FastNetMon does. FastNetMon's total.internal.* and
// total.other.* are not sent: flowshield does not count traffic that is
// neither to nor from a protected network. IPv6 hosts and networks, which
// FastNetMon 1.2.4 does not send at all, have ':' (and '.' , '/') replaced
// by '_' like its IPv4 addresses.
func AppendLines(b []byte, prefix string, snap *hostmetrics.Snapshot, ts int64) []byte {
	for d, r := range [2]*detect.Rates{&snap.In, &snap.Out} {
		base := prefix + ".total." + directionName(detect.Direction(d))
		b = appendLine(b, base, ".flows", r.Flows, ts)
		b = appendLine(b, base, ".pps", r.PPS, ts)
		b = appendLine(b, base, ".bps", r.BPS, ts)
	}
	for i := range snap.Networks {
		n := &snap.Networks[i]
		base := prefix + ".networks." + pathSafe(n.Prefix.Addr()) + "_" + strconv.Itoa(n.Prefix.Bits())
		b = appendLine(b, base, ".incoming.pps", n.In.PPS, ts)
		b = appendLine(b, base, ".outgoing.pps", n.Out.PPS, ts)
		b = appendLine(b, base, ".incoming.bps", n.In.BPS, ts)
		b = appendLine(b, base, ".outgoing.bps", n.Out.BPS, ts)
	}
	for d := range snap.Top.Hosts {
		for i := range snap.Top.Hosts[d] {
			h := &snap.Top.Hosts[d][i]
			base := prefix + ".hosts." + pathSafe(h.IP) + "." + directionName(detect.Direction(d)) + ".average"
			for _, m := range []struct {
				suffix string
				v      float64
			}{{".pps", h.PPS}, {".bps", h.BPS}, {".flows", h.Flows}} {
				if whole(m.v) != 0 {
					b = appendLine(b, base, m.suffix, m.v, ts)
				}
			}
		}
	}
	return b
}

// pathSafe writes an address with FastNetMon's '.' -> '_' so it is one
// path component; for IPv6 ':' goes the same way.
func pathSafe(a netip.Addr) string {
	s := []byte(a.Unmap().String())
	for i, c := range s {
		if c == '.' || c == ':' || c == '%' {
			s[i] = '_'
		}
	}
	return string(s)
}

func whole(v float64) uint64 {
	if !(v > 0) || math.IsInf(v, 0) { // NaN, negative, zero
		return 0
	}
	if v >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(math.Round(v))
}

func appendLine(b []byte, base, suffix string, v float64, ts int64) []byte {
	b = append(b, base...)
	b = append(b, suffix...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, whole(v), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, ts, 10)
	return append(b, '\n')
}

// Line is one plaintext line.
type Line struct {
	Path      string
	Value     float64
	Timestamp int64
}

// ParseLine parses `path value timestamp` (without the newline), as a
// Graphite receiver does; the tests read captured lines with it.
func ParseLine(s string) (Line, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Line{}, fmt.Errorf("graphite line %q: want 3 fields, got %d", s, len(f))
	}
	if strings.ContainsFunc(f[0], func(r rune) bool { return r < 0x21 || r > 0x7e }) || strings.Contains(f[0], "..") ||
		strings.HasPrefix(f[0], ".") || strings.HasSuffix(f[0], ".") {
		return Line{}, fmt.Errorf("graphite line %q: bad path", s)
	}
	v, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return Line{}, fmt.Errorf("graphite line %q: value: %w", s, err)
	}
	ts, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return Line{}, fmt.Errorf("graphite line %q: timestamp: %w", s, err)
	}
	return Line{Path: f[0], Value: v, Timestamp: ts}, nil
}
