package appliance

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow/collector"
	"github.com/flowshield/flowshield/flow/flowgen"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// exportCount counts, each second, what leaves the exporter to the victim
// (after the router dropped what its rules match): the flood's records and
// the victim's other ones.
type exportCount struct {
	inner   flowgen.Source
	victim  netip.Addr
	isFlood func(f *flowgen.Flow) bool
	mu      sync.Mutex
	flood   []int // per second of the run
	legit   []int
}

func (s *exportCount) Second(dst []flowgen.Flow, index int, start time.Time) []flowgen.Flow {
	n := len(dst)
	dst = s.inner.Second(dst, index, start)
	fl, lg := 0, 0
	for i := range dst[n:] {
		f := &dst[n+i]
		if f.Dst != s.victim {
			continue
		}
		if s.isFlood(f) {
			fl++
		} else {
			lg++
		}
	}
	s.mu.Lock()
	s.flood, s.legit = append(s.flood, fl), append(s.legit, lg)
	s.mu.Unlock()
	return dst
}

// since sums the counts of the seconds from second i on.
func (s *exportCount) since(i int) (flood, legit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := i; k < len(s.flood); k++ {
		flood, legit = flood+s.flood[k], legit+s.legit[k]
	}
	return flood, legit
}

func (s *exportCount) seconds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.flood)
}

// rawWords are the router's flowshield raw rules on victim, each as its
// matchers in RouterOS's words (as print shows them).
func rawWords(emu *routerostest.Server, victim netip.Addr) []string {
	var out []string
	for _, o := range emu.Objects(routerostest.MenuRaw) {
		if !strings.HasPrefix(o.Props["comment"], "flowshield ") || o.Props["dst-address"] != victim.String() {
			continue
		}
		var w []string
		for _, k := range []string{"chain", "action", "dst-address", "protocol", "src-port", "dst-port", "tcp-flags", "fragment", "packet-size"} {
			if v := o.Props[k]; v != "" {
				w = append(w, k+"="+v)
			}
		}
		out = append(out, strings.Join(w, " "))
	}
	slices.Sort(out)
	return out
}

func isSYN(f *flowgen.Flow) bool { return f.Proto == 6 && f.TCPFlags&(tcpSYN|tcpACK) == tcpSYN }

func bigUDPFrom(port uint16) func(f *flowgen.Flow) bool {
	return func(f *flowgen.Flow) bool {
		return f.Proto == 17 && f.SrcPort == port && f.Packets > 0 && f.Bytes/f.Packets >= 400
	}
}

// filterRig runs one flood through the emulated router into a daemon.
type filterRig struct {
	emu    *routerostest.Server
	a      *Appliance
	victim netip.Addr
	count  *exportCount
	start  time.Time
	hook   *webhookLog
}

type webhookLog struct {
	mu     sync.Mutex
	events []map[string]any
}

func (w *webhookLog) of(kind string) []map[string]any {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []map[string]any
	for _, e := range w.events {
		if e["event"] == kind {
			out = append(out, e)
		}
	}
	return out
}

func startFilterRig(t *testing.T, i int, env map[string]string, opts Options, floods []flowgen.Flood,
	isFlood func(*flowgen.Flow) bool, run time.Duration) *filterRig {
	t.Helper()
	r := &filterRig{hook: &webhookLog{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var e map[string]any
		if json.NewDecoder(req.Body).Decode(&e) == nil {
			r.hook.mu.Lock()
			r.hook.events = append(r.hook.events, e)
			r.hook.mu.Unlock()
		}
	}))
	t.Cleanup(srv.Close)
	r.emu = startEmulator(t)
	seedListDropRules(t, r.emu)
	env["FLOWSHIELD_BAN_TIME"] = "5s"
	env["FLOWSHIELD_ROUTEROS_ADDRESS"] = r.emu.Addr()
	env["FLOWSHIELD_ROUTEROS_USER"] = "flowshield"
	env["FLOWSHIELD_ROUTEROS_PASSWORD"] = "s3cret-e2e"
	env["FLOWSHIELD_WEBHOOK_URL"] = srv.URL
	opts.CounterInterval = time.Second
	r.a = startApplianceWith(t, env, opts)
	r.victim = netip.AddrFrom4([4]byte{203, 0, 113, byte(41 + 2*i)})
	for k := range floods {
		floods[k].Target = netip.PrefixFrom(r.victim, 32)
		floods[k].StartAt = time.Second
	}
	sc, err := flowgen.NewScenario(flowgen.ScenarioConfiguration{
		Seed: uint64(100 + i),
		// the victim's own visitors and answers, well under its thresholds
		Background: &flowgen.Background{Prefix: netip.PrefixFrom(r.victim.Prev(), 31), Hosts: 1, FlowsPerSecond: 20},
		Floods:     floods,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.count = &exportCount{inner: flowgen.NewDropSource(sc, routerPath(r.emu)), victim: r.victim, isFlood: isFlood}
	scfg := flowgen.DefaultSenderConfiguration()
	scfg.Target = r.a.Collector().LocalAddr(collector.ProtocolNetFlow).String()
	scfg.Encoder.Format = flowgen.FormatRouterOSV9
	scfg.Duration = run
	s, err := flowgen.NewSender(scfg, r.count)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !r.a.routers[0].Connected() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	r.start = time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), run+10*time.Second)
		defer cancel()
		if _, err := s.Run(ctx); err != nil {
			t.Errorf("sending: %v", err)
		}
	}()
	t.Cleanup(func() { <-done })
	return r
}

// TestFilterOnTheWire: amplification, SYN and fragment floods, and a
// two-vector attack, with ACTION=filter through the real wire: the rules
// made (RouterOS's words, as the router prints them), the flood's records
// gone from the exports once they are on, the victim's own traffic still
// exported and counted.
func TestFilterOnTheWire(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 20 s of real time")
	}
	cases := []struct {
		name    string
		floods  []flowgen.Flood
		isFlood func(*flowgen.Flow) bool
		want    []string // each rule must contain one of these, in order
	}{
		{"dns", []flowgen.Flood{{Kind: flowgen.FloodDNSAmp, PPS: 60000, FlowsPerSecond: 100}}, bigUDPFrom(53),
			[]string{"protocol=udp src-port=53 packet-size="}},
		{"ntp", []flowgen.Flood{{Kind: flowgen.FloodNTPAmp, PPS: 60000, FlowsPerSecond: 100}}, bigUDPFrom(123),
			[]string{"protocol=udp src-port=123 packet-size="}},
		{"memcached", []flowgen.Flood{{Kind: flowgen.FloodMemcachedAmp, PPS: 60000, FlowsPerSecond: 100}}, bigUDPFrom(11211),
			[]string{"protocol=udp src-port=11211 packet-size="}},
		{"syn", []flowgen.Flood{{Kind: flowgen.FloodSYN, PPS: 60000, FlowsPerSecond: 100}}, isSYN,
			[]string{"protocol=tcp dst-port=80,443 tcp-flags=syn,!ack"}},
		{"fragment", []flowgen.Flood{{Kind: flowgen.FloodFragment, PPS: 60000, FlowsPerSecond: 100}},
			func(f *flowgen.Flow) bool { return f.Fragment }, []string{"protocol=udp fragment=true packet-size="}},
		{"dns+syn", []flowgen.Flood{{Kind: flowgen.FloodDNSAmp, PPS: 50000, FlowsPerSecond: 100},
			{Kind: flowgen.FloodSYN, PPS: 40000, FlowsPerSecond: 100}},
			func(f *flowgen.Flow) bool { return bigUDPFrom(53)(f) || isSYN(f) },
			[]string{"protocol=tcp dst-port=80,443 tcp-flags=syn,!ack", "protocol=udp src-port=53 packet-size="}},
	}
	t.Parallel()
	var all sync.WaitGroup
	defer all.Wait()
	for i, tc := range cases {
		all.Add(1)
		go t.Run(tc.name, func(t *testing.T) {
			defer all.Done()
			run := 16 * time.Second
			r := startFilterRig(t, i, map[string]string{"FLOWSHIELD_ACTION": "filter"}, Options{}, tc.floods, tc.isFlood, run)
			var ruledAt int // the run second the rules were on
			var words []string
			for deadline := r.start.Add(run); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if words = rawWords(r.emu, r.victim); len(words) >= len(tc.want) {
					ruledAt = r.count.seconds()
					break
				}
			}
			t.Logf("%s: rules on the router %v after the start: %q", tc.name, time.Since(r.start).Round(10*time.Millisecond), words)
			if len(words) != len(tc.want) {
				t.Fatalf("rules %q, want %d", words, len(tc.want))
			}
			for k, w := range tc.want {
				if !strings.HasPrefix(words[k], "chain=prerouting action=drop dst-address="+r.victim.String()+" "+w) {
					t.Errorf("rule %q, want it to start with the victim and %q", words[k], w)
				}
			}
			time.Sleep(time.Until(r.start.Add(run - time.Second)))
			flood, legit := r.count.since(ruledAt + 2)
			t.Logf("%s: after the rules: %d flood records, %d of the victim's own exported", tc.name, flood, legit)
			if flood != 0 {
				t.Errorf("%d flood records exported after the rules were on", flood)
			}
			if legit == 0 {
				t.Error("the victim's own traffic is no longer exported: the filter dropped it")
			}
			if in, _, ok := r.a.Engine().Host(r.victim); !ok || in.PPS <= 0 {
				t.Errorf("the detector no longer counts the victim's own traffic: %+v", in)
			}
			for _, bn := range r.a.mitigator.Bans() {
				if len(bn.Actions) != 1 || bn.Actions[0] != "filter" {
					t.Errorf("ban %+v", bn)
				}
			}
			if u := r.emu.UnknownMatchers(); len(u) != 0 {
				t.Errorf("matchers the router could not evaluate: %v", u)
			}
		})
	}
}

// TestLadderOnTheWire: a flood the filter cannot hold (a second UDP part
// of other sizes, too small a share to be a vector, still above the
// threshold) climbs to address-list and then blackhole after
// ESCALATE_AFTER, each step on the router within 1 s of its decision (the
// escalate event's time); a flood that saturates the uplink goes to
// blackhole at once.
func TestLadderOnTheWire(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 30 s of real time")
	}
	t.Parallel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go t.Run("not held", func(t *testing.T) {
		defer wg.Done()
		run := 30 * time.Second
		r := startFilterRig(t, 6, map[string]string{
			"FLOWSHIELD_ACTION": "filter,address-list,blackhole", "FLOWSHIELD_ESCALATE_AFTER": "8s",
		}, Options{}, []flowgen.Flood{
			{Kind: flowgen.FloodUDP, PPS: 100000, FlowsPerSecond: 100, PacketSize: 500},
			// too small a share to be a vector, above the threshold alone
			{Kind: flowgen.FloodICMP, PPS: 30000, FlowsPerSecond: 100},
		}, func(f *flowgen.Flow) bool { return f.Proto == 17 && f.SrcPort != 53 || f.Proto == 1 }, run)
		seen := map[string]time.Time{}
		for deadline := r.start.Add(run); time.Now().Before(deadline) && len(seen) < 3; time.Sleep(20 * time.Millisecond) {
			now := time.Now()
			if _, ok := seen["filter"]; !ok && len(rawWords(r.emu, r.victim)) > 0 {
				seen["filter"] = now
			}
			if _, ok := seen["address-list"]; !ok {
				for _, o := range r.emu.Objects(routerostest.MenuAddressList) {
					if o.Props["address"] == r.victim.String() {
						seen["address-list"] = now
					}
				}
			}
			if _, ok := seen["blackhole"]; !ok {
				if _, on := findObject(r.emu, routerostest.MenuRoute, "dst-address", r.victim); on {
					seen["blackhole"] = now
				}
			}
		}
		t.Logf("on the router after the start: filter %v, address-list %v, blackhole %v; rules %q",
			seen["filter"].Sub(r.start).Round(10*time.Millisecond), seen["address-list"].Sub(r.start).Round(10*time.Millisecond),
			seen["blackhole"].Sub(r.start).Round(10*time.Millisecond), rawWords(r.emu, r.victim))
		if len(seen) != 3 {
			t.Fatalf("steps on the router: %v", seen)
		}
		if !seen["filter"].Before(seen["address-list"]) || !seen["address-list"].Before(seen["blackhole"]) {
			t.Fatalf("steps out of order: %v", seen)
		}
		// (the step's time starts with the rules, which take a few ms to
		// reach the router)
		if d := seen["address-list"].Sub(seen["filter"]); d < 8*time.Second-500*time.Millisecond {
			t.Errorf("address-list %v after filter, before ESCALATE_AFTER", d)
		}
		if d := seen["blackhole"].Sub(seen["address-list"]); d < 8*time.Second-500*time.Millisecond {
			t.Errorf("blackhole %v after address-list, before ESCALATE_AFTER", d)
		}
		time.Sleep(time.Second) // the webhook's delivery
		esc := r.hook.of("escalate")
		if len(esc) != 2 {
			t.Fatalf("escalate events %v", esc)
		}
		for k, step := range []string{"address-list", "blackhole"} {
			e := esc[k]
			acts, _ := e["actions"].([]any)
			if len(acts) != k+2 || acts[k+1] != step || e["reason"] != "not_held" {
				t.Errorf("escalate event %v, want step %s", e, step)
			}
			decided, err := time.Parse(time.RFC3339Nano, e["time"].(string))
			if err != nil {
				t.Fatal(err)
			}
			if lag := seen[step].Sub(decided); lag > time.Second {
				t.Errorf("%s on the router %v after its decision, want within 1 s", step, lag)
			}
		}
		if bans := r.hook.of("ban"); len(bans) != 1 || bans[0]["actions"].([]any)[0] != "filter" {
			t.Errorf("ban events %v, want one with filter", bans)
		}
	})
	go t.Run("uplink saturated", func(t *testing.T) {
		defer wg.Done()
		var saturated atomic.Bool
		saturated.Store(true)
		run := 8 * time.Second
		r := startFilterRig(t, 7, map[string]string{
			"FLOWSHIELD_ACTION": "filter,address-list,blackhole", "FLOWSHIELD_ESCALATE_AFTER": "30s",
		}, Options{UplinkSaturated: saturated.Load}, []flowgen.Flood{
			{Kind: flowgen.FloodDNSAmp, PPS: 100000, FlowsPerSecond: 100},
		}, bigUDPFrom(53), run)
		var holed time.Time
		for deadline := r.start.Add(run); time.Now().Before(deadline) && holed.IsZero(); time.Sleep(20 * time.Millisecond) {
			if _, on := findObject(r.emu, routerostest.MenuRoute, "dst-address", r.victim); on {
				holed = time.Now()
			}
		}
		if holed.IsZero() {
			t.Fatal("no blackhole route")
		}
		time.Sleep(time.Second)
		bans, esc := r.hook.of("ban"), r.hook.of("escalate")
		if len(bans) != 1 || len(esc) != 1 || esc[0]["reason"] != "uplink_saturated" {
			t.Fatalf("ban events %v, escalate events %v", bans, esc)
		}
		banned, _ := time.Parse(time.RFC3339Nano, bans[0]["time"].(string))
		if lag := holed.Sub(banned); lag > time.Second {
			t.Errorf("blackhole on the router %v after the ban, want at once (within 1 s)", lag)
		}
		t.Logf("blackhole on the router %v after the start, %v after the ban", holed.Sub(r.start).Round(10*time.Millisecond), holed.Sub(banned).Round(10*time.Millisecond))
	})
}
