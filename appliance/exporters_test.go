package appliance

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/api"
	"github.com/flowshield/flowshield/flow/collector"
)

// TestRealExporters feeds one capture through Debian's softflowd (NetFlow
// v5, v9, IPFIX) and pmacct (nfprobe NetFlow v9, sfprobe sFlow) over
// loopback and checks that what flowshield accounts equals the capture's
// own totals exactly.
func TestRealExporters(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real exporters")
	}
	pcap, want := makeCapture(t, 6000)
	cases := []struct {
		name     string
		protocol collector.Protocol
		run      func(t *testing.T, target string)
		ipv4Only bool
	}{
		{"softflowd-v5", collector.ProtocolNetFlow, softflowd(pcap, "5"), true},
		{"softflowd-v9", collector.ProtocolNetFlow, softflowd(pcap, "9"), false},
		{"softflowd-ipfix", collector.ProtocolNetFlow, softflowd(pcap, "10"), false},
		{"pmacct-nfprobe-v9", collector.ProtocolNetFlow, pmacct(pcap, "nfprobe"), false},
		{"pmacct-sfprobe", collector.ProtocolSFlow, pmacct(pcap, "sfprobe"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := startTestAppliance(t, nil)
			target := a.Collector().LocalAddr(tc.protocol).String()
			var relay *sflowRelay
			if tc.protocol == collector.ProtocolSFlow {
				// pmacct's sfprobe does not sample every packet of a
				// capture (it skips a few at start-up), so the reference
				// is what it sent, decoded by tshark, not the capture.
				relay = newSFlowRelay(t, target)
				target = relay.addr()
			}
			tc.run(t, target)
			wantPackets, wantBytes := want.Packets, want.Bytes
			if tc.ipv4Only {
				wantPackets, wantBytes = want.IPv4Packets, want.IPv4Bytes
			}
			if relay != nil {
				wantPackets, wantBytes = relay.tsharkTotals(t)
				t.Logf("pmacct sfprobe sent %d samples (%d bytes) of the capture's %d packets", wantPackets, wantBytes, want.Packets)
			}
			s := waitStatus(t, a, 20*time.Second, func(s api.Status) bool {
				return s.FlowPackets >= wantPackets && s.FlowBytes >= wantBytes
			})
			if s.FlowPackets != wantPackets || s.FlowBytes != wantBytes {
				t.Fatalf("flow_packets=%d flow_bytes=%d, the capture holds %d packets and %d bytes",
					s.FlowPackets, s.FlowBytes, wantPackets, wantBytes)
			}
			if len(s.Exporters) != 1 {
				t.Fatalf("exporters: %+v", s.Exporters)
			}
			e := s.Exporters[0]
			if e.FlowPackets != wantPackets || e.FlowBytes != wantBytes || e.Records != s.Records {
				t.Fatalf("exporter counters %+v disagree with the totals", e)
			}
			for kind, n := range e.DecodeErrors {
				if n != 0 {
					t.Errorf("decode errors %s=%d", kind, n)
				}
			}
			if s.Dropped != 0 {
				t.Errorf("dropped=%d", s.Dropped)
			}
			t.Logf("%s: %d datagrams, %d records, %d packets, %d bytes", tc.name, e.Datagrams, e.Records, s.FlowPackets, s.FlowBytes)
			if relay == nil {
				checkPerHost(t, a, want, tc.ipv4Only)
			}
		})
	}
}

// checkPerHost compares what flowshield accounted per protected host with
// the capture's per-destination totals.
func checkPerHost(t *testing.T, a *Appliance, want captureTotals, ipv4Only bool) {
	t.Helper()
	totals := a.Engine().HostTotals()
	checked := 0
	for ip, w := range want.PerDst {
		addr := netip.MustParseAddr(ip)
		if !protected(a.cfg.Networks, addr) || (ipv4Only && !addr.Is4()) {
			continue
		}
		got := totals[addr]
		if got.In.Packets != w.Packets || got.In.Bytes != w.Bytes {
			t.Errorf("host %s: accounted %d packets %d bytes in, the capture holds %d and %d",
				ip, got.In.Packets, got.In.Bytes, w.Packets, w.Bytes)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no protected host in the capture")
	}
}

func protected(networks []netip.Prefix, a netip.Addr) bool {
	for _, p := range networks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func softflowd(pcap, version string) func(t *testing.T, target string) {
	return func(t *testing.T, target string) {
		bin := needTool(t, "softflowd")
		dir := t.TempDir()
		// softflowd keeps the capture's name in an interface-name sized
		// buffer (16 bytes), and with its control socket outside its
		// working directory it waits on it after the capture's end
		// instead of exiting; so it runs in a directory of its own with
		// short relative names.
		if err := os.Link(pcap, filepath.Join(dir, "t.pcap")); err != nil {
			t.Fatal(err)
		}
		args := []string{"-r", "t.pcap", "-n", target, "-v", version, "-d", "-c", "ctl", "-p", "pid"}
		if version != "5" {
			args = append(args, "-6")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("softflowd: %v\n%s", err, out)
		}
	}
}

func pmacct(pcap, plugin string) func(t *testing.T, target string) {
	return func(t *testing.T, target string) {
		bin := needTool(t, "pmacctd")
		dir := t.TempDir()
		conf := fmt.Sprintf("daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\nplugins: %s[p]\n", pcap, plugin)
		switch plugin {
		case "nfprobe":
			conf += fmt.Sprintf("nfprobe_receiver[p]: %s\nnfprobe_version[p]: 9\n", target)
		case "sfprobe":
			conf += fmt.Sprintf("sfprobe_receiver[p]: %s\nsfprobe_agentip[p]: 127.0.0.1\nsampling_rate[p]: 1\n", target)
		}
		path := filepath.Join(dir, "pmacctd.conf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// pmacctd sometimes exits 1 at the end of a capture file when its
		// core sees the plugin leave first ("connection lost to 'p-sfprobe'")
		// after everything was exported; the totals below are the judge.
		if out, err := exec.CommandContext(ctx, bin, "-f", path).CombinedOutput(); err != nil {
			if ctx.Err() != nil || !strings.Contains(string(out), "Shutting down") {
				t.Fatalf("pmacctd: %v\n%s", err, out)
			}
			t.Logf("pmacctd: %v (ignored: it shut down after the capture)", err)
		}
	}
}

// sflowRelay receives an exporter's sFlow datagrams, writes them to a
// capture for tshark, and forwards them to flowshield.
type sflowRelay struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pcap bytes.Buffer
	port uint16
	done chan struct{}
}

func newSFlowRelay(t *testing.T, target string) *sflowRelay {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.Dial("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	r := &sflowRelay{conn: conn, port: uint16(conn.LocalAddr().(*net.UDPAddr).Port), done: make(chan struct{})}
	// libpcap header, LINKTYPE_RAW (IPv4 without link layer).
	hdr := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 101, 0, 0, 0}
	r.pcap.Write(hdr)
	go func() {
		defer close(r.done)
		buf := make([]byte, 65535)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			r.record(buf[:n])
			if _, err := out.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); out.Close(); <-r.done })
	return r
}

func (r *sflowRelay) addr() string { return r.conn.LocalAddr().String() }

// record appends the payload as an IPv4/UDP packet to the capture.
func (r *sflowRelay) record(payload []byte) {
	ip := make([]byte, 28+len(payload))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	binary.BigEndian.PutUint16(ip[20:], 6343)
	binary.BigEndian.PutUint16(ip[22:], r.port)
	binary.BigEndian.PutUint16(ip[24:], uint16(8+len(payload)))
	copy(ip[28:], payload)
	var rec [16]byte
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(ip)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(ip)))
	r.mu.Lock()
	r.pcap.Write(rec[:])
	r.pcap.Write(ip)
	r.mu.Unlock()
}

// tsharkTotals waits until the exporter has been quiet for a second, then
// sums the sampled packets' layer-3 lengths as tshark decodes them.
func (r *sflowRelay) tsharkTotals(t *testing.T) (packets, bytes uint64) {
	t.Helper()
	needTool(t, "tshark")
	last := -1
	for i := 0; i < 50; i++ {
		r.mu.Lock()
		n := r.pcap.Len()
		r.mu.Unlock()
		if n == last {
			break
		}
		last = n
		time.Sleep(time.Second)
	}
	path := filepath.Join(t.TempDir(), "sflow.pcap")
	r.mu.Lock()
	err := os.WriteFile(path, r.pcap.Bytes(), 0o644)
	r.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tshark", "-r", path, "-d", fmt.Sprintf("udp.port==%d,sflow", r.port),
		"-T", "fields", "-E", "separator=;", "-E", "aggregator=,", "-e", "ip.len", "-e", "ipv6.plen").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		cols := strings.SplitN(line, ";", 2)
		v4 := strings.Split(cols[0], ",")
		for _, v := range v4[1:] { // the first is the relay's own IPv4 header
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("tshark ip.len %q", v)
			}
			packets++
			bytes += n
		}
		if len(cols) == 2 && cols[1] != "" {
			for _, v := range strings.Split(cols[1], ",") {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					t.Fatalf("tshark ipv6.plen %q", v)
				}
				packets++
				bytes += n + 40
			}
		}
	}
	return packets, bytes
}
