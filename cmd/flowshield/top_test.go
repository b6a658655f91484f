package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestTop(t *testing.T) {
	unauthorized := map[string]cannedAnswer{"GET /api/v1/status": {401, `{"error":"missing Authorization: Bearer token"}`}}
	runAPICases(t, []apiCase{
		{
			name: "once both directions",
			args: []string{"top", "--once"},
			code: 0,
			stdout: []string{
				"Total incoming", "123,457", "987.65", "346", // totals in: pps, Mbps, flows/s
				"Total outgoing", "16.00",
				"Incoming traffic, top 10 by pps", "203.0.113.10", "120,000", "950.00", "web", "2001:db8::5", "12.35",
				"Outgoing traffic", "203.0.113.20",
				"Active attacks: 2   Bans: 1", "udp_flood", "banned",
			},
			absent:  []string{"\x1b[", "^C"},
			request: []string{"GET /api/v1/hosts?direction=in&limit=10&sort=pps", "GET /api/v1/hosts?direction=out&limit=10&sort=pps", "GET /api/v1/attacks?active=true"},
		},
		{
			name:    "direction sort and n",
			args:    []string{"top", "--once", "--direction", "in", "--sort", "mbps", "-n", "3"},
			code:    0,
			stdout:  []string{"Incoming traffic, top 3 by mbps", "sorted by mbps"},
			absent:  []string{"Outgoing traffic"},
			request: []string{"GET /api/v1/hosts?direction=in&limit=3&sort=bps"},
		},
		{
			name:    "sort flows out",
			args:    []string{"top", "--once", "--direction=out", "--sort=flows"},
			code:    0,
			stdout:  []string{"Outgoing traffic, top 10 by flows", "203.0.113.20"},
			absent:  []string{"Incoming traffic"},
			request: []string{"GET /api/v1/hosts?direction=out&limit=10&sort=flows"},
		},
		{name: "token from env", args: []string{"top", "--once"}, environ: map[string]string{"FLOWSHIELD_API_TOKEN": "s3cret"}, code: 0, auth: "Bearer s3cret"},
		{name: "token flag wins", args: []string{"top", "--once", "--token", "other"}, environ: map[string]string{"FLOWSHIELD_API_TOKEN": "s3cret"}, code: 0, auth: "Bearer other"},
		{name: "401 says set the token", args: []string{"top", "--once"}, answers: unauthorized, code: 1,
			stderr: []string{"needs its API token", "FLOWSHIELD_API_TOKEN", "--token", "missing Authorization"}},
		{name: "401 with a token says it was refused", args: []string{"top", "--once", "--token", "bad"}, answers: unauthorized, code: 1,
			stderr: []string{"token given was refused"}},
		{name: "401 live mode exits", args: []string{"top", "--interval", "100ms"}, answers: unauthorized, code: 1, stderr: []string{"needs its API token"}},
		{name: "bad direction", args: []string{"top", "--direction", "both"}, code: 2, stderr: []string{`--direction "both"`, "Usage: flowshield top"}},
		{name: "bad sort", args: []string{"top", "--sort", "bytes"}, code: 2, stderr: []string{`--sort "bytes"`}},
		{name: "bad n", args: []string{"top", "-n", "0"}, code: 2, stderr: []string{"-n 0"}},
		{name: "bad interval", args: []string{"top", "--interval", "1ms"}, code: 2, stderr: []string{"--interval"}},
		{name: "extra argument", args: []string{"top", "now"}, code: 2, stderr: []string{`unexpected argument "now"`}},
	})
}

// TestTopLive refreshes in place: home-cursor frames until interrupted.
func TestTopLive(t *testing.T) {
	d := newFakeDaemon(t, standardAnswers())
	ctx, cancel := context.WithTimeout(context.Background(), 450*time.Millisecond)
	defer cancel()
	r := runCLI(ctx, map[string]string{}, "top", "--url", d.URL, "--interval", "100ms")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	frames := strings.Count(r.stdout, ansiHome)
	if frames < 3 { // the initial clear plus at least two frames
		t.Errorf("%d cursor-home sequences, want at least 3", frames)
	}
	if !strings.Contains(r.stdout, "203.0.113.10"+strings.Repeat(" ", 2)) || !strings.Contains(r.stdout, ansiClearLine+"\n") {
		t.Errorf("frames lack the hosts or the line clears: %q", r.stdout[:min(len(r.stdout), 400)])
	}
}

// TestTopLiveDaemonDown keeps retrying, showing the error on the screen.
func TestTopLiveDaemonDown(t *testing.T) {
	d := newFakeDaemon(t, nil)
	url := d.URL
	d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r := runCLI(ctx, map[string]string{}, "top", "--url", url, "--interval", "100ms")
	if r.code != exitOK || !strings.Contains(r.stdout, "not reachable at "+url) || !strings.Contains(r.stdout, "retrying every 100ms") {
		t.Errorf("exit %d, stdout %q", r.code, r.stdout)
	}
}
