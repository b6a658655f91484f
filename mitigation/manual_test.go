package mitigation

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flowshield/flowshield/detect"
)

func TestManualBans(t *testing.T) {
	h := newHarness(t, func(c *Configuration) { c.MaxBans = 2 })
	ctx := context.Background()
	p := netip.MustParsePrefix("198.51.100.0/24")
	b, err := h.m.AddManual(ctx, p, 90*time.Second, "scanner", detect.In)
	if err != nil {
		t.Fatal(err)
	}
	if b.ExpiresAt.Sub(b.CreatedAt) != 90*time.Second || !b.Manual || b.Reason != "scanner" {
		t.Fatalf("ban %+v", b)
	}
	h.sync(false)
	objs := h.router.ourObjects()
	if len(objs) != 1 || objs[0].Prefix != p || objs[0].Timeout != 90*time.Second || !strings.HasPrefix(objs[0].Comment, "flowshield manual scanner") {
		t.Fatalf("router %+v", objs)
	}
	// The API's form of it is appliance's TestBanJSON.
	if got := h.m.Bans()[0]; got.Prefix != p || got.Direction != detect.In || got.Reason != "scanner" ||
		!got.ExpiresAt.Equal(time.Date(2026, 11, 25, 12, 1, 30, 0, time.UTC)) || got.Routers[0].State != BanActive {
		t.Fatalf("ban %+v", got)
	}
	if _, err := h.m.AddManual(ctx, netip.MustParsePrefix("192.0.2.1/32"), 0, "", detect.Out); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.AddManual(ctx, netip.MustParsePrefix("192.0.2.2/32"), 0, "", detect.In); !errors.Is(err, ErrMaxBans) {
		t.Fatalf("third ban with MAX_BANS=2: %v", err)
	}
	if err := h.m.Unban(ctx, netip.MustParsePrefix("192.0.2.9/32")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removing an unknown ban: %v", err)
	}
	if err := h.m.Unban(ctx, p); err != nil {
		t.Fatal(err)
	}
	h.sync(false)
	if len(h.router.ourObjects()) != 1 || len(h.storedKeys()) != 1 {
		t.Fatalf("after remove: router %v store %v", h.router.ourObjects(), h.storedKeys())
	}
	if evs := h.events(); countKind(evs, EventBan, "") != 2 || countKind(evs, EventUnban, ReasonManual) != 1 {
		t.Fatalf("events %+v", evs)
	}
}

// TestCommentsAndReasonsOneLine: a reason from the API loses its control
// characters and is capped at MaxReasonBytes, and a router comment at
// maxCommentBytes, both between characters: multibyte reasons are never
// cut in half.
func TestCommentsAndReasonsOneLine(t *testing.T) {
	long := strings.Repeat("日本語", 40) // 360 bytes, 3 per character
	tests := []struct {
		name, reason     string
		wantReason       string
		wantCommentStart string
	}{
		{"plain", "scanner", "scanner", "flowshield manual scanner"},
		{"empty", "", ReasonManual, "flowshield manual manual"},
		{"controls", "a\nb\rc\td\x00e\x7ff\u0085g\u200bh", "a b c d e f g\u200bh", "flowshield manual a b c d e f g\u200bh"},
		{"only controls", "\n\t\x00", ReasonManual, "flowshield manual manual"},
		{"invalid UTF-8", "caf\xc3\xa9 \xff", "café \uFFFD", "flowshield manual café \uFFFD"},
		{"multibyte, long", long, long[:99], "flowshield manual 日本語"},
		{"emoji at the cap", strings.Repeat("x", 98) + "🛡️" + "tail", strings.Repeat("x", 98), "flowshield manual xxx"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			p := netip.PrefixFrom(victim(i), 32)
			b, err := h.m.AddManual(context.Background(), p, time.Minute, tc.reason, detect.In)
			if err != nil {
				t.Fatal(err)
			}
			if b.Reason != tc.wantReason || len(b.Reason) > MaxReasonBytes || !utf8.ValidString(b.Reason) {
				t.Errorf("reason %q (%d bytes), want %q", b.Reason, len(b.Reason), tc.wantReason)
			}
			h.sync(false)
			objs := h.router.ourObjects()
			if len(objs) != 1 {
				t.Fatalf("router %+v", objs)
			}
			c := objs[0].Comment
			if !strings.HasPrefix(c, tc.wantCommentStart) || len(c) > maxCommentBytes || !utf8.ValidString(c) ||
				strings.ContainsFunc(c, unicode.IsControl) {
				t.Errorf("comment %q (%d bytes), want it to start with %q, valid UTF-8, at most %d bytes, one line",
					c, len(c), tc.wantCommentStart, maxCommentBytes)
			}
		})
	}
}

// TestAttackCommentCapped: an attack ban's comment (id and type from the
// detector) is held to the same bound.
func TestAttackCommentCapped(t *testing.T) {
	for _, reason := range []string{strings.Repeat("é", 100), strings.Repeat("a", 200), "udp_flood\nx"} {
		b := &ban{Ban: Ban{AttackID: "a12", Reason: reason}} // an odd prefix: a byte cut would split "é"
		c := comment(b)
		if !strings.HasPrefix(c, "flowshield a12 ") || len(c) > maxCommentBytes || !utf8.ValidString(c) ||
			strings.ContainsFunc(c, unicode.IsControl) {
			t.Errorf("comment %q (%d bytes) for reason %q", c, len(c), reason)
		}
		if len(reason) > 150 && len(c) < maxCommentBytes-1 {
			t.Errorf("comment %q (%d bytes) cut shorter than needed", c, len(c))
		}
	}
}

func TestBanStateString(t *testing.T) {
	for s, want := range map[BanState]string{BanPending: "pending", BanActive: "active", BanFailed: "error"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}
