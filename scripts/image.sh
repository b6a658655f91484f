#!/usr/bin/env bash
# Daemonless container images for RouterOS: builds the static binaries
# (scripts/build.sh) and writes one docker-archive tar per architecture,
# dist/flowshield-<arch>.tar, ready for `/container add file=...`.
set -euo pipefail
cd "$(dirname "$0")/.."
# SKIP_BUILD=1 packs the binaries already in dist/.
[ -n "${SKIP_BUILD:-}" ] || bash scripts/build.sh
tool="$(mktemp -d)/imagebuild"
trap 'rm -rf "$(dirname "$tool")"' EXIT
# imagebuild is its own module (go-containerregistry stays out of the product's).
go -C scripts/imagebuild build -o "$tool" .
for a in arm64 arm amd64; do
	bin="dist/flowshield-linux-${a}"
	[ "$a" = arm ] && bin="dist/flowshield-linux-armv7"
	"$tool" -arch "$a" -binary "$bin" -out "dist/flowshield-${a}.tar" -tag "flowshield:${VERSION:-latest}"
	echo "dist/flowshield-${a}.tar"
done
