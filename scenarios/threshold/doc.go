// Package threshold parses and evaluates a scenario's expectations, written in
// k6's threshold syntax: `<aggregation> <operator> <value>`, as in
// "p(95)<2h", "rate>=0.995" or "count==0". It owns the syntax and the
// arithmetic of one expression over one metric's numbers; it knows nothing of
// scenario files, of how metrics are collected, or of reports.
//
// # Syntax
//
// An aggregation is count, rate, value, avg, min, max, med or p(N) with
// 0 <= N <= 100 (decimals allowed, as in p(99.9)). Aggregations are lower
// case, as in k6. An operator is <, <=, >, >=, ==, === (the same as ==) or
// !=. Spaces may stand before and after each of the three parts, not inside
// one: "p(95) < 2h" parses, "p (95)<2h" and "avg<1 s" do not.
//
// A value is a number ("3", "-0.5", "1e3") or a duration: one or more
// number-unit pairs with units ms, s, m, h and d, as in "300ms", "1.5s",
// "90m", "1h30m", "-2s". fleetsim keeps its time metrics in seconds (unlike
// k6, which keeps milliseconds), so a duration is converted to seconds and a
// bare number is taken as it is: "avg<1.5s" and "avg<1.5" are the same
// threshold on a time metric. NaN and infinities are refused.
//
// # Evaluation
//
// As in k6, each metric kind has its own aggregations: a Counter has count, a
// Rate has rate (passes over trials), a Gauge has value, and a Trend has avg,
// min, max, med, p(N) and count (the number of samples). k6 also gives a
// counter a rate, per second of the run; fleetsim's metrics carry no run
// duration, so that one is refused. Percentiles interpolate linearly between
// the closest ranks of the sorted samples, as k6 does, and med is p(50).
//
// An aggregation that has nothing to aggregate is an error, not a pass or a
// fail: avg, min, max, med and p(N) of a Trend with no samples
// (ErrNoSamples), and the rate of a Rate with no trials (ErrNoTrials). The
// count of an empty Trend is 0, which is a real answer.
package threshold
