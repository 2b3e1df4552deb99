package flashsim

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// CutKind says where, relative to the operation it hits, power is cut.
type CutKind int

const (
	// CutBefore cuts power as the operation is issued: it is not performed.
	// This is MCUboot's simulator's model (sim/mcuboot-sys run.c).
	CutBefore CutKind = iota
	// CutAfter cuts power right after the operation completed, before its
	// caller learns of it.
	CutAfter
	// CutDuring tears the operation: a program leaves a random subset of
	// its bytes programmed, an erase leaves one of its sectors partly erased.
	CutDuring
)

// String returns "before", "after" or "during".
func (k CutKind) String() string {
	switch k {
	case CutBefore:
		return "before"
	case CutAfter:
		return "after"
	case CutDuring:
		return "during"
	}
	return fmt.Sprintf("CutKind(%d)", int(k))
}

// PowerCut names a power cut: at the Op-th program or erase operation
// (1-based, counted from ArmPowerCut, rejected operations included), Kind
// says how much of it happens.
type PowerCut struct {
	Op   int
	Kind CutKind
}

// String describes the cut as "power cut KIND op N", for failure reports.
func (c PowerCut) String() string { return fmt.Sprintf("power cut %s op %d", c.Kind, c.Op) }

// ArmPowerCut schedules c, replacing any cut armed before. An Op below 1
// disarms. The operation hit does what c.Kind says (nothing, all of it, or a
// random torn part chosen by the device's fault source) and returns an
// *OpError wrapping ErrPowerLoss; from then on every operation, reads
// included, fails with ErrPowerLoss until PowerOn. If the operation hit
// would have been rejected by a rule, it still reports ErrPowerLoss and
// changes nothing.
func (d *Device) ArmPowerCut(c PowerCut) {
	d.cut = c
	d.sinceArm = 0
}

// PowerOn restores power after a cut and disarms any pending cut. The flash
// keeps whatever the cut left in it.
func (d *Device) PowerOn() {
	d.poweredOff = false
	d.cut = PowerCut{}
	d.sinceArm = 0
}

// PoweredOff reports whether a power cut has happened and PowerOn has not
// been called since.
func (d *Device) PoweredOff() bool { return d.poweredOff }

// countOp counts a program or erase operation issued while powered and
// reports whether the armed cut hits it, and how.
func (d *Device) countOp() (CutKind, bool) {
	d.ops++
	if d.cut.Op <= 0 {
		return 0, false
	}
	d.sinceArm++
	if d.sinceArm != d.cut.Op {
		return 0, false
	}
	return d.cut.Kind, true
}

func (d *Device) powerLoss(op string, off, n int64) error {
	d.poweredOff = true
	d.cut = PowerCut{}
	return &OpError{Op: op, Off: off, Len: n, Err: ErrPowerLoss}
}

// tornProgram programs a random subset of p's bytes; the others keep the
// erase value they had. Each byte is reached with one probability drawn per
// tear, so that tears range from "nothing written" to "all but a byte".
func (d *Device) tornProgram(off int64, p []byte) {
	r := d.rand()
	buf := make([]byte, len(p))
	d.cells.read(buf, off)
	reach := r.Float64()
	ws := d.geo.WriteSize
	var units []byte // WriteOnce: a unit any byte of which was reached is programmed
	if d.written != nil {
		units = make([]byte, len(p)/ws)
	}
	for i := range buf {
		if r.Float64() < reach {
			buf[i] = p[i]
			if units != nil {
				units[i/ws] = 1
			}
		}
	}
	d.cells.write(off, buf)
	if units != nil {
		d.written.write(off/int64(ws), units)
	}
	d.stats.Programs++
	d.stats.BytesProgrammed += int64(len(p))
}

// tornErase sets a random subset of sector s's bytes to the erase value; the
// others keep what they held. With WriteOnce, a write unit stays marked
// programmed unless the erase reached every byte of it.
func (d *Device) tornErase(s Sector) {
	r := d.rand()
	buf := make([]byte, s.Size)
	d.cells.read(buf, s.Offset)
	reach := r.Float64()
	ev := d.geo.EraseValue
	ws := int64(d.geo.WriteSize)
	var units []byte
	if d.written != nil {
		units = make([]byte, s.Size/ws)
		d.written.read(units, s.Offset/ws)
	}
	for u := int64(0); u < s.Size/ws; u++ {
		all := true
		for i := u * ws; i < (u+1)*ws; i++ {
			if r.Float64() < reach {
				buf[i] = ev
			} else {
				all = false
			}
		}
		if all && units != nil {
			units[u] = 0
		}
	}
	d.cells.write(s.Offset, buf)
	if units != nil {
		d.written.write(s.Offset/ws, units)
	}
}

// flipBits flips each bit of p with probability rate. It draws the gaps
// between flipped bits from the geometric distribution instead of one draw
// per bit, so a low rate costs next to nothing.
func flipBits(p []byte, rate float64, r *rand.Rand) {
	nbits := int64(len(p)) * 8
	if rate >= 1 {
		for i := range p {
			p[i] = ^p[i]
		}
		return
	}
	logq := math.Log1p(-rate)
	for bit := int64(-1); ; {
		// Gap to the next flipped bit: floor(ln U / ln(1-rate)), U in (0, 1].
		gap := math.Floor(math.Log(1-r.Float64()) / logq)
		if gap >= float64(nbits-bit-1) {
			return
		}
		bit += int64(gap) + 1
		p[bit/8] ^= 1 << (bit % 8)
	}
}
