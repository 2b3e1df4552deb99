package mcuboot

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// ImageState is the state of the running image as the application sees it
// through the bootloader glue (NXP's bl_get_image_state, which
// aktualizr-nano reads): whether an update is pending, whether the running
// image is on trial, or neither.
type ImageState uint8

// Image states, in the glue's words.
const (
	// StateNone: no update is pending and the running image is not on
	// trial (a factory image, or a confirmed one).
	StateNone ImageState = iota + 1
	// StateReadyForTest: an image in the secondary slot waits for the next
	// boot to be tried (secondary magic good, image_ok unset).
	StateReadyForTest
	// StatePermanent: an image in the secondary slot waits for the next
	// boot to be installed for good (secondary magic good, image_ok set).
	StatePermanent
	// StateTesting: the running image is on trial: the next boot reverts it
	// unless the application confirms it (primary magic good, image_ok
	// unset, copy_done set; secondary magic unset).
	StateTesting
)

func (s ImageState) String() string {
	switch s {
	case StateNone:
		return "none"
	case StateReadyForTest:
		return "ready-for-test"
	case StatePermanent:
		return "permanent"
	case StateTesting:
		return "testing"
	}
	return fmt.Sprintf("ImageState(%d)", uint8(s))
}

// ErrBadUpdate: the bytes written to the update slot are not the structure
// of an MCUboot image of the given size (bl_verify_image). It is not a
// signature check: the bootloader checks the signature at the next boot.
var ErrBadUpdate = errors.New("downloaded image is not a well-formed MCUboot image")

// App is the application's side of the bootloader: what firmware calls
// between boots (MCUboot's boot_set_pending and boot_set_confirmed, and the
// board glue around them): the running image, its state, where an update is
// written, and the hand-off. It keeps only the two slots and the update
// offset, so a device may hold it while it runs without its Loader.
type App struct {
	primary, secondary *flashsim.Area
	updateOff          int64
}

// App returns the application side of l's slots. The update offset is the
// strategy's: swap-offset downloads one sector into the secondary slot,
// every other strategy at its start.
func (l *Loader) App() *App {
	return &App{primary: l.primary, secondary: l.secondary, updateOff: l.strategy.SecondaryImageOffset(l, SwapNone)}
}

// Primary is the slot the running image executes from.
func (a *App) Primary() *flashsim.Area { return a.primary }

// Secondary is the update slot.
func (a *App) Secondary() *flashsim.Area { return a.secondary }

// UpdateOffset is where, in the secondary slot, an update must be written.
func (a *App) UpdateOffset() int64 { return a.updateOff }

// Running returns the header of the image the device runs (the primary
// slot's). Errors: image.ErrNoImage and the other header errors of
// image.ParseHeader when the slot holds no valid header; flash errors.
func (a *App) Running() (image.Header, error) {
	var hb [image.HeaderSize]byte
	if err := readAt(a.primary, hb[:], 0); err != nil {
		return image.Header{}, err
	}
	return image.ParseHeader(hb[:])
}

// State reads the image state from both trailers, as NXP's
// bl_get_image_state does: a good secondary magic means an update is pending
// (ReadyForTest with image_ok unset, Permanent with it set); otherwise, with
// an erased secondary magic, a primary with a good magic, image_ok unset and
// copy_done set is on trial. Anything else is StateNone. Errors are flash
// errors.
func (a *App) State() (ImageState, error) {
	p, err := NewTrailer(a.primary, flagLayout(a.primary)).Read()
	if err != nil {
		return 0, err
	}
	s, err := NewTrailer(a.secondary, flagLayout(a.secondary)).Read()
	if err != nil {
		return 0, err
	}
	switch {
	case s.Magic == MagicGood && s.ImageOK == FlagUnset:
		return StateReadyForTest, nil
	case s.Magic == MagicGood && s.ImageOK == FlagSet:
		return StatePermanent, nil
	case s.Magic == MagicUnset && p.Magic == MagicGood && p.ImageOK == FlagUnset && p.CopyDone == FlagSet:
		return StateTesting, nil
	}
	return StateNone, nil
}

// SetPending marks the downloaded image for the next boot (SetPending on
// the secondary slot).
func (a *App) SetPending(permanent bool) error { return SetPending(a.secondary, permanent) }

// Confirm makes the running image permanent (Confirm on the primary slot).
func (a *App) Confirm() error { return Confirm(a.primary) }

// NewUpdateWriter starts writing an update at the update offset, programming
// page bytes at a time (the flash driver's page program: 256 bytes on QSPI
// NOR parts). page must be a positive multiple of the slot's write size.
func (a *App) NewUpdateWriter(page int) *SlotWriter {
	return NewSlotWriter(a.secondary, a.updateOff, page)
}

// VerifyUpdate checks that the first size bytes at the update offset are the
// structure of an MCUboot image, as bl_verify_image does before the agent
// sets it pending: the header magic; at least the header, payload and
// protected TLVs the header declares; the protected TLV info (magic and total)
// when the header declares one; and, when bytes follow, an unprotected TLV
// info whose total is exactly the rest. Errors: ErrBadUpdate (wrapped, with
// the reason); flash errors.
func (a *App) VerifyUpdate(size int64) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadUpdate, fmt.Sprintf(format, args...))
	}
	if size < image.HeaderSize {
		return bad("%d bytes, less than a header", size)
	}
	if a.updateOff+size > a.secondary.Size() {
		return bad("%d bytes do not fit the update slot", size)
	}
	var hb [image.HeaderSize]byte
	if err := readAt(a.secondary, hb[:], a.updateOff); err != nil {
		return err
	}
	if m := binary.LittleEndian.Uint32(hb[0:4]); m != image.HeaderMagic {
		return bad("header magic %#08x", m)
	}
	hdrSize := int64(binary.LittleEndian.Uint16(hb[8:10]))
	protSize := int64(binary.LittleEndian.Uint16(hb[10:12]))
	imgSize := int64(binary.LittleEndian.Uint32(hb[12:16]))
	decl := hdrSize + imgSize + protSize
	if size < decl {
		return bad("%d bytes, the header declares %d", size, decl)
	}
	info := func(off int64, magic uint16, want int64) error {
		var ib [4]byte
		if err := readAt(a.secondary, ib[:], a.updateOff+off); err != nil {
			return err
		}
		if m, tot := binary.LittleEndian.Uint16(ib[:2]), int64(binary.LittleEndian.Uint16(ib[2:])); m != magic || tot != want {
			return bad("TLV info at %#x is magic %#04x total %d, want %#04x total %d", off, m, tot, magic, want)
		}
		return nil
	}
	if protSize > 0 {
		if protSize < 4 {
			return bad("protected TLV area of %d bytes", protSize)
		}
		if err := info(hdrSize+imgSize, image.TLVProtInfoMagic, protSize); err != nil {
			return err
		}
	}
	if rest := size - decl; rest > 0 {
		if rest < 4 {
			return bad("%d trailing bytes, less than a TLV info", rest)
		}
		if err := info(decl, image.TLVInfoMagic, rest); err != nil {
			return err
		}
	}
	return nil
}

// SlotWriter writes a stream into a slot as firmware does: it erases each
// sector just before the first byte lands in it, programs whole pages, and
// pads the last partial page with the erase value. Write may be called with
// any length; the bytes are programmed once a page is full.
type SlotWriter struct {
	area     *flashsim.Area
	start    int64
	page     []byte
	n        int   // bytes buffered in page
	off      int64 // where the buffered page goes
	erasedTo int64 // the area is erased below this offset, from start
	written  int64
}

// NewSlotWriter writes into area from off, which must lie on a sector
// boundary, in programs of page bytes (a positive multiple of the area's
// write size). It panics on a page size that is not (a programmer error).
func NewSlotWriter(area *flashsim.Area, off int64, page int) *SlotWriter {
	if page <= 0 || page%area.WriteSize() != 0 {
		panic(fmt.Sprintf("mcuboot: slot writer page %d is not a multiple of the write size %d", page, area.WriteSize()))
	}
	return &SlotWriter{area: area, start: off, page: make([]byte, page), off: off, erasedTo: off}
}

// Written is the number of bytes accepted so far.
func (w *SlotWriter) Written() int64 { return w.written }

// Write buffers p and programs every page it completes. Errors: flashsim's
// (a write past the area is flashsim.ErrOutOfBounds).
func (w *SlotWriter) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		k := copy(w.page[w.n:], p)
		w.n += k
		p = p[k:]
		if w.n == len(w.page) {
			if err := w.program(); err != nil {
				return done, err
			}
		}
		done += k
		w.written += int64(k)
	}
	return done, nil
}

// Flush programs a partial last page padded with the erase value. It is
// needed once, after the last Write.
func (w *SlotWriter) Flush() error {
	if w.n == 0 {
		return nil
	}
	ev := w.area.EraseValue()
	for i := w.n; i < len(w.page); i++ {
		w.page[i] = ev
	}
	return w.program()
}

func (w *SlotWriter) program() error {
	end := w.off + int64(len(w.page))
	for w.erasedTo < end {
		sec, ok := sectorAt(w.area, w.erasedTo)
		if !ok {
			return w.area.Erase(w.erasedTo, int64(len(w.page))) // out of bounds: the area says so
		}
		if err := w.area.Erase(sec.Offset, sec.Size); err != nil {
			return err
		}
		w.erasedTo = sec.Offset + sec.Size
	}
	if err := w.area.Program(w.off, w.page); err != nil {
		return err
	}
	w.off = end
	w.n = 0
	return nil
}

// sectorAt returns the area's sector holding off.
func sectorAt(a *flashsim.Area, off int64) (flashsim.Sector, bool) {
	for _, s := range a.Sectors() {
		if off >= s.Offset && off < s.Offset+s.Size {
			return s, true
		}
	}
	return flashsim.Sector{}, false
}
