package image

import (
	"encoding/binary"
	"fmt"
)

// HeaderMagic is ih_magic of every image MCUboot accepts (reference §1.1).
const HeaderMagic uint32 = 0x96f3b83d

// HeaderSize is the size of the fixed image header. imgtool's -H may reserve
// more (ih_hdr_size); the payload starts at ih_hdr_size.
const HeaderSize = 32

// Header flags (ih_flags, reference §1.1).
const (
	FlagPIC             uint32 = 0x1 // position independent; MCUboot refuses it
	FlagEncryptedAES128 uint32 = 0x4
	FlagEncryptedAES256 uint32 = 0x8
	FlagNonBootable     uint32 = 0x10 // never boot this image
	FlagRAMLoad         uint32 = 0x20 // copy to ih_load_addr in RAM and run there
	FlagROMFixed        uint32 = 0x100
	FlagCompressedLZMA1 uint32 = 0x200
	FlagCompressedLZMA2 uint32 = 0x400
	FlagCompressedARM   uint32 = 0x800
)

// TLV types (reference §1.2).
const (
	TLVKeyHash       uint16 = 0x01
	TLVPubKey        uint16 = 0x02
	TLVSHA256        uint16 = 0x10
	TLVSHA384        uint16 = 0x11
	TLVSHA512        uint16 = 0x12
	TLVRSA2048PSS    uint16 = 0x20
	TLVECDSASig      uint16 = 0x22
	TLVRSA3072PSS    uint16 = 0x23
	TLVEd25519       uint16 = 0x24
	TLVSigPure       uint16 = 0x25
	TLVEncRSA2048    uint16 = 0x30
	TLVEncKW         uint16 = 0x31
	TLVEncEC256      uint16 = 0x32
	TLVEncX25519     uint16 = 0x33
	TLVDependency    uint16 = 0x40
	TLVSecCnt        uint16 = 0x50
	TLVBootRecord    uint16 = 0x60
	TLVInfoMagic     uint16 = 0x6907 // unprotected TLV area info header
	TLVProtInfoMagic uint16 = 0x6908 // protected TLV area info header
)

// tlvInfoSize is the size of a TLV area's info header {magic, tot}.
const tlvInfoSize = 4

// tlvHeaderSize is the size of one TLV's {type, len}.
const tlvHeaderSize = 4

// dependencySize is the value length of a DEPENDENCY TLV: image id, three
// pad bytes and the minimum version.
const dependencySize = 12

// TLVName returns MCUboot's name for a TLV type ("SHA256", "KEYHASH",
// "ECDSA_SIG", ...), or "" for a type this package does not name.
func TLVName(t uint16) string {
	switch t {
	case TLVKeyHash:
		return "KEYHASH"
	case TLVPubKey:
		return "PUBKEY"
	case TLVSHA256:
		return "SHA256"
	case TLVSHA384:
		return "SHA384"
	case TLVSHA512:
		return "SHA512"
	case TLVRSA2048PSS:
		return "RSA2048_PSS"
	case TLVECDSASig:
		return "ECDSA_SIG"
	case TLVRSA3072PSS:
		return "RSA3072_PSS"
	case TLVEd25519:
		return "ED25519"
	case TLVSigPure:
		return "SIG_PURE"
	case TLVEncRSA2048:
		return "ENC_RSA2048"
	case TLVEncKW:
		return "ENC_KW"
	case TLVEncEC256:
		return "ENC_EC256"
	case TLVEncX25519:
		return "ENC_X25519"
	case TLVDependency:
		return "DEPENDENCY"
	case TLVSecCnt:
		return "SEC_CNT"
	case TLVBootRecord:
		return "BOOT_RECORD"
	}
	return ""
}

// Header is the 32-byte MCUboot image header (struct image_header). The
// trailing pad word is always written as zero and ignored when read, as
// MCUboot does.
type Header struct {
	Magic          uint32
	LoadAddr       uint32
	HdrSize        uint16
	ProtectTLVSize uint16
	ImgSize        uint32
	Flags          uint32
	Version        Version
}

// ParseHeader decodes the header at the start of b.
//
// It returns ErrNoImage when the magic bytes are all 0xff or all 0x00 (an
// erased slot on either kind of flash), and ErrBadHeader when b is shorter
// than HeaderSize, the magic is anything else, or ih_hdr_size is below
// HeaderSize (the payload would overlap the header).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, need %d", ErrBadHeader, len(b), HeaderSize)
	}
	le := binary.LittleEndian
	h := Header{
		Magic:          le.Uint32(b[0:]),
		LoadAddr:       le.Uint32(b[4:]),
		HdrSize:        le.Uint16(b[8:]),
		ProtectTLVSize: le.Uint16(b[10:]),
		ImgSize:        le.Uint32(b[12:]),
		Flags:          le.Uint32(b[16:]),
		Version: Version{
			Major:    b[20],
			Minor:    b[21],
			Revision: le.Uint16(b[22:]),
			Build:    le.Uint32(b[24:]),
		},
	}
	if h.Magic != HeaderMagic {
		if h.Magic == 0xffffffff || h.Magic == 0 {
			return h, fmt.Errorf("%w: ih_magic is %#08x", ErrNoImage, h.Magic)
		}
		return h, fmt.Errorf("%w: ih_magic is %#08x, want %#08x", ErrBadHeader, h.Magic, HeaderMagic)
	}
	if h.HdrSize < HeaderSize {
		return h, fmt.Errorf("%w: ih_hdr_size %d is below %d", ErrBadHeader, h.HdrSize, HeaderSize)
	}
	return h, nil
}

// Bytes encodes the header as it sits in flash.
func (h Header) Bytes() [HeaderSize]byte {
	var b [HeaderSize]byte
	le := binary.LittleEndian
	le.PutUint32(b[0:], h.Magic)
	le.PutUint32(b[4:], h.LoadAddr)
	le.PutUint16(b[8:], h.HdrSize)
	le.PutUint16(b[10:], h.ProtectTLVSize)
	le.PutUint32(b[12:], h.ImgSize)
	le.PutUint32(b[16:], h.Flags)
	h.Version.put(b[20:28])
	return b
}
