package mcuboot

import "encoding/binary"

// This file holds what the swap strategies share (swap_scratch.go,
// swap_move.go, swap_offset.go): the record a swap writes to a trailer, the
// end of a swap, and the geometry of the sector-by-sector swaps.

// swapRecord is what a trailer records about a swap in progress: what the
// swap strategies write with swapStatusInit and resume from.
type swapRecord struct {
	typ      SwapType
	swapSize uint32
	// tlvSizes is swap-offset's extra cell: the unprotected TLV area sizes
	// of the images, (secondary << 16) | primary. Unused by other layouts.
	tlvSizes uint32
	gen      uint32
}

// swapStatusInit initialises a trailer for a swap (swap_status_init,
// reference §3.4): swap_info, image_ok for a permanent swap, swap_size,
// swap-offset's TLV sizes, fleetsim's generation, and the magic last, so a
// half-initialised trailer never has a good magic. The generation is
// written after swap_info and swap_size because its seal covers them
// (Trailer.WriteGeneration).
func swapStatusInit(t *Trailer, rec swapRecord) error {
	if err := t.WriteSwapInfo(rec.typ, 0); err != nil {
		return err
	}
	if rec.typ == SwapPerm {
		if err := t.WriteImageOK(); err != nil {
			return err
		}
	}
	if err := t.WriteSwapSize(rec.swapSize); err != nil {
		return err
	}
	if t.Layout().ExtraCells > 0 {
		var cell [4]byte
		binary.LittleEndian.PutUint32(cell[:], rec.tlvSizes)
		if err := t.WriteExtraCell(0, cell[:]); err != nil {
			return err
		}
	}
	if t.Layout().Generation {
		if err := t.WriteGeneration(rec.gen); err != nil {
			return err
		}
	}
	return t.WriteMagic()
}

// finishSwap writes what ends a swap in the primary trailer (reference
// §3.4): image_ok for PERM and REVERT (unless already set), then copy_done.
// Each write is skipped when already done, so a resumed finish is safe.
func finishSwap(pt *Trailer, typ SwapType) error {
	st, err := pt.Read()
	if err != nil {
		return err
	}
	if (typ == SwapPerm || typ == SwapRevert) && st.ImageOK == FlagUnset {
		if err := pt.WriteImageOK(); err != nil {
			return err
		}
	}
	if st.CopyDone == FlagUnset {
		return pt.WriteCopyDone()
	}
	return nil
}

// validGeneration is a trailer's swap generation, 0 when it holds none that
// its seal vouches for.
func validGeneration(st TrailerState) uint32 {
	if !st.GenerationValid {
		return 0
	}
	return st.Generation
}

// lastWritten is the index of the last status entry that is not the erase
// value, or -1 when every entry is: MCUboot's backwards scan of the status
// area (swap-move, swap-offset).
func lastWritten(entries []byte, eraseValue byte) int {
	i := len(entries) - 1
	for i >= 0 && entries[i] == eraseValue {
		i--
	}
	return i
}

// sectorSize is the slots' uniform sector size in swap-move and
// swap-offset, whose Check enforces it.
func sectorSize(l *Loader) int64 { return l.Primary().Sectors()[0].Size }

// swappableSectors is the number of sectors an image may span in swap-move
// and swap-offset: the primary's sectors below the trailer's, which no step
// erases (ALIGN_UP(trailer_sz, sector)), less the one the swap needs free:
// swap-move's gap for the move phase, swap-offset's download offset in the
// secondary. It is below 1 when the slots cannot swap any image.
func swappableSectors(l *Loader) int64 {
	return int64(len(l.Primary().Sectors()) - len(l.PrimaryTrailer().Sectors()) - 1)
}
