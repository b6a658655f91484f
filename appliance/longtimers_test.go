//go:build linux

package appliance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/flow/collector"
)

// TestLongTimerExporters runs real exporters with long timers (inactive
// timeouts of 15 s, an active timeout of 60 s, expiry intervals of 10 and
// 60 s) on live traffic sent at its real pace: a UDP flood to one protected
// host, long benign flows (68 s, cut by the active timeout) to three others,
// a busy DNS server (800 one-packet flows a second each way, 40% of the
// threshold) and light background flows. The frames go out of one end of a
// veth pair whose other end is in a network namespace the test creates, to
// a MAC address no interface has: the root namespace's kernel drops them
// (and does not forward on that end), the exporters' promiscuous captures
// on it see them. Each exporter exports over loopback to a flowshield of its
// own, which must declare exactly one attack, on the flood's victim, and
// learn the exporter's timers.
//
// The exporters share one run of traffic, so the cases run at the same
// time; each is checked once its exporter's last report is due.
func TestLongTimerExporters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real exporters on live traffic for about two minutes")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and a veth pair")
	}
	if os.Getenv("FLOWSHIELD_TEST_QEMU") != "" {
		t.Skip("network namespaces and packet sockets under user-mode qemu")
	}
	// Minutes of real time: beside the package's other tests.
	t.Parallel()
	softflowdBin := needTool(t, "softflowd")
	pmacctdBin := needTool(t, "pmacctd")
	nsn := ltSetupNetns(t)

	plan := ltPlan()
	cases := []*ltCase{
		{name: "softflowd-v9-expint10", expint: 10, start: ltSoftflowd(softflowdBin, "9")},
		{name: "pmacct-nfprobe-v9-expint10", expint: 10, start: ltPmacct(pmacctdBin), pmacct: true},
		// Its first reports (the flood's among them) come before its lag
		// settled: they may go uncounted, never piled (coldMiss).
		{name: "softflowd-ipfix-expint60", expint: 60, coldMiss: true, start: ltSoftflowd(softflowdBin, "10")},
	}
	for _, c := range cases {
		c.a = startTestAppliance(t, map[string]string{"FLOWSHIELD_THRESHOLD_PPS": "2000"})
		c.proc = c.start(t, nsn.root, c.expint, c.a.Collector().LocalAddr(collector.ProtocolNetFlow).String())
		c.mon = ltMonitor(c.a)
		t.Cleanup(c.mon.stop)
	}
	time.Sleep(2 * time.Second) // the exporters open their captures
	for _, c := range cases {
		if err := c.proc.alive(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}

	// Send the traffic in the background; the subtests wait for it.
	var sent ltSent
	done := make(chan struct{})
	go func() {
		defer close(done)
		sent = ltSend(nsn, plan)
	}()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			<-done
			if sent.err != nil {
				t.Fatalf("sending the traffic: %v", sent.err)
			}
			c.check(t, plan, sent)
		})
	}
}

// The traffic: times are offsets from the start of the run.
const (
	ltRun        = 68 * time.Second // long flows and background
	ltFloodStart = 20 * time.Second
	ltFloodEnd   = 45 * time.Second
	ltFloodPPS   = 4000
	ltLongPPS    = 25 // per long flow, 8 flows a host
	ltInactive   = 15 // the exporters' inactive timeouts
	ltMaxlife    = 60 // their active timeout
	ltBusyPPS    = 800
)

var (
	ltVictim    = netip.MustParseAddr("203.0.113.10")
	ltBusy      = netip.MustParseAddr("203.0.113.40")
	ltLongHosts = []netip.Addr{netip.MustParseAddr("203.0.113.20"), netip.MustParseAddr("203.0.113.21"), netip.MustParseAddr("203.0.113.22")}
)

type ltCase struct {
	name   string
	expint int
	pmacct bool
	// coldMiss: the flood reaches this exporter's first reports, which
	// come sorted oldest first, before the detector's lag for it settled
	// (detect/timers.go): missing the flood is allowed, a false alarm
	// never is.
	coldMiss bool
	start    func(t *testing.T, iface string, expint int, target string) *ltProc
	a        *Appliance
	proc     *ltProc
	mon      *ltMon
}

// lastReportDue is when the exporter has reported the flows that ended at
// end: softflowd expires a flow when the second after its inactive timeout,
// rounded up to the expiry interval, has passed; pmacct's plugin checks
// only when its poll times out (the expiry interval) once traffic stops.
func (c *ltCase) lastReportDue(end time.Time) time.Time {
	idle := end.Unix() + ltInactive
	due := (idle + int64(c.expint) - 1) / int64(c.expint) * int64(c.expint)
	at := time.Unix(due+2, 0)
	if c.pmacct {
		at = end.Add(time.Duration(ltInactive+2*c.expint+2) * time.Second)
	}
	return at.Add(3 * time.Second)
}

func (c *ltCase) check(t *testing.T, plan *ltTraffic, sent ltSent) {
	due := c.lastReportDue(sent.end)
	time.Sleep(time.Until(due))
	c.mon.stop()
	if err := c.proc.alive(); err != nil {
		t.Errorf("exporter: %v", err)
	}
	s := getStatus(t, c.a)
	attacks := c.a.Engine().Attacks(false)
	mon := c.mon.result()
	t.Logf("%s: traffic %s..%s (flood %s..%s, %d flood packets sent of %d), checked %s after its end",
		c.name, sent.start.Format("15:04:05.000"), sent.end.Format("15:04:05.000"),
		sent.floodStart.Format("15:04:05.000"), sent.floodEnd.Format("15:04:05.000"),
		sent.flood, sent.packets, time.Since(sent.end).Round(time.Second))
	if !mon.firstDatagram.IsZero() {
		t.Logf("%s: first export %s after the traffic's start", c.name, mon.firstDatagram.Sub(sent.start).Round(100*time.Millisecond))
	}
	if !mon.firstFlood.IsZero() {
		t.Logf("%s: flood's first records arrived %s after its first packet; the engine's timers then: %+v",
			c.name, mon.firstFlood.Sub(sent.floodStart).Round(100*time.Millisecond), mon.timersAtFlood)
	}
	if !mon.declared.IsZero() {
		t.Logf("%s: attack declared %s after the flood's first packet, %s after its first records arrived",
			c.name, mon.declared.Sub(sent.floodStart).Round(100*time.Millisecond), mon.declared.Sub(mon.firstFlood).Round(100*time.Millisecond))
	}
	if !mon.maxShiftAt.IsZero() {
		t.Logf("%s: largest shift seen %s, %s after the traffic's start", c.name, mon.maxShift, mon.maxShiftAt.Sub(sent.start).Round(100*time.Millisecond))
	}
	if !mon.activeKnown.IsZero() {
		t.Logf("%s: active timeout known %s after the traffic's start", c.name, mon.activeKnown.Sub(sent.start).Round(100*time.Millisecond))
	}
	for _, at := range attacks {
		end := "active"
		if !at.EndedAt.IsZero() {
			end = "ended " + at.EndedAt.Sub(sent.floodEnd).Round(100*time.Millisecond).String() + " after the flood's last packet"
		}
		t.Logf("%s: attack %s %s %s %s threshold=%s started %s after the traffic's start (%s after the flood's first packet), %s; peak %.0f pps; engine timers when seen: %+v",
			c.name, at.ID, at.IP, at.Direction, at.Type, at.Threshold,
			at.StartedAt.Sub(sent.start).Round(100*time.Millisecond), at.StartedAt.Sub(sent.floodStart).Round(100*time.Millisecond),
			end, at.PeakPPS, mon.seen[at.ID].timers)
	}
	totals := c.a.Engine().HostTotals()
	t.Logf("%s: highest windowed in pps seen (threshold 2000): victim %.0f (flood %d), long-flow hosts %.0f (200), busy DNS %.0f (%d)",
		c.name, mon.victimPPS, ltFloodPPS, mon.longPPS, mon.busyPPS, ltBusyPPS)
	t.Logf("%s: flowshield accounted %d flood packets of %d sent; long-flow hosts in: %d %d %d packets of %d",
		c.name, totals[ltVictim].In.Packets, sent.flood,
		totals[ltLongHosts[0]].In.Packets, totals[ltLongHosts[1]].In.Packets, totals[ltLongHosts[2]].In.Packets,
		plan.longIn/uint64(len(ltLongHosts)))

	if len(s.Exporters) != 1 {
		t.Fatalf("exporters: %+v", s.Exporters)
	}
	e := s.Exporters[0]
	js, _ := json.Marshal(e)
	t.Logf("%s: exporter status %s", c.name, js)
	var active, lag float64 = -1, -1
	if e.ActiveTimeoutSeconds != nil {
		active = *e.ActiveTimeoutSeconds
	}
	if e.InactiveLagSeconds != nil {
		lag = *e.InactiveLagSeconds
	}
	t.Logf("%s: learned active_timeout_s=%g (%s) inactive_lag_s=%g; engine timers %+v",
		c.name, active, e.ActiveTimeoutFrom, lag, mon.timers)

	// What must hold.
	if n := totals[ltVictim].In.Packets; n < sent.flood*8/10 || n > sent.flood {
		// (totals count every record, whether or not its lag had settled)
		t.Errorf("flood: %d packets accounted of %d sent (the capture or the export lost them)", n, sent.flood)
	}
	var onVictim []detect.Attack
	for _, at := range attacks {
		if at.IP == ltVictim {
			onVictim = append(onVictim, at)
		} else {
			t.Errorf("false alarm: attack %s on %s (%s %s, threshold %s, peak %.0f pps)", at.ID, at.IP, at.Direction, at.Type, at.Threshold, at.PeakPPS)
		}
	}
	switch {
	case len(onVictim) == 0 && c.coldMiss:
		t.Logf("%s: the flood came in the exporter's first reports, before its lag settled: not counted (allowed, see coldMiss)", c.name)
	case len(onVictim) == 0:
		t.Errorf("the flood on %s was not detected", ltVictim)
	case len(onVictim) > 1:
		t.Errorf("the flood on %s was declared %d times (one flood must be one attack)", ltVictim, len(onVictim))
	}
	for _, at := range onVictim {
		if at.Type != "udp_flood" || at.Direction != detect.In {
			t.Errorf("attack %s: type %s direction %s, want udp_flood in", at.ID, at.Type, at.Direction)
		}
		if at.StartedAt.Before(sent.floodStart) {
			t.Errorf("attack %s started %s, before the flood", at.ID, at.StartedAt)
		}
	}
	// softflowd and pmacct cut a flow when it has lasted more than maxlife
	// whole seconds: its record lasts 60 to 61 s.
	if active < ltMaxlife-1 || active > ltMaxlife+3 {
		t.Errorf("active_timeout_s=%g, want about %d", active, ltMaxlife)
	}
	// A short flow is reported inactive+1 s after its last packet, rounded
	// up to the expiry interval: the lag is spread over [16, 16+expint).
	if lag < ltInactive || lag > float64(ltInactive+c.expint+3) {
		t.Errorf("inactive_lag_s=%g, want %d..%d", lag, ltInactive, ltInactive+c.expint+3)
	}
	if t.Failed() {
		t.Logf("%s: exporter output:\n%s", c.name, c.proc.output())
	}
}

// ltNS is the namespace and the veth pair the traffic goes through.
type ltNS struct {
	name string // the namespace
	root string // the veth end in the root namespace, where exporters capture
	peer string // the end in the namespace, where the traffic is sent
}

// The sender's frames go to a MAC address no interface has: the root
// namespace's kernel drops them (not for this host) while the exporters'
// promiscuous captures see them.
var (
	ltDstMAC  = []byte{0x02, 0x00, 0x00, 0xf1, 0x0e, 0x01}
	ltSrcMAC  = []byte{0x02, 0x00, 0x00, 0xf1, 0x0e, 0x02}
	ltRootMAC = "02:00:00:f1:0e:fe"
)

func ltSetupNetns(t *testing.T) ltNS {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("ip (iproute2) is not installed")
	}
	id := os.Getpid() % 1000000
	n := ltNS{name: fmt.Sprintf("fslt%d", id), root: fmt.Sprintf("fsltr%d", id), peer: fmt.Sprintf("fsltn%d", id)}
	run := func(args ...string) error {
		out, err := exec.Command(ip, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	// Leftovers of an earlier run with the same pid.
	_ = exec.Command(ip, "netns", "del", n.name).Run()
	_ = exec.Command(ip, "link", "del", n.root).Run()
	if err := run("netns", "add", n.name); err != nil {
		t.Skipf("ip netns is not available: %v", err)
	}
	t.Cleanup(func() {
		_ = exec.Command(ip, "link", "del", n.root).Run()
		if err := run("netns", "del", n.name); err != nil {
			t.Errorf("teardown: %v", err)
		}
	})
	for _, args := range [][]string{
		{"link", "add", n.root, "type", "veth", "peer", "name", n.peer},
		{"link", "set", n.peer, "netns", n.name},
		{"link", "set", n.root, "address", ltRootMAC},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	// No addresses, no IPv6 chatter, no forwarding of what arrives.
	for _, f := range []struct{ path, v string }{
		{"/proc/sys/net/ipv6/conf/" + n.root + "/disable_ipv6", "1"},
		{"/proc/sys/net/ipv4/conf/" + n.root + "/forwarding", "0"},
	} {
		if err := os.WriteFile(f.path, []byte(f.v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(ip, "netns", "exec", n.name, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv6/conf/"+n.peer+"/disable_ipv6").CombinedOutput()
	if err != nil {
		t.Fatalf("disable IPv6 in the namespace: %v %s", err, out)
	}
	for _, args := range [][]string{
		{"link", "set", n.root, "up"},
		{"-n", n.name, "link", "set", n.peer, "up"},
	} {
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// ltProc is a running exporter.
type ltProc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *ltProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.out.Len() < 1<<20 {
		p.out.Write(b)
	}
	return len(b), nil
}

func (p *ltProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *ltProc) alive() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.output())
	default:
		return nil
	}
}

func ltStart(t *testing.T, dir, name string, args ...string) *ltProc {
	t.Helper()
	p := &ltProc{name: filepath.Base(name), done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		// The whole process group: pmacctd forks its plugin.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not exit", name)
		}
	})
	return p
}

func ltSoftflowd(bin, version string) func(t *testing.T, iface string, expint int, target string) *ltProc {
	return func(t *testing.T, iface string, expint int, target string) *ltProc {
		args := []string{"-i", iface, "-n", target, "-v", version, "-d", "-c", "ctl", "-p", "pid",
			"-m", "300000", "-t", fmt.Sprintf("maxlife=%d", ltMaxlife), "-t", fmt.Sprintf("expint=%d", expint)}
		for _, k := range []string{"general", "tcp", "tcp.rst", "tcp.fin", "udp", "icmp"} {
			args = append(args, "-t", fmt.Sprintf("%s=%d", k, ltInactive))
		}
		return ltStart(t, t.TempDir(), bin, append(args, "ip")...)
	}
}

func ltPmacct(bin string) func(t *testing.T, iface string, expint int, target string) *ltProc {
	return func(t *testing.T, iface string, expint int, target string) *ltProc {
		dir := t.TempDir()
		var to []string
		for _, k := range []string{"general", "tcp", "tcp.rst", "tcp.fin", "udp", "icmp"} {
			to = append(to, fmt.Sprintf("%s=%d", k, ltInactive))
		}
		to = append(to, fmt.Sprintf("maxlife=%d", ltMaxlife), fmt.Sprintf("expint=%d", expint))
		conf := fmt.Sprintf("daemonize: false\npcap_interface: %s\npcap_filter: ip\nplugins: nfprobe[p]\n"+
			"nfprobe_receiver[p]: %s\nnfprobe_version[p]: 9\nnfprobe_maxflows[p]: 300000\nnfprobe_timeouts[p]: %s\n",
			iface, target, strings.Join(to, ":"))
		path := filepath.Join(dir, "pmacctd.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return ltStart(t, dir, bin, "-f", path)
	}
}

// ltMon polls one flowshield while the traffic runs and records when
// things first happened.
type ltMon struct {
	a    *Appliance
	quit chan struct{}
	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	res  ltMonResult
}

type ltMonResult struct {
	firstDatagram, firstFlood, declared, activeKnown time.Time
	timers, timersAtFlood                            detect.ExporterTimers
	victimPPS, longPPS, busyPPS                      float64           // highest windowed rates in seen
	seen                                             map[string]ltSeen // by attack ID
	maxShift                                         time.Duration     // the largest shift seen, and when
	maxShiftAt                                       time.Time
}

// ltSeen is when the monitor first saw an attack, and the exporter's
// timers as the engine knew them then.
type ltSeen struct {
	at     time.Time
	timers detect.ExporterTimers
}

func ltMonitor(a *Appliance) *ltMon {
	m := &ltMon{a: a, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.quit:
				return
			case <-tick.C:
			}
			now := time.Now()
			var r ltMonResult
			m.mu.Lock()
			r = m.res
			m.mu.Unlock()
			if r.firstDatagram.IsZero() {
				if s := a.Status(); len(s.Exporters) > 0 && s.Exporters[0].Datagrams > 0 {
					r.firstDatagram = now
				}
			}
			ex := a.Engine().ExporterStats()
			if len(ex) > 0 {
				r.timers = ex[0].Timers
				if r.timers.Shift > r.maxShift {
					r.maxShift, r.maxShiftAt = r.timers.Shift, now
				}
				if r.activeKnown.IsZero() && r.timers.ActiveTimeout > 0 {
					r.activeKnown = now
				}
			}
			if r.firstFlood.IsZero() && a.Engine().HostTotals()[ltVictim].In.Packets > 0 {
				r.firstFlood, r.timersAtFlood = now, r.timers
			}
			if in, _, ok := a.Engine().Host(ltVictim); ok {
				r.victimPPS = max(r.victimPPS, in.PPS)
			}
			for _, h := range ltLongHosts {
				if in, _, ok := a.Engine().Host(h); ok {
					r.longPPS = max(r.longPPS, in.PPS)
				}
			}
			if in, _, ok := a.Engine().Host(ltBusy); ok {
				r.busyPPS = max(r.busyPPS, in.PPS)
			}
			for _, at := range a.Engine().Attacks(false) {
				if _, ok := r.seen[at.ID]; !ok {
					if r.seen == nil {
						r.seen = map[string]ltSeen{}
					}
					r.seen[at.ID] = ltSeen{at: now, timers: r.timers}
				}
				if at.IP == ltVictim && r.declared.IsZero() {
					r.declared = now
				}
			}
			m.mu.Lock()
			m.res = r
			m.mu.Unlock()
		}
	}()
	return m
}

func (m *ltMon) stop() {
	m.once.Do(func() { close(m.quit) })
	<-m.done
}

func (m *ltMon) result() ltMonResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.res
}
