package flashsim_test

import (
	"bytes"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
)

// TestOverlayTakesMultiPagePrograms: single-page programs fill the
// overlay, then programs of several pages each take it past its merge
// size before it merges; every byte reads back as programmed.
func TestOverlayTakesMultiPagePrograms(t *testing.T) {
	g := flashsim.Uniform(16, 4096, 8, 0xFF)
	d := flashsim.New(g, flashsim.Options{PageSize: 256})
	want := bytes.Repeat([]byte{0xFF}, int(g.Size()))
	program := func(off int64, n int, v byte) {
		t.Helper()
		p := bytes.Repeat([]byte{v}, n)
		if err := d.Program(off, p); err != nil {
			t.Fatalf("program %#x+%d: %v", off, n, err)
		}
		copy(want[off:], p)
	}
	for i := range 7 { // seven pages far apart
		program(int64(i)*4096, 256, byte(i+1))
	}
	for i := range 4 { // then runs of seven pages
		program(0x8000+int64(i)*0x1000, 7*256, byte(0x40+i))
	}
	got := make([]byte, g.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the part does not read back what was programmed")
	}
}
