package bootsweep

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

// TestSweep cuts the power before, after and during every flash operation
// of an upgrade (permanent and test), of a revert, and in seeded runs of
// several cuts in a row (in a permanent upgrade; in a test upgrade and its
// revert), for every board and every strategy it supports. With -short it
// samples every 61st operation and one run per random phase.
func TestSweep(t *testing.T) {
	for _, b := range devicemodel.Boards() {
		for _, s := range b.Strategies() {
			t.Run(b.Name+"/"+s, func(t *testing.T) {
				opts := Options{Seed: 1}
				if testing.Short() {
					opts.Stride, opts.RandomRuns = 61, 1
				}
				r, err := Sweep(b, s, opts)
				if err != nil {
					t.Fatal(err)
				}
				if r.UpgradeOps == 0 || r.Tried != r.Recovered+r.Failed {
					t.Fatalf("sweep counted nothing: %+v", r)
				}
				expectRecovered(t, r)
				t.Logf("upgrade %d ops, revert %d ops, %d cut points, %d recovered", r.UpgradeOps, r.RevertOps, r.Tried, r.Recovered)
			})
		}
	}
}

// expectRecovered fails t when the sweep tried nothing, and reports each
// failure with the command that reproduces it.
func expectRecovered(t *testing.T, r *Result) {
	t.Helper()
	if r.Tried == 0 {
		t.Fatalf("sweep tried nothing: %+v", r)
	}
	for _, f := range r.Failures {
		t.Errorf("%s\n    reproduce: %s", f, f.Command())
	}
}

// TestSweepZeroErased runs every board and strategy on parts whose erased
// value is 0x00, sampling every 25th operation (every 97th with -short).
func TestSweepZeroErased(t *testing.T) {
	for _, b := range devicemodel.Boards() {
		for _, s := range b.Strategies() {
			t.Run(b.Name+"/"+s, func(t *testing.T) {
				opts := Options{Seed: 2, ZeroErased: true, Stride: 25, RandomRuns: 4}
				if testing.Short() {
					opts.Stride, opts.RandomRuns = 97, 1
				}
				r, err := Sweep(b, s, opts)
				if err != nil {
					t.Fatal(err)
				}
				expectRecovered(t, r)
			})
		}
	}
}

// TestSweepWriteSizes runs k64f and nrf52840 with 16- and 32-byte flash
// writes (max-align 16 and 32 trailers), sampling every 31st operation. The
// one layout a strategy refuses is swap-scratch on k64f: its one-sector
// scratch region cannot hold a 6 KiB (or 12 KiB) trailer. Any other refusal
// fails the test.
func TestSweepWriteSizes(t *testing.T) {
	for _, name := range []string{"k64f", "nrf52840"} {
		b, err := devicemodel.LookupBoard(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []int{16, 32} {
			for _, s := range b.Strategies() {
				t.Run(fmt.Sprintf("%s/w%d/%s", name, w, s), func(t *testing.T) {
					opts := Options{Seed: 3, WriteSize: w, Stride: 31, RandomRuns: 2}
					if testing.Short() {
						opts.Stride, opts.RandomRuns = 97, 1
					}
					r, err := Sweep(b, s, opts)
					if errors.Is(err, mcuboot.ErrIncompatibleSlots) && name == "k64f" && s == "swap-scratch" {
						t.Logf("layout refused: %v", err)
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					expectRecovered(t, r)
				})
			}
		}
	}
}

// TestSweepDeterministic: the result depends on the seed only, not on the
// number of workers.
func TestSweepDeterministic(t *testing.T) {
	b, err := devicemodel.LookupBoard("stm32f4")
	if err != nil {
		t.Fatal(err)
	}
	var results []*Result
	for _, w := range []int{1, 3} {
		r, err := Sweep(b, "swap-scratch", Options{Seed: 7, Workers: w, Stride: 9, Phases: []Phase{PhaseTest, PhaseRandom, PhaseRandomRevert}, RandomRuns: 3})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	if !reflect.DeepEqual(results[0], results[1]) {
		t.Errorf("1 worker: %+v\n3 workers: %+v", results[0], results[1])
	}
}

// TestSweepReproducesOneCut: Options.Op and Run narrow a sweep to the cut
// point a failure names.
func TestSweepReproducesOneCut(t *testing.T) {
	b, _ := devicemodel.LookupBoard("k64f")
	r, err := Sweep(b, "overwrite", Options{Seed: 3, Phases: []Phase{PhasePerm}, Cuts: []flashsim.CutKind{flashsim.CutDuring}, Op: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tried != 1 || r.Recovered != 1 {
		t.Errorf("one cut point: %+v", r)
	}
	r, err = Sweep(b, "overwrite", Options{Seed: 3, Phases: []Phase{PhaseRandom}, Run: 4})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tried != 1 || r.Recovered != 1 || r.Runs != 1 {
		t.Errorf("one random run: %+v", r)
	}
	r, err = Sweep(b, "swap-move", Options{Seed: 3, Phases: []Phase{PhaseRandomRevert}, Run: 40})
	if err != nil {
		t.Fatal(err)
	}
	if r.Tried != 1 || r.Recovered != 1 || r.Runs != 1 || r.UpgradeOps == 0 || r.RevertOps == 0 {
		t.Errorf("one random-revert run: %+v", r)
	}
}

// TestSweepFoundRuns replays the random runs that found bugs, pinned by
// board, strategy, seed and run (each broke an invariant before its fix):
//   - overwrite: a torn erase of the secondary's header sector, then cuts
//     inside the erase that discards the wreck; erasing the trailer first
//     left an invalid image under an intact header that no boot cleared
//     (Loader.scrambleSlot now erases the trailer last);
//   - swap-scratch: a torn scratch erase left the revert's scratch record
//     with its magic and generation intact over a damaged swap_size, and the
//     resume refused it as inconsistent (the generation seal now covers
//     swap_size and swap_info);
//   - swap-offset with 32-byte writes: a torn scramble of the primary
//     trailer at the start of a revert left an erased generation that a
//     CRC-based seal read as valid; fixup_revert then rewrote the secondary
//     record, a second tear destroyed it and the revert was lost (the seal
//     is now a SHA-256).
func TestSweepFoundRuns(t *testing.T) {
	cases := []struct {
		board, strategy string
		seed            uint64
		phase           Phase
		run             int
		writeSize       int
	}{
		{"k64f", "overwrite", 1, PhaseRandomRevert, 746, 0},
		{"nrf52840", "overwrite", 1, PhaseRandomRevert, 746, 0},
		{"nrf52840", "swap-scratch", 1, PhaseRandomRevert, 680, 0},
		{"nrf52840", "swap-offset", 13, PhaseRandomRevert, 23, 32},
	}
	for _, c := range cases {
		b, err := devicemodel.LookupBoard(c.board)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Sweep(b, c.strategy, Options{Seed: c.seed, Phases: []Phase{c.phase}, Run: c.run, WriteSize: c.writeSize})
		if err != nil {
			t.Fatal(err)
		}
		if r.Tried != 1 {
			t.Fatalf("%+v: tried %d", c, r.Tried)
		}
		for _, f := range r.Failures {
			t.Errorf("%s\n    reproduce: %s", f, f.Command())
		}
	}
}

// TestCheckDetectsDamage keeps the sweep's invariants honest: a device one
// byte or one flag away from the expected state must fail the check.
func TestCheckDetectsDamage(t *testing.T) {
	b, _ := devicemodel.LookupBoard("k64f")
	fx, err := NewFixture(b, "swap-scratch", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	sw := &sweeper{fx: fx, reverts: true}
	dev, err := fx.Pending(true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fx.boot(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.check(dev, res, sw.upgraded(true)); err != nil {
		t.Fatalf("clean upgrade fails the check: %v", err)
	}
	if err := fx.check(dev, res, sw.upgraded(false)); err == nil {
		t.Error("a confirmed image passes as a test image")
	}
	l, _ := fx.Loader(dev)
	// Clear one bit of the primary image (programming may only clear bits).
	var b1 [1]byte
	if _, err := l.Primary().ReadAt(b1[:], 1000); err != nil {
		t.Fatal(err)
	}
	for bit := 0; bit < 8; bit++ {
		if b1[0]&(1<<bit) != 0 {
			b1[0] &^= 1 << bit
			break
		}
	}
	// Rewrite the sector holding the byte with the damaged content.
	sec := make([]byte, 4096)
	if _, err := l.Primary().ReadAt(sec, 0); err != nil {
		t.Fatal(err)
	}
	sec[1000] = b1[0]
	if err := l.Primary().Erase(0, 4096); err != nil {
		t.Fatal(err)
	}
	if err := l.Primary().Program(0, sec); err != nil {
		t.Fatal(err)
	}
	if err := fx.check(dev, res, sw.upgraded(true)); err == nil {
		t.Error("a damaged primary image passes the check")
	}
}

// TestFailureCommandCarriesOptions: the reproduce command names every option
// that changes what a cut hits: the copy chunk (it sets the operation count)
// and, for a random run, the cut kinds it draws from, in their order. Both
// used to be left out, so a failure found with --chunk or --cuts printed a
// command that replayed a different run.
func TestFailureCommandCarriesOptions(t *testing.T) {
	b, _ := devicemodel.LookupBoard("k64f")
	fx, err := NewFixture(b, "swap-scratch", 5, 512)
	if err != nil {
		t.Fatal(err)
	}
	broken := errors.New("broken")
	sw := &sweeper{fx: fx, opts: Options{Seed: 5, Cuts: []flashsim.CutKind{flashsim.CutDuring, flashsim.CutBefore}, CopyChunk: 512}}
	cases := []struct {
		j         job
		want, not []string
	}{
		{job{phase: PhaseRandom, run: 3}, []string{"--chunk 512", "--cuts during,before --run 3"}, nil},
		{job{phase: PhasePerm, cut: flashsim.PowerCut{Op: 7, Kind: flashsim.CutAfter}}, []string{"--chunk 512", "--cuts after --op 7"}, []string{"during,before"}},
	}
	for _, c := range cases {
		cmd := sw.failure(c.j, nil, broken).Command()
		for _, w := range c.want {
			if !strings.Contains(cmd, w) {
				t.Errorf("%s: command %q lacks %q", c.j.phase, cmd, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(cmd, n) {
				t.Errorf("%s: command %q has %q", c.j.phase, cmd, n)
			}
		}
	}
	// The defaults stay implicit.
	sw.opts = Options{Seed: 5, Cuts: AllCuts, CopyChunk: DefaultCopyChunk}
	cmd := sw.failure(job{phase: PhaseRandomRevert, run: 2}, nil, broken).Command()
	if want := "fleetsim boot sweep --board k64f --strategy swap-scratch --seed 5 --phase random-revert --run 2"; cmd != want {
		t.Errorf("command %q, want %q", cmd, want)
	}
}
