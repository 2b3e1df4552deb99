package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/bootsweep"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

func newBootCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "boot",
		Short: "Exercise the MCUboot-style bootloader (power-cut sweep)",
		Long: `Exercise fleetsim's MCUboot-style bootloader on the simulated boards.

  fleetsim boot sweep     cut the power at every flash operation of an upgrade and
                          of a revert, and in seeded runs of several cuts in a
                          row, and check that the next boots recover`,
	}
	cmd.AddCommand(newBootSweepCmd())
	return cmd
}

// sweepFlags are the options of `boot sweep`.
type sweepFlags struct {
	board, strategy string
	seed            uint64
	cuts, phases    string
	op, run         int
	randomRuns      int
	workers, chunk  int
	writeSize       int
	eraseValue      string
	asJSON          bool
}

func newBootSweepCmd() *cobra.Command {
	var f sweepFlags
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Power-cut sweep of the bootloader over boards and upgrade strategies",
		Long: `For each board and upgrade strategy (all by default), run a clean upgrade to
count its flash operations (programs and erases), then, on a fresh copy of the
prepared device each time, cut the power before, after and during (a torn
program or erase) each operation, boot again without faults, and check that
the upgrade completed: the slots hold exactly the expected images, the
trailers are exactly as expected, an unconfirmed test image reverts at the
next boot and a permanent one never does, and the flash never refused an
operation.

Phases:
  perm           cut each operation of a permanent upgrade
  test           cut each operation of a test upgrade, then let the
                 unconfirmed image revert
  revert         cut each operation of the revert of an unconfirmed image
                 (strategies that can revert)
  random         seeded runs of up to five cuts in a row, of mixed kinds, at
                 random operations anywhere in a permanent upgrade
  random-revert  the same over a test upgrade and the revert that follows
                 it: the unconfirmed image must end reverted

The table has one line per strategy and board:
  upgrade ops    flash operations (programs and erases) of a clean upgrade
  revert ops     flash operations of the clean revert of an unconfirmed test
                 image ("-": the strategy cannot revert)
  cut points     single power cuts tried (per phase, operation and cut kind)
  random runs    seeded runs of several cuts in a row tried
  recovered      cut points and runs after which every invariant held
  failed         cut points and runs that broke an invariant
  time           wall-clock time of that line's sweep
Every failure is printed with the command that reproduces it.

Exit status: 0 when every cut point and run recovered, 1 when any failed, 2
for bad usage (an unknown board or strategy is named with the valid ones).`,
		Example: `  fleetsim boot sweep
  fleetsim boot sweep --board k64f --strategy swap-scratch --cuts during
  fleetsim boot sweep --board k64f --strategy swap-scratch --seed 1 --phase test --cuts during --op 17
  fleetsim boot sweep --strategy swap-move --phase random-revert --random-runs 3000 --seed 9`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBootSweep(cmd.OutOrStdout(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.board, "board", "", "sweep only this board: "+strings.Join(devicemodel.BoardNames(), ", "))
	fl.StringVar(&f.strategy, "strategy", "", "sweep only this strategy: "+strings.Join(mcuboot.StrategyNames(), ", "))
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the images, the torn writes and the random runs")
	fl.StringVar(&f.cuts, "cuts", "before,after,during", "cut kinds to try, comma-separated: before, after, during")
	fl.StringVar(&f.phases, "phase", strings.Join(phaseNames(), ","), "phases to run, comma-separated: "+strings.Join(phaseNames(), ", "))
	fl.IntVar(&f.op, "op", 0, "try only this flash operation (1-based; reproduces a failure)")
	fl.IntVar(&f.run, "run", 0, "run only this random run (1-based; reproduces a failure)")
	fl.IntVar(&f.randomRuns, "random-runs", bootsweep.DefaultRandomRuns, "seeded runs of several cuts in a row per random phase")
	fl.IntVar(&f.workers, "workers", 0, "cut points tried in parallel (default: number of CPUs); results do not depend on it")
	fl.IntVar(&f.chunk, "chunk", bootsweep.DefaultCopyChunk, "bootloader copy buffer in bytes (one flash program per chunk)")
	fl.StringVar(&f.eraseValue, "erase-value", "0xff", "erased value of the flash parts: 0xff or 0x00")
	fl.IntVar(&f.writeSize, "write-size", 0, "flash write size in bytes, 1 to 32 (default: each board's own)")
	fl.BoolVar(&f.asJSON, "json", false, "print the results as JSON")
	return cmd
}

// sweepTarget is one board and strategy to sweep.
type sweepTarget struct {
	board    devicemodel.Board
	strategy string
}

// sweepTargets resolves --board and --strategy into the pairs to sweep.
func sweepTargets(boardName, strategy string) ([]sweepTarget, error) {
	boards := devicemodel.Boards()
	if boardName != "" {
		b, err := devicemodel.LookupBoard(boardName)
		if err != nil {
			return nil, err
		}
		boards = []devicemodel.Board{b}
	}
	if strategy != "" {
		if _, err := mcuboot.LookupStrategy(strategy); err != nil {
			return nil, err
		}
	}
	var out []sweepTarget
	for _, s := range mcuboot.StrategyNames() {
		if strategy != "" && s != strategy {
			continue
		}
		for _, b := range boards {
			if b.Supports(s) {
				out = append(out, sweepTarget{b, s})
			}
		}
	}
	if len(out) == 0 && boardName != "" {
		return nil, fmt.Errorf("board %s does not support strategy %s (it supports: %s)", boardName, strategy, strings.Join(boards[0].Strategies(), ", "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no board supports strategy %s", strategy)
	}
	return out, nil
}

func parseCuts(s string) ([]flashsim.CutKind, error) {
	var out []flashsim.CutKind
	for _, part := range strings.Split(s, ",") {
		found := false
		for _, k := range bootsweep.AllCuts {
			if strings.TrimSpace(part) == k.String() {
				out, found = append(out, k), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown cut kind %q (valid: before, after, during)", part)
		}
	}
	return out, nil
}

// phaseNames lists the sweep's phases in the order it runs them.
func phaseNames() []string { return phaseStrings(bootsweep.AllPhases) }

func parsePhases(s string) ([]bootsweep.Phase, error) {
	var out []bootsweep.Phase
	for _, part := range strings.Split(s, ",") {
		found := false
		for _, p := range bootsweep.AllPhases {
			if strings.TrimSpace(part) == string(p) {
				out, found = append(out, p), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown phase %q (valid: %s)", part, strings.Join(phaseNames(), ", "))
		}
	}
	return out, nil
}

// sweepRow is one line of the report (and one object of --json).
type sweepRow struct {
	Strategy  string             `json:"strategy"`
	Board     string             `json:"board"`
	Ops       int                `json:"flash_ops"`
	RevertOps int                `json:"revert_ops"`
	Tried     int                `json:"cuts_tried"` // cut points and random runs
	Runs      int                `json:"random_runs"`
	Recovered int                `json:"recovered"`
	Failed    int                `json:"failed"`
	Seconds   float64            `json:"seconds"`
	Failures  []sweepFailureJSON `json:"failures,omitempty"`
}

type sweepFailureJSON struct {
	Error     string `json:"error"`
	Reproduce string `json:"reproduce"`
}

func runBootSweep(out io.Writer, f sweepFlags) error {
	targets, err := sweepTargets(f.board, f.strategy)
	if err != nil {
		return err
	}
	cuts, err := parseCuts(f.cuts)
	if err != nil {
		return err
	}
	phases, err := parsePhases(f.phases)
	if err != nil {
		return err
	}
	if f.op < 0 || f.run < 0 || f.workers < 0 || f.chunk <= 0 || f.randomRuns <= 0 {
		return errors.New("--op, --run and --workers must not be negative, --chunk and --random-runs must be positive")
	}
	switch f.writeSize {
	case 0, 1, 2, 4, 8, 16, 32:
	default:
		return fmt.Errorf("write size %d: want 1, 2, 4, 8, 16 or 32", f.writeSize)
	}
	opts := bootsweep.Options{Seed: f.seed, Cuts: cuts, Phases: phases, Op: f.op, Run: f.run, RandomRuns: f.randomRuns,
		Workers: f.workers, CopyChunk: f.chunk, WriteSize: f.writeSize}
	switch strings.ToLower(f.eraseValue) {
	case "0xff", "ff":
	case "0x00", "0x0", "00", "0":
		opts.ZeroErased = true
	default:
		return fmt.Errorf("unknown erase value %q (valid: 0xff, 0x00)", f.eraseValue)
	}
	var rows []sweepRow
	failed := 0
	start := time.Now()
	for _, t := range targets {
		t0 := time.Now()
		r, err := bootsweep.Sweep(t.board, t.strategy, opts)
		if err != nil {
			return fmt.Errorf("sweeping %s on %s: %w", t.strategy, t.board.Name, err)
		}
		row := sweepRow{Strategy: r.Strategy, Board: r.Board, Ops: r.UpgradeOps, RevertOps: r.RevertOps,
			Tried: r.Tried, Runs: r.Runs, Recovered: r.Recovered, Failed: r.Failed, Seconds: time.Since(t0).Seconds()}
		for _, fl := range r.Failures {
			row.Failures = append(row.Failures, sweepFailureJSON{Error: fl.String(), Reproduce: fl.Command()})
		}
		failed += r.Failed
		rows = append(rows, row)
	}
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "Power-cut sweep of the bootloader, seed %d\n  phases %s; cuts %s; copy chunk %d bytes; %d runs per random phase\n\n",
			f.seed, strings.Join(phaseStrings(phases), ","), f.cuts, f.chunk, f.randomRuns)
		printSweep(out, rows, time.Since(start))
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d cut points did not recover", failed)}
	}
	return nil
}

// phaseStrings names phases for the summary.
func phaseStrings(ps []bootsweep.Phase) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

// plural is "1 sweep", "2 sweeps".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// sweepLegend says what each column of the table means.
const sweepLegend = `upgrade ops / revert ops: flash programs and erases of a clean upgrade / of the
  clean revert of an unconfirmed test image ("-": the strategy cannot revert).
cut points: single power cuts tried (before, after or during one operation).
random runs: seeded runs of several cuts in a row (perm upgrade; test upgrade and its revert).
recovered / failed: cut points and runs after which every invariant held / broke:
  the operation completes, the slots hold exactly the expected images and trailers,
  an unconfirmed image reverts, a permanent one stays, no flash operation is refused.
`

func printSweep(out io.Writer, rows []sweepRow, total time.Duration) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "strategy\tboard\tupgrade ops\trevert ops\tcut points\trandom runs\trecovered\tfailed\ttime")
	tried, runs, recovered, failed := 0, 0, 0, 0
	for _, r := range rows {
		rev := "-"
		if r.RevertOps > 0 {
			rev = fmt.Sprint(r.RevertOps)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%.1fs\n", r.Strategy, r.Board, r.Ops, rev, r.Tried-r.Runs, r.Runs, r.Recovered, r.Failed, r.Seconds)
		tried, runs, recovered, failed = tried+r.Tried, runs+r.Runs, recovered+r.Recovered, failed+r.Failed
	}
	tw.Flush()
	fmt.Fprintf(out, "\n%s\n", sweepLegend)
	verdict := "all recovered"
	if failed > 0 {
		verdict = fmt.Sprintf("%d recovered, %d FAILED", recovered, failed)
	}
	fmt.Fprintf(out, "%s, %d cut points and %d random runs: %s (%.1fs)\n", plural(len(rows), "sweep"), tried-runs, runs, verdict, total.Seconds())
	for _, r := range rows {
		for _, f := range r.Failures {
			fmt.Fprintf(out, "FAIL %s\n     reproduce: %s\n", f.Error, f.Reproduce)
		}
	}
}
