package image

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// Key kinds accepted by GenerateKey, named as imgtool keygen -t names them.
const (
	KeyECDSAP256 = "ecdsa-p256"
	KeyEd25519   = "ed25519"
	KeyRSA2048   = "rsa-2048"
)

// PublicKeyBytes returns the encoding of pub that MCUboot compiles into the
// bootloader and imgtool getpub -e raw prints: DER SubjectPublicKeyInfo for
// ECDSA and Ed25519 (91 and 44 bytes), DER PKCS#1 RSAPublicKey for RSA.
// It returns ErrUnsupportedKey for other keys.
func PublicKeyBytes(pub crypto.PublicKey) ([]byte, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	if k, ok := pub.(*rsa.PublicKey); ok {
		return x509.MarshalPKCS1PublicKey(k), nil
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return der, nil
}

// KeyHash returns the KEYHASH TLV value for pub: SHA-256 of PublicKeyBytes,
// which MCUboot compares with the hash of each built-in key.
func KeyHash(pub crypto.PublicKey) ([32]byte, error) {
	b, err := PublicKeyBytes(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// checkPublicKey accepts the key types MCUboot signs with.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == nil {
			return fmt.Errorf("%w: ECDSA key without a curve", ErrUnsupportedKey)
		}
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ECDSA curve %s (only P-256)", ErrUnsupportedKey, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 key of %d bytes", ErrUnsupportedKey, len(k))
		}
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n != 2048 && n != 3072 {
			return fmt.Errorf("%w: RSA-%d (only 2048 and 3072)", ErrUnsupportedKey, n)
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	return nil
}

// ParsePrivateKeyPEM reads a private key as imgtool keygen writes it
// (unencrypted PKCS#8 "PRIVATE KEY"); SEC1 "EC PRIVATE KEY" and PKCS#1
// "RSA PRIVATE KEY" blocks are accepted too. The key must be ECDSA P-256,
// Ed25519 or RSA-2048/3072.
//
// Errors: ErrBadKey for input without a key block, encrypted keys or
// undecodable DER; ErrUnsupportedKey for other algorithms or sizes.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, err := keyBlock(data)
	if err != nil {
		return nil, err
	}
	return privateKeyFromBlock(block)
}

// privateKeyFromBlock decodes a private key PEM block for ParsePrivateKeyPEM
// and ParsePublicKeyPEM.
func privateKeyFromBlock(block *pem.Block) (crypto.Signer, error) {
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("%w: the key is password-protected; fleetsim reads unencrypted keys only", ErrBadKey)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a private key", ErrBadKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
	if err := checkPublicKey(signer.Public()); err != nil {
		return nil, err
	}
	return signer, nil
}

// ParsePublicKeyPEM reads a public key: "PUBLIC KEY" (SubjectPublicKeyInfo,
// imgtool getpub -e pem) or "RSA PUBLIC KEY" (PKCS#1). Like imgtool verify
// -k, it also takes a private key and returns its public half.
//
// Errors: as ParsePrivateKeyPEM.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, err := keyBlock(data)
	if err != nil {
		return nil, err
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		signer, err := privateKeyFromBlock(block)
		if err != nil {
			return nil, err
		}
		return signer.Public(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadKey, block.Type, err)
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

// keyBlock returns the first PEM block of data.
func keyBlock(data []byte) (*pem.Block, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrBadKey)
	}
	return block, nil
}

// GenerateKey makes a new signing key of kind KeyECDSAP256, KeyEd25519 or
// KeyRSA2048. Ed25519 keys are a pure function of the 32 bytes read from
// rand. Since Go 1.26 the standard library draws ECDSA and RSA keys from its
// own secure source whatever rand is; rand must still be non-nil.
//
// Errors: ErrUnsupportedKey for other kinds; errors of rand.
func GenerateKey(kind string, rand io.Reader) (crypto.Signer, error) {
	if rand == nil {
		return nil, errors.New("GenerateKey: rand is nil")
	}
	switch kind {
	case KeyECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand)
	case KeyEd25519:
		_, priv, err := ed25519.GenerateKey(rand)
		if err != nil {
			return nil, err
		}
		return priv, nil
	case KeyRSA2048:
		return rsa.GenerateKey(rand, 2048)
	}
	return nil, fmt.Errorf("%w: key type %q (want %s, %s or %s)", ErrUnsupportedKey, kind, KeyECDSAP256, KeyEd25519, KeyRSA2048)
}

// MarshalPrivateKeyPEM encodes k as an unencrypted PKCS#8 PEM block, the
// format imgtool keygen writes.
func MarshalPrivateKeyPEM(k crypto.Signer) ([]byte, error) {
	if k == nil {
		return nil, fmt.Errorf("%w: nil key", ErrUnsupportedKey)
	}
	if err := checkPublicKey(k.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes pub as a "PUBLIC KEY" (SubjectPublicKeyInfo)
// PEM block, as imgtool getpub -e pem prints it.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
