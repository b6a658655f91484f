package flowgen

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

func mustScenario(t testing.TB, cfg ScenarioConfiguration) *Scenario {
	t.Helper()
	s, err := NewScenario(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScenarioDeterministic(t *testing.T) {
	cfg := ScenarioConfiguration{
		Seed: 7, SamplingRate: 10,
		Background: &Background{Prefix: netip.MustParsePrefix("203.0.113.0/24"), FlowsPerSecond: 500},
		Floods:     []Flood{{Kind: FloodUDP, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 100000}},
	}
	a, b := mustScenario(t, cfg), mustScenario(t, cfg)
	// seconds can be produced in any order with the same result
	a3 := a.Second(nil, 3, t0)
	_ = b.Second(nil, 1, t0)
	b3 := b.Second(nil, 3, t0)
	if !reflect.DeepEqual(a3, b3) {
		t.Fatal("same seed and second gave different flows")
	}
	cfg.Seed = 8
	c3 := mustScenario(t, cfg).Second(nil, 3, t0)
	if reflect.DeepEqual(a3, c3) {
		t.Fatal("different seeds gave the same flows")
	}
	if a2 := a.Second(nil, 2, t0); reflect.DeepEqual(a2, a3) {
		t.Fatal("different seconds gave the same flows")
	}
}

func TestScenarioBackground(t *testing.T) {
	prefix := netip.MustParsePrefix("203.0.113.0/24")
	s := mustScenario(t, ScenarioConfiguration{Seed: 1, Background: &Background{Prefix: prefix, Hosts: 50, FlowsPerSecond: 20000}})
	flows := s.Second(nil, 0, t0)
	if len(flows) != 20000 {
		t.Fatalf("%d flows, want 20000", len(flows))
	}
	hosts := map[netip.Addr]bool{}
	protos := map[uint8]int{}
	long, out := 0, 0
	for _, f := range flows {
		local := f.Dst
		if prefix.Contains(f.Src) {
			local = f.Src
			out++
		}
		if !prefix.Contains(local) {
			t.Fatalf("flow %v -> %v touches no local host", f.Src, f.Dst)
		}
		hosts[local] = true
		protos[f.Proto]++
		if f.End.After(t0.Add(time.Second)) || f.Start.After(f.End) {
			t.Fatalf("flow times %v..%v outside the second", f.Start, f.End)
		}
		if f.End.Sub(f.Start) >= 10*time.Second {
			long++
		}
		if f.Packets == 0 || f.Bytes < f.Packets*40 || f.Bytes > f.Packets*1500 {
			t.Fatalf("implausible flow: %d packets %d bytes", f.Packets, f.Bytes)
		}
	}
	if len(hosts) != 50 {
		t.Errorf("%d local hosts, want 50", len(hosts))
	}
	if protos[6] < 14000 || protos[17] < 2000 || protos[1] < 200 {
		t.Errorf("protocol mix %v", protos)
	}
	if long < 200 || long > 700 {
		t.Errorf("%d long flows, want about 2%%", long)
	}
	if out < 5000 || out > 7000 {
		t.Errorf("%d outgoing flows, want about 30%%", out)
	}
}

func TestScenarioFloods(t *testing.T) {
	victim := netip.MustParsePrefix("203.0.113.9/32")
	tests := []struct {
		name      string
		flood     Flood
		rate      uint32
		proto     uint8
		srcPort   uint16 // 0: any
		flags     uint8
		frag      bool
		size      uint64
		targets   int  // distinct local hosts hit
		outgoing  bool // local host is the source
		wantFlows int
	}{
		{"udp", Flood{Kind: FloodUDP, Target: victim, PPS: 50000}, 0, 17, 0, 0, false, 512, 1, false, 100},
		{"syn sampled", Flood{Kind: FloodSYN, Target: victim, PPS: 1000000}, 1000, 6, 0, 0x02, false, 60, 1, false, 100},
		{"icmp", Flood{Kind: FloodICMP, Target: victim, PPS: 30000, FlowsPerSecond: 10}, 0, 1, 0, 0, false, 84, 1, false, 10},
		{"fragment", Flood{Kind: FloodFragment, Target: victim, PPS: 30000}, 0, 17, 0, 0, true, 1500, 1, false, 100},
		{"dns", Flood{Kind: FloodDNSAmp, Target: victim, PPS: 30000}, 0, 17, 53, 0, false, 1400, 1, false, 100},
		{"ntp", Flood{Kind: FloodNTPAmp, Target: victim, PPS: 30000}, 0, 17, 123, 0, false, 468, 1, false, 100},
		{"memcached", Flood{Kind: FloodMemcachedAmp, Target: victim, PPS: 30000}, 0, 17, 11211, 0, false, 1400, 1, false, 100},
		{"ssdp", Flood{Kind: FloodAmplification, SourcePort: 1900, Target: victim, PPS: 30000}, 0, 17, 1900, 0, false, 1000, 1, false, 100},
		{"outgoing udp", Flood{Kind: FloodUDP, Target: victim, PPS: 30000, Outgoing: true}, 0, 17, 0, 0, false, 512, 1, true, 100},
		{"ipv6", Flood{Kind: FloodUDP, Target: netip.MustParsePrefix("2001:db8::5/128"), PPS: 30000}, 0, 17, 0, 0, false, 512, 1, false, 100},
		{"carpet /24", Flood{Kind: FloodUDP, Target: netip.MustParsePrefix("203.0.113.0/24"), PPS: 256 * 2000, FlowsPerSecond: 512}, 0, 17, 0, 0, false, 512, 256, false, 512},
		{"carpet /24, fewer records than hosts", Flood{Kind: FloodUDP, Target: netip.MustParsePrefix("203.0.113.0/24"), PPS: 100000, FlowsPerSecond: 64}, 0, 17, 0, 0, false, 512, 64, false, 64},
		{"fewer packets than flows", Flood{Kind: FloodUDP, Target: victim, PPS: 50000}, 1000, 17, 0, 0, false, 512, 1, false, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustScenario(t, ScenarioConfiguration{Seed: 3, SamplingRate: tt.rate, Floods: []Flood{tt.flood}})
			flows := s.Second(nil, 0, t0)
			if len(flows) != tt.wantFlows {
				t.Fatalf("%d flows, want %d", len(flows), tt.wantFlows)
			}
			var packets uint64
			locals := map[netip.Addr]bool{}
			for _, f := range flows {
				local, remote := f.Dst, f.Src
				if tt.outgoing {
					local, remote = f.Src, f.Dst
				}
				if !tt.flood.Target.Contains(local) || tt.flood.Target.Contains(remote) {
					t.Fatalf("flow %v -> %v: wrong direction", f.Src, f.Dst)
				}
				locals[local] = true
				if f.Proto != tt.proto && !(tt.proto == 1 && f.Proto == 58) {
					t.Fatalf("proto %d, want %d", f.Proto, tt.proto)
				}
				if tt.srcPort != 0 && f.SrcPort != tt.srcPort {
					t.Fatalf("source port %d, want %d", f.SrcPort, tt.srcPort)
				}
				if f.TCPFlags != tt.flags || f.Fragment != tt.frag {
					t.Fatalf("flags %#x frag %v", f.TCPFlags, f.Fragment)
				}
				if f.Bytes != f.Packets*tt.size {
					t.Fatalf("%d bytes for %d packets, want size %d", f.Bytes, f.Packets, tt.size)
				}
				if f.SamplingRate != tt.rate {
					t.Fatalf("rate %d", f.SamplingRate)
				}
				packets += f.Packets * f.rate()
			}
			if packets != tt.flood.PPS {
				t.Fatalf("flood carries %d pps after sampling, want %d", packets, tt.flood.PPS)
			}
			if len(locals) != tt.targets {
				t.Fatalf("%d local hosts hit, want %d", len(locals), tt.targets)
			}
		})
	}
}

func TestScenarioFloodWindow(t *testing.T) {
	s := mustScenario(t, ScenarioConfiguration{Floods: []Flood{{
		Kind: FloodUDP, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 1000,
		StartAt: 5 * time.Second, StopAt: 8 * time.Second,
	}}})
	for sec, want := range []bool{false, false, false, false, false, true, true, true, false, false} {
		if got := len(s.Second(nil, sec, t0)) > 0; got != want {
			t.Errorf("second %d: flooding %v, want %v", sec, got, want)
		}
	}
}

func TestScenarioFloodPeriod(t *testing.T) {
	s := mustScenario(t, ScenarioConfiguration{Floods: []Flood{{
		Kind: FloodUDP, Target: netip.MustParsePrefix("203.0.113.9/32"), PPS: 1000,
		StartAt: 2 * time.Second, StopAt: 4 * time.Second, Period: 5 * time.Second,
	}}})
	var got []int
	for sec := range 15 {
		if len(s.Second(nil, sec, t0)) > 0 {
			got = append(got, sec)
		}
	}
	if want := []int{2, 3, 7, 8, 12, 13}; !reflect.DeepEqual(got, want) {
		t.Fatalf("flooding in seconds %v, want %v", got, want)
	}
}

func TestScenarioBadConfiguration(t *testing.T) {
	v := netip.MustParsePrefix("203.0.113.9/32")
	for name, cfg := range map[string]ScenarioConfiguration{
		"no background prefix":       {Background: &Background{FlowsPerSecond: 1}},
		"flood without target":       {Floods: []Flood{{Kind: FloodUDP, PPS: 1}}},
		"unknown kind":               {Floods: []Flood{{Kind: 99, Target: v}}},
		"amp without port":           {Floods: []Flood{{Kind: FloodAmplification, Target: v}}},
		"period shorter than window": {Floods: []Flood{{Kind: FloodUDP, Target: v, StartAt: 0, StopAt: 10 * time.Second, Period: 5 * time.Second}}},
		"ipv6 fragments":             {Floods: []Flood{{Kind: FloodFragment, Target: netip.MustParsePrefix("2001:db8::1/128")}}},
	} {
		if _, err := NewScenario(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseNames(t *testing.T) {
	for _, f := range Formats() {
		if g, err := ParseFormat(f.String()); err != nil || g != f {
			t.Errorf("format %v: %v %v", f, g, err)
		}
	}
	if _, err := ParseFormat("v7"); err == nil {
		t.Error("v7 accepted")
	}
	for k := range floodNames {
		if g, err := ParseFloodKind(k.String()); err != nil || g != k {
			t.Errorf("flood %v: %v %v", k, g, err)
		}
	}
}

func TestScenarioSpec(t *testing.T) {
	base := ScenarioSpec{Prefix: netip.MustParsePrefix("203.0.113.0/24"), BackgroundFlows: 100, FloodPPS: 10000}
	tests := []struct {
		parts   string
		floods  []FloodKind
		bg      bool
		wantErr bool
	}{
		{"background", nil, true, false},
		{"background+udpflood", []FloodKind{FloodUDP}, true, false},
		{"synflood,dnsamp+ssdpamp", []FloodKind{FloodSYN, FloodDNSAmp, FloodAmplification}, false, false},
		{"outflood+ipv6flood+carpet", []FloodKind{FloodUDP, FloodUDP, FloodUDP}, false, false},
		{"nonsense", nil, false, true},
		{"", nil, false, true},
	}
	for _, tt := range tests {
		s := base
		s.Parts = tt.parts
		cfg, err := s.Configuration()
		if (err != nil) != tt.wantErr {
			t.Fatalf("%q: error %v", tt.parts, err)
		}
		if err != nil {
			continue
		}
		if (cfg.Background != nil) != tt.bg || len(cfg.Floods) != len(tt.floods) {
			t.Fatalf("%q: background %v, %d floods", tt.parts, cfg.Background != nil, len(cfg.Floods))
		}
		for i, k := range tt.floods {
			if cfg.Floods[i].Kind != k {
				t.Errorf("%q: flood %d is %v, want %v", tt.parts, i, cfg.Floods[i].Kind, k)
			}
		}
		if _, err := NewScenario(cfg); err != nil {
			t.Errorf("%q: %v", tt.parts, err)
		}
	}
	s := base
	s.Parts = "outflood+ipv6flood+carpet"
	cfg, _ := s.Configuration()
	if !cfg.Floods[0].Outgoing || cfg.Floods[0].Target.String() != "203.0.113.10/32" ||
		cfg.Floods[1].Target.String() != "2001:db8::5/128" || cfg.Floods[2].Target.String() != "203.0.113.0/24" ||
		cfg.Floods[2].FlowsPerSecond != 256 {
		t.Errorf("targets: %+v", cfg.Floods)
	}
}
