package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hello stands in for the daemon: the test checks the image's layout and
// that its binary runs on the image's architecture (under qemu), not
// flowshield itself.
const hello = `package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() { fmt.Printf("hello from %s/%s %v\n", runtime.GOOS, runtime.GOARCH, os.Args[1:]) }
`

// crossCompile builds hello for linux/goarch (GOARM=7 for arm), static.
func crossCompile(t *testing.T, dir, goarch string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool in PATH")
	}
	src := filepath.Join(dir, "hello.go")
	if err := os.WriteFile(src, []byte(hello), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "hello-"+goarch)
	cmd := exec.Command(goTool, "build", "-o", out, src)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch, "GOARM=7", "GO111MODULE=off", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cross-compiling hello for %s: %v\n%s", goarch, err, b)
	}
	return out
}

// dockerArchive is a docker-archive tar read back: its files by name.
type dockerArchive map[string][]byte

func readArchive(t *testing.T, path string) dockerArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTar(t, f)
}

func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for i := 0; i < 10000; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/") + "/"
		}
		files[name] = b
	}
	t.Fatal("tar with more than 10000 entries")
	return nil
}

func TestImageArchive(t *testing.T) {
	tests := []struct {
		arch, variant, qemu string
	}{
		{"arm64", "v8", "qemu-aarch64-static"},
		{"arm", "v7", "qemu-arm-static"},
		{"amd64", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			dir := t.TempDir()
			bin := crossCompile(t, dir, tt.arch)
			out := filepath.Join(dir, "image.tar")
			if err := build(tt.arch, bin, out, "flowshield:test", ""); err != nil {
				t.Fatalf("build: %v", err)
			}
			files := readArchive(t, out)

			// manifest.json: one image, its config and its layer.
			var manifest []struct {
				Config   string
				RepoTags []string
				Layers   []string
			}
			if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
				t.Fatalf("manifest.json: %v (files: %v)", err, keys(files))
			}
			if len(manifest) != 1 || len(manifest[0].Layers) != 1 || manifest[0].Config == "" {
				t.Fatalf("manifest.json: %+v", manifest)
			}
			if len(manifest[0].RepoTags) != 1 || !strings.HasSuffix(manifest[0].RepoTags[0], "flowshield:test") {
				t.Errorf("repo tags %v", manifest[0].RepoTags)
			}

			// The config: platform, entrypoint, env, volume, ports.
			var config struct {
				OS, Architecture, Variant string
				Config                    struct {
					Entrypoint, Cmd, Env []string
					Volumes              map[string]struct{}
					ExposedPorts         map[string]struct{}
					User                 string
				}
			}
			if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
				t.Fatalf("config %s: %v", manifest[0].Config, err)
			}
			if config.OS != "linux" || config.Architecture != tt.arch || config.Variant != tt.variant {
				t.Errorf("platform %s/%s/%s, want linux/%s/%s", config.OS, config.Architecture, config.Variant, tt.arch, tt.variant)
			}
			if strings.Join(config.Config.Entrypoint, " ") != "/flowshield" || strings.Join(config.Config.Cmd, " ") != "run" {
				t.Errorf("entrypoint %v cmd %v", config.Config.Entrypoint, config.Config.Cmd)
			}
			if !contains(config.Config.Env, "FLOWSHIELD_DATA_DIR=/data") {
				t.Errorf("env %v", config.Config.Env)
			}
			if _, ok := config.Config.Volumes["/data"]; !ok {
				t.Errorf("volumes %v", config.Config.Volumes)
			}
			for _, port := range []string{"2055/udp", "6343/udp", "8080/tcp"} {
				if _, ok := config.Config.ExposedPorts[port]; !ok {
					t.Errorf("port %s not exposed: %v", port, config.Config.ExposedPorts)
				}
			}

			// The layer: an uncompressed tar (RouterOS extracts it as is)
			// with the binary, /data and /tmp.
			layer := files[manifest[0].Layers[0]]
			if len(layer) < 512 || bytes.HasPrefix(layer, []byte{0x1f, 0x8b}) {
				t.Fatalf("layer %s: %d bytes, gzip %v", manifest[0].Layers[0], len(layer), bytes.HasPrefix(layer, []byte{0x1f, 0x8b}))
			}
			root := readTar(t, bytes.NewReader(layer))
			for _, name := range []string{"flowshield", "data/", "tmp/", "etc/passwd"} {
				if _, ok := root[name]; !ok {
					t.Errorf("layer lacks %s: %v", name, keys(root))
				}
			}
			want, _ := os.ReadFile(bin)
			if !bytes.Equal(root["flowshield"], want) {
				t.Fatalf("the layer's /flowshield is not the binary")
			}

			// Unpacked, the binary runs on the image's architecture.
			if tt.qemu == "" {
				return
			}
			qemu, err := exec.LookPath(tt.qemu)
			if err != nil {
				t.Skipf("%s not installed (Debian package qemu-user-static)", tt.qemu)
			}
			unpacked := filepath.Join(dir, "rootfs-flowshield")
			if err := os.WriteFile(unpacked, root["flowshield"], 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(qemu, unpacked, "run")
			var stdout bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("%s %s: no exit within 30s", tt.qemu, unpacked)
			}
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tt.qemu, unpacked, err, stdout.String())
			}
			if got, want := stdout.String(), "hello from linux/"+tt.arch+" [run]\n"; got != want {
				t.Errorf("output %q, want %q", got, want)
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ arch, bin, out, want string }{
		{"mips", bin, filepath.Join(dir, "o.tar"), "unsupported -arch"},
		{"arm64", "", filepath.Join(dir, "o.tar"), "required"},
		{"arm64", filepath.Join(dir, "missing"), filepath.Join(dir, "o.tar"), "reading binary"},
	} {
		if err := build(tc.arch, tc.bin, tc.out, "flowshield:test", ""); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("build(%s, %q): %v, want %q", tc.arch, tc.bin, err, tc.want)
		}
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
