package flashsim_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
)

// The fleet layout of BenchmarkFleetFlashFootprint: two 1 MiB slots of 4 KiB
// sectors and one scratch sector, as a swap-using-scratch board has.
const (
	fleetSector  = 4096
	fleetSlot    = 1 << 20
	fleetSectors = fleetSlot / fleetSector
	fleetScratch = 2 * fleetSlot
)

func fleetGeometry() *flashsim.Geometry {
	return flashsim.Uniform(2*fleetSectors+1, fleetSector, 8, 0xFF)
}

// randomImage is an incompressible stand-in for a firmware image: every page
// of it is distinct, the worst case for sharing within one device.
func randomImage(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// fleetPartitions are the slots and the scratch of the fleet layout, as a
// board's flash map names them.
var fleetPartitions = [3]flashsim.Partition{
	{Name: "primary", Offset: 0, Size: fleetSlot},
	{Name: "secondary", Offset: fleetSlot, Size: fleetSlot},
	{Name: "scratch", Offset: fleetScratch, Size: fleetSector},
}

// swapDevice does to d what an update does to a device, through the flash
// areas a bootloader opens: image A is installed in the primary slot and
// image B downloaded into the secondary, then MCUboot's swap using scratch
// exchanges them sector by sector, highest first, in its three steps
// (secondary->scratch, primary->secondary, scratch->primary; reference
// §4.2), and both trailers (the last sector of each slot) are rewritten
// with the same small writes on every device. The swap's per-step status
// entries are left out: every device writes the same ones, so they land in
// shared pages and do not change the per-device figure. It returns the
// areas, which a device keeps for as long as its bootloader and agent run.
func swapDevice(d *flashsim.Device, imgA, imgB []byte) ([3]*flashsim.Area, error) {
	var areas [3]*flashsim.Area
	for i, p := range fleetPartitions {
		a, err := flashsim.NewArea(d, p)
		if err != nil {
			return areas, err
		}
		areas[i] = a
	}
	primary, secondary, scratch := areas[0], areas[1], areas[2]
	const body = fleetSlot - fleetSector // the last sector of a slot is its trailer
	for off := int64(0); off < body; off += fleetSector {
		if err := primary.Program(off, imgA[off:off+fleetSector]); err != nil {
			return areas, err
		}
		if err := secondary.Program(off, imgB[off:off+fleetSector]); err != nil {
			return areas, err
		}
	}
	buf := make([]byte, fleetSector)
	copySector := func(from *flashsim.Area, fromOff int64, to *flashsim.Area, toOff int64) error {
		if err := to.Erase(toOff, fleetSector); err != nil {
			return err
		}
		if _, err := from.ReadAt(buf, fromOff); err != nil {
			return err
		}
		return to.Program(toOff, buf)
	}
	for off := int64(body - fleetSector); off >= 0; off -= fleetSector {
		if err := copySector(secondary, off, scratch, 0); err != nil {
			return areas, err
		}
		if err := copySector(primary, off, secondary, off); err != nil {
			return areas, err
		}
		if err := copySector(scratch, 0, primary, off); err != nil {
			return areas, err
		}
	}
	for _, slot := range []*flashsim.Area{primary, secondary} {
		end := slot.Size()
		if err := slot.Erase(end-fleetSector, fleetSector); err != nil {
			return areas, err
		}
		for _, w := range []struct {
			off  int64
			data []byte
		}{
			{end - 16, bootMagic},
			{end - 24, []byte{1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},    // image_ok
			{end - 32, []byte{1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}},    // copy_done
			{end - 40, []byte{0x00, 0xf0, 0x0f, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}}, // swap_size
		} {
			if err := slot.Program(w.off, w.data); err != nil {
				return areas, err
			}
		}
	}
	return areas, nil
}

// bootMagic is MCUboot's trailer magic for BOOT_MAX_ALIGN 8 (flashsim must
// not import the image package, which owns it).
var bootMagic = []byte{0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80}

// liveHeap is the heap in use once garbage is collected. It collects three
// times because unique drops a dead page's map entry only in a cycle after
// the one that freed the page.
func liveHeap() int64 {
	for range 3 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkFleetFlashFootprint measures the heap a fleet of 10,000 devices
// costs once each has been through the same swap: the target is 16 KiB per
// device, against 2 MiB of flash each. Each device is made as
// devicemodel.Board.NewFlash makes one (New with zero Options) and keeps
// its Device and the flash areas its bootloader opened (their sector tables
// are shared through the geometry); the garbage of copy on write is dropped.
func BenchmarkFleetFlashFootprint(b *testing.B) {
	const devices = 10_000
	g := fleetGeometry()
	imgA := randomImage(1, fleetSlot)
	imgB := randomImage(2, fleetSlot)
	for b.Loop() {
		base := liveHeap()
		fleet := make([]*flashsim.Device, devices)
		areas := make([][3]*flashsim.Area, devices)
		var wg sync.WaitGroup
		var failed sync.Once
		var firstErr error
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < devices; i += workers {
					d := flashsim.New(g, flashsim.Options{})
					a, err := swapDevice(d, imgA, imgB)
					if err != nil {
						failed.Do(func() { firstErr = fmt.Errorf("device %d: %w", i, err) })
						return
					}
					fleet[i], areas[i] = d, a
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		perDevice := float64(liveHeap()-base) / devices
		// The swap really happened: the slots hold each other's images.
		for _, d := range []*flashsim.Device{fleet[0], fleet[devices-1]} {
			a := make([]byte, fleetSlot-fleetSector)
			bb := make([]byte, fleetSlot-fleetSector)
			if _, err := d.ReadAt(a, 0); err != nil {
				b.Fatal(err)
			}
			if _, err := d.ReadAt(bb, fleetSlot); err != nil {
				b.Fatal(err)
			}
			if !bytes.Equal(a, imgB[:len(a)]) || !bytes.Equal(bb, imgA[:len(bb)]) {
				b.Fatal("after the swap the slots do not hold the swapped images")
			}
		}
		runtime.KeepAlive(fleet)
		runtime.KeepAlive(areas)
		b.ReportMetric(perDevice, "B/device")
	}
}

func benchDevice(b *testing.B, opts flashsim.Options) *flashsim.Device {
	d := flashsim.New(fleetGeometry(), opts)
	if _, err := swapDevice(d, randomImage(1, fleetSlot), randomImage(2, fleetSlot)); err != nil {
		b.Fatal(err)
	}
	return d
}

var benchModes = []struct {
	name string
	opts flashsim.Options
}{
	{"shared", flashsim.Options{}},
	{"plain", flashsim.Options{NoSharing: true}},
}

// BenchmarkProgram programs chunks the size bootloaders and agents use, into
// sectors erased beforehand. "repeat" writes content the store has seen (a
// fleet writing the same image); "distinct" makes every page new.
func BenchmarkProgram(b *testing.B) {
	for _, m := range benchModes {
		for _, content := range []string{"repeat", "distinct"} {
			for _, chunk := range []int{256, 4096} {
				b.Run(fmt.Sprintf("%s/%s/%dB", m.name, content, chunk), func(b *testing.B) {
					d := flashsim.New(fleetGeometry(), m.opts)
					size := d.Geometry().Size()
					data := randomImage(3, chunk)
					var n uint64
					off := int64(0)
					b.SetBytes(int64(chunk))
					for b.Loop() {
						if off+int64(chunk) > size {
							b.StopTimer()
							if err := d.Erase(0, size); err != nil {
								b.Fatal(err)
							}
							off = 0
							b.StartTimer()
						}
						if content == "distinct" {
							n++
							binary.LittleEndian.PutUint64(data, n)
						}
						if err := d.Program(off, data); err != nil {
							b.Fatal(err)
						}
						off += int64(chunk)
					}
				})
			}
		}
	}
}

// BenchmarkErase erases one 4 KiB sector that holds data.
func BenchmarkErase(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			d := benchDevice(b, m.opts)
			n := int64(len(d.Geometry().Sectors()))
			i := int64(0)
			for b.Loop() {
				if err := d.Erase(i%n*fleetSector, fleetSector); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkReadAt reads chunks of an installed image.
func BenchmarkReadAt(b *testing.B) {
	for _, m := range benchModes {
		for _, chunk := range []int{256, 4096} {
			b.Run(fmt.Sprintf("%s/%dB", m.name, chunk), func(b *testing.B) {
				d := benchDevice(b, m.opts)
				buf := make([]byte, chunk)
				size := d.Geometry().Size()
				off := int64(0)
				b.SetBytes(int64(chunk))
				for b.Loop() {
					if off+int64(chunk) > size {
						off = 0
					}
					if _, err := d.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
					off += int64(chunk)
				}
			})
		}
	}
}

// BenchmarkClone clones a 2 MiB part after a swap, as the power-cut sweep
// does before every interruption point.
func BenchmarkClone(b *testing.B) {
	for _, m := range benchModes {
		b.Run(m.name, func(b *testing.B) {
			d := benchDevice(b, m.opts)
			b.ReportAllocs()
			for b.Loop() {
				if c := d.Clone(); c.Ops() != d.Ops() {
					b.Fatal("clone lost the op count")
				}
			}
		})
	}
}
