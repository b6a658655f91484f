package netflow

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowshield/flowshield/flow"
)

// decodeV5 decodes a NetFlow v5 datagram: a 24-byte header and fixed
// 48-byte records.
func decodeV5(dg *flow.Datagram, rec *flow.Record, sink flow.Sink) {
	p := dg.Payload
	if len(p) < v5HeaderLen {
		sink.DecodeError(flow.ErrTruncated)
		return
	}
	count := int(binary.BigEndian.Uint16(p[2:]))
	if v5HeaderLen+count*v5RecordLen > len(p) {
		sink.DecodeError(flow.ErrTooManyRecords)
		return
	}
	uptime := binary.BigEndian.Uint32(p[4:])
	exported := int64(binary.BigEndian.Uint32(p[8:]))*1e9 + int64(binary.BigEndian.Uint32(p[12:]))
	base := flow.Record{
		Exporter: dg.Exporter,
		Received: dg.Received,
		Exported: exported,
		// 14 bits: at most 16,383, always within flow.MaxSamplingRate.
		SamplingRate:      uint32(binary.BigEndian.Uint16(p[22:]) & 0x3fff),
		ObservationDomain: uint32(p[20])<<8 | uint32(p[21]), // engine type, engine id
		Format:            flow.FormatNetFlowV5,
	}
	p = p[v5HeaderLen : v5HeaderLen+count*v5RecordLen]
	for len(p) >= v5RecordLen {
		r := p[:v5RecordLen:v5RecordLen]
		p = p[v5RecordLen:]
		*rec = base
		rec.SrcAddr = netip.AddrFrom4([4]byte(r[0:4]))
		rec.DstAddr = netip.AddrFrom4([4]byte(r[4:8]))
		rec.InIf = uint32(binary.BigEndian.Uint16(r[12:]))
		rec.OutIf = uint32(binary.BigEndian.Uint16(r[14:]))
		rec.Packets = uint64(binary.BigEndian.Uint32(r[16:]))
		rec.Bytes = uint64(binary.BigEndian.Uint32(r[20:]))
		rec.Start = exported - int64(int32(uptime-binary.BigEndian.Uint32(r[24:])))*1e6
		rec.End = exported - int64(int32(uptime-binary.BigEndian.Uint32(r[28:])))*1e6
		rec.SrcPort = binary.BigEndian.Uint16(r[32:])
		rec.DstPort = binary.BigEndian.Uint16(r[34:])
		rec.TCPFlags = r[37]
		rec.Proto = r[38]
		sink.Record(rec)
	}
}
