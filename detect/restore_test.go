package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

func TestRestoreEnded(t *testing.T) {
	cfg := testConfig()
	cfg.RetainEndedCount, cfg.RetainEnded = 2, time.Hour
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1764050000, 0)
	var in []Attack
	for i := range 4 {
		in = append(in, Attack{ID: fmt.Sprintf("a%d", i), EndedAt: now.Add(time.Duration(i-4) * time.Minute), Sample: []flow.Record{{Packets: 1}}})
	}
	in = append(in, Attack{ID: "active"}, in[3]) // not ended; a duplicate
	in[0], in[3] = in[3], in[0]                  // order does not matter
	if n := e.RestoreEnded(now, in); n != 4 {
		t.Fatalf("restored %d, want 4", n)
	}
	if n := e.RestoreEnded(now, in); n != 0 {
		t.Fatalf("restoring again added %d, want 0", n)
	}
	got := e.Attacks(false)
	if len(got) != 4 || got[0].ID != "a3" || got[3].ID != "a0" {
		t.Fatalf("attacks %v, want a3..a0", got)
	}
	for i, want := range []bool{false, false, true, true} {
		a, _ := e.Attack(fmt.Sprintf("a%d", i))
		if (a.Sample != nil) != want {
			t.Fatalf("a%d keeps a sample: %v, want %v (only the last RetainEndedCount do)", i, a.Sample != nil, want)
		}
	}
	// Past RetainEnded, beyond the count kept, they go.
	e.RestoreEnded(now.Add(2*time.Hour), nil)
	if got := e.Attacks(false); len(got) != 2 {
		t.Fatalf("%d attacks two hours later, want the last 2", len(got))
	}
}
