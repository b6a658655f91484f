package routeros

import (
	"errors"
	"slices"
	"testing"
)

func TestParseInterfaceCounters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		m       map[string]string
		want    InterfaceCounters
		badProp string
	}{
		{"v7", map[string]string{"name": "ether1", "rx-byte": "18446744073709551615", "rx-packet": "12", "running": "true"}, InterfaceCounters{Name: "ether1", RxBytes: 1<<64 - 1, RxPackets: 12, Running: true}, ""},
		{"v6 booleans", map[string]string{"name": "ether1", "rx-byte": "0", "rx-packet": "0", "running": "no"}, InterfaceCounters{Name: "ether1"}, ""},
		{"no counter", map[string]string{"name": "ether1", "rx-packet": "1", "running": "true"}, InterfaceCounters{}, "rx-byte"},
		{"negative", map[string]string{"name": "ether1", "rx-byte": "1", "rx-packet": "-1", "running": "true"}, InterfaceCounters{}, "rx-packet"},
		{"bad running", map[string]string{"name": "ether1", "rx-byte": "1", "rx-packet": "1", "running": "maybe"}, InterfaceCounters{}, "running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseInterfaceCounters(tc.m)
			var ve *ValueError
			if tc.badProp != "" {
				if !errors.As(err, &ve) || ve.Property != tc.badProp {
					t.Fatalf("want a ValueError on %s, got %v", tc.badProp, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNameQuery(t *testing.T) {
	for _, tc := range []struct {
		names, want []string
	}{
		{[]string{"ether1"}, []string{"?name=ether1"}},
		{[]string{"a", "b", "c"}, []string{"?name=a", "?name=b", "?name=c", "?#||"}},
	} {
		if got := nameQuery(tc.names); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.names, got, tc.want)
		}
	}
}
