package netflow

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/flowshield/flowshield/flow"
	"github.com/flowshield/flowshield/flow/pcapfile"
)

// testdataDir holds the shared real-device captures (see its README).
const testdataDir = "../../../shared/testdata/netflow"

// captureGroups lists each capture with the template files that must be
// fed before it, from the same exporter.
var captureGroups = []struct {
	name  string
	files []string
}{
	{"data+templates", []string{"data+templates.pcap"}},
	{"cisco-options", []string{"template.pcap", "options-template.pcap", "options-data.pcap", "data.pcap"}},
	{"datalink", []string{"datalink-template.pcap", "datalink-data.pcap"}},
	{"ethernet-over-mpls", []string{"ethernet-over-mpls-with-control-word-template.pcap", "ethernet-over-mpls-with-control-word-data.pcap"}},
	{"icmp", []string{"icmp-template.pcap", "icmp-data.pcap"}},
	{"ipfix-srv6", []string{"ipfix-srv6-template.pcap", "ipfix-srv6-data.pcap"}},
	{"ipfixprobe", []string{"ipfixprobe-templates.pcap", "ipfixprobe-data.pcap"}},
	{"juniper-cpid", []string{"juniper-cpid-template.pcap", "juniper-cpid-data.pcap"}},
	{"mpls", []string{"mpls.pcap"}},
	{"multiplesamplingrates", []string{"multiplesamplingrates-template.pcap", "multiplesamplingrates-options-template.pcap", "multiplesamplingrates-options-data.pcap", "multiplesamplingrates-data.pcap"}},
	{"nat", []string{"nat.pcap"}},
	{"nfv5", []string{"nfv5.pcap"}},
	{"physicalinterfaces", []string{"physicalinterfaces.pcap"}},
	{"samplingrate", []string{"samplingrate-template.pcap", "samplingrate-data.pcap"}},
}

// readGroup returns the datagrams of a capture group in feeding order.
func readGroup(t testing.TB, files []string) []pcapfile.Packet {
	t.Helper()
	var out []pcapfile.Packet
	for _, f := range files {
		pkts, err := pcapfile.ReadFile(filepath.Join(testdataDir, f))
		if err != nil {
			t.Fatalf("reading capture: %v", err)
		}
		out = append(out, pkts...)
	}
	if len(out) == 0 {
		t.Fatalf("no datagrams in %v", files)
	}
	return out
}

func decodeGroup(d *Decoder, pkts []pcapfile.Packet) *collectSink {
	sink := &collectSink{}
	var rec flow.Record
	for _, p := range pkts {
		dg := flow.Datagram{Exporter: p.Src.Addr(), Payload: p.Payload, Received: p.Time.UnixNano()}
		d.Decode(&dg, &rec, sink)
	}
	return sink
}

func TestCapturesMatchTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark is required when CI=true (apt-get install -y tshark)")
		}
		t.Skip("tshark not installed")
	}
	if _, err := os.Stat(testdataDir); err != nil {
		t.Fatalf("shared testdata missing: %v", err)
	}
	for _, g := range captureGroups {
		t.Run(g.name, func(t *testing.T) {
			pkts := readGroup(t, g.files)
			sink := decodeGroup(New(DefaultConfiguration()), pkts)
			merged := filepath.Join(t.TempDir(), "merged.pcap")
			if err := mergeCaptures(merged, g.files); err != nil {
				t.Fatal(err)
			}
			want, noTemplate, err := tsharkTotals(tshark, merged, pkts[0].Dst.Port())
			if err != nil {
				t.Fatal(err)
			}
			// The only drops allowed are data sets whose template is not in
			// the capture at all, which tshark reports the same way.
			if sink.errors[flow.ErrNoTemplate] != noTemplate || sink.errorCount() != noTemplate {
				t.Errorf("decode errors %v, tshark found %d sets without template and nothing else", sink.errors, noTemplate)
			}
			var got totals
			for _, r := range sink.recs {
				got.records++
				got.packets += r.Packets
				got.bytes += r.Bytes
			}
			t.Logf("records/packets/bytes %+v, tshark %+v, %d sets without template", got, want, noTemplate)
			if got != want {
				t.Errorf("records/packets/bytes = %+v, tshark says %+v", got, want)
			}
			if want.records == 0 {
				t.Errorf("tshark decoded no flow records: test would prove nothing")
			}
		})
	}
}

type totals struct {
	records        int
	packets, bytes uint64
}

// mergeCaptures concatenates libpcap files of one link type into dst, so
// tshark sees the templates before the data, as the decoder does.
func mergeCaptures(dst string, files []string) error {
	var out []byte
	for i, f := range files {
		b, err := os.ReadFile(filepath.Join(testdataDir, f))
		if err != nil {
			return fmt.Errorf("reading capture: %w", err)
		}
		if len(b) < 24 {
			return fmt.Errorf("capture %s: short header", f)
		}
		if i == 0 {
			out = append(out, b...)
			continue
		}
		if !bytes.Equal(b[:4], out[:4]) || !bytes.Equal(b[20:24], out[20:24]) {
			return fmt.Errorf("capture %s: byte order or link type differs from %s", f, files[0])
		}
		out = append(out, b[24:]...)
	}
	return os.WriteFile(dst, out, 0o644)
}

var (
	reFlowSetID  = regexp.MustCompile(`^\s+FlowSet Id: (.*)\((\d+)\)$`)
	reTmplID     = regexp.MustCompile(`^\s+Template Id: (\d+)$`)
	reFlow       = regexp.MustCompile(`^\s+(Flow \d+|pdu \d+/\d+)$`)
	reNoTemplate = regexp.MustCompile(`^\s+Data \(\d+ bytes\), no template found$`)
	reCounter    = regexp.MustCompile(`^\s+(Packets|Octets): (\d+)$`)
	reFrameSize  = regexp.MustCompile(`^\s+Data Link Frame Size: (\d+)$`)
)

// tsharkTotals runs tshark's NetFlow/IPFIX dissector and sums the flow
// records of data sets (options data excluded): forward Packets and Octets
// (reverse biflow counters excluded, as we map forward only); a sampled
// frame record (RFC 7133, no counters) counts 1 packet of its frame size.
func tsharkTotals(tshark, file string, port uint16) (tot totals, noTemplate int, err error) {
	out, err := exec.Command(tshark, "-r", file, "-d", fmt.Sprintf("udp.port==%d,cflow", port), "-V").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return tot, 0, fmt.Errorf("running tshark: %w: %s", err, ee.Stderr)
		}
		return tot, 0, fmt.Errorf("running tshark: %w", err)
	}
	optionTemplates := map[string]bool{}
	inOptionsTemplateSet, inOptionsData, inFlow := false, false, false
	var fPkts, fBytes, fFrame uint64
	var hasPkts, hasBytes, hasFrame bool
	endFlow := func() {
		if !inFlow {
			return
		}
		inFlow = false
		tot.records++
		switch {
		case hasPkts || hasBytes:
			tot.packets += fPkts
			tot.bytes += fBytes
		case hasFrame:
			tot.packets++
			tot.bytes += fFrame
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if reNoTemplate.MatchString(line) {
			noTemplate++
			continue
		}
		if m := reFlowSetID.FindStringSubmatch(line); m != nil {
			endFlow()
			inOptionsTemplateSet = strings.Contains(m[1], "Options Template")
			inOptionsData = strings.Contains(m[1], "Data") && !strings.Contains(m[1], "Template") && optionTemplates[m[2]]
			continue
		}
		if strings.HasPrefix(line, "Frame ") {
			endFlow()
			continue
		}
		if m := reTmplID.FindStringSubmatch(line); m != nil && inOptionsTemplateSet {
			optionTemplates[m[1]] = true
			continue
		}
		if reFlow.MatchString(line) {
			endFlow()
			if !inOptionsData {
				inFlow = true
				fPkts, fBytes, fFrame = 0, 0, 0
				hasPkts, hasBytes, hasFrame = false, false, false
			}
			continue
		}
		if !inFlow {
			continue
		}
		if m := reCounter.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseUint(m[2], 10, 64)
			if m[1] == "Packets" && !hasPkts {
				fPkts, hasPkts = v, true
			} else if m[1] == "Octets" && !hasBytes {
				fBytes, hasBytes = v, true
			}
		} else if m := reFrameSize.FindStringSubmatch(line); m != nil {
			fFrame, _ = strconv.ParseUint(m[1], 10, 64)
			hasFrame = true
		}
	}
	endFlow()
	return tot, noTemplate, sc.Err()
}

// TestCapturesMatchGoflow2 compares every record field by field with
// goflow2's decoders and producer/proto on the same datagrams. Where we
// decode more than goflow2 (documented in the package comment), the test
// checks our value against what the capture says instead.
func TestCapturesMatchGoflow2(t *testing.T) {
	if _, err := os.Stat(testdataDir); err != nil {
		t.Fatalf("shared testdata missing: %v", err)
	}
	for _, g := range captureGroups {
		t.Run(g.name, func(t *testing.T) {
			pkts := readGroup(t, g.files)
			d := New(DefaultConfiguration())
			ref := newGoflowRef()
			var rec flow.Record
			total := 0
			for i, p := range pkts {
				dg := flow.Datagram{Exporter: p.Src.Addr(), Payload: p.Payload, Received: p.Time.UnixNano()}
				sink := &collectSink{}
				d.Decode(&dg, &rec, sink)
				want, err := ref.decode(&dg)
				if err != nil {
					t.Fatalf("datagram %d: goflow2: %v", i, err)
				}
				if len(sink.recs) != len(want) {
					t.Fatalf("datagram %d: %d records, goflow2 %d", i, len(sink.recs), len(want))
				}
				for j := range want {
					compareWithGoflow(t, g.name, fmt.Sprintf("datagram %d record %d", i, j), sink.recs[j], want[j])
				}
				total += len(want)
			}
			if total == 0 {
				t.Fatal("no records compared")
			}
		})
	}
}

func compareWithGoflow(t *testing.T, group, where string, got, want flow.Record) {
	t.Helper()
	// goflow2 sets no observation domain for v5; we use engine type/id.
	if got.Format == flow.FormatNetFlowV5 {
		want.ObservationDomain = got.ObservationDomain
	}
	switch group {
	case "icmp":
		// v9 template with IPFIX flowStart/EndMilliseconds (152/153):
		// goflow2 reads those only in IPFIX and falls back to the export
		// time; we read them. Check ours is the exported ms value instead.
		if got.Start == want.Start || got.End == want.End || got.Start > got.End || got.End > got.Exported {
			t.Errorf("%s: icmp v9 times not taken from 152/153: %+v", where, got)
		}
		want.Start, want.End = got.Start, got.End
	case "multiplesamplingrates":
		// Records carry FLOW_SAMPLER_ID; options data map sampler 1 to
		// 1:2000 and 2 to 1:4000. goflow2 applies the first rate to all.
		if got.SamplingRate != 2000 && got.SamplingRate != 4000 {
			t.Errorf("%s: sampling rate %d, want the record's sampler rate 2000 or 4000", where, got.SamplingRate)
		}
		want.SamplingRate = got.SamplingRate
	case "samplingrate":
		// v9 data records carry SAMPLING_INTERVAL 2048 (big-endian);
		// goflow2 reads 34 only from options data.
		if got.SamplingRate != 2048 {
			t.Errorf("%s: sampling rate %d, want 2048 from the record's field 34", where, got.SamplingRate)
		}
		want.SamplingRate = got.SamplingRate
	case "physicalinterfaces":
		// samplingPacketInterval 1, samplingPacketSpace 999: 1 in 1000.
		if got.SamplingRate != 1000 {
			t.Errorf("%s: sampling rate %d, want 1000 from 305/306", where, got.SamplingRate)
		}
		want.SamplingRate = got.SamplingRate
	case "mpls":
		// samplingPacketInterval 1, samplingPacketSpace 9: 1 in 10.
		// goflow2 reads 305 alone as the rate (1).
		if got.SamplingRate != 10 {
			t.Errorf("%s: sampling rate %d, want 10 from 305/306", where, got.SamplingRate)
		}
		want.SamplingRate = got.SamplingRate
	}
	got.Exported, got.Format = 0, 0 // goflow2 has no equivalent fields
	if got != want {
		t.Errorf("%s:\n got  %+v\n want %+v", where, got, want)
	}
}
