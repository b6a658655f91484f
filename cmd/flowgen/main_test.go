package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
)

func TestRunPrintsTotals(t *testing.T) {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var out bytes.Buffer
	args := []string{"-target", sink.LocalAddr().String(), "-format", "ipfix", "-rate", "2000", "-count", "500",
		"-duration", "5s", "-scenario", "background+synflood", "-flood-pps", "100000", "-sampling", "100", "-per-host"}
	if err := run(args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Format    string         `json:"format"`
		Datagrams uint64         `json:"datagrams"`
		Records   uint64         `json:"records"`
		Packets   uint64         `json:"packets"`
		FlowPkts  uint64         `json:"flow_packets"`
		PerHost   map[string]any `json:"per_host"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if r.Format != "ipfix" || r.Records != 500 || r.Datagrams == 0 || r.FlowPkts != r.Packets*100 || len(r.PerHost) == 0 {
		t.Fatalf("unexpected totals: %+v", r)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-format", "v7"},
		{"-prefix", "nonsense"},
		{"-scenario", "background+teleport"},
		{"-victim", "300.1.1.1"},
		{"-log-level", "loud"},
		{"-duration", "0s"},
	} {
		err := run(args, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("%s: accepted", strings.Join(args, " "))
		}
	}
}
