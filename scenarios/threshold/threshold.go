package threshold

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Threshold is one parsed expression, such as "p(95)<2h".
type Threshold struct {
	// Source is the expression as written, without surrounding spaces.
	Source string
	// Agg is the aggregation: "count", "rate", "value", "avg", "min",
	// "max", "med" or "p".
	Agg string
	// P is the percentile when Agg is "p", in [0, 100].
	P float64
	// Op is the operator: "<", "<=", ">", ">=", "==", "===" or "!=".
	Op string
	// Value is what the aggregate is compared with, in seconds when the
	// expression gave a duration.
	Value float64
}

// SyntaxError reports an expression that is not a threshold.
type SyntaxError struct {
	// Source is the expression as given to Parse.
	Source string
	// Reason says what is wrong, in one line.
	Reason string
}

// Error quotes the expression and says what is wrong with it.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("threshold %q: %s", e.Source, e.Reason)
}

// aggregations are the words Parse accepts before an operator.
var aggregations = map[string]bool{
	"count": true, "rate": true, "value": true,
	"avg": true, "min": true, "max": true, "med": true, "p": true,
}

var operators = map[string]bool{
	"<": true, "<=": true, ">": true, ">=": true, "==": true, "===": true, "!=": true,
}

// unitSeconds gives each duration unit's length in seconds; milliseconds
// divide by 1000 instead, so that "300ms" is exactly the float 0.3.
var unitSeconds = map[string]float64{
	"ms": 1.0 / 1000, "s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60,
}

// Parse parses one expression. It returns a *SyntaxError for anything that
// is not a threshold, and never panics.
func Parse(s string) (Threshold, error) {
	fail := func(format string, args ...any) (Threshold, error) {
		return Threshold{}, &SyntaxError{Source: s, Reason: fmt.Sprintf(format, args...)}
	}
	src := strings.TrimSpace(s)
	if src == "" {
		return fail(`empty expression (want e.g. "p(95)<2h")`)
	}
	t := Threshold{Source: src}

	agg, rest := cutWhile(src, isLetter)
	switch {
	case agg == "":
		return fail("want an aggregation (count, rate, value, avg, min, max, med or p(N)) at %q", rest)
	case !aggregations[agg]:
		return fail("unknown aggregation %q (want count, rate, value, avg, min, max, med or p(N))", agg)
	}
	t.Agg = agg
	if agg == "p" {
		if !strings.HasPrefix(rest, "(") {
			return fail("p needs a percentile in parentheses, e.g. p(95)")
		}
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return fail(`missing ")" after p(`)
		}
		arg := rest[1:end]
		if arg == "" {
			return fail("empty percentile in p()")
		}
		p, err := parseNumber(arg)
		if err != nil {
			return fail("invalid percentile %q in p(N)", arg)
		}
		if p < 0 || p > 100 {
			return fail("percentile %q is outside 0..100", arg)
		}
		t.P, rest = p, rest[end+1:]
	}

	op, rest := cutWhile(strings.TrimLeftFunc(rest, unicode.IsSpace), isOperatorByte)
	switch {
	case op == "":
		return fail("want an operator (<, <=, >, >=, ==, ===, !=) after %q, at %q", agg, rest)
	case !operators[op]:
		return fail("unknown operator %q (want <, <=, >, >=, ==, === or !=)", op)
	}
	t.Op = op

	rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	if rest == "" {
		return fail("missing value after %q", op)
	}
	v, err := parseValue(rest)
	if err != nil {
		return fail("%v", err)
	}
	t.Value = v
	return t, nil
}

// ParseAll parses a metric's expressions, naming a bad one by its place in
// the scenario ("expect.time_to_update[1]: ..."). It stops at the first.
func ParseAll(metric string, exprs []string) ([]Threshold, error) {
	ts := make([]Threshold, 0, len(exprs))
	for i, e := range exprs {
		t, err := Parse(e)
		if err != nil {
			return nil, fmt.Errorf("expect.%s[%d]: %w", metric, i, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// String returns the source text. A Threshold built in code, with no
// Source, prints in canonical form, which Parse reads back to the same
// aggregation, operator and value.
func (t Threshold) String() string {
	if t.Source != "" {
		return t.Source
	}
	agg := t.Agg
	if agg == "p" {
		agg = "p(" + strconv.FormatFloat(t.P, 'f', -1, 64) + ")"
	}
	return agg + t.Op + strconv.FormatFloat(t.Value, 'g', -1, 64)
}

// parseValue reads a number, or a duration of number-unit pairs converted to
// seconds. It refuses anything after the value, NaN and infinities.
func parseValue(s string) (float64, error) {
	invalid := fmt.Errorf("invalid value %q (want a number, or a duration such as 1.5s or 1h30m)", s)
	sign, body := 1.0, s
	if body != "" && (body[0] == '-' || body[0] == '+') {
		if body[0] == '-' {
			sign = -1
		}
		body = body[1:]
	}
	num, rest := scanDecimal(body)
	if num == "" {
		return 0, invalid
	}

	if exp, after := scanExponent(rest); exp != "" || !startsWithLetter(rest) {
		// A bare number: the only form that may have an exponent.
		if after != "" {
			return 0, fmt.Errorf("unexpected %q after value", after)
		}
		v, err := strconv.ParseFloat(num+exp, 64)
		if err != nil {
			return 0, fmt.Errorf("value %q is out of range", s)
		}
		return sign * v, nil
	}

	total := 0.0
	for {
		unit, after := cutWhile(rest, isLetter)
		if _, ok := unitSeconds[unit]; !ok {
			return 0, fmt.Errorf("unknown unit %q in %q (want ms, s, m, h or d)", unit, s)
		}
		x, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("value %q is out of range", s)
		}
		if unit == "ms" {
			total += x / 1000
		} else {
			total += x * unitSeconds[unit]
		}
		if after == "" {
			break
		}
		num, rest = scanDecimal(after)
		switch {
		case num == "":
			return 0, fmt.Errorf("unexpected %q after value", after)
		case rest == "" || !startsWithLetter(rest):
			return 0, fmt.Errorf("missing unit after %q in %q", num, s)
		}
	}
	if math.IsInf(total, 0) {
		return 0, fmt.Errorf("value %q is out of range", s)
	}
	return sign * total, nil
}

// parseNumber reads a whole string as a signed decimal number with an
// optional exponent; it refuses the NaN, Inf and hex forms that
// strconv.ParseFloat would take.
func parseNumber(s string) (float64, error) {
	body := s
	if body != "" && (body[0] == '-' || body[0] == '+') {
		body = body[1:]
	}
	num, rest := scanDecimal(body)
	_, rest = scanExponent(rest)
	if num == "" || rest != "" {
		return 0, fmt.Errorf("invalid number %q", s)
	}
	return strconv.ParseFloat(s, 64)
}

// scanDecimal splits s after its leading digits[.digits], which must hold at
// least one digit; num is "" when there is none.
func scanDecimal(s string) (num, rest string) {
	i, digits := 0, 0
	for i < len(s) && isDigit(s[i]) {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return "", s
	}
	return s[:i], s[i:]
}

// scanExponent splits s after a leading e[+-]digits; exp is "" when there is
// none.
func scanExponent(s string) (exp, rest string) {
	if s == "" || (s[0] != 'e' && s[0] != 'E') {
		return "", s
	}
	i := 1
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	j := i
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j == i {
		return "", s
	}
	return s[:j], s[j:]
}

func cutWhile(s string, f func(byte) bool) (head, rest string) {
	i := 0
	for i < len(s) && f(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func startsWithLetter(s string) bool { return s != "" && isLetter(s[0]) }

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isOperatorByte(c byte) bool { return c == '<' || c == '>' || c == '=' || c == '!' }
