package devicemodel

import (
	"errors"
	"fmt"
	"strings"
	"time"

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

	// What a virtual MCU (Device) needs besides the bootloader's layout. A
	// board without AgentStorage runs the bootloader sweep but no agent.

	// HardwareID is the board name the agent reports and selects targets
	// by (aktualizr-nano's BOARD_NAME).
	HardwareID string
	// BootloaderArea holds the bootloader image the boot ROM verifies.
	BootloaderArea flashsim.Partition
	// AgentStorage is the update agent's partition (foundries.md §1.12).
	AgentStorage flashsim.Partition
	// Strategy is the upgrade strategy the board's bootloader is built
	// with unless told otherwise.
	Strategy string
	// ImageAlign is imgtool's --align for the board's images: its flash
	// write size.
	ImageAlign int
	// PageSize is the flash driver's page program size.
	PageSize int
	// Timing is how long the part and the CPU take.
	Timing Timing
}

// Timing is the board's speed: flash operations and the CPU work of
// verifying images. The simulator charges it to the device's clock.
type Timing struct {
	// SectorErase is the time to erase 4 KiB; larger sectors take
	// proportionally longer.
	SectorErase time.Duration
	// PageProgram is the time to program PageSize bytes; shorter programs
	// take proportionally less, with a floor of one write unit.
	PageProgram time.Duration
	// CPU is the core's speed relative to the i.MX RT1060 at 600 MHz
	// (1.0): hashing and signature checks take 1/CPU as long as there.
	CPU float64
	// Boot is the time from reset to the bootloader's first flash access
	// (ROM, clocks, flash controller).
	Boot time.Duration
}

// Reference CPU costs at CPU = 1 (the RT1060 running mbedTLS in software).
const (
	refHashBytesPerSecond = 20e6
	refVerify             = 10 * time.Millisecond
)

// HashTime is how long the CPU takes to hash n bytes with SHA-256.
func (t Timing) HashTime(n int64) time.Duration {
	if t.CPU <= 0 {
		return 0
	}
	return time.Duration(float64(n) / (refHashBytesPerSecond * t.CPU) * float64(time.Second))
}

// VerifyTime is how long the CPU takes to check one signature.
func (t Timing) VerifyTime() time.Duration {
	if t.CPU <= 0 {
		return 0
	}
	return time.Duration(float64(refVerify) / t.CPU)
}

// EraseTime is how long erasing n bytes of sectors takes.
func (t Timing) EraseTime(n int64) time.Duration {
	return time.Duration(int64(t.SectorErase) * n / 4096)
}

// ProgramTime is how long programming n bytes takes on a board whose page
// program of page bytes takes PageProgram.
func (t Timing) ProgramTime(n int64, page int) time.Duration {
	if page <= 0 {
		return 0
	}
	return time.Duration(int64(t.PageProgram) * n / int64(page))
}

// RunsAgent reports whether the board has room for the update agent.
func (b Board) RunsAgent() bool { return b.AgentStorage.Size > 0 }

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
		Notes:         "NXP K64F: 128 x 4 KiB, 8-byte writes; scratch is one sector; the agent's 88 KiB after it",

		HardwareID:     "FRDM-K64F",
		BootloaderArea: flashsim.Partition{Name: "bootloader", Offset: 0, Size: 0x20000},
		AgentStorage:   flashsim.Partition{Name: "agent", Offset: 0x61000, Size: 0x16000},
		Strategy:       "swap-scratch",
		ImageAlign:     8,
		PageSize:       256,
		// Kinetis K64 data sheet: sector erase 13 ms typical, phrase
		// program 65 us (32 phrases a page); Cortex-M4 at 120 MHz.
		Timing: Timing{SectorErase: 13 * time.Millisecond, PageProgram: 2080 * time.Microsecond, CPU: 0.2, Boot: 20 * time.Millisecond},
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
		Geometry:      flashsim.Uniform(256, 4<<10, 4, 0xff),
		Primary:       flashsim.Partition{Name: "primary", Offset: 0x8000, Size: 0x34000},
		Secondary:     flashsim.Partition{Name: "secondary", Offset: 0x3c000, Size: 0x34000},
		Scratch:       flashsim.Partition{Name: "scratch", Offset: 0x70000, Size: 0xd000},
		MaxImgSectors: mcuboot.DefaultMaxImgSectors,
		Notes:         "nRF52840: 256 x 4 KiB (the slots as MCUboot's simulator lays them out in the first 128), 4-byte writes; 13-sector scratch; the agent's 88 KiB at 0x80000",

		HardwareID:     "NRF52840-DK",
		BootloaderArea: flashsim.Partition{Name: "bootloader", Offset: 0, Size: 0x8000},
		AgentStorage:   flashsim.Partition{Name: "agent", Offset: 0x80000, Size: 0x16000},
		Strategy:       "swap-move",
		ImageAlign:     4,
		PageSize:       256,
		// nRF52840 product specification: page erase 85 ms, word write
		// 41 us (64 words a page); Cortex-M4F at 64 MHz.
		Timing: Timing{SectorErase: 85 * time.Millisecond, PageProgram: 2624 * time.Microsecond, CPU: 0.1, Boot: 10 * time.Millisecond},
	},
	{
		Name:      "rt1060",
		Geometry:  flashsim.Uniform(2048, 4<<10, 4, 0xff),
		Primary:   flashsim.Partition{Name: "primary", Offset: 0x40000, Size: 0x200000},
		Secondary: flashsim.Partition{Name: "secondary", Offset: 0x240000, Size: 0x200000},
		Scratch:   flashsim.Partition{Name: "scratch", Offset: 0x440000, Size: 0x10000},
		// 2 MiB of 4 KiB sectors is 512 sectors per slot.
		MaxImgSectors: 512,
		Notes:         "i.MX RT1060 8 MiB QSPI NOR: 4 KiB sectors, slots as aktualizr-nano's sample (imgtool --align 4); 64 KiB scratch after the slots; the agent's 88 KiB at 0x600000",

		HardwareID:     "MIMXRT1060-EVK",
		BootloaderArea: flashsim.Partition{Name: "bootloader", Offset: 0, Size: 0x40000},
		AgentStorage:   flashsim.Partition{Name: "agent", Offset: 0x600000, Size: 0x16000},
		Strategy:       "swap-scratch",
		ImageAlign:     4,
		PageSize:       256,
		// IS25WP064A QSPI NOR: 4 KiB sector erase 45 ms, 256-byte page
		// program 0.2 ms typical; Cortex-M7 at 600 MHz.
		Timing: Timing{SectorErase: 45 * time.Millisecond, PageProgram: 200 * time.Microsecond, CPU: 1, Boot: 50 * time.Millisecond},
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
