package image

import "errors"

// Sentinel errors returned (wrapped with the offending field or offset) by
// the parsers, the verifier and the key functions. Test for them with
// errors.Is.
var (
	// ErrNoImage means the header's magic bytes are all erased (0xff or
	// 0x00): the slot holds no image, which MCUboot treats differently from
	// a corrupt one.
	ErrNoImage = errors.New("no image (header magic erased)")
	// ErrBadHeader means the header is present but malformed: a wrong
	// magic, a header size below 32, or a short read.
	ErrBadHeader = errors.New("bad image header")
	// ErrBadTLV means the TLV areas break MCUboot's rules: a wrong info
	// magic, a protected size that disagrees with the header, a TLV running
	// past its area, or a known TLV with the wrong length.
	ErrBadTLV = errors.New("bad TLV area")
	// ErrTooLarge means the image (header, payload and TLVs) does not fit
	// in the size it was allowed (a slot or a file).
	ErrTooLarge = errors.New("image too large")
	// ErrNoHash means the image carries no SHA256 TLV, which MCUboot
	// requires.
	ErrNoHash = errors.New("no SHA256 TLV")
	// ErrHashMismatch means the SHA256 TLV differs from the digest of the
	// hashed range.
	ErrHashMismatch = errors.New("image hash mismatch")
	// ErrNoSignature means keys were given but no signature TLV was
	// checked against one of them (no signature, or no KEYHASH naming a
	// given key).
	ErrNoSignature = errors.New("no signature made by a known key")
	// ErrBadSignature means a signature was checked against the key its
	// KEYHASH selected and did not verify (and no other one did).
	ErrBadSignature = errors.New("bad signature")

	// ErrUnsupportedKey means a key MCUboot images cannot be signed or
	// checked with here: ECDSA on curves other than P-256, RSA sizes other
	// than 2048 and 3072 bits, and other key types.
	ErrUnsupportedKey = errors.New("unsupported key")
	// ErrBadKey means PEM input that is not a readable key.
	ErrBadKey = errors.New("malformed key")
)
