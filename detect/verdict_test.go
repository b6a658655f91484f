package detect

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

type verdict struct {
	scope, ip, group string
	dir              Direction
	typ, threshold   string
}

func verdictOf(a *Attack) verdict {
	ip := ""
	if a.IP.IsValid() {
		ip = a.IP.String()
	}
	return verdict{a.Scope, ip, a.Group, a.Direction, a.Type, a.Threshold}
}

func flood(rec func(int, *flow.Record), pps float64, size uint64, flows int) *source {
	return &source{from: 10300 * time.Millisecond, to: 25 * time.Second, pps: pps, size: size, flows: flows, record: rec}
}

func TestVerdicts(t *testing.T) {
	hostgroups := func(c *Configuration) {
		c.HostGroups = []HostGroup{
			{Name: "web", Prefixes: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/25")},
				Thresholds: Thresholds{PPS: 5000, Mbps: 1000, Flows: 3500}},
			{Name: "big", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.4.0/24")},
				Thresholds: Thresholds{PPS: 100000, Mbps: 5000, Flows: 3500}},
		}
	}
	carpet := func(c *Configuration) {
		c.HostGroups = []HostGroup{{Name: "customers", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.3.0/24")},
			Thresholds: c.Global, GroupMbps: 800}}
	}
	carpetRecord := func(i int, r *flow.Record) {
		udpTo("10.0.3.1", 0)(i, r)
		r.DstAddr = netip.AddrFrom4([4]byte{10, 0, 3, byte(1 + i)})
	}
	sampled := flood(udpTo("10.0.0.10", 0), 60000, 512, 20)
	sampled.sampling = 1000
	cases := []struct {
		name    string
		cfg     func(*Configuration)
		sources []*source
		want    []verdict
	}{
		{"udp flood", nil, []*source{flood(udpTo("10.0.0.5", 0), 50000, 512, 100)},
			[]verdict{{ScopeHost, "10.0.0.5", "", In, "udp_flood", "pps"}}},
		{"syn flood", nil, []*source{flood(synTo("10.0.0.6"), 100000, 60, 1000)},
			[]verdict{{ScopeHost, "10.0.0.6", "", In, "syn_flood", "pps"}}},
		{"icmp flood", nil, []*source{flood(icmpTo("10.0.0.7"), 50000, 84, 10)},
			[]verdict{{ScopeHost, "10.0.0.7", "", In, "icmp_flood", "pps"}}},
		{"fragment flood", nil, []*source{flood(fragTo("10.0.0.8"), 50000, 1400, 50)},
			[]verdict{{ScopeHost, "10.0.0.8", "", In, "ip_fragmentation_flood", "pps"}}},
		{"dns amplification", nil, []*source{flood(udpTo("10.0.0.9", 53), 45000, 1400, 200)},
			[]verdict{{ScopeHost, "10.0.0.9", "", In, "dns_amplification", "pps"}}},
		{"ntp amplification", nil, []*source{flood(udpTo("10.0.0.10", 123), 45000, 468, 200)},
			[]verdict{{ScopeHost, "10.0.0.10", "", In, "ntp_amplification", "pps"}}},
		{"memcached amplification just above", nil, []*source{flood(udpTo("10.0.0.11", 11211), 30000, 1400, 100)},
			[]verdict{{ScopeHost, "10.0.0.11", "", In, "memcached_amplification", "pps"}}},
		{"outgoing udp flood", nil, []*source{flood(udpFrom("10.0.0.12"), 60000, 200, 100)},
			[]verdict{{ScopeHost, "10.0.0.12", "", Out, "udp_flood", "pps"}}},
		{"ipv6 udp flood", nil, []*source{flood(udpTo("2001:db8::5", 0), 50000, 512, 100)},
			[]verdict{{ScopeHost, "2001:db8::5", "", In, "udp_flood", "pps"}}},
		{"sampled 1:1000", nil, []*source{sampled},
			[]verdict{{ScopeHost, "10.0.0.10", "", In, "udp_flood", "pps"}}},
		{"hostgroup overrides global", hostgroups, []*source{
			flood(udpTo("172.16.0.9", 0), 8000, 512, 10),               // above web's 5000, outside NETWORKS
			flood(udpTo("10.0.4.9", 0), 60000, 512, 100),               // under big's 100000
			flood(tcpBetween("10.0.0.20", "10.0.4.10"), 9000, 1000, 4), // internal, under both
		}, []verdict{{ScopeHost, "172.16.0.9", "web", In, "udp_flood", "pps"}}},
		{"carpet bombing /24", carpet, []*source{flood(carpetRecord, 254*2000, 500, 254)},
			[]verdict{{ScopeGroup, "", "customers", In, "udp_flood", "group_mbps"}}},
		{"per-protocol mbps threshold", func(c *Configuration) { c.Global.UDPMbps = 100 },
			[]*source{flood(udpTo("10.0.0.14", 0), 15000, 1400, 100)},
			[]verdict{{ScopeHost, "10.0.0.14", "", In, "udp_flood", "udp_mbps"}}},
		{"whitelisted source", func(c *Configuration) {
			c.WhitelistSources = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
		}, []*source{flood(tcpBetween("198.51.100.10", "10.0.0.13"), 100000, 1500, 8)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s := newSim(t, cfg, tc.sources...)
			s.tickPhase = 370 * time.Millisecond
			s.run(60 * time.Second)
			starts := s.starts()
			var got []verdict
			for i := range starts {
				got = append(got, verdictOf(&starts[i].Attack))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("attacks started:\n got %v\nwant %v", got, tc.want)
			}
			for _, st := range starts {
				src := tc.sources[0]
				lat := st.Time.Sub(src.firstArrival)
				bound := cfg.Window + time.Second
				if st.Attack.InitialPPS >= 2*20000 && st.Attack.Scope == ScopeHost && st.Attack.Group == "" {
					bound = time.Second
				}
				t.Logf("%s %s declared %v after first arrival (initial %.0f pps, %.0f Mbps)", st.Attack.Type, st.Attack.Threshold, lat, st.Attack.InitialPPS, st.Attack.InitialBPS/1e6)
				if lat < 0 || lat > bound {
					t.Errorf("declared %v after the first records arrived, want within %v", lat, bound)
				}
				kinds := fmt.Sprint(s.kinds(st.Attack.ID))
				if !strings.HasPrefix(kinds, "[attack_start ") || !strings.Contains(kinds, " attack_details ") ||
					!strings.Contains(kinds, " attack_update ") || !strings.HasSuffix(kinds, " attack_end]") ||
					strings.Count(kinds, "attack_details") != 1 {
					t.Errorf("lifecycle %s", kinds)
				}
				a, ok := s.e.Attack(st.Attack.ID)
				if !ok || a.EndedAt.IsZero() || a.Details == "" {
					t.Errorf("registry: %+v %v", a, ok)
				}
				if !strings.Contains(a.Details, "Attack type: "+tc.want[0].typ) {
					t.Errorf("details:\n%s", a.Details)
				}
			}
			if testing.Verbose() && len(starts) > 0 && tc.name == "dns amplification" {
				a, _ := s.e.Attack(starts[0].Attack.ID)
				t.Log(a.Details)
			}
			if tc.name == "whitelisted source" && s.e.Stats().Whitelisted == 0 {
				t.Errorf("whitelisted traffic not counted as such: %+v", s.e.Stats())
			}
		})
	}
}

// TestReflectorPortIgnoresTCP: an NTP amplification on a victim with a
// large download of its own (one long record from TCP port 443 that
// arrives while the attack's sampler runs: its 600,000 packets outweigh
// the flood's in the sampler's port counts) is an ntp_amplification whose fingerprint
// names src-port 123, from the flow sample or, without one, from the
// counters. The reflector vote counted TCP source ports too: 443 won it,
// the attack was typed udp_flood and the counters' fingerprint named no
// port.
func TestReflectorPortIgnoresTCP(t *testing.T) {
	const victim = "10.0.0.10"
	for _, c := range []struct {
		name        string
		sampleFlows int
	}{{"sample", DefaultConfiguration().SampleFlows}, {"counters", 0}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Global.PPS = 10000
			cfg.SampleFlows = c.sampleFlows
			ntp := &source{from: 28 * time.Second, to: 60 * time.Second, pps: 60000, size: 468, flows: 10,
				record: udpTo(victim, 123)}
			// 20,000 pps for 30 s, reported once at its end
			download := &source{from: 0, to: 30 * time.Second, pps: 20000, size: 1400, exportEvery: 30 * time.Second,
				record: tcpBetween("198.51.100.80", victim)}
			s := newSim(t, cfg, ntp, download)
			s.run(40 * time.Second)
			var details []Event
			for _, ev := range s.events {
				if ev.Kind == AttackDetails {
					details = append(details, ev)
				}
			}
			if len(details) != 1 || details[0].Attack.IP != netip.MustParseAddr(victim) {
				t.Fatalf("details %+v, want one, of %s", details, victim)
			}
			a := details[0].Attack
			if a.Type != "ntp_amplification" {
				t.Errorf("typed %s, want ntp_amplification", a.Type)
			}
			if a.Fingerprint == nil || len(a.Fingerprint.Vectors) == 0 ||
				a.Fingerprint.Vectors[0].Protocol != flow.ProtoUDP || a.Fingerprint.Vectors[0].SrcPort != 123 {
				t.Errorf("fingerprint %+v, want its first vector udp src-port 123", a.Fingerprint)
			}
			if !strings.Contains(a.Details, "Attack type: ntp_amplification") {
				t.Errorf("details text:\n%s", a.Details)
			}
		})
	}
}
