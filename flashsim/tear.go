package flashsim

// A TearFlash is a Flash that can perform a program or an erase as a power
// cut in the middle of it leaves the part. A FaultyFlash tears through it
// for CutDuring; over a Flash that is not one, CutDuring degrades to
// CutBefore. Device is a TearFlash.
type TearFlash interface {
	Flash
	// ProgramTorn is Program cut short: each byte of p is either programmed
	// or left as it was. It refuses what Program refuses, the same way.
	ProgramTorn(off int64, p []byte) error
	// EraseTorn is Erase cut short: the sectors of the range are erased in
	// order up to one of them, which is left partly erased, and the ones
	// after it are not touched. It refuses what Erase refuses, the same way.
	EraseTorn(off, length int64) error
}

// ProgramTorn performs Program(off, p) as a power cut in the middle of it
// leaves the part: a random fraction of p's bytes, drawn from the part's
// fault source, is programmed and the others keep the erase value they had
// (with WriteOnce, a write unit any byte of which was reached counts as
// programmed). It counts as one program of len(p) bytes. A program a rule
// refuses is refused as by Program (counted in Stats.Rejected, the part
// unchanged), with the same *OpError. It does not report the power loss:
// the caller that cut the power does.
func (d *Device) ProgramTorn(off int64, p []byte) error {
	d.ops++
	if err := d.checkProgram(off, p); err != nil {
		d.stats.Rejected++
		return &OpError{Op: "program", Off: off, Len: int64(len(p)), Err: err}
	}
	d.tornProgram(off, p)
	return nil
}

// EraseTorn performs Erase(off, length) as a power cut in the middle of it
// leaves the part: the sectors before a randomly chosen one of the range are
// erased, that one is left with a random subset of its bytes erased and the
// rest as they were (and counts one erase cycle), and the ones after it are
// not touched. A worn sector before the torn one stops it as it stops
// Erase, with ErrWornOut; a range Erase refuses is refused the same way. It
// does not report the power loss: the caller that cut the power does.
func (d *Device) EraseTorn(off, length int64) error { return d.erase(off, length, true) }

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
