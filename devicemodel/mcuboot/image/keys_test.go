package image

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
)

func TestGenerateAndMarshalKeys(t *testing.T) {
	for _, kind := range []string{KeyECDSAP256, KeyEd25519, KeyRSA2048} {
		t.Run(kind, func(t *testing.T) {
			k, err := GenerateKey(kind, testRand(3))
			if err != nil {
				t.Fatal(err)
			}
			p, err := MarshalPrivateKeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(p, []byte("-----BEGIN PRIVATE KEY-----\n")) {
				t.Errorf("not PKCS#8 PEM:\n%s", p)
			}
			back, err := ParsePrivateKeyPEM(p)
			if err != nil {
				t.Fatal(err)
			}
			h1, _ := KeyHash(k.Public())
			h2, _ := KeyHash(back.Public())
			if h1 != h2 {
				t.Error("key changed in the PEM round trip")
			}
			pub, err := ParsePublicKeyPEM(p)
			if err != nil {
				t.Fatalf("public half of a private PEM: %v", err)
			}
			if h3, _ := KeyHash(pub); h3 != h1 {
				t.Error("public half differs")
			}
			img, err := Sign(make([]byte, 100), SignOptions{Key: back, Rand: testRand(4), HeaderSize: 32, PadHeader: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := mustParse(t, img).Verify([]crypto.PublicKey{pub}); err != nil {
				t.Error(err)
			}
		})
	}
	// Ed25519 keys are a function of the given randomness.
	a, _ := GenerateKey(KeyEd25519, testRand(9))
	b, _ := GenerateKey(KeyEd25519, testRand(9))
	ha, _ := KeyHash(a.Public())
	hb, _ := KeyHash(b.Public())
	if ha != hb {
		t.Error("Ed25519 keys from the same seed differ")
	}
	if _, err := GenerateKey("rsa-1024", testRand(1)); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("rsa-1024: %v", err)
	}
	if _, err := GenerateKey(KeyEd25519, nil); err == nil {
		t.Error("nil rand accepted")
	}
}

// TestRSAKeyHashIsPKCS1: MCUboot hashes the PKCS#1 RSAPublicKey, not the
// SubjectPublicKeyInfo.
func TestRSAKeyHashIsPKCS1(t *testing.T) {
	k := loadSigner(t, "rsa-2048.pem")
	raw, err := PublicKeyBytes(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(k.Public())
	if bytes.Equal(raw, spki) || len(raw) != 270 {
		t.Errorf("RSA public key bytes are %d bytes, want the 270-byte PKCS#1 form", len(raw))
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: raw})
	pub, err := ParsePublicKeyPEM(pkcs1)
	if err != nil {
		t.Fatal(err)
	}
	h1, _ := KeyHash(pub)
	h2, _ := KeyHash(k.Public())
	if h1 != h2 {
		t.Error("PKCS#1 PEM hashes differently")
	}
}

func TestParseKeyErrors(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), testRand(1))
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	pub384, _ := x509.MarshalPKIXPublicKey(p384.Public())
	good := readTestdata(t, "imgtool/ed25519.pem")
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrBadKey},
		{"not PEM", []byte("hello"), ErrBadKey},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), ErrBadKey},
		{"truncated", good[:len(good)-30], ErrBadKey},
		{"encrypted", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), ErrBadKey},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), ErrBadKey},
		{"P-384", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}), ErrUnsupportedKey},
	}
	for _, c := range cases {
		if _, err := ParsePrivateKeyPEM(c.in); !errors.Is(err, c.want) {
			t.Errorf("ParsePrivateKeyPEM(%s) = %v, want %v", c.name, err, c.want)
		}
		if _, err := ParsePublicKeyPEM(c.in); !errors.Is(err, c.want) {
			t.Errorf("ParsePublicKeyPEM(%s) = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := ParsePublicKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub384})); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("P-384 public key: %v", err)
	}
	if _, err := ParsePrivateKeyPEM(readTestdata(t, "imgtool/ed25519.pub.pem")); !errors.Is(err, ErrBadKey) ||
		!strings.Contains(err.Error(), "not a private key") {
		t.Errorf("public key as private: %v", err)
	}
	if _, err := MarshalPrivateKeyPEM(nil); err == nil {
		t.Error("nil key marshalled")
	}
	if _, err := KeyHash(&ecdsa.PublicKey{}); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("curve-less key: %v", err)
	}
}
