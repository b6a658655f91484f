package detect

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Configuration of the detection engine. DefaultConfiguration gives the
// contract's defaults; the caller fills Networks (and whatever the operator set).
type Configuration struct {
	Networks         []netip.Prefix // NETWORKS: protected prefixes
	HostGroups       []HostGroup    // HOSTGROUPS, thresholds complete
	WhitelistSources []netip.Prefix // WHITELIST_SOURCES: remote prefixes not counted
	Global           Thresholds     // THRESHOLD_*

	// Window is the averaging window of the reported rates and of
	// near-threshold detection (WINDOW), whole seconds, 1s to 60s.
	Window time.Duration
	// DetectionPeriod is how long a windowed rate must stay above its
	// threshold before an attack is declared; 0 declares on the first
	// evaluation above (the window already smooths a second-long burst).
	DetectionPeriod time.Duration
	// FastFactor: a single second at or above FastFactor x threshold is
	// declared at once, without waiting for the window to fill. Steady
	// traffic below its threshold can never reach 2x in one second (see
	// README of the package in doc.go), so 2 is safe; 0 disables.
	FastFactor float64
	// EndAfter and EndFraction are the hysteresis on the way down: an attack
	// ends once every windowed rate stayed below EndFraction x its threshold
	// for EndAfter.
	EndAfter    time.Duration
	EndFraction float64
	// UpdateEvery is the period of AttackUpdate events while an attack lasts.
	UpdateEvery time.Duration

	SampleFlows  int           // flow records kept per attack (bounded sample)
	DetailsFlows int           // AttackDetails once this many records were sampled ...
	DetailsAfter time.Duration // ... or this long after the start, whichever first
	// MaxSampledAttacks bounds the active attacks that keep a flow sample
	// and top talkers (~16 KB each with their details): in a carpet bombing
	// that trips thousands of per-host attacks at once, the later ones are
	// still declared, banned and reported, without a sample. 0: no cap.
	MaxSampledAttacks int

	// LinkMbps is the uplink capacity (LINK_MBPS); 0 disables the garbage check.
	LinkMbps uint64
	// MinFrameBytes is the smallest frame on the wire the garbage check
	// assumes for "packets at the minimum frame size" (64: an Ethernet
	// minimum frame, without preamble and inter-frame gap, so the check is
	// lenient by 84/64).
	MinFrameBytes uint64
	// DefaultSamplingRate applies to records whose SamplingRate is 0.
	DefaultSamplingRate uint32

	// Exporter clock sanity, all relative to the record's arrival time.
	ClockSlack       time.Duration // a flow may end at most this far after its arrival
	MaxExportDelay   time.Duration // a flow ending longer ago than this before arrival has a broken clock
	MaxFlowDuration  time.Duration // longest plausible flow (RouterOS active timeout is at most 30m by default)
	FallbackDuration time.Duration // duration assumed for a record whose times are zero
	GarbageLogEvery  time.Duration // log garbage at most this often per exporter

	// MaxHosts bounds the tracked hosts; a new one past it takes the place
	// of the quietest of a sample, and traffic of hosts not tracked still
	// counts in the totals and sums (doc.go: Bounds).
	MaxHosts int
	// MaxExporters bounds the exporters whose anomalies and timers are
	// kept; past it the one heard from least recently is forgotten.
	MaxExporters int
	IdleTimeout  time.Duration // a host with no traffic this long (and no active attack) is forgotten
	Shards       int           // host table shards (power of two); 0 picks one

	RetainEnded      time.Duration // ended attacks kept at least this long ...
	RetainEndedCount int           // ... or the last this many, whichever keeps more
	// MaxEnded and MaxEndedBytes bound the ended attacks kept beyond the
	// last RetainEndedCount, which are always kept whole: in number, and
	// in bytes (their summaries, details texts and flow samples, as
	// estimated by attackBytes). Past MaxEndedBytes the oldest lose their
	// details first, then go.
	MaxEnded      int
	MaxEndedBytes int

	Logger *slog.Logger // nil: slog.Default()
}

// DefaultConfiguration returns the contract's defaults.
func DefaultConfiguration() Configuration {
	return Configuration{
		Global:              Thresholds{PPS: 20000, Mbps: 1000, Flows: 3500},
		Window:              5 * time.Second,
		FastFactor:          2,
		EndAfter:            15 * time.Second,
		EndFraction:         0.8,
		UpdateEvery:         time.Second,
		SampleFlows:         40,
		DetailsFlows:        20,
		DetailsAfter:        3 * time.Second,
		MaxSampledAttacks:   1000,
		MinFrameBytes:       64,
		DefaultSamplingRate: 1,
		ClockSlack:          5 * time.Second,
		MaxExportDelay:      5 * time.Minute,
		MaxFlowDuration:     31 * time.Minute,
		FallbackDuration:    time.Second,
		GarbageLogEvery:     time.Minute,
		MaxHosts:            250000,
		MaxExporters:        1024,
		IdleTimeout:         2 * time.Minute,
		RetainEnded:         24 * time.Hour,
		RetainEndedCount:    1000,
		MaxEnded:            100000,
		MaxEndedBytes:       32 << 20,
	}
}

func (c *Configuration) validate() error {
	var errs []error
	if c.Window < time.Second || c.Window > time.Minute || c.Window%time.Second != 0 {
		errs = append(errs, fmt.Errorf("window %v: want whole seconds from 1s to 60s", c.Window))
	}
	if len(c.Networks) == 0 && len(c.HostGroups) == 0 {
		errs = append(errs, errors.New("no networks to protect"))
	}
	for _, p := range c.Networks {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("network %v: invalid prefix", p))
		}
	}
	for _, p := range c.WhitelistSources {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("whitelist source %v: invalid prefix", p))
		}
	}
	for _, g := range c.HostGroups {
		if g.Name == "" {
			errs = append(errs, errors.New("hostgroup without a name"))
		}
		for _, p := range g.Prefixes {
			if !p.IsValid() {
				errs = append(errs, fmt.Errorf("hostgroup %s: prefix %v: invalid", g.Name, p))
			}
		}
	}
	if c.FastFactor != 0 && c.FastFactor < 1 {
		errs = append(errs, fmt.Errorf("fast factor %v: want 0 or at least 1", c.FastFactor))
	}
	if c.EndFraction <= 0 || c.EndFraction > 1 {
		errs = append(errs, fmt.Errorf("end fraction %v: want (0,1]", c.EndFraction))
	}
	if c.MaxHosts <= 0 {
		errs = append(errs, fmt.Errorf("max hosts %d: want > 0", c.MaxHosts))
	}
	if c.MaxExporters < 0 {
		errs = append(errs, fmt.Errorf("max exporters %d: want >= 0 (0: the default)", c.MaxExporters))
	}
	if c.RetainEndedCount < 0 || c.MaxEnded < 0 || c.MaxEndedBytes < 0 {
		errs = append(errs, errors.New("ended attacks' retention: want no negative bound"))
	}
	if c.MaxSampledAttacks < 0 {
		errs = append(errs, fmt.Errorf("max sampled attacks %d: want >= 0", c.MaxSampledAttacks))
	}
	if c.SampleFlows < 0 || c.SampleFlows > 10000 {
		errs = append(errs, fmt.Errorf("sample flows %d: want 0..10000", c.SampleFlows))
	}
	if c.MaxFlowDuration < time.Second || c.FallbackDuration < 0 || c.ClockSlack < 0 || c.MaxExportDelay < c.Window {
		errs = append(errs, errors.New("clock sanity bounds: want max flow duration >= 1s, max export delay >= window, no negative durations"))
	}
	if c.Shards < 0 || c.Shards > 4096 || c.Shards&(c.Shards-1) != 0 {
		errs = append(errs, fmt.Errorf("shards %d: want 0 or a power of two up to 4096", c.Shards))
	}
	return errors.Join(errs...)
}
