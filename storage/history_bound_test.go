package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// recount measures the history in the file: records, bytes of keys and
// values of both buckets, and records with details.
func recount(t testing.TB, s *Store) (records, bytes int64, withDetails int) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		b, d := tx.Bucket(bucketAttacks), tx.Bucket(bucketAttackDetails)
		records = int64(b.Stats().KeyN)
		bytes = bucketBytes(b) + bucketBytes(d)
		withDetails = d.Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return records, bytes, withDetails
}

// TestAttackStormFileSize is the storm of the issue: 20,000 attacks with
// ~12 KB of details each, all within the 24 hours, each going through its
// life (start, details, end) in ticks of 50, with the default bounds. The
// history stays within HistoryMaxBytes, every attack stays listed (the 24
// hours hold: their summaries fit), the newest 1,000 keep their details,
// and the file stays under 2 x HistoryMaxBytes. Measured: history 56
// MiB (peak 63.9), file 81 MiB; with 60,000 and 100,000 attacks the file
// was 97.2 and 97.3 MiB: it stops growing once the history is at its
// bound and bbolt reuses the pages freed.
func TestAttackStormFileSize(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("writes 240 MB (30 s under the race detector, for a loop of one goroutine)")
	}
	ctx := context.Background()
	opts := quietOptions()
	now := time.Unix(1764050000, 0)
	opts.Now = func() time.Time { return now }
	path := filepath.Join(t.TempDir(), "flowshield.db")
	s, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	details := testDetails(2<<10, 40)
	enc, _ := encodeDetails(details)
	const attacks, tick = 20_000, 50
	t0 := now
	rec := func(id int) AttackRecord {
		r := testAttack()
		r.ID, r.StartedAt = fmt.Sprintf("storm-%05d", id), t0.Add(time.Duration(id)*time.Millisecond)
		return r
	}
	var maxBytes, maxFile int64
	start := time.Now()
	for n := 0; n < attacks+2*tick; n += tick {
		now = now.Add(time.Second)
		var recs []AttackRecord
		for id := n; id < n+tick; id++ {
			if id < attacks {
				recs = append(recs, rec(id))
			}
			if d := id - tick; d >= 0 && d < attacks {
				r := rec(d)
				r.Details = details
				recs = append(recs, r)
			}
			if e := id - 2*tick; e >= 0 && e < attacks {
				r := rec(e)
				r.EndedAt = now
				recs = append(recs, r)
			}
		}
		if err := s.SaveAttacks(ctx, recs); err != nil {
			t.Fatal(err)
		}
		maxBytes = max(maxBytes, s.Stats().HistoryBytes)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		maxFile = max(maxFile, info.Size())
	}
	took := time.Since(start)
	st := s.Stats()
	records, bytes, withDetails := recount(t, s)
	t.Logf("%d attacks with %d-byte details in %s: history %d records, %.1f MiB (peak %.1f MiB), %d with details, "+
		"%d shed, %d evicted; file %.1f MiB (peak %.1f MiB)",
		attacks, len(enc), took.Round(time.Millisecond), records, float64(bytes)/(1<<20), float64(maxBytes)/(1<<20), withDetails,
		st.HistoryDetailsShed, st.HistoryEvicted, float64(maxFile)/(1<<20), float64(maxFile)/(1<<20))
	if st.HistoryRecords != records || st.HistoryBytes != bytes {
		t.Errorf("Stats say %d records, %d bytes; the file holds %d, %d", st.HistoryRecords, st.HistoryBytes, records, bytes)
	}
	if records != attacks || st.HistoryEvicted != 0 {
		t.Errorf("%d records kept, %d evicted: want all %d (their 24 hours hold)", records, st.HistoryEvicted, attacks)
	}
	if maxBytes > opts.HistoryMaxBytes {
		t.Errorf("history reached %d bytes, bound %d", maxBytes, opts.HistoryMaxBytes)
	}
	if withDetails < opts.HistoryMinCount || uint64(withDetails)+st.HistoryDetailsShed != attacks {
		t.Errorf("%d with details, %d shed: want at least %d with details and the rest shed", withDetails, st.HistoryDetailsShed, opts.HistoryMinCount)
	}
	if fileBound := 2 * opts.HistoryMaxBytes; maxFile > fileBound {
		t.Errorf("file reached %d bytes, want under %d", maxFile, fileBound)
	}
	s.db.View(func(tx *bolt.Tx) error {
		bs, ds := tx.Bucket(bucketAttacks).Stats(), tx.Bucket(bucketAttackDetails).Stats()
		t.Logf("pages: attacks leaf %d (inuse %d B) overflow %d branch %d; details leaf %d overflow %d; free %d pending %d; tx size %d",
			bs.LeafPageN, bs.LeafInuse, bs.LeafOverflowN, bs.BranchPageN, ds.LeafPageN, ds.LeafOverflowN, s.db.Stats().FreePageN, s.db.Stats().PendingPageN, tx.Size())
		return nil
	})
	got, err := s.LoadAttacks(ctx, opts.HistoryMinCount)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got[len(got)-opts.HistoryMinCount:] {
		if r.Details == nil {
			t.Fatalf("%s, among the newest %d, lost its details", r.ID, opts.HistoryMinCount)
		}
	}
}

// The byte bound, at a small scale: the most recently ended are kept
// whole; beyond them details go first, oldest ended first, then whole
// records, oldest ended first; attacks past their age go by age first.
func TestHistoryByteBound(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1764050000, 0)
	// The bytes of one record with its details and without.
	whole, summary := func() (int64, int64) {
		s, _ := openTemp(t, quietOptions())
		r := boundRecord(now, 0, time.Minute)
		if err := s.SaveAttacks(ctx, []AttackRecord{r}); err != nil {
			t.Fatal(err)
		}
		_, withDetails, _ := recount(t, s)
		r.ID, r.Details = "x", nil
		s2, _ := openTemp(t, quietOptions())
		if err := s2.SaveAttacks(ctx, []AttackRecord{r}); err != nil {
			t.Fatal(err)
		}
		_, bare, _ := recount(t, s2)
		return withDetails, bare
	}()
	tests := []struct {
		name      string
		old       int   // attacks that ended 2 hours ago (past HistoryMinAge)
		recent    int   // attacks that ended within the last hour
		maxBytes  int64 // HistoryMaxBytes
		wantKept  int
		wantShed  bool
		wantEarly bool // records gone within HistoryMinAge
	}{
		{"under the bound", 0, 10, 20 * whole, 10, false, false},
		{"details shed, every record kept", 0, 10, 6 * whole, 10, true, false},
		{"records go once every detail is shed", 0, 20, 3*whole + 8*summary, 0, true, true},
		{"age first", 5, 10, 6 * whole, 10, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := quietOptions()
			opts.Now = func() time.Time { return now }
			opts.HistoryMinCount, opts.HistoryMinAge, opts.HistoryMaxBytes = 3, time.Hour, tt.maxBytes
			s, _ := openTemp(t, opts)
			var saved []AttackRecord
			for i := range tt.old + tt.recent {
				ago := time.Duration(tt.old+tt.recent-i) * time.Minute // oldest first, one a minute
				if i < tt.old {
					ago += 2 * time.Hour
				}
				r := boundRecord(now, i, ago)
				saved = append(saved, r)
				if err := s.SaveAttacks(ctx, []AttackRecord{r}); err != nil {
					t.Fatal(err)
				}
				if b := s.Stats().HistoryBytes; b > tt.maxBytes {
					t.Fatalf("after %d saves: %d bytes, bound %d", i+1, b, tt.maxBytes)
				}
			}
			got, err := s.LoadAttacks(ctx, len(saved))
			if err != nil {
				t.Fatal(err)
			}
			st := s.Stats()
			records, bytes, _ := recount(t, s)
			if st.HistoryRecords != records || st.HistoryBytes != bytes || int64(len(got)) != records {
				t.Errorf("Stats say %d records, %d bytes; the file holds %d (%d loaded), %d", st.HistoryRecords, st.HistoryBytes, records, len(got), bytes)
			}
			if tt.wantKept > 0 && len(got) != tt.wantKept {
				t.Errorf("kept %d, want %d", len(got), tt.wantKept)
			}
			if tt.wantKept == 0 && len(got) >= tt.recent {
				t.Errorf("kept %d of %d: want some evicted", len(got), tt.recent)
			}
			kept := map[string]bool{}
			var shed uint64
			for i, r := range got { // oldest start first, which is oldest ended here
				kept[r.ID] = true
				if r.Details == nil {
					shed++
					if i >= len(got)-opts.HistoryMinCount {
						t.Errorf("%s, among the last %d ended, has no details", r.ID, opts.HistoryMinCount)
					}
					if i > 0 && got[i-1].Details != nil {
						t.Errorf("%s lost its details before %s, which ended earlier", r.ID, got[i-1].ID)
					}
				}
			}
			var evicted, early uint64
			for _, r := range saved {
				if kept[r.ID] {
					continue
				}
				evicted++
				if !r.EndedAt.Before(now.Add(-opts.HistoryMinAge)) {
					early++
				}
				if len(got) > 0 && r.EndedAt.After(got[0].EndedAt) {
					t.Errorf("%s evicted but %s, which ended earlier, kept", r.ID, got[0].ID)
				}
			}
			// A record that lost its details at one walk and went whole at a
			// later one counts in both.
			if st.HistoryDetailsShed < shed || early == 0 && st.HistoryDetailsShed != shed ||
				st.HistoryEvicted != evicted || st.HistoryEvictedEarly != early {
				t.Errorf("Stats: %d shed, %d evicted, %d early; the history says %d, %d, %d",
					st.HistoryDetailsShed, st.HistoryEvicted, st.HistoryEvictedEarly, shed, evicted, early)
			}
			if (shed > 0) != tt.wantShed || (early > 0) != tt.wantEarly {
				t.Errorf("%d shed, %d evicted early; want shed %v, early %v", shed, early, tt.wantShed, tt.wantEarly)
			}
			if evicted != uint64(tt.old)+uint64(tt.recent-len(got)) && tt.old > 0 {
				t.Errorf("%d evicted, want the %d old ones", evicted, tt.old)
			}
		})
	}
}

// boundRecord is attack i, ended ago before now, with 2 KB of details.
func boundRecord(now time.Time, i int, ago time.Duration) AttackRecord {
	r := testAttack()
	r.ID = fmt.Sprintf("b%03d", i)
	r.EndedAt = now.Add(-ago)
	r.StartedAt = r.EndedAt.Add(-time.Minute)
	r.Details = testDetails(2<<10, 0)
	return r
}
