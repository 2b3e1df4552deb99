package flashsim

import (
	"crypto/sha256"
	"fmt"
)

// Partition names a range of a part, as a board's flash map does.
type Partition struct {
	Name   string
	Offset int64
	Size   int64
}

// Area is a partition of a Flash (MCUboot's flash_area): offsets are relative
// to the partition and accesses may not leave it.
type Area struct {
	flash   Flash
	part    Partition
	sectors []Sector // relative to the partition start; shared through the Geometry
}

// NewArea opens p on f. A partition must own whole sectors, because a
// bootloader erases its slots sector by sector: NewArea fails wrapping
// ErrOutOfBounds when p leaves the part, and ErrEraseBoundary when p is
// empty or does not start and end on sector boundaries.
func NewArea(f Flash, p Partition) (*Area, error) {
	abs, err := f.Geometry().SectorsIn(p.Offset, p.Size)
	if err == nil && len(abs) == 0 {
		err = ErrEraseBoundary
	}
	if err != nil {
		return nil, fmt.Errorf("partition %q at 0x%x+0x%x does not tile whole sectors of the part: %w", p.Name, p.Offset, p.Size, err)
	}
	return &Area{flash: f, part: p, sectors: f.Geometry().areaSectors(p.Offset, abs)}, nil
}

// Flash returns the part the area lives on.
func (a *Area) Flash() Flash { return a.flash }

// Partition returns the area's name, offset and size.
func (a *Area) Partition() Partition { return a.part }

// Name is the partition's name.
func (a *Area) Name() string { return a.part.Name }

// Size is the area's size in bytes.
func (a *Area) Size() int64 { return a.part.Size }

// WriteSize is the program granularity of the underlying part.
func (a *Area) WriteSize() int { return a.flash.Geometry().WriteSize }

// EraseValue is the erased byte value of the underlying part.
func (a *Area) EraseValue() byte { return a.flash.Geometry().EraseValue }

// Sectors lists the area's sectors with offsets relative to its start. The
// slice must not be modified.
func (a *Area) Sectors() []Sector { return a.sectors }

func (a *Area) check(op string, off, n int64) error {
	if off < 0 || n < 0 || n > a.part.Size-off { // no off+n: it may overflow
		return &OpError{Op: op, Off: a.part.Offset + off, Len: n, Err: ErrOutOfBounds}
	}
	return nil
}

// ReadAt reads len(p) bytes at off within the area. A range that leaves the
// area fails with ErrOutOfBounds (in an *OpError with the part's absolute
// offset) even where the part goes on; otherwise the part's rules and
// errors apply. Program and Erase check the same way.
func (a *Area) ReadAt(p []byte, off int64) (int, error) {
	if err := a.check("read", off, int64(len(p))); err != nil {
		return 0, err
	}
	return a.flash.ReadAt(p, a.part.Offset+off)
}

// Program programs p at off within the area.
func (a *Area) Program(off int64, p []byte) error {
	if err := a.check("program", off, int64(len(p))); err != nil {
		return err
	}
	return a.flash.Program(a.part.Offset+off, p)
}

// ProgramFrom programs p at off within the area, p being what a read at
// srcOff within src returned: Program's effect, errors and counts, cheaper
// when both areas are on one part that is a CopyFlash.
func (a *Area) ProgramFrom(off int64, p []byte, src *Area, srcOff int64) error {
	if err := a.check("program", off, int64(len(p))); err != nil {
		return err
	}
	if cf, ok := a.flash.(CopyFlash); ok && src.flash == a.flash {
		return cf.ProgramFrom(a.part.Offset+off, p, src.part.Offset+srcOff)
	}
	return a.flash.Program(a.part.Offset+off, p)
}

// Sum256 returns the SHA-256 of the n bytes at off within the area, read
// as ReadAt reads them; a part that can (Device.Sum256) hashes them
// itself.
func (a *Area) Sum256(off, n int64) ([sha256.Size]byte, error) {
	if err := a.check("read", off, n); err != nil {
		return [sha256.Size]byte{}, err
	}
	return flashSum256(a.flash, a.part.Offset+off, n)
}

// Erase erases [off, off+length) within the area.
func (a *Area) Erase(off, length int64) error {
	if err := a.check("erase", off, length); err != nil {
		return err
	}
	return a.flash.Erase(a.part.Offset+off, length)
}

// EraseAll erases the whole area.
func (a *Area) EraseAll() error { return a.Erase(0, a.part.Size) }
