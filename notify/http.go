package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// httpPoster POSTs events as JSON with retries: network errors, 5xx and
// 429 are retried with doubling backoff; other 4xx are the receiver
// refusing this body, which a retry would not change.
type httpPoster struct {
	url    string
	client *http.Client
	cfg    *Configuration
	c      sinkCounters
	accept func(Event) bool
	body   func(Event) ([]byte, error)
}

func (p *httpPoster) accepts(e Event) bool { return p.accept(e) }

// errPermanent marks an answer a retry would not change.
var errPermanent = errors.New("refused")

func (p *httpPoster) deliver(ctx context.Context, e Event) error {
	body, err := p.body(e)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", e.Kind, err)
	}
	backoff := p.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err = p.post(ctx, body)
		if err == nil || errors.Is(err, errPermanent) || attempt >= p.cfg.Retries || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, p.cfg.RetryMax)
		p.c.retries.Inc()
	}
}

func (p *httpPoster) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("making request to %s: %w: %w", redact(p.url), errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "flowshield")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to %s: %w", redact(p.url), unwrapURL(err))
	}
	defer drain(resp.Body)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return fmt.Errorf("posting to %s: %s", redact(p.url), resp.Status)
	default:
		return fmt.Errorf("posting to %s: %w: %s", redact(p.url), errPermanent, resp.Status)
	}
}

func webhookBody(e Event) ([]byte, error) { return json.Marshal(e) }
