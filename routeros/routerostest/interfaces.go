package routerostest

// Interfaces and interface lists: /interface with its receive counters,
// which Forward drives (a Packet's InInterface counts its packets and bytes
// there before raw prerouting, as a router counts a frame on reception:
// what raw or a blackhole route drops still counts), and /interface/list
// with /interface/list/member, which the setup script fills and flowshield
// reads.
//
// Model, and what it leaves out:
//   - /interface items are Seeded (name, type, running; the API can only
//     print and set them). rx-byte is layer 2: the Packet's bytes plus a
//     14-byte Ethernet header per packet, as RouterOS (Linux netdev
//     counters) counts frames; rx-packet its packets. Neither disabled
//     nor non-running interfaces count. The emulator routes to no
//     interface, so it prints no tx counters. Restart zeroes the counters,
//     as a reboot does.
//   - /interface/list has no built-in lists (all, none, dynamic), and
//     neither menu checks that a member's list or interface exists.

import "strconv"

// Menu paths of the interfaces and interface lists.
const (
	// MenuInterface lists the interfaces; Seed adds one (name, type,
	// running), the API can only print and set.
	MenuInterface = "/interface"
	// MenuInterfaceList and MenuInterfaceListMember are interface lists
	// and their members (list, interface).
	MenuInterfaceList       = "/interface/list"
	MenuInterfaceListMember = "/interface/list/member"
)

const (
	kindInterface menuKind = iota + 100
	kindInterfaceList
	kindInterfaceListMember
)

// ethernetHeader is what a frame adds to a Packet's layer-3 bytes.
const ethernetHeader = 14

// interfaceSchemas are the interface menus, alike on RouterOS 6 and 7.
func interfaceSchemas() map[string]*schema {
	return map[string]*schema{
		MenuInterface: {kind: kindInterface, fixed: true,
			writable: set("name", "comment", "disabled", "mtu"),
			bools:    set("disabled", "running", "dynamic", "slave"),
			seedable: set("type", "running"),
			required: []string{"name"},
			defaults: map[string]string{"type": "ether", "mtu": "1500", "disabled": "false", "running": "true"}},
		MenuInterfaceList: {kind: kindInterfaceList,
			writable: set("name", "comment", "include", "exclude"),
			bools:    set("builtin", "dynamic"),
			required: []string{"name"},
			defaults: map[string]string{"include": "", "exclude": "", "builtin": "false", "dynamic": "false"}},
		MenuInterfaceListMember: {kind: kindInterfaceListMember,
			writable: set("list", "interface", "comment", "disabled"),
			bools:    set("disabled", "dynamic"),
			required: []string{"list", "interface"},
			defaults: map[string]string{"disabled": "false", "dynamic": "false"}},
	}
}

// renderInterface adds an interface's counters to its print.
func renderInterface(o *object, m map[string]string) {
	m["rx-byte"] = strconv.FormatUint(o.bytes, 10)
	m["rx-packet"] = strconv.FormatUint(o.packets, 10)
}

// countInterfaceLocked counts p on its in-interface, if the router has it
// enabled and running.
func (s *Server) countInterfaceLocked(p Packet) {
	if p.InInterface == "" {
		return
	}
	for _, o := range s.tables[MenuInterface].objs {
		if o.props["name"] != p.InInterface {
			continue
		}
		if o.props["disabled"] != "true" && o.props["running"] == "true" {
			o.packets += p.Packets
			o.bytes += p.Bytes + ethernetHeader*p.Packets
		}
		return
	}
}

// InterfaceCounters is the receive counters of the interface named name
// (zero for no such interface).
func (s *Server) InterfaceCounters(name string) Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.tables[MenuInterface].objs {
		if o.props["name"] == name {
			return Counters{Packets: o.packets, Bytes: o.bytes}
		}
	}
	return Counters{}
}
