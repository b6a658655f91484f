package collector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
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

	sock          *socket
	local         netip.AddrPort
	receiveBuffer int  // effective, as the kernel reports it
	requestedBuf  int  // as configured
	kernelDropsOK bool // SO_RXQ_OVFL enabled
	kernelDrops   atomic.Uint64
	readErrors    atomic.Uint64
	up            atomic.Bool
	mu            sync.Mutex
	err           error // why the listener is down or failing

	// readMu is held by whichever of the listener's two readers is
	// reading the socket (see reader).
	readMu sync.Mutex
}

func (l *listener) open(receiveBuffer int, log *slog.Logger) error {
	sock, local, err := listenUDP(l.address)
	if err != nil {
		return fmt.Errorf("listening for %s on %s=%q: %w", l.protocol, l.variable, l.address, err)
	}
	l.sock, l.local = sock, local
	l.requestedBuf = receiveBuffer
	if receiveBuffer > 0 {
		effective, capped, err := setReceiveBuffer(sock, receiveBuffer)
		switch {
		case err != nil:
			log.Warn("setting socket receive buffer", "listener", l.protocol.String(), "requested", receiveBuffer, "error", err)
		case capped:
			log.Warn("socket receive buffer capped by the kernel; raise net.core.rmem_max or grant CAP_NET_ADMIN",
				"listener", l.protocol.String(), "requested", receiveBuffer, "effective", effective)
		}
		l.receiveBuffer = effective
	} else {
		l.receiveBuffer = receiveBufferOf(sock)
	}
	l.kernelDropsOK = enableKernelDropCounter(sock)
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

// queueHasRoom reports whether n more datagrams of size bytes in all fit
// in the queue, by count and by bytes.
func (c *Collector) queueHasRoom(n int, size int64) bool {
	return len(c.queue)+n <= cap(c.queue) && c.queued.Load()+size <= int64(c.cfg.QueueBytes)
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
