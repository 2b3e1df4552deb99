package flashsim_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/flashsim/flashtest"
)

// TestFaultyFlashConformance: a wrapper whose injector never strikes is the
// part it wraps, as far as the conformance suite can tell.
func TestFaultyFlashConformance(t *testing.T) {
	flashtest.Run(t, func(g *flashsim.Geometry) flashsim.Flash {
		return flashsim.Wrap(flashsim.New(g, flashsim.Options{}), flashsim.Any(
			flashsim.Cut(flashsim.CutDuring, flashsim.Randomly(0, 1)),
			flashsim.WearOut(flashsim.Not(flashsim.OnKind(flashsim.OpProgram, flashsim.OpErase))),
		))
	})
}

// TestInjectorStringRoundTrip: every injector prints as the s-expression
// ParseInjector reads back, and non-canonical spellings print canonically.
func TestInjectorStringRoundTrip(t *testing.T) {
	built := []struct {
		inj  flashsim.Injector
		want string
	}{
		{flashsim.Cut(flashsim.CutBefore, nil), "(cut before)"},
		{flashsim.Cut(flashsim.CutDuring, flashsim.OnOp(12)), "(cut during (op 12))"},
		{flashsim.WearOut(flashsim.InRange(0x20000, 0x1000)), "(wear-out (range 0x20000 0x1000))"},
		{flashsim.BitFlips(1e-6, 7, nil), "(bit-flips 1e-06 7)"},
		{flashsim.BitFlips(0.25, 0, flashsim.Once(flashsim.OnKind(flashsim.OpRead))), "(bit-flips 0.25 0 (once (kind read)))"},
		{flashsim.Any(
			flashsim.Cut(flashsim.CutAfter, flashsim.And(flashsim.InRange(0, 0x8000), flashsim.OnOp(3))),
			flashsim.Cut(flashsim.CutDuring, flashsim.Or(flashsim.Not(flashsim.OnKind(flashsim.OpErase, flashsim.OpProgram)), flashsim.Randomly(0.001, 18446744073709551615))),
		), "(any (cut after (and (range 0x0 0x8000) (op 3))) (cut during (or (not (kind erase program)) (randomly 0.001 18446744073709551615))))"},
	}
	for _, c := range built {
		if got := c.inj.String(); got != c.want {
			t.Errorf("String() = %s, want %s", got, c.want)
		}
		back, err := flashsim.ParseInjector(c.want)
		if err != nil {
			t.Errorf("ParseInjector(%s): %v", c.want, err)
			continue
		}
		if back.String() != c.want {
			t.Errorf("ParseInjector(%s).String() = %s", c.want, back)
		}
	}
	spelled := []struct{ in, want string }{
		{"  (cut\tduring\n(op 0012) )  ", "(cut during (op 12))"},
		{"(wear-out (range 131072 0b1000))", "(wear-out (range 0x20000 0x8))"},
		{"(bit-flips .5e0 0 (kind read read))", "(bit-flips 0.5 0 (kind read read))"},
		{"(cut before (randomly 1 3))", "(cut before (randomly 1 3))"},
		{"(any(cut after)(wear-out))", "(any (cut after) (wear-out))"},
		// docs/device.md's example.
		{`(any (cut during (and (range 0x240000 0x200000) (kind program) (op 3)))
		     (cut before (and (kind erase) (randomly 0.001 7)))
		     (wear-out (and (range 0x3f0000 0x1000) (op 1)))
		     (bit-flips 1e-06 7))`,
			"(any (cut during (and (range 0x240000 0x200000) (kind program) (op 3))) (cut before (and (kind erase) (randomly 0.001 7))) (wear-out (and (range 0x3f0000 0x1000) (op 1))) (bit-flips 1e-06 7))"},
	}
	for _, c := range spelled {
		inj, err := flashsim.ParseInjector(c.in)
		if err != nil {
			t.Errorf("ParseInjector(%q): %v", c.in, err)
		} else if inj.String() != c.want {
			t.Errorf("ParseInjector(%q) = %s, want %s", c.in, inj, c.want)
		}
	}
}

// TestParseInjectorErrors: bad descriptions fail with ErrBadInjector, on
// one line, saying where and what was wanted.
func TestParseInjectorErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"cut", `at byte 0: want an injector`},
		{"(cut)", `want a cut kind: before, after or during, got ")"`},
		{"(cut sideways)", `got "sideways"`},
		{"(cut during", "at byte 11: want a predicate"},
		{"(cut during (op 0))", `want an operation number from 1, got "0"`},
		{"(cut during (op -3))", "operation number"},
		{"(cut during (op 99999999999999999999))", "operation number"},
		{"(cut during (op 1)) (cut after)", "at byte 20: \"(\" after the injector"},
		{"(cut during (op 1)))", `")" after the injector`},
		{"(fire (op 1))", `"fire" is not an injector`},
		{"(cut during (when 1))", `"when" is not a predicate`},
		{"(any)", `want an injector`},
		{"(and)", `want an injector`},
		{"(cut after (and))", `want a predicate`},
		{"(cut after (kind))", "want an operation kind"},
		{"(cut after (kind write))", `got "write"`},
		{"(cut after (range 0x10))", "want the range's length"},
		{"(cut after (range -1 5))", "the range's offset"},
		{"(cut after (range 0x7fffffffffffffff 2))", "overflows"},
		{"(bit-flips 2 1)", "want a bit flip rate from 0 to 1"},
		{"(bit-flips NaN 1)", "want a bit flip rate from 0 to 1"},
		{"(bit-flips 0.1 -1)", "want a seed"},
		{"(bit-flips 0.1)", "want a seed"},
		{"(cut after (randomly 1.5 1))", "probability from 0 to 1"},
		{"(cut after (not (op 1) (op 2)))", `want ")" to end (not`},
		{"(cut after (once))", "want a predicate"},
		{"(cut during (op 1)\n(op 2))", `want ")" to end (cut`},
		{"(cut before\n" + strings.Repeat("(not ", 40) + "(op 1)" + strings.Repeat(")", 41), "nested deeper than"},
		{"(cut before (kind " + strings.Repeat("x", 100) + "))", `"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."`},
	} {
		_, err := flashsim.ParseInjector(c.in)
		switch {
		case err == nil:
			t.Errorf("ParseInjector(%q) accepted it", c.in)
		case !errors.Is(err, flashsim.ErrBadInjector):
			t.Errorf("ParseInjector(%q) = %v, not an ErrBadInjector", c.in, err)
		case strings.Contains(err.Error(), "\n"):
			t.Errorf("ParseInjector(%q): error on several lines: %q", c.in, err)
		case !strings.Contains(err.Error(), c.want):
			t.Errorf("ParseInjector(%q) = %v, want it to say %s", c.in, err, c.want)
		}
	}
}

// FuzzParseInjector: no input panics the parser, errors are one line, and
// what parses prints as a description that parses to the same print.
func FuzzParseInjector(f *testing.F) {
	for _, s := range []string{
		"(cut during (op 1))",
		"(any (cut before (and (range 0x20000 0x20000) (op 3))) (bit-flips 1e-06 7 (kind read)))",
		"(wear-out (once (or (randomly 0.5 1) (not (kind erase)))))",
		"(cut after (range 0 0))",
		"(((",
		"(cut during (op 1)) trailing",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inj, err := flashsim.ParseInjector(s)
		if err != nil {
			if !errors.Is(err, flashsim.ErrBadInjector) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseInjector(%q): %q", s, err)
			}
			return
		}
		printed := inj.String()
		again, err := flashsim.ParseInjector(printed)
		if err != nil {
			t.Fatalf("ParseInjector(%q) printed %s, which does not parse: %v", s, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("%q printed %s, which prints back as %s", s, printed, again)
		}
	})
}

// fire shows inj the operations in turn and lists the 1-based positions
// of those a fault struck, with the kind of fault.
func fire(t *testing.T, inj flashsim.Injector, ops []flashsim.Op) []string {
	t.Helper()
	var out []string
	for i, op := range ops {
		ft := inj.MaybeFault(op)
		if ft.Kind != flashsim.NoFault {
			out = append(out, fmt.Sprintf("%d:%d", i+1, ft.Kind))
		}
	}
	return out
}

func ops(kinds string) []flashsim.Op {
	var out []flashsim.Op
	for i, c := range kinds {
		k := map[rune]flashsim.OpKind{'r': flashsim.OpRead, 'p': flashsim.OpProgram, 'e': flashsim.OpErase}[c]
		out = append(out, flashsim.Op{Kind: k, Off: int64(i) * 0x100, Len: 0x100})
	}
	return out
}

// TestPredicates states each predicate on a sequence of operations.
func TestPredicates(t *testing.T) {
	seq := ops("rprepprrepp") // op i at 0x100*(i-1)
	cut := func(p flashsim.Predicate) flashsim.Injector { return flashsim.Cut(flashsim.CutBefore, p) }
	for _, c := range []struct {
		what string
		inj  flashsim.Injector
		want string
	}{
		{"no predicate: every op", flashsim.Cut(flashsim.CutBefore, nil), "[1:1 2:1 3:1 4:1 5:1 6:1 7:1 8:1 9:1 10:1 11:1]"},
		{"op 3: the 3rd program or erase, reads not counted", cut(flashsim.OnOp(3)), "[5:1]"},
		{"kind erase", cut(flashsim.OnKind(flashsim.OpErase)), "[4:1 9:1]"},
		{"kind read program", cut(flashsim.OnKind(flashsim.OpRead, flashsim.OpProgram)), "[1:1 2:1 3:1 5:1 6:1 7:1 8:1 10:1 11:1]"},
		{"range overlaps", cut(flashsim.InRange(0x2ff, 0x102)), "[3:1 4:1 5:1]"},
		{"empty range", cut(flashsim.InRange(0x200, 0)), "[]"},
		{"and counts what reaches it: 2nd erase", cut(flashsim.And(flashsim.OnKind(flashsim.OpErase), flashsim.OnOp(2))), "[9:1]"},
		{"and in the other order: op 2 if a program", cut(flashsim.And(flashsim.OnOp(2), flashsim.OnKind(flashsim.OpProgram))), "[]"},
		{"or", cut(flashsim.Or(flashsim.OnOp(1), flashsim.OnKind(flashsim.OpErase))), "[2:1 4:1 9:1]"},
		{"not", cut(flashsim.Not(flashsim.OnKind(flashsim.OpRead, flashsim.OpProgram))), "[4:1 9:1]"},
		{"once", cut(flashsim.Once(flashsim.OnKind(flashsim.OpErase))), "[4:1]"},
		{"wear-out ignores reads", flashsim.WearOut(nil), "[2:2 4:2 5:2 6:2 9:2 10:2 11:2]"},
		{"bit-flips sees reads only", flashsim.BitFlips(0.5, 1, flashsim.OnOp(1)), "[]"},
		{"bit-flips", flashsim.BitFlips(0.5, 1, flashsim.Once(flashsim.OnKind(flashsim.OpRead))), "[1:3]"},
		{"any: both see every op, first wins", flashsim.Any(cut(flashsim.OnOp(2)), flashsim.WearOut(flashsim.OnOp(2)), flashsim.WearOut(flashsim.OnOp(4))), "[4:1 6:2]"},
	} {
		if got := fmt.Sprint(fire(t, c.inj, seq)); got != c.want {
			t.Errorf("%s: %s struck %s, want %s", c.what, c.inj, got, c.want)
		}
	}
}

// TestRandomly: a seed gives one sequence, p is the rate, 0 and 1 are
// never and always.
func TestRandomly(t *testing.T) {
	draw := func(p float64, seed uint64) string {
		r := flashsim.Randomly(p, seed)
		var b strings.Builder
		for i := 0; i < 4000; i++ {
			if r.Match(flashsim.Op{Kind: flashsim.OpProgram}) {
				b.WriteByte('1')
			} else {
				b.WriteByte('0')
			}
		}
		return b.String()
	}
	if first, again := draw(0.3, 5), draw(0.3, 5); first != again {
		t.Fatal("one seed drew two sequences")
	}
	if draw(0.3, 5) == draw(0.3, 6) {
		t.Fatal("two seeds drew one sequence")
	}
	if n := strings.Count(draw(0.3, 5), "1"); n < 1000 || n > 1400 {
		t.Fatalf("p=0.3 matched %d of 4000", n)
	}
	if strings.Contains(draw(0, 1), "1") || strings.Contains(draw(1, 1), "0") {
		t.Fatal("p=0 matched or p=1 missed")
	}
	// A parsed copy draws as the original did.
	orig := flashsim.Cut(flashsim.CutAfter, flashsim.Randomly(0.2, 9))
	cp, err := flashsim.ParseInjector(orig.String())
	if err != nil {
		t.Fatal(err)
	}
	seq := ops(strings.Repeat("p", 200))
	if a, b := fmt.Sprint(fire(t, orig, seq)), fmt.Sprint(fire(t, cp, seq)); a != b {
		t.Fatalf("the parsed copy struck %s, the original %s", b, a)
	}
}

// TestStackedCuts: two cuts stacked with Any each strike at their own
// operation; the power stays off until PowerOn, and the injector stays
// armed across it.
func TestStackedCuts(t *testing.T) {
	d := newDevice(t, flashsim.Options{Rand: rand.New(rand.NewPCG(3, 3))})
	inj, err := flashsim.ParseInjector("(any (cut after (op 2)) (cut before (and (kind erase) (op 2))))")
	if err != nil {
		t.Fatal(err)
	}
	f := flashsim.Wrap(d, inj)
	unit := []byte("8 bytes!")
	mustOK(t, f.Program(0, unit))
	flashtest.WantOpError(t, f.Program(8, unit), "program", flashsim.ErrPowerLoss) // op 2: cut after
	flashtest.WantOpError(t, f.Erase(0, 4096), "erase", flashsim.ErrPowerLoss)     // dead: neither counted nor shown
	if !f.PoweredOff() || f.Ops() != 2 {
		t.Fatalf("PoweredOff=%v Ops=%d, want true and 2", f.PoweredOff(), f.Ops())
	}
	f.PowerOn()
	if got := read(t, f, 0, 16); string(got) != "8 bytes!8 bytes!" {
		t.Fatalf("after a cut after the program: %q", got)
	}
	mustOK(t, f.Erase(4096, 4096))                                             // 1st erase
	mustOK(t, f.Program(4096, unit))                                           // op 4
	flashtest.WantOpError(t, f.Erase(0, 4096), "erase", flashsim.ErrPowerLoss) // 2nd erase: cut before
	f.PowerOn()
	if got := read(t, f, 0, 16); string(got) != "8 bytes!8 bytes!" {
		t.Fatalf("a cut before the erase erased: %q", got)
	}
	mustOK(t, f.Erase(0, 4096)) // both cuts struck: no more
	if s := d.Stats(); s.Programs != 3 || s.Erases != 2 {
		t.Fatalf("part stats %+v, want 3 programs and 2 erases", s)
	}
}

// TestCutReads: a cut may strike a read; before it the part does not see
// it, after it the part does, and either way the caller gets ErrPowerLoss.
func TestCutReads(t *testing.T) {
	for _, k := range []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring} {
		d := newDevice(t, flashsim.Options{})
		f := flashsim.Wrap(d, flashsim.Cut(k, flashsim.Once(flashsim.OnKind(flashsim.OpRead))))
		mustOK(t, f.Program(0, []byte("8 bytes!")))
		if _, err := f.ReadAt(make([]byte, 8), 0); !errors.Is(err, flashsim.ErrPowerLoss) {
			t.Fatalf("%v: read = %v, want a power loss", k, err)
		}
		if _, err := f.Sum256(0, 8); !errors.Is(err, flashsim.ErrPowerLoss) {
			t.Fatalf("%v: Sum256 while off = %v", k, err)
		}
		want := int64(1)
		if k == flashsim.CutBefore {
			want = 0
		}
		if d.Stats().Reads != want {
			t.Fatalf("%v: the part saw %d reads, want %d", k, d.Stats().Reads, want)
		}
		f.PowerOn()
		if _, err := f.Sum256(0, 8); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWearOut: the sector a struck program or erase starts in wears out
// for good; reads still work, and an erase over it erases the sectors
// before it, as a Device past its endurance does.
func TestWearOut(t *testing.T) {
	d := newDevice(t, flashsim.Options{})
	content := flashtest.Pattern(4*4096, 1, 0xFF)
	mustOK(t, d.Program(0, content))
	f := flashsim.Wrap(d, flashsim.WearOut(flashsim.And(flashsim.InRange(2*4096, 4096), flashsim.OnOp(1))))
	flashtest.WantOpError(t, f.Erase(2*4096, 4096), "erase", flashsim.ErrWornOut) // struck
	if !f.Worn(2) || f.Worn(1) || f.Worn(3) {
		t.Fatal("the wrong sector wore out")
	}
	if got := read(t, f, 2*4096, 4); !bytes.Equal(got, content[2*4096:2*4096+4]) {
		t.Fatal("a worn sector does not read what it held")
	}
	flashtest.WantOpError(t, f.Erase(0, 4*4096), "erase", flashsim.ErrWornOut)
	got := flashtest.Snapshot(t, d)
	if !bytes.Equal(got[:2*4096], bytes.Repeat([]byte{0xFF}, 2*4096)) || !bytes.Equal(got[2*4096:4*4096], content[2*4096:]) {
		t.Fatal("an erase over a worn sector should erase the ones before it, and only them")
	}
	mustOK(t, f.Program(4096, []byte("sector 1")))
	flashtest.WantOpError(t, f.Program(2*4096-8, make([]byte, 16)), "program", flashsim.ErrWornOut)
	flashtest.WantOpError(t, f.Program(2*4096+3, make([]byte, 8)), "program", flashsim.ErrMisaligned) // the part's rules come first
	if d.Stats().Rejected != 1 {
		t.Fatalf("the part refused %d operations, want 1 (the misaligned one)", d.Stats().Rejected)
	}
}

// plainFlash hides every method of a Device but Flash's.
type plainFlash struct{ flashsim.Flash }

// TestCutDuringWithoutTear: over a part that cannot tear, a cut during an
// operation is a cut before it.
func TestCutDuringWithoutTear(t *testing.T) {
	d := newDevice(t, flashsim.Options{})
	mustOK(t, d.Program(0, flashtest.Pattern(4096, 1, 0xFF)))
	before := flashtest.Snapshot(t, d)
	f := flashsim.Wrap(plainFlash{d}, flashsim.Cut(flashsim.CutDuring, flashsim.OnKind(flashsim.OpProgram, flashsim.OpErase)))
	flashtest.WantOpError(t, f.Program(4096, make([]byte, 64)), "program", flashsim.ErrPowerLoss)
	f.PowerOn()
	flashtest.WantOpError(t, f.Erase(0, 4096), "erase", flashsim.ErrPowerLoss)
	if !bytes.Equal(flashtest.Snapshot(t, d), before) || d.Ops() != 1 {
		t.Fatalf("the part changed or saw the operations (%d ops)", d.Ops())
	}
}

// TestBitFlips: flips change what reads and digests return, never the part.
func TestBitFlips(t *testing.T) {
	d := newDevice(t, flashsim.Options{})
	data := flashtest.Pattern(4096, 2, 0xFF)
	mustOK(t, d.Program(0, data))
	all := flashsim.Wrap(d, flashsim.BitFlips(1, 0, nil))
	got := read(t, all, 0, 4096)
	for i := range got {
		if got[i] != ^data[i] {
			t.Fatalf("rate 1: byte %d = 0x%02x, want 0x%02x", i, got[i], ^data[i])
		}
	}
	sum, err := all.Sum256(0, 4096)
	if err != nil || sum != sha256Of(got) {
		t.Fatalf("Sum256 with flips = %x, %v; want the digest of the flipped bytes", sum, err)
	}
	if !bytes.Equal(read(t, d, 0, 4096), data) {
		t.Fatal("flips reached the part")
	}
	some := flashsim.Wrap(d, flashsim.BitFlips(0.01, 4, flashsim.InRange(0, 2048)))
	a, b := read(t, some, 0, 4096), read(t, some, 0, 4096)
	if bytes.Equal(a[:2048], data[:2048]) || bytes.Equal(a[:2048], b[:2048]) {
		t.Fatal("rate 0.01 over 16 Kibit flipped nothing, or the same bits twice")
	}
	if c := read(t, some, 2048, 2048); !bytes.Equal(c, data[2048:]) {
		t.Fatal("a read outside the predicate's range was flipped")
	}
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }
