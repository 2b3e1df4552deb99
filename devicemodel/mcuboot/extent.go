package mcuboot

import (
	"encoding/binary"
	"fmt"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// Extent is where an image lies in a slot, read from its header and TLV info
// headers without hashing it (boot_read_image_size): what a strategy needs to
// size a swap.
type Extent struct {
	// Present is false when the slot holds no image header that parses, or
	// its TLV info headers are corrupt; the other fields are then zero.
	Present bool
	Header  image.Header
	// TLVOffset is where the TLV areas start (ih_hdr_size + ih_img_size).
	TLVOffset int64
	// UnprotectedTLVSize is the unprotected TLV area's size, info header
	// included.
	UnprotectedTLVSize int64
	// End is the image's total size.
	End int64
}

// ReadExtent reads the extent of the image at off in a. A missing or corrupt
// image is an Extent with Present false; errors are flash errors.
func ReadExtent(a *flashsim.Area, off int64) (Extent, error) {
	var hb [image.HeaderSize]byte
	if err := readAt(a, hb[:], off); err != nil {
		return Extent{}, err
	}
	h, err := image.ParseHeader(hb[:])
	if err != nil {
		return Extent{}, nil
	}
	tlv := int64(h.HdrSize) + int64(h.ImgSize)
	info := tlv + int64(h.ProtectTLVSize)
	if off+info+4 > a.Size() {
		return Extent{}, nil
	}
	var ib [4]byte
	if err := readAt(a, ib[:], off+info); err != nil {
		return Extent{}, err
	}
	if binary.LittleEndian.Uint16(ib[:2]) != image.TLVInfoMagic {
		return Extent{}, nil
	}
	un := int64(binary.LittleEndian.Uint16(ib[2:]))
	return Extent{Present: true, Header: h, TLVOffset: tlv, UnprotectedTLVSize: un, End: info + un}, nil
}

func (e Extent) String() string {
	if !e.Present {
		return "no image"
	}
	return fmt.Sprintf("image %s, %#x bytes", e.Header.Version, e.End)
}
