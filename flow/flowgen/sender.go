package flowgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// SenderConfiguration sets up a Sender.
type SenderConfiguration struct {
	// Target is the collector, host:port.
	Target string
	// SourceAddr is the local host:port to send from ("" lets the system
	// choose); fix it to test a collector's per-exporter state.
	SourceAddr string
	Encoder    EncoderConfiguration
	// RecordsPerSecond paces the default source (a background scenario
	// over Prefix, sampled at SamplingRate) when NewSender gets no Source.
	RecordsPerSecond int
	Prefix           netip.Prefix
	SamplingRate     uint32
	Seed             uint64
	// Duration and Count bound the run; at least one must be set. Count
	// is exact in paced mode and an upper bound in blast mode (whole
	// datagrams only).
	Duration time.Duration
	Count    uint64
	// Blast pre-encodes BlastDatagrams datagrams from the source's first
	// seconds and sends them round-robin as fast as BlastWorkers sockets
	// can, for overload tests. Flow times are those of the pre-encoding.
	Blast          bool
	BlastWorkers   int
	BlastDatagrams int
	// HostPrefix, when valid, makes Totals.PerHost count its hosts.
	HostPrefix netip.Prefix
	// Tick is how often the paced sender wakes up to send what is due.
	Tick time.Duration
	// WriteBuffer is the socket send buffer requested, in bytes.
	WriteBuffer int
	Logger      *slog.Logger
}

// DefaultSenderConfiguration sends RouterOS v9 to 127.0.0.1:2055 at 1,000
// records/s for 10 s.
func DefaultSenderConfiguration() SenderConfiguration {
	return SenderConfiguration{
		Target:           "127.0.0.1:2055",
		Encoder:          DefaultEncoderConfiguration(),
		RecordsPerSecond: 1000,
		Prefix:           netip.MustParsePrefix("203.0.113.0/24"),
		Seed:             1,
		Duration:         10 * time.Second,
		BlastWorkers:     1,
		BlastDatagrams:   1024,
		Tick:             time.Millisecond,
		WriteBuffer:      4 << 20,
	}
}

// Sender sends a Source's flows to a collector at the pace the source sets
// (each second's flows spread evenly over that second), or as fast as it can
// in blast mode. Run may be called once.
type Sender struct {
	cfg       SenderConfiguration
	src       Source
	log       *slog.Logger
	datagrams atomic.Uint64
	records   atomic.Uint64
}

// NewSender checks cfg. src nil means the default background scenario at
// cfg.RecordsPerSecond. Nothing is opened until Run.
func NewSender(cfg SenderConfiguration, src Source) (*Sender, error) {
	def := DefaultSenderConfiguration()
	if cfg.Target == "" {
		return nil, errors.New("creating flow sender: no target")
	}
	if cfg.Duration <= 0 && cfg.Count == 0 {
		return nil, errors.New("creating flow sender: neither a duration nor a count bounds the run")
	}
	if cfg.Encoder.Format == 0 {
		cfg.Encoder.Format = def.Encoder.Format
	}
	if _, err := NewEncoder(cfg.Encoder); err != nil {
		return nil, fmt.Errorf("creating flow sender: %w", err)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = def.Tick
	}
	if cfg.BlastWorkers <= 0 {
		cfg.BlastWorkers = def.BlastWorkers
	}
	if cfg.BlastDatagrams <= 0 {
		cfg.BlastDatagrams = def.BlastDatagrams
	}
	if cfg.WriteBuffer <= 0 {
		cfg.WriteBuffer = def.WriteBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if src == nil {
		if cfg.RecordsPerSecond <= 0 {
			return nil, errors.New("creating flow sender: no source and no records per second")
		}
		if !cfg.Prefix.IsValid() {
			cfg.Prefix = def.Prefix
		}
		sc, err := NewScenario(ScenarioConfiguration{
			Seed:         cfg.Seed,
			SamplingRate: cfg.SamplingRate,
			Background:   &Background{Prefix: cfg.Prefix, FlowsPerSecond: cfg.RecordsPerSecond},
		})
		if err != nil {
			return nil, fmt.Errorf("creating flow sender: %w", err)
		}
		src = sc
	}
	return &Sender{cfg: cfg, src: src, log: cfg.Logger}, nil
}

// Progress is what has been sent so far (safe to call during Run).
func (s *Sender) Progress() (datagrams, records uint64) {
	return s.datagrams.Load(), s.records.Load()
}

func (s *Sender) dial() (*net.UDPConn, error) {
	raddr, err := net.ResolveUDPAddr("udp", s.cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("resolving flow target %q: %w", s.cfg.Target, err)
	}
	var laddr *net.UDPAddr
	if s.cfg.SourceAddr != "" {
		if laddr, err = net.ResolveUDPAddr("udp", s.cfg.SourceAddr); err != nil {
			return nil, fmt.Errorf("resolving flow source %q: %w", s.cfg.SourceAddr, err)
		}
	}
	conn, err := net.DialUDP("udp", laddr, raddr)
	if err != nil {
		return nil, fmt.Errorf("opening UDP socket to %s: %w", s.cfg.Target, err)
	}
	_ = conn.SetWriteBuffer(s.cfg.WriteBuffer) // best effort: the kernel caps it
	return conn, nil
}

// Run sends until the duration or count is reached or ctx ends, and returns
// exactly what was sent. Datagrams whose write failed (e.g. nobody listening:
// ECONNREFUSED) are counted in SendErrors and not in the totals. The error
// is nil when the run ended by its bounds or by ctx.
func (s *Sender) Run(ctx context.Context) (Totals, error) {
	if s.cfg.Blast {
		return s.blast(ctx)
	}
	return s.paced(ctx)
}

func (s *Sender) paced(ctx context.Context) (Totals, error) {
	tot := Totals{HostPrefix: s.cfg.HostPrefix}
	enc, err := NewEncoder(s.cfg.Encoder)
	if err != nil {
		return tot, fmt.Errorf("sending flows: %w", err)
	}
	conn, err := s.dial()
	if err != nil {
		return tot, err
	}
	defer conn.Close()

	batch := enc.recordsPerDatagram()
	buf := make([]byte, 0, 65536)
	var flows []Flow
	dg := Totals{HostPrefix: s.cfg.HostPrefix}
	start := time.Now()
	var end time.Time
	if s.cfg.Duration > 0 {
		end = start.Add(s.cfg.Duration)
	}
	warned := false
	empty := 0
	for sec := 0; ; sec++ {
		secStart := start.Add(time.Duration(sec) * time.Second)
		if !end.IsZero() && !secStart.Before(end) {
			break
		}
		if s.cfg.Count > 0 && tot.Records >= s.cfg.Count {
			break
		}
		// the flows that ended during the previous second are exported now
		flows = s.src.Second(flows[:0], sec, secStart.Add(-time.Second))
		if empty = empty + 1; len(flows) > 0 {
			empty = 0
		}
		if end.IsZero() && empty > maxEmptySeconds {
			// only a count bounds the run and the source went quiet
			s.log.Warn("flow sender: source produced nothing, stopping", "seconds", empty)
			return tot, nil
		}
		perSecond := len(flows) // the pace, even when Count cuts the second short
		if s.cfg.Count > 0 {
			if left := s.cfg.Count - tot.Records; uint64(len(flows)) > left {
				flows = flows[:left]
			}
		}
		sent := 0
		for {
			now := time.Now()
			if ctx.Err() != nil {
				return tot, nil
			}
			// at the end of the run, what was due by then still goes out
			final := !end.IsZero() && !now.Before(end)
			elapsed := now.Sub(secStart)
			if final {
				elapsed = end.Sub(secStart)
			}
			due := len(flows)
			if elapsed < time.Second {
				due = min(due, int(int64(perSecond)*int64(elapsed)/int64(time.Second)))
			}
			for sent < due && (due-sent >= batch || due == len(flows) || final) {
				clear(dg.PerHost)
				dg.Datagrams, dg.Counters = 0, Counters{}
				var n int
				buf, n = enc.AppendDatagram(buf[:0], flows[sent:due], now, &dg)
				sent += n
				if len(buf) == 0 {
					continue
				}
				if _, err := conn.Write(buf); err != nil {
					tot.SendErrors++
					if !warned {
						s.log.Warn("flow sender: write failed", "target", s.cfg.Target, "error", err)
						warned = true
					}
					continue
				}
				tot.Merge(&dg, 1)
				s.datagrams.Add(1)
				s.records.Add(dg.Records)
			}
			if final {
				return tot, nil
			}
			if sent >= len(flows) && (elapsed >= time.Second || len(flows) < perSecond) {
				break // the second is done, or Count is reached
			}
			// sleep until the next batch is due, a tick at least
			wait := s.cfg.Tick
			if sent < len(flows) {
				next := time.Duration(int64(sent+batch) * int64(time.Second) / int64(perSecond))
				if d := next - elapsed; d > wait {
					wait = d
				}
			}
			if d := time.Second - elapsed; sent >= len(flows) && d > 0 {
				wait = d
			}
			if d := secStart.Add(time.Second).Sub(now); d > 0 && wait > d {
				wait = d
			}
			if !end.IsZero() {
				if d := end.Sub(now); wait > d {
					wait = d
				}
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return tot, nil
			case <-t.C:
			}
		}
	}
	return tot, nil
}

// maxEmptySeconds bounds a run that only Count bounds once its source goes quiet.
const maxEmptySeconds = 60

// recordsPerDatagram estimates how many IPv4 records fill a datagram, so
// the paced sender waits for full datagrams.
func (e *Encoder) recordsPerDatagram() int {
	n := 0
	switch e.cfg.Format {
	case FormatNetFlowV5:
		n = v5MaxRecords
	case FormatSFlow:
		n = (e.cfg.MaxDatagramSize - sflowHeaderLenV4) / (sflowSampleFixed + sflowRecordFixed + 56)
	default:
		n = (e.cfg.MaxDatagramSize - v9HeaderLen - 4) / e.v4.size
	}
	return max(1, e.maxRecords(n))
}

// blastDatagram is one pre-encoded datagram and what it carries.
type blastDatagram struct {
	payload []byte
	tot     Totals
}

func (s *Sender) prepareBlast() ([]blastDatagram, error) {
	enc, err := NewEncoder(s.cfg.Encoder)
	if err != nil {
		return nil, fmt.Errorf("preparing blast: %w", err)
	}
	var out []blastDatagram
	var flows []Flow
	now := time.Now()
	empty := 0
	for sec := 0; len(out) < s.cfg.BlastDatagrams && empty < 10; sec++ {
		flows = s.src.Second(flows[:0], sec, now.Add(time.Duration(sec-1)*time.Second))
		if len(flows) == 0 {
			empty++
			continue
		}
		for rest := flows; len(rest) > 0 && len(out) < s.cfg.BlastDatagrams; {
			d := blastDatagram{tot: Totals{HostPrefix: s.cfg.HostPrefix}}
			var n int
			d.payload, n = enc.AppendDatagram(nil, rest, now, &d.tot)
			rest = rest[n:]
			if len(d.payload) > 0 {
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("preparing blast: the source produced no flows")
	}
	return out, nil
}

func (s *Sender) blast(ctx context.Context) (Totals, error) {
	tot := Totals{HostPrefix: s.cfg.HostPrefix}
	dgs, err := s.prepareBlast()
	if err != nil {
		return tot, err
	}
	var deadline time.Time
	if s.cfg.Duration > 0 {
		deadline = time.Now().Add(s.cfg.Duration)
	}
	var reserved atomic.Uint64 // records claimed by workers, for Count
	counts := make([][]uint64, s.cfg.BlastWorkers)
	errs := make([]uint64, s.cfg.BlastWorkers)
	var wg sync.WaitGroup
	var dialErr error
	var dialOnce sync.Once
	for w := range s.cfg.BlastWorkers {
		conn, err := s.dial()
		if err != nil {
			dialOnce.Do(func() { dialErr = err })
			break
		}
		counts[w] = make([]uint64, len(dgs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			c := counts[w]
			i := (w * len(dgs)) / s.cfg.BlastWorkers
			var localDg, localRec uint64
			for k := 0; ; k++ {
				if k&63 == 0 {
					s.datagrams.Add(localDg)
					s.records.Add(localRec)
					localDg, localRec = 0, 0
					if ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
						return
					}
				}
				d := &dgs[i]
				if s.cfg.Count > 0 && reserved.Add(d.tot.Records) > s.cfg.Count {
					s.datagrams.Add(localDg)
					s.records.Add(localRec)
					return
				}
				if _, err := conn.Write(d.payload); err != nil {
					errs[w]++
				} else {
					c[i]++
					localDg++
					localRec += d.tot.Records
				}
				if i++; i == len(dgs) {
					i = 0
				}
			}
		}()
	}
	wg.Wait()
	for w := range counts {
		for i, n := range counts[w] {
			if n > 0 {
				tot.Merge(&dgs[i].tot, n)
			}
		}
		tot.SendErrors += errs[w]
	}
	return tot, dialErr
}
