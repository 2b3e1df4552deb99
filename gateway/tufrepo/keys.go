package tufrepo

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// KeyType is a signing algorithm the repository can use for a role.
type KeyType string

// The key types of TUF that devices verify. libtufnano, and so Foundries'
// MCUs, verify only Ed25519 and RSA-PSS; ECDSA P-256 is for other clients.
const (
	// KeyEd25519 is TUF keytype "ed25519": deterministic signatures, 32-byte
	// public keys written as hex, the smallest metadata. The default.
	KeyEd25519 KeyType = "ed25519"
	// KeyECDSAP256 is TUF keytype "ecdsa", scheme "ecdsa-sha2-nistp256".
	// Signatures are deterministic (RFC 6979).
	KeyECDSAP256 KeyType = "ecdsa-p256"
	// KeyRSAPSS is TUF keytype "rsa", scheme "rsassa-pss-sha256", with a
	// 2048-bit modulus as in Foundries' older roots. PSS salts come from the
	// repository's random source.
	KeyRSAPSS KeyType = "rsa-pss"
)

// keyTypeOf names the type of a public key record in root.json. Every key
// the repository signs with has one of the three types; a record it did not
// write is named by its TUF keytype and scheme.
func keyTypeOf(k *metadata.Key) KeyType {
	if k == nil {
		return ""
	}
	switch {
	case k.Type == metadata.KeyTypeEd25519 && k.Scheme == metadata.KeySchemeEd25519:
		return KeyEd25519
	case k.Type == metadata.KeyTypeECDSA_SHA2_P256 && k.Scheme == metadata.KeySchemeECDSA_SHA2_P256:
		return KeyECDSAP256
	case k.Type == metadata.KeyTypeRSASSA_PSS_SHA256 && k.Scheme == metadata.KeySchemeRSASSA_PSS_SHA256:
		return KeyRSAPSS
	}
	return KeyType(k.Type + "/" + k.Scheme)
}

// rsaBits is the modulus of generated RSA keys: 2048 like Foundries' first
// roots; bigger keys only make root.json and every signature longer, which
// costs MCU buffer space.
const rsaBits = 2048

// PrivateKey is a role signing key: the private half, kept in a key file or
// given from outside (an offline root key), and its TUF public key record.
type PrivateKey struct {
	typ    KeyType
	signer crypto.Signer
	public *metadata.Key
	id     string
}

// GenerateKey makes a new key of type t. Ed25519 and ECDSA keys are derived
// from bytes read from random, so a seeded reader gives the same key every
// time. RSA keys come from crypto/rsa, which since Go 1.26 ignores the reader
// and uses the system's randomness: RSA keys are never reproducible.
//
// Errors: ErrBadKey for an unknown type or a failing reader.
func GenerateKey(t KeyType, random io.Reader) (*PrivateKey, error) {
	switch t {
	case KeyEd25519:
		seed := make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(random, seed); err != nil {
			return nil, badKey("reading ed25519 seed: %v", err)
		}
		return newPrivateKey(ed25519.NewKeyFromSeed(seed))
	case KeyECDSAP256:
		// Rejection sampling: a candidate scalar of zero or at least the
		// group order is refused by ParseRawPrivateKey; try again.
		buf := make([]byte, 32)
		for range 64 {
			if _, err := io.ReadFull(random, buf); err != nil {
				return nil, badKey("reading ecdsa scalar: %v", err)
			}
			if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), buf); err == nil {
				return newPrivateKey(k)
			}
		}
		return nil, badKey("random source gave no valid P-256 scalar in 64 tries")
	case KeyRSAPSS:
		k, err := rsa.GenerateKey(random, rsaBits)
		if err != nil {
			return nil, badKey("generating rsa key: %v", err)
		}
		return newPrivateKey(k)
	}
	return nil, badKey("unknown key type %q", t)
}

func newPrivateKey(s crypto.Signer) (*PrivateKey, error) {
	var t KeyType
	switch k := s.(type) {
	case ed25519.PrivateKey:
		t = KeyEd25519
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, badKey("ecdsa curve %s: only P-256 is supported", k.Curve.Params().Name)
		}
		t = KeyECDSAP256
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, badKey("rsa modulus of %d bits: at least 2048 needed", k.N.BitLen())
		}
		t = KeyRSAPSS
	default:
		return nil, badKey("unsupported private key type %T", s)
	}
	pub, err := metadata.KeyFromPublicKey(s.Public())
	if err != nil {
		return nil, badKey("%v", err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, badKey("%v", err)
	}
	return &PrivateKey{typ: t, signer: s, public: pub, id: id}, nil
}

// ParsePrivateKey reads a key file: a PEM "PRIVATE KEY" block holding PKCS #8
// DER of an Ed25519, ECDSA P-256 or RSA (at least 2048-bit) key, as written by
// MarshalPEM and by openssl genpkey.
//
// Errors: ErrBadKey for anything else.
func ParsePrivateKey(data []byte) (*PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, badKey("no PEM block")
	}
	if block.Type != "PRIVATE KEY" {
		return nil, badKey("PEM block %q: want PRIVATE KEY (PKCS #8)", block.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, badKey("%v", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, badKey("unsupported private key type %T", k)
	}
	return newPrivateKey(s)
}

// MarshalPEM encodes the private key as a PKCS #8 PEM block, the key file
// format of the data directory.
func (k *PrivateKey) MarshalPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		// Every key newPrivateKey accepts is PKCS #8 encodable.
		panic(fmt.Sprintf("tufrepo: marshalling %s key: %v", k.typ, err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// ID is the TUF key ID: the SHA-256 of the canonical public key record.
func (k *PrivateKey) ID() string { return k.id }

// Type is the key's algorithm.
func (k *PrivateKey) Type() KeyType { return k.typ }

// Public returns a copy of the TUF public key record as it appears in root.json.
func (k *PrivateKey) Public() *metadata.Key {
	c := *k.public
	return &c
}

// PublicKey is the crypto public key.
func (k *PrivateKey) PublicKey() crypto.PublicKey { return k.signer.Public() }

// sign signs payload with the scheme TUF names for the key type. random is
// used only by RSA-PSS, for its salt.
func (k *PrivateKey) sign(payload []byte, random io.Reader) ([]byte, error) {
	switch s := k.signer.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(s, payload), nil
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(payload)
		// A nil reader asks crypto/ecdsa for a deterministic RFC 6979
		// signature, so ECDSA metadata is reproducible like Ed25519's.
		return s.Sign(nil, h[:], crypto.SHA256)
	case *rsa.PrivateKey:
		if random == nil {
			return nil, badConfig("an RSA-PSS key needs Config.Random for its salt")
		}
		h := sha256.Sum256(payload)
		// Salt length equal to the hash, as python-tuf and go-tuf signers
		// use; verifiers (go-tuf, mbedTLS) accept any salt length.
		return rsa.SignPSS(random, s, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return nil, badKey("unsupported key %T", k.signer)
}
