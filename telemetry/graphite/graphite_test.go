package graphite

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/telemetry/hostmetrics"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixedSnapshots hands out one snapshot, stamped with the current call's time.
type fixedSnapshots struct {
	mu   sync.Mutex
	snap hostmetrics.Snapshot
	n    int
}

func (f *fixedSnapshots) Sample() *hostmetrics.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.At = t0.Add(time.Duration(f.n) * time.Second)
	f.n++
	return &s
}

func host(ip string, d detect.Direction, pps, bps, flows float64) detect.HostRates {
	return detect.HostRates{IP: netip.MustParseAddr(ip), Direction: d, Rates: detect.Rates{PPS: pps, BPS: bps, Flows: flows}}
}

// testSnapshot has what FastNetMon's capture has (IPv4 hosts both ways, a
// network, totals) and an IPv6 host and network, which it has not.
func testSnapshot() hostmetrics.Snapshot {
	var s hostmetrics.Snapshot
	s.At = t0
	s.In = detect.Rates{PPS: 1500.4, BPS: 12e6, Flows: 30}
	s.Out = detect.Rates{PPS: 700, BPS: 5.6e6, Flows: 12}
	s.Top.Hosts[detect.In] = []detect.HostRates{
		host("203.0.113.10", detect.In, 1000, 8e6, 20),
		host("203.0.113.11", detect.In, 500.4, 4e6, 0), // no flows: left out, as FastNetMon does
		host("2001:db8::5", detect.In, 3, 2400, 1),
	}
	s.Top.Hosts[detect.Out] = []detect.HostRates{host("203.0.113.12", detect.Out, 700, 5.6e6, 12)}
	s.Networks = []detect.NetworkRates{
		{Prefix: netip.MustParsePrefix("203.0.113.0/24"), In: detect.Rates{PPS: 1500, BPS: 12e6}, Out: detect.Rates{PPS: 700, BPS: 5.6e6}},
		{Prefix: netip.MustParsePrefix("2001:db8::/48")},
	}
	return s
}

func TestAppendLines(t *testing.T) {
	snap := testSnapshot()
	got := string(AppendLines(nil, "flowshield", &snap, 1795572859))
	want := `flowshield.total.incoming.flows 30 1795572859
flowshield.total.incoming.pps 1500 1795572859
flowshield.total.incoming.bps 12000000 1795572859
flowshield.total.outgoing.flows 12 1795572859
flowshield.total.outgoing.pps 700 1795572859
flowshield.total.outgoing.bps 5600000 1795572859
flowshield.networks.203_0_113_0_24.incoming.pps 1500 1795572859
flowshield.networks.203_0_113_0_24.outgoing.pps 700 1795572859
flowshield.networks.203_0_113_0_24.incoming.bps 12000000 1795572859
flowshield.networks.203_0_113_0_24.outgoing.bps 5600000 1795572859
flowshield.networks.2001_db8___48.incoming.pps 0 1795572859
flowshield.networks.2001_db8___48.outgoing.pps 0 1795572859
flowshield.networks.2001_db8___48.incoming.bps 0 1795572859
flowshield.networks.2001_db8___48.outgoing.bps 0 1795572859
flowshield.hosts.203_0_113_10.incoming.average.pps 1000 1795572859
flowshield.hosts.203_0_113_10.incoming.average.bps 8000000 1795572859
flowshield.hosts.203_0_113_10.incoming.average.flows 20 1795572859
flowshield.hosts.203_0_113_11.incoming.average.pps 500 1795572859
flowshield.hosts.203_0_113_11.incoming.average.bps 4000000 1795572859
flowshield.hosts.2001_db8__5.incoming.average.pps 3 1795572859
flowshield.hosts.2001_db8__5.incoming.average.bps 2400 1795572859
flowshield.hosts.2001_db8__5.incoming.average.flows 1 1795572859
flowshield.hosts.203_0_113_12.outgoing.average.pps 700 1795572859
flowshield.hosts.203_0_113_12.outgoing.average.bps 5600000 1795572859
flowshield.hosts.203_0_113_12.outgoing.average.flows 12 1795572859
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(got, "\n"), "\n") {
		if _, err := ParseLine(line); err != nil {
			t.Errorf("our own line does not parse: %v", err)
		}
	}
}

func TestWhole(t *testing.T) {
	tests := []struct {
		in   float64
		want uint64
	}{{0, 0}, {-3, 0}, {0.4, 0}, {0.5, 1}, {1e30, 18446744073709551615}}
	for _, tc := range tests {
		if got := whole(tc.in); got != tc.want {
			t.Errorf("whole(%g) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		line    string
		want    Line
		wantErr bool
	}{
		{"fastnetmon.total.incoming.pps 0 1795572859", Line{"fastnetmon.total.incoming.pps", 0, 1795572859}, false},
		{"a.b 1.5e3 7", Line{"a.b", 1500, 7}, false},
		{"a.b 1", Line{}, true},
		{"a.b x 1", Line{}, true},
		{"a.b 1 x", Line{}, true},
		{"a..b 1 1", Line{}, true},
		{".a 1 1", Line{}, true},
		{"a. 1 1", Line{}, true},
		{"a\x00b 1 1", Line{}, true},
		{"", Line{}, true},
	}
	for _, tc := range tests {
		got, err := ParseLine(tc.line)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v, error %v", tc.line, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{"fastnetmon.total.incoming.pps 0 1795572859", "a.b 1.5e3 7", "a..b 1 1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLine(s)
		if err != nil {
			return
		}
		// what parses survives being written and parsed again
		again, err := ParseLine(l.Path + " " + strings.Fields(s)[1] + " " + strings.Fields(s)[2])
		if err != nil || again != l && !(l.Value != l.Value) {
			t.Fatalf("%q: %+v then %+v, %v", s, l, again, err)
		}
	})
}

// receiver is a local Graphite plaintext listener keeping every line.
type receiver struct {
	ln    net.Listener
	mu    sync.Mutex
	lines []string
	conns []net.Conn
	wg    sync.WaitGroup
}

func listen(t *testing.T, addr string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					r.mu.Lock()
					r.lines = append(r.lines, sc.Text())
					r.mu.Unlock()
				}
			}()
		}
	}()
	return r
}

// close stops accepting and drops every connection.
func (r *receiver) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

// waitLines waits until the receiver has at least n lines.
func (r *receiver) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.got(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("receiver has %d lines after 5 s, want %d", len(r.got()), n)
	return nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(addr string) Configuration {
	c := DefaultConfiguration()
	c.Address = addr
	c.ReconnectMin, c.ReconnectMax = time.Millisecond, time.Millisecond
	return c
}

var (
	ipv4Part = regexp.MustCompile(`\.\d+_\d+_\d+_\d+(_\d+)?\.`)
	ipv6Part = regexp.MustCompile(`\.[0-9a-f]*_[0-9a-f_]*\.`)
)

// pathKinds reads plaintext lines and returns their paths with the prefix
// replaced by PREFIX and addresses by IP (a network by NET), as a set.
func pathKinds(t *testing.T, lines []string, prefix string) map[string]bool {
	t.Helper()
	kinds := map[string]bool{}
	for _, line := range lines {
		l, err := ParseLine(line)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		p, ok := strings.CutPrefix(l.Path, prefix+".")
		if !ok {
			t.Fatalf("line %q: not under %q", line, prefix)
		}
		p = "." + p + "."
		p = ipv4Part.ReplaceAllStringFunc(p, func(m string) string {
			if strings.Count(m, "_") == 4 {
				return ".NET."
			}
			return ".IP."
		})
		if strings.HasPrefix(p, ".hosts.") || strings.HasPrefix(p, ".networks.") {
			p = ipv6Part.ReplaceAllString(p, ".IPV6.")
		}
		kinds["PREFIX"+strings.TrimSuffix(p, ".")] = true
	}
	return kinds
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// notSent are FastNetMon's paths flowshield deliberately does not send
// (testdata/README.md says why).
var notSent = []string{
	"PREFIX.total.internal.pps", "PREFIX.total.internal.bps",
	"PREFIX.total.other.pps", "PREFIX.total.other.bps",
}

func fastnetmonKinds(t *testing.T) map[string]bool {
	t.Helper()
	kinds := pathKinds(t, readLines(t, "testdata/fastnetmon-1.2.4.txt"), "fastnetmon")
	for _, p := range notSent {
		if !kinds[p] {
			t.Errorf("%s is listed as not sent but FastNetMon's capture has no such path", p)
		}
		delete(kinds, p)
	}
	if len(kinds) != 16 { // 6 total + 4 networks + 6 hosts
		t.Errorf("FastNetMon's capture has %d kinds of path, want 16: %v", len(kinds), slices.Sorted(mapsKeys(kinds)))
	}
	return kinds
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func diffKinds(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	for k := range want {
		if !got[k] {
			t.Errorf("%s: FastNetMon sends %s, we do not", what, k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("%s: we send %s, FastNetMon does not", what, k)
		}
	}
}

// TestPathsMatchFastNetMon: what a local listener receives from the
// exporter has exactly the kinds of path the real FastNetMon 1.2.4 sent
// (testdata/fastnetmon-1.2.4.txt), IPv4 addresses normalised; IPv6, which
// FastNetMon does not send, in the same forms.
func TestPathsMatchFastNetMon(t *testing.T) {
	want := fastnetmonKinds(t)
	r := listen(t, "127.0.0.1:0")
	defer r.close()
	cfg := testConfig(r.ln.Addr().String())
	cfg.Prefix = "fastnetmon"
	src := &fixedSnapshots{snap: testSnapshot()}
	e := New(cfg, src, quiet())
	e.SendOnce(context.Background())
	snap := testSnapshot()
	lines := r.waitLines(t, bytes.Count(AppendLines(nil, "x", &snap, 0), []byte{'\n'}))

	var v4, v6 []string
	for _, l := range lines {
		if strings.Contains(l, "2001_db8") {
			v6 = append(v6, l)
		} else {
			v4 = append(v4, l)
		}
	}
	diffKinds(t, "IPv4", pathKinds(t, v4, "fastnetmon"), want)
	// IPv6 hosts and networks: the IPv4 forms with another address
	got6 := pathKinds(t, v6, "fastnetmon")
	for k := range got6 {
		if !want[strings.NewReplacer(".IPV6.", ".IP.").Replace(k)] && !want[strings.NewReplacer(".IPV6.", ".NET.").Replace(k)] {
			t.Errorf("IPv6 path %s has no IPv4 counterpart in FastNetMon's", k)
		}
	}
	if len(got6) != 3+4 {
		t.Errorf("%d kinds of IPv6 path, want 7: %v", len(got6), got6)
	}
}

// TestRecordedCaptureMatchesFastNetMon: the lines flowshield sent for the
// same traffic (testdata/flowshield.txt, see README) have the same kinds of path.
func TestRecordedCaptureMatchesFastNetMon(t *testing.T) {
	diffKinds(t, "recorded", pathKinds(t, readLines(t, "testdata/flowshield.txt"), "flowshield"), fastnetmonKinds(t))
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

func TestReconnect(t *testing.T) {
	r := listen(t, "127.0.0.1:0")
	addr := r.ln.Addr().String()
	src := &fixedSnapshots{}
	src.snap.Top.Hosts[detect.In] = []detect.HostRates{host("203.0.113.10", detect.In, 1, 1, 1)}
	e := New(testConfig(addr), src, quiet())
	ctx := context.Background()
	per := 9 // lines per batch: 6 totals + 3 for the host

	e.SendOnce(ctx)
	r.waitLines(t, per)
	r.close()

	// The receiver is gone: writes fail (perhaps only the second one, the
	// kernel may take the first) and dials are refused; lines stay queued.
	for range 3 {
		e.SendOnce(ctx)
	}
	if got := counter(t, e.Metrics(), "flowshield_graphite_write_errors_total"); got != "1" {
		t.Errorf("write errors %s, want 1", got)
	}
	if got := counter(t, e.Metrics(), "flowshield_graphite_connect_errors_total"); got == "0" {
		t.Error("no connect error counted while the receiver was away")
	}

	r2 := listen(t, addr)
	defer r2.close()
	time.Sleep(2 * time.Millisecond) // past the reconnect backoff
	e.SendOnce(ctx)
	lines := r2.waitLines(t, 2*per)
	stamps := map[string]bool{}
	for _, l := range lines {
		stamps[strings.Fields(l)[2]] = true
	}
	if len(stamps) < 2 {
		t.Errorf("only %d batches arrived after reconnecting: queued lines lost", len(stamps))
	}
	if got := counter(t, e.Metrics(), "flowshield_graphite_connects_total"); got != "2" {
		t.Errorf("connects %s, want 2", got)
	}
	if got := counter(t, e.Metrics(), "flowshield_graphite_pending_bytes"); got != "0" {
		t.Errorf("pending %s bytes after a good write", got)
	}
	e.Stop() // never started: no-op
}

func TestBufferBounded(t *testing.T) {
	// a port nothing listens on: bind and close
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	src := &fixedSnapshots{snap: testSnapshot()}
	cfg := testConfig(addr)
	snap := testSnapshot()
	batch := AppendLines(nil, cfg.Prefix, &snap, t0.Unix())
	cfg.BufferBytes = 3*len(batch) + len(batch)/2
	e := New(cfg, src, quiet())
	for range 10 {
		e.SendOnce(context.Background())
	}
	e.mu.Lock()
	pending := slices.Clone(e.pending)
	e.mu.Unlock()
	if len(pending) > cfg.BufferBytes || len(pending) < 3*len(batch) {
		t.Errorf("pending %d bytes, want between %d and %d", len(pending), 3*len(batch), cfg.BufferBytes)
	}
	// the newest batch is kept whole, and the buffer starts on a line
	for line := range strings.SplitSeq(strings.TrimSuffix(string(pending), "\n"), "\n") {
		if _, err := ParseLine(line); err != nil {
			t.Fatalf("pending has a broken line: %v", err)
		}
	}
	lastStamp := t0.Add(9 * time.Second).Unix()
	if !strings.HasSuffix(string(pending), " "+itoa(lastStamp)+"\n") {
		t.Error("the newest batch was not kept")
	}
	total := 10 * bytes.Count(batch, []byte{'\n'})
	dropped := counter(t, e.Metrics(), "flowshield_graphite_dropped_lines_total")
	if itoa(int64(total-bytes.Count(pending, []byte{'\n'}))) != dropped {
		t.Errorf("dropped %s lines, want %d", dropped, total-bytes.Count(pending, []byte{'\n'}))
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestStartStop(t *testing.T) {
	r := listen(t, "127.0.0.1:0")
	defer r.close()
	cfg := testConfig(r.ln.Addr().String())
	cfg.Interval = 10 * time.Millisecond
	e := New(cfg, &fixedSnapshots{snap: testSnapshot()}, quiet())
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	r.waitLines(t, 3*25)
	e.Stop()
	e.Stop()
	n := len(r.got())
	time.Sleep(50 * time.Millisecond)
	if len(r.got()) != n {
		t.Error("lines kept coming after Stop")
	}
}

func TestStartRejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Configuration)
	}{
		{"no address", func(c *Configuration) { c.Address = "" }},
		{"no port", func(c *Configuration) { c.Address = "127.0.0.1" }},
		{"empty prefix", func(c *Configuration) { c.Prefix = "" }},
		{"prefix with space", func(c *Configuration) { c.Prefix = "a b" }},
		{"prefix with empty part", func(c *Configuration) { c.Prefix = "a..b" }},
		{"zero interval", func(c *Configuration) { c.Interval = 0 }},
		{"zero buffer", func(c *Configuration) { c.BufferBytes = 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("127.0.0.1:2003")
			tc.mod(&cfg)
			e := New(cfg, &fixedSnapshots{}, quiet())
			if err := e.Start(context.Background()); err == nil {
				e.Stop()
				t.Fatal("started")
			}
		})
	}
}
