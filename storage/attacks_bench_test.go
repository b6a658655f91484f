package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSaveAttacks is an attack storm's history write: each op saves
// 10 attacks of 16 KB (a 40-flow sample) into a history of `size` records.
func BenchmarkSaveAttacks(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("history=%d", size), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "flowshield.db"), quietOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			data := make([]byte, 16<<10)
			t0 := time.Unix(1764050000, 0)
			n := 0
			batch := func(k int) []AttackRecord {
				recs := make([]AttackRecord, k)
				for i := range recs {
					n++
					recs[i] = AttackRecord{ID: fmt.Sprintf("a%d", n), StartedAt: t0.Add(time.Duration(n) * time.Millisecond),
						EndedAt: t0.Add(time.Duration(n)*time.Millisecond + time.Second), Data: data}
				}
				return recs
			}
			for n < size {
				if err := s.SaveAttacks(ctx, batch(500)); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if err := s.SaveAttacks(ctx, batch(10)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
