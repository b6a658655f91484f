package flowgen

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

// FuzzEncodeRoundTrip encodes one arbitrary flow in every format, decodes
// it with goflow2 and checks it comes back as expect says. The generator has
// no wire parser of its own; this guards the encoders against producing
// datagrams a real decoder rejects or misreads.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add(uint8(0), uint32(0xc6120007), uint32(0xcb007105), uint16(51000), uint16(443), uint8(6), uint8(0x1b), false, false, uint64(480000), uint64(672000000), uint32(60000), uint32(1000))
	f.Add(uint8(3), uint32(1), uint32(2), uint16(0), uint16(0x0800), uint8(1), uint8(0), false, true, uint64(1), uint64(84), uint32(0), uint32(0))
	f.Add(uint8(4), uint32(5), uint32(6), uint16(0), uint16(0), uint8(17), uint8(0), true, false, uint64(1<<40), uint64(1<<50), uint32(1), uint32(1<<31))
	f.Fuzz(func(t *testing.T, fmtIdx uint8, src, dst uint32, sp, dp uint16, proto, flags uint8, frag, v6 bool, packets, bytes uint64, durMs, rate uint32) {
		formats := Formats()
		format := formats[int(fmtIdx)%len(formats)]
		var s4, d4 [4]byte
		binary.BigEndian.PutUint32(s4[:], src)
		binary.BigEndian.PutUint32(d4[:], dst)
		fl := Flow{
			Src: netip.AddrFrom4(s4), Dst: netip.AddrFrom4(d4), SrcPort: sp, DstPort: dp,
			Proto: proto, TCPFlags: flags, Packets: packets, Bytes: bytes, SamplingRate: rate,
		}
		if v6 {
			var a, b [16]byte
			copy(a[:], "\x20\x01\x0d\xb8")
			copy(b[:], "\x3f\xff")
			binary.BigEndian.PutUint32(a[12:], src)
			binary.BigEndian.PutUint32(b[12:], dst)
			fl.Src, fl.Dst = netip.AddrFrom16(a), netip.AddrFrom16(b)
		}
		if frag && !v6 {
			fl.Fragment = true
		}
		// flows end before the export and start no earlier than boot
		fl.End = testNow.Add(-time.Duration(durMs%1000) * time.Millisecond)
		fl.Start = fl.End.Add(-time.Duration(durMs%(40*3600*1000)) * time.Millisecond)
		in := []Flow{fl}
		want := expect(fl, format)
		if format == FormatNetFlowV5 {
			if v6 {
				return
			}
			if want.SamplingRate > 0x3fff {
				want.SamplingRate = 0x3fff
			}
		}
		if format == FormatSFlow {
			if want.Proto != 6 && want.Proto != 17 && want.Proto != 1 && want.Proto != 58 {
				return // ports of other protocols are not carried
			}
			if want.SamplingRate == 0 {
				want.SamplingRate = 1
			}
		}
		cfg := DefaultEncoderConfiguration()
		cfg.Format = format
		dgs, tot := encodeAll(t, cfg, in)
		got := decode(t, format, dgs)
		if len(got) != 1 {
			t.Fatalf("%v: decoded %d flows", format, len(got))
		}
		if format.templated() && !format.ratesInRecordsFormat() && rate == 0 {
			want.SamplingRate = 0
		}
		sameFlow(t, 0, got[0], want)
		if tot.Records != 1 {
			t.Fatalf("%v: totals %+v", format, tot)
		}
	})
}
