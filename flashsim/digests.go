package flashsim

import (
	"crypto/sha256"
	"hash/maphash"
	"sync"
	"unsafe"
)

// digests remembers the SHA-256 of ranges of parts, by content: a
// bootloader hashes its image at every boot, and a fleet's devices hold
// the same images, so a fleet pays for one hash per image instead of one
// per boot. A range's content is named by the stored values that hold it
// (cover), which are equal for equal subtrees, and by the range itself. An
// entry holds those values, so none of them is freed and reused under it.
type digests struct {
	mu      sync.Mutex
	entries map[uint64][]digest
	n       int
}

type digest struct {
	off, n int64
	cover  []unsafe.Pointer
	sum    [sha256.Size]byte
}

// maxDigests bounds the memo; when full it forgets everything (a miss
// only costs a hash).
const maxDigests = 256

func newDigests() *digests { return &digests{entries: map[uint64][]digest{}} }

func digestKey(off, n int64, cover []unsafe.Pointer) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var b [16]byte
	*(*[2]int64)(unsafe.Pointer(&b)) = [2]int64{off, n}
	h.Write(b[:])
	if len(cover) > 0 {
		h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&cover[0])), len(cover)*int(unsafe.Sizeof(cover[0]))))
	}
	return h.Sum64()
}

func (d *digests) lookup(key uint64, off, n int64, cover []unsafe.Pointer) ([sha256.Size]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.entries[key] {
		if e.off == off && e.n == n && slicesEqual(e.cover, cover) {
			return e.sum, true
		}
	}
	return [sha256.Size]byte{}, false
}

func (d *digests) add(key uint64, e digest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n >= maxDigests {
		clear(d.entries)
		d.n = 0
	}
	d.entries[key] = append(d.entries[key], e)
	d.n++
}

func slicesEqual(a, b []unsafe.Pointer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sum256 hashes [off, off+n) of c by reading it.
func sum256(c cells, off, n int64) [sha256.Size]byte {
	h := sha256.New()
	var buf [4096]byte
	for n > 0 {
		k := min(n, int64(len(buf)))
		c.read(buf[:k], off)
		h.Write(buf[:k])
		off, n = off+k, n-k
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func (c *flatCells) sum256(off, n int64) [sha256.Size]byte { return sha256.Sum256(c.b[off : off+n]) }

// sum256 looks the range's content up among the digests of this page size
// before hashing it.
func (t *sharedCells[C]) sum256(off, n int64) [sha256.Size]byte {
	cover := t.cover(off, n)
	key := digestKey(off, n, cover)
	d := t.shape.pages.digests
	if sum, ok := d.lookup(key, off, n, cover); ok {
		return sum
	}
	sum := sum256(t, off, n)
	d.add(key, digest{off: off, n: n, cover: cover, sum: sum})
	return sum
}

// cover lists the stored values that hold [off, off+n): the overlay's
// pages where they hide the tree, the tree's largest subtrees elsewhere.
func (t *sharedCells[C]) cover(off, n int64) []unsafe.Pointer {
	var out []unsafe.Pointer
	t.walk(off, n, func(off, n int64) bool {
		out = t.shape.top.cover(t.root, off, n, out)
		return true
	}, func(pg *page, _, _, _ int64) bool {
		out = append(out, unsafe.Pointer(pg))
		return true
	})
	return out
}
