package mcuboot

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
)

// Strategy is one upgrade mode of the bootloader (MCUboot's
// MCUBOOT_OVERWRITE_ONLY, swap using scratch, ...). Each strategy lives in its
// own file and is listed in strategies below; what the swap strategies share
// (the record swap_status_init writes, the end of a swap) is in swap.go. The
// Loader runs the boot flow of reference §4.0 around a strategy: it reads
// both trailers once, calls Resume, and when nothing was resumed evaluates
// the swap table, validates the secondary image and calls Perform.
//
// A strategy keeps no state between calls: everything it needs after a power
// cut must be in flash. Every flash error must be returned (wrapped is
// fine), so that a power cut surfaces as flashsim.ErrPowerLoss.
type Strategy interface {
	// Name is the name Config.Strategy selects.
	Name() string
	// SlotLayout is the trailer layout of both slots.
	SlotLayout(l *Loader) TrailerLayout
	// Check reports whether the slot (and scratch) geometry allows the
	// strategy, as ErrIncompatibleSlots wrapped with the reason.
	Check(l *Loader) error
	// MaxImageSize is the largest image (header, payload, TLVs) the
	// strategy can install.
	MaxImageSize(l *Loader) int64
	// SecondaryImageOffset is where the image header lies in the secondary
	// slot when swap type st is about to run. For SwapTest and SwapPerm (and
	// SwapNone, when the slot holds a download or nothing) it is where an
	// update is downloaded; for SwapRevert it is where the upgrade being
	// reverted left the previous image. It is 0 for every type except in
	// swap-offset, whose downloads start one sector in.
	SecondaryImageOffset(l *Loader, st SwapType) int64
	// Reverts reports whether the strategy can put an unconfirmed image
	// back (false for overwrite-only, which treats REVERT as NONE).
	Reverts() bool
	// UsesRowI reports whether the swap table's row I applies.
	UsesRowI() bool
	// Resume looks for an operation a power cut interrupted and completes
	// it, including the final image_ok/copy_done writes. tr is what the
	// slots' trailers held when the boot began. It returns the swap type it
	// completed and true, or false when nothing was in progress. When it
	// returns false it must not have written to either slot (the boot goes
	// on with tr); it may tidy the scratch area (a leftover scratch
	// trailer).
	Resume(l *Loader, tr SlotTrailers) (SwapType, bool, error)
	// Perform runs swap type st (TEST, PERM or REVERT), which the swap
	// table chose from tr, from the start and to completion. tr still
	// describes the slots' trailers; sec is the validated image in the
	// secondary slot (at SecondaryImageOffset(l, st)); pri is the
	// primary's extent (Present false when it holds no image).
	Perform(l *Loader, st SwapType, tr SlotTrailers, pri Extent, sec *image.Image) error
}

// strategies lists the registered upgrade strategies, in the order they
// are reported. Adding a strategy is a file implementing Strategy and one
// line here.
var strategies = []Strategy{
	overwriteOnly{},
	swapScratch{},
	swapMove{},
	swapOffset{},
}

// StrategyNames lists the registered strategies' names, sorted.
func StrategyNames() []string {
	names := make([]string, len(strategies))
	for i, s := range strategies {
		names[i] = s.Name()
	}
	sort.Strings(names)
	return names
}

// LookupStrategy returns the strategy called name, or ErrUnknownStrategy
// naming the valid ones.
func LookupStrategy(name string) (Strategy, error) {
	for _, s := range strategies {
		if s.Name() == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownStrategy, name, strings.Join(StrategyNames(), ", "))
}
