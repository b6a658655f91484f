package appliance

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/flowshield/flowshield/detect"
)

// appendAttackJSON appends what json.Marshal(attackJSONOf(at, banned,
// full)) gives, byte for byte, without reflection or the intermediate
// strings: the history keeps every attack with its flow sample, and in an
// attack storm (hundreds of attacks a second) encoding/json was the
// largest part of the daemon's cost outside the data path.
// TestAttackJSONMatchesEncodingJSON holds it to json.Marshal.
func appendAttackJSON(b []byte, at *detect.Attack, banned, full bool) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, at.ID)
	b = append(b, `,"scope":`...)
	b = appendJSONString(b, at.Scope)
	b = append(b, `,"ip":`...)
	if at.IP.IsValid() {
		b = appendJSONAddr(b, at.IP)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"group":`...)
	if at.Group != "" {
		b = appendJSONString(b, at.Group)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"direction":`...)
	b = appendJSONString(b, at.Direction.String())
	b = append(b, `,"type":`...)
	b = appendJSONString(b, at.Type)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, at.Protocol)
	if at.Threshold != "" {
		b = append(b, `,"threshold":`...)
		b = appendJSONString(b, at.Threshold)
	}
	var err error
	b = append(b, `,"started_at":`...)
	if b, err = appendJSONTime(b, at.StartedAt.UTC()); err != nil {
		return nil, err
	}
	b = append(b, `,"ended_at":`...)
	if at.EndedAt.IsZero() {
		b = append(b, "null"...)
	} else if b, err = appendJSONTime(b, at.EndedAt.UTC()); err != nil {
		return nil, err
	}
	b = append(b, `,"peak_pps":`...)
	if b, err = appendJSONFloat(b, at.PeakPPS); err != nil {
		return nil, err
	}
	b = append(b, `,"peak_bps":`...)
	if b, err = appendJSONFloat(b, at.PeakBps); err != nil {
		return nil, err
	}
	b = append(b, `,"banned":`...)
	b = strconv.AppendBool(b, banned)
	if full {
		b = appendAttackDetails(append(b, ','), at)
	}
	return append(b, '}'), nil
}

// appendAttackDetails appends the fields only GET /api/v1/attacks/{id}
// has: "details" and, when there is a sample, "flows".
func appendAttackDetails(b []byte, at *detect.Attack) []byte {
	b = append(b, `"details":`...)
	b = appendJSONString(b, at.Details)
	if len(at.Sample) > 0 {
		b = append(b, `,"flows":[`...)
		var line [160]byte
		for i := range at.Sample {
			f := &at.Sample[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"time":"`...)
			b = time.Unix(0, f.End).UTC().AppendFormat(b, time.RFC3339Nano)
			b = append(b, `","src":`...)
			b = appendJSONAddr(b, f.SrcAddr)
			b = append(b, `,"dst":`...)
			b = appendJSONAddr(b, f.DstAddr)
			b = append(b, `,"src_port":`...)
			b = strconv.AppendUint(b, uint64(f.SrcPort), 10)
			b = append(b, `,"dst_port":`...)
			b = strconv.AppendUint(b, uint64(f.DstPort), 10)
			b = append(b, `,"protocol":`...)
			b = strconv.AppendUint(b, uint64(f.Proto), 10)
			b = append(b, `,"tcp_flags":`...)
			b = strconv.AppendUint(b, uint64(f.TCPFlags), 10)
			b = append(b, `,"fragment":`...)
			b = strconv.AppendBool(b, f.Fragment)
			b = append(b, `,"packets":`...)
			b = strconv.AppendUint(b, f.Packets, 10)
			b = append(b, `,"bytes":`...)
			b = strconv.AppendUint(b, f.Bytes, 10)
			b = append(b, `,"sampling_rate":`...)
			b = strconv.AppendUint(b, uint64(f.SamplingRate), 10)
			b = append(b, `,"exporter":`...)
			b = appendJSONAddr(b, f.Exporter)
			b = append(b, `,"line":`...)
			b = appendJSONString(b, detect.AppendFlowLine(line[:0], f, 1))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return b
}

// appendJSONAddr appends a as encoding/json writes a.String(). Without a
// zone an address is digits, hex letters, dots and colons: nothing to
// escape.
func appendJSONAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() || a.Zone() != "" {
		return appendJSONString(b, a.String())
	}
	return append(a.AppendTo(append(b, '"')), '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return nil, fmt.Errorf("encoding time %v: year outside of range [0,9999]", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendJSONFloat appends f as encoding/json does (ES6 number form);
// NaN and infinities are an error there too.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("encoding number: unsupported value %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json cleans it up
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// jsonSafe marks the ASCII bytes encoding/json writes as they are.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s quoted as encoding/json does by default:
// HTML-safe (<, > and & escaped), invalid UTF-8 replaced by U+FFFD, and
// U+2028 and U+2029 escaped.
func appendJSONString[S []byte | string](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		var r rune
		var size int
		if str, ok := any(s).(string); ok {
			r, size = utf8.DecodeRuneInString(str[i:])
		} else {
			r, size = utf8.DecodeRune([]byte(s[i:]))
		}
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
