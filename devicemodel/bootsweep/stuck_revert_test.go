package bootsweep

import (
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

// stuckRevert returns a device whose primary runs the old image with the
// trailer of an unconfirmed upgrade (GOOD, UNSET, SET) while the secondary
// holds nothing to revert to: erased whole, or (withTrailer) an erased
// image under a leftover trailer.
func stuckRevert(t *testing.T, fx *Fixture, withTrailer bool) *flashsim.Device {
	t.Helper()
	dev := fx.Board.NewFlash(fx.Flash)
	l, err := fx.Loader(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := programImage(l.Primary(), 0, fx.Old.Bytes); err != nil {
		t.Fatal(err)
	}
	pt := mcuboot.NewTrailer(l.Primary(), mcuboot.TrailerLayout{WriteSize: l.WriteSize()})
	if err := pt.WriteCopyDone(); err != nil {
		t.Fatal(err)
	}
	if err := pt.WriteMagic(); err != nil {
		t.Fatal(err)
	}
	if withTrailer {
		if err := mcuboot.SetPending(l.Secondary(), false); err != nil {
			t.Fatal(err)
		}
	}
	return dev
}

// TestScenarioStuckRevert (MCUboot PR #2199): a primary flagged for revert
// with nothing in the secondary to revert to must not stay flagged, or the
// application, which asks the swap type before accepting an upload, sees a
// revert pending at every boot and never takes a new image. After one boot
// the running image is permanent, the swap type is NONE, and a new image
// set pending upgrades normally (and, unconfirmed, reverts to the image
// that ran before it).
func TestScenarioStuckRevert(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		for _, withTrailer := range []bool{false, true} {
			dev := stuckRevert(t, fx, withTrailer)
			l, _ := fx.Loader(dev)
			if !withTrailer {
				if st, err := mcuboot.ReadSwapType(l.Primary(), l.Secondary()); err != nil || st != mcuboot.SwapRevert {
					t.Fatalf("set-up: swap type %s (%v), want revert", st, err)
				}
			}
			res := mustBoot(t, fx, dev)
			if withTrailer {
				// The first boot discards the request without an image; the
				// revert comes at the next.
				mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: trial}, "after the boot discarding the request")
				res = mustBoot(t, fx, dev)
			}
			if res.SwapType != mcuboot.SwapNone || res.Header != fx.Old.Parsed.Header {
				t.Fatalf("trailer %v: boot did %s to %s", withTrailer, res.SwapType, res.Header.Version)
			}
			mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: confirmed}, "after the boot")
			if st, err := mcuboot.ReadSwapType(l.Primary(), l.Secondary()); err != nil || st != mcuboot.SwapNone {
				t.Fatalf("trailer %v: swap type after the boot %s (%v), want none", withTrailer, st, err)
			}
			// A second boot changes nothing.
			mustCheck(t, fx, dev, mustBoot(t, fx, dev), expect{primary: fx.Old, primaryT: confirmed}, "after a second boot")

			// The agent downloads 1.1.0 and sets it pending as a test.
			if err := programImage(l.Secondary(), l.Strategy().SecondaryImageOffset(l, mcuboot.SwapTest), fx.New.Bytes); err != nil {
				t.Fatal(err)
			}
			if err := mcuboot.SetPending(l.Secondary(), false); err != nil {
				t.Fatalf("set pending: %v", err)
			}
			if st, err := mcuboot.ReadSwapType(l.Primary(), l.Secondary()); err != nil || st != mcuboot.SwapTest {
				t.Fatalf("swap type after set pending %s (%v), want test", st, err)
			}
			sw := &sweeper{fx: fx, reverts: reverts(t, fx)}
			res = mustBoot(t, fx, dev)
			if res.SwapType != mcuboot.SwapTest {
				t.Fatalf("the new image was not installed: boot did %s", res.SwapType)
			}
			mustCheck(t, fx, dev, res, sw.upgraded(false), "after the upgrade")
			if sw.reverts {
				rev, err := sw.reverted()
				if err != nil {
					t.Fatal(err)
				}
				mustCheck(t, fx, dev, mustBoot(t, fx, dev), rev, "after the revert")
			}
		}
	})
}
