package flashsim

import (
	"errors"
	"fmt"
)

// Flash is a NOR flash part. Offsets are absolute within the part.
//
// ReadAt follows io.ReaderAt. Program writes p at off; off and len(p) must be
// multiples of the geometry's WriteSize and every byte written must be erased
// beforehand. Erase erases [off, off+length), which must start and end on
// sector boundaries. Violations return an *OpError wrapping one of the
// sentinel errors below and leave the flash unchanged.
type Flash interface {
	Geometry() *Geometry
	ReadAt(p []byte, off int64) (int, error)
	Program(off int64, p []byte) error
	Erase(off, length int64) error
}

// A CopyFlash is a Flash that can be told where the bytes of a program were
// read from on the same part (Device.ProgramFrom), so that a copy between
// slots costs the emulation no new storage. ProgramFrom(off, p, src) must
// behave exactly as Program(off, p).
type CopyFlash interface {
	Flash
	ProgramFrom(off int64, p []byte, src int64) error
}

// Sentinel errors, tested with errors.Is.
var (
	// ErrOutOfBounds: the access reaches outside the part or the partition.
	ErrOutOfBounds = errors.New("access out of bounds")
	// ErrMisaligned: a program's offset or length is not a multiple of the write size.
	ErrMisaligned = errors.New("program not aligned to the write size")
	// ErrNotErased: a program targets bytes that are not in the erased state.
	ErrNotErased = errors.New("program over bytes that are not erased")
	// ErrEraseBoundary: an erase does not start and end on sector boundaries.
	ErrEraseBoundary = errors.New("erase not on sector boundaries")
	// ErrWornOut: the sector has passed its erase endurance and no longer erases or programs.
	ErrWornOut = errors.New("sector worn out")
	// ErrPowerLoss: power was cut; the part accepts nothing until it is powered on again.
	ErrPowerLoss = errors.New("power lost")

	// Read bit errors (Options.ReadBitErrorRate) have no sentinel: a real
	// part returns flipped bits without knowing it, and so does Device.
)

// OpError describes a rejected or interrupted flash operation.
type OpError struct {
	Op  string // "read", "program" or "erase"
	Off int64  // where the operation starts on the part (absolute, even through an Area)
	Len int64  // its length in bytes
	Err error  // one of the sentinels above
}

// Error names the operation, its range on the part and the sentinel.
func (e *OpError) Error() string {
	return fmt.Sprintf("flash %s at 0x%x+0x%x: %v", e.Op, e.Off, e.Len, e.Err)
}

// Unwrap returns the sentinel, for errors.Is.
func (e *OpError) Unwrap() error { return e.Err }
