#!/usr/bin/env bash
# bench/daemon-throughput.sh: the whole daemon, measured from outside.
#
# Builds flowshield and flowgen, starts the daemon on loopback, sends RATE
# records/s for DURATION with flowgen, waits until the daemon's "records"
# stops moving, then reports what was sent, counted, lost and dropped, the
# daemon's CPU time (utime+stime from /proc) per counted record and its peak
# RSS. Goal (issue 2): lost == 0 and under NS_LIMIT (300) ns of CPU a record.
#
# Usage: bench/daemon-throughput.sh [--rate N] [--duration D] [--format F]
#                                   [--ns-limit N] [--prefix P] [--pprof]
#   or the same through env: RATE, DURATION, FORMAT, NS_LIMIT, PREFIX, PPROF=1.
#   FORMAT: routeros-v9 (default), v9, ipfix, routeros-ipfix, v5, sflow.
#   SKIP_BUILD=1 FS_BIN=... FLOWGEN_BIN=... reuse binaries.
#   --pprof builds a private copy of the repo with net/http/pprof added to
#   cmd/flowshield (nothing in the repo changes) and saves a CPU profile of
#   the sending window; its CPU figures include the profiler's own cost.
# Exit status: 0 if the goal is met, 1 if not, 2 on usage errors.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE=${RATE:-200000}
DURATION=${DURATION:-10s}
FORMAT=${FORMAT:-routeros-v9}
NS_LIMIT=${NS_LIMIT:-300}
PPROF=${PPROF:-0}
IDLE_SECONDS=${IDLE_SECONDS:-2}
# PREFIX is both the daemon's FLOWSHIELD_NETWORKS and flowgen's background
# hosts: a /16 spreads 200k records/s thinly enough that no host looks
# attacked, a /24 (default) concentrates them on 256 hosts.
PREFIX=${PREFIX:-203.0.113.0/24}
export FLOWSHIELD_NETWORKS=$PREFIX
while (($#)); do
	case $1 in
	--rate) RATE=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--format) FORMAT=$2; shift 2 ;;
	--ns-limit) NS_LIMIT=$2; shift 2 ;;
	--pprof) PPROF=1; shift ;;
	--prefix) PREFIX=$2; FLOWSHIELD_NETWORKS=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case $FORMAT in v5 | v9 | ipfix | sflow | routeros-v9 | routeros-ipfix) ;; *) echo "bad format $FORMAT" >&2; exit 2 ;; esac

need_tools go curl jq ss awk getconf timeout
WORK=${OUT_DIR:-$(mktemp -d /tmp/flowshield-throughput.XXXXXX)}
mkdir -p "$WORK"
trap 'stop_daemon' EXIT
trap 'exit 130' INT TERM

if [[ $PPROF == 1 ]]; then
	# A private copy with a pprof listener: the repo itself is not touched.
	log "building a profiling copy of cmd/flowshield in $WORK/src"
	mkdir -p "$WORK/src"
	tar -C "$REPO_DIR" --exclude=.git -cf - . | tar -C "$WORK/src" -xf -
	cat >"$WORK/src/cmd/flowshield/zz_bench_pprof.go" <<-'EOF'
		package main

		import (
			"net/http"
			_ "net/http/pprof"
			"os"
		)

		// Bench-only: a pprof listener when BENCH_PPROF_LISTEN is set.
		func init() {
			if addr := os.Getenv("BENCH_PPROF_LISTEN"); addr != "" {
				go http.ListenAndServe(addr, nil)
			}
		}
	EOF
	(cd "$WORK/src" && go build -o "$WORK/flowshield" ./cmd/flowshield && go build -o "$WORK/flowgen" ./cmd/flowgen) || die "building the profiling copy"
	FS_BIN=$WORK/flowshield FLOWGEN_BIN=$WORK/flowgen
	PPROF_PORT=$(free_port)
	export BENCH_PPROF_LISTEN=127.0.0.1:$PPROF_PORT
else
	build_binaries "$WORK"
fi

MACHINE=$(machine_line)
log "machine: $MACHINE"
start_daemon "$WORK"

# Idle cost first (detection ticks, timers), so it can be told apart.
idle0=$(cpu_ns "$DAEMON_PID")
sleep "$IDLE_SECONDS"
idle1=$(cpu_ns "$DAEMON_PID")
idle_ms_per_s=$(awk -v d=$((idle1 - idle0)) -v s="$IDLE_SECONDS" 'BEGIN { printf "%.2f", d / s / 1e6 }')

records0=$(status_json | jq -r '.records')
dropped0=$(status_json | jq -r '.dropped')
kdrops_port=$NF_PORT
[[ $FORMAT == sflow ]] && kdrops_port=$SF_PORT
kdrops0=$(kernel_drops_proc "$kdrops_port")
cpu0=$(cpu_ns "$DAEMON_PID")
load_at_start=$(cut -d' ' -f1 /proc/loadavg)

dur_s=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /ms$/) n /= 1000; else if (d ~ /m$/) n *= 60; print int(n + 0.999) }')
if [[ $PPROF == 1 ]]; then
	curl -fsS -m $((dur_s + 30)) -o "$WORK/cpu.pprof" "http://$BENCH_PPROF_LISTEN/debug/pprof/profile?seconds=$dur_s" &
	pprof_curl=$!
fi

log "sending $FORMAT at $RATE records/s for $DURATION to $(flowgen_target "$FORMAT")"
timeout $((dur_s + 60)) "${FLOWGEN_PIN[@]}" "$FLOWGEN_BIN" -target "$(flowgen_target "$FORMAT")" -format "$FORMAT" \
	-rate "$RATE" -duration "$DURATION" -scenario background -prefix "$PREFIX" \
	>"$WORK/flowgen.json" 2>"$WORK/flowgen.log" || die "flowgen failed: $(tail -3 "$WORK/flowgen.log")"

records1=$(wait_records_settle)
cpu1=$(cpu_ns "$DAEMON_PID")
[[ $PPROF == 1 ]] && { wait "$pprof_curl" || log "pprof fetch failed"; }
status_json >"$WORK/status.json"
curl -fsS -m 2 "$BASE_URL/metrics" >"$WORK/metrics.txt" || true
# Detection runs too (that is part of the daemon's cost): note whether the
# offered traffic tripped it, since attack handling costs CPU of its own.
curl -fsS -m 2 "$BASE_URL/api/v1/attacks" >"$WORK/attacks.json" || echo '[]' >"$WORK/attacks.json"
attacks=$(jq 'length' "$WORK/attacks.json" 2>/dev/null || echo 0)
dropped1=$(jq -r '.dropped' "$WORK/status.json")
kdrops1=$(kernel_drops_proc "$kdrops_port")
hwm_kb=$(proc_status_kb "$DAEMON_PID" VmHWM)
load_at_end=$(cut -d' ' -f1 /proc/loadavg)

sent=$(jq -r '.records' "$WORK/flowgen.json")
send_rate=$(jq -r '.records_per_second | floor' "$WORK/flowgen.json")
counted=$((records1 - records0))
lost=$((sent - counted))
dropped=$((dropped1 - dropped0))
kdrops=$((kdrops1 - kdrops0))
cpu=$((cpu1 - cpu0))
ns_per_record=$(awk -v c="$cpu" -v n="$counted" 'BEGIN { if (n > 0) printf "%.0f", c / n; else print "null" }')
# On a loaded machine flowgen may not keep its pace: then the run did not
# offer the rate asked for, and says so.
paced_ok=$(awk -v a="$send_rate" -v r="$RATE" 'BEGIN { print (a >= 0.9 * r) ? "true" : "false" }')
[[ $paced_ok == true ]] || log "WARNING: flowgen sent only $send_rate of $RATE records/s (machine loaded?): not a valid run at this rate"
pass=false
if [[ $paced_ok == true ]] && ((lost == 0)) && [[ $ns_per_record != null ]] && ((ns_per_record < NS_LIMIT)); then pass=true; fi

cat >&2 <<EOF

== flowshield daemon throughput ($FORMAT, $RATE records/s for $DURATION) ==
machine            $MACHINE
load (1 min)       $load_at_start at start, $load_at_end at end
records sent       $sent (flowgen achieved $send_rate records/s)
records counted    $counted
lost               $lost
dropped (daemon)   $dropped datagrams; kernel socket drops $kdrops
CPU                $((cpu / 1000000)) ms = $ns_per_record ns per counted record (tick: $((1000 / CLK_TCK)) ms)
idle CPU           $idle_ms_per_s ms/s before sending
attacks detected   $attacks (on $PREFIX; see attacks.json)
peak RSS           $((hwm_kb / 1024)) MiB (VmHWM)
goal               paced, lost == 0 and < $NS_LIMIT ns/record: $pass
files              $WORK
EOF
[[ $PPROF == 1 ]] && echo "profile            go tool pprof -top $FS_BIN $WORK/cpu.pprof" >&2

summary=$(jq -cn --arg format "$FORMAT" --argjson rate "$RATE" --arg duration "$DURATION" \
	--argjson sent "$sent" --argjson send_rate "$send_rate" --argjson counted "$counted" --argjson lost "$lost" \
	--argjson dropped "$dropped" --argjson kernel_drops "$kdrops" --argjson cpu_ns "$cpu" \
	--argjson ns_per_record "$ns_per_record" --argjson peak_rss_kb "$hwm_kb" \
	--argjson idle_cpu_ms_per_s "$idle_ms_per_s" --argjson load1 "$load_at_start" --argjson attacks "$attacks" --arg prefix "$PREFIX" \
	--argjson pprof "$([[ $PPROF == 1 ]] && echo true || echo false)" --argjson paced_ok "$paced_ok" --argjson pass "$pass" \
	'{format:$format, rate:$rate, duration:$duration, sent:$sent, send_rate:$send_rate, counted:$counted,
	  lost:$lost, dropped:$dropped, kernel_drops:$kernel_drops, cpu_ns:$cpu_ns, ns_per_record:$ns_per_record,
	  peak_rss_kb:$peak_rss_kb, idle_cpu_ms_per_s:$idle_cpu_ms_per_s, load1:$load1, prefix:$prefix, attacks:$attacks, pprof:$pprof, paced_ok:$paced_ok, pass:$pass}')
echo "$summary" | tee "$WORK/summary.json"
[[ $pass == true ]]
