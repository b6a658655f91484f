package main

// The client side of the daemon's HTTP API, shared by `top`, `bans` and
// `attacks`, and the plain-text table they print.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowshield/flowshield/api"
)

const (
	defaultDaemonURL = "http://127.0.0.1:8080"
	apiTimeout       = 10 * time.Second
	maxAnswerBytes   = 32 << 20 // a full attack list with samples stays far below
)

// apiFlags are the flags every API command takes.
type apiFlags struct {
	url     string
	token   string
	timeout time.Duration
}

func (c cli) addAPIFlags(fs *flag.FlagSet) *apiFlags {
	f := &apiFlags{}
	fs.StringVar(&f.url, "url", defaultDaemonURL, "the daemon's HTTP address")
	fs.StringVar(&f.token, "token", "", "API token (default: $FLOWSHIELD_API_TOKEN)")
	fs.DurationVar(&f.timeout, "timeout", apiTimeout, "how long to wait for each answer")
	return f
}

// apiClient calls one daemon.
type apiClient struct {
	base  string // scheme://host[:port][/path], no trailing slash
	token string
	http  *http.Client
}

// errUnauthorized marks a 401, so commands can say how to give the token.
var errUnauthorized = errors.New("unauthorized")

// apiError is an answer with an error status.
type apiError struct {
	status  int
	message string // the {"error"} text, or the body's start
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.message)
}

func (e *apiError) Is(target error) bool {
	return target == errUnauthorized && e.status == http.StatusUnauthorized
}

func (c cli) newAPIClient(f *apiFlags) (*apiClient, error) {
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--url %q: expected an address such as %s", f.url, defaultDaemonURL)
	}
	token := f.token
	if token == "" {
		token = c.environ["FLOWSHIELD_API_TOKEN"]
	}
	return &apiClient{
		base:  strings.TrimRight(u.String(), "/"),
		token: token,
		http:  &http.Client{Timeout: f.timeout},
	}, nil
}

// call sends one request; path is already escaped ("/api/v1/bans/203.0.113.5%2F32").
// A 2xx answer's JSON goes into out (nil: ignored) and its raw body is
// returned; any other status is an *apiError.
func (a *apiClient) call(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, error) {
	target := a.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("building the request %s %s: %w", method, target, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("flowshield daemon not reachable at %s (is `flowshield run` running there? --url picks another): %w", a.base, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the answer to %s %s: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		var e api.Error
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return raw, &apiError{status: res.StatusCode, message: msg}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decoding the answer to %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

// describeAPIError turns a call's error into the line the user reads.
func (a *apiClient) describe(err error) string {
	switch {
	case errors.Is(err, errUnauthorized):
		hint := "set FLOWSHIELD_API_TOKEN or pass --token"
		if a.token != "" {
			hint = "the token given was refused; check FLOWSHIELD_API_TOKEN or --token"
		}
		return fmt.Sprintf("the daemon at %s needs its API token: %s (%v)", a.base, hint, err)
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return err.Error()
}

// attackTarget is what the attack hit: the host, or the hostgroup.
func attackTarget(a api.Attack) string {
	if a.Scope == "group" || a.IP == nil {
		if a.Group != nil {
			return "group " + *a.Group
		}
		return "group ?"
	}
	return *a.IP
}

// ---- text output ----

// textTable lays out rows in columns; numeric columns align right.
type textTable struct {
	header []string
	right  []bool
	rows   [][]string
}

func newTextTable(cols ...string) *textTable {
	t := &textTable{}
	for _, c := range cols {
		// A leading '>' marks a right-aligned (numeric) column.
		r := strings.HasPrefix(c, ">")
		t.header = append(t.header, strings.TrimPrefix(c, ">"))
		t.right = append(t.right, r)
	}
	return t
}

func (t *textTable) add(cells ...string) { t.rows = append(t.rows, cells) }

// lines returns the table's lines without trailing newlines.
func (t *textTable) lines() []string {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i := range min(len(r), len(width)) {
			width[i] = max(width[i], utf8.RuneCountInString(r[i]))
		}
	}
	out := make([]string, 0, len(t.rows)+1)
	format := func(cells []string) string {
		var b strings.Builder
		for i := range width {
			cell := ""
			if i < len(cells) {
				cell = cells[i]
			}
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if t.right[i] {
				b.WriteString(pad + cell)
			} else if i < len(width)-1 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString(cell)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	out = append(out, format(t.header))
	for _, r := range t.rows {
		out = append(out, format(r))
	}
	return out
}

func (t *textTable) String() string { return strings.Join(t.lines(), "\n") + "\n" }

// fmtCount writes a rate or count rounded, with thousands separators.
func fmtCount(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtMbps writes bits per second as Mbps with two decimals.
func fmtMbps(bps float64) string { return fmt.Sprintf("%.2f", bps/1e6) }

// fmtWhen writes a time in UTC, as the API gives it, to the second.
func fmtWhen(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// fmtLeft writes a remaining duration rounded to the second.
func fmtLeft(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	}
	return d.Round(time.Second).String()
}

// parseInterleaved parses fs's flags wherever they stand among the
// positional arguments (`bans add 203.0.113.5 --ttl 1h` and `bans --ttl 1h
// add 203.0.113.5` alike) and returns the positionals. ok false carries
// the exit code.
func (c cli) parseInterleaved(fs *flag.FlagSet, args []string, synopsis string) ([]string, int, bool) {
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: flowshield %s\n", synopsis)
		fs.PrintDefaults()
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitUsage, false
		}
		if fs.NArg() == 0 {
			return positional, exitOK, true
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:] // each round takes at least one argument
	}
}
