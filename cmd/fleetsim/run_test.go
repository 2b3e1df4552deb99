package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyScenario is a fleet that updates in a few simulated minutes.
const tinyScenario = `name: tiny
duration: 1h
fleet:
  - {count: 3, board: rt1060, link: ethernet, poll: 1m, start: 1m}
rollout:
  versions: [1001]
  at: 5m
  image_size: 16KiB
expect:
  updated: ["rate==1"]
  bricked: ["count==0"]
`

func writeScenario(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunWritesReportsAndExitsByThresholds(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runCLI(t, "run", writeScenario(t, tinyScenario), "--quiet", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	for _, want := range []string{"✓ updated", "✓ bricked", "updated 3"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	js, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Scenario string                `json:"scenario"`
		Outcomes struct{ Updated int } `json:"outcomes"`
	}
	if err := json.Unmarshal(js, &rep); err != nil || rep.Scenario != "tiny" || rep.Outcomes.Updated != 3 {
		t.Fatalf("report.json: %v %+v", err, rep)
	}
	if page, err := os.ReadFile(filepath.Join(out, "report.html")); err != nil || !strings.Contains(string(page), "<svg") {
		t.Fatalf("report.html: %v, %d bytes", err, len(page))
	}

	failing := strings.Replace(tinyScenario, `rate==1`, `rate==1", "count<0`, 1)
	failing = strings.Replace(failing, `updated: ["rate==1", "count<0"]`, `time_to_update: ["p(95)<1s"]`, 1)
	code, stdout, _ = runCLI(t, "run", writeScenario(t, failing), "--quiet", "--out", filepath.Join(t.TempDir(), "o"))
	if code != 99 || !strings.Contains(stdout, "✗ time_to_update") {
		t.Fatalf("a failing threshold: exit %d (want 99), summary:\n%s", code, stdout)
	}
}

func TestRunMatrixComparesVariants(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	body := tinyScenario + "matrix:\n  fleet[0].count: [1, 2]\n"
	code, stdout, stderr := runCLI(t, "run", writeScenario(t, body), "--quiet", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if !strings.Contains(stdout, "variant 2 of 2: fleet[0].count=2") {
		t.Errorf("summary lacks the second variant:\n%s", stdout)
	}
	for _, f := range []string{"matrix.json", "matrix.html", "01/report.json", "02/report.html"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	good := writeScenario(t, tinyScenario)
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "no-such-scenario"}, `unknown scenario "no-such-scenario"`},
		{[]string{"run", writeScenario(t, "fleet: [")}, "s.yaml:1:"},
		{[]string{"run", writeScenario(t, strings.Replace(tinyScenario, "count: 3", "count: 0", 1))}, "fleet[0].count: must be at least 1"},
		{[]string{"run", good, "--devices", "-1"}, "--devices -1"},
		{[]string{"run", good, "--mode", "sideways"}, `--mode "sideways"`},
		{[]string{"run", good, "--proto", "h3"}, "apply to live mode"},
		{[]string{"run", good, "--mode", "live", "--time-scale", "0"}, "--time-scale 0"},
		{[]string{"run", good, "--mode", "live", "--proto", "h9"}, "--proto"},
		{[]string{"run", good, "--data", full}, "not empty"},
		{[]string{"run", good, "extra"}, "accepts at most 1 arg"},
		{[]string{"run", good, "--set", "seed"}, `--set "seed": want PATH=VALUE`},
		{[]string{"run", good, "--set", "fleet[0].pol=1m"}, `s.yaml: --set fleet[0].pol=1m: fleet[0]: "pol" is not a cohort field (did you mean "poll"?)`},
		{[]string{"run", good, "--set", "fleet[1].count=1"}, "fleet[1]: out of range: fleet has 1 cohort"},
		{[]string{"run", good, "--set", "fleet[0].count=many"}, `--set fleet[0].count=many: want a whole number, not "many"`},
		{[]string{"run", "capacity", "--set", "fleet[0].count=5"}, "the matrix varies fleet[0].count"},
	} {
		code, _, stderr := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line with %q", c.args[1:], code, stderr, c.want)
		}
	}
}

func TestRunSetOverridesTheScenario(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	mustCLI(t, "run", writeScenario(t, tinyScenario), "--quiet", "--out", out,
		"--set", "fleet[0].count=2", "--set", "seed=5", "--set", "rollout.image_size=8KiB", "--set", `expect.updated=["rate==1", "rate>0.5"]`)
	var rep struct {
		Seed       uint64 `json:"seed"`
		Devices    int    `json:"devices"`
		Thresholds []struct {
			Threshold string `json:"threshold"`
		} `json:"thresholds"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(out, "report.json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Seed != 5 || rep.Devices != 2 || len(rep.Thresholds) != 3 {
		t.Errorf("report %+v: want seed 5, 2 devices, and the three expectations the overrides left", rep)
	}
}
