//go:build !linux

package collector

import "time"

// pollClock outside Linux is never used for polling (canPoll is false);
// this keeps the reader portable.
type pollClock struct{}

func newPollClock() (*pollClock, error) { return &pollClock{}, nil }

func (p *pollClock) wait(d time.Duration) error { time.Sleep(d); return nil }

func (p *pollClock) stop() {}

func (p *pollClock) close() {}
