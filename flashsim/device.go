package flashsim

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
)

// Options configures a Device. The zero value is a reliable part with shared
// pages and no faults.
type Options struct {
	// Endurance is the number of erase cycles each sector is rated for; 0
	// means unlimited. The erase after the last rated one fails with
	// ErrWornOut and leaves the sector worn: it never erases or programs
	// again.
	Endurance int

	// Rand chooses every fault: which bytes a torn operation reaches and
	// which bits a read flips. It is used only by this device (a
	// *rand.Rand is not safe for concurrent use). Nil means a fixed seed, so
	// a run without a source is still reproducible.
	Rand *rand.Rand

	// ReadBitErrorRate is the probability that a bit returned by ReadAt is
	// flipped. The flip is in the returned buffer only; the stored bytes stay
	// intact, as with read disturb on a real part. 0 disables it.
	ReadBitErrorRate float64

	// NoSharing stores the part in one private byte slice instead of shared
	// pages. It is the simple reference the shared representation is checked
	// against; results are identical either way.
	NoSharing bool

	// WriteOnce also refuses, with ErrNotErased, a program over any write
	// unit programmed since its last erase, even one still holding the
	// erase value (0xFF padding, say). MCUboot's simulator enforces this
	// discipline; parts with ECC over each write unit do too. Without it
	// only the bytes' values are checked, as on parts without ECC.
	WriteOnce bool

	// PageSize is the sharing granularity in bytes; 0 means
	// DefaultPageSize. The page actually used is the largest divisor of every
	// sector size that is not above it and is a whole number of write units,
	// so that a page never straddles a sector; Device.PageSize reports it.
	PageSize int
}

// Stats counts the operations a Device has performed. An operation refused
// by a rule of the part (out of bounds, misaligned, not erased, worn, off
// sector boundaries) counts only in Rejected, torn ones included; a torn
// operation (ProgramTorn, EraseTorn) counts as performed, as does a
// multi-sector erase that stops at a worn sector after erasing others. An
// operation a FaultyFlash cuts before it reaches the part counts nowhere.
type Stats struct {
	Reads           int64
	Programs        int64
	Erases          int64 // erase operations; one may span several sectors
	BytesRead       int64
	BytesProgrammed int64
	BytesErased     int64
	Rejected        int64 // program and erase operations refused by a rule of the part
}

// Device is an emulated NOR flash part: it implements Flash and enforces the
// rules a real part does, counts wear, and injects the faults chosen by its
// Options. It is always powered: power cuts are a FaultyFlash's, which tears
// the part's operations through ProgramTorn and EraseTorn (TearFlash). A
// Device is not safe for concurrent use; distinct
// devices (clones included) may be used from different goroutines, since the
// pages they share are immutable.
type Device struct {
	geo       *Geometry
	cells     cells
	written   cells // with WriteOnce: one byte per write unit, 1 = programmed since erase
	pageSize  int
	endurance int
	bitErrors float64
	rng       *rand.Rand

	wear  cells // erase count per sector, counting the erase that wore it out (wear.go)
	stats Stats
	ops   int // program and erase operations received
}

// New returns a fresh part of geometry g, fully erased. g must have been
// validated (Uniform does it; a hand-built Geometry needs Validate); New
// panics otherwise, as that is a programmer error.
func New(g *Geometry, opts Options) *Device {
	if len(g.Sectors()) == 0 {
		panic("flashsim: New with a geometry that was not validated")
	}
	limit := opts.PageSize
	if limit <= 0 {
		limit = DefaultPageSize
	}
	d := &Device{
		geo:       g,
		pageSize:  pageSizeFor(g, limit),
		endurance: opts.Endurance,
		bitErrors: opts.ReadBitErrorRate,
		rng:       opts.Rand,
		wear:      newWear(len(g.Sectors()), !opts.NoSharing),
	}
	ws := int64(g.WriteSize)
	if opts.NoSharing {
		d.cells = newFlatCells(g.Size(), g.EraseValue)
		if opts.WriteOnce {
			d.written = newFlatCells(g.Size()/ws, 0)
		}
	} else {
		d.cells = newPageTree(g.Size(), d.pageSize, g.EraseValue)
		if opts.WriteOnce {
			d.written = newPageTree(g.Size()/ws, d.pageSize/g.WriteSize, 0)
		}
	}
	return d
}

// Clone returns an independent copy of d: same contents (sharing its pages),
// geometry, options and counters. It costs a few words: the page tree's root
// and overlay. The clone does not share d's fault source, which
// is not safe for concurrent use: it draws from a fixed seed until SetRand
// gives it one. Clone only reads d, so several goroutines may clone the same
// device at once as long as none of them uses it.
func (d *Device) Clone() *Device {
	c := *d
	c.cells = d.cells.clone()
	if d.written != nil {
		c.written = d.written.clone()
	}
	c.wear = d.wear.clone()
	c.rng = nil
	return &c
}

// SetRand replaces the source that chooses d's faults (see Options.Rand).
func (d *Device) SetRand(r *rand.Rand) { d.rng = r }

// Geometry returns the part's geometry.
func (d *Device) Geometry() *Geometry { return d.geo }

// PageSize is the sharing granularity the device uses, in bytes.
func (d *Device) PageSize() int { return d.pageSize }

// Stats returns the operation counters.
func (d *Device) Stats() Stats { return d.stats }

// Ops is the number of program and erase operations the part has received,
// rejected and torn ones included. It is the operation count a power cut
// sweep iterates over. An operation a FaultyFlash cuts before it reaches the
// part is not received (FaultyFlash.Ops counts it).
func (d *Device) Ops() int { return d.ops }

// EraseCount is the number of erase cycles sector i has gone through,
// including a final one that wore it out. It returns 0 for an index outside
// the part.
func (d *Device) EraseCount(sector int) int {
	if sector < 0 || sector >= len(d.geo.sectors) {
		return 0
	}
	return int(readWear(d.wear, sector, 1).count(0))
}

// Worn reports whether sector i has worn out (see Options.Endurance).
func (d *Device) Worn(sector int) bool {
	return d.endurance > 0 && d.EraseCount(sector) > d.endurance
}

// ReadAt reads len(p) bytes at off. It returns ErrOutOfBounds, wrapped in
// an *OpError, if the range leaves the part; with Options.ReadBitErrorRate
// some returned bits may be flipped.
func (d *Device) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if !d.inBounds(off, n) {
		return 0, &OpError{Op: "read", Off: off, Len: n, Err: ErrOutOfBounds}
	}
	d.cells.read(p, off)
	d.stats.Reads++
	d.stats.BytesRead += n
	if d.bitErrors > 0 {
		flipBits(p, d.bitErrors, d.rand())
	}
	return len(p), nil
}

// Sum256 returns the SHA-256 of the len bytes at off, as ReadAt would read
// them (with its errors), and counts as one read. Shared parts remember the
// digests of the contents they hold, so a fleet holding one image hashes
// it once; with read bit errors the bytes are read, and hashed as read.
func (d *Device) Sum256(off, n int64) ([32]byte, error) {
	if !d.inBounds(off, n) {
		return [32]byte{}, &OpError{Op: "read", Off: off, Len: n, Err: ErrOutOfBounds}
	}
	d.stats.Reads++
	d.stats.BytesRead += n
	if d.bitErrors > 0 {
		b := make([]byte, n)
		d.cells.read(b, off)
		flipBits(b, d.bitErrors, d.rand())
		return sha256.Sum256(b), nil
	}
	return d.cells.sum256(off, n), nil
}

// Program writes p at off. It fails, leaving the part unchanged, with an
// *OpError wrapping ErrOutOfBounds, ErrMisaligned (off or len(p) not a
// multiple of WriteSize), ErrWornOut (a target sector is worn) or
// ErrNotErased (some target byte does not hold the erase value).
func (d *Device) Program(off int64, p []byte) error { return d.programFrom(off, p, -1) }

// ProgramFrom is Program(off, p) for bytes p that were read from the part
// at src, as a bootloader copies between slots. Its effect, errors and
// counts are Program's; the part may store the copy as the pages it was
// read from (when they still hold p) instead of storing p afresh.
func (d *Device) ProgramFrom(off int64, p []byte, src int64) error {
	return d.programFrom(off, p, src)
}

func (d *Device) programFrom(off int64, p []byte, src int64) error {
	d.ops++
	if err := d.checkProgram(off, p); err != nil {
		d.stats.Rejected++
		return &OpError{Op: "program", Off: off, Len: int64(len(p)), Err: err}
	}
	d.program(off, p, src)
	return nil
}

func (d *Device) checkProgram(off int64, p []byte) error {
	n := int64(len(p))
	ws := int64(d.geo.WriteSize)
	switch {
	case !d.inBounds(off, n):
		return ErrOutOfBounds
	case off%ws != 0 || n%ws != 0:
		return ErrMisaligned
	case n == 0:
		return nil
	case d.endurance > 0 && d.anyWorn(off, n):
		return ErrWornOut
	case !d.cells.isErased(off, n):
		return ErrNotErased
	case d.written != nil && !d.written.isErased(off/ws, n/ws):
		return ErrNotErased
	}
	return nil
}

func (d *Device) program(off int64, p []byte, src int64) {
	d.cells.writeFrom(off, p, src)
	if d.written != nil {
		ws := int64(d.geo.WriteSize)
		markWritten(d.written, off/ws, int64(len(p))/ws)
	}
	d.stats.Programs++
	d.stats.BytesProgrammed += int64(len(p))
}

// Erase sets [off, off+length) to the erase value. It fails, leaving the
// part unchanged, with an *OpError wrapping ErrOutOfBounds or
// ErrEraseBoundary (the range does not start and end on sector boundaries).
// The sectors are erased in order: a sector past its endurance stops the
// operation with ErrWornOut after the ones before it were erased, as a
// power cut during a multi-sector erase does.
func (d *Device) Erase(off, length int64) error { return d.erase(off, length, false) }

// erase is Erase, or EraseTorn when tear is set: the sectors are erased in
// order up to a randomly chosen one, which is torn.
func (d *Device) erase(off, length int64, tear bool) error {
	d.ops++
	sectors, err := d.geo.SectorsIn(off, length)
	if err != nil {
		d.stats.Rejected++
		return &OpError{Op: "erase", Off: off, Len: length, Err: err}
	}
	if len(sectors) == 0 {
		return nil
	}
	torn := -1
	if tear {
		torn = d.rand().IntN(len(sectors))
	}
	first := sectors[0].Index
	wear := readWear(d.wear, first, len(sectors))
	if !d.wornOut(wear.count(0)) {
		d.stats.Erases++
	}
	// The sectors are erased in order, up to a worn one or the torn one.
	k := 0
	for ; k < len(sectors) && k != torn && !d.wornOut(wear.count(k)); k++ {
		wear.add(k)
		d.stats.BytesErased += sectors[k].Size
	}
	if k > 0 {
		end := sectors[k-1].Offset + sectors[k-1].Size
		d.cells.erase(off, end-off)
		if d.written != nil {
			ws := int64(d.geo.WriteSize)
			d.written.erase(off/ws, (end-off)/ws)
		}
	}
	switch {
	case k == len(sectors):
		writeWear(d.wear, first, wear)
	case d.wornOut(wear.count(k)):
		if wear.count(k) == uint32(d.endurance) {
			wear.add(k) // this attempt wears it out
		}
		writeWear(d.wear, first, wear[:(k+1)*countSize])
		if k == 0 {
			d.stats.Rejected++ // nothing was erased
		}
		return &OpError{Op: "erase", Off: off, Len: length, Err: ErrWornOut}
	default: // k == torn
		wear.add(k)
		d.stats.BytesErased += sectors[k].Size
		writeWear(d.wear, first, wear[:(k+1)*countSize])
		d.tornErase(sectors[k])
	}
	return nil
}

// wornOut reports whether a sector erased count times is past its endurance.
func (d *Device) wornOut(count uint32) bool {
	return d.endurance > 0 && int64(count) >= int64(d.endurance)
}

func (d *Device) inBounds(off, n int64) bool {
	return off >= 0 && n >= 0 && n <= d.geo.Size()-off
}

// anyWorn reports whether a worn sector overlaps [off, off+n), n > 0.
func (d *Device) anyWorn(off, n int64) bool {
	s, _ := d.geo.SectorAt(off)
	for i := s.Index; i < len(d.geo.sectors) && d.geo.sectors[i].Offset < off+n; i++ {
		if d.Worn(i) {
			return true
		}
	}
	return false
}

// unitsWritten is a run of "programmed" marks for the WriteOnce map.
var unitsWritten = bytes.Repeat([]byte{1}, 1024)

// markWritten marks n write units from unit as programmed.
func markWritten(w cells, unit, n int64) {
	for n > 0 {
		k := min(n, int64(len(unitsWritten)))
		w.write(unit, unitsWritten[:k])
		unit += k
		n -= k
	}
}

// fixedSeed1 and fixedSeed2 seed the fault source of a device given none, so
// that such a device is still reproducible.
const fixedSeed1, fixedSeed2 = 0x666c617368, 0x73696d

func (d *Device) rand() *rand.Rand {
	if d.rng == nil {
		d.rng = rand.New(rand.NewPCG(fixedSeed1, fixedSeed2))
	}
	return d.rng
}
