// Package notify tells the operator's tools about attacks and bans: the
// NOTIFY_SCRIPT with FastNetMon's argument and stdin contract, a JSON
// WEBHOOK_URL and a SLACK_WEBHOOK_URL.
//
// Every sink has its own bounded queue and one worker, so events reach a
// sink in the order they happened (a script sees ban before unban) and a
// slow or dead sink delays neither the others nor the caller: Notify never
// blocks. When a queue is full, informational events go first and unbans
// and attack ends are never dropped to make room for bans (queue.go has
// the rules); every drop is counted per sink and per event kind.
//
// The script runs with a clean environment (scriptEnv): PATH, HOME, the
// locale and time zone, and the proxy and CA settings its HTTP tools need,
// and no FLOWSHIELD_ variable at all, since several hold secrets (router
// password, API token, webhook URLs) or name secret files.
//
// What each sink gets:
//   - script: ban, unban and attack_details of one host or prefix (not
//     escalate: FastNetMon's contract has no such action); group
//     scope events (ip null) are skipped and counted, the script contract
//     needs an address. No retries: a ban script run twice could act
//     twice.
//   - webhook: every event; retried with backoff on network errors, 5xx
//     and 429, not on other 4xx.
//   - Slack: ban and escalate (danger, red), unban (good, green), attack_details
//     (warning, yellow) and ban_skipped (grey: an attack left unmitigated)
//     by default; attack_start and attack_end are skipped, their news is in
//     attack_details and unban (Configuration.SlackEvents changes this).
package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Configuration of the notifier. An empty Script, WebhookURL or SlackURL
// disables that sink.
type Configuration struct {
	Script        string        // NOTIFY_SCRIPT
	ScriptTimeout time.Duration // the script's process group is killed after this
	WebhookURL    string        // WEBHOOK_URL
	SlackURL      string        // SLACK_WEBHOOK_URL
	SlackEvents   []Kind        // what Slack gets; nil: DefaultSlackEvents

	// QueueSize bounds each sink's queue; unbans and attack ends may use
	// as many slots again (queue.go).
	QueueSize    int
	Retries      int           // HTTP retries after the first attempt; 0: the default, <0: none
	RetryBackoff time.Duration // first retry delay, doubled each time ...
	RetryMax     time.Duration // ... up to this
	HTTPTimeout  time.Duration // per HTTP attempt
	// HTTPClient, when set, sends the webhook and Slack requests (tests,
	// proxies); HTTPTimeout still bounds every attempt.
	HTTPClient *http.Client
	// StopTimeout bounds how long Stop lets the workers drain their queues.
	StopTimeout time.Duration
}

// DefaultSlackEvents are the events Slack gets by default.
var DefaultSlackEvents = []Kind{KindBan, KindEscalate, KindUnban, KindAttackDetails, KindBanSkipped}

// DefaultConfiguration has no sink enabled.
func DefaultConfiguration() Configuration {
	return Configuration{
		ScriptTimeout: 30 * time.Second,
		QueueSize:     256,
		Retries:       3,
		RetryBackoff:  time.Second,
		RetryMax:      30 * time.Second,
		HTTPTimeout:   10 * time.Second,
		StopTimeout:   5 * time.Second,
	}
}

// Sink names, as in Stats and the metrics' sink label.
const (
	SinkScript  = "script"
	SinkWebhook = "webhook"
	SinkSlack   = "slack"
)

// SinkStats count what one sink did since start.
type SinkStats struct {
	Sent    uint64 // delivered (script: exit status 0)
	Failed  uint64 // given up: script error, non-zero exit or timeout; HTTP error after the retries
	Dropped uint64 // queue full, or still queued at Stop: the sum of DroppedByKind
	// DroppedByKind breaks Dropped down by event kind; it has every kind
	// the sink takes, zero or not, and any other it dropped.
	DroppedByKind map[Kind]uint64
	// Superseded counts the dropped bans that a later queued unban of the
	// same prefix and direction made moot (also in Dropped): harmless.
	Superseded uint64
	Retries    uint64 // HTTP attempts after the first
	Skipped    uint64 // script: events with no address to pass
	Timeouts   uint64 // script: killed after ScriptTimeout (also counted in Failed)
	Queued     int    // waiting now
}

// Stats of every sink; a disabled sink reads zero.
type Stats struct {
	Script, Webhook, Slack SinkStats
}

// deliverer is what a sink does with one event.
type deliverer interface {
	accepts(Event) bool
	deliver(ctx context.Context, e Event) error
}

type sinkCounters struct {
	sent, failed, dropped, superseded, retries, skipped, timeouts *metrics.Counter
}

type sink struct {
	name  string
	queue *queue
	d     deliverer
	c     sinkCounters
	set   *metrics.Set
	// droppedKind has a counter per kind the sink takes from New on, and
	// one per other kind once dropped.
	mu          sync.Mutex
	droppedKind map[Kind]*metrics.Counter
	lastWarn    atomic.Int64 // unix nanoseconds of the last "queue full" warning
}

func (s *sink) stats() SinkStats {
	s.mu.Lock()
	byKind := make(map[Kind]uint64, len(s.droppedKind))
	for k, c := range s.droppedKind {
		byKind[k] = c.Get()
	}
	s.mu.Unlock()
	return SinkStats{
		Sent: s.c.sent.Get(), Failed: s.c.failed.Get(), Dropped: s.c.dropped.Get(), DroppedByKind: byKind,
		Superseded: s.c.superseded.Get(), Retries: s.c.retries.Get(), Skipped: s.c.skipped.Get(),
		Timeouts: s.c.timeouts.Get(), Queued: s.queue.len(),
	}
}

// dropped counts an event the sink will never get.
func (s *sink) dropped(e Event, superseded bool) {
	s.c.dropped.Inc()
	if superseded {
		s.c.superseded.Inc()
	}
	s.mu.Lock()
	c := s.droppedKind[e.Kind]
	if c == nil {
		c = s.set.GetOrCreateCounter(droppedKindName(s.name, e.Kind))
		s.droppedKind[e.Kind] = c
	}
	s.mu.Unlock()
	c.Inc()
}

func droppedKindName(sink string, k Kind) string {
	return fmt.Sprintf(`flowshield_notify_dropped_events_total{sink=%q,event=%q}`, sink, k)
}

// allKinds are the kinds the webhook takes.
var allKinds = []Kind{KindAttackStart, KindAttackDetails, KindBan, KindBanSkipped, KindEscalate, KindUnban, KindAttackEnd}

// scriptKinds are the kinds the script takes: FastNetMon's contract has no
// escalate action, and a second "ban" for a host already banned would make
// a script that adds a ban add it twice, so an escalation is not sent to
// it (the webhook and Slack carry it).
var scriptKinds = []Kind{KindBan, KindUnban, KindAttackDetails}

// Notifier queues events for the configured sinks.
type Notifier struct {
	cfg   Configuration
	log   *slog.Logger
	set   *metrics.Set
	sinks []*sink

	mu      sync.Mutex // guards started, stopped and cancel
	stopped bool
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New makes a notifier; nothing runs before Start, but Notify already
// queues. Zero fields of cfg take DefaultConfiguration's values.
func New(cfg Configuration, log *slog.Logger) *Notifier {
	def := DefaultConfiguration()
	if cfg.ScriptTimeout <= 0 {
		cfg.ScriptTimeout = def.ScriptTimeout
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = def.QueueSize
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = def.Retries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = def.RetryBackoff
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = def.RetryMax
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = def.HTTPTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = def.StopTimeout
	}
	if cfg.SlackEvents == nil {
		cfg.SlackEvents = DefaultSlackEvents
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{cfg: cfg, log: log.With("component", "notify"), set: metrics.NewSet()}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.HTTPTimeout}
	}
	if cfg.Script != "" {
		n.addSink(SinkScript, scriptKinds, func(c sinkCounters) deliverer {
			return &scriptRunner{path: cfg.Script, timeout: cfg.ScriptTimeout, log: n.log, c: c}
		})
	}
	if cfg.WebhookURL != "" {
		n.addSink(SinkWebhook, allKinds, func(c sinkCounters) deliverer {
			return &httpPoster{
				url: cfg.WebhookURL, client: client, cfg: &n.cfg, c: c,
				accept: func(Event) bool { return true }, body: webhookBody,
			}
		})
	}
	if cfg.SlackURL != "" {
		kinds := slices.Clone(cfg.SlackEvents)
		n.addSink(SinkSlack, kinds, func(c sinkCounters) deliverer {
			return &httpPoster{
				url: cfg.SlackURL, client: client, cfg: &n.cfg, c: c,
				accept: func(e Event) bool { return slices.Contains(kinds, e.Kind) }, body: slackBody,
			}
		})
	}
	return n
}

func (n *Notifier) addSink(name string, kinds []Kind, mk func(sinkCounters) deliverer) {
	label := func(metric string) string { return fmt.Sprintf(`flowshield_notify_%s{sink=%q}`, metric, name) }
	c := sinkCounters{
		sent:       n.set.GetOrCreateCounter(label("sent_total")),
		failed:     n.set.GetOrCreateCounter(label("failed_total")),
		dropped:    n.set.GetOrCreateCounter(label("dropped_total")),
		superseded: n.set.GetOrCreateCounter(label("superseded_bans_total")),
		retries:    n.set.GetOrCreateCounter(label("retries_total")),
		skipped:    n.set.GetOrCreateCounter(label("skipped_total")),
		timeouts:   n.set.GetOrCreateCounter(label("timeouts_total")),
	}
	s := &sink{name: name, queue: newQueue(n.cfg.QueueSize), c: c, set: n.set, droppedKind: map[Kind]*metrics.Counter{}}
	for _, k := range kinds {
		s.droppedKind[k] = n.set.GetOrCreateCounter(droppedKindName(name, k))
	}
	s.d = mk(c)
	n.set.GetOrCreateGauge(label("queue_length"), func() float64 { return float64(s.queue.len()) })
	n.sinks = append(n.sinks, s)
}

// Metrics is the notifier's own metrics set (flowshield_notify_*{sink=...}),
// for metrics.RegisterSet. Every notifier has its own, so tests may make
// many.
func (n *Notifier) Metrics() *metrics.Set { return n.set }

// Enabled says whether any sink is configured.
func (n *Notifier) Enabled() bool { return len(n.sinks) > 0 }

// Start runs a worker per sink until ctx ends or Stop.
func (n *Notifier) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopped {
		return errors.New("starting notifier: already started or stopped")
	}
	n.started = true
	ctx, n.cancel = context.WithCancel(ctx)
	for _, s := range n.sinks {
		n.wg.Add(1)
		go n.work(ctx, s)
	}
	n.log.Debug("notifier started", "sinks", len(n.sinks))
	return nil
}

// Stop closes the queues, lets the workers drain them for at most
// StopTimeout, then cancels what is still running (killing a script) and
// counts what is left as dropped. Notify after Stop drops.
func (n *Notifier) Stop() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	for _, s := range n.sinks {
		s.queue.close()
	}
	started, cancel := n.started, n.cancel
	n.mu.Unlock()
	if !started {
		n.dropRest()
		return
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	t := time.NewTimer(n.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		n.log.Warn("notifier: stop timeout, abandoning queued notifications", "timeout", n.cfg.StopTimeout)
	}
	cancel()
	<-done
	n.dropRest()
}

// dropRest counts what the workers did not take. Queues are closed.
func (n *Notifier) dropRest() {
	for _, s := range n.sinks {
		for _, e := range s.queue.takeAll() {
			s.dropped(e, false)
		}
	}
}

func (n *Notifier) work(ctx context.Context, s *sink) {
	defer n.wg.Done()
	for {
		e, ok := s.queue.pop(ctx)
		if !ok {
			return
		}
		if ctx.Err() != nil {
			s.dropped(e, false)
			return
		}
		if err := s.d.deliver(ctx, e); err != nil {
			s.c.failed.Inc()
			n.log.Warn("notification failed", "sink", s.name, "event", e.Kind, "attack_id", e.AttackID, "ip", e.Target(), "error", err)
			continue
		}
		s.c.sent.Inc()
	}
}

// Notify queues e for every sink that takes it, without waiting: a full
// queue drops an event (this one or an earlier one, by the rules of
// queue.go) and counts it. A zero Time becomes now.
func (n *Notifier) Notify(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	for _, s := range n.sinks {
		if !s.d.accepts(e) {
			if s.name == SinkScript && isScriptKind(e.Kind) {
				s.c.skipped.Inc() // a script event with no address
			}
			continue
		}
		d, dropped := s.queue.push(e)
		if !dropped {
			continue
		}
		s.dropped(d.e, d.superseded)
		if !d.closed {
			n.warnDrop(s, d)
		}
	}
}

// warnDrop logs a full queue at most once a minute per sink: a flood of
// drops must not flood the log (the counters have them all). The loss of
// an unban is an error: the script's router keeps that ban.
func (n *Notifier) warnDrop(s *sink, d drop) {
	if d.e.Kind == KindUnban {
		n.log.Error("notification queue full of unbans, one is lost", "sink", s.name, "ip", d.e.Target(),
			"direction", d.e.Direction, "queue_limit", s.queue.limit)
		return
	}
	now := time.Now().UnixNano()
	last := s.lastWarn.Load()
	if now-last < int64(time.Minute) || !s.lastWarn.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("notification queue full, dropping", "sink", s.name, "queue_size", s.queue.size,
		"event", d.e.Kind, "dropped_total", s.c.dropped.Get())
}

// Stats reads the counters.
func (n *Notifier) Stats() Stats {
	var st Stats
	for _, s := range n.sinks {
		switch s.name {
		case SinkScript:
			st.Script = s.stats()
		case SinkWebhook:
			st.Webhook = s.stats()
		case SinkSlack:
			st.Slack = s.stats()
		}
	}
	return st
}

// drain reads and discards a bounded part of a response body so the
// connection can be reused.
func drain(r io.ReadCloser) {
	io.Copy(io.Discard, io.LimitReader(r, 64<<10))
	r.Close()
}
