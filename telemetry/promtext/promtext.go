// Package promtext completes the Prometheus text that
// github.com/VictoriaMetrics/metrics writes, so that /metrics and the
// metrics push pass `promtool check metrics` clean.
//
// With metadata on, the library writes `# HELP name` with no text, and a
// few of its own Go and process series break the format's conventions
// (counters without _total, counters typed gauge). The library has no
// place for help texts, so they are kept here, by family name: the
// package that names a series describes it (Describe, from its init), and
// WritePrometheus fills the library's empty HELP lines from them as the
// text streams by. A family nobody described keeps its empty HELP, which
// promtool reports: the appliance's promtool test catches it.
package promtext

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

var (
	mu   sync.RWMutex
	help = map[string]string{}
)

// Describe records the help text of metric families, by family name (the
// metric name without labels). Describing a family twice with different
// texts panics: one name, one owner. Packages call it from init.
func Describe(texts map[string]string) {
	mu.Lock()
	defer mu.Unlock()
	for family, text := range texts {
		text = escapeHelp(strings.TrimSpace(text))
		if family == "" || text == "" {
			panic(fmt.Sprintf("promtext: family %q described with no text", family))
		}
		if old, ok := help[family]; ok && old != text {
			panic(fmt.Sprintf("promtext: family %s described twice:\n%s\n%s", family, old, text))
		}
		help[family] = text
	}
}

// Help is the described text of family (escaped for a HELP line), or "".
func Help(family string) string {
	mu.RLock()
	defer mu.RUnlock()
	return help[family]
}

// escapeHelp escapes a HELP text as the text format wants: backslash and
// line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// Quote returns s as a quoted label value: backslash, double quote and line
// feed escaped, invalid UTF-8 replaced. Go's %q is not the text format's
// quoting (it writes \x.. and \u.... escapes the format does not know);
// use Quote for any label value that comes from configuration or the wire.
func Quote(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// WritePrometheus writes every registered metrics set, and the Go runtime
// and process series (file descriptors included), with HELP and TYPE lines for every family. It turns
// on the library's metadata, which is global: everything that writes the
// process's metrics should write them through here.
func WritePrometheus(w io.Writer) error {
	metrics.ExposeMetadata(true)
	f := &filler{out: bufio.NewWriterSize(w, 32<<10)}
	metrics.WritePrometheus(f, true)
	// open file descriptors and their limit: sockets leak there first
	metrics.WriteFDMetrics(f)
	return f.flush()
}

// filler rewrites the library's output line by line: it fills empty HELP
// lines and applies the fixes of the library's own series (libraryFixes).
// Lines may arrive split over several Writes.
type filler struct {
	out     *bufio.Writer
	partial []byte // the start of a line whose end has not come yet
	err     error
}

func (f *filler) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && f.err == nil {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.partial = append(f.partial, p...)
			break
		}
		if len(f.partial) > 0 {
			f.partial = append(f.partial, p[:i+1]...)
			f.line(f.partial)
			f.partial = f.partial[:0]
		} else {
			f.line(p[:i+1])
		}
		p = p[i+1:]
	}
	return n, f.err
}

func (f *filler) flush() error {
	if len(f.partial) > 0 {
		f.line(append(f.partial, '\n'))
		f.partial = f.partial[:0]
	}
	if f.err != nil {
		return f.err
	}
	return f.out.Flush()
}

// line handles one line, its '\n' included.
func (f *filler) line(l []byte) {
	var err error
	switch {
	case bytes.HasPrefix(l, []byte("# HELP ")):
		family, text, _ := bytes.Cut(bytes.TrimSuffix(l[len("# HELP "):], []byte("\n")), []byte(" "))
		name := fixedName(family)
		if len(bytes.TrimSpace(text)) == 0 {
			text = []byte(Help(name))
		}
		_, err = fmt.Fprintf(f.out, "# HELP %s %s\n", name, text)
	case bytes.HasPrefix(l, []byte("# TYPE ")):
		family, typ, _ := bytes.Cut(bytes.TrimSuffix(l[len("# TYPE "):], []byte("\n")), []byte(" "))
		name := fixedName(family)
		if fix, ok := libraryFixes[string(family)]; ok && fix.typ != "" {
			typ = []byte(fix.typ)
		}
		_, err = fmt.Fprintf(f.out, "# TYPE %s %s\n", name, typ)
	default:
		end := bytes.IndexAny(l, "{ ")
		if end > 0 {
			if fix, ok := libraryFixes[string(l[:end])]; ok && fix.name != "" {
				if _, err = f.out.WriteString(fix.name); err == nil {
					_, err = f.out.Write(l[end:])
				}
				break
			}
		}
		_, err = f.out.Write(l)
	}
	if err != nil && f.err == nil {
		f.err = err
	}
}

// fixedName is the family's name as written (libraryFixes' renames).
func fixedName(family []byte) string {
	if fix, ok := libraryFixes[string(family)]; ok && fix.name != "" {
		return fix.name
	}
	return string(family)
}
