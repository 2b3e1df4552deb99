package flashtest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
)

// NewFlash returns a fresh, fully erased part of geometry g.
type NewFlash func(g *flashsim.Geometry) flashsim.Flash

// STM32F4 is the sector layout of an STM32F4 bank: 4x16 KiB, 1x64 KiB,
// 7x128 KiB (1 MiB), the mixed layout MCUboot's simulator tests against.
var STM32F4 = []flashsim.Region{{Count: 4, Size: 16 << 10}, {Count: 1, Size: 64 << 10}, {Count: 7, Size: 128 << 10}}

// EraseValues are the two erased states of NOR parts: 0xFF on most, 0x00 on
// some (e.g. parts with inverted cells).
var EraseValues = []byte{0xFF, 0x00}

// Run runs the conformance suite against the parts newFlash makes. Each
// subtest builds its own geometry and asks newFlash for a fresh part.
func Run(t *testing.T, newFlash NewFlash) {
	t.Run("FreshIsErased", func(t *testing.T) { testFreshIsErased(t, newFlash) })
	t.Run("ReadBack", func(t *testing.T) { testReadBack(t, newFlash) })
	t.Run("EraseRestores", func(t *testing.T) { testEraseRestores(t, newFlash) })
	t.Run("Alignment", func(t *testing.T) { testAlignment(t, newFlash) })
	t.Run("NotErased", func(t *testing.T) { testNotErased(t, newFlash) })
	t.Run("EraseBoundaries", func(t *testing.T) { testEraseBoundaries(t, newFlash) })
	t.Run("Bounds", func(t *testing.T) { testBounds(t, newFlash) })
	t.Run("Area", func(t *testing.T) { testArea(t, newFlash) })
}

// Geometry validates a geometry built from regions, failing t if it is
// invalid.
func Geometry(t testing.TB, regions []flashsim.Region, writeSize int, eraseValue byte) *flashsim.Geometry {
	t.Helper()
	g := &flashsim.Geometry{Regions: regions, WriteSize: writeSize, EraseValue: eraseValue}
	if err := g.Validate(); err != nil {
		t.Fatalf("geometry %v write size %d: %v", regions, writeSize, err)
	}
	return g
}

// Pattern returns n bytes of which none equals eraseValue, varied by seed,
// so that every byte of a programmed range is visibly programmed.
func Pattern(n int, seed byte, eraseValue byte) []byte {
	p := make([]byte, n)
	for i := range p {
		b := byte(i*7) + seed*31 + 1
		if b == eraseValue {
			b ^= 0x5A
		}
		p[i] = b
	}
	return p
}

// Snapshot reads the whole part, failing t on error.
func Snapshot(t testing.TB, f flashsim.Flash) []byte {
	t.Helper()
	b := make([]byte, f.Geometry().Size())
	if n, err := f.ReadAt(b, 0); err != nil || n != len(b) {
		t.Fatalf("reading the whole part: n=%d err=%v", n, err)
	}
	return b
}

// WantOpError fails t unless err is an *flashsim.OpError for op wrapping
// sentinel.
func WantOpError(t testing.TB, err error, op string, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: got error %v, want %v", op, err, sentinel)
	}
	var oe *flashsim.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("%s: error %v (%T) is not an *flashsim.OpError", op, err, err)
	}
	if oe.Op != op {
		t.Fatalf("OpError.Op = %q, want %q (error %v)", oe.Op, op, err)
	}
}

func mustProgram(t testing.TB, f flashsim.Flash, off int64, p []byte) {
	t.Helper()
	if err := f.Program(off, p); err != nil {
		t.Fatalf("program 0x%x+0x%x: %v", off, len(p), err)
	}
}

func mustErase(t testing.TB, f flashsim.Flash, off, n int64) {
	t.Helper()
	if err := f.Erase(off, n); err != nil {
		t.Fatalf("erase 0x%x+0x%x: %v", off, n, err)
	}
}

func wantUnchanged(t testing.TB, f flashsim.Flash, before []byte, what string) {
	t.Helper()
	after := Snapshot(t, f)
	if i := firstDiff(before, after); i >= 0 {
		t.Fatalf("%s changed the part at 0x%x: 0x%02x -> 0x%02x", what, i, before[i], after[i])
	}
}

func wantErased(t testing.TB, b []byte, ev byte, what string) {
	t.Helper()
	for i, v := range b {
		if v != ev {
			t.Fatalf("%s: byte 0x%x is 0x%02x, want erased 0x%02x", what, i, v, ev)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

func evName(ev byte) string { return fmt.Sprintf("erased=0x%02x", ev) }

func testFreshIsErased(t *testing.T, newFlash NewFlash) {
	for _, ev := range EraseValues {
		t.Run(evName(ev), func(t *testing.T) {
			f := newFlash(Geometry(t, STM32F4, 8, ev))
			if got, want := f.Geometry().Size(), int64(1<<20); got != want {
				t.Fatalf("Geometry().Size() = %d, want %d", got, want)
			}
			wantErased(t, Snapshot(t, f), ev, "fresh part")
		})
	}
}

func testReadBack(t *testing.T, newFlash NewFlash) {
	for _, ev := range EraseValues {
		t.Run(evName(ev), func(t *testing.T) {
			f := newFlash(Geometry(t, STM32F4, 4, ev))
			model := Snapshot(t, f)
			writes := []struct{ off, n int64 }{
				{0, 4},                             // one write unit
				{0x100, 0x100},                     // a typical chunk
				{0x3ff8, 0x10},                     // across the 16 KiB sector boundary
				{0xc000, 0x4000 + 0x10000 - 0x100}, // a whole 16 KiB sector and most of the 64 KiB one
				{0x20000 - 0x20, 0x40},             // into the first 128 KiB sector
				{0x100000 - 0x1000, 0x1000},        // the end of the part
				{0x40000 + 0x123c, 0x1000 - 4},     // unaligned to pages, aligned to the write size
			}
			for i, w := range writes {
				p := Pattern(int(w.n), byte(i), ev)
				mustProgram(t, f, w.off, p)
				copy(model[w.off:], p)
			}
			if i := firstDiff(Snapshot(t, f), model); i >= 0 {
				t.Fatalf("part differs from what was programmed at 0x%x", i)
			}
			// Reads have no alignment rule: any offset and length reads back.
			for _, r := range []struct{ off, n int64 }{{1, 3}, {0x3ffb, 9}, {0xffff, 2}, {0x123, 0}, {0xfffff, 1}} {
				b := make([]byte, r.n)
				n, err := f.ReadAt(b, r.off)
				if err != nil || n != int(r.n) {
					t.Fatalf("read 0x%x+0x%x: n=%d err=%v", r.off, r.n, n, err)
				}
				if !bytes.Equal(b, model[r.off:r.off+r.n]) {
					t.Fatalf("read 0x%x+0x%x = %x, want %x", r.off, r.n, b, model[r.off:r.off+r.n])
				}
			}
		})
	}
}

func testEraseRestores(t *testing.T, newFlash NewFlash) {
	for _, ev := range EraseValues {
		t.Run(evName(ev), func(t *testing.T) {
			f := newFlash(Geometry(t, []flashsim.Region{{Count: 8, Size: 4096}}, 8, ev))
			full := Pattern(8*4096, 1, ev)
			mustProgram(t, f, 0, full)
			mustErase(t, f, 4096, 2*4096)
			got := Snapshot(t, f)
			wantErased(t, got[4096:3*4096], ev, "erased sectors 1-2")
			if !bytes.Equal(got[:4096], full[:4096]) || !bytes.Equal(got[3*4096:], full[3*4096:]) {
				t.Fatal("erase of sectors 1-2 changed other sectors")
			}
			// Erased bytes are programmable again.
			again := Pattern(2*4096, 2, ev)
			mustProgram(t, f, 4096, again)
			got = Snapshot(t, f)
			if !bytes.Equal(got[4096:3*4096], again) {
				t.Fatal("reprogramming erased sectors did not read back")
			}
			// Erasing an erased sector is allowed and changes nothing.
			mustErase(t, f, 0, 4096)
			mustErase(t, f, 0, 4096)
			wantErased(t, Snapshot(t, f)[:4096], ev, "sector 0 erased twice")
		})
	}
}

func testAlignment(t *testing.T, newFlash NewFlash) {
	for ws := 1; ws <= 32; ws++ {
		t.Run(fmt.Sprintf("write_size=%d", ws), func(t *testing.T) {
			g := &flashsim.Geometry{Regions: []flashsim.Region{{Count: 4, Size: 32 * 64}}, WriteSize: ws, EraseValue: 0xFF}
			err := g.Validate()
			if ws&(ws-1) != 0 {
				if err == nil {
					t.Fatalf("Validate accepted write size %d: parts program in power-of-two units", ws)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate(write size %d): %v", ws, err)
			}
			f := newFlash(g)
			before := Snapshot(t, f)
			for d := 1; d < ws; d++ {
				WantOpError(t, f.Program(int64(d), Pattern(ws, 1, 0xFF)), "program", flashsim.ErrMisaligned)
				WantOpError(t, f.Program(int64(ws+d), Pattern(2*ws, 1, 0xFF)), "program", flashsim.ErrMisaligned)
				WantOpError(t, f.Program(0, Pattern(d, 1, 0xFF)), "program", flashsim.ErrMisaligned)
				WantOpError(t, f.Program(int64(ws), Pattern(ws+d, 1, 0xFF)), "program", flashsim.ErrMisaligned)
			}
			wantUnchanged(t, f, before, "misaligned programs")
			// Aligned offsets and lengths of one and several units work.
			mustProgram(t, f, 0, Pattern(ws, 2, 0xFF))
			mustProgram(t, f, int64(ws), Pattern(3*ws, 3, 0xFF))
			mustProgram(t, f, int64(32*64-ws), Pattern(ws, 4, 0xFF)) // last unit of sector 0
			mustProgram(t, f, int64(32*64), Pattern(ws, 5, 0xFF))    // first unit of sector 1
			got := Snapshot(t, f)
			if !bytes.Equal(got[:ws], Pattern(ws, 2, 0xFF)) || !bytes.Equal(got[ws:4*ws], Pattern(3*ws, 3, 0xFF)) {
				t.Fatal("aligned programs did not read back")
			}
		})
	}
}

func testNotErased(t *testing.T, newFlash NewFlash) {
	for _, ev := range EraseValues {
		for _, ws := range []int{1, 2, 4, 8, 16, 32} {
			t.Run(fmt.Sprintf("%s/write_size=%d", evName(ev), ws), func(t *testing.T) {
				const sector = 1024
				f := newFlash(Geometry(t, []flashsim.Region{{Count: 4, Size: sector}}, ws, ev))
				// For each byte of a unit: a unit in which only that byte is
				// programmed refuses any further program that covers it.
				for j := 0; j < ws; j++ {
					unit := int64(4 * ws * j)
					one := bytes.Repeat([]byte{ev}, ws)
					one[j] = ev ^ 0x01 // a single bit away from erased
					mustProgram(t, f, unit, one)
					before := Snapshot(t, f)
					WantOpError(t, f.Program(unit, Pattern(ws, 7, ev)), "program", flashsim.ErrNotErased)
					// Writing the erase value itself does not help: the target must be erased.
					WantOpError(t, f.Program(unit, bytes.Repeat([]byte{ev}, ws)), "program", flashsim.ErrNotErased)
					// A longer program whose other units are erased is refused whole.
					if unit > 0 {
						WantOpError(t, f.Program(unit-int64(ws), Pattern(3*ws, 8, ev)), "program", flashsim.ErrNotErased)
					}
					wantUnchanged(t, f, before, "programs over a programmed byte")
					// The erased unit next to it is still programmable.
					mustProgram(t, f, unit+int64(ws), Pattern(ws, 9, ev))
				}
				// A program that only touches the last byte of a sector, then one
				// that spans into the next sector over it, is refused.
				last := bytes.Repeat([]byte{ev}, ws)
				last[ws-1] = ev ^ 0x80
				mustProgram(t, f, 2*sector-int64(ws), last)
				before := Snapshot(t, f)
				WantOpError(t, f.Program(2*sector-int64(ws), Pattern(2*ws, 3, ev)), "program", flashsim.ErrNotErased)
				wantUnchanged(t, f, before, "program across a sector boundary over a programmed byte")
				// After an erase the same bytes program again.
				mustErase(t, f, 0, 2*sector)
				mustProgram(t, f, 0, Pattern(2*sector, 5, ev))
			})
		}
	}
}

func testEraseBoundaries(t *testing.T, newFlash NewFlash) {
	for _, ev := range EraseValues {
		t.Run(evName(ev), func(t *testing.T) {
			f := newFlash(Geometry(t, STM32F4, 8, ev))
			g := f.Geometry()
			full := Pattern(int(g.Size()), 3, ev)
			mustProgram(t, f, 0, full)
			before := Snapshot(t, f)
			bad := []struct{ off, n int64 }{
				{0, 0x2000},                // half a 16 KiB sector
				{0x1000, 0x4000},           // starts inside a sector
				{0x0, 0x4001},              // ends one byte into the next sector
				{0x4000, 0x3fff},           // ends one byte short
				{0x10000, 0x4000},          // 16 KiB into the 64 KiB sector
				{0xc000, 0x8000},           // a 16 KiB sector and half the 64 KiB one
				{0x10000, 0x20000},         // the 64 KiB sector and half a 128 KiB one
				{0x20000, 0x10000},         // half a 128 KiB sector
				{0x20000 + 0x4000, 0x4000}, // a 16 KiB-sized piece of a 128 KiB sector
			}
			for _, b := range bad {
				WantOpError(t, f.Erase(b.off, b.n), "erase", flashsim.ErrEraseBoundary)
			}
			wantUnchanged(t, f, before, "erases off sector boundaries")
			// Each sector erases on its own, whatever its size.
			model := append([]byte(nil), before...)
			for _, s := range g.Sectors()[3:6] { // 16 KiB, 64 KiB, 128 KiB
				mustErase(t, f, s.Offset, s.Size)
				for i := s.Offset; i < s.Offset+s.Size; i++ {
					model[i] = ev
				}
				if i := firstDiff(Snapshot(t, f), model); i >= 0 {
					t.Fatalf("after erasing sector %d (0x%x+0x%x) the part differs at 0x%x", s.Index, s.Offset, s.Size, i)
				}
			}
			// One erase may span sectors of different sizes.
			mustErase(t, f, 0, 0x20000+0x20000)
			for i := int64(0); i < 0x40000; i++ {
				model[i] = ev
			}
			if i := firstDiff(Snapshot(t, f), model); i >= 0 {
				t.Fatalf("after a mixed multi-sector erase the part differs at 0x%x", i)
			}
			// The whole part erases at once.
			mustErase(t, f, 0, g.Size())
			wantErased(t, Snapshot(t, f), ev, "whole-part erase")
		})
	}
}

func testBounds(t *testing.T, newFlash NewFlash) {
	for _, ev := range EraseValues {
		t.Run(evName(ev), func(t *testing.T) {
			f := newFlash(Geometry(t, []flashsim.Region{{Count: 2, Size: 2048}, {Count: 1, Size: 4096}}, 4, ev))
			size := f.Geometry().Size()
			mustProgram(t, f, 0, Pattern(int(size), 1, ev))
			before := Snapshot(t, f)
			for _, r := range []struct{ off, n int64 }{{size - 1, 2}, {size, 1}, {-1, 1}, {-4, 8}, {1 << 40, 4}, {0, size + 1}} {
				n, err := f.ReadAt(make([]byte, r.n), r.off)
				WantOpError(t, err, "read", flashsim.ErrOutOfBounds)
				if n != 0 {
					t.Fatalf("read 0x%x+0x%x out of bounds returned n=%d", r.off, r.n, n)
				}
			}
			for _, r := range []struct{ off, n int64 }{{size - 4, 8}, {size, 4}, {-4, 4}, {-4, 8}, {1 << 40, 4}, {1<<63 - 3, 4}} {
				WantOpError(t, f.Program(r.off, make([]byte, r.n)), "program", flashsim.ErrOutOfBounds)
			}
			for _, r := range []struct{ off, n int64 }{{size, 4096}, {4096, 8192}, {-2048, 2048}, {0, size + 4096}, {0, -2048}, {1<<63 - 2048, 4096}} {
				WantOpError(t, f.Erase(r.off, r.n), "erase", flashsim.ErrOutOfBounds)
			}
			wantUnchanged(t, f, before, "out-of-bounds accesses")
			// The last sector and the last write unit are inside.
			mustErase(t, f, 4096, 4096)
			mustProgram(t, f, size-4, Pattern(4, 2, ev))
		})
	}
}

func testArea(t *testing.T, newFlash NewFlash) {
	for _, ev := range EraseValues {
		t.Run(evName(ev), func(t *testing.T) {
			f := newFlash(Geometry(t, STM32F4, 8, ev))
			// An area over the mixed sectors and two over uniform 128 KiB ones,
			// as on an STM32F4 MCUboot layout: boot+scratch | primary | secondary.
			boot, err := flashsim.NewArea(f, flashsim.Partition{Name: "boot", Offset: 0, Size: 0x20000})
			if err != nil {
				t.Fatal(err)
			}
			primary, err := flashsim.NewArea(f, flashsim.Partition{Name: "primary", Offset: 0x20000, Size: 0x40000})
			if err != nil {
				t.Fatal(err)
			}
			secondary, err := flashsim.NewArea(f, flashsim.Partition{Name: "secondary", Offset: 0x60000, Size: 0x40000})
			if err != nil {
				t.Fatal(err)
			}
			wantSectors := []flashsim.Sector{
				{Index: 0, Offset: 0, Size: 0x4000}, {Index: 1, Offset: 0x4000, Size: 0x4000}, {Index: 2, Offset: 0x8000, Size: 0x4000},
				{Index: 3, Offset: 0xc000, Size: 0x4000}, {Index: 4, Offset: 0x10000, Size: 0x10000},
			}
			if got := boot.Sectors(); fmt.Sprint(got) != fmt.Sprint(wantSectors) {
				t.Fatalf("boot area sectors = %v, want %v", got, wantSectors)
			}
			if got := secondary.Sectors(); len(got) != 2 || got[1].Offset != 0x20000 || got[1].Size != 0x20000 {
				t.Fatalf("secondary area sectors = %v, want two 128 KiB sectors at relative 0 and 0x20000", got)
			}
			if primary.Size() != 0x40000 || primary.WriteSize() != 8 || primary.EraseValue() != ev || primary.Flash() != f || primary.Name() != "primary" {
				t.Fatal("area accessors do not describe the partition and its part")
			}

			// Offsets are relative to the partition.
			img := Pattern(0x1000, 4, ev)
			if err := secondary.Program(0x100, img); err != nil {
				t.Fatal(err)
			}
			abs := make([]byte, len(img))
			if _, err := f.ReadAt(abs, 0x60000+0x100); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(abs, img) {
				t.Fatal("area program did not land at partition offset + offset")
			}
			rel := make([]byte, len(img))
			if _, err := secondary.ReadAt(rel, 0x100); err != nil || !bytes.Equal(rel, img) {
				t.Fatalf("area read-back: err=%v equal=%v", err, bytes.Equal(rel, img))
			}
			trailer := Pattern(16, 5, ev)
			if err := primary.Program(primary.Size()-16, trailer); err != nil {
				t.Fatal(err)
			}
			if err := boot.Program(0x10000, Pattern(0x10, 6, ev)); err != nil {
				t.Fatal(err)
			}
			before := Snapshot(t, f)

			// Accesses may not leave the area, even where the part continues.
			_, err = primary.ReadAt(make([]byte, 17), primary.Size()-16)
			WantOpError(t, err, "read", flashsim.ErrOutOfBounds)
			_, err = primary.ReadAt(make([]byte, 1), -1)
			WantOpError(t, err, "read", flashsim.ErrOutOfBounds)
			WantOpError(t, primary.Program(primary.Size(), make([]byte, 8)), "program", flashsim.ErrOutOfBounds)
			WantOpError(t, primary.Program(-8, make([]byte, 8)), "program", flashsim.ErrOutOfBounds)
			WantOpError(t, primary.Erase(0x20000, 0x40000), "erase", flashsim.ErrOutOfBounds)
			WantOpError(t, boot.Erase(0, 0x40000), "erase", flashsim.ErrOutOfBounds)
			// The part's rules still apply inside an area.
			WantOpError(t, primary.Program(4, make([]byte, 8)), "program", flashsim.ErrMisaligned)
			WantOpError(t, secondary.Program(0x100, make([]byte, 8)), "program", flashsim.ErrNotErased)
			WantOpError(t, boot.Erase(0x10000, 0x4000), "erase", flashsim.ErrEraseBoundary)
			wantUnchanged(t, f, before, "refused area accesses")

			// Erases are relative too and stay inside the area.
			if err := secondary.Erase(0, 0x20000); err != nil {
				t.Fatal(err)
			}
			if err := boot.Erase(0x10000, 0x10000); err != nil {
				t.Fatal(err)
			}
			after := Snapshot(t, f)
			wantErased(t, after[0x60000:0x80000], ev, "secondary sector 0 via the area")
			wantErased(t, after[0x10000:0x20000], ev, "boot's 64 KiB sector via the area")
			if !bytes.Equal(after[0x20000:0x60000], before[0x20000:0x60000]) {
				t.Fatal("erasing in the secondary and boot areas changed the primary")
			}
			if err := primary.EraseAll(); err != nil {
				t.Fatal(err)
			}
			wantErased(t, Snapshot(t, f)[0x20000:0x60000], ev, "primary after EraseAll")

			// Partitions must tile whole sectors of the part.
			for _, c := range []struct {
				p    flashsim.Partition
				want error
			}{
				{flashsim.Partition{Name: "mid-sector", Offset: 0x2000, Size: 0x4000}, flashsim.ErrEraseBoundary},
				{flashsim.Partition{Name: "short", Offset: 0x10000, Size: 0x4000}, flashsim.ErrEraseBoundary},
				{flashsim.Partition{Name: "empty", Offset: 0x20000, Size: 0}, flashsim.ErrEraseBoundary},
				{flashsim.Partition{Name: "past-end", Offset: 0xe0000, Size: 0x40000}, flashsim.ErrOutOfBounds},
				{flashsim.Partition{Name: "negative", Offset: -0x4000, Size: 0x4000}, flashsim.ErrOutOfBounds},
			} {
				if _, err := flashsim.NewArea(f, c.p); !errors.Is(err, c.want) {
					t.Errorf("NewArea(%+v) = %v, want %v", c.p, err, c.want)
				}
			}
		})
	}
}
