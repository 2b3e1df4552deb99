package mcuboot

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// The helpers of this file carry an "offset" prefix: the package's other
// test files belong to other strategies and the boot flow. Helpers shared by
// every strategy's tests (must, program, installConfirmed, mustArea) are in
// loader_test.go.

const (
	offsetSector = 1024
	offsetSlot   = 12 * offsetSector
)

// offsetRig is a device with two 12-sector slots of 1 KiB sectors and the
// swap-offset bootloader on them, plus the images an upgrade exchanges.
type offsetRig struct {
	t        testing.TB
	dev      *flashsim.Device
	pri, sec *flashsim.Area
	key      crypto.Signer
	cfg      Config
	old, new []byte
}

func newOffsetRig(t testing.TB, w int, ev byte) *offsetRig {
	t.Helper()
	dev := flashsim.New(flashsim.Uniform(2*offsetSlot/offsetSector, offsetSector, w, ev), flashsim.Options{})
	p, err := flashsim.NewArea(dev, flashsim.Partition{Name: "primary", Offset: 0, Size: offsetSlot})
	must(t, err)
	s, err := flashsim.NewArea(dev, flashsim.Partition{Name: "secondary", Offset: offsetSlot, Size: offsetSlot})
	must(t, err)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	r := &offsetRig{t: t, dev: dev, pri: p, sec: s, key: key,
		cfg: Config{Strategy: "swap-offset", Keys: []crypto.PublicKey{key.Public()}}}
	// The old image spans 2 sectors, the new one the 7 an image may use
	// (trailer of 3 sectors with 8-byte writes, one sector of offset).
	r.old = r.sign(image.Version{Major: 1}, 1500)
	r.new = r.sign(image.Version{Major: 1, Minor: 1}, int(r.loader().strategy.MaxImageSize(r.loader()))-200)
	return r
}

func (r *offsetRig) sign(v image.Version, n int) []byte {
	payload := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(n), uint64(v.Minor)))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	b, err := image.Sign(payload, image.SignOptions{Key: r.key, Version: v, HeaderSize: image.HeaderSize, PadHeader: true})
	must(r.t, err)
	return b
}

func (r *offsetRig) loader() *Loader {
	l, err := New(r.cfg, r.pri, r.sec, nil)
	must(r.t, err)
	return l
}

// pending installs the factory image (confirmed, as imgtool --confirm)
// and downloads img one sector into the secondary, set pending.
func (r *offsetRig) pending(img []byte, permanent bool) {
	installConfirmed(r.t, r.pri, r.old)
	program(r.t, r.sec, offsetSector, img)
	must(r.t, SetPending(r.sec, permanent))
}

// cutBoot boots with c armed: on the rig's part under a FaultyFlash whose
// power the cut takes. The part keeps what the cut left.
func (r *offsetRig) cutBoot(c flashsim.PowerCut) error {
	f := flashsim.Wrap(r.dev, c.Injector())
	l, err := New(r.cfg, mustArea(r.t, f, r.pri), mustArea(r.t, f, r.sec), nil)
	must(r.t, err)
	_, err = l.Boot()
	return err
}

func (r *offsetRig) boot() *BootResult {
	r.t.Helper()
	res, err := r.loader().Boot()
	if err != nil {
		r.t.Fatalf("boot: %v", err)
	}
	return res
}

// holds reports whether a holds img at off.
func (r *offsetRig) holds(a *flashsim.Area, off int64, img []byte) bool {
	got := make([]byte, len(img))
	_, err := a.ReadAt(got, off)
	must(r.t, err)
	return bytes.Equal(got, img)
}

func (r *offsetRig) trailers() (TrailerState, TrailerState) {
	l := r.loader()
	p, err := l.PrimaryTrailer().Read()
	must(r.t, err)
	s, err := l.SecondaryTrailer().Read()
	must(r.t, err)
	return p, s
}

// checkUpgraded: the new image runs from the primary, the old one lies at
// secondary offset 0, the secondary trailer is erased.
func (r *offsetRig) checkUpgraded(what string, permanent bool) {
	r.t.Helper()
	if !r.holds(r.pri, 0, r.new) {
		r.t.Fatalf("%s: primary does not hold the new image", what)
	}
	if !r.holds(r.sec, 0, r.old) {
		r.t.Fatalf("%s: secondary does not hold the old image at offset 0", what)
	}
	p, s := r.trailers()
	wantOK := FlagUnset
	if permanent {
		wantOK = FlagSet
	}
	if p.Magic != MagicGood || p.ImageOK != wantOK || p.CopyDone != FlagSet {
		r.t.Fatalf("%s: primary trailer (%s, %s, %s)", what, p.Magic, p.ImageOK, p.CopyDone)
	}
	if s.Magic != MagicUnset || s.ImageOK != FlagUnset || s.CopyDone != FlagUnset {
		r.t.Fatalf("%s: secondary trailer (%s, %s, %s), want all unset", what, s.Magic, s.ImageOK, s.CopyDone)
	}
	if n := r.dev.Stats().Rejected; n != 0 {
		r.t.Fatalf("%s: the flash refused %d operations", what, n)
	}
}

// checkReverted: the old image is back and confirmed, the tested one lies
// one sector into the secondary, and secondary sector 0 is erased.
func (r *offsetRig) checkReverted(what string) {
	r.t.Helper()
	if !r.holds(r.pri, 0, r.old) {
		r.t.Fatalf("%s: primary does not hold the old image", what)
	}
	if !r.holds(r.sec, offsetSector, r.new) {
		r.t.Fatalf("%s: secondary does not hold the new image at one sector", what)
	}
	if !r.holds(r.sec, 0, bytes.Repeat([]byte{r.sec.EraseValue()}, offsetSector)) {
		r.t.Fatalf("%s: secondary sector 0 is not erased", what)
	}
	p, s := r.trailers()
	if p.Magic != MagicGood || p.ImageOK != FlagSet || p.CopyDone != FlagSet {
		r.t.Fatalf("%s: primary trailer (%s, %s, %s)", what, p.Magic, p.ImageOK, p.CopyDone)
	}
	if s.Magic != MagicUnset || s.ImageOK != FlagUnset || s.CopyDone != FlagUnset {
		r.t.Fatalf("%s: secondary trailer (%s, %s, %s), want all unset", what, s.Magic, s.ImageOK, s.CopyDone)
	}
	if n := r.dev.Stats().Rejected; n != 0 {
		r.t.Fatalf("%s: the flash refused %d operations", what, n)
	}
}

// TestSwapOffsetTrailerLayout: 2 status entries per sector and the extra
// TLV-size cell, which moves swap_size one cell down (reference §2): the
// trailer is MCUboot's 256·w+56 bytes plus fleetsim's generation cell.
func TestSwapOffsetTrailerLayout(t *testing.T) {
	for _, w := range []int{1, 2, 4, 8} {
		r := newOffsetRig(t, w, 0xff)
		lay := r.loader().strategy.SlotLayout(r.loader())
		if got, want := lay.Size(), 256*w+56+8; got != want {
			t.Errorf("w=%d: trailer %d bytes, want %d", w, got, want)
		}
		if got := offsetSlot - lay.ExtraCellOff(offsetSlot, 0); got != 48 {
			t.Errorf("w=%d: TLV sizes at E-%d, want E-48", w, got)
		}
		if got := offsetSlot - lay.SwapSizeOff(offsetSlot); got != 56 {
			t.Errorf("w=%d: swap_size at E-%d, want E-56", w, got)
		}
	}
}

// TestSwapOffsetGeometry: the update starts one sector in and ends below
// the trailer sectors; non-uniform or too small slots are refused.
func TestSwapOffsetGeometry(t *testing.T) {
	r := newOffsetRig(t, 8, 0xff)
	l := r.loader()
	// 12 sectors - 3 trailer sectors (2112 bytes) - 1 sector of offset.
	if got, want := l.strategy.MaxImageSize(l), int64(8*offsetSector); got != want {
		t.Errorf("max image %#x, want %#x", got, want)
	}
	for _, st := range []SwapType{SwapNone, SwapTest, SwapPerm} {
		if got := l.strategy.SecondaryImageOffset(l, st); got != offsetSector {
			t.Errorf("secondary image offset for %s %#x, want one sector", st, got)
		}
	}
	if got := l.strategy.SecondaryImageOffset(l, SwapRevert); got != 0 {
		t.Errorf("secondary image offset for a revert %#x, want 0", got)
	}
	dev := flashsim.New(flashsim.Uniform(8, offsetSector, 8, 0xff), flashsim.Options{})
	p, _ := flashsim.NewArea(dev, flashsim.Partition{Name: "primary", Offset: 0, Size: 4 * offsetSector})
	s, _ := flashsim.NewArea(dev, flashsim.Partition{Name: "secondary", Offset: 4 * offsetSector, Size: 4 * offsetSector})
	if _, err := New(Config{Strategy: "swap-offset"}, p, s, nil); !errors.Is(err, ErrIncompatibleSlots) {
		t.Errorf("4-sector slots with a 3-sector trailer: %v, want ErrIncompatibleSlots", err)
	}
	mixed := &flashsim.Geometry{Regions: []flashsim.Region{{Count: 4, Size: 4096}, {Count: 1, Size: 16384}, {Count: 4, Size: 4096}, {Count: 1, Size: 16384}}, WriteSize: 4, EraseValue: 0xff}
	must(t, mixed.Validate())
	dev = flashsim.New(mixed, flashsim.Options{})
	p, _ = flashsim.NewArea(dev, flashsim.Partition{Name: "primary", Offset: 0, Size: 32768})
	s, _ = flashsim.NewArea(dev, flashsim.Partition{Name: "secondary", Offset: 32768, Size: 32768})
	if _, err := New(Config{Strategy: "swap-offset", MaxImgSectors: 16}, p, s, nil); !errors.Is(err, ErrIncompatibleSlots) {
		t.Errorf("mixed sector sizes: %v, want ErrIncompatibleSlots", err)
	}
}

// TestSwapOffsetUpgradeRevert: a test upgrade leaves the old image at
// secondary offset 0 and records both TLV sizes; the next boot reverts it
// back one sector in; the boot after changes nothing.
func TestSwapOffsetUpgradeRevert(t *testing.T) {
	for _, ev := range []byte{0xff, 0x00} {
		for _, w := range []int{1, 4, 8} {
			r := newOffsetRig(t, w, ev)
			r.pending(r.new, false)
			if res := r.boot(); res.SwapType != SwapTest || res.Header.Version.Minor != 1 {
				t.Fatalf("ev %#x w %d: first boot did %s to %s", ev, w, res.SwapType, res.Header.Version)
			}
			r.checkUpgraded("after the test upgrade", false)
			l := r.loader()
			cell, err := l.PrimaryTrailer().ReadExtraCell(0, 4)
			must(t, err)
			// Recorded when the swap started: the new image was in the
			// secondary (high half), the old one in the primary.
			oldExt, err := ReadExtent(r.sec, 0)
			must(t, err)
			newImg, err := image.Parse(bytes.NewReader(r.new), int64(len(r.new)))
			must(t, err)
			want := packTLVSizes(uint16(unprotectedTLVSize(newImg)), uint16(oldExt.UnprotectedTLVSize))
			if got := binary.LittleEndian.Uint32(cell); got != want || got>>16 == 0 || got&0xffff == 0 {
				t.Errorf("TLV sizes cell %#x, want %#x", got, want)
			}
			if st, err := ReadSwapType(l.Primary(), l.Secondary()); err != nil || st != SwapRevert {
				t.Errorf("unconfirmed test image: swap type %s (%v), want revert", st, err)
			}
			if ext, err := ReadExtent(r.sec, l.strategy.SecondaryImageOffset(l, SwapRevert)); err != nil || !ext.Present || ext.Header.Version.Minor != 0 {
				t.Errorf("the revert's offset does not hold the old image: %+v %v", ext, err)
			}
			if res := r.boot(); res.SwapType != SwapRevert || res.Header.Version.Minor != 0 {
				t.Fatalf("second boot did %s to %s", res.SwapType, res.Header.Version)
			}
			r.checkReverted("after the revert")
			before := r.snapshot()
			if res := r.boot(); res.SwapType != SwapNone {
				t.Fatalf("third boot did %s", res.SwapType)
			}
			if !bytes.Equal(before, r.snapshot()) {
				t.Error("the boot after the revert changed the flash")
			}
		}
	}
}

func (r *offsetRig) snapshot() []byte {
	b := make([]byte, r.dev.Geometry().Size())
	_, err := r.dev.ReadAt(b, 0)
	must(r.t, err)
	return b
}

// TestSwapOffsetConfirmedNeverReverts: a confirmed test image stays, and
// the old image stays at secondary offset 0 until a new download.
func TestSwapOffsetConfirmedNeverReverts(t *testing.T) {
	r := newOffsetRig(t, 8, 0xff)
	r.pending(r.new, false)
	r.boot()
	must(t, Confirm(r.pri))
	for i := 0; i < 2; i++ {
		if res := r.boot(); res.SwapType != SwapNone {
			t.Fatalf("boot %d after confirming did %s", i+1, res.SwapType)
		}
		r.checkUpgraded("confirmed", true)
	}
}

// TestSwapOffsetRejectsImageAtOffsetZero: an update downloaded at the
// start of the secondary instead of one sector in (MCUboot's "wrong upload
// address") is not installed, and the primary is untouched.
func TestSwapOffsetRejectsImageAtOffsetZero(t *testing.T) {
	for _, n := range []int{500, 5000} { // within sector 0, and spanning it
		r := newOffsetRig(t, 8, 0xff)
		installConfirmed(t, r.pri, r.old)
		img := r.sign(image.Version{Major: 2}, n)
		program(r.t, r.sec, 0, img)
		must(t, SetPending(r.sec, true))
		res := r.boot()
		if res.SwapType != SwapNone || res.Rejected == nil || res.Header.Version.Major != 1 {
			t.Fatalf("image at offset 0 (%d bytes): swap %s, rejected %v, booted %s", n, res.SwapType, res.Rejected, res.Header.Version)
		}
		if !r.holds(r.pri, 0, r.old) {
			t.Fatal("primary changed")
		}
		p, s := r.trailers()
		if p.Magic != MagicGood || p.ImageOK != FlagSet || p.CopyDone != FlagUnset || s.Magic != MagicUnset {
			t.Fatalf("trailers after the rejection: primary (%s, %s, %s), secondary %s", p.Magic, p.ImageOK, p.CopyDone, s.Magic)
		}
		if res := r.boot(); res.SwapType != SwapNone {
			t.Fatalf("second boot did %s", res.SwapType)
		}
	}
}

// fixupOps is the number of flash operations fixup_revert performs on an
// erased secondary trailer: copy_done, swap_info, swap_size, TLV sizes,
// generation, magic.
const fixupOps = 6

// revertReady returns a rig after an unconfirmed test upgrade.
func revertReady(t *testing.T) *offsetRig {
	r := newOffsetRig(t, 8, 0xff)
	r.pending(r.new, false)
	r.boot()
	r.checkUpgraded("test upgrade", false)
	return r
}

// TestSwapOffsetRowI: a cut right after the revert scrambled the primary
// trailer leaves only fixup_revert's record, (GOOD, UNSET, SET) in the
// secondary: row I selects the revert, where row II alone would install the
// old image as a test; the next boot completes the revert.
func TestSwapOffsetRowI(t *testing.T) {
	r := revertReady(t)
	scramble := len(r.loader().PrimaryTrailer().Sectors()) // one erase per sector
	if err := r.cutBoot(flashsim.PowerCut{Op: fixupOps + scramble, Kind: flashsim.CutAfter}); !errors.Is(err, flashsim.ErrPowerLoss) {
		t.Fatalf("boot with the cut armed: %v", err)
	}
	p, s := r.trailers()
	if p.Magic != MagicUnset || s.Magic != MagicGood || s.ImageOK != FlagUnset || s.CopyDone != FlagSet || s.SwapType != SwapRevert {
		t.Fatalf("after the scramble: primary %s, secondary (%s, %s, %s) %s", p.Magic, s.Magic, s.ImageOK, s.CopyDone, s.SwapType)
	}
	if got := DecideSwapType(p, s, true); got != SwapRevert {
		t.Fatalf("table with row I: %s", got)
	}
	if got := DecideSwapType(p, s, false); got != SwapTest {
		t.Fatalf("table without row I: %s, want test (the hazard row I exists for)", got)
	}
	if res := r.boot(); res.SwapType != SwapRevert {
		t.Fatalf("boot after the cut did %s", res.SwapType)
	}
	r.checkReverted("after row I")
}

// TestSwapOffsetTornFixupMagic is issue #1966 on swap-offset: the magic
// write of fixup_revert is torn, leaving a bad secondary magic that no
// upgrade row matches. Row IV (secondary magic "any") still reverts, and the
// torn record is erased and rewritten rather than trusted.
func TestSwapOffsetTornFixupMagic(t *testing.T) {
	bad := 0
	for seed := uint64(0); seed < 40; seed++ {
		r := revertReady(t)
		r.dev.SetRand(rand.New(rand.NewPCG(seed, 1966)))
		if err := r.cutBoot(flashsim.PowerCut{Op: fixupOps, Kind: flashsim.CutDuring}); !errors.Is(err, flashsim.ErrPowerLoss) {
			t.Fatalf("seed %d: boot with the cut armed: %v", seed, err)
		}
		if _, s := r.trailers(); s.Magic == MagicBad {
			bad++
		}
		if res := r.boot(); res.SwapType != SwapRevert {
			t.Fatalf("seed %d: boot after the torn magic did %s", seed, res.SwapType)
		}
		r.checkReverted("after the torn magic")
	}
	if bad == 0 {
		t.Fatal("no seed left a bad secondary magic: the test exercises nothing")
	}
}

// tearPrimaryTrailer rewrites the primary's trailer sectors as a torn erase
// may leave them: every byte kept except copy_done, so the completed
// previous swap's record reads as unfinished.
func tearPrimaryTrailer(t *testing.T, r *offsetRig) {
	l := r.loader()
	pt := l.PrimaryTrailer()
	for _, sec := range pt.Sectors() {
		b := make([]byte, sec.Size)
		_, err := r.pri.ReadAt(b, sec.Offset)
		must(t, err)
		if cd := pt.Layout().CopyDoneOff(r.pri.Size()); cd >= sec.Offset && cd < sec.Offset+sec.Size {
			b[cd-sec.Offset] = r.pri.EraseValue()
		}
		must(t, r.pri.Erase(sec.Offset, sec.Size))
		must(t, r.pri.Program(sec.Offset, b))
	}
	p, _ := r.trailers()
	if p.Magic != MagicGood || !p.GenerationValid || !p.SwapType.isUpgrade() || p.CopyDone != FlagUnset {
		t.Fatalf("torn trailer does not read as an open record: %+v", p)
	}
}

// TestSwapOffsetStaleRecordRevert: a torn scramble of the primary trailer at
// the start of a revert can leave the upgrade's record intact but for
// copy_done, an apparently unfinished TEST. The newer generation of
// fixup_revert's record marks it stale: it is not resumed, and the revert
// completes.
func TestSwapOffsetStaleRecordRevert(t *testing.T) {
	r := revertReady(t)
	leaveStaleRecord(t, r, flashsim.PowerCut{Op: fixupOps + 1, Kind: flashsim.CutBefore})
	if res := r.boot(); res.SwapType != SwapRevert {
		t.Fatalf("boot did %s", res.SwapType)
	}
	r.checkReverted("after the stale record")
}

// leaveStaleRecord cuts a boot at cut, tears the primary trailer as a torn
// scramble can, and checks that Resume does not take what is left for a
// swap to finish.
func leaveStaleRecord(t *testing.T, r *offsetRig, cut flashsim.PowerCut) {
	t.Helper()
	if err := r.cutBoot(cut); !errors.Is(err, flashsim.ErrPowerLoss) {
		t.Fatalf("boot with the cut armed: %v", err)
	}
	tearPrimaryTrailer(t, r)
	if _, resumed, err := resumeOffset(t, r.loader()); err != nil || resumed {
		t.Fatalf("stale record resumed (%v, %v)", resumed, err)
	}
}

// resumeOffset runs swap-offset's Resume alone, as Boot starts.
func resumeOffset(t *testing.T, l *Loader) (SwapType, bool, error) {
	t.Helper()
	tr, err := l.readTrailers()
	must(t, err)
	return (swapOffset{}).Resume(l, tr)
}

// TestSwapOffsetStaleRecordUpgrade: the same tear at the start of a second
// upgrade; the generation stamped on the request marks the record stale.
func TestSwapOffsetStaleRecordUpgrade(t *testing.T) {
	r := secondUpgradeReady(t)
	leaveStaleRecord(t, r, flashsim.PowerCut{Op: 2, Kind: flashsim.CutBefore}) // after the stamp
	if res := r.boot(); res.SwapType != SwapPerm {
		t.Fatalf("boot did %s", res.SwapType)
	}
	r.checkUpgraded("second upgrade", true)
}

// secondUpgradeReady: after a permanent upgrade to 1.1, the secondary is
// erased and 1.2 downloaded and set pending. The rig's old/new become
// 1.1/1.2.
func secondUpgradeReady(t *testing.T) *offsetRig {
	r := newOffsetRig(t, 8, 0xff)
	r.pending(r.new, true)
	r.boot()
	r.checkUpgraded("first upgrade", true)
	must(t, r.sec.EraseAll())
	next := r.sign(image.Version{Major: 1, Minor: 2}, 3000)
	program(r.t, r.sec, offsetSector, next)
	must(t, SetPending(r.sec, true))
	r.old, r.new = r.new, next
	return r
}

// TestSwapOffsetSecondUpgradeSweep cuts the power before, after and during
// every operation of a second upgrade (whose primary trailer holds a
// completed swap's record, unlike the factory trailer the bootsweep
// package starts from) and of the revert of a second test upgrade.
func TestSwapOffsetSecondUpgradeSweep(t *testing.T) {
	kinds := []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring}
	for _, revert := range []bool{false, true} {
		prepare := func() *offsetRig {
			r := secondUpgradeReady(t)
			if !revert {
				return r
			}
			// Make the second request a test and install it; the sweep
			// then cuts its revert.
			must(t, r.sec.EraseAll())
			program(r.t, r.sec, offsetSector, r.new)
			must(t, SetPending(r.sec, false))
			r.boot()
			r.checkUpgraded("second test upgrade", false)
			return r
		}
		probe := prepare()
		before := probe.dev.Ops()
		probe.boot()
		ops := probe.dev.Ops() - before
		for op := 1; op <= ops; op++ {
			for _, k := range kinds {
				r := prepare()
				r.dev.SetRand(rand.New(rand.NewPCG(uint64(op), uint64(k))))
				if err := r.cutBoot(flashsim.PowerCut{Op: op, Kind: k}); !errors.Is(err, flashsim.ErrPowerLoss) {
					t.Fatalf("revert=%v op %d %s: boot with the cut armed: %v", revert, op, k, err)
				}
				if _, err := r.loader().Boot(); err != nil {
					t.Fatalf("revert=%v op %d %s: boot after the cut: %v", revert, op, k, err)
				}
				if revert {
					r.checkRevertedTo(t, op, k)
				} else {
					r.checkUpgraded("second upgrade after a cut", true)
				}
			}
		}
	}
}

// checkRevertedTo checks a reverted second test upgrade: 1.1 back in the
// primary, 1.2 one sector into the secondary.
func (r *offsetRig) checkRevertedTo(t *testing.T, op int, k flashsim.CutKind) {
	t.Helper()
	if !r.holds(r.pri, 0, r.old) || !r.holds(r.sec, offsetSector, r.new) {
		t.Fatalf("op %d %s: images not reverted", op, k)
	}
	r.checkReverted("revert of the second upgrade")
}

// FuzzSwapOffsetBoot writes arbitrary trailers (untrusted flash contents:
// torn records, stray status entries) into both slots of a device with an
// image in each, then boots twice: no panic, and only documented errors.
// The inputs are the info fields above each status area and byte 0 of the
// first primary status entries, which keeps them small enough to mutate.
func FuzzSwapOffsetBoot(f *testing.F) {
	const maxEntries = 24
	r := newOffsetRig(f, 8, 0xff)
	lay := r.loader().strategy.SlotLayout(r.loader())
	info := lay.InfoSize()
	// Seeds: real states (pending, mid-upgrade, mid-revert, done).
	for _, op := range []int{0, 10, 40, 1000} {
		rr := newOffsetRig(f, 8, 0xff)
		rr.pending(rr.new, op == 40)
		if op == 1000 {
			_, _ = rr.loader().Boot()
			op = 20 // then cut the revert
		}
		if op > 0 {
			_ = rr.cutBoot(flashsim.PowerCut{Op: op, Kind: flashsim.CutAfter})
		}
		p := make([]byte, info)
		s := make([]byte, info)
		_, _ = rr.pri.ReadAt(p, offsetSlot-int64(info))
		_, _ = rr.sec.ReadAt(s, offsetSlot-int64(info))
		st, err := rr.loader().PrimaryTrailer().ReadStatus()
		must(f, err)
		f.Add(p, s, st[:maxEntries], uint8(op))
	}
	f.Fuzz(func(t *testing.T, pri, sec, status []byte, sel uint8) {
		r := newOffsetRig(t, 8, 0xff)
		program(r.t, r.pri, 0, r.old)
		program(r.t, r.sec, int64(sel%2)*offsetSector, r.new)
		for _, x := range []struct {
			a *flashsim.Area
			b []byte
		}{{r.pri, pri}, {r.sec, sec}} {
			b := x.b
			if len(b) > info {
				b = b[:info]
			}
			b = b[:len(b)/8*8]
			if len(b) > 0 {
				must(t, x.a.Program(offsetSlot-int64(len(b)), b))
			}
		}
		pt := r.loader().PrimaryTrailer()
		for i, v := range status[:min(len(status), maxEntries)] {
			if v != r.pri.EraseValue() {
				must(t, pt.WriteStatus(i, v))
			}
		}
		for i := 0; i < 2; i++ {
			_, err := r.loader().Boot()
			var oe *flashsim.OpError
			if err != nil && !errors.Is(err, ErrNoBootableImage) && !errors.Is(err, ErrInconsistentStatus) && !errors.As(err, &oe) {
				t.Fatalf("boot %d: undocumented error %v", i+1, err)
			}
		}
	})
}
