package scenarios

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"
)

// Day is the "d" unit of a Duration: 24 hours of simulated time (no
// calendar, no daylight saving).
const Day = 24 * time.Hour

// Duration is a span of simulated time written the way people plan fleet
// runs: "15s", "90m", "1h30m", "1d", "7d". It is Go's duration syntax plus
// a leading whole number of days, and never negative.
type Duration time.Duration

// ErrBadDuration reports text that is not a Duration.
var ErrBadDuration = errors.New("bad duration")

// durationExample is what error messages suggest.
const durationExample = `e.g. "15s", "90m", "1h30m" or "7d"`

// ParseDuration reads a Duration: an optional whole number of days ("2d")
// followed by Go's time.ParseDuration syntax ("1h30m"), or either alone.
// Signs are refused: a scenario has no use for negative time.
//
// Errors wrap ErrBadDuration.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty: want a duration, %s", ErrBadDuration, durationExample)
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("%w: %q is negative", ErrBadDuration, s)
	}
	if s[0] == '+' {
		return 0, fmt.Errorf("%w: %q: write it without a sign", ErrBadDuration, s)
	}
	var days int64
	rest := s
	if ds, after, ok := strings.Cut(s, "d"); ok {
		// No unit of Go's contains a "d", so the first one ends the days.
		n, err := strconv.ParseInt(ds, 10, 64)
		if err != nil || n < 0 || ds[0] == '+' {
			return 0, fmt.Errorf("%w: %q: days must be a whole number, %s", ErrBadDuration, s, durationExample)
		}
		if n > int64(math.MaxInt64/Day) {
			return 0, fmt.Errorf("%w: %q is too long", ErrBadDuration, s)
		}
		days, rest = n, after
		if rest == "" {
			return Duration(time.Duration(days) * Day), nil
		}
		if rest == "0" || rest[0] == '-' || rest[0] == '+' {
			// time.ParseDuration takes a bare "0" and signs; after days
			// they can only be typos.
			return 0, fmt.Errorf("%w: %q: want units after the days, %s", ErrBadDuration, s, durationExample)
		}
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a duration: want %s", ErrBadDuration, s, strings.TrimPrefix(durationExample, "e.g. "))
	}
	total := time.Duration(days) * Day
	if d > math.MaxInt64-total {
		return 0, fmt.Errorf("%w: %q is too long", ErrBadDuration, s)
	}
	return Duration(total + d), nil
}

// String writes d compactly in ParseDuration's syntax: whole days, then
// hours, minutes and seconds, leaving out the zero ones ("1d", "1h30m",
// "15m"), so that reports read like the scenarios that made them.
func (d Duration) String() string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = -u // two's complement: right for math.MinInt64 too
	}
	for _, unit := range []struct {
		size   time.Duration
		suffix string
	}{{Day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}} {
		if n := u / uint64(unit.size); n > 0 {
			b.WriteString(strconv.FormatUint(n, 10))
			b.WriteString(unit.suffix)
			u %= uint64(unit.size)
		}
	}
	if u > 0 {
		// Below a minute Go's own form is already compact: "30s", "1.5s",
		// "250ms".
		b.WriteString(time.Duration(u).String())
	}
	return b.String()
}

// MarshalText writes d as String does, which is also how it appears in
// JSON and YAML output.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what MarshalText writes (ParseDuration).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// UnmarshalYAML reads a Duration from a YAML string. A bare number is
// refused: "90" could be seconds or minutes, and guessing wrong silently
// changes a run.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%w: want a duration, %s, not a %s", ErrBadDuration, durationExample, kindName(n.Kind))
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return fmt.Errorf("%w: %s has no unit: add one, e.g. \"%ss\", \"%sm\" or \"%sh\"", ErrBadDuration, n.Value, n.Value, n.Value, n.Value)
	case "!!str":
	default:
		return fmt.Errorf("%w: want a duration, %s, not %q", ErrBadDuration, durationExample, n.Value)
	}
	return d.UnmarshalText([]byte(n.Value))
}

// durationPattern is the schema's regular expression for ParseDuration's
// syntax.
const durationPattern = `^(0|[0-9]+d(` + goDurationTerm + `)*|(` + goDurationTerm + `)+)$`

const goDurationTerm = `([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)`

// JSONSchema describes Duration to invopop/jsonschema.
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     durationPattern,
		Description: "A span of simulated time: whole days (d) and/or Go duration units (h, m, s, ms), " + durationExample + ".",
		Examples:    []any{"15s", "90m", "1h30m", "7d"},
	}
}

// Size is a number of bytes, written "512", "512B", "64KiB", "1MiB" (binary
// multiples) or "64KB", "1MB" (decimal multiples, as the SI and IEC define
// them). It is always a whole number of bytes.
type Size int64

// Size units.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
)

// ErrBadSize reports text that is not a Size.
var ErrBadSize = errors.New("bad size")

// sizeUnits are ParseSize's suffixes, longest first so that "KiB" is not
// read as "B".
var sizeUnits = []struct {
	suffix string
	bytes  int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1e3}, {"MB", 1e6}, {"B", 1}}

const sizeExample = `e.g. "512B", "64KiB" or "1MiB"`

// ParseSize reads a whole number of bytes with an optional unit: B, KiB,
// MiB, KB or MB. Zero is refused: no size in a scenario can be empty, and
// a zero would silently stand for the default.
//
// Errors wrap ErrBadSize.
func ParseSize(s string) (Size, error) {
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = n, u.bytes
			break
		}
	}
	if num == "" || num[0] < '0' || num[0] > '9' {
		if strings.HasPrefix(num, "-") {
			return 0, fmt.Errorf("%w: %q is negative", ErrBadSize, s)
		}
		return 0, fmt.Errorf("%w: %q is not a size: want a whole number of bytes with an optional unit (B, KiB, MiB, KB, MB), %s", ErrBadSize, s, sizeExample)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%w: %q is too large", ErrBadSize, s)
		}
		return 0, fmt.Errorf("%w: %q is not a size: want a whole number of bytes with an optional unit (B, KiB, MiB, KB, MB), %s", ErrBadSize, s, sizeExample)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%w: %q is too large", ErrBadSize, s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%w: %q: must be more than 0 bytes", ErrBadSize, s)
	}
	return Size(n * mult), nil
}

// String writes z in the largest binary unit that divides it: "1MiB",
// "256KiB", "1000B".
func (z Size) String() string {
	switch {
	case z != 0 && z%MiB == 0:
		return strconv.FormatInt(int64(z/MiB), 10) + "MiB"
	case z != 0 && z%KiB == 0:
		return strconv.FormatInt(int64(z/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(z), 10) + "B"
}

// MarshalText writes z as String does.
func (z Size) MarshalText() ([]byte, error) { return []byte(z.String()), nil }

// UnmarshalText reads what MarshalText writes (ParseSize).
func (z *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*z = v
	return nil
}

// UnmarshalYAML reads a Size from a YAML string (ParseSize) or a bare whole
// number of bytes, more than 0.
func (z *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%w: want a size, %s, not a %s", ErrBadSize, sizeExample, kindName(n.Kind))
	}
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("%w: %s is not a whole number of bytes", ErrBadSize, n.Value)
		}
		if v <= 0 {
			return fmt.Errorf("%w: %s: must be more than 0 bytes", ErrBadSize, n.Value)
		}
		*z = Size(v)
		return nil
	case "!!str":
		return z.UnmarshalText([]byte(n.Value))
	}
	return fmt.Errorf("%w: want a size, %s, not %q", ErrBadSize, sizeExample, n.Value)
}

// sizePattern is the schema's regular expression for ParseSize's syntax.
const sizePattern = `^[0-9]+(B|KiB|MiB|KB|MB)?$`

// JSONSchema describes Size to invopop/jsonschema: a string with a unit,
// or a bare number of bytes (YAML reads "512" unquoted as a number).
func (Size) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Description: "A number of bytes with an optional unit: B, KiB, MiB (binary) or KB, MB (decimal), " + sizeExample + ".",
		OneOf: []*jsonschema.Schema{
			{Type: "string", Pattern: sizePattern},
			{Type: "integer", Minimum: "1"},
		},
		Examples: []any{"64KiB", "1MiB"},
	}
}

// kindName names a YAML node kind the way error messages speak of it.
func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	case yaml.DocumentNode:
		return "document"
	case yaml.AliasNode:
		return "alias"
	}
	return "node of kind " + strconv.Itoa(int(k))
}
