package threshold_test

import (
	"math"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/scenarios/threshold"
)

// FuzzParse checks that Parse never panics, that its errors are one line,
// that whatever it accepts is well-formed and reads back the same from its
// String, and that the canonical form reads back the same too.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"p(95)<2h", "p(99.9) <= 300ms", "rate>=0.995", "count==0", "avg<1.5s",
		"min>0", "max<=10", "med<5m", "value>3", "max===-1e3", "avg!=1d2h3m4s5ms",
		"", "p()<1", "p(101)<1", "avg<<1", "avg<1 2", "avg<NaN", "avg<1h30", "p(1e1)>.5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := threshold.Parse(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("Parse(%q) error has more than one line: %q", s, err)
			}
			return
		}
		if math.IsNaN(th.Value) || math.IsInf(th.Value, 0) || !(th.P >= 0 && th.P <= 100) {
			t.Fatalf("Parse(%q) = %+v: value or percentile out of range", s, th)
		}
		switch th.Agg {
		case "count", "rate", "value", "avg", "min", "max", "med", "p":
		default:
			t.Fatalf("Parse(%q) = %+v: bad aggregation", s, th)
		}
		switch th.Op {
		case "<", "<=", ">", ">=", "==", "===", "!=":
		default:
			t.Fatalf("Parse(%q) = %+v: bad operator", s, th)
		}
		if th.Agg != "p" && th.P != 0 {
			t.Fatalf("Parse(%q) = %+v: a percentile without p", s, th)
		}

		again, err := threshold.Parse(th.String())
		if err != nil || again != th {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v, %v", s, th, th.String(), again, err)
		}

		canon := th
		canon.Source = ""
		again, err = threshold.Parse(canon.String())
		again.Source = ""
		if err != nil || again != canon {
			t.Fatalf("Parse(%q) = %+v, but its canonical form %q gives %+v, %v", s, th, canon.String(), again, err)
		}
	})
}
