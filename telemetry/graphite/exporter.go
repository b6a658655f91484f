package graphite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/telemetry/hostmetrics"
	"github.com/flowshield/flowshield/telemetry/promtext"
)

// Configuration of the Graphite output.
type Configuration struct {
	Address  string        // GRAPHITE_ADDRESS, host:port of a plaintext (carbon) receiver
	Prefix   string        // GRAPHITE_PREFIX; FastNetMon's default is "fastnetmon"
	Interval time.Duration // between sends; FastNetMon's graphite_push_period is 1 s

	DialTimeout  time.Duration
	WriteTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the doubling wait between failed
	// connection attempts.
	ReconnectMin, ReconnectMax time.Duration
	// BufferBytes bounds what is kept while the receiver is away: past it
	// the oldest lines are dropped (and counted), the newest kept.
	BufferBytes int
}

// DefaultConfiguration sends every second with the prefix "flowshield".
func DefaultConfiguration() Configuration {
	return Configuration{
		Prefix: "flowshield", Interval: time.Second,
		DialTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
		ReconnectMin: time.Second, ReconnectMax: 30 * time.Second,
		BufferBytes: 4 << 20,
	}
}

func (c *Configuration) validate() error {
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return fmt.Errorf("graphite address %q: want host:port: %w", c.Address, err)
	}
	if _, err := ParseLine(c.Prefix + " 0 0"); err != nil || c.Prefix == "" {
		return fmt.Errorf("graphite prefix %q: want dot-separated words without spaces", c.Prefix)
	}
	if c.Interval <= 0 || c.DialTimeout <= 0 || c.WriteTimeout <= 0 || c.ReconnectMin <= 0 || c.ReconnectMax < c.ReconnectMin || c.BufferBytes <= 0 {
		return fmt.Errorf("graphite timing or buffer: interval %s, dial %s, write %s, reconnect %s..%s, buffer %d: want all positive and min <= max",
			c.Interval, c.DialTimeout, c.WriteTimeout, c.ReconnectMin, c.ReconnectMax, c.BufferBytes)
	}
	return nil
}

// Snapshotter is what the exporter reads; *hostmetrics.Sampler satisfies it.
type Snapshotter interface {
	Sample() *hostmetrics.Snapshot
}

// Exporter sends a snapshot every Interval over one TCP connection, made
// again after a failure.
type Exporter struct {
	cfg Configuration
	src Snapshotter
	log *slog.Logger

	set                                    *metrics.Set
	batches, sentLines, sentBytes, dropped *metrics.Counter
	connects, connectErrors, writeErrors   *metrics.Counter
	pendingBytes                           atomic.Int64 // for the gauges
	connected                              atomic.Bool
	mu                                     sync.Mutex // guards everything below
	pending                                []byte     // whole lines not yet written
	conn                                   net.Conn
	nextDial                               time.Time
	backoff                                time.Duration
	cancel                                 context.CancelFunc
	done                                   chan struct{}
}

// New makes an exporter reading src (usually the hostmetrics.Sampler that
// /metrics also reads). It does nothing until Start.
func New(cfg Configuration, src Snapshotter, log *slog.Logger) *Exporter {
	if log == nil {
		log = slog.Default()
	}
	e := &Exporter{cfg: cfg, src: src, log: log.With("component", "graphite", "address", cfg.Address)}
	e.set = metrics.NewSet()
	e.batches = e.set.NewCounter(`flowshield_graphite_batches_total`)
	e.sentLines = e.set.NewCounter(`flowshield_graphite_sent_lines_total`)
	e.sentBytes = e.set.NewCounter(`flowshield_graphite_sent_bytes_total`)
	e.dropped = e.set.NewCounter(`flowshield_graphite_dropped_lines_total`)
	e.connects = e.set.NewCounter(`flowshield_graphite_connects_total`)
	e.connectErrors = e.set.NewCounter(`flowshield_graphite_connect_errors_total`)
	e.writeErrors = e.set.NewCounter(`flowshield_graphite_write_errors_total`)
	// atomics, not e.mu: a scrape must not wait for a slow write
	e.set.NewGauge(`flowshield_graphite_pending_bytes`, func() float64 { return float64(e.pendingBytes.Load()) })
	e.set.NewGauge(`flowshield_graphite_connected`, func() float64 {
		if e.connected.Load() {
			return 1
		}
		return 0
	})
	return e
}

// help documents the exporter's series (promtext fills their HELP lines).
var help = map[string]string{
	"flowshield_graphite_batches_total":        "Batches of Graphite lines made from a snapshot (one a second by default).",
	"flowshield_graphite_sent_lines_total":     "Graphite lines written to the receiver.",
	"flowshield_graphite_sent_bytes_total":     "Bytes of Graphite lines written to the receiver.",
	"flowshield_graphite_dropped_lines_total":  "Graphite lines dropped because the pending buffer was full (the receiver too slow or away).",
	"flowshield_graphite_connects_total":       "TCP connections made to the Graphite receiver.",
	"flowshield_graphite_connect_errors_total": "Failed TCP connection attempts to the Graphite receiver.",
	"flowshield_graphite_write_errors_total":   "Writes to the Graphite receiver that failed (the connection is made again).",
	"flowshield_graphite_pending_bytes":        "Bytes of Graphite lines waiting to be written.",
	"flowshield_graphite_connected":            "1 while a connection to the Graphite receiver is open, else 0.",
}

func init() { promtext.Describe(help) }

// SeriesNames are the metric names the exporter counts with.
func SeriesNames() []string {
	return []string{"flowshield_graphite_batches_total", "flowshield_graphite_sent_lines_total",
		"flowshield_graphite_sent_bytes_total", "flowshield_graphite_dropped_lines_total",
		"flowshield_graphite_connects_total", "flowshield_graphite_connect_errors_total",
		"flowshield_graphite_write_errors_total", "flowshield_graphite_pending_bytes", "flowshield_graphite_connected"}
}

// Metrics is the exporter's own set (flowshield_graphite_*), for metrics.RegisterSet.
func (e *Exporter) Metrics() *metrics.Set { return e.set }

// Start checks the configuration and sends every Interval until ctx ends
// or Stop. The receiver need not be up: it is dialled when a batch is due.
func (e *Exporter) Start(ctx context.Context) error {
	if err := e.cfg.validate(); err != nil {
		return fmt.Errorf("starting the graphite output: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done != nil {
		return errors.New("starting the graphite output: already started")
	}
	ctx, e.cancel = context.WithCancel(ctx)
	e.done = make(chan struct{})
	go e.run(ctx, e.done)
	e.log.Info("sending to graphite", "prefix", e.cfg.Prefix, "interval", e.cfg.Interval)
	return nil
}

// Stop ends the sending, closes the connection and waits.
func (e *Exporter) Stop() {
	e.mu.Lock()
	cancel, done := e.cancel, e.done
	e.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		_ = e.conn.Close()
		e.conn = nil
		e.connected.Store(false)
	}
}

func (e *Exporter) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.SendOnce(ctx)
	}
}

// SendOnce takes a snapshot, queues its lines and writes what is queued,
// connecting first if needed. Failures are counted and logged; the lines
// stay queued (within BufferBytes) for the next time.
func (e *Exporter) SendOnce(ctx context.Context) {
	snap := e.src.Sample()
	e.mu.Lock()
	defer e.mu.Unlock()
	defer func() {
		e.pendingBytes.Store(int64(len(e.pending)))
		e.connected.Store(e.conn != nil)
	}()
	e.batches.Inc()
	e.pending = AppendLines(e.pending, e.cfg.Prefix, snap, snap.At.Unix())
	e.trim()
	if e.conn == nil && !e.dial(ctx) {
		return
	}
	_ = e.conn.SetWriteDeadline(time.Now().Add(e.cfg.WriteTimeout))
	n, err := e.conn.Write(e.pending)
	// What was written in full lines is gone; a partial line is resent
	// whole on the next connection (the receiver drops the broken one with
	// the old connection).
	sent := bytes.LastIndexByte(e.pending[:n], '\n') + 1
	e.sentLines.Add(bytes.Count(e.pending[:sent], []byte{'\n'}))
	e.sentBytes.Add(sent)
	e.pending = append(e.pending[:0], e.pending[sent:]...)
	if err != nil {
		e.writeErrors.Inc()
		e.log.Warn("writing to graphite failed; reconnecting", "err", err, "pending_bytes", len(e.pending))
		_ = e.conn.Close()
		e.conn = nil
	}
}

// trim drops the oldest whole lines past BufferBytes.
func (e *Exporter) trim() {
	over := len(e.pending) - e.cfg.BufferBytes
	if over <= 0 {
		return
	}
	cut := bytes.IndexByte(e.pending[over:], '\n')
	if cut < 0 {
		cut = len(e.pending)
	} else {
		cut += over + 1
	}
	e.dropped.Add(bytes.Count(e.pending[:cut], []byte{'\n'}))
	e.pending = append(e.pending[:0], e.pending[cut:]...)
}

// dial connects unless a failed attempt was too recent; it says whether
// there is a connection.
func (e *Exporter) dial(ctx context.Context) bool {
	now := time.Now()
	if now.Before(e.nextDial) {
		return false
	}
	d := net.Dialer{Timeout: e.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", e.cfg.Address)
	if err != nil {
		e.connectErrors.Inc()
		e.backoff = min(max(2*e.backoff, e.cfg.ReconnectMin), e.cfg.ReconnectMax)
		e.nextDial = now.Add(e.backoff)
		e.log.Warn("connecting to graphite failed", "err", err, "retry_in", e.backoff, "pending_bytes", len(e.pending))
		return false
	}
	e.connects.Inc()
	e.backoff, e.nextDial = 0, time.Time{}
	e.conn = c
	e.log.Debug("connected to graphite")
	return true
}
