package bootsweep

import (
	"errors"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// The scenarios of MCUboot's simulator that are not sweeps (reference §5.4),
// for every board and strategy.

func forEach(t *testing.T, f func(t *testing.T, fx *Fixture)) {
	for _, b := range devicemodel.Boards() {
		for _, s := range b.Strategies() {
			t.Run(b.Name+"/"+s, func(t *testing.T) {
				fx, err := NewFixture(b, s, 11, 0)
				if err != nil {
					t.Fatal(err)
				}
				f(t, fx)
			})
		}
	}
}

func reverts(t *testing.T, fx *Fixture) bool {
	l, err := fx.Loader(fx.Board.NewFlash(flashsim.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	return l.Strategy().Reverts()
}

func mustBoot(t *testing.T, fx *Fixture, dev *flashsim.Device) *mcuboot.BootResult {
	t.Helper()
	res, err := fx.boot(dev)
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	return res
}

func mustCheck(t *testing.T, fx *Fixture, dev *flashsim.Device, res *mcuboot.BootResult, want expect, what string) {
	t.Helper()
	if err := fx.check(dev, res, want); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// withSecondary returns the factory device with img in the secondary slot,
// set pending (test or permanent).
func withSecondary(t *testing.T, fx *Fixture, img Image, permanent bool) *flashsim.Device {
	t.Helper()
	dev, err := fx.Factory()
	if err != nil {
		t.Fatal(err)
	}
	l, _ := fx.Loader(dev)
	if err := programImage(l.Secondary(), l.Strategy().SecondaryImageOffset(l, mcuboot.SwapTest), img.Bytes); err != nil {
		t.Fatal(err)
	}
	if err := mcuboot.SetPending(l.Secondary(), permanent); err != nil {
		t.Fatal(err)
	}
	return dev
}

// bad_secondary_slot: a pending image with a bad signature is discarded and
// the primary keeps its image and trailer.
func TestScenarioBadSecondarySlot(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		bad := fx.New
		bad.Bytes = append([]byte(nil), bad.Bytes...)
		bad.Bytes[len(bad.Bytes)-1] ^= 0x01 // last byte of the Ed25519 signature
		dev := withSecondary(t, fx, bad, false)
		res := mustBoot(t, fx, dev)
		if res.Rejected == nil || !errors.Is(res.Rejected, image.ErrBadSignature) {
			t.Errorf("Rejected = %v, want a bad signature", res.Rejected)
		}
		mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: factory}, "after boot")
	})
}

// secondary_trailer_leftover: a trailer without an image is cleared and
// nothing else changes.
func TestScenarioSecondaryTrailerLeftover(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		dev, err := fx.Factory()
		if err != nil {
			t.Fatal(err)
		}
		l, _ := fx.Loader(dev)
		if err := mcuboot.SetPending(l.Secondary(), true); err != nil {
			t.Fatal(err)
		}
		res := mustBoot(t, fx, dev)
		mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: factory}, "after boot")
	})
}

// norevert_newimage: an image padded with a magic only (imgtool --pad) in
// the primary and nothing in the secondary: the boot writes nothing.
func TestScenarioNoRevertNewImage(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		dev := fx.Board.NewFlash(flashsim.Options{})
		l, _ := fx.Loader(dev)
		if err := programImage(l.Primary(), 0, fx.Old.Bytes); err != nil {
			t.Fatal(err)
		}
		if err := mcuboot.NewTrailer(l.Primary(), mcuboot.TrailerLayout{WriteSize: l.WriteSize()}).WriteMagic(); err != nil {
			t.Fatal(err)
		}
		ops := dev.Ops()
		res := mustBoot(t, fx, dev)
		if dev.Ops() != ops {
			t.Errorf("boot wrote %d times", dev.Ops()-ops)
		}
		mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: flags{mcuboot.MagicGood, mcuboot.FlagUnset, mcuboot.FlagUnset}}, "after boot")
	})
}

// basic_revert: an unconfirmed test image is reverted at the next boot and
// the revert stays (boots 2, 3, 4). Overwrite-only cannot revert: the new
// image stays.
func TestScenarioBasicRevert(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		dev := withSecondary(t, fx, fx.New, false)
		sw := &sweeper{fx: fx, reverts: reverts(t, fx)}
		res := mustBoot(t, fx, dev)
		if res.SwapType != mcuboot.SwapTest {
			t.Errorf("boot 1 did %s, want test", res.SwapType)
		}
		mustCheck(t, fx, dev, res, sw.upgraded(false), "boot 1")
		want := sw.upgraded(false)
		if sw.reverts {
			var err error
			if want, err = sw.reverted(); err != nil {
				t.Fatal(err)
			}
		}
		for boot := 2; boot <= 4; boot++ {
			res := mustBoot(t, fx, dev)
			mustCheck(t, fx, dev, res, want, "later boot")
			if sw.reverts && (boot == 2) != (res.SwapType == mcuboot.SwapRevert) {
				t.Errorf("boot %d did %s", boot, res.SwapType)
			}
		}
	})
}

// norevert: a test image the application confirms is never reverted.
func TestScenarioNoRevert(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		dev := withSecondary(t, fx, fx.New, false)
		sw := &sweeper{fx: fx, reverts: reverts(t, fx)}
		res := mustBoot(t, fx, dev)
		mustCheck(t, fx, dev, res, sw.upgraded(false), "boot 1")
		l, _ := fx.Loader(dev)
		if err := mcuboot.Confirm(l.Primary()); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			res := mustBoot(t, fx, dev)
			mustCheck(t, fx, dev, res, sw.upgraded(true), "after confirm")
		}
	})
}

// oversized_secondary_slot: an image one write unit too large for the
// strategy is refused and the primary is untouched.
func TestScenarioOversizedSecondary(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		maxSize, err := fx.MaxImageSize()
		if err != nil {
			t.Fatal(err)
		}
		big, err := fx.SignImage(image.SignOptions{Version: image.Version{Major: 2}}, maxSize+int64(fx.Board.Geometry.WriteSize))
		if err != nil {
			t.Fatal(err)
		}
		// Marked permanent as imgtool --pad --confirm does (magic and
		// image_ok only): an oversized image leaves no room for swap_info in
		// overwrite-only.
		dev, err := fx.Factory()
		if err != nil {
			t.Fatal(err)
		}
		l, _ := fx.Loader(dev)
		if err := programImage(l.Secondary(), l.Strategy().SecondaryImageOffset(l, mcuboot.SwapTest), big.Bytes); err != nil {
			t.Fatal(err)
		}
		tr := mcuboot.NewTrailer(l.Secondary(), mcuboot.TrailerLayout{WriteSize: l.WriteSize()})
		if err := tr.WriteImageOK(); err != nil {
			t.Fatal(err)
		}
		if err := tr.WriteMagic(); err != nil {
			t.Fatal(err)
		}
		res := mustBoot(t, fx, dev)
		if !errors.Is(res.Rejected, image.ErrTooLarge) {
			t.Errorf("Rejected = %v, want ErrTooLarge", res.Rejected)
		}
		mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: factory}, "after boot")
	})
}

// downgrade_prevention: an older image is refused (by version, or by
// security counter), the primary keeps its image; an equal version passes.
func TestScenarioDowngradePrevention(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		older, err := fx.SignImage(image.SignOptions{Version: image.Version{Major: 0, Minor: 9}}, fx.Old.Parsed.End)
		if err != nil {
			t.Fatal(err)
		}
		fx.Config.Downgrade = mcuboot.DowngradeVersion
		dev := withSecondary(t, fx, older, true)
		res := mustBoot(t, fx, dev)
		if res.Rejected == nil || res.SwapType != mcuboot.SwapNone {
			t.Errorf("downgrade to 0.9 not refused: %+v", res)
		}
		mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: factory}, "after refused downgrade")

		// Equal versions are allowed; a newer build number is not newer
		// unless the build is compared.
		same, err := fx.SignImage(image.SignOptions{Version: image.Version{Major: 1, Build: 9}}, fx.New.Parsed.End)
		if err != nil {
			t.Fatal(err)
		}
		dev = withSecondary(t, fx, same, true)
		res = mustBoot(t, fx, dev)
		if res.Rejected != nil || res.SwapType != mcuboot.SwapPerm {
			t.Errorf("same version refused: %+v", res)
		}
	})
}

func TestScenarioDowngradeSecurityCounter(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		five, three := uint32(5), uint32(3)
		pri, err := fx.SignImage(image.SignOptions{Version: image.Version{Major: 1}, SecurityCounter: &five}, fx.Old.Parsed.End)
		if err != nil {
			t.Fatal(err)
		}
		newerVersionLowerCounter, err := fx.SignImage(image.SignOptions{Version: image.Version{Major: 3}, SecurityCounter: &three}, fx.New.Parsed.End)
		if err != nil {
			t.Fatal(err)
		}
		fx.Old = pri
		fx.Config.Downgrade = mcuboot.DowngradeSecurityCounter
		dev := withSecondary(t, fx, newerVersionLowerCounter, true)
		res := mustBoot(t, fx, dev)
		if res.Rejected == nil {
			t.Errorf("security-counter downgrade not refused: %+v", res)
		}
		mustCheck(t, fx, dev, res, expect{primary: fx.Old, primaryT: factory}, "after refused downgrade")
	})
}

// hw_prot_missing_security_cnt, hw_prot_failed_security_cnt_check: with the
// hardware counter at 30, images without a counter or below it never boot
// and the counter stays 30.
func TestScenarioHardwareRollback(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		for _, c := range []*uint32{nil, ptr(0), ptr(1)} {
			img, err := fx.SignImage(image.SignOptions{Version: image.Version{Major: 1}, SecurityCounter: c}, fx.Old.Parsed.End)
			if err != nil {
				t.Fatal(err)
			}
			fx2 := *fx
			fx2.Old = img
			store := mcuboot.NewMemSecurityCounters(30)
			fx2.Config.SecurityCounters = store
			dev, err := fx2.Factory()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fx2.boot(dev); !errors.Is(err, mcuboot.ErrNoBootableImage) {
				t.Errorf("counter %v: boot = %v, want ErrNoBootableImage", c, err)
			}
			if v, _ := store.SecurityCounter(0); v != 30 {
				t.Errorf("counter %v: stored counter became %d", c, v)
			}
		}
	})
}

// A test upgrade raises the hardware counter only once the image is
// confirmed, so that the revert stays possible (reference §4.6, #2282); a
// permanent upgrade raises it at once.
func TestScenarioHardwareCounterFollowsConfirmation(t *testing.T) {
	forEach(t, func(t *testing.T, fx *Fixture) {
		c30, c31 := uint32(30), uint32(31)
		var err error
		if fx.Old, err = fx.SignImage(image.SignOptions{Version: image.Version{Major: 1}, SecurityCounter: &c30}, fx.Old.Parsed.End); err != nil {
			t.Fatal(err)
		}
		if fx.New, err = fx.SignImage(image.SignOptions{Version: image.Version{Major: 1, Minor: 1}, SecurityCounter: &c31}, fx.New.Parsed.End); err != nil {
			t.Fatal(err)
		}
		for _, permanent := range []bool{false, true} {
			store := mcuboot.NewMemSecurityCounters(30)
			fx.Config.SecurityCounters = store
			dev := withSecondary(t, fx, fx.New, permanent)
			mustBoot(t, fx, dev)
			want := uint32(30)
			if permanent || !reverts(t, fx) {
				want = 31
			}
			if v, _ := store.SecurityCounter(0); v != want {
				t.Errorf("permanent=%v: counter %d after the upgrade, want %d", permanent, v, want)
			}
			l, _ := fx.Loader(dev)
			if err := mcuboot.Confirm(l.Primary()); err != nil {
				t.Fatal(err)
			}
			mustBoot(t, fx, dev)
			if v, _ := store.SecurityCounter(0); v != 31 {
				t.Errorf("permanent=%v: counter %d after confirming, want 31", permanent, v)
			}
		}
	})
}

func ptr(v uint32) *uint32 { return &v }
