package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Canned answers in the daemon's JSON (shapes from appliance/api.go and
// web/status.go).
const (
	statusJSON = `{"version":"1.2.3","commit":"abc","started_at":"2026-01-01T00:00:00Z","uptime":61,
 "totals":{"in":{"pps":123456.7,"bps":987654321,"flows":345.6},"out":{"pps":2000,"bps":16000000,"flows":12}},
 "records":1000,"flow_packets":5000,"flow_bytes":700000,"dropped":0,
 "exporters":[{"address":"192.0.2.1","protocol":"netflow","version":9,"datagrams":10,"records":1000,"flow_packets":5000,"flow_bytes":700000,"garbage":0,"decode_errors":{},"templates":2,"last_seen":"2026-01-01T00:01:00Z","sampling_rate":1,"clock_skew_seconds":0.5}],
 "routers":[{"address":"192.0.2.254:8728","connected":true,"last_error":""}]}`
	hostsInJSON = `[{"ip":"203.0.113.10","direction":"in","group":"web","pps":120000.4,"bps":950000000,"flows":300,"tcp_pps":0,"udp_pps":120000,"icmp_pps":0,"syn_pps":0,"frag_pps":0},
 {"ip":"2001:db8::5","direction":"in","group":null,"pps":1234,"bps":12345678,"flows":7.4,"tcp_pps":1234,"udp_pps":0,"icmp_pps":0,"syn_pps":0,"frag_pps":0}]`
	hostsOutJSON  = `[{"ip":"203.0.113.20","direction":"out","group":null,"pps":2000,"bps":16000000,"flows":12,"tcp_pps":2000,"udp_pps":0,"icmp_pps":0,"syn_pps":0,"frag_pps":0}]`
	attackActive  = `{"id":"20260101T000010.000Z-000002","scope":"host","ip":"203.0.113.10","group":"web","direction":"in","type":"udp_flood","protocol":"udp","started_at":"2026-01-01T00:00:10Z","ended_at":null,"peak_pps":150000,"peak_bps":1200000000,"banned":true}`
	attackEnded   = `{"id":"20251231T230000.000Z-000001","scope":"group","ip":null,"group":"customers","direction":"in","type":"syn_flood","protocol":"tcp","started_at":"2025-12-31T23:00:00Z","ended_at":"2025-12-31T23:05:00Z","peak_pps":50000,"peak_bps":30000000,"banned":false}`
	attacksJSON   = `[` + attackEnded + `,` + attackActive + `]`
	attackDetails = `{"id":"20260101T000010.000Z-000002","scope":"host","ip":"203.0.113.10","group":"web","direction":"in","type":"udp_flood","protocol":"udp","started_at":"2026-01-01T00:00:10Z","ended_at":null,"peak_pps":150000,"peak_bps":1200000000,"banned":true,
 "details":"IP: 203.0.113.10\nAttack type: udp_flood\n","flows":[]}`
	bansJSON   = `[{"prefix":"203.0.113.10/32","direction":"in","actions":["address-list"],"reason":"udp_flood","attack_id":"20260101T000010.000Z-000002","created_at":"2026-01-01T00:00:12Z","expires_at":"2099-01-01T00:10:12Z","routers":[{"address":"192.0.2.254:8728","state":"applied"}]}]`
	banCreated = `{"prefix":"203.0.113.5/32","direction":"in","actions":["address-list"],"reason":"manual","attack_id":"","created_at":"2026-01-01T00:00:12Z","expires_at":"2026-01-01T01:00:12Z","routers":[]}`
)

// seenRequest is what the fake daemon was asked.
type seenRequest struct {
	method, uri, auth, body string
}

// fakeDaemon answers "METHOD /path" (the decoded path) with canned JSON
// and records every request.
type fakeDaemon struct {
	*httptest.Server
	mu      sync.Mutex
	answers map[string]cannedAnswer
	seen    []seenRequest
}

type cannedAnswer struct {
	code int
	body string
}

func newFakeDaemon(t *testing.T, answers map[string]cannedAnswer) *fakeDaemon {
	t.Helper()
	d := &fakeDaemon{answers: answers}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.seen = append(d.seen, seenRequest{method: r.Method, uri: r.RequestURI, auth: r.Header.Get("Authorization"), body: string(body)})
		key := r.Method + " " + r.URL.Path
		if r.URL.Path == "/api/v1/hosts" {
			// Hosts differ by direction only.
			key += "?direction=" + r.URL.Query().Get("direction")
		}
		a, ok := d.answers[key]
		d.mu.Unlock()
		if !ok {
			a = cannedAnswer{404, `{"error":"no such route: ` + r.URL.Path + `"}`}
		}
		w.Header().Set("Content-Type", "application/json")
		if a.code == http.StatusNoContent {
			w.WriteHeader(a.code)
			return
		}
		w.WriteHeader(a.code)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *fakeDaemon) requests() []seenRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]seenRequest(nil), d.seen...)
}

// sawURI reports whether a request with method and exactly this escaped
// URI (path?query) reached the daemon.
func (d *fakeDaemon) sawURI(method, uri string) bool {
	for _, r := range d.requests() {
		if r.method == method && r.uri == uri {
			return true
		}
	}
	return false
}

func standardAnswers() map[string]cannedAnswer {
	return map[string]cannedAnswer{
		"GET /api/v1/status":                              {200, statusJSON},
		"GET /api/v1/hosts?direction=in":                  {200, hostsInJSON},
		"GET /api/v1/hosts?direction=out":                 {200, hostsOutJSON},
		"GET /api/v1/attacks":                             {200, attacksJSON},
		"GET /api/v1/bans":                                {200, bansJSON},
		"GET /api/v1/attacks/20260101T000010.000Z-000002": {200, attackDetails},
		"POST /api/v1/bans":                               {201, banCreated},
		"DELETE /api/v1/bans/203.0.113.10/32":             {204, ""},
	}
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(ctx context.Context, environ map[string]string, args ...string) cliResult {
	var out, errOut bytes.Buffer
	c := cli{environ: environ, stdout: &out, stderr: &errOut}
	code := c.main(ctx, args)
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// apiCase is one CLI invocation against the fake daemon.
type apiCase struct {
	name    string
	args    []string // --url is added
	environ map[string]string
	answers map[string]cannedAnswer // nil: standardAnswers
	code    int
	stdout  []string // substrings
	absent  []string // substrings stdout must not have
	stderr  []string
	request []string // "METHOD URI" that must have been sent
	body    string   // a substring of the last request's body
	auth    string   // Authorization of every request, when set
}

func runAPICases(t *testing.T, tests []apiCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answers := tc.answers
			if answers == nil {
				answers = standardAnswers()
			}
			d := newFakeDaemon(t, answers)
			environ := tc.environ
			if environ == nil {
				environ = map[string]string{}
			}
			args := append(append([]string(nil), tc.args...), "--url", d.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := runCLI(ctx, environ, args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(r.stdout, s) {
					t.Errorf("stdout has %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			for _, want := range tc.request {
				method, uri, _ := strings.Cut(want, " ")
				if !d.sawURI(method, uri) {
					t.Errorf("no request %s; saw %+v", want, d.requests())
				}
			}
			reqs := d.requests()
			if tc.body != "" {
				if len(reqs) == 0 || !strings.Contains(reqs[len(reqs)-1].body, tc.body) {
					t.Errorf("last request body lacks %s; saw %+v", tc.body, reqs)
				}
			}
			if tc.auth != "" {
				for _, rq := range reqs {
					if rq.auth != tc.auth {
						t.Errorf("%s %s sent Authorization %q, want %q", rq.method, rq.uri, rq.auth, tc.auth)
					}
				}
			}
		})
	}
}

func TestDaemonNotReachable(t *testing.T) {
	d := newFakeDaemon(t, nil)
	url := d.URL
	d.Close() // nothing listens there now
	for _, args := range [][]string{{"top", "--once"}, {"bans"}, {"attacks"}, {"bans", "remove", "203.0.113.5"}} {
		r := runCLI(context.Background(), map[string]string{}, append(args, "--url", url)...)
		if r.code != exitFailure || !strings.Contains(r.stderr, "not reachable at "+url) {
			t.Errorf("%v: exit %d, stderr %q; want 1 naming %s", args, r.code, r.stderr, url)
		}
	}
}

func TestTextTable(t *testing.T) {
	tb := newTextTable("HOST", ">PPS", "GROUP")
	tb.add("203.0.113.10", "1,234", "web")
	tb.add("2001:db8::5", "5", "")
	got := tb.lines()
	want := []string{
		"HOST            PPS  GROUP",
		"203.0.113.10  1,234  web",
		"2001:db8::5       5",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, tc := range []struct {
		in   float64
		want string
	}{{0, "0"}, {999.6, "1,000"}, {1234567, "1,234,567"}, {-1234, "-1,234"}, {12, "12"}} {
		if got := fmtCount(tc.in); got != tc.want {
			t.Errorf("fmtCount(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
