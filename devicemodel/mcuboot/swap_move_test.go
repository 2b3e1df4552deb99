package mcuboot

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// The swap-move rig: smallSlots' 8-sector slots of 1 KiB with 8-byte writes
// and MaxImgSectors 8, so the trailer (8·3·8 + 56 bytes) takes one sector
// and an image may span 6.

const mvMaxSectors = 8

type mvRig struct {
	dev     *flashsim.Device
	l       *Loader
	old, nw []byte
}

// newMoveRig puts a confirmed old image (2000-byte payload) in the primary
// and a new one (newPayload bytes) in the secondary, set pending.
func newMoveRig(t testing.TB, permanent bool, newPayload int, cfg Config) *mvRig {
	t.Helper()
	dev, p, s, x := smallSlots(t, 8)
	key := testKey(t)
	r := &mvRig{dev: dev, old: signed(t, key, image.Version{Major: 1}, 2000), nw: signed(t, key, image.Version{Major: 1, Minor: 1}, newPayload)}
	cfg.Strategy, cfg.MaxImgSectors = "swap-move", mvMaxSectors
	cfg.Keys = []crypto.PublicKey{key.Public()}
	if cfg.CopyChunk == 0 {
		cfg.CopyChunk = 256
	}
	l, err := New(cfg, p, s, x)
	must(t, err)
	r.l = l
	installConfirmed(t, p, r.old)
	program(t, s, 0, r.nw)
	must(t, SetPending(s, permanent))
	return r
}

// on returns the rig's loader bound to another device (a clone).
func (r *mvRig) on(t testing.TB, dev flashsim.Flash) *Loader {
	t.Helper()
	p := mustArea(t, dev, r.l.Primary())
	s := mustArea(t, dev, r.l.Secondary())
	x := mustArea(t, dev, r.l.Scratch())
	l, err := New(r.l.Config(), p, s, x)
	must(t, err)
	return l
}

// cutBoot boots the rig's loader on dev with c armed, on a FaultyFlash
// whose power the cut takes; dev keeps what the cut left.
func (r *mvRig) cutBoot(t testing.TB, dev *flashsim.Device, c flashsim.PowerCut) error {
	_, err := r.on(t, flashsim.Wrap(dev, c.Injector())).Boot()
	return err
}

// trailerSectorsErased reports whether every byte of the sectors t
// overlaps holds the erase value.
func trailerSectorsErased(t *Trailer) (bool, error) {
	a := t.Area()
	for _, sec := range t.Sectors() {
		buf := make([]byte, sec.Size)
		if err := readAt(a, buf, sec.Offset); err != nil {
			return false, err
		}
		if !allBytes(buf, a.EraseValue()) {
			return false, nil
		}
	}
	return true, nil
}

func mvBoot(t testing.TB, l *Loader) *BootResult {
	t.Helper()
	res, err := l.Boot()
	if err != nil {
		t.Fatalf("boot: %v", err)
	}
	return res
}

// mvState checks that the primary holds pri at 0, the secondary sec at 0,
// the primary trailer has the given flags and the secondary's are unset.
func mvState(l *Loader, pri, sec []byte, imageOK FlagState) error {
	for _, c := range []struct {
		a    *flashsim.Area
		want []byte
	}{{l.Primary(), pri}, {l.Secondary(), sec}} {
		got := make([]byte, len(c.want))
		if _, err := c.a.ReadAt(got, 0); err != nil {
			return err
		}
		if !bytes.Equal(got, c.want) {
			return fmt.Errorf("%s slot does not hold the expected image", c.a.Name())
		}
	}
	ps, err := l.PrimaryTrailer().Read()
	if err != nil {
		return err
	}
	if ps.Magic != MagicGood || ps.ImageOK != imageOK || ps.CopyDone != FlagSet {
		return fmt.Errorf("primary trailer (%s, %s, %s), want (GOOD, %s, SET)", ps.Magic, ps.ImageOK, ps.CopyDone, imageOK)
	}
	ss, err := l.SecondaryTrailer().Read()
	if err != nil {
		return err
	}
	if ss.Magic != MagicUnset || ss.ImageOK != FlagUnset || ss.CopyDone != FlagUnset {
		return fmt.Errorf("secondary trailer (%s, %s, %s), want all UNSET", ss.Magic, ss.ImageOK, ss.CopyDone)
	}
	return nil
}

func TestSwapMoveRegistered(t *testing.T) {
	s, err := LookupStrategy("swap-move")
	if err != nil || s.Name() != "swap-move" || !s.Reverts() || s.UsesRowI() {
		t.Fatalf("LookupStrategy(swap-move) = %v, %v", s, err)
	}
}

func TestSwapMoveGeometry(t *testing.T) {
	uniform := func(sectors, size int) (*flashsim.Area, *flashsim.Area) {
		dev := flashsim.New(flashsim.Uniform(2*sectors, size, 8, 0xff), flashsim.Options{})
		n := int64(sectors * size)
		p, err := flashsim.NewArea(dev, flashsim.Partition{Name: "primary", Size: n})
		must(t, err)
		s, err := flashsim.NewArea(dev, flashsim.Partition{Name: "secondary", Offset: n, Size: n})
		must(t, err)
		return p, s
	}
	// 8 x 1 KiB, MaxImgSectors 8: trailer 8·3·8 + 56 = 248 bytes, one sector.
	p, s := uniform(8, 1024)
	l, err := New(Config{Strategy: "swap-move", MaxImgSectors: 8}, p, s, nil)
	must(t, err)
	if got := l.Strategy().MaxImageSize(l); got != 6*1024 {
		t.Errorf("MaxImageSize = %#x, want 6 sectors", got)
	}
	// MaxImgSectors 128 with 8-byte writes: a 3128-byte trailer (3072 of
	// status, magic cell and five 8-byte cells), 4 sectors of 1 KiB:
	// (8-1)·1024 - ALIGN_UP(3128, 1024) = 3 sectors.
	p, s = uniform(8, 1024)
	l, err = New(Config{Strategy: "swap-move"}, p, s, nil)
	must(t, err)
	if ts := l.Strategy().SlotLayout(l).Size(); ts != 128*3*8+16+5*8 {
		t.Errorf("trailer size %d", ts)
	}
	if got := l.Strategy().MaxImageSize(l); got != 3*1024 {
		t.Errorf("MaxImageSize = %#x, want 3 sectors", got)
	}

	// Incompatible layouts.
	g := &flashsim.Geometry{Regions: []flashsim.Region{{Count: 4, Size: 1024}, {Count: 2, Size: 2048}}, WriteSize: 8, EraseValue: 0xff}
	must(t, g.Validate())
	mixed := flashsim.New(g, flashsim.Options{})
	mp, err := flashsim.NewArea(mixed, flashsim.Partition{Name: "primary", Size: 4096})
	must(t, err)
	ms, err := flashsim.NewArea(mixed, flashsim.Partition{Name: "secondary", Offset: 4096, Size: 4096})
	must(t, err)
	p8, s8 := uniform(8, 1024)
	p2, s2 := uniform(2, 1024)
	for _, c := range []struct {
		name string
		p, s *flashsim.Area
		cfg  Config
	}{
		{"non-uniform sectors", mp, ms, Config{MaxImgSectors: 8}},
		{"more sectors than the status area", p8, s8, Config{MaxImgSectors: 4}},
		{"no sector to move into", p2, s2, Config{MaxImgSectors: 2}},
	} {
		c.cfg.Strategy = "swap-move"
		if _, err := New(c.cfg, c.p, c.s, nil); !errors.Is(err, ErrIncompatibleSlots) {
			t.Errorf("%s: New = %v, want ErrIncompatibleSlots", c.name, err)
		}
	}
}

// mvEntries builds a status area after done steps of a last-sector swap.
func mvEntries(maxSectors, last, done int, ev byte) []byte {
	e := bytes.Repeat([]byte{ev}, 3*maxSectors)
	for n := 0; n < done; n++ {
		i, v := moveEntry(maxSectors, last, n)
		e[i] = v
	}
	return e
}

func TestParseMoveStatus(t *testing.T) {
	const m = 8
	for _, ev := range []byte{0xff, 0x00} {
		for last := 1; last <= 6; last++ {
			for done := 0; done <= 3*last; done++ {
				p, err := parseMoveStatus(mvEntries(m, last, done, ev), ev, m, last)
				if err != nil || p.done != done {
					t.Fatalf("ev %#x last %d done %d: parsed %+v, %v", ev, last, done, p, err)
				}
			}
		}
	}
	// The §2.1 layout: moves at 0.., swaps from MaxImgSectors on.
	e := mvEntries(m, 3, 5, 0xff)
	if want := []byte{1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 0xff}; !bytes.Equal(e[:11], want) {
		t.Errorf("entries % x, want % x", e[:11], want)
	}
	p, _ := parseMoveStatus(e, 0xff, m, 3)
	if op, idx, state := p.where(); op != moveOpSwap || idx != 2 || state != 0 {
		t.Errorf("after 5 steps of 9: op %d idx %d state %d, want SWAP 2 0", op, idx, state)
	}
	bad := map[string][]byte{
		"gap in the moves":        func() []byte { e := mvEntries(m, 3, 3, 0xff); e[1] = 0xff; return e }(),
		"swap before moves done":  func() []byte { e := mvEntries(m, 3, 2, 0xff); e[m] = 1; return e }(),
		"entry beyond the swap":   func() []byte { e := mvEntries(m, 3, 9, 0xff); e[m+6] = 1; return e }(),
		"entry between the areas": func() []byte { e := mvEntries(m, 3, 1, 0xff); e[5] = 1; return e }(),
		"wrong value":             func() []byte { e := mvEntries(m, 3, 5, 0xff); e[m+1] = 1; return e }(),
		"junk in unused moves":    func() []byte { e := mvEntries(m, 3, 5, 0xff); e[4] = 0x30; return e }(),
	}
	for name, e := range bad {
		if _, err := parseMoveStatus(e, 0xff, m, 3); !errors.Is(err, ErrInconsistentStatus) {
			t.Errorf("%s: %v, want ErrInconsistentStatus", name, err)
		}
	}
	if _, err := parseMoveStatus(make([]byte, 3), 0xff, m, 3); !errors.Is(err, ErrInconsistentStatus) {
		t.Errorf("short area: %v", err)
	}
}

func FuzzParseMoveStatus(f *testing.F) {
	f.Add(mvEntries(8, 3, 5, 0xff), uint8(3), false)
	f.Add(mvEntries(8, 6, 18, 0x00), uint8(6), true)
	f.Add([]byte{1, 0xff, 1}, uint8(0), false)
	// Junk among the unused MOVE entries of a swap already in its SWAP phase.
	junk := mvEntries(8, 3, 5, 0xff)
	junk[4] = 0x30
	f.Add(junk, uint8(3), false)
	f.Fuzz(func(t *testing.T, entries []byte, last uint8, zero bool) {
		ev := byte(0xff)
		if zero {
			ev = 0
		}
		p, err := parseMoveStatus(entries, ev, 8, int(last))
		if err != nil {
			if !errors.Is(err, ErrInconsistentStatus) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if p.done < 0 || p.done > 3*int(last) {
			t.Fatalf("done %d outside 0..%d", p.done, 3*int(last))
		}
		// Accepted status is exactly what the swap writes after p.done steps.
		if want := mvEntries(8, int(last), p.done, ev); !bytes.Equal(entries[:24], want) || !allBytes(entries[24:], ev) {
			t.Fatalf("accepted % x, which is not %d steps (% x)", entries, p.done, want)
		}
	})
}

func TestMoveIntentEncoding(t *testing.T) {
	for g := uint32(1); g <= moveGenerations; g++ {
		for _, typ := range []SwapType{SwapTest, SwapPerm, SwapRevert} {
			in := moveIntent{typ: typ, gen: g}
			b := in.encode()
			if b == 0x00 || b == 0xff {
				t.Fatalf("%+v encodes to an erased value %#x", in, b)
			}
			if got, ok := decodeMoveIntent(b); !ok || got != in {
				t.Fatalf("%+v -> %#x -> %+v %v", in, b, got, ok)
			}
		}
		if next := moveNextGen(TrailerState{Generation: g, GenerationValid: true}); next == g || next < 1 || next > moveGenerations {
			t.Fatalf("next generation after %d is %d", g, next)
		}
	}
	for _, b := range []byte{0x00, 0xff, 0x03, 0x02} {
		if _, ok := decodeMoveIntent(b); ok && b != 0x02 {
			t.Errorf("%#x decodes as an intent", b)
		}
	}
	if _, ok := decodeMoveIntent(0x02); ok {
		t.Error("generation 0 decodes as an intent")
	}
}

// A clean upgrade writes the §2.1 entries, swaps the images, leaves the
// secondary trailer (and the intent) erased; the unconfirmed image reverts
// at the next boot, and the revert stays.
func TestSwapMoveUpgradeAndRevert(t *testing.T) {
	r := newMoveRig(t, false, 5800, Config{})
	l := r.l
	res := mvBoot(t, l)
	if res.SwapType != SwapTest || res.Resumed {
		t.Fatalf("boot 1: %+v", res)
	}
	if err := mvState(l, r.nw, r.old, FlagUnset); err != nil {
		t.Fatal(err)
	}
	entries, err := l.PrimaryTrailer().ReadStatus()
	must(t, err)
	last := (len(r.nw) + 1023) / 1024
	if want := mvEntries(mvMaxSectors, last, 3*last, 0xff); !bytes.Equal(entries, want) {
		t.Errorf("status entries % x, want % x", entries, want)
	}
	if clean, err := trailerSectorsErased(l.SecondaryTrailer()); err != nil || !clean {
		t.Errorf("secondary trailer not erased after the swap (%v)", err)
	}
	res = mvBoot(t, l)
	if res.SwapType != SwapRevert {
		t.Fatalf("boot 2 did %s, want revert", res.SwapType)
	}
	if err := mvState(l, r.old, r.nw, FlagSet); err != nil {
		t.Fatal(err)
	}
	ops := r.dev.Ops()
	res = mvBoot(t, l)
	if res.SwapType != SwapNone || r.dev.Ops() != ops {
		t.Errorf("boot 3 did %s with %d writes", res.SwapType, r.dev.Ops()-ops)
	}
}

// The header of each image is where moveProgress.headers says, after every
// operation of an upgrade: in particular one sector up right after the last
// move (issue #1588).
func TestSwapMoveHeaderLocations(t *testing.T) {
	r := newMoveRig(t, true, 5800, Config{})
	clean := r.dev.Clone()
	before := clean.Ops()
	mvBoot(t, r.on(t, clean))
	total := clean.Ops() - before
	last := (len(r.nw) + 1023) / 1024
	seen := map[int]bool{}
	for op := 1; op <= total; op++ {
		dev := r.dev.Clone()
		l := r.on(t, dev)
		if err := r.cutBoot(t, dev, flashsim.PowerCut{Op: op, Kind: flashsim.CutAfter}); !errors.Is(err, flashsim.ErrPowerLoss) {
			t.Fatalf("op %d: %v", op, err)
		}
		ps, err := l.PrimaryTrailer().Read()
		must(t, err)
		if ps.Magic != MagicGood || !ps.GenerationValid || ps.CopyDone != FlagUnset {
			continue // record not written yet, or finished
		}
		entries, err := l.PrimaryTrailer().ReadStatus()
		must(t, err)
		p, err := parseMoveStatus(entries, 0xff, mvMaxSectors, last)
		must(t, err)
		seen[p.done] = true
		in, out := p.headers(1024)
		for _, c := range []struct {
			at  imageAt
			img []byte
		}{{in, r.nw}, {out, r.old}} {
			a := l.Primary()
			if c.at.secondary {
				a = l.Secondary()
			}
			got := make([]byte, image.HeaderSize)
			_, err := a.ReadAt(got, c.at.off)
			must(t, err)
			if !bytes.Equal(got, c.img[:image.HeaderSize]) {
				op2, idx, state := p.where()
				t.Fatalf("after op %d (next %d/%d/%d): %s header not at %s+%#x", op, op2, idx, state, map[bool]string{true: "new", false: "old"}[bytes.Equal(c.img, r.nw)], a.Name(), c.at.off)
			}
		}
	}
	for d := 0; d < 3*last; d++ {
		if !seen[d] {
			t.Errorf("no cut observed with %d steps done", d)
		}
	}
}

// cutBeforeWhen returns the device after a boot cut before the first
// operation at which cond holds on the state before it, and the loader.
func (r *mvRig) cutBeforeWhen(t *testing.T, dev *flashsim.Device, cond func(l *Loader) bool) (*flashsim.Device, *Loader) {
	t.Helper()
	for op := 1; op < 2000; op++ {
		d := dev.Clone()
		l := r.on(t, d)
		if err := r.cutBoot(t, d, flashsim.PowerCut{Op: op, Kind: flashsim.CutBefore}); !errors.Is(err, flashsim.ErrPowerLoss) {
			t.Fatalf("op %d: boot ended (%v) before the condition held", op, err)
		}
		if cond(l) {
			return d, l
		}
	}
	t.Fatal("condition never held")
	return nil, nil
}

func committed(t *testing.T, l *Loader) bool {
	_, ok, _, err := swapMove{}.readIntent(l)
	must(t, err)
	return ok
}

// rewriteSector replaces the sector of a holding off with mutate's version
// of it: how a test leaves what a torn erase may leave.
func rewriteSector(t *testing.T, a *flashsim.Area, off int64, mutate func(b []byte, base int64)) {
	t.Helper()
	for _, s := range a.Sectors() {
		if off < s.Offset || off >= s.Offset+s.Size {
			continue
		}
		b := make([]byte, s.Size)
		_, err := a.ReadAt(b, s.Offset)
		must(t, err)
		mutate(b, s.Offset)
		must(t, a.Erase(s.Offset, s.Size))
		must(t, a.Program(s.Offset, b))
		return
	}
	t.Fatalf("no sector at %#x", off)
}

// A revert cut while scrambling the primary trailer may find the previous
// swap's record intact but for copy_done and its last status entries: a
// complete-looking swap in progress. Resumed as it reads, it would redo the
// old swap's last steps over the current images; the intent's generation
// says it is stale, and the revert starts over.
func TestSwapMoveIgnoresStalePrimaryRecord(t *testing.T) {
	r := newMoveRig(t, false, 5800, Config{})
	mvBoot(t, r.l) // test upgrade
	// The last state of the revert before its primary scramble: intent
	// committed, previous record still complete.
	var l *Loader
	for op := 1; ; op++ {
		d := r.dev.Clone()
		dl := r.on(t, d)
		if err := r.cutBoot(t, d, flashsim.PowerCut{Op: op, Kind: flashsim.CutBefore}); !errors.Is(err, flashsim.ErrPowerLoss) {
			t.Fatalf("op %d: %v", op, err)
		}
		ps, err := dl.PrimaryTrailer().Read()
		must(t, err)
		if ps.CopyDone != FlagSet {
			break
		}
		if committed(t, dl) {
			l = dl
		}
	}
	if l == nil {
		t.Fatal("the revert never committed before scrambling the primary trailer")
	}
	pt := l.PrimaryTrailer()
	lay := pt.Layout()
	size := l.Primary().Size()
	rewriteSector(t, l.Primary(), lay.CopyDoneOff(size), func(b []byte, base int64) {
		b[lay.CopyDoneOff(size)-base] = 0xff
		last := (len(r.nw) + 1023) / 1024
		for n := 3*last - 2; n < 3*last; n++ {
			i, _ := moveEntry(mvMaxSectors, last, n)
			b[lay.StatusEntryOff(size, i)-base] = 0xff
		}
	})
	ps, err := pt.Read()
	must(t, err)
	if ps.Magic != MagicGood || !ps.GenerationValid || ps.CopyDone != FlagUnset {
		t.Fatalf("the stale record does not look open: %+v", ps)
	}
	res := mvBoot(t, l)
	if res.SwapType != SwapRevert || !res.Resumed {
		t.Errorf("boot did %+v, want a resumed revert", res)
	}
	if err := mvState(l, r.old, r.nw, FlagSet); err != nil {
		t.Fatal(err)
	}
}

// A PERM upgrade cut while scrambling the secondary trailer may leave its
// magic good and image_ok erased. MCUboot would let the table restart it as
// a TEST; the primary record (same generation as the intent) finishes it as
// the PERM it is.
func TestSwapMoveTornSecondaryScramble(t *testing.T) {
	for _, keepIntent := range []bool{true, false} {
		r := newMoveRig(t, true, 5800, Config{})
		_, l := r.cutBeforeWhen(t, r.dev, func(l *Loader) bool {
			ps, err := l.PrimaryTrailer().Read()
			must(t, err)
			return ps.Magic == MagicGood && ps.GenerationValid && ps.CopyDone == FlagUnset
		})
		st := l.SecondaryTrailer()
		lay := st.Layout()
		size := l.Secondary().Size()
		rewriteSector(t, l.Secondary(), lay.ImageOKOff(size), func(b []byte, base int64) {
			b[lay.ImageOKOff(size)-base] = 0xff
			if !keepIntent {
				b[lay.StatusEntryOff(size, 0)-base] = 0xff
			}
		})
		ss, err := st.Read()
		must(t, err)
		if ss.Magic != MagicGood || ss.ImageOK != FlagUnset {
			t.Fatalf("secondary trailer %+v, want a TEST-looking request", ss)
		}
		res := mvBoot(t, l)
		if res.SwapType != SwapPerm || !res.Resumed {
			t.Errorf("keep intent %v: boot did %+v, want a resumed perm", keepIntent, res)
		}
		if err := mvState(l, r.nw, r.old, FlagSet); err != nil {
			t.Errorf("keep intent %v: %v", keepIntent, err)
		}
	}
}

// Issue #1966: a torn magic write in fixup_revert bricked MCUboot's
// swap-move. Here a corrupt secondary magic before the revert is erased and
// the fixup redone, and a tear of the fixup's own magic write (after the
// intent) is resumed as the revert it is, also with downgrade prevention
// on, which would refuse (and erase) the old image if the table saw the
// fixup's PERM-like request.
func TestSwapMoveFixupRevertTornMagic(t *testing.T) {
	t.Run("corrupt magic before the revert", func(t *testing.T) {
		r := newMoveRig(t, false, 5800, Config{})
		mvBoot(t, r.l)
		s := r.l.Secondary()
		half := bytes.Repeat([]byte{0xff}, 16)
		copy(half, image.BootMagic[:8])
		must(t, s.Program(s.Size()-16, half))
		if ss, _ := r.l.SecondaryTrailer().Read(); ss.Magic != MagicBad {
			t.Fatalf("secondary magic %s, want BAD", ss.Magic)
		}
		res := mvBoot(t, r.l)
		if res.SwapType != SwapRevert {
			t.Errorf("boot did %s, want revert", res.SwapType)
		}
		if err := mvState(r.l, r.old, r.nw, FlagSet); err != nil {
			t.Fatal(err)
		}
	})
	for _, dg := range []DowngradePrevention{DowngradeOff, DowngradeVersion} {
		r := newMoveRig(t, false, 5800, Config{Downgrade: dg})
		mvBoot(t, r.l)
		// The fixup's magic write is the operation after the intent's.
		magicOp := 0
		for op := 1; magicOp == 0; op++ {
			d := r.dev.Clone()
			l := r.on(t, d)
			if err := r.cutBoot(t, d, flashsim.PowerCut{Op: op, Kind: flashsim.CutAfter}); !errors.Is(err, flashsim.ErrPowerLoss) {
				t.Fatalf("op %d: %v", op, err)
			}
			if committed(t, l) {
				magicOp = op + 1
			}
		}
		torn := 0
		for seed := uint64(0); seed < 40; seed++ {
			for _, kind := range []flashsim.CutKind{flashsim.CutDuring, flashsim.CutAfter} {
				d := r.dev.Clone()
				d.SetRand(rand.New(rand.NewPCG(seed, 1966)))
				l := r.on(t, d)
				if err := r.cutBoot(t, d, flashsim.PowerCut{Op: magicOp, Kind: kind}); !errors.Is(err, flashsim.ErrPowerLoss) {
					t.Fatalf("%v", err)
				}
				ss, err := l.SecondaryTrailer().Read()
				must(t, err)
				if ss.Magic == MagicBad {
					torn++
				}
				if kind == flashsim.CutAfter && (ss.Magic != MagicGood || ss.ImageOK != FlagSet) {
					t.Fatalf("fixup left (%s, %s), want a PERM-like request", ss.Magic, ss.ImageOK)
				}
				res := mvBoot(t, l)
				if res.SwapType != SwapRevert || !res.Resumed {
					t.Errorf("downgrade %d seed %d %s: boot did %+v, want a resumed revert", dg, seed, kind, res)
				}
				if err := mvState(l, r.old, r.nw, FlagSet); err != nil {
					t.Fatalf("downgrade %d seed %d %s: %v", dg, seed, kind, err)
				}
			}
		}
		if torn == 0 {
			t.Error("no seed tore the magic")
		}
	}
}

// A primary image swap-move cannot move (it reaches the last sector before
// the trailer) makes the upgrade fail before any write.
func TestSwapMoveNotEnoughSpace(t *testing.T) {
	r := newMoveRig(t, true, 3000, Config{})
	p := r.l.Primary()
	key := testKey(t)
	big := signed(t, key, image.Version{Major: 1}, 6*1024+100)
	must(t, p.Erase(0, 7*1024))
	program(t, p, 0, big)
	ops := r.dev.Ops()
	_, err := r.l.Boot()
	if !errors.Is(err, ErrIncompatibleSlots) {
		t.Fatalf("boot = %v, want ErrIncompatibleSlots (not enough free space)", err)
	}
	if r.dev.Ops() != ops {
		t.Errorf("the refused upgrade wrote %d times", r.dev.Ops()-ops)
	}
}

// An intent left behind by a swap that completed (no sequence of cuts
// does this) is ignored, not replayed.
func TestSwapMoveStaleIntentIgnored(t *testing.T) {
	r := newMoveRig(t, true, 5800, Config{})
	mvBoot(t, r.l)
	ps, err := r.l.PrimaryTrailer().Read()
	must(t, err)
	must(t, r.l.SecondaryTrailer().WriteStatus(0, moveIntent{typ: SwapPerm, gen: ps.Generation}.encode()))
	ops := r.dev.Ops()
	res := mvBoot(t, r.l)
	if res.SwapType != SwapNone || r.dev.Ops() != ops {
		t.Errorf("boot did %s with %d writes", res.SwapType, r.dev.Ops()-ops)
	}
}

// mvSweep cuts the power before, after and during every operation of the
// boot that runs on prepared (with several seeds for torn writes), boots
// again and checks the end state.
func mvSweep(t *testing.T, r *mvRig, prepared *flashsim.Device, seeds int, check func(l *Loader) error) {
	t.Helper()
	clean := prepared.Clone()
	before := clean.Ops()
	mvBoot(t, r.on(t, clean))
	total := clean.Ops() - before
	if err := check(r.on(t, clean)); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	for op := 1; op <= total; op++ {
		for _, kind := range []flashsim.CutKind{flashsim.CutBefore, flashsim.CutAfter, flashsim.CutDuring} {
			n := 1
			if kind == flashsim.CutDuring {
				n = seeds
			}
			for seed := 0; seed < n; seed++ {
				d := prepared.Clone()
				d.SetRand(rand.New(rand.NewPCG(uint64(seed), uint64(op))))
				l := r.on(t, d)
				if err := r.cutBoot(t, d, flashsim.PowerCut{Op: op, Kind: kind}); !errors.Is(err, flashsim.ErrPowerLoss) {
					t.Fatalf("op %d %s: %v", op, kind, err)
				}
				if _, err := l.Boot(); err != nil {
					t.Fatalf("op %d %s seed %d: boot after the cut: %v", op, kind, seed, err)
				}
				if err := check(l); err != nil {
					t.Fatalf("op %d %s seed %d: %v", op, kind, seed, err)
				}
				if d.Stats().Rejected != 0 {
					t.Fatalf("op %d %s seed %d: the flash refused an operation", op, kind, seed)
				}
			}
		}
	}
}

// A second upgrade runs over the trailer of the first, whose torn scramble
// leaves fragments of a complete record; and so does a revert. Both are
// swept with many torn-write seeds on the small rig.
func TestSwapMoveSecondSwapSweep(t *testing.T) {
	r := newMoveRig(t, true, 5800, Config{})
	mvBoot(t, r.l) // first, permanent upgrade: old now in the secondary
	// Second upgrade: the old image again, as a new permanent download.
	second := r.dev.Clone()
	l := r.on(t, second)
	must(t, l.Secondary().EraseAll())
	program(t, l.Secondary(), 0, r.old)
	must(t, SetPending(l.Secondary(), true))
	mvSweep(t, r, second, 6, func(l *Loader) error { return mvState(l, r.old, r.nw, FlagSet) })

	// Revert of a test upgrade that followed a completed upgrade.
	third := second.Clone()
	l = r.on(t, third)
	mvBoot(t, l) // second upgrade done: old in primary, new in secondary
	must(t, SetPending(l.Secondary(), false))
	mvBoot(t, l) // test upgrade: new in primary, unconfirmed
	if err := mvState(l, r.nw, r.old, FlagUnset); err != nil {
		t.Fatal(err)
	}
	mvSweep(t, r, third, 6, func(l *Loader) error { return mvState(l, r.old, r.nw, FlagSet) })
}

// FuzzSwapMoveBoot writes arbitrary bytes over the trailers of both slots
// (the status areas, the intent, the record) of a device mid-swap and boots
// twice: no panic, and only documented errors.
func FuzzSwapMoveBoot(f *testing.F) {
	f.Add([]byte{}, []byte{}, uint16(0), uint8(0))
	f.Add([]byte{1, 1, 1, 1, 1}, []byte{moveIntent{typ: SwapPerm, gen: 2}.encode()}, uint16(40), uint8(1))
	f.Add([]byte{0xff, 0xff, 1}, []byte{moveIntent{typ: SwapRevert, gen: 9}.encode(), 7}, uint16(5), uint8(2))
	r := newMoveRig(f, true, 5800, Config{})
	f.Fuzz(func(t *testing.T, priStatus, secStatus []byte, cutOp uint16, sel uint8) {
		dev := r.dev.Clone()
		l := r.on(t, dev)
		if cutOp > 0 {
			if err := r.cutBoot(t, dev, flashsim.PowerCut{Op: int(cutOp), Kind: flashsim.CutKind(sel % 3)}); err != nil && !errors.Is(err, flashsim.ErrPowerLoss) {
				t.Fatal(err)
			}
		}
		// Program arbitrary bytes over still-erased status entries.
		for _, c := range []struct {
			t *Trailer
			b []byte
		}{{l.PrimaryTrailer(), priStatus}, {l.SecondaryTrailer(), secStatus}} {
			lay := c.t.Layout()
			for i, v := range c.b {
				if i >= lay.StatusEntries {
					break
				}
				off := lay.StatusEntryOff(c.t.Area().Size(), i*int(sel%4+1)%lay.StatusEntries)
				var cur [8]byte
				must(t, readAt(c.t.Area(), cur[:], off))
				if allBytes(cur[:], 0xff) {
					cell := bytes.Repeat([]byte{0xff}, 8)
					cell[0] = v
					must(t, c.t.Area().Program(off, cell))
				}
			}
		}
		for i := 0; i < 2; i++ {
			_, err := l.Boot()
			var oe *flashsim.OpError
			if err != nil && !errors.Is(err, ErrNoBootableImage) && !errors.Is(err, ErrInconsistentStatus) && !errors.Is(err, ErrIncompatibleSlots) && !errors.As(err, &oe) {
				t.Fatalf("boot %d: undocumented error %v", i+1, err)
			}
		}
	})
}

// BenchmarkSwapMoveUpgrade is one permanent swap-move upgrade of a 6-sector
// image on the small rig: 18 steps (an erase, a copy, a status entry each)
// plus the commit and the two trailer scrambles.
func BenchmarkSwapMoveUpgrade(b *testing.B) {
	r := newMoveRig(b, true, 5800, Config{})
	for b.Loop() {
		dev := r.dev.Clone()
		if res, err := r.on(b, dev).Boot(); err != nil || res.SwapType != SwapPerm {
			b.Fatalf("boot: %+v %v", res, err)
		}
	}
}
