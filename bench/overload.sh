#!/usr/bin/env bash
# bench/overload.sh: the daemon under a flood of exports it cannot keep up with.
#
# Starts flowshield on loopback and blasts it with flowgen -blast (WORKERS
# sockets, pre-encoded datagrams, as fast as the machine sends) for DURATION,
# while probing /healthz every 200 ms with a 1 s timeout and sampling RSS
# every second. Then reports the send rate achieved against the rate the
# daemon counted (the overload factor), /healthz failures and worst latency,
# RSS max and growth, drops (queue drops from status "dropped", kernel
# socket drops from /metrics and from /proc/net/udp) and records counted.
#
# Pass: /healthz never failed, max RSS under RSS_LIMIT_MB (200: the
# collector's queue is bounded to 32 MiB of payload plus 8,192 datagrams,
# the socket buffer is kernel memory, and the idle daemon is ~20 MiB, so
# 200 leaves ample room for the Go heap's GOGC headroom and still flags
# anything that grows with the offered load), and drops counted > 0.
#
# Usage: bench/overload.sh [--duration D] [--workers N] [--format F] [--rss-limit-mb N] [--prefix P]
#                          [--cpu-quota PCT]
#   or env: DURATION (20s), WORKERS (2), FORMAT (routeros-v9), RSS_LIMIT_MB (200),
#   PREFIX (203.0.113.0/24), CPU_QUOTA (none).
#   --cpu-quota PCT runs the daemon in a cgroup allowed PCT % of one core
#   (needs root and a cgroup cpu controller): on 2 cores the blaster and the
#   daemon otherwise share the machine and the blast reaches only a few times
#   what the daemon takes; with a quota it reaches 10x and more, as on a
#   router whose CPU is small or busy forwarding.
#   SKIP_BUILD=1 FS_BIN=... FLOWGEN_BIN=... reuse binaries.
# Exit status: 0 if every criterion holds, 1 if not, 2 on usage errors.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-20s}
WORKERS=${WORKERS:-2}
FORMAT=${FORMAT:-routeros-v9}
RSS_LIMIT_MB=${RSS_LIMIT_MB:-200}
# PREFIX: the daemon's FLOWSHIELD_NETWORKS and flowgen's hosts (a /16 makes
# the consumer slower, so the same blast overloads it more).
PREFIX=${PREFIX:-203.0.113.0/24}
CPU_QUOTA=${CPU_QUOTA:-}
while (($#)); do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--workers) WORKERS=$2; shift 2 ;;
	--format) FORMAT=$2; shift 2 ;;
	--rss-limit-mb) RSS_LIMIT_MB=$2; shift 2 ;;
	--prefix) PREFIX=$2; shift 2 ;;
	--cpu-quota) CPU_QUOTA=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case $FORMAT in v5 | v9 | ipfix | sflow | routeros-v9 | routeros-ipfix) ;; *) echo "bad format $FORMAT" >&2; exit 2 ;; esac

export FLOWSHIELD_NETWORKS=$PREFIX
need_tools go curl jq ss awk getconf timeout
WORK=${OUT_DIR:-$(mktemp -d /tmp/flowshield-overload.XXXXXX)}
mkdir -p "$WORK"
PROBE_PIDS=()
cleanup() {
	local p
	for p in "${PROBE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	stop_daemon
	release_cpu
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_binaries "$WORK"
MACHINE=$(machine_line)
log "machine: $MACHINE"
start_daemon "$WORK"
[[ -z $CPU_QUOTA ]] || limit_cpu "$DAEMON_PID" "$CPU_QUOTA"

dur_s=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; print int(n + 0.999) }')
probe_s=$((dur_s + 5)) # probes run a little past the blast, so the catch-up is covered too
port=$NF_PORT
[[ $FORMAT == sflow ]] && port=$SF_PORT

# /healthz every 200 ms, 1 s timeout: one line "ok|fail seconds" a probe.
# The prober runs at nice PROBE_NICE (-10) so that, on a machine the blast
# saturates, the probe's own scheduling delay does not pass for the daemon's.
(
	renice -n "${PROBE_NICE:--10}" -p "$BASHPID" >/dev/null 2>&1 || true
	for ((i = 0; i < probe_s * 5; i++)); do
		if t=$(curl -fsS -o /dev/null -m 1 -w '%{time_total}' "$BASE_URL/healthz" 2>/dev/null); then
			echo "ok $t"
		else
			echo "fail ${t:-1}"
		fi
		sleep 0.2
	done
) >"$WORK/healthz.txt" &
PROBE_PIDS+=($!)
# RSS every second, in kB.
(
	for ((i = 0; i < probe_s; i++)); do
		proc_status_kb "$DAEMON_PID" VmRSS || break
		sleep 1
	done
) >"$WORK/rss.txt" &
PROBE_PIDS+=($!)

records0=$(status_json | jq -r '.records')
kdrops_proc0=$(kernel_drops_proc "$port")
cpu0=$(cpu_ns "$DAEMON_PID")
load_at_start=$(cut -d' ' -f1 /proc/loadavg)
log "blasting $FORMAT with $WORKERS workers for $DURATION to $(flowgen_target "$FORMAT")"
timeout $((dur_s + 60)) "${FLOWGEN_PIN[@]}" "$FLOWGEN_BIN" -blast -workers "$WORKERS" -target "$(flowgen_target "$FORMAT")" \
	-format "$FORMAT" -duration "$DURATION" -scenario background -rate 200000 -prefix "$PREFIX" \
	>"$WORK/flowgen.json" 2>"$WORK/flowgen.log" || die "flowgen failed: $(tail -3 "$WORK/flowgen.log")"
records_at_end=$(status_json | jq -r '.records')
cpu_at_end=$(cpu_ns "$DAEMON_PID")

for p in "${PROBE_PIDS[@]}"; do wait "$p" || true; done
PROBE_PIDS=()
records1=$(wait_records_settle)
status_json >"$WORK/status.json"
curl -fsS -m 2 "$BASE_URL/metrics" >"$WORK/metrics.txt" || true
hwm_kb=$(proc_status_kb "$DAEMON_PID" VmHWM)
kdrops_proc=$(($(kernel_drops_proc "$port") - kdrops_proc0))
load_at_end=$(cut -d' ' -f1 /proc/loadavg)

listener=netflow
[[ $FORMAT == sflow ]] && listener=sflow
kdrops_metric=$(awk -v m="flowshield_collector_kernel_dropped_datagrams_total{listener=\"$listener\"}" '$1 == m { print $2 + 0 }' "$WORK/metrics.txt")
kdrops_metric=${kdrops_metric:-0}
dropped=$(jq -r '.dropped' "$WORK/status.json")
exporter_dgs=$(jq -r '[.exporters[].datagrams] | add // 0' "$WORK/status.json")
sent=$(jq -r '.records' "$WORK/flowgen.json")
sent_dgs=$(jq -r '.datagrams' "$WORK/flowgen.json")
send_seconds=$(jq -r '.seconds' "$WORK/flowgen.json")
send_rate=$(jq -r '.records_per_second | floor' "$WORK/flowgen.json")
counted=$((records1 - records0))
counted_during=$((records_at_end - records0))
consume_rate=$(awk -v n="$counted_during" -v s="$send_seconds" 'BEGIN { printf "%.0f", n / s }')
overload=$(awk -v a="$send_rate" -v b="$consume_rate" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "null" }')
ns_per_record=$(awk -v c=$((cpu_at_end - cpu0)) -v n="$counted_during" 'BEGIN { if (n > 0) printf "%.0f", c / n; else print "null" }')
# Every datagram sent is either seen by a reader (exporter "datagrams",
# which includes the queue drops) or dropped by the kernel.
unaccounted=$((sent_dgs - exporter_dgs - kdrops_proc))

probes=$(wc -l <"$WORK/healthz.txt")
fails=$(awk '$1 == "fail"' "$WORK/healthz.txt" | wc -l)
max_latency_ms=$(awk '{ if ($2 > m) m = $2 } END { printf "%.0f", m * 1000 }' "$WORK/healthz.txt")
p99_latency_ms=$(awk '$1 == "ok" { print $2 }' "$WORK/healthz.txt" | sort -n | awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.0f", v[i] * 1000 }')
rss_first_kb=$(head -1 "$WORK/rss.txt")
rss_max_kb=$(sort -n "$WORK/rss.txt" | tail -1)
rss_last_kb=$(tail -1 "$WORK/rss.txt")
rss_growth_kb=$((rss_last_kb - rss_first_kb))
# Growth over the second half of the blast: near 0 once the bounded queue and
# the heap have reached their steady size.
rss_mid_kb=$(sed -n "$((dur_s / 2 + 1))p" "$WORK/rss.txt")
rss_end_kb=$(sed -n "$((dur_s + 1))p" "$WORK/rss.txt")
rss_late_growth_kb=$((${rss_end_kb:-$rss_last_kb} - ${rss_mid_kb:-$rss_first_kb}))
total_drops=$((dropped + kdrops_proc))

pass=true
reasons=()
((fails == 0)) || { pass=false; reasons+=("healthz failed $fails times"); }
((hwm_kb < RSS_LIMIT_MB * 1024)) || { pass=false; reasons+=("peak RSS $((hwm_kb / 1024)) MiB >= $RSS_LIMIT_MB MiB"); }
((total_drops > 0)) || { pass=false; reasons+=("no drops counted: not overloaded?"); }

cat >&2 <<EOF

== flowshield overload ($FORMAT, flowgen -blast -workers $WORKERS for $DURATION) ==
machine            $MACHINE
load (1 min)       $load_at_start at start, $load_at_end at end
sent               $sent records in $sent_dgs datagrams, $send_rate records/s
consumed           $consume_rate records/s during the blast (overload factor ${overload}x)
records counted    $counted ($counted_during during the blast); CPU $ns_per_record ns/record
dropped            $dropped datagrams by the daemon's queue (status "dropped")
kernel drops       $kdrops_metric (daemon's SO_RXQ_OVFL metric), $kdrops_proc (/proc/net/udp)
accounting         $sent_dgs sent = $exporter_dgs seen + $kdrops_proc kernel-dropped + $unaccounted unaccounted
/healthz           $probes probes, $fails failed, max ${max_latency_ms} ms, p99 ${p99_latency_ms} ms
RSS                first $((rss_first_kb / 1024)) MiB, max $((rss_max_kb / 1024)) MiB, growth $((rss_growth_kb / 1024)) MiB ($((rss_late_growth_kb / 1024)) MiB in the blast's second half), VmHWM $((hwm_kb / 1024)) MiB (limit $RSS_LIMIT_MB)
pass               $pass ${reasons[*]:-}
files              $WORK
EOF

summary=$(jq -cn --arg format "$FORMAT" --arg duration "$DURATION" --argjson workers "$WORKERS" \
	--argjson sent "$sent" --argjson sent_datagrams "$sent_dgs" --argjson send_rate "$send_rate" \
	--argjson consume_rate "$consume_rate" --argjson overload_factor "$overload" \
	--argjson counted "$counted" --argjson ns_per_record "$ns_per_record" --argjson dropped "$dropped" \
	--argjson kernel_drops_metric "$kdrops_metric" --argjson kernel_drops_proc "$kdrops_proc" \
	--argjson unaccounted_datagrams "$unaccounted" \
	--argjson healthz_probes "$probes" --argjson healthz_failures "$fails" \
	--argjson healthz_max_ms "$max_latency_ms" --argjson healthz_p99_ms "$p99_latency_ms" \
	--argjson rss_max_kb "$rss_max_kb" --argjson rss_growth_kb "$rss_growth_kb" --argjson rss_late_growth_kb "$rss_late_growth_kb" --argjson peak_rss_kb "$hwm_kb" \
	--argjson load1 "$load_at_start" --arg prefix "$PREFIX" --argjson pass "$pass" \
	--argjson cpu_quota_pct "${CPU_QUOTA:-null}" \
	'{format:$format, duration:$duration, workers:$workers, sent:$sent, sent_datagrams:$sent_datagrams,
	  send_rate:$send_rate, consume_rate:$consume_rate, overload_factor:$overload_factor, counted:$counted,
	  ns_per_record:$ns_per_record, dropped:$dropped, kernel_drops_metric:$kernel_drops_metric,
	  kernel_drops_proc:$kernel_drops_proc, unaccounted_datagrams:$unaccounted_datagrams,
	  healthz_probes:$healthz_probes, healthz_failures:$healthz_failures, healthz_max_ms:$healthz_max_ms,
	  healthz_p99_ms:$healthz_p99_ms, rss_max_kb:$rss_max_kb, rss_growth_kb:$rss_growth_kb, rss_late_growth_kb:$rss_late_growth_kb,
	  peak_rss_kb:$peak_rss_kb, prefix:$prefix, cpu_quota_pct:$cpu_quota_pct, load1:$load1, pass:$pass}')
echo "$summary" | tee "$WORK/summary.json"
[[ $pass == true ]]
