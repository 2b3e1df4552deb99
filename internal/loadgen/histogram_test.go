package loadgen

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank quantile of sorted values: the simple
// definition the histogram approximates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := int(float64(len(sorted))*q + 0.999999999)
	rank = max(rank, 1)
	return sorted[rank-1]
}

// TestHistogramAgainstSort checks the histogram's quantiles against sorting
// all values, on latency-like distributions from nanoseconds to minutes.
func TestHistogramAgainstSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() time.Duration{
		"uniform small": func() time.Duration { return time.Duration(rng.IntN(1000)) },
		"lognormal ms": func() time.Duration {
			return time.Duration(rng.NormFloat64()*0.8*float64(time.Millisecond) + float64(2*time.Millisecond))
		},
		"exp tail": func() time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
		},
		"wide": func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Minute))) },
	}
	for name, gen := range dists {
		var parts [4]Histogram // recorded by four "workers", then merged
		var all []time.Duration
		for i := range 20000 {
			d := gen()
			parts[i%4].Record(d)
			all = append(all, max(d, 0))
		}
		var h Histogram
		for i := range parts {
			h.Merge(&parts[i])
		}
		slices.Sort(all)
		if h.Count() != uint64(len(all)) || h.Max() != all[len(all)-1] || h.Min() != all[0] {
			t.Fatalf("%s: count %d max %v min %v, want %d %v %v", name, h.Count(), h.Max(), h.Min(), len(all), all[len(all)-1], all[0])
		}
		for _, q := range []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 1} {
			got, want := h.Quantile(q), exactQuantile(all, q)
			if q == 0 {
				want = all[0]
			}
			diff := got - want
			if diff < 0 {
				diff = -diff
			}
			if float64(diff) > float64(want)/256+0.5 {
				t.Errorf("%s q=%v: %v, exact %v (error %.3f%%)", name, q, got, want, 100*float64(diff)/float64(want))
			}
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// bucketRange inverts bucketOf, buckets tile the line without gaps,
	// and each is at most 1/128 of its lowest value wide.
	var next uint64
	for i := 0; i < bucketOf(1<<62); i++ {
		lo, w := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if bucketOf(lo) != i || bucketOf(lo+w-1) != i {
			t.Fatalf("bucket %d [%d, +%d) maps to %d..%d", i, lo, w, bucketOf(lo), bucketOf(lo+w-1))
		}
		if w > 1 && w*subBuckets > lo {
			t.Fatalf("bucket %d at %d is %d wide", i, lo, w)
		}
		next = lo + w
	}
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Max() != 0 {
		t.Fatal("empty histogram reports latencies")
	}
	h.Record(-5)
	h.Record(time.Duration(1<<63 - 1))
	if h.Min() != 0 || h.Quantile(1) != time.Duration(1<<63-1) {
		t.Fatalf("extremes: min %v max %v", h.Min(), h.Quantile(1))
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	rng := rand.New(rand.NewPCG(3, 4))
	ds := make([]time.Duration, 1024)
	for i := range ds {
		ds[i] = time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Record(ds[i&1023])
	}
}
