package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/flowshield/flowshield/flow"
)

// maxDatagram holds any UDP payload (65,507 bytes over IPv4, 65,527 over
// IPv6), so a datagram is never silently truncated.
const maxDatagram = 65536

// Pooled buffers larger than these are not kept, so one burst of huge
// datagrams does not pin memory for ever.
const (
	maxPooledPayload = 16 << 10
	maxPooledRecords = 4096
)

// listener is one UDP socket and what decodes its datagrams.
type listener struct {
	protocol Protocol
	address  string // as configured
	variable string // the setting's name, for error messages
	decoder  Decoder
	inOrder  func(payload []byte) bool

	conn           *net.UDPConn
	local          netip.AddrPort
	receiveBuffer  int  // effective, as the kernel reports it
	requestedBuf   int  // as configured
	kernelDropsOK  bool // SO_RXQ_OVFL enabled
	kernelDrops    atomic.Uint64
	readErrors     atomic.Uint64
	up             atomic.Bool
	mu             sync.Mutex
	err            error // why the listener is down or failing
	consecutiveErr int   // reader-owned
}

func (l *listener) open(receiveBuffer int, log *slog.Logger) error {
	addr, err := net.ResolveUDPAddr("udp", l.address)
	if err != nil {
		return fmt.Errorf("resolving %s=%q: %w", l.variable, l.address, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("listening for %s on %s=%q: %w", l.protocol, l.variable, l.address, err)
	}
	l.conn = conn
	l.local = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	l.requestedBuf = receiveBuffer
	if receiveBuffer > 0 {
		effective, capped, err := setReceiveBuffer(conn, receiveBuffer)
		switch {
		case err != nil:
			log.Warn("setting socket receive buffer", "listener", l.protocol.String(), "requested", receiveBuffer, "error", err)
		case capped:
			log.Warn("socket receive buffer capped by the kernel; raise net.core.rmem_max or grant CAP_NET_ADMIN",
				"listener", l.protocol.String(), "requested", receiveBuffer, "effective", effective)
		}
		l.receiveBuffer = effective
	}
	l.kernelDropsOK = enableKernelDropCounter(conn)
	log.Info("flow listener up", "listener", l.protocol.String(), "address", l.local.String(), "receive_buffer", l.receiveBuffer)
	return nil
}

func (l *listener) setErr(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
}

func (l *listener) health() error {
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if !l.up.Load() {
		if err == nil {
			err = errors.New("closed")
		}
		return fmt.Errorf("%s listener %s down: %w", l.protocol, l.address, err)
	}
	if err != nil {
		return fmt.Errorf("%s listener %s failing: %w", l.protocol, l.address, err)
	}
	return nil
}

// packet is a datagram on its way from a reader to a worker. Either buf holds
// the payload to decode, or decoded is set and records holds what the reader
// already decoded in arrival order.
type packet struct {
	buf      []byte
	records  []flow.Record
	decoded  bool
	size     int64 // bytes accounted in Collector.queued
	received int64
	exporter netip.Addr
	stats    *exporterStats
	listener *listener
}

var recordSize = int64(unsafe.Sizeof(flow.Record{}))

func (c *Collector) getPacket() *packet { return c.pool.Get().(*packet) }

func (c *Collector) putPacket(p *packet) {
	if cap(p.buf) > maxPooledPayload {
		p.buf = nil
	}
	if cap(p.records) > maxPooledRecords {
		p.records = nil
	}
	p.buf = p.buf[:0]
	p.records = p.records[:0]
	p.decoded = false
	p.stats = nil
	p.listener = nil
	c.pool.Put(p)
}

// reader is the goroutine state of one listener.
type reader struct {
	c    *Collector
	l    *listener
	buf  []byte
	oob  []byte
	rec  flow.Record // for in-order decoding
	sink orderedSink

	// A one-entry memo and a private map in front of the shared exporter
	// table: a router sends from one address, so this is nearly always hit.
	lastAddr  netip.Addr
	lastStats *exporterStats
	known     map[netip.Addr]*exporterStats
}

func newReader(c *Collector, l *listener) *reader {
	r := &reader{c: c, l: l, buf: make([]byte, maxDatagram), known: make(map[netip.Addr]*exporterStats)}
	if l.kernelDropsOK {
		r.oob = make([]byte, 128)
	}
	r.sink.c = c
	return r
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

func (r *reader) run() {
	c, l := r.c, r.l
	defer l.up.Store(false)
	for {
		n, oobn, _, from, err := l.conn.ReadMsgUDPAddrPort(r.buf, r.oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || c.stopping.Load() {
				return
			}
			r.readFailed(err)
			continue
		}
		if r.l.consecutiveErr != 0 {
			r.l.consecutiveErr = 0
			l.setErr(nil)
		}
		if oobn > 0 {
			if drops, ok := parseKernelDrops(r.oob[:oobn]); ok {
				l.kernelDrops.Store(uint64(drops))
			}
		}
		r.handle(r.buf[:n], from.Addr().Unmap(), time.Now().UnixNano())
	}
}

// readFailed counts a read error and backs off a little while they repeat,
// so a persistent failure does not spin a core; it shows in Health.
func (r *reader) readFailed(err error) {
	l := r.l
	l.readErrors.Add(1)
	l.consecutiveErr++
	if l.consecutiveErr == 1 || l.consecutiveErr%1000 == 0 {
		r.c.log.Warn("reading flow datagram", "listener", l.protocol.String(), "error", err, "consecutive", l.consecutiveErr)
	}
	if l.consecutiveErr >= 10 {
		l.setErr(err)
	}
	time.Sleep(time.Duration(min(l.consecutiveErr, 100)) * time.Millisecond)
}

// handle accounts one datagram and hands it on without ever blocking.
func (r *reader) handle(payload []byte, from netip.Addr, now int64) {
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

	if l.inOrder != nil && r.inOrder(payload, st) {
		r.decodeInOrder(payload, from, now, st)
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
// decoder's: counted, and the datagram goes to a worker as usual.
func (r *reader) inOrder(payload []byte, st *exporterStats) (ordered bool) {
	defer func() {
		if v := recover(); v != nil {
			r.c.decoderPanicked(r.l, st, v)
			ordered = false
		}
	}()
	return r.l.inOrder(payload)
}

// decodeInOrder decodes a datagram on the reader so that the templates it
// carries are installed before the next datagram is read. Its records are
// queued for a worker to account and deliver, since the reader must not
// wait for the consumer.
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

func (c *Collector) enqueue(p *packet) {
	c.queued.Add(p.size)
	select {
	case c.queue <- p:
	default: // the other reader took the last slot
		c.queued.Add(-p.size)
		st := p.stats
		c.putPacket(p)
		c.drop(st)
	}
}

func (c *Collector) drop(st *exporterStats) {
	c.totals.dropped.Inc()
	if st != nil {
		st.dropped.Add(1)
	}
}

// orderedSink collects the records of a datagram decoded on a reader.
type orderedSink struct {
	c     *Collector
	p     *packet
	stats *exporterStats
}

func (s *orderedSink) Record(r *flow.Record) { s.p.records = append(s.p.records, *r) }

func (s *orderedSink) DecodeError(kind flow.ErrorKind) { s.c.countDecodeError(s.stats, kind) }

// versionOf reads the export version from the datagram header: NetFlow and
// IPFIX start with a 16-bit version (5, 9, 10), sFlow with a 32-bit one (5).
func versionOf(p Protocol, payload []byte) uint32 {
	switch p {
	case ProtocolNetFlow:
		if len(payload) >= 2 {
			switch v := binary.BigEndian.Uint16(payload); v {
			case 5, 9, 10:
				return uint32(v)
			}
		}
	case ProtocolSFlow:
		if len(payload) >= 4 && binary.BigEndian.Uint32(payload) == 5 {
			return 5
		}
	}
	return 0
}

func versionName(p Protocol, v uint32) string {
	switch {
	case v == 0:
		return ""
	case p == ProtocolNetFlow && v == 10:
		return "ipfix"
	default:
		return fmt.Sprintf("v%d", v)
	}
}
