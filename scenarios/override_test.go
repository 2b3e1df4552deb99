package scenarios_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
)

// overrideBase has two cohorts sharing an anchor, a rollout and no gateway
// section: overrides must reach into lists, merges and absent sections.
const overrideBase = `name: base
fleet:
  - &rt
    count: 10
    board: rt1060
    poll: 15m
  - <<: *rt
    name: second
    count: 5
rollout:
  versions: [1001]
  image_size: 64KiB
expect:
  bricked: ["count==0"]
`

func parseWith(t *testing.T, data string, sets ...string) (*scenarios.Scenario, error) {
	t.Helper()
	var os []scenarios.Override
	for _, s := range sets {
		o, err := scenarios.ParseOverride(s)
		if err != nil {
			t.Fatalf("ParseOverride(%q): %v", s, err)
		}
		os = append(os, o)
	}
	return scenarios.Parse("x.yaml", []byte(data), os...)
}

func TestOverrides(t *testing.T) {
	for _, c := range []struct {
		name  string
		sets  []string
		check func(*scenarios.Scenario) bool
	}{
		{"a top-level number", []string{"seed=7"}, func(s *scenarios.Scenario) bool { return s.Seed == 7 }},
		{"a cohort's duration", []string{"fleet[0].poll=5m"}, func(s *scenarios.Scenario) bool {
			return s.Fleet[0].Poll == scenarios.Duration(5*time.Minute)
		}},
		{"a size", []string{"rollout.image_size=512KiB"}, func(s *scenarios.Scenario) bool { return s.Rollout.ImageSize == 512<<10 }},
		{"a section the file leaves out", []string{"gateway.cores=4", "gateway.request_cpu=120us"}, func(s *scenarios.Scenario) bool {
			return s.Gateway.Cores == 4 && s.Gateway.RequestCPU == scenarios.Duration(120*time.Microsecond)
		}},
		{"a whole list", []string{"rollout.versions=[1001, 1002]"}, func(s *scenarios.Scenario) bool {
			return len(s.Rollout.Versions) == 2 && s.Rollout.Versions[1] == 1002
		}},
		{"a list entry", []string{"rollout.versions[0]=1005"}, func(s *scenarios.Scenario) bool { return s.Rollout.Versions[0] == 1005 }},
		{"a mapping entry the file lacks", []string{"fleet[1].firmware.1001=fails-self-test"}, func(s *scenarios.Scenario) bool {
			return s.Fleet[1].Firmware["1001"] == "fails-self-test" && s.Fleet[0].Firmware == nil
		}},
		{"an expectation", []string{`expect.updated=["rate>=0.5"]`}, func(s *scenarios.Scenario) bool {
			return len(s.Expect["updated"]) == 1 && len(s.Expect["bricked"]) == 1
		}},
		{"the anchor's owner alone", []string{"fleet[0].board=k64f"}, func(s *scenarios.Scenario) bool {
			return s.Fleet[0].Board == "k64f" && s.Fleet[1].Board == "rt1060"
		}},
		{"a merged field of the merging cohort alone", []string{"fleet[1].poll=1m"}, func(s *scenarios.Scenario) bool {
			return s.Fleet[1].Poll == scenarios.Duration(time.Minute) && s.Fleet[0].Poll == scenarios.Duration(15*time.Minute)
		}},
		{"text as it is", []string{"description=a: b, [c]"}, func(s *scenarios.Scenario) bool { return s.Description == "a: b, [c]" }},
		{"an empty value leaves the default", []string{"fleet[0].poll="}, func(s *scenarios.Scenario) bool {
			return s.Fleet[0].Poll == scenarios.DefaultPoll
		}},
		{"the last of two wins", []string{"seed=7", "seed=9"}, func(s *scenarios.Scenario) bool { return s.Seed == 9 }},
		{"a new matrix", []string{`matrix={"fleet[0].count": [1, 2]}`}, func(s *scenarios.Scenario) bool {
			return len(s.Matrix) == 1 && s.Matrix[0].Path == "fleet[0].count"
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := parseWith(t, overrideBase, c.sets...)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(s) {
				t.Errorf("%v: not applied: %+v", c.sets, s)
			}
		})
	}
}

func TestOverrideErrors(t *testing.T) {
	const matrix = overrideBase + "matrix:\n  fleet[0].count: [1, 2]\n"
	for _, c := range []struct {
		name, data, set, want string
	}{
		{"unknown field", overrideBase, "fleet[0].pol=5m",
			`x.yaml: --set fleet[0].pol=5m: fleet[0]: "pol" is not a cohort field (did you mean "poll"?)`},
		{"index out of range", overrideBase, "fleet[2].count=1",
			`x.yaml: --set fleet[2].count=1: fleet[2]: out of range: fleet has 2 cohorts`},
		{"a list without an index", overrideBase, "fleet.count=1",
			`x.yaml: --set fleet.count=1: fleet: a list has no field "count": give an index, e.g. fleet[0]`},
		{"index of a single value", overrideBase, "seed[0]=1",
			`x.yaml: --set seed[0]=1: seed: not a list: it has no entry [0]`},
		{"inside a single value", overrideBase, "rollout.image_size.x=1",
			`x.yaml: --set rollout.image_size.x=1: rollout.image_size: a single value has no field "x"`},
		{"bad path", overrideBase, "fleet[0]..poll=1m",
			`x.yaml: --set fleet[0]..poll=1m: "fleet[0]..poll" is not a field path: write field names and list indexes the way errors name them, e.g. fleet[0].poll or rollout.image_size`},
		{"type error", overrideBase, "fleet[0].count=many",
			`x.yaml: --set fleet[0].count=many: want a whole number, not "many"`},
		{"bad duration", overrideBase, "fleet[0].poll=5x",
			`x.yaml: --set fleet[0].poll=5x: "5x" is not a duration: want "15s", "90m", "1h30m" or "7d"`},
		{"a list for a number", overrideBase, "seed=[1]",
			`x.yaml: --set seed=[1]: want a whole number from 0 to 18446744073709551615, not "[1]"`},
		{"bad YAML", overrideBase, "rollout.versions=[1001,",
			`x.yaml: --set rollout.versions=[1001,: yaml: line 1: did not find expected node content`},
		{"a value the checks refuse", overrideBase, "fleet[1].count=0",
			`x.yaml: --set fleet[1].count=0: must be at least 1`},
		{"a field inside the matrix", matrix, "matrix.fleet[0].count=[1]",
			`x.yaml: --set matrix.fleet[0].count=[1]: matrix: set the matrix as a whole, e.g. matrix={"fleet[0].count": [100, 200]}, or matrix= for none`},
		{"a field the matrix varies", matrix, "fleet[0].count=3",
			`x.yaml: --set fleet[0].count=3: the matrix varies fleet[0].count in every variant, so this value would never run: change the matrix instead (matrix=... or matrix= for none)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseWith(t, c.data, c.set)
			var se *scenarios.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *scenarios.Error", err, err)
			}
			if err.Error() != c.want {
				t.Errorf("error\n  %s\nwant\n  %s", err, c.want)
			}
			if se.Line != 0 || se.Set != c.set {
				t.Errorf("Line %d, Set %q: want 0 and the override", se.Line, se.Set)
			}
		})
	}

	// A mistake of the file's own still points at its line.
	_, err := parseWith(t, strings.Replace(overrideBase, "count: 5", "count: -1", 1), "seed=2")
	if err == nil || !strings.HasPrefix(err.Error(), "x.yaml:9: fleet[1].count:") {
		t.Errorf("the file's own mistake: %v, want it at x.yaml:9", err)
	}
	// With the matrix dropped, its field can be set.
	if s, err := parseWith(t, matrix, "matrix=", "fleet[0].count=3"); err != nil || s.Fleet[0].Count != 3 || len(s.Matrix) != 0 {
		t.Errorf("matrix dropped: %v", err)
	}
}

func TestParseOverride(t *testing.T) {
	o, err := scenarios.ParseOverride("expect.updated=[\"rate==1\"]")
	if err != nil || o.Path != "expect.updated" || o.Value != `["rate==1"]` || o.String() != `expect.updated=["rate==1"]` {
		t.Errorf("ParseOverride: %+v, %v", o, err)
	}
	for _, bad := range []string{"seed", "=7", " =7"} {
		if _, err := scenarios.ParseOverride(bad); !errors.Is(err, scenarios.ErrBadOverride) {
			t.Errorf("ParseOverride(%q) = %v, want ErrBadOverride", bad, err)
		}
	}
}

func TestResolveWithOverrides(t *testing.T) {
	s, err := scenarios.Resolve("quick", scenarios.Override{Path: "fleet[0].count", Value: "3"})
	if err != nil || s.Fleet[0].Count != 3 {
		t.Fatalf("Resolve quick with an override: %v", err)
	}
	if _, err := scenarios.Resolve("capacity", scenarios.Override{Path: "fleet[0].count", Value: "3"}); err == nil ||
		!strings.HasPrefix(err.Error(), "capacity.yaml: --set fleet[0].count=3: the matrix varies") {
		t.Errorf("an override of the built-in capacity's matrix: %v", err)
	}
}

// FuzzOverride: whatever a command line sets, Parse answers with a
// scenario or an *Error, never a panic.
func FuzzOverride(f *testing.F) {
	for _, s := range []string{"seed=7", "fleet[1].poll=1m", "gateway.cores=4", "fleet[0]=", "rollout.versions=[1,", "matrix={a: [1]}", "expect.x.y=1", "fleet[0].firmware=&a [*a]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, set string) {
		o, err := scenarios.ParseOverride(set)
		if err != nil {
			return
		}
		_, err = scenarios.Parse("x.yaml", []byte(overrideBase), o)
		var se *scenarios.Error
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("%q: error %v (%T), want a *scenarios.Error", set, err, err)
		}
	})
}
