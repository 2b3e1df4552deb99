package devicemodel

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

// ErrUnknownBoard: a board name that is not in Boards.
var ErrUnknownBoard = errors.New("unknown board")

// Board is a named MCU flash layout: the part's geometry and where the
// bootloader's slots and scratch area lie on it.
type Board struct {
	// Name is the board's name (LookupBoard, the CLI's --board).
	Name string
	// Geometry is the internal flash part.
	Geometry *flashsim.Geometry
	// Primary and Secondary are the image slots; Scratch is the swap-scratch
	// area (Size 0 when the board has none).
	Primary, Secondary, Scratch flashsim.Partition
	// MaxImgSectors is the bootloader's MCUBOOT_MAX_IMG_SECTORS for the
	// board (the slots' sector count must not exceed it).
	MaxImgSectors int
	// Excludes lists strategies the board cannot run, as MCUboot's simulator
	// excludes them per device (reference §5.3). Every other registered
	// strategy is supported.
	Excludes []string
	// Notes says where the layout comes from.
	Notes string
}

// boards are the layouts of MCUboot's simulator (reference §5.3) and of
// aktualizr-nano's RT1060 sample (foundries.md §1.12).
var boards = []Board{
	{
		Name:          "k64f",
		Geometry:      flashsim.Uniform(128, 4<<10, 8, 0xff),
		Primary:       flashsim.Partition{Name: "primary", Offset: 0x20000, Size: 0x20000},
		Secondary:     flashsim.Partition{Name: "secondary", Offset: 0x40000, Size: 0x20000},
		Scratch:       flashsim.Partition{Name: "scratch", Offset: 0x60000, Size: 0x1000},
		MaxImgSectors: mcuboot.DefaultMaxImgSectors,
		Notes:         "NXP K64F: 128 x 4 KiB, 8-byte writes; scratch is one sector",
	},
	{
		Name: "stm32f4",
		Geometry: mustGeometry(&flashsim.Geometry{
			Regions:    []flashsim.Region{{Count: 4, Size: 16 << 10}, {Count: 1, Size: 64 << 10}, {Count: 7, Size: 128 << 10}},
			WriteSize:  1,
			EraseValue: 0xff,
		}),
		Primary:       flashsim.Partition{Name: "primary", Offset: 0x20000, Size: 0x20000},
		Secondary:     flashsim.Partition{Name: "secondary", Offset: 0x40000, Size: 0x20000},
		Scratch:       flashsim.Partition{Name: "scratch", Offset: 0x60000, Size: 0x20000},
		MaxImgSectors: mcuboot.DefaultMaxImgSectors,
		// Each slot is a single 128 KiB sector: nothing to move by sectors.
		Excludes: []string{"swap-move", "swap-offset"},
		Notes:    "STM32F4 1 MiB: 4 x 16 KiB, 64 KiB, 7 x 128 KiB, byte writes; each slot and the scratch are one 128 KiB sector",
	},
	{
		Name:          "nrf52840",
		Geometry:      flashsim.Uniform(128, 4<<10, 4, 0xff),
		Primary:       flashsim.Partition{Name: "primary", Offset: 0x8000, Size: 0x34000},
		Secondary:     flashsim.Partition{Name: "secondary", Offset: 0x3c000, Size: 0x34000},
		Scratch:       flashsim.Partition{Name: "scratch", Offset: 0x70000, Size: 0xd000},
		MaxImgSectors: mcuboot.DefaultMaxImgSectors,
		Notes:         "nRF52840: 128 x 4 KiB, 4-byte writes; 13-sector scratch",
	},
	{
		Name:      "rt1060",
		Geometry:  flashsim.Uniform(2048, 4<<10, 4, 0xff),
		Primary:   flashsim.Partition{Name: "primary", Offset: 0x40000, Size: 0x200000},
		Secondary: flashsim.Partition{Name: "secondary", Offset: 0x240000, Size: 0x200000},
		Scratch:   flashsim.Partition{Name: "scratch", Offset: 0x440000, Size: 0x10000},
		// 2 MiB of 4 KiB sectors is 512 sectors per slot.
		MaxImgSectors: 512,
		Notes:         "i.MX RT1060 8 MiB QSPI NOR: 4 KiB sectors, slots as aktualizr-nano's sample (imgtool --align 4); 64 KiB scratch after the slots",
	},
}

func mustGeometry(g *flashsim.Geometry) *flashsim.Geometry {
	if err := g.Validate(); err != nil {
		panic(err) // programmer error: the table above is constant
	}
	return g
}

// Boards lists the known boards in a stable order.
func Boards() []Board { return append([]Board(nil), boards...) }

// BoardNames lists the known boards' names in Boards' order.
func BoardNames() []string {
	names := make([]string, len(boards))
	for i, b := range boards {
		names[i] = b.Name
	}
	return names
}

// LookupBoard returns the board called name, or ErrUnknownBoard naming the
// valid ones.
func LookupBoard(name string) (Board, error) {
	for _, b := range boards {
		if b.Name == name {
			return b, nil
		}
	}
	return Board{}, fmt.Errorf("%w %q (valid: %s)", ErrUnknownBoard, name, strings.Join(BoardNames(), ", "))
}

// Strategies lists the registered bootloader strategies the board supports,
// sorted by name.
func (b Board) Strategies() []string {
	var out []string
	for _, s := range mcuboot.StrategyNames() {
		if b.Supports(s) {
			out = append(out, s)
		}
	}
	return out
}

// Supports reports whether strategy is registered and not excluded.
func (b Board) Supports(strategy string) bool {
	if _, err := mcuboot.LookupStrategy(strategy); err != nil {
		return false
	}
	for _, x := range b.Excludes {
		if x == strategy {
			return false
		}
	}
	return true
}

// NewFlash returns a fresh, erased part of the board's geometry.
func (b Board) NewFlash(opts flashsim.Options) *flashsim.Device {
	return flashsim.New(b.Geometry, opts)
}

// Areas opens the board's slots and scratch area on f; scratch is nil when
// the board has none.
func (b Board) Areas(f flashsim.Flash) (primary, secondary, scratch *flashsim.Area, err error) {
	if primary, err = flashsim.NewArea(f, b.Primary); err != nil {
		return nil, nil, nil, err
	}
	if secondary, err = flashsim.NewArea(f, b.Secondary); err != nil {
		return nil, nil, nil, err
	}
	if b.Scratch.Size > 0 {
		if scratch, err = flashsim.NewArea(f, b.Scratch); err != nil {
			return nil, nil, nil, err
		}
	}
	return primary, secondary, scratch, nil
}

// Bootloader returns the board's bootloader on f with cfg; cfg.MaxImgSectors
// defaults to the board's.
//
// Errors: those of mcuboot.New, or a plain error when the board's
// partitions do not tile whole sectors of f.
func (b Board) Bootloader(f flashsim.Flash, cfg mcuboot.Config) (*mcuboot.Loader, error) {
	p, s, x, err := b.Areas(f)
	if err != nil {
		return nil, err
	}
	if cfg.MaxImgSectors == 0 {
		cfg.MaxImgSectors = b.MaxImgSectors
	}
	return mcuboot.New(cfg, p, s, x)
}

// WithEraseValue returns the board on a part whose erased bytes read v
// (0xff or 0x00; MCUboot's simulator runs every device with both).
func (b Board) WithEraseValue(v byte) (Board, error) {
	g := *b.Geometry
	g.EraseValue = v
	return b.withGeometry(g)
}

// WithWriteSize returns the board on a part that programs w bytes at a time
// (1 to 32; parts with 16- and 32-byte writes need MCUboot's max-align 16
// and 32 trailers, a recurring source of bugs: issue #1275, PR #963).
func (b Board) WithWriteSize(w int) (Board, error) {
	g := *b.Geometry
	g.WriteSize = w
	return b.withGeometry(g)
}

func (b Board) withGeometry(g flashsim.Geometry) (Board, error) {
	if err := g.Validate(); err != nil {
		return Board{}, err
	}
	b.Geometry = &g
	return b, nil
}
