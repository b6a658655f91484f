#!/usr/bin/env bash
# bench/run-all.sh: every daemon-level measurement in one go, one JSON line
# each appended to $RESULTS (default /tmp/flowshield-bench-results.jsonl).
# Waits (LOAD_WAIT_S, default 600 s at most) for the 1-minute load average to
# fall under LOAD_MAX (default 3) first, since other jobs on a 2-core machine
# distort both CPU time and loss; runs anyway after the wait, and every line
# carries the load it ran at.
#   FNM=1 also measures FastNetMon (apt-get install fastnetmon). As root the
#   overload runs are repeated with the daemon held to 20 % of a core
#   (overload.sh --cpu-quota 20), for a 10x overload on 2 cores.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RESULTS=${RESULTS:-/tmp/flowshield-bench-results.jsonl}
LOAD_MAX=${LOAD_MAX:-3}
LOAD_WAIT_S=${LOAD_WAIT_S:-600}

wait_for_quiet() {
	local i
	for ((i = 0; i < LOAD_WAIT_S / 5; i++)); do
		awk -v m="$LOAD_MAX" '{ exit !($1 < m) }' /proc/loadavg && return
		sleep 5
	done
	log "load still $(cut -d' ' -f1 /proc/loadavg) after ${LOAD_WAIT_S}s: running anyway"
}

WORK=$(mktemp -d /tmp/flowshield-runall.XXXXXX)
build_binaries "$WORK"
export SKIP_BUILD=1 FS_BIN FLOWGEN_BIN
run() {
	wait_for_quiet
	log "run: $*"
	"$@" 2>>"$WORK/runs.log" | tail -1 | tee -a "$RESULTS"
}
run "$BENCH_DIR/daemon-throughput.sh"
run "$BENCH_DIR/daemon-throughput.sh" --prefix 203.0.112.0/20
run "$BENCH_DIR/daemon-throughput.sh" --prefix 10.20.0.0/16
run "$BENCH_DIR/daemon-throughput.sh" --format routeros-ipfix
run "$BENCH_DIR/daemon-throughput.sh" --format v5
run "$BENCH_DIR/daemon-throughput.sh" --format sflow
run "$BENCH_DIR/overload.sh"
run "$BENCH_DIR/overload.sh" --prefix 10.20.0.0/16
[[ $(id -u) == 0 ]] && run "$BENCH_DIR/overload.sh" --cpu-quota 20
[[ $(id -u) == 0 ]] && run "$BENCH_DIR/overload.sh" --cpu-quota 20 --prefix 10.20.0.0/16
if [[ ${FNM:-0} == 1 ]]; then
	run "$BENCH_DIR/fastnetmon-throughput.sh" --conntrack on
	run "$BENCH_DIR/fastnetmon-throughput.sh" --conntrack off
fi
log "results appended to $RESULTS; logs in $WORK/runs.log"
