package collector

import (
	"fmt"
	"runtime/debug"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// worker decodes queued datagrams. It is also the flow.Sink its decoder
// writes to: it owns a reused record and a batch, and keeps the counters of
// the datagram in hand locally so the shared atomics are touched once per
// datagram, not once per record.
type worker struct {
	c     *Collector
	rec   flow.Record
	batch []flow.Record

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
	}
}

func (w *worker) process(p *packet) {
	c := w.c
	w.dg = flow.Datagram{Exporter: p.exporter, Payload: p.buf, Received: p.received}
	w.stats = p.stats
	w.records, w.packets, w.bytes, w.rate, w.exported = 0, 0, 0, 0, 0
	if p.decoded {
		for i := range p.records {
			w.accept(&p.records[i])
		}
	} else {
		w.rec.Reset()
		c.decode(p.listener, &w.dg, &w.rec, w, p.stats)
	}
	w.flush()
	w.commit()
	w.dg.Payload = nil
}

// Record is called by the decoder once per flow.
func (w *worker) Record(r *flow.Record) { w.accept(r) }

// DecodeError is called by the decoder for each dropped part.
func (w *worker) DecodeError(kind flow.ErrorKind) { w.c.countDecodeError(w.stats, kind) }

func (w *worker) accept(r *flow.Record) {
	// The collector, not the decoder, is the authority on where and when.
	r.Exporter = w.dg.Exporter
	r.Received = w.dg.Received
	if r.SamplingRate == 0 {
		r.SamplingRate = w.c.cfg.DefaultSamplingRate
	}
	w.records++
	w.packets += r.Packets * uint64(r.SamplingRate)
	w.bytes += r.Bytes * uint64(r.SamplingRate)
	w.rate = r.SamplingRate
	if r.Exported != 0 {
		w.exported = r.Exported
	}
	w.batch = append(w.batch, *r)
	if len(w.batch) >= w.c.cfg.BatchRecords {
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
func (c *Collector) panicLogDue() bool {
	now := time.Now().UnixNano()
	last := c.lastPanicLog.Load()
	if last != 0 && now-last < int64(time.Minute) {
		return false
	}
	return c.lastPanicLog.CompareAndSwap(last, now)
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
