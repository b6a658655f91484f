#!/usr/bin/env bash
# Daemonless container images for RouterOS: builds the static binaries
# (scripts/build.sh) and writes one docker-archive tar per architecture,
# dist/flowshield-<arch>.tar, ready for `/container add file=...`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/flowshield-linux-arm64 ] || bash scripts/build.sh
for a in arm64 arm amd64; do
	bin="dist/flowshield-linux-${a}"
	[ "$a" = arm ] && bin="dist/flowshield-linux-armv7"
	go run ./scripts/imagebuild -arch "$a" -binary "$bin" -out "dist/flowshield-${a}.tar" -tag "flowshield:${VERSION:-latest}"
	echo "dist/flowshield-${a}.tar"
done
