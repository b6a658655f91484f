package flowgen

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
)

// The export time of every test datagram: a whole second, so formats whose
// header carries whole Unix seconds (v9) convert sysUpTime exactly.
var testNow = time.Date(2026, 11, 25, 1, 0, 0, 0, time.UTC)

func testFlows() []Flow {
	end := testNow.Add(-300 * time.Millisecond)
	a4 := netip.MustParseAddr
	return []Flow{
		{Src: a4("198.18.0.7"), Dst: a4("203.0.113.5"), SrcPort: 51000, DstPort: 443, Proto: 6, TCPFlags: 0x1b,
			Packets: 480000, Bytes: 480000 * 1400, Start: end.Add(-60 * time.Second), End: end, SamplingRate: 0, InIf: 1, OutIf: 2},
		{Src: a4("198.18.3.9"), Dst: a4("203.0.113.6"), SrcPort: 53, DstPort: 40000, Proto: 17,
			Packets: 10, Bytes: 14000, Start: end.Add(-999 * time.Millisecond), End: end, SamplingRate: 0, InIf: 1, OutIf: 2},
		{Src: a4("203.0.113.7"), Dst: a4("198.18.1.1"), DstPort: 0x0800, Proto: 1,
			Packets: 3, Bytes: 252, Start: end.Add(-20 * time.Millisecond), End: end, SamplingRate: 0, InIf: 2, OutIf: 1},
		{Src: a4("198.18.4.4"), Dst: a4("203.0.113.8"), Proto: 17, Fragment: true,
			Packets: 7, Bytes: 7 * 1500, Start: end.Add(-500 * time.Millisecond), End: end, SamplingRate: 0},
		{Src: a4("3fff::1"), Dst: a4("2001:db8::5"), SrcPort: 123, DstPort: 4444, Proto: 17,
			Packets: 2, Bytes: 936, Start: end.Add(-1 * time.Second), End: end, SamplingRate: 0},
		{Src: a4("3fff::2"), Dst: a4("2001:db8::6"), SrcPort: 40001, DstPort: 80, Proto: 6, TCPFlags: 0x02,
			Packets: 5, Bytes: 300, Start: end.Add(-400 * time.Millisecond), End: end, SamplingRate: 0},
	}
}

// sampled returns flows with every rate set to r.
func sampled(flows []Flow, r uint32) []Flow {
	out := append([]Flow(nil), flows...)
	for i := range out {
		out[i].SamplingRate = r
	}
	return out
}

// encodeAll encodes every flow into datagrams.
func encodeAll(t testing.TB, cfg EncoderConfiguration, flows []Flow) ([][]byte, Totals) {
	t.Helper()
	cfg.Clock.Boot = testNow.Add(-48 * time.Hour)
	enc, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	var tot Totals
	for rest := flows; len(rest) > 0; {
		b, n := enc.AppendDatagram(nil, rest, testNow, &tot)
		if n == 0 {
			t.Fatal("encoder consumed nothing")
		}
		rest = rest[n:]
		if len(b) > 0 {
			if len(b) > enc.Configuration().MaxDatagramSize {
				t.Fatalf("datagram of %d bytes exceeds %d", len(b), enc.Configuration().MaxDatagramSize)
			}
			out = append(out, b)
		}
	}
	if tot.Datagrams != uint64(len(out)) {
		t.Fatalf("totals say %d datagrams, %d built", tot.Datagrams, len(out))
	}
	return out, tot
}

// decodeV5 turns goflow2's view of v5 datagrams back into Flows.
func decodeV5(t *testing.T, dgs [][]byte) []Flow {
	var out []Flow
	for _, d := range dgs {
		var p netflowlegacy.PacketNetFlowV5
		if err := netflowlegacy.DecodeMessageVersion(bytes.NewBuffer(d), &p); err != nil {
			t.Fatalf("goflow2 v5: %v", err)
		}
		if int(p.Count) != len(p.Records) {
			t.Fatalf("count %d, %d records", p.Count, len(p.Records))
		}
		export := time.Unix(int64(p.UnixSecs), int64(p.UnixNSecs))
		for _, r := range p.Records {
			ip := func(a netflowlegacy.IPAddress) netip.Addr {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], uint32(a))
				return netip.AddrFrom4(b)
			}
			rate := uint32(p.SamplingInterval & 0x3fff)
			out = append(out, Flow{
				Src: ip(r.SrcAddr), Dst: ip(r.DstAddr), SrcPort: r.SrcPort, DstPort: r.DstPort,
				Proto: r.Proto, TCPFlags: r.TCPFlags, Packets: uint64(r.DPkts), Bytes: uint64(r.DOctets),
				Start:        export.Add(-time.Duration(int64(p.SysUptime)-int64(r.First)) * time.Millisecond),
				End:          export.Add(-time.Duration(int64(p.SysUptime)-int64(r.Last)) * time.Millisecond),
				SamplingRate: rate, InIf: uint32(r.Input), OutIf: uint32(r.Output),
			})
		}
	}
	return out
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// decodeTemplated feeds datagrams through goflow2's v9/IPFIX decoder with
// its template system and rebuilds Flows from the data records, applying
// the sampling rate announced in options data (or RouterOS's field 34,
// little-endian, when routerOS).
func decodeTemplated(t *testing.T, dgs [][]byte, routerOS bool) []Flow {
	ts := netflow.CreateTemplateSystem()
	var out []Flow
	announced := uint32(0)
	for _, d := range dgs {
		var p9 netflow.NFv9Packet
		var pfix netflow.IPFIXPacket
		if err := netflow.DecodeMessageVersion(bytes.NewBuffer(d), ts, &p9, &pfix); err != nil {
			t.Fatalf("goflow2 v9/IPFIX: %v", err)
		}
		var sets []interface{}
		var export time.Time
		var uptime uint32
		if p9.Version == 9 {
			sets, export, uptime = p9.FlowSets, time.Unix(int64(p9.UnixSeconds), 0), p9.SystemUptime
			n := 0
			for _, s := range sets {
				switch s := s.(type) {
				case netflow.TemplateFlowSet:
					n += len(s.Records)
				case netflow.NFv9OptionsTemplateFlowSet:
					n += len(s.Records)
				case netflow.OptionsDataFlowSet:
					n += len(s.Records)
				case netflow.DataFlowSet:
					n += len(s.Records)
				}
			}
			if n != int(p9.Count) {
				t.Fatalf("v9 header count %d, %d records decoded", p9.Count, n)
			}
		} else {
			sets, export = pfix.FlowSets, time.Unix(int64(pfix.ExportTime), 0)
			if int(pfix.Length) != len(d) {
				t.Fatalf("IPFIX length %d, datagram %d", pfix.Length, len(d))
			}
		}
		for _, s := range sets {
			switch s := s.(type) {
			case netflow.RawFlowSet:
				t.Fatalf("data set %d decoded without its template", s.Id)
			case netflow.OptionsDataFlowSet:
				for _, r := range s.Records {
					for _, v := range r.OptionsValues {
						if v.Type == fieldSamplingInterval {
							announced = uint32(beUint(v.Value.([]byte)))
						}
					}
				}
			case netflow.DataFlowSet:
				for _, r := range s.Records {
					f := Flow{SamplingRate: announced}
					var first, last, sysInit uint64
					var hasSysInit bool
					for _, v := range r.Values {
						b := v.Value.([]byte)
						switch v.Type {
						case fieldIPv4SrcAddr, fieldIPv6SrcAddr:
							f.Src, _ = netip.AddrFromSlice(b)
						case fieldIPv4DstAddr, fieldIPv6DstAddr:
							f.Dst, _ = netip.AddrFromSlice(b)
						case fieldL4SrcPort:
							f.SrcPort = uint16(beUint(b))
						case fieldL4DstPort:
							f.DstPort = uint16(beUint(b))
						case fieldProtocol:
							f.Proto = b[0]
						case fieldTCPFlags:
							f.TCPFlags = b[0]
						case fieldInPkts:
							f.Packets = beUint(b)
						case fieldInBytes:
							f.Bytes = beUint(b)
						case fieldInputSNMP:
							f.InIf = uint32(beUint(b))
						case fieldOutputSNMP:
							f.OutIf = uint32(beUint(b))
						case fieldFirstSwitched:
							first = beUint(b)
						case fieldLastSwitched:
							last = beUint(b)
						case fieldFlowStartMs:
							f.Start = time.UnixMilli(int64(beUint(b)))
						case fieldFlowEndMs:
							f.End = time.UnixMilli(int64(beUint(b)))
						case fieldSystemInitMs:
							sysInit, hasSysInit = beUint(b), true
						case fieldFragmentOffset:
							f.Fragment = beUint(b) != 0
						case fieldSamplingInterval:
							if !routerOS {
								t.Fatal("generic template carries field 34")
							}
							f.SamplingRate = binary.LittleEndian.Uint32(b)
						}
					}
					switch {
					case hasSysInit:
						f.Start = time.UnixMilli(int64(sysInit + first))
						f.End = time.UnixMilli(int64(sysInit + last))
					case p9.Version == 9:
						f.Start = export.Add(-time.Duration(int64(uptime)-int64(first)) * time.Millisecond)
						f.End = export.Add(-time.Duration(int64(uptime)-int64(last)) * time.Millisecond)
					}
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// decodeSFlow rebuilds one-packet Flows from goflow2's sFlow decoding and
// an independent parse of the raw packet headers.
func decodeSFlow(t *testing.T, dgs [][]byte) []Flow {
	var out []Flow
	for _, d := range dgs {
		var p sflow.Packet
		if err := sflow.DecodeMessageVersion(bytes.NewBuffer(d), &p); err != nil {
			t.Fatalf("goflow2 sFlow: %v", err)
		}
		if int(p.SamplesCount) != len(p.Samples) {
			t.Fatalf("%d samples announced, %d decoded", p.SamplesCount, len(p.Samples))
		}
		for _, s := range p.Samples {
			fs, ok := s.(sflow.FlowSample)
			if !ok {
				t.Fatalf("sample %T, want a flow sample", s)
			}
			if len(fs.Records) != 1 {
				t.Fatalf("%d records in a sample", len(fs.Records))
			}
			h, ok := fs.Records[0].Data.(sflow.SampledHeader)
			if !ok || h.Protocol != 1 {
				t.Fatalf("record %T, want an Ethernet raw header", fs.Records[0].Data)
			}
			f := parseEthernet(t, h.HeaderData[:h.OriginalLength])
			if uint64(h.FrameLength) != f.Bytes+14 {
				t.Fatalf("frame length %d, IP length %d", h.FrameLength, f.Bytes)
			}
			f.Packets, f.SamplingRate, f.InIf, f.OutIf = 1, fs.SamplingRate, fs.Input, fs.Output
			out = append(out, f)
		}
	}
	return out
}

// parseEthernet is the test's own reading of a sampled header: addresses,
// protocol, IP length, fragment, ports or ICMP type/code, TCP flags.
func parseEthernet(t *testing.T, b []byte) Flow {
	var f Flow
	et := binary.BigEndian.Uint16(b[12:])
	ip := b[14:]
	var l4 []byte
	switch et {
	case 0x0800:
		f.Src, _ = netip.AddrFromSlice(ip[12:16])
		f.Dst, _ = netip.AddrFromSlice(ip[16:20])
		f.Proto = ip[9]
		f.Bytes = uint64(binary.BigEndian.Uint16(ip[2:]))
		frag := binary.BigEndian.Uint16(ip[6:])
		f.Fragment = frag&0x3fff != 0
		if frag&0x1fff == 0 {
			l4 = ip[20:]
		}
	case 0x86dd:
		f.Src, _ = netip.AddrFromSlice(ip[8:24])
		f.Dst, _ = netip.AddrFromSlice(ip[24:40])
		f.Proto = ip[6]
		f.Bytes = uint64(binary.BigEndian.Uint16(ip[4:])) + 40
		l4 = ip[40:]
	default:
		t.Fatalf("ethertype %#x", et)
	}
	switch {
	case l4 == nil:
	case f.Proto == 6:
		f.SrcPort, f.DstPort, f.TCPFlags = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]), l4[13]
	case f.Proto == 17:
		f.SrcPort, f.DstPort = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	case f.Proto == 1 || f.Proto == 58:
		f.DstPort = uint16(l4[0])<<8 | uint16(l4[1])
	}
	return f
}

// expect is what a correct decoder must find for f in format.
func expect(f Flow, format Format) Flow {
	switch format {
	case FormatSFlow:
		f = sflowPacket(f)
		f.Start, f.End = time.Time{}, time.Time{}
		return f
	case FormatNetFlowV5:
		f.Packets, f.Bytes = clampTo(f.Packets, 4), clampTo(f.Bytes, 4)
		f.Fragment = false
	case FormatRouterOSV9, FormatRouterOSIPFIX, FormatNetFlowV9:
		f.Packets, f.Bytes = clampTo(f.Packets, 4), clampTo(f.Bytes, 4)
	}
	if format == FormatRouterOSV9 || format == FormatRouterOSIPFIX {
		f.Fragment = false // RouterOS has no fragment field
	}
	if format == FormatNetFlowV5 || format == FormatNetFlowV9 {
		f.InIf, f.OutIf = f.InIf&0xffff, f.OutIf&0xffff
	}
	return f
}

func decode(t *testing.T, format Format, dgs [][]byte) []Flow {
	switch format {
	case FormatNetFlowV5:
		return decodeV5(t, dgs)
	case FormatSFlow:
		return decodeSFlow(t, dgs)
	default:
		return decodeTemplated(t, dgs, format == FormatRouterOSV9 || format == FormatRouterOSIPFIX)
	}
}

func sameFlow(t *testing.T, i int, got, want Flow) {
	t.Helper()
	if got.Src != want.Src || got.Dst != want.Dst || got.SrcPort != want.SrcPort || got.DstPort != want.DstPort ||
		got.Proto != want.Proto || got.TCPFlags != want.TCPFlags || got.Fragment != want.Fragment ||
		got.Packets != want.Packets || got.Bytes != want.Bytes || got.SamplingRate != want.SamplingRate ||
		got.InIf != want.InIf || got.OutIf != want.OutIf {
		t.Errorf("flow %d:\n got %+v\nwant %+v", i, got, want)
	}
	if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
		t.Errorf("flow %d times: got %v..%v, want %v..%v", i, got.Start, got.End, want.Start, want.End)
	}
}

func TestRoundTripGoflow2(t *testing.T) {
	for _, format := range Formats() {
		for _, rate := range []uint32{0, 1000} {
			t.Run(format.String()+"/rate"+map[uint32]string{0: "0", 1000: "1000"}[rate], func(t *testing.T) {
				in := sampled(testFlows(), rate)
				var want []Flow
				for _, f := range in {
					if format == FormatNetFlowV5 && !f.Src.Is4() {
						continue
					}
					w := expect(f, format)
					if format == FormatSFlow && w.SamplingRate == 0 {
						w.SamplingRate = 1
					}
					want = append(want, w)
				}
				cfg := DefaultEncoderConfiguration()
				cfg.Format = format
				dgs, tot := encodeAll(t, cfg, in)
				got := decode(t, format, dgs)
				if len(got) != len(want) {
					t.Fatalf("decoded %d flows, want %d", len(got), len(want))
				}
				var sum Counters
				for i := range got {
					sameFlow(t, i, got[i], want[i])
					sum.add(&got[i])
				}
				if sum != tot.Counters {
					t.Errorf("decoded totals %+v, encoder reported %+v", sum, tot.Counters)
				}
			})
		}
	}
}

// A v9/IPFIX exporter announces a new sampling rate before the first record
// that uses it, and refreshes templates every TemplateRefresh datagrams.
func TestTemplatedRateChangesAndRefresh(t *testing.T) {
	for _, format := range []Format{FormatNetFlowV9, FormatIPFIX, FormatRouterOSV9, FormatRouterOSIPFIX} {
		t.Run(format.String(), func(t *testing.T) {
			var in []Flow
			for i := range 200 {
				f := testFlows()[i%2]
				f.SamplingRate = []uint32{10, 100, 1000}[i/70]
				in = append(in, f)
			}
			cfg := DefaultEncoderConfiguration()
			cfg.Format = format
			cfg.TemplateRefresh = 3
			cfg.MaxRecordsPerDatagram = 7
			dgs, tot := encodeAll(t, cfg, in)
			got := decode(t, format, dgs)
			if len(got) != len(in) {
				t.Fatalf("decoded %d, want %d", len(got), len(in))
			}
			for i := range got {
				sameFlow(t, i, got[i], expect(in[i], format))
			}
			if tot.Records != 200 {
				t.Fatalf("records %d", tot.Records)
			}
			// every 3rd datagram carries templates: decoding datagram 3k alone works
			for k := 0; k < len(dgs); k += 3 {
				decodeTemplated(t, dgs[k:k+1], format == FormatRouterOSV9 || format == FormatRouterOSIPFIX)
			}
		})
	}
}

// Broken exporter clocks show in the decoded times exactly as configured,
// in every format that carries sysUpTime.
func TestExporterClockKnobs(t *testing.T) {
	f := testFlows()[1]
	tests := []struct {
		name  string
		clock ExporterClock
		shift time.Duration // decoded time - true time
		wild  bool          // decoded time is just far off (more than a day)
	}{
		{"healthy", ExporterClock{}, 0, false},
		{"uptime jumped back 1h: flows in the future", ExporterClock{UptimeOffset: -time.Hour}, time.Hour, false},
		{"uptime 10 min ahead: flows in the past", ExporterClock{UptimeOffset: 10 * time.Minute}, -10 * time.Minute, false},
		{"wall clock 30s ahead", ExporterClock{UnixOffset: 30 * time.Second}, 30 * time.Second, false},
		{"zero uptime", ExporterClock{ZeroUptime: true}, 0, true},
		{"zero flow times", ExporterClock{ZeroFlowTimes: true}, 0, true},
	}
	for _, format := range []Format{FormatNetFlowV5, FormatNetFlowV9, FormatRouterOSV9, FormatRouterOSIPFIX} {
		for _, tt := range tests {
			t.Run(format.String()+"/"+tt.name, func(t *testing.T) {
				cfg := DefaultEncoderConfiguration()
				cfg.Format = format
				cfg.Clock = tt.clock
				dgs, _ := encodeAll(t, cfg, []Flow{f})
				got := decode(t, format, dgs)[0]
				d := got.End.Sub(f.End)
				if tt.wild {
					if d > -24*time.Hour && d < 24*time.Hour {
						t.Fatalf("end off by %v, want more than a day", d)
					}
					return
				}
				if d != tt.shift || got.End.Sub(got.Start) != f.End.Sub(f.Start) {
					t.Fatalf("end shifted by %v, want %v; duration %v, want %v", d, tt.shift, got.End.Sub(got.Start), f.End.Sub(f.Start))
				}
			})
		}
	}
}

func TestDatagramsAndRecord(t *testing.T) {
	cfg := DefaultEncoderConfiguration()
	cfg.Format = FormatNetFlowV5
	enc, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var in []Flow
	for range 70 {
		in = append(in, testFlows()[:4]...) // IPv4 only
	}
	in = append(in, testFlows()[4]) // IPv6: skipped by v5
	var tot Totals
	dgs := enc.Datagrams(in, testNow, &tot)
	if len(dgs) != 10 || tot.Records != 280 || tot.Datagrams != 10 { // 280 records, 30 a datagram
		t.Fatalf("%d datagrams, totals %+v", len(dgs), tot)
	}
	var r flow.Record
	f := testFlows()[3]
	f.Record(&r)
	if r.SrcAddr != f.Src || r.DstAddr != f.Dst || r.Packets != 7 || r.Bytes != 7*1500 || !r.Fragment ||
		r.Start != f.Start.UnixNano() || r.End != f.End.UnixNano() || r.Proto != 17 {
		t.Fatalf("record %+v from flow %+v", r, f)
	}
}
