package appliance

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
	"github.com/flowshield/flowshield/uplink"
)

// offloadedUplink is a router's uplink as flowgen's traffic crosses it:
// each second's flows pass the emulated router's Forward on ether1, spread
// over the second in ten slices as packets arrive, and only one record in
// ten is exported: the rest went through hardware the export never sees.
type offloadedUplink struct {
	inner flowgen.Source
	emu   *routerostest.Server

	mu      sync.Mutex
	pending []routerostest.Packet // this second's traffic
	played  int                   // slices of it forwarded
	records int
}

const uplinkSlices = 10

// Second implements flowgen.Source.
func (u *offloadedUplink) Second(dst []flowgen.Flow, index int, start time.Time) []flowgen.Flow {
	n := len(dst)
	dst = u.inner.Second(dst, index, start)
	u.mu.Lock()
	defer u.mu.Unlock()
	for u.played < uplinkSlices && len(u.pending) > 0 {
		u.playLocked() // what is left of the last second
	}
	u.pending, u.played = u.pending[:0], 0
	kept := dst[:n]
	for _, f := range dst[n:] {
		rate := uint64(max(f.SamplingRate, 1))
		u.pending = append(u.pending, routerostest.Packet{Src: f.Src, Dst: f.Dst, Proto: f.Proto, SrcPort: f.SrcPort, DstPort: f.DstPort,
			TCPFlags: f.TCPFlags, Fragment: f.Fragment, Packets: f.Packets * rate, Bytes: f.Bytes * rate, InInterface: "ether1"})
		if u.records++; u.records%10 == 0 {
			kept = append(kept, f)
		}
	}
	return kept
}

// playLocked forwards the next slice of the second's traffic.
func (u *offloadedUplink) playLocked() {
	last := u.played == uplinkSlices-1
	for _, p := range u.pending {
		slice := p
		slice.Packets, slice.Bytes = p.Packets/uplinkSlices, p.Bytes/uplinkSlices
		if last {
			slice.Packets += p.Packets % uplinkSlices
			slice.Bytes += p.Bytes % uplinkSlices
		}
		u.emu.Forward(slice)
	}
	u.played++
}

// play forwards a slice every tenth of a second until ctx ends.
func (u *offloadedUplink) play(ctx context.Context) {
	t := time.NewTicker(time.Second / uplinkSlices)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u.mu.Lock()
		if u.played < uplinkSlices {
			u.playLocked()
		}
		u.mu.Unlock()
	}
}

// TestUplinkThroughRouter: flowgen's flood crosses the emulated router's
// uplink ether1 (in the interface list flowshield-uplinks; ether2 is not)
// and only one record in ten is exported, as with hardware offload. The
// daemon reads the counters over the API: flow-blind shows in the status,
// and the flood, twice LINK_MBPS, makes the uplink saturated within 2
// polls of the first poll that sees it.
func TestUplinkThroughRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	emu := startEmulator(t)
	for _, name := range []string{"ether1", "ether2"} {
		if _, err := emu.Seed(routerostest.MenuInterface, map[string]string{"name": name}); err != nil {
			t.Fatal(err)
		}
	}
	emu.Seed(routerostest.MenuInterfaceList, map[string]string{"name": routeros.UplinkList})
	emu.Seed(routerostest.MenuInterfaceListMember, map[string]string{"list": routeros.UplinkList, "interface": "ether1"})
	const linkMbps = 40
	a := startTestApplianceWith(t, map[string]string{
		"FLOWSHIELD_ACTION":            "address-list",
		"FLOWSHIELD_LINK_MBPS":         "40",
		"FLOWSHIELD_THRESHOLD_PPS":     "10000000",
		"FLOWSHIELD_THRESHOLD_MBPS":    "100000",
		"FLOWSHIELD_THRESHOLD_FLOWS":   "10000000",
		"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
		"FLOWSHIELD_ROUTEROS_USER":     "flowshield",
		"FLOWSHIELD_ROUTEROS_PASSWORD": "s3cret-e2e",
	}, Options{Uplink: uplink.Configuration{Interval: 500 * time.Millisecond, BlindPolls: 3, BlindClearPolls: 3}})

	// 20,000 pps of 500 bytes: 80 Mbit/s, twice the link
	victim := netip.MustParseAddr("203.0.113.77")
	sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{Seed: 9, Floods: []flowgen.Flood{{
		Kind: flowgen.FloodUDP, Target: netip.PrefixFrom(victim, victim.BitLen()),
		PPS: 20000, PacketSize: 500, FlowsPerSecond: 100, Sources: 50}}})
	if err != nil {
		t.Fatal(err)
	}
	path := &offloadedUplink{inner: sc, emu: emu}
	scfg := flowgen.DefaultSenderConfiguration()
	scfg.Target = a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	scfg.Encoder.Format = flowgen.FormatRouterOSV9
	scfg.Duration = 30 * time.Second
	s, err := flowgen.NewSender(scfg, path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); path.play(ctx) }()
	go func() {
		defer wg.Done()
		if _, err := s.Run(ctx); err != nil {
			t.Error(err)
		}
	}()

	// saturated within 2 polls of the first that sees the flood
	var first uint64
	for deadline := time.Now().Add(15 * time.Second); first == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no poll saw the flood: %+v", a.uplink.Status())
		}
		if st := a.uplink.Status(); st.RxBPS >= 0.9*linkMbps*1e6 {
			first = st.Poll
			if st.Saturated {
				t.Fatalf("saturated on the first poll that saw the flood: %+v", st)
			}
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st := a.uplink.Status()
		if st.Poll > first+1 || time.Now().After(deadline) {
			t.Fatalf("poll %d after the first flood poll %d, saturated %v (missed poll %d)", st.Poll, first, st.Saturated, first+1)
		}
		if st.Poll == first+1 {
			if !st.Saturated || !a.UplinkSaturated() {
				t.Fatalf("not saturated on the second flood poll: %+v", st)
			}
			break
		}
	}

	st := waitStatus(t, a, 15*time.Second, func(s api.Status) bool { return s.Uplink.FlowBlind && s.Uplink.FlowPPS > 0 })
	u := st.Uplink
	if !u.FlowBlind || !u.Saturated || u.LinkMbps != linkMbps {
		t.Fatalf("status uplink: %+v", u)
	}
	if len(u.Interfaces) != 1 || u.Interfaces[0].Name != "ether1" || u.Interfaces[0].Router != emu.Addr() || !u.Interfaces[0].Running {
		t.Fatalf("interfaces: %+v", u.Interfaces)
	}
	if u.FlowPPS <= 0 || u.RxPPS < 4*u.FlowPPS {
		t.Fatalf("flow-blind with flows at %.0f pps and interfaces at %.0f pps", u.FlowPPS, u.RxPPS)
	}
	t.Logf("uplink: %.1f Mbit/s, %.0f pps on ether1; flows account for %.0f pps", u.RxBPS/1e6, u.RxPPS, u.FlowPPS)
	if c := emu.InterfaceCounters("ether2"); c.Packets != 0 {
		t.Fatalf("ether2 counted %d packets", c.Packets)
	}
}

// TestUplinkWithoutRouter: with no router and LINK_MBPS unknown the status
// still has its uplink object, empty and never saturated.
func TestUplinkWithoutRouter(t *testing.T) {
	a := startTestAppliance(t, nil)
	u := getStatus(t, a).Uplink
	if u.Interfaces == nil || len(u.Interfaces) != 0 || u.Saturated || u.FlowBlind || u.LinkMbps != 0 || a.UplinkSaturated() {
		t.Fatalf("uplink: %+v", u)
	}
}
