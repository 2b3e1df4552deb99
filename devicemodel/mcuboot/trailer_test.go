package mcuboot

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// TestTrailerSizes is reference §2's table of trailer sizes.
func TestTrailerSizes(t *testing.T) {
	cases := []struct {
		w                        int
		scratchMove, offset, scr int
	}{
		{1, 432, 312, 51},
		{2, 816, 568, 54},
		{4, 1584, 1080, 60},
		{8, 3120, 2104, 72},
	}
	for _, c := range cases {
		if got := (TrailerLayout{WriteSize: c.w, StatusEntries: 128 * 3}).Size(); got != c.scratchMove {
			t.Errorf("w=%d scratch/move trailer = %d, want %d", c.w, got, c.scratchMove)
		}
		if got := (TrailerLayout{WriteSize: c.w, StatusEntries: 128 * 2, ExtraCells: 1}).Size(); got != c.offset {
			t.Errorf("w=%d offset trailer = %d, want %d", c.w, got, c.offset)
		}
		if got := (TrailerLayout{WriteSize: c.w, StatusEntries: 3}).Size(); got != c.scr {
			t.Errorf("w=%d scratch-area trailer = %d, want %d", c.w, got, c.scr)
		}
	}
	// imgtool's fit-check formula (an independent implementation in package
	// image) must agree for every write size, max-align cells included.
	for _, w := range []int{1, 2, 4, 8, 16, 32} {
		l := TrailerLayout{WriteSize: w, StatusEntries: 128 * 3}
		if want := image.TrailerSize(w, max(8, w), 128, false); l.Size() != want {
			t.Errorf("w=%d trailer = %d, imgtool reserves %d", w, l.Size(), want)
		}
		if want := image.ImageOKOffset(max(8, w)); int(1<<20-l.ImageOKOff(1<<20)) != want {
			t.Errorf("w=%d image_ok at E-%d, imgtool writes it at E-%d", w, 1<<20-l.ImageOKOff(1<<20), want)
		}
	}
}

// TestTrailerOffsets checks every field's distance from the slot end (§2).
func TestTrailerOffsets(t *testing.T) {
	const E = 0x20000
	cases := []struct {
		l                                                    TrailerLayout
		magic, imageOK, copyDone, swapInfo, swapSize, status int64
	}{
		{TrailerLayout{WriteSize: 1, StatusEntries: 384}, 16, 24, 32, 40, 48, 432},
		{TrailerLayout{WriteSize: 4, StatusEntries: 384}, 16, 24, 32, 40, 48, 1584},
		{TrailerLayout{WriteSize: 8, StatusEntries: 384}, 16, 24, 32, 40, 48, 3120},
		{TrailerLayout{WriteSize: 8, StatusEntries: 256, ExtraCells: 1}, 16, 24, 32, 40, 56, 2104},
		{TrailerLayout{WriteSize: 16, StatusEntries: 384}, 16, 32, 48, 64, 80, 384*16 + 80},
		{TrailerLayout{WriteSize: 32, StatusEntries: 384}, 16, 64, 96, 128, 160, 384*32 + 160},
		{TrailerLayout{WriteSize: 8}, 16, 24, 32, 40, 48, 48},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%+v", c.l)
		for _, f := range []struct {
			field string
			got   int64
			want  int64
		}{
			{"magic", c.l.MagicOff(E), c.magic},
			{"image_ok", c.l.ImageOKOff(E), c.imageOK},
			{"copy_done", c.l.CopyDoneOff(E), c.copyDone},
			{"swap_info", c.l.SwapInfoOff(E), c.swapInfo},
			{"swap_size", c.l.SwapSizeOff(E), c.swapSize},
			{"status", c.l.StatusOff(E), c.status},
		} {
			if E-f.got != f.want {
				t.Errorf("%s: %s at E-%d, want E-%d", name, f.field, E-f.got, f.want)
			}
		}
		if c.l.StatusEntries > 1 {
			if d := c.l.StatusEntryOff(E, 1) - c.l.StatusEntryOff(E, 0); d != int64(c.l.WriteSize) {
				t.Errorf("%s: status entries %d apart, want the write size", name, d)
			}
		}
	}
	gen := TrailerLayout{WriteSize: 8, StatusEntries: 384, Generation: true}
	if E-gen.GenerationOff(E) != 56 || gen.Size() != 3128 {
		t.Errorf("generation cell at E-%d, trailer %d; want E-56 and 3128", E-gen.GenerationOff(E), gen.Size())
	}
}

func testArea(t testing.TB, w int, ev byte) *flashsim.Area {
	t.Helper()
	dev := flashsim.New(flashsim.Uniform(8, 4096, w, ev), flashsim.Options{})
	a, err := flashsim.NewArea(dev, flashsim.Partition{Name: "slot", Offset: 4096, Size: 4 * 4096})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestTrailerWrites checks the bytes each write puts in flash, for every
// write size and both erase values, and that Read decodes them.
func TestTrailerWrites(t *testing.T) {
	for _, ev := range []byte{0xff, 0x00} {
		for _, w := range []int{1, 2, 4, 8, 16, 32} {
			t.Run(fmt.Sprintf("w%d-ev%02x", w, ev), func(t *testing.T) {
				a := testArea(t, w, ev)
				l := TrailerLayout{WriteSize: w, StatusEntries: 6, Generation: true}
				tr := NewTrailer(a, l)
				st, err := tr.Read()
				if err != nil {
					t.Fatal(err)
				}
				if st.Magic != MagicUnset || st.ImageOK != FlagUnset || st.CopyDone != FlagUnset || st.SwapType != SwapNone || st.GenerationValid {
					t.Fatalf("erased trailer reads %+v", st)
				}
				must(t, tr.WriteSwapInfo(SwapPerm, 1))
				must(t, tr.WriteImageOK())
				must(t, tr.WriteCopyDone())
				must(t, tr.WriteSwapSize(0x12345))
				must(t, tr.WriteGeneration(7))
				must(t, tr.WriteStatus(0, StatusState1))
				must(t, tr.WriteStatus(1, StatusState2))
				must(t, tr.WriteMagic())
				E := a.Size()
				ma := l.MaxAlign()
				magic, _ := image.MagicFor(ma)
				cell := make([]byte, l.MagicCellSize())
				fill(cell, ev)
				copy(cell[len(cell)-16:], magic[:])
				expectBytes(t, a, E-int64(len(cell)), cell, "magic cell")
				flag := func(v byte) []byte { b := make([]byte, w); fill(b, ev); b[0] = v; return b }
				expectBytes(t, a, l.ImageOKOff(E), flag(1), "image_ok")
				expectBytes(t, a, l.CopyDoneOff(E), flag(1), "copy_done")
				expectBytes(t, a, l.SwapInfoOff(E), flag(0x13), "swap_info")
				expectBytes(t, a, l.StatusEntryOff(E, 1), flag(2), "status entry 1")
				expectBytes(t, a, l.StatusEntryOff(E, 2), flag(ev), "status entry 2")
				st, err = tr.Read()
				if err != nil {
					t.Fatal(err)
				}
				want := TrailerState{Magic: MagicGood, ImageOK: FlagSet, CopyDone: FlagSet, SwapType: SwapPerm, ImageNum: 1, SwapSize: 0x12345, Generation: 7, GenerationValid: true}
				if st != want {
					t.Errorf("Read = %+v, want %+v", st, want)
				}
				entries, err := tr.ReadStatus()
				must(t, err)
				if n, err := WrittenPrefix(entries, ev); n != 2 || err != nil {
					t.Errorf("WrittenPrefix = %d, %v; want 2", n, err)
				}
				if got := tr.Sectors(); len(got) != 1 || got[0].Offset != 3*4096 {
					t.Errorf("trailer sectors = %+v, want the last one", got)
				}
				must(t, tr.Scramble())
				if st, _ := tr.Read(); st.Magic != MagicUnset || st.ImageOK != FlagUnset {
					t.Errorf("after Scramble: %+v", st)
				}
			})
		}
	}
}

// TestTrailerReadStates covers BAD magics and flags and swap_info values
// that name no swap.
func TestTrailerReadStates(t *testing.T) {
	cases := []struct {
		name  string
		patch func(a *flashsim.Area, l TrailerLayout) error
		check func(st TrailerState) bool
	}{
		{"torn magic", func(a *flashsim.Area, l TrailerLayout) error {
			m := image.BootMagic
			m[3] = 0xff
			return a.Program(a.Size()-16, m[:])
		}, func(st TrailerState) bool { return st.Magic == MagicBad }},
		{"image_ok 0x02", func(a *flashsim.Area, l TrailerLayout) error {
			return a.Program(l.ImageOKOff(a.Size()), []byte{2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		}, func(st TrailerState) bool { return st.ImageOK == FlagBad }},
		{"copy_done 0x00", func(a *flashsim.Area, l TrailerLayout) error {
			return a.Program(l.CopyDoneOff(a.Size()), []byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		}, func(st TrailerState) bool { return st.CopyDone == FlagBad }},
		{"swap_info type 5", func(a *flashsim.Area, l TrailerLayout) error {
			return a.Program(l.SwapInfoOff(a.Size()), []byte{0x15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		}, func(st TrailerState) bool { return st.SwapType == SwapNone && st.ImageNum == 0 }},
		{"torn generation", func(a *flashsim.Area, l TrailerLayout) error {
			return a.Program(l.GenerationOff(a.Size()), []byte{7, 0, 0, 0, 0xf8, 0xff, 0xff, 0x00})
		}, func(st TrailerState) bool { return !st.GenerationValid }},
	}
	for _, c := range cases {
		a := testArea(t, 8, 0xff)
		l := TrailerLayout{WriteSize: 8, Generation: true}
		must(t, c.patch(a, l))
		st, err := NewTrailer(a, l).Read()
		must(t, err)
		if !c.check(st) {
			t.Errorf("%s: Read = %+v", c.name, st)
		}
	}
}

func TestWrittenPrefix(t *testing.T) {
	cases := []struct {
		entries []byte
		n       int
		bad     bool
	}{
		{[]byte{0xff, 0xff, 0xff}, 0, false},
		{[]byte{1, 2, 0xff}, 2, false},
		{[]byte{1, 2, 3}, 3, false},
		{[]byte{1, 0xff, 3}, 1, true},
		{[]byte{0xff, 2}, 0, true},
	}
	for _, c := range cases {
		n, err := WrittenPrefix(c.entries, 0xff)
		if n != c.n || (err != nil) != c.bad || (err != nil && !errors.Is(err, ErrInconsistentStatus)) {
			t.Errorf("WrittenPrefix(%x) = %d, %v; want %d, inconsistent %v", c.entries, n, err, c.n, c.bad)
		}
	}
}

func expectBytes(t *testing.T, a *flashsim.Area, off int64, want []byte, what string) {
	t.Helper()
	got := make([]byte, len(want))
	must(t, readAt(a, got, off))
	if !bytes.Equal(got, want) {
		t.Errorf("%s at E-%d = %x, want %x", what, a.Size()-off, got, want)
	}
}

// TestGenerationSealsSwapSize: a torn erase that leaves a record's magic and
// generation intact but erases bytes of swap_size or swap_info must not leave
// a valid record (the seal covers both), for both erase values.
func TestGenerationSealsSwapSize(t *testing.T) {
	for _, ev := range []byte{0xff, 0x00} {
		l := TrailerLayout{WriteSize: 8, StatusEntries: 6, Generation: true}
		whole := testArea(t, 8, ev)
		tr := NewTrailer(whole, l)
		must(t, tr.WriteSwapInfo(SwapRevert, 0))
		must(t, tr.WriteSwapSize(0x1e100))
		must(t, tr.WriteGeneration(2))
		must(t, tr.WriteMagic())
		st, err := tr.Read()
		must(t, err)
		if !st.GenerationValid || st.Generation != 2 || st.SwapSize != 0x1e100 || st.SwapType != SwapRevert {
			t.Fatalf("ev %#x: intact record reads %+v", ev, st)
		}
		info := []int64{l.SwapInfoOff(whole.Size())}
		for i := int64(0); i < 4; i++ {
			info = append(info, l.SwapSizeOff(whole.Size())+i)
		}
		for _, off := range info {
			buf := make([]byte, 4096)
			_, err := whole.ReadAt(buf, whole.Size()-4096)
			must(t, err)
			if buf[off-(whole.Size()-4096)] == ev {
				continue // already erased: a tear cannot change it
			}
			buf[off-(whole.Size()-4096)] = ev
			torn := testArea(t, 8, ev)
			must(t, torn.Program(torn.Size()-4096, buf))
			st, err := NewTrailer(torn, l).Read()
			must(t, err)
			if st.Magic != MagicGood {
				t.Fatalf("ev %#x: the tear reached the magic", ev)
			}
			if st.GenerationValid {
				t.Errorf("ev %#x: byte at %#x erased, record still valid: %+v", ev, off, st)
			}
		}
	}
}

// TestErasedGenerationNeverValid: a generation cell a tear erased reads
// invalid over any swap_info and swap_size a tear can leave, including
// 0xff 0xff 0xff 0x00 (a CRC-32 seal of that is 0xffffffff, the erased
// cell itself).
func TestErasedGenerationNeverValid(t *testing.T) {
	for _, ev := range []byte{0xff, 0x00} {
		l := TrailerLayout{WriteSize: 32, StatusEntries: 4, ExtraCells: 1, Generation: true}
		for mask := 0; mask < 32; mask++ {
			a := testArea(t, 32, ev)
			tr := NewTrailer(a, l)
			// Bits of mask choose which of swap_info and swap_size's four
			// bytes hold a value (the others stay erased).
			info := []byte{0x02}
			size := []byte{0x00, 0xe1, 0x01, 0x00}
			if ev == 0x00 {
				size = []byte{0xff, 0xe1, 0x01, 0xff}
			}
			cell := func(off int64, b []byte, keep func(i int) bool) {
				buf := make([]byte, 32)
				fill(buf, ev)
				for i := range b {
					if keep(i) {
						buf[i] = b[i]
					}
				}
				must(t, a.Program(off, buf))
			}
			cell(l.SwapInfoOff(a.Size()), info, func(int) bool { return mask&1 != 0 })
			cell(l.SwapSizeOff(a.Size()), size, func(i int) bool { return mask&(2<<i) != 0 })
			must(t, tr.WriteMagic())
			st, err := tr.Read()
			must(t, err)
			if st.GenerationValid {
				t.Errorf("ev %#x mask %#x: erased generation reads valid: %+v", ev, mask, st)
			}
		}
	}
}
