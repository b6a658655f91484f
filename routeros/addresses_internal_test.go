package routeros

import (
	"net/netip"
	"testing"
)

func TestInterfaceAddress(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for an error
	}{
		{"192.0.2.1/24", "192.0.2.1"},
		{"198.51.100.77/32", "198.51.100.77"},
		{"192.0.2.1", "192.0.2.1"},
		{"2001:db8::1/64", "2001:db8::1"},
		{"fe80::1/64", "fe80::1"},
		{"::ffff:192.0.2.1/120", "192.0.2.1"},
		{"", ""},
		{"192.0.2.1/33", ""},
		{"ether1", ""},
	}
	for _, tt := range tests {
		got, err := interfaceAddress(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != netip.MustParseAddr(tt.want) {
			t.Errorf("%q: %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}
