package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ScriptArgs are the arguments FastNetMon passes its notify script:
// IP DIRECTION PPS ACTION, DIRECTION incoming|outgoing, PPS an integer,
// ACTION ban|unban|attack_details. ok is false for an event the script does
// not get (another kind, or no address: a group-scope attack).
func ScriptArgs(e Event) (args []string, stdin string, ok bool) {
	if !isScriptKind(e.Kind) {
		return nil, "", false
	}
	ip := e.Target()
	if ip == "" {
		return nil, "", false
	}
	pps := e.PPS
	if pps < 0 || pps != pps { // negative or NaN
		pps = 0
	}
	args = []string{ip, dirWord(e.Direction), strconv.FormatUint(uint64(pps+0.5), 10), string(e.Kind)}
	if e.Kind != KindUnban {
		stdin = e.Details
	}
	return args, stdin, true
}

func isScriptKind(k Kind) bool {
	return k == KindBan || k == KindUnban || k == KindAttackDetails
}

// scriptCommand splits NOTIFY_SCRIPT: a path to an existing file is run as
// is (spaces and all); otherwise the value is a command and its leading
// arguments separated by spaces ("/usr/bin/php /etc/fastnetmon/ban.php"),
// as FastNetMon ran it through the shell.
func scriptCommand(script string) (string, []string) {
	if _, err := os.Stat(script); err == nil {
		return script, nil
	}
	f := strings.Fields(script)
	if len(f) == 0 {
		return script, nil
	}
	return f[0], f[1:]
}

// scriptEnvKeys are the variables the script inherits, when set: what
// finds programs and files (PATH, HOME, TMPDIR, SHELL, USER, LOGNAME), the
// locale and time zone (LANG, LANGUAGE, LC_*, TZ) for its dates and text,
// and what its HTTP tools need to get out (proxies, CA certificates: the
// operator's own settings, which FastNetMon's curl-based scripts need
// behind an egress proxy). Nothing else: the contract gives the script its
// arguments and standard input, and FastNetMon's scripts read no variable
// of the daemon's. No FLOWSHIELD_ variable is passed, not even harmless
// ones: several hold secrets (ROUTEROS_PASSWORD, API_TOKEN, the webhook
// URLs) or name secret files (*_FILE), and an allowlist of harmless
// FLOWSHIELD_ names would have to follow every new setting.
var scriptEnvKeys = []string{
	"PATH", "HOME", "TMPDIR", "SHELL", "USER", "LOGNAME",
	"LANG", "LANGUAGE", "TZ",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
}

// defaultPath is the script's PATH when flowshield has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// scriptEnv is the script's environment taken from environ (KEY=VALUE
// entries): the scriptEnvKeys and LC_* variables set there, and a PATH.
func scriptEnv(environ []string) []string {
	var env []string
	hasPath := false
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !(slices.Contains(scriptEnvKeys, k) || strings.HasPrefix(k, "LC_")) {
			continue
		}
		hasPath = hasPath || k == "PATH"
		env = append(env, kv)
	}
	if !hasPath {
		env = append(env, "PATH="+defaultPath)
	}
	return env
}

type scriptRunner struct {
	path    string
	timeout time.Duration
	log     *slog.Logger
	c       sinkCounters
}

func (r *scriptRunner) accepts(e Event) bool {
	return isScriptKind(e.Kind) && (e.IP.IsValid() || e.Prefix.IsValid())
}

// errTimeout marks a script killed after its timeout.
var errTimeout = errors.New("timed out")

// outputLimit bounds what is kept of a script's output for the log.
const outputLimit = 4 << 10

func (r *scriptRunner) deliver(ctx context.Context, e Event) error {
	args, stdin, ok := ScriptArgs(e)
	if !ok {
		return nil
	}
	name, pre := scriptCommand(r.path)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, append(pre, args...)...)
	cmd.Env = scriptEnv(os.Environ())
	if e.Kind != KindUnban {
		cmd.Stdin = strings.NewReader(stdin)
	} // unban: no details, stdin is /dev/null
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	killGroup(cmd) // the timeout kills the script and what it started
	// Wait returns at most this long after the kill even if a daemonised
	// grandchild keeps the output pipe open.
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		r.c.timeouts.Inc()
		return fmt.Errorf("running notify script %s %s: %w after %s (process group killed); output: %q", name, strings.Join(args, " "), errTimeout, r.timeout, out.String())
	case err != nil:
		return fmt.Errorf("running notify script %s %s: %w; output: %q", name, strings.Join(args, " "), err, out.String())
	}
	r.log.Debug("notify script done", "args", args, "took", took, "output", out.String())
	return nil
}

// limitedBuffer keeps the first outputLimit bytes and swallows the rest, so
// a chatty script neither blocks on a full pipe nor fills memory.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := outputLimit - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return strings.TrimSpace(l.b.String()) }
