package detect

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// flowLineFmt is the contract's details line written with fmt: the
// reference appendFlowLine must match byte for byte.
func flowLineFmt(r *flow.Record, defaultRate uint32) string {
	t := r.Start
	if t == 0 {
		t = r.Received
	}
	rate := r.SamplingRate
	if rate == 0 {
		rate = defaultRate
	}
	flags := "-"
	if r.Proto == flow.ProtoTCP && r.TCPFlags != 0 {
		var parts []string
		for i, n := range []string{"fin", "syn", "rst", "psh", "ack", "urg"} {
			if r.TCPFlags&(1<<i) != 0 {
				parts = append(parts, n)
			}
		}
		flags = strings.Join(parts, ",")
	}
	proto := fmt.Sprint(r.Proto)
	switch r.Proto {
	case flow.ProtoTCP:
		proto = "tcp"
	case flow.ProtoUDP:
		proto = "udp"
	case flow.ProtoICMP:
		proto = "icmp"
	case flow.ProtoICMPv6:
		proto = "icmpv6"
	}
	return fmt.Sprintf("%s %s > %s protocol: %s flags: %s packets: %d size: %d bytes sample ratio: %d",
		time.Unix(0, t).UTC().Format("2006-01-02 15:04:05.000"),
		netip.AddrPortFrom(r.SrcAddr.Unmap(), r.SrcPort), netip.AddrPortFrom(r.DstAddr.Unmap(), r.DstPort),
		proto, flags, r.Packets, r.Bytes, rate)
}

func TestFlowLineMatchesFmt(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	addrs := []netip.Addr{
		netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("::ffff:198.51.100.7"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0"),
	}
	protos := []uint8{flow.ProtoTCP, flow.ProtoUDP, flow.ProtoICMP, flow.ProtoICMPv6, 47, 0, 255}
	for i := range 2000 {
		r := flow.Record{
			SrcAddr: addrs[rng.IntN(len(addrs))], DstAddr: addrs[rng.IntN(len(addrs))],
			SrcPort: uint16(rng.IntN(65536)), DstPort: uint16(rng.IntN(65536)),
			Proto: protos[rng.IntN(len(protos))], TCPFlags: uint8(rng.IntN(64)),
			Packets: rng.Uint64() >> rng.IntN(64), Bytes: rng.Uint64() >> rng.IntN(64),
			SamplingRate: uint32(rng.IntN(3) * rng.IntN(5000)),
			Start:        int64(rng.Uint64() >> 2), Received: int64(rng.Uint64() >> 2),
		}
		if i%5 == 0 {
			r.Start = 0
		}
		want := flowLineFmt(&r, 64)
		if got := FlowLine(&r, 64); got != want {
			t.Fatalf("record %+v:\n got %q\nwant %q", r, got, want)
		}
		if b := appendFlowLine([]byte("x"), &r, 64); string(b) != "x"+want+"\n" {
			t.Fatalf("appendFlowLine %q, want %q", b, "x"+want+"\n")
		}
	}
}

// detailsTextFmt is the details text written with fmt, as it was: the
// reference detailsText must match byte for byte.
func (e *Engine) detailsTextFmt(a *Attack, rates *[2]vec, c *sampler) string {
	var b strings.Builder
	if a.Scope == ScopeGroup {
		fmt.Fprintf(&b, "Group: %s\n", a.Group)
	} else {
		fmt.Fprintf(&b, "IP: %s\n", a.IP)
		if a.Group != "" {
			fmt.Fprintf(&b, "Hostgroup: %s\n", a.Group)
		}
	}
	fmt.Fprintf(&b, "Attack type: %s\n", a.Type)
	fmt.Fprintf(&b, "Initial attack power: %.0f packets per second\n", a.InitialPPS)
	fmt.Fprintf(&b, "Peak attack power: %.0f packets per second\n", a.PeakPPS)
	fmt.Fprintf(&b, "Initial attack bandwidth: %.0f mbps\n", a.InitialBPS/1e6)
	fmt.Fprintf(&b, "Peak attack bandwidth: %.0f mbps\n", a.PeakBPS/1e6)
	fmt.Fprintf(&b, "Attack direction: %s\n", dirWord(a.Direction))
	fmt.Fprintf(&b, "Attack protocol: %s\n", a.Protocol)
	fmt.Fprintf(&b, "Threshold crossed: %s\n", a.Threshold)
	for d := In; d <= Out; d++ {
		v := &rates[d]
		w := dirWord(d)
		fmt.Fprintf(&b, "Total %s traffic: %.0f mbps\n", w, v[mBPS]/1e6)
		fmt.Fprintf(&b, "Total %s pps: %.0f packets per second\n", w, v[mPPS])
		fmt.Fprintf(&b, "Total %s flows: %.0f flows per second\n", w, v[mFlows])
	}
	for d := In; d <= Out; d++ {
		v := &rates[d]
		avg := 0.0
		if v[mPPS] > 0 {
			avg = v[mBPS] / 8 / v[mPPS]
		}
		fmt.Fprintf(&b, "Average %s packet size: %.0f bytes\n", dirWord(d), avg)
	}
	cats := [...]struct {
		c    int
		name string
	}{{catFrag, "ip fragmented"}, {catTCP, "tcp"}, {catSYN, "syn tcp"}, {catUDP, "udp"}, {catICMP, "icmp"}}
	for d := In; d <= Out; d++ {
		v := &rates[d]
		w := strings.ToUpper(dirWord(d)[:1]) + dirWord(d)[1:]
		for _, c := range cats {
			if e.lay.col[mBPS+c.c] >= 0 {
				fmt.Fprintf(&b, "%s %s traffic: %.0f mbps\n", w, c.name, v[mBPS+c.c]/1e6)
			}
			fmt.Fprintf(&b, "%s %s pps: %.0f packets per second\n", w, c.name, v[mPPS+c.c])
		}
	}
	if f := a.Fingerprint; f != nil {
		if len(f.Vectors) == 0 {
			fmt.Fprintf(&b, "\nFingerprint: none (no kind of packet carries %.0f%% of the attack)", MinVectorShare*100)
		} else {
			fmt.Fprintf(&b, "\nFingerprint: %.0f%% of the attack's packets", f.Share*100)
		}
		if f.Records > 0 {
			fmt.Fprintf(&b, ", from %d sampled records\n", f.Records)
		} else {
			b.WriteString(", from the counters (no flow sample)\n")
		}
		for _, v := range f.Vectors {
			b.WriteString(vectorLineFmt(v) + "\n")
		}
	}
	if c != nil {
		c.mu.Lock()
		writeTopFmt(&b, "Top source addresses", &c.srcs)
		writeTopFmt(&b, "Top destination addresses", &c.dsts)
		writeTopFmt(&b, "Top source ports", &c.srcPorts)
		writeTopFmt(&b, "Top destination ports", &c.dstPorts)
		if c.limit == 0 && e.cfg.SampleFlows > 0 {
			fmt.Fprintf(&b, "\nFlow sample skipped: %d other attacks hold one (at most %d at a time)\n", e.sampled, e.cfg.MaxSampledAttacks)
		}
		fmt.Fprintf(&b, "\nFlow sample (%d of %d records seen):\n", len(a.Sample), c.seen)
		for i := range a.Sample {
			b.WriteString(flowLineFmt(&a.Sample[i], e.cfg.DefaultSamplingRate) + "\n")
		}
		c.mu.Unlock()
	}
	return b.String()
}

func vectorLineFmt(v Vector) string {
	var words []string
	if v.Protocol != 0 {
		words = append(words, protoName(v.Protocol))
	}
	if v.Fragment {
		words = append(words, "fragment")
	}
	if v.TCPMask != 0 {
		var flags []string
		for i, n := range []string{"fin", "syn", "rst", "psh", "ack", "urg"} {
			switch {
			case v.TCPMask&(1<<i) == 0:
			case v.TCPFlags&(1<<i) != 0:
				flags = append(flags, n)
			default:
				flags = append(flags, "!"+n)
			}
		}
		words = append(words, "tcp-flags "+strings.Join(flags, ","))
	}
	if v.SrcPort != 0 {
		words = append(words, fmt.Sprintf("src-port %d", v.SrcPort))
	}
	if v.DstPorts != nil {
		ports := make([]string, len(v.DstPorts))
		for i, p := range v.DstPorts {
			ports[i] = fmt.Sprint(p)
		}
		words = append(words, "dst-port "+strings.Join(ports, ","))
	}
	if v.SizeMax != 0 {
		words = append(words, fmt.Sprintf("packet-size %d-%d", v.SizeMin, v.SizeMax))
	}
	words = append(words, fmt.Sprintf("share %.0f%%", v.Share*100))
	return strings.Join(words, " ")
}

func writeTopFmt[K comparable](b *strings.Builder, title string, t *top[K]) {
	ks, ws := t.sorted()
	fmt.Fprintf(b, "\n%s (packets, approximate):\n", title)
	for i := range ks {
		fmt.Fprintf(b, "%v %.0f\n", ks[i], ws[i])
	}
}

func TestDetailsTextMatchesFmt(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	floats := []float64{0, 0.4, 0.5, 1.5, 2.5, 999.5, 1e6, 123456789.25, 1e21, 3e30, -0.0, -7.5,
		math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64}
	f := func() float64 {
		if rng.IntN(3) == 0 {
			return floats[rng.IntN(len(floats))]
		}
		return rng.Float64() * math.Pow(10, float64(rng.IntN(14)))
	}
	addrs := []netip.Addr{{}, netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:198.51.100.7"), netip.MustParseAddr("fe80::1%eth0")}
	for _, udpMbps := range []uint64{0, 500} {
		cfg := testConfig()
		cfg.Global.UDPMbps = udpMbps
		e, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			a := &Attack{
				Scope: []string{ScopeHost, ScopeGroup}[rng.IntN(2)], IP: addrs[rng.IntN(len(addrs))],
				Group: []string{"", "web", "dns <&>"}[rng.IntN(3)], Direction: Direction(rng.IntN(2)),
				Type: "udp_flood", Protocol: "udp", Threshold: "pps",
				InitialPPS: f(), PeakPPS: f(), InitialBPS: f(), PeakBPS: f(),
			}
			var rates [2]vec
			for d := range rates {
				for m := range rates[d] {
					rates[d][m] = f()
				}
			}
			var c *sampler
			if i%7 != 0 {
				c = newSampler(rng.IntN(3)*20, false)
				c.seen = rng.IntN(100000)
				for range rng.IntN(15) {
					c.srcs.add(addrs[rng.IntN(len(addrs))], f())
					c.dsts.add(addrs[rng.IntN(len(addrs))], f())
					c.srcPorts.add(uint16(rng.IntN(65536)), f())
					c.dstPorts.add(uint16(rng.IntN(6)), f())
				}
				for range rng.IntN(40) {
					a.Sample = append(a.Sample, flow.Record{
						SrcAddr: addrs[1+rng.IntN(len(addrs)-1)], DstAddr: addrs[1+rng.IntN(len(addrs)-1)],
						SrcPort: uint16(rng.IntN(65536)), Proto: uint8(rng.IntN(20)), TCPFlags: uint8(rng.IntN(64)),
						Packets: rng.Uint64() >> rng.IntN(64), Bytes: rng.Uint64() >> rng.IntN(64),
						Start: int64(rng.Uint64() >> 2),
					})
				}
			}
			if i%3 != 0 {
				a.Fingerprint = &Fingerprint{Share: f(), Records: rng.IntN(3) * rng.IntN(100)}
				for range rng.IntN(MaxVectors + 1) {
					v := Vector{Protocol: uint8(rng.IntN(3) * rng.IntN(256)), Fragment: rng.IntN(4) == 0,
						TCPFlags: uint8(rng.IntN(64)), TCPMask: uint8(rng.IntN(2) * rng.IntN(64)),
						SrcPort: uint16(rng.IntN(2) * rng.IntN(65536)), Share: f()}
					if rng.IntN(2) == 0 {
						v.SizeMin, v.SizeMax = uint16(rng.IntN(1000)), uint16(1000+rng.IntN(64536))
					}
					for range rng.IntN(MaxDstPorts + 1) {
						v.DstPorts = append(v.DstPorts, uint16(rng.IntN(65536)))
					}
					a.Fingerprint.Vectors = append(a.Fingerprint.Vectors, v)
				}
			}
			e.sampled = rng.IntN(2000)
			want := e.detailsTextFmt(a, &rates, c)
			if got := e.detailsText(a, &rates, c); got != want {
				t.Fatalf("attack %d:\n got %q\nwant %q", i, got, want)
			}
		}
	}
}
