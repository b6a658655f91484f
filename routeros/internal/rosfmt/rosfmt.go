// Package rosfmt parses and formats the value syntax RouterOS uses in its API
// replies: durations ("9m58s", "1d02:03:04") and booleans ("true", "yes").
// It is shared by the client and the emulator so both read the same syntax.
package rosfmt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxDuration bounds parsed durations so arithmetic never overflows.
const maxDuration = 100 * 365 * 24 * time.Hour

var errEmpty = errors.New("empty duration")

// ParseDuration reads a RouterOS duration: unit groups "1w2d3h4m5s6ms",
// a clock "HH:MM:SS" optionally after unit groups ("1d02:03:04"), or a bare
// number of seconds ("600").
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errEmpty
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		d := time.Duration(n) * time.Second
		if d > maxDuration {
			return 0, fmt.Errorf("duration %q: too long", s)
		}
		return d, nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		if strings.Count(rest, ":") == 2 && allDigits(rest[:strings.IndexByte(rest, ':')]) {
			d, err := parseClock(rest)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			total += d
			if total > maxDuration {
				return 0, fmt.Errorf("duration %q: too long", s)
			}
			break
		}
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, fmt.Errorf("duration %q: expected a number at %q", s, rest)
		}
		n, _ := strconv.ParseUint(rest[:i], 10, 32)
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') && rest[j] != ':' {
			j++
		}
		var unit time.Duration
		switch rest[:j] {
		case "w":
			unit = 7 * 24 * time.Hour
		case "d":
			unit = 24 * time.Hour
		case "h":
			unit = time.Hour
		case "m":
			unit = time.Minute
		case "s":
			unit = time.Second
		case "ms":
			unit = time.Millisecond
		case "us":
			unit = time.Microsecond
		default:
			return 0, fmt.Errorf("duration %q: unknown unit %q", s, rest[:j])
		}
		rest = rest[j:]
		if n > uint64(maxDuration/unit) {
			return 0, fmt.Errorf("duration %q: too long", s)
		}
		total += time.Duration(n) * unit
		if total > maxDuration {
			return 0, fmt.Errorf("duration %q: too long", s)
		}
	}
	return total, nil
}

func parseClock(s string) (time.Duration, error) {
	parts := strings.Split(s, ":")
	var d time.Duration
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	for i, p := range parts {
		if p == "" || len(p) > 9 {
			return 0, fmt.Errorf("bad clock %q", s)
		}
		if i == 2 {
			// seconds may carry a fraction: "00:00:01.5"
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || f < 0 || p[0] < '0' || p[0] > '9' {
				return 0, fmt.Errorf("bad clock %q", s)
			}
			if f > maxDuration.Seconds() {
				return 0, fmt.Errorf("clock %q: too long", s)
			}
			d += time.Duration(f * float64(time.Second))
			continue
		}
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("bad clock %q", s)
		}
		// Bounded before multiplying: 8000000 hours would overflow.
		if n > uint64(maxDuration/units[i]) {
			return 0, fmt.Errorf("clock %q: too long", s)
		}
		d += time.Duration(n) * units[i]
	}
	return d, nil
}

// FormatDuration writes d the way RouterOS 7 prints it in API replies:
// "1w2d3h4m5s", zero units left out, "0s" for zero. Sub-second parts are
// dropped (address-list timeouts are whole seconds).
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	var b strings.Builder
	units := []struct {
		u time.Duration
		s string
	}{{7 * 24 * time.Hour, "w"}, {24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for _, u := range units {
		if n := d / u.u; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.s)
			d -= n * u.u
		}
	}
	return b.String()
}

// ParseBool reads the booleans RouterOS writes ("true"/"false" in v7,
// "yes"/"no" in v6).
func ParseBool(s string) (bool, error) {
	switch s {
	case "true", "yes":
		return true, nil
	case "false", "no", "":
		return false, nil
	}
	return false, fmt.Errorf("not a RouterOS boolean: %q", s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
