package routeros

import (
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowshield/flowshield/detect"
)

// TestClean: what Add writes as a comment has no control characters (a
// newline breaks the router's export), is bounded, and is not cut inside a
// UTF-8 character.
func TestClean(t *testing.T) {
	c := clean("flowshield manual line\nbreak" + strings.Repeat("é", 200))
	if strings.ContainsRune(c, '\n') || len(c) > maxCommentLength || !strings.HasPrefix(c, "flowshield manual line break") || !utf8.ValidString(c) {
		t.Errorf("not cleaned: %q", c)
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"flowshield a1 udp_flood", true},
		{"flowshield manual noisy neighbour", true},
		{"flowshield", true},
		{"flowshieldx 1 2", false},
		{"admin's", false},
	} {
		if got := IsManaged(tc.in); got != tc.want {
			t.Errorf("IsManaged(%q) = %v", tc.in, got)
		}
	}
}

func TestParse(t *testing.T) {
	r := New(Configuration{ListIn: "in", ListOut: "out"}, nil)
	for _, tc := range []struct {
		a    Action
		m    map[string]string
		want Object
		ok   bool
		bad  bool
	}{
		{ActionAddressList, map[string]string{".id": "*1", "list": "out", "address": "192.0.2.1", "timeout": "9m58s", "comment": "flowshield 1 t"},
			Object{Action: ActionAddressList, ID: "*1", List: "out", Direction: detect.Out, Prefix: netip.MustParsePrefix("192.0.2.1/32"), Timeout: 9*time.Minute + 58*time.Second, Comment: "flowshield 1 t"}, true, false},
		{ActionAddressList, map[string]string{".id": "*2", "list": "in", "address": "2001:db8::1/128", "comment": "flowshield 1 t"},
			Object{Action: ActionAddressList, ID: "*2", List: "in", Prefix: netip.MustParsePrefix("2001:db8::1/128"), Comment: "flowshield 1 t"}, true, false},
		{ActionAddressList, map[string]string{".id": "*3", "list": "in", "address": "192.0.2.1", "comment": "other"}, Object{}, false, false},
		{ActionAddressList, map[string]string{".id": "*4", "list": "in", "address": "a.example", "comment": "flowshield"}, Object{}, false, true},
		{ActionRawDrop, map[string]string{".id": "*5", "chain": "prerouting", "action": "drop", "src-address": "192.0.2.0/24", "packets": "7", "bytes": "700", "comment": "flowshield m"},
			Object{Action: ActionRawDrop, ID: "*5", Direction: detect.Out, Prefix: netip.MustParsePrefix("192.0.2.0/24"), Packets: 7, Bytes: 700, Comment: "flowshield m"}, true, false},
		{ActionRawDrop, map[string]string{".id": "*6", "chain": "prerouting", "action": "accept", "dst-address": "192.0.2.1", "comment": "flowshield"}, Object{}, false, false},
		{ActionBlackhole, map[string]string{".id": "*7", "dst-address": "192.0.2.9/32", "blackhole": "true", "comment": "flowshield"},
			Object{Action: ActionBlackhole, ID: "*7", Prefix: netip.MustParsePrefix("192.0.2.9/32"), Comment: "flowshield"}, true, false},
	} {
		got, ok, err := r.parse(tc.a, tc.m)
		if (err != nil) != tc.bad || ok != tc.ok || got != tc.want {
			t.Errorf("parse(%v) = %+v %v %v", tc.m, got, ok, err)
		}
	}
}

func TestBackoffBounded(t *testing.T) {
	r := New(Configuration{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}, nil)
	for n := 1; n < 100; n++ {
		d := r.backoff(n)
		lo := min(100*time.Millisecond<<min(n-1, 10), time.Second)
		if d < lo*8/10 || d > lo*12/10 {
			t.Fatalf("backoff after %d failures: %s, want about %s", n, d, lo)
		}
	}
}

// FuzzParse feeds router-printed values to the object parser: bad ones are
// errors or skipped, never a panic, and what parses has a valid prefix.
func FuzzParse(f *testing.F) {
	f.Add("192.0.2.1", "9m58s", "flowshield a t", "in")
	f.Add("2001:db8::1/128", "1d02:03:04", "flowshield manual x", "out")
	f.Add("10.0.0.0/8", "", "flowshield", "other")
	r := New(Configuration{ListIn: "in", ListOut: "out"}, nil)
	f.Fuzz(func(t *testing.T, addr, timeout, comment, list string) {
		for _, a := range []Action{ActionAddressList, ActionRawDrop, ActionBlackhole} {
			m := map[string]string{".id": "*1", "address": addr, "dst-address": addr, "timeout": timeout,
				"comment": comment, "list": list, "chain": "prerouting", "action": "drop", "blackhole": "true"}
			o, ok, err := r.parse(a, m)
			if err != nil || !ok {
				continue
			}
			if !o.Prefix.IsValid() || !IsManaged(o.Comment) || o.Timeout < 0 {
				t.Fatalf("%s %v: parsed %+v", a, m, o)
			}
		}
	})
}
