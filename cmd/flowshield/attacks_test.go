package main

import (
	"strings"
	"testing"
)

func TestAttacks(t *testing.T) {
	runAPICases(t, []apiCase{
		{name: "table", args: []string{"attacks"}, code: 0,
			stdout: []string{"STATE", "PEAK PPS", "active", "203.0.113.10", "udp_flood", "150,000", "1200.00", "yes",
				"ended", "group customers", "syn_flood", "2025-12-31 23:05:00"},
			request: []string{"GET /api/v1/attacks"}},
		{name: "active query", args: []string{"attacks", "--active"}, code: 0, request: []string{"GET /api/v1/attacks?active=true"}},
		{name: "json is the API's", args: []string{"attacks", "--json"}, code: 0, stdout: []string{attacksJSON}},
		{name: "json limited keeps newest active", args: []string{"attacks", "--json", "-n", "1"}, code: 0,
			stdout: []string{`"id":"20260101T000010.000Z-000002"`}, absent: []string{"000001"}},
		{name: "none active", args: []string{"attacks", "--active"}, answers: map[string]cannedAnswer{"GET /api/v1/attacks": {200, `[]`}}, code: 0, stdout: []string{"no active attacks"}},
		{name: "one with details", args: []string{"attacks", "20260101T000010.000Z-000002"}, code: 0,
			stdout: []string{"udp_flood", "IP: 203.0.113.10\nAttack type: udp_flood"}, request: []string{"GET /api/v1/attacks/20260101T000010.000Z-000002"}},
		{name: "unknown id", args: []string{"attacks", "nope"}, code: 1, stderr: []string{"404 Not Found"}},
		{name: "401", args: []string{"attacks"}, answers: map[string]cannedAnswer{"GET /api/v1/attacks": {401, `{"error":"invalid token"}`}}, code: 1,
			stderr: []string{"needs its API token", "FLOWSHIELD_API_TOKEN"}},
		{name: "two ids", args: []string{"attacks", "a", "b"}, code: 2, stderr: []string{`unexpected argument "b"`}},
	})
}

// TestAttacksOrder puts the active attack before the ended one.
func TestAttacksOrder(t *testing.T) {
	d := newFakeDaemon(t, standardAnswers())
	r := runCLI(t.Context(), map[string]string{}, "attacks", "--url", d.URL)
	active, ended := strings.Index(r.stdout, "udp_flood"), strings.Index(r.stdout, "syn_flood")
	if active < 0 || ended < 0 || active > ended {
		t.Errorf("want the active udp_flood listed before the ended syn_flood:\n%s", r.stdout)
	}
}
