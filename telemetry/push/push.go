// Package push sends the Prometheus text of the metrics registry to a URL
// (METRICS_PUSH_URL) at a fixed interval, for a VictoriaMetrics
// /api/v1/import/prometheus endpoint or a compatible one, retrying a failed
// push with backoff within its interval and counting what it does.
//
// The metrics library's own push (PushOptions in v1.44) can POST too, but
// it retries nothing, its errors carry the HTTP status only as text (a 400,
// which a retry cannot fix, could not be told from a 503 without matching
// messages), it reads an error answer whole into the error, and it takes
// no HTTP client: so the request is made here.
package push

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/flowshield/flowshield/telemetry/promtext"
)

// Configuration of the pusher.
type Configuration struct {
	URL      string        // METRICS_PUSH_URL; http or https
	Interval time.Duration // between pushes
	Timeout  time.Duration // per attempt
	Gzip     bool          // Content-Encoding: gzip (VictoriaMetrics accepts it)
	// Retries after a failed attempt, with a backoff doubling from
	// BackoffMin to BackoffMax; a push never runs past its interval.
	Retries    int
	BackoffMin time.Duration
	BackoffMax time.Duration
	// Client is the HTTP client; nil: a plain one (Timeout applies per attempt).
	Client *http.Client
}

// DefaultConfiguration pushes every 10 s, gzipped, with 3 retries from 0.5 s.
func DefaultConfiguration() Configuration {
	return Configuration{
		Interval: 10 * time.Second, Timeout: 5 * time.Second, Gzip: true,
		Retries: 3, BackoffMin: 500 * time.Millisecond, BackoffMax: 4 * time.Second,
	}
}

func (c *Configuration) validate() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("parsing the push URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("push URL %q: want http(s)://host[:port]/path", u.Redacted())
	}
	if c.Interval <= 0 || c.Timeout <= 0 || c.Retries < 0 || c.BackoffMin < 0 || c.BackoffMax < c.BackoffMin {
		return fmt.Errorf("push timing: interval %s, timeout %s, retries %d, backoff %s..%s: want positive interval and timeout, retries >= 0, 0 <= min <= max",
			c.Interval, c.Timeout, c.Retries, c.BackoffMin, c.BackoffMax)
	}
	return nil
}

// Pusher pushes the output of a write function.
type Pusher struct {
	cfg    Configuration
	write  func(io.Writer)
	log    *slog.Logger
	client *http.Client
	target string // the URL with any password redacted, for logs

	set                                 *metrics.Set
	pushes, failures, attempts, retries *metrics.Counter
	attemptErrors, bytesSent            *metrics.Counter
	lastSuccess                         *metrics.Gauge
	lastSuccessUnix                     float64
	mu                                  sync.Mutex // guards lastSuccessUnix and the run state below

	cancel context.CancelFunc
	done   chan struct{}
}

// New makes a pusher of the output of write (nil: the whole registry with
// process metrics, as /metrics serves it: promtext.WritePrometheus). It
// does nothing until Start or Push.
func New(cfg Configuration, write func(io.Writer), log *slog.Logger) *Pusher {
	if write == nil {
		// render writes to memory, which cannot fail
		write = func(w io.Writer) { _ = promtext.WritePrometheus(w) }
	}
	if log == nil {
		log = slog.Default()
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{}
	}
	target := cfg.URL
	if u, err := url.Parse(cfg.URL); err == nil {
		target = u.Redacted()
	}
	p := &Pusher{cfg: cfg, write: write, log: log.With("component", "metrics-push", "url", target), client: client, target: target}
	p.set = metrics.NewSet()
	p.pushes = p.set.NewCounter(`flowshield_metrics_push_total`)
	p.failures = p.set.NewCounter(`flowshield_metrics_push_failures_total`)
	p.attempts = p.set.NewCounter(`flowshield_metrics_push_attempts_total`)
	p.retries = p.set.NewCounter(`flowshield_metrics_push_retries_total`)
	p.attemptErrors = p.set.NewCounter(`flowshield_metrics_push_attempt_errors_total`)
	p.bytesSent = p.set.NewCounter(`flowshield_metrics_push_bytes_total`)
	p.lastSuccess = p.set.NewGauge(`flowshield_metrics_push_last_success_timestamp_seconds`, func() float64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.lastSuccessUnix
	})
	return p
}

// help documents the pusher's series (promtext fills their HELP lines).
var help = map[string]string{
	"flowshield_metrics_push_total":                          "Pushes of the metrics, each one body sent with its retries.",
	"flowshield_metrics_push_failures_total":                 "Pushes given up: every attempt failed, or the body could not be made.",
	"flowshield_metrics_push_attempts_total":                 "HTTP POSTs of a push body, retries included.",
	"flowshield_metrics_push_retries_total":                  "HTTP POSTs after the first of a push.",
	"flowshield_metrics_push_attempt_errors_total":           "HTTP POSTs that failed (network error or a status other than 2xx).",
	"flowshield_metrics_push_bytes_total":                    "Bytes of push bodies accepted by the receiver (after gzip when on).",
	"flowshield_metrics_push_last_success_timestamp_seconds": "When a push last succeeded, in seconds since the Unix epoch; 0 before the first.",
}

func init() { promtext.Describe(help) }

// SeriesNames are the metric names the pusher counts with.
func SeriesNames() []string {
	return New(Configuration{}, nil, nil).set.ListMetricNames()
}

// Metrics is the pusher's own set (flowshield_metrics_push_*), for
// metrics.RegisterSet.
func (p *Pusher) Metrics() *metrics.Set { return p.set }

// Start checks the configuration and pushes every Interval until ctx ends
// or Stop.
func (p *Pusher) Start(ctx context.Context) error {
	if err := p.cfg.validate(); err != nil {
		return fmt.Errorf("starting the metrics push: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		return errors.New("starting the metrics push: already started")
	}
	ctx, p.cancel = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go p.run(ctx, p.done)
	p.log.Info("pushing metrics", "interval", p.cfg.Interval, "gzip", p.cfg.Gzip)
	return nil
}

// Stop ends the pushing and waits for a push under way to give up.
func (p *Pusher) Stop() {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (p *Pusher) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A push gets at most one interval, retries included: the next one
		// carries fresher values anyway.
		pctx, cancel := context.WithTimeout(ctx, p.cfg.Interval)
		if err := p.Push(pctx); err != nil && ctx.Err() == nil {
			p.log.Warn("metrics push failed", "err", err)
		}
		cancel()
	}
}

// Push renders the metrics once and sends them, retrying a failed attempt
// (network error, 5xx, 429) with backoff while ctx allows. A 4xx other than
// 429 is not retried: the same body would be refused again.
func (p *Pusher) Push(ctx context.Context) error {
	body, err := p.render()
	if err != nil {
		p.pushes.Inc()
		p.failures.Inc()
		return err
	}
	p.pushes.Inc()
	backoff := p.cfg.BackoffMin
	for attempt := 0; ; attempt++ {
		retryable, err := p.attempt(ctx, body)
		if err == nil {
			p.bytesSent.Add(len(body))
			p.mu.Lock()
			p.lastSuccessUnix = float64(time.Now().UnixNano()) / 1e9
			p.mu.Unlock()
			return nil
		}
		p.attemptErrors.Inc()
		if !retryable || attempt >= p.cfg.Retries {
			p.failures.Inc()
			return fmt.Errorf("pushing metrics to %s after %d attempts: %w", p.target, attempt+1, err)
		}
		select {
		case <-ctx.Done():
			p.failures.Inc()
			return fmt.Errorf("pushing metrics to %s: gave up waiting to retry: %w (last error: %w)", p.target, ctx.Err(), err)
		case <-time.After(backoff):
		}
		p.retries.Inc()
		backoff = min(2*backoff, p.cfg.BackoffMax)
	}
}

func (p *Pusher) render() ([]byte, error) {
	var buf bytes.Buffer
	if !p.cfg.Gzip {
		p.write(&buf)
		return buf.Bytes(), nil
	}
	zw := gzip.NewWriter(&buf)
	p.write(zw)
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing metrics: %w", err)
	}
	return buf.Bytes(), nil
}

// attempt POSTs body once; it says whether a failure is worth retrying.
func (p *Pusher) attempt(ctx context.Context, body []byte) (retryable bool, err error) {
	p.attempts.Inc()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("making the request: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if p.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	retryable = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return retryable, fmt.Errorf("status %s: %s", resp.Status, bytes.TrimSpace(msg))
}
