package routeros_test

import (
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

func TestTrafficFlowRead(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)

	tf, err := f.r.TrafficFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tf.Enabled || tf.ActiveTimeout != 30*time.Minute || tf.InactiveTimeout != 15*time.Second || len(tf.Targets) != 0 || tf.Exporting() {
		t.Fatalf("RouterOS defaults: %+v", tf)
	}
	if err := f.emu.SetTrafficFlow(map[string]string{"enabled": "yes", "active-flow-timeout": "1s", "inactive-flow-timeout": "1s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.emu.Seed(routerostest.MenuTrafficFlowTarget, map[string]string{"dst-address": "172.17.0.2", "port": "2055", "src-address": "172.17.0.1", "version": "IPFIX"}); err != nil {
		t.Fatal(err)
	}
	tf, err = f.r.TrafficFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := routeros.TrafficFlowTarget{ID: "*1", Address: "172.17.0.2:2055", SrcAddress: "172.17.0.1", Version: "IPFIX"}
	if !tf.Enabled || tf.ActiveTimeout != time.Second || tf.InactiveTimeout != time.Second || tf.CacheEntries != "4k" ||
		len(tf.Targets) != 1 || tf.Targets[0] != want || !tf.Exporting() {
		t.Fatalf("set up: %+v", tf)
	}

	// no switch chip (CHR), then one with L3 hardware offloading
	if names, err := f.r.L3HWOffload(ctx); err != nil || names != nil {
		t.Fatalf("CHR: %q %v", names, err)
	}
	f.emu.Seed(routerostest.MenuSwitch, map[string]string{"name": "switch1", "type": "Marvell-98DX8216", "l3-hw-offloading": "yes"})
	f.emu.Seed(routerostest.MenuSwitch, map[string]string{"name": "switch2"})
	if names, err := f.r.L3HWOffload(ctx); err != nil || len(names) != 1 || names[0] != "switch1" {
		t.Fatalf("offload: %q %v", names, err)
	}

	// a trap (here: injected) on the switch menu is no switch menu
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/interface/ethernet/switch", Message: "no such command prefix"})
	if names, err := f.r.L3HWOffload(ctx); err != nil || names != nil {
		t.Fatalf("trap: %q %v", names, err)
	}
	// a trap on traffic-flow is an error the caller can tell from a lost connection
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/ip/traffic-flow/print", Message: "not enough permissions (9)"})
	if _, err := f.r.TrafficFlow(ctx); !routeros.IsTrap(err) {
		t.Fatalf("trap on print: %v", err)
	}
}

func TestTrafficFlowReadRouterOS6(t *testing.T) {
	emuCfg := routerostest.DefaultConfiguration()
	emuCfg.Version = "6.49.10 (long-term)"
	f := setup(t, emuCfg, nil)
	ctx := ctxT(t)
	if err := f.emu.SetTrafficFlow(map[string]string{"enabled": "yes", "active-flow-timeout": "1m", "inactive-flow-timeout": "15s"}); err != nil {
		t.Fatal(err)
	}
	f.emu.Seed(routerostest.MenuTrafficFlowTarget, map[string]string{"address": "192.0.2.9:2055", "version": "9"})
	f.emu.Seed(routerostest.MenuSwitch, map[string]string{"name": "switch1", "type": "Atheros-8327"})
	tf, err := f.r.TrafficFlow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tf.ActiveTimeout != time.Minute || tf.InactiveTimeout != 15*time.Second || len(tf.Targets) != 1 || tf.Targets[0].Address != "192.0.2.9:2055" || !tf.Exporting() {
		t.Fatalf("RouterOS 6: %+v", tf)
	}
	if names, err := f.r.L3HWOffload(ctx); err != nil || names != nil {
		t.Fatalf("RouterOS 6 switch: %q %v", names, err)
	}
}
