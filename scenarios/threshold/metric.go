package threshold

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Kind is a metric's type, which decides the aggregations it has.
type Kind int

// The metric kinds, as in k6.
const (
	// Counter is a running total.
	Counter Kind = iota
	// Rate is the share of trials that passed.
	Rate
	// Trend is a set of observations.
	Trend
	// Gauge is a value that goes up and down; only the last one counts.
	Gauge
)

// String names the kind in lower case, as error messages use it.
func (k Kind) String() string {
	switch k {
	case Counter:
		return "counter"
	case Rate:
		return "rate"
	case Trend:
		return "trend"
	case Gauge:
		return "gauge"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// kindAggregations lists, per kind, the aggregations Aggregate computes.
var kindAggregations = map[Kind][]string{
	Counter: {"count"},
	Rate:    {"rate"},
	Trend:   {"avg", "min", "max", "med", "p", "count"},
	Gauge:   {"value"},
}

// Metric is what a threshold is evaluated on. Which fields count depends on
// Kind.
type Metric struct {
	Kind Kind
	// Samples are a Trend's observations, in seconds for time metrics, in
	// any order. Evaluating never reorders them.
	Samples []float64
	// Count is a Counter's total, or the number of a Rate's trials that
	// passed.
	Count float64
	// Total is the number of a Rate's trials.
	Total float64
	// Value is a Gauge's current value.
	Value float64
}

var (
	// ErrNoSamples means a Trend aggregation other than count was asked of
	// a Trend with no samples.
	ErrNoSamples = errors.New("no samples")
	// ErrNoTrials means the rate of a Rate with no trials was asked.
	ErrNoTrials = errors.New("no trials")
)

// KindError reports an aggregation that the metric's kind does not have.
type KindError struct {
	Agg  string // the threshold's aggregation
	Kind Kind   // the metric's kind
}

// Error says which aggregations the kind has instead.
func (e *KindError) Error() string {
	has, ok := kindAggregations[e.Kind]
	switch {
	case !ok:
		return fmt.Sprintf("unknown metric kind %d", int(e.Kind))
	case e.Kind == Counter && e.Agg == "rate":
		return "a counter's rate is per second of the run, which fleetsim metrics do not carry; use count"
	}
	return fmt.Sprintf("%s does not apply to a %s metric (it has %s)", e.Agg, e.Kind, strings.Join(has, ", "))
}

// Aggregate computes t's aggregation over m. It fails with a *KindError when
// m's kind does not have the aggregation, with ErrNoSamples for an empty
// Trend (except for count, which is 0), and with ErrNoTrials for a Rate with
// no trials.
func (t Threshold) Aggregate(m Metric) (float64, error) {
	v, err := t.aggregate(m)
	if err != nil {
		return 0, fmt.Errorf("threshold %q: %w", t.String(), err)
	}
	return v, nil
}

func (t Threshold) aggregate(m Metric) (float64, error) {
	if !slices.Contains(kindAggregations[m.Kind], t.Agg) {
		return 0, &KindError{Agg: t.Agg, Kind: m.Kind}
	}
	switch {
	case m.Kind == Counter:
		return m.Count, nil
	case m.Kind == Gauge:
		return m.Value, nil
	case m.Kind == Rate:
		if m.Total == 0 {
			return 0, ErrNoTrials
		}
		return m.Count / m.Total, nil
	case t.Agg == "count":
		return float64(len(m.Samples)), nil
	case len(m.Samples) == 0:
		return 0, ErrNoSamples
	}
	switch t.Agg {
	case "avg":
		sum := 0.0
		for _, x := range m.Samples {
			sum += x
		}
		return sum / float64(len(m.Samples)), nil
	case "min":
		return slices.Min(m.Samples), nil
	case "max":
		return slices.Max(m.Samples), nil
	case "med":
		return Percentile(sortedCopy(m.Samples), 50), nil
	}
	if !(t.P >= 0 && t.P <= 100) { // only a Threshold built in code gets here
		return 0, fmt.Errorf("percentile %v is outside 0..100", t.P)
	}
	return Percentile(sortedCopy(m.Samples), t.P), nil
}

// sortedCopy sorts a copy of samples: the caller's order stays.
func sortedCopy(samples []float64) []float64 {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	return sorted
}

// Percentile interpolates linearly between the closest ranks, as k6 does:
// the p-th percentile (0..100) of n sorted samples sits at rank
// p/100*(n-1), counted from 0. sorted must be sorted and not empty.
func Percentile(sorted []float64, p float64) float64 {
	rank := p / 100 * float64(len(sorted)-1)
	lo := int(rank)
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	a, b := sorted[lo], sorted[lo+1]
	if a == b { // also keeps two infinite samples from giving Inf-Inf = NaN
		return a
	}
	return a + (rank-float64(lo))*(b-a)
}

// Check evaluates t on m: got is the aggregate, ok whether it satisfies the
// operator. Errors are Aggregate's; ok is false with any error.
func (t Threshold) Check(m Metric) (ok bool, got float64, err error) {
	got, err = t.Aggregate(m)
	if err != nil {
		return false, 0, err
	}
	switch t.Op {
	case "<":
		ok = got < t.Value
	case "<=":
		ok = got <= t.Value
	case ">":
		ok = got > t.Value
	case ">=":
		ok = got >= t.Value
	case "==", "===":
		ok = got == t.Value
	case "!=":
		ok = got != t.Value
	default: // only a Threshold built in code gets here
		return false, got, fmt.Errorf("threshold %q: unknown operator %q", t.String(), t.Op)
	}
	return ok, got, nil
}
