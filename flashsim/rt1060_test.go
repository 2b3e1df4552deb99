package flashsim_test

import (
	"bytes"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/fleetsim/fleetsim/flashsim"
)

// The i.MX RT1060 board: an 8 MiB part of 2048 4 KiB sectors, two 2 MiB
// slots and a 64 KiB scratch after them, and the update agent's storage of
// 22 sectors at 0x600000, laid out as agent/storage.go lays it out
// (aktualizr-nano's layout).
const (
	rtSector    = 4096
	rtPrimary   = 0x40000
	rtSecondary = 0x240000
	rtSlot      = 0x200000
	rtScratch   = 0x440000
	rtStorage   = 0x600000
	rtImage     = 1 << 20

	rtStorageSize = 22 * rtSector
	rtOffState    = 0x1000
	rtStateSize   = 256
	rtIdentity    = 256 // UUID and serial, in one write at the storage's start
	rtTUFSize     = 3 << 10
)

// rtTUFSlots are the storage offsets of the TUF roles' slots: root,
// timestamp, snapshot, targets.
var rtTUFSlots = []int64{0x6000, 0xA000, 0xE000, 0x12000}

var rtPartitions = [4]flashsim.Partition{
	{Name: "primary", Offset: rtPrimary, Size: rtSlot},
	{Name: "secondary", Offset: rtSecondary, Size: rtSlot},
	{Name: "scratch", Offset: rtScratch, Size: 16 * rtSector},
	{Name: "storage", Offset: rtStorage, Size: rtStorageSize},
}

func rtGeometry() *flashsim.Geometry { return flashsim.Uniform(2048, rtSector, 4, 0xFF) }

var rtDevices = flag.Int("devices", 10_000, "devices in BenchmarkRT1060Footprint")

// rtContent is what every device of the fleet holds alike.
type rtContent struct {
	imgA, imgB, state []byte
	tuf               [][]byte
}

func newRTContent() *rtContent {
	c := &rtContent{imgA: randomImage(11, rtImage), imgB: randomImage(12, rtImage), state: randomImage(13, rtStateSize)}
	for i := range rtTUFSlots {
		c.tuf = append(c.tuf, randomImage(uint64(20+i), rtTUFSize))
	}
	return c
}

// rtIdentityOf is device i's identity write: 256 bytes no other device has.
func rtIdentityOf(i int) []byte {
	return randomImage(uint64(1000+i), rtIdentity)
}

// rtUpdate does to d what the factory and one update do, through the areas
// the bootloader and the agent open, which it returns: image A installed in
// the primary slot and confirmed; the identity written to the agent's
// storage; the agent's TUF metadata and state page written; image B
// downloaded into the secondary slot, which is erased first, and marked
// pending. The images are programmed in chunk-byte programs (the agent
// programs 256-byte pages, MCUboot 256 or 1024 bytes at a time).
func rtUpdate(d *flashsim.Device, c *rtContent, identity []byte, chunk int) ([4]*flashsim.Area, error) {
	var areas [4]*flashsim.Area
	for i, p := range rtPartitions {
		a, err := flashsim.NewArea(d, p)
		if err != nil {
			return areas, err
		}
		areas[i] = a
	}
	primary, secondary, storage := areas[0], areas[1], areas[3]
	program := func(a *flashsim.Area, off int64, data []byte) error {
		for len(data) > 0 {
			k := min(chunk, len(data))
			if err := a.Program(off, data[:k]); err != nil {
				return err
			}
			off, data = off+int64(k), data[k:]
		}
		return nil
	}
	trailer := func(a *flashsim.Area, imageOK bool) error {
		end := a.Size()
		if err := a.Program(end-16, bootMagic); err != nil {
			return err
		}
		if imageOK {
			return a.Program(end-24, []byte{1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
		}
		return nil
	}
	steps := []func() error{
		// Factory: image A, confirmed; the identity.
		func() error { return program(primary, 0, c.imgA) },
		func() error { return trailer(primary, true) },
		func() error { return storage.Erase(0, rtSector) },
		func() error { return storage.Program(0, identity) },
		// The agent's first check-in: TUF metadata and the state page.
		func() error {
			for i, off := range rtTUFSlots {
				if err := storage.Erase(off, rtSector); err != nil {
					return err
				}
				if err := program(storage, off, c.tuf[i]); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { return storage.Erase(rtOffState, rtSector) },
		func() error { return storage.Program(rtOffState, c.state) },
		// The update: image B into the erased secondary slot, pending.
		func() error { return secondary.EraseAll() },
		func() error { return program(secondary, 0, c.imgB) },
		func() error { return trailer(secondary, false) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return areas, err
		}
	}
	return areas, nil
}

// BenchmarkRT1060Footprint measures the heap a fleet of RT1060 devices
// costs for its flash once each has been through the factory and one
// update (rtUpdate): every device holds an 8 MiB part with the same two
// images, trailers, TUF metadata and state page, and 256 bytes of its own
// identity. B/device is the heap held after garbage collection, divided by
// the number of devices (-devices, 10,000 by default); shared content is
// counted once, spread over the fleet. The Device and the four flash areas
// it is opened through are counted; the images the benchmark writes are
// not. It runs at several page sizes, the default first.
func BenchmarkRT1060Footprint(b *testing.B) {
	c := newRTContent()
	g := rtGeometry()
	for _, ps := range []int{0, 256, 512, 1024, 4096} {
		name := fmt.Sprintf("page=%d", ps)
		if ps == 0 {
			name = "page=default"
		}
		b.Run(name, func(b *testing.B) {
			devices := *rtDevices
			for b.Loop() {
				base := liveHeap()
				fleet := make([]*flashsim.Device, devices)
				areas := make([][4]*flashsim.Area, devices)
				var wg sync.WaitGroup
				var failed sync.Once
				var firstErr error
				workers := runtime.GOMAXPROCS(0)
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := w; i < devices; i += workers {
							d := flashsim.New(g, flashsim.Options{PageSize: ps})
							a, err := rtUpdate(d, c, rtIdentityOf(i), 4096)
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
				perDevice := float64(liveHeap()-base) / float64(devices)
				for _, i := range []int{0, devices - 1} {
					rtCheck(b, fleet[i], c, rtIdentityOf(i))
				}
				runtime.KeepAlive(fleet)
				runtime.KeepAlive(areas)
				b.ReportMetric(perDevice, "B/device")
			}
		})
	}
}

// rtCheck fails b unless d holds what rtUpdate wrote.
func rtCheck(b *testing.B, d *flashsim.Device, c *rtContent, identity []byte) {
	b.Helper()
	for _, r := range []struct {
		off  int64
		want []byte
	}{
		{rtPrimary, c.imgA},
		{rtSecondary, c.imgB},
		{rtStorage, identity},
		{rtStorage + rtOffState, c.state},
		{rtStorage + rtTUFSlots[2], c.tuf[2]},
		{rtSecondary + rtSlot - 16, bootMagic},
	} {
		got := make([]byte, len(r.want))
		if _, err := d.ReadAt(got, r.off); err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, r.want) {
			b.Fatalf("device does not hold what was written at 0x%x", r.off)
		}
	}
}

// BenchmarkPageSize measures, at each page size, the operations an update
// is made of on an RT1060 device that has been through rtUpdate: the
// agent's and MCUboot's programs of an image into an erased slot (the same
// image every pass, as a fleet writes the same image), reads of an
// installed image, and one step of a swap (erase a sector, program it with
// another's content in 1 KiB programs).
func BenchmarkPageSize(b *testing.B) {
	c := newRTContent()
	for _, ps := range []int{256, 512, 1024, 4096} {
		dev := func(b *testing.B) *flashsim.Device {
			d := flashsim.New(rtGeometry(), flashsim.Options{PageSize: ps})
			if _, err := rtUpdate(d, c, rtIdentityOf(0), 4096); err != nil {
				b.Fatal(err)
			}
			return d
		}
		for _, chunk := range []int{256, 1024} {
			b.Run(fmt.Sprintf("page=%d/program-%dB", ps, chunk), func(b *testing.B) {
				// The second MiB of the secondary slot, short of its trailer.
				const from, to = rtImage, rtSlot - rtSector
				d := dev(b)
				off := int64(from)
				b.SetBytes(int64(chunk))
				for b.Loop() {
					if off+int64(chunk) > to {
						b.StopTimer()
						if err := d.Erase(rtSecondary+from, to-from); err != nil {
							b.Fatal(err)
						}
						off = from
						b.StartTimer()
					}
					if err := d.Program(rtSecondary+off, c.imgA[off-from:][:chunk]); err != nil {
						b.Fatal(err)
					}
					off += int64(chunk)
				}
			})
		}
		for _, chunk := range []int{256, 4096} {
			b.Run(fmt.Sprintf("page=%d/read-%dB", ps, chunk), func(b *testing.B) {
				d := dev(b)
				buf := make([]byte, chunk)
				off := int64(0)
				b.SetBytes(int64(chunk))
				for b.Loop() {
					if off+int64(chunk) > rtImage {
						off = 0
					}
					if _, err := d.ReadAt(buf, rtPrimary+off); err != nil {
						b.Fatal(err)
					}
					off += int64(chunk)
				}
			})
		}
		b.Run(fmt.Sprintf("page=%d/swap-step", ps), func(b *testing.B) {
			d := dev(b)
			buf := make([]byte, rtSector)
			i := int64(0)
			for b.Loop() {
				src, dst := rtPrimary+i%256*rtSector, rtScratch+i%16*rtSector
				if _, err := d.ReadAt(buf, src); err != nil {
					b.Fatal(err)
				}
				if err := d.Erase(dst, rtSector); err != nil {
					b.Fatal(err)
				}
				for o := 0; o < rtSector; o += 1024 {
					if err := d.Program(dst+int64(o), buf[o:o+1024]); err != nil {
						b.Fatal(err)
					}
				}
				i++
			}
		})
	}
}
