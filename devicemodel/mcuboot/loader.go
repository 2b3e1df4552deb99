package mcuboot

import (
	"crypto"
	"errors"
	"fmt"
	"io"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/internal/sigmemo"
)

// DowngradePrevention selects MCUBOOT_DOWNGRADE_PREVENTION (reference §4.6).
type DowngradePrevention int

// Downgrade prevention modes.
const (
	// DowngradeOff installs any valid image.
	DowngradeOff DowngradePrevention = iota
	// DowngradeVersion refuses a TEST or PERM image older than the primary's
	// (major, minor, revision; the build number too with
	// Config.VersionCompareBuild).
	DowngradeVersion
	// DowngradeSecurityCounter refuses a TEST or PERM image whose SEC_CNT is
	// missing or below the primary's, when the primary has one
	// (MCUBOOT_DOWNGRADE_PREVENTION_SECURITY_COUNTER).
	DowngradeSecurityCounter
)

// DefaultCopyChunk is the default size of the bootloader's copy buffer.
// MCUboot copies through a small RAM buffer (BOOT_TMPBUF_SZ, 256 bytes in
// most ports); each chunk is one flash program, so the chunk size sets how
// many interruption points a copy has.
const DefaultCopyChunk = 256

// Config configures a Loader. The zero value (with a Strategy) is MCUboot's
// default build: no downgrade prevention, no hardware rollback protection,
// the primary slot's header checked but not its signature.
type Config struct {
	// Strategy is the upgrade strategy's name (StrategyNames).
	Strategy string
	// Keys are the public keys compiled into the bootloader. Empty means a
	// hash-only build: an image needs only a correct SHA256 TLV.
	Keys []crypto.PublicKey
	// Downgrade selects downgrade prevention.
	Downgrade DowngradePrevention
	// VersionCompareBuild includes the build number in version
	// comparisons (MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER).
	VersionCompareBuild bool
	// SecurityCounters enables hardware rollback protection
	// (MCUBOOT_HW_ROLLBACK_PROT) with the device's counter store; nil
	// disables it.
	SecurityCounters SecurityCounterStore
	// ValidatePrimary checks the primary image's hash and signature at
	// every boot (MCUBOOT_VALIDATE_PRIMARY_SLOT).
	ValidatePrimary bool
	// MaxImgSectors is MCUBOOT_MAX_IMG_SECTORS; 0 means 128.
	MaxImgSectors int
	// CopyChunk is the copy buffer size in bytes, a multiple of the write
	// size; 0 means DefaultCopyChunk.
	CopyChunk int
	// Memo, when set, remembers the image signatures that verified, so
	// that a fleet of bootloaders checking one image pays for one
	// verification. It changes no verdict.
	Memo *sigmemo.Memo
}

// Slot names an image slot.
type Slot int

// Slots.
const (
	SlotPrimary Slot = iota
	SlotSecondary
)

func (s Slot) String() string {
	if s == SlotSecondary {
		return "secondary"
	}
	return "primary"
}

// BootResult says what a boot did and what it starts.
type BootResult struct {
	// Slot is the slot whose image the boot hands over to. The strategies
	// here always run the image from the primary slot.
	Slot Slot
	// Header is the header of the image in the primary slot that the boot
	// hands over to.
	Header image.Header
	// Image is that image fully parsed, when the boot parsed it (with
	// ValidatePrimary or SecurityCounters); nil otherwise.
	Image *image.Image
	// SwapType is the operation this boot performed: SwapNone when no image
	// moved, otherwise the TEST, PERM or REVERT it carried out (or
	// finished, when Resumed).
	SwapType SwapType
	// Resumed is true when the boot finished an operation a power cut had
	// interrupted.
	Resumed bool
	// Rejected is why the image in the secondary slot was discarded (invalid,
	// a downgrade, below the security counter), or nil.
	Rejected error
}

// Loader is the bootloader of one image: its primary and secondary slots,
// an optional scratch area, and its configuration. A Loader keeps nothing
// between boots but its configuration; all state is in flash.
type Loader struct {
	cfg                         Config
	strategy                    Strategy
	primary, secondary, scratch *flashsim.Area
	writeSize                   int
}

// New returns a Loader for the given areas (scratch may be nil when the
// strategy needs none).
//
// Errors: ErrUnknownStrategy; ErrIncompatibleSlots when the geometry does
// not suit the strategy; a plain error for an invalid Config.
func New(cfg Config, primary, secondary, scratch *flashsim.Area) (*Loader, error) {
	s, err := LookupStrategy(cfg.Strategy)
	if err != nil {
		return nil, err
	}
	if cfg.MaxImgSectors == 0 {
		cfg.MaxImgSectors = DefaultMaxImgSectors
	}
	if cfg.CopyChunk == 0 {
		cfg.CopyChunk = DefaultCopyChunk
	}
	l := &Loader{cfg: cfg, strategy: s, primary: primary, secondary: secondary, scratch: scratch}
	l.writeSize = max(primary.WriteSize(), secondary.WriteSize())
	if scratch != nil {
		l.writeSize = max(l.writeSize, scratch.WriteSize())
	}
	if cfg.CopyChunk < 0 || cfg.CopyChunk%l.writeSize != 0 {
		return nil, fmt.Errorf("copy chunk %d: want a positive multiple of the write size %d", cfg.CopyChunk, l.writeSize)
	}
	if cfg.MaxImgSectors < 0 {
		return nil, fmt.Errorf("max image sectors %d: want a positive number", cfg.MaxImgSectors)
	}
	if err := s.Check(l); err != nil {
		return nil, err
	}
	return l, nil
}

// Config returns the loader's configuration with defaults filled in.
func (l *Loader) Config() Config { return l.cfg }

// Strategy returns the loader's upgrade strategy.
func (l *Loader) Strategy() Strategy { return l.strategy }

// Primary is the primary slot.
func (l *Loader) Primary() *flashsim.Area { return l.primary }

// Secondary is the secondary slot.
func (l *Loader) Secondary() *flashsim.Area { return l.secondary }

// Scratch is the scratch area, or nil.
func (l *Loader) Scratch() *flashsim.Area { return l.scratch }

// WriteSize is BOOT_WRITE_SZ: the largest write size of the areas.
func (l *Loader) WriteSize() int { return l.writeSize }

// PrimaryTrailer is the primary slot's trailer in the strategy's layout.
func (l *Loader) PrimaryTrailer() *Trailer {
	return NewTrailer(l.primary, l.strategy.SlotLayout(l))
}

// SecondaryTrailer is the secondary slot's trailer in the strategy's layout.
func (l *Loader) SecondaryTrailer() *Trailer {
	return NewTrailer(l.secondary, l.strategy.SlotLayout(l))
}

// Boot runs the bootloader once (reference §4.0): finish an interrupted
// operation, or decide the swap type, validate the secondary image and
// perform the upgrade or revert; then check the primary image and hand over
// to it.
//
// Errors: any flash error, wrapped (a power cut is
// errors.Is(err, flashsim.ErrPowerLoss): the boot stopped and the device
// must be powered on and booted again); ErrNoBootableImage when the primary
// slot ends up without an image that may run; ErrInconsistentStatus when the
// swap status cannot have been written by this bootloader.
func (l *Loader) Boot() (*BootResult, error) {
	res := &BootResult{Slot: SlotPrimary, SwapType: SwapNone}
	tr, err := l.readTrailers()
	if err != nil {
		return nil, fmt.Errorf("reading trailers: %w", err)
	}
	st, resumed, err := l.strategy.Resume(l, tr)
	if err != nil {
		return nil, fmt.Errorf("resuming: %w", err)
	}
	if resumed {
		res.Resumed, res.SwapType = true, st
	} else {
		st, pri, sec, err := l.decide(res, tr)
		if err != nil {
			return nil, err
		}
		if st.isUpgrade() {
			if err := l.strategy.Perform(l, st, tr, pri, sec); err != nil {
				return nil, fmt.Errorf("%s %s: %w", l.strategy.Name(), st, err)
			}
			res.SwapType = st
		}
	}
	if err := l.bootPrimary(res); err != nil {
		return nil, err
	}
	return res, nil
}

// SlotTrailers is what the slots' trailers held when a boot began. The boot
// reads them once: nothing writes to them before the strategy's Perform,
// since Resume writes nothing when it finds nothing to resume (at most it
// tidies the scratch area) and every path of decide that writes to a slot
// ends in SwapNone.
type SlotTrailers struct {
	Primary, Secondary TrailerState
}

// readTrailers reads both slots' trailers in the strategy's layout.
func (l *Loader) readTrailers() (SlotTrailers, error) {
	var tr SlotTrailers
	var err error
	if tr.Primary, err = l.PrimaryTrailer().Read(); err != nil {
		return tr, err
	}
	tr.Secondary, err = l.SecondaryTrailer().Read()
	return tr, err
}

// decide evaluates the swap table on the trailers read at the start of the
// boot and validates the secondary image (boot_validated_swap_type),
// discarding a secondary that may not be installed.
func (l *Loader) decide(res *BootResult, tr SlotTrailers) (SwapType, Extent, *image.Image, error) {
	pt, stt := tr.Primary, tr.Secondary
	typ := DecideSwapType(pt, stt, l.strategy.UsesRowI())
	if typ == SwapRevert && !l.strategy.Reverts() {
		if err := l.clearStuckRevert(pt); err != nil {
			return 0, Extent{}, nil, err
		}
		typ = SwapNone
	}
	if !typ.isUpgrade() {
		return SwapNone, Extent{}, nil, l.tidySecondary(stt)
	}
	sec, err := l.validateSecondary(typ, stt)
	if err != nil {
		return 0, Extent{}, nil, err
	}
	if sec.img == nil {
		res.Rejected = sec.reason
		if typ == SwapRevert {
			if err := l.clearStuckRevert(pt); err != nil {
				return 0, Extent{}, nil, err
			}
		}
		return SwapNone, Extent{}, nil, nil
	}
	pri, err := ReadExtent(l.primary, 0)
	if err != nil {
		return 0, Extent{}, nil, err
	}
	refused, err := l.downgrade(typ, pri, sec.img)
	if err != nil {
		return 0, Extent{}, nil, err
	}
	if refused != nil {
		res.Rejected = refused
		if err := l.scrambleSlot(l.secondary); err != nil {
			return 0, Extent{}, nil, err
		}
		return SwapNone, Extent{}, nil, nil
	}
	return typ, pri, sec.img, nil
}

// clearStuckRevert handles a revert that cannot happen (MCUboot PR #2199,
// "stuck revert"): the primary trailer asks for one (row IV: GOOD, UNSET,
// SET) but the secondary holds no valid image to put back (erased, its
// image erased, or discarded by validation), or the strategy cannot revert
// at all (overwrite-only). Left alone, the table selects REVERT at every
// boot, and the application, which asks the swap type before it accepts an
// upload, believes a revert is pending and refuses new images.
//
// MCUboot's fix clears the REVERT state in swap-move's primary trailer.
// fleetsim does the equivalent for every strategy: it sets image_ok in the
// primary, "pretend we just reverted" as MCUboot does on a failed swap
// (reference §3.2). The running image is the only one left, so it becomes
// permanent; the table then yields NONE, and a new image set pending
// upgrades normally. (The hardware security counter follows the now
// permanent image at this boot; there is no image left to revert to.)
//
// Only a REVERT the table selected clears it. A TEST or PERM request whose
// image was erased is discarded first (its trailer scrambled) and the next
// boot's REVERT decides: swap-offset may still hold the image to revert to
// at offset 0 while the download offset is empty.
func (l *Loader) clearStuckRevert(pt TrailerState) error {
	if pt.Magic != MagicGood || pt.ImageOK != FlagUnset || pt.CopyDone != FlagSet {
		return nil
	}
	return l.PrimaryTrailer().WriteImageOK()
}

// tidySecondary clears what no table row can use and a power cut may leave
// in a secondary slot that is not installed (a fleetsim hardening; MCUboot
// keeps such leftovers forever):
//   - a corrupt trailer magic (a torn erase of the trailer sector, a torn
//     magic write of SetPending: the #1966 failure mode on the secondary)
//     matches no row, and SetPending refuses such a slot with ErrBadImage
//     until it is erased;
//   - a corrupt header (a torn erase of the header sector) is no image and
//     never can become one;
//
// so the whole slot is erased. (A header is corrupt only if neither the
// strategy's image offset nor offset 0 holds a valid one: swap-offset keeps
// the previous image at 0.) A trailer left without an image (an erased
// header) is scrambled. A valid header with an erased trailer is left alone:
// it may be a download in progress.
func (l *Loader) tidySecondary(stt TrailerState) error {
	off := l.strategy.SecondaryImageOffset(l, SwapNone)
	hdr, err := headerAt(l.secondary, off)
	if err != nil {
		return err
	}
	corrupt := errors.Is(hdr, image.ErrBadHeader)
	if corrupt && off != 0 {
		at0, err := headerAt(l.secondary, 0)
		if err != nil {
			return err
		}
		corrupt = errors.Is(at0, image.ErrBadHeader)
	}
	switch {
	case stt.Magic == MagicBad || corrupt:
		return l.scrambleSlot(l.secondary)
	case errors.Is(hdr, image.ErrNoImage) && !flagsUnset(stt):
		return l.SecondaryTrailer().Scramble()
	}
	return nil
}

// flagsUnset reports whether a trailer's magic and flags are all unset (as
// read; Trailer.Erased looks at every byte).
func flagsUnset(st TrailerState) bool {
	return st.Magic == MagicUnset && st.ImageOK == FlagUnset && st.CopyDone == FlagUnset
}

// headerAt returns image.ParseHeader's verdict on the header at off in a
// (nil for a header that parses), or a flash error.
func headerAt(a *flashsim.Area, off int64) (verdict, err error) {
	var b [image.HeaderSize]byte
	if err := readAt(a, b[:], off); err != nil {
		return nil, err
	}
	_, verdict = image.ParseHeader(b[:])
	return verdict, nil
}

// slotImage is what a slot holds: an image, or the reason it holds none.
type slotImage struct {
	img    *image.Image
	reason error
}

// validateSecondary is boot_validate_slot for the secondary: a slot with no
// image or a valid non-bootable one has its trailer cleared; an invalid image
// has the whole slot erased. Either way it returns no image and the reason.
//
// Unlike MCUboot, which takes IMAGE_F_NON_BOOTABLE on trust, the flag counts
// only on an image that verifies: a torn erase of the header sector can set
// the flag's bits (erased bytes read 0xff), and such a wreck must be erased,
// not kept. (A fleetsim hardening with no MCUboot issue behind it: MCUboot's
// simulator never tears an erase; PRs #2648 and #2793 propose torn writes.)
func (l *Loader) validateSecondary(typ SwapType, stt TrailerState) (slotImage, error) {
	off := l.strategy.SecondaryImageOffset(l, typ)
	si, err := l.parseSlot(l.secondary, off)
	if err != nil {
		return si, err
	}
	if si.reason == nil {
		si.reason = l.verify(si.img)
	}
	if si.reason == nil && si.img.Header.Flags&image.FlagNonBootable != 0 {
		si.reason = errNonBootable
	}
	if si.reason == nil {
		return si, nil
	}
	if errors.Is(si.reason, image.ErrNoImage) || errors.Is(si.reason, errNonBootable) {
		// A REVERT (row IV) needs no secondary trailer: do not erase an
		// already erased one at every boot.
		if !flagsUnset(stt) {
			if err := l.SecondaryTrailer().Scramble(); err != nil {
				return slotImage{}, err
			}
		}
		return slotImage{reason: fmt.Errorf("secondary slot for %s: %w", typ, si.reason)}, nil
	}
	if err := l.scrambleSlot(l.secondary); err != nil {
		return slotImage{}, err
	}
	return slotImage{reason: fmt.Errorf("secondary slot for %s discarded: %w", typ, si.reason)}, nil
}

// errNonBootable marks an image whose header carries IMAGE_F_NON_BOOTABLE.
var errNonBootable = errors.New("image is flagged non-bootable")

// parseSlot parses the image at off in a. It returns the image, or why the
// slot holds none, or a flash error.
func (l *Loader) parseSlot(a *flashsim.Area, off int64) (slotImage, error) {
	r := &areaReader{area: a, base: off}
	img, perr := image.Parse(r, l.strategy.MaxImageSize(l))
	if r.err != nil {
		return slotImage{}, r.err
	}
	if perr != nil {
		return slotImage{reason: perr}, nil
	}
	return slotImage{img: img}, nil
}

// verify checks an image's hash and signatures and, with hardware
// rollback protection, its security counter against the stored one.
func (l *Loader) verify(img *image.Image) error {
	if err := img.VerifyWith(l.cfg.Keys, l.cfg.Memo); err != nil {
		return err
	}
	return l.checkSecurityCounter(img)
}

// errRolledBack: an image's SEC_CNT is missing or below the hardware counter.
var errRolledBack = errors.New("image security counter is below the hardware counter")

func (l *Loader) checkSecurityCounter(img *image.Image) error {
	if l.cfg.SecurityCounters == nil {
		return nil
	}
	stored, err := l.cfg.SecurityCounters.SecurityCounter(0)
	if err != nil {
		return err
	}
	c, ok := img.SecurityCounter()
	if !ok {
		return fmt.Errorf("%w: image has no SEC_CNT TLV, counter is %d", errRolledBack, stored)
	}
	if c < stored {
		return fmt.Errorf("%w: image has %d, counter is %d", errRolledBack, c, stored)
	}
	return nil
}

// errDowngrade: the secondary image is older than the primary's.
var errDowngrade = errors.New("downgrade refused")

// downgrade applies downgrade prevention (reference §4.6) to a TEST or PERM
// (a REVERT is always allowed). It returns why the secondary is refused
// (errDowngrade) or nil, and a flash error.
func (l *Loader) downgrade(typ SwapType, pri Extent, sec *image.Image) (refused, err error) {
	if typ == SwapRevert || !pri.Present {
		return nil, nil
	}
	switch l.cfg.Downgrade {
	case DowngradeVersion:
		if sec.Header.Version.Compare(pri.Header.Version, l.cfg.VersionCompareBuild) < 0 {
			return fmt.Errorf("%w: secondary version %s is older than primary %s", errDowngrade, sec.Header.Version, pri.Header.Version), nil
		}
	case DowngradeSecurityCounter:
		// The primary's counter is in its protected TLVs: parse it.
		prim, err := l.parseSlot(l.primary, 0)
		if err != nil || prim.img == nil {
			return nil, err
		}
		pc, has := prim.img.SecurityCounter()
		if !has {
			return nil, nil
		}
		sc, has := sec.SecurityCounter()
		if !has || sc < pc {
			return fmt.Errorf("%w: secondary security counter below primary's %d", errDowngrade, pc), nil
		}
	}
	return nil, nil
}

// bootPrimary checks the image the boot hands over to and raises the
// hardware security counter when that image is permanent. Like MCUboot
// without MCUBOOT_VALIDATE_PRIMARY_SLOT, it checks only the header unless
// the primary is validated or a security counter must be read.
func (l *Loader) bootPrimary(res *BootResult) error {
	if !l.cfg.ValidatePrimary && l.cfg.SecurityCounters == nil {
		ext, err := ReadExtent(l.primary, 0)
		if err != nil {
			return err
		}
		if !ext.Present || ext.End > l.strategy.MaxImageSize(l) {
			return fmt.Errorf("%w: primary slot holds no valid image header", ErrNoBootableImage)
		}
		if ext.Header.Flags&image.FlagNonBootable != 0 {
			return fmt.Errorf("%w: primary slot: %w", ErrNoBootableImage, errNonBootable)
		}
		res.Header = ext.Header
		return nil
	}
	si, err := l.parseSlot(l.primary, 0)
	if err != nil {
		return err
	}
	img, reason := si.img, si.reason
	if reason == nil && img.Header.Flags&image.FlagNonBootable != 0 {
		reason = errNonBootable
	}
	if reason == nil && l.cfg.ValidatePrimary {
		reason = img.VerifyWith(l.cfg.Keys, l.cfg.Memo)
	}
	if reason == nil {
		reason = l.checkSecurityCounter(img)
	}
	if reason != nil {
		return fmt.Errorf("%w: primary slot: %w", ErrNoBootableImage, reason)
	}
	res.Header, res.Image = img.Header, img
	if l.cfg.SecurityCounters == nil {
		return nil
	}
	pt, err := l.PrimaryTrailer().Read()
	if err != nil {
		return err
	}
	// The counter follows only an image that can no longer be reverted
	// (reference §4.6; issue #2282): a confirmed one, or one installed
	// without a trailer.
	c, ok := img.SecurityCounter()
	if !ok || (pt.Magic == MagicGood && pt.ImageOK != FlagSet) {
		return nil
	}
	stored, err := l.cfg.SecurityCounters.SecurityCounter(0)
	if err != nil {
		return err
	}
	if c > stored {
		return l.cfg.SecurityCounters.RaiseSecurityCounter(0, c)
	}
	return nil
}

// scrambleSlot erases every sector of a (boot_scramble_slot), from the
// first to the last, so that the trailer, which is what makes the next boot
// look at the slot again, goes last: a cut part-way leaves a slot whose trailer still leads the
// next boot to validate (or tidy) it and erase it again. Erasing the trailer
// first could leave, after a cut, an invalid image under an intact header
// and no trailer, which no boot would ever clear (found by the sweep's
// random-revert phase on overwrite: a torn header erase, then cuts inside
// this erase). A fleetsim choice made for torn erases, which MCUboot's
// simulator does not model (PRs #2648, #2793); no MCUboot issue reports it.
func (l *Loader) scrambleSlot(a *flashsim.Area) error {
	for _, s := range a.Sectors() {
		if err := a.Erase(s.Offset, s.Size); err != nil {
			return err
		}
	}
	return nil
}

// EraseSectors erases the sectors of a overlapping [off, off+n), one erase
// operation per sector in ascending order (each is one interruption point).
func (l *Loader) EraseSectors(a *flashsim.Area, off, n int64) error {
	for _, s := range a.Sectors() {
		if s.Offset+s.Size <= off || s.Offset >= off+n {
			continue
		}
		if err := a.Erase(s.Offset, s.Size); err != nil {
			return err
		}
	}
	return nil
}

// copySector erases the sector of dst at dstOff, of size n, and copies
// n bytes from src at srcOff into it: one step of the sector-by-sector swaps
// (swap-move, swap-offset). Its source is never the sector it erases, so a
// step cut anywhere is redone from its erase.
func (l *Loader) copySector(src *flashsim.Area, srcOff int64, dst *flashsim.Area, dstOff, n int64) error {
	if err := l.EraseSectors(dst, dstOff, n); err != nil {
		return err
	}
	return l.CopyRegion(src, srcOff, dst, dstOff, n)
}

// CopyRegion copies n bytes (rounded up to the write size) from src at
// srcOff to dst at dstOff through the copy buffer, one program per chunk.
// The destination must be erased. A chunk that is entirely the erase value
// is not programmed: the destination already holds it. (MCUboot programs
// it anyway; skipping changes no byte and saves wear and interruption
// points.)
func (l *Loader) CopyRegion(src *flashsim.Area, srcOff int64, dst *flashsim.Area, dstOff int64, n int64) error {
	n = int64(alignUp(int(n), l.writeSize))
	buf := make([]byte, l.cfg.CopyChunk)
	ev := dst.EraseValue()
	for done := int64(0); done < n; {
		c := min(int64(len(buf)), n-done)
		chunk := buf[:c]
		if err := readAt(src, chunk, srcOff+done); err != nil {
			return err
		}
		if !allBytes(chunk, ev) {
			if err := dst.ProgramFrom(dstOff+done, chunk, src, srcOff+done); err != nil {
				return err
			}
		}
		done += c
	}
	return nil
}

// areaReader reads an area from base onwards for image.Parse and keeps the
// first flash error, so that a flash failure is not mistaken for an invalid
// image.
type areaReader struct {
	area *flashsim.Area
	base int64
	err  error
}

// Sum256 hashes n bytes at off as a ReadAt of them would read them, on the
// part when it can (image.Summer).
func (r *areaReader) Sum256(off, n int64) ([32]byte, error) {
	if off < 0 || n > r.area.Size()-r.base-off {
		return [32]byte{}, io.EOF
	}
	sum, err := r.area.Sum256(r.base+off, n)
	if err != nil && r.err == nil {
		r.err = err
	}
	return sum, err
}

func (r *areaReader) ReadAt(p []byte, off int64) (int, error) {
	size := r.area.Size() - r.base
	if off < 0 || off >= size {
		return 0, io.EOF
	}
	short := false
	if int64(len(p)) > size-off {
		p, short = p[:size-off], true
	}
	n, err := r.area.ReadAt(p, r.base+off)
	if err != nil {
		if r.err == nil {
			r.err = err
		}
		return n, err
	}
	if short {
		return n, io.EOF
	}
	return n, nil
}
