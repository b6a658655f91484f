package sflow

import (
	"encoding/xml"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/pcapfile"
)

// testdataDir holds the shared real-device captures (see its README); they
// are read in place, never copied.
const testdataDir = "../../../shared/testdata/sflow"

func captures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.pcap"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sFlow captures in %s (err %v)", testdataDir, err)
	}
	return files
}

func readCapture(t testing.TB, path string) []pcapfile.Packet {
	t.Helper()
	pkts, err := pcapfile.ReadFile(path)
	if err != nil {
		t.Fatalf("reading capture: %v", err)
	}
	if len(pkts) == 0 {
		t.Fatalf("%s holds no UDP datagram", path)
	}
	return pkts
}

// decodeCapture decodes every datagram of a capture, as the collector would.
func decodeCapture(t testing.TB, pkts []pcapfile.Packet) *collectSink {
	t.Helper()
	d := New(DefaultConfiguration())
	s := &collectSink{}
	var rec flow.Record
	for _, p := range pkts {
		d.Decode(&flow.Datagram{Exporter: p.Src.Addr(), Payload: p.Payload, Received: p.Time.UnixNano()}, &rec, s)
	}
	return s
}

// TestConformanceTshark decodes each capture and compares it, sample by
// sample, with what tshark's own sFlow dissector finds in the same file:
// record count, summed packets and bytes, and the packet fields.
func TestConformanceTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is required in CI (apt-get install -y tshark)")
		}
		t.Skip("tshark not installed")
	}
	for _, path := range captures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			pkts := readCapture(t, path)
			got := decodeCapture(t, pkts)
			if len(got.errors) != 0 {
				t.Fatalf("decode errors: %v", got.errors)
			}
			want := tsharkSamples(t, path, pkts[0].Dst.Port())
			if len(want) == 0 {
				t.Fatal("tshark found no flow sample")
			}
			var gotPkts, gotBytes, wantBytes uint64
			for _, r := range got.records {
				gotPkts += r.Packets
				gotBytes += r.Bytes
			}
			for _, w := range want {
				wantBytes += w.Bytes
			}
			if len(got.records) != len(want) || gotPkts != uint64(len(want)) || gotBytes != wantBytes {
				t.Fatalf("records/packets/bytes: got %d/%d/%d, tshark %d/%d/%d",
					len(got.records), gotPkts, gotBytes, len(want), len(want), wantBytes)
			}
			for i, w := range want {
				g := got.records[i]
				g.Exporter, g.Received, g.Start, g.End, g.ObservationDomain, g.Format = netip.Addr{}, 0, 0, 0, 0, 0
				if g != w {
					t.Errorf("sample %d\n   got %+v\ntshark %+v", i, g, w)
				}
			}
			t.Logf("%d records, %d packets, %d bytes: equal to tshark", len(want), gotPkts, gotBytes)
		})
	}
}

// pdmlNode is one proto or field element of tshark's PDML output.
type pdmlNode struct {
	XMLName xml.Name
	Name    string     `xml:"name,attr"`
	Show    string     `xml:"show,attr"`
	Size    int        `xml:"size,attr"`
	Kids    []pdmlNode `xml:",any"`
}

// find returns the first descendant (depth first, document order) named name.
func (n *pdmlNode) find(name string) *pdmlNode {
	for i := range n.Kids {
		k := &n.Kids[i]
		if k.Name == name {
			return k
		}
		if f := k.find(name); f != nil {
			return f
		}
	}
	return nil
}

// findAny returns the first descendant whose name is one of names.
func (n *pdmlNode) findAny(names ...string) *pdmlNode {
	for i := range n.Kids {
		k := &n.Kids[i]
		for _, name := range names {
			if k.Name == name {
				return k
			}
		}
		if f := k.findAny(names...); f != nil {
			return f
		}
	}
	return nil
}

func (n *pdmlNode) num(t testing.TB, name string) uint64 {
	t.Helper()
	f := n.find(name)
	if f == nil {
		t.Fatalf("tshark output lacks %s", name)
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(f.Show, "0x"), base(f.Show), 64)
	if err != nil {
		t.Fatalf("tshark %s=%q: %v", name, f.Show, err)
	}
	return v
}

func base(s string) int {
	if strings.HasPrefix(s, "0x") {
		return 16
	}
	return 10
}

func (n *pdmlNode) addr(t testing.TB, name string) netip.Addr {
	t.Helper()
	f := n.find(name)
	if f == nil {
		t.Fatalf("tshark output lacks %s", name)
	}
	a, err := netip.ParseAddr(f.Show)
	if err != nil {
		t.Fatalf("tshark %s=%q: %v", name, f.Show, err)
	}
	return a
}

// tsharkSamples runs tshark on the capture and returns, per flow sample in
// order, the record flowshield should produce, built from tshark's fields
// with the rules of the package comment.
func tsharkSamples(t *testing.T, path string, port uint16) []flow.Record {
	t.Helper()
	out, err := exec.Command("tshark", "-r", path, "-d", fmt.Sprintf("udp.port==%d,sflow", port), "-T", "pdml").Output()
	if err != nil {
		t.Fatalf("running tshark on %s: %v", path, err)
	}
	var doc struct {
		Packets []pdmlNode `xml:"packet"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("parsing tshark PDML: %v", err)
	}
	var recs []flow.Record
	for i := range doc.Packets {
		for j := range doc.Packets[i].Kids {
			sf := &doc.Packets[i].Kids[j]
			if sf.Name != "sflow" {
				continue
			}
			for k := range sf.Kids {
				s := &sf.Kids[k]
				if s.Name != "" || s.find("sflow.flow_sample.sampling_rate") == nil {
					continue // not a flow sample
				}
				recs = append(recs, tsharkSample(t, s))
			}
		}
	}
	return recs
}

func tsharkSample(t *testing.T, s *pdmlNode) flow.Record {
	r := flow.Record{Packets: 1, SamplingRate: uint32(s.num(t, "sflow.flow_sample.sampling_rate"))}
	if s.find("sflow.flow_sample.input_interface_format") != nil { // expanded
		r.InIf = ifIndex(uint32(s.num(t, "sflow.flow_sample.input_interface_format")), uint32(s.num(t, "sflow.flow_sample.input_interface_value")))
		r.OutIf = ifIndex(uint32(s.num(t, "sflow.flow_sample.output_interface.format")), uint32(s.num(t, "sflow.flow_sample.output_interface_value")))
	} else {
		in := uint32(s.num(t, "sflow.flow_sample.input_interface"))
		r.InIf = ifIndex(in>>30, in&0x3fffffff)
		r.OutIf = ifIndex(uint32(s.num(t, "sflow.flow_sample.output_interface_format")), uint32(s.num(t, "sflow.flow_sample.output_interface_value")))
	}
	for i := range s.Kids {
		rec := &s.Kids[i]
		if rec.Name != "" || rec.find("sflow_245.flow_record_format") == nil {
			continue
		}
		switch rec.num(t, "sflow_245.flow_record_format") {
		case recordRawHeader:
			if tsharkHeader(t, rec, &r) {
				return r
			}
		case recordSampledIPv4:
			r.Bytes = rec.num(t, "sflow_245.ip.length")
			r.Proto = uint8(rec.num(t, "sflow.ip_protocol"))
			r.SrcAddr = rec.addr(t, "sflow_245.ipv4_src")
			r.DstAddr = rec.addr(t, "sflow_245.ipv4_dst")
			r.SrcPort = uint16(rec.num(t, "sflow_245.ip.source_port"))
			r.DstPort = uint16(rec.num(t, "sflow.ip.destination_port"))
			for bit, name := range []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"} {
				if rec.num(t, "sflow_245.ip.tcp_flag."+name) != 0 {
					r.TCPFlags |= 1 << bit
				}
			}
			return r
		case recordSampledIPv6:
			t.Fatal("no capture has a sampled IPv6 record yet: extend the reference")
		}
	}
	return r
}

// tsharkHeader fills r from tshark's dissection of a raw packet header: the
// outermost IP header and the first transport header after it.
func tsharkHeader(t *testing.T, rec *pdmlNode, r *flow.Record) bool {
	frame := int64(rec.num(t, "sflow_245.header.frame_length")) - int64(rec.num(t, "sflow_245.header.payload_stripped"))
	hdr := rec.find("sflow_245.header")
	ip := hdr.findAny("ip", "ipv6")
	if ip == nil {
		l2 := 0
		for _, k := range hdr.Kids {
			if k.Name == "eth" || k.Name == "vlan" || k.Name == "mpls" {
				l2 += k.Size
			}
		}
		r.Bytes = uint64(max(frame-int64(l2), 0))
		return false
	}
	switch ip.Name {
	case "ip":
		r.SrcAddr, r.DstAddr = ip.addr(t, "ip.src"), ip.addr(t, "ip.dst")
		r.Proto = uint8(ip.num(t, "ip.proto"))
		r.Bytes = ip.num(t, "ip.len")
		r.Fragment = ip.num(t, "ip.flags.mf") != 0 || ip.num(t, "ip.frag_offset") != 0
	case "ipv6":
		r.SrcAddr, r.DstAddr = ip.addr(t, "ipv6.src"), ip.addr(t, "ipv6.dst")
		r.Proto = uint8(ip.num(t, "ipv6.nxt"))
		r.Bytes = 40 + ip.num(t, "ipv6.plen")
		if ip.find("ipv6.fraghdr") != nil {
			t.Fatal("no capture has an IPv6 fragment yet: extend the reference")
		}
	}
	switch l4 := hdr.findAny("tcp", "udp", "icmp", "icmpv6"); {
	case l4 == nil:
	case l4.Name == "tcp":
		r.SrcPort, r.DstPort = uint16(l4.num(t, "tcp.srcport")), uint16(l4.num(t, "tcp.dstport"))
		r.TCPFlags = uint8(l4.num(t, "tcp.flags"))
	case l4.Name == "udp":
		r.SrcPort, r.DstPort = uint16(l4.num(t, "udp.srcport")), uint16(l4.num(t, "udp.dstport"))
	case l4.Name == "icmp":
		r.DstPort = uint16(l4.num(t, "icmp.type")<<8 | l4.num(t, "icmp.code"))
	case l4.Name == "icmpv6":
		r.DstPort = uint16(l4.num(t, "icmpv6.type")<<8 | l4.num(t, "icmpv6.code"))
	}
	return true
}
