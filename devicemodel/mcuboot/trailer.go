package mcuboot

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// MagicState is the state of a trailer's magic (reference §3.1).
type MagicState uint8

// Magic states: all bytes erased, equal to the boot magic, anything else.
const (
	MagicUnset MagicState = iota + 1
	MagicGood
	MagicBad
)

func (m MagicState) String() string {
	switch m {
	case MagicUnset:
		return "UNSET"
	case MagicGood:
		return "GOOD"
	case MagicBad:
		return "BAD"
	}
	return fmt.Sprintf("MagicState(%d)", uint8(m))
}

// FlagState is the state of a one-byte trailer flag (image_ok, copy_done).
type FlagState uint8

// Flag states: erased, exactly 0x01, anything else.
const (
	FlagUnset FlagState = iota + 1
	FlagSet
	FlagBad
)

func (f FlagState) String() string {
	switch f {
	case FlagUnset:
		return "UNSET"
	case FlagSet:
		return "SET"
	case FlagBad:
		return "BAD"
	}
	return fmt.Sprintf("FlagState(%d)", uint8(f))
}

// flagSet is the value MCUboot writes to set image_ok or copy_done.
const flagSet = 0x01

// Status entry values: the state a swap step reached (reference §2.1).
// MCUboot names these values BOOT_STATUS_STATE_0, _1 and _2 (the state a
// step leaves, counted from 0); the names here count the values.
const (
	StatusState1 byte = 0x01
	StatusState2 byte = 0x02
	StatusState3 byte = 0x03
)

// DefaultMaxImgSectors is MCUBOOT_MAX_IMG_SECTORS: the number of sectors a
// slot may have, which sizes the swap status area.
const DefaultMaxImgSectors = 128

// magicSize is the length of the boot magic itself; its cell may be larger.
const magicSize = 16

// TrailerLayout says where the fields of a trailer lie (reference §2). Fields
// sit at fixed distances from the end of the area, each in a cell of
// BOOT_MAX_ALIGN bytes; the swap status area lies below them, with entries
// spaced by the write size.
type TrailerLayout struct {
	// WriteSize is BOOT_WRITE_SZ: the flash write size of the slots (and of
	// the scratch area in swap-scratch). It spaces status entries and
	// sizes a flag write; BOOT_MAX_ALIGN is max(8, WriteSize).
	WriteSize int
	// StatusEntries is the number of entries in the swap status area:
	// MaxImgSectors*3 for swap-scratch and swap-move slots, *2 for
	// swap-offset, 3 in the scratch area, 0 for overwrite-only.
	StatusEntries int
	// ExtraCells is the number of cells between swap_info and swap_size:
	// 1 for swap-offset's unprotected-TLV sizes, 0 otherwise.
	ExtraCells int
	// Generation adds fleetsim's swap-generation cell below swap_size, where
	// MCUboot keeps encryption keys (which fleetsim does not model). See
	// Trailer.WriteGeneration for why it exists.
	Generation bool
}

// MaxAlign is BOOT_MAX_ALIGN: max(8, WriteSize).
func (l TrailerLayout) MaxAlign() int { return max(8, l.WriteSize) }

// MagicCellSize is the size of the cell holding the magic:
// ALIGN_UP(16, BOOT_MAX_ALIGN). The magic occupies its last 16 bytes.
func (l TrailerLayout) MagicCellSize() int { return alignUp(magicSize, l.MaxAlign()) }

// infoCells counts the max-align cells below the magic cell: image_ok,
// copy_done, swap_info, the extra cells, swap_size and the generation.
func (l TrailerLayout) infoCells() int {
	n := 4 + l.ExtraCells
	if l.Generation {
		n++
	}
	return n
}

// InfoSize is the size of the fields above the status area.
func (l TrailerLayout) InfoSize() int { return l.MagicCellSize() + l.infoCells()*l.MaxAlign() }

// StatusSize is the size of the swap status area.
func (l TrailerLayout) StatusSize() int { return l.StatusEntries * l.WriteSize }

// Size is the whole trailer: status area plus fields (boot_trailer_sz).
func (l TrailerLayout) Size() int { return l.StatusSize() + l.InfoSize() }

// Distances of the fields from the end of the area (E - x).
func (l TrailerLayout) imageOKDist() int  { return l.MagicCellSize() + l.MaxAlign() }
func (l TrailerLayout) copyDoneDist() int { return l.MagicCellSize() + 2*l.MaxAlign() }
func (l TrailerLayout) swapInfoDist() int { return l.MagicCellSize() + 3*l.MaxAlign() }
func (l TrailerLayout) extraCellDist(i int) int {
	return l.MagicCellSize() + (4+i)*l.MaxAlign()
}
func (l TrailerLayout) swapSizeDist() int {
	return l.MagicCellSize() + (4+l.ExtraCells)*l.MaxAlign()
}
func (l TrailerLayout) generationDist() int { return l.swapSizeDist() + l.MaxAlign() }

// Offsets of the fields within an area of areaSize bytes.

// MagicOff is where the 16 magic bytes start (E-16).
func (l TrailerLayout) MagicOff(areaSize int64) int64 { return areaSize - magicSize }

// ImageOKOff is where image_ok lies.
func (l TrailerLayout) ImageOKOff(areaSize int64) int64 { return areaSize - int64(l.imageOKDist()) }

// CopyDoneOff is where copy_done lies.
func (l TrailerLayout) CopyDoneOff(areaSize int64) int64 { return areaSize - int64(l.copyDoneDist()) }

// SwapInfoOff is where swap_info lies.
func (l TrailerLayout) SwapInfoOff(areaSize int64) int64 { return areaSize - int64(l.swapInfoDist()) }

// ExtraCellOff is where extra cell i (0-based, below swap_info) lies.
func (l TrailerLayout) ExtraCellOff(areaSize int64, i int) int64 {
	return areaSize - int64(l.extraCellDist(i))
}

// SwapSizeOff is where swap_size lies.
func (l TrailerLayout) SwapSizeOff(areaSize int64) int64 { return areaSize - int64(l.swapSizeDist()) }

// GenerationOff is where the swap-generation cell lies (when Generation).
func (l TrailerLayout) GenerationOff(areaSize int64) int64 {
	return areaSize - int64(l.generationDist())
}

// StatusOff is where the swap status area starts (E - trailer size).
func (l TrailerLayout) StatusOff(areaSize int64) int64 { return areaSize - int64(l.Size()) }

// StatusEntryOff is where status entry i lies.
func (l TrailerLayout) StatusEntryOff(areaSize int64, i int) int64 {
	return l.StatusOff(areaSize) + int64(i*l.WriteSize)
}

// TrailerState is what a trailer holds, decoded as MCUboot reads it
// (boot_read_swap_state) plus fleetsim's generation.
type TrailerState struct {
	Magic    MagicState
	ImageOK  FlagState
	CopyDone FlagState
	// SwapType is swap_info's low nibble; SwapNone when swap_info is erased
	// or names no swap (greater than REVERT).
	SwapType SwapType
	// ImageNum is swap_info's high nibble.
	ImageNum uint8
	// SwapSize is swap_size as stored (0xffffffff when erased on 0xff flash).
	SwapSize uint32
	// Generation is the swap generation; GenerationValid is false unless the
	// cell holds a value and its seal over the value, swap_info and
	// swap_size (see Trailer.WriteGeneration).
	Generation      uint32
	GenerationValid bool
}

// Trailer reads and writes the trailer at the end of a flash area (a slot or
// the scratch area) with MCUboot's write sizes: a flag write is one write
// unit (value then erase-value fill), the magic write is its whole cell,
// a status entry write is one write unit with the state in byte 0.
type Trailer struct {
	area   *flashsim.Area
	layout TrailerLayout
	magic  [16]byte
}

// NewTrailer binds layout to area. It panics if the layout's write size is
// not a multiple of the area's (a programmer error: layouts come from the
// strategy and the area's geometry).
func NewTrailer(area *flashsim.Area, layout TrailerLayout) *Trailer {
	if layout.WriteSize%area.WriteSize() != 0 {
		panic(fmt.Sprintf("mcuboot: trailer write size %d is not a multiple of area %q's %d", layout.WriteSize, area.Name(), area.WriteSize()))
	}
	m, err := image.MagicFor(layout.MaxAlign())
	if err != nil {
		panic(err)
	}
	return &Trailer{area: area, layout: layout, magic: m}
}

// Area is the flash area the trailer ends.
func (t *Trailer) Area() *flashsim.Area { return t.area }

// Layout is the trailer's layout.
func (t *Trailer) Layout() TrailerLayout { return t.layout }

func (t *Trailer) size() int64 { return t.area.Size() }

// Read decodes the trailer. Errors are flash errors.
func (t *Trailer) Read() (TrailerState, error) {
	var st TrailerState
	ev := t.area.EraseValue()
	var m [magicSize]byte
	if err := readAt(t.area, m[:], t.layout.MagicOff(t.size())); err != nil {
		return st, err
	}
	switch {
	case allBytes(m[:], ev):
		st.Magic = MagicUnset
	case m == t.magic:
		st.Magic = MagicGood
	default:
		st.Magic = MagicBad
	}
	var err error
	if st.ImageOK, err = t.readFlag(t.layout.ImageOKOff(t.size())); err != nil {
		return st, err
	}
	if st.CopyDone, err = t.readFlag(t.layout.CopyDoneOff(t.size())); err != nil {
		return st, err
	}
	var b [8]byte
	if err := readAt(t.area, b[:1], t.layout.SwapInfoOff(t.size())); err != nil {
		return st, err
	}
	st.SwapType, st.ImageNum = SwapNone, 0
	if b[0] != ev && SwapType(b[0]&0x0f) <= SwapRevert && b[0]&0x0f != 0 {
		st.SwapType, st.ImageNum = SwapType(b[0]&0x0f), b[0]>>4
	}
	if err := readAt(t.area, b[:4], t.layout.SwapSizeOff(t.size())); err != nil {
		return st, err
	}
	st.SwapSize = binary.LittleEndian.Uint32(b[:4])
	if t.layout.Generation {
		seal, err := t.generationSeal()
		if err != nil {
			return st, err
		}
		if err := readAt(t.area, b[:8], t.layout.GenerationOff(t.size())); err != nil {
			return st, err
		}
		g, sg := binary.LittleEndian.Uint32(b[:4]), binary.LittleEndian.Uint32(b[4:8])
		st.Generation, st.GenerationValid = g, sg == seal(g)
	}
	return st, nil
}

func (t *Trailer) readFlag(off int64) (FlagState, error) {
	var b [1]byte
	if err := readAt(t.area, b[:], off); err != nil {
		return 0, err
	}
	switch b[0] {
	case t.area.EraseValue():
		return FlagUnset, nil
	case flagSet:
		return FlagSet, nil
	}
	return FlagBad, nil
}

// writeCell programs value at off, padded with the erase value to a whole
// number of write units, as boot_write_trailer does.
func (t *Trailer) writeCell(off int64, value []byte) error {
	buf := make([]byte, alignUp(len(value), t.layout.WriteSize))
	fill(buf, t.area.EraseValue())
	copy(buf, value)
	return t.area.Program(off, buf)
}

// WriteMagic writes the magic cell (boot_write_magic): erase-value padding
// then the 16 magic bytes ending at the area's end.
func (t *Trailer) WriteMagic() error {
	cell := make([]byte, alignUp(t.layout.MagicCellSize(), t.layout.WriteSize))
	fill(cell, t.area.EraseValue())
	copy(cell[len(cell)-magicSize:], t.magic[:])
	return t.area.Program(t.size()-int64(len(cell)), cell)
}

// WriteImageOK sets image_ok.
func (t *Trailer) WriteImageOK() error {
	return t.writeCell(t.layout.ImageOKOff(t.size()), []byte{flagSet})
}

// WriteCopyDone sets copy_done.
func (t *Trailer) WriteCopyDone() error {
	return t.writeCell(t.layout.CopyDoneOff(t.size()), []byte{flagSet})
}

// WriteSwapInfo writes swap_info: the swap type in the low nibble, the
// image number in the high one.
func (t *Trailer) WriteSwapInfo(st SwapType, imageNum uint8) error {
	return t.writeCell(t.layout.SwapInfoOff(t.size()), []byte{imageNum<<4 | uint8(st)&0x0f})
}

// WriteSwapSize writes swap_size.
func (t *Trailer) WriteSwapSize(n uint32) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], n)
	return t.writeCell(t.layout.SwapSizeOff(t.size()), b[:])
}

// WriteExtraCell writes extra cell i (swap-offset's TLV sizes).
func (t *Trailer) WriteExtraCell(i int, value []byte) error {
	return t.writeCell(t.layout.ExtraCellOff(t.size(), i), value)
}

// ReadExtraCell reads n bytes of extra cell i.
func (t *Trailer) ReadExtraCell(i, n int) ([]byte, error) {
	b := make([]byte, n)
	return b, readAt(t.area, b, t.layout.ExtraCellOff(t.size(), i))
}

// WriteGeneration writes the swap generation g with its seal: 32 bits of a
// SHA-256 over g, the swap_info byte and swap_size as they are in flash now,
// so both must be written before it (as every swap_status_init here does:
// swap_info, swap_size, generation, magic). A CRC will not do: CRC-32 of
// four 0xff bytes followed by zeros is 0xffffffff, so a torn erase leaving
// an erased generation over such a swap_size read as valid (found by the
// sweep on nrf52840/swap-offset with 32-byte writes).
//
// Why it exists (a fleetsim hardening, not in MCUboot): a power cut during
// the erase of a sector that holds a trailer can leave any subset of the old
// bytes in place (flashsim's torn erase), so an old trailer may survive with
// its magic intact next to a new one. A value stored with its complement
// cannot turn into a different valid value by erasing some of its bytes:
// such a tear leaves either the old pair or an invalid one. Comparing
// generations therefore tells a trailer of the current swap from a
// surviving fragment of an earlier one, which MCUboot's magic alone cannot
// (compare issue #1966, where a torn magic bricked swap-move). The seal also
// covers what a resume trusts beside the generation: a survivor whose
// swap_size a tear damaged (found by the sweep's random-revert phase on
// nrf52840/swap-scratch: a torn scratch erase left magic and generation
// intact over a swap_size of 0xffe100) no longer reads as a valid record.
func (t *Trailer) WriteGeneration(g uint32) error {
	seal, err := t.generationSeal()
	if err != nil {
		return err
	}
	var b [8]byte
	binary.LittleEndian.PutUint32(b[:4], g)
	binary.LittleEndian.PutUint32(b[4:], seal(g))
	return t.writeCell(t.layout.GenerationOff(t.size()), b[:])
}

// generationSeal reads swap_info and swap_size and returns the seal of a
// generation over them (see WriteGeneration).
func (t *Trailer) generationSeal() (func(g uint32) uint32, error) {
	b := []byte("fleetsim swap generation\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	fields := b[len(b)-9:]
	if err := readAt(t.area, fields[4:5], t.layout.SwapInfoOff(t.size())); err != nil {
		return nil, err
	}
	if err := readAt(t.area, fields[5:9], t.layout.SwapSizeOff(t.size())); err != nil {
		return nil, err
	}
	return func(g uint32) uint32 {
		binary.LittleEndian.PutUint32(fields[:4], g)
		sum := sha256.Sum256(b)
		return binary.LittleEndian.Uint32(sum[:4])
	}, nil
}

// WriteStatus writes status entry i with state (0x01..0x03).
func (t *Trailer) WriteStatus(i int, state byte) error {
	if i < 0 || i >= t.layout.StatusEntries {
		panic(fmt.Sprintf("mcuboot: status entry %d outside the %d-entry area", i, t.layout.StatusEntries))
	}
	return t.writeCell(t.layout.StatusEntryOff(t.size(), i), []byte{state})
}

// ReadStatus returns byte 0 of every status entry; an entry equal to the
// erase value is unwritten.
func (t *Trailer) ReadStatus() ([]byte, error) {
	n := t.layout.StatusEntries
	raw := make([]byte, t.layout.StatusSize())
	if err := readAt(t.area, raw, t.layout.StatusOff(t.size())); err != nil {
		return nil, err
	}
	out := make([]byte, n)
	for i := range out {
		out[i] = raw[i*t.layout.WriteSize]
	}
	return out, nil
}

// WrittenPrefix counts the status entries written from entry 0 up to the
// first unwritten one. An entry written after that gap makes the status
// inconsistent (ErrInconsistentStatus): writes are in order and a power cut
// tears at most the entry being written.
func WrittenPrefix(entries []byte, eraseValue byte) (int, error) {
	n := 0
	for n < len(entries) && entries[n] != eraseValue {
		n++
	}
	for i := n; i < len(entries); i++ {
		if entries[i] != eraseValue {
			return n, fmt.Errorf("%w: entry %d written after unwritten entry %d", ErrInconsistentStatus, i, n)
		}
	}
	return n, nil
}

// Erased reports whether every byte of the trailer, status area included,
// holds the erase value: nothing in it needs erasing before it is written.
func (t *Trailer) Erased() (bool, error) {
	off := t.layout.StatusOff(t.size())
	b := make([]byte, t.size()-off)
	if err := readAt(t.area, b, off); err != nil {
		return false, err
	}
	return allBytes(b, t.area.EraseValue()), nil
}

// Sectors lists the sectors of the area the trailer overlaps, in ascending
// order.
func (t *Trailer) Sectors() []flashsim.Sector {
	return sectorsFrom(t.area, t.layout.StatusOff(t.size()))
}

// Scramble erases the sectors the trailer overlaps (swap_scramble_trailer_sectors).
func (t *Trailer) Scramble() error {
	for _, s := range t.Sectors() {
		if err := t.area.Erase(s.Offset, s.Size); err != nil {
			return err
		}
	}
	return nil
}

// sectorsFrom returns the sectors of a that hold any byte at or above off.
func sectorsFrom(a *flashsim.Area, off int64) []flashsim.Sector {
	secs := a.Sectors()
	for i, s := range secs {
		if s.Offset+s.Size > off {
			return secs[i:]
		}
	}
	return nil
}

func readAt(a *flashsim.Area, p []byte, off int64) error {
	_, err := a.ReadAt(p, off)
	return err
}

func allBytes(b []byte, v byte) bool {
	// Compared a block at a time with the runtime's vectorised equality:
	// the bootloader asks this of every chunk it copies.
	block := &zeroBlock
	switch v {
	case 0xff:
		block = &ffBlock
	case 0:
	default:
		block = new([256]byte)
		fill(block[:], v)
	}
	for len(b) > 0 {
		n := min(len(b), len(block))
		if string(b[:n]) != string(block[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// Blocks of the usual erase values, to compare chunks with.
var (
	zeroBlock [256]byte
	ffBlock   = func() (b [256]byte) { fill(b[:], 0xff); return b }()
)

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }
