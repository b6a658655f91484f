// Command imagebuild writes a single-architecture container image of
// flowshield as a docker-archive tar (the `docker save` layout: manifest.json,
// the config JSON, uncompressed layer tars), which RouterOS imports with
// `/container add file=...`. RouterOS cannot extract an OCI-layout tar nor a
// multi-platform one, and no Docker engine exists on the build machines, so
// the image is assembled here with go-containerregistry. This directory is
// its own module so that go-containerregistry's dependencies stay out of
// flowshield's; run it from here (relative paths are then relative to
// scripts/imagebuild):
//
//	go -C scripts/imagebuild run . -arch arm64 -binary "$PWD/dist/flowshield-linux-arm64" -out "$PWD/dist/flowshield-arm64.tar"
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/legacy/tarball"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	v1tarball "github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	var (
		arch    = flag.String("arch", "arm64", "image architecture: arm64, arm (v7) or amd64")
		binary  = flag.String("binary", "", "the static flowshield binary for that architecture")
		out     = flag.String("out", "", "output docker-archive tar")
		tag     = flag.String("tag", "flowshield:latest", "image reference written into the archive")
		caCerts = flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include (for API-SSL and webhooks); empty to skip")
	)
	flag.Parse()
	if err := build(*arch, *binary, *out, *tag, *caCerts); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func build(arch, binary, out, tag, caCerts string) error {
	if binary == "" || out == "" {
		return errors.New("-binary and -out are required")
	}
	platform := v1.Platform{OS: "linux", Architecture: arch}
	switch arch {
	case "arm64":
		platform.Variant = "v8"
	case "arm":
		platform.Variant = "v7"
	case "amd64":
	default:
		return fmt.Errorf("unsupported -arch %q: expected arm64, arm or amd64", arch)
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("reading binary: %w", err)
	}
	var ca []byte
	if caCerts != "" {
		if ca, err = os.ReadFile(caCerts); err != nil {
			return fmt.Errorf("reading CA bundle: %w", err)
		}
	}
	layerTar, err := rootfs(bin, ca)
	if err != nil {
		return fmt.Errorf("building root filesystem layer: %w", err)
	}
	layer, err := v1tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return fmt.Errorf("making layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("appending layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config = v1.Config{
		Entrypoint: []string{"/flowshield"},
		Cmd:        []string{"run"},
		Env: []string{
			"FLOWSHIELD_DATA_DIR=/data",
			"PATH=/",
		},
		ExposedPorts: map[string]struct{}{"2055/udp": {}, "6343/udp": {}, "8080/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		WorkingDir:   "/data",
		// Root only to start: RouterOS makes the /data mount owned by root
		// and has no rootless mode, so flowshield hands /data to
		// 65534:65534 and becomes that user before it opens a socket
		// (container.DropPrivileges). Dockerfile.arm64 says the same
		// (TestDockerfileAgrees).
		User: "0:0",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return fmt.Errorf("setting config: %w", err)
	}
	ref, err := name.ParseReference(tag)
	if err != nil {
		return fmt.Errorf("parsing -tag: %w", err)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("creating output: %w", err)
	}
	if err := tarball.Write(ref, img, f); err != nil {
		f.Close()
		return fmt.Errorf("writing docker-archive: %w", err)
	}
	return f.Close()
}

// dataOwner owns /data in the image, as in Dockerfile.arm64: the user
// flowshield runs as (container.RunAsUID), so that an engine started with
// --user 65534 and no mount can write there too.
const dataOwner = 65534

// rootfs is the image's only layer: the binary, the CA bundle, /data, /tmp.
func rootfs(bin, ca []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	dirs := []string{"data/", "tmp/", "etc/", "etc/ssl/", "etc/ssl/certs/"}
	for _, d := range dirs {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mtime}
		switch d {
		case "tmp/":
			h.Mode = 0o1777
		case "data/":
			h.Uid, h.Gid = dataOwner, dataOwner
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"flowshield", 0o755, bin},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/data:/flowshield\nnobody:x:65534:65534:nobody:/nonexistent:/flowshield\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	if ca != nil {
		files = append(files, struct {
			name string
			mode int64
			data []byte
		}{"etc/ssl/certs/ca-certificates.crt", 0o644, ca})
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
