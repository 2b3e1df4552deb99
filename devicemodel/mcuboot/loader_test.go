package mcuboot

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// smallSlots is a k64f-like layout small enough for fuzzing: 8-sector slots
// of 1 KiB sectors and a one-sector scratch.
func smallSlots(t testing.TB, w int) (*flashsim.Device, *flashsim.Area, *flashsim.Area, *flashsim.Area) {
	dev := flashsim.New(flashsim.Uniform(20, 1024, w, 0xff), flashsim.Options{})
	p, err := flashsim.NewArea(dev, flashsim.Partition{Name: "primary", Offset: 0, Size: 8 * 1024})
	must(t, err)
	s, err := flashsim.NewArea(dev, flashsim.Partition{Name: "secondary", Offset: 8 * 1024, Size: 8 * 1024})
	must(t, err)
	x, err := flashsim.NewArea(dev, flashsim.Partition{Name: "scratch", Offset: 16 * 1024, Size: 1024})
	must(t, err)
	return dev, p, s, x
}

func testKey(t testing.TB) crypto.Signer {
	return ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
}

func signed(t testing.TB, key crypto.Signer, v image.Version, n int) []byte {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i*7 + int(v.Minor))
	}
	b, err := image.Sign(payload, image.SignOptions{Key: key, Version: v, HeaderSize: image.HeaderSize, PadHeader: true})
	must(t, err)
	return b
}

// must fails the test on an error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// program writes b at off in a, padded with the erase value to the write
// size, as a flash writer does.
func program(t testing.TB, a *flashsim.Area, off int64, b []byte) {
	t.Helper()
	w := a.WriteSize()
	buf := make([]byte, (len(b)+w-1)/w*w)
	fill(buf, a.EraseValue())
	copy(buf, b)
	must(t, a.Program(off, buf))
}

// installConfirmed puts img at the start of the primary slot p and marks
// it confirmed, as imgtool --pad --confirm does for a factory image.
func installConfirmed(t testing.TB, p *flashsim.Area, img []byte) {
	t.Helper()
	program(t, p, 0, img)
	ft := NewTrailer(p, flagLayout(p))
	must(t, ft.WriteImageOK())
	must(t, ft.WriteMagic())
}

// mustArea opens a's partition on f (a clone of a's device).
func mustArea(t testing.TB, f flashsim.Flash, a *flashsim.Area) *flashsim.Area {
	t.Helper()
	na, err := flashsim.NewArea(f, a.Partition())
	must(t, err)
	return na
}

func TestNewErrors(t *testing.T) {
	_, p, s, x := smallSlots(t, 8)
	if _, err := New(Config{Strategy: "swap-sideways"}, p, s, x); !errors.Is(err, ErrUnknownStrategy) {
		t.Errorf("unknown strategy: %v", err)
	}
	if _, err := New(Config{Strategy: "swap-scratch"}, p, s, nil); !errors.Is(err, ErrIncompatibleSlots) {
		t.Errorf("swap-scratch without scratch: %v", err)
	}
	if _, err := New(Config{Strategy: "swap-scratch", MaxImgSectors: 4}, p, s, x); !errors.Is(err, ErrIncompatibleSlots) {
		t.Errorf("8 sectors with MaxImgSectors 4: %v", err)
	}
	if _, err := New(Config{Strategy: "overwrite", CopyChunk: 12}, p, s, x); err == nil {
		t.Error("a copy chunk that is not a multiple of the write size is accepted")
	}
	if _, err := New(Config{Strategy: "overwrite"}, p, s, nil); err != nil {
		t.Errorf("overwrite needs no scratch: %v", err)
	}
}

// TestBootSurfacesPowerLoss: a cut at any operation of a swap returns an
// error that errors.Is recognises as ErrPowerLoss, and the next boot
// finishes the swap.
func TestBootSurfacesPowerLoss(t *testing.T) {
	key := testKey(t)
	for _, strategy := range []string{"overwrite", "swap-scratch"} {
		for op := 1; ; op++ {
			dev, p, s, x := smallSlots(t, 8)
			old, nw := signed(t, key, image.Version{Major: 1}, 2000), signed(t, key, image.Version{Major: 1, Minor: 1}, 3000)
			program(t, p, 0, old)
			program(t, s, 0, nw)
			must(t, SetPending(s, true))
			cfg := Config{Strategy: strategy, Keys: []crypto.PublicKey{key.Public()}, MaxImgSectors: 8}
			f := flashsim.Wrap(dev, flashsim.PowerCut{Op: op, Kind: flashsim.CutBefore}.Injector())
			l, err := New(cfg, mustArea(t, f, p), mustArea(t, f, s), mustArea(t, f, x))
			must(t, err)
			res, err := l.Boot()
			if err == nil {
				if res.SwapType != SwapPerm || res.Header.Version.Minor != 1 {
					t.Errorf("%s: uncut boot did %s to %s", strategy, res.SwapType, res.Header.Version)
				}
				if op < 5 {
					t.Errorf("%s: only %d operations", strategy, op-1)
				}
				break
			}
			if !errors.Is(err, flashsim.ErrPowerLoss) {
				t.Fatalf("%s op %d: %v, want a power loss", strategy, op, err)
			}
			f.PowerOn() // the cut struck: it does not come again
			res, err = l.Boot()
			if err != nil || res.Header.Version.Minor != 1 {
				t.Fatalf("%s op %d: boot after the cut: %v", strategy, op, err)
			}
		}
	}
}

// FuzzBoot writes arbitrary bytes over the headers and trailers of both
// slots and the scratch area (untrusted flash contents) and boots: the boot
// must not panic, and it must fail only with a documented error.
func FuzzBoot(f *testing.F) {
	key := testKey(f)
	img := signed(f, key, image.Version{Major: 1}, 1500)
	f.Add(img[:64], []byte{}, []byte{}, []byte{}, uint8(0))
	gen := make([]byte, 80)
	fill(gen, 0xff)
	copy(gen[64:], image.BootMagic[:])
	gen[24], gen[32] = 3, 7 // swap_info PERM, swap_size
	gen[16], gen[20] = 1, 0xfe
	f.Add(img[:64], gen, gen, []byte{1, 2, 3}, uint8(1))
	f.Add([]byte{0x3d, 0xb8, 0xf3, 0x96, 0, 0, 0, 0, 0x20}, image.BootMagic[:], []byte{}, gen, uint8(3))
	f.Fuzz(func(t *testing.T, hdr, priTrailer, secTrailer, scrTrailer []byte, sel uint8) {
		_, p, s, x := smallSlots(t, 8)
		program(t, p, 0, img)
		if len(hdr) > 512 {
			hdr = hdr[:512]
		}
		if len(hdr) > 0 {
			program(t, s, 0, hdr)
		}
		for _, tr := range []struct {
			a *flashsim.Area
			b []byte
		}{{p, priTrailer}, {s, secTrailer}, {x, scrTrailer}} {
			b := tr.b
			if len(b) > 512 {
				b = b[:512]
			}
			n := (len(b) + 7) / 8 * 8
			if n > 0 {
				// Only bytes that are not erased can be programmed over the
				// primary image's tail: keep within the last sector.
				program(t, tr.a, tr.a.Size()-int64(n), b)
			}
		}
		strategy := []string{"overwrite", "swap-scratch"}[sel%2]
		cfg := Config{Strategy: strategy, Keys: []crypto.PublicKey{key.Public()}, ValidatePrimary: sel&2 != 0, MaxImgSectors: 8}
		l, err := New(cfg, p, s, x)
		must(t, err)
		for i := 0; i < 2; i++ {
			_, err := l.Boot()
			var oe *flashsim.OpError
			if err != nil && !errors.Is(err, ErrNoBootableImage) && !errors.Is(err, ErrInconsistentStatus) && !errors.As(err, &oe) {
				t.Fatalf("boot %d: undocumented error %v", i+1, err)
			}
		}
	})
}

// TestNonBootableFlag: a valid image flagged non-bootable is kept (only its
// trailer is cleared, as MCUboot does), but a torn header whose erased bytes
// happen to set the flag is a wreck and the slot is erased.
func TestNonBootableFlag(t *testing.T) {
	key := testKey(t)
	for _, torn := range []bool{false, true} {
		_, p, s, x := smallSlots(t, 8)
		old := signed(t, key, image.Version{Major: 1}, 2000)
		program(t, p, 0, old)
		payload := make([]byte, 2500)
		nb, err := image.Sign(payload, image.SignOptions{Key: key, Version: image.Version{Major: 2}, HeaderSize: image.HeaderSize, PadHeader: true, Flags: image.FlagNonBootable})
		must(t, err)
		if torn {
			// The valid image, with the flags field as a torn erase of the
			// header sector may leave it: some bytes erased to 0xff.
			nb = signed(t, key, image.Version{Major: 2}, 2500)
			nb[0x10], nb[0x11] = 0xff, 0xff
		}
		program(t, s, 0, nb)
		must(t, SetPending(s, true))
		l, err := New(Config{Strategy: "swap-scratch", Keys: []crypto.PublicKey{key.Public()}, MaxImgSectors: 8}, p, s, x)
		must(t, err)
		res, err := l.Boot()
		must(t, err)
		if res.SwapType != SwapNone || res.Rejected == nil {
			t.Fatalf("torn=%v: boot did %s, rejected %v", torn, res.SwapType, res.Rejected)
		}
		hdr, err := ReadExtent(s, 0)
		must(t, err)
		st, err := NewTrailer(s, l.Strategy().SlotLayout(l)).Read()
		must(t, err)
		if st.Magic != MagicUnset {
			t.Errorf("torn=%v: secondary trailer kept: %+v", torn, st)
		}
		if hdr.Present == torn {
			t.Errorf("torn=%v: secondary image present=%v", torn, hdr.Present)
		}
		if torn && !errors.Is(res.Rejected, image.ErrHashMismatch) {
			t.Errorf("torn header rejected for %v, want a hash mismatch", res.Rejected)
		}
	}
}

// TestValidatePrimary: without MCUBOOT_VALIDATE_PRIMARY_SLOT only the
// primary's header is checked; with it a damaged image never boots.
func TestValidatePrimary(t *testing.T) {
	key := testKey(t)
	img := signed(t, key, image.Version{Major: 1}, 2000)
	img[100] ^= 0xff // damage the payload, not the header
	for _, validate := range []bool{false, true} {
		_, p, s, x := smallSlots(t, 8)
		program(t, p, 0, img)
		l, err := New(Config{Strategy: "overwrite", Keys: []crypto.PublicKey{key.Public()}, ValidatePrimary: validate}, p, s, x)
		must(t, err)
		res, err := l.Boot()
		if validate {
			if !errors.Is(err, ErrNoBootableImage) || !errors.Is(err, image.ErrHashMismatch) {
				t.Errorf("validated boot of a damaged image: %v", err)
			}
			continue
		}
		if err != nil || res.Header.Version.Major != 1 || res.Image != nil {
			t.Errorf("unvalidated boot: %+v, %v", res, err)
		}
	}
}
