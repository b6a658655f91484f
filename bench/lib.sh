# shellcheck shell=bash
# bench/lib.sh: helpers shared by the bench/ scripts (sourced, not run).
# Everything here runs on loopback, with bounded waits, and only ever stops
# the daemon it started itself (by pid).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

need_tools() {
	local t
	for t in "$@"; do command -v "$t" >/dev/null || die "$t is needed (apt-get install $t)"; done
}

# build_binaries DIR: builds flowshield and flowgen into DIR unless FS_BIN and
# FLOWGEN_BIN already point at binaries (SKIP_BUILD=1 with both set).
build_binaries() {
	local out=$1
	if [[ ${SKIP_BUILD:-0} == 1 && -x ${FS_BIN:-} && -x ${FLOWGEN_BIN:-} ]]; then
		return
	fi
	log "building flowshield and flowgen"
	(cd "$REPO_DIR" && go build -o "$out/flowshield" ./cmd/flowshield) || die "building flowshield"
	(cd "$REPO_DIR" && go build -o "$out/flowgen" ./cmd/flowgen) || die "building flowgen"
	FS_BIN=$out/flowshield
	FLOWGEN_BIN=$out/flowgen
}

# free_port: a loopback port free for both UDP and TCP (bounded tries).
free_port() {
	local i p
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 30000))
		if [[ -z $(ss -Htuan "sport = :$p" 2>/dev/null) ]]; then
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# DAEMON_CPUS / FLOWGEN_CPUS (taskset lists, e.g. 0 and 1) pin the daemon and
# flowgen to separate cores, so neither steals the other's CPU.
DAEMON_PIN=() FLOWGEN_PIN=()
[[ -n ${DAEMON_CPUS:-} ]] && DAEMON_PIN=(taskset -c "$DAEMON_CPUS")
# shellcheck disable=SC2034 # FLOWGEN_PIN is used by the scripts that source this
[[ -n ${FLOWGEN_CPUS:-} ]] && FLOWGEN_PIN=(taskset -c "$FLOWGEN_CPUS")

# start_daemon WORKDIR: starts flowshield on loopback ports, sets DAEMON_PID,
# NF_PORT, SF_PORT, HTTP_PORT, BASE_URL, and waits (10 s at most) for /healthz.
start_daemon() {
	local work=$1 i
	NF_PORT=${NF_PORT:-$(free_port)}
	SF_PORT=${SF_PORT:-$(free_port)}
	HTTP_PORT=${HTTP_PORT:-$(free_port)}
	BASE_URL=http://127.0.0.1:$HTTP_PORT
	mkdir -p "$work/data"
	FLOWSHIELD_NETWORKS=${FLOWSHIELD_NETWORKS:-203.0.113.0/24} \
		FLOWSHIELD_NETFLOW_LISTEN=127.0.0.1:$NF_PORT \
		FLOWSHIELD_SFLOW_LISTEN=127.0.0.1:$SF_PORT \
		FLOWSHIELD_HTTP_LISTEN=127.0.0.1:$HTTP_PORT \
		FLOWSHIELD_DATA_DIR=$work/data \
		"${DAEMON_PIN[@]}" "$FS_BIN" run >"$work/daemon.log" 2>&1 &
	DAEMON_PID=$!
	for ((i = 0; i < 100; i++)); do
		if curl -fsS -m 1 "$BASE_URL/healthz" >/dev/null 2>&1; then
			log "daemon pid $DAEMON_PID up: netflow 127.0.0.1:$NF_PORT sflow 127.0.0.1:$SF_PORT http $BASE_URL"
			return
		fi
		kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$work/daemon.log" >&2; die "daemon exited during start-up"; }
		sleep 0.1
	done
	die "daemon not healthy after 10 s (log: $work/daemon.log)"
}

# limit_cpu PID PERCENT: puts PID (the whole process) in a cgroup of its
# own allowed PERCENT of one core (CFS quota over a 20 ms period, cgroup v2
# cpu.max or v1 cpu.cfs_quota_us): a router's slower or shared CPU on this
# machine, so that one blaster can offer many times what the daemon can
# take. Sets CPU_CGROUP (removed by release_cpu).
CPU_CGROUP=
limit_cpu() {
	local pid=$1 pct=$2 quota dir
	quota=$((pct * 200)) # µs of CPU per 20,000 µs period
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.controllers; then
		dir=/sys/fs/cgroup/flowshield-bench.$$
		grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control || echo +cpu >/sys/fs/cgroup/cgroup.subtree_control || die "enabling the cpu controller"
		mkdir "$dir" && echo "$quota 20000" >"$dir/cpu.max" || die "creating cgroup $dir"
	elif [[ -d /sys/fs/cgroup/cpu ]]; then
		dir=/sys/fs/cgroup/cpu/flowshield-bench.$$
		mkdir "$dir" && echo 20000 >"$dir/cpu.cfs_period_us" && echo "$quota" >"$dir/cpu.cfs_quota_us" || die "creating cgroup $dir"
	else
		die "no cgroup cpu controller for --cpu-quota"
	fi
	echo "$pid" >"$dir/cgroup.procs" || die "moving pid $pid into $dir"
	CPU_CGROUP=$dir
	log "daemon limited to $pct % of one core ($dir)"
}

# release_cpu: removes the cgroup of limit_cpu once its process is gone.
release_cpu() {
	[[ -n $CPU_CGROUP ]] || return 0
	local i
	for ((i = 0; i < 50; i++)); do
		rmdir "$CPU_CGROUP" 2>/dev/null && { CPU_CGROUP=; return 0; }
		sleep 0.1
	done
	log "could not remove $CPU_CGROUP"
}

# stop_daemon: stops the daemon this script started (SIGTERM, then SIGKILL after 10 s).
stop_daemon() {
	local i
	[[ -n ${DAEMON_PID:-} ]] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$DAEMON_PID" 2>/dev/null || { DAEMON_PID=; return 0; }
		sleep 0.1
	done
	kill -KILL "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# cpu_ns PID: utime+stime of the whole process (all threads) in nanoseconds.
# Fields 14 and 15 of /proc/PID/stat, counted after the ")" closing comm,
# since comm may hold spaces.
cpu_ns() {
	local stat rest ticks
	stat=$(<"/proc/$1/stat") || die "reading /proc/$1/stat"
	rest=${stat##*) }
	# rest starts at field 3 (state): utime is its 12th word, stime its 13th.
	read -r -a f <<<"$rest"
	ticks=$((f[11] + f[12]))
	echo $((ticks * 1000000000 / CLK_TCK))
}

# proc_status_kb PID FIELD: a kB value from /proc/PID/status (VmRSS, VmHWM).
proc_status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

status_json() { curl -fsS -m 2 "$BASE_URL/api/v1/status"; }

# kernel_drops_proc PORT: the drops column of /proc/net/udp{,6} for sockets
# bound to PORT (the kernel's own count, whatever the daemon reports).
kernel_drops_proc() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p { s += $NF } END { print s + 0 }' /proc/net/udp /proc/net/udp6
}

# metric NAME_WITH_LABELS: one sample from /metrics (0 if absent).
metric() {
	curl -fsS -m 2 "$BASE_URL/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}

# wait_records_settle: polls status until "records" has not moved for 1 s
# (30 s at most); prints the final count.
wait_records_settle() {
	local last=-1 cur same=0 i
	for ((i = 0; i < 150; i++)); do
		cur=$(status_json | jq -r '.records')
		if [[ $cur == "$last" ]]; then
			same=$((same + 1))
			if ((same >= 5)); then break; fi
		else
			same=0
		fi
		last=$cur
		sleep 0.2
	done
	echo "$cur"
}

# flowgen_target FORMAT: where flowgen must send that format.
flowgen_target() {
	case $1 in
	sflow) echo "127.0.0.1:$SF_PORT" ;;
	*) echo "127.0.0.1:$NF_PORT" ;;
	esac
}

machine_line() {
	printf 'nproc=%s cpu="%s" load="%s" kernel=%s go="%s"\n' "$(nproc)" \
		"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
		"$(cut -d' ' -f1-3 /proc/loadavg)" "$(uname -r)" "$(go version 2>/dev/null | cut -d' ' -f3)"
}

CLK_TCK=$(getconf CLK_TCK)
