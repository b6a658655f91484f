// Package collector receives flow export datagrams (NetFlow v5/v9/IPFIX and
// sFlow v5) on UDP, decodes them and hands the records to a consumer in
// batches.
//
// Each listener has a primary reader. While traffic flows it sleeps
// PollInterval between reads and takes everything waiting with one
// recvmmsg(2), decodes it on its own goroutine and delivers the records:
// one wake-up for tens of datagrams and no goroutine hand-off, which is
// what keeps the CPU per record low (see reader.go). When it falls behind
// it hands datagrams to a pool of workers through a queue bounded by
// datagrams and bytes, dropping and counting when that is full; when the
// consumer holds it up, a standby reader takes the socket over and feeds
// the workers. Datagrams carrying v9/IPFIX templates are always decoded by
// the reader that read them, before its next read, so templates are
// installed in arrival order. An export flood can never stall or bloat the
// daemon, and everything that moves is counted, globally and per exporter.
// With Exporters set, a datagram from any other source is dropped as it is
// read, before decoding, and counted per source (sources.go).
package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/flow"
)

// Decoder turns one datagram into records. Implementations must be safe for
// concurrent use; the collector calls Decode from several goroutines.
// flow/netflow and flow/sflow decoders satisfy it.
type Decoder interface {
	Decode(dg *flow.Datagram, rec *flow.Record, sink flow.Sink)
}

// Consumer receives decoded records. Consume is called concurrently from
// every worker; records is only valid until Consume returns (the collector
// reuses the slice), so a consumer copies what it keeps. A slow Consume
// slows the workers, and the collector then drops datagrams rather than wait.
type Consumer interface {
	Consume(records []flow.Record)
}

// discard is the consumer of a collector given none: records are counted
// and dropped.
type discard struct{}

func (discard) Consume([]flow.Record) {}

// Decoders wires the format decoders into the collector. A nil decoder
// disables that listener even when its address is set.
type Decoders struct {
	NetFlow Decoder
	// NetFlowInOrder reports whether a NetFlow datagram must be decoded in
	// arrival order (netflow.CarriesTemplates: v9/IPFIX template sets). Such
	// datagrams are decoded on the reader goroutine. May be nil.
	NetFlowInOrder func(payload []byte) bool
	SFlow          Decoder
	SFlowInOrder   func(payload []byte) bool
}

// Configuration of the collector.
type Configuration struct {
	// NetFlowListen and SFlowListen are UDP addresses (":2055"); empty
	// disables the listener.
	NetFlowListen string
	SFlowListen   string
	// Workers is the number of decode goroutines (default runtime.NumCPU()).
	Workers int
	// QueueDatagrams bounds the number of datagrams waiting for a worker.
	QueueDatagrams int
	// QueueBytes bounds the payload bytes waiting for a worker, so hostile
	// 64 KiB datagrams cannot multiply the queue's memory.
	QueueBytes int
	// ReceiveBuffer is the socket receive buffer requested (SO_RCVBUF, or
	// SO_RCVBUFFORCE when privileged); 0 leaves the system default. The
	// effective size is reported and a kernel cap is logged as a warning.
	ReceiveBuffer int
	// DefaultSamplingRate fills Record.SamplingRate when the exporter did
	// not announce one (SAMPLING_RATE). 0 is taken as 1.
	DefaultSamplingRate uint32
	// BatchRecords is the most records handed to the consumer in one call;
	// a batch is also handed over at the end of every datagram.
	BatchRecords int
	// MaxExporters bounds the per-exporter statistics; datagrams from
	// further exporters are still decoded but counted only in the totals
	// and in exporters_overflow.
	MaxExporters int
	// PollInterval is the longest a reader sleeps between reads while
	// traffic flows (see reader); it shortens itself when the receive
	// buffer is small for the rate. Records wait at most this long, well
	// inside detection's one-second tick. 100 ms rather than 20: a poll's
	// records then hit each host several times, so detection's host state
	// stays in cache across a poll instead of being cold for nearly every
	// record (bench/daemon-throughput.sh on a /20: ~300 -> ~255 ns/record).
	PollInterval time.Duration
	// ReadBatch is the most datagrams one read (recvmmsg) takes.
	ReadBatch int
	// StallAfter is how long the consumer may hold a primary reader before
	// the standby reader takes the socket over.
	StallAfter time.Duration
	// Exporters are the source prefixes allowed to send flows (EXPORTERS).
	// A datagram from any other source is dropped before it is decoded and
	// counted, in total and per source (Stats.Refused). Empty: any source
	// is accepted, and Start warns.
	Exporters []netip.Prefix
	// MaxRefusedSources bounds the per-source counts of refused datagrams:
	// the least recently refused source is forgotten (and counted) to make
	// room for a new one.
	MaxRefusedSources int
}

// DefaultConfiguration returns the configuration used when nothing is set.
func DefaultConfiguration() Configuration {
	return Configuration{
		NetFlowListen:       ":2055",
		SFlowListen:         ":6343",
		Workers:             runtime.NumCPU(),
		QueueDatagrams:      4096,
		QueueBytes:          16 << 20,
		ReceiveBuffer:       32 << 20,
		DefaultSamplingRate: 1,
		BatchRecords:        256,
		MaxExporters:        4096,
		PollInterval:        100 * time.Millisecond,
		ReadBatch:           32,
		StallAfter:          20 * time.Millisecond,
		MaxRefusedSources:   256,
	}
}

// Protocol is the export protocol family a listener speaks.
type Protocol uint8

const (
	ProtocolNetFlow Protocol = iota // NetFlow v5, v9 and IPFIX
	ProtocolSFlow                   // sFlow v5
)

func (p Protocol) String() string {
	switch p {
	case ProtocolNetFlow:
		return "netflow"
	case ProtocolSFlow:
		return "sflow"
	}
	return "unknown"
}

// Collector owns the listeners, the queue and the workers.
type Collector struct {
	cfg      Configuration
	consumer Consumer
	log      *slog.Logger

	listeners []*listener
	queue     chan *packet
	pool      sync.Pool // *packet
	_         [64]byte
	queued    atomic.Int64 // payload bytes waiting in queue; written by readers and workers
	_         [56]byte     // keeps that cache line from the fields read on every datagram

	exporters exporterTable
	sources   sourceFilter // read on every datagram, never written after New
	refused   refusedTable
	totals    totals
	metrics   *metrics.Set

	lifecycle      sync.Mutex
	started        bool
	stopped        bool
	stopping       atomic.Bool
	done           chan struct{} // closed with the listeners
	closeOnce      sync.Once
	stopAfterFunc  func() bool
	readers        sync.WaitGroup
	workers        sync.WaitGroup
	lastPanicLog   atomic.Int64
	lastTakeover   atomic.Int64
	lastRefusedLog atomic.Int64
}

// New returns an inert collector; Start binds the sockets and runs it.
func New(cfg Configuration, decoders Decoders, consumer Consumer, logger *slog.Logger) *Collector {
	def := DefaultConfiguration()
	if cfg.Workers <= 0 {
		cfg.Workers = def.Workers
	}
	if cfg.QueueDatagrams <= 0 {
		cfg.QueueDatagrams = def.QueueDatagrams
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = def.QueueBytes
	}
	if cfg.DefaultSamplingRate == 0 {
		cfg.DefaultSamplingRate = 1
	}
	if cfg.BatchRecords <= 0 {
		cfg.BatchRecords = def.BatchRecords
	}
	if cfg.MaxExporters <= 0 {
		cfg.MaxExporters = def.MaxExporters
	}
	if cfg.PollInterval < 0 {
		cfg.PollInterval = 0 // a reader wakes per datagram
	} else if cfg.PollInterval == 0 {
		cfg.PollInterval = def.PollInterval
	}
	if cfg.ReadBatch <= 0 {
		cfg.ReadBatch = def.ReadBatch
	}
	if cfg.StallAfter <= 0 {
		cfg.StallAfter = def.StallAfter
	}
	if cfg.MaxRefusedSources <= 0 {
		cfg.MaxRefusedSources = def.MaxRefusedSources
	}
	if logger == nil {
		logger = slog.Default()
	}
	if consumer == nil {
		consumer = discard{}
	}
	c := &Collector{
		cfg:      cfg,
		consumer: consumer,
		log:      logger.With("component", "collector"),
	}
	c.queue = make(chan *packet, cfg.QueueDatagrams)
	c.done = make(chan struct{})
	c.pool.New = func() any { return new(packet) }
	c.exporters.init(cfg.MaxExporters)
	c.refused.init(cfg.MaxRefusedSources)
	var invalid []netip.Prefix
	c.sources, invalid = newSourceFilter(cfg.Exporters)
	if len(invalid) > 0 {
		c.log.Warn("EXPORTERS holds invalid prefixes; they admit no source", "invalid", len(invalid))
	}
	if cfg.NetFlowListen != "" && decoders.NetFlow != nil {
		c.listeners = append(c.listeners, &listener{
			protocol: ProtocolNetFlow, address: cfg.NetFlowListen, variable: "NETFLOW_LISTEN",
			decoder: decoders.NetFlow, inOrder: decoders.NetFlowInOrder,
		})
	}
	if cfg.SFlowListen != "" && decoders.SFlow != nil {
		c.listeners = append(c.listeners, &listener{
			protocol: ProtocolSFlow, address: cfg.SFlowListen, variable: "SFLOW_LISTEN",
			decoder: decoders.SFlow, inOrder: decoders.SFlowInOrder,
		})
	}
	if cfg.NetFlowListen != "" && decoders.NetFlow == nil || cfg.SFlowListen != "" && decoders.SFlow == nil {
		c.log.Warn("flow listener configured without a decoder is disabled",
			"netflow_listen", cfg.NetFlowListen, "netflow_decoder", decoders.NetFlow != nil,
			"sflow_listen", cfg.SFlowListen, "sflow_decoder", decoders.SFlow != nil)
	}
	c.metrics = metrics.NewSet()
	c.totals.register(c.metrics)
	c.metrics.NewGauge(`flowshield_collector_queue_datagrams`, func() float64 { return float64(len(c.queue)) })
	c.metrics.NewGauge(`flowshield_collector_queue_bytes`, func() float64 { return float64(c.queued.Load()) })
	c.metrics.NewGauge(`flowshield_collector_refused_sources`, func() float64 { return float64(c.refused.len()) })
	c.metrics.RegisterMetricsWriter(c.writeMetrics)
	return c
}

// Start binds the listeners and starts the readers and workers. Cancelling
// ctx closes the listeners; Stop must still be called to release the rest.
// A bind failure is returned naming the setting and the address.
func (c *Collector) Start(ctx context.Context) error {
	c.lifecycle.Lock()
	defer c.lifecycle.Unlock()
	if c.started {
		return errors.New("starting flow collector: already started")
	}
	primaries := make([]*reader, len(c.listeners))
	for i, l := range c.listeners {
		err := l.open(c.cfg.ReceiveBuffer, c.log)
		if err == nil {
			primaries[i], err = newPrimaryReader(c, l)
			if err != nil {
				l.sock.close()
				err = fmt.Errorf("reading %s=%q: %w", l.variable, l.address, err)
			}
		}
		if err != nil {
			for _, opened := range c.listeners[:i] {
				opened.sock.close()
			}
			return fmt.Errorf("starting flow collector: %w", err)
		}
	}
	c.started = true
	for range c.cfg.Workers {
		w := newWorker(c)
		c.workers.Add(1)
		go func() {
			defer c.workers.Done()
			w.run()
		}()
	}
	for i, l := range c.listeners {
		l.up.Store(true)
		primary := primaries[i]
		c.readers.Add(1)
		go func() {
			defer c.readers.Done()
			primary.run()
		}()
		if canPoll {
			c.readers.Add(1)
			go func() {
				defer c.readers.Done()
				newReader(c, l).runStandby(primary)
			}()
		}
	}
	c.stopAfterFunc = context.AfterFunc(ctx, c.closeListeners)
	metrics.RegisterSet(c.metrics)
	if !c.sources.restricted {
		// The configuration warns of it (at start and in check).
		c.log.Info("flow datagrams accepted from any source (EXPORTERS empty)")
	} else {
		c.log.Info("flow datagrams accepted only from EXPORTERS", "exporters", prefixList(c.cfg.Exporters))
	}
	return nil
}

func (c *Collector) closeListeners() {
	c.stopping.Store(true)
	c.closeOnce.Do(func() { close(c.done) })
	for _, l := range c.listeners {
		l.sock.shutdown() // closed in Stop, once no reader can use it
	}
}

// Stop closes the listeners, discards what is still queued (counted as
// dropped) and waits for every goroutine to end. It waits for a Consume call
// in progress to return. Stop is idempotent.
func (c *Collector) Stop() {
	c.lifecycle.Lock()
	defer c.lifecycle.Unlock()
	if !c.started || c.stopped {
		return
	}
	c.stopped = true
	c.stopAfterFunc()
	c.closeListeners()
	c.readers.Wait()
	for _, l := range c.listeners {
		l.sock.close()
	}
	// Readers are the only senders, so the queue can be closed now.
	close(c.queue)
	c.workers.Wait()
	metrics.UnregisterSet(c.metrics, false)
}

// Health returns nil while every configured listener is receiving.
func (c *Collector) Health() error {
	c.lifecycle.Lock()
	started, stopped := c.started, c.stopped
	c.lifecycle.Unlock()
	if !started {
		return errors.New("flow collector not started")
	}
	if stopped {
		return errors.New("flow collector stopped")
	}
	for _, l := range c.listeners {
		if err := l.health(); err != nil {
			return err
		}
	}
	return nil
}

// WritePrometheus writes the collector's metrics; they are also part of the
// global metrics.WritePrometheus output between Start and Stop.
func (c *Collector) WritePrometheus(w io.Writer) {
	c.metrics.WritePrometheus(w)
}

// LocalAddr returns the address a protocol's listener is bound to (useful
// with port 0), or the zero AddrPort when it is disabled or not started.
func (c *Collector) LocalAddr(p Protocol) netip.AddrPort {
	c.lifecycle.Lock()
	defer c.lifecycle.Unlock()
	for _, l := range c.listeners {
		if l.protocol == p && c.started {
			return l.local
		}
	}
	return netip.AddrPort{}
}

func prefixList(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
