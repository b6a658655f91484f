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
		{name: "one with a fingerprint", args: []string{"attacks", "20260101T000010.000Z-000002"},
			answers: map[string]cannedAnswer{"GET /api/v1/attacks/20260101T000010.000Z-000002": {200, attackFingerprinted}}, code: 0,
			stdout: []string{"udp_flood", "\nFingerprint: 97% of the attack's packets, from 40 sampled records\n" +
				"  udp src-port 53 packet-size 1200-1500 share 60%\n" +
				"  tcp tcp-flags syn,!ack dst-port 80,443 packet-size 50-70 share 30%\n" +
				"  fragment share 7%\n\nIP: 203.0.113.10\n"}},
		{name: "one nothing characterises", args: []string{"attacks", "20260101T000010.000Z-000002"},
			answers: map[string]cannedAnswer{"GET /api/v1/attacks/20260101T000010.000Z-000002": {200, attackUncharacterised}}, code: 0,
			stdout: []string{"\nFingerprint: none (no kind of packet characterises the attack), from 12 sampled records\n\nIP: "}},
		{name: "one whose fingerprint is not known", args: []string{"attacks", "20260101T000010.000Z-000002"}, code: 0,
			stdout: []string{"\nFingerprint: not known"}},
		{name: "unknown id", args: []string{"attacks", "nope"}, code: 1, stderr: []string{"404 Not Found"}},
		{name: "401", args: []string{"attacks"}, answers: map[string]cannedAnswer{"GET /api/v1/attacks": {401, `{"error":"invalid token"}`}}, code: 1,
			stderr: []string{"needs its API token", "FLOWSHIELD_API_TOKEN"}},
		{name: "two ids", args: []string{"attacks", "a", "b"}, code: 2, stderr: []string{`unexpected argument "b"`}},
	})
}

// Attacks with fingerprints, as GET /api/v1/attacks/{id} gives them.
const (
	attackFingerprinted = `{"id":"20260101T000010.000Z-000002","scope":"host","ip":"203.0.113.10","group":"web","direction":"in","type":"udp_flood","protocol":"udp","started_at":"2026-01-01T00:00:10Z","ended_at":null,"peak_pps":150000,"peak_bps":1200000000,"banned":true,
 "details":"IP: 203.0.113.10\n","flows":[],"fingerprint":{"share":0.97,"records":40,"vectors":[` +
		`{"protocol":"udp","src_ports":[53],"dst_ports":null,"tcp_flags":null,"fragment":false,"packet_size":{"min":1200,"max":1500},"share":0.6},` +
		`{"protocol":"tcp","src_ports":null,"dst_ports":[80,443],"tcp_flags":"syn,!ack","fragment":false,"packet_size":{"min":50,"max":70},"share":0.3},` +
		`{"protocol":null,"src_ports":null,"dst_ports":null,"tcp_flags":null,"fragment":true,"packet_size":null,"share":0.07}]}}`
	attackUncharacterised = `{"id":"20260101T000010.000Z-000002","scope":"host","ip":"203.0.113.10","group":"web","direction":"in","type":"udp_flood","protocol":"udp","started_at":"2026-01-01T00:00:10Z","ended_at":null,"peak_pps":150000,"peak_bps":1200000000,"banned":true,
 "details":"IP: 203.0.113.10\n","flows":[],"fingerprint":{"share":0,"records":12,"vectors":[]}}`
)

// TestAttacksOrder puts the active attack before the ended one.
func TestAttacksOrder(t *testing.T) {
	d := newFakeDaemon(t, standardAnswers())
	r := runCLI(t.Context(), map[string]string{}, "attacks", "--url", d.URL)
	active, ended := strings.Index(r.stdout, "udp_flood"), strings.Index(r.stdout, "syn_flood")
	if active < 0 || ended < 0 || active > ended {
		t.Errorf("want the active udp_flood listed before the ended syn_flood:\n%s", r.stdout)
	}
}
