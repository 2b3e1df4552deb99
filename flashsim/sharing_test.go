package flashsim_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/flashsim/flashtest"
)

// opScript decodes a byte string into flash operations, so that random
// sequences and fuzz inputs drive the same model. Every decision takes one
// byte; a script that runs out reads zeros.
type opScript struct {
	b []byte
}

func (s *opScript) next() int {
	if len(s.b) == 0 {
		return 0
	}
	v := s.b[0]
	s.b = s.b[1:]
	return int(v)
}

// lockstep runs the same operations on several devices that must agree: the
// plain reference first, then shared-page ones. Each gets an identical fault
// source, and sits under its own FaultyFlash armed with identical injectors,
// so faults agree too.
type lockstep struct {
	t     testing.TB
	devs  []*flashsim.Device
	flash []*flashsim.FaultyFlash // over devs, one each
	name  []string
	log   []string // operations so far, printed when they diverge
	// exact: reads return the flash's bytes (no read bit errors)
	exact bool

	// kept are originals left behind by clones, one per representation:
	// what is done to a clone must not show in them.
	kept [][]*flashsim.Device
}

// lockstepModes are the representations a lockstep compares, the plain
// reference first.
var lockstepModes = []struct {
	name string
	opts flashsim.Options
}{
	{"plain", flashsim.Options{NoSharing: true}},
	{"shared", flashsim.Options{}},
	{"shared-128B-pages", flashsim.Options{PageSize: 128}},
	{"shared-1K-pages", flashsim.Options{PageSize: 1024}},
	{"shared-4K-pages", flashsim.Options{PageSize: 4096}},
}

func newLockstep(t testing.TB, g *flashsim.Geometry, seed uint64, bitErrors float64, endurance int, writeOnce bool) *lockstep {
	l := &lockstep{t: t, exact: bitErrors == 0}
	for _, c := range lockstepModes {
		c.opts.Rand = rand.New(rand.NewPCG(seed, 1))
		c.opts.ReadBitErrorRate = bitErrors
		c.opts.Endurance = endurance
		c.opts.WriteOnce = writeOnce
		d := flashsim.New(g, c.opts)
		l.devs = append(l.devs, d)
		l.flash = append(l.flash, flashsim.Wrap(d, nil))
		l.name = append(l.name, c.name)
	}
	return l
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// result is what one device answered to one operation, and its state after.
type result struct {
	answer  string // error text, or read count, bytes and error
	off     bool
	ops     int // the wrapper's
	partOps int // the part's
	stats   flashsim.Stats
	wear    string // every sector's erase count and whether it is worn
}

func (r result) String() string {
	return fmt.Sprintf("%q off=%v ops=%d/%d stats=%+v wear=%s", r.answer, r.off, r.ops, r.partOps, r.stats, r.wear)
}

// wearOf describes the erase counts and worn sectors of d, as far as they
// are not zero.
func wearOf(d *flashsim.Device) string {
	var b strings.Builder
	for s := range d.Geometry().Sectors() {
		if n := d.EraseCount(s); n != 0 {
			fmt.Fprintf(&b, "%d:%d/%v ", s, n, d.Worn(s))
		}
	}
	return b.String()
}

// agree fails unless every device produced what the reference did.
func (l *lockstep) agree(what string, results []result) {
	l.t.Helper()
	for i := 1; i < len(results); i++ {
		if results[i] != results[0] {
			l.t.Fatalf("%s: %s got %v, %s got %v\noperations:\n  %s", what, l.name[0], results[0], l.name[i], results[i], strings.Join(l.log, "\n  "))
		}
	}
}

// run applies the script to every device, comparing every result.
func (l *lockstep) run(s *opScript, maxOps int) {
	l.t.Helper()
	g := l.devs[0].Geometry()
	size := g.Size()
	ws := int64(g.WriteSize)
	sectors := g.Sectors()
	large := size > 1<<16 // offsets and sector numbers take three bytes
	offset := func() int64 {
		v := s.next()<<8 | s.next()
		if large {
			v = v<<8 | s.next()
		}
		return int64(v)
	}
	results := make([]result, len(l.devs))
	for n := 0; n < maxOps && len(s.b) > 0; n++ {
		var what string
		var apply func(d *flashsim.FaultyFlash) string
		wear := !large // a large part's wear is compared after erases, where it changes
		switch s.next() % 8 {
		case 0, 1, 2: // program, usually aligned and in bounds
			off := offset() % (size + 64)
			length := int64(s.next()%40) * ws
			if large && s.next()%8 == 0 {
				length *= 64 // past the overlay, straight to the tree
			}
			if s.next()%8 != 0 {
				off -= off % ws
			}
			if s.next()%16 == 0 {
				length += int64(s.next() % 4)
			}
			data := flashtest.Pattern(int(length), byte(s.next()), g.EraseValue)
			if k := s.next(); k%4 == 0 && len(data) > 0 {
				data[k%len(data)] = g.EraseValue // programs may write erase-value bytes
			}
			what = fmt.Sprintf("Program(0x%x, %d bytes)", off, len(data))
			apply = func(d *flashsim.FaultyFlash) string { return errString(d.Program(off, data)) }
			if s.next()%3 == 0 { // a copy: the bytes as read elsewhere on the part, usually
				src := offset() % size
				if s.next()%4 != 0 {
					src -= src % 256
				}
				if s.next()%4 != 0 && !l.flash[0].PoweredOff() && src+int64(len(data)) <= size {
					if _, err := l.devs[0].Clone().ReadAt(data, src); err != nil {
						l.t.Fatal(err)
					}
				}
				what = fmt.Sprintf("ProgramFrom(0x%x, %d bytes, 0x%x)", off, len(data), src)
				apply = func(d *flashsim.FaultyFlash) string { return errString(d.ProgramFrom(off, data, src)) }
			}
		case 3: // erase a run of sectors, sometimes off its boundaries
			first := int(offset()) % len(sectors)
			count := 1 + s.next()%3
			last := min(first+count, len(sectors)) - 1
			off := sectors[first].Offset
			length := sectors[last].Offset + sectors[last].Size - off
			if s.next()%8 == 0 {
				length -= int64(s.next()%16+1) * ws
			}
			what = fmt.Sprintf("Erase(0x%x, 0x%x)", off, length)
			wear = true
			apply = func(d *flashsim.FaultyFlash) string { return errString(d.Erase(off, length)) }
		case 4: // read anywhere, any length
			off := offset() % (size + 16)
			length := int64(s.next() * 3)
			what = fmt.Sprintf("ReadAt(0x%x, %d bytes)", off, length)
			apply = func(d *flashsim.FaultyFlash) string {
				b := make([]byte, length)
				n, err := d.ReadAt(b, off)
				return fmt.Sprint(n, " ", errString(err), " ", string(b))
			}
			if s.next()%2 == 0 { // a digest: remembered by the shared part, so asked twice
				length *= int64(1 + s.next()%64)
				what = fmt.Sprintf("Sum256(0x%x, %d bytes)", off, length)
				apply = func(d *flashsim.FaultyFlash) string {
					sum, err := d.Sum256(off, length)
					again, _ := d.Sum256(off, length)
					b := make([]byte, length)
					if _, rerr := d.Unwrap().(*flashsim.Device).Clone().ReadAt(b, off); l.exact && err == nil && rerr == nil && sha256.Sum256(b) != sum {
						return "digest differs from the bytes"
					}
					return fmt.Sprintf("%x %x %s", sum, again, errString(err))
				}
			}
		case 5: // arm a cut a few ops ahead, sometimes stacked with other faults
			c := flashsim.PowerCut{Op: 1 + s.next()%4, Kind: flashsim.CutKind(s.next() % 3)}
			desc := c.Injector().String()
			if s.next()%4 == 0 {
				sector := sectors[s.next()%len(sectors)]
				desc = fmt.Sprintf("(any %s (wear-out (and (range 0x%x 0x%x) (op %d))) (bit-flips 0.01 %d (randomly 0.5 %d)))",
					desc, sector.Offset, sector.Size, 1+s.next()%3, s.next(), s.next())
			}
			what = "Arm" + desc
			apply = func(d *flashsim.FaultyFlash) string {
				inj, err := flashsim.ParseInjector(desc) // one fresh injector per device
				if err != nil {
					l.t.Fatal(err)
				}
				d.Arm(inj)
				return ""
			}
		case 6:
			what = "PowerOn()"
			apply = func(d *flashsim.FaultyFlash) string { d.PowerOn(); return "" }
		case 7: // continue on a clone, sometimes keeping the original
			seed := uint64(s.next())
			keep := s.next()%4 == 0
			what = fmt.Sprintf("Clone+SetRand(%d) keep=%v", seed, keep)
			var kept []*flashsim.Device
			for i, d := range l.devs {
				l.devs[i] = d.Clone()
				l.devs[i].SetRand(rand.New(rand.NewPCG(seed, 2)))
				l.flash[i] = flashsim.Wrap(l.devs[i], nil)
				kept = append(kept, d)
			}
			if keep {
				l.kept = append(l.kept, kept)
			}
			apply = func(d *flashsim.FaultyFlash) string { return "" }
		}
		l.log = append(l.log, what)
		for i, d := range l.devs {
			f := l.flash[i]
			results[i] = result{answer: apply(f), off: f.PoweredOff(), ops: f.Ops(), partOps: d.Ops(), stats: d.Stats()}
			if wear {
				results[i].wear = wearOf(d)
			}
		}
		l.agree(what, results)
	}
	l.compareContents()
}

func (l *lockstep) compareContents() {
	l.t.Helper()
	l.compare("final contents", l.devs)
	for k, kept := range l.kept {
		l.compare(fmt.Sprintf("contents of original %d left by a clone", k), kept)
	}
}

func (l *lockstep) compare(what string, devs []*flashsim.Device) {
	l.t.Helper()
	results := make([]result, len(devs))
	for i, d := range devs {
		d.SetRand(rand.New(rand.NewPCG(0, 0)))
		b := make([]byte, d.Geometry().Size())
		_, err := d.ReadAt(b, 0)
		wear := make([]int, len(d.Geometry().Sectors()))
		for s := range wear {
			wear[s] = d.EraseCount(s)
		}
		results[i] = result{answer: fmt.Sprint(errString(err), " wear=", wear, " ", string(b))}
	}
	l.agree(what, results)
}

// fuzzGeometry mixes sector sizes so that erases cross pages and sizes.
func fuzzGeometry(t testing.TB, ev byte) *flashsim.Geometry {
	return flashtest.Geometry(t, []flashsim.Region{{Count: 2, Size: 512}, {Count: 1, Size: 1024}, {Count: 2, Size: 2048}}, 4, ev)
}

// TestSharedMatchesPlain runs random operation sequences, power cuts, wear
// and clones included, on the plain reference and on shared-page devices,
// and compares every result and the final contents (style.md point 6).
func TestSharedMatchesPlain(t *testing.T) {
	for seed := uint64(0); seed < 40; seed++ {
		ev := flashtest.EraseValues[seed%2]
		bitErrors := 0.0
		if seed%5 == 4 {
			bitErrors = 1e-3
		}
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			script := make([]byte, 8000)
			for i := range script {
				script[i] = byte(r.Uint32())
			}
			l := newLockstep(t, fuzzGeometry(t, ev), seed, bitErrors, 6, seed%3 == 2)
			l.run(&opScript{b: script}, 1000)
		})
	}
}

// TestSharedMatchesPlainLargePart does the same on a part the size of the
// RT1060's (8 MiB of 4 KiB sectors), where trees are several levels deep,
// programs go both through the overlay and straight to the tree, and wear
// spreads over many chunks of counts.
func TestSharedMatchesPlainLargePart(t *testing.T) {
	g := flashtest.Geometry(t, []flashsim.Region{{Count: 2048, Size: 4096}}, 4, 0xFF)
	seeds := uint64(4)
	if testing.Short() {
		seeds = 1
	}
	for seed := uint64(0); seed < seeds; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			script := make([]byte, 12000)
			for i := range script {
				script[i] = byte(r.Uint32())
			}
			l := newLockstep(t, g, seed, 0, 3, seed%2 == 1)
			l.run(&opScript{b: script}, 1200)
		})
	}
}

// fuzzScriptMax bounds the script a fuzz input is read as. The fuzzer's
// minimizer tries a number of candidates quadratic in the input's length, so
// short, cheap inputs keep it from running past -fuzztime; long sequences are
// TestSharedMatchesPlain's job.
const fuzzScriptMax = 64

// FuzzSharedMatchesPlain: any operation sequence gives the same results on
// shared pages as on the plain reference, and nothing panics.
func FuzzSharedMatchesPlain(f *testing.F) {
	f.Add([]byte{0, 0, 0, 10, 1, 5, 0, 4, 0, 0, 20})
	f.Add([]byte{5, 1, 2, 0, 0, 16, 8, 1, 0, 0, 6, 3, 0, 0, 1, 1})
	f.Add([]byte{3, 2, 2, 0, 5, 0, 2, 3, 0, 1, 0, 7, 9, 4, 0, 0, 255})
	f.Add(bytes.Repeat([]byte{3, 4, 0, 0}, 20))
	f.Fuzz(func(t *testing.T, script []byte) {
		ev := byte(0xFF)
		if len(script) > 0 && script[0]&0x80 != 0 {
			ev = 0
		}
		l := newLockstep(t, fuzzGeometry(t, ev), 7, 0, 2, len(script) > 1 && script[1]&0x80 != 0)
		l.run(&opScript{b: script[:min(len(script), fuzzScriptMax)]}, fuzzScriptMax)
	})
}

// TestConcurrentDevicesSharePages has many goroutines clone one prepared
// device and write both common and private content; run with -race it
// checks the shared store is safe across goroutines, and it checks that no
// device sees another's bytes.
func TestConcurrentDevicesSharePages(t *testing.T) {
	g := flashtest.Geometry(t, []flashsim.Region{{Count: 16, Size: 4096}}, 8, 0xFF)
	base := flashsim.New(g, flashsim.Options{})
	common := flashtest.Pattern(8*4096, 1, 0xFF)
	mustOK(t, base.Program(0, common))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				d := base.Clone()
				own := flashtest.Pattern(4096, byte(w*20+i), 0xFF)
				shared := flashtest.Pattern(4096, 200, 0xFF)
				if err := d.Program(8*4096, own); err != nil {
					errs <- err
					return
				}
				if err := d.Program(9*4096+256, shared[:256]); err != nil {
					errs <- err
					return
				}
				if err := d.Erase(0, 4096); err != nil {
					errs <- err
					return
				}
				got := make([]byte, g.Size())
				if _, err := d.ReadAt(got, 0); err != nil {
					errs <- err
					return
				}
				want := bytes.Repeat([]byte{0xFF}, int(g.Size()))
				copy(want[4096:], common[4096:])
				copy(want[8*4096:], own)
				copy(want[9*4096+256:], shared[:256])
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("worker %d device %d: contents differ", w, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !bytes.Equal(flashtest.Snapshot(t, base)[:len(common)], common) {
		t.Fatal("clones changed the base device")
	}
}

// TestPagesAreReclaimed: pages no device holds are garbage collected. 4 MiB
// of distinct content is written and dropped; the heap must come back to
// within a small margin of where it was.
func TestPagesAreReclaimed(t *testing.T) {
	g := flashtest.Geometry(t, []flashsim.Region{{Count: 256, Size: 4096}}, 8, 0xFF)
	fill := func(seed uint64) *flashsim.Device {
		d := flashsim.New(g, flashsim.Options{})
		r := rand.New(rand.NewPCG(seed, 0))
		buf := make([]byte, g.Size())
		for i := range buf {
			buf[i] = byte(r.Uint32() | 1) // never 0xFF-only pages: all distinct
		}
		mustOK(t, d.Program(0, buf))
		return d
	}
	base := liveHeap()
	held := func() int64 {
		devs := []*flashsim.Device{fill(1), fill(2), fill(3), fill(4)}
		defer runtime.KeepAlive(devs)
		return liveHeap() - base
	}()
	if held < 7<<19 {
		t.Fatalf("4 devices of 1 MiB distinct content hold only %d bytes of heap; the test measures nothing", held)
	}
	if after := liveHeap() - base; after > 1<<20 {
		t.Fatalf("after dropping every device %d bytes stay on the heap (were %d): pages are not reclaimed", after, held)
	}
}
