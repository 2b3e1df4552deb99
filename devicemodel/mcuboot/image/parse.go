package image

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TLV is one type-length-value record of an image.
type TLV struct {
	Type uint16
	// Protected is true for TLVs of the protected area (0x6908), which the
	// image digest covers.
	Protected bool
	// Offset is where Value starts, from the start of the image.
	Offset int64
	Value  []byte
}

// Dependency is a DEPENDENCY TLV: the image with ImageID must be at least
// MinVersion for this image to be installed (reference §4.7).
type Dependency struct {
	ImageID    uint8
	MinVersion Version
}

// Image is a parsed image: its header, its TLVs in flash order and the
// digest MCUboot computes over it.
type Image struct {
	Header Header
	// TLVs holds the protected TLVs, then the unprotected ones, each in the
	// order they appear.
	TLVs []TLV
	// TLVOffset is where the TLV areas start: HdrSize + ImgSize.
	TLVOffset int64
	// End is the end of the unprotected TLV area, i.e. the image's total
	// size. imgtool does not align it; flash writers pad it.
	End int64
	// Digest is SHA-256 over [0, HdrSize+ImgSize+ProtectTLVSize): header
	// region, payload and the protected TLV area with its info header.
	Digest [32]byte
}

// hashChunk bounds the memory Parse uses to hash the image: a slot may be
// megabytes and a million devices share the process.
const hashChunk = 4096

// Parse reads the image at the start of r: the header, both TLV areas with
// MCUboot's bounds rules (bootutil_tlv_iter), and the digest. It checks no
// hash or signature; Verify does.
//
// maxSize is the most bytes the image may occupy (a slot's maximum image
// size, or a file's length). Parse reads the image in bounded chunks and
// never more than maxSize bytes.
//
// Errors: ErrNoImage and ErrBadHeader as ParseHeader (a short read of the
// header is ErrBadHeader); ErrTooLarge when the header or the TLV areas
// reach past maxSize; ErrBadTLV when an info header has the wrong magic, the
// protected area's size disagrees with ih_protect_tlv_size, a TLV runs past
// its area or a read inside the image fails.
func Parse(r io.ReaderAt, maxSize int64) (*Image, error) {
	if maxSize < HeaderSize {
		return nil, fmt.Errorf("%w: %d bytes allowed, the header alone needs %d", ErrTooLarge, maxSize, HeaderSize)
	}
	var hb [HeaderSize]byte
	if err := readFull(r, hb[:], 0); err != nil {
		return nil, fmt.Errorf("%w: reading header: %w", ErrBadHeader, err)
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return nil, err
	}
	im := &Image{Header: h, TLVOffset: int64(h.HdrSize) + int64(h.ImgSize)}
	hashEnd := im.TLVOffset + int64(h.ProtectTLVSize)
	// MCUboot wants room for at least the unprotected info header after
	// the hashed range; checking it here also bounds the hashing below.
	if hashEnd+tlvInfoSize > maxSize {
		return nil, fmt.Errorf("%w: header says payload ends at %d and TLVs start past %d, max image size %d",
			ErrTooLarge, im.TLVOffset, hashEnd, maxSize)
	}

	off := im.TLVOffset
	if h.ProtectTLVSize > 0 {
		if im.TLVs, off, err = readArea(r, off, TLVProtInfoMagic, int(h.ProtectTLVSize), maxSize, nil); err != nil {
			return nil, err
		}
	}
	if im.TLVs, im.End, err = readArea(r, off, TLVInfoMagic, -1, maxSize, im.TLVs); err != nil {
		return nil, err
	}

	if s, ok := r.(Summer); ok {
		if im.Digest, err = s.Sum256(0, hashEnd); err != nil {
			return nil, fmt.Errorf("%w: reading hashed range: %w", ErrBadTLV, err)
		}
		return im, nil
	}
	d := sha256.New()
	buf := make([]byte, hashChunk)
	for pos := int64(0); pos < hashEnd; {
		n := min(int64(len(buf)), hashEnd-pos)
		if err := readFull(r, buf[:n], pos); err != nil {
			return nil, fmt.Errorf("%w: reading hashed range at %d: %w", ErrBadTLV, pos, err)
		}
		d.Write(buf[:n])
		pos += n
	}
	d.Sum(im.Digest[:0])
	return im, nil
}

// A Summer is a ReaderAt that hashes a range of itself: a flash part that
// remembers the digests of images it has hashed. Parse asks it for the
// digest of the hashed range instead of reading the range.
type Summer interface {
	io.ReaderAt
	Sum256(off, n int64) ([sha256.Size]byte, error)
}

// readArea reads the TLV area whose info header (with magic) is at off,
// appends its TLVs to tlvs, each bounded by the area
// (bootutil_tlv_iter_next), and returns them with the area's end. wantTot,
// unless negative, is the size the header promised for the area; the area
// must end by maxEnd.
func readArea(r io.ReaderAt, off int64, magic uint16, wantTot int, maxEnd int64, tlvs []TLV) ([]TLV, int64, error) {
	protected := magic == TLVProtInfoMagic
	var info [tlvInfoSize]byte
	if err := readFull(r, info[:], off); err != nil {
		return nil, 0, fmt.Errorf("%w: reading TLV info at %d: %w", ErrBadTLV, off, err)
	}
	if got := binary.LittleEndian.Uint16(info[0:]); got != magic {
		return nil, 0, fmt.Errorf("%w: TLV info at %d has magic %#04x, want %#04x", ErrBadTLV, off, got, magic)
	}
	tot := int(binary.LittleEndian.Uint16(info[2:]))
	if tot < tlvInfoSize {
		return nil, 0, fmt.Errorf("%w: TLV info at %d has size %d, below its own %d bytes", ErrBadTLV, off, tot, tlvInfoSize)
	}
	if wantTot >= 0 && tot != wantTot {
		return nil, 0, fmt.Errorf("%w: protected TLV area at %d is %d bytes, ih_protect_tlv_size says %d",
			ErrBadTLV, off, tot, wantTot)
	}
	end := off + int64(tot)
	if end > maxEnd {
		return nil, 0, fmt.Errorf("%w: TLV area at %d ends at %d, max image size %d", ErrTooLarge, off, end, maxEnd)
	}
	raw := make([]byte, tot-tlvInfoSize)
	if err := readFull(r, raw, off+tlvInfoSize); err != nil {
		return nil, 0, fmt.Errorf("%w: reading %d-byte TLV area at %d: %w", ErrBadTLV, tot, off, err)
	}
	base := off + tlvInfoSize
	for p := 0; p < len(raw); {
		if len(raw)-p < tlvHeaderSize {
			return nil, 0, fmt.Errorf("%w: TLV header at %d runs past the area end %d", ErrBadTLV, base+int64(p), end)
		}
		typ := binary.LittleEndian.Uint16(raw[p:])
		n := int(binary.LittleEndian.Uint16(raw[p+2:]))
		vstart := p + tlvHeaderSize
		if n > len(raw)-vstart {
			return nil, 0, fmt.Errorf("%w: TLV %#x at %d has length %d, past the area end %d",
				ErrBadTLV, typ, base+int64(p), n, end)
		}
		tlvs = append(tlvs, TLV{
			Type:      typ,
			Protected: protected,
			Offset:    base + int64(vstart),
			Value:     raw[vstart : vstart+n : vstart+n],
		})
		p = vstart + n
	}
	return tlvs, end, nil
}

// readFull reads len(b) bytes at off; a short read is io.ErrUnexpectedEOF.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// SecurityCounter returns the image's security counter: the first SEC_CNT
// TLV of the protected area, which is the only place MCUboot honours it. ok
// is false when there is none (or it is not 4 bytes).
func (im *Image) SecurityCounter() (uint32, bool) {
	for _, t := range im.TLVs {
		if t.Protected && t.Type == TLVSecCnt {
			if len(t.Value) != 4 {
				return 0, false
			}
			return binary.LittleEndian.Uint32(t.Value), true
		}
	}
	return 0, false
}

// Dependencies returns the DEPENDENCY TLVs of the protected area in order.
// Like MCUboot, it ignores dependencies in the unprotected area and skips
// ones that are not 12 bytes.
func (im *Image) Dependencies() []Dependency {
	var deps []Dependency
	for _, t := range im.TLVs {
		if t.Protected && t.Type == TLVDependency && len(t.Value) == dependencySize {
			deps = append(deps, Dependency{ImageID: t.Value[0], MinVersion: versionFrom(t.Value[4:12])})
		}
	}
	return deps
}
