package tufrepo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestGenerateKeyDeterministic(t *testing.T) {
	for _, kt := range []KeyType{KeyEd25519, KeyECDSAP256} {
		a, err := GenerateKey(kt, seeded(1))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := GenerateKey(kt, seeded(1))
		c, _ := GenerateKey(kt, seeded(2))
		if a.ID() != b.ID() || a.ID() == c.ID() {
			t.Errorf("%s: same seed gave %s and %s, other seed %s", kt, a.ID(), b.ID(), c.ID())
		}
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	want := map[KeyType][2]string{
		KeyEd25519:   {metadata.KeyTypeEd25519, metadata.KeySchemeEd25519},
		KeyECDSAP256: {metadata.KeyTypeECDSA_SHA2_P256, metadata.KeySchemeECDSA_SHA2_P256},
		KeyRSAPSS:    {metadata.KeyTypeRSASSA_PSS_SHA256, metadata.KeySchemeRSASSA_PSS_SHA256},
	}
	for kt, w := range want {
		k, err := GenerateKey(kt, seeded(3))
		if err != nil {
			t.Fatal(err)
		}
		if k.Type() != kt || k.Public().Type != w[0] || k.Public().Scheme != w[1] {
			t.Errorf("%s: type %s, TUF %s/%s", kt, k.Type(), k.Public().Type, k.Public().Scheme)
		}
		back, err := ParsePrivateKey(k.MarshalPEM())
		if err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		if back.ID() != k.ID() || back.Type() != kt {
			t.Errorf("%s: round trip changed the key", kt)
		}
	}
}

func TestParsePrivateKeyRejects(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), nil)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), nil)
	sec1, _ := x509.MarshalECPrivateKey(p256)
	for name, data := range map[string][]byte{
		"empty":          nil,
		"not PEM":        []byte("hello"),
		"SEC1 EC key":    pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		"P-384":          pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384}),
		"garbage PKCS#8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}}),
	} {
		if _, err := ParsePrivateKey(data); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: err %v, want ErrBadKey", name, err)
		}
	}
	if _, err := GenerateKey("dsa", seeded(1)); !errors.Is(err, ErrBadKey) {
		t.Errorf("unknown key type: %v", err)
	}
	if _, err := GenerateKey(KeyEd25519, emptyReader{}); !errors.Is(err, ErrBadKey) {
		t.Errorf("failing reader: %v", err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }
