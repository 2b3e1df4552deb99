package devicemodel

import (
	"errors"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

// TestBoardLayouts states each board's layout (reference mcuboot.md §5.3,
// foundries.md §1.12).
func TestBoardLayouts(t *testing.T) {
	type part struct{ off, size int64 }
	cases := []struct {
		name                    string
		partSize                int64
		writeSize               int
		primary, secondary, scr part
		slotSectors             int
		strategies              []string
	}{
		{"k64f", 0x80000, 8, part{0x20000, 0x20000}, part{0x40000, 0x20000}, part{0x60000, 0x1000}, 32, []string{"overwrite", "swap-scratch"}},
		{"stm32f4", 0x100000, 1, part{0x20000, 0x20000}, part{0x40000, 0x20000}, part{0x60000, 0x20000}, 1, []string{"overwrite", "swap-scratch"}},
		{"nrf52840", 0x100000, 4, part{0x8000, 0x34000}, part{0x3c000, 0x34000}, part{0x70000, 0xd000}, 52, []string{"overwrite", "swap-scratch"}},
		{"rt1060", 0x800000, 4, part{0x40000, 0x200000}, part{0x240000, 0x200000}, part{0x440000, 0x10000}, 512, []string{"overwrite", "swap-scratch"}},
	}
	for _, c := range cases {
		b, err := LookupBoard(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if b.Geometry.Size() != c.partSize || b.Geometry.WriteSize != c.writeSize {
			t.Errorf("%s: part %#x bytes, write size %d; want %#x, %d", c.name, b.Geometry.Size(), b.Geometry.WriteSize, c.partSize, c.writeSize)
		}
		for _, p := range []struct {
			got  flashsim.Partition
			want part
		}{{b.Primary, c.primary}, {b.Secondary, c.secondary}, {b.Scratch, c.scr}} {
			if p.got.Offset != p.want.off || p.got.Size != p.want.size {
				t.Errorf("%s: %s at %#x+%#x, want %#x+%#x", c.name, p.got.Name, p.got.Offset, p.got.Size, p.want.off, p.want.size)
			}
		}
		pri, sec, scr, err := b.Areas(b.NewFlash(flashsim.Options{}))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(pri.Sectors()) != c.slotSectors || len(sec.Sectors()) != c.slotSectors || scr == nil {
			t.Errorf("%s: %d/%d slot sectors, want %d", c.name, len(pri.Sectors()), len(sec.Sectors()), c.slotSectors)
		}
		if len(pri.Sectors()) > b.MaxImgSectors {
			t.Errorf("%s: %d sectors exceed MaxImgSectors %d", c.name, len(pri.Sectors()), b.MaxImgSectors)
		}
		// Every strategy listed must accept the layout; the reference ones
		// must be listed. Strategies registered later (swap-move,
		// swap-offset) may add to the list.
		got := b.Strategies()
		for _, want := range c.strategies {
			if !contains(got, want) {
				t.Errorf("%s: strategies %v lack %s", c.name, got, want)
			}
		}
		for _, s := range got {
			if _, err := b.Bootloader(b.NewFlash(flashsim.Options{}), mcuboot.Config{Strategy: s}); err != nil {
				t.Errorf("%s: strategy %s rejects the board: %v", c.name, s, err)
			}
		}
	}
}

// TestStm32f4Geometry: 4 x 16 KiB, 64 KiB, 7 x 128 KiB.
func TestStm32f4Geometry(t *testing.T) {
	b, _ := LookupBoard("stm32f4")
	var sizes []int64
	for _, s := range b.Geometry.Sectors() {
		sizes = append(sizes, s.Size)
	}
	want := []int64{16 << 10, 16 << 10, 16 << 10, 16 << 10, 64 << 10, 128 << 10, 128 << 10, 128 << 10, 128 << 10, 128 << 10, 128 << 10, 128 << 10}
	if len(sizes) != len(want) {
		t.Fatalf("sectors %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("sectors %v, want %v", sizes, want)
		}
	}
	if b.Supports("swap-move") || b.Supports("swap-offset") {
		t.Error("stm32f4's one-sector slots cannot be moved by sectors")
	}
}

func TestLookupBoardUnknown(t *testing.T) {
	_, err := LookupBoard("esp32")
	if !errors.Is(err, ErrUnknownBoard) || !strings.Contains(err.Error(), "k64f, stm32f4, nrf52840, rt1060") {
		t.Errorf("LookupBoard(esp32) = %v", err)
	}
	b, _ := LookupBoard("k64f")
	if b.Supports("no-such-strategy") {
		t.Error("an unregistered strategy is supported")
	}
}

// TestBoardBootsNothingWhenErased: an erased board has no bootable image.
func TestBoardBootsNothingWhenErased(t *testing.T) {
	for _, b := range Boards() {
		for _, s := range b.Strategies() {
			l, err := b.Bootloader(b.NewFlash(flashsim.Options{}), mcuboot.Config{Strategy: s})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Boot(); !errors.Is(err, mcuboot.ErrNoBootableImage) {
				t.Errorf("%s/%s: erased flash boots: %v", b.Name, s, err)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
