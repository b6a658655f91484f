package uplink

import (
	"context"
	"log/slog"
	"time"

	"github.com/flowshield/flowshield/routeros"
)

// Configuration of the monitor. Counts of polls are consecutive polls.
type Configuration struct {
	// Interval is the time between polls (default 2 s); one poll's reads
	// are bounded by it too.
	Interval time.Duration
	// List is the routers' interface list of uplinks (routeros.UplinkList).
	List string
	// LinkMbps is the uplink's capacity (LINK_MBPS): the summed receive
	// rate of every listed interface on every router is compared with
	// it. 0 (unknown) never saturates.
	LinkMbps uint64
	// SaturatedShare of LinkMbps received for SaturatedPolls polls makes
	// the uplink saturated; under ClearShare for ClearPolls polls it is
	// not any more.
	SaturatedShare, ClearShare float64
	SaturatedPolls, ClearPolls int
	// BlindRatio: the interfaces receive at least BlindRatio times the
	// packets per second the flows account for, and at least BlindMinPPS
	// more, for BlindPolls polls: the flows are blind to part of the
	// traffic (hardware offload, an overloaded exporter, long export
	// timers). The alarm clears after BlindClearPolls polls under
	// BlindClearRatio times (or under BlindMinPPS more).
	BlindRatio, BlindClearRatio float64
	BlindMinPPS                 float64
	BlindPolls, BlindClearPolls int
	// StalePolls polls without a reading from any router forget the rates
	// and clear both states: an old reading says nothing of the link now.
	StalePolls int
}

// DefaultConfiguration: a poll every 2 s; saturated at 90 % of LinkMbps for
// 2 polls (4 s), cleared under 80 % for 3 polls (6 s); flow-blind at 4
// times and 1,000 pps more than the flows for 10 polls (20 s: longer than
// the default 15 s inactive export timer, so the flows of a flood that
// just started have had time to arrive), cleared under 2 times for 10
// polls; rates forgotten after 5 polls (10 s) without a reading.
func DefaultConfiguration() Configuration {
	return Configuration{
		Interval: 2 * time.Second, List: routeros.UplinkList,
		SaturatedShare: 0.9, ClearShare: 0.8, SaturatedPolls: 2, ClearPolls: 3,
		BlindRatio: 4, BlindClearRatio: 2, BlindMinPPS: 1000, BlindPolls: 10, BlindClearPolls: 10,
		StalePolls: 5,
	}
}

// Reader reads the receive counters of a router's interface list
// (*routeros.Router does).
type Reader interface {
	InterfaceCounters(ctx context.Context, list string) ([]routeros.InterfaceCounters, error)
}

// Source is one router's counters.
type Source struct {
	Name   string // the router's address, in status and metrics
	Reader Reader
}

// Dependencies of the monitor; all optional but Sources for any reading.
type Dependencies struct {
	Sources []Source
	// FlowPPS is the packets per second the flows account for coming in
	// (the detector's total in).
	FlowPPS func() float64
	// HoldBlind, while true, freezes the flow-blind alarm (neither raised
	// nor cleared): a ban in force drops its traffic before the export,
	// so the flows are blind to it by design.
	HoldBlind func() bool
	// OnEvent gets every change of state, on the polling goroutine.
	OnEvent func(Event)
	Logger  *slog.Logger
	Now     func() time.Time
}
