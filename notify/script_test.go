package notify

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
)

const testDetails = "IP: 203.0.113.5\nAttack type: udp_flood\nInitial attack power: 123456 packets per second\n\n" +
	"Flow sample (1 of 1 records seen):\n2026-11-25T01:00:00Z 198.51.100.7:53 > 203.0.113.5:40000 protocol: udp flags: - packets: 1 size: 1400 bytes sample ratio: 1\n"

// installScript copies a testdata script into a temporary directory with
// the execute bit (a checkout may lose it) and returns its path.
func installScript(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitDone waits until the sink has finished n events (sent or failed).
func waitDone(t *testing.T, n *Notifier, get func(Stats) SinkStats, want uint64) SinkStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := get(n.Stats())
		if s.Sent+s.Failed >= want {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d finished notifications: %+v", want, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func scriptStats(s Stats) SinkStats { return s.Script }

func startNotifier(t *testing.T, cfg Configuration) *Notifier {
	t.Helper()
	n := New(cfg, nil)
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hostEvent(k Kind) Event {
	return Event{
		Kind: k, Time: time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC), AttackID: "a1",
		IP: netip.MustParseAddr("203.0.113.5"), Direction: detect.In, Type: "udp_flood",
		Protocol: "udp", PPS: 123455.6, BPS: 1.2e9, Details: testDetails,
	}
}

// The contract: the script receives exactly IP DIRECTION PPS ACTION, and
// the details on stdin for ban and attack_details (none for unban).
func TestScriptArgumentsAndStdin(t *testing.T) {
	script := installScript(t, "record.sh")
	dir := filepath.Dir(script)
	n := startNotifier(t, Configuration{Script: script})
	out := hostEvent(KindBan)
	out.Direction = detect.Out
	out.IP = netip.MustParseAddr("2001:db8::5")
	tests := []struct {
		name      string
		ev        Event
		wantArgs  string
		wantStdin string
	}{
		{"ban", hostEvent(KindBan), "203.0.113.5\nincoming\n123456\nban\n", testDetails},
		{"attack_details", hostEvent(KindAttackDetails), "203.0.113.5\nincoming\n123456\nattack_details\n", testDetails},
		{"unban", hostEvent(KindUnban), "203.0.113.5\nincoming\n123456\nunban\n", ""},
		{"outgoing ipv6", out, "2001:db8::5\noutgoing\n123456\nban\n", testDetails},
		{"prefix ban", Event{Kind: KindBan, Prefix: netip.MustParsePrefix("198.51.100.0/24"), Details: "Prefix: 198.51.100.0/24\n"},
			"198.51.100.0/24\nincoming\n0\nban\n", "Prefix: 198.51.100.0/24\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "args"))
			n.Notify(tt.ev)
			st := waitDone(t, n, scriptStats, uint64(i+1))
			if st.Failed != 0 {
				t.Fatalf("script failed: %+v", st)
			}
			if got := readFile(t, filepath.Join(dir, "args")); got != tt.wantArgs {
				t.Errorf("args = %q, want %q", got, tt.wantArgs)
			}
			if got := readFile(t, filepath.Join(dir, "stdin")); got != tt.wantStdin {
				t.Errorf("stdin = %q, want %q", got, tt.wantStdin)
			}
		})
	}
}

func TestScriptSkipsWhatItDoesNotGet(t *testing.T) {
	n := New(Configuration{Script: installScript(t, "record.sh")}, nil)
	group := hostEvent(KindBan)
	group.IP = netip.Addr{}
	n.Notify(group)                      // no address: skipped, counted
	n.Notify(hostEvent(KindAttackStart)) // not a script event
	n.Notify(hostEvent(KindAttackEnd))   // not a script event
	n.Notify(hostEvent(KindBanSkipped))  // not a script event
	if st := n.Stats().Script; st.Skipped != 1 || st.Queued != 0 {
		t.Fatalf("stats = %+v, want 1 skipped and nothing queued", st)
	}
}

// FastNetMon's own Slack script, unchanged but for curl, gets what it did
// from FastNetMon.
func TestFastNetMonSlackScript(t *testing.T) {
	script := installScript(t, "notify_with_slack.sh")
	dir := filepath.Dir(script)
	bin := t.TempDir()
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("dig", "echo victim.example.\n")
	stub("mail", fmt.Sprintf(`printf '%%s\n' "$@" > %q; cat > %q`+"\n", filepath.Join(dir, "mail.args"), filepath.Join(dir, "mail.stdin")))
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	n := startNotifier(t, Configuration{Script: script})

	// ban: the details reach mail and the Slack payload, red.
	n.Notify(hostEvent(KindBan))
	if st := waitDone(t, n, scriptStats, 1); st.Failed != 0 {
		t.Fatalf("ban: script failed: %+v", st)
	}
	args := strings.Split(readFile(t, filepath.Join(dir, "curl.args")), "\x00")
	payload := ""
	for i, a := range args {
		if a == "--data" && i+1 < len(args) {
			payload = args[i+1]
		}
	}
	// $(</dev/stdin) drops the trailing newline, as it did under FastNetMon.
	wantText := `IP: 203.0.113.5\nHostname: victim.example.\nAttack: incoming\nPPS: 123456\nAction: ban\n\n` + strings.TrimRight(testDetails, "\n")
	if !strings.Contains(payload, wantText) {
		t.Errorf("Slack payload lacks %q:\n%s", wantText, payload)
	}
	if args[len(args)-2] != "http://127.0.0.1:9/services/TTEST/BTEST/test" {
		t.Errorf("curl args %q", args)
	}
	if !strings.Contains(payload, `"color": "danger"`) {
		t.Errorf("ban payload not red: %q", payload)
	}
	if got := readFile(t, filepath.Join(dir, "mail.stdin")); got != testDetails {
		t.Errorf("mail got %q, want the details %q", got, testDetails)
	}
	if got := readFile(t, filepath.Join(dir, "mail.args")); !strings.Contains(got, "IP 203.0.113.5 blocked because of incoming attack with power 123456 pps") {
		t.Errorf("mail subject: %q", got)
	}

	// attack_details: the seed's script ignores it (exit 0, no curl).
	os.Remove(filepath.Join(dir, "curl.args"))
	n.Notify(hostEvent(KindAttackDetails))
	if st := waitDone(t, n, scriptStats, 2); st.Failed != 0 {
		t.Fatalf("attack_details: script failed: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "curl.args")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("attack_details posted to Slack: %v", err)
	}

	// unban: green, no details.
	n.Notify(hostEvent(KindUnban))
	if st := waitDone(t, n, scriptStats, 3); st.Failed != 0 {
		t.Fatalf("unban: script failed: %+v", st)
	}
	got := readFile(t, filepath.Join(dir, "curl.args"))
	if !strings.Contains(got, `Action: unban\n\n"`) || !strings.Contains(got, `"color": "good"`) {
		t.Errorf("unban payload: %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "curl.stdin")); got != "" {
		t.Errorf("unban: stdin %q, want none", got)
	}
}

func TestScriptFailureAndTimeout(t *testing.T) {
	dir := t.TempDir()

	t.Run("non-zero exit", func(t *testing.T) {
		n := startNotifier(t, Configuration{Script: installScript(t, "fail.sh")})
		n.Notify(hostEvent(KindBan))
		st := waitDone(t, n, scriptStats, 1)
		if st.Failed != 1 || st.Sent != 0 || st.Timeouts != 0 {
			t.Fatalf("stats = %+v, want 1 failed", st)
		}
	})
	t.Run("missing script", func(t *testing.T) {
		n := startNotifier(t, Configuration{Script: filepath.Join(dir, "no-such-script")})
		n.Notify(hostEvent(KindUnban))
		if st := waitDone(t, n, scriptStats, 1); st.Failed != 1 {
			t.Fatalf("stats = %+v, want 1 failed", st)
		}
	})
	t.Run("timeout kills the process group", func(t *testing.T) {
		script := installScript(t, "hang.sh")
		n := startNotifier(t, Configuration{Script: script, ScriptTimeout: 300 * time.Millisecond})
		start := time.Now()
		n.Notify(hostEvent(KindBan))
		st := waitDone(t, n, scriptStats, 1)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("timeout took %s", took)
		}
		if st.Failed != 1 || st.Timeouts != 1 {
			t.Fatalf("stats = %+v, want 1 failed by timeout", st)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(filepath.Dir(script), "child"))))
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for processAlive(pid) {
			if time.Now().After(deadline) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the script's child %d outlived the timeout", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// processAlive: running and not a zombie (a container's init may never reap
// the orphan).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestScriptArgs(t *testing.T) {
	tests := []struct {
		name     string
		ev       Event
		wantArgs string
		wantOK   bool
	}{
		{"ban", hostEvent(KindBan), "203.0.113.5 incoming 123456 ban", true},
		{"rounds pps", Event{Kind: KindUnban, IP: netip.MustParseAddr("192.0.2.1"), PPS: 0.4}, "192.0.2.1 incoming 0 unban", true},
		{"negative pps", Event{Kind: KindUnban, IP: netip.MustParseAddr("192.0.2.1"), PPS: -1}, "192.0.2.1 incoming 0 unban", true},
		{"mapped v4", Event{Kind: KindBan, IP: netip.MustParseAddr("::ffff:192.0.2.1"), Direction: detect.Out}, "192.0.2.1 outgoing 0 ban", true},
		{"group", Event{Kind: KindAttackDetails}, "", false},
		{"attack_start", hostEvent(KindAttackStart), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, _, ok := ScriptArgs(tt.ev)
			if ok != tt.wantOK || strings.Join(args, " ") != tt.wantArgs {
				t.Errorf("ScriptArgs = %q, %v; want %q, %v", args, ok, tt.wantArgs, tt.wantOK)
			}
		})
	}
}

func TestScriptCommand(t *testing.T) {
	p := installScript(t, "record.sh")
	if name, pre := scriptCommand(p); name != p || pre != nil {
		t.Errorf("existing file: %q %q", name, pre)
	}
	if name, pre := scriptCommand("/usr/bin/php /etc/fastnetmon/ban.php"); name != "/usr/bin/php" || len(pre) != 1 || pre[0] != "/etc/fastnetmon/ban.php" {
		t.Errorf("command with argument: %q %q", name, pre)
	}
}
