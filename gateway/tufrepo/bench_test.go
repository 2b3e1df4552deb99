package tufrepo

import (
	"strconv"
	"testing"
)

// BenchmarkAddTarget measures adding one target to a tag that already lists
// n targets: rebuilding and re-signing targets.json, snapshot.json and
// timestamp.json. Each iteration's target is pruned again with the timer
// stopped, so the repository stays at n targets. With ",wave" the tag has
// an open wave, whose view lists the tag's targets too and is re-signed
// after the tag's: the cost of a wave on every publication.
func BenchmarkAddTarget(b *testing.B) {
	for _, c := range []struct {
		n    int
		wave bool
	}{{50, false}, {50, true}, {1000, false}, {1000, true}} {
		n, name := c.n, "targets="+strconv.Itoa(c.n)
		if c.wave {
			name += ",wave"
		}
		b.Run(name, func(b *testing.B) {
			setup, err := GenerateSetup(KeyEd25519, seeded(1))
			if err != nil {
				b.Fatal(err)
			}
			// No buffer warnings: a 1000-target view is far beyond an
			// MCU's buffer, which is not what is measured here.
			r, _, err := New(t0, Config{DeviceBuffer: 1 << 30}, setup)
			if err != nil {
				b.Fatal(err)
			}
			for i := 1; i <= n; i++ {
				v := strconv.Itoa(i)
				if _, err := r.AddTarget(t0, NewTarget("MIMXRT1060-EVK", v, []string{"devel"}, []byte(v))); err != nil {
					b.Fatal(err)
				}
			}
			if c.wave {
				staged := NewTarget("MIMXRT1060-EVK", strconv.Itoa(n+2), nil, []byte("staged"))
				if _, err := r.OpenWave(t0, "devel", "w1", []Target{staged}); err != nil {
					b.Fatal(err)
				}
			}
			f, _ := r.Fetch("devel", "targets.json")
			b.ReportMetric(float64(len(f.Data)), "targets.json-bytes")
			next := NewTarget("MIMXRT1060-EVK", strconv.Itoa(n+1), []string{"devel"}, []byte("next"))
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.AddTarget(t0, next); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := r.RemoveTargets(t0, next.Name()); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
