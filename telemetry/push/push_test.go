package push

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// importServer answers like VictoriaMetrics' /api/v1/import/prometheus
// after failing the first fail requests with status failCode; it keeps
// what it received.
type importServer struct {
	mu       sync.Mutex
	fail     int
	failCode int
	delay    time.Duration
	requests []received
}

type received struct {
	method, path, encoding, contentType string
	body                                string
}

func (s *importServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	s.mu.Lock()
	s.requests = append(s.requests, received{r.Method, r.URL.Path, r.Header.Get("Content-Encoding"), r.Header.Get("Content-Type"), string(b)})
	n, fail, code, delay := len(s.requests), s.fail, s.failCode, s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if n <= fail {
		http.Error(w, "not now", code)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *importServer) got() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.requests...)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(url string) Configuration {
	c := DefaultConfiguration()
	c.URL = url
	c.BackoffMin, c.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	c.Timeout = 10 * time.Second // generous: the test machine may be loaded
	return c
}

func counter(t *testing.T, set *metrics.Set, name string) string {
	t.Helper()
	var b bytes.Buffer
	set.WritePrometheus(&b)
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("%s not in\n%s", name, b.String())
	return ""
}

func TestPush(t *testing.T) {
	const text = "flowshield_test_total 42\nflowshield_host_pps{ip=\"203.0.113.5\",direction=\"in\"} 1500\n"
	tests := []struct {
		name                         string
		fail, failCode               int
		gzip                         bool
		retries                      int
		wantErr                      bool
		wantRequests                 int
		wantFailures, wantRetries    string
		wantAttemptErrors, wantBytes string
	}{
		{"ok at once, gzip", 0, 0, true, 3, false, 1, "0", "0", "0", ""},
		{"ok at once, plain", 0, 0, false, 3, false, 1, "0", "0", "0", "83"},
		{"fails twice then ok", 2, http.StatusServiceUnavailable, true, 3, false, 3, "0", "2", "2", ""},
		{"429 is retried", 1, http.StatusTooManyRequests, false, 3, false, 2, "0", "1", "1", "83"},
		{"fails past the retries", 10, http.StatusInternalServerError, true, 2, true, 3, "1", "2", "3", "0"},
		{"400 is not retried", 10, http.StatusBadRequest, false, 3, true, 1, "1", "0", "1", "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := &importServer{fail: tc.fail, failCode: tc.failCode}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			cfg := testConfig(ts.URL + "/api/v1/import/prometheus")
			cfg.Gzip, cfg.Retries = tc.gzip, tc.retries
			p := New(cfg, func(w io.Writer) { io.WriteString(w, text) }, quiet())
			err := p.Push(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			reqs := srv.got()
			if len(reqs) != tc.wantRequests {
				t.Fatalf("%d requests, want %d", len(reqs), tc.wantRequests)
			}
			for _, r := range reqs {
				if r.method != http.MethodPost || r.path != "/api/v1/import/prometheus" || r.body != text {
					t.Errorf("got %s %s body %q", r.method, r.path, r.body)
				}
				if (r.encoding == "gzip") != tc.gzip || !strings.HasPrefix(r.contentType, "text/plain") {
					t.Errorf("encoding %q, content type %q", r.encoding, r.contentType)
				}
			}
			set := p.Metrics()
			if got := counter(t, set, "flowshield_metrics_push_total"); got != "1" {
				t.Errorf("pushes %s, want 1", got)
			}
			for name, want := range map[string]string{
				"flowshield_metrics_push_failures_total":       tc.wantFailures,
				"flowshield_metrics_push_retries_total":        tc.wantRetries,
				"flowshield_metrics_push_attempt_errors_total": tc.wantAttemptErrors,
				"flowshield_metrics_push_bytes_total":          tc.wantBytes,
			} {
				if got := counter(t, set, name); want != "" && got != want {
					t.Errorf("%s = %s, want %s", name, got, want)
				}
			}
			if ts := counter(t, set, "flowshield_metrics_push_last_success_timestamp_seconds"); (ts == "0") != tc.wantErr {
				t.Errorf("last success %s with error %v", ts, tc.wantErr)
			}
		})
	}
}

func TestPushTimeout(t *testing.T) {
	srv := &importServer{delay: 5 * time.Second}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cfg := testConfig(ts.URL)
	cfg.Timeout, cfg.Retries = 50*time.Millisecond, 1
	p := New(cfg, func(w io.Writer) { io.WriteString(w, "x 1\n") }, quiet())
	start := time.Now()
	err := p.Push(context.Background())
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %s: want a timeout well before the server answers", err, time.Since(start))
	}
	if got := counter(t, p.Metrics(), "flowshield_metrics_push_attempts_total"); got != "2" {
		t.Errorf("%s attempts, want 2", got)
	}
}

func TestStartPushesEveryInterval(t *testing.T) {
	srv := &importServer{fail: 1, failCode: http.StatusBadGateway}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cfg := testConfig(ts.URL)
	cfg.Interval = 20 * time.Millisecond
	var mu sync.Mutex
	n := 0
	p := New(cfg, func(w io.Writer) {
		mu.Lock()
		n++
		mu.Unlock()
		io.WriteString(w, "x 1\n")
	}, quiet())
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(srv.got()) < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	p.Stop()
	p.Stop() // twice is fine
	if got := len(srv.got()); got < 4 {
		t.Fatalf("%d requests in 5 s at a 20 ms interval", got)
	}
	after := len(srv.got())
	time.Sleep(60 * time.Millisecond)
	if len(srv.got()) != after {
		t.Error("pushes went on after Stop")
	}
	// one 502 at first; on a loaded machine attempts may also time out
	if got := counter(t, p.Metrics(), "flowshield_metrics_push_attempt_errors_total"); got == "0" {
		t.Errorf("attempt errors %s, want at least the 502", got)
	}
}

func TestStartRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Configuration)
	}{
		{"no URL", func(c *Configuration) { c.URL = "" }},
		{"not http", func(c *Configuration) { c.URL = "ftp://example.org/x" }},
		{"no host", func(c *Configuration) { c.URL = "http:///x" }},
		{"zero interval", func(c *Configuration) { c.Interval = 0 }},
		{"negative retries", func(c *Configuration) { c.Retries = -1 }},
		{"backoff upside down", func(c *Configuration) { c.BackoffMin, c.BackoffMax = time.Second, time.Millisecond }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:1/api/v1/import/prometheus")
			tc.mod(&cfg)
			p := New(cfg, nil, quiet())
			if err := p.Start(context.Background()); err == nil {
				p.Stop()
				t.Fatal("started")
			}
		})
	}
}

func TestLogsRedactPassword(t *testing.T) {
	var logs bytes.Buffer
	cfg := testConfig("http://user:s3cret@127.0.0.1:1/api/v1/import/prometheus")
	cfg.Retries = 0
	p := New(cfg, func(w io.Writer) { io.WriteString(w, "x 1\n") }, slog.New(slog.NewTextHandler(&logs, nil)))
	err := p.Push(context.Background())
	if err == nil {
		t.Fatal("push to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// promLine is one sample of the Prometheus text format: a name, optional
// labels, a value (VictoriaMetrics' /api/v1/import/prometheus takes these
// and # comments).
var promLine = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:, ?[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (?:-?[0-9][0-9.eE+-]*|NaN|[+-]Inf)$`)

// TestPushRegistryAsWired pushes the way the daemon wires the pusher (the
// whole registry, the pusher's own set registered in it, the password in
// the URL) and checks what the import endpoint gets and what /metrics
// (metrics.WritePrometheus, as web serves it) shows of the pushes.
func TestPushRegistryAsWired(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	fail := true
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(zr)
		mu.Lock()
		defer mu.Unlock()
		got, bodies = append(got, r), append(bodies, string(b))
		if fail {
			http.Error(w, "bad request", http.StatusBadRequest)
		}
	}))
	defer ts.Close()

	app := metrics.NewSet()
	app.NewCounter(`flowshield_test_wired_total{router="r1"}`).Add(7)
	metrics.RegisterSet(app)
	defer metrics.UnregisterSet(app, true)
	cfg := testConfig(strings.Replace(ts.URL, "http://", "http://vm:s3cret@", 1) + "/api/v1/import/prometheus")
	p := New(cfg, nil, quiet())
	metrics.RegisterSet(p.Metrics())
	defer metrics.UnregisterSet(p.Metrics(), true)

	if err := p.Push(context.Background()); err == nil {
		t.Fatal("a push answered 400 succeeded")
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := p.Push(context.Background()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2 (a 400 is not retried)", len(got))
	}
	r, body := got[1], bodies[1]
	user, pass, ok := r.BasicAuth()
	if r.Method != http.MethodPost || r.URL.Path != "/api/v1/import/prometheus" || !ok || user != "vm" || pass != "s3cret" {
		t.Errorf("%s %s, basic auth %v %q %q", r.Method, r.URL.Path, ok, user, pass)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") || r.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("content type %q, encoding %q", ct, r.Header.Get("Content-Encoding"))
	}
	samples := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(body, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !promLine.MatchString(line) {
			t.Errorf("not a Prometheus text line: %q", line)
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		samples[line[:i]] = line[i+1:]
	}
	// The registry, the process metrics, and the pusher's own counters as
	// they were when the second push rendered its body: one push before
	// it, failed.
	for series, want := range map[string]string{
		`flowshield_test_wired_total{router="r1"}`: "7",
		"flowshield_metrics_push_total":            "1",
		"flowshield_metrics_push_failures_total":   "1",
	} {
		if samples[series] != want {
			t.Errorf("pushed %s = %q, want %s", series, samples[series], want)
		}
	}
	if _, ok := samples["go_goroutines"]; !ok {
		t.Error("the process metrics (go_goroutines) were not pushed")
	}

	// What /metrics shows after the two pushes.
	var scrape bytes.Buffer
	metrics.WritePrometheus(&scrape, true)
	for _, want := range []string{"flowshield_metrics_push_total 2\n", "flowshield_metrics_push_failures_total 1\n", "flowshield_metrics_push_attempt_errors_total 1\n"} {
		if !strings.Contains(scrape.String(), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestSeriesNames(t *testing.T) {
	want := []string{"flowshield_metrics_push_attempt_errors_total", "flowshield_metrics_push_attempts_total",
		"flowshield_metrics_push_bytes_total", "flowshield_metrics_push_failures_total",
		"flowshield_metrics_push_last_success_timestamp_seconds", "flowshield_metrics_push_retries_total",
		"flowshield_metrics_push_total"}
	if got := slices.Sorted(slices.Values(SeriesNames())); !slices.Equal(got, want) {
		t.Errorf("SeriesNames() = %v, want %v", got, want)
	}
}
