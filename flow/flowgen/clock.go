package flowgen

import "time"

// ExporterClock is the exporting router's idea of time. By default its
// sysUpTime and its Unix clock agree (sysUpTime = now - Boot), which is what a
// healthy exporter sends. The knobs break it the ways real routers do, so
// the detector's clock-sanity checks can be tested.
type ExporterClock struct {
	// Boot is when the exporter booted; zero means one hour before the
	// first datagram the encoder builds.
	Boot time.Time
	// UptimeOffset is added to the sysUpTime the exporter reports in its
	// headers (and, for IPFIX, shifts systemInitTimeMilliseconds the other
	// way) while flow times stay on the true uptime: a negative value is a
	// sysUpTime that jumped backwards, so flows seem to end in the future.
	UptimeOffset time.Duration
	// ZeroUptime makes the header's sysUpTime 0 (a broken exporter).
	ZeroUptime bool
	// ZeroFlowTimes sends 0 in the flows' first/last switched fields.
	ZeroFlowTimes bool
	// UnixOffset shifts the exporter's wall clock (export header time).
	UnixOffset time.Duration
}

func (c *ExporterClock) init(now time.Time) {
	if c.Boot.IsZero() {
		c.Boot = now.Add(-time.Hour).Truncate(time.Millisecond)
	}
}

// uptimeMs is the true uptime at t in milliseconds, wrapping like the 32-bit
// field; times before boot read 0.
func (c *ExporterClock) uptimeMs(t time.Time) uint32 {
	d := t.Sub(c.Boot)
	if d < 0 {
		return 0
	}
	return uint32(d.Milliseconds())
}

// headerUptimeMs is the sysUpTime the exporter writes in a header at now.
func (c *ExporterClock) headerUptimeMs(now time.Time) uint32 {
	if c.ZeroUptime {
		return 0
	}
	d := now.Sub(c.Boot) + c.UptimeOffset
	if d < 0 {
		return 0
	}
	return uint32(d.Milliseconds())
}

// flowUptimeMs is a flow time as first/last switched.
func (c *ExporterClock) flowUptimeMs(t time.Time) uint32 {
	if c.ZeroFlowTimes {
		return 0
	}
	return c.uptimeMs(t)
}

// unix is the exporter's wall clock at now.
func (c *ExporterClock) unix(now time.Time) time.Time { return now.Add(c.UnixOffset) }

// systemInitMs is IPFIX systemInitTimeMilliseconds as the exporter reports it.
func (c *ExporterClock) systemInitMs(now time.Time) uint64 {
	if c.ZeroUptime {
		return 0
	}
	return uint64(c.Boot.Add(c.UnixOffset - c.UptimeOffset).UnixMilli())
}
