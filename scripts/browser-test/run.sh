#!/usr/bin/env bash
# Browser test of the web UI in headless Chromium, against `flowshield demo`.
#
# Installs what is missing (Debian's chromium, node and npm, playwright-core
# from package-lock.json), builds flowshield, starts the daemon on a free
# loopback port, waits for /healthz, runs ui.test.mjs, stops the daemon and
# exits non-zero when the test fails.
#
# Environment (all optional):
#   FLOWSHIELD_URL   test a daemon that is already running there; nothing is started
#   FLOWSHIELD_CMD   the daemon command (run with bash; default: the freshly built
#                    binary's `demo`); it gets FLOWSHIELD_HTTP_LISTEN set to the port
#   SCREENSHOT_DIR   where screenshots go (default: REPO/artifacts/screenshots);
#                    the daemon's log goes next to it as daemon.log
#   CHROMIUM         the browser (default /usr/bin/chromium)
#   ATTACK_WAIT, REQUIRE_ATTACK, BAN_PREFIX, FLOWSHIELD_API_TOKEN: see ui.test.mjs
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export SCREENSHOT_DIR="${SCREENSHOT_DIR:-$repo/artifacts/screenshots}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
mkdir -p "$SCREENSHOT_DIR"
daemon_log="$(dirname "$SCREENSHOT_DIR")/daemon.log"

say() { echo "[run.sh] $*"; }

apt_install() {
	if [ "$(id -u)" != 0 ]; then
		say "missing $*: install it (apt-get install $*) or run as root"
		exit 1
	fi
	say "installing $*"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

[ -x "$CHROMIUM" ] || apt_install chromium
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
	say "installing playwright-core (package-lock.json)"
	(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

daemon_pid=""
tmp=$(mktemp -d)
cleanup() {
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		say "stopping the daemon (pid $daemon_pid)"
		kill -TERM -- "-$daemon_pid" 2>/dev/null || kill -TERM "$daemon_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$daemon_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL -- "-$daemon_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ -z "${FLOWSHIELD_URL:-}" ]; then
	port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
	export FLOWSHIELD_URL="http://127.0.0.1:$port"
	export FLOWSHIELD_HTTP_LISTEN="127.0.0.1:$port"
	if [ -z "${FLOWSHIELD_CMD:-}" ]; then
		say "building flowshield"
		(cd "$repo" && go build -o "$tmp/flowshield" ./cmd/flowshield)
		FLOWSHIELD_CMD="exec '$tmp/flowshield' demo"
	fi
	say "starting: $FLOWSHIELD_CMD (HTTP on $FLOWSHIELD_HTTP_LISTEN, log $daemon_log)"
	# Its own process group, so that stopping it stops all it started.
	setsid bash -c "cd '$repo' && $FLOWSHIELD_CMD" >"$daemon_log" 2>&1 &
	daemon_pid=$!
	say "waiting for $FLOWSHIELD_URL/healthz"
	healthy=""
	for _ in $(seq 120); do
		if ! kill -0 "$daemon_pid" 2>/dev/null; then
			say "the daemon exited; its log:"
			tail -n 40 "$daemon_log"
			exit 1
		fi
		if node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$FLOWSHIELD_URL/healthz"; then
			healthy=1
			break
		fi
		sleep 0.5
	done
	if [ -z "$healthy" ]; then
		say "no healthy daemon at $FLOWSHIELD_URL/healthz after 60 s; its log:"
		tail -n 40 "$daemon_log"
		exit 1
	fi
fi

say "testing $FLOWSHIELD_URL; screenshots in $SCREENSHOT_DIR"
status=0
(cd "$here" && node ui.test.mjs) || status=$?
if [ "$status" != 0 ] && [ -f "$daemon_log" ]; then
	say "test failed; the daemon's last log lines:"
	tail -n 20 "$daemon_log"
fi
exit "$status"
