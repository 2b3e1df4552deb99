package flashsim

// cells holds the bytes of a part. The Device enforces every rule of the
// part on top of it; a cells implementation only stores. Offsets and lengths
// are already checked against the part's size when these are called.
type cells interface {
	read(p []byte, off int64)
	// isErased reports whether every byte of [off, off+n) holds the erase
	// value the cells were made with.
	isErased(off, n int64) bool
	write(off int64, p []byte)
	// writeFrom is write of bytes read at src: the cells may reuse what
	// holds them there.
	writeFrom(off int64, p []byte, src int64)
	// erase sets [off, off+n) to the erase value; off and n are multiples of
	// the page size because sectors are.
	erase(off, n int64)
	clone() cells
	// sum256 is the SHA-256 of [off, off+n).
	sum256(off, n int64) [32]byte
}

// DefaultPageSize is the sharing granularity used when Options.PageSize is 0.
// It is the program page of common serial NOR parts, so an agent's 256-byte
// programs replace whole pages and a device's own data (identity, trailers,
// state) costs little besides what the fleet shares: on an RT1060 fleet after
// one update, 1.3 KB of heap per device against 5.1 KB with 4 KiB pages
// (BenchmarkRT1060Footprint).
const DefaultPageSize = 256

// pageSizeFor picks the page size for g: the largest divisor of every sector
// size that does not exceed limit and is a whole number of write units, so
// that pages never straddle a sector (an erase replaces whole pages) nor a
// write unit. It is never below the write size.
func pageSizeFor(g *Geometry, limit int) int {
	d := 0
	for _, r := range g.Regions {
		d = gcd(d, r.Size) // a multiple of the write size, as every sector is
	}
	ws := g.WriteSize
	if d <= limit {
		return d
	}
	for p := limit - limit%ws; p > ws; p -= ws {
		if d%p == 0 {
			return p
		}
	}
	return ws
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// flatCells is the plain representation: one private byte slice per part.
// It is the reference the shared page tree is checked against
// (Options.NoSharing).
type flatCells struct {
	b  []byte
	ev byte
}

func newFlatCells(partSize int64, ev byte) *flatCells {
	c := &flatCells{b: make([]byte, partSize), ev: ev}
	c.erase(0, partSize)
	return c
}

func (c *flatCells) read(p []byte, off int64) { copy(p, c.b[off:]) }

func (c *flatCells) isErased(off, n int64) bool {
	ev := c.ev
	for _, v := range c.b[off : off+n] {
		if v != ev {
			return false
		}
	}
	return true
}

func (c *flatCells) write(off int64, p []byte) { copy(c.b[off:], p) }

func (c *flatCells) writeFrom(off int64, p []byte, _ int64) { c.write(off, p) }

func (c *flatCells) erase(off, n int64) {
	s := c.b[off : off+n]
	for i := range s {
		s[i] = c.ev
	}
}

func (c *flatCells) clone() cells {
	return &flatCells{b: append([]byte(nil), c.b...), ev: c.ev}
}
