package main

import (
	"strings"
	"testing"
)

func TestBans(t *testing.T) {
	runAPICases(t, []apiCase{
		{name: "default lists", args: []string{"bans"}, code: 0,
			stdout:  []string{"PREFIX", "EXPIRES IN", "203.0.113.10/32", "address-list", "udp_flood", "192.0.2.254:8728=applied", "2026-01-01 00:00:12"},
			request: []string{"GET /api/v1/bans"}},
		{name: "list json", args: []string{"bans", "list", "--json"}, code: 0, stdout: []string{`"prefix":"203.0.113.10/32"`}, absent: []string{"PREFIX"}},
		{name: "list empty", args: []string{"bans", "list"}, answers: map[string]cannedAnswer{"GET /api/v1/bans": {200, `[]`}}, code: 0, stdout: []string{"no bans"}},
		{name: "add bare IPv4", args: []string{"bans", "add", "203.0.113.5", "--ttl", "1h", "--reason", "by hand"}, code: 0,
			stdout:  []string{"banned 203.0.113.5/32 (in) until 2026-01-01 01:00:12 UTC", "address-list"},
			request: []string{"POST /api/v1/bans"},
			body:    `{"direction":"in","prefix":"203.0.113.5/32","reason":"by hand","ttl":"1h"}`},
		{name: "add flags first", args: []string{"bans", "--direction", "out", "add", "2001:db8::7"}, code: 0,
			body: `{"direction":"out","prefix":"2001:db8::7/128","reason":"","ttl":""}`},
		{name: "add prefix masked", args: []string{"bans", "add", "198.51.100.77/24"}, code: 0, body: `"prefix":"198.51.100.0/24"`},
		{name: "add token", args: []string{"bans", "add", "203.0.113.5"}, environ: map[string]string{"FLOWSHIELD_API_TOKEN": "t0k"}, code: 0, auth: "Bearer t0k"},
		{name: "add refused", args: []string{"bans", "add", "203.0.113.5"}, code: 1,
			answers: map[string]cannedAnswer{"POST /api/v1/bans": {403, `{"error":"changes are accepted only from loopback clients when FLOWSHIELD_API_TOKEN is not set"}`}},
			stderr:  []string{"403 Forbidden", "only from loopback"}},
		{name: "add 401", args: []string{"bans", "add", "203.0.113.5"}, code: 1,
			answers: map[string]cannedAnswer{"POST /api/v1/bans": {401, `{"error":"missing Authorization: Bearer token"}`}},
			stderr:  []string{"needs its API token", "FLOWSHIELD_API_TOKEN"}},
		{name: "add bad prefix", args: []string{"bans", "add", "203.0.113.300"}, code: 2, stderr: []string{`"203.0.113.300": expected an address or prefix`}},
		{name: "add bad ttl", args: []string{"bans", "add", "203.0.113.5", "--ttl", "10"}, code: 2, stderr: []string{`--ttl "10"`}},
		{name: "add bad direction", args: []string{"bans", "add", "203.0.113.5", "--direction", "both"}, code: 2, stderr: []string{`--direction "both"`}},
		{name: "add without prefix", args: []string{"bans", "add"}, code: 2, stderr: []string{"exactly one PREFIX"}},
		{name: "remove escapes the prefix", args: []string{"bans", "remove", "203.0.113.10"}, code: 0,
			stdout: []string{"removed the ban of 203.0.113.10/32"}, request: []string{"DELETE /api/v1/bans/203.0.113.10%2F32"}},
		{name: "remove none", args: []string{"bans", "remove", "203.0.113.99/32"}, code: 1,
			answers: map[string]cannedAnswer{"DELETE /api/v1/bans/203.0.113.99/32": {404, `{"error":"no ban for 203.0.113.99/32"}`}},
			stderr:  []string{"404 Not Found: no ban for 203.0.113.99/32"}, request: []string{"DELETE /api/v1/bans/203.0.113.99%2F32"}},
		{name: "ttl on remove", args: []string{"bans", "remove", "203.0.113.10", "--ttl", "1h"}, code: 2, stderr: []string{"--ttl: not for bans remove"}},
		{name: "unknown subcommand", args: []string{"bans", "flush"}, code: 2, stderr: []string{`unknown subcommand "flush"`}},
	})
}

func TestBadURL(t *testing.T) {
	for _, cmd := range []string{"top", "bans", "attacks"} {
		r := runCLI(t.Context(), map[string]string{}, cmd, "--url", "127.0.0.1:8080")
		if r.code != exitUsage || !strings.Contains(r.stderr, `--url "127.0.0.1:8080": expected an address such as http://127.0.0.1:8080`) {
			t.Errorf("%s: exit %d, stderr %q", cmd, r.code, r.stderr)
		}
	}
}
