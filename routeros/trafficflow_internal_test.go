package routeros

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestParseTrafficFlowDurations: the timer forms RouterOS prints, v7 units
// and v6 clocks alike.
func TestParseTrafficFlowDurations(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "30m", want: 30 * time.Minute},
		{in: "15s", want: 15 * time.Second},
		{in: "1m", want: time.Minute},
		{in: "1s", want: time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1d2h3m4s", want: 26*time.Hour + 3*time.Minute + 4*time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1s500ms", want: 1500 * time.Millisecond},
		{in: "00:30:00", want: 30 * time.Minute},
		{in: "00:00:15", want: 15 * time.Second},
		{in: "1d02:00:00", want: 26 * time.Hour},
		{in: "00:00:00.5", want: 500 * time.Millisecond},
		{in: "60", want: time.Minute},
		{in: "", bad: true},
		{in: "soon", bad: true},
		{in: "1x", bad: true},
		{in: "1:2", bad: true},
		{in: "8000000:00:00", bad: true}, // overflows in rosfmt: must not come out negative
		{in: "00:00:1e30", bad: true},
		{in: "1000w", bad: true},
	} {
		tf, err := parseTrafficFlow(map[string]string{"enabled": "true", "active-flow-timeout": tc.in, "inactive-flow-timeout": "15s"}, nil)
		if tc.bad {
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Property != "active-flow-timeout" || ve.Value != tc.in {
				t.Errorf("%q: error %v, want a ValueError on active-flow-timeout", tc.in, err)
			}
			continue
		}
		if err != nil || tf.ActiveTimeout != tc.want {
			t.Errorf("%q: %s, %v; want %s", tc.in, tf.ActiveTimeout, err, tc.want)
		}
	}
}

func TestParseTrafficFlow(t *testing.T) {
	settings := map[string]string{"enabled": "true", "interfaces": "all", "cache-entries": "4k",
		"active-flow-timeout": "1m", "inactive-flow-timeout": "15s",
		"packet-sampling": "true", "sampling-interval": "2222", "sampling-space": "1111"}
	tf, err := parseTrafficFlow(settings, []map[string]string{
		{".id": "*1", "dst-address": "172.17.0.2", "port": "2055", "src-address": "172.17.0.1", "version": "IPFIX", "disabled": "false"},
		{".id": "*2", "dst-address": "2001:db8::9", "port": "9995", "version": "9", "disabled": "true"},
		{".id": "*3", "address": "192.0.2.9:2055", "version": "5", "disabled": "no"}, // RouterOS 6
	})
	if err != nil {
		t.Fatal(err)
	}
	if !tf.Enabled || tf.Interfaces != "all" || tf.CacheEntries != "4k" || tf.ActiveTimeout != time.Minute ||
		tf.InactiveTimeout != 15*time.Second || !tf.PacketSampling || tf.SamplingInterval != 2222 || tf.SamplingSpace != 1111 {
		t.Errorf("settings: %+v", tf)
	}
	want := []TrafficFlowTarget{
		{ID: "*1", Address: "172.17.0.2:2055", SrcAddress: "172.17.0.1", Version: "IPFIX"},
		{ID: "*2", Address: "[2001:db8::9]:9995", Version: "9", Disabled: true},
		{ID: "*3", Address: "192.0.2.9:2055", Version: "5"},
	}
	if len(tf.Targets) != len(want) {
		t.Fatalf("targets %+v", tf.Targets)
	}
	for i := range want {
		if tf.Targets[i] != want[i] {
			t.Errorf("target %d: %+v, want %+v", i, tf.Targets[i], want[i])
		}
	}
	if !tf.Exporting() {
		t.Error("not exporting")
	}
	for _, bad := range []map[string]string{
		{"enabled": "maybe", "active-flow-timeout": "1s", "inactive-flow-timeout": "1s"},
		{"enabled": "true", "active-flow-timeout": "1s", "inactive-flow-timeout": "-1s"},
		{"enabled": "true", "active-flow-timeout": "1s", "inactive-flow-timeout": "1s", "sampling-space": "x"},
	} {
		var ve *ValueError
		if _, err := parseTrafficFlow(bad, nil); !errors.As(err, &ve) {
			t.Errorf("%v: %v, want a ValueError", bad, err)
		}
	}
}

func TestAdviseTrafficFlow(t *testing.T) {
	target := []TrafficFlowTarget{{Address: "172.17.0.2:2055", Version: "IPFIX"}}
	tf := func(enabled bool, active, inactive time.Duration, targets []TrafficFlowTarget) TrafficFlow {
		return TrafficFlow{Enabled: enabled, ActiveTimeout: active, InactiveTimeout: inactive, Targets: targets}
	}
	const v7, v6 = "7.18.2 (stable)", "6.49.10 (long-term)"
	for _, tc := range []struct {
		name        string
		tf          TrafficFlow
		offloaded   []string
		version     string
		problems    []string // substrings, one per line
		warnings    []string
		summary     string
		short, long time.Duration
	}{
		{name: "1s/1s", tf: tf(true, time.Second, time.Second, target), version: v7,
			summary: "short and long floods detected within ~1-2 s", short: time.Second, long: time.Second},
		{name: "5s/2s is still fast", tf: tf(true, 5*time.Second, 2*time.Second, target), version: v7,
			summary: "within ~5-6 s", short: 2 * time.Second, long: 5 * time.Second},
		{name: "1m/15s", tf: tf(true, time.Minute, 15*time.Second, target), version: v7,
			warnings: []string{"active-flow-timeout=1m inactive-flow-timeout=15s delay detection: a flood of short flows (SYN, spoofed sources) is seen about 15s after it starts, a flood of long flows (amplification) about 1m after it starts, and an attack's end is confirmed up to 1m30s after the flood stops; for detection within 1-2 s: /ip/traffic-flow/set active-flow-timeout=1s inactive-flow-timeout=1s"},
			summary:  "short-flow floods seen ~15s after they start, long-flow floods ~1m", short: 15 * time.Second, long: time.Minute},
		{name: "30m/15s defaults", tf: tf(true, 30*time.Minute, 15*time.Second, target), version: v7,
			warnings: []string{"about 15s after it starts", "about 30m after it starts", "up to 30m30s after the flood stops"},
			short:    15 * time.Second, long: 30 * time.Minute},
		{name: "1m/1m", tf: tf(true, time.Minute, time.Minute, target), version: v7,
			warnings: []string{"short flows (SYN, spoofed sources) is seen about 1m after", "up to 2m15s after"}, short: time.Minute, long: time.Minute},
		{name: "RouterOS 6 1m/15s", tf: tf(true, time.Minute, 15*time.Second, target), version: v6,
			warnings: []string{"/ip traffic-flow set active-flow-timeout=1s inactive-flow-timeout=1s (a RouterOS 6 release that refuses an active timeout under 60 s takes active-flow-timeout=1m"}},
		{name: "disabled", tf: tf(false, time.Second, time.Second, target), version: v7,
			problems: []string{"traffic-flow is disabled: flowshield sees no flows; run the setup script (flowshield routeros-script) or /ip/traffic-flow/set enabled=yes"}},
		{name: "disabled with slow timers", tf: tf(false, 30*time.Minute, 15*time.Second, target), version: v7,
			problems: []string{"/ip/traffic-flow/set enabled=yes active-flow-timeout=1s inactive-flow-timeout=1s"}},
		{name: "disabled without target", tf: tf(false, 30*time.Minute, 15*time.Second, nil), version: v7,
			problems: []string{"traffic-flow is disabled and has no target: flowshield sees no flows"}},
		{name: "no enabled target", tf: tf(true, time.Second, time.Second, []TrafficFlowTarget{{Address: "x:1", Disabled: true}}), version: v7,
			problems: []string{"traffic-flow has no enabled target: flowshield sees no flows"}},
		{name: "offload", tf: tf(true, time.Second, time.Second, target), offloaded: []string{"switch1"}, version: v7,
			warnings: []string{"L3 hardware offloading is on for switch1: traffic the switch chip routes never reaches traffic-flow, so a flood through an offloaded path is invisible to flowshield"}},
		{name: "NetFlow v1", tf: tf(true, time.Second, time.Second, []TrafficFlowTarget{{Address: "192.0.2.1:2055", Version: "1"}}), version: v7,
			warnings: []string{"target 192.0.2.1:2055 sends NetFlow v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			adv := AdviseTrafficFlow(tc.tf, tc.offloaded, tc.version, 15*time.Second)
			// want: substrings of the one line expected; none: no line
			check := func(kind string, got, want []string) {
				t.Helper()
				if len(want) == 0 || len(got) != 1 {
					if len(got) != min(len(want), 1) {
						t.Errorf("%s %q, want one line saying %q", kind, got, want)
					}
					return
				}
				for _, w := range want {
					if !strings.Contains(got[0], w) {
						t.Errorf("%s %q does not say %q", kind, got[0], w)
					}
				}
				if strings.Contains(got[0], "\n") {
					t.Errorf("%s %q spans several lines", kind, got[0])
				}
			}
			check("problems", adv.Problems, tc.problems)
			check("warnings", adv.Warnings, tc.warnings)
			if tc.summary != "" && !strings.Contains(adv.Summary, tc.summary) {
				t.Errorf("summary %q does not say %q", adv.Summary, tc.summary)
			}
			if tc.short != 0 && (adv.Latency.ShortFlood != tc.short || adv.Latency.LongFlood != tc.long) {
				t.Errorf("latency %+v, want short %s long %s", adv.Latency, tc.short, tc.long)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0ms", 500 * time.Millisecond: "500ms", time.Second: "1s", 90 * time.Second: "1m30s",
		30*time.Minute + 30*time.Second: "30m30s", 1500 * time.Millisecond: "1s500ms", 26 * time.Hour: "1d2h",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// FuzzParseTrafficFlow feeds router-printed values to the traffic-flow
// parser and the advice: bad values are ValueErrors, never a panic, and
// whatever parses gives non-negative timers and one-line advice.
func FuzzParseTrafficFlow(f *testing.F) {
	f.Add("true", "30m", "15s", "172.17.0.2", "2055", "", "IPFIX")
	f.Add("yes", "00:30:00", "00:00:15", "", "", "192.0.2.9:2055", "9")
	f.Add("false", "1d2h3m4s", "500ms", "2001:db8::1", "9995", "", "1")
	f.Add("true", "1s", "1s", "", "", "", "5")
	f.Fuzz(func(t *testing.T, enabled, active, inactive, dst, port, address, version string) {
		tf, err := parseTrafficFlow(
			map[string]string{"enabled": enabled, "active-flow-timeout": active, "inactive-flow-timeout": inactive},
			[]map[string]string{{"dst-address": dst, "port": port, "address": address, "version": version}})
		if err != nil {
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v is not a ValueError", err)
			}
			return
		}
		if tf.ActiveTimeout < 0 || tf.InactiveTimeout < 0 {
			t.Fatalf("negative timers %+v", tf)
		}
		adv := AdviseTrafficFlow(tf, []string{"switch1"}, "7.18", 15*time.Second)
		lat := adv.Latency
		if lat.ShortFlood > lat.LongFlood || lat.End < lat.LongFlood {
			t.Fatalf("latency out of order: %+v", lat)
		}
		for _, s := range append(append(adv.Problems, adv.Warnings...), adv.Summary) {
			if strings.Contains(s, "\n") && !strings.ContainsAny(address+dst+port, "\n") {
				t.Fatalf("advice spans lines: %q", s)
			}
		}
	})
}
