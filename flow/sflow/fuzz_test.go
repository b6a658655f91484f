package sflow

import (
	"encoding/binary"
	"testing"

	"github.com/flowshield/flowshield/flow"
)

// fuzzSeeds are the real captures plus synthetic datagrams covering every
// sample and record kind the decoder reads, and a few lies.
func fuzzSeeds(f *testing.F) {
	for _, path := range captures(f) {
		for _, p := range readCapture(f, path) {
			f.Add(p.Payload)
		}
	}
	f.Add(benchDatagram(3))
	f.Add(datagram(1, counterSample(),
		flowSample(1, 1, 2, sampledIPv4(60, 6, src4, dst4, 1, 2, 2)),
		expandedFlowSample(2, 0, 1, 2, 3, sampledIPv6(80, 17, src6, dst6, 3, 4, 0)),
		flowSample(3, 1, 2, rawHeader(headerEthernet, 100, 4,
			ethernet(etherIPv6, []uint16{7}, ipv6(44, src6, dst6, 60, append([]byte{17, 0, 0, 1, 0, 0, 0, 1}, udp(1, 2, 4)...))))),
		flowSample(4, 1, 2, rawHeader(headerEthernet, 100, 4,
			ethernet(etherMPLS, nil, append([]byte{0, 1, 1, 1}, ipv4(6, src4, dst4, 60, 0, tcp(1, 2, 2))...)))),
		flowSample(5, 1, 2, rawHeader(headerIPv6, 100, 0, ipv6(58, src6, dst6, 60, []byte{128, 0, 0, 0}))),
	))
	bomb := datagram(0, expandedFlowSample(1, 0, 1, 0, 2))
	binary.BigEndian.PutUint32(bomb[36+40:], 0x30303030)
	f.Add(bomb)
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 2})
	// Forged sampling rates, in both flow sample formats.
	f.Add(datagram(1, flowSample(0xffffffff, 1, 2, sampledIPv4(60, 6, src4, dst4, 1, 2, 2)),
		expandedFlowSample(flow.MaxSamplingRate+1, 0, 1, 0, 2, sampledIPv4(60, 6, src4, dst4, 1, 2, 2))))
}

// FuzzDecode checks that no input panics, loops or leaks records past the
// guard, and that Decode and Check agree.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	d := New(DefaultConfiguration())
	f.Fuzz(func(t *testing.T, payload []byte) {
		s := decodeAll(t, d, payload)
		checkErr := d.Check(payload)
		// A sampling rate above the bound is reported per sample, the
		// sample still decoded; every other error is the guard's, at most
		// one a datagram, which is then dropped whole.
		framing, rates := splitRateErrors(s.errors)
		switch {
		case len(framing) > 1:
			t.Fatalf("%d errors for one datagram", len(framing))
		case len(framing) == 1 && (len(s.records) != 0 || rates != 0 || checkErr == nil):
			t.Fatalf("rejected datagram: %d records, Check %v", len(s.records), checkErr)
		case len(framing) == 0 && checkErr != nil:
			t.Fatalf("Decode accepted what Check refused: %v", checkErr)
		case rates > len(s.records):
			t.Fatalf("%d bad rates for %d records", rates, len(s.records))
		}
		if len(s.records) > DefaultConfiguration().MaxSamplesPerDatagram || len(s.records) > len(payload)/8 {
			t.Fatalf("%d records from %d bytes", len(s.records), len(payload))
		}
		for _, r := range s.records {
			if r.Packets != 1 || r.Format != flow.FormatSFlowV5 || r.Exporter != exporter || r.Start != received ||
				r.SamplingRate > flow.MaxSamplingRate {
				t.Fatalf("bad record %+v", r)
			}
		}
	})
}

// FuzzDecodeGoflow feeds what our guard accepts to goflow2 (never what it
// refuses) and, when both decode without error, compares the two as
// TestDifferentialGoflow does.
func FuzzDecodeGoflow(f *testing.F) {
	fuzzSeeds(f)
	d := New(DefaultConfiguration())
	prod := goflowProducer(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		s := decodeAll(t, d, payload)
		res, ok := guardedGoflow(t, d, prod, payload)
		if framing, _ := splitRateErrors(s.errors); !ok || res.err != nil || len(framing) != 0 {
			return
		}
		diffGoflow(t, s.records, res)
	})
}

// splitRateErrors returns the errors other than flow.ErrBadSamplingRate and
// the number of those.
func splitRateErrors(errs []flow.ErrorKind) (other []flow.ErrorKind, rates int) {
	for _, k := range errs {
		if k == flow.ErrBadSamplingRate {
			rates++
		} else {
			other = append(other, k)
		}
	}
	return other, rates
}
