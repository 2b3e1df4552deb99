package flashsim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// A Predicate says which operations a fault strikes. Predicates compose
// with And, Or, Not and Once, and print as the s-expressions ParseInjector
// reads. Some hold state (OnOp counts, Randomly draws, Once remembers): they
// change only when evaluated, so within And and Or, which stop at the first
// operand that decides, their place matters: (and (range A B) (op 3)) is the
// third program or erase in the range, (and (op 3) (range A B)) the third
// one overall if it is in the range.
type Predicate interface {
	fmt.Stringer
	// Match reports whether the fault strikes op.
	Match(op Op) bool
}

// Cut returns the injector that cuts the power, with kind k, at the
// operations when matches (every operation, reads included, if when is
// nil): (cut KIND [WHEN]).
func Cut(k CutKind, when Predicate) Injector {
	if k < CutBefore || k > CutDuring {
		panic(fmt.Sprintf("flashsim: Cut with %v", k))
	}
	return &cutInjector{kind: k, when: when}
}

type cutInjector struct {
	kind CutKind
	when Predicate
}

func (c *cutInjector) MaybeFault(op Op) Fault {
	if c.when == nil || c.when.Match(op) {
		return Fault{Kind: FaultPowerCut, Cut: c.kind}
	}
	return Fault{}
}

func (c *cutInjector) String() string { return sexpr("cut", c.kind.String(), c.when) }

// WearOut returns the injector that wears out, for good, the first sector
// of the programs and erases when matches (all of them if when is nil);
// reads are not shown to when: (wear-out [WHEN]). A worn sector reads as
// before but is never programmed or erased again (ErrWornOut): an erase
// over it erases the sectors before it and stops, as Options.Endurance
// makes a Device do.
func WearOut(when Predicate) Injector { return &wearOutInjector{when: when} }

type wearOutInjector struct{ when Predicate }

func (w *wearOutInjector) MaybeFault(op Op) Fault {
	if op.Kind != OpRead && (w.when == nil || w.when.Match(op)) {
		return Fault{Kind: FaultWearOut}
	}
	return Fault{}
}

func (w *wearOutInjector) String() string { return sexpr("wear-out", "", w.when) }

// BitFlips returns the injector that flips each bit a read returns with
// probability rate, in the reads when matches (all of them if when is nil;
// programs and erases are not shown to it), the bits chosen by a source
// seeded with seed: (bit-flips RATE SEED [WHEN]). The part keeps its
// bytes, as with Options.ReadBitErrorRate. rate must be in [0, 1].
func BitFlips(rate float64, seed uint64, when Predicate) Injector {
	if !(rate >= 0 && rate <= 1) {
		panic(fmt.Sprintf("flashsim: BitFlips with rate %v", rate))
	}
	return &bitFlipInjector{rate: rate, seed: seed, when: when, rng: rand.New(rand.NewPCG(seed, bitFlipStream))}
}

// bitFlipStream and randomlyStream tell the streams of BitFlips and
// Randomly apart when both are given one seed.
const (
	bitFlipStream  = 0x666c6970 // "flip"
	randomlyStream = 0x72616e64 // "rand"
)

type bitFlipInjector struct {
	rate float64
	seed uint64
	when Predicate
	rng  *rand.Rand
}

func (b *bitFlipInjector) MaybeFault(op Op) Fault {
	if op.Kind == OpRead && (b.when == nil || b.when.Match(op)) {
		return Fault{Kind: FaultBitFlips, Rate: b.rate, Rand: b.rng}
	}
	return Fault{}
}

func (b *bitFlipInjector) String() string {
	return sexpr("bit-flips", formatFloat(b.rate)+" "+strconv.FormatUint(b.seed, 10), b.when)
}

// Any returns the injector that stacks injs: every one of them sees every
// operation (so their counts do not depend on each other), and the fault
// of the first that chooses one strikes: (any INJ...). It panics without
// injectors or with a nil one.
func Any(injs ...Injector) Injector {
	if len(injs) == 0 {
		panic("flashsim: Any of no injectors")
	}
	for _, inj := range injs {
		if inj == nil {
			panic("flashsim: Any of a nil injector")
		}
	}
	return anyInjector(append([]Injector(nil), injs...))
}

type anyInjector []Injector

func (a anyInjector) MaybeFault(op Op) Fault {
	var first Fault
	for _, inj := range a {
		if ft := inj.MaybeFault(op); first.Kind == NoFault {
			first = ft
		}
	}
	return first
}

func (a anyInjector) String() string {
	var b strings.Builder
	b.WriteString("(any")
	for _, inj := range a {
		b.WriteByte(' ')
		b.WriteString(inj.String())
	}
	b.WriteByte(')')
	return b.String()
}

// OnOp returns the predicate that matches the n-th program or erase it is
// shown (1-based, rejected ones included; reads do not count and never
// match): (op N). At the top of an injector that is the n-th operation
// since the injector was armed, as PowerCut counts. It panics if n < 1.
func OnOp(n int) Predicate {
	if n < 1 {
		panic(fmt.Sprintf("flashsim: OnOp(%d)", n))
	}
	return &onOp{n: n}
}

type onOp struct{ n, seen int }

func (o *onOp) Match(op Op) bool {
	if op.Kind == OpRead {
		return false
	}
	o.seen++
	return o.seen == o.n
}

func (o *onOp) String() string { return "(op " + strconv.Itoa(o.n) + ")" }

// OnKind returns the predicate that matches operations of the given kinds:
// (kind KIND...), KIND one of read, program, erase. It panics without
// kinds or with one that is not OpRead, OpProgram or OpErase.
func OnKind(kinds ...OpKind) Predicate {
	if len(kinds) == 0 {
		panic("flashsim: OnKind of no kinds")
	}
	for _, k := range kinds {
		if k < OpRead || k > OpErase {
			panic(fmt.Sprintf("flashsim: OnKind(%v)", k))
		}
	}
	return onKind(append([]OpKind(nil), kinds...))
}

type onKind []OpKind

func (o onKind) Match(op Op) bool {
	for _, k := range o {
		if op.Kind == k {
			return true
		}
	}
	return false
}

func (o onKind) String() string {
	var b strings.Builder
	b.WriteString("(kind")
	for _, k := range o {
		b.WriteByte(' ')
		b.WriteString(k.String())
	}
	b.WriteByte(')')
	return b.String()
}

// InRange returns the predicate that matches operations overlapping
// [off, off+length), an empty operation counting as its first byte: a
// partition's range, say. (range OFF LEN), printed in hexadecimal. It
// panics if off or length is negative or their sum overflows.
func InRange(off, length int64) Predicate {
	if off < 0 || length < 0 || length > math.MaxInt64-off {
		panic(fmt.Sprintf("flashsim: InRange(%d, %d)", off, length))
	}
	return inRange{off: off, end: off + length}
}

type inRange struct{ off, end int64 }

func (r inRange) Match(op Op) bool {
	n := max(op.Len, 1)
	// op.Off+n > r.off, without the sum, which may overflow.
	return op.Off < r.end && op.Off > r.off-n
}

func (r inRange) String() string { return fmt.Sprintf("(range 0x%x 0x%x)", r.off, r.end-r.off) }

// Randomly returns the predicate that matches each operation it is shown
// with probability p, drawn from a source seeded with seed, so one seed
// gives one sequence of choices: (randomly P SEED). It panics unless p is
// in [0, 1].
func Randomly(p float64, seed uint64) Predicate {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("flashsim: Randomly(%v)", p))
	}
	return &randomly{p: p, seed: seed, rng: rand.New(rand.NewPCG(seed, randomlyStream))}
}

type randomly struct {
	p    float64
	seed uint64
	rng  *rand.Rand
}

func (r *randomly) Match(Op) bool { return r.rng.Float64() < r.p }

func (r *randomly) String() string {
	return "(randomly " + formatFloat(r.p) + " " + strconv.FormatUint(r.seed, 10) + ")"
}

// And returns the predicate that matches when every one of ps does,
// evaluating them in order up to the first that does not: (and P...). It
// panics without predicates or with a nil one.
func And(ps ...Predicate) Predicate { return &junction{op: "and", ps: checkPredicates("And", ps)} }

// Or returns the predicate that matches when one of ps does, evaluating
// them in order up to the first that does: (or P...). It panics without
// predicates or with a nil one.
func Or(ps ...Predicate) Predicate { return &junction{op: "or", ps: checkPredicates("Or", ps)} }

func checkPredicates(name string, ps []Predicate) []Predicate {
	if len(ps) == 0 {
		panic("flashsim: " + name + " of no predicates")
	}
	for _, p := range ps {
		if p == nil {
			panic("flashsim: " + name + " of a nil predicate")
		}
	}
	return append([]Predicate(nil), ps...)
}

type junction struct {
	op string // "and" or "or"
	ps []Predicate
}

func (j *junction) Match(op Op) bool {
	all := j.op == "and"
	for _, p := range j.ps {
		if p.Match(op) != all {
			return !all
		}
	}
	return all
}

func (j *junction) String() string {
	var b strings.Builder
	b.WriteString("(" + j.op)
	for _, p := range j.ps {
		b.WriteByte(' ')
		b.WriteString(p.String())
	}
	b.WriteByte(')')
	return b.String()
}

// Not returns the predicate that matches when p does not: (not P).
func Not(p Predicate) Predicate {
	if p == nil {
		panic("flashsim: Not of a nil predicate")
	}
	return not{p}
}

type not struct{ p Predicate }

func (n not) Match(op Op) bool { return !n.p.Match(op) }
func (n not) String() string   { return "(not " + n.p.String() + ")" }

// Once returns the predicate that matches the first operation p matches,
// and none after it: (once P). p is not evaluated any more once it matched.
func Once(p Predicate) Predicate {
	if p == nil {
		panic("flashsim: Once of a nil predicate")
	}
	return &once{p: p}
}

type once struct {
	p     Predicate
	fired bool
}

func (o *once) Match(op Op) bool {
	if o.fired || !o.p.Match(op) {
		return false
	}
	o.fired = true
	return true
}

func (o *once) String() string { return "(once " + o.p.String() + ")" }

// sexpr prints (head args [when]).
func sexpr(head, args string, when Predicate) string {
	s := "(" + head
	if args != "" {
		s += " " + args
	}
	if when != nil {
		s += " " + when.String()
	}
	return s + ")"
}

// formatFloat prints a probability in the shortest form that reads back
// as the same float64.
func formatFloat(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }
