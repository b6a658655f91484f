package ui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/flowshield/flowshield/web"
)

func newServer(t *testing.T, token string) *httptest.Server {
	t.Helper()
	s := web.New(web.Configuration{Token: token}, web.Dependencies{})
	Register(s)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func TestRoutes(t *testing.T) {
	// A token is configured: the UI must still load without it (the page
	// asks for the token when the API answers 401).
	ts := newServer(t, "s3cret")
	tests := []struct {
		name, method, path string
		header             map[string]string
		code               int
		contentType        string
		body               string // a substring of the body
	}{
		{name: "page", method: "GET", path: "/", code: 200, contentType: "text/html", body: `data-testid="app"`},
		{name: "page HEAD", method: "HEAD", path: "/", code: 200, contentType: "text/html"},
		{name: "script", method: "GET", path: "/ui/app.js", code: 200, contentType: "javascript", body: "syncChildren"},
		{name: "style", method: "GET", path: "/ui/app.css", code: 200, contentType: "text/css", body: "--in:"},
		{name: "uPlot", method: "GET", path: "/ui/vendor/uPlot.iife.min.js", code: 200, contentType: "javascript", body: "uPlot"},
		{name: "uPlot css", method: "GET", path: "/ui/vendor/uPlot.min.css", code: 200, contentType: "text/css", body: ".uplot"},
		{name: "favicon", method: "GET", path: "/ui/favicon.svg", code: 200, contentType: "image/svg+xml", body: "<svg"},
		{name: "missing asset", method: "GET", path: "/ui/nope.js", code: 404, contentType: "application/json", body: `"error"`},
		{name: "ui dir", method: "GET", path: "/ui/", code: 404, contentType: "application/json", body: `"error"`},
		{name: "traversal", method: "GET", path: "/ui/../ui.go", code: 404},
		{name: "post page", method: "POST", path: "/", code: 405, contentType: "application/json", body: "not allowed"},
		{name: "other path", method: "GET", path: "/index.php", code: 404, contentType: "application/json"},
		{name: "api still guarded", method: "GET", path: "/api/v1/status", code: 401, contentType: "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.code {
				t.Fatalf("status %d, want %d; body %q", res.StatusCode, tc.code, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want it to contain %q", ct, tc.contentType)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("body does not contain %q: %.200q", tc.body, body)
			}
			if tc.code == 200 {
				if res.Header.Get("ETag") == "" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
					t.Errorf("missing ETag or CSP: %v", res.Header)
				}
			}
		})
	}
}

func TestConditionalGet(t *testing.T) {
	ts := newServer(t, "")
	res, err := http.Get(ts.URL + "/ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	etag := res.Header.Get("ETag")
	req, _ := http.NewRequest("GET", ts.URL+"/ui/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %s: status %d, want 304", etag, res.StatusCode)
	}
}

// TestSelfContained keeps the page working without internet: every asset
// the page names is embedded, nothing is loaded from another host, and no
// data reaches the DOM as HTML.
func TestSelfContained(t *testing.T) {
	a := New()
	page := string(a.files["index.html"].body)
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("found only %d asset references in index.html", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		switch {
		case strings.Contains(ref, "//"):
			t.Errorf("index.html loads %q from another host", ref)
		case strings.HasPrefix(ref, "ui/"):
			if _, ok := a.files[strings.TrimPrefix(ref, "ui/")]; !ok {
				t.Errorf("index.html names %q, which is not embedded", ref)
			}
		}
	}
	for name, f := range a.files {
		if !strings.HasSuffix(name, ".js") && !strings.HasSuffix(name, ".html") && !strings.HasSuffix(name, ".css") {
			continue
		}
		if strings.HasPrefix(name, "vendor/") {
			continue
		}
		body := string(f.body)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "http://", "https://", "@import", "fonts.googleapis"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}
