package flashsim

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Region is a run of Count sectors of Size bytes each.
type Region struct {
	Count int
	Size  int
}

// Geometry describes a flash part: its sectors from offset 0 upwards, its
// program granularity and its erased byte value.
type Geometry struct {
	Regions    []Region
	WriteSize  int  // 1, 2, 4, 8, 16 or 32
	EraseValue byte // 0xFF or 0x00

	sectors []Sector    // derived by Validate
	areas   *areaTables // partition sector tables, shared by every Area on this geometry
}

// Sector is one erase unit of a part or partition.
type Sector struct {
	Index  int
	Offset int64
	Size   int64
}

// Uniform returns a validated geometry of count sectors of size bytes. It
// panics on an invalid geometry: board tables call it with constants, so
// that is a programmer error.
func Uniform(count, size, writeSize int, eraseValue byte) *Geometry {
	g := &Geometry{Regions: []Region{{Count: count, Size: size}}, WriteSize: writeSize, EraseValue: eraseValue}
	if err := g.Validate(); err != nil {
		panic(err)
	}
	return g
}

// Validate checks the geometry and derives its sector table. Every
// constructor in this package calls it; callers that build a Geometry by
// hand must call it before use.
func (g *Geometry) Validate() error {
	switch g.WriteSize {
	case 1, 2, 4, 8, 16, 32:
	default:
		return fmt.Errorf("write size %d: must be 1, 2, 4, 8, 16 or 32", g.WriteSize)
	}
	if g.EraseValue != 0xFF && g.EraseValue != 0x00 {
		return fmt.Errorf("erase value 0x%02x: must be 0xff or 0x00", g.EraseValue)
	}
	if len(g.Regions) == 0 {
		return errors.New("geometry has no sectors")
	}
	var sectors []Sector
	var off int64
	for _, r := range g.Regions {
		if r.Count <= 0 || r.Size <= 0 || r.Size%g.WriteSize != 0 {
			return fmt.Errorf("region %d x %d bytes: counts and sizes must be positive multiples of the write size", r.Count, r.Size)
		}
		for i := 0; i < r.Count; i++ {
			sectors = append(sectors, Sector{Index: len(sectors), Offset: off, Size: int64(r.Size)})
			off += int64(r.Size)
		}
	}
	g.sectors = sectors
	g.areas = &areaTables{m: map[[2]int64][]Sector{}}
	return nil
}

// Size is the part's size in bytes.
func (g *Geometry) Size() int64 {
	last := g.sectors[len(g.sectors)-1]
	return last.Offset + last.Size
}

// Sectors lists every sector of the part. The slice must not be modified.
func (g *Geometry) Sectors() []Sector { return g.sectors }

// SectorAt returns the sector holding off.
func (g *Geometry) SectorAt(off int64) (Sector, bool) {
	if off < 0 || off >= g.Size() {
		return Sector{}, false
	}
	i := sort.Search(len(g.sectors), func(i int) bool { return g.sectors[i].Offset+g.sectors[i].Size > off })
	return g.sectors[i], true
}

// SectorsIn returns the sectors that exactly tile [off, off+length): none
// for an empty range, ErrOutOfBounds if the range leaves the part, and
// ErrEraseBoundary if it does not start and end on sector boundaries.
func (g *Geometry) SectorsIn(off, length int64) ([]Sector, error) {
	if off < 0 || length < 0 || length > g.Size()-off { // no off+length: it may overflow
		return nil, ErrOutOfBounds
	}
	if length == 0 {
		return nil, nil
	}
	first, _ := g.SectorAt(off)
	last, _ := g.SectorAt(off + length - 1)
	if first.Offset != off || last.Offset+last.Size != off+length {
		return nil, ErrEraseBoundary
	}
	return g.sectors[first.Index : last.Index+1], nil
}

// areaTables caches the relative sector table of each partition of a
// geometry. Every device of a board shares the board's Geometry, so its
// areas share one table per partition instead of holding one each: a 1 MiB
// slot of 4 KiB sectors is a 6 KiB table, which a million devices would
// otherwise repeat a million times.
type areaTables struct {
	mu sync.Mutex
	m  map[[2]int64][]Sector // keyed by partition offset and size
}

// areaSectors returns abs, the sectors of the partition at off, with offsets
// and indexes relative to the partition. The result is shared and must not be
// modified.
func (g *Geometry) areaSectors(off int64, abs []Sector) []Sector {
	rel := func() []Sector {
		t := make([]Sector, len(abs))
		for i, s := range abs {
			t[i] = Sector{Index: i, Offset: s.Offset - off, Size: s.Size}
		}
		return t
	}
	if g.areas == nil { // a copy of a Geometry made before Validate derived it
		return rel()
	}
	key := [2]int64{off, abs[len(abs)-1].Offset + abs[len(abs)-1].Size - off}
	g.areas.mu.Lock()
	defer g.areas.mu.Unlock()
	t, ok := g.areas.m[key]
	if !ok {
		t = rel()
		g.areas.m[key] = t
	}
	return t
}
