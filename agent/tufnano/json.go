package tufnano

import (
	"bytes"
	"slices"
	"unicode/utf8"
)

// The JSON reader works on spans of the metadata bytes: a value is its kind
// and its raw extent, and nothing is decoded until a field is needed. Object
// members are iterated in file order; strings without escapes are used in
// place. This keeps a refresh to a handful of allocations, as on an MCU
// where the metadata buffer is the only copy.

type jkind uint8

const (
	jInvalid jkind = iota
	jObject
	jArray
	jString
	jNumber
	jTrue
	jFalse
	jNull
)

// jval is one JSON value: b[start:end] is its raw text.
type jval struct {
	kind       jkind
	esc        bool // a string holding at least one backslash escape
	integer    bool // a number without fraction or exponent
	start, end int
}

// maxDepth bounds nesting: TUF metadata is at most six levels deep, and an
// attacker must not be able to exhaust the stack.
const maxDepth = 32

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, pos int) int {
	for pos < len(b) && isSpace(b[pos]) {
		pos++
	}
	return pos
}

func jsonErr(format string, args ...any) error {
	return errf(KindMalformed, "", "json: "+format, args...)
}

// parseDocument checks that b is exactly one valid JSON value (RFC 8259,
// UTF-8, no lone surrogates, nesting at most maxDepth) and returns it.
func parseDocument(b []byte) (jval, error) {
	v, pos, err := scan(b, 0, 0)
	if err != nil {
		return jval{}, err
	}
	if pos = skipSpace(b, pos); pos != len(b) {
		return jval{}, jsonErr("trailing data at offset %d", pos)
	}
	return v, nil
}

// scan validates the value that starts at b[pos:] (after white space) and
// returns it with the offset just past it.
func scan(b []byte, pos, depth int) (jval, int, error) {
	pos = skipSpace(b, pos)
	if pos >= len(b) {
		return jval{}, pos, jsonErr("unexpected end of input")
	}
	switch c := b[pos]; {
	case c == '{':
		return scanObject(b, pos, depth)
	case c == '[':
		return scanArray(b, pos, depth)
	case c == '"':
		return scanString(b, pos)
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, pos)
	case c == 't':
		return scanLiteral(b, pos, "true", jTrue)
	case c == 'f':
		return scanLiteral(b, pos, "false", jFalse)
	case c == 'n':
		return scanLiteral(b, pos, "null", jNull)
	default:
		return jval{}, pos, jsonErr("unexpected byte %q at offset %d", c, pos)
	}
}

func scanLiteral(b []byte, pos int, lit string, k jkind) (jval, int, error) {
	if len(b)-pos < len(lit) || string(b[pos:pos+len(lit)]) != lit {
		return jval{}, pos, jsonErr("bad literal at offset %d", pos)
	}
	return jval{kind: k, start: pos, end: pos + len(lit)}, pos + len(lit), nil
}

func scanNumber(b []byte, pos int) (jval, int, error) {
	start := pos
	integer := true
	if b[pos] == '-' {
		pos++
	}
	digits := func() int {
		n := 0
		for pos < len(b) && b[pos] >= '0' && b[pos] <= '9' {
			pos++
			n++
		}
		return n
	}
	if pos < len(b) && b[pos] == '0' {
		pos++
	} else if digits() == 0 {
		return jval{}, pos, jsonErr("bad number at offset %d", start)
	}
	if pos < len(b) && b[pos] == '.' {
		pos++
		integer = false
		if digits() == 0 {
			return jval{}, pos, jsonErr("bad number at offset %d", start)
		}
	}
	if pos < len(b) && (b[pos] == 'e' || b[pos] == 'E') {
		pos++
		integer = false
		if pos < len(b) && (b[pos] == '+' || b[pos] == '-') {
			pos++
		}
		if digits() == 0 {
			return jval{}, pos, jsonErr("bad number at offset %d", start)
		}
	}
	return jval{kind: jNumber, integer: integer, start: start, end: pos}, pos, nil
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// hex4 reads the four hex digits of a \u escape at b[pos:].
func hex4(b []byte, pos int) (rune, bool) {
	if len(b)-pos < 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		h := hexVal(b[pos+i])
		if h < 0 {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

func isHighSurrogate(r rune) bool { return r >= 0xd800 && r < 0xdc00 }
func isLowSurrogate(r rune) bool  { return r >= 0xdc00 && r < 0xe000 }

func scanString(b []byte, pos int) (jval, int, error) {
	start := pos
	pos++
	esc := false
	for pos < len(b) {
		c := b[pos]
		switch {
		case c == '"':
			return jval{kind: jString, esc: esc, start: start, end: pos + 1}, pos + 1, nil
		case c < 0x20:
			return jval{}, pos, jsonErr("control character in string at offset %d", pos)
		case c == '\\':
			esc = true
			if pos+1 >= len(b) {
				return jval{}, pos, jsonErr("unterminated escape at offset %d", pos)
			}
			switch b[pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				pos += 2
			case 'u':
				r, ok := hex4(b, pos+2)
				if !ok {
					return jval{}, pos, jsonErr("bad \\u escape at offset %d", pos)
				}
				pos += 6
				if isLowSurrogate(r) {
					return jval{}, pos, jsonErr("lone surrogate at offset %d", pos-6)
				}
				if isHighSurrogate(r) {
					if len(b)-pos < 6 || b[pos] != '\\' || b[pos+1] != 'u' {
						return jval{}, pos, jsonErr("lone surrogate at offset %d", pos-6)
					}
					r2, ok := hex4(b, pos+2)
					if !ok || !isLowSurrogate(r2) {
						return jval{}, pos, jsonErr("lone surrogate at offset %d", pos-6)
					}
					pos += 6
				}
			default:
				return jval{}, pos, jsonErr("bad escape at offset %d", pos)
			}
		case c < utf8.RuneSelf:
			pos++
		default:
			r, size := utf8.DecodeRune(b[pos:])
			if r == utf8.RuneError && size <= 1 {
				return jval{}, pos, jsonErr("invalid UTF-8 at offset %d", pos)
			}
			pos += size
		}
	}
	return jval{}, pos, jsonErr("unterminated string at offset %d", start)
}

func scanArray(b []byte, pos, depth int) (jval, int, error) {
	if depth >= maxDepth {
		return jval{}, pos, jsonErr("nested too deeply at offset %d", pos)
	}
	start := pos
	pos = skipSpace(b, pos+1)
	if pos < len(b) && b[pos] == ']' {
		return jval{kind: jArray, start: start, end: pos + 1}, pos + 1, nil
	}
	for {
		var err error
		if _, pos, err = scan(b, pos, depth+1); err != nil {
			return jval{}, pos, err
		}
		pos = skipSpace(b, pos)
		if pos >= len(b) {
			return jval{}, pos, jsonErr("unterminated array at offset %d", start)
		}
		switch b[pos] {
		case ',':
			pos++
		case ']':
			return jval{kind: jArray, start: start, end: pos + 1}, pos + 1, nil
		default:
			return jval{}, pos, jsonErr("expected , or ] at offset %d", pos)
		}
	}
}

func scanObject(b []byte, pos, depth int) (jval, int, error) {
	if depth >= maxDepth {
		return jval{}, pos, jsonErr("nested too deeply at offset %d", pos)
	}
	start := pos
	pos = skipSpace(b, pos+1)
	if pos < len(b) && b[pos] == '}' {
		return jval{kind: jObject, start: start, end: pos + 1}, pos + 1, nil
	}
	for {
		pos = skipSpace(b, pos)
		if pos >= len(b) || b[pos] != '"' {
			return jval{}, pos, jsonErr("expected member name at offset %d", pos)
		}
		var err error
		if _, pos, err = scanString(b, pos); err != nil {
			return jval{}, pos, err
		}
		pos = skipSpace(b, pos)
		if pos >= len(b) || b[pos] != ':' {
			return jval{}, pos, jsonErr("expected : at offset %d", pos)
		}
		if _, pos, err = scan(b, pos+1, depth+1); err != nil {
			return jval{}, pos, err
		}
		pos = skipSpace(b, pos)
		if pos >= len(b) {
			return jval{}, pos, jsonErr("unterminated object at offset %d", start)
		}
		switch b[pos] {
		case ',':
			pos++
		case '}':
			return jval{kind: jObject, start: start, end: pos + 1}, pos + 1, nil
		default:
			return jval{}, pos, jsonErr("expected , or } at offset %d", pos)
		}
	}
}

// iter walks the members of an object or the elements of an array that
// parseDocument has already validated.
type iter struct {
	b   []byte
	pos int
	end int
	obj bool
}

func (v jval) iter(b []byte) iter {
	return iter{b: b, pos: v.start + 1, end: v.end - 1, obj: v.kind == jObject}
}

// next returns the next member (key is zero for arrays). Because the
// document was validated, scanning cannot fail here.
func (it *iter) next() (key, val jval, ok bool) {
	it.pos = skipSpace(it.b, it.pos)
	if it.pos >= it.end {
		return jval{}, jval{}, false
	}
	if it.b[it.pos] == ',' {
		it.pos = skipSpace(it.b, it.pos+1)
	}
	if it.obj {
		key, it.pos = skipString(it.b, it.pos)
		it.pos = skipSpace(it.b, it.pos) + 1 // the colon
	}
	val, it.pos = skip(it.b, skipSpace(it.b, it.pos))
	return key, val, true
}

// skip returns the already validated value at b[pos] without validating it
// again: only strings are looked at byte by byte, to find their ends.
func skip(b []byte, pos int) (jval, int) {
	start := pos
	switch b[pos] {
	case '"':
		return skipString(b, pos)
	case '{', '[':
		kind := jObject
		if b[pos] == '[' {
			kind = jArray
		}
		depth := 0
		for {
			switch b[pos] {
			case '"':
				_, pos = skipString(b, pos)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return jval{kind: kind, start: start, end: pos + 1}, pos + 1
				}
			}
			pos++
		}
	case 't':
		return jval{kind: jTrue, start: pos, end: pos + 4}, pos + 4
	case 'f':
		return jval{kind: jFalse, start: pos, end: pos + 5}, pos + 5
	case 'n':
		return jval{kind: jNull, start: pos, end: pos + 4}, pos + 4
	default:
		integer := true
		for pos < len(b) {
			c := b[pos]
			if c == '.' || c == 'e' || c == 'E' {
				integer = false
			} else if !(c >= '0' && c <= '9' || c == '-' || c == '+') {
				break
			}
			pos++
		}
		return jval{kind: jNumber, integer: integer, start: start, end: pos}, pos
	}
}

// skipString finds the end of a validated string.
func skipString(b []byte, pos int) (jval, int) {
	start := pos
	esc := false
	for pos++; b[pos] != '"'; pos++ {
		if b[pos] == '\\' {
			esc = true
			pos++
		}
	}
	return jval{kind: jString, esc: esc, start: start, end: pos + 1}, pos + 1
}

// appendString appends the decoded content of the string v.
func appendString(dst, b []byte, v jval) []byte {
	s := b[v.start+1 : v.end-1]
	if !v.esc {
		return append(dst, s...)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i+2)
			if isHighSurrogate(r) {
				r2, _ := hex4(s, i+8)
				r = (r-0xd800)<<10 | (r2 - 0xdc00) + 0x10000
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// str returns the decoded string: in place when it has no escapes.
func str(b []byte, v jval) []byte {
	if !v.esc {
		return b[v.start+1 : v.end-1]
	}
	return appendString(nil, b, v)
}

// strIs reports whether the string v decodes to s, without allocating.
func strIs(b []byte, v jval, s string) bool {
	if v.kind != jString {
		return false
	}
	if !v.esc {
		return string(b[v.start+1:v.end-1]) == s
	}
	var buf [64]byte
	return string(appendString(buf[:0], b, v)) == s
}

// toInt returns the value of an integer literal that fits an int64.
func toInt(b []byte, v jval) (int64, bool) {
	if v.kind != jNumber || !v.integer {
		return 0, false
	}
	s := b[v.start:v.end]
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range s {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// member finds the member key of object v; the last one wins if repeated,
// as in the JSON readers of the repositories that sign TUF metadata.
func member(b []byte, v jval, key string) (jval, bool) {
	var found jval
	ok := false
	it := v.iter(b)
	for {
		k, val, more := it.next()
		if !more {
			return found, ok
		}
		if strIs(b, k, key) {
			found, ok = val, true
		}
	}
}

// members finds the members of object v named names in one pass, storing
// each in the jval dst points at in the same position (left as it is when
// absent); the last one wins if repeated, as in member. It is how the
// parsers pick the fields of an object they know.
func members(b []byte, v jval, names []string, dst ...*jval) {
	it := v.iter(b)
	for {
		k, val, ok := it.next()
		if !ok {
			return
		}
		for i, name := range names {
			if strIs(b, k, name) {
				*dst[i] = val
				break
			}
		}
	}
}

// count is the number of members or elements of an object or array.
func (v jval) count(b []byte) int {
	n := 0
	for it := v.iter(b); ; n++ {
		if _, _, ok := it.next(); !ok {
			return n
		}
	}
}

// canonicalShape reports whether b[v] is laid out as canonical JSON (no
// white space, members sorted by name, integers only), and whether any of
// its strings holds an escape. A signer may have spelt escapes either way:
// securesystemslib's canonical form writes control characters raw, which no
// JSON file can carry, while Foundries signs the escaped bytes it serves.
func canonicalShape(b []byte, v jval) (shape, escapes bool) {
	esc := false
	_, ok := canonicalAt(b, v.start, &esc)
	return ok, esc
}

func canonicalAt(b []byte, pos int, esc *bool) (int, bool) {
	switch c := b[pos]; c {
	case '{':
		pos++
		if b[pos] == '}' {
			return pos + 1, true
		}
		var prev []byte
		for {
			if b[pos] != '"' {
				return 0, false
			}
			k, end, err := scanString(b, pos)
			if err != nil || k.esc {
				return 0, false // escaped names need decoding to sort: the slow path
			}
			name := b[k.start+1 : k.end-1]
			if prev != nil && bytes.Compare(prev, name) >= 0 {
				return 0, false
			}
			prev = name
			if b[end] != ':' {
				return 0, false
			}
			var ok bool
			if pos, ok = canonicalAt(b, end+1, esc); !ok {
				return 0, false
			}
			switch b[pos] {
			case ',':
				pos++
			case '}':
				return pos + 1, true
			default:
				return 0, false
			}
		}
	case '[':
		pos++
		if b[pos] == ']' {
			return pos + 1, true
		}
		for {
			var ok bool
			if pos, ok = canonicalAt(b, pos, esc); !ok {
				return 0, false
			}
			switch b[pos] {
			case ',':
				pos++
			case ']':
				return pos + 1, true
			default:
				return 0, false
			}
		}
	case '"':
		v, end, err := scanString(b, pos)
		*esc = *esc || v.esc
		return end, err == nil
	case 't', 'f', 'n':
		v, end, err := scan(b, pos, 0)
		return end, err == nil && v.kind != jInvalid
	default:
		v, end, err := scanNumber(b, pos)
		if err != nil || !v.integer || string(b[v.start:v.end]) == "-0" {
			return 0, false
		}
		return end, true
	}
}

// canonicaliser writes the canonical JSON of a validated value into a
// buffer it keeps between calls. Canonical JSON is never longer than the
// text it comes from (white space goes, escapes shrink or stay), so the
// buffer never grows past the largest metadata the device reads.
type canonicaliser struct {
	out  []byte
	keys []byte    // decoded member names of the objects being sorted
	mem  []cmember // members of the objects being sorted, innermost last
}

type cmember struct {
	keyOff, keyEnd int
	val            jval
}

// canonical returns the canonical form of b[v]; the result is valid until
// the next call. Errors: KindMalformed for non-integer numbers,
// KindDuplicate for a member name given twice in one object.
func (c *canonicaliser) canonical(b []byte, v jval) ([]byte, error) {
	if n := v.end - v.start; cap(c.out) < n {
		c.out = make([]byte, 0, n)
	}
	c.out, c.keys, c.mem = c.out[:0], c.keys[:0], c.mem[:0]
	if err := c.emit(b, v); err != nil {
		return nil, err
	}
	return c.out, nil
}

func (c *canonicaliser) emit(b []byte, v jval) error {
	switch v.kind {
	case jString:
		c.out = appendCanonicalString(c.out, b, v)
	case jNumber:
		if !v.integer {
			return errf(KindMalformed, "", "json: canonical JSON has no non-integer numbers (offset %d)", v.start)
		}
		if s := b[v.start:v.end]; string(s) == "-0" {
			c.out = append(c.out, '0')
		} else {
			c.out = append(c.out, s...)
		}
	case jArray:
		c.out = append(c.out, '[')
		it := v.iter(b)
		for first := true; ; first = false {
			_, e, ok := it.next()
			if !ok {
				break
			}
			if !first {
				c.out = append(c.out, ',')
			}
			if err := c.emit(b, e); err != nil {
				return err
			}
		}
		c.out = append(c.out, ']')
	case jObject:
		base := len(c.mem)
		it := v.iter(b)
		for {
			k, val, ok := it.next()
			if !ok {
				break
			}
			off := len(c.keys)
			c.keys = appendString(c.keys, b, k)
			c.mem = append(c.mem, cmember{keyOff: off, keyEnd: len(c.keys), val: val})
		}
		ms := c.mem[base:]
		keys := c.keys
		slices.SortFunc(ms, func(x, y cmember) int {
			return bytes.Compare(keys[x.keyOff:x.keyEnd], keys[y.keyOff:y.keyEnd])
		})
		c.out = append(c.out, '{')
		for i := base; i < len(c.mem); i++ {
			m := c.mem[i]
			name := c.keys[m.keyOff:m.keyEnd]
			if i > base {
				p := c.mem[i-1]
				if bytes.Equal(c.keys[p.keyOff:p.keyEnd], name) {
					return errf(KindDuplicate, "", "json: member %q given twice", name)
				}
				c.out = append(c.out, ',')
			}
			c.out = appendEscaped(c.out, name)
			c.out = append(c.out, ':')
			if err := c.emit(b, m.val); err != nil {
				return err
			}
		}
		c.out = append(c.out, '}')
		c.mem = c.mem[:base]
	default:
		c.out = append(c.out, b[v.start:v.end]...)
	}
	return nil
}

func appendCanonicalString(dst, b []byte, v jval) []byte {
	if !v.esc {
		return append(dst, b[v.start:v.end]...)
	}
	var buf [128]byte
	return appendEscaped(dst, appendString(buf[:0], b, v))
}

// appendEscaped quotes s the canonical way: only '"' and '\' are escaped.
func appendEscaped(dst, s []byte) []byte {
	dst = append(dst, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}
