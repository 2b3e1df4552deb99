package bootsweep

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// flags is a trailer's (magic, image_ok, copy_done), as MCUboot's simulator
// asserts them.
type flags struct {
	magic             mcuboot.MagicState
	imageOK, copyDone mcuboot.FlagState
}

func (f flags) String() string { return fmt.Sprintf("(%s, %s, %s)", f.magic, f.imageOK, f.copyDone) }

var (
	confirmed  = flags{mcuboot.MagicGood, mcuboot.FlagSet, mcuboot.FlagSet}
	trial      = flags{mcuboot.MagicGood, mcuboot.FlagUnset, mcuboot.FlagSet}
	factory    = flags{mcuboot.MagicGood, mcuboot.FlagSet, mcuboot.FlagUnset}
	unsetFlags = flags{mcuboot.MagicUnset, mcuboot.FlagUnset, mcuboot.FlagUnset}
)

// expect is the state a device must be in after a boot.
type expect struct {
	primary     Image
	primaryT    flags
	secondary   *Image // nil: the secondary must hold no image
	secondaryAt int64  // where the secondary image starts
}

// boot runs the fixture's bootloader once on dev (a part, or a part under
// faults).
func (fx *Fixture) boot(dev flashsim.Flash) (*mcuboot.BootResult, error) {
	l, err := fx.Loader(dev)
	if err != nil {
		return nil, err
	}
	return l.Boot()
}

// check compares dev (and the result of the boot that just ran, if any)
// with want.
func (fx *Fixture) check(dev *flashsim.Device, res *mcuboot.BootResult, want expect) error {
	if r := dev.Stats().Rejected; r != 0 {
		return fmt.Errorf("the flash refused %d operations (illegal program or erase)", r)
	}
	l, err := fx.Loader(dev)
	if err != nil {
		return err
	}
	if res != nil && res.Header != want.primary.Parsed.Header {
		return fmt.Errorf("boot handed over to image %s, want %s", res.Header.Version, want.primary.Parsed.Header.Version)
	}
	if err := slotHolds(l.Primary(), 0, want.primary); err != nil {
		return fmt.Errorf("primary slot: %w", err)
	}
	if want.secondary != nil {
		if err := slotHolds(l.Secondary(), want.secondaryAt, *want.secondary); err != nil {
			return fmt.Errorf("secondary slot: %w", err)
		}
	} else {
		var hdr [image.HeaderSize]byte
		if _, err := l.Secondary().ReadAt(hdr[:], l.Strategy().SecondaryImageOffset(l, mcuboot.SwapNone)); err != nil {
			return err
		}
		if _, err := image.ParseHeader(hdr[:]); !errors.Is(err, image.ErrNoImage) {
			return fmt.Errorf("secondary slot still holds an image header (%v)", err)
		}
	}
	pt, err := trailerFlags(l, l.Primary())
	if err != nil {
		return err
	}
	if pt != want.primaryT {
		return fmt.Errorf("primary trailer is %s, want %s", pt, want.primaryT)
	}
	st, err := trailerFlags(l, l.Secondary())
	if err != nil {
		return err
	}
	if st != unsetFlags {
		return fmt.Errorf("secondary trailer is %s, want %s", st, unsetFlags)
	}
	return nil
}

func trailerFlags(l *mcuboot.Loader, a *flashsim.Area) (flags, error) {
	st, err := mcuboot.NewTrailer(a, l.Strategy().SlotLayout(l)).Read()
	return flags{st.Magic, st.ImageOK, st.CopyDone}, err
}

// slotHolds checks that a holds exactly img's bytes at off.
func slotHolds(a *flashsim.Area, off int64, img Image) error {
	got := make([]byte, len(img.Bytes))
	if _, err := a.ReadAt(got, off); err != nil {
		return err
	}
	if !bytes.Equal(got, img.Bytes) {
		i := 0
		for i < len(got) && got[i] == img.Bytes[i] {
			i++
		}
		return fmt.Errorf("does not hold image %s at %#x: first difference at byte %#x", img.Parsed.Header.Version, off, i)
	}
	return nil
}
