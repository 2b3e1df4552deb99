package flashsim

import "encoding/binary"

// Erase counts are stored as cells too: a little-endian uint32 per sector,
// 0 the erased value. Shared, they are a page tree of wearChunk-byte chunks,
// so every device that went through the same erases holds the same chunks
// (and the same root), and a device that never erased holds only the
// shared all-zero tree. With NoSharing they are a private slice, the
// reference for the shared counts as for the shared contents.

// wearChunk is the size of a chunk of shared erase counts: 16 sectors'.
// Small, because a device whose wear differs from the fleet's owns the
// chunks where it does.
const wearChunk = 64

const countSize = 4 // bytes per sector's erase count

func newWear(sectors int, sharing bool) cells {
	n := int64(sectors) * countSize
	if !sharing {
		return newFlatCells(n, 0)
	}
	return newPageTree(n, wearChunk, 0)
}

// wearRun is the erase counts of a run of consecutive sectors, as stored.
type wearRun []byte

// readWear returns the erase counts of n sectors from first on.
func readWear(w cells, first, n int) wearRun {
	r := make(wearRun, n*countSize)
	w.read(r, int64(first)*countSize)
	return r
}

// writeWear stores r as the erase counts of the sectors from first on.
func writeWear(w cells, first int, r wearRun) {
	if len(r) > 0 {
		w.write(int64(first)*countSize, r)
	}
}

func (r wearRun) count(i int) uint32 { return binary.LittleEndian.Uint32(r[i*countSize:]) }

func (r wearRun) add(i int) { binary.LittleEndian.PutUint32(r[i*countSize:], r.count(i)+1) }
