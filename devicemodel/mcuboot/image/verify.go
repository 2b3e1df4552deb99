package image

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/fleetsim/fleetsim/internal/sigmemo"
)

// maxECDSASigLen is the longest P-256 DER signature (72 bytes, also the
// length imgtool --pad-sig pads to).
const maxECDSASigLen = 72

// rsaSaltLen is the PSS salt length MCUboot requires (reference §1.3).
const rsaSaltLen = 32

// Verify checks the image as bootutil_img_validate does, walking the TLVs
// in order:
//   - every SHA256 TLV must be 32 bytes and equal Digest; there must be at
//     least one (ErrNoHash, ErrHashMismatch);
//   - a KEYHASH selects the key among keys whose KeyHash it equals; an
//     unknown hash selects none, and the next signature is then skipped;
//   - a signature TLV is checked against the selected key, which is then
//     deselected.
//
// With keys, at least one signature must verify: ErrNoSignature when no
// signature was checked against a given key, ErrBadSignature when the ones
// checked failed. With no keys only the hash counts. Malformed hash, key hash
// or signature TLVs are ErrBadTLV. Unlike MCUboot, which compares a short
// KEYHASH as a prefix, a KEYHASH must be exactly 32 bytes.
func (im *Image) Verify(keys []crypto.PublicKey) error { return im.VerifyWith(keys, nil) }

// VerifyWith is Verify remembering, in memo, the signatures that verified:
// a fleet checking one image pays for one verification. A nil memo
// remembers nothing.
func (im *Image) VerifyWith(keys []crypto.PublicKey, memo *sigmemo.Memo) error {
	hashes := make([][32]byte, len(keys))
	for i, k := range keys {
		h, err := KeyHash(k)
		if err != nil {
			return fmt.Errorf("verification key %d: %w", i, err)
		}
		hashes[i] = h
	}
	hashSeen := false
	selected := -1
	checked, valid := 0, 0
	var lastSigErr error
	for _, t := range im.TLVs {
		switch t.Type {
		case TLVSHA256:
			if len(t.Value) != sha256.Size {
				return fmt.Errorf("%w: SHA256 TLV at %d is %d bytes, want %d", ErrBadTLV, t.Offset, len(t.Value), sha256.Size)
			}
			if !bytes.Equal(t.Value, im.Digest[:]) {
				return fmt.Errorf("%w: SHA256 TLV at %d is %x, image digest is %x", ErrHashMismatch, t.Offset, t.Value, im.Digest)
			}
			hashSeen = true
		case TLVKeyHash:
			if len(t.Value) != sha256.Size {
				return fmt.Errorf("%w: KEYHASH TLV at %d is %d bytes, want %d", ErrBadTLV, t.Offset, len(t.Value), sha256.Size)
			}
			selected = -1
			for i, h := range hashes {
				if bytes.Equal(t.Value, h[:]) {
					selected = i
					break
				}
			}
		case TLVECDSASig, TLVEd25519, TLVRSA2048PSS, TLVRSA3072PSS:
			if selected < 0 {
				continue
			}
			key := keys[selected]
			// The memo's key names the signature's kind too: the same bytes
			// under another kind of TLV are another check.
			memoKey := append(hashes[selected][:], byte(t.Type), byte(t.Type>>8))
			selected = -1
			checked++
			var err error
			if !memo.Verify(memoKey, t.Value, im.Digest[:], func() bool {
				err = verifySignature(t, key, im.Digest[:])
				return err == nil
			}) {
				if errors.Is(err, ErrBadTLV) {
					return err
				}
				lastSigErr = err
				continue
			}
			valid++
		}
	}
	if !hashSeen {
		return fmt.Errorf("%w: image has no SHA256 TLV", ErrNoHash)
	}
	if len(keys) == 0 || valid > 0 {
		return nil
	}
	if checked == 0 {
		return fmt.Errorf("%w: no KEYHASH TLV names one of the %d given key(s) before a signature", ErrNoSignature, len(keys))
	}
	return lastSigErr
}

// verifySignature checks one signature TLV over digest with key.
func verifySignature(t TLV, key crypto.PublicKey, digest []byte) error {
	switch t.Type {
	case TLVEd25519:
		if len(t.Value) != ed25519.SignatureSize {
			return fmt.Errorf("%w: ED25519 TLV at %d is %d bytes, want %d", ErrBadTLV, t.Offset, len(t.Value), ed25519.SignatureSize)
		}
		k, ok := key.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("%w: ED25519 TLV at %d, but KEYHASH selected a %s key", ErrBadSignature, t.Offset, keyKind(key))
		}
		// MCUboot signs the 32-byte digest as the Ed25519 message.
		if !ed25519.Verify(k, digest, t.Value) {
			return fmt.Errorf("%w: ED25519 signature at %d does not verify", ErrBadSignature, t.Offset)
		}
	case TLVECDSASig:
		if len(t.Value) == 0 || len(t.Value) > maxECDSASigLen {
			return fmt.Errorf("%w: ECDSA_SIG TLV at %d is %d bytes, want 1..%d", ErrBadTLV, t.Offset, len(t.Value), maxECDSASigLen)
		}
		k, ok := key.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: ECDSA_SIG TLV at %d, but KEYHASH selected a %s key", ErrBadSignature, t.Offset, keyKind(key))
		}
		r, s, ok := parseECDSASig(t.Value)
		if !ok {
			return fmt.Errorf("%w: ECDSA_SIG at %d is not a DER SEQUENCE{r, s}", ErrBadSignature, t.Offset)
		}
		if !ecdsa.Verify(k, digest, r, s) {
			return fmt.Errorf("%w: ECDSA_SIG at %d does not verify", ErrBadSignature, t.Offset)
		}
	case TLVRSA2048PSS, TLVRSA3072PSS:
		want := 256
		if t.Type == TLVRSA3072PSS {
			want = 384
		}
		if len(t.Value) != want {
			return fmt.Errorf("%w: %s TLV at %d is %d bytes, want %d", ErrBadTLV, TLVName(t.Type), t.Offset, len(t.Value), want)
		}
		k, ok := key.(*rsa.PublicKey)
		if !ok || k.Size() != want {
			return fmt.Errorf("%w: %s TLV at %d, but KEYHASH selected a %s key", ErrBadSignature, TLVName(t.Type), t.Offset, keyKind(key))
		}
		opts := &rsa.PSSOptions{SaltLength: rsaSaltLen, Hash: crypto.SHA256}
		if err := rsa.VerifyPSS(k, crypto.SHA256, digest, t.Value, opts); err != nil {
			return fmt.Errorf("%w: %s signature at %d does not verify", ErrBadSignature, TLVName(t.Type), t.Offset)
		}
	}
	return nil
}

// parseECDSASig decodes DER SEQUENCE{INTEGER r, INTEGER s}. Trailing zero
// bytes are allowed because imgtool --pad-sig pads signatures to 72 bytes.
func parseECDSASig(b []byte) (r, s *big.Int, ok bool) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(b, &sig)
	if err != nil {
		return nil, nil, false
	}
	for _, c := range rest {
		if c != 0 {
			return nil, nil, false
		}
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 {
		return nil, nil, false
	}
	return sig.R, sig.S, true
}

// keyKind names a key's algorithm for error messages.
func keyKind(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", k)
}
