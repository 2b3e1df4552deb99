package bootsweep

import (
	"crypto"
	"fmt"
	"math/rand/v2"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// DefaultCopyChunk is the bootloader copy buffer the sweep uses: 2 KiB.
// MCUboot's ports use 256 bytes; eight times that still splits every 4 KiB
// sector copy into two programs (so cuts land inside a sector copy, and
// inside a 128 KiB sector copy 64 times) while keeping the number of cut
// points, which the sweep's cost grows with quadratically, low enough to
// sweep every board and strategy in seconds.
const DefaultCopyChunk = 2048

// imageHeaderSize is ih_hdr_size of the sweep's images (as MCUboot's
// simulator: a bare 32-byte header).
const imageHeaderSize = image.HeaderSize

// sizes are the image sizes (total, TLVs included) the sweep installs on a
// board: the new image (0 = the largest the strategy allows, which reaches
// into the sector holding the trailer) and the old, factory image. The small
// old image leaves sectors that only one image uses. Boards with large slots
// use images spanning several regions but not the whole slot, to bound the
// sweep's time.
type sizes struct{ newEnd, oldEnd int64 }

func sweepSizes(board string) sizes {
	switch board {
	case "k64f":
		return sizes{newEnd: 0, oldEnd: 0x9100}
	case "stm32f4":
		return sizes{newEnd: 0, oldEnd: 0xa100}
	case "nrf52840":
		return sizes{newEnd: 0x1e100, oldEnd: 0x9100}
	default:
		return sizes{newEnd: 0x18100, oldEnd: 0x8100}
	}
}

// Fixture is a board, a strategy and the two signed images an upgrade
// exchanges, with a device prepared for each scenario.
type Fixture struct {
	Board    devicemodel.Board
	Strategy string
	Seed     uint64
	// Config is the bootloader configuration (keys, copy chunk).
	Config mcuboot.Config
	// Old is the factory image in the primary slot; New the update.
	Old, New Image
	// Flash configures the devices the fixture prepares.
	Flash flashsim.Options
	// Key signs the images; its public key is in Config.Keys.
	Key crypto.Signer
}

// Image is a signed image and what the bootloader sees of it.
type Image struct {
	Bytes  []byte
	Parsed *image.Image
}

// NewFixture signs an old (1.0.0) and a new (1.1.0) image sized for the
// board and strategy with an Ed25519 key drawn from seed.
//
// Errors: the board does not support the strategy, or the images cannot be
// built for it.
func NewFixture(board devicemodel.Board, strategy string, seed uint64, copyChunk int) (*Fixture, error) {
	if !board.Supports(strategy) {
		return nil, fmt.Errorf("board %s does not support strategy %q (supported: %v)", board.Name, strategy, board.Strategies())
	}
	if copyChunk == 0 {
		copyChunk = DefaultCopyChunk
	}
	rng := rand.New(rand.NewPCG(seed, 0x6f7461))
	key, err := image.GenerateKey(image.KeyEd25519, randReader{rng})
	if err != nil {
		return nil, err
	}
	fx := &Fixture{
		Board: board, Strategy: strategy, Seed: seed, Key: key,
		Config: mcuboot.Config{Strategy: strategy, Keys: []crypto.PublicKey{key.Public()}, CopyChunk: copyChunk},
	}
	maxSize, err := fx.MaxImageSize()
	if err != nil {
		return nil, err
	}
	sz := sweepSizes(board.Name)
	if sz.newEnd == 0 || sz.newEnd > maxSize {
		sz.newEnd = maxSize
	}
	sz.oldEnd = min(sz.oldEnd, maxSize)
	if fx.New, err = fx.SignImage(image.SignOptions{Version: image.Version{Major: 1, Minor: 1}}, sz.newEnd); err != nil {
		return nil, err
	}
	if fx.Old, err = fx.SignImage(image.SignOptions{Version: image.Version{Major: 1}}, sz.oldEnd); err != nil {
		return nil, err
	}
	return fx, nil
}

// MaxImageSize is the largest image the fixture's strategy installs on its
// board.
func (fx *Fixture) MaxImageSize() (int64, error) {
	l, err := fx.Loader(fx.Board.NewFlash(fx.Flash))
	if err != nil {
		return 0, err
	}
	return l.Strategy().MaxImageSize(l), nil
}

// SignImage signs a payload drawn from the fixture's seed and the version
// with the fixture's key and opts (Version, SecurityCounter, Flags...), sized
// so that the image ends exactly at end (Ed25519 TLVs have a fixed size).
func (fx *Fixture) SignImage(opts image.SignOptions, end int64) (Image, error) {
	v := opts.Version
	rng := rand.New(rand.NewPCG(fx.Seed, uint64(v.Major)<<40|uint64(v.Minor)<<32|uint64(v.Revision)<<16|uint64(end)))
	opts.Key, opts.HeaderSize, opts.PadHeader = fx.Key, imageHeaderSize, true
	probe, err := image.Sign(make([]byte, 1), opts)
	if err != nil {
		return Image{}, err
	}
	overhead := int64(len(probe)) - 1
	n := end - overhead
	if n < 1 {
		return Image{}, fmt.Errorf("image of %d bytes cannot hold a payload", end)
	}
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	b, err := image.Sign(payload, opts)
	if err != nil {
		return Image{}, err
	}
	im, err := image.Parse(bytesReader(b), int64(len(b)))
	if err != nil {
		return Image{}, err
	}
	return Image{Bytes: b, Parsed: im}, nil
}

// Loader returns the fixture's bootloader on dev.
func (fx *Fixture) Loader(dev flashsim.Flash) (*mcuboot.Loader, error) {
	return fx.Board.Bootloader(dev, fx.Config)
}

// Factory returns a device with the old image in the primary slot, marked
// confirmed as imgtool --pad --confirm does, and an empty secondary.
func (fx *Fixture) Factory() (*flashsim.Device, error) {
	dev := fx.Board.NewFlash(fx.Flash)
	l, err := fx.Loader(dev)
	if err != nil {
		return nil, err
	}
	if err := programImage(l.Primary(), 0, fx.Old.Bytes); err != nil {
		return nil, err
	}
	t := mcuboot.NewTrailer(l.Primary(), mcuboot.TrailerLayout{WriteSize: l.WriteSize()})
	if err := t.WriteImageOK(); err != nil {
		return nil, err
	}
	return dev, t.WriteMagic()
}

// Pending returns the factory device with the new image downloaded into the
// secondary slot and set pending (permanent or as a test), as the agent does.
func (fx *Fixture) Pending(permanent bool) (*flashsim.Device, error) {
	dev, err := fx.Factory()
	if err != nil {
		return nil, err
	}
	l, err := fx.Loader(dev)
	if err != nil {
		return nil, err
	}
	if err := programImage(l.Secondary(), l.Strategy().SecondaryImageOffset(l, mcuboot.SwapTest), fx.New.Bytes); err != nil {
		return nil, err
	}
	return dev, mcuboot.SetPending(l.Secondary(), permanent)
}

// programImage writes img at off, padded with the erase value to the write
// size, as a flash writer does.
func programImage(a *flashsim.Area, off int64, img []byte) error {
	w := a.WriteSize()
	buf := make([]byte, (len(img)+w-1)/w*w)
	for i := range buf {
		buf[i] = a.EraseValue()
	}
	copy(buf, img)
	return a.Program(off, buf)
}

type bytesReader []byte

func (b bytesReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(b)) {
		return 0, fmt.Errorf("read at %d outside %d bytes", off, len(b))
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, fmt.Errorf("short read at %d", off)
	}
	return n, nil
}

// randReader adapts a seeded *rand.Rand to io.Reader for key generation.
type randReader struct{ r *rand.Rand }

func (r randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}
