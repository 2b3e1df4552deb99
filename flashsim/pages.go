package flashsim

import (
	"strings"
	"sync"
	"unique"
	"unsafe"
)

// cells holds the bytes of a part. The Device enforces every rule of the
// part on top of it; a cells implementation only stores. Offsets and lengths
// are already checked against the part's size when these are called.
type cells interface {
	read(p []byte, off int64)
	// isErased reports whether every byte of [off, off+n) holds the erase
	// value the cells were made with.
	isErased(off, n int64) bool
	write(off int64, p []byte)
	// erase sets [off, off+n) to the erase value; off and n are multiples of
	// the page size because sectors are.
	erase(off, n int64)
	clone() cells
}

// DefaultPageSize is the sharing granularity used when Options.PageSize is 0.
// It is the smallest common NOR sector, so a small trailer write into a
// 128 KiB sector copies 4 KiB, not 128 KiB.
const DefaultPageSize = 4096

// maxStackPage bounds the page size whose copy-on-write buffer lives on the
// stack; larger pages allocate a buffer per write.
const maxStackPage = 4096

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

// page is an immutable, content-addressed run of bytes. unique interns it
// process-wide: equal contents share one copy, the handle compares in O(1),
// and the garbage collector drops a page once no device holds its handle.
type page = unique.Handle[string]

// intern returns the page holding b. unique.Make copies the string when it
// inserts a new value, so it may view b without copying it first: a hit (the
// common case across a fleet) then allocates nothing.
func intern(b []byte) page {
	return unique.Make(unsafe.String(unsafe.SliceData(b), len(b)))
}

type erasedKey struct {
	size int
	val  byte
}

// erasedPages caches the one erased page of each size and erase value; it is
// what a fresh part and every erase point at.
var erasedPages sync.Map // erasedKey -> page

func erasedPage(size int, val byte) page {
	k := erasedKey{size, val}
	if p, ok := erasedPages.Load(k); ok {
		return p.(page)
	}
	p, _ := erasedPages.LoadOrStore(k, unique.Make(strings.Repeat(string([]byte{val}), size)))
	return p.(page)
}

// pageTable is the shared representation: a part is a table of page handles.
// Copying the table copies the part.
type pageTable struct {
	size   int64 // page size
	erased page
	pages  []page
}

func newPageTable(partSize int64, pageSize int, ev byte) *pageTable {
	t := &pageTable{size: int64(pageSize), erased: erasedPage(pageSize, ev)}
	t.pages = make([]page, partSize/t.size)
	for i := range t.pages {
		t.pages[i] = t.erased
	}
	return t
}

func (t *pageTable) read(p []byte, off int64) {
	for len(p) > 0 {
		i, o := off/t.size, off%t.size
		n := copy(p, t.pages[i].Value()[o:])
		p = p[n:]
		off += int64(n)
	}
}

func (t *pageTable) isErased(off, n int64) bool {
	es := t.erased.Value()
	for n > 0 {
		i, o := off/t.size, off%t.size
		k := min(n, t.size-o)
		if h := t.pages[i]; h != t.erased && h.Value()[o:o+k] != es[:k] {
			return false
		}
		n -= k
		off += k
	}
	return true
}

func (t *pageTable) write(off int64, p []byte) {
	for len(p) > 0 {
		i, o := off/t.size, off%t.size
		k := min(int64(len(p)), t.size-o)
		if k == t.size {
			t.pages[i] = intern(p[:k])
		} else {
			t.pages[i] = t.patch(t.pages[i], o, p[:k])
		}
		p = p[k:]
		off += k
	}
}

// patch returns the page that is old with b written at o (copy on write).
func (t *pageTable) patch(old page, o int64, b []byte) page {
	if t.size <= maxStackPage {
		var buf [maxStackPage]byte
		nb := buf[:t.size]
		copy(nb, old.Value())
		copy(nb[o:], b)
		return intern(nb)
	}
	nb := []byte(old.Value())
	copy(nb[o:], b)
	return intern(nb)
}

func (t *pageTable) erase(off, n int64) {
	for i := off / t.size; i < (off+n)/t.size; i++ {
		t.pages[i] = t.erased
	}
}

func (t *pageTable) clone() cells {
	c := *t
	c.pages = append([]page(nil), t.pages...)
	return &c
}

// flatCells is the plain representation: one private byte slice per part.
// It is the reference the shared page table is checked against
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

func (c *flatCells) erase(off, n int64) {
	s := c.b[off : off+n]
	for i := range s {
		s[i] = c.ev
	}
}

func (c *flatCells) clone() cells {
	return &flatCells{b: append([]byte(nil), c.b...), ev: c.ev}
}
