//go:build linux

package collector

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestListenAddresses: the socket the collector makes itself binds what
// net.ListenUDP would (an IPv4 address, an IPv6 one, every address) and
// reports the sender's address unmapped, and a port in use is an error
// naming the setting.
func TestListenAddresses(t *testing.T) {
	tests := []struct {
		listen, from, want string
	}{
		{"127.0.0.1:0", "127.0.0.1", "127.0.0.1"},
		{"[::1]:0", "::1", "::1"},
		{":0", "127.0.0.1", "127.0.0.1"}, // dual stack: arrives as ::ffff:127.0.0.1
		{":0", "::1", "::1"},
		{"0.0.0.0:0", "127.0.0.1", "127.0.0.1"},
	}
	ipv6 := true
	if probe, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		ipv6 = false
	} else {
		probe.Close()
	}
	for _, tt := range tests {
		t.Run(tt.listen+" from "+tt.from, func(t *testing.T) {
			if strings.Contains(tt.from, ":") && !ipv6 {
				t.Skip("no IPv6 loopback here")
			}
			cfg := testConfig()
			cfg.NetFlowListen, cfg.SFlowListen = tt.listen, ""
			c := New(cfg, Decoders{NetFlow: &fakeDecoder{}}, &countingConsumer{}, testLogger(t))
			if err := c.Start(t.Context()); err != nil {
				if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT) {
					t.Skipf("no such address family here: %v", err)
				}
				t.Fatal(err)
			}
			defer c.Stop()
			to := listenAddr(t, c, ProtocolNetFlow)
			if to.IP.IsUnspecified() {
				to.IP = net.ParseIP(tt.from)
			}
			conn := sender(t, tt.from, to)
			send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 0, 0, 0))
			waitFor(t, 5*time.Second, "the datagram", func() bool { return c.Stats().Datagrams == 1 })
			if _, ok := exporterOf(c.Stats(), tt.want, ProtocolNetFlow); !ok {
				t.Errorf("no exporter %s in %+v", tt.want, c.Stats().Exporters)
			}
		})
	}

	t.Run("port in use", func(t *testing.T) {
		busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		cfg := testConfig()
		cfg.NetFlowListen, cfg.SFlowListen = busy.LocalAddr().String(), ""
		c := New(cfg, Decoders{NetFlow: &fakeDecoder{}}, &countingConsumer{}, testLogger(t))
		err = c.Start(t.Context())
		if err == nil {
			c.Stop()
			t.Fatal("binding a port in use: no error")
		}
		if !strings.Contains(err.Error(), "NETFLOW_LISTEN") || !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("error %q: want it to name NETFLOW_LISTEN and wrap EADDRINUSE", err)
		}
	})
}
