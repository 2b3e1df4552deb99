package flashsim

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
)

// OpKind is what a flash operation does.
type OpKind uint8

const (
	// OpRead is a ReadAt or a Sum256.
	OpRead OpKind = iota + 1
	// OpProgram is a Program or a ProgramFrom.
	OpProgram
	// OpErase is an Erase.
	OpErase
)

var opKindNames = [...]string{OpRead: "read", OpProgram: "program", OpErase: "erase"}

// String returns "read", "program" or "erase", the words of the DSL and of
// OpError.Op.
func (k OpKind) String() string {
	if k >= OpRead && k <= OpErase {
		return opKindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", int(k))
}

// Op is an operation as an Injector sees it, before it reaches the part.
type Op struct {
	Kind OpKind
	Off  int64 // where it starts on the part (absolute, even through an Area)
	Len  int64 // its length in bytes
	// Index is FaultyFlash.Ops as of the operation: for a program or an
	// erase its own 1-based number among those the wrapper received while
	// powered, for a read the number of programs and erases before it.
	Index int
}

// String describes the operation as "program 0x1000+0x800 #5".
func (o Op) String() string { return fmt.Sprintf("%s 0x%x+0x%x #%d", o.Kind, o.Off, o.Len, o.Index) }

// FaultKind says what a Fault does.
type FaultKind uint8

const (
	// NoFault: the operation goes to the part unchanged.
	NoFault FaultKind = iota
	// FaultPowerCut: the power goes at the operation (Fault.Cut says
	// where), and every operation fails with ErrPowerLoss until PowerOn.
	FaultPowerCut
	// FaultWearOut: the first sector a program or erase touches wears out
	// for good; the operation is refused with ErrWornOut.
	FaultWearOut
	// FaultBitFlips: bits of what a read returns flip (Fault.Rate,
	// Fault.Rand); the part keeps its bytes.
	FaultBitFlips
)

// Fault is what an Injector does to one operation. The zero Fault is none.
type Fault struct {
	Kind FaultKind
	// Cut is where a FaultPowerCut falls relative to the operation.
	Cut CutKind
	// Rate is the probability that each bit a FaultBitFlips read returns
	// flips, Rand the source that chooses them.
	Rate float64
	Rand *rand.Rand
}

// An Injector chooses the faults of the operations a FaultyFlash receives.
// Injectors compose (Any, and the predicates that say when a fault strikes)
// and print as an s-expression that ParseInjector reads back.
//
// An injector may hold state (operation counts, random streams, Once): it
// belongs to one wrapper and is not safe for concurrent use. String prints
// it as built, without its state, so ParseInjector(inj.String()) is a fresh
// copy of it.
type Injector interface {
	fmt.Stringer
	// MaybeFault is called with every operation the wrapper receives while
	// powered, before the part sees it, and returns the fault it suffers.
	MaybeFault(op Op) Fault
}

// FaultyFlash is a Flash whose operations suffer the faults its Injector
// chooses: power cuts (before, after or during an operation, the last
// tearing it on a TearFlash), sectors that wear out, bit flips in what a
// read returns. Faults stack by combining injectors (Any), not wrappers.
//
// After a power cut every operation, reads included, fails with an
// *OpError wrapping ErrPowerLoss, without reaching the part or the
// injector, until PowerOn.
//
// FaultyFlash passes ProgramFrom and Sum256 through when the part has them,
// so wrapping costs a shared part nothing. It is not safe for concurrent
// use.
type FaultyFlash struct {
	part Flash
	inj  Injector
	off  bool
	ops  int
	worn []bool // per sector of the part, set by FaultWearOut; nil until then
}

// Wrap returns part with the faults inj chooses; a nil inj chooses none
// until Arm. inj becomes the wrapper's (see Injector).
func Wrap(part Flash, inj Injector) *FaultyFlash {
	return &FaultyFlash{part: part, inj: inj}
}

// Unwrap returns the part under the faults.
func (f *FaultyFlash) Unwrap() Flash { return f.part }

// Injector returns the injector armed, nil if none.
func (f *FaultyFlash) Injector() Injector { return f.inj }

// Arm replaces the injector (nil: no faults from now on). The new one
// counts operations from here on; the power state and worn sectors stay.
func (f *FaultyFlash) Arm(inj Injector) { f.inj = inj }

// PowerOn restores power after a cut. The part keeps whatever the cut left
// in it; the injector stays armed and keeps its state, so a cut at a given
// operation does not come again, while a random one may.
func (f *FaultyFlash) PowerOn() { f.off = false }

// PoweredOff reports whether a power cut happened and PowerOn has not been
// called since.
func (f *FaultyFlash) PoweredOff() bool { return f.off }

// Ops is the number of program and erase operations received while
// powered, rejected and cut ones included: what OnOp counts.
func (f *FaultyFlash) Ops() int { return f.ops }

// Geometry returns the part's geometry. It answers even with the power off.
func (f *FaultyFlash) Geometry() *Geometry { return f.part.Geometry() }

func (f *FaultyFlash) fault(kind OpKind, off, n int64) Fault {
	if kind != OpRead {
		f.ops++
	}
	if f.inj == nil {
		return Fault{}
	}
	return f.inj.MaybeFault(Op{Kind: kind, Off: off, Len: n, Index: f.ops})
}

func (f *FaultyFlash) powerLoss(kind OpKind, off, n int64) error {
	f.off = true
	return &OpError{Op: kind.String(), Off: off, Len: n, Err: ErrPowerLoss}
}

// ReadAt reads from the part. A cut at the read fails it with
// ErrPowerLoss; CutAfter and CutDuring perform it first (a read has
// nothing to tear). Bit flips change the returned bytes only.
func (f *FaultyFlash) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if f.off {
		return 0, &OpError{Op: "read", Off: off, Len: n, Err: ErrPowerLoss}
	}
	ft := f.fault(OpRead, off, n)
	if ft.Kind == FaultPowerCut {
		if ft.Cut != CutBefore {
			_, _ = f.part.ReadAt(p, off)
		}
		return 0, f.powerLoss(OpRead, off, n)
	}
	k, err := f.part.ReadAt(p, off)
	if ft.Kind == FaultBitFlips && err == nil {
		flipBits(p[:k], ft.Rate, ft.Rand)
	}
	return k, err
}

// Sum256 returns the SHA-256 of the n bytes at off as ReadAt reads them,
// faults included; the part hashes them itself when it can and no bit
// flips are injected.
func (f *FaultyFlash) Sum256(off, n int64) ([sha256.Size]byte, error) {
	if f.off {
		return [sha256.Size]byte{}, &OpError{Op: "read", Off: off, Len: n, Err: ErrPowerLoss}
	}
	ft := f.fault(OpRead, off, n)
	switch ft.Kind {
	case FaultPowerCut:
		if ft.Cut != CutBefore {
			_, _ = flashSum256(f.part, off, n)
		}
		return [sha256.Size]byte{}, f.powerLoss(OpRead, off, n)
	case FaultBitFlips:
		if off < 0 || n < 0 || n > f.part.Geometry().Size()-off {
			return [sha256.Size]byte{}, &OpError{Op: "read", Off: off, Len: n, Err: ErrOutOfBounds}
		}
		b := make([]byte, n)
		if _, err := f.part.ReadAt(b, off); err != nil {
			return [sha256.Size]byte{}, err
		}
		flipBits(b, ft.Rate, ft.Rand)
		return sha256.Sum256(b), nil
	}
	return flashSum256(f.part, off, n)
}

// Program programs p at off on the part, unless a fault strikes.
func (f *FaultyFlash) Program(off int64, p []byte) error { return f.program(off, p, -1) }

// ProgramFrom is Program for bytes read from the part at src; it reaches
// the part as ProgramFrom when the part is a CopyFlash.
func (f *FaultyFlash) ProgramFrom(off int64, p []byte, src int64) error {
	return f.program(off, p, src)
}

func (f *FaultyFlash) program(off int64, p []byte, src int64) error {
	n := int64(len(p))
	if f.off {
		return &OpError{Op: "program", Off: off, Len: n, Err: ErrPowerLoss}
	}
	do := func() error {
		if cf, ok := f.part.(CopyFlash); ok && src >= 0 {
			return cf.ProgramFrom(off, p, src)
		}
		return f.part.Program(off, p)
	}
	switch ft := f.fault(OpProgram, off, n); ft.Kind {
	case FaultPowerCut:
		switch tf, ok := f.part.(TearFlash); {
		case ft.Cut == CutAfter:
			_ = do()
		case ft.Cut == CutDuring && ok:
			_ = tf.ProgramTorn(off, p)
		}
		return f.powerLoss(OpProgram, off, n)
	case FaultWearOut:
		f.wearOut(off, n)
	}
	// A worn sector refuses a program the part's earlier rules (bounds,
	// alignment) let through, as Device orders them.
	ws := int64(f.Geometry().WriteSize)
	if f.worn != nil && n > 0 && f.inBounds(off, n) && off%ws == 0 && n%ws == 0 && f.firstWorn(off, n) >= 0 {
		return &OpError{Op: "program", Off: off, Len: n, Err: ErrWornOut}
	}
	return do()
}

// Erase erases [off, off+length) on the part, unless a fault strikes. Over
// a sector worn by FaultWearOut it erases the sectors before it and fails
// with ErrWornOut, as Device does past its endurance.
func (f *FaultyFlash) Erase(off, length int64) error {
	if f.off {
		return &OpError{Op: "erase", Off: off, Len: length, Err: ErrPowerLoss}
	}
	switch ft := f.fault(OpErase, off, length); ft.Kind {
	case FaultPowerCut:
		switch tf, ok := f.part.(TearFlash); {
		case ft.Cut == CutAfter:
			_ = f.part.Erase(off, length)
		case ft.Cut == CutDuring && ok:
			_ = tf.EraseTorn(off, length)
		}
		return f.powerLoss(OpErase, off, length)
	case FaultWearOut:
		f.wearOut(off, length)
	}
	if f.worn != nil {
		if sectors, err := f.Geometry().SectorsIn(off, length); err == nil && len(sectors) > 0 {
			if k := f.firstWorn(off, length); k >= 0 {
				if k > 0 {
					if err := f.part.Erase(off, sectors[k].Offset-off); err != nil {
						return err
					}
				}
				return &OpError{Op: "erase", Off: off, Len: length, Err: ErrWornOut}
			}
		}
	}
	return f.part.Erase(off, length)
}

func (f *FaultyFlash) inBounds(off, n int64) bool {
	return off >= 0 && n >= 0 && n <= f.Geometry().Size()-off
}

// wearOut wears out the sector an operation at off starts in, if it starts
// on the part.
func (f *FaultyFlash) wearOut(off, n int64) {
	if !f.inBounds(off, max(n, 1)) {
		return
	}
	s, ok := f.Geometry().SectorAt(off)
	if !ok {
		return
	}
	if f.worn == nil {
		f.worn = make([]bool, len(f.Geometry().Sectors()))
	}
	f.worn[s.Index] = true
}

// firstWorn returns the position, among the sectors [off, off+n) overlaps
// (n > 0, in bounds), of the first one worn out, or -1.
func (f *FaultyFlash) firstWorn(off, n int64) int {
	sectors := f.Geometry().Sectors()
	first, _ := f.Geometry().SectorAt(off)
	for i := first.Index; i < len(sectors) && sectors[i].Offset < off+n; i++ {
		if f.worn[i] {
			return i - first.Index
		}
	}
	return -1
}

// Worn reports whether a FaultWearOut wore sector i out.
func (f *FaultyFlash) Worn(sector int) bool {
	return sector >= 0 && sector < len(f.worn) && f.worn[sector]
}

// flashSum256 hashes n bytes at off of part, by Sum256 when it has it.
func flashSum256(part Flash, off, n int64) ([sha256.Size]byte, error) {
	if s, ok := part.(interface {
		Sum256(off, n int64) ([sha256.Size]byte, error)
	}); ok {
		return s.Sum256(off, n)
	}
	if off < 0 || n < 0 || n > part.Geometry().Size()-off {
		return [sha256.Size]byte{}, &OpError{Op: "read", Off: off, Len: n, Err: ErrOutOfBounds}
	}
	h := sha256.New()
	buf := make([]byte, min(n, 4096))
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := part.ReadAt(buf[:k], off); err != nil {
			return [sha256.Size]byte{}, err
		}
		h.Write(buf[:k])
		off, n = off+k, n-k
	}
	return [sha256.Size]byte(h.Sum(nil)), nil
}
