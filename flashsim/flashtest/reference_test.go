package flashtest_test

import (
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/flashsim/flashtest"
)

// naiveFlash is the rules of a NOR part written as plainly as possible,
// independently of flashsim.Device: the suite must hold for it too, which
// shows the suite asks for the Flash contract and not for Device's quirks.
type naiveFlash struct {
	g *flashsim.Geometry
	b []byte
}

func newNaive(g *flashsim.Geometry) flashsim.Flash {
	f := &naiveFlash{g: g, b: make([]byte, g.Size())}
	for i := range f.b {
		f.b[i] = g.EraseValue
	}
	return f
}

func (f *naiveFlash) Geometry() *flashsim.Geometry { return f.g }

func (f *naiveFlash) fits(off, n int64) bool {
	return off >= 0 && n >= 0 && off <= int64(len(f.b)) && n <= int64(len(f.b))-off
}

func (f *naiveFlash) ReadAt(p []byte, off int64) (int, error) {
	if !f.fits(off, int64(len(p))) {
		return 0, &flashsim.OpError{Op: "read", Off: off, Len: int64(len(p)), Err: flashsim.ErrOutOfBounds}
	}
	return copy(p, f.b[off:]), nil
}

func (f *naiveFlash) Program(off int64, p []byte) error {
	fail := func(err error) error { return &flashsim.OpError{Op: "program", Off: off, Len: int64(len(p)), Err: err} }
	if !f.fits(off, int64(len(p))) {
		return fail(flashsim.ErrOutOfBounds)
	}
	if off%int64(f.g.WriteSize) != 0 || len(p)%f.g.WriteSize != 0 {
		return fail(flashsim.ErrMisaligned)
	}
	for i := range p {
		if f.b[off+int64(i)] != f.g.EraseValue {
			return fail(flashsim.ErrNotErased)
		}
	}
	copy(f.b[off:], p)
	return nil
}

func (f *naiveFlash) Erase(off, n int64) error {
	fail := func(err error) error { return &flashsim.OpError{Op: "erase", Off: off, Len: n, Err: err} }
	if !f.fits(off, n) {
		return fail(flashsim.ErrOutOfBounds)
	}
	startOK, endOK := false, n == 0
	for _, s := range f.g.Sectors() {
		startOK = startOK || s.Offset == off
		endOK = endOK || s.Offset+s.Size == off+n
	}
	if !startOK && n > 0 || !endOK {
		return fail(flashsim.ErrEraseBoundary)
	}
	for i := off; i < off+n; i++ {
		f.b[i] = f.g.EraseValue
	}
	return nil
}

func TestRunOnNaiveFlash(t *testing.T) {
	flashtest.Run(t, newNaive)
}
