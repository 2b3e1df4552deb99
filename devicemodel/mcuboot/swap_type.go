package mcuboot

import (
	"fmt"

	"github.com/fleetsim/fleetsim/flashsim"
)

// SwapType is what the bootloader does with the secondary slot (reference
// §3.2; the numeric values are MCUboot's).
type SwapType uint8

// Swap types.
const (
	SwapNone   SwapType = 1 // boot the primary slot as it is
	SwapTest   SwapType = 2 // install the secondary image for one trial boot
	SwapPerm   SwapType = 3 // install the secondary image permanently
	SwapRevert SwapType = 4 // put back the image an unconfirmed test replaced
	SwapFail   SwapType = 5 // the upgrade could not be done
	SwapPanic  SwapType = 0xff
)

func (s SwapType) String() string {
	switch s {
	case SwapNone:
		return "none"
	case SwapTest:
		return "test"
	case SwapPerm:
		return "perm"
	case SwapRevert:
		return "revert"
	case SwapFail:
		return "fail"
	case SwapPanic:
		return "panic"
	}
	return fmt.Sprintf("SwapType(%d)", uint8(s))
}

// isUpgrade reports whether s moves images between slots.
func (s SwapType) isUpgrade() bool { return s == SwapTest || s == SwapPerm || s == SwapRevert }

// match values for a table cell: any state, or one exact state.
const anyState = 0

// swapRow is one row of boot_swap_tables: the states the primary and
// secondary trailers must have (anyState matches all) and the result.
type swapRow struct {
	name                              string
	priMagic, priImageOK, priCopyDone uint8
	secMagic, secImageOK, secCopyDone uint8
	offsetOnly                        bool // row I exists only in swap-offset builds
	result                            SwapType
}

// swapTable is reference §3.2, evaluated in order, first match wins.
var swapTable = []swapRow{
	{name: "I", secMagic: uint8(MagicGood), secImageOK: uint8(FlagUnset), secCopyDone: uint8(FlagSet), offsetOnly: true, result: SwapRevert},
	{name: "II", secMagic: uint8(MagicGood), secImageOK: uint8(FlagUnset), result: SwapTest},
	{name: "III", secMagic: uint8(MagicGood), secImageOK: uint8(FlagSet), result: SwapPerm},
	// Row IV's secondary magic is "any" since MCUboot PR #2100 (issue
	// #1966): a revert must not depend on a secondary trailer that a power
	// cut may have torn.
	{name: "IV", priMagic: uint8(MagicGood), priImageOK: uint8(FlagUnset), priCopyDone: uint8(FlagSet), result: SwapRevert},
}

func cellMatches(want, got uint8) bool { return want == anyState || want == got }

// DecideSwapType evaluates the swap table on the two trailers. withRowI
// enables row I (swap-offset: an interrupted revert recorded in the
// secondary's copy_done). It returns SwapNone when no row matches.
func DecideSwapType(primary, secondary TrailerState, withRowI bool) SwapType {
	for _, r := range swapTable {
		if r.offsetOnly && !withRowI {
			continue
		}
		if cellMatches(r.priMagic, uint8(primary.Magic)) &&
			cellMatches(r.priImageOK, uint8(primary.ImageOK)) &&
			cellMatches(r.priCopyDone, uint8(primary.CopyDone)) &&
			cellMatches(r.secMagic, uint8(secondary.Magic)) &&
			cellMatches(r.secImageOK, uint8(secondary.ImageOK)) &&
			cellMatches(r.secCopyDone, uint8(secondary.CopyDone)) {
			return r.result
		}
	}
	return SwapNone
}

// flagLayout is the layout used by the application API: the fields it
// touches (magic, image_ok, copy_done, swap_info) depend only on the write
// size, not on the strategy's status area.
func flagLayout(a *flashsim.Area) TrailerLayout {
	return TrailerLayout{WriteSize: a.WriteSize()}
}

// SetPending marks the image in the secondary slot for installation at the
// next boot (boot_set_pending): a trial (TEST) or, with permanent, for good
// (PERM). It writes, in MCUboot's order, the magic, image_ok when permanent,
// then swap_info, so that a power cut between the first two turns a
// permanent request into a trial, never the reverse. A secondary that is
// already pending is left alone (a TEST request is not upgraded to PERM).
//
// Errors: ErrBadImage when the secondary trailer's magic is corrupt; flash
// errors otherwise.
func SetPending(secondary *flashsim.Area, permanent bool) error {
	t := NewTrailer(secondary, flagLayout(secondary))
	st, err := t.Read()
	if err != nil {
		return err
	}
	switch st.Magic {
	case MagicGood:
		return nil
	case MagicBad:
		return ErrBadImage
	}
	if err := t.WriteMagic(); err != nil {
		return err
	}
	typ := SwapTest
	if permanent {
		if err := t.WriteImageOK(); err != nil {
			return err
		}
		typ = SwapPerm
	}
	return t.WriteSwapInfo(typ, 0)
}

// Confirm makes the running image in the primary slot permanent
// (boot_set_confirmed): when the primary trailer has a good magic and
// image_ok is unset, it sets image_ok, so no revert happens at the next
// boot. copy_done is deliberately not checked, as in MCUboot. A primary
// without a trailer (magic unset) is already permanent: nothing is written.
//
// Errors: ErrBadVector when the primary trailer's magic is corrupt; flash
// errors otherwise.
func Confirm(primary *flashsim.Area) error {
	t := NewTrailer(primary, flagLayout(primary))
	st, err := t.Read()
	if err != nil {
		return err
	}
	switch st.Magic {
	case MagicUnset:
		return nil
	case MagicBad:
		return ErrBadVector
	}
	if st.ImageOK != FlagUnset {
		return nil
	}
	return t.WriteImageOK()
}

// ReadSwapType is boot_swap_type: the swap the next boot would perform
// according to the table alone (no image validation), as an application
// (mcumgr, the agent) asks it. It does not know the strategy, so it never
// applies row I, which MCUboot's swap-offset builds do: row I matches only
// while a revert's fixup_revert record is in the secondary trailer, which
// every completed boot has scrambled before an application runs. Errors are
// flash errors.
func ReadSwapType(primary, secondary *flashsim.Area) (SwapType, error) {
	p, err := NewTrailer(primary, flagLayout(primary)).Read()
	if err != nil {
		return 0, err
	}
	s, err := NewTrailer(secondary, flagLayout(secondary)).Read()
	if err != nil {
		return 0, err
	}
	return DecideSwapType(p, s, false), nil
}
