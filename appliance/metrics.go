package appliance

import (
	"fmt"
	"io"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/mitigation"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/telemetry/promtext"
	"github.com/flowshield/flowshield/uplink"
)

// help documents the series the daemon writes from its components' Stats
// (promtext fills the HELP lines the metrics library writes empty).
var help = map[string]string{
	"flowshield_attacks_active": "Attacks in progress.",
	"flowshield_bans_active":    "Bans in force (automatic and manual).",
	"flowshield_uptime_seconds": "Time since the daemon started.",

	"flowshield_detect_records_total":             "Flow records detection consumed.",
	"flowshield_detect_accounted_records_total":   "Records counted toward at least one protected host.",
	"flowshield_detect_unprotected_records_total": "Records with neither side in NETWORKS (or a hostgroup).",
	"flowshield_detect_whitelisted_total":         "Host directions of records skipped because the remote side is in WHITELIST_SOURCES.",
	"flowshield_detect_garbage_records_total":     "Records impossible on LINK_MBPS, discarded.",
	"flowshield_detect_empty_records_total":       "Records with no packets and no bytes.",
	"flowshield_detect_clock_fixed_records_total": "Records whose flow times were replaced by their arrival time (the exporter's clock was off).",
	"flowshield_detect_untracked_records_total":   "Record sides whose host found no place in the full host table: counted in the totals, networks and hostgroups, not per host.",
	"flowshield_detect_untracked_pps":             "Packets per second in the totals but in no tracked host's rates (untracked and evicted hosts), by direction, as of the last tick.",
	"flowshield_hosts_tracked":                    "Hosts in the detection table (bounded by its MaxHosts).",
	"flowshield_hosts_evicted_total":              "Tracked hosts evicted, the quietest of a sample and never one under attack, to make room for a new one.",
	"flowshield_hosts_untracked":                  "Estimated distinct addresses the host table did not keep in the last second (evicted, or no place): a HyperLogLog, about 3 % error.",
	"flowshield_attacks_unsampled_total":          "Attacks declared without a flow sample because the most sampled attacks (MaxSampledAttacks) held one.",
	"flowshield_exporters_forgotten_total":        "Exporters forgotten from detection's exporter table (timers, anomaly counters; 1,024 at most) to make room.",
	"flowshield_attacks_ended":                    "Ended attacks kept for the API (24 hours, 1,000 at most).",
	"flowshield_attacks_ended_bytes":              "Estimated memory of the ended attacks kept (summaries, details, flow samples).",
	"flowshield_attacks_ended_forgotten_total":    "Ended attacks forgotten before their 24 hours, to stay within the count or memory bound.",
	"flowshield_attacks_ended_details_shed_total": "Ended attacks that lost their details text to stay within the memory bound (still listed).",

	"flowshield_mitigation_bans_total":                "Bans made, automatic and manual.",
	"flowshield_mitigation_unbans_total":              "Bans lifted: expired, removed by the operator, or dropped.",
	"flowshield_mitigation_skipped_total":             "Attacks not banned: whitelisted, or MAX_BANS reached.",
	"flowshield_mitigation_extensions_total":          "Ban expiries pushed back because the attack went on.",
	"flowshield_mitigation_extensions_by_drops_total": "Ban expiries pushed back because the router's drop counters showed the attack going on.",
	"flowshield_mitigation_events_dropped_total":      "Ban events the notification stage could not take (its channel was full).",
	"flowshield_mitigation_persist_errors_total":      "Failed writes of bans to the store (the bans stay in force).",
	"flowshield_mitigation_decode_errors_total":       "Stored bans that could not be read back at start (dropped).",
	"flowshield_mitigation_router_calls_total":        "Router operations the ban manager ran (list, add, remove, set timeout), all routers.",
	"flowshield_mitigation_router_errors_total":       "Router operations of the ban manager that failed, all routers (retried by reconciliation).",
	"flowshield_mitigation_reconciles_total":          "Full reconciliations of a router's ban objects with the bans.",
	"flowshield_mitigation_objects_added_total":       "Ban objects added to routers.",
	"flowshield_mitigation_objects_removed_total":     "Ban objects removed from routers.",
	"flowshield_mitigation_timeouts_set_total":        "Ban object timeouts set again on routers.",

	"flowshield_mitigation_refused_total":        "Bans refused by a ban safety rule (too-wide, outside-networks, own-address, router-address, ttl), automatic and manual, by rule.",
	"flowshield_mitigation_unsafe_dropped_total": "Bans already in place (stored, adopted, or made unsafe by a router address read later) dropped because a safety rule now refuses them.",

	"flowshield_store_commits_total":               "Write transactions to the bbolt store that changed something.",
	"flowshield_store_write_failures_total":        "Writes to the bbolt store that failed (disk full, read-only or failing); the daemon goes on from memory.",
	"flowshield_store_undecodable_total":           "Stored bans and attacks that could not be read back (skipped).",
	"flowshield_store_history_records":             "Attacks in the stored history (active and ended).",
	"flowshield_store_history_bytes":               "Bytes of the stored attack history (keys and values, details included); bounded at 64 MiB.",
	"flowshield_store_history_details_shed_total":  "Stored attacks that lost their details to the history's byte bound (still listed).",
	"flowshield_store_history_evicted_total":       "Stored attacks removed by a bound of the history (age, count or bytes).",
	"flowshield_store_history_evicted_early_total": "Stored attacks removed within their 24 hours because the count or byte bound won.",

	"flowshield_router_connected":                  "1 while the RouterOS API connection to the router is up, else 0.",
	"flowshield_router_calls_total":                "RouterOS API commands sent to the router.",
	"flowshield_router_call_errors_total":          "RouterOS API commands that failed, by kind: trap (the router refused it), timeout, connection (lost; it is made again).",
	"flowshield_router_dials_total":                "Connection attempts to the router's API.",
	"flowshield_router_dial_failures_total":        "Connection attempts to the router's API that failed (connect, TLS or login).",
	"flowshield_router_logins_total":               "Logins to the router's API: the first connection and every reconnection.",
	"flowshield_router_rejected_replies_total":     "Router replies refused for their size or form; each closed the connection.",
	"flowshield_router_unparsed_objects_total":     "flowshield objects on the router that could not be read.",
	"flowshield_router_unreadable_addresses_total": "Router addresses (/ip/address, /ipv6/address) that could not be read for the ban safety rules.",

	"flowshield_uplink_polls_total":             "Polls of the routers' uplink interface counters (interface list flowshield-uplinks).",
	"flowshield_uplink_poll_failures_total":     "Failed reads of one router's uplink counters.",
	"flowshield_uplink_resets_total":            "Uplink interface counters that went down (router reboot, reset-counters): no rate for that poll.",
	"flowshield_uplink_wraps_total":             "Uplink interface counters that wrapped (32- or 64-bit).",
	"flowshield_uplink_stale_total":             "Times the uplink rates were forgotten because no router answered for several polls.",
	"flowshield_uplink_saturated":               "1 while the uplink receives 90 % of LINK_MBPS or more, else 0.",
	"flowshield_uplink_saturated_seconds_total": "Time the uplink was saturated.",
	"flowshield_uplink_saturated_events_total":  "Times the uplink became saturated.",
	"flowshield_uplink_flow_blind":              "1 while the uplink interfaces receive far more packets than the flows account for, else 0.",
	"flowshield_uplink_flow_blind_events_total": "Times the flow-blind alarm was raised.",
	"flowshield_uplink_rx_bps":                  "Bits per second an uplink interface receives (layer 2), by router and interface, as of the last poll.",
	"flowshield_uplink_rx_pps":                  "Packets per second an uplink interface receives, by router and interface, as of the last poll.",

	"flowshield_exporter_active_timeout_seconds": "The exporter's active timeout as detection uses it: how often a long flow is reported.",
	"flowshield_exporter_inactive_lag_seconds":   "Median time from a flow's last packet to its record's arrival, learned per exporter.",
	"flowshield_exporter_lag_shift_seconds":      "How far detection moves the exporter's late records forward.",
	"flowshield_exporter_attack_hold_seconds":    "How long detection holds an attack after its last sign, for the exporter's timers.",
}

func init() { promtext.Describe(help) }

// registerMetrics adds the daemon's own series to its metrics set. The
// detector's, the ban manager's and the routers' counters are read from
// their Stats once per scrape.
func (a *Appliance) registerMetrics() {
	m := a.metrics
	m.NewGauge(`flowshield_attacks_active`, func() float64 { return float64(len(a.engine.Attacks(true))) })
	m.NewGauge(`flowshield_bans_active`, func() float64 { return float64(len(a.mitigator.Bans())) })
	m.NewGauge(`flowshield_uptime_seconds`, func() float64 { return time.Since(a.startedAt).Seconds() })
	m.RegisterMetricsWriter(a.writeDetectMetrics)
	m.RegisterMetricsWriter(a.writeMitigationMetrics)
	m.RegisterMetricsWriter(a.writeStoreMetrics)
	m.RegisterMetricsWriter(a.writeRouterMetrics)
	m.RegisterMetricsWriter(a.writeExporterTimers)
	m.RegisterMetricsWriter(a.writeUplinkMetrics)
}

func (a *Appliance) writeDetectMetrics(w io.Writer) {
	s := a.engine.Stats()
	writeCounters(w, []counter{
		{"flowshield_detect_records_total", s.Records},
		{"flowshield_detect_accounted_records_total", s.Accounted},
		{"flowshield_detect_unprotected_records_total", s.Unprotected},
		{"flowshield_detect_whitelisted_total", s.Whitelisted},
		{"flowshield_detect_garbage_records_total", s.Garbage},
		{"flowshield_detect_empty_records_total", s.Empty},
		{"flowshield_detect_clock_fixed_records_total", s.ClockFixed},
		{"flowshield_detect_untracked_records_total", s.UntrackedRecords},
		{"flowshield_hosts_evicted_total", s.HostsEvicted},
		{"flowshield_attacks_unsampled_total", s.UnsampledAttacks},
		{"flowshield_exporters_forgotten_total", s.ExportersForgotten},
		{"flowshield_attacks_ended_forgotten_total", s.EndedForgotten},
		{"flowshield_attacks_ended_details_shed_total", s.EndedDetailsShed},
	})
	metrics.WriteGaugeUint64(w, "flowshield_hosts_tracked", uint64(s.HostsTracked))
	metrics.WriteGaugeUint64(w, "flowshield_hosts_untracked", s.UntrackedHosts)
	metrics.WriteGaugeUint64(w, "flowshield_attacks_ended", uint64(s.EndedAttacks))
	metrics.WriteGaugeUint64(w, "flowshield_attacks_ended_bytes", uint64(max(s.EndedBytes, 0)))
	metrics.WriteMetadataIfNeeded(w, "flowshield_detect_untracked_pps", "gauge")
	fmt.Fprintf(w, "flowshield_detect_untracked_pps{direction=%q} %g\n", detect.In.String(), s.UntrackedInPPS)
	fmt.Fprintf(w, "flowshield_detect_untracked_pps{direction=%q} %g\n", detect.Out.String(), s.UntrackedOutPPS)
}

func (a *Appliance) writeMitigationMetrics(w io.Writer) {
	s := a.mitigator.Stats()
	writeCounters(w, []counter{
		{"flowshield_mitigation_bans_total", s.Bans},
		{"flowshield_mitigation_unbans_total", s.Unbans},
		{"flowshield_mitigation_skipped_total", s.Skipped},
		{"flowshield_mitigation_extensions_total", s.Extensions},
		{"flowshield_mitigation_extensions_by_drops_total", s.CounterExtensions},
		{"flowshield_mitigation_events_dropped_total", s.EventsDropped},
		{"flowshield_mitigation_persist_errors_total", s.PersistErrors},
		{"flowshield_mitigation_decode_errors_total", s.DecodeErrors},
		{"flowshield_mitigation_router_calls_total", s.RouterCalls},
		{"flowshield_mitigation_router_errors_total", s.RouterErrors},
		{"flowshield_mitigation_reconciles_total", s.Reconciles},
		{"flowshield_mitigation_objects_added_total", s.Added},
		{"flowshield_mitigation_objects_removed_total", s.Removed},
		{"flowshield_mitigation_timeouts_set_total", s.TimeoutsSet},
		{"flowshield_mitigation_unsafe_dropped_total", s.UnsafeDropped},
	})
	metrics.WriteMetadataIfNeeded(w, "flowshield_mitigation_refused_total", "counter")
	for _, r := range mitigation.Rules {
		fmt.Fprintf(w, "flowshield_mitigation_refused_total{rule=%q} %d\n", string(r), s.Refused[r])
	}
}

func (a *Appliance) writeStoreMetrics(w io.Writer) {
	s := a.store.Stats()
	writeCounters(w, []counter{
		{"flowshield_store_commits_total", s.Commits},
		{"flowshield_store_write_failures_total", s.WriteFailures},
		{"flowshield_store_undecodable_total", s.Undecodable},
		{"flowshield_store_history_details_shed_total", s.HistoryDetailsShed},
		{"flowshield_store_history_evicted_total", s.HistoryEvicted},
		{"flowshield_store_history_evicted_early_total", s.HistoryEvictedEarly},
	})
	metrics.WriteGaugeUint64(w, "flowshield_store_history_records", uint64(max(s.HistoryRecords, 0)))
	metrics.WriteGaugeUint64(w, "flowshield_store_history_bytes", uint64(max(s.HistoryBytes, 0)))
}

// writeRouterMetrics writes each router's connection state and its API
// client's counters, labelled with its ROUTEROS_ADDRESS entry.
func (a *Appliance) writeRouterMetrics(w io.Writer) {
	if len(a.routers) == 0 {
		return
	}
	labels := make([]string, len(a.routers))
	stats := make([]routeros.Stats, len(a.routers))
	for i, r := range a.routers {
		labels[i] = "router=" + promtext.Quote(r.Address())
		stats[i] = r.Stats()
	}
	family := func(name, typ string, v func(i int) uint64) {
		metrics.WriteMetadataIfNeeded(w, name, typ)
		for i := range a.routers {
			fmt.Fprintf(w, "%s{%s} %d\n", name, labels[i], v(i))
		}
	}
	family("flowshield_router_connected", "gauge", func(i int) uint64 { return b2u(a.routers[i].Connected()) })
	family("flowshield_router_calls_total", "counter", func(i int) uint64 { return stats[i].Calls })
	metrics.WriteMetadataIfNeeded(w, "flowshield_router_call_errors_total", "counter")
	for i, s := range stats {
		fmt.Fprintf(w, "flowshield_router_call_errors_total{%s,kind=\"trap\"} %d\n", labels[i], s.Traps)
		fmt.Fprintf(w, "flowshield_router_call_errors_total{%s,kind=\"timeout\"} %d\n", labels[i], s.Timeouts)
		fmt.Fprintf(w, "flowshield_router_call_errors_total{%s,kind=\"connection\"} %d\n", labels[i], s.ConnErrors)
	}
	family("flowshield_router_dials_total", "counter", func(i int) uint64 { return stats[i].Dials })
	family("flowshield_router_dial_failures_total", "counter", func(i int) uint64 { return stats[i].DialFailures })
	family("flowshield_router_logins_total", "counter", func(i int) uint64 { return stats[i].Logins })
	family("flowshield_router_rejected_replies_total", "counter", func(i int) uint64 { return stats[i].RejectedReplies })
	family("flowshield_router_unparsed_objects_total", "counter", func(i int) uint64 { return stats[i].Unparsed })
	family("flowshield_router_unreadable_addresses_total", "counter", func(i int) uint64 { return stats[i].UnreadableAddresses })
}

// counter is one scalar counter read from a component's Stats.
type counter struct {
	name string
	v    uint64
}

func writeCounters(w io.Writer, cs []counter) {
	for _, c := range cs {
		metrics.WriteCounterUint64(w, c.name, c.v)
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// writeExporterTimers writes each exporter's reporting timers as the
// detector uses them (the table is bounded by detect's MaxExporters).
func (a *Appliance) writeExporterTimers(w io.Writer) {
	stats := a.engine.ExporterStats()
	gauge := func(name string, get func(t detect.ExporterTimers) (float64, bool)) {
		metrics.WriteMetadataIfNeeded(w, name, "gauge")
		for _, e := range stats {
			if v, ok := get(e.Timers); ok {
				fmt.Fprintf(w, "%s{exporter=%q} %g\n", name, e.Exporter.String(), v)
			}
		}
	}
	gauge("flowshield_exporter_active_timeout_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.ActiveTimeout.Seconds(), t.ActiveTimeout > 0
	})
	gauge("flowshield_exporter_inactive_lag_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.InactiveLag.Seconds(), t.Samples > 0
	})
	// How far late records are moved forward, and how long an attack is
	// held after its last sign (see detect/timers.go).
	gauge("flowshield_exporter_lag_shift_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.Shift.Seconds(), t.Samples > 0
	})
	gauge("flowshield_exporter_attack_hold_seconds", func(t detect.ExporterTimers) (float64, bool) {
		return t.Hold.Seconds(), t.Samples > 0
	})
}

// writeUplinkMetrics writes the uplink monitor's counters and states, and
// each uplink interface's rates (bounded by routeros.MaxListInterfaces per
// router).
func (a *Appliance) writeUplinkMetrics(w io.Writer) {
	if a.uplink == nil {
		return
	}
	s, st := a.uplink.Stats(), a.uplink.Status()
	writeCounters(w, []counter{
		{"flowshield_uplink_polls_total", s.Polls},
		{"flowshield_uplink_poll_failures_total", s.Failures},
		{"flowshield_uplink_resets_total", s.Resets},
		{"flowshield_uplink_wraps_total", s.Wraps},
		{"flowshield_uplink_stale_total", s.StaleClears},
		{"flowshield_uplink_saturated_events_total", s.SaturatedEvents},
		{"flowshield_uplink_flow_blind_events_total", s.FlowBlindEvents},
	})
	metrics.WriteCounterFloat64(w, "flowshield_uplink_saturated_seconds_total", s.SaturatedSeconds)
	metrics.WriteGaugeUint64(w, "flowshield_uplink_saturated", b2u(st.Saturated))
	metrics.WriteGaugeUint64(w, "flowshield_uplink_flow_blind", b2u(st.FlowBlind))
	for _, g := range []struct {
		name string
		v    func(i uplink.Interface) float64
	}{
		{"flowshield_uplink_rx_bps", func(i uplink.Interface) float64 { return i.RxBPS }},
		{"flowshield_uplink_rx_pps", func(i uplink.Interface) float64 { return i.RxPPS }},
	} {
		metrics.WriteMetadataIfNeeded(w, g.name, "gauge")
		for _, i := range st.Interfaces {
			fmt.Fprintf(w, "%s{router=%s,interface=%s} %g\n", g.name, promtext.Quote(i.Router), promtext.Quote(i.Name), g.v(i))
		}
	}
}
