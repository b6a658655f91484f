package routeros

import (
	"context"
	"fmt"
	"net/netip"
)

// Addresses are the router's own addresses, without their prefix length:
// every entry of /ip/address and /ipv6/address ("192.0.2.1/24" gives
// 192.0.2.1), disabled, invalid, dynamic and link-local ones included,
// since any of them may be the router's again. The ban manager keeps bans
// off them. RouterOS 6 and 7 print these menus alike. A router without
// IPv6 (a trap on /ipv6/address) has only IPv4 ones; an entry that does not
// parse is logged and counted (Stats.UnreadableAddresses), not fatal.
func (r *Router) Addresses(ctx context.Context) ([]netip.Addr, error) {
	var out []netip.Addr
	err := r.printFamilies(ctx, "/address", []string{"=.proplist=.id,address"}, func(menu string, m map[string]string) {
		a, err := interfaceAddress(m["address"])
		if err != nil {
			r.unreadableAddresses.Add(1)
			r.log.Warn("unreadable router address", "menu", menu, "id", m[".id"], "error", err)
			return
		}
		out = append(out, a)
	})
	if err != nil {
		return nil, fmt.Errorf("read the router's addresses: %w", err)
	}
	return out, nil
}

// interfaceAddress reads an address as /ip/address prints it: with the
// interface's prefix length ("192.0.2.1/24", "2001:db8::1/64"), or bare.
func interfaceAddress(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("address %q: not an address with a prefix length", s)
}
