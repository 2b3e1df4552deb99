package mcuboot

import (
	"bytes"
	"crypto"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// scratchSetup is a swap-scratch device whose new image reaches into the
// last sector, so that the first region swapped holds the trailer and keeps
// its status in the scratch area ("use scratch").
func scratchSetup(t *testing.T) (*flashsim.FaultyFlash, *Loader, []byte, []byte) {
	part, p, s, x := smallSlots(t, 8)
	dev := flashsim.Wrap(part, nil) // for cuts
	p, s, x = mustArea(t, dev, p), mustArea(t, dev, s), mustArea(t, dev, x)
	key := testKey(t)
	cfg := Config{Strategy: "swap-scratch", Keys: []crypto.PublicKey{key.Public()}, MaxImgSectors: 8, CopyChunk: 256}
	l, err := New(cfg, p, s, x)
	must(t, err)
	maxSize := l.Strategy().MaxImageSize(l)
	old := signed(t, key, image.Version{Major: 1}, 3000)
	probe := signed(t, key, image.Version{Major: 1, Minor: 1}, 1)
	nw := signed(t, key, image.Version{Major: 1, Minor: 1}, int(maxSize)-len(probe)+1)
	if int64(len(nw)) != maxSize {
		t.Fatalf("new image is %d bytes, want %d", len(nw), maxSize)
	}
	installConfirmed(t, p, old)
	program(t, s, 0, nw)
	must(t, SetPending(s, true))
	return dev, l, old, nw
}

// cutWhen runs boots cut after successive operations until stop reports
// the state it looks for; it returns the device in that state, powered on
// again, the cut spent.
func cutWhen(t *testing.T, stop func(l *Loader) bool) (*flashsim.FaultyFlash, *Loader, []byte, []byte) {
	for op := 1; op < 1000; op++ {
		dev, l, old, nw := scratchSetup(t)
		dev.Arm(flashsim.PowerCut{Op: op, Kind: flashsim.CutAfter}.Injector())
		if _, err := l.Boot(); err == nil {
			break
		}
		dev.PowerOn()
		if stop(l) {
			return dev, l, old, nw
		}
	}
	t.Fatal("state never reached")
	return nil, nil, nil, nil
}

// regionZeroDone: the primary trailer records region 0 complete while the
// scratch trailer is still there (power lost before the scratch erase).
func regionZeroDone(l *Loader) bool {
	xs, _ := NewTrailer(l.Scratch(), swapScratch{}.scratchLayout(l)).Read()
	entries, _ := l.PrimaryTrailer().ReadStatus()
	n, _ := WrittenPrefix(entries, 0xff)
	return xs.Magic == MagicGood && n == 3
}

// tear rewrites the scratch area as a torn erase could leave it: the bytes
// for which keep returns false are erased, the others keep their value.
func tear(t *testing.T, x *flashsim.Area, keep func(off int) bool) {
	buf := make([]byte, x.Size())
	_, err := x.ReadAt(buf, 0)
	must(t, err)
	for i := range buf {
		if !keep(i) {
			buf[i] = x.EraseValue()
		}
	}
	must(t, x.Erase(0, x.Size()))
	must(t, x.Program(0, buf))
}

func expectSwapped(t *testing.T, l *Loader, old, nw []byte) {
	t.Helper()
	for _, c := range []struct {
		a    *flashsim.Area
		want []byte
	}{{l.Primary(), nw}, {l.Secondary(), old}} {
		got := make([]byte, len(c.want))
		_, err := c.a.ReadAt(got, 0)
		must(t, err)
		if !bytes.Equal(got, c.want) {
			t.Errorf("%s slot does not hold the expected image", c.a.Name())
		}
	}
	st, err := l.PrimaryTrailer().Read()
	must(t, err)
	if st.Magic != MagicGood || st.ImageOK != FlagSet || st.CopyDone != FlagSet {
		t.Errorf("primary trailer %+v, want GOOD/SET/SET", st)
	}
}

// TestScratchSurvivorDamagedData: the final erase of the scratch tears,
// leaving its trailer intact over damaged data. MCUboot would trust the
// scratch's good magic and redo the region from the damaged data; the
// generation check must not.
func TestScratchSurvivorDamagedData(t *testing.T) {
	_, l, old, nw := cutWhen(t, regionZeroDone)
	x := l.Scratch()
	trailerStart := int(x.Size()) - swapScratch{}.scratchLayout(l).Size()
	tear(t, x, func(off int) bool { return off >= trailerStart || off%3 != 0 })
	res, err := l.Boot()
	must(t, err)
	if !res.Resumed {
		t.Error("the swap was not resumed")
	}
	expectSwapped(t, l, old, nw)
	if xs, _ := NewTrailer(x, swapScratch{}.scratchLayout(l)).Read(); xs.Magic == MagicGood {
		t.Errorf("the surviving scratch trailer was left in place: %+v", xs)
	}
	// And it is never replayed later.
	for i := 0; i < 2; i++ {
		res, err := l.Boot()
		must(t, err)
		if res.SwapType != SwapNone {
			t.Errorf("later boot did %s", res.SwapType)
		}
		expectSwapped(t, l, old, nw)
	}
}

// TestScratchSurvivorStatusGap: the torn erase un-writes the first status
// entry of the scratch but keeps the second: a gap that would read as an
// inconsistent status if the survivor were consulted.
func TestScratchSurvivorStatusGap(t *testing.T) {
	_, l, old, nw := cutWhen(t, regionZeroDone)
	x := l.Scratch()
	e0 := int(swapScratch{}.scratchLayout(l).StatusEntryOff(x.Size(), 0))
	tear(t, x, func(off int) bool { return off != e0 })
	if _, err := l.Boot(); err != nil {
		t.Fatalf("boot over a torn scratch: %v", err)
	}
	expectSwapped(t, l, old, nw)
}

// TestRevertResumesWithoutEntries: a revert interrupted after the primary
// trailer was initialised (with the scratch already erased) but before any
// status entry resumes from swap_info instead of forgetting the swap.
func TestRevertResumesWithoutEntries(t *testing.T) {
	dev, p, s, x := smallSlots(t, 8)
	key := testKey(t)
	cfg := Config{Strategy: "swap-scratch", Keys: []crypto.PublicKey{key.Public()}, MaxImgSectors: 8, CopyChunk: 256}
	l, err := New(cfg, p, s, x)
	must(t, err)
	old := signed(t, key, image.Version{Major: 1}, 2000)
	nw := signed(t, key, image.Version{Major: 1, Minor: 1}, 2500)
	program(t, p, 0, old)
	program(t, s, 0, nw)
	must(t, SetPending(s, false))
	if res, err := l.Boot(); err != nil || res.SwapType != SwapTest {
		t.Fatalf("test upgrade: %+v, %v", res, err)
	}
	// Find the cut right after the revert initialised the primary trailer
	// and erased the scratch (the first program into the scratch is next).
	for op := 1; ; op++ {
		c := flashsim.Wrap(dev.Clone(), flashsim.PowerCut{Op: op, Kind: flashsim.CutAfter}.Injector())
		lc, err := New(cfg, mustArea(t, c, p), mustArea(t, c, s), mustArea(t, c, x))
		must(t, err)
		if _, err := lc.Boot(); err == nil {
			t.Fatal("state never reached")
		}
		c.PowerOn() // the cut struck: it does not come again
		ps, _ := lc.PrimaryTrailer().Read()
		xs, _ := NewTrailer(lc.Scratch(), swapScratch{}.scratchLayout(lc)).Read()
		entries, _ := lc.PrimaryTrailer().ReadStatus()
		if n, _ := WrittenPrefix(entries, 0xff); ps.Magic != MagicGood || ps.SwapType != SwapRevert || xs.Magic != MagicUnset || n != 0 {
			continue
		}
		res, err := lc.Boot()
		must(t, err)
		if !res.Resumed || res.SwapType != SwapRevert || res.Header.Version.Minor != 0 {
			t.Errorf("boot after the cut: %+v; want the revert resumed", res)
		}
		return
	}
}
