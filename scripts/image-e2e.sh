#!/usr/bin/env bash
# End to end on the arm64 container image, without a Docker engine or an
# ARM machine: builds the image tar RouterOS imports, checks that its
# manifest and config say linux/arm64, unpacks the layer, and runs the
# unpacked binary under qemu-aarch64-static through the same end-to-end
# test as on amd64 (flows on loopback, a flood detected and banned on the
# RouterOS emulator: appliance.TestBinaryBansFlood).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-aarch64-static >/dev/null || { echo "image-e2e: qemu-user-static is not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags "-s -w" -o "$work/flowshield-linux-arm64" ./cmd/flowshield
# imagebuild is its own module; its paths here are absolute.
go -C scripts/imagebuild run . -arch arm64 -binary "$work/flowshield-linux-arm64" -out "$work/image.tar" -tag flowshield:e2e

mkdir -p "$work/x" "$work/rootfs"
tar -xf "$work/image.tar" -C "$work/x"
config=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Config"])' "$work/x/manifest.json")
python3 - "$work/x/$config" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert c["os"] == "linux", c["os"]
assert c["architecture"] == "arm64", c["architecture"]
print("image config:", c["os"], c["architecture"], c.get("variant", ""), c["config"]["Entrypoint"], c["config"]["Cmd"])
PY
for layer in $(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))[0]["Layers"]))' "$work/x/manifest.json"); do
	tar -xf "$work/x/$layer" -C "$work/rootfs"
done
file_arch=$(od -An -tx1 -j18 -N2 "$work/rootfs/flowshield" | tr -d ' ')
[ "$file_arch" = "b700" ] || { echo "image-e2e: the image's binary is not aarch64 (e_machine $file_arch)" >&2; exit 1; }
echo "unpacked /flowshield: ELF aarch64, $(stat -c %s "$work/rootfs/flowshield") bytes"

FLOWSHIELD_TEST_BINARY="$work/rootfs/flowshield" FLOWSHIELD_TEST_EXEC=qemu-aarch64-static \
	go test -count=1 -run '^TestBinaryBansFlood$' -v ./appliance 2>&1 | grep -v 'level=' 
