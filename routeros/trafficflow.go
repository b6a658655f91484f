package routeros

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

// Field names checked against the RouterOS manual (help.mikrotik.com, "Traffic
// Flow", via the project's search tool, and the terraform-routeros provider's
// resource_ip_traffic_flow*.go, which records what RouterOS 7 prints):
//   - /ip/traffic-flow: enabled, interfaces, cache-entries,
//     active-flow-timeout (default 30m), inactive-flow-timeout (default 15s),
//     and since 7.1rc5 packet-sampling, sampling-interval, sampling-space.
//   - /ip/traffic-flow/target on RouterOS 6: address (IP:port), version
//     (1|5|9), v9-template-refresh, v9-template-timeout; on RouterOS 7:
//     dst-address, port, src-address, version (1|5|9|IPFIX, printed
//     "IPFIX"), v9-template-refresh, v9-template-timeout.
//   - L3 hardware offloading ("L3 Hardware Offloading"): the switch chip's
//     /interface/ethernet/switch l3-hw-offloading; set to no on the switch it
//     disables offloading completely. With it on, the ports' own
//     l3-hw-offloading decides between full hardware routing and offloading
//     only Fasttrack connections; either way some traffic skips the CPU, and
//     the Traffic Flow page says HW-offloaded traffic is not seen.

// TrafficFlow is the router's flow export: /ip/traffic-flow and its targets.
type TrafficFlow struct {
	Enabled bool
	// Interfaces is "all" or the interfaces whose traffic is exported.
	Interfaces string
	// CacheEntries is as printed: "4k", "128k".
	CacheEntries string
	// ActiveTimeout exports a flow that has lasted this long (a long flood
	// shows up only then); InactiveTimeout exports one idle this long.
	ActiveTimeout, InactiveTimeout time.Duration
	// PacketSampling and its interval and space (RouterOS 7.1rc5 and later).
	PacketSampling                  bool
	SamplingInterval, SamplingSpace uint64
	Targets                         []TrafficFlowTarget
}

// TrafficFlowTarget is one /ip/traffic-flow/target.
type TrafficFlowTarget struct {
	ID string
	// Address is where the flows go, host:port: RouterOS 6 prints it as
	// address=IP:port, RouterOS 7 as dst-address and port.
	Address string
	// SrcAddress is RouterOS 7's source address of the exports ("" on
	// RouterOS 6; 0.0.0.0 lets the router pick).
	SrcAddress string
	// Version is as printed: "1", "5", "9" or "IPFIX".
	Version  string
	Disabled bool
}

// Exporting says whether flows leave the router: enabled, with at least one
// enabled target.
func (tf TrafficFlow) Exporting() bool {
	if !tf.Enabled {
		return false
	}
	for _, t := range tf.Targets {
		if !t.Disabled {
			return true
		}
	}
	return false
}

// ValueError is a property the router printed in a form this package cannot
// read.
type ValueError struct {
	Menu, Property, Value string
	Err                   error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%s: %s=%q: %v", e.Menu, e.Property, e.Value, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

// TrafficFlow reads the flow export settings and targets.
func (r *Router) TrafficFlow(ctx context.Context) (TrafficFlow, error) {
	reply, err := r.call(ctx, true, "/ip/traffic-flow/print")
	if err != nil {
		return TrafficFlow{}, fmt.Errorf("read /ip/traffic-flow: %w", err)
	}
	if len(reply.Re) == 0 {
		return TrafficFlow{}, errors.New("read /ip/traffic-flow: empty reply")
	}
	settings := reply.Re[0].Map
	reply, err = r.call(ctx, true, "/ip/traffic-flow/target/print")
	if err != nil {
		return TrafficFlow{}, fmt.Errorf("read /ip/traffic-flow/target: %w", err)
	}
	targets := make([]map[string]string, len(reply.Re))
	for i, re := range reply.Re {
		targets[i] = re.Map
	}
	tf, err := parseTrafficFlow(settings, targets)
	if err != nil {
		return TrafficFlow{}, fmt.Errorf("read traffic-flow of %s: %w", r.cfg.Address, err)
	}
	return tf, nil
}

// parseTrafficFlow reads the printed settings and targets of either
// RouterOS version.
func parseTrafficFlow(settings map[string]string, targets []map[string]string) (TrafficFlow, error) {
	const menu = "/ip/traffic-flow"
	bad := func(prop string, err error) error {
		return &ValueError{Menu: menu, Property: prop, Value: settings[prop], Err: err}
	}
	tf := TrafficFlow{Interfaces: settings["interfaces"], CacheEntries: settings["cache-entries"]}
	var err error
	if tf.Enabled, err = rosfmt.ParseBool(settings["enabled"]); err != nil {
		return TrafficFlow{}, bad("enabled", err)
	}
	if tf.ActiveTimeout, err = parseTimer(settings["active-flow-timeout"]); err != nil {
		return TrafficFlow{}, bad("active-flow-timeout", err)
	}
	if tf.InactiveTimeout, err = parseTimer(settings["inactive-flow-timeout"]); err != nil {
		return TrafficFlow{}, bad("inactive-flow-timeout", err)
	}
	if tf.PacketSampling, err = rosfmt.ParseBool(settings["packet-sampling"]); err != nil {
		return TrafficFlow{}, bad("packet-sampling", err)
	}
	for _, p := range []struct {
		name string
		v    *uint64
	}{{"sampling-interval", &tf.SamplingInterval}, {"sampling-space", &tf.SamplingSpace}} {
		if s := settings[p.name]; s != "" {
			if *p.v, err = strconv.ParseUint(s, 10, 64); err != nil {
				return TrafficFlow{}, bad(p.name, err)
			}
		}
	}
	for _, m := range targets {
		t := TrafficFlowTarget{ID: m[".id"], SrcAddress: m["src-address"], Version: m["version"]}
		if t.Disabled, err = rosfmt.ParseBool(m["disabled"]); err != nil {
			return TrafficFlow{}, &ValueError{Menu: menu + "/target", Property: "disabled", Value: m["disabled"], Err: err}
		}
		switch {
		case m["address"] != "": // RouterOS 6: IP:port
			t.Address = m["address"]
		case m["port"] != "":
			t.Address = net.JoinHostPort(m["dst-address"], m["port"])
		default:
			t.Address = m["dst-address"]
		}
		tf.Targets = append(tf.Targets, t)
	}
	return tf, nil
}

// maxTimer bounds a traffic-flow timer. It also catches a clock whose hours
// overflow in rosfmt ("8000000:0:0" came out negative: fuzz corpus).
const maxTimer = 365 * 24 * time.Hour

var errTimerRange = errors.New("out of range")

// parseTimer reads a traffic-flow timer in any form RouterOS prints: "30m",
// "1h30m", "1d2h3m4s", "500ms", RouterOS 6's "00:30:00".
func parseTimer(s string) (time.Duration, error) {
	d, err := rosfmt.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 || d > maxTimer {
		return 0, errTimerRange
	}
	return d, nil
}

// L3HWOffload names the switch chips with L3 hardware offloading on
// (/interface/ethernet/switch l3-hw-offloading=yes, RouterOS 7): traffic
// they route never reaches traffic-flow. A router without the menu or the
// property (no switch chip, CHR, RouterOS 6) has none: nil. Any trap on the
// menu counts as no menu.
func (r *Router) L3HWOffload(ctx context.Context) ([]string, error) {
	reply, err := r.call(ctx, true, "/interface/ethernet/switch/print", "=.proplist=.id,name,l3-hw-offloading")
	if IsTrap(err) {
		r.log.Debug("no switch chip menu", "error", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read /interface/ethernet/switch: %w", err)
	}
	var names []string
	for _, re := range reply.Re {
		on, err := rosfmt.ParseBool(re.Map["l3-hw-offloading"])
		if err != nil {
			return nil, fmt.Errorf("read /interface/ethernet/switch: %w", &ValueError{
				Menu: "/interface/ethernet/switch", Property: "l3-hw-offloading", Value: re.Map["l3-hw-offloading"], Err: err})
		}
		if on {
			name := re.Map["name"]
			if name == "" {
				name = re.Map[".id"]
			}
			names = append(names, name)
		}
	}
	return names, nil
}

// FastFlowTimeout is the longest export timer that does not slow detection
// down noticeably: up to it, a flood is seen within a few seconds, about the
// default detection WINDOW.
const FastFlowTimeout = 5 * time.Second

// FlowLatency is when flows exported with a router's timers show a flood.
type FlowLatency struct {
	// ShortFlood: a flood of short flows (SYN flood, spoofed random
	// sources) is seen about this long after it starts: its one-packet
	// flows are exported once idle for the inactive timeout (or at the
	// active timeout, should it be the shorter).
	ShortFlood time.Duration
	// LongFlood: a flood of long flows (amplification, a few sources) is
	// seen about this long after it starts: its flows are exported at the
	// active timeout.
	LongFlood time.Duration
	// End: after the flood stops, its attack is confirmed over up to this
	// long later: the last records arrive up to active + inactive timeout
	// late, then the detector's hysteresis runs.
	End time.Duration
}

// Latency is the detection latency tf's timers give; hysteresis is the
// detector's wait below the thresholds before it ends an attack.
func (tf TrafficFlow) Latency(hysteresis time.Duration) FlowLatency {
	return FlowLatency{
		ShortFlood: min(tf.ActiveTimeout, tf.InactiveTimeout),
		LongFlood:  tf.ActiveTimeout,
		End:        tf.ActiveTimeout + tf.InactiveTimeout + hysteresis,
	}
}

// Fast says whether both kinds of flood show within FastFlowTimeout.
func (l FlowLatency) Fast() bool {
	return l.ShortFlood <= FastFlowTimeout && l.LongFlood <= FastFlowTimeout
}

// FlowAdvice is what a router's flow export means for detection, in one-line
// sentences that do not name the router.
type FlowAdvice struct {
	// Problems: flowshield gets no flows from the router.
	Problems []string
	// Warnings: flows come, but floods are seen late, or not at all on some
	// paths.
	Warnings []string
	// Summary is the detection latency in a few words.
	Summary string
	Latency FlowLatency
}

// AdviseTrafficFlow judges tf, the switch chips with L3 hardware offloading
// on (from L3HWOffload), for a router running RouterOS version (as
// /system/resource prints it); hysteresis is the detector's wait before it
// ends an attack. Disabled export, or no enabled target, is a problem;
// timers above FastFlowTimeout, hardware offloading and NetFlow v1 targets
// (flowshield decodes v5, v9 and IPFIX) are warnings.
func AdviseTrafficFlow(tf TrafficFlow, offloaded []string, version string, hysteresis time.Duration) FlowAdvice {
	legacy := strings.HasPrefix(version, "6.")
	cmd := "/ip/traffic-flow/set"
	if legacy {
		cmd = "/ip traffic-flow set" // RouterOS 6 does not take slashes between menu levels
	}
	lat := tf.Latency(hysteresis)
	adv := FlowAdvice{Latency: lat}
	fix := "active-flow-timeout=1s inactive-flow-timeout=1s"
	if legacy {
		fix += " (a RouterOS 6 release that refuses an active timeout under 60 s takes active-flow-timeout=1m inactive-flow-timeout=1s; long floods then show after about 1m)"
	}
	if lat.Fast() {
		s := int(math.Ceil(max(lat.ShortFlood, lat.LongFlood, time.Second).Seconds()))
		adv.Summary = fmt.Sprintf("short and long floods detected within ~%d-%d s", s, s+1)
	} else {
		adv.Summary = fmt.Sprintf("short-flow floods seen ~%s after they start, long-flow floods ~%s", FormatDuration(lat.ShortFlood), FormatDuration(lat.LongFlood))
	}

	if !tf.Exporting() {
		adv.Problems = append(adv.Problems, noExport(tf, cmd, fix, lat.Fast()))
	} else if !lat.Fast() {
		adv.Warnings = append(adv.Warnings, fmt.Sprintf(
			"traffic-flow timers active-flow-timeout=%s inactive-flow-timeout=%s delay detection: a flood of short flows (SYN, spoofed sources) is seen about %s after it starts, a flood of long flows (amplification) about %s after it starts, and an attack's end is confirmed up to %s after the flood stops; for detection within 1-2 s: %s %s",
			FormatDuration(tf.ActiveTimeout), FormatDuration(tf.InactiveTimeout),
			FormatDuration(lat.ShortFlood), FormatDuration(lat.LongFlood), FormatDuration(lat.End), cmd, fix))
	}
	for _, t := range tf.Targets {
		if !t.Disabled && t.Version == "1" {
			adv.Warnings = append(adv.Warnings, fmt.Sprintf("traffic-flow target %s sends NetFlow v1, which flowshield does not decode: set its version to IPFIX (or 9 or 5)", t.Address))
		}
	}
	for _, sw := range offloaded {
		adv.Warnings = append(adv.Warnings, fmt.Sprintf(
			"L3 hardware offloading is on for %s: traffic the switch chip routes never reaches traffic-flow, so a flood through an offloaded path is invisible to flowshield; route the uplink through the CPU (/interface/ethernet/switch/port set UPLINK l3-hw-offloading=no) or turn it off (/interface/ethernet/switch set %s l3-hw-offloading=no)",
			sw, sw))
	}
	return adv
}

// noExport is the problem of a router whose flows go nowhere.
func noExport(tf TrafficFlow, cmd, fix string, fast bool) string {
	var what []string
	if !tf.Enabled {
		what = append(what, "is disabled")
	}
	hasTarget := false
	for _, t := range tf.Targets {
		hasTarget = hasTarget || !t.Disabled
	}
	switch {
	case len(tf.Targets) == 0:
		what = append(what, "has no target")
	case !hasTarget:
		what = append(what, "has no enabled target")
	}
	how := "run the setup script (flowshield routeros-script)"
	if hasTarget {
		how += " or " + cmd + " enabled=yes"
		if !fast {
			how += " " + fix
		}
	} else {
		how += " or add a target at flowshield's NetFlow listener"
		if !tf.Enabled {
			how += " and " + cmd + " enabled=yes"
		}
	}
	return fmt.Sprintf("traffic-flow %s: flowshield sees no flows; %s", strings.Join(what, " and "), how)
}

// FormatDuration writes d the RouterOS way ("1m30s", "30m", "500ms").
func FormatDuration(d time.Duration) string {
	if d < time.Second {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	s := rosfmt.FormatDuration(d)
	if ms := (d % time.Second).Milliseconds(); ms > 0 {
		s += strconv.FormatInt(ms, 10) + "ms"
	}
	return s
}
