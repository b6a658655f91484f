package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A write to a closed store is a *WriteError, counted; a cancelled context
// is not a failure of the store.
func TestWriteErrorClosedStore(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, quietOptions())
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.UpdateBans(cancelled, []BanRecord{testBan("203.0.113.5/32", "x")}, nil); !errors.Is(err, context.Canceled) || errors.As(err, new(*WriteError)) {
		t.Fatalf("cancelled: %v, want context.Canceled and no WriteError", err)
	}
	s.Close()
	writes := []struct {
		op    string
		write func() error
	}{
		{"saving bans", func() error { return s.UpdateBans(ctx, []BanRecord{testBan("203.0.113.5/32", "x")}, nil) }},
		{"saving attacks", func() error { return s.SaveAttacks(ctx, []AttackRecord{testAttack()}) }},
		{"saving templates", func() error { return s.SaveTemplates(ctx, map[string][]byte{"k": []byte("v")}) }},
		{"pruning attacks", func() error { return s.PruneAttacks(ctx) }},
	}
	for i, w := range writes {
		err := w.write()
		var we *WriteError
		if !errors.As(err, &we) || we.Op != w.op || we.Path != path || !errors.Is(err, bolt.ErrDatabaseNotOpen) {
			t.Errorf("%s: %v, want a *WriteError for %s wrapping bolt.ErrDatabaseNotOpen", w.op, err, path)
		}
		if got := s.Stats().WriteFailures; got != uint64(i+1) {
			t.Errorf("%s: %d write failures counted, want %d", w.op, got, i+1)
		}
	}
}

// A disk that fills up (here: the process's file size limit) fails the
// commit with a *WriteError; what was written before stays, and the store
// writes again once there is room.
func TestWriteErrorFileTooLarge(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t, quietOptions())
	ban := testBan("203.0.113.5/32", "before")
	if err := s.UpdateBans(ctx, []BanRecord{ban}, nil); err != nil {
		t.Fatal(err)
	}
	big := map[string][]byte{}
	for i := range 64 {
		big[fmt.Sprintf("t%02d", i)] = bytes.Repeat([]byte{byte(i)}, 64<<10) // 4 MiB: the file must grow
	}
	err := withFileSizeLimit(t, path, func() error { return s.SaveTemplates(ctx, big) })
	var we *WriteError
	if !errors.As(err, &we) || we.Op != "saving templates" {
		t.Fatalf("saving past the file size limit: %v, want a *WriteError", err)
	}
	if st := s.Stats(); st.WriteFailures != 1 {
		t.Fatalf("%d write failures counted, want 1", st.WriteFailures)
	}
	if got, _ := s.LoadTemplates(ctx); len(got) != 0 {
		t.Fatalf("%d templates stored by the failed write", len(got))
	}
	if err := s.SaveTemplates(ctx, big); err != nil {
		t.Fatalf("with room again: %v", err)
	}
	bans, _, err := s.LoadBans(ctx)
	if err != nil || len(bans) != 1 || bans[0].Reason != "before" {
		t.Fatalf("bans after the failure: %v, %v", bans, err)
	}
}
