package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/internal/fleetrun"
	"github.com/fleetsim/fleetsim/scenarios"
	"github.com/fleetsim/fleetsim/scenarios/threshold"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// runFlags are the options of `fleetsim run`.
type runFlags struct {
	seed      uint64
	devices   int
	mode      string
	proto     string
	timeScale float64
	out       string
	data      string
	quiet     bool
	// sets override scenario fields, PATH=VALUE each.
	sets []string
	// external is the gateway of a live run against one.
	external externalFlags
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [SCENARIO.yaml|NAME] [flags]",
		Short: "Run a fleet through a rollout and report how it went",
		Long: `run builds the fleet a scenario describes (cohorts of virtual MCUs, each
with emulated flash, MCUboot and the update agent), the device gateway in
process, and the rollout, then runs it in deterministic virtual time: the
same seed gives the same report.json, byte for byte. With --mode live the
same fleet runs on the wall clock against the gateway served on loopback
over mutual TLS, each device with its own certificate and connections.

A scenario with a matrix runs every combination of its values, each into a
directory of its own under --out, and compares them in matrix.json and
matrix.html.

--set PATH=VALUE changes one field of the scenario before it is checked,
as if the file said it: PATH as errors name fields (seed, fleet[0].poll,
rollout.image_size, gateway.cores, expect.updated), VALUE as the file would
write it (5m, 1MiB, [1001, 1002]). Repeat it for more fields.

With --gateway URL a live run updates its devices from a gateway of your
own (fleetsim gateway serve, or one with the same APIs) instead of the
embedded one: --pki names the gateway's PKI directory (fleetsim pki init),
whose factory CA issues the devices' certificates and verifies the gateway,
and whose admin certificate and token publish the scenario's images and
waves through --gateway-admin. The images are signed with --image-key, a
key the gateway accepts. The gateway must not hold the scenario's versions
yet.

SCENARIO is a YAML file or the name of a built-in scenario (fleetsim
scenarios list); without one, the built-in "quick" runs. Expectations in the
scenario (k6's threshold syntax) decide the exit code: 0 when all hold, 99
when one fails, 2 for bad input, 1 when the run itself failed.`,
		Example: `  fleetsim run quick --devices 2000 --set fleet[0].poll=5m --set rollout.image_size=512KiB
  fleetsim run staged --mode live --time-scale 20 --devices 50 \
      --gateway https://127.0.0.1:8443 --gateway-admin https://127.0.0.1:8444 --pki pki --image-key image.key`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "quick"
			if len(args) == 1 {
				name = args[0]
			}
			return runScenario(cmd, name, f)
		},
	}
	fl := cmd.Flags()
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the run (default: the scenario's)")
	fl.IntVar(&f.devices, "devices", 0, "fleet size, the cohorts scaled in proportion (default: the scenario's)")
	fl.StringVar(&f.mode, "mode", "", "virtual or live (default: the scenario's)")
	fl.StringVar(&f.proto, "proto", "h1", "live mode: the devices' HTTP version, h1, h2 or h3")
	fl.Float64Var(&f.timeScale, "time-scale", 1, "live mode: run the scenario's clock this many times faster than the wall clock")
	fl.StringVar(&f.out, "out", "fleetsim-report", "directory for report.json and report.html")
	fl.StringVar(&f.data, "data", "", "keep the embedded gateway's data in this new directory (default: in memory)")
	fl.BoolVar(&f.quiet, "quiet", false, "no progress lines")
	fl.StringArrayVar(&f.sets, "set", nil, "override a scenario field, PATH=VALUE, e.g. fleet[0].poll=5m (repeatable)")
	f.external.addFlags(fl)
	return cmd
}

func runScenario(cmd *cobra.Command, name string, f *runFlags) error {
	usage := func(err error) error { return &exitError{2, err} }
	var overrides []scenarios.Override
	for _, set := range f.sets {
		o, err := scenarios.ParseOverride(set)
		if err != nil {
			return usage(fmt.Errorf("--set %q: want PATH=VALUE, e.g. fleet[0].poll=5m", set))
		}
		overrides = append(overrides, o)
	}
	s, err := scenarios.Resolve(name, overrides...)
	if err != nil {
		return usage(err)
	}
	if f.seed != 0 {
		s.Seed = f.seed
	}
	if f.mode != "" {
		if f.mode != "virtual" && f.mode != "live" {
			return usage(fmt.Errorf("--mode %q: virtual or live", f.mode))
		}
		s.Mode = f.mode
	}
	var liveOpts *fleetrun.LiveOptions
	if s.Mode == "live" {
		proto, err := live.ParseProto(f.proto)
		if err != nil {
			return usage(fmt.Errorf("--proto: %w", err))
		}
		if !(f.timeScale >= 1) {
			return usage(fmt.Errorf("--time-scale %g: at least 1 (the wall clock)", f.timeScale))
		}
		liveOpts = &fleetrun.LiveOptions{Proto: proto, TimeScale: f.timeScale}
		if liveOpts.Gateway, err = f.external.gateway(cmd); err != nil {
			return err
		}
		if liveOpts.Gateway != nil && f.data != "" {
			return usage(errors.New("--data keeps the embedded gateway's data: the --gateway keeps its own"))
		}
	} else if cmd.Flags().Changed("proto") || cmd.Flags().Changed("time-scale") {
		return usage(errors.New("--proto and --time-scale apply to live mode (--mode live)"))
	} else if f.external.given(cmd) {
		if f.external.url == "" {
			return usage(errors.New("--gateway-admin, --pki, --gateway-ca and --image-key go with --gateway URL (and --mode live)"))
		}
		return usage(errors.New("--gateway runs the fleet on the wall clock: add --mode live"))
	}
	if f.devices < 0 {
		return usage(fmt.Errorf("--devices %d: a fleet has at least one device", f.devices))
	}
	if f.devices > 0 {
		if err := scaleFleet(s, f.devices); err != nil {
			return usage(err)
		}
	}
	variants, err := s.Expand()
	if err != nil {
		return usage(err)
	}
	if liveOpts != nil && liveOpts.Gateway != nil && len(variants) > 1 {
		return usage(errors.New("--gateway runs one fleet: each variant of a matrix would publish the same versions to the one gateway (run them one by one with --set)"))
	}
	// What a live run cannot do is bad input, told before anything runs.
	for _, v := range variants {
		if liveOpts == nil {
			continue
		}
		if err := liveOpts.Check(v.Scenario); err != nil {
			if v.Label != "" {
				err = fmt.Errorf("variant %s: %w", v.Label, err)
			}
			return usage(err)
		}
	}
	if f.data != "" {
		if len(variants) > 1 {
			return usage(errors.New("--data keeps one run's gateway data: a matrix runs several"))
		}
		if entries, err := os.ReadDir(f.data); err == nil && len(entries) > 0 {
			return usage(fmt.Errorf("--data %s: not empty; give a new directory so that no gateway data is overwritten", f.data))
		}
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return usage(fmt.Errorf("--out: %w", err))
	}
	stdout := cmd.OutOrStdout()
	if len(variants) == 1 && variants[0].Label == "" {
		rep, err := runOne(cmd, variants[0].Scenario, f, liveOpts, f.out)
		if err != nil {
			return err
		}
		if rep.Failed() {
			return &exitError{99, errors.New("some thresholds have failed")}
		}
		return nil
	}
	m := fleetrun.NewMatrixReport(s)
	for i, v := range variants {
		fmt.Fprintf(stdout, "== variant %d of %d: %s\n", i+1, len(variants), v.Label)
		dir := fmt.Sprintf("%02d", i+1)
		rep, err := runOne(cmd, v.Scenario, f, liveOpts, filepath.Join(f.out, dir))
		if err != nil {
			return err
		}
		m.Add(v, dir, rep)
	}
	js, err := m.JSON()
	if err != nil {
		return err
	}
	page, err := m.HTML()
	if err != nil {
		return err
	}
	if err := writeFiles(f.out, map[string][]byte{"matrix.json": js, "matrix.html": page}); err != nil {
		return err
	}
	printMatrix(stdout, m, f.out)
	if m.Failed() {
		return &exitError{99, errors.New("some thresholds have failed")}
	}
	return nil
}

// runOne runs one scenario, writes its report.json and report.html in out
// and prints its summary.
func runOne(cmd *cobra.Command, s *scenarios.Scenario, f *runFlags, liveOpts *fleetrun.LiveOptions, out string) (*fleetrun.Report, error) {
	started := time.Now()
	o := fleetrun.Options{Dir: f.data, Live: liveOpts}
	if os.Getenv("GOMAXPROCS") == "" {
		// One device runs at a time: a second processor only wakes up to
		// find nothing to do at every hand-off (Options.Procs).
		o.Procs = 1
	}
	if !f.quiet {
		o.Progress, o.ProgressEvery = progressDisplay(cmd.ErrOrStderr(), started)
	}
	rep, err := fleetrun.Run(s, o)
	if err != nil {
		return nil, &exitError{1, err}
	}
	wall := time.Since(started)
	js, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	page, err := rep.HTML()
	if err != nil {
		return nil, err
	}
	if err := writeFiles(out, map[string][]byte{"report.json": js, "report.html": page}); err != nil {
		return nil, err
	}
	printSummary(cmd.OutOrStdout(), rep, wall, filepath.Join(out, "report.json"))
	return rep, nil
}

// writeFiles writes the named files into dir, which it creates.
func writeFiles(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &exitError{1, err}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return &exitError{1, err}
		}
	}
	return nil
}

// printMatrix prints the variants side by side.
func printMatrix(w io.Writer, m *fleetrun.MatrixReport, out string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\n  matrix: "+m.Scenario)
	for _, p := range m.Params {
		fmt.Fprintf(tw, "%s\t", p)
	}
	fmt.Fprintln(tw, "expectations\tupdated\tbricked\ttime to 90%\tp95 to update\tpeak conns\tgateway CPU\t")
	for _, c := range m.Variants {
		for _, v := range c.Values {
			fmt.Fprintf(tw, "%s\t", v)
		}
		verdict := "✓"
		if !c.Passed {
			verdict = "✗"
		}
		to90 := "–"
		if c.TimeTo90 != nil {
			to90 = fmtDuration(time.Duration(*c.TimeTo90 * float64(time.Second)))
		}
		fmt.Fprintf(tw, "%s\t%.1f%%\t%d\t%s\t%s\t%d\t%.1f%%\t\n", verdict, 100*c.Updated, c.Bricked, to90,
			fmtDuration(time.Duration(c.UpdateP95*float64(time.Second))), c.PeakConnections, 100*c.Utilization)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n  matrix report: %s and matrix.html, one directory per variant\n\n", filepath.Join(out, "matrix.json"))
}

// scaleFleet resizes the cohorts to n devices in all, keeping their
// proportions; every cohort keeps at least one device.
func scaleFleet(s *scenarios.Scenario, n int) error {
	if n < len(s.Fleet) {
		return fmt.Errorf("--devices %d: the scenario has %d cohorts, each needs a device", n, len(s.Fleet))
	}
	total := 0
	for _, c := range s.Fleet {
		total += c.Count
	}
	left := n
	for i := range s.Fleet {
		c := &s.Fleet[i]
		c.Count = max(1, c.Count*n/total)
		left -= c.Count
	}
	s.Fleet[0].Count += left
	if s.Fleet[0].Count < 1 {
		return fmt.Errorf("--devices %d: too few for the scenario's cohorts", n)
	}
	return nil
}

// progressDisplay shows a run's progress: a bar with virtual time,
// devices updated and the wall time left on a terminal, plain lines every
// simulated hour otherwise (logs, CI).
func progressDisplay(w io.Writer, started time.Time) (func(fleetrun.Progress), time.Duration) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func(p fleetrun.Progress) {
			fmt.Fprintf(w, "  %s / %s simulated  devices %d  updated %d  bricked %d  requests %d  (%s wall)\n",
				fmtDuration(p.Elapsed), fmtDuration(p.Duration), p.Devices, p.Updated, p.Bricked, p.Requests, time.Since(started).Round(time.Millisecond))
		}, time.Hour
	}
	var bar *progressbar.ProgressBar
	return func(p fleetrun.Progress) {
		if bar == nil {
			bar = progressbar.NewOptions64(int64(p.Duration/time.Second),
				progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30), progressbar.OptionShowElapsedTimeOnFinish(),
				progressbar.OptionSetPredictTime(true), progressbar.OptionFullWidth(), progressbar.OptionClearOnFinish())
		}
		bar.Describe(fmt.Sprintf("%s simulated, %d/%d updated, %d bricked", fmtDuration(p.Elapsed), p.Updated, p.Devices, p.Bricked))
		_ = bar.Set64(int64(p.Elapsed / time.Second))
		if p.Done {
			_ = bar.Finish()
		}
	}, time.Minute
}

// fmtDuration prints a duration as scenarios write them: 1h30m, 45m, 12s.
func fmtDuration(d time.Duration) string {
	return scenarios.Duration(d.Round(time.Second)).String()
}

func fmtSeconds(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmtDuration(time.Duration(*p * float64(time.Second)))
}

// printSummary prints the end-of-run summary, k6's being the model:
// thresholds first, with a check mark or a cross, then the figures.
func printSummary(w io.Writer, r *fleetrun.Report, wall time.Duration, path string) {
	sim := time.Duration(r.Simulated * float64(time.Second))
	fmt.Fprintf(w, "\n  scenario: %s (seed %d), %d devices, %s mode\n", r.Scenario, r.Seed, r.Devices, r.Mode)
	fmt.Fprintf(w, "  simulated %s in %s wall (%.0fx real time)", fmtDuration(sim), wall.Round(time.Millisecond), sim.Seconds()/max(wall.Seconds(), 1e-9))
	if r.Steps > 0 {
		fmt.Fprintf(w, ", %d device steps (%.0f/s)", r.Steps, float64(r.Steps)/max(wall.Seconds(), 1e-9))
	}
	fmt.Fprint(w, "\n\n")
	for _, t := range r.Thresholds {
		mark, val := "✓", fmt.Sprintf("%g", t.Value)
		if m, ok := scenarios.LookupMetric(t.Metric); ok && m.Kind == threshold.Trend {
			val = fmtDuration(time.Duration(t.Value * float64(time.Second)))
		}
		if !t.OK {
			mark = "✗"
		}
		if t.Error != "" {
			val = t.Error
		}
		fmt.Fprintf(w, "  %s %s: %s  (%s)\n", mark, dots(t.Metric, 22), t.Threshold, val)
	}
	if len(r.Thresholds) > 0 {
		fmt.Fprintln(w)
	}
	o := r.Outcomes
	fmt.Fprintf(w, "  %s updated %d  reverted %d  still old %d  failed %d  bricked %d\n", dots("outcomes", 16), o.Updated, o.Reverted, o.StillOld, o.Failed, o.Bricked)
	f := r.TimeToFraction
	fmt.Fprintf(w, "  %s 50%% %s  90%% %s  99%% %s  100%% %s\n", dots("time to updated", 16), fmtSeconds(f.P50), fmtSeconds(f.P90), fmtSeconds(f.P99), fmtSeconds(f.P100))
	g := r.Gateway
	fmt.Fprintf(w, "  %s %d requests  %d check-ins  %d handshakes  %s to devices", dots("gateway", 16), g.Requests, g.CheckIns, g.Handshakes, fmtBytes(g.ToDevices))
	if r.Mode != "live" { // a live run does not see its sockets' lifetimes
		fmt.Fprintf(w, "  peak %d connections", g.PeakConnections)
	}
	fmt.Fprintln(w)
	if g.Cores > 0 {
		fmt.Fprintf(w, "  %s %.1f%% of %d cores  %.0f CPU s  queueing mean %.2f ms, max %.1f ms\n",
			dots("gateway load", 16), 100*g.Utilization, g.Cores, g.CPUSeconds, g.MeanWaitMs, g.MaxWaitMs)
	}
	if fc := r.Faults; fc.PowerCutsArmed+fc.Outages+fc.ClockSkewed > 0 {
		fmt.Fprintf(w, "  %s %d power cuts (%d armed)  %d outages (%d devices partitioned)  %d gateway restarts  %d clocks skewed\n", dots("faults", 16),
			fc.PowerCuts, fc.PowerCutsArmed, fc.Outages, fc.Partitioned, fc.GatewayRestarts, fc.ClockSkewed)
	}
	if fc := r.Faults; fc.Attacks > 0 {
		fmt.Fprintf(w, "  %s %d attacks  %d refused by devices  %d devices compromised\n", dots("attacks", 16), fc.Attacks, fc.AttacksRefused, fc.Compromised)
	}
	for _, rot := range r.Rotations {
		fmt.Fprintf(w, "  %s %s at %s: root v%d, trusted by %d of %d devices\n", dots("key rotation", 16),
			strings.Join(rot.Roles, ", "), fmtDuration(time.Duration(rot.At*float64(time.Second))), rot.RootVersion, rot.Trusting, r.Devices)
	}
	fmt.Fprintf(w, "  %s %s (and report.html beside it)\n\n", dots("report", 16), path)
}

func dots(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(".", n-len(s))
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
