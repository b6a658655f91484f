#!/usr/bin/env bash
# Static, stripped builds of flowshield for the router architectures, with the
# size budget checked: linux/arm64 (CCR2004/2116/2216), linux/arm v7, and
# linux/amd64 (CHR, off-box). Output: dist/flowshield-linux-<arch>.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=$((10 * 1024 * 1024))
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
commit="${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
pkg=github.com/flowshield/flowshield/appliance
ldflags="-s -w -X ${pkg}.Version=${version} -X ${pkg}.Commit=${commit}"
mkdir -p dist
status=0
for target in arm64 arm:7 amd64; do
	arch="${target%%:*}"
	goarm=""
	[ "$target" != "$arch" ] && goarm="${target#*:}"
	out="dist/flowshield-linux-${arch}${goarm:+v$goarm}"
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOARM="$goarm" \
		go build -trimpath -ldflags "$ldflags" -o "$out" ./cmd/flowshield
	size=$(stat -c %s "$out")
	awk -v o="$out" -v s="$size" 'BEGIN{printf "%-32s %9d bytes (%.1f MiB)\n", o, s, s/1048576}'
	if [ "$size" -gt "$budget" ]; then
		echo "size budget exceeded: $out is $size bytes, budget $budget" >&2
		status=1
	fi
done
exit $status
