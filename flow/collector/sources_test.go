package collector

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestSourceFilter(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name     string
		prefixes []netip.Prefix
		allowed  []string
		refused  []string
	}{
		{"empty admits everyone", nil, []string{"192.0.2.1", "2001:db8::1", "0.0.0.0"}, nil},
		{"one router", pfx("192.0.2.1/32"), []string{"192.0.2.1"}, []string{"192.0.2.2", "192.0.2.0", "::ffff:192.0.2.2", "2001:db8::1"}},
		{"a subnet", pfx("172.17.0.0/16"), []string{"172.17.0.1", "172.17.255.255"}, []string{"172.16.255.255", "172.18.0.0"}},
		{"v4 any, no v6", pfx("0.0.0.0/0"), []string{"1.2.3.4", "255.255.255.255"}, []string{"::1", "2001:db8::1"}},
		{"v6 prefixes", pfx("2001:db8:1::/48", "fd00::1/128", "2001:db8:2:3::/64", "2001:db8:4::/63"),
			[]string{"2001:db8:1:ffff::1", "fd00::1", "2001:db8:2:3:ffff:ffff:ffff:ffff", "2001:db8:4:1::1"},
			[]string{"2001:db8:2::1", "fd00::2", "2001:db8:2:4::", "2001:db8:4:2::", "192.0.2.1"}},
		{"v6 any", pfx("::/0"), []string{"::1", "fe80::1"}, []string{"127.0.0.1"}},
		{"mapped v4 prefix is the v4 prefix", pfx("::ffff:10.0.0.0/104"), []string{"10.1.2.3"}, []string{"11.0.0.1"}},
		{"host bits ignored", pfx("192.0.2.77/24"), []string{"192.0.2.1"}, []string{"192.0.3.1"}},
		{"invalid prefix admits nobody", []netip.Prefix{{}}, nil, []string{"192.0.2.1", "::1"}},
	}
	for _, tc := range tests {
		f, invalid := newSourceFilter(tc.prefixes)
		for _, a := range tc.allowed {
			if !f.allows(netip.MustParseAddr(a).Unmap()) {
				t.Errorf("%s: %s refused", tc.name, a)
			}
		}
		for _, a := range tc.refused {
			if f.allows(netip.MustParseAddr(a).Unmap()) {
				t.Errorf("%s: %s admitted", tc.name, a)
			}
		}
		if f.restricted && f.allows(netip.Addr{}) {
			t.Errorf("%s: the zero address admitted", tc.name)
		}
		if tc.name == "invalid prefix admits nobody" && len(invalid) != 1 {
			t.Errorf("invalid prefixes not reported: %v", invalid)
		}
	}
}

// TestExportersRefusedBeforeDecoding: over the wire, on a dual-stack
// socket, datagrams from sources outside Exporters never reach the decoder
// (a datagram that would panic it does not), create no exporter, are in no
// other counter, and are counted per source, most recent first. Refused
// datagrams read in the same batch as a template and its data do not upset
// the in-order decoding of the template.
func TestExportersRefusedBeforeDecoding(t *testing.T) {
	cfg := testConfig()
	cfg.NetFlowListen = ":0"
	cfg.Exporters = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("10.0.0.0/8")}
	nf, sf := &fakeDecoder{}, &fakeDecoder{}
	consumer := &collectingConsumer{}
	c := startCollector(t, cfg, Decoders{NetFlow: nf, NetFlowInOrder: fakeInOrder, SFlow: sf, SFlowInOrder: fakeInOrder}, consumer)
	nfAddr, sfAddr := listenAddr(t, c, ProtocolNetFlow), listenAddr(t, c, ProtocolSFlow)
	router := sender(t, "127.0.0.2", nfAddr)
	spoofA, spoofB := sender(t, "127.0.0.3", nfAddr), sender(t, "127.0.0.4", nfAddr)
	spoofSF := sender(t, "127.0.0.3", sfAddr)

	panicking := fakeDatagram(ProtocolNetFlow, 9, fakePanic, 1, 1, 1, 1)
	for round := range 20 {
		send(t, spoofA, panicking)
		send(t, spoofA, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 7, 0, 0, 0))
		if round%5 == 0 {
			// A slow template among refused datagrams: the data right
			// behind it must still find it installed.
			send(t, router, fakeDatagram(ProtocolNetFlow, 9, fakeSlowTmpl, byte(round+1), 0, 0, 0))
		} else {
			send(t, router, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, byte(round+1), 0, 0, 0))
		}
		send(t, spoofB, fakeDatagram(ProtocolNetFlow, 9, fakeData, 7, 30, 255, 60000))
		send(t, router, fakeDatagram(ProtocolNetFlow, 9, fakeData, byte(round+1), 2, 1, 1))
	}
	waitFor(t, 10*time.Second, "the router's records", func() bool { return consumer.total.Load() >= 40 })
	waitFor(t, 5*time.Second, "the netflow refusals", func() bool { return c.Stats().Refused.Datagrams == 60 })
	send(t, spoofSF, fakeDatagram(ProtocolSFlow, 5, fakeData, 1, 1, 1, 1))
	waitFor(t, 5*time.Second, "every refusal counted", func() bool { return c.Stats().Refused.Datagrams == 61 })

	s := c.Stats()
	if got := nf.decoded.Load(); got != 40 {
		t.Errorf("netflow decoder saw %d datagrams, want the router's 40", got)
	}
	if got := sf.decoded.Load(); got != 0 {
		t.Errorf("sflow decoder saw %d datagrams, want 0", got)
	}
	if len(s.Exporters) != 1 || s.Exporters[0].Address != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("exporters %+v, want only the router", s.Exporters)
	}
	if s.Datagrams != 40 || s.Records != 40 || s.DecoderPanics != 0 || len(s.DecodeErrors) != 0 {
		t.Errorf("datagrams %d records %d panics %d errors %v; want 40 40 0 none", s.Datagrams, s.Records, s.DecoderPanics, s.DecodeErrors)
	}
	r := s.Refused
	if r.Datagrams != 61 || r.Bytes != 61*fakeLen || r.SourcesForgotten != 0 {
		t.Errorf("refused %+v", r)
	}
	want := []struct {
		addr, protocol string
		datagrams      uint64
	}{{"127.0.0.3", "sflow", 1}, {"127.0.0.4", "netflow", 20}, {"127.0.0.3", "netflow", 40}}
	if len(r.Sources) != len(want) {
		t.Fatalf("refused sources %+v", r.Sources)
	}
	for i, w := range want {
		got := r.Sources[i]
		if got.Address.String() != w.addr || got.Protocol != w.protocol || got.Datagrams != w.datagrams || got.Bytes != w.datagrams*fakeLen ||
			got.LastSeen.Before(got.FirstSeen) || time.Since(got.LastSeen) > time.Minute {
			t.Errorf("refused source %d: %+v, want %s/%s with %d datagrams", i, got, w.addr, w.protocol, w.datagrams)
		}
	}
	for _, rec := range consumer.snapshot() {
		if rec.Exporter != netip.MustParseAddr("127.0.0.2") {
			t.Fatalf("record from %v", rec.Exporter)
		}
	}
	var m bytes.Buffer
	c.WritePrometheus(&m)
	for _, w := range []string{
		"flowshield_collector_refused_datagrams_total 61\n",
		fmt.Sprintf("flowshield_collector_refused_bytes_total %d\n", 61*fakeLen),
		"flowshield_collector_refused_sources_forgotten_total 0\n",
		"flowshield_collector_refused_sources 3\n",
	} {
		if !strings.Contains(m.String(), w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

// TestRefusedSourcesBounded: the per-source table keeps the most recently
// refused sources; older ones are forgotten and counted.
func TestRefusedSourcesBounded(t *testing.T) {
	cfg := testConfig()
	cfg.SFlowListen = ""
	cfg.Exporters = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	cfg.MaxRefusedSources = 2
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}}, &countingConsumer{})
	to := listenAddr(t, c, ProtocolNetFlow)
	dg := fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 1, 1, 1)
	for i, from := range []string{"127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.3"} {
		send(t, sender(t, from, to), dg)
		waitFor(t, 5*time.Second, "refusal", func() bool { return c.Stats().Refused.Datagrams == uint64(i+1) })
	}
	r := c.Stats().Refused
	if r.SourcesForgotten != 2 || len(r.Sources) != 2 ||
		r.Sources[0].Address.String() != "127.0.0.3" || r.Sources[1].Address.String() != "127.0.0.5" || r.Sources[0].Datagrams != 1 {
		t.Errorf("refused %+v; want .3 (back, 1 datagram) then .5, 2 forgotten", r)
	}
}

// TestRefusedTableSpoofedFlood: ten thousand spoofed sources leave the
// table at its bound, allocate nothing once it is full, and the counts add
// up.
func TestRefusedTableSpoofedFlood(t *testing.T) {
	c := New(DefaultConfiguration(), Decoders{NetFlow: &fakeDecoder{}}, nil, testLogger(t))
	l := c.listeners[0]
	const n = 10_000
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}) }
	for i := range n {
		c.refuse(l, addr(i), 100, int64(i+1))
	}
	max := DefaultConfiguration().MaxRefusedSources
	r := c.Stats().Refused
	if len(r.Sources) != max || r.SourcesForgotten != n-uint64(max) || r.Datagrams != n || r.Bytes != 100*n {
		t.Fatalf("%d sources, %d forgotten, %d datagrams, %d bytes", len(r.Sources), r.SourcesForgotten, r.Datagrams, r.Bytes)
	}
	if r.Sources[0].Address != addr(n-1) || r.Sources[max-1].Address != addr(n-max) {
		t.Errorf("not most recent first: %v ... %v", r.Sources[0].Address, r.Sources[max-1].Address)
	}
	i := n // the refusal log is rate-limited to one a minute: not in the count below
	if allocs := testing.AllocsPerRun(1000, func() { c.refuse(l, addr(i), 100, int64(i)); i++ }); allocs != 0 {
		t.Errorf("%v allocs per refusal from a new source", allocs)
	}
}

// TestAdmitAllocatesNothing: the per-datagram check allocates nothing,
// admitted or refused.
func TestAdmitAllocatesNothing(t *testing.T) {
	cfg := DefaultConfiguration()
	cfg.Exporters = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	c := New(cfg, Decoders{NetFlow: &fakeDecoder{}}, nil, testLogger(t))
	r := newReader(c, c.listeners[0])
	for _, a := range []string{"192.0.2.1", "2001:db8::1", "198.51.100.1", "2001:db9::1"} {
		from := netip.MustParseAddr(a)
		want := !strings.HasPrefix(a, "198") && !strings.HasPrefix(a, "2001:db9")
		if got := r.admit(100, from, 1); got != want {
			t.Errorf("admit(%s) = %v", a, got)
		}
		if allocs := testing.AllocsPerRun(100, func() { r.admit(100, from, 1) }); allocs != 0 {
			t.Errorf("admit(%s): %v allocs", a, allocs)
		}
	}
}

// BenchmarkAdmit measures the check every datagram goes through, in
// ns/datagram: with EXPORTERS empty, and with 1 and 16 prefixes (the
// matching one last), for a source admitted (the same router again, as a
// reader sees it, and two routers alternating, which defeats the reader's
// memo), and for refused ones (the same source, and a spoofed flood from
// ever new sources churning the table).
func BenchmarkAdmit(b *testing.B) {
	router, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	prefixes := func(n int) []netip.Prefix {
		var out []netip.Prefix
		for i := range n - 1 {
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
		}
		if n > 0 {
			out = append(out, netip.MustParsePrefix("192.0.2.0/30"))
		}
		return out
	}
	for _, n := range []int{0, 1, 16} {
		cfg := DefaultConfiguration()
		cfg.Exporters = prefixes(n)
		c := New(cfg, Decoders{NetFlow: noopDecoder{}}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		b.Run(fmt.Sprintf("prefixes=%d/allowed-same", n), func(b *testing.B) {
			r := newReader(c, c.listeners[0])
			for b.Loop() {
				if !r.admit(1400, router, 1) {
					b.Fatal("refused")
				}
			}
		})
		b.Run(fmt.Sprintf("prefixes=%d/allowed-alternating", n), func(b *testing.B) {
			r := newReader(c, c.listeners[0])
			from := [2]netip.Addr{router, other}
			i := 0
			for b.Loop() {
				if !r.admit(1400, from[i&1], 1) {
					b.Fatal("refused")
				}
				i++
			}
		})
		if n == 0 {
			continue // nothing is refused
		}
		b.Run(fmt.Sprintf("prefixes=%d/refused-same", n), func(b *testing.B) {
			r := newReader(c, c.listeners[0])
			spoof := netip.MustParseAddr("198.51.100.7")
			for b.Loop() {
				if r.admit(1400, spoof, 1) {
					b.Fatal("admitted")
				}
			}
		})
		b.Run(fmt.Sprintf("prefixes=%d/refused-spoofed", n), func(b *testing.B) {
			r := newReader(c, c.listeners[0])
			i := uint32(0)
			for b.Loop() {
				i++
				if r.admit(1400, netip.AddrFrom4([4]byte{198, byte(i >> 16), byte(i >> 8), byte(i)}), 1) {
					b.Fatal("admitted")
				}
			}
		})
	}
}

// TestIPv6Refused: on a dual-stack socket an IPv6 source outside Exporters
// is refused while the IPv4 router is admitted.
func TestIPv6Refused(t *testing.T) {
	needIPv6(t)
	cfg := testConfig()
	cfg.NetFlowListen, cfg.SFlowListen = ":0", ""
	cfg.Exporters = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	consumer := &countingConsumer{}
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}}, consumer)
	port := listenAddr(t, c, ProtocolNetFlow).Port
	v6 := sender(t, "::1", &net.UDPAddr{IP: net.IPv6loopback, Port: port})
	v4 := sender(t, "127.0.0.1", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	send(t, v6, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 1, 1, 1))
	send(t, v4, fakeDatagram(ProtocolNetFlow, 9, fakeTemplate, 1, 2, 1, 1))
	waitFor(t, 5*time.Second, "the router's records and the refusal", func() bool {
		return consumer.records.Load() == 2 && c.Stats().Refused.Datagrams == 1
	})
	if s := c.Stats(); len(s.Refused.Sources) != 1 || s.Refused.Sources[0].Address != netip.IPv6Loopback() || len(s.Exporters) != 1 {
		t.Errorf("refused %+v exporters %+v", s.Refused, s.Exporters)
	}
}

// FuzzSourceFilter compares the compiled filter with netip.Prefix.Contains
// on arbitrary prefixes and sources (an IPv4-mapped prefix standing for
// the IPv4 one, as sources are unmapped).
func FuzzSourceFilter(f *testing.F) {
	f.Add([]byte{192, 0, 2, 0}, uint8(24), []byte{192, 0, 2, 77}, []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint8(33))
	f.Add(make([]byte, 16), uint8(0), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}, []byte{10, 0, 0, 0}, uint8(8))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0}, uint8(104), []byte{10, 9, 9, 9}, []byte{1, 2, 3, 4}, uint8(32))
	f.Fuzz(func(t *testing.T, p1 []byte, bits1 uint8, src, p2 []byte, bits2 uint8) {
		var prefixes []netip.Prefix
		for _, c := range []struct {
			b    []byte
			bits uint8
		}{{p1, bits1}, {p2, bits2}} {
			a, ok := netip.AddrFromSlice(c.b)
			if !ok {
				continue
			}
			prefixes = append(prefixes, netip.PrefixFrom(a, int(c.bits)%(a.BitLen()+2)))
		}
		from, ok := netip.AddrFromSlice(src)
		if !ok || len(prefixes) == 0 {
			return
		}
		from = from.Unmap()
		want := false
		for _, p := range prefixes {
			if p.IsValid() && p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			want = want || p.IsValid() && p.Contains(from)
		}
		filter, _ := newSourceFilter(prefixes)
		if got := filter.allows(from); got != want {
			t.Fatalf("allows(%v) = %v with %v, want %v", from, got, prefixes, want)
		}
	})
}
