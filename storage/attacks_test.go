package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The details are written once: saving the record again without them (an
// attack's end) keeps them, and pruning removes them with the record.
func TestAttackDetailsWrittenOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1764050000, 0)
	opts := quietOptions()
	opts.Now = func() time.Time { return now }
	opts.HistoryMinCount, opts.HistoryMaxCount, opts.HistoryMinAge = 2, 3, time.Hour
	path := filepath.Join(t.TempDir(), "flowshield.db")
	s, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	start := now.Add(-2 * time.Hour)
	a := AttackRecord{ID: "a1", StartedAt: start, Type: "udp_flood", PeakPPS: 1}
	if err := s.SaveAttacks(ctx, []AttackRecord{a}); err != nil {
		t.Fatal(err)
	}
	a.PeakPPS, a.Details = 2, &AttackDetails{Text: "x"}
	if err := s.SaveAttacks(ctx, []AttackRecord{a}); err != nil {
		t.Fatal(err)
	}
	a.PeakPPS, a.Details, a.EndedAt = 3, nil, start.Add(time.Minute)
	if err := s.SaveAttacks(ctx, []AttackRecord{a}); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadAttacks(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PeakPPS != 3 || got[0].Details == nil || got[0].Details.Text != "x" || !got[0].EndedAt.Equal(a.EndedAt) {
		t.Fatalf("history %+v, want a1 ended with its data updated and its details kept", got)
	}
	// Three more, ended within the hour: past the count always kept, a1
	// (ended long ago) goes at once, with its details.
	var recs []AttackRecord
	for i := range 3 {
		recs = append(recs, AttackRecord{ID: fmt.Sprintf("b%d", i), StartedAt: start.Add(time.Duration(i+1) * time.Second),
			EndedAt: now.Add(time.Duration(i-10) * time.Minute), Details: &AttackDetails{}})
	}
	if err := s.SaveAttacks(ctx, recs); err != nil {
		t.Fatal(err)
	}
	got, _ = s.LoadAttacks(ctx, 1000)
	if len(got) != 3 || got[0].ID != "b0" {
		t.Fatalf("after the cap: %d records, first %q; want 3, a1 (ended long ago) pruned", len(got), got[0].ID)
	}
	if few, _ := s.LoadAttacks(ctx, 1); len(few) != 3 || few[1].Details != nil || few[2].Details == nil {
		t.Fatalf("LoadAttacks(1) gave details %v, %v: want only the newest record's", few[1].Details, few[2].Details)
	}
	var details int
	s.db.View(func(tx *bolt.Tx) error { details = tx.Bucket(bucketAttackDetails).Stats().KeyN; return nil })
	if details != 3 {
		t.Fatalf("%d details kept for 3 records: a pruned record's details were left behind", details)
	}
	s.Close()
	// The count survives a reopen: one more record is over the hard cap.
	if s, err = Open(ctx, path, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.attacks.Load(); n != 3 {
		t.Fatalf("reopened store counts %d records, want 3", n)
	}
	if err := s.SaveAttacks(ctx, []AttackRecord{{ID: "c", StartedAt: now}}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.LoadAttacks(ctx, 1000); len(got) != 3 {
		t.Fatalf("%d records after a save over the cap, want 3", len(got))
	}
}

// Between the count always kept and the hard cap, age decides, and a save
// walks the history for it at most once a minute; PruneAttacks always does.
func TestAttackAgePruneOncePerMinute(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1764050000, 0)
	opts := quietOptions()
	opts.Now = func() time.Time { return now }
	opts.HistoryMinCount, opts.HistoryMaxCount, opts.HistoryMinAge = 2, 100, time.Hour
	s, err := Open(ctx, filepath.Join(t.TempDir(), "flowshield.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := now.Add(-3 * time.Hour)
	save := func(id string, started time.Time) {
		t.Helper()
		if err := s.SaveAttacks(ctx, []AttackRecord{{ID: id, StartedAt: started, EndedAt: started.Add(time.Minute)}}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		got, err := s.LoadAttacks(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	for i := range 4 {
		save(fmt.Sprintf("old%d", i), old.Add(time.Duration(i)*time.Second))
	}
	// The third save went past 2 and walked: old0 went. The fourth, in the
	// same minute, did not walk.
	if n := count(); n != 3 {
		t.Fatalf("%d records, want 3 (one pruned at the first walk, none in the same minute)", n)
	}
	now = now.Add(time.Minute)
	save("new", now.Add(-time.Second))
	if n := count(); n != 2 {
		t.Fatalf("%d records a minute later, want 2 (old ones pruned down to the count kept)", n)
	}
	save("old9", old)
	if n := count(); n != 3 {
		t.Fatalf("%d records, want 3 before an explicit prune", n)
	}
	if err := s.PruneAttacks(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d records after PruneAttacks, want 2", n)
	}
	if n := s.attacks.Load(); n != 2 {
		t.Fatalf("store counts %d records, holds 2", n)
	}
}
