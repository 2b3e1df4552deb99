package threshold_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/scenarios/threshold"
)

func TestParse(t *testing.T) {
	type th = threshold.Threshold
	for _, tc := range []struct {
		in   string
		want th
	}{
		// Every aggregation.
		{"count==0", th{Agg: "count", Op: "==", Value: 0}},
		{"rate>=0.995", th{Agg: "rate", Op: ">=", Value: 0.995}},
		{"value>3", th{Agg: "value", Op: ">", Value: 3}},
		{"avg<1.5s", th{Agg: "avg", Op: "<", Value: 1.5}},
		{"min>0", th{Agg: "min", Op: ">", Value: 0}},
		{"max<=10", th{Agg: "max", Op: "<=", Value: 10}},
		{"med<5m", th{Agg: "med", Op: "<", Value: 300}},
		{"p(95)<2h", th{Agg: "p", P: 95, Op: "<", Value: 7200}},
		{"p(99.9) <= 300ms", th{Agg: "p", P: 99.9, Op: "<=", Value: 0.3}},
		{"p(0)>=0", th{Agg: "p", P: 0, Op: ">=", Value: 0}},
		{"p(100)<1", th{Agg: "p", P: 100, Op: "<", Value: 1}},
		{"p(100.0)<1", th{Agg: "p", P: 100, Op: "<", Value: 1}},
		// Every operator.
		{"max<1", th{Agg: "max", Op: "<", Value: 1}},
		{"max<=1", th{Agg: "max", Op: "<=", Value: 1}},
		{"max>1", th{Agg: "max", Op: ">", Value: 1}},
		{"max>=1", th{Agg: "max", Op: ">=", Value: 1}},
		{"max==1", th{Agg: "max", Op: "==", Value: 1}},
		{"max===1", th{Agg: "max", Op: "===", Value: 1}},
		{"max!=1", th{Agg: "max", Op: "!=", Value: 1}},
		// Numbers.
		{"value>-3", th{Agg: "value", Op: ">", Value: -3}},
		{"value>+3", th{Agg: "value", Op: ">", Value: 3}},
		{"value>-0.25", th{Agg: "value", Op: ">", Value: -0.25}},
		{"value>.5", th{Agg: "value", Op: ">", Value: 0.5}},
		{"value>5.", th{Agg: "value", Op: ">", Value: 5}},
		{"value<1e3", th{Agg: "value", Op: "<", Value: 1000}},
		{"value<2.5E-1", th{Agg: "value", Op: "<", Value: 0.25}},
		{"count<1000000", th{Agg: "count", Op: "<", Value: 1e6}},
		// Durations, in seconds.
		{"avg<300ms", th{Agg: "avg", Op: "<", Value: 0.3}},
		{"avg<1s", th{Agg: "avg", Op: "<", Value: 1}},
		{"avg<90m", th{Agg: "avg", Op: "<", Value: 5400}},
		{"avg<1.5h", th{Agg: "avg", Op: "<", Value: 5400}},
		{"avg<1h30m", th{Agg: "avg", Op: "<", Value: 5400}},
		{"avg<2d", th{Agg: "avg", Op: "<", Value: 172800}},
		{"avg<1d2h3m4s500ms", th{Agg: "avg", Op: "<", Value: 93784.5}},
		{"avg>-2s", th{Agg: "avg", Op: ">", Value: -2}},
		{"avg<0s", th{Agg: "avg", Op: "<", Value: 0}},
		// Whitespace between the parts and around the expression.
		{"p(95) < 2h", th{Agg: "p", P: 95, Op: "<", Value: 7200}},
		{"  avg\t<=\t1  ", th{Agg: "avg", Op: "<=", Value: 1}},
		{"count ==0", th{Agg: "count", Op: "==", Value: 0}},
		{"count== 0", th{Agg: "count", Op: "==", Value: 0}},
		{"count==0\n", th{Agg: "count", Op: "==", Value: 0}},
	} {
		got, err := threshold.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		tc.want.Source = strings.TrimSpace(tc.in)
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.want.Source {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got.String(), tc.want.Source)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want is the whole error message
	}{
		{"", `threshold "": empty expression (want e.g. "p(95)<2h")`},
		{"   ", `threshold "   ": empty expression (want e.g. "p(95)<2h")`},
		{"p(95)<<2h", `threshold "p(95)<<2h": unknown operator "<<" (want <, <=, >, >=, ==, === or !=)`},
		{"mean<1", `threshold "mean<1": unknown aggregation "mean" (want count, rate, value, avg, min, max, med or p(N))`},
		{"AVG<1", `threshold "AVG<1": unknown aggregation "AVG" (want count, rate, value, avg, min, max, med or p(N))`},
		{"<1", `threshold "<1": want an aggregation (count, rate, value, avg, min, max, med or p(N)) at "<1"`},
		{"p(101)<1", `threshold "p(101)<1": percentile "101" is outside 0..100`},
		{"p(-1)<1", `threshold "p(-1)<1": percentile "-1" is outside 0..100`},
		{"p(100.01)<1", `threshold "p(100.01)<1": percentile "100.01" is outside 0..100`},
		{"p()<1", `threshold "p()<1": empty percentile in p()`},
		{"p(abc)<1", `threshold "p(abc)<1": invalid percentile "abc" in p(N)`},
		{"p( 95 )<1", `threshold "p( 95 )<1": invalid percentile " 95 " in p(N)`},
		{"p(NaN)<1", `threshold "p(NaN)<1": invalid percentile "NaN" in p(N)`},
		{"p(95<1", `threshold "p(95<1": missing ")" after p(`},
		{"p95<1", `threshold "p95<1": p needs a percentile in parentheses, e.g. p(95)`},
		{"p<1", `threshold "p<1": p needs a percentile in parentheses, e.g. p(95)`},
		{"avg(5)<1", `threshold "avg(5)<1": want an operator (<, <=, >, >=, ==, ===, !=) after "avg", at "(5)<1"`},
		{"avg", `threshold "avg": want an operator (<, <=, >, >=, ==, ===, !=) after "avg", at ""`},
		{"avg 1", `threshold "avg 1": want an operator (<, <=, >, >=, ==, ===, !=) after "avg", at "1"`},
		{"avg=1", `threshold "avg=1": unknown operator "=" (want <, <=, >, >=, ==, === or !=)`},
		{"avg=>1", `threshold "avg=>1": unknown operator "=>" (want <, <=, >, >=, ==, === or !=)`},
		{"avg!==1", `threshold "avg!==1": unknown operator "!==" (want <, <=, >, >=, ==, === or !=)`},
		{"avg<", `threshold "avg<": missing value after "<"`},
		{"avg<  ", `threshold "avg<  ": missing value after "<"`},
		{"avg<1 2", `threshold "avg<1 2": unexpected " 2" after value`},
		{"avg<1s and more", `threshold "avg<1s and more": unexpected " and more" after value`},
		{"avg<1.5.3", `threshold "avg<1.5.3": unexpected ".3" after value`},
		{"avg<1e3s", `threshold "avg<1e3s": unexpected "s" after value`},
		{"avg<1 s", `threshold "avg<1 s": unexpected " s" after value`},
		{"avg<NaN", `threshold "avg<NaN": invalid value "NaN" (want a number, or a duration such as 1.5s or 1h30m)`},
		{"avg<Inf", `threshold "avg<Inf": invalid value "Inf" (want a number, or a duration such as 1.5s or 1h30m)`},
		{"avg<-Inf", `threshold "avg<-Inf": invalid value "-Inf" (want a number, or a duration such as 1.5s or 1h30m)`},
		{"avg<0x10", `threshold "avg<0x10": unknown unit "x" in "0x10" (want ms, s, m, h or d)`},
		{"avg<1e400", `threshold "avg<1e400": value "1e400" is out of range`},
		{"avg<" + strings.Repeat("9", 400) + "d", `threshold "avg<` + strings.Repeat("9", 400) + `d": value "` + strings.Repeat("9", 400) + `d" is out of range`},
		{"avg<--1", `threshold "avg<--1": invalid value "--1" (want a number, or a duration such as 1.5s or 1h30m)`},
		{"avg<2w", `threshold "avg<2w": unknown unit "w" in "2w" (want ms, s, m, h or d)`},
		{"avg<5min", `threshold "avg<5min": unknown unit "min" in "5min" (want ms, s, m, h or d)`},
		{"avg<1us", `threshold "avg<1us": unknown unit "us" in "1us" (want ms, s, m, h or d)`},
		{"avg<1S", `threshold "avg<1S": unknown unit "S" in "1S" (want ms, s, m, h or d)`},
		{"avg<1h30", `threshold "avg<1h30": missing unit after "30" in "1h30"`},
		{"avg<1h-30m", `threshold "avg<1h-30m": unexpected "-30m" after value`},
		{"avg<1\nmax<2", `threshold "avg<1\nmax<2": unexpected "\nmax<2" after value`},
	} {
		got, err := threshold.Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error %s", tc.in, got, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Parse(%q) error:\n got %s\nwant %s", tc.in, err, tc.want)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error has more than one line: %q", tc.in, err)
		}
		var se *threshold.SyntaxError
		if !errors.As(err, &se) || se.Source != tc.in {
			t.Errorf("Parse(%q) error %v is not a *SyntaxError for its input", tc.in, err)
		}
		if got != (threshold.Threshold{}) {
			t.Errorf("Parse(%q) returned %+v with its error", tc.in, got)
		}
	}
}

func TestParseAll(t *testing.T) {
	ts, err := threshold.ParseAll("time_to_update", []string{"p(95)<2h", "max<1d"})
	if err != nil || len(ts) != 2 || ts[0].Value != 7200 || ts[1].Value != 86400 {
		t.Errorf("ParseAll = %+v, %v", ts, err)
	}
	_, err = threshold.ParseAll("time_to_update", []string{"p(95)<2h", "p(95)<<2h", "bad"})
	want := `expect.time_to_update[1]: threshold "p(95)<<2h": unknown operator "<<" (want <, <=, >, >=, ==, === or !=)`
	if err == nil || err.Error() != want {
		t.Errorf("ParseAll error = %v, want %s", err, want)
	}
	var se *threshold.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("ParseAll error %v does not wrap a *SyntaxError", err)
	}
	if ts, err := threshold.ParseAll("x", nil); err != nil || len(ts) != 0 {
		t.Errorf("ParseAll(nil) = %+v, %v", ts, err)
	}
}

func TestStringCanonical(t *testing.T) {
	for _, tc := range []struct {
		t    threshold.Threshold
		want string
	}{
		{threshold.Threshold{Agg: "p", P: 99.9, Op: "<=", Value: 0.3}, "p(99.9)<=0.3"},
		{threshold.Threshold{Agg: "count", Op: "==", Value: 0}, "count==0"},
		{threshold.Threshold{Agg: "value", Op: ">", Value: -1e21}, "value>-1e+21"},
		{threshold.Threshold{Source: "avg < 1s", Agg: "avg", Op: "<", Value: 1}, "avg < 1s"},
	} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// trend's samples sort to 1, 2, 3, 4, 10.
var trend = threshold.Metric{Kind: threshold.Trend, Samples: []float64{4, 1, 10, 3, 2}}

func TestAggregate(t *testing.T) {
	for _, tc := range []struct {
		expr string
		m    threshold.Metric
		want float64
	}{
		{"count<1", threshold.Metric{Kind: threshold.Counter, Count: 7}, 7},
		{"rate<1", threshold.Metric{Kind: threshold.Rate, Count: 199, Total: 200}, 0.995},
		{"rate<1", threshold.Metric{Kind: threshold.Rate, Count: 0, Total: 3}, 0},
		{"value<1", threshold.Metric{Kind: threshold.Gauge, Value: -2.5}, -2.5},
		{"count<1", trend, 5},
		{"count<1", threshold.Metric{Kind: threshold.Trend}, 0},
		{"avg<1", trend, 4},
		{"min<1", trend, 1},
		{"max<1", trend, 10},
		{"med<1", trend, 3},
		// Ranks p/100*(n-1) = p/100*4 on 1, 2, 3, 4, 10, interpolated:
		{"p(0)<1", trend, 1},
		{"p(25)<1", trend, 2},       // rank 1
		{"p(50)<1", trend, 3},       // rank 2
		{"p(62.5)<1", trend, 3.5},   // rank 2.5: 3 + 0.5*(4-3)
		{"p(90)<1", trend, 7.6},     // rank 3.6: 4 + 0.6*(10-4)
		{"p(95)<1", trend, 8.8},     // rank 3.8: 4 + 0.8*6
		{"p(99.9)<1", trend, 9.976}, // rank 3.996: 4 + 0.996*6
		{"p(100)<1", trend, 10},     // rank 4
		{"p(10)<1", trend, 1.4},     // rank 0.4: 1 + 0.4*(2-1)
		{"med<1", threshold.Metric{Kind: threshold.Trend, Samples: []float64{4, 1, 3, 2}}, 2.5}, // rank 1.5
		{"p(95)<1", threshold.Metric{Kind: threshold.Trend, Samples: []float64{42}}, 42},        // one sample
		{"p(50)<1", threshold.Metric{Kind: threshold.Trend, Samples: []float64{-1, 1}}, 0},      // negatives
		{"p(50)<1", threshold.Metric{Kind: threshold.Trend, Samples: []float64{5, 5, 5, 5}}, 5}, // ties
		{"p(75)<1", threshold.Metric{Kind: threshold.Trend, Samples: []float64{0, math.Inf(1), math.Inf(1)}}, math.Inf(1)},
	} {
		th, err := threshold.Parse(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := th.Aggregate(tc.m)
		if err != nil {
			t.Errorf("%s on %v: %v", tc.expr, tc.m, err)
			continue
		}
		if !(got == tc.want || math.Abs(got-tc.want) <= 1e-12*math.Abs(tc.want)) {
			t.Errorf("%s on %v = %v, want %v", tc.expr, tc.m, got, tc.want)
		}
	}
}

func TestAggregateErrors(t *testing.T) {
	empty := threshold.Metric{Kind: threshold.Trend}
	for _, tc := range []struct {
		expr string
		m    threshold.Metric
		is   error // nil: a *KindError
		want string
	}{
		{"avg<1", empty, threshold.ErrNoSamples, `threshold "avg<1": no samples`},
		{"min<1", empty, threshold.ErrNoSamples, `threshold "min<1": no samples`},
		{"max<1", empty, threshold.ErrNoSamples, `threshold "max<1": no samples`},
		{"med<1", empty, threshold.ErrNoSamples, `threshold "med<1": no samples`},
		{"p(95)<1", empty, threshold.ErrNoSamples, `threshold "p(95)<1": no samples`},
		{"rate>0.9", threshold.Metric{Kind: threshold.Rate}, threshold.ErrNoTrials, `threshold "rate>0.9": no trials`},
		{"rate>0.9", threshold.Metric{Kind: threshold.Counter, Count: 3}, nil,
			`threshold "rate>0.9": a counter's rate is per second of the run, which fleetsim metrics do not carry; use count`},
		{"avg<1", threshold.Metric{Kind: threshold.Counter}, nil, `threshold "avg<1": avg does not apply to a counter metric (it has count)`},
		{"value<1", threshold.Metric{Kind: threshold.Counter}, nil, `threshold "value<1": value does not apply to a counter metric (it has count)`},
		{"count<1", threshold.Metric{Kind: threshold.Rate, Total: 1}, nil, `threshold "count<1": count does not apply to a rate metric (it has rate)`},
		{"p(95)<1", threshold.Metric{Kind: threshold.Rate, Total: 1}, nil, `threshold "p(95)<1": p does not apply to a rate metric (it has rate)`},
		{"avg<1", threshold.Metric{Kind: threshold.Gauge}, nil, `threshold "avg<1": avg does not apply to a gauge metric (it has value)`},
		{"count<1", threshold.Metric{Kind: threshold.Gauge}, nil, `threshold "count<1": count does not apply to a gauge metric (it has value)`},
		{"rate<1", trend, nil, `threshold "rate<1": rate does not apply to a trend metric (it has avg, min, max, med, p, count)`},
		{"value<1", trend, nil, `threshold "value<1": value does not apply to a trend metric (it has avg, min, max, med, p, count)`},
		{"value<1", threshold.Metric{Kind: 9}, nil, `threshold "value<1": unknown metric kind 9`},
	} {
		th, err := threshold.Parse(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := th.Aggregate(tc.m)
		if err == nil {
			t.Errorf("%s on %v = %v, want error %s", tc.expr, tc.m, got, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%s on %v:\n got %s\nwant %s", tc.expr, tc.m, err, tc.want)
		}
		var ke *threshold.KindError
		if tc.is != nil && !errors.Is(err, tc.is) || tc.is == nil && !errors.As(err, &ke) {
			t.Errorf("%s on %v: error %v is not %v", tc.expr, tc.m, err, tc.is)
		}
		if ok, _, cerr := th.Check(tc.m); ok || cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%s on %v: Check = %v, %v; want false and Aggregate's error", tc.expr, tc.m, ok, cerr)
		}
	}
}

func TestCheck(t *testing.T) {
	// trend's p(62.5) is 3.5, exactly (rank 2.5 between 3 and 4).
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{"p(62.5)<4", true}, {"p(62.5)<3.5", false}, {"p(62.5)<3", false},
		{"p(62.5)<=3.5", true}, {"p(62.5)<=3", false},
		{"p(62.5)>3", true}, {"p(62.5)>3.5", false},
		{"p(62.5)>=3.5", true}, {"p(62.5)>=4", false},
		{"p(62.5)==3.5", true}, {"p(62.5)==4", false},
		{"p(62.5)===3.5", true}, {"p(62.5)===4", false},
		{"p(62.5)!=4", true}, {"p(62.5)!=3.5", false},
		{"max<10s", false}, {"max<=10s", true}, {"max<1m", true},
		{"avg==4000ms", true}, {"min>=1s", true}, {"count==5", true},
	} {
		th, err := threshold.Parse(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		ok, got, err := th.Check(trend)
		if err != nil || ok != tc.ok {
			t.Errorf("Check(%s) = %v, %v, %v; want %v", tc.expr, ok, got, err, tc.ok)
		}
	}
	// Rates and counters with the thresholds scenarios use.
	if ok, got, err := mustParse(t, "rate>=0.995").Check(threshold.Metric{Kind: threshold.Rate, Count: 995, Total: 1000}); !ok || got != 0.995 || err != nil {
		t.Errorf("rate>=0.995 on 995/1000 = %v, %v, %v", ok, got, err)
	}
	if ok, got, err := mustParse(t, "count==0").Check(threshold.Metric{Kind: threshold.Counter, Count: 1}); ok || got != 1 || err != nil {
		t.Errorf("count==0 on 1 = %v, %v, %v", ok, got, err)
	}
	if ok, _, err := (threshold.Threshold{Agg: "count", Op: "~"}).Check(threshold.Metric{}); ok || err == nil {
		t.Errorf("Check with operator ~ = %v, %v; want an error", ok, err)
	}
}

func TestEvaluationLeavesSamplesAlone(t *testing.T) {
	samples := []float64{4, 1, 10, 3, 2}
	want := slices.Clone(samples)
	m := threshold.Metric{Kind: threshold.Trend, Samples: samples}
	for _, expr := range []string{"avg<1", "min<1", "max<1", "med<1", "p(95)<1", "count<1"} {
		if _, _, err := mustParse(t, expr).Check(m); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(samples, want) {
			t.Fatalf("%s reordered the samples: %v, was %v", expr, samples, want)
		}
	}
}

func mustParse(t *testing.T, s string) threshold.Threshold {
	t.Helper()
	th, err := threshold.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return th
}
