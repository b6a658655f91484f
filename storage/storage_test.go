package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func quietOptions() Options {
	o := DefaultOptions()
	o.LockTimeout = 200 * time.Millisecond
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

func openTemp(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flowshield.db")
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestLockTimeoutNamesFile(t *testing.T) {
	s, path := openTemp(t, quietOptions())
	_ = s
	start := time.Now()
	_, err := Open(context.Background(), path, quietOptions())
	if err == nil {
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("error %v does not wrap ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name the file %s", err, path)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("lock wait took %s, want about the 200ms timeout", d)
	}
	// The locked file must not have been mistaken for a damaged one.
	if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("locked file was moved aside: %v", m)
	}
}

func TestDamagedFileMovedAside(t *testing.T) {
	ctx := context.Background()
	// A real database with enough data to span many pages.
	realDB := func(t *testing.T, path string) {
		s, err := Open(ctx, path, quietOptions())
		if err != nil {
			t.Fatal(err)
		}
		var put []BanRecord
		for i := range 2000 {
			put = append(put, BanRecord{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32),
				Reason: strings.Repeat(string(rune('a'+i%26)), 100)})
		}
		if err := s.UpdateBans(ctx, put, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"garbage bytes", func(t *testing.T, path string) {
			garbage := make([]byte, 64<<10)
			for i := range garbage {
				garbage[i] = byte(i*7 + i>>8)
			}
			if err := os.WriteFile(path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"short garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("not a bolt file"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated real db", func(t *testing.T, path string) {
			realDB(t, path)
			if err := os.Truncate(path, 16<<10); err != nil {
				t.Fatal(err)
			}
		}},
		{"zeroed middle of real db", func(t *testing.T, path string) {
			realDB(t, path)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info, _ := f.Stat()
			junk := bytes.Repeat([]byte{0xff}, int(info.Size())-8192)
			if _, err := f.WriteAt(junk, 8192); err != nil {
				t.Fatal(err)
			}
		}},
		{"earlier open died", func(t *testing.T, path string) {
			realDB(t, path)
			if err := os.WriteFile(path+".opening", []byte("1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flowshield.db")
			tc.damage(t, path)
			before, _ := os.ReadFile(path)
			s, err := Open(ctx, path, quietOptions())
			if err != nil {
				t.Fatalf("Open of a damaged file failed instead of recovering: %v", err)
			}
			defer s.Close()
			aside := s.Recovered()
			if aside == "" || !strings.HasPrefix(aside, path+".corrupt-") {
				t.Fatalf("Recovered() = %q, want %s.corrupt-<timestamp>", aside, path)
			}
			moved, err := os.ReadFile(aside)
			if err != nil || !bytes.Equal(moved, before) {
				t.Fatalf("moved-aside file differs from the damaged one (err %v)", err)
			}
			bans, _, err := s.LoadBans(ctx)
			if err != nil || len(bans) != 0 {
				t.Fatalf("fresh store has %d bans, err %v", len(bans), err)
			}
			if err := s.UpdateBans(ctx, []BanRecord{testBan("203.0.113.5/32", "v")}, nil); err != nil {
				t.Fatalf("fresh store not writable: %v", err)
			}
			if v, _ := s.SchemaVersion(ctx); v != SchemaVersion {
				t.Fatalf("schema version %d, want %d", v, SchemaVersion)
			}
		})
	}
}

func TestHealthyFileKept(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, quietOptions())
	ban := testBan("203.0.113.5/32", "x")
	if err := s.UpdateBans(ctx, []BanRecord{ban}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveTemplates(ctx, map[string][]byte{"192.0.2.1:2055/0": []byte("tpl")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, path, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Recovered() != "" {
		t.Fatalf("healthy file moved aside to %s", s2.Recovered())
	}
	bans, _, _ := s2.LoadBans(ctx)
	tpl, _ := s2.LoadTemplates(ctx)
	if len(bans) != 1 || !reflect.DeepEqual(bans[0], ban) || string(tpl["192.0.2.1:2055/0"]) != "tpl" {
		t.Fatalf("reopened store lost data: bans %v templates %v", bans, tpl)
	}
	if _, err := os.Stat(path + ".opening"); !os.IsNotExist(err) {
		t.Fatalf("open marker left behind: %v", err)
	}
}

func TestBatchesSkipUnchanged(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t, quietOptions())
	tpl := map[string][]byte{"a": []byte("1"), "b": []byte("2")}
	if err := s.SaveTemplates(ctx, tpl); err != nil {
		t.Fatal(err)
	}
	c := s.Stats().Commits
	for range 10 {
		if err := s.SaveTemplates(ctx, tpl); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Stats().Commits; got != c {
		t.Fatalf("unchanged snapshots made %d commits", got-c)
	}
	if err := s.SaveTemplates(ctx, map[string][]byte{"a": nil}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.LoadTemplates(ctx)
	if len(got) != 1 || string(got["b"]) != "2" {
		t.Fatalf("after delete: %v", got)
	}
	x, y := testBan("192.0.2.1/32", "1"), testBan("192.0.2.2/32", "2")
	if err := s.UpdateBans(ctx, []BanRecord{x, y}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBans(ctx, nil, []string{x.Key()}); err != nil {
		t.Fatal(err)
	}
	bans, _, _ := s.LoadBans(ctx)
	if len(bans) != 1 || bans[0].Key() != y.Key() {
		t.Fatalf("bans %v", bans)
	}
}

func TestHistoryPruning(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		ended     []time.Duration // how long ago each attack ended (0: active)
		wantCount int
	}{
		{"under min count kept whatever the age", repeat(500, 72*time.Hour), 500},
		{"old beyond min count pruned to 1000", repeat(1500, 48*time.Hour), 1000},
		{"recent kept beyond min count", repeat(1500, time.Hour), 1500},
		{"mix keeps recent and newest old", append(repeat(300, time.Hour), repeat(1200, 30*time.Hour)...), 1000},
		{"mix more recent than min", append(repeat(1100, time.Hour), repeat(400, 30*time.Hour)...), 1100},
		{"active never pruned", append(repeat(1100, 0), repeat(400, 48*time.Hour)...), 1100},
		{"hard cap", repeat(2500, time.Minute), 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			opts := quietOptions()
			opts.Now = func() time.Time { return now }
			opts.HistoryMaxCount = 2000
			s, _ := openTemp(t, opts)
			var recs []AttackRecord
			for i, ago := range tc.ended {
				r := AttackRecord{ID: fmt.Sprintf("a%05d", i), StartedAt: now.Add(-ago - time.Duration(i)*time.Millisecond - time.Minute)}
				if ago != 0 {
					r.EndedAt = now.Add(-ago - time.Duration(i)*time.Millisecond)
				}
				recs = append(recs, r)
			}
			// In batches, as a caller snapshotting would.
			for i := 0; i < len(recs); i += 500 {
				if err := s.SaveAttacks(ctx, recs[i:min(i+500, len(recs))]); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.PruneAttacks(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := s.LoadAttacks(ctx, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.wantCount {
				t.Fatalf("kept %d attacks, want %d", len(got), tc.wantCount)
			}
			for i := 1; i < len(got); i++ {
				if got[i].StartedAt.Before(got[i-1].StartedAt) {
					t.Fatalf("history not oldest first at %d", i)
				}
			}
			// The kept ones are the most recently ended: nothing kept may have
			// ended before something pruned (active ones aside).
			kept := map[string]bool{}
			var oldestKept time.Time
			for _, r := range got {
				kept[r.ID] = true
				if !r.EndedAt.IsZero() && (oldestKept.IsZero() || r.EndedAt.Before(oldestKept)) {
					oldestKept = r.EndedAt
				}
			}
			for _, r := range recs {
				if !kept[r.ID] && !oldestKept.IsZero() && (r.EndedAt.IsZero() || r.EndedAt.After(oldestKept)) {
					t.Fatalf("pruned %s (ended %v) but kept an older one (%v)", r.ID, r.EndedAt, oldestKept)
				}
			}
		})
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// procIO reads this process's write_bytes (what reached the block layer)
// and wchar (bytes passed to write calls, which also counts page-cache and
// tmpfs writes).
func procIO(t testing.TB) (writeBytes, wchar uint64) {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		switch k {
		case "write_bytes":
			writeBytes = n
		case "wchar":
			wchar = n
		}
	}
	return writeBytes, wchar
}

// TestSteadyStateWriteBytes simulates one quiet hour (no attack, no ban
// change) of the snapshots the appliance makes: every minute all exporter
// templates (40, one of them refreshed with new content every 10 minutes,
// as exporters re-send them) and a periodic ban snapshot with nothing changed. It fails above the
// 2 MB/hour goal.
func TestSteadyStateWriteBytes(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, quietOptions())
	templates := map[string][]byte{}
	for i := range 40 {
		templates[fmt.Sprintf("192.0.2.%d:2055/%d", i/2, i%2)] = bytes.Repeat([]byte{byte(i)}, 300)
	}
	bans := []BanRecord{testBan("203.0.113.5/32", "udp_flood")}
	if err := s.SaveTemplates(ctx, templates); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateBans(ctx, bans, nil); err != nil {
		t.Fatal(err)
	}
	os.ReadFile(path) // settle page cache accounting of the setup

	wb0, wc0 := procIO(t)
	commits0 := s.Stats().Commits
	for minute := range 60 {
		if minute%10 == 0 {
			k := fmt.Sprintf("192.0.2.%d:2055/0", minute/10)
			templates[k] = bytes.Repeat([]byte{byte(minute)}, 300)
		}
		if err := s.SaveTemplates(ctx, templates); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateBans(ctx, bans, nil); err != nil {
			t.Fatal(err)
		}
	}
	wb1, wc1 := procIO(t)
	commits := s.Stats().Commits - commits0
	wb, wc := wb1-wb0, wc1-wc0
	t.Logf("quiet hour: %d commits, write_bytes %d (%.2f MB/h), wchar %d (%.2f MB/h), %.1f KiB/commit",
		commits, wb, float64(wb)/1e6, wc, float64(wc)/1e6, float64(wc)/1024/float64(max(commits, 1)))
	const goal = 2_000_000
	if wb > goal || wc > goal {
		t.Fatalf("steady state writes %d (block) / %d (wchar) bytes per hour, goal under %d", wb, wc, goal)
	}
}

// BenchmarkBanCommit measures the cost of persisting one ban change, the
// unit of write wear while attacks come and go.
func BenchmarkBanCommit(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "flowshield.db")
	s, err := Open(ctx, path, quietOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	_, wc0 := procIO(b)
	i := 0
	for b.Loop() {
		i++
		ban := testBan(fmt.Sprintf("203.0.113.%d/32", i%200), strconv.Itoa(i))
		if err := s.UpdateBans(ctx, []BanRecord{ban}, nil); err != nil {
			b.Fatal(err)
		}
	}
	_, wc1 := procIO(b)
	b.ReportMetric(float64(wc1-wc0)/float64(i), "wchar-bytes/commit")
}

func TestCreatesDataDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "sub", "flowshield.db")
	s, err := Open(context.Background(), path, quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Recovered() != "" {
		t.Fatalf("fresh file reported as recovered: %s", s.Recovered())
	}
}

func TestDamagedClassification(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("opening: %w", ErrLocked), false},
		{&os.PathError{Op: "open", Path: "x", Err: os.ErrPermission}, false},
		{fmt.Errorf("opening: %w", errors.New("invalid database")), true},
		{errors.New("checking database x: panic: runtime error"), true},
	}
	for _, tc := range tests {
		if got := damaged(tc.err); got != tc.want {
			t.Errorf("damaged(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
