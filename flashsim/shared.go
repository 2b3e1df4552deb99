package flashsim

import "sync"

// sharedCells is the shared representation of a part (it implements cells):
// a page tree (tree.go), and beside it an overlay of a few pages that
// differ from the tree.
//
// The overlay does two things. Small programs land in it, and reach the
// tree together, in one rebuild of the paths they share, when it fills up:
// an agent programming 256-byte pages rebuilds the path from a page to the
// root once per maxOverlay pages, not once per page. And it keeps the pages
// only this part has. A program whose page was new to the store (a device's
// identity, its own keys) marks it own, and a merge leaves own pages in the
// overlay while there are at most maxOwn of them; pages the fleet already
// holds go to the tree. A fleet of devices that went through the same
// update and differ only in their identities then holds one tree, shared,
// and each device an overlay of its own pages: no private path of nodes.
type sharedCells[C any] struct {
	shape *treeShape[C]
	root  *node[C]
	over  []overPage // sorted by index; each page here hides the tree's
}

// overPage is a page of the overlay.
type overPage struct {
	pg    *page
	index uint32 // of the page in the part
	own   bool   // new to the store when written: likely no other part has it
}

const (
	// maxOverlay is the most pages the overlay holds between two merges,
	// and the largest program that goes through it (longer ones go to the
	// tree directly).
	maxOverlay = 64
	// maxOwn is the most own pages a merge leaves in the overlay.
	maxOwn = 4
)

func (t *sharedCells[C]) pageSize() int64 { return t.shape.pages.size }

// find returns the position in the overlay of the first page at index i or
// after it.
func (t *sharedCells[C]) find(i int64) int {
	lo, hi := 0, len(t.over)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if int64(t.over[m].index) < i {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// walk visits [off, off+n) in order as the part holds it: tree for each
// run the tree holds, page for each overlay page in the range, with o the
// offset in the page and m the bytes of it in the range. It stops, and
// reports false, when a visit does.
func (t *sharedCells[C]) walk(off, n int64, tree func(off, n int64) bool, page func(pg *page, o, off, m int64) bool) bool {
	size := t.pageSize()
	for k := t.find(off / size); k < len(t.over) && n > 0; k++ {
		e := t.over[k]
		start := int64(e.index) * size
		if start >= off+n {
			break
		}
		if start > off {
			if !tree(off, start-off) {
				return false
			}
			n, off = n-(start-off), start
		}
		m := min(n, start+size-off)
		if !page(e.pg, off-start, off, m) {
			return false
		}
		n, off = n-m, off+m
	}
	return n == 0 || tree(off, n)
}

func (t *sharedCells[C]) read(p []byte, off int64) {
	base := off
	t.walk(off, int64(len(p)), func(off, n int64) bool {
		t.shape.top.read(t.root, p[off-base:off-base+n], off)
		return true
	}, func(pg *page, o, off, m int64) bool {
		copy(p[off-base:off-base+m], t.shape.pages.bytes(pg)[o:])
		return true
	})
}

func (t *sharedCells[C]) isErased(off, n int64) bool {
	return t.walk(off, n, func(off, n int64) bool {
		return t.shape.top.isErased(t.root, off, n)
	}, func(pg *page, o, _, m int64) bool {
		return t.shape.pages.isErased(pg, o, m)
	})
}

func (t *sharedCells[C]) write(off int64, p []byte) { t.writeFrom(off, p, -1) }

// writeFrom is write for bytes that were read at src (src < 0: nowhere
// known). A whole page of p that still holds what the page at the matching
// place after src holds is that page: the copy a bootloader makes between
// slots stores nothing new and looks nothing up by content.
func (t *sharedCells[C]) writeFrom(off int64, p []byte, src int64) {
	n := int64(len(p))
	if n == 0 {
		return
	}
	size, pages := t.pageSize(), t.shape.pages
	first, last := off/size, (off+n-1)/size
	if last-first >= maxOverlay {
		t.settle(first, last)
		t.root = t.shape.top.write(t.root, off, p)
		return
	}
	origin := off
	for i := first; i <= last; i++ {
		o := off - i*size
		k := min(int64(len(p)), size-o)
		var pg *page
		var fresh bool
		if k == size {
			if from := src + (off - origin); src >= 0 && from%size == 0 {
				if c := t.pageAt(from / size); pages.bytes(c) == string(p[:k]) {
					pg = c
				}
			}
			if pg == nil {
				pg, fresh = pages.intern(p[:k])
			}
		} else {
			pg, fresh = pages.patch(t.pageAt(i), o, p[:k])
		}
		t.put(i, pg, fresh)
		p, off = p[k:], off+k
	}
	if len(t.over) > maxOverlay {
		t.merge()
	}
}

func (t *sharedCells[C]) erase(off, n int64) {
	if n == 0 {
		return
	}
	size := t.pageSize()
	first, last := off/size, (off+n-1)/size
	// A page erased in part goes to the tree first, which erases the part;
	// a page erased whole leaves the overlay.
	if off%size != 0 {
		t.settle(first, first)
	}
	if (off+n)%size != 0 {
		t.settle(last, last)
	}
	t.drop(first, last)
	t.root = t.shape.top.erase(t.root, off, n)
}

// pageAt returns the part's i-th page.
func (t *sharedCells[C]) pageAt(i int64) *page {
	if k := t.find(i); k < len(t.over) && int64(t.over[k].index) == i {
		return t.over[k].pg
	}
	return t.shape.top.pageAt(t.root, i)
}

// put sets the overlay's page at index i.
func (t *sharedCells[C]) put(i int64, pg *page, own bool) {
	e := overPage{pg: pg, index: uint32(i), own: own}
	k := t.find(i)
	if k < len(t.over) && int64(t.over[k].index) == i {
		t.over[k] = e
		return
	}
	if len(t.over) == cap(t.over) {
		// The overlay usually fills to maxOverlay+1 before a merge trims
		// it (a program of several pages may take it further).
		grown := overlays.Get().(*[]overPage)
		if cap(*grown) < max(maxOverlay+1, 2*len(t.over)) {
			*grown = make([]overPage, 0, max(maxOverlay+1, 2*len(t.over)))
		}
		t.release(append((*grown)[:0], t.over...))
	}
	t.over = append(t.over, overPage{})
	copy(t.over[k+1:], t.over[k:])
	t.over[k] = e
}

// settle moves the overlay's pages from index first to last into the tree.
func (t *sharedCells[C]) settle(first, last int64) {
	k, j := t.span(first, last)
	if k == j {
		return
	}
	t.root = t.shape.top.setPages(t.root, 0, t.over[k:j])
	t.cut(k, j)
}

// drop removes the overlay's pages from index first to last.
func (t *sharedCells[C]) drop(first, last int64) {
	if k, j := t.span(first, last); k < j {
		t.cut(k, j)
	}
}

// cut removes over[k:j]; what stays is copied to a slice of its own length.
func (t *sharedCells[C]) cut(k, j int) {
	var kept []overPage
	if rest := len(t.over) - (j - k); rest > 0 {
		kept = append(append(make([]overPage, 0, rest), t.over[:k]...), t.over[j:]...)
	}
	t.release(kept)
}

// span returns the positions in the overlay of its pages from index first
// to last: over[k:j].
func (t *sharedCells[C]) span(first, last int64) (k, j int) {
	k = t.find(first)
	j = k
	for j < len(t.over) && int64(t.over[j].index) <= last {
		j++
	}
	return k, j
}

// merge moves the overlay's pages into the tree in one rebuild, but for
// the own ones while there are at most maxOwn. What stays is copied to a
// slice of its own length: a parked part keeps no spare capacity.
func (t *sharedCells[C]) merge() {
	var kept []overPage
	own := 0
	for _, e := range t.over {
		if e.own {
			own++
		}
	}
	moved := t.over
	if own > 0 && own <= maxOwn {
		kept = make([]overPage, 0, own)
		moved = moved[:0]
		for _, e := range t.over {
			if e.own {
				kept = append(kept, e)
			} else {
				moved = append(moved, e)
			}
		}
	}
	if len(moved) > 0 {
		t.root = t.shape.top.setPages(t.root, 0, moved)
	}
	t.release(kept)
}

// overlays recycles the overlays' buffers: a part fills one as it is
// programmed and gives it back at the merge, so that a fleet programming
// its parts allocates no overlay per merge, and a parked part holds no
// spare capacity.
var overlays = sync.Pool{New: func() any { return new([]overPage) }}

// release makes over the overlay and recycles the buffer it replaces,
// when it is a full-size one.
func (t *sharedCells[C]) release(over []overPage) {
	if cap(t.over) > maxOverlay {
		old := t.over[:0]
		overlays.Put(&old)
	}
	t.over = over
}

func (t *sharedCells[C]) clone() cells {
	c := *t
	if t.over != nil {
		c.over = append([]overPage(nil), t.over...)
	}
	return &c
}
