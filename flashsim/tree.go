package flashsim

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"sync"
	"unsafe"
)

// A page tree holds a part's bytes as a radix tree of immutable stored
// values: pages at the bottom, and above them nodes that are fixed-size
// arrays of their children, stored by content as pages are. Equal subtrees
// are therefore one value process-wide: a run of erased pages is the one
// erased subtree of its height, an image every device holds is one
// subtree, and a part that differs from another in one page shares all but
// the path to that page. A change rebuilds the path from the pages it
// touches to the root (copy on write), so a value never changes under
// anyone who holds it, and the garbage collector frees whatever no root
// reaches any more. The tree's shape depends only on the part's size.

// fanout is the number of children of a node. A node of 16 children is 128
// bytes, and a tree over an 8 MiB part of 256-byte pages is 4 nodes deep:
// wider nodes cost more per node a part alone holds and more to hash on
// every change, narrower ones more nodes per path.
const fanout = 16

// maxDepth bounds the tree's height above the pages: 16^10 pages are a
// terabyte of one-byte pages, past any part.
const maxDepth = 10

// page is an immutable run of a part's bytes, stored by content: a *page
// stands for its bytes, and points at the first of them. The level that
// holds it knows its length (pageLevel.bytes), so a page is one noscan
// allocation of exactly its bytes: no header to pay for on every page of
// the fleet, and fewer objects for the collector and the store's weak
// pointers.
type page byte

// node is a stored node whose children are stored values of type C.
type node[C any] [fanout]*C

// A level stores the subtrees of one height, values of type H: pages at
// height 0, nodes above. Offsets are relative to the subtree and ranges lie
// within it. A change returns a new subtree.
type level[H any] interface {
	read(h *H, p []byte, off int64)
	isErased(h *H, off, n int64) bool
	write(h *H, off int64, p []byte) *H
	erase(h *H, off, n int64) *H
	// pageAt returns the i-th page under h.
	pageAt(h *H, i int64) *page
	// setPages returns h with the pages of ps in place; ps is sorted by
	// index, and first is the index of the first page under h.
	setPages(h *H, first int64, ps []overPage) *H
	// cover appends to out the stored values under h that together hold
	// [off, off+n), the largest ones that fit: with the range, they name
	// its content (digests.go).
	cover(h *H, off, n int64, out []unsafe.Pointer) []unsafe.Pointer
}

// seed hashes page contents. A random seed changes no result: hashes only
// find equal values.
var seed = maphash.MakeSeed()

// pageLevel is height 0: each value is one page.
type pageLevel struct {
	size  int64
	blank *page // the erased page
	ev    byte
	store *store[page]
	// digests remembers the SHA-256 of contents parts of this page size
	// hold (digests.go).
	digests *digests
}

// intern returns the stored page holding b, and whether it is new.
func (l *pageLevel) intern(b []byte) (*page, bool) {
	// maphash.Comparable on a string is the map's own hash, several times
	// faster on a page than maphash.Bytes.
	s := unsafe.String(unsafe.SliceData(b), len(b))
	return l.store.intern(maphash.Comparable(seed, s),
		func(p *page) bool { return l.bytes(p) == s },
		func() *page { return (*page)(&bytes.Clone(b)[0]) })
}

// bytes returns the contents of p, a page of this level.
func (l *pageLevel) bytes(p *page) string { return unsafe.String((*byte)(p), l.size) }

//lint:ignore U1000 used through the level[page] of the inner level above it (staticcheck misses uses through type parameters)
func (l *pageLevel) read(h *page, p []byte, off int64) { copy(p, l.bytes(h)[off:]) }

func (l *pageLevel) isErased(h *page, off, n int64) bool {
	return h == l.blank || l.bytes(h)[off:off+n] == l.bytes(l.blank)[off:off+n]
}

//lint:ignore U1000 used through the level[page] of the inner level above it (staticcheck misses uses through type parameters)
func (l *pageLevel) write(h *page, off int64, p []byte) *page {
	pg, _ := l.patch(h, off, p)
	return pg
}

//lint:ignore U1000 used through the level[page] of the inner level above it (staticcheck misses uses through type parameters)
func (l *pageLevel) erase(h *page, off, n int64) *page {
	if h == l.blank || n == l.size {
		return l.blank
	}
	return l.erasePart(h, off, n)
}

//lint:ignore U1000 used through the level[page] of the inner level above it (staticcheck misses uses through type parameters)
func (l *pageLevel) pageAt(h *page, i int64) *page { return h }

//lint:ignore U1000 used through the level[page] of the inner level above it (staticcheck misses uses through type parameters)
func (l *pageLevel) setPages(h *page, first int64, ps []overPage) *page { return ps[0].pg }

//lint:ignore U1000 used through the level[page] of the inner level above it (staticcheck misses uses through type parameters)
func (l *pageLevel) cover(h *page, _, _ int64, out []unsafe.Pointer) []unsafe.Pointer {
	return append(out, unsafe.Pointer(h))
}

// maxStackPage bounds the page size whose copy-on-write buffer lives on the
// stack; larger pages allocate a buffer per partial write.
const maxStackPage = 4096

// patch returns the page that is old with b written at o (copy on write),
// and whether it is new to the store.
func (l *pageLevel) patch(old *page, o int64, b []byte) (*page, bool) {
	if int64(len(b)) == l.size {
		return l.intern(b)
	}
	var nb []byte
	if l.size <= maxStackPage {
		var buf [maxStackPage]byte
		nb = buf[:l.size]
	} else {
		nb = make([]byte, l.size)
	}
	copy(nb, l.bytes(old))
	copy(nb[o:], b)
	return l.intern(nb)
}

// erasePart returns the page that is old with n bytes at o erased.
//
//lint:ignore U1000 used through the level[page] of the inner level above it (staticcheck misses uses through type parameters)
func (l *pageLevel) erasePart(old *page, o, n int64) *page {
	nb := []byte(l.bytes(old))
	fill(nb[o:o+n], l.ev)
	pg, _ := l.intern(nb)
	return pg
}

// innerLevel is a height above the pages: each value is a node whose
// children each cover span bytes, or pages pages.
type innerLevel[C any] struct {
	child level[C]
	span  int64
	pages int64
	blank *node[C] // the erased node: fanout erased children
	ev    byte
	store *store[node[C]]
}

func newInnerLevel[C any](child level[C], span, pages int64, blankChild *C, ev byte) *innerLevel[C] {
	l := &innerLevel[C]{child: child, span: span, pages: pages, ev: ev, store: newStore[node[C]]()}
	var kids node[C]
	for i := range kids {
		kids[i] = blankChild
	}
	l.blank = l.intern(&kids)
	return l
}

// intern returns the stored node with the children kids.
func (l *innerLevel[C]) intern(kids *node[C]) *node[C] {
	n, _ := l.store.intern(hashPointers(kids),
		func(n *node[C]) bool { return *n == *kids },
		func() *node[C] { n := *kids; return &n })
	return n
}

func (l *innerLevel[C]) read(h *node[C], p []byte, off int64) {
	if h == l.blank {
		fill(p, l.ev)
		return
	}
	for len(p) > 0 {
		i, o := off/l.span, off%l.span
		k := min(int64(len(p)), l.span-o)
		l.child.read(h[i], p[:k], o)
		p, off = p[k:], off+k
	}
}

func (l *innerLevel[C]) isErased(h *node[C], off, n int64) bool {
	if h == l.blank {
		return true
	}
	for n > 0 {
		i, o := off/l.span, off%l.span
		k := min(n, l.span-o)
		if !l.child.isErased(h[i], o, k) {
			return false
		}
		n, off = n-k, off+k
	}
	return true
}

func (l *innerLevel[C]) write(h *node[C], off int64, p []byte) *node[C] {
	kids := *h
	for len(p) > 0 {
		i, o := off/l.span, off%l.span
		k := min(int64(len(p)), l.span-o)
		kids[i] = l.child.write(kids[i], o, p[:k])
		p, off = p[k:], off+k
	}
	return l.intern(&kids)
}

func (l *innerLevel[C]) erase(h *node[C], off, n int64) *node[C] {
	if h == l.blank || off == 0 && n == fanout*l.span {
		return l.blank
	}
	kids := *h
	for n > 0 {
		i, o := off/l.span, off%l.span
		k := min(n, l.span-o)
		kids[i] = l.child.erase(kids[i], o, k)
		n, off = n-k, off+k
	}
	return l.intern(&kids)
}

func (l *innerLevel[C]) pageAt(h *node[C], i int64) *page {
	return l.child.pageAt(h[i/l.pages], i%l.pages)
}

func (l *innerLevel[C]) setPages(h *node[C], first int64, ps []overPage) *node[C] {
	kids := *h
	for len(ps) > 0 {
		i := (int64(ps[0].index) - first) / l.pages
		end := first + (i+1)*l.pages
		j := 1
		for j < len(ps) && int64(ps[j].index) < end {
			j++
		}
		kids[i] = l.child.setPages(kids[i], first+i*l.pages, ps[:j])
		ps = ps[j:]
	}
	return l.intern(&kids)
}

func (l *innerLevel[C]) cover(h *node[C], off, n int64, out []unsafe.Pointer) []unsafe.Pointer {
	if off == 0 && n == fanout*l.span {
		return append(out, unsafe.Pointer(h))
	}
	for n > 0 {
		i, o := off/l.span, off%l.span
		k := min(n, l.span-o)
		out = l.child.cover(h[i], o, k, out)
		n, off = n-k, off+k
	}
	return out
}

// treeShape is what every part of one size, page size and erase value
// shares: the levels of its tree, whose erased subtrees every erased region
// of every such part points at.
type treeShape[C any] struct {
	top   *innerLevel[C]
	pages *pageLevel
}

func (s *treeShape[C]) fresh() cells { return &sharedCells[C]{shape: s, root: s.top.blank} }

// Each height of tree is its own type, because a node's children have one
// type: nodeN is a node N levels above the pages.
type (
	node1 = node[page]
	node2 = node[node1]
	node3 = node[node2]
	node4 = node[node3]
	node5 = node[node4]
	node6 = node[node5]
	node7 = node[node6]
	node8 = node[node7]
	node9 = node[node8]
)

// freshPart makes erased parts of one shape.
type freshPart interface {
	fresh() cells
}

type shapeKey struct {
	pageSize int
	ev       byte
}

// shapes caches, per page size and erase value, the shapes of every
// height, for the life of the process.
var shapes sync.Map // shapeKey -> *[maxDepth]freshPart

// newPageTree returns a fully erased part of partSize bytes held in pages of
// pageSize bytes, with the fewest levels that cover it.
func newPageTree(partSize int64, pageSize int, ev byte) cells {
	if partSize/int64(pageSize) > 1<<32 {
		panic(fmt.Sprintf("flashsim: a part of %d bytes in %d-byte pages has too many pages", partSize, pageSize))
	}
	depth := 1
	for span := int64(pageSize) * fanout; span < partSize; span *= fanout {
		depth++
	}
	if depth > maxDepth {
		panic(fmt.Sprintf("flashsim: a part of %d bytes in %d-byte pages is too large for a page tree", partSize, pageSize))
	}
	k := shapeKey{pageSize, ev}
	s, ok := shapes.Load(k)
	if !ok {
		s, _ = shapes.LoadOrStore(k, buildShapes(int64(pageSize), ev))
	}
	return s.(*[maxDepth]freshPart)[depth-1].fresh()
}

// buildShapes makes the levels of every height for pages of size bytes.
// Spans past what any part needs may overflow; they are never used.
func buildShapes(size int64, ev byte) *[maxDepth]freshPart {
	l0 := &pageLevel{size: size, ev: ev, store: newStore[page](), digests: newDigests()}
	l0.blank, _ = l0.intern(erasedBytes(size, ev))
	l1 := newInnerLevel(l0, size, 1, l0.blank, ev)
	l2 := newInnerLevel(l1, fanout*l1.span, fanout*l1.pages, l1.blank, ev)
	l3 := newInnerLevel(l2, fanout*l2.span, fanout*l2.pages, l2.blank, ev)
	l4 := newInnerLevel(l3, fanout*l3.span, fanout*l3.pages, l3.blank, ev)
	l5 := newInnerLevel(l4, fanout*l4.span, fanout*l4.pages, l4.blank, ev)
	l6 := newInnerLevel(l5, fanout*l5.span, fanout*l5.pages, l5.blank, ev)
	l7 := newInnerLevel(l6, fanout*l6.span, fanout*l6.pages, l6.blank, ev)
	l8 := newInnerLevel(l7, fanout*l7.span, fanout*l7.pages, l7.blank, ev)
	l9 := newInnerLevel(l8, fanout*l8.span, fanout*l8.pages, l8.blank, ev)
	l10 := newInnerLevel(l9, fanout*l9.span, fanout*l9.pages, l9.blank, ev)
	return &[maxDepth]freshPart{
		&treeShape[page]{l1, l0}, &treeShape[node1]{l2, l0}, &treeShape[node2]{l3, l0},
		&treeShape[node3]{l4, l0}, &treeShape[node4]{l5, l0}, &treeShape[node5]{l6, l0},
		&treeShape[node6]{l7, l0}, &treeShape[node7]{l8, l0}, &treeShape[node8]{l9, l0},
		&treeShape[node9]{l10, l0},
	}
}

func erasedBytes(n int64, ev byte) []byte {
	b := make([]byte, n)
	fill(b, ev)
	return b
}

// fill sets every byte of p to v.
func fill(p []byte, v byte) {
	if len(p) == 0 {
		return
	}
	// Doubling copies are memmoves: several times faster than a byte loop
	// on the erased pages a read spends most of its time on.
	p[0] = v
	for n := 1; n < len(p); n *= 2 {
		copy(p[n:], p[:n])
	}
}
