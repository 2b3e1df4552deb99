package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestBootSweepTable(t *testing.T) {
	code, out, errOut := runCLI(t, "boot", "sweep", "--board", "stm32f4", "--strategy", "overwrite", "--phase", "perm", "--cuts", "before,during")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{"strategy", "board", "upgrade ops", "revert ops", "cut points", "random runs", "recovered", "failed", "overwrite", "stm32f4", "1 sweep,", "all recovered", "seed 1", "phases perm"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("output reports failures:\n%s", out)
	}
}

func TestBootSweepJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "boot", "sweep", "--board", "k64f", "--strategy", "swap-scratch", "--phase", "test", "--cuts", "during", "--op", "7", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rows []sweepRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(rows) != 1 || rows[0].Strategy != "swap-scratch" || rows[0].Board != "k64f" || rows[0].Tried != 1 || rows[0].Recovered != 1 || rows[0].Ops == 0 {
		t.Errorf("rows = %+v", rows)
	}
}

func TestBootSweepZeroErased(t *testing.T) {
	code, out, errOut := runCLI(t, "boot", "sweep", "--board", "nrf52840", "--strategy", "swap-scratch", "--erase-value", "0x00", "--phase", "revert", "--cuts", "during", "--op", "30", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rows []sweepRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Recovered != 1 || rows[0].RevertOps == 0 {
		t.Errorf("rows = %+v (%v)", rows, err)
	}
}

func TestBootSweepStrategyAcrossBoards(t *testing.T) {
	code, out, errOut := runCLI(t, "boot", "sweep", "--strategy", "overwrite", "--phase", "random", "--run", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rows []sweepRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Errorf("overwrite swept on %d boards, want 4: %+v", len(rows), rows)
	}
}

func TestBootSweepUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--board", "esp32"}, []string{`unknown board "esp32"`, "k64f", "stm32f4", "nrf52840", "rt1060"}},
		{[]string{"--strategy", "swap-magic"}, []string{`unknown upgrade strategy "swap-magic"`, "overwrite", "swap-scratch"}},
		{[]string{"--cuts", "sideways"}, []string{`unknown cut kind "sideways"`}},
		{[]string{"--board", "stm32f4", "--strategy", "swap-move"}, []string{"board stm32f4 does not support strategy swap-move", "overwrite", "swap-scratch"}},
		{[]string{"--phase", "later"}, []string{`unknown phase "later"`, "random-revert"}},
		{[]string{"--chunk", "0"}, []string{"--chunk and --random-runs must be positive"}},
		{[]string{"--random-runs", "0"}, []string{"--chunk and --random-runs must be positive"}},
		{[]string{"--erase-value", "0x55"}, []string{`unknown erase value "0x55"`}},
		{[]string{"--write-size", "3"}, []string{"write size 3"}},
		{[]string{"extra"}, []string{"unknown command"}},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, append([]string{"boot", "sweep"}, c.args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", c.args, code)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.HasPrefix(errOut, "fleetsim: ") {
			t.Errorf("%v: stderr is not one line: %q", c.args, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, errOut, w)
			}
		}
		if out != "" {
			t.Errorf("%v: stdout %q", c.args, out)
		}
	}
}

func TestBootSweepHelp(t *testing.T) {
	for _, args := range [][]string{{"boot", "--help"}, {"boot", "sweep", "--help"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "sweep") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
	_, out, _ := runCLI(t, "boot", "sweep", "--help")
	for _, want := range []string{"Exit status", "random-revert", "upgrade ops", "revert ops", "cut points", "random runs", "recovered", "failed", "time"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	// Every flag is listed with a description.
	usages := newBootSweepCmd().Flags().FlagUsages()
	for _, line := range strings.Split(strings.TrimRight(usages, "\n"), "\n") {
		if !strings.Contains(out, line) {
			t.Errorf("help lacks %q", line)
		}
		if fields := strings.Fields(line); len(fields) < 3 || !strings.HasPrefix(fields[0], "--") {
			t.Errorf("flag line without a description: %q", line)
		}
	}
}

// TestBootSweepSummaryExplainsColumns: the default output (what `make run`
// shows) says what was swept and what each column means.
func TestBootSweepSummaryExplainsColumns(t *testing.T) {
	code, out, errOut := runCLI(t, "boot", "sweep", "--board", "k64f", "--strategy", "swap-scratch", "--phase", "random-revert", "--random-runs", "2")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"Power-cut sweep of the bootloader, seed 1", "phases random-revert", "2 runs per random phase",
		"upgrade ops / revert ops:", "cut points:", "random runs:", "recovered / failed:",
		"1 sweep, 0 cut points and 2 random runs: all recovered",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing blanks in %q", line)
		}
	}
}

// TestBootSweepRandomRevertRun: a random-revert run is reproduced alone.
func TestBootSweepRandomRevertRun(t *testing.T) {
	code, out, errOut := runCLI(t, "boot", "sweep", "--board", "nrf52840", "--strategy", "swap-move", "--phase", "random-revert", "--run", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var rows []sweepRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0].Tried != 1 || rows[0].Runs != 1 || rows[0].Recovered != 1 || rows[0].Ops == 0 || rows[0].RevertOps == 0 {
		t.Errorf("rows = %+v (%v)", rows, err)
	}
}

// TestPrintSweepFailures: each failure is one line with its reproduce command.
func TestPrintSweepFailures(t *testing.T) {
	var out bytes.Buffer
	printSweep(&out, []sweepRow{{
		Strategy: "swap-scratch", Board: "k64f", Ops: 10, Tried: 30, Recovered: 29, Failed: 1,
		Failures: []sweepFailureJSON{{Error: "k64f/swap-scratch seed 1 perm cut during op 4: primary slot differs", Reproduce: "fleetsim boot sweep --board k64f --strategy swap-scratch --seed 1 --phase perm --cuts during --op 4"}},
	}}, 1500*time.Millisecond)
	s := out.String()
	for _, want := range []string{"29 recovered, 1 FAILED", "FAIL k64f/swap-scratch seed 1 perm cut during op 4", "reproduce: fleetsim boot sweep --board k64f --strategy swap-scratch --seed 1 --phase perm --cuts during --op 4"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
