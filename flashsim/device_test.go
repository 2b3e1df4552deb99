package flashsim_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/flashsim/flashtest"
)

// representations are the Device configurations that must behave alike:
// shared pages at the default size, at a small one and at one above the
// copy-on-write stack buffer, and the plain private copy.
var representations = []struct {
	name string
	opts flashsim.Options
}{
	{"shared", flashsim.Options{}},
	{"shared-512B-pages", flashsim.Options{PageSize: 512}},
	{"shared-64K-pages", flashsim.Options{PageSize: 64 << 10}},
	{"plain", flashsim.Options{NoSharing: true}},
}

func newDevice(t testing.TB, opts flashsim.Options) *flashsim.Device {
	t.Helper()
	return flashsim.New(flashtest.Geometry(t, []flashsim.Region{{Count: 8, Size: 4096}}, 8, 0xFF), opts)
}

func read(t testing.TB, d flashsim.Flash, off, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := d.ReadAt(b, off); err != nil {
		t.Fatalf("read 0x%x+0x%x: %v", off, n, err)
	}
	return b
}

func TestGeometries(t *testing.T) {
	for _, c := range []struct {
		name      string
		regions   []flashsim.Region
		size      int64
		sectors   int
		pageSize  int   // with DefaultPageSize
		sectorAt  int64 // an offset ...
		wantIndex int   // ... and the sector holding it
	}{
		{"k64f 128x4K", []flashsim.Region{{Count: 128, Size: 4096}}, 512 << 10, 128, 256, 0x20000, 32},
		{"stm32f4 4x16K,64K,7x128K", flashtest.STM32F4, 1 << 20, 12, 256, 0x10000 + 0xffff, 4},
		{"stm32f4 first 128K sector", flashtest.STM32F4, 1 << 20, 12, 256, 0x20000, 5},
		{"smallpages 1024x512B", []flashsim.Region{{Count: 1024, Size: 512}}, 512 << 10, 1024, 256, 0x201ff, 256},
		{"nrf52840-like 256x4K", []flashsim.Region{{Count: 256, Size: 4096}}, 1 << 20, 256, 256, 0xfffff, 255},
		{"odd 3x3000B", []flashsim.Region{{Count: 3, Size: 3000}}, 9000, 3, 200, 5999, 1},
		{"mixed 6000B+9000B", []flashsim.Region{{Count: 1, Size: 6000}, {Count: 1, Size: 9000}}, 15000, 2, 200, 6000, 1},
		{"odd 2x12000B", []flashsim.Region{{Count: 2, Size: 12000}}, 24000, 2, 240, 12000, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := flashtest.Geometry(t, c.regions, 8, 0xFF)
			if g.Size() != c.size || len(g.Sectors()) != c.sectors {
				t.Fatalf("Size=%d sectors=%d, want %d and %d", g.Size(), len(g.Sectors()), c.size, c.sectors)
			}
			s, ok := g.SectorAt(c.sectorAt)
			if !ok || s.Index != c.wantIndex {
				t.Fatalf("SectorAt(0x%x) = %+v %v, want index %d", c.sectorAt, s, ok, c.wantIndex)
			}
			if _, ok := g.SectorAt(g.Size()); ok {
				t.Fatal("SectorAt(Size()) found a sector")
			}
			// Sectors tile the part without gaps.
			var off int64
			for i, s := range g.Sectors() {
				if s.Index != i || s.Offset != off {
					t.Fatalf("sector %d = %+v, want index %d at 0x%x", i, s, i, off)
				}
				off += s.Size
			}
			d := flashsim.New(g, flashsim.Options{})
			if d.PageSize() != c.pageSize {
				t.Fatalf("PageSize() = %d, want %d", d.PageSize(), c.pageSize)
			}
			for _, s := range g.Sectors() {
				if s.Size%int64(d.PageSize()) != 0 {
					t.Fatalf("page size %d does not divide sector %+v", d.PageSize(), s)
				}
			}
		})
	}
	// A requested page size is rounded down to a divisor of the sectors made
	// of whole write units, and never below one write unit.
	for _, c := range []struct{ limit, want int }{{100, 64}, {4096, 4096}, {8192, 4096}, {1, 8}, {12, 8}} {
		d := flashsim.New(flashsim.Uniform(4, 4096, 8, 0xFF), flashsim.Options{PageSize: c.limit})
		if d.PageSize() != c.want {
			t.Errorf("Options.PageSize %d gave page size %d, want %d", c.limit, d.PageSize(), c.want)
		}
	}
	for _, bad := range []flashsim.Geometry{
		{Regions: nil, WriteSize: 8, EraseValue: 0xFF},
		{Regions: []flashsim.Region{{Count: 0, Size: 4096}}, WriteSize: 8, EraseValue: 0xFF},
		{Regions: []flashsim.Region{{Count: 1, Size: 4100}}, WriteSize: 8, EraseValue: 0xFF},
		{Regions: []flashsim.Region{{Count: 1, Size: 4096}}, WriteSize: 3, EraseValue: 0xFF},
		{Regions: []flashsim.Region{{Count: 1, Size: 4096}}, WriteSize: 8, EraseValue: 0x7F},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", bad)
		}
	}
}

func TestStatsAndOps(t *testing.T) {
	for _, r := range representations {
		t.Run(r.name, func(t *testing.T) {
			d := newDevice(t, r.opts)
			mustOK(t, d.Program(0, make([]byte, 256)))
			mustOK(t, d.Program(256, make([]byte, 8)))
			flashtest.WantOpError(t, d.Program(0, make([]byte, 8)), "program", flashsim.ErrNotErased)
			flashtest.WantOpError(t, d.Program(3, make([]byte, 8)), "program", flashsim.ErrMisaligned)
			mustOK(t, d.Erase(0, 2*4096))
			mustOK(t, d.Erase(0, 4096))
			flashtest.WantOpError(t, d.Erase(0, 100), "erase", flashsim.ErrEraseBoundary)
			read(t, d, 5, 100)
			want := flashsim.Stats{Reads: 1, Programs: 2, Erases: 2, BytesRead: 100, BytesProgrammed: 264, BytesErased: 3 * 4096, Rejected: 3}
			if got := d.Stats(); got != want {
				t.Fatalf("Stats() = %+v, want %+v", got, want)
			}
			if d.Ops() != 7 {
				t.Fatalf("Ops() = %d, want 7 (programs and erases attempted)", d.Ops())
			}
			if d.EraseCount(0) != 2 || d.EraseCount(1) != 1 || d.EraseCount(2) != 0 || d.EraseCount(-1) != 0 || d.EraseCount(8) != 0 {
				t.Fatalf("EraseCount = %d %d %d, want 2 1 0", d.EraseCount(0), d.EraseCount(1), d.EraseCount(2))
			}
		})
	}
}

func mustOK(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestEndurance(t *testing.T) {
	for _, r := range representations {
		t.Run(r.name, func(t *testing.T) {
			opts := r.opts
			opts.Endurance = 3
			d := newDevice(t, opts)
			for i := 0; i < 3; i++ {
				mustOK(t, d.Erase(4096, 4096))
			}
			mustOK(t, d.Program(4096, []byte("rated ok")))
			if d.Worn(1) {
				t.Fatal("sector worn after exactly its rated erases")
			}
			before := flashtest.Snapshot(t, d)
			flashtest.WantOpError(t, d.Erase(4096, 4096), "erase", flashsim.ErrWornOut)
			if !d.Worn(1) || d.EraseCount(1) != 4 {
				t.Fatalf("after the wearing erase: Worn=%v EraseCount=%d, want true and 4", d.Worn(1), d.EraseCount(1))
			}
			flashtest.WantOpError(t, d.Erase(4096, 4096), "erase", flashsim.ErrWornOut)
			flashtest.WantOpError(t, d.Program(4096+8, []byte("worn now")), "program", flashsim.ErrWornOut)
			// A program reaching into the worn sector from its neighbour fails whole.
			flashtest.WantOpError(t, d.Program(4096-8, make([]byte, 16)), "program", flashsim.ErrWornOut)
			flashtest.WantOpError(t, d.Erase(4096, 4096), "erase", flashsim.ErrWornOut)
			if d.EraseCount(1) != 4 {
				t.Fatalf("EraseCount(1) = %d after more failed erases, want 4", d.EraseCount(1))
			}
			flashtest.WantOpError(t, d.Erase(4096, 4096), "erase", flashsim.ErrWornOut)
			if got := flashtest.Snapshot(t, d); !bytes.Equal(got, before) {
				t.Fatal("failed erases and programs on a worn sector changed the part")
			}
			// The worn sector still reads, and the others still work.
			if got := read(t, d, 4096, 8); string(got) != "rated ok" {
				t.Fatalf("worn sector reads %q", got)
			}
			mustOK(t, d.Program(0, []byte("sector 0")))
			mustOK(t, d.Erase(2*4096, 4096))
			// A multi-sector erase runs in order and stops at the worn sector.
			mustOK(t, d.Program(2*4096, []byte("sector 2")))
			flashtest.WantOpError(t, d.Erase(0, 3*4096), "erase", flashsim.ErrWornOut)
			if got := read(t, d, 0, 8); !bytes.Equal(got, bytes.Repeat([]byte{0xFF}, 8)) {
				t.Fatalf("sector 0 before the worn one was not erased: %q", got)
			}
			if got := read(t, d, 2*4096, 8); string(got) != "sector 2" {
				t.Fatalf("sector 2 after the worn one was touched: %q", got)
			}
			// Refused by wear: 4 erases and 2 programs. Performed: 5 erases of
			// one sector each, the last one stopping at the worn sector.
			if st := d.Stats(); st.Rejected != 6 || st.Erases != 5 || st.BytesErased != 5*4096 {
				t.Fatalf("Stats() = %+v, want Rejected 6, Erases 5, BytesErased 5 sectors", st)
			}
		})
	}
}

// TestPowerCut states the cut model: which op is hit, what it leaves in the
// flash, and that the part is dead until PowerOn.
func TestPowerCut(t *testing.T) {
	const sector = 4096
	data := flashtest.Pattern(1024, 1, 0xFF)
	for _, r := range representations {
		for _, kind := range []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring} {
			t.Run(fmt.Sprintf("%s/program/%v", r.name, kind), func(t *testing.T) {
				opts := r.opts
				opts.Rand = rand.New(rand.NewPCG(1, uint64(kind)))
				part := newDevice(t, opts)
				d := flashsim.Wrap(part, nil)
				mustOK(t, d.Program(0, data))
				d.Arm(flashsim.PowerCut{Op: 3, Kind: kind}.Injector())
				mustOK(t, d.Program(1024, data))                                                  // op 1
				flashtest.WantOpError(t, d.Program(1024, data), "program", flashsim.ErrNotErased) // op 2: rejected ops count
				flashtest.WantOpError(t, d.Program(2048, data), "program", flashsim.ErrPowerLoss) // op 3: cut
				flashtest.WantOpError(t, d.Program(4096, data), "program", flashsim.ErrPowerLoss) // dead
				flashtest.WantOpError(t, d.Erase(0, sector), "erase", flashsim.ErrPowerLoss)      // dead
				_, err := d.ReadAt(make([]byte, 4), 0)                                            // dead
				flashtest.WantOpError(t, err, "read", flashsim.ErrPowerLoss)
				if !d.PoweredOff() || d.Ops() != 4 {
					t.Fatalf("PoweredOff=%v Ops=%d, want true and 4 (ops while off are not received)", d.PoweredOff(), d.Ops())
				}
				// The part received the cut operation unless it was cut before.
				want := 4
				if kind == flashsim.CutBefore {
					want = 3
				}
				if part.Ops() != want {
					t.Fatalf("part received %d operations, want %d", part.Ops(), want)
				}
				d.PowerOn()
				if d.PoweredOff() {
					t.Fatal("still off after PowerOn")
				}
				got := read(t, d, 2048, 1024)
				switch kind {
				case flashsim.CutBefore:
					if !bytes.Equal(got, bytes.Repeat([]byte{0xFF}, 1024)) {
						t.Fatal("CutBefore performed the program")
					}
				case flashsim.CutAfter:
					if !bytes.Equal(got, data) {
						t.Fatal("CutAfter did not complete the program")
					}
				case flashsim.CutDuring:
					programmed := 0
					for i, b := range got {
						switch b {
						case data[i]:
							programmed++
						case 0xFF:
						default:
							t.Fatalf("torn byte %d = 0x%02x: neither programmed (0x%02x) nor erased", i, b, data[i])
						}
					}
					if programmed == 0 || programmed == len(got) {
						t.Fatalf("torn program of 1 KiB left %d bytes programmed; this seed must tear partway", programmed)
					}
					// Bytes the tear reached are not erased any more.
					flashtest.WantOpError(t, d.Program(2048, data), "program", flashsim.ErrNotErased)
				}
				// The cut struck once: the part works and no further cut comes.
				if !bytes.Equal(read(t, d, 0, 2048), append(append([]byte(nil), data...), data...)) {
					t.Fatal("ops before the cut were lost")
				}
				mustOK(t, d.Erase(0, sector))
				for i := 0; i < 5; i++ {
					mustOK(t, d.Program(int64(i*8), make([]byte, 8)))
				}
			})
		}
		for _, kind := range []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring} {
			t.Run(fmt.Sprintf("%s/erase/%v", r.name, kind), func(t *testing.T) {
				opts := r.opts
				opts.Rand = rand.New(rand.NewPCG(2, uint64(kind)))
				d := newDevice(t, opts)
				full := flashtest.Pattern(8*sector, 2, 0xFF)
				mustOK(t, d.Program(0, full))
				f := flashsim.Wrap(d, flashsim.PowerCut{Op: 1, Kind: kind}.Injector())
				flashtest.WantOpError(t, f.Erase(sector, 6*sector), "erase", flashsim.ErrPowerLoss)
				got := flashtest.Snapshot(t, d)
				if !bytes.Equal(got[:sector], full[:sector]) || !bytes.Equal(got[7*sector:], full[7*sector:]) {
					t.Fatal("the cut erase changed sectors outside its range")
				}
				erased := func(s int) bool { return bytes.Equal(got[s*sector:(s+1)*sector], bytes.Repeat([]byte{0xFF}, sector)) }
				intact := func(s int) bool { return bytes.Equal(got[s*sector:(s+1)*sector], full[s*sector:(s+1)*sector]) }
				switch kind {
				case flashsim.CutBefore:
					for s := 1; s < 7; s++ {
						if !intact(s) {
							t.Fatalf("CutBefore: sector %d changed", s)
						}
					}
				case flashsim.CutAfter:
					for s := 1; s < 7; s++ {
						if !erased(s) {
							t.Fatalf("CutAfter: sector %d not erased", s)
						}
					}
				case flashsim.CutDuring:
					torn := -1
					for s := 1; s < 7; s++ {
						if !erased(s) && !intact(s) {
							if torn >= 0 {
								t.Fatalf("sectors %d and %d both torn", torn, s)
							}
							torn = s
						}
					}
					if torn < 0 {
						t.Fatal("no sector was left partly erased; this seed must tear partway")
					}
					for s := 1; s < 7; s++ {
						if s < torn && !erased(s) || s > torn && !intact(s) {
							t.Fatalf("torn sector %d: sector %d should be %s", torn, s, map[bool]string{true: "erased", false: "untouched"}[s < torn])
						}
					}
					for i := torn * sector; i < (torn+1)*sector; i++ {
						if got[i] != 0xFF && got[i] != full[i] {
							t.Fatalf("torn erase left byte 0x%x = 0x%02x: neither old (0x%02x) nor erased", i, got[i], full[i])
						}
					}
					if d.EraseCount(torn) != 1 || d.EraseCount(torn+1) != 0 {
						t.Fatalf("EraseCount(torn=%d)=%d, EraseCount(next)=%d; want 1 and 0", torn, d.EraseCount(torn), d.EraseCount(torn+1))
					}
				}
			})
		}
	}
}

// TestPowerCutOnRejectedOp: a cut hitting an op the part refuses still
// cuts power and changes nothing; the part counts the refusal unless the cut
// came before the op reached it.
func TestPowerCutOnRejectedOp(t *testing.T) {
	for _, kind := range []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring} {
		d := newDevice(t, flashsim.Options{})
		mustOK(t, d.Program(0, []byte("12345678")))
		before := flashtest.Snapshot(t, d)
		f := flashsim.Wrap(d, flashsim.Cut(kind, nil))
		flashtest.WantOpError(t, f.Program(0, []byte("abcdefgh")), "program", flashsim.ErrPowerLoss)
		f.PowerOn()
		flashtest.WantOpError(t, f.Erase(0, 100), "erase", flashsim.ErrPowerLoss)
		f.PowerOn()
		if !bytes.Equal(flashtest.Snapshot(t, d), before) {
			t.Fatalf("%v cut on a rejected op changed the part", kind)
		}
		want := int64(2)
		if kind == flashsim.CutBefore {
			want = 0
		}
		if got := d.Stats().Rejected; got != want {
			t.Fatalf("%v cut on two rejected ops: Rejected = %d, want %d", kind, got, want)
		}
	}
}

// TestTornTearsVary: across seeds, torn programs cover the range from
// almost nothing to almost everything, and a given seed always tears alike.
func TestTornTearsVary(t *testing.T) {
	data := flashtest.Pattern(256, 3, 0xFF)
	tear := func(seed uint64) int {
		d := newDevice(t, flashsim.Options{Rand: rand.New(rand.NewPCG(seed, 0))})
		mustOK(t, d.ProgramTorn(0, data))
		n := 0
		for _, b := range read(t, d, 0, 256) {
			if b != 0xFF {
				n++
			}
		}
		return n
	}
	lo, hi := 256, 0
	for seed := uint64(0); seed < 64; seed++ {
		n := tear(seed)
		if n != tear(seed) {
			t.Fatalf("seed %d tore differently twice", seed)
		}
		lo, hi = min(lo, n), max(hi, n)
	}
	if lo > 32 || hi < 224 {
		t.Fatalf("64 tears of 256 bytes programmed between %d and %d bytes; want a spread from <=32 to >=224", lo, hi)
	}
}

func TestArmDisarm(t *testing.T) {
	f := flashsim.Wrap(newDevice(t, flashsim.Options{}), flashsim.PowerCut{Op: 2, Kind: flashsim.CutBefore}.Injector())
	f.Arm(flashsim.PowerCut{Op: 0}.Injector())
	if f.Injector() != nil {
		t.Fatalf("a cut at op 0 armed %v", f.Injector())
	}
	for i := 0; i < 4; i++ {
		mustOK(t, f.Program(int64(i*8), make([]byte, 8)))
	}
	// Arming restarts the count from the moment of arming.
	f.Arm(flashsim.PowerCut{Op: 2, Kind: flashsim.CutBefore}.Injector())
	mustOK(t, f.Program(64, make([]byte, 8)))
	flashtest.WantOpError(t, f.Program(72, make([]byte, 8)), "program", flashsim.ErrPowerLoss)
	if got := fmt.Sprint(flashsim.PowerCut{Op: 7, Kind: flashsim.CutDuring}); got != "power cut during op 7" {
		t.Fatalf("PowerCut.String() = %q", got)
	}
	if got := (flashsim.PowerCut{Op: 7, Kind: flashsim.CutDuring}).Injector().String(); got != "(cut during (op 7))" {
		t.Fatalf("PowerCut.Injector().String() = %q", got)
	}
}

func TestClone(t *testing.T) {
	for _, r := range representations {
		t.Run(r.name, func(t *testing.T) {
			d := newDevice(t, r.opts)
			mustOK(t, d.Program(0, flashtest.Pattern(4096, 1, 0xFF)))
			mustOK(t, d.Erase(4096, 4096))
			c := d.Clone()
			if c.Stats() != d.Stats() || c.Ops() != d.Ops() || c.EraseCount(1) != 1 || c.Geometry() != d.Geometry() {
				t.Fatal("clone did not copy counters and geometry")
			}
			mustOK(t, c.Program(8192, []byte("clone...")))
			mustOK(t, d.Program(8192, []byte("original")))
			mustOK(t, d.Erase(0, 4096))
			if got := read(t, c, 8192, 8); string(got) != "clone..." {
				t.Fatalf("clone reads %q after the original changed", got)
			}
			if got := read(t, c, 0, 4096); !bytes.Equal(got, flashtest.Pattern(4096, 1, 0xFF)) {
				t.Fatal("erasing the original changed the clone")
			}
			if got := read(t, d, 8192, 8); string(got) != "original" {
				t.Fatalf("original reads %q after the clone changed", got)
			}
			if c.EraseCount(0) != 0 || d.EraseCount(0) != 1 {
				t.Fatal("erase counts are shared between clone and original")
			}
		})
	}
}

func TestReadBitErrors(t *testing.T) {
	const rate = 1e-3
	d := newDevice(t, flashsim.Options{ReadBitErrorRate: rate, Rand: rand.New(rand.NewPCG(5, 5))})
	data := flashtest.Pattern(8*4096, 4, 0xFF)
	mustOK(t, d.Program(0, data))
	flips := 0
	const reads = 50
	for i := 0; i < reads; i++ {
		got := read(t, d, 0, int64(len(data)))
		for j := range got {
			for x := got[j] ^ data[j]; x != 0; x &= x - 1 {
				flips++
			}
		}
	}
	bits := float64(reads * len(data) * 8)
	if f := float64(flips) / bits; f < rate*0.8 || f > rate*1.2 {
		t.Fatalf("observed bit error rate %.2g over %.0f bits, want %.2g +-20%%", f, bits, rate)
	}
	// Flips never reach the flash: the program below is judged on the
	// stored bytes, and the erase on a fully programmed sector works.
	flashtest.WantOpError(t, d.Program(0, make([]byte, 8)), "program", flashsim.ErrNotErased)
	mustOK(t, d.Erase(0, 4096))
	// With rate 1 every bit flips, which shows the flip is in the buffer only.
	all := newDevice(t, flashsim.Options{ReadBitErrorRate: 1})
	if got := read(t, all, 0, 16); !bytes.Equal(got, make([]byte, 16)) {
		t.Fatalf("rate 1 on erased 0xFF read %x, want all zero", got)
	}
	mustOK(t, all.Program(0, make([]byte, 16))) // still erased underneath
}

func TestNewPanicsOnUnvalidatedGeometry(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted a geometry that was never validated")
		}
	}()
	flashsim.New(&flashsim.Geometry{Regions: []flashsim.Region{{Count: 1, Size: 4096}}, WriteSize: 8, EraseValue: 0xFF}, flashsim.Options{})
}

// TestWriteOnce: with Options.WriteOnce a write unit programmed since its
// last erase is refused even when it still holds the erase value; without
// it only values count.
func TestWriteOnce(t *testing.T) {
	erasedUnit := bytes.Repeat([]byte{0xFF}, 8)
	for _, r := range representations {
		t.Run(r.name, func(t *testing.T) {
			values := newDevice(t, r.opts)
			mustOK(t, values.Program(0, erasedUnit))
			mustOK(t, values.Program(0, []byte("reusable")))

			opts := r.opts
			opts.WriteOnce = true
			d := newDevice(t, opts)
			mustOK(t, d.Program(8, erasedUnit))
			before := flashtest.Snapshot(t, d)
			flashtest.WantOpError(t, d.Program(8, []byte("twice!!!")), "program", flashsim.ErrNotErased)
			flashtest.WantOpError(t, d.Program(0, make([]byte, 24)), "program", flashsim.ErrNotErased)
			if !bytes.Equal(flashtest.Snapshot(t, d), before) {
				t.Fatal("a refused program changed the part")
			}
			mustOK(t, d.Program(0, []byte("neighbor")))
			mustOK(t, d.Program(16, []byte("neighbor")))
			// A clone keeps the marks; an erase clears them.
			c := d.Clone()
			flashtest.WantOpError(t, c.Program(8, []byte("twice!!!")), "program", flashsim.ErrNotErased)
			mustOK(t, d.Erase(0, 4096))
			mustOK(t, d.Program(8, []byte("erased!!")))
		})
	}
}

// TestWriteOnceTears: a torn program locks exactly the units it reached; a
// torn erase unlocks exactly the units it fully erased.
func TestWriteOnceTears(t *testing.T) {
	const units = 512
	data := flashtest.Pattern(units*8, 6, 0xFF) // no erased byte: reached bytes are visible
	for _, r := range representations {
		for seed := uint64(0); seed < 4; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", r.name, seed), func(t *testing.T) {
				opts := r.opts
				opts.WriteOnce = true
				opts.Rand = rand.New(rand.NewPCG(seed, 8))
				d := newDevice(t, opts)
				mustOK(t, d.ProgramTorn(0, data))
				got := read(t, d, 0, units*8)
				locked, free := 0, 0
				for u := 0; u < units; u++ {
					reached := !bytes.Equal(got[u*8:u*8+8], bytes.Repeat([]byte{0xFF}, 8))
					err := d.Program(int64(u*8), bytes.Repeat([]byte{0xFF}, 8))
					switch {
					case reached && err == nil, !reached && err != nil:
						t.Fatalf("unit %d reached=%v, reprogram err=%v", u, reached, err)
					case reached:
						locked++
					default:
						free++
					}
				}
				// Now every unit is programmed (locked), and all but the
				// reached ones hold 0xFF. Tear an erase of the sector.
				mustOK(t, d.Erase(4096, 4096))
				mustOK(t, d.Program(4096, data[:4096]))
				mustOK(t, d.EraseTorn(4096, 4096))
				got = read(t, d, 4096, 4096)
				for u := 0; u < 4096/8; u++ {
					erased := bytes.Equal(got[u*8:u*8+8], bytes.Repeat([]byte{0xFF}, 8))
					if err := d.Program(int64(4096+u*8), data[:8]); erased != (err == nil) {
						t.Fatalf("after a torn erase unit %d erased=%v, program err=%v", u, erased, err)
					}
				}
				t.Logf("torn program locked %d units, left %d free", locked, free)
			})
		}
	}
}

// TestPowerCutOnEmptyProgram: a power cut that hits an empty program counts
// it as performed exactly when a cut of a non-empty one would (CutAfter and
// CutDuring, not CutBefore), as an uncut empty program counts too.
func TestPowerCutOnEmptyProgram(t *testing.T) {
	for _, kind := range []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring} {
		for _, n := range []int{0, 8} {
			d := newDevice(t, flashsim.Options{})
			f := flashsim.Wrap(d, flashsim.Cut(kind, nil))
			flashtest.WantOpError(t, f.Program(0, flashtest.Pattern(n, 1, 0xFF)), "program", flashsim.ErrPowerLoss)
			want := int64(1)
			if kind == flashsim.CutBefore {
				want = 0
			}
			if got := d.Stats().Programs; got != want {
				t.Errorf("%v cut on a %d-byte program: Stats().Programs = %d, want %d", kind, n, got, want)
			}
		}
	}
	d := newDevice(t, flashsim.Options{})
	mustOK(t, d.Program(0, nil))
	if got := d.Stats().Programs; got != 1 {
		t.Errorf("uncut empty program: Stats().Programs = %d, want 1", got)
	}
}

// TestAreasShareSectorTables: areas of the same partition on devices of one
// geometry share one sector table, so a fleet holds it once; the table is
// still relative to the partition.
func TestAreasShareSectorTables(t *testing.T) {
	g := flashsim.Uniform(64, 4096, 4, 0xff)
	p := flashsim.Partition{Name: "secondary", Offset: 0x20000, Size: 0x10000}
	a1, err := flashsim.NewArea(flashsim.New(g, flashsim.Options{}), p)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := flashsim.NewArea(flashsim.New(g, flashsim.Options{}), p)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := a1.Sectors(), a2.Sectors()
	if len(s1) != 16 || &s1[0] != &s2[0] {
		t.Fatalf("areas of one partition hold %d sectors at %p and %p: want 16, shared", len(s1), &s1[0], &s2[0])
	}
	if s1[3] != (flashsim.Sector{Index: 3, Offset: 3 * 4096, Size: 4096}) {
		t.Fatalf("sector 3 = %+v, want index 3 at 0x3000 relative to the partition", s1[3])
	}
	other, err := flashsim.NewArea(flashsim.New(g, flashsim.Options{}), flashsim.Partition{Name: "primary", Offset: 0, Size: 0x10000})
	if err != nil {
		t.Fatal(err)
	}
	if &other.Sectors()[0] == &s1[0] {
		t.Fatal("different partitions share a sector table")
	}
}
