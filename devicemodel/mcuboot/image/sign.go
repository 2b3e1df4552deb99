package image

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SignOptions are the inputs of Sign, named after imgtool sign's flags.
type SignOptions struct {
	// Key signs the image; nil makes a hash-only image (SHA256 TLV only).
	// Any crypto.Signer works (a secure element, for instance) if its
	// public key is ECDSA P-256, Ed25519 or RSA-2048/3072.
	Key crypto.Signer
	// Rand feeds ECDSA and RSA-PSS signing; Sign never takes randomness
	// from anywhere else. Ed25519 signatures are deterministic and ignore it.
	Rand io.Reader

	// Version is written to the header (-v).
	Version Version
	// HeaderSize is ih_hdr_size (-H), at least HeaderSize.
	HeaderSize int
	// PadHeader prepends HeaderSize bytes of the erase value to the payload
	// (--pad-header); without it the payload's first HeaderSize bytes must be
	// zero and are overwritten by the header, as imgtool requires.
	PadHeader bool
	// SlotSize is the slot the image is built for (-S). When non-zero, the
	// image plus TrailerSize must fit in it; Pad needs it.
	SlotSize int

	// Align is the flash write size (--align: 1, 2, 4, 8, 16, 32; 0 means
	// 1). MaxAlign is BOOT_MAX_ALIGN (--max-align: 8, 16, 32; 0 means
	// max(8, Align)). MaxSectors (-M; 0 means 128) sizes the status area.
	Align, MaxAlign, MaxSectors int

	// Pad fills the slot with the erase value and writes the trailer magic
	// (--pad); Confirm implies Pad and also sets image_ok (--confirm), except
	// for overwrite-only trailers, where imgtool leaves image_ok erased.
	Pad, Confirm bool
	// OverwriteOnly uses the smaller overwrite-only trailer for the fit
	// check (--overwrite-only).
	OverwriteOnly bool
	// EraseValue fills --pad-header and --pad (-R); it must be 0x00 or 0xff
	// and is used only when EraseValueSet, otherwise 0xff.
	EraseValue    byte
	EraseValueSet bool

	// SecurityCounter, when set, adds a protected SEC_CNT TLV (-s).
	SecurityCounter *uint32
	// Dependencies add protected DEPENDENCY TLVs, in order (-d).
	Dependencies []Dependency
	// LoadAddr is ih_load_addr (-L). Non-zero sets FlagRAMLoad unless Flags
	// has FlagROMFixed, in which case it is the fixed ROM address.
	LoadAddr uint32
	// Flags are ORed into ih_flags.
	Flags uint32
}

// Sign builds a signed MCUboot image from payload exactly as imgtool sign
// does: header, protected TLVs (SEC_CNT, DEPENDENCY...), then SHA256,
// KEYHASH and the signature in the unprotected area, and with Pad or Confirm
// the slot padding and trailer. Ed25519 output is byte-identical to
// imgtool's for the same key and options.
//
// Errors: ErrTooLarge when the image and its trailer exceed SlotSize or a
// size field overflows; ErrUnsupportedKey for other keys; plain errors for
// invalid options (header size, alignments, erase value, a non-zero header
// region without PadHeader, Pad without SlotSize, no Rand for ECDSA/RSA).
func Sign(payload []byte, opts SignOptions) ([]byte, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var body []byte
	if o.PadHeader {
		body = make([]byte, o.HeaderSize, o.HeaderSize+len(payload)+1024)
		fill(body, o.EraseValue)
		body = append(body, payload...)
	} else {
		// The header overwrites the payload's first HeaderSize bytes, so
		// imgtool insists they hold nothing (zeros) unless told to pad.
		if len(payload) < o.HeaderSize {
			return nil, fmt.Errorf("payload of %d bytes is shorter than the %d-byte header region it must start with; pad the header instead (PadHeader, imgtool --pad-header)",
				len(payload), o.HeaderSize)
		}
		for i, c := range payload[:o.HeaderSize] {
			if c != 0 {
				return nil, fmt.Errorf("payload byte %d is %#02x, but the first %d bytes, which the header overwrites, must be zero; pad the header instead (PadHeader, imgtool --pad-header)",
					i, c, o.HeaderSize)
			}
		}
		body = append(make([]byte, 0, len(payload)+1024), payload...)
	}
	imgSize := len(body) - o.HeaderSize
	if uint64(imgSize) > 0xffffffff {
		return nil, fmt.Errorf("%w: payload of %d bytes does not fit ih_img_size", ErrTooLarge, imgSize)
	}

	prot := protectedTLVs(o)
	if len(prot) > 0xffff {
		return nil, fmt.Errorf("%w: protected TLV area of %d bytes does not fit ih_protect_tlv_size", ErrTooLarge, len(prot))
	}
	flags := o.Flags
	if o.LoadAddr != 0 && flags&FlagROMFixed == 0 {
		flags |= FlagRAMLoad
	}
	h := Header{
		Magic:          HeaderMagic,
		LoadAddr:       o.LoadAddr,
		HdrSize:        uint16(o.HeaderSize),
		ProtectTLVSize: uint16(len(prot)),
		ImgSize:        uint32(imgSize),
		Flags:          flags,
		Version:        o.Version,
	}
	hb := h.Bytes()
	copy(body, hb[:])
	body = append(body, prot...)
	digest := sha256.Sum256(body)

	var unprot tlvWriter
	unprot.add(TLVSHA256, digest[:])
	if o.Key != nil {
		kh, err := KeyHash(o.Key.Public())
		if err != nil {
			return nil, err
		}
		sigType, sig, err := signDigest(o.Key, o.Rand, digest[:])
		if err != nil {
			return nil, err
		}
		unprot.add(TLVKeyHash, kh[:])
		unprot.add(sigType, sig)
	}
	body = append(body, unprot.area(TLVInfoMagic)...)

	if o.SlotSize > 0 {
		ts := TrailerSize(o.Align, o.MaxAlign, o.MaxSectors, o.OverwriteOnly)
		if len(body)+ts > o.SlotSize {
			return nil, fmt.Errorf("%w: image size (%#x) + trailer (%#x) exceeds requested size %#x",
				ErrTooLarge, len(body), ts, o.SlotSize)
		}
	}
	if o.Pad {
		body = padToSlot(body, o)
	}
	return body, nil
}

// withDefaults validates opts and fills imgtool's defaults.
func (opts SignOptions) withDefaults() (SignOptions, error) {
	o := opts
	if o.HeaderSize < HeaderSize || o.HeaderSize > 0xffff {
		return o, fmt.Errorf("header size %d: want %d..65535", o.HeaderSize, HeaderSize)
	}
	if o.Align == 0 {
		o.Align = 1
	}
	if !oneOf(o.Align, 1, 2, 4, 8, 16, 32) {
		return o, fmt.Errorf("align %d: want 1, 2, 4, 8, 16 or 32", o.Align)
	}
	if o.MaxAlign == 0 {
		o.MaxAlign = max(DefaultMaxAlign, o.Align)
	}
	if !oneOf(o.MaxAlign, 8, 16, 32) {
		return o, fmt.Errorf("max-align %d: want 8, 16 or 32", o.MaxAlign)
	}
	if o.MaxSectors == 0 {
		o.MaxSectors = DefaultMaxSectors
	}
	if o.MaxSectors < 0 || o.MaxSectors > 1<<16 {
		return o, fmt.Errorf("max-sectors %d: want 1..65536", o.MaxSectors)
	}
	if o.SlotSize < 0 {
		return o, fmt.Errorf("slot size %d is negative", o.SlotSize)
	}
	if !o.EraseValueSet {
		o.EraseValue = 0xff
	}
	if o.EraseValue != 0 && o.EraseValue != 0xff {
		return o, fmt.Errorf("erase value %#02x: want 0x00 or 0xff", o.EraseValue)
	}
	if o.Confirm {
		o.Pad = true
	}
	if o.Pad && o.SlotSize == 0 {
		return o, errors.New("padding to the slot needs a slot size")
	}
	if len(o.Dependencies) > 0xffff/(tlvHeaderSize+dependencySize) {
		return o, fmt.Errorf("%w: %d dependencies do not fit the protected TLV area", ErrTooLarge, len(o.Dependencies))
	}
	if o.Key != nil {
		if err := checkPublicKey(o.Key.Public()); err != nil {
			return o, err
		}
		if _, ok := o.Key.Public().(ed25519.PublicKey); !ok && o.Rand == nil {
			return o, errors.New("ECDSA and RSA signing need SignOptions.Rand")
		}
	}
	return o, nil
}

// protectedTLVs returns the protected TLV area in imgtool's order (SEC_CNT,
// then DEPENDENCY), or nothing when there are none.
func protectedTLVs(o SignOptions) []byte {
	var w tlvWriter
	if o.SecurityCounter != nil {
		var v [4]byte
		binary.LittleEndian.PutUint32(v[:], *o.SecurityCounter)
		w.add(TLVSecCnt, v[:])
	}
	for _, d := range o.Dependencies {
		var v [dependencySize]byte
		v[0] = d.ImageID
		d.MinVersion.put(v[4:])
		w.add(TLVDependency, v[:])
	}
	if w.buf.Len() == 0 {
		return nil
	}
	return w.area(TLVProtInfoMagic)
}

// signDigest signs the image digest with key as MCUboot verifies it
// (reference §1.3) and returns the signature TLV type and value.
func signDigest(key crypto.Signer, rand io.Reader, digest []byte) (uint16, []byte, error) {
	switch pub := key.Public().(type) {
	case ed25519.PublicKey:
		// The digest itself is the Ed25519 message (no pre-hash).
		sig, err := key.Sign(rand, digest, crypto.Hash(0))
		return TLVEd25519, sig, err
	case *ecdsa.PublicKey:
		sig, err := key.Sign(rand, digest, crypto.SHA256)
		return TLVECDSASig, sig, err
	case *rsa.PublicKey:
		typ := TLVRSA2048PSS
		if pub.Size() == 384 {
			typ = TLVRSA3072PSS
		}
		sig, err := key.Sign(rand, digest, &rsa.PSSOptions{SaltLength: rsaSaltLen, Hash: crypto.SHA256})
		return typ, sig, err
	}
	return 0, nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key.Public())
}

// padToSlot fills the image to the slot size with the erase value and writes
// the trailer magic at E-16 and, for Confirm, image_ok at its cell.
func padToSlot(img []byte, o SignOptions) []byte {
	out := make([]byte, o.SlotSize)
	copy(out, img)
	fill(out[len(img):], o.EraseValue)
	magic, _ := MagicFor(o.MaxAlign) // MaxAlign was validated
	copy(out[o.SlotSize-bootMagicSize:], magic[:])
	if o.Confirm && !o.OverwriteOnly {
		out[o.SlotSize-ImageOKOffset(o.MaxAlign)] = 0x01
	}
	return out
}

// tlvWriter accumulates TLVs of one area.
type tlvWriter struct{ buf bytes.Buffer }

func (w *tlvWriter) add(typ uint16, value []byte) {
	var h [tlvHeaderSize]byte
	binary.LittleEndian.PutUint16(h[0:], typ)
	binary.LittleEndian.PutUint16(h[2:], uint16(len(value)))
	w.buf.Write(h[:])
	w.buf.Write(value)
}

// area returns the TLVs behind their info header, whose size counts itself.
func (w *tlvWriter) area(magic uint16) []byte {
	out := make([]byte, tlvInfoSize, tlvInfoSize+w.buf.Len())
	binary.LittleEndian.PutUint16(out[0:], magic)
	binary.LittleEndian.PutUint16(out[2:], uint16(tlvInfoSize+w.buf.Len()))
	return append(out, w.buf.Bytes()...)
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

func oneOf(v int, set ...int) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}
