// Package ui is flowshield's web UI: plain HTML, CSS and JavaScript (and
// the vendored uPlot chart library) embedded in the binary, so it works on a
// router without internet access and needs no front-end build. The page at
// "/" polls the JSON API (/api/v1/...) with relative URLs, so it also works
// behind a reverse proxy under a sub-path.
//
// Assets are served under /ui/ with a content-hash ETag and "no-cache"
// (revalidated on every load: a new binary never leaves a stale page).
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/flowshield/flowshield/web"
)

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows only same-origin scripts, styles, images and
// API calls: no CDN, no inline script. uPlot sets element styles from
// script, which needs 'unsafe-inline' for styles only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// asset is one embedded file, read once at start-up.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Assets serves the embedded UI. It is immutable after New.
type Assets struct {
	files map[string]asset // by path below static/, "index.html" for the page
}

// New loads the embedded files and their ETags.
func New() *Assets {
	a := &Assets{files: map[string]asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		a.files[strings.TrimPrefix(p, "static/")] = asset{
			body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a build defect.
		panic("ui: reading embedded assets: " + err.Error())
	}
	return a
}

// ServeHTTP answers "/" (and "/index.html") with the page and "/ui/NAME"
// with an asset; anything else is a JSON 404 like the rest of the server.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := ""
	switch {
	case r.URL.Path == "/" || r.URL.Path == "/index.html":
		name = "index.html"
	case strings.HasPrefix(r.URL.Path, "/ui/"):
		name = strings.TrimPrefix(r.URL.Path, "/ui/")
	}
	f, ok := a.files[name]
	if !ok || name == "" || strings.Contains(name, "..") {
		web.WriteError(w, http.StatusNotFound, "no such file: "+r.URL.Path)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	// ServeContent answers If-None-Match with 304 and handles HEAD and ranges.
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}

// Handler is the UI's handler for "/" and "/ui/...".
func Handler() http.Handler { return New() }

// Register adds the UI to the server: the page at "/" and its assets under
// "/ui/", both public (the page holds no data; the API it calls is guarded).
func Register(s *web.Server) {
	h := New()
	s.Handle(http.MethodGet, "/{$}", web.Public, h)
	s.Handle(http.MethodGet, "/ui/", web.Public, h)
}
