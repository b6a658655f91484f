package flowgen

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ScenarioSpec is a scenario described the way cmd/flowgen's flags describe
// it: a list of named parts sharing one victim, one rate per flood.
type ScenarioSpec struct {
	// Parts, joined by '+' or ',': background, udpflood, synflood,
	// tcpflood, icmpflood, fragflood, dnsamp, ntpamp, memcachedamp,
	// ssdpamp, cldapamp, chargenamp, snmpamp, outflood (the victim floods
	// out), ipv6flood (UDP to Victim6), carpet (UDP over all of Prefix).
	Parts        string
	Seed         uint64
	SamplingRate uint32
	Prefix       netip.Prefix // protected network; background hosts
	Hosts        int          // background hosts (0: all of Prefix, at most 65536)
	Victim       netip.Addr   // flood target (default: Prefix's 10th address)
	Victim6      netip.Addr   // ipv6flood target (default 2001:db8::5)
	// BackgroundFlows is the background records per second.
	BackgroundFlows int
	// Per flood: packets/s before sampling, records/s, packet size (0: by
	// kind), distinct sources, and when it runs.
	FloodPPS, FloodFlows, FloodSize, FloodSources int
	FloodStart, FloodStop, FloodPeriod            time.Duration
}

var amplifierPorts = map[string]uint16{"ssdpamp": 1900, "cldapamp": 389, "chargenamp": 19, "snmpamp": 161}

// Configuration turns the spec into a ScenarioConfiguration.
func (s ScenarioSpec) Configuration() (ScenarioConfiguration, error) {
	cfg := ScenarioConfiguration{Seed: s.Seed, SamplingRate: s.SamplingRate}
	if !s.Prefix.IsValid() {
		return cfg, fmt.Errorf("scenario %q: no prefix", s.Parts)
	}
	victim := s.Victim
	if !victim.IsValid() {
		victim = addrAt(s.Prefix.Masked(), 10%prefixHosts(s.Prefix))
	}
	victim6 := s.Victim6
	if !victim6.IsValid() {
		victim6 = netip.MustParseAddr("2001:db8::5")
	}
	host := func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
	flood := func(k FloodKind, target netip.Prefix) Flood {
		return Flood{Kind: k, Target: target, PPS: uint64(s.FloodPPS), FlowsPerSecond: s.FloodFlows,
			PacketSize: s.FloodSize, Sources: s.FloodSources, StartAt: s.FloodStart, StopAt: s.FloodStop,
			Period: s.FloodPeriod}
	}
	kinds := map[string]FloodKind{
		"udpflood": FloodUDP, "synflood": FloodSYN, "tcpflood": FloodTCP, "icmpflood": FloodICMP,
		"fragflood": FloodFragment, "dnsamp": FloodDNSAmp, "ntpamp": FloodNTPAmp, "memcachedamp": FloodMemcachedAmp,
	}
	for _, p := range strings.FieldsFunc(s.Parts, func(r rune) bool { return r == '+' || r == ',' }) {
		p = strings.ToLower(strings.TrimSpace(p))
		switch {
		case p == "background":
			cfg.Background = &Background{Prefix: s.Prefix, Hosts: s.Hosts, FlowsPerSecond: s.BackgroundFlows}
		case kinds[p] != 0:
			cfg.Floods = append(cfg.Floods, flood(kinds[p], host(victim)))
		case amplifierPorts[p] != 0:
			f := flood(FloodAmplification, host(victim))
			f.SourcePort = amplifierPorts[p]
			cfg.Floods = append(cfg.Floods, f)
		case p == "outflood":
			f := flood(FloodUDP, host(victim))
			f.Outgoing = true
			cfg.Floods = append(cfg.Floods, f)
		case p == "ipv6flood":
			cfg.Floods = append(cfg.Floods, flood(FloodUDP, host(victim6)))
		case p == "carpet":
			f := flood(FloodUDP, s.Prefix.Masked())
			// every host of the prefix gets a record each second
			f.FlowsPerSecond = max(f.FlowsPerSecond, int(prefixHosts(s.Prefix)))
			cfg.Floods = append(cfg.Floods, f)
		default:
			return cfg, fmt.Errorf("scenario %q: unknown part %q", s.Parts, p)
		}
	}
	if cfg.Background == nil && len(cfg.Floods) == 0 {
		return cfg, fmt.Errorf("scenario %q: nothing to generate", s.Parts)
	}
	return cfg, nil
}
