#!/usr/bin/env bash
# bench/fastnetmon-throughput.sh: the comparison point of issue 2, measured
# the same way as bench/daemon-throughput.sh: FastNetMon (Debian package
# fastnetmon) fed NetFlow v9 by flowgen on loopback, its utime+stime from
# /proc per record it counted (Prometheus netflow_v9_total_flows).
#
# Usage: bench/fastnetmon-throughput.sh [--rate N] [--duration D] [--conntrack on|off]
#   or env: RATE (200000), DURATION (10s), FORMAT (routeros-v9), CONNTRACK (on),
#   PREFIX (203.0.113.0/24). Needs: apt-get install fastnetmon.
# The configuration used is written to $WORK/fastnetmon.conf (the Debian
# defaults, with netflow on a loopback port, bans, API, mirroring and
# syslog off, Prometheus on a loopback port).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE=${RATE:-200000}
DURATION=${DURATION:-10s}
FORMAT=${FORMAT:-routeros-v9}
CONNTRACK=${CONNTRACK:-on}
PREFIX=${PREFIX:-203.0.113.0/24}
while (($#)); do
	case $1 in
	--rate) RATE=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--conntrack) CONNTRACK=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case $FORMAT in v9 | routeros-v9) counter=fastnetmon_netflow_v9_total_flows ;; ipfix | routeros-ipfix) counter=fastnetmon_ipfix_total_flows ;; v5) counter=fastnetmon_netflow_v5_total_flows ;; *) echo "bad format $FORMAT" >&2; exit 2 ;; esac
command -v fastnetmon >/dev/null || die "fastnetmon is needed (apt-get install fastnetmon)"
need_tools go curl jq ss awk getconf timeout

WORK=${OUT_DIR:-$(mktemp -d /tmp/fastnetmon-throughput.XXXXXX)}
mkdir -p "$WORK"
FNM_PID=
stop_fnm() {
	[[ -n $FNM_PID ]] || return 0
	kill -TERM "$FNM_PID" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do kill -0 "$FNM_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$FNM_PID" 2>/dev/null || true
}
trap stop_fnm EXIT
trap 'exit 130' INT TERM

build_binaries "$WORK"
NF_PORT=$(free_port)
PROM_PORT=$(free_port)
echo "$PREFIX" >"$WORK/networks_list"
: >"$WORK/networks_whitelist"
# The Debian defaults with the keys this run sets removed, then those keys.
changed='netflow|netflow_port|netflow_host|sflow|enable_ban|enable_ban_ipv6|enable_api|prometheus|prometheus_port|prometheus_host|networks_list_path|white_list_path|pid_path|cli_stats_file_path|cli_stats_ipv6_file_path|enable_connection_tracking|logging_local_syslog_logging|disable_usage_report|mirror_afpacket|pcap'
grep -vE "^\s*($changed)\s*=" /etc/fastnetmon.conf >"$WORK/fastnetmon.conf"
cat >>"$WORK/fastnetmon.conf" <<EOF
# --- bench/fastnetmon-throughput.sh ---
netflow = on
netflow_host = 127.0.0.1
netflow_port = $NF_PORT
sflow = off
mirror_afpacket = off
pcap = off
enable_ban = off
enable_ban_ipv6 = off
enable_api = off
prometheus = on
prometheus_host = 127.0.0.1
prometheus_port = $PROM_PORT
networks_list_path = $WORK/networks_list
white_list_path = $WORK/networks_whitelist
pid_path = $WORK/fastnetmon.pid
cli_stats_file_path = $WORK/fastnetmon.dat
cli_stats_ipv6_file_path = $WORK/fastnetmon_ipv6.dat
enable_connection_tracking = $CONNTRACK
logging_local_syslog_logging = off
disable_usage_report = on
EOF
fastnetmon --configuration_file "$WORK/fastnetmon.conf" --log_file "$WORK/fastnetmon.log" --disable_pid_logic \
	>"$WORK/stdout.log" 2>&1 &
FNM_PID=$!
prom() { curl -fsS -m 2 "http://127.0.0.1:$PROM_PORT/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { printf "%.0f\n", v + 0 }'; }
for ((i = 0; i < 100; i++)); do
	curl -fsS -m 1 "http://127.0.0.1:$PROM_PORT/metrics" >/dev/null 2>&1 && break
	kill -0 "$FNM_PID" 2>/dev/null || { tail -20 "$WORK/fastnetmon.log" "$WORK/stdout.log" >&2; die "fastnetmon exited"; }
	sleep 0.1
done
sleep 1
MACHINE=$(machine_line)
log "fastnetmon pid $FNM_PID up: netflow 127.0.0.1:$NF_PORT prometheus :$PROM_PORT conntrack $CONNTRACK"

count0=$(prom "$counter")
kd0=$(kernel_drops_proc "$NF_PORT")
cpu0=$(cpu_ns "$FNM_PID")
load_at_start=$(cut -d' ' -f1 /proc/loadavg)
dur_s=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; print int(n + 0.999) }')
timeout $((dur_s + 60)) "$FLOWGEN_BIN" -target "127.0.0.1:$NF_PORT" -format "$FORMAT" -rate "$RATE" \
	-duration "$DURATION" -scenario background -prefix "$PREFIX" >"$WORK/flowgen.json" 2>"$WORK/flowgen.log" ||
	die "flowgen failed: $(tail -3 "$WORK/flowgen.log")"
last=-1
for ((i = 0; i < 150; i++)); do
	cur=$(prom "$counter")
	[[ $cur == "$last" ]] && break
	last=$cur
	sleep 1
done
cpu1=$(cpu_ns "$FNM_PID")
curl -fsS -m 2 "http://127.0.0.1:$PROM_PORT/metrics" >"$WORK/metrics.txt" || true
hwm_kb=$(proc_status_kb "$FNM_PID" VmHWM)
kdrops=$(($(kernel_drops_proc "$NF_PORT") - kd0))
sent=$(jq -r '.records' "$WORK/flowgen.json")
send_rate=$(jq -r '.records_per_second | floor' "$WORK/flowgen.json")
counted=$((cur - count0))
cpu=$((cpu1 - cpu0))
ns=$(awk -v c="$cpu" -v n="$counted" 'BEGIN { if (n > 0) printf "%.0f", c / n; else print "null" }')
cat >&2 <<EOF

== FastNetMon $(dpkg-query -W -f '${Version}' fastnetmon 2>/dev/null) ($FORMAT, $RATE records/s for $DURATION, conntrack $CONNTRACK) ==
machine            $MACHINE
records sent       $sent ($send_rate records/s achieved)
records counted    $counted ($counter)
lost               $((sent - counted)); kernel socket drops $kdrops
CPU                $((cpu / 1000000)) ms = $ns ns per counted record
peak RSS           $((hwm_kb / 1024)) MiB
files              $WORK
EOF
jq -cn --arg format "$FORMAT" --argjson rate "$RATE" --arg conntrack "$CONNTRACK" --argjson sent "$sent" \
	--argjson send_rate "$send_rate" --argjson counted "$counted" --argjson kernel_drops "$kdrops" \
	--argjson cpu_ns "$cpu" --argjson ns_per_record "$ns" --argjson peak_rss_kb "$hwm_kb" \
	--argjson load1 "$load_at_start" \
	'{daemon:"fastnetmon", format:$format, rate:$rate, conntrack:$conntrack, sent:$sent, send_rate:$send_rate,
	  counted:$counted, lost:($sent - $counted), kernel_drops:$kernel_drops, cpu_ns:$cpu_ns,
	  ns_per_record:$ns_per_record, peak_rss_kb:$peak_rss_kb, load1:$load1}' | tee "$WORK/summary.json"
