// Package detect turns flow records into per-host rates and attack verdicts.
// It is pure: no sockets, no files, an injectable clock. Its decisions leave
// as Events that later stages (mitigation, notification, storage) consume;
// it never calls the router.
//
// How the detector counts and decides (what an operator may need to know).
//
// Rates. Every protected host (in NETWORKS or a HOSTGROUPS prefix) has, per
// direction, a ring of one-second slots: packets and bits for all traffic,
// tcp, udp, icmp, tcp SYN without ACK and IP fragments, and flows. Records
// are multiplied by their sampling rate (0: DefaultSamplingRate). A record
// of at most one second goes whole into the second it ends in; a longer one
// is spread evenly over the seconds it spans, and the part before the ring
// (WINDOW + 4 seconds) is dropped, never piled into the present. So the
// RouterOS long flow (480,000 packets over 60 s, exported once) counts 8,000
// pps, not 480,000.
//
// Export timers (timers.go). A router reports a short flow when it has been
// idle for the inactive timeout I (RouterOS default 15 s), and cuts a long
// one every active timeout A (default 30 m; operators run 1 m); a flow that
// ends before its first cut goes at min(last packet + I, first + A). The
// engine learns I (the lower edge of its short records' arrival lag) and A
// (the length cut records share) per exporter from its records, or takes
// them from options data (IPFIX/v9 36 and 37) or the router's
// /ip/traffic-flow. A record is moved forward by the lag it was due with,
// min(I, A - its length), when it arrived at least that late: it counts in
// the ring with its real length and spacing, never piled into its arrival
// second (an exporter's scan delay is not undone: softflowd's minute-long
// expiry interval keeps its spread). So a short-flow flood is detected
// about one second after its first records arrive, whatever I (which is
// when they can first be seen at all), and a long-flow flood from its first
// report, one A after it starts. An attack is then held as long as the
// exporter may stay silent about traffic that goes on: for a host with cut
// records, A (or the lag, if longer) plus 2 s from the attack's last cut
// report or last sign, whichever is earlier; for a bursty exporter, the
// spread of its lag from the last sign. While banned, what the ban's rule
// drops (Sustain) keeps it on: a working ban blinds the flows. So one flood
// is one attack, and its end is declared within A + I + WINDOW + EndAfter
// after its last packets. A lag spread wide (softflowd's first report comes
// sorted oldest first) is taken only once it held for 5 s, so a bursty
// exporter's first reports may go uncounted (never piled); a tight one, as
// from a router scanning its cache every second, at once.
// With 1 s timers nothing moves (under 4 s late) and nothing is held longer
// than EndAfter: the fast path is as before.
//
// Flows/s counts flow records per second: a record adds one flow to each
// second it overlaps. With 1 s active timeouts this is the number of
// distinct flows active in that second; it is not multiplied by the
// sampling rate (a sampled record still stands for one flow seen).
//
// Windowed rates are the average over the last WINDOW complete seconds. As
// records for a second arrive during the next one, the window is taken both
// ending at the last second and one second earlier, and the larger counts.
// A host whose records came later than that (up to 3 s: RouterOS's 1 s
// timers and scan, and NetFlow v9's header clock in whole seconds, which
// puts the decoded times up to a second early) has its window also taken
// ending as many seconds earlier, so a second is counted whole once its
// records are in: with WINDOW 1s, a flood in 500-packet records arriving
// two seconds after the second they end in, later in the second than the
// Tick, was otherwise never declared. Its end and its rates' fall come as
// many seconds later. Records 4 s late or more are moved (Export timers).
//
// Decision. A host (or a hostgroup's sum, for the group_* thresholds) is
// under attack when a windowed rate is above its threshold for
// DetectionPeriod (default: at the first evaluation), or at once when a
// single second reached FastFactor (2) times the threshold. Steady traffic
// below a threshold cannot fake the fast rule: each flow can put at most two
// seconds' worth of packets into one second (two exports ending in the same
// second), so a second holds at most twice the steady rate. A flood at 2x
// its threshold exported every second is declared on the first Tick after
// its first records arrive; one just above, once the window is full
// (WINDOW + 1 s at most). An attack ends when every windowed rate stayed
// below EndFraction of its threshold for EndAfter (hysteresis: no flapping
// near the threshold). Thresholds: the host's hostgroup (longest prefix,
// whatever NETWORKS says) or the global ones.
//
// Exporter sanity. Times are checked against the record's arrival: zero
// times, ends in the future (beyond ClockSlack), ends long before arrival
// (MaxExportDelay: a reset sysUpTime), negative or impossibly long
// durations (MaxFlowDuration) are replaced by the arrival time, keeping the
// record's own duration when plausible, and counted per exporter. With
// LinkMbps set, a record whose bits over its duration (at least 1 s), or
// whose packets at MinFrameBytes (64 bytes, Ethernet's minimum frame without
// preamble and gap: lenient) over its duration, exceed the link is garbage:
// not counted, counted per exporter, logged at most once a minute per
// exporter.
//
// Classification (dominant vector by packets): UDP mostly from one
// reflector source port (53, 123, 11211, 1900, 389, 19, 161, others as
// other_amplification) with an average UDP packet of 200 bytes or more is
// that amplification; else half or more fragments is
// ip_fragmentation_flood; TCP with half or more SYN-only is syn_flood; then
// tcp_flood, udp_flood, icmp_flood, unknown. At the start the reflector port
// comes from a per-host majority vote; the flow sample confirms it for the
// details.
//
// Classification after a ban: a ban that works blinds the flows within a
// second, so the flow sample may hold nothing; the port vote of the records
// that declared the attack then names the reflector.
//
// Fingerprint (fingerprint.go). With the details, an attack gets what its
// packets have in common, in the words of a RouterOS raw rule: up to
// MaxVectors vectors, each an IP protocol, a reflector source port, up to
// MaxDstPorts destination ports when concentrated, TCP SYN without ACK,
// non-first fragments, a packet-size range, and the share of the attack's
// packets it matches. It comes from the flow sample (a reservoir sample
// of the records seen, so that a vector whose records come last in every
// batch is in it too), each record weighed by its packet rate; the
// protocols' parts come from the counters' busiest seconds, which hold
// every packet. A vector must add 5 % of the packets, and a third of the
// first vector's share, to what those before it match: the victim's own
// traffic, smaller than the flood, stays out. None: nothing characterises
// the attack. Without a sample (MaxSampledAttacks, or a ban that blinded
// the flows), protocol-only vectors from the counters. When the type
// changes during the attack, a new sample is taken (at most every 30 s)
// and, if it gives other vectors, a new fingerprint and details text
// with a new AttackDetails event. It costs Tick about 40 µs per attack
// with the default 40-record sample (BenchmarkFingerprint), and Consume
// nothing more than the sample did.
//
// Totals and the NETWORKS sums are the windowed rates of the per-second
// sums over all protected traffic, tracked hosts or not (see Bounds), as a
// hostgroup's group_* sums are.
//
// Memory: a host is ~176 bytes plus, per direction with traffic, a ring of
// WINDOW+4 seconds x 32 bytes (8 float32: packets of the six categories,
// bits, flows; 4 more bytes per protocol whose Mbps threshold is set).
// Measured with WINDOW 5s (BenchmarkHostMemory): 488 bytes per host seen
// one way, 776 both ways, including the host table: 100,000 hosts active
// both ways in 74 MiB.
//
// Bounds. Every table network input can grow has a bound, and what the
// bound turns away is counted (Stats):
//   - Hosts: MaxHosts (250,000; at 776 bytes, 185 MiB). A new host past it
//     takes the place of the quietest (fewest packets in its ring) of 8
//     hosts of its shard sampled where a map iteration starts, never one
//     under attack or above a threshold: bounded work per new host, never
//     a scan (BenchmarkConsumeFullTable: about 1 µs a record whose host
//     evicts one, against 250 ns for a tracked one). The evicted host's
//     seconds, and the records of a host that finds no place (all 8 under
//     attack), go into per-shard untracked rings: the totals, the networks'
//     and the hostgroups' group_* sums count all protected traffic, so a
//     carpet bombing over more addresses than the table holds is declared
//     at group scope as with a table that holds them all. Per-host rates
//     and attacks need a tracked host; a host evicted starts again from
//     zero (HostTotals). Counted: HostsEvicted, UntrackedRecords,
//     UntrackedInPPS/OutPPS (the windowed rates in the totals that no
//     tracked host holds), and UntrackedHosts, the distinct addresses the
//     table did not keep (evicted, or found no place) between the last two
//     Ticks, estimated (HyperLogLog, 1,024 registers per shard: about 3 %
//     standard error). The untracked
//     rings are fixed by the configuration: per shard that has any, 2 x
//     (1 + networks + hostgroups) rings of ~290 bytes and 1 KiB.
//   - Exporters: MaxExporters (1,024; ~3.2 KB each, 3.2 MiB), anomaly
//     counters and timers alike. The one heard from least recently goes
//     (a list: no scan); ExportersForgotten.
//   - Active attacks: one per tracked host and direction at most, and one
//     per hostgroup and direction; ~2.8 KB each once their details are out
//     (the details text, ~1.4 KB, and the fingerprint, under 300 bytes:
//     MaxVectors of MaxDstPorts), and a flow sample and top talkers (~14
//     KB in all) for at most MaxSampledAttacks (1,000) at a time (and
//     again for a few seconds after a vector change); UnsampledAttacks.
//   - Ended attacks: the last RetainEndedCount (1,000) whole (~13 KB each
//     with a 40-record sample: 12.5 MiB), and beyond them those of the last
//     RetainEnded (24 h), without their samples, up to MaxEnded (100,000)
//     and MaxEndedBytes (32 MiB as estimated by attackBytes; measured
//     within 20 %): past it the oldest lose their details text and
//     fingerprint first (300 bytes left, still listed), then go. So the contract's "24 hours or
//     the last 1,000" holds for some 65,000 attacks a day. EndedAttacks,
//     EndedBytes, EndedForgotten (gone before their 24 hours),
//     EndedDetailsShed.
//   - The reflector port vote is one weighted majority vote (Boyer-Moore)
//     per host direction, an attack's top talkers Space-Saving summaries of
//     8 entries: fixed sizes, no table. Consume's scratch (pooled per
//     concurrent caller) grows to its largest batch: two entries a record.
//
// Readers. Listing hosts (VisitHosts, Hosts, HostTotals) copies a shard's
// keys, then reads 256 hosts per hold of the shard's lock and calls back
// with no lock held; Hosts with a limit keeps a heap of that many. Listing
// or finding attacks reads the ended ones 1,024 per hold of the registry's
// lock. Consume waits behind a listing that long at most, not a whole
// shard's or registry's read (BenchmarkConsumeWhileListing: with 250,000
// hosts listed over and over, a 256-record batch's 99th percentile went
// from 11 ms to 1.5 ms).
//
// Cost. Consume does no allocation in steady state; it locks each host
// table shard a batch touches once, so larger batches (a collector
// worker's, up to 256 records) cost less per record than one datagram's.
// Tick evaluates most hosts without leaving the ring's stored columns:
// only a direction with an attack or a crossed threshold takes the full
// path.
package detect
