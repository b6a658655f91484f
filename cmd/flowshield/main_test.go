package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowshield/flowshield/config"
)

type result struct {
	code           int
	stdout, stderr string
	daemonCalled   bool
	daemonCfg      config.Configuration
	routersChecked bool
}

func invoke(t *testing.T, environ map[string]string, daemon daemonFunc, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	var res result
	c := cli{
		environ: environ,
		stdout:  &out,
		stderr:  &errOut,
		daemon: func(ctx context.Context, cfg config.Configuration, log *slog.Logger) error {
			res.daemonCalled = true
			res.daemonCfg = cfg
			if daemon == nil {
				return nil
			}
			return daemon(ctx, cfg, log)
		},
		checkRouters: func(ctx context.Context, cfg config.Configuration, log *slog.Logger) []string {
			res.routersChecked = true
			if cfg.RouterOSUser == "readonly" {
				return []string{"router 192.0.2.1:8728: user readonly lacks the write policy"}
			}
			return nil
		},
	}
	res.code = c.main(context.Background(), args)
	res.stdout, res.stderr = out.String(), errOut.String()
	return res
}

var goodEnv = map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_LOG_LEVEL": "error"}

func TestCommands(t *testing.T) {
	badEnv := map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24,", "FLOWSHIELD_WINDOW": "5x"}
	routerEnv := map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1",
		"FLOWSHIELD_ROUTEROS_USER": "readonly", "FLOWSHIELD_ROUTEROS_PASSWORD": "hunter2", "FLOWSHIELD_LOG_LEVEL": "error"}
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		code       int
		stdout     []string // each must appear
		stderr     []string
		notStdout  []string
		daemon     bool
		checkedRtr bool
	}{
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage: flowshield COMMAND"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"Usage: flowshield COMMAND", "routeros-script"}},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Usage:"}},
		{name: "unknown", args: []string{"frobnicate"}, code: 2, stderr: []string{`unknown command "frobnicate"`, "Usage:"}},
		{name: "version", args: []string{"version"}, code: 0, stdout: []string{"flowshield dev\n", "commit ", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: []string{"flowshield dev\n"}},
		{name: "version extra arg", args: []string{"version", "x"}, code: 2, stderr: []string{`unexpected argument "x"`}},
		{name: "demo bad flag", args: []string{"demo", "--bogus"}, code: 2, stderr: []string{"-bogus"}},
		{name: "run bad config", env: badEnv, args: []string{"run"}, code: 1,
			stderr: []string{"FLOWSHIELD_NETWORKS=\"203.0.113.0/24,\": expected", "\nFLOWSHIELD_WINDOW=\"5x\": expected a Go duration such as 5s or 1m"}},
		{name: "run no networks", env: map[string]string{}, args: []string{"run"}, code: 1, stderr: []string{`FLOWSHIELD_NETWORKS="": expected`}},
		{name: "run bad flag", env: goodEnv, args: []string{"run", "--nope"}, code: 2, stderr: []string{"flag provided but not defined"}},
		{name: "run", env: goodEnv, args: []string{"run"}, code: 0, daemon: true},
		{name: "check ok", env: goodEnv, args: []string{"check"}, code: 0,
			stdout: []string{"FLOWSHIELD_NETWORKS=203.0.113.0/24  # from environment\n", "\nFLOWSHIELD_WINDOW=5s\n"}},
		{name: "check bad", env: badEnv, args: []string{"check"}, code: 1,
			stdout: []string{"FLOWSHIELD_BAN_TIME=10m"},
			stderr: []string{`FLOWSHIELD_WINDOW="5x": expected`}},
		{name: "check router problem", env: routerEnv, args: []string{"check"}, code: 1, checkedRtr: true,
			stdout: []string{"FLOWSHIELD_ROUTEROS_PASSWORD=(redacted)"}, notStdout: []string{"hunter2"},
			stderr: []string{"user readonly lacks the write policy"}},
		{name: "check offline", env: routerEnv, args: []string{"check", "--offline"}, code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invoke(t, tt.env, nil, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tt.notStdout {
				if strings.Contains(r.stdout+r.stderr, s) {
					t.Errorf("output shows %q", s)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if r.daemonCalled != tt.daemon {
				t.Errorf("daemon called: %v, want %v", r.daemonCalled, tt.daemon)
			}
			if r.routersChecked != tt.checkedRtr {
				t.Errorf("routers checked: %v, want %v", r.routersChecked, tt.checkedRtr)
			}
		})
	}
}

// TestCheckOneLinePerProblem: `check` with N problems writes N lines on
// stderr (plus nothing else when the log is quiet).
func TestCheckOneLinePerProblem(t *testing.T) {
	env := map[string]string{"FLOWSHIELD_NETWORKS": "x", "FLOWSHIELD_MAX_BANS": "0", "FLOWSHIELD_LOG_FORMAT": "yaml", "FLOWSHIELD_EXPORTERS": "192.0.2.1"}
	r := invoke(t, env, nil, "check")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 1 || len(lines) != 3 {
		t.Fatalf("exit %d, %d lines:\n%s", r.code, len(lines), r.stderr)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "FLOWSHIELD_") || !strings.Contains(l, ": expected ") {
			t.Errorf("not a problem line: %q", l)
		}
	}
}

func TestRunDaemonErrorExits1(t *testing.T) {
	r := invoke(t, goodEnv, func(ctx context.Context, cfg config.Configuration, log *slog.Logger) error {
		return errors.New("netflow listener: address in use")
	}, "run")
	if r.code != 1 || !strings.Contains(r.stderr, "address in use") {
		t.Errorf("exit %d stderr %s", r.code, r.stderr)
	}
	if len(r.daemonCfg.Networks) != 1 {
		t.Errorf("daemon got configuration %+v", r.daemonCfg)
	}
}

// TestRunStopsOnSignal sends SIGTERM to the test process: the context the
// daemon runs under ends and run exits 0.
func TestRunStopsOnSignal(t *testing.T) {
	env := map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_LOG_FORMAT": "json"}
	started := make(chan struct{})
	go func() {
		select {
		case <-started:
			syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		case <-time.After(5 * time.Second):
		}
	}()
	r := invoke(t, env, func(ctx context.Context, cfg config.Configuration, log *slog.Logger) error {
		close(started)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("no signal arrived")
		}
	}, "run")
	if r.code != 0 {
		t.Errorf("exit %d, stderr %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, `"msg":"flowshield stopped"`) {
		t.Errorf("JSON log lacks the stop line: %s", r.stderr)
	}
}

func TestLoggerLevel(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(&b, slog.LevelWarn, config.LogFormatText)
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), "level=WARN msg=shown") {
		t.Errorf("log: %q", b.String())
	}
}
