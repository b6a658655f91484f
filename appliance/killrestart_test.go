package appliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/routeros/routerostest"
	"github.com/flowshield/flowshield/storage"
)

// The flowshield binary killed with SIGKILL during an attack and started
// again on the same data directory: the router ends with exactly the
// stored bans, never a duplicate, and the unbans still happen.

// flowshieldBinary builds ./cmd/flowshield into a temporary directory.
func flowshieldBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowshield")
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if !fileExists(goTool) {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/flowshield")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flowshield: %v\n%s", err, out)
	}
	return bin
}

// freeAddr reserves a loopback port of network ("tcp" or "udp") and frees
// it for the daemon, which keeps it across its restarts.
func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// lockedBuffer collects a subprocess's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonProcess is one `flowshield run` subprocess.
type daemonProcess struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

func startDaemonProcess(t *testing.T, bin string, env map[string]string) *daemonProcess {
	t.Helper()
	p := &daemonProcess{out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "run")
	p.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting flowshield: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("flowshield (pid %d) output:\n%s", p.cmd.Process.Pid, p.out.String())
		}
	})
	base := "http://" + env["FLOWSHIELD_HTTP_LISTEN"]
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("flowshield exited at start: %v\n%s", p.err, p.out.String())
		default:
		}
		resp, err := http.Get(base + "/api/v1/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("flowshield's API did not come up: %v\n%s", err, p.out.String())
		}
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *daemonProcess) kill(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("flowshield (pid %d) still running 10s after SIGKILL", p.cmd.Process.Pid)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *daemonProcess) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("flowshield exited with %v after SIGTERM\n%s", p.err, p.out.String())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("flowshield did not stop within 15s of SIGTERM")
		p.kill(t)
	}
}

// runFlood sends a UDP flood onto victim until ctx ends; write errors
// while the daemon is down are expected and ignored by the sender.
func runFlood(ctx context.Context, target string, victim netip.Addr, d time.Duration) error {
	sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{
		Seed: 9,
		Floods: []flowgen.Flood{{Kind: flowgen.FloodUDP, Target: netip.PrefixFrom(victim, victim.BitLen()),
			PPS: 60000, FlowsPerSecond: 200, Sources: 300}},
	})
	if err != nil {
		return err
	}
	scfg := flowgen.DefaultSenderConfiguration()
	scfg.Target = target
	scfg.Encoder.Format = flowgen.FormatRouterOSV9
	scfg.Duration = d
	scfg.Logger = slog.New(slog.DiscardHandler)
	s, err := flowgen.NewSender(scfg, sc)
	if err != nil {
		return err
	}
	_, err = s.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// readStoredBans opens the dead daemon's store and returns its ban keys.
func readStoredBans(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := storage.Open(ctx, filepath.Join(dataDir, "flowshield.db"), storage.DefaultOptions())
	if err != nil {
		t.Fatalf("opening the killed daemon's store: %v", err)
	}
	defer st.Close()
	if moved := st.Recovered(); moved != "" {
		t.Errorf("the store was damaged by SIGKILL and moved to %s", moved)
	}
	bans, bad, err := st.LoadBans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, b := range bans {
		out[b.Key()] = 1
	}
	for _, b := range bad {
		out[b.Key] = 1
	}
	return out
}

// apiBanKeys is GET /api/v1/bans as store keys.
func apiBanKeys(t *testing.T, base string) map[string]int {
	t.Helper()
	bans, err := getBans(base)
	if err != nil {
		t.Fatalf("GET /api/v1/bans: %v", err)
	}
	out := map[string]int{}
	for _, b := range bans {
		p, ok := hostPrefix(b.Prefix)
		if !ok {
			t.Fatalf("ban prefix %q", b.Prefix)
		}
		out[banKeyOf(p, b.Direction)]++
	}
	return out
}

// duplicateWatch samples the router's objects until stopped and remembers
// the first key seen more than once.
func duplicateWatch(emu *routerostest.Server, actions ...string) (stop func() string) {
	done := make(chan struct{})
	result := make(chan string, 1)
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		first := ""
		for {
			select {
			case <-done:
				result <- first
				return
			case <-t.C:
			}
			if first != "" {
				continue
			}
			for _, action := range actions {
				for k, n := range routerBans(emu, action) {
					if n > 1 {
						first = fmt.Sprintf("%s %s held %d times", action, k, n)
					}
				}
			}
		}
	}()
	return func() string { close(done); return <-result }
}

// TestKillRestart: SIGKILL during an attack, then a restart on the same
// DATA_DIR, with the router kept or rebooted (timed entries gone) while
// flowshield was down.
func TestKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the flowshield binary")
	}
	bin := flowshieldBinary(t)
	for _, rebootRouter := range []bool{false, true} {
		name := "router kept"
		if rebootRouter {
			name = "router restarted while flowshield was down"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			emu := startRouterEmulator(t)
			foreign := seedForeign(t, emu)
			// Both an address-list entry (timed: gone when the router
			// reboots) and a raw rule (which the router would happily hold
			// twice) per ban.
			actions := []string{"address-list", "raw-drop"}
			env := map[string]string{
				"FLOWSHIELD_NETWORKS":          "203.0.113.0/24,2001:db8:1::/48",
				"FLOWSHIELD_NETFLOW_LISTEN":    freeAddr(t, "udp"),
				"FLOWSHIELD_SFLOW_LISTEN":      freeAddr(t, "udp"),
				"FLOWSHIELD_HTTP_LISTEN":       freeAddr(t, "tcp"),
				"FLOWSHIELD_DATA_DIR":          t.TempDir(),
				"FLOWSHIELD_ACTION":            "address-list,raw-drop",
				"FLOWSHIELD_BAN_TIME":          "6s",
				"FLOWSHIELD_WINDOW":            "1s",
				"FLOWSHIELD_LOG_LEVEL":         "debug",
				"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
				"FLOWSHIELD_ROUTEROS_USER":     faultUser,
				"FLOWSHIELD_ROUTEROS_PASSWORD": faultPassword,
			}
			base := "http://" + env["FLOWSHIELD_HTTP_LISTEN"]
			victim := netip.MustParseAddr("203.0.113.66")
			victimKey := banKeyOf(netip.PrefixFrom(victim, 32), "in")
			manualKey := banKeyOf(netip.MustParsePrefix("203.0.113.99/32"), "in")

			first := startDaemonProcess(t, bin, env)
			for deadline := time.Now().Add(10 * time.Second); emu.Logins() == 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			dupes := duplicateWatch(emu, actions...)

			// The flood goes on across the kill and the restart.
			floodCtx, stopFlood := context.WithCancel(context.Background())
			defer stopFlood()
			floodErr := make(chan error, 1)
			go func() { floodErr <- runFlood(floodCtx, env["FLOWSHIELD_NETFLOW_LISTEN"], victim, 9*time.Second) }()

			postBan(t, base, "203.0.113.99", "10m")
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				got, raw := routerBans(emu, "address-list"), routerBans(emu, "raw-drop")
				if got[victimKey] == 1 && got[manualKey] == 1 && raw[victimKey] == 1 && raw[manualKey] == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("bans on the router before the kill: address-list %v, raw %v", got, raw)
				}
			}

			first.kill(t)
			stored := readStoredBans(t, env["FLOWSHIELD_DATA_DIR"])
			if want := map[string]int{victimKey: 1, manualKey: 1}; !maps.Equal(stored, want) {
				t.Fatalf("the killed daemon's store holds %v, want %v", stored, want)
			}
			if rebootRouter {
				emu.Restart()
				if got := routerBans(emu, "address-list"); len(got) != 0 {
					t.Fatalf("the router kept timed entries across its restart: %v", got)
				}
			}

			second := startDaemonProcess(t, bin, env)
			if got := apiBanKeys(t, base); !maps.Equal(got, stored) {
				t.Errorf("after the restart the daemon has bans %v, the store had %v", got, stored)
			}
			for _, action := range actions {
				waitRouterMatches(t, emu, action, 15*time.Second, func() map[string]int { return apiBanKeys(t, base) })
				if got := routerBans(emu, action); !maps.Equal(got, stored) {
					t.Errorf("after the restart the router holds %s %v, the store had %v", action, got, stored)
				}
			}

			deleteBan(t, base, "203.0.113.99/32")
			for _, action := range actions {
				waitRouterMatches(t, emu, action, 10*time.Second, func() map[string]int { return map[string]int{victimKey: 1} })
			}

			// The flood stops; the attack ends and the ban runs out.
			if err := <-floodErr; err != nil {
				t.Errorf("flood: %v", err)
			}
			// Both gone: the daemon's ban and the router's entry (which may
			// also lapse by its own timeout a moment before the unban).
			for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				bans, entries, rules := apiBanKeys(t, base), routerBans(emu, "address-list"), routerBans(emu, "raw-drop")
				if len(bans) == 0 && len(entries) == 0 && len(rules) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("40s after the flood: bans %v, on the router %v and %v", bans, entries, rules)
				}
			}
			second.stop(t)
			if d := dupes(); d != "" {
				t.Errorf("duplicate on the router: %s", d)
			}
			if left := readStoredBans(t, env["FLOWSHIELD_DATA_DIR"]); len(left) != 0 {
				t.Errorf("the store still holds %v", left)
			}
			foreign.check(t, emu)
		})
	}
}
