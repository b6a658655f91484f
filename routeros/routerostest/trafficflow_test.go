package routerostest

import (
	"testing"
	"time"
)

func TestTrafficFlowMenus(t *testing.T) {
	s := start(t, DefaultConfiguration())
	c := dialRaw(t, s, true)

	// RouterOS defaults: off, 30m/15s, one object without id
	rep := c.call("/ip/traffic-flow/print")
	if len(rep) != 2 || rep[0][0] != "!re" || attr(rep[0], "enabled") != "false" ||
		attr(rep[0], "active-flow-timeout") != "30m" || attr(rep[0], "inactive-flow-timeout") != "15s" ||
		attr(rep[0], "interfaces") != "all" || attr(rep[0], "packet-sampling") != "false" || attr(rep[0], ".id") != "" {
		t.Fatalf("defaults: %q", rep)
	}
	// the setup script's words
	for _, words := range [][]string{
		{"/ip/traffic-flow/set", "=enabled=yes"},
		{"/ip/traffic-flow/set", "=active-flow-timeout=1s", "=inactive-flow-timeout=1s"},
		{"/ip/traffic-flow/target/add", "=dst-address=172.17.0.2", "=port=2055", "=src-address=172.17.0.1", "=version=IPFIX"},
	} {
		if rep := c.call(words...); rep[0][0] != "!done" {
			t.Fatalf("%q: %q", words, rep)
		}
	}
	rep = c.call("/ip/traffic-flow/print", "=.proplist=enabled,active-flow-timeout,inactive-flow-timeout")
	if attr(rep[0], "enabled") != "true" || attr(rep[0], "active-flow-timeout") != "1s" || attr(rep[0], "inactive-flow-timeout") != "1s" || attr(rep[0], "interfaces") != "" {
		t.Fatalf("after set: %q", rep)
	}
	rep = c.call("/ip/traffic-flow/target/print")
	if len(rep) != 2 || attr(rep[0], "dst-address") != "172.17.0.2" || attr(rep[0], "port") != "2055" ||
		attr(rep[0], "version") != "IPFIX" || attr(rep[0], "v9-template-refresh") != "20" || attr(rep[0], "disabled") != "false" {
		t.Fatalf("target: %q", rep)
	}
	for _, words := range [][]string{
		{"/ip/traffic-flow/set", "=active-flow-timeout=soon"},
		{"/ip/traffic-flow/set", "=bogus=1"},
		{"/ip/traffic-flow/add", "=enabled=yes"},
		{"/ip/traffic-flow/target/add", "=address=172.17.0.2:2055"},
		{"/ip/traffic-flow/target/add", "=dst-address=172.17.0.2", "=version=7"},
		{"/ip/traffic-flow/target/add", "=dst-address=172.17.0.2", "=port=70000"},
	} {
		if rep := c.call(words...); rep[0][0] != "!trap" {
			t.Errorf("%q accepted: %q", words, rep)
		}
	}
	if got := s.Objects(MenuTrafficFlow); len(got) != 1 || got[0].Props["active-flow-timeout"] != "1s" {
		t.Fatalf("a refused set changed something: %v", got)
	}
	if err := s.SetTrafficFlow(map[string]string{"active-flow-timeout": "1m30s", "inactive-flow-timeout": "500ms"}); err != nil {
		t.Fatal(err)
	}
	if got := s.Objects(MenuTrafficFlow)[0].Props; got["active-flow-timeout"] != "1m30s" || got["inactive-flow-timeout"] != "500ms" {
		t.Fatalf("SetTrafficFlow: %v", got)
	}

	// switch chips: seeded, printed, set, never added by the API
	id, err := s.Seed(MenuSwitch, map[string]string{"name": "switch1", "type": "Marvell-98DX8216", "l3-hw-offloading": "yes"})
	if err != nil || id != "*0" {
		t.Fatalf("seed switch: %s %v", id, err)
	}
	rep = c.call("/interface/ethernet/switch/print", "=.proplist=.id,name,l3-hw-offloading")
	if len(rep) != 2 || attr(rep[0], "name") != "switch1" || attr(rep[0], "l3-hw-offloading") != "true" {
		t.Fatalf("switch print: %q", rep)
	}
	if rep := c.call("/interface/ethernet/switch/set", "=.id=*0", "=l3-hw-offloading=no"); rep[0][0] != "!done" {
		t.Fatalf("switch set: %q", rep)
	}
	for _, words := range [][]string{
		{"/interface/ethernet/switch/add", "=name=switch2"},
		{"/interface/ethernet/switch/remove", "=.id=*0"},
		{"/interface/ethernet/switch/set", "=.id=*0", "=type=other"},
	} {
		if rep := c.call(words...); rep[0][0] != "!trap" {
			t.Errorf("%q accepted: %q", words, rep)
		}
	}

	s.Wipe()
	if got := s.Objects(MenuTrafficFlow)[0].Props; got["enabled"] != "false" || got["active-flow-timeout"] != "30m" {
		t.Fatalf("after Wipe: %v", got)
	}
}

func TestTrafficFlowReadOnlyGroup(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Group = "read"
	s := start(t, cfg)
	c := dialRaw(t, s, true)
	if rep := c.call("/ip/traffic-flow/print"); rep[0][0] != "!re" {
		t.Fatalf("read group print: %q", rep)
	}
	if rep := c.call("/ip/traffic-flow/set", "=enabled=yes"); rep[0][0] != "!trap" || attr(rep[0], "message") != "not enough permissions (9)" {
		t.Fatalf("read group set: %q", rep)
	}
}

func TestTrafficFlowRouterOS6(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Version = "6.49.10 (long-term)"
	cfg.MinActiveFlowTimeout = time.Minute
	s := start(t, cfg)
	c := dialRaw(t, s, true)

	rep := c.call("/ip/traffic-flow/print")
	if attr(rep[0], "active-flow-timeout") != "00:30:00" || attr(rep[0], "inactive-flow-timeout") != "00:00:15" || attr(rep[0], "packet-sampling") != "" {
		t.Fatalf("RouterOS 6 defaults: %q", rep)
	}
	rep = c.call("/ip/traffic-flow/set", "=active-flow-timeout=1s", "=inactive-flow-timeout=1s")
	if rep[0][0] != "!trap" {
		t.Fatalf("an active timeout under the minimum: %q", rep)
	}
	if rep := c.call("/ip/traffic-flow/set", "=active-flow-timeout=1m", "=inactive-flow-timeout=1s"); rep[0][0] != "!done" {
		t.Fatalf("the fallback: %q", rep)
	}
	if rep := c.call("/ip/traffic-flow/set", "=active-flow-timeout=1d2h"); rep[0][0] != "!done" {
		t.Fatalf("a day: %q", rep)
	}
	if got := s.Objects(MenuTrafficFlow)[0].Props; got["active-flow-timeout"] != "1d02:00:00" || got["inactive-flow-timeout"] != "00:00:01" {
		t.Fatalf("RouterOS 6 print: %v", got)
	}
	if rep := c.call("/ip/traffic-flow/target/add", "=address=192.0.2.9:2055", "=version=9"); rep[0][0] != "!done" {
		t.Fatalf("RouterOS 6 target: %q", rep)
	}
	if rep := c.call("/ip/traffic-flow/target/add", "=dst-address=192.0.2.9"); rep[0][0] != "!trap" {
		t.Fatalf("dst-address on RouterOS 6: %q", rep)
	}
	if got := s.Objects(MenuTrafficFlowTarget); len(got) != 1 || got[0].Props["address"] != "192.0.2.9:2055" {
		t.Fatalf("RouterOS 6 targets: %v", got)
	}
	if _, err := s.Seed(MenuSwitch, map[string]string{"name": "switch1", "l3-hw-offloading": "yes"}); err == nil {
		t.Fatal("RouterOS 6 switch took l3-hw-offloading")
	}
}
