package scenarios_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
	"gopkg.in/yaml.v3"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"0s", 0},
		{"15s", 15 * time.Second},
		{"90m", 90 * time.Minute},
		{"2h", 2 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"250ms", 250 * time.Millisecond},
		{"1d", 24 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"2d1h30m15s", 49*time.Hour + 30*time.Minute + 15*time.Second},
	} {
		got, err := scenarios.ParseDuration(tc.in)
		if err != nil || time.Duration(got) != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, time.Duration(got), err, tc.want)
		}
	}
	for _, in := range []string{"", "90", "-5m", "+5m", "5 minutes", "1.5d", "d", "1dd", "1d0", "1d-1h", "1d+1h", "-1d", "h", "1w", "106752d", "106751d24h"} {
		if got, err := scenarios.ParseDuration(in); !errors.Is(err, scenarios.ErrBadDuration) {
			t.Errorf("ParseDuration(%q) = %v, %v; want ErrBadDuration", in, got, err)
		}
	}
}

func TestDurationString(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{15 * time.Second, "15s"},
		{15 * time.Minute, "15m"},
		{2 * time.Hour, "2h"},
		{90 * time.Minute, "1h30m"},
		{24 * time.Hour, "1d"},
		{36 * time.Hour, "1d12h"},
		{7 * 24 * time.Hour, "7d"},
		{time.Hour + time.Second, "1h1s"},
		{1500 * time.Millisecond, "1.5s"},
		{time.Minute + 250*time.Millisecond, "1m250ms"},
		{250 * time.Millisecond, "250ms"},
		{-90 * time.Minute, "-1h30m"},
		{math.MinInt64, "-106751d23h47m16.854775808s"},
	} {
		if got := scenarios.Duration(tc.d).String(); got != tc.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// durationRE is the schema's pattern for durations.
var durationRE = regexp.MustCompile(scenarios.Duration(0).JSONSchema().Pattern)

// TestDurationRoundTrip: String writes what ParseDuration reads back, and
// the schema's pattern accepts it.
func TestDurationRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 10000 {
		var d scenarios.Duration
		switch i % 3 {
		case 0:
			d = scenarios.Duration(r.Int64())
		case 1:
			d = scenarios.Duration(r.Int64N(int64(30*24*time.Hour)) / int64(time.Second) * int64(time.Second))
		default:
			d = scenarios.Duration(r.Int64N(int64(time.Hour)))
		}
		checkDurationRoundTrip(t, d)
	}
	checkDurationRoundTrip(t, scenarios.Duration(math.MaxInt64))
}

func checkDurationRoundTrip(t *testing.T, d scenarios.Duration) {
	t.Helper()
	s := d.String()
	back, err := scenarios.ParseDuration(s)
	if err != nil || back != d {
		t.Fatalf("ParseDuration(%q) = %d, %v; want %d", s, back, err, d)
	}
	if !durationRE.MatchString(s) {
		t.Fatalf("the schema's pattern refuses %q", s)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want scenarios.Size
	}{
		{"512", 512},
		{"512B", 512},
		{"64KiB", 64 << 10},
		{"1MiB", 1 << 20},
		{"64KB", 64000},
		{"2MB", 2000000},
	} {
		got, err := scenarios.ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "0", "0KiB", "-1", "1.5MiB", "KiB", "64 KiB", "64kib", "1GiB", "9223372036854775807KiB", "99999999999999999999", "+5"} {
		if got, err := scenarios.ParseSize(in); !errors.Is(err, scenarios.ErrBadSize) {
			t.Errorf("ParseSize(%q) = %d, %v; want ErrBadSize", in, got, err)
		}
	}
}

func TestSizeString(t *testing.T) {
	for _, tc := range []struct {
		z    scenarios.Size
		want string
	}{
		{0, "0B"},
		{512, "512B"},
		{1000, "1000B"},
		{64 << 10, "64KiB"},
		{256 << 10, "256KiB"},
		{1 << 20, "1MiB"},
		{1536 << 10, "1536KiB"},
		{3 << 30, "3072MiB"},
	} {
		if got := tc.z.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", tc.z, got, tc.want)
		}
		if tc.z > 0 {
			if back, err := scenarios.ParseSize(tc.want); err != nil || back != tc.z {
				t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.want, back, err, tc.z)
			}
		}
	}
}

// TestMarshal: reports print durations and sizes as strings, in JSON and
// in YAML.
func TestMarshal(t *testing.T) {
	v := struct {
		Poll scenarios.Duration `json:"poll" yaml:"poll"`
		Size scenarios.Size     `json:"size" yaml:"size"`
	}{scenarios.Duration(15 * time.Minute), 256 * scenarios.KiB}
	j, err := json.Marshal(v)
	if err != nil || string(j) != `{"poll":"15m","size":"256KiB"}` {
		t.Errorf("json = %s, %v", j, err)
	}
	y, err := yaml.Marshal(v)
	if err != nil || string(y) != "poll: 15m\nsize: 256KiB\n" {
		t.Errorf("yaml = %q, %v", y, err)
	}
	var back struct {
		Poll scenarios.Duration `json:"poll"`
		Size scenarios.Size     `json:"size"`
	}
	if err := json.Unmarshal(j, &back); err != nil || back.Poll != v.Poll || back.Size != v.Size {
		t.Errorf("json round trip = %+v, %v", back, err)
	}
}

func TestSizeYAML(t *testing.T) {
	var v struct{ S scenarios.Size }
	if err := yaml.Unmarshal([]byte("s: 4096\n"), &v); err != nil || v.S != 4096 {
		t.Errorf("bare number: %v, %v", v.S, err)
	}
	if err := yaml.Unmarshal([]byte("s: 1MiB\n"), &v); err != nil || v.S != scenarios.MiB {
		t.Errorf("1MiB: %v, %v", v.S, err)
	}
	if err := yaml.Unmarshal([]byte("s: -4\n"), &v); !errors.Is(err, scenarios.ErrBadSize) {
		t.Errorf("negative: %v", err)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"15s", "1d12h", "1.5h", "0", "106751d23h47m16.854775807s", "1d1ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := scenarios.ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %d, negative", s, d)
		}
		checkDurationRoundTrip(t, d)
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512", "64KiB", "1MiB", "64KB", "1MB", "7B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		z, err := scenarios.ParseSize(s)
		if err != nil {
			return
		}
		if z <= 0 {
			t.Fatalf("ParseSize(%q) = %d, not positive", s, z)
		}
		if back, err := scenarios.ParseSize(z.String()); err != nil || back != z {
			t.Fatalf("ParseSize(%q) = %d, %v; want %d", z.String(), back, err, z)
		}
	})
}
