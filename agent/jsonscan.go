package agent

// A minimal reader of raw JSON values, with coreJSON's search semantics as
// aktualizr-nano uses them: a document is validated once, then values are
// found by key path ("custom/version"), keys compared as raw bytes (escapes
// not decoded), the first matching member winning, and a found string
// returned without its quotes but with its escapes as written. It works in
// place and allocates nothing.

import "encoding/json"

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

// skipJSONValue returns the index just past the value starting at b[i],
// which must be valid JSON.
func skipJSONValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipJSONValue(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && !isJSONSpace(b[i]) {
			i++
		}
		return i
	}
}

// jsonMembers calls fn with the raw key (between its quotes) and raw value
// of each member of the object v, or with a nil key for each element of the
// array v, until fn returns false. Anything else has no members.
func jsonMembers(v []byte, fn func(key, val []byte) bool) {
	i := skipJSONSpace(v, 0)
	if i >= len(v) || (v[i] != '{' && v[i] != '[') {
		return
	}
	object := v[i] == '{'
	i++
	for {
		i = skipJSONSpace(v, i)
		if i >= len(v) || v[i] == '}' || v[i] == ']' {
			return
		}
		var key []byte
		if object {
			end := skipJSONValue(v, i)
			key = v[i+1 : end-1]
			i = skipJSONSpace(v, end) + 1 // past ':'
			i = skipJSONSpace(v, i)
		}
		end := skipJSONValue(v, i)
		if !fn(key, v[i:end]) {
			return
		}
		i = skipJSONSpace(v, end)
		if i < len(v) && v[i] == ',' {
			i++
		}
	}
}

// jsonLookup finds the member at path (one key per element) in v and
// returns its raw value.
func jsonLookup(v []byte, path ...string) ([]byte, bool) {
	for _, k := range path {
		var found []byte
		jsonMembers(v, func(key, val []byte) bool {
			if key != nil && string(key) == k {
				found = val
				return false
			}
			return true
		})
		if found == nil {
			return nil, false
		}
		v = found
	}
	return v, true
}

// jsonIndex returns the i-th element of the array v ("[i]" in coreJSON).
func jsonIndex(v []byte, i int) ([]byte, bool) {
	var found []byte
	n := 0
	isArray := false
	if j := skipJSONSpace(v, 0); j < len(v) && v[j] == '[' {
		isArray = true
	}
	if !isArray {
		return nil, false
	}
	jsonMembers(v, func(_, val []byte) bool {
		if n == i {
			found = val
			return false
		}
		n++
		return true
	})
	return found, found != nil
}

// jsonText is what coreJSON hands back for a value: a string's characters
// between the quotes (escapes as written), anything else as written.
func jsonText(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// validJSON is coreJSON's JSON_Validate (close enough: both follow RFC 8259).
func validJSON(b []byte) bool { return json.Valid(b) }

// scanUint is sscanf("%u"): leading white space, an optional sign, then
// decimal digits; a negative value wraps, an overflowing one saturates as
// strtoul does. ok is false when no digit follows.
func scanUint(b []byte) (uint32, bool) {
	v, ok := scanInt64(b)
	if !ok {
		return 0, false
	}
	switch {
	case v > 0xffffffff:
		return 0xffffffff, true
	case v < -0xffffffff:
		return 0xffffffff, true
	}
	return uint32(v), true
}

// scanInt is sscanf("%d") into a 32-bit int: ok is false when no digit
// follows the white space and sign.
func scanInt(b []byte) (int, bool) {
	v, ok := scanInt64(b)
	if !ok {
		return 0, false
	}
	return int(int32(v)), true
}

func scanInt64(b []byte) (int64, bool) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] >= '\t' && b[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var v int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if v < 1<<40 {
			v = v*10 + int64(b[i]-'0')
		}
	}
	if i == start {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}
