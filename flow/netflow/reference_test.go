package netflow

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/producer"
	protoproducer "github.com/netsampler/goflow2/v2/producer/proto"

	"github.com/flowshield/flowshield/flow"
)

// collectSink keeps copies of every record and counts errors by kind.
type collectSink struct {
	recs   []flow.Record
	errors [flow.NumErrorKinds]int
}

func (s *collectSink) Record(r *flow.Record)           { s.recs = append(s.recs, *r) }
func (s *collectSink) DecodeError(kind flow.ErrorKind) { s.errors[kind]++ }
func (s *collectSink) errorCount() int {
	n := 0
	for _, c := range s.errors {
		n += c
	}
	return n
}

// countSink only counts, for benchmarks and fuzzing.
type countSink struct {
	records, errors int
	packets         uint64
}

func (s *countSink) Record(r *flow.Record)      { s.records++; s.packets += r.Packets }
func (s *countSink) DecodeError(flow.ErrorKind) { s.errors++ }

// goflowRef is goflow2's decode + producer/proto path, the reference our
// decoder is held to. One template system per exporter address, as the
// datagrams in a test come from one exporter each.
type goflowRef struct {
	templates map[netip.Addr]netflow.NetFlowTemplateSystem
	prod      producer.ProducerInterface
}

func newGoflowRef() *goflowRef {
	cfg, err := (&protoproducer.ProducerConfig{}).Compile()
	if err != nil {
		panic(err)
	}
	prod, err := protoproducer.CreateProtoProducer(cfg, protoproducer.CreateSamplingSystem)
	if err != nil {
		panic(err)
	}
	return &goflowRef{templates: map[netip.Addr]netflow.NetFlowTemplateSystem{}, prod: prod}
}

// decode returns goflow2's records for one datagram converted to ours, and
// goflow2's error. It must only see inputs that cannot spring its traps.
func (g *goflowRef) decode(dg *flow.Datagram) ([]flow.Record, error) {
	ts := g.templates[dg.Exporter]
	if ts == nil {
		ts = netflow.CreateTemplateSystem()
		g.templates[dg.Exporter] = ts
	}
	var msg any
	buf := bytes.NewBuffer(dg.Payload)
	if len(dg.Payload) >= 2 && binary.BigEndian.Uint16(dg.Payload) == 5 {
		var p netflowlegacy.PacketNetFlowV5
		if err := netflowlegacy.DecodeMessageVersion(buf, &p); err != nil {
			return nil, err
		}
		msg = &p
	} else {
		var p9 netflow.NFv9Packet
		var p10 netflow.IPFIXPacket
		// A data set without its template is skipped by goflow2 too; it
		// reports it and decodes the rest.
		if err := netflow.DecodeMessageVersion(buf, ts, &p9, &p10); err != nil && !errors.Is(err, netflow.ErrorTemplateNotFound) {
			return nil, err
		}
		if p9.Version == 9 {
			msg = &p9
		} else {
			msg = &p10
		}
	}
	args := &producer.ProduceArgs{
		Src:            netip.AddrPortFrom(dg.Exporter, 2055),
		SamplerAddress: dg.Exporter,
		TimeReceived:   time.Unix(0, dg.Received),
	}
	msgs, err := g.prod.Produce(msg, args)
	defer g.prod.Commit(msgs)
	out := make([]flow.Record, 0, len(msgs))
	for _, m := range msgs {
		fm := m.(*protoproducer.ProtoProducerMessage)
		r := flow.Record{
			Exporter:          dg.Exporter,
			Received:          dg.Received,
			Start:             int64(fm.TimeFlowStartNs),
			End:               int64(fm.TimeFlowEndNs),
			Packets:           fm.Packets,
			Bytes:             fm.Bytes,
			SamplingRate:      uint32(fm.SamplingRate),
			ObservationDomain: fm.ObservationDomainId,
			InIf:              fm.InIf,
			OutIf:             fm.OutIf,
			SrcPort:           uint16(fm.SrcPort),
			DstPort:           uint16(fm.DstPort),
			Proto:             uint8(fm.Proto),
			TCPFlags:          uint8(fm.TcpFlags),
			Fragment:          fm.FragmentOffset&0x1fff != 0 || fm.IpFlags&1 != 0,
		}
		r.SrcAddr, _ = netip.AddrFromSlice(fm.SrcAddr)
		r.DstAddr, _ = netip.AddrFromSlice(fm.DstAddr)
		out = append(out, r)
	}
	return out, err
}

// safeForGoflow reports whether goflow2 may see p: no v9/IPFIX template
// whose records are zero bytes long (its DecodeDataSet then loops forever),
// and no count so large that its v5 decoder allocates without bound. Our
// own decoder on the same input is the judge of both.
func safeForGoflow(p []byte) bool {
	if len(p) < 2 {
		return true
	}
	switch binary.BigEndian.Uint16(p) {
	case 9, 10:
	default:
		return true
	}
	ok := true
	walkTemplates(p, func(fields [][2]uint16) {
		sum := 0
		for _, f := range fields {
			if f[1] != 0xffff {
				sum += int(f[1])
			}
		}
		if sum == 0 {
			ok = false
		}
	})
	return ok
}

// walkTemplates calls fn with the (type, length) list of every template and
// options template record it can frame in a v9/IPFIX datagram.
func walkTemplates(p []byte, fn func([][2]uint16)) {
	v := binary.BigEndian.Uint16(p)
	off, tmpl, opts := v9HeaderLen, uint16(0), uint16(1)
	if v == 10 {
		off, tmpl, opts = ipfixHeaderLen, 2, 3
	}
	for off+4 <= len(p) {
		id := binary.BigEndian.Uint16(p[off:])
		l := int(binary.BigEndian.Uint16(p[off+2:]))
		if l < 4 {
			return
		}
		end := min(off+l, len(p))
		body := p[off+4 : end]
		if id == tmpl || id == opts {
			for len(body) >= 4 {
				var count, hdr int
				switch {
				case id == tmpl:
					count, hdr = int(binary.BigEndian.Uint16(body[2:])), 4
				case v == 9:
					if len(body) < 6 {
						return
					}
					count, hdr = (int(binary.BigEndian.Uint16(body[2:]))+int(binary.BigEndian.Uint16(body[4:])))/4, 6
				default:
					if len(body) < 6 {
						return
					}
					count, hdr = int(binary.BigEndian.Uint16(body[2:])), 6
					if sc := int(binary.BigEndian.Uint16(body[4:])); sc > count {
						count = sc // goflow2 reads the scope fields first
					}
				}
				body = body[hdr:]
				var fields [][2]uint16
				for i := 0; i < count && len(body) >= 4; i++ {
					t, fl := binary.BigEndian.Uint16(body), binary.BigEndian.Uint16(body[2:])
					body = body[4:]
					if v == 10 && t&0x8000 != 0 {
						if len(body) < 4 {
							body = nil
							break
						}
						body = body[4:]
					}
					fields = append(fields, [2]uint16{t, fl})
				}
				fn(fields)
			}
		}
		off += l
	}
}
