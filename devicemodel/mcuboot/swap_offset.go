package mcuboot

import (
	"fmt"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// swapOffset is swap using offset (MCUBOOT_SWAP_USING_OFFSET, reference
// §4.4). The update is downloaded one sector into the secondary slot, so
// every secondary sector i+1 holds what primary sector i must receive and
// the slots are exchanged sector by sector with one erase per sector and
// slot, two steps per sector, each recorded by a status entry in the
// primary trailer (2 entries per sector, §2.1):
//
//	upgrade, i = 0..last:  A  erase secondary[i],   copy primary[i]   → secondary[i]    entry 0x01
//	                       B  erase primary[i],     copy secondary[i+1] → primary[i]    entry 0x02
//	revert, i = last..0:   A' erase secondary[i+1], copy primary[i]   → secondary[i+1]  entry 0x01
//	                       B' erase primary[i],     copy secondary[i]   → primary[i]    entry 0x02
//	then                   C  erase secondary[0]                                         entry 0x01
//
// so the previous image ends at secondary offset 0 after an upgrade, and the
// reverted (tested) image back at one sector after a revert, where a fresh
// download would have put it. Step C removes the copy of the old image's
// first sector, which would otherwise leave a second header in the slot.
// The source of every step is untouched until a later step, so a step cut
// at any point is simply redone from its erase.
//
// The trailer carries MCUboot's extra cell with both images' unprotected TLV
// sizes, (secondary << 16) | primary. MCUboot needs it to find the image
// ends mid-swap; fleetsim moves whole sectors (CopyRegion skips erased
// chunks), so it records the cell for layout fidelity only.
//
// A revert is started by fixup_revert: the secondary trailer is given a
// complete record with copy_done set before the primary trailer is
// scrambled, so that a cut before the primary's new record is complete finds
// table row I (secondary magic good, image_ok unset, copy_done set) and
// reverts again, instead of row II installing the old image as a test.
//
// Deviations from MCUboot, all to survive torn operations (flashsim's
// CutDuring), which MCUboot's simulator never produces (its flash writes are
// all-or-nothing; PRs #2648 and #2793 propose torn writes):
//   - Both trailers carry a swap generation (Trailer.WriteGeneration; the
//     torn-magic failure mode of issue #1966), and
//     the secondary trailer receives the new generation before the primary
//     trailer is scrambled. A torn scramble of the primary can leave the
//     previous swap's record with its magic and generation intact and
//     copy_done erased, which reads as an unfinished swap. MCUboot refuses to
//     resume while the secondary magic is good, but a torn scramble of the
//     secondary can leave that magic good as well, and then the table would
//     see a half-erased request (a PERM turned TEST, or a bad magic that
//     discards the new image). fleetsim instead resumes a primary record
//     unless the secondary holds a newer generation: a tear cannot forge a
//     newer generation, nor make a stale primary record look newer.
//   - A resume with no status entry yet redoes the scramble of the secondary
//     trailer, which a cut may have torn, so no fragment of a request (or of
//     fixup_revert's record, which row I would replay) survives the swap.
//   - fixup_revert erases the secondary trailer first unless it is erased
//     already, and rewrites it unless it holds a complete revert record.
//     MCUboot issue #1966 bricked swap-move when the magic write inside
//     fixup_revert was torn: no table row matched a bad secondary magic.
//     Here row IV (secondary magic "any", PR #2100) still selects the revert,
//     and the torn record is erased and written again.
//
// The image offset in the secondary (SecondaryImageOffset) depends on the
// swap type: an update is downloaded one sector in, but the image a revert
// puts back is the previous one, which the upgrade left at offset 0.
type swapOffset struct{}

func (swapOffset) Name() string { return "swap-offset" }

func (swapOffset) SlotLayout(l *Loader) TrailerLayout {
	return TrailerLayout{WriteSize: l.WriteSize(), StatusEntries: l.Config().MaxImgSectors * 2, ExtraCells: 1, Generation: true}
}

func (s swapOffset) Check(l *Loader) error {
	for _, a := range []*flashsim.Area{l.Primary(), l.Secondary()} {
		secs := a.Sectors()
		for _, sec := range secs {
			if sec.Size != secs[0].Size {
				return fmt.Errorf("%w: swap-offset needs uniform sectors, slot %q mixes %#x and %#x", ErrIncompatibleSlots, a.Name(), secs[0].Size, sec.Size)
			}
		}
		if n := len(secs); n > l.Config().MaxImgSectors {
			return fmt.Errorf("%w: slot %q has %d sectors, the status area covers %d", ErrIncompatibleSlots, a.Name(), n, l.Config().MaxImgSectors)
		}
	}
	if ps, ss := l.Primary().Sectors()[0].Size, l.Secondary().Sectors()[0].Size; ps != ss {
		return fmt.Errorf("%w: primary sectors are %#x bytes, secondary %#x", ErrIncompatibleSlots, ps, ss)
	}
	if swappableSectors(l) < 1 {
		return fmt.Errorf("%w: %d-sector slots leave no room for an image one sector in, below the trailer", ErrIncompatibleSlots, len(l.Primary().Sectors()))
	}
	return nil
}

// MaxImageSize: the update starts one sector into the secondary and must
// end below the secondary's trailer sectors, which the swap never erases.
func (s swapOffset) MaxImageSize(l *Loader) int64 {
	return max(0, swappableSectors(l)) * sectorSize(l)
}

// SecondaryImageOffset is one sector, where an update must be downloaded,
// except for a revert: the image to put back is the previous one, which the
// upgrade left at offset 0.
func (s swapOffset) SecondaryImageOffset(l *Loader, st SwapType) int64 {
	if st == SwapRevert {
		return 0
	}
	return sectorSize(l)
}

func (swapOffset) Reverts() bool  { return true }
func (swapOffset) UsesRowI() bool { return true }

// steps is the number of status entries a swap of swapSize bytes writes.
func (s swapOffset) steps(l *Loader, typ SwapType, swapSize uint32) int {
	sectors := int((int64(swapSize) + sectorSize(l) - 1) / sectorSize(l))
	n := 2 * sectors
	if typ == SwapRevert {
		n++ // step C
	}
	return n
}

// packTLVSizes packs the extra trailer cell of swap-offset: the unprotected TLV
// area sizes of the image in the secondary (high half) and in the primary
// (low half) when the swap started.
func packTLVSizes(secondary, primary uint16) uint32 { return uint32(secondary)<<16 | uint32(primary) }

// unprotectedTLVSize is the size of an image's unprotected TLV area.
func unprotectedTLVSize(img *image.Image) int64 {
	return img.End - img.TLVOffset - int64(img.Header.ProtectTLVSize)
}

func (s swapOffset) Perform(l *Loader, st SwapType, tr SlotTrailers, pri Extent, sec *image.Image) error {
	size := sec.End
	var priTLV int64
	if pri.Present {
		size = max(size, min(pri.End, s.MaxImageSize(l)))
		priTLV = pri.UnprotectedTLVSize
	}
	rec := swapRecord{
		typ:      st,
		swapSize: uint32(size),
		tlvSizes: packTLVSizes(uint16(unprotectedTLVSize(sec)), uint16(priTLV)),
	}
	priGen, ss := validGeneration(tr.Primary), tr.Secondary
	var err error
	if st == SwapRevert {
		if rec.gen, err = s.fixupRevert(l, rec, priGen, ss); err != nil {
			return err
		}
	} else if rec.gen, err = s.stampRequest(l, priGen, ss); err != nil {
		return err
	}
	pt := l.PrimaryTrailer()
	if err := pt.Scramble(); err != nil {
		return err
	}
	if err := swapStatusInit(pt, rec); err != nil {
		return err
	}
	return s.run(l, rec, 0)
}

// stampRequest gives the pending request in the secondary trailer the
// generation of the swap about to start, before the primary trailer is
// scrambled, and returns it. A request stamped by an earlier, interrupted
// attempt keeps its generation. A generation cell that a cut tore cannot be
// written again without erasing the request: the swap then goes ahead
// unstamped (only a second tear, of the primary scramble, could then
// mislead a resume).
func (s swapOffset) stampRequest(l *Loader, priGen uint32, ss TrailerState) (uint32, error) {
	if ss.GenerationValid && ss.Generation >= priGen {
		return ss.Generation, nil
	}
	gen := priGen + 1
	secT := l.SecondaryTrailer()
	var cell [8]byte
	if err := readAt(secT.Area(), cell[:], secT.Layout().GenerationOff(secT.Area().Size())); err != nil {
		return 0, err
	}
	if !allBytes(cell[:], secT.Area().EraseValue()) {
		return gen, nil
	}
	return gen, secT.WriteGeneration(gen)
}

// fixupRevert is MCUboot's fixup_revert, hardened (see swapOffset): it
// writes a complete revert record with copy_done set to the secondary
// trailer, magic last, unless one is there already, and returns the
// record's generation.
func (s swapOffset) fixupRevert(l *Loader, rec swapRecord, priGen uint32, ss TrailerState) (uint32, error) {
	if ss.Magic == MagicGood && ss.CopyDone == FlagSet && ss.ImageOK == FlagUnset &&
		ss.SwapType == SwapRevert && ss.GenerationValid && ss.Generation >= priGen {
		return ss.Generation, nil
	}
	secT := l.SecondaryTrailer()
	clean, err := secT.Erased()
	if err != nil {
		return 0, err
	}
	if !clean {
		if err := secT.Scramble(); err != nil {
			return 0, err
		}
	}
	rec.gen = priGen + 1
	if err := secT.WriteCopyDone(); err != nil {
		return 0, err
	}
	return rec.gen, swapStatusInit(secT, rec)
}

// run performs the swap recorded in rec from status entry done (the number
// of steps completed) to the end, then writes image_ok and copy_done. With
// no step done it first scrambles the secondary trailer, which holds the
// request (or fixup_revert's record) the primary record has replaced.
func (s swapOffset) run(l *Loader, rec swapRecord, done int) error {
	if rec.swapSize == 0 || int64(rec.swapSize) > s.MaxImageSize(l) {
		return fmt.Errorf("%w: swap_size %#x outside 1..%#x", ErrInconsistentStatus, rec.swapSize, s.MaxImageSize(l))
	}
	total := s.steps(l, rec.typ, rec.swapSize)
	if done > total {
		return fmt.Errorf("%w: %d status entries for a %d-step swap", ErrInconsistentStatus, done, total)
	}
	pri, secA := l.Primary(), l.Secondary()
	pt := l.PrimaryTrailer()
	if done == 0 {
		if err := l.SecondaryTrailer().Scramble(); err != nil {
			return err
		}
	}
	sz := sectorSize(l)
	sectors := total / 2
	for step := done; step < total; step++ {
		var err error
		switch n, state := step/2, step%2; {
		case rec.typ == SwapRevert && step == total-1: // C
			err = l.EraseSectors(secA, 0, sz)
		case rec.typ == SwapRevert && state == 0: // A'
			i := int64(sectors - 1 - n)
			err = l.copySector(pri, i*sz, secA, (i+1)*sz, sz)
		case rec.typ == SwapRevert: // B'
			i := int64(sectors - 1 - n)
			err = l.copySector(secA, i*sz, pri, i*sz, sz)
		case state == 0: // A
			err = l.copySector(pri, int64(n)*sz, secA, int64(n)*sz, sz)
		default: // B
			err = l.copySector(secA, int64(n+1)*sz, pri, int64(n)*sz, sz)
		}
		if err != nil {
			return err
		}
		if err := pt.WriteStatus(step, StatusState1+byte(step%2)); err != nil {
			return err
		}
	}
	return finishSwap(pt, rec.typ)
}

// Resume finishes the swap an open primary record describes (magic good,
// valid generation, a swap type, copy_done unset), from the number of status
// entries written, unless the secondary trailer holds a newer generation:
// then the record is a fragment of the previous swap that a torn scramble
// left behind, and the swap table decides (see swapOffset).
func (s swapOffset) Resume(l *Loader, tr SlotTrailers) (SwapType, bool, error) {
	pt, ps, ss := l.PrimaryTrailer(), tr.Primary, tr.Secondary
	if ps.Magic != MagicGood || !ps.GenerationValid || !ps.SwapType.isUpgrade() || ps.CopyDone != FlagUnset {
		return 0, false, nil
	}
	if ss.GenerationValid && ss.Generation > ps.Generation {
		return 0, false, nil
	}
	entries, err := pt.ReadStatus()
	if err != nil {
		return 0, false, err
	}
	done, err := WrittenPrefix(entries, l.Primary().EraseValue())
	if err != nil {
		return 0, false, err
	}
	// The TLV-size cell is not read: run never rewrites the record, and
	// fleetsim needs no image end mid-swap (see swapOffset).
	rec := swapRecord{typ: ps.SwapType, swapSize: ps.SwapSize, gen: ps.Generation}
	return ps.SwapType, true, s.run(l, rec, done)
}
