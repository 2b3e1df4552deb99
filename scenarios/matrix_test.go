package scenarios_test

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
	"gopkg.in/yaml.v3"
)

// matrixBase is a valid scenario that the matrix tests add a matrix to.
// Its lines count from 1; a matrix appended to it starts on line 11.
const matrixBase = `name: plan
fleet:
  - name: small
    count: 10
    board: rt1060
  - name: big
    count: 20
    board: rt1060
rollout:
  versions: [1001]
`

func TestExpandOrder(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(matrixBase+`matrix:
  fleet[0].count: [1000, 5000, 10000]
  fleet[0].poll: [5m, 15m]
  fleet[0].link: [wifi, lte-m]
`))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 12 {
		t.Fatalf("%d variants, want 3 × 2 × 2 = 12", len(vs))
	}
	i := 0
	// The first key varies slowest, the last fastest.
	for _, count := range []int{1000, 5000, 10000} {
		for _, poll := range []string{"5m", "15m"} {
			for _, link := range []string{"wifi", "lte-m"} {
				v := vs[i]
				i++
				label := fmt.Sprintf("fleet[0].count=%d, fleet[0].poll=%s, fleet[0].link=%s", count, poll, link)
				if v.Label != label {
					t.Errorf("variant %d: label %q, want %q", i, v.Label, label)
				}
				name := fmt.Sprintf("plan[fleet[0].count=%d,fleet[0].poll=%s,fleet[0].link=%s]", count, poll, link)
				if v.Scenario.Name != name {
					t.Errorf("variant %d: name %q, want %q", i, v.Scenario.Name, name)
				}
				want := []scenarios.Param{{"fleet[0].count", strconv.Itoa(count)}, {"fleet[0].poll", poll}, {"fleet[0].link", link}}
				if !slices.Equal(v.Params, want) {
					t.Errorf("variant %d: params %v, want %v", i, v.Params, want)
				}
				c := v.Scenario.Fleet[0]
				if c.Count != count || c.Poll.String() != poll || c.Link != link {
					t.Errorf("variant %d: fleet[0] = %+v", i, c)
				}
				if other := v.Scenario.Fleet[1]; other.Count != 20 || other.Poll != scenarios.DefaultPoll || other.Link != "wifi" {
					t.Errorf("variant %d: fleet[1] changed: %+v", i, other)
				}
				if v.Scenario.Matrix != nil {
					t.Errorf("variant %d keeps a matrix: %v", i, v.Scenario.Matrix)
				}
				if err := v.Scenario.Validate(); err != nil {
					t.Errorf("variant %d: Validate: %v", i, err)
				}
			}
		}
	}
}

func TestExpandWithoutMatrix(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(matrixBase))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Label != "" || vs[0].Params != nil {
		t.Fatalf("Expand = %+v, want one variant without a label", vs)
	}
	if vs[0].Scenario == s || !reflect.DeepEqual(vs[0].Scenario, s) {
		t.Errorf("the variant is not a copy equal to the scenario:\n%+v\n%+v", vs[0].Scenario, s)
	}
}

// TestExpandCopies: every variant is a deep copy, of lists and mappings
// too.
func TestExpandCopies(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(`name: plan
fleet:
  - count: 10
    board: rt1060
    production: true
    group: g
    firmware: {default: healthy}
rollout:
  versions: [1001]
  waves:
    - {at: 1h, groups: [g]}
faults:
  - {kind: power-cut, rate: 0.1}
expect:
  updated: ["rate>=0.9"]
matrix:
  seed: [1, 2]
`))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(s)
	vs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("%d variants", len(vs))
	}
	second, _ := json.Marshal(vs[1].Scenario)

	v := vs[0].Scenario
	v.Fleet[0].Count = 99
	v.Fleet[0].Firmware["default"] = "hangs"
	v.Rollout.Versions[0] = 7
	v.Rollout.Waves[0].Groups[0] = "h"
	v.Faults[0].Rate = 1
	v.Expect["updated"][0] = "rate>=0"
	v.Expect["bricked"] = []string{"count==0"}

	if after, _ := json.Marshal(s); string(after) != string(before) {
		t.Errorf("changing a variant changed the scenario:\n%s\nthen\n%s", before, after)
	}
	if after, _ := json.Marshal(vs[1].Scenario); string(after) != string(second) {
		t.Errorf("changing a variant changed another:\n%s\nthen\n%s", second, after)
	}
	if vs[0].Params[0].Value != "1" || vs[1].Params[0].Value != "2" || vs[1].Scenario.Seed != 2 {
		t.Errorf("seeds: %+v, %+v", vs[0].Params, vs[1].Params)
	}
}

func TestMatrixErrors(t *testing.T) {
	for _, tc := range []struct {
		name, matrix, want string
	}{
		{"unknown field", "  fleet[0].cout: [1, 2]\n",
			`x.yaml:12: matrix.fleet[0].cout: "cout" is not a cohort field (did you mean "count"?)`},
		{"unknown scenario field", "  sede: [1, 2]\n",
			`x.yaml:12: matrix.sede: "sede" is not a scenario field (did you mean "seed"?)`},
		{"unknown wave field", "  rollout.waves[0].percent: [1]\n",
			`x.yaml:12: matrix.rollout.waves[0].percent: rollout.waves[0] is out of range: rollout.waves has 0 waves`},
		{"index out of range", "  fleet[0].count: [1]\n  fleet[2].count: [1, 2]\n",
			`x.yaml:13: matrix.fleet[2].count: fleet[2] is out of range: fleet has 2 cohorts`},
		{"index with a leading zero", "  fleet[01].count: [1]\n",
			`x.yaml:12: matrix.fleet[01].count: not a parameter path: write field names and list indexes the way errors name them, e.g. fleet[0].count or rollout.image_size`},
		{"index as a field", "  fleet.0.count: [1]\n",
			`x.yaml:12: matrix.fleet.0.count: not a parameter path: write field names and list indexes the way errors name them, e.g. fleet[0].count or rollout.image_size`},
		{"no dot after an index", "  fleet[0]count: [1]\n",
			`x.yaml:12: matrix.fleet[0]count: not a parameter path: write field names and list indexes the way errors name them, e.g. fleet[0].count or rollout.image_size`},
		{"field of a list", "  fleet.count: [1]\n",
			`x.yaml:12: matrix.fleet.count: fleet is a list: give an index, e.g. fleet[0]`},
		{"index of a mapping", "  rollout[0].at: [1h]\n",
			`x.yaml:12: matrix.rollout[0].at: rollout is not a list`},
		{"a whole section", "  rollout: [1]\n",
			`x.yaml:12: matrix.rollout: rollout is a rollout: name one of its fields (image_size, versions, at, waves, rotations)`},
		{"a whole list", "  rollout.versions: [1]\n",
			`x.yaml:12: matrix.rollout.versions: rollout.versions is a list: give an index, e.g. rollout.versions[0]`},
		{"a mapping", "  fleet[0].firmware: [hangs]\n",
			`x.yaml:12: matrix.fleet[0].firmware: fleet[0].firmware is a mapping: a matrix varies fields and list entries, not a mapping's entries`},
		{"a mapping's entry", "  expect.updated: [x]\n",
			`x.yaml:12: matrix.expect.updated: expect is a mapping: a matrix varies fields and list entries, not a mapping's entries`},
		{"a field of a single value", "  duration.hours: [1]\n",
			`x.yaml:12: matrix.duration.hours: duration is a single value: it has no field "hours"`},
		{"the name", "  name: [a, b]\n",
			`x.yaml:12: matrix.name: a variant's name is the scenario's followed by its values; vary another field`},
		{"the matrix", "  matrix: [a]\n",
			`x.yaml:12: matrix.matrix: a matrix cannot vary itself`},
		{"not a whole number", "  fleet[0].count:\n    - 1000\n    - abc\n",
			`x.yaml:14: matrix.fleet[0].count[1]: want a whole number, not "abc"`},
		{"a quoted number", "  fleet[0].count: [\"1000\"]\n",
			`x.yaml:12: matrix.fleet[0].count[0]: want a whole number, not "1000"`},
		{"not a duration", "  fleet[0].poll: [5m, 5x]\n",
			`x.yaml:12: matrix.fleet[0].poll[1]: "5x" is not a duration: want "15s", "90m", "1h30m" or "7d"`},
		{"a duration without a unit", "  duration: [1h, 90]\n",
			`x.yaml:12: matrix.duration[1]: 90 has no unit: add one, e.g. "90s", "90m" or "90h"`},
		{"not a size", "  rollout.image_size: [64KiB, 1.5MiB]\n",
			`x.yaml:12: matrix.rollout.image_size[1]: "1.5MiB" is not a size: want a whole number of bytes with an optional unit (B, KiB, MiB, KB, MB), e.g. "512B", "64KiB" or "1MiB"`},
		{"not a bool", "  fleet[1].production: [false, maybe]\n",
			`x.yaml:12: matrix.fleet[1].production[1]: want true or false, not "maybe"`},
		{"an empty value", "  fleet[0].count: [1, ~]\n",
			`x.yaml:12: matrix.fleet[0].count[1]: want a value, not nothing: a variant cannot leave a field to its default`},
		{"a list as a value", "  fleet[0].count: [[1]]\n",
			`x.yaml:12: matrix.fleet[0].count[0]: want a single value, not a list`},
		{"an empty list", "  fleet[0].count: []\n",
			`x.yaml:12: matrix.fleet[0].count: list at least one value, e.g. [1, 2]`},
		{"an empty list of durations", "  fleet[0].poll:\n    []\n",
			`x.yaml:12: matrix.fleet[0].poll: list at least one value, e.g. [5m, 15m]`},
		{"a single value", "  fleet[0].count: 5\n",
			`x.yaml:12: matrix.fleet[0].count: want a list of the values to run with, e.g. [5m, 15m], not a single value`},
		{"a key twice", "  seed: [1]\n  seed: [2]\n",
			`x.yaml:13: matrix.seed: given twice (first on line 12)`},
		{"too many combinations", "  seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  fleet[0].count: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n  fleet[1].poll: [1m, 2m, 3m]\n",
			`x.yaml:11: matrix: 300 combinations (10 × 10 × 3 values): at most 256 run in one matrix; list fewer values`},
		{"a variant that fails on a matrix field", "  fleet[0].count: [5, 0]\n",
			`x.yaml:12: matrix.fleet[0].count: variant fleet[0].count=0: fleet[0].count: must be at least 1`},
		{"the first variant that fails", "  fleet[0].count: [5, 0]\n  fleet[0].link: [wifi, 5g]\n",
			`x.yaml:13: matrix.fleet[0].link: variant fleet[0].count=5, fleet[0].link=5g: fleet[0].link: unknown link "5g" (links: ethernet, wifi, lte-m, nb-iot)`},
		{"a variant that fails on a later matrix field", "  duration: [12h, 10m]\n  rollout.at: [15m, 30m]\n",
			`x.yaml:13: matrix.rollout.at: variant duration=10m, rollout.at=15m: rollout.at: the last version would be published at 15m, when the run is over (duration 10m)`},
		{"a variant that fails on another field", "  fleet[0].name: [a, big]\n",
			`x.yaml:11: matrix: variant fleet[0].name=big: fleet[1].name: "big" already names fleet[0]: cohort names must differ`},
		{"not a mapping", "  - seed\n",
			`x.yaml:12: matrix: want a mapping of parameters to lists of values, e.g. fleet[0].count: [1000, 5000], not a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scenarios.Parse("x.yaml", []byte(matrixBase+"matrix:\n"+tc.matrix))
			if err == nil {
				t.Fatalf("no error; parsed %+v", s)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
			var e *scenarios.Error
			if !errors.As(err, &e) || e.File != "x.yaml" || e.Line < 1 {
				t.Errorf("error %#v is not an *Error with the file and a line", err)
			}
		})
	}
}

// TestMatrixBaseMistake: a mistake the scenario makes whatever the matrix
// says is reported where it is, not as the matrix's.
func TestMatrixBaseMistake(t *testing.T) {
	_, err := scenarios.Parse("x.yaml", []byte(`fleet:
  - count: 1
    board: esp32
rollout:
  versions: [1001]
matrix:
  fleet[0].count: [1, 2]
`))
	if want := `x.yaml:3: fleet[0].board: unknown board "esp32" (boards: k64f, nrf52840, rt1060)`; err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want %s", err, want)
	}
}

// TestMatrixSetsWhatTheScenarioLeavesOut: a field the matrix sets in every
// variant may be left out of the scenario itself.
func TestMatrixSetsWhatTheScenarioLeavesOut(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(`fleet:
  - board: rt1060
rollout:
  versions: [1001]
matrix:
  fleet[0].count: [1, 2]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}
	vs, err := s.Expand()
	if err != nil || len(vs) != 2 || vs[1].Scenario.Fleet[0].Count != 2 {
		t.Errorf("Expand = %+v, %v", vs, err)
	}
}

// TestMatrixDeepPaths: paths into lists of waves and faults, and into the
// gateway section, reach their fields through the yaml tags.
func TestMatrixDeepPaths(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(`name: deep
fleet:
  - {count: 10, board: rt1060, production: true}
rollout:
  versions: [1001]
  waves:
    - {at: 1h, percentage: 10}
    - {at: 2h, percentage: 100}
faults:
  - {kind: network-outage, at: 1h, for: 10m}
  - {kind: power-cut, rate: 0.1}
matrix:
  rollout.waves[1].percentage: [50, 100]
  faults[1].rate: [0.1, 0.5]
  faults[0].for: [10m, 90m]
  gateway.cores: [1, 4]
  gateway.egress_mbps: [10]
`))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 16 {
		t.Fatalf("%d variants, want 16", len(vs))
	}
	last := vs[15].Scenario
	if last.Rollout.Waves[1].Percentage != 100 || last.Faults[1].Rate != 0.5 || last.Faults[0].For != scenarios.Duration(90*time.Minute) ||
		last.Gateway.Cores != 4 || last.Gateway.EgressMbps != 10 {
		t.Errorf("last variant: waves %+v faults %+v gateway %+v", last.Rollout.Waves, last.Faults, last.Gateway)
	}
	if want := "rollout.waves[1].percentage=100, faults[1].rate=0.5, faults[0].for=1h30m, gateway.cores=4, gateway.egress_mbps=10"; vs[15].Label != want {
		t.Errorf("label %q, want %q", vs[15].Label, want)
	}
	if first := vs[0].Scenario; first.Rollout.Waves[1].Percentage != 50 || first.Rollout.Waves[0].Percentage != 10 {
		t.Errorf("first variant's waves: %+v", first.Rollout.Waves)
	}
}

// TestMatrixEveryField: every single-valued field of every scenario type
// can be varied, found by reflection over the yaml tags, so that a field
// added later needs no code here. Each field takes the value it already
// has, and the variant must equal the scenario but for its name.
func TestMatrixEveryField(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(`name: all
description: every field
duration: 12h
fleet:
  - {name: a, count: 10, board: rt1060, strategy: swap-move, production: true, group: g, start: 1m, firmware: {default: healthy}}
rollout:
  versions: [1001]
  at: 30m
  image_size: 128KiB
  waves:
    - {at: 1h, groups: [g], percentage: 50, limit: 5, abort_failure_rate: 0.25}
gateway: {cores: 2, handshake_cpu: 870us, request_cpu: 78us, egress_mbps: 100}
faults:
  - {kind: power-cut, phase: swap, rate: 0.1}
  - {kind: gateway-outage, at: 2h, for: 10m}
expect:
  bricked: ["count==0"]
`))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	walkParams(reflect.ValueOf(s).Elem(), "", func(path string, v reflect.Value) {
		paths = append(paths, path)
		c := *s
		c.Matrix = scenarios.Matrix{{Path: path, Values: []string{valueText(v)}}}
		vs, err := c.Expand()
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		got := vs[0].Scenario
		if want := "all[" + path + "=" + valueText(v) + "]"; got.Name != want {
			t.Errorf("%s: name %q, want %q", path, got.Name, want)
		}
		got.Name = s.Name
		if !reflect.DeepEqual(got, s) {
			t.Errorf("%s: the variant differs from the scenario", path)
		}
	})
	for _, want := range []string{"seed", "duration", "fleet[0].count", "fleet[0].poll", "rollout.image_size",
		"rollout.waves[0].percentage", "rollout.waves[0].groups[0]", "rollout.versions[0]", "gateway.cores", "faults[1].for"} {
		if !slices.Contains(paths, want) {
			t.Errorf("the walk missed %s (walked %v)", want, paths)
		}
	}
}

// walkParams calls f with the path and value of every single-valued field
// under v, as the matrix names them; the name, the matrix and mappings are
// left out.
func walkParams(v reflect.Value, path string, f func(string, reflect.Value)) {
	if _, ok := v.Interface().(encoding.TextMarshaler); ok {
		f(path, v)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			name := yamlName(v.Type().Field(i))
			if path == "" && (name == "name" || name == "matrix") {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			walkParams(v.Field(i), p, f)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walkParams(v.Index(i), fmt.Sprintf("%s[%d]", path, i), f)
		}
	case reflect.Map:
	default:
		f(path, v)
	}
}

// valueText writes a field's value as a scenario would.
func valueText(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, _ := m.MarshalText()
		return string(b)
	}
	if v.Kind() == reflect.Float64 {
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return fmt.Sprint(v.Interface())
}

// TestMatrixValuesPrinted: Parse keeps the matrix in the file's order and
// writes each value as its field prints it; JSON and YAML printing keep
// both, and Parse reads them back alike.
func TestMatrixValuesPrinted(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(matrixBase+`matrix:
  fleet[1].poll: [90m, 1d]
  rollout.image_size: [65536, "128KiB"]
  fleet[0].tag: ["null", "1.0", "", "true"]
  fleet[1].production: [true]
  seed: [0x10]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := scenarios.Matrix{
		{Path: "fleet[1].poll", Values: []string{"1h30m", "1d"}},
		{Path: "rollout.image_size", Values: []string{"64KiB", "128KiB"}},
		{Path: "fleet[0].tag", Values: []string{"null", "1.0", "", "true"}},
		{Path: "fleet[1].production", Values: []string{"true"}},
		{Path: "seed", Values: []string{"16"}},
	}
	if !reflect.DeepEqual(s.Matrix, want) {
		t.Errorf("matrix = %+v, want %+v", s.Matrix, want)
	}
	js, err := json.Marshal(s.Matrix)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"fleet[1].poll":["1h30m","1d"],"rollout.image_size":["64KiB","128KiB"],"fleet[0].tag":["null",1.0,"",true],"fleet[1].production":[true],"seed":[16]}`; string(js) != want {
		t.Errorf("JSON:\n got %s\nwant %s", js, want)
	}
	y, err := yaml.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	js, err = json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"printed.yaml": y, "printed.json": js} {
		back, err := scenarios.Parse(name, data)
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, data)
			continue
		}
		if !reflect.DeepEqual(back.Matrix, s.Matrix) {
			t.Errorf("%s: matrix read back as %+v", name, back.Matrix)
		}
	}
	vs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if got := vs[0].Scenario.Fleet[0].Tag; got != "null" {
		t.Errorf("tag %q, want the text \"null\"", got)
	}
	// An empty value, like an empty field, leaves the default.
	if got := vs[2].Scenario.Fleet[0].Tag; got != scenarios.DefaultTag || vs[2].Label != "fleet[1].poll=1h30m, rollout.image_size=64KiB, fleet[0].tag=, fleet[1].production=true, seed=16" {
		t.Errorf("variant 3: tag %q, label %q", got, vs[2].Label)
	}
}

// TestMatrixInCode: a matrix built in Go is checked by Validate and
// Expand, with paths and without lines.
func TestMatrixInCode(t *testing.T) {
	s := &scenarios.Scenario{
		Name:    "code",
		Fleet:   []scenarios.Cohort{{Board: "rt1060"}},
		Rollout: scenarios.Rollout{Versions: []uint32{2}},
		Matrix: scenarios.Matrix{
			{Path: "fleet[0].count", Values: []string{"1", "2"}},
			{Path: "fleet[0].poll", Values: []string{"90s"}},
		},
	}
	s.Defaults()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[1].Label != "fleet[0].count=2, fleet[0].poll=1m30s" || vs[1].Scenario.Name != "code[fleet[0].count=2,fleet[0].poll=1m30s]" {
		t.Errorf("Expand = %+v", vs)
	}

	for _, tc := range []struct {
		matrix scenarios.Matrix
		want   string
	}{
		{scenarios.Matrix{{Path: "fleet[0].count", Values: []string{"1", "abc"}}},
			`matrix.fleet[0].count[1]: want a whole number, not "abc"`},
		{scenarios.Matrix{{Path: "fleet[0].count", Values: []string{"~"}}},
			`matrix.fleet[0].count[0]: want a value, not nothing: a variant cannot leave a field to its default`},
		{scenarios.Matrix{{Path: "fleet[0].count"}},
			`matrix.fleet[0].count: list at least one value, e.g. [1, 2]`},
		{scenarios.Matrix{{Path: "seed", Values: []string{"1"}}, {Path: "seed", Values: []string{"2"}}},
			`matrix.seed: given twice`},
		{scenarios.Matrix{{Path: "fleet[1].count", Values: []string{"1"}}},
			`matrix.fleet[1].count: fleet[1] is out of range: fleet has 1 cohort`},
		{scenarios.Matrix{{Path: "fleet[0].count", Values: []string{"0"}}},
			`matrix.fleet[0].count: variant fleet[0].count=0: fleet[0].count: must be at least 1`},
	} {
		c := *s
		c.Matrix = tc.matrix
		if err := c.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("Validate = %v, want %s", err, tc.want)
		}
		if _, err := c.Expand(); err == nil || err.Error() != tc.want {
			t.Errorf("Expand = %v, want %s", err, tc.want)
		}
	}
}

func TestCapacity(t *testing.T) {
	s, err := scenarios.LoadBuiltin("capacity")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := s.Expand()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"fleet[0].count=1000, fleet[0].poll=5m",
		"fleet[0].count=1000, fleet[0].poll=15m",
		"fleet[0].count=4000, fleet[0].poll=5m",
		"fleet[0].count=4000, fleet[0].poll=15m",
	}
	var labels []string
	for _, v := range vs {
		labels = append(labels, v.Label)
		c := v.Scenario.Fleet[0]
		if c.Board != "rt1060" || c.Link != "wifi" || v.Scenario.Rollout.ImageSize != 64*scenarios.KiB || v.Scenario.Duration != scenarios.Duration(3*time.Hour) {
			t.Errorf("%s: %+v, rollout %+v", v.Label, c, v.Scenario.Rollout)
		}
	}
	if !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
	for _, m := range []string{"updated", "time_to_update"} {
		if len(s.Expect[m]) == 0 {
			t.Errorf("capacity expects nothing of %s", m)
		}
	}
	if !strings.HasPrefix(vs[0].Scenario.Name, "capacity[") {
		t.Errorf("name %q", vs[0].Scenario.Name)
	}
}
