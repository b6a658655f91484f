// Package dashboards holds flowshield's Grafana dashboards, embedded so
// the binary could serve or print them:
//
//   - flowshield-prometheus.json: the /metrics series (Prometheus or
//     VictoriaMetrics, scraped or pushed with METRICS_PUSH_URL);
//   - flowshield-influxdb-graphite.json: the Graphite output
//     (GRAPHITE_ADDRESS) stored by InfluxDB 1.x with FastNetMon's usual
//     graphite templates (see README.md), so FastNetMon's data works too.
//
// The tests check that every query names a series or path flowshield emits.
package dashboards

import "embed"

// Files are the dashboards' JSON files.
//
//go:embed *.json
var Files embed.FS
