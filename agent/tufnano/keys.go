package tufnano

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
)

// KeyTypes is a set of signature schemes compiled into the device: a key of
// any other type can never count towards a threshold.
type KeyTypes uint8

// The signature schemes of the TUF specification that fleetsim devices know.
const (
	// KeyEd25519 is keytype "ed25519" (Foundries: "ED25519"), scheme
	// "ed25519", a 64-hex-digit public key.
	KeyEd25519 KeyTypes = 1 << iota
	// KeyECDSAP256 is keytype "ecdsa" (or "ecdsa-sha2-nistp256"), scheme
	// "ecdsa-sha2-nistp256", a PEM public key and DER signatures.
	KeyECDSAP256
	// KeyRSAPSS is keytype "rsa" (Foundries: "RSA"), scheme
	// "rsassa-pss-sha256", a PEM public key with a modulus of at most
	// 4096 bits.
	KeyRSAPSS

	// AllKeyTypes is every scheme above.
	AllKeyTypes = KeyEd25519 | KeyECDSAP256 | KeyRSAPSS
)

// key is one public key of a root or of a delegation.
type key struct {
	id     []byte
	scheme KeyTypes // 0: unusable (unknown, not compiled in, or malformed)
	ed     ed25519.PublicKey
	pub    crypto.PublicKey // *ecdsa.PublicKey or *rsa.PublicKey
	// ident is the key material itself: two key ids naming the same key
	// count once towards a threshold.
	ident []byte
}

// parseKeys reads a "keys" object (key id -> key). Keys of unknown or
// disabled types, or with malformed key values, are kept but unusable, as
// they may serve roles the device never verifies. Errors: KindMalformed.
func parseKeys(b []byte, v jval, enabled KeyTypes, role string) ([]key, error) {
	if v.kind != jObject {
		return nil, errf(KindMalformed, role, "keys is not an object")
	}
	keys := make([]key, 0, v.count(b))
	it := v.iter(b)
	for {
		id, kv, ok := it.next()
		if !ok {
			break
		}
		k, err := parseKey(b, kv, enabled, role)
		if err != nil {
			return nil, err
		}
		k.id = str(b, id)
		for i := range keys {
			if bytes.Equal(keys[i].id, k.id) {
				return nil, errf(KindDuplicate, role, "key id %.16s listed twice", k.id)
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parseKey(b []byte, v jval, enabled KeyTypes, role string) (key, error) {
	if v.kind != jObject {
		return key{}, errf(KindMalformed, role, "key is not an object")
	}
	var keytype, scheme, keyval jval
	members(b, v, []string{"keytype", "scheme", "keyval"}, &keytype, &scheme, &keyval)
	if keytype.kind != jString || keyval.kind != jObject {
		return key{}, errf(KindMalformed, role, "key without keytype or keyval")
	}
	// Foundries' root spells the types in capitals and leaves the scheme
	// out; the scheme is then the only one the type has.
	var want KeyTypes
	foundries := false
	switch {
	case strIs(b, keytype, "ed25519"):
		want = KeyEd25519
	case strIs(b, keytype, "ED25519"):
		want, foundries = KeyEd25519, true
	case strIs(b, keytype, "ecdsa"), strIs(b, keytype, "ecdsa-sha2-nistp256"):
		want = KeyECDSAP256
	case strIs(b, keytype, "rsa"):
		want = KeyRSAPSS
	case strIs(b, keytype, "RSA"):
		want, foundries = KeyRSAPSS, true
	}
	if scheme.kind == jInvalid && !foundries {
		return key{}, errf(KindMalformed, role, "key without scheme")
	}
	if scheme.kind != jInvalid && scheme.kind != jString {
		return key{}, errf(KindMalformed, role, "key scheme is not a string")
	}
	if scheme.kind == jString && want != 0 && !strIs(b, scheme, schemeName(want)) {
		want = 0 // a scheme this key type may have, but not one the device has
	}
	if want&enabled == 0 {
		return key{}, nil
	}
	pubv, ok := member(b, keyval, "public")
	if !ok || pubv.kind != jString {
		return key{}, nil
	}
	pub := str(b, pubv)
	k := key{scheme: want}
	switch want {
	case KeyEd25519:
		if len(pub) != 2*ed25519.PublicKeySize {
			return key{}, nil
		}
		k.ed = make(ed25519.PublicKey, ed25519.PublicKeySize)
		if !decodeHex(k.ed, pub) {
			return key{}, nil
		}
		k.ident = k.ed
	default:
		blk, _ := pem.Decode(pub)
		if blk == nil {
			return key{}, nil
		}
		p, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return key{}, nil
		}
		switch p := p.(type) {
		case *ecdsa.PublicKey:
			if want != KeyECDSAP256 || p.Curve != elliptic.P256() {
				return key{}, nil
			}
		case *rsa.PublicKey:
			// A modulus over 8*maxSigBytes bits signs with more bytes
			// than the device decodes: a key it cannot use.
			if want != KeyRSAPSS || p.N.BitLen() > 8*maxSigBytes {
				return key{}, nil
			}
		default:
			return key{}, nil
		}
		k.pub, k.ident = p, blk.Bytes
	}
	return k, nil
}

func schemeName(t KeyTypes) string {
	switch t {
	case KeyEd25519:
		return "ed25519"
	case KeyECDSAP256:
		return "ecdsa-sha2-nistp256"
	case KeyRSAPSS:
		return "rsassa-pss-sha256"
	}
	return ""
}

func decodeHex(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		h, l := hexVal(src[2*i]), hexVal(src[2*i+1])
		if h < 0 || l < 0 {
			return false
		}
		dst[i] = byte(h<<4 | l)
	}
	return true
}

// maxSigBytes is the largest signature the device decodes (RSA-4096).
const maxSigBytes = 512

// Foundries' signatures are padded base64. base64's Decode may write up to
// DecodedLen of its input, which counts the padding as data: for the 684
// characters of a 512-byte signature that is 513 bytes. The decode buffer
// is sized for the longest accepted encoding, not for the signature.
const (
	maxSigBase64 = (maxSigBytes + 2) / 3 * 4 // base64.StdEncoding.EncodedLen(maxSigBytes)
	sigBufSize   = maxSigBase64 / 4 * 3      // base64.StdEncoding.DecodedLen(maxSigBase64)
)

// decodeSignature decodes a signature string's raw text into buf: base64
// for Foundries' metadata, hex for TUF's. It refuses encodings that are
// malformed or longer than maxSigBytes.
func decodeSignature(buf *[sigBufSize]byte, raw []byte, foundries bool) ([]byte, bool) {
	if foundries {
		if len(raw) > maxSigBase64 {
			return nil, false
		}
		n, err := base64.StdEncoding.Decode(buf[:], raw)
		if err != nil || n > maxSigBytes {
			return nil, false
		}
		return buf[:n], true
	}
	if len(raw)%2 != 0 || len(raw)/2 > maxSigBytes {
		return nil, false
	}
	sig := buf[:len(raw)/2]
	return sig, decodeHex(sig, raw)
}

// verify checks one signature over msg. TUF signatures are hex; Foundries'
// are base64 and name their method, which must be the key's scheme.
func (k *key) verify(b []byte, s *signature, foundries bool, msg []byte, memo *Memo) bool {
	if s.method.kind != jInvalid && !strIs(b, s.method, schemeName(k.scheme)) {
		return false
	}
	if s.sig.esc {
		return false
	}
	var buf [sigBufSize]byte
	sig, ok := decodeSignature(&buf, b[s.sig.start+1:s.sig.end-1], foundries)
	if !ok {
		return false
	}
	return memo.Verify(k.ident, sig, msg, func() bool { return k.check(sig, msg) })
}

// check verifies sig over msg with the key.
func (k *key) check(sig, msg []byte) bool {
	switch k.scheme {
	case KeyEd25519:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, msg, sig)
	case KeyECDSAP256, KeyRSAPSS:
		// A slice passed to crypto/ecdsa or crypto/rsa escapes, and would
		// move buf to the heap for every signature; they get a copy, so
		// that ed25519 (the hot path) verifies without allocating. Their
		// own verification allocates far more than the copy.
		return k.verifyHeap(bytes.Clone(sig), msg)
	}
	return false
}

func (k *key) verifyHeap(sig, msg []byte) bool {
	d := sha256.Sum256(msg)
	if k.scheme == KeyECDSAP256 {
		return ecdsa.VerifyASN1(k.pub.(*ecdsa.PublicKey), d[:], sig)
	}
	return rsa.VerifyPSS(k.pub.(*rsa.PublicKey), crypto.SHA256, d[:], sig,
		&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
}

// threshold is a role's authorised key ids and how many must sign.
type threshold struct {
	keyids    [][]byte
	threshold int
}

// verifyThreshold checks that at least t.threshold distinct authorised keys
// (distinct key material, not just distinct ids) signed msg, the canonical
// form of env's signed part. Errors when the threshold is not met:
// KindBadSignature if an authorised signature failed, else
// KindUnsupportedKey if authorised keys of a type the device does not have
// signed, else KindThreshold.
func verifyThreshold(keys []key, t threshold, env *envelope, msg []byte, role string, memo *Memo) error {
	var countedBuf [8]*key
	counted := countedBuf[:0]
	bad, unusable := 0, 0
	for _, id := range t.keyids {
		k := findKey(keys, id)
		if k == nil {
			continue
		}
		s := env.signatureBy(id)
		if s == nil {
			continue
		}
		if k.scheme == 0 {
			unusable++
			continue
		}
		dup := false
		for _, c := range counted {
			dup = dup || bytes.Equal(c.ident, k.ident)
		}
		if dup {
			continue
		}
		if !k.verify(env.raw, s, env.foundries, msg, memo) {
			bad++
			continue
		}
		counted = append(counted, k)
		if len(counted) >= t.threshold {
			return nil
		}
	}
	kind := KindThreshold
	switch {
	case bad > 0:
		kind = KindBadSignature
	case unusable > 0:
		kind = KindUnsupportedKey
	}
	return errf(kind, role, "%d of %d required signatures verified (%d failed, %d by keys the device cannot use)",
		len(counted), t.threshold, bad, unusable)
}

func findKey(keys []key, id []byte) *key {
	for i := range keys {
		if bytes.Equal(keys[i].id, id) {
			return &keys[i]
		}
	}
	return nil
}
