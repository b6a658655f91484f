package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
)

// qev is an event of kind k about host 203.0.113.i (attack "a<i>").
func qev(k Kind, i int) Event {
	return Event{Kind: k, AttackID: fmt.Sprintf("a%d", i), IP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Direction: detect.In}
}

// qname is how the tests write an event: "ban:3".
func qname(e Event) string { return fmt.Sprintf("%s:%d", e.Kind, e.IP.As4()[3]) }

func parseQ(t *testing.T, s string) Event {
	t.Helper()
	k, i, ok := strings.Cut(s, ":")
	var n int
	if _, err := fmt.Sscan(i, &n); !ok || err != nil {
		t.Fatalf("bad event %q", s)
	}
	return qev(Kind(k), n)
}

// The rules of a full queue, one push at a time.
func TestQueuePush(t *testing.T) {
	tests := []struct {
		name        string
		size        int
		queued      []string // pushed first, in order (none may be dropped)
		push        string
		want        []string // the queue after the push
		wantDropped string   // "" if nothing
		superseded  bool
	}{
		{"room", 2, []string{"ban:1"}, "attack_details:1", []string{"ban:1", "attack_details:1"}, "", false},
		{"info goes first, oldest first", 3, []string{"ban:1", "attack_start:2", "attack_details:2"}, "ban:3",
			[]string{"ban:1", "attack_details:2", "ban:3"}, "attack_start:2", false},
		{"full of bans: a new ban is dropped", 2, []string{"ban:1", "ban:2"}, "ban:3",
			[]string{"ban:1", "ban:2"}, "ban:3", false},
		{"full of bans: info is dropped", 2, []string{"ban:1", "ban:2"}, "attack_details:3",
			[]string{"ban:1", "ban:2"}, "attack_details:3", false},
		{"an unban supersedes its queued ban", 2, []string{"ban:1", "ban:2"}, "unban:1",
			[]string{"ban:2", "unban:1"}, "ban:1", true},
		{"a superseded ban goes before a new ban", 3, []string{"ban:1", "ban:2", "unban:2"}, "ban:3",
			[]string{"ban:1", "unban:2", "ban:3"}, "ban:2", true},
		{"an unban of another prefix uses the reserve", 2, []string{"ban:1", "ban:2"}, "unban:3",
			[]string{"ban:1", "ban:2", "unban:3"}, "", false},
		{"attack_end uses the reserve", 2, []string{"ban:1", "ban:2"}, "attack_end:1",
			[]string{"ban:1", "ban:2", "attack_end:1"}, "", false},
		{"reserve used up: the oldest ban makes room", 2, []string{"ban:1", "ban:2", "unban:3", "unban:4"}, "attack_end:5",
			[]string{"ban:2", "unban:3", "unban:4", "attack_end:5"}, "ban:1", false},
		{"reserve used up by unbans: an attack_end makes room", 2, []string{"attack_end:1", "unban:2", "unban:3", "unban:4"}, "unban:5",
			[]string{"unban:2", "unban:3", "unban:4", "unban:5"}, "attack_end:1", false},
		{"reserve used up: a redundant unban goes", 2, []string{"attack_end:1", "unban:2", "unban:3", "unban:4"}, "unban:3",
			[]string{"attack_end:1", "unban:2", "unban:3", "unban:4"}, "unban:3", false},
		{"reserve used up by unbans: an attack_end is dropped", 2, []string{"unban:1", "unban:2", "unban:3", "unban:4"}, "attack_end:5",
			[]string{"unban:1", "unban:2", "unban:3", "unban:4"}, "attack_end:5", false},
		{"last resort: 2 x QueueSize unbans wait", 2, []string{"unban:1", "unban:2", "unban:3", "unban:4"}, "unban:5",
			[]string{"unban:1", "unban:2", "unban:3", "unban:4"}, "unban:5", false},
		{"a re-ban is superseded by the next unban, the first unban stays", 3,
			[]string{"ban:1", "unban:2", "ban:2", "attack_end:4", "attack_end:5", "attack_end:6"}, "unban:2",
			[]string{"ban:1", "unban:2", "attack_end:4", "attack_end:5", "attack_end:6", "unban:2"}, "ban:2", true},
		{"directions differ", 1, []string{"ban:1"}, "unban:1/out",
			[]string{"ban:1", "unban:1"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue(tt.size)
			for _, s := range tt.queued {
				if d, dropped := q.push(parseQ(t, s)); dropped {
					t.Fatalf("setting up: %s dropped %s", s, qname(d.e))
				}
			}
			push, out := strings.CutSuffix(tt.push, "/out")
			e := parseQ(t, push)
			if out {
				e.Direction = detect.Out
			}
			d, dropped := q.push(e)
			var got []string
			for _, e := range q.takeAll() {
				got = append(got, qname(e))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("queue %v, want %v", got, tt.want)
			}
			switch {
			case tt.wantDropped == "" && dropped:
				t.Errorf("dropped %s, want nothing", qname(d.e))
			case tt.wantDropped != "" && (!dropped || qname(d.e) != tt.wantDropped || d.superseded != tt.superseded):
				t.Errorf("dropped %v %s (superseded %v), want %s (superseded %v)", dropped, qname(d.e), d.superseded, tt.wantDropped, tt.superseded)
			}
		})
	}
}

// held is a webhook receiver that holds the first request until released
// and records the events it got, in order.
type held struct {
	first   chan struct{} // closed when the first request arrives
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	got     []string
}

func (h *held) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var e struct {
		Event string  `json:"event"`
		IP    *string `json:"ip"`
	}
	if err := jsonDecode(r, &e); err != nil || e.IP == nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.once.Do(func() { close(h.first) })
	<-h.release
	h.mu.Lock()
	h.got = append(h.got, e.Event+":"+strings.TrimPrefix(*e.IP, "203.0.113."))
	h.mu.Unlock()
}

// checkOrder: every unban and attack_end of the storm arrived, once each,
// and no ban after its unban (the router ends unbanned).
func checkOrder(t *testing.T, got []string, n int, ends bool) {
	t.Helper()
	pos := map[string]int{}
	for i, g := range got {
		if _, dup := pos[g]; dup {
			t.Errorf("%s delivered twice", g)
		}
		pos[g] = i
	}
	for i := range n {
		u, ok := pos[fmt.Sprintf("unban:%d", i)]
		if !ok {
			t.Errorf("unban:%d was not delivered", i)
		}
		if b, ok := pos[fmt.Sprintf("ban:%d", i)]; ok && b > u {
			t.Errorf("ban:%d delivered after its unban", i)
		}
		if _, ok := pos[fmt.Sprintf("attack_end:%d", i)]; ends && !ok {
			t.Errorf("attack_end:%d was not delivered", i)
		}
	}
}

// A storm of bans, then their unbans and attack ends, into a webhook that
// hangs: every unban and attack_end is delivered, after its ban, and the
// counters say what went. The first ban is in flight while the rest
// queue (QueueSize 16): the storm's 47 other start, ban and details
// events leave 15 bans and the last details queued (31 infos dropped);
// then each unban drops its superseded ban (the first drops the details)
// and each attack_end takes a reserve slot, 32 in all.
func TestStormKeepsUnbansWebhook(t *testing.T) {
	h := &held{first: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(h)
	defer srv.Close()
	const size, n = 16, 16
	nt := startNotifier(t, Configuration{WebhookURL: srv.URL, QueueSize: size, HTTPTimeout: 30 * time.Second})
	nt.Notify(qev(KindBan, 0))
	<-h.first
	total := 1
	notify := func(k Kind, i int) { nt.Notify(qev(k, i)); total++ }
	for i := range n {
		if i > 0 {
			notify(KindBan, i)
		}
		notify(KindAttackStart, i)
		notify(KindAttackDetails, i)
	}
	for i := range n {
		notify(KindUnban, i)
		notify(KindAttackEnd, i)
	}
	if q := nt.Stats().Webhook.Queued; q != 2*size {
		t.Errorf("%d queued, want %d (the reserve in use)", q, 2*size)
	}
	close(h.release)
	st := waitDone(t, nt, webhookStats, uint64(1+2*n))
	h.mu.Lock()
	got := slices.Clone(h.got)
	h.mu.Unlock()
	checkOrder(t, got, n, true)
	want := SinkStats{
		Sent: 1 + 2*n, Dropped: uint64(total) - (1 + 2*n), Superseded: n - 1,
		DroppedByKind: map[Kind]uint64{KindAttackStart: n, KindAttackDetails: n, KindBan: n - 1, KindBanSkipped: 0, KindEscalate: 0, KindUnban: 0, KindAttackEnd: 0},
	}
	st.Queued = 0
	if !statsEqual(st, want) {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func statsEqual(a, b SinkStats) bool { return reflect.DeepEqual(a, b) }

// The same storm through a real script that hangs on the first ban: the
// script ends with every address unbanned.
func TestStormKeepsUnbansScript(t *testing.T) {
	script := installScript(t, "gate.sh")
	dir := filepath.Dir(script)
	const size, n = 8, 8
	nt := startNotifier(t, Configuration{Script: script, QueueSize: size})
	nt.Notify(qev(KindBan, 0))
	deadline := time.Now().Add(10 * time.Second)
	for !fileExists(filepath.Join(dir, "waiting")) {
		if time.Now().After(deadline) {
			t.Fatal("the script never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range n {
		if i > 0 {
			nt.Notify(qev(KindBan, i))
		}
		nt.Notify(qev(KindAttackDetails, i))
	}
	for i := range n {
		nt.Notify(qev(KindUnban, i))
	}
	if err := os.WriteFile(filepath.Join(dir, "open"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st := waitDone(t, nt, scriptStats, 1+n)
	if st.Failed != 0 {
		t.Fatalf("script failed: %+v", st)
	}
	var got []string
	state := map[string]string{}
	for line := range strings.Lines(readFile(t, filepath.Join(dir, "log"))) {
		f := strings.Fields(line)
		got = append(got, f[3]+":"+strings.TrimPrefix(f[0], "203.0.113."))
		state[f[0]] = f[3]
	}
	checkOrder(t, got, n, false)
	for ip, s := range state {
		if s != string(KindUnban) {
			t.Errorf("%s is left %s", ip, s)
		}
	}
	// 7 details dropped in the storm, the 8th by the first unban; bans 1
	// to 7 dropped by their unbans.
	want := SinkStats{Sent: 1 + n, Dropped: n + n - 1, Superseded: n - 1,
		DroppedByKind: map[Kind]uint64{KindAttackDetails: n, KindBan: n - 1, KindUnban: 0}}
	if !statsEqual(st, want) {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }
