#!/usr/bin/env bash
# Go tests for the router architectures under user-mode qemu: linux/arm64
# (CCR2004/2116/2216) and linux/arm v7 (32-bit ARM RouterBOARDs). This is how
# a 64-bit atomic on a field that is not 8-byte aligned (fine on amd64 and
# arm64, a panic on 32-bit ARM) is caught before it reaches a router.
# There is no binfmt_misc here, so go test runs each test binary through
# -exec qemu-*-static. qemu is 7-10x slower than native: these runs are for
# correctness, not timing (benchmarks are not run).
#
#   scripts/qemu-test.sh                 the default packages, both architectures
#   scripts/qemu-test.sh ./flow/pcapfile  some packages
#   ARCHES=arm scripts/qemu-test.sh       one architecture (arm64, arm)
#   GOTESTFLAGS="-run Decode -v" scripts/qemu-test.sh
#
# GOTESTFLAGS defaults to -short: tests that wait on wall-clock deadlines
# should skip under testing.Short(), since qemu on a loaded CI machine misses
# them without anything being wrong. FLOWSHIELD_TEST_QEMU=1 is set for the
# tests: skip on it what user-mode qemu does not emulate (socket options and
# ancillary data such as SO_RXQ_OVFL drop counters, SO_RCVBUFFORCE).
#
# Exit status: 0 when every run passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -gt 0 ]; then
	pkgs=("$@")
else
	pkgs=(./detect/... ./flow/... ./routeros/...)
fi
arches="${ARCHES:-arm64 arm}"
# shellcheck disable=SC2206 # word splitting of the flags is wanted
extra=(${GOTESTFLAGS--short})

need_qemu() {
	command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null && return 0
	echo "qemu-test: installing qemu-user-static" >&2
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
	fi
	command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null
}
if ! need_qemu; then
	echo "qemu-test: qemu-aarch64-static and qemu-arm-static are needed (Debian package qemu-user-static)" >&2
	exit 1
fi

status=0
for arch in $arches; do
	case "$arch" in
	arm64) env=(GOARCH=arm64) qemu=qemu-aarch64-static ;;
	arm) env=(GOARCH=arm GOARM=7) qemu=qemu-arm-static ;;
	*)
		echo "qemu-test: unknown architecture $arch (arm64, arm)" >&2
		exit 1
		;;
	esac
	echo "== $arch: go test ${pkgs[*]} (under $qemu)"
	start=$(date +%s)
	# CGO off: the cross compiler is not there, and the router binaries are
	# static anyway. -count=1: results cached from a native run do not count.
	if env FLOWSHIELD_TEST_QEMU=1 CGO_ENABLED=0 GOOS=linux "${env[@]}" go test -count=1 -exec "$qemu" "${extra[@]}" "${pkgs[@]}"; then
		result=ok
	else
		result=FAILED
		status=1
	fi
	echo "== $arch: $result in $(($(date +%s) - start))s"
done
exit $status
