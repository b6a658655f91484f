package notify

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

func webhookStats(s Stats) SinkStats { return s.Webhook }
func slackStats(s Stats) SinkStats   { return s.Slack }

// recorder is a webhook receiver answering with the given statuses in turn
// (then 200) and keeping the bodies.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	calls    atomic.Int32
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	r.bodies = append(r.bodies, body)
	if len(r.statuses) > 0 {
		code := r.statuses[0]
		r.statuses = r.statuses[1:]
		w.WriteHeader(code)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (r *recorder) last(t *testing.T) []byte {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) == 0 {
		t.Fatal("nothing received")
	}
	return r.bodies[len(r.bodies)-1]
}

func fastRetries(cfg Configuration) Configuration {
	cfg.Retries, cfg.RetryBackoff, cfg.RetryMax, cfg.HTTPTimeout = 3, time.Millisecond, 4*time.Millisecond, 2*time.Second
	return cfg
}

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name               string
		statuses           []int
		wantCalls          int32
		wantSent, wantFail uint64
		wantRetries        uint64
	}{
		{"ok", nil, 1, 1, 0, 0},
		{"fails twice then ok", []int{503, 500}, 3, 1, 0, 2},
		{"429 is retried", []int{429}, 2, 1, 0, 1},
		{"4xx is not retried", []int{400}, 1, 0, 1, 0},
		{"gives up after the retries", []int{502, 502, 502, 502, 502}, 4, 0, 1, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{statuses: slices.Clone(tt.statuses)}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			n := startNotifier(t, fastRetries(Configuration{WebhookURL: srv.URL + "/hook"}))
			n.Notify(hostEvent(KindBan))
			st := waitDone(t, n, webhookStats, 1)
			if st.Sent != tt.wantSent || st.Failed != tt.wantFail || st.Retries != tt.wantRetries || rec.calls.Load() != tt.wantCalls {
				t.Errorf("stats %+v after %d calls; want sent %d failed %d retries %d after %d calls",
					st, rec.calls.Load(), tt.wantSent, tt.wantFail, tt.wantRetries, tt.wantCalls)
			}
		})
	}
}

func TestWebhookNetworkErrorRetried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused
	n := startNotifier(t, fastRetries(Configuration{WebhookURL: "http://" + addr + "/services/SECRET"}))
	n.Notify(hostEvent(KindUnban))
	st := waitDone(t, n, webhookStats, 1)
	if st.Failed != 1 || st.Retries != 3 {
		t.Errorf("stats = %+v, want 1 failed after 3 retries", st)
	}
}

// The webhook JSON has exactly the contract's fields.
func TestWebhookJSON(t *testing.T) {
	want := []string{"event", "reason", "time", "attack_id", "ip", "direction", "type", "protocol",
		"pps", "bps", "flows", "peak_pps", "peak_bps", "actions", "details"}
	slices.Sort(want)
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n := startNotifier(t, Configuration{WebhookURL: srv.URL})

	local := time.FixedZone("x", 3600)
	group := Event{Kind: KindAttackStart, Time: time.Date(2026, 11, 25, 2, 0, 0, 0, local), Direction: detect.Out, Reason: "group_mbps"}
	ban := hostEvent(KindBan)
	ban.Actions = []routeros.Action{"address-list", "raw-drop"}
	tests := []struct {
		name string
		ev   Event
		ip   any
		dir  string
		time string
	}{
		{"host ban", ban, "203.0.113.5", "in", "2026-11-25T01:00:00Z"},
		{"group attack", group, nil, "out", "2026-11-25T01:00:00Z"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.Notify(tt.ev)
			waitDone(t, n, webhookStats, uint64(i+1))
			var m map[string]any
			if err := json.Unmarshal(rec.last(t), &m); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, want) {
				t.Errorf("fields %v, want %v", keys, want)
			}
			if m["ip"] != tt.ip || m["direction"] != tt.dir || m["time"] != tt.time || m["event"] != string(tt.ev.Kind) {
				t.Errorf("ip %v direction %v time %v event %v; want %v %v %v %v", m["ip"], m["direction"], m["time"], m["event"], tt.ip, tt.dir, tt.time, tt.ev.Kind)
			}
			if _, ok := m["actions"].([]any); !ok {
				t.Errorf("actions = %#v, want a list", m["actions"])
			}
		})
	}
}

func TestSlackMessage(t *testing.T) {
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	n := startNotifier(t, Configuration{SlackURL: srv.URL})
	tests := []struct {
		kind  Kind
		color string
	}{
		{KindBan, "danger"},
		{KindAttackDetails, "warning"},
		{KindUnban, "good"},
		{KindBanSkipped, ColorOther},
	}
	for i, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			n.Notify(hostEvent(tt.kind))
			waitDone(t, n, slackStats, uint64(i+1))
			var m struct {
				Attachments []map[string]json.RawMessage `json:"attachments"`
			}
			dec := json.NewDecoder(bytes.NewReader(rec.last(t)))
			if err := dec.Decode(&m); err != nil {
				t.Fatal(err)
			}
			if len(m.Attachments) != 1 {
				t.Fatalf("%d attachments", len(m.Attachments))
			}
			a := m.Attachments[0]
			for _, k := range []string{"color", "title", "text", "fields", "ts"} {
				if _, ok := a[k]; !ok {
					t.Errorf("attachment lacks %q", k)
				}
			}
			var color, text, title string
			var ts int64
			var fields []SlackField
			json.Unmarshal(a["color"], &color)
			json.Unmarshal(a["text"], &text)
			json.Unmarshal(a["title"], &title)
			json.Unmarshal(a["ts"], &ts)
			json.Unmarshal(a["fields"], &fields)
			if color != tt.color {
				t.Errorf("color %q, want %q", color, tt.color)
			}
			if !strings.Contains(text, "198.51.100.7:53 &gt; 203.0.113.5:40000") || !strings.Contains(title, "203.0.113.5") {
				t.Errorf("title %q text %q", title, text)
			}
			if ts != hostEvent(tt.kind).Time.Unix() {
				t.Errorf("ts %d", ts)
			}
			if len(fields) == 0 || fields[0].Title != "IP" || fields[0].Value != "203.0.113.5" {
				t.Errorf("fields %+v", fields)
			}
		})
	}
	// attack_start and attack_end are not sent to Slack by default.
	n.Notify(hostEvent(KindAttackStart))
	n.Notify(hostEvent(KindAttackEnd))
	n.Notify(hostEvent(KindUnban))
	waitDone(t, n, slackStats, uint64(len(tests)+1))
	var last SlackMessage
	json.Unmarshal(rec.last(t), &last)
	if rec.calls.Load() != int32(len(tests)+1) || last.Attachments[0].Color != "good" {
		t.Errorf("%d calls, last %+v: attack_start/attack_end were sent", rec.calls.Load(), last)
	}
}

func TestSlackTruncatesLongDetails(t *testing.T) {
	e := hostEvent(KindAttackDetails)
	e.Details = strings.Repeat("é", slackTextLimit) // 2 bytes each
	m := Slack(e)
	txt := m.Attachments[0].Text
	if len(txt) > slackTextLimit+100 || !strings.Contains(txt, "truncated") {
		t.Errorf("text of %d bytes", len(txt))
	}
	if !json.Valid(mustJSON(t, m)) || strings.ContainsRune(txt, '\uFFFD') {
		t.Error("truncation split a character")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A dead endpoint never delays the caller: Notify returns at once, the
// queue overflows and the overflow is counted.
func TestSlowEndpointNeverBlocksAndOverflowIsCounted(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	n := New(Configuration{WebhookURL: srv.URL, QueueSize: 8, HTTPTimeout: 30 * time.Second, StopTimeout: 50 * time.Millisecond}, nil)
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const events = 10_000
	start := time.Now()
	for range events {
		n.Notify(hostEvent(KindBan))
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("%d Notify calls took %s", events, took)
	}
	st := n.Stats().Webhook
	if st.Dropped < events-8-1 || st.Queued > 8 {
		t.Errorf("stats = %+v, want at least %d dropped", st, events-9)
	}
	stopStart := time.Now()
	n.Stop()
	if took := time.Since(stopStart); took > 3*time.Second {
		t.Errorf("Stop took %s with a hung endpoint", took)
	}
	st = n.Stats().Webhook
	if st.Sent+st.Failed+st.Dropped != events {
		t.Errorf("after Stop: %+v, want every event accounted for", st)
	}
	n.Notify(hostEvent(KindBan)) // after Stop: dropped, no panic
	if n.Stats().Webhook.Dropped != st.Dropped+1 {
		t.Error("Notify after Stop not counted as dropped")
	}
}

func TestQueueOverflowBeforeStart(t *testing.T) {
	n := New(Configuration{Script: "/bin/true", WebhookURL: "http://127.0.0.1:9/", QueueSize: 2}, nil)
	for range 5 {
		n.Notify(hostEvent(KindBan))
	}
	st := n.Stats()
	if st.Script.Dropped != 3 || st.Script.Queued != 2 || st.Webhook.Dropped != 3 {
		t.Fatalf("stats = %+v, want 3 dropped per sink", st)
	}
	var b bytes.Buffer
	n.Metrics().WritePrometheus(&b)
	for _, line := range []string{
		`flowshield_notify_dropped_total{sink="script"} 3`,
		`flowshield_notify_dropped_total{sink="webhook"} 3`,
		`flowshield_notify_queue_length{sink="script"} 2`,
		`flowshield_notify_dropped_events_total{sink="script",event="ban"} 3`,
		`flowshield_notify_dropped_events_total{sink="script",event="unban"} 0`,
		`flowshield_notify_superseded_bans_total{sink="webhook"} 0`,
	} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, b.String())
		}
	}
	n.Stop() // never started: what was queued is dropped
	if st := n.Stats().Script; st.Dropped != 5 {
		t.Errorf("after Stop: %+v", st)
	}
	if err := n.Start(t.Context()); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestErrorsDoNotLeakWebhookSecret(t *testing.T) {
	p := &httpPoster{url: "http://127.0.0.1:1/services/T0/B0/SECRET", client: &http.Client{}, cfg: &Configuration{HTTPTimeout: time.Second}}
	err := p.post(t.Context(), []byte("{}"))
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %v", err)
	}
}
