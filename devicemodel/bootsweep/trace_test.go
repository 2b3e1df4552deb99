package bootsweep

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/flashsim"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden flash traces in testdata/trace")

// traceFlash records the program and erase operations a bootloader issues,
// by partition.
type traceFlash struct {
	flashsim.Flash
	board devicemodel.Board
	lines []string
}

func (f *traceFlash) where(off int64) string {
	for _, p := range []flashsim.Partition{f.board.Primary, f.board.Secondary, f.board.Scratch} {
		if off >= p.Offset && off < p.Offset+p.Size {
			return fmt.Sprintf("%s+%#x", p.Name, off-p.Offset)
		}
	}
	return fmt.Sprintf("%#x", off)
}

func (f *traceFlash) Program(off int64, p []byte) error {
	f.lines = append(f.lines, fmt.Sprintf("program %s %d", f.where(off), len(p)))
	return f.Flash.Program(off, p)
}

func (f *traceFlash) Erase(off, n int64) error {
	f.lines = append(f.lines, fmt.Sprintf("erase   %s %#x", f.where(off), n))
	return f.Flash.Erase(off, n)
}

// TestFlashTraces pins the exact flash operations of a test upgrade, the
// boot that reverts it and a quiet boot, for the reference strategies, in
// testdata/trace/*.txt (regenerate with -rewrite after an intended change).
// The sweep checks that they are safe; the traces show what they are.
func TestFlashTraces(t *testing.T) {
	for _, name := range []string{"k64f", "stm32f4", "nrf52840"} {
		b, err := devicemodel.LookupBoard(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"overwrite", "swap-scratch"} {
			t.Run(name+"/"+s, func(t *testing.T) {
				fx, err := NewFixture(b, s, 1, 0)
				if err != nil {
					t.Fatal(err)
				}
				dev, err := fx.Pending(false)
				if err != nil {
					t.Fatal(err)
				}
				tf := &traceFlash{Flash: dev, board: b}
				var out strings.Builder
				fmt.Fprintf(&out, "# %s on %s: new image %#x bytes, old image %#x bytes, copy chunk %d\n", s, name, fx.New.Parsed.End, fx.Old.Parsed.End, DefaultCopyChunk)
				for i, what := range []string{"test upgrade", "revert (unconfirmed)", "quiet boot"} {
					tf.lines = nil
					l, err := b.Bootloader(tf, fx.Config)
					if err != nil {
						t.Fatal(err)
					}
					res, err := l.Boot()
					if err != nil {
						t.Fatalf("boot %d: %v", i+1, err)
					}
					fmt.Fprintf(&out, "\n# boot %d, %s: did %s, runs %s, %d operations\n", i+1, what, res.SwapType, res.Header.Version, len(tf.lines))
					for _, line := range tf.lines {
						fmt.Fprintln(&out, line)
					}
				}
				path := filepath.Join("testdata", "trace", name+"-"+s+".txt")
				if *rewrite {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -run FlashTraces -rewrite)", err)
				}
				if got := out.String(); got != string(want) {
					gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
					for i := 0; i < len(gl) && i < len(wl); i++ {
						if gl[i] != wl[i] {
							t.Fatalf("%s differs at line %d:\n got  %q\n want %q\n(run go test -run FlashTraces -rewrite after an intended change)", path, i+1, gl[i], wl[i])
						}
					}
					t.Fatalf("%s: %d lines, want %d", path, len(gl), len(wl))
				}
			})
		}
	}
}
