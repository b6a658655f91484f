package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAttackStorm is the history's share of an attack storm: 50
// attacks a tick go through their life (start, details with a 4 KB text
// and a 40-flow sample, end), each event one SaveAttacks per tick, over a
// history of `history` records. It reports the bytes written (wchar) per
// attack.
func BenchmarkAttackStorm(b *testing.B) {
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("history=%d", size), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "flowshield.db"), quietOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			summary, details := testAttack(), testDetails(4<<10, 40)
			t0 := time.Unix(1764050000, 0)
			n := 0
			tick := func(k int) {
				// k attacks start, the k before them get their details, and
				// the k before those end: three events per attack in all.
				var recs []AttackRecord
				for i := range k {
					id := n + i
					at := func(id int) time.Time { return t0.Add(time.Duration(id) * time.Millisecond) }
					rec := func(id int) AttackRecord {
						r := summary
						r.ID, r.StartedAt = fmt.Sprint(id), at(id)
						return r
					}
					recs = append(recs, rec(id))
					if id >= k {
						r := rec(id - k)
						r.Details = details
						recs = append(recs, r)
					}
					if id >= 2*k {
						r := rec(id - 2*k)
						r.EndedAt = at(id)
						recs = append(recs, r)
					}
				}
				n += k
				if err := s.SaveAttacks(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			for n < size {
				tick(500)
			}
			_, wc0 := procIO(b)
			n0 := n
			for b.Loop() {
				tick(50)
			}
			_, wc1 := procIO(b)
			b.ReportMetric(float64(wc1-wc0)/float64(n-n0), "wchar-bytes/attack")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n-n0), "ns/attack")
		})
	}
}

// BenchmarkEncodeAttack is the encoding of one attack of the history with
// its details (a 4 KB text, 40 flows), as the AttackDetails event writes it.
func BenchmarkEncodeAttack(b *testing.B) {
	r := testAttack()
	r.Details = testDetails(4<<10, 40)
	var n int
	for b.Loop() {
		v, err := encodeAttack(attackHeader(r.EndedAt), r)
		if err != nil {
			b.Fatal(err)
		}
		d, err := encodeDetails(r.Details)
		if err != nil {
			b.Fatal(err)
		}
		n = len(v) + len(d)
	}
	b.ReportMetric(float64(n), "bytes/attack")
}
