package flashsim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrBadInjector: a fault injector's description does not parse.
var ErrBadInjector = errors.New("bad flash fault injector")

// ParseInjector reads an injector written as the s-expressions String
// prints, so that ParseInjector(inj.String()) is a fresh copy of inj (its
// state, such as counts, starts over). The words:
//
//	injector:  (cut before|after|during [WHEN])   Cut
//	           (wear-out [WHEN])                  WearOut
//	           (bit-flips RATE SEED [WHEN])       BitFlips
//	           (any INJECTOR...)                  Any
//	WHEN:      (op N)                             OnOp, N from 1
//	           (kind read|program|erase...)       OnKind
//	           (range OFF LEN)                    InRange, integers as in Go (0x20000)
//	           (randomly P SEED)                  Randomly, P in [0, 1]
//	           (and WHEN...) (or WHEN...)         And, Or
//	           (not WHEN) (once WHEN)             Not, Once
//
// For example (any (cut during (and (range 0x20000 0x20000) (op 3)))
// (bit-flips 1e-06 7)) tears the third program or erase in the secondary
// slot, and flips read bits all along.
//
// An error wraps ErrBadInjector, says where (a byte offset) and what was
// expected, on one line; no input panics.
func ParseInjector(s string) (Injector, error) {
	p := &dslParser{s: s}
	if p.peek().kind == tokEOF {
		return nil, p.errorf(p.pos, "empty: want an injector such as (cut during (op 1))")
	}
	inj, err := p.injector()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorf(t.pos, "%s after the injector", t)
	}
	return inj, nil
}

// maxNesting bounds the nesting a description may have.
const maxNesting = 32

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokOpen
	tokClose
	tokAtom
)

type token struct {
	kind tokKind
	pos  int
	text string
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "the end"
	case tokOpen:
		return `"("`
	case tokClose:
		return `")"`
	}
	text := t.text
	if len(text) > 40 {
		text = text[:40] + "..."
	}
	return strconv.Quote(text)
}

type dslParser struct {
	s     string
	pos   int
	depth int
}

func (p *dslParser) errorf(pos int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrBadInjector, pos, fmt.Sprintf(format, args...))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// peek returns the next token without consuming it.
func (p *dslParser) peek() token {
	for p.pos < len(p.s) && isSpace(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == len(p.s) {
		return token{kind: tokEOF, pos: p.pos}
	}
	switch p.s[p.pos] {
	case '(':
		return token{kind: tokOpen, pos: p.pos}
	case ')':
		return token{kind: tokClose, pos: p.pos}
	}
	end := p.pos
	for end < len(p.s) && !isSpace(p.s[end]) && p.s[end] != '(' && p.s[end] != ')' {
		end++
	}
	return token{kind: tokAtom, pos: p.pos, text: p.s[p.pos:end]}
}

func (p *dslParser) next() token {
	t := p.peek()
	switch t.kind {
	case tokOpen, tokClose:
		p.pos++
	case tokAtom:
		p.pos += len(t.text)
	}
	return t
}

// open consumes "(" and the head word of a form; what names the form
// expected, for the error.
func (p *dslParser) open(what string) (token, error) {
	if t := p.next(); t.kind != tokOpen {
		return t, p.errorf(t.pos, "want %s, got %s", what, t)
	}
	if p.depth++; p.depth > maxNesting {
		return token{}, p.errorf(p.pos, "nested deeper than %d", maxNesting)
	}
	t := p.next()
	if t.kind != tokAtom {
		return t, p.errorf(t.pos, "want %s, got %s", what, t)
	}
	return t, nil
}

func (p *dslParser) close(head string) error {
	if t := p.next(); t.kind != tokClose {
		return p.errorf(t.pos, "want \")\" to end (%s, got %s", head, t)
	}
	p.depth--
	return nil
}

func (p *dslParser) atom(what string) (token, error) {
	t := p.next()
	if t.kind != tokAtom {
		return t, p.errorf(t.pos, "want %s, got %s", what, t)
	}
	return t, nil
}

const (
	wantInjector  = "an injector: (cut KIND [WHEN]), (wear-out [WHEN]), (bit-flips RATE SEED [WHEN]) or (any INJECTOR...)"
	wantPredicate = "a predicate: (op N), (kind KIND...), (range OFF LEN), (randomly P SEED), (and ...), (or ...), (not P) or (once P)"
)

func (p *dslParser) injector() (Injector, error) {
	head, err := p.open(wantInjector)
	if err != nil {
		return nil, err
	}
	var inj Injector
	switch head.text {
	case "cut":
		t, err := p.atom("a cut kind: before, after or during")
		if err != nil {
			return nil, err
		}
		kind, ok := map[string]CutKind{"before": CutBefore, "after": CutAfter, "during": CutDuring}[t.text]
		if !ok {
			return nil, p.errorf(t.pos, "want a cut kind: before, after or during, got %s", t)
		}
		when, err := p.optionalPredicate()
		if err != nil {
			return nil, err
		}
		inj = Cut(kind, when)
	case "wear-out":
		when, err := p.optionalPredicate()
		if err != nil {
			return nil, err
		}
		inj = WearOut(when)
	case "bit-flips":
		rate, err := p.probability("a bit flip rate")
		if err != nil {
			return nil, err
		}
		seed, err := p.seed()
		if err != nil {
			return nil, err
		}
		when, err := p.optionalPredicate()
		if err != nil {
			return nil, err
		}
		inj = BitFlips(rate, seed, when)
	case "any":
		var injs []Injector
		for p.peek().kind != tokClose || len(injs) == 0 {
			in, err := p.injector()
			if err != nil {
				return nil, err
			}
			injs = append(injs, in)
		}
		inj = Any(injs...)
	default:
		return nil, p.errorf(head.pos, "%s is not an injector: want %s", head, wantInjector)
	}
	return inj, p.close(head.text)
}

func (p *dslParser) optionalPredicate() (Predicate, error) {
	if p.peek().kind == tokClose {
		return nil, nil
	}
	return p.predicate()
}

func (p *dslParser) predicate() (Predicate, error) {
	head, err := p.open(wantPredicate)
	if err != nil {
		return nil, err
	}
	var pred Predicate
	switch head.text {
	case "op":
		t, err := p.atom("an operation number")
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(t.text)
		if err != nil || n < 1 {
			return nil, p.errorf(t.pos, "want an operation number from 1, got %s", t)
		}
		pred = OnOp(n)
	case "kind":
		var kinds []OpKind
		for p.peek().kind != tokClose || len(kinds) == 0 {
			t, err := p.atom("an operation kind: read, program or erase")
			if err != nil {
				return nil, err
			}
			k, ok := map[string]OpKind{"read": OpRead, "program": OpProgram, "erase": OpErase}[t.text]
			if !ok {
				return nil, p.errorf(t.pos, "want an operation kind: read, program or erase, got %s", t)
			}
			kinds = append(kinds, k)
		}
		pred = OnKind(kinds...)
	case "range":
		off, err := p.offset("the range's offset")
		if err != nil {
			return nil, err
		}
		at := p.peek().pos
		n, err := p.offset("the range's length")
		if err != nil {
			return nil, err
		}
		if n > math.MaxInt64-off {
			return nil, p.errorf(at, "the range 0x%x+0x%x overflows", off, n)
		}
		pred = InRange(off, n)
	case "randomly":
		prob, err := p.probability("a probability")
		if err != nil {
			return nil, err
		}
		seed, err := p.seed()
		if err != nil {
			return nil, err
		}
		pred = Randomly(prob, seed)
	case "and", "or":
		var ps []Predicate
		for p.peek().kind != tokClose || len(ps) == 0 {
			q, err := p.predicate()
			if err != nil {
				return nil, err
			}
			ps = append(ps, q)
		}
		if head.text == "and" {
			pred = And(ps...)
		} else {
			pred = Or(ps...)
		}
	case "not", "once":
		q, err := p.predicate()
		if err != nil {
			return nil, err
		}
		if head.text == "not" {
			pred = Not(q)
		} else {
			pred = Once(q)
		}
	default:
		return nil, p.errorf(head.pos, "%s is not a predicate: want %s", head, wantPredicate)
	}
	return pred, p.close(head.text)
}

func (p *dslParser) probability(what string) (float64, error) {
	t, err := p.atom(what + " from 0 to 1")
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(t.text, 64)
	if err != nil || !(v >= 0 && v <= 1) {
		return 0, p.errorf(t.pos, "want %s from 0 to 1, got %s", what, t)
	}
	return v, nil
}

func (p *dslParser) seed() (uint64, error) {
	t, err := p.atom("a seed")
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(t.text, 10, 64)
	if err != nil {
		return 0, p.errorf(t.pos, "want a seed (a decimal integer from 0), got %s", t)
	}
	return v, nil
}

func (p *dslParser) offset(what string) (int64, error) {
	t, err := p.atom(what)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(t.text, 0, 64)
	if err != nil || v < 0 {
		return 0, p.errorf(t.pos, "want %s, an integer from 0 (0x20000, 131072), got %s", what, t)
	}
	return v, nil
}
