package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/config"
)

// needTool skips a test when a Debian tool is missing on a developer's
// machine; in CI (.ci/run installs them) a missing tool is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (bash .ci/run installs it)", name)
	}
	t.Skipf("%s is not installed; run bash .ci/run", name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// captureTotals is what scripts/mkpcap.py says the capture holds.
type captureTotals struct {
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	IPv4Packets uint64 `json:"ipv4_packets"`
	IPv4Bytes   uint64 `json:"ipv4_bytes"`
	PerDst      map[string]struct {
		Packets uint64 `json:"packets"`
		Bytes   uint64 `json:"bytes"`
	} `json:"per_dst"`
}

// makeCapture builds a capture of background traffic plus a UDP flood with
// scapy and returns its path and its own totals.
func makeCapture(t *testing.T, packets int) (string, captureTotals) {
	t.Helper()
	py := "/usr/bin/python3"
	if !fileExists(py) {
		needTool(t, "python3")
	}
	if err := exec.Command(py, "-c", "import scapy.all").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-scapy is not installed")
		}
		t.Skip("python3-scapy is not installed; run bash .ci/run")
	}
	dir := t.TempDir()
	pcap, totals := filepath.Join(dir, "traffic.pcap"), filepath.Join(dir, "traffic.json")
	out, err := exec.Command(py, "../scripts/mkpcap.py", pcap, totals, "--packets", fmt.Sprint(packets)).CombinedOutput()
	if err != nil {
		t.Fatalf("mkpcap.py: %v\n%s", err, out)
	}
	data, err := os.ReadFile(totals)
	if err != nil {
		t.Fatal(err)
	}
	var ct captureTotals
	if err := json.Unmarshal(data, &ct); err != nil {
		t.Fatal(err)
	}
	return pcap, ct
}

// startTestAppliance runs the daemon in-process on loopback ports.
func startTestAppliance(t *testing.T, env map[string]string) *Appliance {
	t.Helper()
	return startTestApplianceWith(t, env, Options{})
}

// startTestApplianceWith is startTestAppliance with opts.
func startTestApplianceWith(t *testing.T, env map[string]string, opts Options) *Appliance {
	t.Helper()
	base := map[string]string{
		"FLOWSHIELD_NETWORKS":       "203.0.113.0/24,2001:db8:1::/48",
		"FLOWSHIELD_NETFLOW_LISTEN": "127.0.0.1:0",
		"FLOWSHIELD_SFLOW_LISTEN":   "127.0.0.1:0",
		"FLOWSHIELD_HTTP_LISTEN":    "127.0.0.1:0",
		"FLOWSHIELD_DATA_DIR":       t.TempDir(),
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, err := config.FromEnv(base)
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := New(cfg, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return a
}

func getStatus(t *testing.T, a *Appliance) api.Status {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr().String() + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s api.Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitStatus polls the status API until cond holds or the time runs out,
// and returns the last status seen.
func waitStatus(t *testing.T, a *Appliance, timeout time.Duration, cond func(api.Status) bool) api.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := getStatus(t, a)
		if cond(s) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
}
