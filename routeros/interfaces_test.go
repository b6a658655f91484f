package routeros_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// TestInterfaceCounters reads the uplink list's counters on RouterOS 7 and
// 6, driven by traffic through the emulated router: a dropped packet still
// counts on reception, a disabled member and an interface outside the
// list are left out.
func TestInterfaceCounters(t *testing.T) {
	for _, version := range []string{"7.18.2 (stable)", "6.49.17 (long-term)"} {
		t.Run(version, func(t *testing.T) {
			emuCfg := routerostest.DefaultConfiguration()
			emuCfg.Version = version
			f := setup(t, emuCfg, nil)
			ctx := ctxT(t)

			if got, err := f.r.InterfaceCounters(ctx, routeros.UplinkList); err != nil || got != nil {
				t.Fatalf("no list: %v %v", got, err)
			}
			for _, name := range []string{"ether1", "sfp-sfpplus1", "ether2", "ether3"} {
				if _, err := f.emu.Seed(routerostest.MenuInterface, map[string]string{"name": name}); err != nil {
					t.Fatal(err)
				}
			}
			f.emu.Seed(routerostest.MenuInterfaceList, map[string]string{"name": routeros.UplinkList})
			f.emu.Seed(routerostest.MenuInterfaceListMember, map[string]string{"list": routeros.UplinkList, "interface": "ether1"})
			f.emu.Seed(routerostest.MenuInterfaceListMember, map[string]string{"list": routeros.UplinkList, "interface": "sfp-sfpplus1"})
			f.emu.Seed(routerostest.MenuInterfaceListMember, map[string]string{"list": routeros.UplinkList, "interface": "ether3", "disabled": "yes"})
			f.emu.Seed(routerostest.MenuInterfaceListMember, map[string]string{"list": "LAN", "interface": "ether2"})

			victim := netip.MustParseAddr("203.0.113.5")
			if _, err := f.emu.Seed(routerostest.MenuRaw, map[string]string{"chain": "prerouting", "action": "drop", "dst-address": "203.0.113.5", "protocol": "udp", "src-port": "53"}); err != nil {
				t.Fatal(err)
			}
			pkt := func(in string, sport uint16, packets, bytes uint64) routerostest.Packet {
				return routerostest.Packet{Src: netip.MustParseAddr("198.51.100.7"), Dst: victim, Proto: 17, SrcPort: sport, DstPort: 4444,
					Packets: packets, Bytes: bytes, InInterface: in}
			}
			if v := f.emu.Forward(pkt("ether1", 53, 1000, 1_400_000)); !v.Dropped {
				t.Fatal("the DNS flood passed the raw rule")
			}
			f.emu.Forward(pkt("ether1", 443, 10, 10_000))
			f.emu.Forward(pkt("sfp-sfpplus1", 443, 5, 500))
			f.emu.Forward(pkt("ether2", 443, 7, 700))
			f.emu.Forward(pkt("ether3", 443, 9, 900))

			got, err := f.r.InterfaceCounters(ctx, routeros.UplinkList)
			if err != nil {
				t.Fatal(err)
			}
			want := []routeros.InterfaceCounters{
				{Name: "ether1", RxPackets: 1010, RxBytes: 1_410_000 + 14*1010, Running: true},
				{Name: "sfp-sfpplus1", RxPackets: 5, RxBytes: 500 + 14*5, Running: true},
			}
			if !slices.Equal(got, want) {
				t.Fatalf("counters:\n got %+v\nwant %+v", got, want)
			}
			if n := f.emu.CountCommands("/interface/print"); n != 1 {
				t.Fatalf("/interface/print sent %d times", n)
			}

			// a reboot zeroes the counters
			f.emu.Restart()
			got, err = f.r.InterfaceCounters(ctx, routeros.UplinkList)
			if err != nil || len(got) != 2 || got[0].RxBytes != 0 || got[1].RxPackets != 0 {
				t.Fatalf("after reboot: %+v %v", got, err)
			}
		})
	}
}

// TestInterfaceCountersErrors: a router without interface lists (a trap)
// is an error naming the menu.
func TestInterfaceCountersErrors(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/interface/list/member/print", Message: "no such command prefix"})
	_, err := f.r.InterfaceCounters(ctx, routeros.UplinkList)
	var trap *routeros.TrapError
	if !errors.As(err, &trap) || !strings.Contains(err.Error(), "/interface/list/member") {
		t.Fatalf("trap: %v", err)
	}

}
