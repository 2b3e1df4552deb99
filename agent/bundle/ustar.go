package bundle

import (
	"fmt"
	"strconv"
)

// The USTAR header (POSIX.1-1988, pax's "ustar" interchange format): one
// 512-byte block before each member, whose data follows padded to a whole
// block; two zero blocks end the archive. Only the fields below matter to a
// bundle; mode, owner, times and device numbers are ignored on reading.
const (
	blockSize = 512

	offName     = 0   // name[100]
	offSize     = 124 // size[12], octal
	offChecksum = 148 // chksum[8], octal
	offTypeflag = 156
	offMagic    = 257 // magic[6] and version[2]
	offPrefix   = 345 // prefix[155]
	lenName     = 100
	lenSize     = 12
	lenChecksum = 8
	lenPrefix   = 155

	typeRegular    = '0'
	typeRegularOld = 0 // pre-POSIX regular file
	typeDirectory  = '5'
)

// The magic and version of POSIX USTAR, and the one GNU tar writes by
// default ("ustar  \x00"), whose fields for short names and small files are
// the same.
var (
	magicUSTAR = "ustar\x0000"
	magicGNU   = "ustar  \x00"
)

// header is what a bundle reads from a USTAR header block.
type header struct {
	name string
	size int64
	dir  bool
}

// parseHeader reads one header block. Errors: ErrMalformed.
func parseHeader(b *[blockSize]byte, at int64) (header, *Error) {
	where := "header at offset " + strconv.FormatInt(at, 10)
	sum, ok := parseOctal(b[offChecksum : offChecksum+lenChecksum])
	if !ok {
		return header{}, refuse(ErrMalformed, "", where+": checksum field is not an octal number")
	}
	// The checksum is the sum of the header's bytes with the checksum
	// field read as spaces; some historic writers summed signed bytes.
	var unsigned, signed int64
	for i, c := range b {
		if i >= offChecksum && i < offChecksum+lenChecksum {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	if sum != unsigned && sum != signed {
		return header{}, refuse(ErrMalformed, "", where+": header checksum does not match")
	}
	magic := string(b[offMagic : offMagic+8])
	if magic != magicUSTAR && magic != magicGNU {
		return header{}, refuse(ErrMalformed, "", where+": not a USTAR header (write the archive with tar --format=ustar)")
	}
	name := cString(b[offName : offName+lenName])
	if magic == magicUSTAR {
		// GNU's format keeps times, not a prefix, in these bytes.
		if prefix := cString(b[offPrefix : offPrefix+lenPrefix]); prefix != "" {
			name = prefix + "/" + name
		}
	}
	h := header{name: name}
	switch b[offTypeflag] {
	case typeRegular, typeRegularOld:
	case typeDirectory:
		h.dir = true
	default:
		return header{}, refuse(ErrMalformed, quoteName(name), fmt.Sprintf("member type %q: a bundle holds regular files only (no links, devices or pax/GNU extension headers)", b[offTypeflag]))
	}
	if h.size, ok = parseOctal(b[offSize : offSize+lenSize]); !ok {
		return header{}, refuse(ErrMalformed, quoteName(name), "size field is not an octal number")
	}
	if h.dir && h.size != 0 {
		return header{}, refuse(ErrMalformed, quoteName(name), "a directory with data")
	}
	return h, nil
}

// parseOctal reads a numeric field: optional leading spaces, octal digits,
// then NULs or spaces to the end. An empty field is 0. The fields read here
// hold at most 11 digits, so the value fits an int64.
func parseOctal(f []byte) (int64, bool) {
	i := 0
	for i < len(f) && f[i] == ' ' {
		i++
	}
	var v int64
	for ; i < len(f) && f[i] >= '0' && f[i] <= '7'; i++ {
		v = v<<3 | int64(f[i]-'0')
	}
	for ; i < len(f); i++ {
		if f[i] != 0 && f[i] != ' ' {
			return 0, false
		}
	}
	return v, true
}

// cString is the text of a NUL-padded field.
func cString(f []byte) string {
	for i, c := range f {
		if c == 0 {
			return string(f[:i])
		}
	}
	return string(f)
}

func isZeroBlock(b *[blockSize]byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
