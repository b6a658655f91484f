package rosfmt

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "600", want: 10 * time.Minute},
		{in: "600s", want: 10 * time.Minute},
		{in: "9m58s", want: 9*time.Minute + 58*time.Second},
		{in: "1w2d3h4m5s", want: 9*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second},
		{in: "00:09:58", want: 9*time.Minute + 58*time.Second},
		{in: "1d02:03:04", want: 26*time.Hour + 3*time.Minute + 4*time.Second},
		{in: "1s500ms", want: 1500 * time.Millisecond},
		{in: "", bad: true},
		{in: "5x", bad: true},
		{in: "m", bad: true},
		{in: "1:2", bad: true},
		{in: "99999999999w", bad: true},
		{in: "8000000:0:0", bad: true}, // overflowed to a negative duration (found by FuzzParseTrafficFlow)
		{in: "0:0:99999999999", bad: true},
		{in: "876000:00:00", want: 876000 * time.Hour},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseDuration(%q) = %s, %v", tc.in, got, err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"}, {999 * time.Millisecond, "0s"}, {time.Second, "1s"},
		{9*time.Minute + 58*time.Second + 700*time.Millisecond, "9m58s"},
		{10 * time.Minute, "10m"}, {8*24*time.Hour + time.Second, "1w1d1s"},
	} {
		if got := FormatDuration(tc.in); got != tc.want {
			t.Errorf("FormatDuration(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"600", "9m58s", "1w2d3h4m5s", "1d02:03:04", "00:00:01.5", "1s500ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q: negative %s", s, d)
		}
		// what we print we read back (to the second)
		back, err := ParseDuration(FormatDuration(d))
		if err != nil || back != d.Truncate(time.Second) && d >= time.Second {
			t.Fatalf("%q: %s printed %q read %s (%v)", s, d, FormatDuration(d), back, err)
		}
	})
}
