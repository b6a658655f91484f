package uplink

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
)

// fakeRouter is a router's uplink counters, moved by the test.
type fakeRouter struct {
	mu       sync.Mutex
	counters []routeros.InterfaceCounters
	err      error
}

func (f *fakeRouter) InterfaceCounters(_ context.Context, list string) ([]routeros.InterfaceCounters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if list != routeros.UplinkList {
		return nil, errors.New("wrong list " + list)
	}
	if f.err != nil {
		return nil, f.err
	}
	return append([]routeros.InterfaceCounters(nil), f.counters...), nil
}

// add receives bytes and packets on interface i.
func (f *fakeRouter) add(i int, bytes, packets uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counters[i].RxBytes += bytes
	f.counters[i].RxPackets += packets
}

// fixture is a monitor over one fake router with two uplinks, on a clock
// the test moves by the poll interval.
type fixture struct {
	m       *Monitor
	r       *fakeRouter
	now     time.Time
	flowPPS float64
	hold    bool
	events  []Event
}

func newFixture(t *testing.T, cfg Configuration) *fixture {
	t.Helper()
	f := &fixture{now: time.Unix(1_700_000_000, 0), r: &fakeRouter{counters: []routeros.InterfaceCounters{
		{Name: "ether1", Running: true}, {Name: "sfp-sfpplus1", Running: true}}}}
	f.m = New(cfg, Dependencies{
		Sources: []Source{{Name: "192.0.2.1:8728", Reader: f.r}},
		FlowPPS: func() float64 { return f.flowPPS }, HoldBlind: func() bool { return f.hold },
		OnEvent: func(e Event) { f.events = append(f.events, e) },
		Now:     func() time.Time { return f.now },
	})
	f.m.Poll(context.Background()) // the first sample
	return f
}

// poll passes one interval during which ether1 receives mbps megabits per
// second in pps packets per second, then polls.
func (f *fixture) poll(mbps, pps float64) {
	sec := f.m.cfg.Interval.Seconds()
	f.r.add(0, uint64(mbps*1e6/8*sec), uint64(pps*sec))
	f.now = f.now.Add(f.m.cfg.Interval)
	f.m.Poll(context.Background())
}

func TestRates(t *testing.T) {
	f := newFixture(t, Configuration{LinkMbps: 1000})
	f.r.add(1, 250_000, 500) // sfp-sfpplus1: 1 Mbit/s, 250 pps over 2 s
	f.poll(100, 10_000)
	s := f.m.Status()
	if len(s.Interfaces) != 2 || s.Interfaces[0].Name != "ether1" || s.Interfaces[1].Name != "sfp-sfpplus1" {
		t.Fatalf("interfaces: %+v", s.Interfaces)
	}
	if s.Interfaces[0].RxBPS != 100e6 || s.Interfaces[0].RxPPS != 10_000 || s.Interfaces[1].RxBPS != 1e6 || s.Interfaces[1].RxPPS != 250 {
		t.Fatalf("rates: %+v", s.Interfaces)
	}
	if s.RxBPS != 101e6 || s.RxPPS != 10_250 || s.Saturated || s.LinkMbps != 1000 || s.Interfaces[0].Router != "192.0.2.1:8728" {
		t.Fatalf("status: %+v", s)
	}
	if st := f.m.Stats(); st.Polls != 2 || st.Failures != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestSaturation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		link  uint64
		polls []float64 // Mbit/s per poll
		want  []bool    // Saturated after each poll
	}{
		{"two polls at 90 % or more", 1000, []float64{950, 950, 950}, []bool{false, true, true}},
		{"one poll is a spike", 1000, []float64{950, 500, 950, 500}, []bool{false, false, false, false}},
		{"under 90 %", 1000, []float64{899, 899, 899}, []bool{false, false, false}},
		{"clears after 3 polls under 80 %", 1000, []float64{950, 950, 850, 700, 700, 850, 700, 700, 700}, []bool{false, true, true, true, true, true, true, true, false}},
		{"unknown link never saturates", 0, []float64{1e6, 1e6, 1e6}, []bool{false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Configuration{LinkMbps: tc.link})
			f.flowPPS = 1e9 // no flow-blind here
			for i, mbps := range tc.polls {
				f.poll(mbps, 1000)
				if got := f.m.Saturated(); got != tc.want[i] {
					t.Fatalf("poll %d (%v Mbit/s): saturated %v, want %v", i, mbps, got, tc.want[i])
				}
			}
			ons := 0
			for _, e := range f.events {
				if e.Kind == KindSaturated && e.On {
					ons++
					if e.RxBPS < 0.9*float64(tc.link)*1e6 || e.LinkMbps != tc.link {
						t.Fatalf("event: %+v", e)
					}
				}
			}
			if st := f.m.Stats(); st.SaturatedEvents != uint64(ons) {
				t.Fatalf("stats %+v, %d events", st, ons)
			}
		})
	}
}

func TestSaturatedSeconds(t *testing.T) {
	f := newFixture(t, Configuration{LinkMbps: 1000})
	f.flowPPS = 1e9
	for range 5 {
		f.poll(990, 1000)
	}
	// saturated from the 2nd poll: counted over the 3 intervals after it
	if got := f.m.Stats().SaturatedSeconds; got != 6 {
		t.Fatalf("saturated seconds %v, want 6", got)
	}
}

// TestCounters: a 32-bit and a 64-bit wrap give the right rate; a counter
// that goes down otherwise (a reboot) gives no rate for that poll and
// does not end or start a saturation by itself.
func TestCounters(t *testing.T) {
	f := newFixture(t, Configuration{LinkMbps: 1000})
	f.flowPPS = 1e9
	f.poll(950, 1000)
	f.poll(950, 1000)
	if !f.m.Saturated() {
		t.Fatal("not saturated")
	}
	set := func(bytes, packets uint64) {
		f.r.mu.Lock()
		f.r.counters[0].RxBytes, f.r.counters[0].RxPackets = bytes, packets
		f.r.mu.Unlock()
	}
	sec := f.m.cfg.Interval.Seconds()
	pk := uint64(1 << 20) // packets keep counting up
	for _, tc := range []struct {
		name         string
		before, size uint64
	}{
		{"32-bit", math.MaxUint32 - 1000, 1 << 32},
		{"64-bit", math.MaxUint64 - 1000, 0},
	} {
		set(tc.before, pk)
		f.poll(0, 0) // a jump up: a huge rate for one poll
		delta := uint64(950e6 / 8 * sec)
		pk += 2000
		after := tc.before + delta // wraps at 2^64
		if tc.size != 0 {
			after %= tc.size
		}
		set(after, pk)
		f.poll(0, 0)
		if s := f.m.Status(); s.Interfaces[0].RxBPS != 950e6 || s.Interfaces[0].RxPPS != 1000 {
			t.Fatalf("%s wrap: %+v", tc.name, s.Interfaces[0])
		}
	}
	if st := f.m.Stats(); st.Wraps != 2 || st.Resets != 0 {
		t.Fatalf("stats %+v", st)
	}
	// reboot: counters from small values again
	set(1000, 1)
	f.poll(0, 0)
	if st := f.m.Stats(); st.Resets != 1 {
		t.Fatalf("stats %+v", st)
	}
	if s := f.m.Status(); !s.Saturated || s.RxBPS != 0 {
		t.Fatalf("after the reset poll: %+v", s) // sfp-sfpplus1 alone: fresh at 0
	}
	f.poll(950, 1000)
	if !f.m.Saturated() || f.m.Status().Interfaces[0].RxBPS != 950e6 {
		t.Fatalf("after reboot: %+v", f.m.Status())
	}
}

// TestFailures: a failed read holds the states; StalePolls failed polls
// forget the rates and clear them.
func TestFailures(t *testing.T) {
	f := newFixture(t, Configuration{LinkMbps: 1000})
	f.flowPPS = 1e9
	f.poll(950, 1000)
	f.poll(950, 1000)
	f.r.err = errors.New("connection refused")
	for i := range 4 {
		f.poll(950, 1000)
		if !f.m.Saturated() {
			t.Fatalf("failed poll %d cleared the saturation", i)
		}
	}
	f.poll(950, 1000)
	if s := f.m.Status(); s.Saturated || len(s.Interfaces) != 0 {
		t.Fatalf("stale: %+v", s)
	}
	if st := f.m.Stats(); st.Failures != 5 || st.StaleClears != 1 {
		t.Fatalf("stats %+v", st)
	}
	last := f.events[len(f.events)-1]
	if last.Kind != KindSaturated || last.On || !last.Stale {
		t.Fatalf("event %+v", last)
	}
	// back: a first sample, then rates
	f.r.err = nil
	f.poll(950, 1000)
	f.poll(950, 1000)
	f.poll(950, 1000)
	if !f.m.Saturated() {
		t.Fatal("not saturated again")
	}
}

func TestFlowBlind(t *testing.T) {
	cfg := Configuration{BlindPolls: 3, BlindClearPolls: 3}
	for _, tc := range []struct {
		name    string
		ifPPS   float64
		flowPPS float64
		hold    bool
		want    bool
	}{
		{"flows see a tenth", 100_000, 10_000, false, true},
		{"flows match", 100_000, 98_000, false, false},
		{"flows see a third", 100_000, 33_000, false, false},
		{"quiet link", 900, 0, false, false},
		{"held while banning", 100_000, 10_000, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, cfg)
			f.flowPPS, f.hold = tc.flowPPS, tc.hold
			for i := range 3 {
				if f.m.FlowBlind() {
					t.Fatalf("raised after %d polls", i)
				}
				f.poll(10, tc.ifPPS)
			}
			if got := f.m.FlowBlind(); got != tc.want || f.m.Status().FlowBlind != tc.want {
				t.Fatalf("flow-blind %v, want %v (%+v)", got, tc.want, f.m.Status())
			}
		})
	}

	// hysteresis: raised at 10 times, still raised at 3 times, cleared
	// after 3 polls under 2 times
	f := newFixture(t, cfg)
	f.flowPPS = 10_000
	for range 3 {
		f.poll(10, 100_000)
	}
	f.flowPPS = 33_000
	for range 5 {
		f.poll(10, 100_000)
	}
	if !f.m.FlowBlind() {
		t.Fatal("cleared at 3 times")
	}
	f.flowPPS = 60_000
	f.poll(10, 100_000)
	f.poll(10, 100_000)
	f.hold = true // a ban: frozen
	f.poll(10, 100_000)
	f.poll(10, 100_000)
	if !f.m.FlowBlind() {
		t.Fatal("cleared while held")
	}
	f.hold = false
	f.poll(10, 100_000)
	if f.m.FlowBlind() {
		t.Fatal("not cleared")
	}
	var kinds []bool
	for _, e := range f.events {
		if e.Kind == KindFlowBlind {
			kinds = append(kinds, e.On)
		}
	}
	if len(kinds) != 2 || !kinds[0] || kinds[1] || f.m.Stats().FlowBlindEvents != 1 {
		t.Fatalf("events %v, stats %+v", kinds, f.m.Stats())
	}
}

// TestInterfaceGone: an interface taken out of the list is forgotten.
func TestInterfaceGone(t *testing.T) {
	f := newFixture(t, Configuration{})
	f.r.mu.Lock()
	f.r.counters = f.r.counters[:1]
	f.r.mu.Unlock()
	f.poll(1, 1)
	if s := f.m.Status(); len(s.Interfaces) != 1 || s.Interfaces[0].Name != "ether1" {
		t.Fatalf("%+v", s.Interfaces)
	}
}

// TestStartStop: the loop polls until Stop.
func TestStartStop(t *testing.T) {
	r := &fakeRouter{counters: []routeros.InterfaceCounters{{Name: "ether1"}}}
	m := New(Configuration{Interval: 10 * time.Millisecond}, Dependencies{Sources: []Source{{Name: "r", Reader: r}}})
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Stats().Polls < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	m.Stop()
	n := m.Stats().Polls
	if n < 3 {
		t.Fatalf("%d polls", n)
	}
	time.Sleep(30 * time.Millisecond)
	if m.Stats().Polls != n {
		t.Fatal("polled after Stop")
	}
}

func TestCounterDelta(t *testing.T) {
	for _, tc := range []struct {
		old, cur, d uint64
		ok, wrapped bool
	}{
		{10, 15, 5, true, false},
		{math.MaxUint32 - 1, 3, 5, true, true},
		{math.MaxUint64 - 1, 3, 5, true, true},
		{1 << 20, 5, 0, false, false},                  // reboot
		{1 << 40, 5, 0, false, false},                  // 64-bit counter reset
		{math.MaxUint32 - 1, 1 << 31, 0, false, false}, // too far for a wrap
	} {
		d, ok, w := counterDelta(tc.old, tc.cur)
		if d != tc.d || ok != tc.ok || w != tc.wrapped {
			t.Errorf("counterDelta(%d, %d) = %d %v %v", tc.old, tc.cur, d, ok, w)
		}
	}
}
