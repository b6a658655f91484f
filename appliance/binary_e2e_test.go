package appliance

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros/routerostest"
)

// freeLoopbackAddr returns a loopback address with a free port of the network.
func freeLoopbackAddr(t *testing.T, network string) string {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
}

// TestBinaryBansFlood runs the flowshield binary as its own process, the
// way a router runs it, against the RouterOS emulator: flows of a UDP flood
// arrive on loopback, the flood is detected and banned with an address-list
// entry. FLOWSHIELD_TEST_BINARY picks a prebuilt binary (e.g. the arm64
// one unpacked from the container image) and FLOWSHIELD_TEST_EXEC a runner
// for it (qemu-aarch64-static); without them the test builds the binary
// for this machine.
func TestBinaryBansFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	bin := os.Getenv("FLOWSHIELD_TEST_BINARY")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "flowshield")
		build := exec.Command("go", "build", "-o", bin, "./cmd/flowshield")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	emu := startEmulator(t)
	netflow, httpAddr := freeLoopbackAddr(t, "udp"), freeLoopbackAddr(t, "tcp")
	args := []string{bin, "run"}
	if runner := os.Getenv("FLOWSHIELD_TEST_EXEC"); runner != "" {
		args = append([]string{runner}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(),
		"FLOWSHIELD_NETWORKS=203.0.113.0/24",
		"FLOWSHIELD_NETFLOW_LISTEN="+netflow,
		"FLOWSHIELD_SFLOW_LISTEN=",
		"FLOWSHIELD_HTTP_LISTEN="+httpAddr,
		"FLOWSHIELD_DATA_DIR="+t.TempDir(),
		"FLOWSHIELD_ACTION=address-list",
		"FLOWSHIELD_WINDOW=1s",
		"FLOWSHIELD_BAN_TIME=30s",
		"FLOWSHIELD_ROUTEROS_ADDRESS="+emu.Addr(),
		"FLOWSHIELD_ROUTEROS_USER=flowshield",
		"FLOWSHIELD_ROUTEROS_PASSWORD=s3cret-e2e",
	)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", logs.String())
		}
	}()

	healthy := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				healthy = true
				break
			}
		}
	}
	if !healthy {
		t.Fatal("the daemon did not become healthy")
	}
	victim := netip.MustParseAddr("203.0.113.66")
	start := time.Now()
	go func() {
		if err := sendFlood(netflow, victim, 60000, 5*time.Second); err != nil {
			t.Error(err)
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if o, ok := findObject(emu, routerostest.MenuAddressList, "address", victim); ok {
			t.Logf("banned %s after %v: %v", victim, time.Since(start).Round(time.Millisecond), o.Props)
			return
		}
	}
	t.Fatalf("no address-list entry for %s on the router", victim)
}
