package promtext

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func init() {
	Describe(map[string]string{
		"promtext_test_described_total": "A counter the tests describe.\nSecond line, with a \\ backslash.",
	})
}

// TestFiller: empty HELP lines are filled from Describe, written texts
// kept, the library's bad names and types fixed on every line of their
// family, everything else passed unchanged, whatever the write sizes.
func TestFiller(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"fills an empty HELP",
			"# HELP promtext_test_described_total\n# TYPE promtext_test_described_total counter\npromtext_test_described_total 3\n",
			"# HELP promtext_test_described_total A counter the tests describe.\\nSecond line, with a \\\\ backslash.\n# TYPE promtext_test_described_total counter\npromtext_test_described_total 3\n"},
		{"keeps a written HELP", "# HELP x_total what x counts\n# TYPE x_total counter\nx_total 1\n",
			"# HELP x_total what x counts\n# TYPE x_total counter\nx_total 1\n"},
		{"leaves the undescribed empty, for promtool to report", "# HELP nobody_described\n# TYPE nobody_described gauge\nnobody_described 1\n",
			"# HELP nobody_described \n# TYPE nobody_described gauge\nnobody_described 1\n"},
		{"renames a library counter", "# HELP go_gc_forced_count\n# TYPE go_gc_forced_count counter\ngo_gc_forced_count 2\n",
			"# HELP go_gc_forced_total Garbage collections forced by the application (runtime.GC) since start.\n# TYPE go_gc_forced_total counter\ngo_gc_forced_total 2\n"},
		{"retypes a library counter", "# HELP process_io_read_bytes_total\n# TYPE process_io_read_bytes_total gauge\nprocess_io_read_bytes_total 10\n",
			"# HELP process_io_read_bytes_total Bytes the process read through read-like system calls.\n# TYPE process_io_read_bytes_total counter\nprocess_io_read_bytes_total 10\n"},
		{"labels and a last line without a line feed", `a{l="go_cpu_count"} 1` + "\n" + `go_cpu_count{x="y"} 2`,
			`a{l="go_cpu_count"} 1` + "\n" + `go_cpus{x="y"} 2` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{1, 2, 7, len(tc.in)} {
				var out bytes.Buffer
				f := &filler{out: bufio.NewWriter(&out)}
				in := []byte(tc.in)
				for len(in) > 0 {
					n := min(size, len(in))
					if _, err := f.Write(in[:n]); err != nil {
						t.Fatal(err)
					}
					in = in[n:]
				}
				if err := f.flush(); err != nil {
					t.Fatal(err)
				}
				if out.String() != tc.want {
					t.Errorf("writes of %d bytes:\n got %q\nwant %q", size, out.String(), tc.want)
				}
			}
		})
	}
}

// TestWritePrometheus: the process's real output (the library's Go and
// process series and a registered set) has a HELP text and a TYPE for
// every family, once each, and no sample without them; counters, and only
// counters, end in _total.
func TestWritePrometheus(t *testing.T) {
	set := metrics.NewSet()
	set.NewCounter(`promtext_test_described_total{kind="a"}`).Inc()
	set.NewCounter(`promtext_test_described_total{kind="b"}`).Add(2)
	metrics.RegisterSet(set)
	t.Cleanup(func() { metrics.UnregisterSet(set, true) })

	var b bytes.Buffer
	if err := WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	helps, types := map[string]string{}, map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(b.String(), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "# HELP "):
			family, text, _ := strings.Cut(line[len("# HELP "):], " ")
			if _, dup := helps[family]; dup {
				t.Errorf("second HELP of %s", family)
			}
			helps[family] = text
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s has no help text", family)
			}
		case strings.HasPrefix(line, "# TYPE "):
			family, typ, _ := strings.Cut(line[len("# TYPE "):], " ")
			if _, dup := types[family]; dup {
				t.Errorf("second TYPE of %s", family)
			}
			types[family] = typ
			if _, ok := helps[family]; !ok {
				t.Errorf("TYPE of %s before its HELP", family)
			}
			if total := strings.HasSuffix(family, "_total"); total != (typ == "counter") {
				t.Errorf("%s is a %s", family, typ)
			}
		default:
			name := line[:strings.IndexAny(line, "{ ")]
			family := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if f, ok := strings.CutSuffix(name, suffix); ok && (types[f] == "histogram" || types[f] == "summary") {
					family = f
				}
			}
			if types[family] == "" {
				t.Errorf("sample %q of a family without TYPE", line)
			}
		}
	}
	if got := helps["promtext_test_described_total"]; !strings.HasPrefix(got, "A counter the tests describe.") {
		t.Errorf("the set's family has help %q", got)
	}
	for _, family := range []string{"go_goroutines", "go_gc_forced_total", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if types[family] == "" {
			t.Errorf("no %s", family)
		}
	}
	if types["process_io_read_bytes_total"] != "" && types["process_io_read_bytes_total"] != "counter" {
		t.Errorf("process_io_read_bytes_total is a %s", types["process_io_read_bytes_total"])
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:8728":   `"192.0.2.1:8728"`,
		`router "a"\b`:     `"router \"a\"\\b"`,
		"line\nfeed":       `"line\nfeed"`,
		"caf\u00e9":        "\"caf\u00e9\"",
		"bad \xff utf8":    "\"bad \uFFFD utf8\"",
		"tab\tstays as is": "\"tab\tstays as is\"",
		"":                 `""`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDescribeTwiceDifferentlyPanics(t *testing.T) {
	Describe(map[string]string{"promtext_test_once": "One text."})
	Describe(map[string]string{"promtext_test_once": "One text."}) // the same again is fine
	defer func() {
		if recover() == nil {
			t.Error("a second, different text for one family did not panic")
		}
	}()
	Describe(map[string]string{"promtext_test_once": "Another text."})
}
