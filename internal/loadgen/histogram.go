package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records latencies in log-linear buckets: exact below 256 ns,
// then 128 equal buckets per power of two. A quantile is reported as the
// middle of its bucket, so it is within 1/256 (0.4%) of a latency that was
// really recorded at that rank: precise enough to compare two servers' p99,
// at a fixed cost per record and a few kilobytes per worker, however long
// the run. The zero value is an empty histogram. A Histogram is not safe for
// concurrent use; give each worker its own and Merge them.
type Histogram struct {
	counts   []uint64
	n        uint64
	min, max time.Duration
}

const (
	subBits    = 7
	subBuckets = 1 << subBits   // buckets per power of two
	exactBelow = 2 * subBuckets // values below this get a bucket each
)

// bucketOf maps a non-negative latency in nanoseconds to its bucket index.
func bucketOf(v uint64) int {
	if v < exactBelow {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // v>>shift is in [128, 256)
	return exactBelow + (shift-1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketRange is the inverse of bucketOf: the bucket's lowest value and width.
func bucketRange(i int) (lo, width uint64) {
	if i < exactBelow {
		return uint64(i), 1
	}
	shift := (i-exactBelow)/subBuckets + 1
	mant := uint64((i-exactBelow)%subBuckets + subBuckets)
	return mant << shift, 1 << shift
}

// Record adds one latency; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := bucketOf(uint64(d))
	if i >= len(h.counts) {
		grown := make([]uint64, i+1+subBuckets)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
}

// Merge adds every latency recorded in o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
}

// Count is the number of latencies recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest latency recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest latency recorded, exactly.
func (h *Histogram) Min() time.Duration { return h.min }

// Quantile returns the latency at quantile q in [0, 1] by nearest rank: the
// value of the ceil(q*n)-th smallest record (the smallest for q = 0),
// approximated by the middle of its bucket and clamped to [Min, Max]. It is
// 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q <= 0 || math.IsNaN(q) {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			v := time.Duration(lo + (w-1)/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
