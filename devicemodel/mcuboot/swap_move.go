package mcuboot

import (
	"fmt"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// swapMove is swap using move (MCUBOOT_SWAP_USING_MOVE, reference §4.3).
// Both slots have uniform sectors of one size S. With L the number of
// sectors the larger of the two images spans (swap_size rounded up), the
// primary image is first moved up one sector, then the slots are exchanged
// sector by sector through the gap this opens:
//
//	move phase, i = L..1:  erase primary[i],   copy primary[i-1] → primary[i]     MOVE entry 0x01
//	swap phase, i = 0..L-1:
//	   state 0→1           erase primary[i],   copy secondary[i] → primary[i]     SWAP entry 0x01
//	   state 1→2           erase secondary[i], copy primary[i+1] → secondary[i]   SWAP entry 0x02
//
// Status entries live in the primary trailer, laid out as §2.1: MaxImgSectors
// MOVE entries (the k-th move at entry k), then two SWAP entries per sector
// (sector i's at MaxImgSectors + 2i and +2i+1). The source of every step is
// left alone until a later step, so a step cut at any point is redone from
// its erase. Three sectors are erased per swapped sector (primary twice,
// secondary once). The last sector moved into must lie below the trailer's
// sectors, which bounds the image (MaxImageSize) and is checked before a swap
// starts (MCUboot's "Not enough free space to run swap upgrade").
//
// Once committed (see the intent below), a swap starts by scrambling the
// primary trailer and writing its record (swap_info, image_ok for PERM,
// swap_size, generation, magic last), then scrambling the secondary trailer.
// A revert, which table row IV selects from the primary trailer that the
// swap is about to scramble, starts with fixup_revert: as in MCUboot, the
// secondary trailer receives image_ok, swap_size and a magic so that the
// request outlives that scramble.
//
// Deviations from MCUboot, all to survive torn operations (flashsim's
// CutDuring), which MCUboot's simulator never produces (its flash writes are
// all-or-nothing; PRs #2648 and #2793 propose torn writes):
//
//   - Commit byte. Before the primary trailer is touched, the swap writes a
//     one-byte intent (type and the new generation, moveIntent) as a status
//     entry of the secondary trailer, which swap-move otherwise never uses.
//     One byte is atomic under a torn program, so the intent is either there
//     or not, and it can be written again after a cut. From the moment it is
//     there, Resume owns the swap: the table is not consulted again.
//     MCUboot instead never resumes from the primary while the secondary
//     magic is good. That covers the scramble of the primary (a fragment of
//     the previous swap's record, which a tear can leave with its magic and
//     generation intact, copy_done erased and a random subset of its status
//     entries, is not resumed), but not the scramble of the secondary that
//     follows: a tear there can leave its magic good and image_ok erased,
//     and the table then restarts a PERM as a TEST. Here a primary record is
//     trusted only when its generation equals the intent's, or when the
//     intent is gone, which happens only after the record was complete; a
//     fragment of the previous record carries the previous generation.
//   - Resume restarts from the intent when the primary record is not (yet)
//     trustworthy, with the intent's swap type. This also keeps a cut revert
//     a revert: MCUboot's fixup_revert makes it look like a PERM request to
//     the table, which then runs downgrade prevention against the old image
//     and, with it enabled, erases the very image the revert restores.
//   - fixup_revert (issue #1966: a torn magic written here bricked MCUboot's
//     swap-move, fixed there by PR #2100's row IV "any secondary magic") runs
//     whenever a revert starts and first erases the secondary trailer unless
//     it is entirely erased, so a torn magic or any other fragment is cleared
//     instead of skipping the fixup as MCUboot does for a non-UNSET magic.
//     It commits the intent before writing the magic, so a torn magic is
//     always found by Resume, never by the table.
//   - A resume with no status entry yet redoes the scramble of the secondary
//     trailer, which a cut may have torn, so no fragment of a request or of
//     the intent survives a completed swap; every later step leaves the
//     secondary trailer alone. The next swap's intent is therefore always the
//     only one in that trailer.
//   - swap_size comes from the primary record, never from a trailer a
//     download or imgtool --pad wrote (issue #829: an erased 0xffffffff
//     swap_size bricked MCUboot), and is range-checked before it is used.
//
// Where the images' headers lie mid-swap depends on the progress
// (moveProgress.headers; issue #1588 was a resume that looked for the
// primary header at offset 0 right after the last move had put it one sector
// up). Resume checks that the incoming image's header is where the status
// says before it continues, so a status that does not match the flash is
// reported (ErrInconsistentStatus) instead of being acted on.
type swapMove struct{}

func (swapMove) Name() string { return "swap-move" }

// SlotLayout is MCUboot's swap-move trailer (3 status entries per sector of
// MaxImgSectors) plus fleetsim's generation cell.
func (swapMove) SlotLayout(l *Loader) TrailerLayout {
	return TrailerLayout{WriteSize: l.WriteSize(), StatusEntries: l.Config().MaxImgSectors * 3, Generation: true}
}

// Check requires uniform sectors of one size in both slots, no more of them
// than the status area covers, and room for at least one movable sector
// below the trailer.
func (s swapMove) Check(l *Loader) error {
	ps, ss := l.Primary().Sectors(), l.Secondary().Sectors()
	if len(ps) == 0 || len(ps) != len(ss) {
		return fmt.Errorf("%w: swap-move needs slots of the same sector count (primary %d, secondary %d)", ErrIncompatibleSlots, len(ps), len(ss))
	}
	size := ps[0].Size
	for _, secs := range [][]flashsim.Sector{ps, ss} {
		for _, sec := range secs {
			if sec.Size != size {
				return fmt.Errorf("%w: swap-move needs uniform sectors, found %#x and %#x bytes", ErrIncompatibleSlots, size, sec.Size)
			}
		}
	}
	if max := l.Config().MaxImgSectors; len(ps) > max {
		return fmt.Errorf("%w: slots have %d sectors, the status area covers %d", ErrIncompatibleSlots, len(ps), max)
	}
	if swappableSectors(l) < 1 {
		return fmt.Errorf("%w: %d sectors of %#x bytes leave no room to move an image below the %d-byte trailer", ErrIncompatibleSlots, len(ps), size, s.SlotLayout(l).Size())
	}
	return nil
}

// MaxImageSize is (N-1)·S − ALIGN_UP(trailer, S): the move phase needs one
// free sector above the image, and the trailer's sectors are never moved.
func (s swapMove) MaxImageSize(l *Loader) int64 {
	return max(0, swappableSectors(l)) * sectorSize(l)
}

func (swapMove) SecondaryImageOffset(*Loader, SwapType) int64 { return 0 }
func (swapMove) Reverts() bool                                { return true }
func (swapMove) UsesRowI() bool                               { return false }

// moveGenerations is the cycle swap generations run through (1..63): the
// intent byte holds six bits of it. Trust only ever compares a generation
// with the next one, which always differs.
const moveGenerations = 63

// moveNextGen is the generation after the primary's current one (1 when it
// has none).
func moveNextGen(st TrailerState) uint32 {
	if !st.GenerationValid || st.Generation < 1 || st.Generation > moveGenerations {
		return 1
	}
	return st.Generation%moveGenerations + 1
}

// moveIntent is the swap a device has committed to: written as one status
// entry byte (gen<<2 | type−TEST) in the secondary trailer before the primary
// trailer is scrambled.
type moveIntent struct {
	typ SwapType
	gen uint32
}

// encode packs the intent into a byte that is neither 0x00 nor 0xff (gen is
// at least 1; the type bits are at most 2), so it never reads as erased.
func (in moveIntent) encode() byte { return byte(in.gen<<2) | byte(in.typ-SwapTest) }

// decodeMoveIntent unpacks an intent byte; ok is false for an erased byte
// or one no intent encodes to.
func decodeMoveIntent(b byte) (moveIntent, bool) {
	t, g := b&3, uint32(b>>2)
	if t > 2 || g < 1 || g > moveGenerations {
		return moveIntent{}, false
	}
	return moveIntent{typ: SwapTest + SwapType(t), gen: g}, true
}

// readIntent returns the last status entry written in the secondary
// trailer, decoded, and the index the next intent would go to (-1 when the
// area is full).
func (s swapMove) readIntent(l *Loader) (in moveIntent, ok bool, next int, err error) {
	entries, err := l.SecondaryTrailer().ReadStatus()
	if err != nil {
		return moveIntent{}, false, 0, err
	}
	last := lastWritten(entries, l.Secondary().EraseValue())
	next = last + 1
	if next == len(entries) {
		next = -1
	}
	if last < 0 {
		return moveIntent{}, false, next, nil
	}
	in, ok = decodeMoveIntent(entries[last])
	return in, ok, next, nil
}

// moveOp is the phase a status entry belongs to.
type moveOp uint8

// Phases of a swap-move, as MCUboot's BOOT_STATUS_OP_MOVE and _SWAP.
const (
	moveOpMove moveOp = 1
	moveOpSwap moveOp = 2
)

// moveProgress is how far a swap of last sectors has got: done steps, the
// first last of them moves and the next 2·last swap states.
type moveProgress struct {
	last, done int
}

// where is the step after the completed ones as MCUboot's (op, idx, state):
// idx is 1-based, state 0 or 1 within a SWAP, always 0 within a MOVE.
func (p moveProgress) where() (op moveOp, idx, state int) {
	if p.done < p.last {
		return moveOpMove, p.done + 1, 0
	}
	j := p.done - p.last
	return moveOpSwap, j/2 + 1, j % 2
}

// moveEntry is the status entry index of step n of a last-sector swap
// (§2.1) and the value it holds.
func moveEntry(maxSectors, last, n int) (index int, value byte) {
	if n < last {
		return n, StatusState1
	}
	j := n - last
	return maxSectors + j, StatusState1 + byte(j%2)
}

// imageAt names where an image's header lies: the slot and the offset.
type imageAt struct {
	secondary bool
	off       int64
}

// headers says where, after the completed steps, the incoming image (the
// one that was in the secondary slot when the swap started) and the
// outgoing one (the primary's) have their headers. The move phase leaves
// the outgoing header at offset 0 until it moves sector 0 up, and then at one
// sector (issue #1588); the incoming header reaches the primary once swap
// state 0→1 of sector 0 is done, and the outgoing one the secondary once
// state 1→2 of sector 0 is.
func (p moveProgress) headers(sector int64) (incoming, outgoing imageAt) {
	incoming = imageAt{secondary: true}
	if p.done > p.last {
		incoming = imageAt{}
	}
	switch {
	case p.done < p.last:
		outgoing = imageAt{}
	case p.done < p.last+2:
		outgoing = imageAt{off: sector}
	default:
		outgoing = imageAt{secondary: true}
	}
	return incoming, outgoing
}

// parseMoveStatus finds the progress of a swap of last sectors from the
// primary's status entries (byte 0 of each): the last written entry,
// scanning backwards as MCUboot does, names the last completed step. Every
// step before it must be recorded with its value and every other entry be
// erased (entries are written in order on an erased area and a tear reaches
// at most the one being written); otherwise ErrInconsistentStatus.
func parseMoveStatus(entries []byte, eraseValue byte, maxSectors, last int) (moveProgress, error) {
	p := moveProgress{last: last}
	if last < 1 || maxSectors < last || len(entries) < 3*maxSectors {
		return p, fmt.Errorf("%w: %d sectors to swap with a %d-entry status area for %d sectors", ErrInconsistentStatus, last, len(entries), maxSectors)
	}
	j := lastWritten(entries, eraseValue)
	switch {
	case j < 0:
		p.done = 0
	case j < last:
		p.done = j + 1
	case j >= maxSectors && j < maxSectors+2*last:
		p.done = last + j - maxSectors + 1
	default:
		return p, fmt.Errorf("%w: entry %d written outside the %d-sector swap", ErrInconsistentStatus, j, last)
	}
	want := make([]byte, len(entries))
	fill(want, eraseValue)
	for n := 0; n < p.done; n++ {
		i, v := moveEntry(maxSectors, last, n)
		want[i] = v
	}
	for i := range entries {
		if entries[i] != want[i] {
			return p, fmt.Errorf("%w: entry %d is %#04x, want %#04x after %d of %d steps", ErrInconsistentStatus, i, entries[i], want[i], p.done, 3*last)
		}
	}
	return p, nil
}

// intentOf is the intent that commits the swap rec describes.
func intentOf(rec swapRecord) moveIntent { return moveIntent{typ: rec.typ, gen: rec.gen} }

// lastIdx is the number of sectors a swap of swapSize bytes spans, or an
// error when it leaves no free sector below the trailer.
func (s swapMove) lastIdx(l *Loader, swapSize int64) (int, error) {
	sz := sectorSize(l)
	if swapSize < 1 || swapSize > s.MaxImageSize(l) {
		return 0, fmt.Errorf("%w: not enough free space to run swap upgrade: %#x bytes to swap, swap-move moves at most %#x", ErrIncompatibleSlots, swapSize, s.MaxImageSize(l))
	}
	return int((swapSize + sz - 1) / sz), nil
}

// Perform commits the swap (the intent byte, preceded by fixup_revert for a
// REVERT) and runs it.
//
// Errors: flash errors; ErrIncompatibleSlots wrapping "not enough free space"
// when the primary image is larger than swap-move can move (nothing is
// written then); ErrInconsistentStatus when the secondary trailer's status
// area has no room left for the intent.
func (s swapMove) Perform(l *Loader, st SwapType, tr SlotTrailers, pri Extent, sec *image.Image) error {
	size := sec.End
	if pri.Present {
		size = max(size, pri.End)
	}
	if _, err := s.lastIdx(l, size); err != nil {
		return err
	}
	rec := swapRecord{typ: st, swapSize: uint32(size), gen: moveNextGen(tr.Primary)}
	if st == SwapRevert {
		if err := s.fixupRevert(l, rec); err != nil {
			return err
		}
	} else {
		_, _, next, err := s.readIntent(l)
		if err != nil {
			return err
		}
		if next < 0 {
			return fmt.Errorf("%w: no room for the swap intent in the secondary trailer", ErrInconsistentStatus)
		}
		if err := l.SecondaryTrailer().WriteStatus(next, intentOf(rec).encode()); err != nil {
			return err
		}
	}
	return s.start(l, rec)
}

// fixupRevert prepares the secondary trailer at the start of a revert
// (MCUboot's fixup_revert, hardened as described on swapMove): erased unless
// it already is, then image_ok, swap_size, the intent, and the magic last.
func (s swapMove) fixupRevert(l *Loader, rec swapRecord) error {
	t := l.SecondaryTrailer()
	clean, err := t.Erased()
	if err != nil {
		return err
	}
	if !clean {
		if err := t.Scramble(); err != nil {
			return err
		}
	}
	if err := t.WriteImageOK(); err != nil {
		return err
	}
	if err := t.WriteSwapSize(rec.swapSize); err != nil {
		return err
	}
	if err := t.WriteStatus(0, intentOf(rec).encode()); err != nil {
		return err
	}
	return t.WriteMagic()
}

// start writes a fresh primary record for a committed swap and runs it:
// the primary trailer is scrambled (which may tear, leaving fragments that
// the intent tells from this record), then initialised with the magic last.
func (s swapMove) start(l *Loader, rec swapRecord) error {
	pt := l.PrimaryTrailer()
	if err := pt.Scramble(); err != nil {
		return err
	}
	if err := swapStatusInit(pt, rec); err != nil {
		return err
	}
	return s.run(l, rec, 0)
}

// run performs the steps of rec from step done on (0 also redoes the
// scramble of the secondary trailer), then writes image_ok and copy_done.
func (s swapMove) run(l *Loader, rec swapRecord, done int) error {
	last, err := s.lastIdx(l, int64(rec.swapSize))
	if err != nil {
		return err
	}
	pri, sec := l.Primary(), l.Secondary()
	pt := l.PrimaryTrailer()
	sz := sectorSize(l)
	maxSectors := l.Config().MaxImgSectors
	if done == 0 {
		if err := l.SecondaryTrailer().Scramble(); err != nil {
			return err
		}
	}
	for n := done; n < 3*last; n++ {
		var src, dst *flashsim.Area
		var srcOff, dstOff int64
		if n < last {
			i := int64(last - n)
			src, srcOff, dst, dstOff = pri, (i-1)*sz, pri, i*sz
		} else if j := n - last; j%2 == 0 {
			i := int64(j / 2)
			src, srcOff, dst, dstOff = sec, i*sz, pri, i*sz
		} else {
			i := int64(j / 2)
			src, srcOff, dst, dstOff = pri, (i+1)*sz, sec, i*sz
		}
		if err := l.copySector(src, srcOff, dst, dstOff, sz); err != nil {
			return err
		}
		idx, v := moveEntry(maxSectors, last, n)
		if err := pt.WriteStatus(idx, v); err != nil {
			return err
		}
	}
	return finishSwap(pt, rec.typ)
}

// Resume finishes a committed swap (see swapMove for when a primary record
// is trusted): from the primary's status entries when its record is the
// committed one, otherwise from the intent in the secondary trailer, by
// starting the swap again (nothing has moved before the record is complete).
//
// Errors: flash errors; ErrInconsistentStatus when a trusted record has an
// impossible swap_size, status entries no sequence of writes and cuts
// leaves, or the incoming image's header is not where the status puts it.
func (s swapMove) Resume(l *Loader, tr SlotTrailers) (SwapType, bool, error) {
	pt, ps := l.PrimaryTrailer(), tr.Primary
	in, committed, _, err := s.readIntent(l)
	if err != nil {
		return 0, false, err
	}
	record := ps.Magic == MagicGood && ps.GenerationValid && ps.SwapType.isUpgrade()
	if record && ps.CopyDone == FlagUnset && (!committed || in.gen == ps.Generation) {
		return ps.SwapType, true, s.resumeRecord(l, pt, ps)
	}
	if !committed || (record && ps.CopyDone == FlagSet && in.gen == ps.Generation) {
		// Nothing committed, or an intent of a swap that is complete, which
		// no sequence of cuts leaves behind: let the table decide.
		return 0, false, nil
	}
	incoming, err := ReadExtent(l.Secondary(), 0)
	if err != nil {
		return 0, false, err
	}
	if !incoming.Present {
		return 0, false, fmt.Errorf("%w: a %s is committed but the secondary slot holds no image", ErrInconsistentStatus, in.typ)
	}
	outgoing, err := ReadExtent(l.Primary(), 0)
	if err != nil {
		return 0, false, err
	}
	size := incoming.End
	if outgoing.Present {
		size = max(size, outgoing.End)
	}
	if _, err := s.lastIdx(l, size); err != nil {
		return 0, false, err
	}
	return in.typ, true, s.start(l, swapRecord{typ: in.typ, swapSize: uint32(size), gen: in.gen})
}

// resumeRecord continues the swap a trusted primary record describes.
func (s swapMove) resumeRecord(l *Loader, pt *Trailer, ps TrailerState) error {
	last, err := s.lastIdx(l, int64(ps.SwapSize))
	if err != nil {
		return fmt.Errorf("%w: swap_size %#x: %v", ErrInconsistentStatus, ps.SwapSize, err)
	}
	entries, err := pt.ReadStatus()
	if err != nil {
		return err
	}
	p, err := parseMoveStatus(entries, l.Primary().EraseValue(), l.Config().MaxImgSectors, last)
	if err != nil {
		return err
	}
	incoming, _ := p.headers(sectorSize(l))
	a := l.Primary()
	if incoming.secondary {
		a = l.Secondary()
	}
	herr, err := headerAt(a, incoming.off)
	if err != nil {
		return err
	}
	if herr != nil {
		op, idx, state := p.where()
		return fmt.Errorf("%w: at op %d idx %d state %d the incoming image header should be in %s at %#x: %v", ErrInconsistentStatus, op, idx, state, a.Name(), incoming.off, herr)
	}
	rec := swapRecord{typ: ps.SwapType, swapSize: ps.SwapSize, gen: ps.Generation}
	return s.run(l, rec, p.done)
}
