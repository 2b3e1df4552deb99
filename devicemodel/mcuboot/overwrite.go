package mcuboot

import (
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
)

// overwriteOnly is MCUBOOT_OVERWRITE_ONLY (reference §4.1) in its
// MCUBOOT_OVERWRITE_ONLY_FAST form: the sectors of the primary that the new
// image and the trailer occupy are erased, the image is copied, then the
// secondary is scrambled. (Erasing the whole primary, as the plain option
// does, would cost a 2 MiB slot 512 erases for a 100 KiB image and change
// nothing the image depends on.) There is no swap status: a cut anywhere
// before the secondary's header is erased leaves its trailer intact, so the
// next boot starts the copy again; a cut after it finds a headless
// secondary and boots the complete primary. No revert is possible.
type overwriteOnly struct{}

func (overwriteOnly) Name() string { return "overwrite" }

// SlotLayout has no status area: only image_ok, copy_done, swap_info and
// the magic are used.
func (overwriteOnly) SlotLayout(l *Loader) TrailerLayout {
	return TrailerLayout{WriteSize: l.WriteSize()}
}

func (overwriteOnly) Check(*Loader) error { return nil }

// MaxImageSize is the swap_info offset: the image may share the last sector
// with the trailer, since the trailer's sectors are erased with the image's
// before the copy.
func (s overwriteOnly) MaxImageSize(l *Loader) int64 {
	return s.SlotLayout(l).SwapInfoOff(l.Primary().Size())
}

func (overwriteOnly) SecondaryImageOffset(*Loader, SwapType) int64 { return 0 }
func (overwriteOnly) Reverts() bool                                { return false }
func (overwriteOnly) UsesRowI() bool                               { return false }

// Resume has nothing to resume: an interrupted copy is simply redone,
// because the secondary is untouched until the primary is complete.
func (overwriteOnly) Resume(*Loader, SlotTrailers) (SwapType, bool, error) { return 0, false, nil }

// Perform erases the image's and the trailer's sectors of the primary,
// copies the image, marks the primary trailer confirmed (image_ok,
// copy_done, then the magic last, so that a half-written trailer never reads
// as good), and scrambles the secondary: its header sector first, then its
// trailer sectors.
func (s overwriteOnly) Perform(l *Loader, _ SwapType, _ SlotTrailers, _ Extent, sec *image.Image) error {
	pri := l.Primary()
	pt := l.PrimaryTrailer()
	trailerOff := pt.Layout().StatusOff(pri.Size())
	imageEnd := int64(alignUp(int(sec.End), l.WriteSize()))
	for _, sector := range pri.Sectors() {
		if sector.Offset < imageEnd || sector.Offset+sector.Size > trailerOff {
			if err := pri.Erase(sector.Offset, sector.Size); err != nil {
				return err
			}
		}
	}
	if err := l.CopyRegion(l.Secondary(), 0, pri, 0, sec.End); err != nil {
		return err
	}
	if err := pt.WriteImageOK(); err != nil {
		return err
	}
	if err := pt.WriteCopyDone(); err != nil {
		return err
	}
	if err := pt.WriteMagic(); err != nil {
		return err
	}
	secA := l.Secondary()
	first := secA.Sectors()[0]
	if err := secA.Erase(first.Offset, first.Size); err != nil {
		return err
	}
	for _, t := range l.SecondaryTrailer().Sectors() {
		if t.Index == first.Index {
			continue
		}
		if err := secA.Erase(t.Offset, t.Size); err != nil {
			return err
		}
	}
	return nil
}
