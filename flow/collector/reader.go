package collector

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// Reading a socket: the primary reader and its standby.
//
// A reader that wakes for every datagram and hands each to a worker costs
// two context switches per datagram (~20 records): at 200,000 records/s
// that alone was half the daemon's CPU. So the primary reader of a
// listener, once traffic flows, waits PollInterval between reads (on a
// timerfd, see pollClock) and then takes everything waiting with
// recvmmsg(2): one wake-up for tens of datagrams, like a NIC's interrupt
// coalescing. It decodes what it read itself and hands the records to the
// consumer in batches, with no goroutine hand-off at all. When the exporter
// goes quiet it blocks in recvmmsg again, which costs nothing while idle.
//
// Two things must not be lost doing so, and are kept:
//   - Using the machine's cores under load: when the primary has worked for
//     a whole PollInterval without emptying the socket it is falling behind,
//     and it hands the rest of the backlog to the workers through the
//     bounded queue while that has room for a read; when it has none it
//     decodes the read itself, so the backlog waits in the socket buffer
//     (far larger than the queue) instead of being moved into a full queue
//     and dropped there. The kernel drops, and counts, once that is full.
//   - Never waiting for the consumer: if the primary is held inside the
//     consumer (or its decoder) for longer than StallAfter, the listener's
//     standby reader takes the socket over and feeds the queue until the
//     primary is back, so the socket is never left unread for long.
//
// Only the reader holding listener.readMu reads the socket; v9/IPFIX
// template datagrams are decoded on whichever reader read them, before the
// next datagram is read, so templates are installed in arrival order.
type reader struct {
	c  *Collector
	l  *listener
	br *batchReader // the standby makes its own on first take-over

	// inline decodes on this goroutine (primary only; nil on the standby).
	inline  *worker
	pending []pendingDatagram // the datagrams of the read being decoded inline
	// inlineSince is the Unix ns at which the primary entered inline
	// decoding and delivery, 0 while it is reading.
	inlineSince atomic.Int64
	// stallTimer runs while the primary is inline; when it fires, stalled
	// wakes the standby.
	stallTimer *time.Timer
	stalled    chan struct{}

	// For datagrams decoded on the reader but handed to a worker.
	rec  flow.Record
	sink orderedSink

	// Polling state (see next).
	polling    bool
	full       bool  // the last read filled every slot: more is waiting
	drainStart int64 // Unix ns at which the current drain began
	interval   time.Duration
	drained    int64 // socket bytes (estimated) drained since the last sleep
	lastDrops  uint32
	dropsSeen  bool

	consecutiveErr int
	clock          *pollClock
	clockErrLogged bool

	// A one-entry memo and a private map in front of the shared exporter
	// table: a router sends from one address, so this is nearly always hit.
	lastAddr  netip.Addr
	lastStats *exporterStats
	known     map[netip.Addr]*exporterStats
	// lastAdmitted is the last source Exporters admitted (see admit).
	lastAdmitted netip.Addr
}

// pendingDatagram is a datagram read and accounted, waiting to be decoded.
type pendingDatagram struct {
	payload []byte // in the batchReader's slot
	from    netip.Addr
	stats   *exporterStats
}

// skbOverhead approximates what the kernel charges a socket's receive
// buffer per datagram beyond its payload (sk_buff truesize).
const skbOverhead = 768

// Bounds of the adaptive poll interval.
const minPollInterval = 250 * time.Microsecond

func newReader(c *Collector, l *listener) *reader {
	r := &reader{c: c, l: l, known: make(map[netip.Addr]*exporterStats), interval: c.cfg.PollInterval}
	r.sink.c = c
	return r
}

func newPrimaryReader(c *Collector, l *listener) (*reader, error) {
	r := newReader(c, l)
	br, err := newBatchReader(l.sock, c.cfg.ReadBatch, l.kernelDropsOK)
	if err != nil {
		return nil, err
	}
	r.br = br
	if r.clock, err = newPollClock(); err != nil {
		return nil, err
	}
	r.inline = newWorker(c)
	r.stalled = make(chan struct{}, 1)
	r.stallTimer = time.AfterFunc(time.Hour, func() {
		select {
		case r.stalled <- struct{}{}:
		default:
		}
	})
	r.stallTimer.Stop()
	return r, nil
}

func (r *reader) exporterStats(addr netip.Addr) *exporterStats {
	if r.lastStats != nil && addr == r.lastAddr {
		return r.lastStats
	}
	st, ok := r.known[addr]
	if !ok {
		st = r.c.exporters.lookup(addr, r.l.protocol)
		if st == nil {
			return nil // over MaxExporters: not remembered either
		}
		r.known[addr] = st
	}
	r.lastAddr, r.lastStats = addr, st
	return st
}

// run is the primary reader's loop.
func (r *reader) run() {
	l := r.l
	defer l.up.Store(false)
	defer r.clock.close()
	for {
		l.readMu.Lock()
		n, now, err := r.next(true)
		if err != nil {
			l.readMu.Unlock()
			if r.closed(err) {
				return
			}
			r.readFailed(err)
			continue
		}
		r.cycle(n, now, false, &l.readMu) // unlocks readMu
	}
}

func (r *reader) closed(err error) bool {
	return errors.Is(err, net.ErrClosed) || r.c.stopping.Load()
}

// next reads what is waiting. In polling mode it first sleeps the poll
// interval, unless the last read left datagrams behind. When a whole
// interval brought nothing it leaves polling mode and, if mayWait, waits in
// the poller for the next datagram.
func (r *reader) next(mayWait bool) (n int, now int64, err error) {
	if r.polling {
		if !r.full {
			r.adaptInterval()
			if err := r.clock.wait(r.interval); err != nil {
				r.clockFailed(err)
				time.Sleep(r.interval)
			}
		}
		wasFull := r.full
		n, err = r.br.read(false)
		now = time.Now().UnixNano()
		if !wasFull {
			r.drainStart = now
		}
		r.full = n == r.br.slots()
		if err != nil || n > 0 || wasFull || !mayWait {
			return n, now, err
		}
		r.polling = false // quiet for a whole interval
		r.clock.stop()
	}
	n, err = r.br.read(true)
	now = time.Now().UnixNano()
	r.drainStart, r.drained = now, 0
	r.full = n == r.br.slots()
	r.polling = err == nil && canPoll && r.interval > 0
	return n, now, err
}

// adaptInterval keeps what one interval brings well inside the socket's
// receive buffer: a small buffer (unprivileged, rmem_max) or a fast
// exporter shortens the sleep, a quiet one lengthens it back.
func (r *reader) adaptInterval() {
	budget := int64(r.l.receiveBuffer) / 8
	switch {
	case budget > 0 && r.drained > budget && r.interval > minPollInterval:
		r.interval = max(r.interval/2, minPollInterval)
	case (budget == 0 || r.drained < budget/4) && r.interval < r.c.cfg.PollInterval:
		r.interval = min(r.interval*2, r.c.cfg.PollInterval)
	}
	r.drained = 0
}

// cycle handles the n datagrams of one read and unlocks readMu once the
// socket may be read again. The primary decodes them itself unless it is
// falling behind (a full read after working a whole interval); spill hands
// every datagram to the workers (the standby).
func (r *reader) cycle(n int, now int64, spill bool, readMu *sync.Mutex) {
	if n == 0 {
		readMu.Unlock()
		return
	}
	r.c.totals.reads.Inc()
	if drops, ok := r.br.kernelDrops(n); ok {
		r.l.kernelDrops.Store(uint64(drops))
		if r.dropsSeen && drops != r.lastDrops {
			// The kernel dropped while we slept: sleep less.
			r.interval = max(r.interval/2, minPollInterval)
		}
		r.lastDrops, r.dropsSeen = drops, true
	}
	if r.consecutiveErr != 0 {
		r.consecutiveErr = 0
		r.l.setErr(nil)
	}
	// Behind: a full read after draining for a whole interval. The rest of
	// the backlog then goes to the workers, but only while their queue has
	// room for this read: once they are behind too, datagrams moved from
	// the socket into a full queue would only be dropped there, while the
	// primary decoding them itself loses nothing and leaves the backlog in
	// the socket's buffer, far larger than the queue (kernel drops, counted,
	// only once that is full).
	behind := r.full && now-r.drainStart > int64(r.interval)
	spill = spill || r.inline == nil || behind && r.c.queueHasRoom(n, r.br.bytes(n))
	if spill {
		// Template datagrams are decoded here, before the next read. The
		// primary keeps their records in its own batch (queued, they
		// would be twice the datagram's size) and delivers them after
		// unlocking, guarded by the stall timer like inline decoding.
		if r.inline != nil {
			r.inline.holdFlush = true
		}
		for i := range n {
			payload, from := r.br.datagram(i)
			r.drained += int64(len(payload)) + skbOverhead
			if r.admit(len(payload), from, now) {
				r.handle(payload, from, now)
			}
		}
		readMu.Unlock()
		if r.inline != nil {
			r.inline.holdFlush = false
			if len(r.inline.batch) > 0 {
				r.enterInline(now)
				r.inline.flush()
				r.leaveInline()
			}
		}
		return
	}

	// Inline. The standby may read the socket as soon as readMu is
	// unlocked, and what it reads goes to the workers: so readMu is held
	// until the last template datagram of this read is decoded, and records
	// are not delivered before then (the consumer could hold us up).
	l := r.l
	lastOrdered := -1
	r.pending = r.pending[:0]
	for i := range n {
		// Everything read is accounted at once, even if the consumer then
		// holds this reader up before it is decoded.
		payload, from := r.br.datagram(i)
		r.drained += int64(len(payload)) + skbOverhead
		if !r.admit(len(payload), from, now) {
			continue
		}
		st := r.account(payload, from, now)
		ordered := l.inOrder != nil && r.inOrder(payload, st)
		if ordered {
			lastOrdered = len(r.pending) // its index in pending, where refused datagrams are not
			r.c.totals.inOrder.Inc()
		}
		r.pending = append(r.pending, pendingDatagram{payload, from, st})
	}
	if len(r.pending) == 0 {
		readMu.Unlock() // all refused
		return
	}
	r.c.totals.inline.Add(len(r.pending))
	if lastOrdered < 0 {
		readMu.Unlock()
	}
	r.enterInline(now)
	r.inline.holdFlush = lastOrdered >= 0
	for i := range r.pending {
		p := &r.pending[i]
		r.inline.decodePayload(l, p.payload, p.from, now, p.stats)
		if i == lastOrdered {
			readMu.Unlock()
			r.inline.holdFlush = false
		}
	}
	r.inline.flush()
	r.leaveInline()
}

// enterInline marks the primary busy decoding and delivering, and starts
// the stall timer that wakes the standby if the consumer holds it up.
func (r *reader) enterInline(now int64) {
	r.inlineSince.Store(max(now, 1))
	r.stallTimer.Reset(r.c.cfg.StallAfter)
}

func (r *reader) leaveInline() {
	r.inlineSince.Store(0)
	r.stallTimer.Stop()
}

// clockFailed logs, once, that the poll clock failed; the reader then
// sleeps with the runtime's timer, which works, only less efficiently.
func (r *reader) clockFailed(err error) {
	if !r.clockErrLogged {
		r.clockErrLogged = true
		r.c.log.Warn("flow reader poll clock failed; using a plain sleep", "listener", r.l.protocol.String(), "error", err)
	}
}

// readFailed counts a read error and backs off a little while they repeat,
// so a persistent failure does not spin a core; it shows in Health.
func (r *reader) readFailed(err error) {
	l := r.l
	l.readErrors.Add(1)
	r.consecutiveErr++
	if r.consecutiveErr == 1 || r.consecutiveErr%1000 == 0 {
		r.c.log.Warn("reading flow datagram", "listener", l.protocol.String(), "error", err, "consecutive", r.consecutiveErr)
	}
	if r.consecutiveErr >= 10 {
		l.setErr(err)
	}
	time.Sleep(time.Duration(min(r.consecutiveErr, 100)) * time.Millisecond)
}

// account counts one datagram read, globally and for its exporter.
func (r *reader) account(payload []byte, from netip.Addr, now int64) *exporterStats {
	c, l := r.c, r.l
	st := r.exporterStats(from)
	c.totals.datagrams.Inc()
	if st != nil {
		st.datagrams.Add(1)
		st.lastSeen.Store(now)
		if v := versionOf(l.protocol, payload); v != 0 && st.version.Load() != v {
			st.version.Store(v)
		}
	} else {
		c.totals.exportersOverflow.Inc()
	}
	return st
}

// handle accounts one datagram and hands it to the workers without ever
// blocking: dropped and counted when the queue is full.
func (r *reader) handle(payload []byte, from netip.Addr, now int64) {
	c, l := r.c, r.l
	st := r.account(payload, from, now)
	if l.inOrder != nil && r.inOrder(payload, st) {
		if r.inline != nil {
			c.totals.inOrder.Inc()
			r.inline.decodePayload(l, payload, from, now, st)
		} else {
			r.decodeInOrder(payload, from, now, st)
		}
		return
	}

	size := int64(len(payload))
	// Check before copying: a drop under overload costs no copy.
	if len(c.queue) >= cap(c.queue) || c.queued.Load()+size > int64(c.cfg.QueueBytes) {
		c.drop(st)
		return
	}
	p := c.getPacket()
	p.buf = append(p.buf[:0], payload...)
	p.size, p.received, p.exporter, p.stats, p.listener = size, now, from, st, l
	c.enqueue(p)
}

// inOrder asks the listener's InOrder function, treating its panic like a
// decoder's: counted, and the datagram is decoded as any other.
func (r *reader) inOrder(payload []byte, st *exporterStats) (ordered bool) {
	defer func() {
		if v := recover(); v != nil {
			r.c.decoderPanicked(r.l, st, v)
			ordered = false
		}
	}()
	return r.l.inOrder(payload)
}

// decodeInOrder decodes a datagram on the standby reader so that the
// templates it carries are installed before the next datagram is read. Its
// records are queued for a worker to account and deliver: the standby reads
// because the consumer is holding the primary up, so it must not call it.
func (r *reader) decodeInOrder(payload []byte, from netip.Addr, now int64, st *exporterStats) {
	c, l := r.c, r.l
	p := c.getPacket()
	dg := flow.Datagram{Exporter: from, Payload: payload, Received: now}
	r.rec.Reset()
	r.sink.p, r.sink.stats = p, st
	c.decode(l, &dg, &r.rec, &r.sink, st)
	r.sink.p, r.sink.stats = nil, nil
	c.totals.inOrder.Inc()
	if len(p.records) == 0 {
		c.putPacket(p) // templates only: nothing for the consumer
		return
	}
	size := int64(len(p.records)) * recordSize
	if len(c.queue) >= cap(c.queue) || c.queued.Load()+size > int64(c.cfg.QueueBytes) {
		c.putPacket(p)
		c.drop(st)
		return
	}
	p.decoded = true
	p.size, p.received, p.exporter, p.stats, p.listener = size, now, from, st, l
	c.enqueue(p)
}

// runStandby waits for its primary's stall timer, and then reads the socket
// while the primary is still held up. It costs nothing until then: no
// ticker, since on a router an idle daemon should not wake at all.
func (r *reader) runStandby(primary *reader) {
	for {
		select {
		case <-r.c.done:
			return
		case <-primary.stalled:
		}
		since := primary.inlineSince.Load()
		if since == 0 {
			continue // back already
		}
		if r.takeOver(primary, since) {
			return
		}
	}
}

// takeOver reads for a stalled primary until it is back; it reports
// whether the listener was closed meanwhile.
func (r *reader) takeOver(primary *reader, since int64) (closed bool) {
	l := r.l
	l.readMu.Lock()
	if primary.inlineSince.Load() != since {
		l.readMu.Unlock()
		return false // back already
	}
	if r.br == nil {
		br, err := newBatchReader(l.sock, r.c.cfg.ReadBatch, l.kernelDropsOK)
		if err == nil {
			r.clock, err = newPollClock()
		}
		if err != nil {
			l.readMu.Unlock()
			r.c.log.Error("standby flow reader cannot read the socket", "listener", l.protocol.String(), "error", err)
			return false
		}
		r.br = br
	}
	r.c.totals.takeovers.Inc()
	if r.c.takeoverLogDue() {
		r.c.log.Warn("flow consumer held the reader up; the standby reader hands datagrams to the workers meanwhile",
			"listener", l.protocol.String(), "held_for", time.Duration(time.Now().UnixNano()-since).String())
	}
	// Read at once: the socket has filled while the primary was away.
	// (With the stall timer's delay plus a wake-up, "away" is StallAfter
	// and a little more.)
	r.polling, r.full = true, true
	for {
		n, now, err := r.next(false)
		if err != nil {
			l.readMu.Unlock()
			if r.closed(err) {
				r.clock.close()
				return true
			}
			r.readFailed(err)
		} else {
			r.cycle(n, now, true, &l.readMu) // unlocks readMu
		}
		if primary.inlineSince.Load() == 0 {
			r.clock.stop()
			return false
		}
		l.readMu.Lock()
	}
}
