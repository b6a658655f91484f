package notify

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/mitigation"
	"github.com/flowshield/flowshield/routeros"
)

var t0 = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

func testAttack() detect.Attack {
	return detect.Attack{
		ID: "a1", Scope: detect.ScopeHost, IP: netip.MustParseAddr("203.0.113.5"), Direction: detect.In,
		Type: "dns_amplification", Protocol: "udp", Threshold: "pps", StartedAt: t0,
		InitialPPS: 50000, PPS: 60000, BPS: 6e8, Flows: 300, PeakPPS: 70000, PeakBPS: 7e8,
	}
}

func TestFromDetect(t *testing.T) {
	withDetails := testAttack()
	withDetails.Details = "full text\n"
	group := testAttack()
	group.Scope, group.IP, group.Group, group.Threshold = detect.ScopeGroup, netip.Addr{}, "customers", "group_mbps"
	tests := []struct {
		name    string
		ev      detect.Event
		ok      bool
		kind    Kind
		ip      string
		details string // prefix of the details
	}{
		{"start", detect.Event{Kind: detect.AttackStart, Time: t0, Attack: testAttack()}, true, KindAttackStart, "203.0.113.5", "IP: 203.0.113.5\nAttack type: dns_amplification\n"},
		{"details", detect.Event{Kind: detect.AttackDetails, Time: t0, Attack: withDetails}, true, KindAttackDetails, "203.0.113.5", "full text\n"},
		{"end", detect.Event{Kind: detect.AttackEnd, Time: t0, Attack: withDetails}, true, KindAttackEnd, "203.0.113.5", "full text\n"},
		{"update not notified", detect.Event{Kind: detect.AttackUpdate, Time: t0, Attack: testAttack()}, false, "", "", ""},
		{"group", detect.Event{Kind: detect.AttackStart, Time: t0, Attack: group}, true, KindAttackStart, "", "Group: customers\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := FromDetect(tt.ev)
			if ok != tt.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if e.Kind != tt.kind || e.Target() != tt.ip || !strings.HasPrefix(e.Details, tt.details) {
				t.Errorf("got %s %q %q", e.Kind, e.Target(), e.Details)
			}
			if e.AttackID != "a1" || e.Type != "dns_amplification" || e.PPS != 60000 || e.PeakBPS != 7e8 || e.Reason != tt.ev.Attack.Threshold || !e.Time.Equal(t0) {
				t.Errorf("fields not carried: %+v", e)
			}
		})
	}
}

func TestFromMitigation(t *testing.T) {
	a := testAttack()
	hostBan := mitigation.Ban{Prefix: netip.MustParsePrefix("203.0.113.5/32"), Direction: detect.In,
		Actions: []routeros.Action{"address-list"}, Reason: "dns_amplification", AttackID: "a1", CreatedAt: t0, ExpiresAt: t0.Add(10 * time.Minute)}
	manual := mitigation.Ban{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Direction: detect.Out,
		Actions: []routeros.Action{"raw-drop"}, Reason: "abuse report", Manual: true, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	tests := []struct {
		name    string
		ev      mitigation.Event
		kind    Kind
		ip      any // JSON ip
		target  string
		typ     string
		reason  string
		details string
	}{
		{"attack ban", mitigation.Event{Kind: mitigation.EventBan, Ban: hostBan, Attack: a, Reason: a.Type, Time: t0},
			KindBan, "203.0.113.5", "203.0.113.5", "dns_amplification", "dns_amplification", "IP: 203.0.113.5\n"},
		{"unban after expiry", mitigation.Event{Kind: mitigation.EventUnban, Ban: hostBan, Reason: mitigation.ReasonExpired, Time: t0},
			KindUnban, "203.0.113.5", "203.0.113.5", "dns_amplification", "expired", "Prefix: 203.0.113.5/32\n"},
		{"skipped", mitigation.Event{Kind: mitigation.EventBanSkipped, Ban: hostBan, Attack: a, Reason: mitigation.ReasonMaxBans, Time: t0},
			KindBanSkipped, "203.0.113.5", "203.0.113.5", "dns_amplification", "max_bans", "IP: 203.0.113.5\n"},
		{"manual prefix ban", mitigation.Event{Kind: mitigation.EventBan, Ban: manual, Reason: "abuse report", Time: t0},
			KindBan, nil, "198.51.100.0/24", "", "abuse report", "Prefix: 198.51.100.0/24\nDirection: outgoing\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := FromMitigation(tt.ev)
			if e.Kind != tt.kind || e.Target() != tt.target || e.Type != tt.typ || e.Reason != tt.reason || !strings.HasPrefix(e.Details, tt.details) {
				t.Errorf("got %s target %q type %q reason %q details %q", e.Kind, e.Target(), e.Type, e.Reason, e.Details)
			}
			if len(e.Actions) != len(tt.ev.Ban.Actions) || e.Direction != tt.ev.Ban.Direction {
				t.Errorf("actions %v direction %v", e.Actions, e.Direction)
			}
			var m map[string]any
			if err := json.Unmarshal(mustJSON(t, e), &m); err != nil {
				t.Fatal(err)
			}
			if m["ip"] != tt.ip {
				t.Errorf("JSON ip %v, want %v", m["ip"], tt.ip)
			}
		})
	}
}
