package collector

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// worker decodes datagrams: a pool of them those queued by the readers, and
// each primary reader has one of its own for what it decodes inline. It is also the flow.Sink its decoder
// writes to: it owns a reused record and a batch, and keeps the counters of
// the datagram in hand locally so the shared atomics are touched once per
// datagram, not once per record.
type worker struct {
	c     *Collector
	rec   flow.Record
	batch []flow.Record
	// holdFlush defers delivery past BatchRecords (see reader.cycle).
	holdFlush bool

	// The datagram being decoded.
	dg       flow.Datagram
	stats    *exporterStats
	records  uint64
	packets  uint64
	bytes    uint64
	rate     uint32
	exported int64
}

func newWorker(c *Collector) *worker {
	return &worker{c: c, batch: make([]flow.Record, 0, c.cfg.BatchRecords)}
}

// run decodes queued datagrams; records are delivered when the batch is
// full and whenever the queue is empty, so a backlog is handed over in
// large batches and a trickle without delay.
func (w *worker) run() {
	c := w.c
	for p := range c.queue {
		c.queued.Add(-p.size)
		if c.stopping.Load() {
			// Shutting down: what is still queued is not decoded.
			c.drop(p.stats)
		} else {
			w.process(p)
		}
		c.putPacket(p)
		if len(c.queue) == 0 {
			w.flush()
		}
	}
	w.flush()
}

func (w *worker) process(p *packet) {
	if !p.decoded {
		w.decodePayload(p.listener, p.buf, p.exporter, p.received, p.stats)
		return
	}
	w.begin(p.buf, p.exporter, p.received, p.stats)
	for i := range p.records {
		w.accept(&p.records[i])
	}
	w.commit()
	w.dg.Payload = nil
}

// decodePayload decodes one datagram into the batch and accounts it; the
// batch is delivered by the caller (flush), so payload need only live for
// the call.
func (w *worker) decodePayload(l *listener, payload []byte, from netip.Addr, received int64, st *exporterStats) {
	w.begin(payload, from, received, st)
	w.rec.Reset()
	w.c.decode(l, &w.dg, &w.rec, w, st)
	w.commit()
	w.dg.Payload = nil
}

func (w *worker) begin(payload []byte, from netip.Addr, received int64, st *exporterStats) {
	w.dg = flow.Datagram{Exporter: from, Payload: payload, Received: received}
	w.stats = st
	w.records, w.packets, w.bytes, w.rate, w.exported = 0, 0, 0, 0, 0
}

// Record is called by the decoder once per flow.
func (w *worker) Record(r *flow.Record) { w.accept(r) }

// DecodeError is called by the decoder for each dropped part.
func (w *worker) DecodeError(kind flow.ErrorKind) { w.c.countDecodeError(w.stats, kind) }

func (w *worker) accept(r *flow.Record) {
	rate := r.SamplingRate
	if rate == 0 {
		rate = w.c.cfg.DefaultSamplingRate
	}
	w.records++
	w.packets += r.Packets * uint64(rate)
	w.bytes += r.Bytes * uint64(rate)
	w.rate = rate
	if r.Exported != 0 {
		w.exported = r.Exported
	}
	if len(w.batch) == cap(w.batch) {
		w.batch = append(w.batch, flow.Record{})[:len(w.batch)]
	}
	w.batch = w.batch[:len(w.batch)+1]
	copyRecord(&w.batch[len(w.batch)-1], r)
	// The collector, not the decoder, is the authority on where and when.
	d := &w.batch[len(w.batch)-1]
	d.Exporter, d.Received, d.SamplingRate = w.dg.Exporter, w.dg.Received, rate
	if len(w.batch) >= w.c.cfg.BatchRecords && !w.holdFlush {
		w.flush()
	}
}

// commit adds the datagram's counters to the totals and its exporter.
func (w *worker) commit() {
	if w.records == 0 {
		return
	}
	t := &w.c.totals
	t.records.Add(int(w.records))
	t.flowPackets.AddInt64(int64(w.packets))
	t.flowBytes.AddInt64(int64(w.bytes))
	st := w.stats
	if st == nil {
		return
	}
	st.records.Add(w.records)
	st.flowPackets.Add(w.packets)
	st.flowBytes.Add(w.bytes)
	if st.samplingRate.Load() != w.rate {
		st.samplingRate.Store(w.rate)
	}
	if w.exported != 0 {
		st.skew.observe(w.dg.Received - w.exported)
	}
}

func (w *worker) flush() {
	if len(w.batch) == 0 {
		return
	}
	w.c.deliver(w.batch)
	w.batch = w.batch[:0]
}

// deliver hands a batch to the consumer; a consumer panic is counted and
// logged rather than killing the worker.
func (c *Collector) deliver(batch []flow.Record) {
	defer func() {
		if v := recover(); v != nil {
			c.totals.consumerPanics.Inc()
			if c.panicLogDue() {
				c.log.Error("flow consumer panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			}
		}
	}()
	c.consumer.Consume(batch)
}

// decode runs the listener's decoder on one datagram. A decoder panic is a
// bug, but one hostile datagram must not take the daemon down: it is
// recovered, counted, and the datagram's remaining records are lost.
func (c *Collector) decode(l *listener, dg *flow.Datagram, rec *flow.Record, sink flow.Sink, st *exporterStats) {
	defer func() {
		if v := recover(); v != nil {
			c.decoderPanicked(l, st, v)
		}
	}()
	l.decoder.Decode(dg, rec, sink)
}

func (c *Collector) decoderPanicked(l *listener, st *exporterStats, v any) {
	c.totals.decoderPanics.Inc()
	if st != nil {
		st.decoderPanics.Add(1)
	}
	if c.panicLogDue() {
		c.log.Error("flow decoder panicked; datagram dropped", "listener", l.protocol.String(),
			"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}

// panicLogDue rate-limits panic logs to one a minute.
func (c *Collector) panicLogDue() bool { return logDue(&c.lastPanicLog) }

// takeoverLogDue rate-limits standby take-over logs to one a minute.
func (c *Collector) takeoverLogDue() bool { return logDue(&c.lastTakeover) }

func logDue(last *atomic.Int64) bool { return logDueAt(last, time.Now().UnixNano()) }

// logDueAt is logDue at now (Unix ns), for callers that have the time.
func logDueAt(last *atomic.Int64, now int64) bool {
	l := last.Load()
	if l != 0 && now-l < int64(time.Minute) {
		return false
	}
	return last.CompareAndSwap(l, now)
}

func (c *Collector) countDecodeError(st *exporterStats, kind flow.ErrorKind) {
	if kind >= flow.NumErrorKinds {
		kind = flow.ErrUnsupported // out-of-range kind from a buggy decoder: still counted
	}
	c.totals.decodeErrors[kind].Inc()
	if st != nil {
		st.decodeErrors[kind].Add(1)
	}
}

// copyRecord copies *src to *dst field by field. The decoder has just
// written src with narrow stores; a struct copy reads it back with 16-byte
// loads, which cannot be forwarded from those stores and stalled the copy
// (~7 % of the daemon's CPU at 200k records/s). TestCopyRecord checks
// that every field is copied.
func copyRecord(dst, src *flow.Record) {
	dst.Exporter, dst.SrcAddr, dst.DstAddr = src.Exporter, src.SrcAddr, src.DstAddr
	dst.Received, dst.Exported, dst.Start, dst.End = src.Received, src.Exported, src.Start, src.End
	dst.Packets, dst.Bytes = src.Packets, src.Bytes
	dst.SamplingRate, dst.ObservationDomain, dst.InIf, dst.OutIf = src.SamplingRate, src.ObservationDomain, src.InIf, src.OutIf
	dst.SrcPort, dst.DstPort, dst.Proto, dst.TCPFlags = src.SrcPort, src.DstPort, src.Proto, src.TCPFlags
	dst.Fragment, dst.Format = src.Fragment, src.Format
}
