package loadgen

import (
	"errors"
	"fmt"
	"strings"
)

// ErrContentRange reports a Content-Range header that is not a satisfied
// byte range "bytes first-last/complete" (RFC 9110 §14.4) with
// first <= last < complete.
var ErrContentRange = errors.New("bad Content-Range")

// ContentRange is a parsed "bytes first-last/complete" header. Complete is
// -1 when the server sent "*" (length unknown).
type ContentRange struct {
	First, Last, Complete int64
}

// maxDigits keeps every parsed number below 10^18, far from int64 overflow
// and far above any firmware image.
const maxDigits = 18

// ParseContentRange parses the Content-Range of a 206 response. The
// unsatisfied form "bytes */complete" (sent with 416) is refused: a ranged
// read that succeeds always names the bytes it carries. Errors wrap
// ErrContentRange.
func ParseContentRange(s string) (ContentRange, error) {
	bad := func(why string) (ContentRange, error) {
		return ContentRange{}, fmt.Errorf("%w %q: %s", ErrContentRange, truncate(s, 60), why)
	}
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return bad(`want unit "bytes "`)
	}
	span, complete, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no '/'")
	}
	firstS, lastS, ok := strings.Cut(span, "-")
	if !ok {
		return bad("no first-last range")
	}
	var cr ContentRange
	var err error
	if cr.First, err = digits(firstS); err != nil {
		return bad("first byte: " + err.Error())
	}
	if cr.Last, err = digits(lastS); err != nil {
		return bad("last byte: " + err.Error())
	}
	if cr.Last < cr.First {
		return bad("last byte before first")
	}
	if complete == "*" {
		cr.Complete = -1
		return cr, nil
	}
	if cr.Complete, err = digits(complete); err != nil {
		return bad("complete length: " + err.Error())
	}
	if cr.Last >= cr.Complete {
		return bad("range ends past the complete length")
	}
	return cr, nil
}

// digits parses a non-empty run of ASCII digits; unlike strconv it refuses
// signs, which the grammar does not allow.
func digits(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	if len(s) > maxDigits {
		return 0, errors.New("too many digits")
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
		v = v*10 + int64(c-'0')
	}
	return v, nil
}
