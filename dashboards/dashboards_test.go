package dashboards

import (
	"encoding/json"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/telemetry/graphite"
	"github.com/flowshield/flowshield/telemetry/hostmetrics"
	"github.com/flowshield/flowshield/telemetry/push"
)

type dashboard struct {
	Title       string  `json:"title"`
	UID         string  `json:"uid"`
	Description string  `json:"description"`
	Panels      []panel `json:"panels"`
	Templating  struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr  string `json:"expr"`  // Prometheus
		Query string `json:"query"` // InfluxQL
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func load(t *testing.T, name string) dashboard {
	t.Helper()
	b, err := Files.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", name)
	}
	return d
}

// queries returns every panel query (expr or InfluxQL) and every
// templating query, with where they come from.
func queries(t *testing.T, d dashboard) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, tg := range p.Targets {
				q := tg.Expr + tg.Query
				if q == "" {
					t.Errorf("panel %q target %d is empty", p.Title, i)
				}
				out[q] = "panel " + p.Title
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var s string
		if json.Unmarshal(v.Query, &s) != nil {
			var obj struct{ Query string }
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("variable %s: query: %v", v.Name, err)
			}
			s = obj.Query
		}
		out[s] = "variable " + v.Name
	}
	return out
}

func TestEveryFileIsADashboard(t *testing.T) {
	names, err := fs.Glob(Files, "*.json")
	if err != nil || len(names) != 2 {
		t.Fatalf("dashboards: %v, %v", names, err)
	}
	uids := map[string]bool{}
	for _, n := range names {
		d := load(t, n)
		if uids[d.UID] {
			t.Errorf("uid %s twice", d.UID)
		}
		uids[d.UID] = true
	}
}

var (
	seriesName  = regexp.MustCompile(`flowshield_[a-z0-9_]+`)
	notifyLabel = regexp.MustCompile(`label\("([a-z_]+)"\)`)
)

// emittedSeries lists the metric names flowshield writes: the telemetry
// packages' own lists, and the names spelled out in the other packages'
// sources (the notifier builds its names from label("...") calls).
func emittedSeries(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, l := range [][]string{hostmetrics.SeriesNames(), push.SeriesNames(), graphite.SeriesNames()} {
		for _, n := range l {
			names[n] = true
		}
	}
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range seriesName.FindAllString(string(b), -1) {
			names[n] = true
		}
		if filepath.Base(filepath.Dir(path)) == "notify" {
			for _, m := range notifyLabel.FindAllStringSubmatch(string(b), -1) {
				names["flowshield_notify_"+m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestPrometheusQueriesUseEmittedSeries(t *testing.T) {
	d := load(t, "flowshield-prometheus.json")
	emitted := emittedSeries(t)
	// the ones the issue asks for must be on the dashboard
	required := []string{"flowshield_traffic_bps", "flowshield_traffic_pps", "flowshield_host_bps", "flowshield_host_pps",
		"flowshield_attacks_active", "flowshield_bans_active", "flowshield_router_connected",
		"flowshield_collector_dropped_datagrams_total", "flowshield_collector_decode_errors_total", "flowshield_notify_failed_total"}
	used := map[string]bool{}
	for q, where := range queries(t, d) {
		names := seriesName.FindAllString(q, -1)
		if len(names) == 0 {
			t.Errorf("%s: query %q names no flowshield series", where, q)
		}
		for _, n := range names {
			used[n] = true
			if !emitted[n] {
				t.Errorf("%s: %s is not a series flowshield writes (query %q)", where, n, q)
			}
		}
	}
	for _, n := range required {
		if !used[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
}

// influxTemplates are FastNetMon setups' InfluxDB graphite templates, which
// the dashboard's description and README.md give.
var influxTemplates = []string{
	"*.hosts.* app.measurement.cidr.direction.function.resource",
	"*.networks.* app.measurement.cidr.direction.resource",
	"*.total.* app.measurement.direction.resource",
}

type point struct {
	measurement string
	tags        map[string]string
}

// applyTemplates maps a Graphite path as InfluxDB's graphite input does
// with influxTemplates: the first template whose filter matches.
func applyTemplates(path string) (point, bool) {
	parts := strings.Split(path, ".")
	for _, tpl := range influxTemplates {
		filter, pattern, _ := strings.Cut(tpl, " ")
		fp := strings.Split(filter, ".")
		if len(parts) < len(fp) {
			continue
		}
		match := true
		for i, f := range fp {
			if f != "*" && f != parts[i] {
				match = false
			}
		}
		if !match {
			continue
		}
		p := point{tags: map[string]string{}}
		for i, name := range strings.Split(pattern, ".") {
			if i >= len(parts) {
				break
			}
			if name == "measurement" {
				p.measurement = parts[i]
			} else {
				p.tags[name] = parts[i]
			}
		}
		return p, true
	}
	return point{}, false
}

// emittedPoints are flowshield's Graphite lines for a snapshot with every
// kind of series, as InfluxDB stores them.
func emittedPoints(t *testing.T) []point {
	t.Helper()
	var s hostmetrics.Snapshot
	r := detect.Rates{PPS: 10, BPS: 8000, Flows: 2}
	s.In, s.Out = r, r
	s.Top.Hosts[detect.In] = []detect.HostRates{{IP: netip.MustParseAddr("203.0.113.5"), Rates: r}}
	s.Top.Hosts[detect.Out] = []detect.HostRates{{IP: netip.MustParseAddr("203.0.113.6"), Direction: detect.Out, Rates: r}}
	s.Networks = []detect.NetworkRates{{Prefix: netip.MustParsePrefix("203.0.113.0/24"), In: r, Out: r}}
	var pts []point
	for line := range strings.SplitSeq(strings.TrimSuffix(string(graphite.AppendLines(nil, "flowshield", &s, time.Now().Unix())), "\n"), "\n") {
		l, err := graphite.ParseLine(line)
		if err != nil {
			t.Fatal(err)
		}
		p, ok := applyTemplates(l.Path)
		if !ok {
			t.Fatalf("no template maps %s", l.Path)
		}
		pts = append(pts, p)
	}
	return pts
}

var (
	fromClause = regexp.MustCompile(`FROM "([a-z]+)"`)
	tagEquals  = regexp.MustCompile(`"([a-z]+)" = '([^']*)'`)
	tagRegex   = regexp.MustCompile(`"([a-z]+)" =~ /`)
	groupBy    = regexp.MustCompile(`GROUP BY (.*?)(?: fill\(|$)`)
	withKey    = regexp.MustCompile(`WITH KEY = "([a-z]+)"`)
)

func TestInfluxQueriesMatchGraphitePaths(t *testing.T) {
	d := load(t, "flowshield-influxdb-graphite.json")
	for _, tpl := range influxTemplates {
		if !strings.Contains(d.Description, tpl) {
			t.Errorf("the description does not give the template %q", tpl)
		}
	}
	pts := emittedPoints(t)
	for q, where := range queries(t, d) {
		m := fromClause.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("%s: no measurement in %q", where, q)
			continue
		}
		// tags the query needs: compared, regex-matched, grouped by, keyed on
		need := map[string]string{}
		for _, e := range tagEquals.FindAllStringSubmatch(q, -1) {
			need[e[1]] = e[2]
		}
		var keys []string
		for _, e := range tagRegex.FindAllStringSubmatch(q, -1) {
			keys = append(keys, e[1])
		}
		if g := groupBy.FindStringSubmatch(q); g != nil {
			for _, part := range strings.Split(g[1], ",") {
				if part = strings.TrimSpace(part); strings.HasPrefix(part, `"`) {
					keys = append(keys, strings.Trim(part, `"`))
				}
			}
		}
		if k := withKey.FindStringSubmatch(q); k != nil {
			keys = append(keys, k[1])
		}
		found := slices.ContainsFunc(pts, func(p point) bool {
			if p.measurement != m[1] {
				return false
			}
			for k, v := range need {
				if p.tags[k] != v {
					return false
				}
			}
			for _, k := range keys {
				if _, ok := p.tags[k]; !ok {
					return false
				}
			}
			return true
		})
		if !found {
			t.Errorf("%s: no Graphite line of ours gives measurement %s with tags %v and %v (query %q)", where, m[1], need, keys, q)
		}
	}
}
