package routeros_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/flowshield/flowshield/routeros/routerostest"
)

// TestAddresses reads the router's own addresses over the wire from the
// emulator in RouterOS 6 and 7 form: IPv4 and IPv6, with their prefix
// length cut off, disabled, dynamic and link-local ones included; a
// router whose /ipv6 menus trap (no IPv6 package) gives its IPv4 ones.
func TestAddresses(t *testing.T) {
	seeds := []struct {
		menu  string
		props map[string]string
	}{
		{routerostest.MenuAddress, map[string]string{"address": "192.0.2.1/24", "interface": "ether1"}},
		{routerostest.MenuAddress, map[string]string{"address": "203.0.113.1/24", "interface": "bridge", "disabled": "yes"}},
		{routerostest.MenuAddress, map[string]string{"address": "198.51.100.77/32", "interface": "pppoe-out1", "network": "198.51.100.1", "dynamic": "true"}},
		{routerostest.MenuAddressV6, map[string]string{"address": "2001:db8:1::1/64", "interface": "bridge"}},
		{routerostest.MenuAddressV6, map[string]string{"address": "fe80::1/64", "interface": "ether1", "dynamic": "true"}},
	}
	v4 := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("198.51.100.77")}
	v6 := []netip.Addr{netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("fe80::1")}
	tests := []struct {
		name    string
		version string
		noIPv6  bool
		want    []netip.Addr
	}{
		{"RouterOS 7", "7.18.2 (stable)", false, append(slices.Clone(v4), v6...)},
		{"RouterOS 6", "6.49.18 (long-term)", false, append(slices.Clone(v4), v6...)},
		{"without IPv6", "7.18.2 (stable)", true, v4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ecfg := routerostest.DefaultConfiguration()
			ecfg.Version = tt.version
			f := setup(t, ecfg, nil)
			for _, s := range seeds {
				if _, err := f.emu.Seed(s.menu, s.props); err != nil {
					t.Fatalf("seed %v: %v", s.props, err)
				}
			}
			if tt.noIPv6 {
				f.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/ipv6/address/print", Message: "no such command prefix"})
			}
			got, err := f.r.Addresses(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("addresses %v, want %v", got, tt.want)
			}
			if n := f.r.Stats().UnreadableAddresses; n != 0 {
				t.Fatalf("%d unreadable addresses", n)
			}
		})
	}
}

// TestAddressesErrors: a failing /ip/address print is an error (the
// caller keeps what it knew); an IPv4 trap is not taken for a missing
// IPv6 package.
func TestAddressesErrors(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	if _, err := f.emu.Seed(routerostest.MenuAddress, map[string]string{"address": "192.0.2.1/24", "interface": "ether1"}); err != nil {
		t.Fatal(err)
	}
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Trap, Match: "/ip/address/print", Message: "not enough permissions (9)"})
	if got, err := f.r.Addresses(ctxT(t)); err == nil {
		t.Fatalf("a trap on /ip/address gave %v and no error", got)
	}
	got, err := f.r.Addresses(ctxT(t))
	if err != nil || !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.1")}) {
		t.Fatalf("after the trap: %v, %v", got, err)
	}
}
