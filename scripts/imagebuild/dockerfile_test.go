package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerfileStage is what the final stage of a Dockerfile says about the
// image's config and its /data directory.
type dockerfileStage struct {
	Entrypoint, Cmd []string
	Env             []string // KEY=value, sorted
	ExposedPorts    []string // sorted
	Volumes         []string // sorted
	WorkingDir      string
	User            string
	DataOwner       string // uid:gid of COPY --chown=... /data
}

// parseDockerfile reads the instructions of the last FROM stage that make
// the image config. It knows the forms Dockerfile.arm64 uses: JSON arrays
// for ENTRYPOINT, CMD and VOLUME (or a plain VOLUME list), ENV key=value
// pairs, line continuations.
func parseDockerfile(t *testing.T, text string) dockerfileStage {
	t.Helper()
	var lines []string
	var cont strings.Builder
	for raw := range strings.SplitSeq(text, "\n") {
		l := strings.TrimSpace(raw)
		if cont.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cont.WriteString(s + " ")
			continue
		}
		cont.WriteString(l)
		lines = append(lines, cont.String())
		cont.Reset()
	}
	var st dockerfileStage
	jsonArray := func(instr, arg string) []string {
		var v []string
		if err := json.Unmarshal([]byte(arg), &v); err != nil {
			t.Fatalf("Dockerfile %s %s: want the JSON form: %v", instr, arg, err)
		}
		return v
	}
	for _, l := range lines {
		instr, arg, _ := strings.Cut(l, " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(instr) {
		case "FROM":
			st = dockerfileStage{} // only the last stage is the image
		case "ENTRYPOINT":
			st.Entrypoint = jsonArray(instr, arg)
		case "CMD":
			st.Cmd = jsonArray(instr, arg)
		case "ENV":
			for _, kv := range strings.Fields(arg) {
				if !strings.Contains(kv, "=") {
					t.Fatalf("Dockerfile ENV %s: want KEY=value", arg)
				}
				st.Env = append(st.Env, kv)
			}
		case "EXPOSE":
			st.ExposedPorts = append(st.ExposedPorts, strings.Fields(arg)...)
		case "VOLUME":
			if strings.HasPrefix(arg, "[") {
				st.Volumes = append(st.Volumes, jsonArray(instr, arg)...)
			} else {
				st.Volumes = append(st.Volumes, strings.Fields(arg)...)
			}
		case "WORKDIR":
			st.WorkingDir = arg
		case "USER":
			st.User = arg
		case "COPY":
			f := strings.Fields(arg)
			if len(f) > 0 && f[len(f)-1] == "/data" {
				for _, o := range f {
					if owner, ok := strings.CutPrefix(o, "--chown="); ok {
						st.DataOwner = owner
					}
				}
			}
		}
	}
	slices.Sort(st.Env)
	slices.Sort(st.ExposedPorts)
	slices.Sort(st.Volumes)
	return st
}

func TestParseDockerfile(t *testing.T) {
	got := parseDockerfile(t, `FROM golang AS build
ENV GOFLAGS=-x
FROM scratch
COPY --from=build \
     --chown=1:2 /out/data /data
ENV B=2 A=1
EXPOSE 53/udp
EXPOSE 80/tcp
# VOLUME /ignored
VOLUME ["/data", "/x"]
WORKDIR /data
USER 7:8
ENTRYPOINT ["/bin/x", "-v"]
CMD ["run"]
`)
	want := dockerfileStage{
		Entrypoint: []string{"/bin/x", "-v"}, Cmd: []string{"run"},
		Env: []string{"A=1", "B=2"}, ExposedPorts: []string{"53/udp", "80/tcp"},
		Volumes: []string{"/data", "/x"}, WorkingDir: "/data", User: "7:8", DataOwner: "1:2",
	}
	if g, w := jsonString(t, got), jsonString(t, want); g != w {
		t.Errorf("parsed\n%s\nwant\n%s", g, w)
	}
}

// TestDockerfileAgrees holds Dockerfile.arm64 (for those with Docker
// buildx) and the daemonless image this command writes (what RouterOS
// imports) to the same user, entrypoint, env, ports, volume, working
// directory and /data owner.
func TestDockerfileAgrees(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile.arm64"))
	if err != nil {
		t.Fatal(err)
	}
	want := parseDockerfile(t, string(text))

	dir := t.TempDir()
	bin := filepath.Join(dir, "flowshield")
	if err := os.WriteFile(bin, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "image.tar")
	if err := build("arm64", bin, out, "flowshield:test", ""); err != nil {
		t.Fatal(err)
	}
	files := readArchive(t, out)
	var manifest []struct{ Config string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json: %v %+v", err, manifest)
	}
	var config struct {
		Config struct {
			Entrypoint, Cmd, Env []string
			ExposedPorts         map[string]struct{}
			Volumes              map[string]struct{}
			WorkingDir, User     string
		}
	}
	if err := json.Unmarshal(files[manifest[0].Config], &config); err != nil {
		t.Fatal(err)
	}
	c := config.Config
	got := dockerfileStage{
		Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: slices.Sorted(slices.Values(c.Env)),
		ExposedPorts: slices.Sorted(maps.Keys(c.ExposedPorts)), Volumes: slices.Sorted(maps.Keys(c.Volumes)),
		WorkingDir: c.WorkingDir, User: c.User, DataOwner: dataDirOwner(t, files),
	}
	if g, w := jsonString(t, got), jsonString(t, want); g != w {
		t.Errorf("the daemonless image and Dockerfile.arm64 differ:\nimagebuild:     %s\nDockerfile.arm64: %s", g, w)
	}
	if want.User == "" || want.DataOwner == "" || len(want.Entrypoint) == 0 {
		t.Errorf("Dockerfile.arm64 parsed to %+v: no USER, /data owner or ENTRYPOINT found", want)
	}
}

// dataDirOwner is the uid:gid of data/ in the archive's only layer.
func dataDirOwner(t *testing.T, files dockerArchive) string {
	t.Helper()
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json: %v %+v", err, manifest)
	}
	tr := tar.NewReader(bytes.NewReader(files[manifest[0].Layers[0]]))
	for range 10000 {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") == "data/" {
			return strconv.Itoa(h.Uid) + ":" + strconv.Itoa(h.Gid)
		}
	}
	t.Fatal("no data/ in the layer")
	return ""
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
