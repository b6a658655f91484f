package storage

import (
	"context"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
)

func testBan(prefix, reason string) BanRecord {
	created := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return BanRecord{Prefix: netip.MustParsePrefix(prefix), Actions: []string{"address-list"}, Reason: reason,
		AttackID: "a1", CreatedAt: created, ExpiresAt: created.Add(10 * time.Minute), BanTime: 10 * time.Minute}
}

// TestBansOldRecords: the bans the first version wrote (from the ban
// manager, before the store encoded them) read as they are; values that do
// not decode, or sit under another ban's key, come back as bad records for
// the caller to delete.
func TestBansOldRecords(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, quietOptions())
	created := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	raw := map[string][]byte{
		// As the first version's mitigation.encodeBan wrote them.
		"203.0.113.5/32|in":   []byte(`{"prefix":"203.0.113.5/32","direction":"in","actions":["address-list","raw-drop"],"reason":"udp_flood","attack_id":"a1","created_at":"2026-11-25T12:00:00Z","expires_at":"2026-11-25T12:10:00.0000005Z","ban_time_s":600}`),
		"2001:db8::/64|out":   []byte(`{"prefix":"2001:db8::/64","direction":"out","actions":["blackhole"],"reason":"scanner","manual":true,"created_at":"2026-11-25T11:00:00Z","expires_at":"2026-11-25T14:00:00Z","ban_time_s":7200}`),
		"198.51.100.1/32|in":  []byte(`{"prefix":"198.51.100.1/32","direction":"sideways"}`),
		"198.51.100.2/32|in":  []byte(`{"prefix":"198.51.100.3/32","direction":"in"}`),
		"198.51.100.4/32|out": []byte(`not json`),
	}
	if err := s.saveBatch(ctx, bucketBans, "test", raw, nil); err != nil {
		t.Fatal(err)
	}
	bans, bad, err := s.LoadBans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []BanRecord{
		{Prefix: netip.MustParsePrefix("2001:db8::/64"), Direction: detect.Out, Actions: []string{"blackhole"}, Reason: "scanner",
			Manual: true, CreatedAt: created.Add(-time.Hour), ExpiresAt: created.Add(2 * time.Hour), BanTime: 2 * time.Hour},
		{Prefix: netip.MustParsePrefix("203.0.113.5/32"), Direction: detect.In, Actions: []string{"address-list", "raw-drop"},
			Reason: "udp_flood", AttackID: "a1", CreatedAt: created, ExpiresAt: created.Add(10*time.Minute + 500), BanTime: 10 * time.Minute},
	}
	if !reflect.DeepEqual(bans, want) {
		t.Fatalf("bans\n%+v\nwant\n%+v", bans, want)
	}
	var badKeys []string
	for _, b := range bad {
		if b.Err == nil {
			t.Errorf("bad record %s without a reason", b.Key)
		}
		badKeys = append(badKeys, b.Key)
	}
	if !reflect.DeepEqual(badKeys, []string{"198.51.100.1/32|in", "198.51.100.2/32|in", "198.51.100.4/32|out"}) {
		t.Fatalf("bad records %v", badKeys)
	}
	if n := s.Stats().Undecodable; n != 3 {
		t.Fatalf("Undecodable %d, want 3", n)
	}
	// Written back, a record is byte for byte what the first version wrote.
	if err := s.UpdateBans(ctx, bans, nil); err != nil {
		t.Fatal(err)
	}
	after, _ := s.loadAll(ctx, bucketBans, "test")
	for k, v := range raw {
		if string(after[k]) != string(v) {
			t.Errorf("%s rewritten as %s, was %s", k, after[k], v)
		}
	}
}

func FuzzDecodeBan(f *testing.F) {
	v, _ := encodeBan(testBan("203.0.113.5/32", "udp_flood"))
	f.Add(v)
	f.Add([]byte(`{"prefix":"2001:db8::/48","direction":"out","actions":["blackhole","x"]}`))
	f.Add([]byte(`{"prefix":"::ffff:1.2.3.4/200"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBan(data)
		if err != nil {
			return
		}
		v, err := encodeBan(b)
		if err != nil {
			t.Fatalf("re-encoding a decoded ban: %v", err)
		}
		b2, err := decodeBan(v)
		if err != nil || b2.Key() != b.Key() || !b2.ExpiresAt.Equal(b.ExpiresAt) {
			t.Fatalf("round trip changed the ban: %v %+v %+v", err, b, b2)
		}
	})
}
