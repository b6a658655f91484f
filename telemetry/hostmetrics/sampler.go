package hostmetrics

import (
	"sync"
	"time"

	"github.com/flowshield/flowshield/detect"
)

// Snapshot is one reading of the source. It is never changed after it is
// made, so readers may share it.
type Snapshot struct {
	At       time.Time
	Top      Top
	In, Out  detect.Rates
	Networks []detect.NetworkRates // nil unless the source is a NetworkSource
}

// Sampler takes Snapshots of a Source, at most one per MaxAge: every
// exporter asking within MaxAge of the last reading shares it.
type Sampler struct {
	src    Source
	topN   int
	maxAge time.Duration
	now    func() time.Time

	mu    sync.Mutex // held while reading, so concurrent askers wait instead of reading twice
	last  *Snapshot
	asked time.Time // last Sample call
}

// NewSampler makes a Sampler of the topN hosts per direction and sort key;
// maxAge <= 0 reads the source on every call. now may be nil (time.Now).
func NewSampler(src Source, topN int, maxAge time.Duration, now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	return &Sampler{src: src, topN: topN, maxAge: maxAge, now: now}
}

// Sample returns the last Snapshot if it is younger than MaxAge, else a new one.
func (s *Sampler) Sample() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.asked = now
	if s.last != nil && s.maxAge > 0 && now.Sub(s.last.At) < s.maxAge && !now.Before(s.last.At) {
		return s.last
	}
	return s.readLocked(now)
}

// Refresh takes a new Snapshot now, whatever the age of the last one. The
// daemon calls it right after each detection tick, on the detection
// goroutine, so that a scrape of /metrics or a Graphite send only copies a
// ready snapshot instead of walking every host.
func (s *Sampler) Refresh() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readLocked(s.now())
}

// RefreshIfAsked is Refresh, but only while someone uses the snapshots: if
// Sample was called within the last `within`. Otherwise it returns nil and
// costs nothing, so a daemon that nobody scrapes (and that sends no
// Graphite or push) does not walk every host every second for nothing.
func (s *Sampler) RefreshIfAsked(within time.Duration) *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.asked.IsZero() || now.Sub(s.asked) > within {
		return nil
	}
	return s.readLocked(now)
}

func (s *Sampler) readLocked(now time.Time) *Snapshot {
	snap := &Snapshot{At: now, Top: SelectTop(s.src, s.topN)}
	snap.In, snap.Out = s.src.Totals()
	if ns, ok := s.src.(NetworkSource); ok {
		snap.Networks = ns.Networks()
	}
	s.last = snap
	return snap
}
