package bootsweep

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

// Phase is the operation a sweep interrupts.
type Phase string

// Phases of a sweep.
const (
	// PhasePerm interrupts a permanent upgrade (perm_with_fails).
	PhasePerm Phase = "perm"
	// PhaseTest interrupts a test upgrade, then lets the unconfirmed image
	// revert (revert_with_fails, first half).
	PhaseTest Phase = "test"
	// PhaseRevert interrupts the revert of an unconfirmed test image
	// (revert_with_fails, second half). Only strategies that revert.
	PhaseRevert Phase = "revert"
	// PhaseRandom interrupts a permanent upgrade several times in a row at
	// seeded random points anywhere in it (perm_with_random_fails(5)).
	PhaseRandom Phase = "random"
	// PhaseRandomRevert interrupts a test upgrade and the revert of the
	// unconfirmed image that follows it several times in a row, at seeded
	// random points anywhere in either. For a strategy that cannot revert it
	// is a test upgrade that must stay installed.
	PhaseRandomRevert Phase = "random-revert"
)

// AllPhases lists the phases in the order a sweep runs them.
var AllPhases = []Phase{PhasePerm, PhaseTest, PhaseRevert, PhaseRandom, PhaseRandomRevert}

// random reports whether a phase is made of seeded random runs rather than
// of one cut per operation.
func (p Phase) random() bool { return p == PhaseRandom || p == PhaseRandomRevert }

// AllCuts lists the cut kinds in the order a sweep tries them.
var AllCuts = []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring}

// maxRandomCuts is the number of cuts in a row of a random run, as MCUboot's
// perm_with_random_fails(5).
const maxRandomCuts = 5

// DefaultRandomRuns is the number of runs of each random phase.
const DefaultRandomRuns = 16

// Options selects what a sweep tries. The zero value tries everything with
// seed 0.
type Options struct {
	Seed uint64
	// Cuts are the cut kinds to try; empty means AllCuts.
	Cuts []flashsim.CutKind
	// Phases are the phases to run; empty means AllPhases (PhaseRevert is
	// skipped for strategies that cannot revert).
	Phases []Phase
	// Op, when positive, tries only that operation (reproducing a failure).
	Op int
	// Run, when positive, runs only that random run (1-based);
	// RandomRuns is the number of runs of each random phase (default
	// DefaultRandomRuns).
	Run        int
	RandomRuns int
	// Stride tries every Stride-th operation only (1 or 0: all); short test
	// runs sample with it. The first and last operations are always tried.
	Stride int
	// Workers is the number of cut points tried in parallel (default
	// GOMAXPROCS). Results do not depend on it.
	Workers int
	// CopyChunk is the bootloader's copy buffer (default DefaultCopyChunk).
	CopyChunk int
	// Flash configures the simulated parts (page sharing); results do not
	// depend on it.
	Flash flashsim.Options
	// ZeroErased runs the board on a part whose erased value is 0x00
	// instead of its own (0xff on every board here).
	ZeroErased bool
	// WriteSize, when positive, replaces the board's flash write size.
	WriteSize int
}

// Failure is one cut point whose recovery broke an invariant.
type Failure struct {
	Board, Strategy string
	Seed            uint64
	Phase           Phase
	ZeroErased      bool
	WriteSize       int // 0: the board's
	// CopyChunk is the sweep's copy buffer (0: DefaultCopyChunk); it sets
	// the operation count, hence what every cut hits.
	CopyChunk int
	// CutKinds are the kinds a random run drew its cuts from, in the order
	// given (nil: AllCuts); the order is part of the seeded draw.
	CutKinds []flashsim.CutKind
	// Cut is the cut of a single-cut phase; Run the random run (1-based, 0
	// otherwise) and Cuts the cuts it made (Op counted from the cut's
	// arming, across the boots that completed while it was armed).
	Cut  flashsim.PowerCut
	Run  int
	Cuts []flashsim.PowerCut
	Err  string
}

// Command is the fleetsim command line that reproduces the failure.
func (f Failure) Command() string {
	base := fmt.Sprintf("fleetsim boot sweep --board %s --strategy %s --seed %d --phase %s", f.Board, f.Strategy, f.Seed, f.Phase)
	if f.ZeroErased {
		base += " --erase-value 0x00"
	}
	if f.WriteSize > 0 {
		base += fmt.Sprintf(" --write-size %d", f.WriteSize)
	}
	if f.CopyChunk > 0 && f.CopyChunk != DefaultCopyChunk {
		base += fmt.Sprintf(" --chunk %d", f.CopyChunk)
	}
	switch {
	case f.Phase.random():
		if len(f.CutKinds) > 0 && !slices.Equal(f.CutKinds, AllCuts) {
			kinds := make([]string, len(f.CutKinds))
			for i, k := range f.CutKinds {
				kinds[i] = k.String()
			}
			base += " --cuts " + strings.Join(kinds, ",")
		}
		return fmt.Sprintf("%s --run %d", base, f.Run)
	case f.Cut.Op == 0: // the uncut reference run
		return base
	}
	return fmt.Sprintf("%s --cuts %s --op %d", base, f.Cut.Kind, f.Cut.Op)
}

func (f Failure) String() string {
	where := fmt.Sprintf("cut %s op %d", f.Cut.Kind, f.Cut.Op)
	if f.Cut.Op == 0 {
		where = "without cuts"
	}
	if f.Phase.random() {
		parts := make([]string, len(f.Cuts))
		for i, c := range f.Cuts {
			parts[i] = fmt.Sprintf("%s@%d", c.Kind, c.Op)
		}
		where = fmt.Sprintf("run %d cuts [%s]", f.Run, strings.Join(parts, " "))
	}
	return fmt.Sprintf("%s/%s seed %d %s %s: %s", f.Board, f.Strategy, f.Seed, f.Phase, where, f.Err)
}

// Result is the outcome of sweeping one board and strategy.
type Result struct {
	Board, Strategy string
	Seed            uint64
	// UpgradeOps and RevertOps are the flash operations (programs and
	// erases) of a clean permanent upgrade and of a clean revert (0 when the
	// strategy cannot revert).
	UpgradeOps, RevertOps int
	// Tried counts cut points (a random run counts as one), Recovered those
	// that met every invariant, Failed the others. Runs is how many of
	// Tried are random runs.
	Tried, Recovered, Failed int
	Runs                     int
	Failures                 []Failure
}

// job is one cut point (or one random run) of a sweep.
type job struct {
	phase Phase
	cut   flashsim.PowerCut
	run   int
}

// sweeper holds a sweep's prepared devices, shared read-only by workers
// (each clones them).
type sweeper struct {
	fx       *Fixture
	opts     Options
	prepared map[Phase]*flashsim.Device
	reverts  bool
	ops      map[Phase]int
}

// Sweep runs the power-cut sweep for one board and strategy.
//
// Errors: the fixture cannot be built (board does not support the strategy,
// images do not fit). Broken invariants are not errors: they are Failures
// in the Result.
func Sweep(board devicemodel.Board, strategy string, opts Options) (*Result, error) {
	if len(opts.Cuts) == 0 {
		opts.Cuts = AllCuts
	}
	if len(opts.Phases) == 0 {
		opts.Phases = AllPhases
	}
	if opts.RandomRuns == 0 {
		opts.RandomRuns = DefaultRandomRuns
	}
	opts.RandomRuns = max(opts.RandomRuns, opts.Run)
	if opts.Stride < 1 {
		opts.Stride = 1
	}
	if opts.Workers < 1 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.ZeroErased {
		var err error
		if board, err = board.WithEraseValue(0x00); err != nil {
			return nil, err
		}
	}
	if opts.WriteSize > 0 {
		var err error
		if board, err = board.WithWriteSize(opts.WriteSize); err != nil {
			return nil, err
		}
	}
	fx, err := NewFixture(board, strategy, opts.Seed, opts.CopyChunk)
	if err != nil {
		return nil, err
	}
	fx.Flash = opts.Flash
	sw := &sweeper{fx: fx, opts: opts, prepared: map[Phase]*flashsim.Device{}, ops: map[Phase]int{}}
	l, err := fx.Loader(board.NewFlash(flashsim.Options{}))
	if err != nil {
		return nil, err
	}
	sw.reverts = l.Strategy().Reverts()
	res := &Result{Board: board.Name, Strategy: strategy, Seed: opts.Seed}

	// Prepare each phase's device and count its clean run's operations;
	// the clean run must itself meet the invariants.
	var jobs []job
	for _, ph := range opts.Phases {
		if ph == PhaseRevert && !sw.reverts {
			continue
		}
		dev, err := sw.prepare(ph)
		if err != nil {
			return nil, fmt.Errorf("preparing %s: %w", ph, err)
		}
		sw.prepared[ph] = dev
		clean := dev.Clone()
		before := clean.Ops()
		cerr := sw.finish(ph, clean, true, false)
		sw.ops[ph] = clean.Ops() - before
		if cerr != nil {
			res.Tried++
			res.Failed++
			res.Failures = append(res.Failures, sw.failure(job{phase: ph}, nil, fmt.Errorf("clean run: %w", cerr)))
			continue
		}
		jobs = append(jobs, sw.jobs(ph)...)
	}
	res.UpgradeOps = sw.ops[PhasePerm]
	if res.UpgradeOps == 0 {
		res.UpgradeOps = sw.ops[PhaseTest]
	}
	res.RevertOps = sw.ops[PhaseRevert]
	if res.UpgradeOps == 0 || (sw.reverts && res.RevertOps == 0) {
		// The phases run did not count them: count a clean test upgrade
		// and its revert.
		up, rev, err := sw.cleanOps()
		if err != nil {
			return nil, err
		}
		if res.UpgradeOps == 0 {
			res.UpgradeOps = up
		}
		res.RevertOps = rev
	}

	failures := make([]*Failure, len(jobs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(opts.Workers, max(1, len(jobs))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				failures[i] = sw.try(jobs[i])
			}
		}()
	}
	wg.Wait()
	for i, f := range failures {
		res.Tried++
		if jobs[i].phase.random() {
			res.Runs++
		}
		if f == nil {
			res.Recovered++
			continue
		}
		res.Failed++
		res.Failures = append(res.Failures, *f)
	}
	return res, nil
}

// cleanOps counts the flash operations of a clean test upgrade and of the
// revert that follows it (0 for a strategy that cannot revert).
func (sw *sweeper) cleanOps() (upgrade, revert int, err error) {
	dev, err := sw.fx.Pending(false)
	if err != nil {
		return 0, 0, err
	}
	before := dev.Ops()
	if _, err := sw.fx.boot(dev); err != nil {
		return 0, 0, fmt.Errorf("clean test upgrade: %w", err)
	}
	upgrade = dev.Ops() - before
	if !sw.reverts {
		return upgrade, 0, nil
	}
	before = dev.Ops()
	if _, err := sw.fx.boot(dev); err != nil {
		return 0, 0, fmt.Errorf("clean revert: %w", err)
	}
	return upgrade, dev.Ops() - before, nil
}

// jobs lists the cut points of a phase in a fixed order.
func (sw *sweeper) jobs(ph Phase) []job {
	var out []job
	if ph.random() {
		for r := 1; r <= sw.opts.RandomRuns; r++ {
			if sw.opts.Run > 0 && r != sw.opts.Run {
				continue
			}
			out = append(out, job{phase: ph, run: r})
		}
		return out
	}
	n := sw.ops[ph]
	for op := 1; op <= n; op++ {
		if sw.opts.Op > 0 && op != sw.opts.Op {
			continue
		}
		if sw.opts.Op == 0 && op%sw.opts.Stride != 0 && op != n && op != 1 {
			continue
		}
		for _, k := range sw.opts.Cuts {
			out = append(out, job{phase: ph, cut: flashsim.PowerCut{Op: op, Kind: k}})
		}
	}
	return out
}

// prepare builds the device a phase starts from.
func (sw *sweeper) prepare(ph Phase) (*flashsim.Device, error) {
	switch ph {
	case PhasePerm, PhaseRandom:
		return sw.fx.Pending(true)
	case PhaseTest, PhaseRandomRevert:
		return sw.fx.Pending(false)
	case PhaseRevert:
		dev, err := sw.fx.Pending(false)
		if err != nil {
			return nil, err
		}
		res, err := sw.fx.boot(dev)
		if err != nil {
			return nil, fmt.Errorf("test upgrade: %w", err)
		}
		if err := sw.fx.check(dev, res, sw.upgraded(false)); err != nil {
			return nil, fmt.Errorf("test upgrade: %w", err)
		}
		return dev, nil
	}
	return nil, fmt.Errorf("unknown phase %q", ph)
}

// upgraded is the state after an upgrade: the new image in the primary and,
// for swaps, the old one at the start of the secondary.
func (sw *sweeper) upgraded(permanent bool) expect {
	if !sw.reverts {
		return expect{primary: sw.fx.New, primaryT: confirmed}
	}
	old := sw.fx.Old
	e := expect{primary: sw.fx.New, primaryT: trial, secondary: &old}
	if permanent {
		e.primaryT = confirmed
	}
	return e
}

// reverted is the state after a revert: the old image back in the primary,
// confirmed, and the new one where an update is downloaded.
func (sw *sweeper) reverted() (expect, error) {
	l, err := sw.fx.Loader(sw.fx.Board.NewFlash(flashsim.Options{}))
	if err != nil {
		return expect{}, err
	}
	nw := sw.fx.New
	return expect{primary: sw.fx.Old, primaryT: confirmed, secondary: &nw, secondaryAt: l.Strategy().SecondaryImageOffset(l, mcuboot.SwapTest)}, nil
}

// finish boots dev without faults until the phase's operation is done and
// checks every boot after it: the interrupted operation completes, and the
// boots after it change nothing or, for an unconfirmed test image, revert it
// once and for good. clean marks the uncut reference run.
//
// completed says the cut came after the phase's last operation: the
// operation is done and the first boot already does what follows it.
func (sw *sweeper) finish(ph Phase, dev *flashsim.Device, clean, completed bool) error {
	steps, err := sw.steps(ph, clean)
	if err != nil {
		return err
	}
	if completed {
		steps = steps[1:]
	}
	for i, want := range steps {
		res, err := sw.fx.boot(dev)
		if err != nil {
			return fmt.Errorf("boot %d after the cut: %w", i+1, err)
		}
		if err := sw.fx.check(dev, res, want); err != nil {
			return fmt.Errorf("after boot %d: %w", i+1, err)
		}
	}
	return nil
}

// steps lists the states a phase's device must be in after each boot that
// follows the cut.
func (sw *sweeper) steps(ph Phase, clean bool) ([]expect, error) {
	var steps []expect
	rev, err := sw.reverted()
	if err != nil {
		return nil, err
	}
	switch ph {
	case PhasePerm, PhaseRandom:
		steps = []expect{sw.upgraded(true), sw.upgraded(true)}
	case PhaseTest, PhaseRandomRevert:
		if sw.reverts {
			steps = []expect{sw.upgraded(false), rev, rev}
		} else {
			steps = []expect{sw.upgraded(false), sw.upgraded(false)}
		}
	case PhaseRevert:
		steps = []expect{rev, rev}
	}
	switch {
	case clean && ph == PhaseTest:
		// The reference run counts only the upgrade's operations.
		steps = steps[:1]
	case clean && ph == PhaseRandomRevert:
		// Random cuts land anywhere in the upgrade and its revert.
		steps = steps[:2]
	}
	return steps, nil
}

// try runs one job and returns its failure, or nil when it recovered.
func (sw *sweeper) try(j job) *Failure {
	dev := sw.prepared[j.phase].Clone()
	if j.phase.random() {
		cuts, err := sw.randomRun(j.phase, dev, j.run)
		if err != nil {
			f := sw.failure(j, cuts, err)
			return &f
		}
		return nil
	}
	dev.SetRand(rand.New(rand.NewPCG(sw.opts.Seed, uint64(j.cut.Op)<<4|uint64(j.cut.Kind))))
	_, err := sw.fx.boot(flashsim.Wrap(dev, j.cut.Injector()))
	if !errors.Is(err, flashsim.ErrPowerLoss) {
		f := sw.failure(j, nil, fmt.Errorf("boot with the cut armed: want a power loss, got %v", err))
		return &f
	}
	// The boots after the cut run on what it left of the part, unwrapped.
	completed, err := sw.completed(j, dev)
	if err != nil {
		f := sw.failure(j, nil, err)
		return &f
	}
	if err := sw.finish(j.phase, dev, false, completed); err != nil {
		f := sw.failure(j, nil, err)
		return &f
	}
	return nil
}

// completed reports whether a cut left the phase's operation complete:
// after its last operation, or during it when the torn write happened to
// reach every byte that matters (the copy_done byte, say).
func (sw *sweeper) completed(j job, dev *flashsim.Device) (bool, error) {
	if j.cut.Op != sw.ops[j.phase] {
		return false, nil
	}
	switch j.cut.Kind {
	case flashsim.CutAfter:
		return true, nil
	case flashsim.CutDuring:
		steps, err := sw.steps(j.phase, false)
		if err != nil {
			return false, err
		}
		return sw.fx.check(dev, nil, steps[0]) == nil, nil
	}
	return false, nil
}

// randomRun cuts the power up to maxRandomCuts times in a row, each at a
// random operation (counted from its arming) anywhere in what remains of the
// phase's operations, with a random kind, then boots without faults until
// the phase is over. A cut stays armed across the boots that complete
// before it strikes, so one cut can land in the revert that follows a test
// upgrade. After every boot that completes, with or without a cut armed,
// the device must be in the next state the phase allows (progress), and the
// run ends in the phase's final state, which further boots do not change.
func (sw *sweeper) randomRun(ph Phase, dev *flashsim.Device, run int) ([]flashsim.PowerCut, error) {
	// One stream for the cuts and one for the tears, per phase and run.
	salt := uint64(0x72616e64) // "rand"
	if ph == PhaseRandomRevert {
		salt = 0x72657672 // "revr"
	}
	rng := rand.New(rand.NewPCG(sw.opts.Seed, salt<<32|uint64(uint32(run))))
	dev.SetRand(rand.New(rand.NewPCG(sw.opts.Seed, (salt^0x06111a1c)<<32|uint64(uint32(run)))))
	steps, err := sw.steps(ph, false)
	if err != nil {
		return nil, err
	}
	p := progress{steps: steps}
	remaining := sw.ops[ph]
	var cuts []flashsim.PowerCut
	for k := 0; k < maxRandomCuts && !p.done(); k++ {
		c := flashsim.PowerCut{Op: 1 + rng.IntN(max(1, remaining)), Kind: sw.opts.Cuts[rng.IntN(len(sw.opts.Cuts))]}
		armed := flashsim.Wrap(dev, c.Injector())
		var err error
		for !p.done() {
			var res *mcuboot.BootResult
			if res, err = sw.fx.boot(armed); err != nil {
				break
			}
			if err := p.advance(sw.fx, dev, res); err != nil {
				return append(cuts, c), fmt.Errorf("boot with cut %d armed: %w", k+1, err)
			}
		}
		if err == nil {
			break // the phase ended before the cut struck
		}
		cuts = append(cuts, c)
		if !errors.Is(err, flashsim.ErrPowerLoss) {
			return cuts, fmt.Errorf("boot with cut %d armed: %w", k+1, err)
		}
		remaining = max(1, remaining-c.Op)
	}
	// The state left by the last cut must lead to the final state.
	for i := 0; !p.done(); i++ {
		if i > len(steps) {
			return cuts, fmt.Errorf("no final state after %d boots without cuts", i)
		}
		res, err := sw.fx.boot(dev)
		if err != nil {
			return cuts, fmt.Errorf("boot %d after the cuts: %w", i+1, err)
		}
		if err := p.advance(sw.fx, dev, res); err != nil {
			return cuts, fmt.Errorf("after boot %d without cuts: %w", i+1, err)
		}
	}
	// And stay there.
	res, err := sw.fx.boot(dev)
	if err != nil {
		return cuts, fmt.Errorf("boot after the final state: %w", err)
	}
	if err := sw.fx.check(dev, res, steps[len(steps)-1]); err != nil {
		return cuts, fmt.Errorf("boot after the final state: %w", err)
	}
	return cuts, nil
}

// progress follows a random run through its phase's states (steps without
// the repeated final one): each completed boot must leave the device in a
// later state than the one before, never the same, an earlier one or
// something else.
type progress struct {
	steps []expect
	at    int  // index of the state reached, once begun
	begun bool // a boot has completed
}

func (p *progress) last() int { return len(p.steps) - 2 } // steps repeat the final state

func (p *progress) done() bool { return p.begun && p.at >= p.last() }

// advance checks the device after a completed boot and moves to the state
// it matches. The first completed boot may find any state (the cut that
// preceded it may have fallen after the end of a step); every later one
// must perform exactly the next step: a boot that completes and leaves an
// unconfirmed image in place has lost its revert.
func (p *progress) advance(fx *Fixture, dev *flashsim.Device, res *mcuboot.BootResult) error {
	from := 0
	if p.begun {
		from = p.at + 1
	}
	var first error
	for i := from; i <= p.last(); i++ {
		err := fx.check(dev, res, p.steps[i])
		if err == nil {
			p.at, p.begun = i, true
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (sw *sweeper) failure(j job, cuts []flashsim.PowerCut, err error) Failure {
	f := Failure{
		Board: sw.fx.Board.Name, Strategy: sw.fx.Strategy, Seed: sw.opts.Seed,
		Phase: j.phase, ZeroErased: sw.opts.ZeroErased, WriteSize: sw.opts.WriteSize, CopyChunk: sw.opts.CopyChunk,
		Cut: j.cut, Run: j.run, Cuts: cuts, Err: err.Error(),
	}
	if j.phase.random() {
		f.CutKinds = sw.opts.Cuts
	}
	return f
}
