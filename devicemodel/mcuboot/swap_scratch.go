package mcuboot

import (
	"fmt"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// swapScratch is swap using scratch (reference §4.2): the slots are
// exchanged region by region through the scratch area, from the region
// holding the end of the larger image down to region 0, three steps per
// region, each recorded by a status entry:
//
//	state 0→1  erase scratch, copy secondary[r] → scratch           entry 0x01
//	state 1→2  erase secondary[r], copy primary[r] → secondary      entry 0x02
//	state 2→3  erase primary[r], copy scratch → primary[r]           entry 0x03
//
// The first step also writes a trailer to the scratch area that holds the
// swap (type, size) while the primary trailer is rewritten. When the first
// region processed holds the trailer sectors ("use scratch"), its first two
// entries live in the scratch trailer and the whole trailer is copied to the
// primary in its third step; otherwise the primary trailer is scrambled and
// initialised at the start.
//
// Deviations from MCUboot, all to survive torn operations (flashsim's
// CutDuring), which MCUboot's simulator never produces (its flash writes are
// all-or-nothing; PRs #2648 and #2793 propose torn writes):
//   - Both trailers carry a swap generation (Trailer.WriteGeneration; the
//     torn-magic failure mode of issue #1966). The scratch trailer is
//     authoritative unless the primary trailer of the same generation has
//     progressed further. MCUboot trusts a scratch with a good magic
//     unconditionally, but a torn erase of the scratch after the trailer
//     region is done can leave that magic intact over damaged data, and the
//     region would be "redone" from garbage.
//   - A scratch trailer left behind by a completed swap (same or older
//     generation than a complete primary trailer) is erased instead of
//     resumed. MCUboot erases it at the end of the region for the same
//     reason (PR #1645, a stale scratch trailer resumed a finished swap)
//     but has no answer to a cut or a tear of that erase.
//   - A primary trailer of an unfinished swap with no status entry yet is
//     resumed from its swap_info. MCUboot reads "no entries" as "no swap" and
//     re-evaluates the table, where a REVERT interrupted right after its
//     primary trailer was initialised no longer matches any row, so the
//     unconfirmed image would stay for good (compare PR #2199).
//   - Resuming the first step from the scratch record, while the primary
//     trailer is scrambled or half re-initialised, does not start by erasing
//     the scratch: that record is then the swap's only trace (a REVERT has
//     none in the secondary), and a second cut right after the erase lost
//     the revert for good (the loss of issue #480, which swap_info was added
//     for in PR #485). The step re-initialises the primary trailer from it
//     and only then erases the scratch.
type swapScratch struct{}

func (swapScratch) Name() string { return "swap-scratch" }

func (swapScratch) SlotLayout(l *Loader) TrailerLayout {
	return TrailerLayout{WriteSize: l.WriteSize(), StatusEntries: l.Config().MaxImgSectors * 3, Generation: true}
}

// scratchLayout is the scratch area's trailer: one region's three entries.
func (swapScratch) scratchLayout(l *Loader) TrailerLayout {
	return TrailerLayout{WriteSize: l.WriteSize(), StatusEntries: 3, Generation: true}
}

// region is a run of whole sectors, at the same offsets in both slots, that
// fits in the scratch area.
type region struct{ off, size int64 }

// regions splits the slots into regions, highest first filled greedily
// downwards as MCUboot's boot_copy_sz does, returned in ascending order.
func (swapScratch) regions(l *Loader) ([]region, error) {
	ps, ss := l.Primary().Sectors(), l.Secondary().Sectors()
	// Atoms: the runs between offsets that are sector boundaries in both slots.
	var atoms []region
	i, j := 0, 0
	var start, pEnd, sEnd int64
	for i < len(ps) || j < len(ss) {
		if pEnd <= sEnd && i < len(ps) {
			pEnd += ps[i].Size
			i++
		} else if j < len(ss) {
			sEnd += ss[j].Size
			j++
		} else {
			break
		}
		if pEnd == sEnd {
			atoms = append(atoms, region{start, pEnd - start})
			start = pEnd
		}
	}
	scratch := l.Scratch().Size()
	var out []region
	for k := len(atoms) - 1; k >= 0; {
		r := atoms[k]
		if r.size > scratch {
			return nil, fmt.Errorf("%w: slot sectors at %#x (%#x bytes) do not fit the %#x-byte scratch area", ErrIncompatibleSlots, r.off, r.size, scratch)
		}
		k--
		for k >= 0 && r.size+atoms[k].size <= scratch {
			r = region{atoms[k].off, r.size + atoms[k].size}
			k--
		}
		out = append(out, r)
	}
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	return out, nil
}

func (s swapScratch) Check(l *Loader) error {
	if l.Scratch() == nil {
		return fmt.Errorf("%w: swap-scratch needs a scratch area", ErrIncompatibleSlots)
	}
	if ps, ss := l.Primary().Size(), l.Secondary().Size(); ps != ss {
		return fmt.Errorf("%w: primary slot is %#x bytes, secondary %#x", ErrIncompatibleSlots, ps, ss)
	}
	limit := l.Config().MaxImgSectors
	if n := len(l.Primary().Sectors()); n > limit {
		return fmt.Errorf("%w: primary slot has %d sectors, the status area covers %d", ErrIncompatibleSlots, n, limit)
	}
	if n := len(l.Secondary().Sectors()); n > limit {
		return fmt.Errorf("%w: secondary slot has %d sectors, the status area covers %d", ErrIncompatibleSlots, n, limit)
	}
	regs, err := s.regions(l)
	if err != nil {
		return err
	}
	top := regs[len(regs)-1]
	if ts := int64(s.SlotLayout(l).Size()); ts >= top.size {
		return fmt.Errorf("%w: the %d-byte trailer does not fit the last %#x-byte region", ErrIncompatibleSlots, ts, top.size)
	}
	if int64(s.scratchLayout(l).Size()) > l.Scratch().Size() {
		return fmt.Errorf("%w: scratch area too small for its trailer", ErrIncompatibleSlots)
	}
	return nil
}

// MaxImageSize leaves room for the trailer only: an image may share the
// last sector with it, which the "use scratch" first region handles.
func (s swapScratch) MaxImageSize(l *Loader) int64 {
	return l.Primary().Size() - int64(s.SlotLayout(l).Size())
}

func (swapScratch) SecondaryImageOffset(*Loader, SwapType) int64 { return 0 }
func (swapScratch) Reverts() bool                                { return true }
func (swapScratch) UsesRowI() bool                               { return false }

// plan is the regions a swap of swapSize bytes processes, in processing
// order (highest first), and whether the first uses the scratch trailer.
type plan struct {
	regs       []region
	useScratch bool
	dataEnd    int64 // end of the bytes copied: the slot minus its trailer
}

func (s swapScratch) plan(l *Loader, swapSize uint32) (plan, error) {
	regs, err := s.regions(l)
	if err != nil {
		return plan{}, err
	}
	if swapSize == 0 || int64(swapSize) > s.MaxImageSize(l) {
		return plan{}, fmt.Errorf("%w: swap_size %#x outside 1..%#x", ErrInconsistentStatus, swapSize, s.MaxImageSize(l))
	}
	p := plan{dataEnd: s.MaxImageSize(l)}
	for k := len(regs) - 1; k >= 0; k-- {
		if regs[k].off < int64(swapSize) {
			p.regs = append(p.regs, regs[k])
		}
	}
	p.useScratch = p.regs[0] == regs[len(regs)-1]
	return p, nil
}

// copySize is how much of region r is exchanged: all of it, except that the
// trailer is never copied between slots.
func (p plan) copySize(r region) int64 { return min(r.size, p.dataEnd-r.off) }

// Perform starts a swap with a generation above both the primary's and the
// scratch's, so that no fragment of an earlier record can pass for it.
func (s swapScratch) Perform(l *Loader, st SwapType, tr SlotTrailers, pri Extent, sec *image.Image) error {
	size := max(sec.End, min(pri.End, s.MaxImageSize(l)))
	// Read now: Resume may have erased a stale scratch trailer.
	xt, err := NewTrailer(l.Scratch(), s.scratchLayout(l)).Read()
	if err != nil {
		return err
	}
	gen := max(validGeneration(tr.Primary), validGeneration(xt)) + 1
	rec := swapRecord{typ: st, swapSize: uint32(size), gen: gen}
	return s.run(l, rec, 0)
}

// run performs the swap recorded in rec from status entry done (the number
// of steps already completed) to the end, then writes image_ok and
// copy_done.
func (s swapScratch) run(l *Loader, rec swapRecord, done int) error {
	p, err := s.plan(l, rec.swapSize)
	if err != nil {
		return err
	}
	pri, secA, scr := l.Primary(), l.Secondary(), l.Scratch()
	pt, xt := l.PrimaryTrailer(), NewTrailer(scr, s.scratchLayout(l))
	writeStatus := func(n int, state byte) error {
		if n == 0 && p.useScratch && state < StatusState3 {
			return xt.WriteStatus(int(state)-1, state)
		}
		return pt.WriteStatus(n*3+int(state)-1, state)
	}
	for step := done; step < len(p.regs)*3; step++ {
		n, state := step/3, step%3
		r := p.regs[n]
		cs := p.copySize(r)
		switch state {
		case 0:
			var err error
			if n == 0 {
				err = s.begin(l, p, rec, pt, xt)
			} else {
				err = l.EraseSectors(scr, 0, scr.Size())
			}
			if err != nil {
				return err
			}
			if err := l.CopyRegion(secA, r.off, scr, 0, cs); err != nil {
				return err
			}
			if err := writeStatus(n, StatusState1); err != nil {
				return err
			}
		case 1:
			if n == 0 && !p.useScratch {
				if err := l.SecondaryTrailer().Scramble(); err != nil {
					return err
				}
			}
			if err := l.EraseSectors(secA, r.off, r.size); err != nil {
				return err
			}
			if err := l.CopyRegion(pri, r.off, secA, r.off, cs); err != nil {
				return err
			}
			if err := writeStatus(n, StatusState2); err != nil {
				return err
			}
		case 2:
			if err := l.EraseSectors(pri, r.off, r.size); err != nil {
				return err
			}
			if err := l.CopyRegion(scr, 0, pri, r.off, cs); err != nil {
				return err
			}
			if n == 0 && p.useScratch {
				// The primary trailer was erased with the region: rebuild it
				// from the scratch's, entries first and the magic last.
				if err := pt.WriteStatus(0, StatusState1); err != nil {
					return err
				}
				if err := pt.WriteStatus(1, StatusState2); err != nil {
					return err
				}
				if err := swapStatusInit(pt, rec); err != nil {
					return err
				}
			}
			if err := writeStatus(n, StatusState3); err != nil {
				return err
			}
			if n == 0 && p.useScratch {
				if err := eraseBackwards(scr); err != nil {
					return err
				}
			}
		}
	}
	return finishSwap(pt, rec.typ)
}

// begin opens a swap, at the start of the first step (swap_status_init):
// the scratch area is erased and given the swap's record; unless the first
// region holds the trailer ("use scratch"), the primary trailer is then
// scrambled and given the record too, and the scratch erased again for the
// region's copy.
//
// Resuming this step from the scratch record while the primary trailer is
// being re-initialised, the scratch trailer is the swap's only record (a
// REVERT leaves no trace in the secondary and its row IV is gone with the
// primary trailer), so it is kept, not erased, until the primary trailer
// holds the record again.
func (swapScratch) begin(l *Loader, p plan, rec swapRecord, pt, xt *Trailer) error {
	scr := l.Scratch()
	keep := false
	if !p.useScratch {
		var err error
		if keep, err = holdsRecord(xt, rec); err != nil {
			return err
		}
	}
	if !keep {
		if err := l.EraseSectors(scr, 0, scr.Size()); err != nil {
			return err
		}
		if err := swapStatusInit(xt, rec); err != nil {
			return err
		}
	}
	if p.useScratch {
		return nil
	}
	if err := pt.Scramble(); err != nil {
		return err
	}
	if err := swapStatusInit(pt, rec); err != nil {
		return err
	}
	return l.EraseSectors(scr, 0, scr.Size())
}

// holdsRecord reports whether t holds rec complete: a good magic (written
// last) over rec's generation, type and size.
func holdsRecord(t *Trailer, rec swapRecord) (bool, error) {
	st, err := t.Read()
	if err != nil {
		return false, err
	}
	return st.Magic == MagicGood && st.GenerationValid && st.Generation == rec.gen &&
		st.SwapType == rec.typ && st.SwapSize == rec.swapSize, nil
}

// eraseBackwards erases an area's sectors from the last to the first, so
// the trailer at its end goes first.
func eraseBackwards(a *flashsim.Area) error {
	secs := a.Sectors()
	for i := len(secs) - 1; i >= 0; i-- {
		if err := a.Erase(secs[i].Offset, secs[i].Size); err != nil {
			return err
		}
	}
	return nil
}

// Resume finds the swap status (reference §4.2's status source, hardened
// with generations as described on swapScratch) and finishes the swap.
func (s swapScratch) Resume(l *Loader, tr SlotTrailers) (SwapType, bool, error) {
	pt, xt := l.PrimaryTrailer(), NewTrailer(l.Scratch(), s.scratchLayout(l))
	ps := tr.Primary
	xs, err := xt.Read()
	if err != nil {
		return 0, false, err
	}
	ev := l.Primary().EraseValue()
	isRecord := func(st TrailerState) bool {
		return st.Magic == MagicGood && st.GenerationValid && st.SwapType.isUpgrade()
	}
	priOpen := isRecord(ps) && ps.CopyDone == FlagUnset
	priDone := isRecord(ps) && ps.CopyDone == FlagSet
	scrOpen := isRecord(xs)

	// Entry counts are taken before deciding which record is authoritative,
	// but a gap only matters in that one: the other may be the survivor of
	// a torn erase, which can "un-write" any of its entries.
	var priCount, scrCount int
	var priGap, scrGap error
	if priOpen {
		entries, err := pt.ReadStatus()
		if err != nil {
			return 0, false, err
		}
		priCount, priGap = WrittenPrefix(entries, ev)
	}
	if scrOpen {
		entries, err := xt.ReadStatus()
		if err != nil {
			return 0, false, err
		}
		scrCount, scrGap = WrittenPrefix(entries, l.Scratch().EraseValue())
	}
	recOf := func(st TrailerState) swapRecord {
		return swapRecord{typ: st.SwapType, swapSize: st.SwapSize, gen: st.Generation}
	}
	// Which record is authoritative: the scratch one is, unless the primary
	// holds a record of the same swap that has moved past it, or of a later
	// swap. A scratch record that is not authoritative survived a torn
	// erase: it is erased once nothing can need the scratch's contents
	// (region 0 done or the swap complete), so it can never be replayed.
	if scrOpen && (priOpen || priDone) {
		later := ps.Generation > xs.Generation
		sameAhead := ps.Generation == xs.Generation && (priDone || priCount > scrCount)
		if later || sameAhead {
			scrOpen = false
			if priDone || priCount >= 3 {
				if err := eraseBackwards(l.Scratch()); err != nil {
					return 0, false, err
				}
			}
		}
	}
	switch {
	case scrOpen:
		if scrGap != nil {
			return 0, false, fmt.Errorf("scratch trailer: %w", scrGap)
		}
		return xs.SwapType, true, s.run(l, recOf(xs), scrCount)
	case priOpen:
		if priGap != nil {
			return 0, false, fmt.Errorf("primary trailer: %w", priGap)
		}
		return ps.SwapType, true, s.run(l, recOf(ps), priCount)
	}
	return 0, false, nil
}
