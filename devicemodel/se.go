package devicemodel

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"

	"github.com/fleetsim/fleetsim/internal/pki"
)

// SecureElement is the device's key store, like an SE050 or an EdgeLock
// 2GO part: a P-256 key generated inside it (from the device's seed, so a
// seeded fleet is reproducible) or injected at manufacture, which never
// leaves it; and the device certificate. It signs TLS handshakes and
// certificate requests as a crypto.Signer.
//
// To keep a parked fleet small it holds the 32-byte seed, not the key,
// and derives the key when asked to sign: a few tens of microseconds per
// TLS handshake.
type SecureElement struct {
	seed     [32]byte
	injected *ecdsa.PrivateKey // a key provisioned from outside, or nil
	cert     []byte            // DER, or nil before provisioning
}

// ErrNoCertificate: the secure element holds no device certificate yet.
var ErrNoCertificate = errors.New("secure element holds no device certificate")

// NewSecureElement returns an element whose key is generated from seed.
func NewSecureElement(seed [32]byte) *SecureElement { return &SecureElement{seed: seed} }

// InjectedSecureElement returns an element provisioned at manufacture with
// cert's key pair (as `fleetsim pki issue` writes them). Errors: the key is
// not a P-256 ECDSA key, or it is not the certificate's.
func InjectedSecureElement(cert tls.Certificate) (*SecureElement, error) {
	k, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || len(cert.Certificate) == 0 {
		return nil, errors.New("device certificate must come with its P-256 ECDSA key")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("device certificate: %w", err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&k.PublicKey) {
		return nil, errors.New("device key does not match its certificate")
	}
	return &SecureElement{injected: k, cert: cert.Certificate[0]}, nil
}

func (se *SecureElement) key() *ecdsa.PrivateKey {
	if se.injected != nil {
		return se.injected
	}
	k, err := pki.DeviceKey(se.seed)
	if err != nil {
		panic(err) // DeviceKey accepts every seed
	}
	return k
}

// Public is the element's public key.
func (se *SecureElement) Public() crypto.PublicKey { return &se.key().PublicKey }

// Sign signs digest with the element's key (crypto.Signer).
func (se *SecureElement) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return se.key().Sign(rand, digest, opts)
}

// CSR is a certificate request for the device's identity (CN = uuid),
// signed inside the element; the factory's CA decides the rest of the
// subject (foundries.md §1.11).
func (se *SecureElement) CSR(uuid string, rand io.Reader) ([]byte, error) {
	return x509.CreateCertificateRequest(rand, &x509.CertificateRequest{Subject: pkix.Name{CommonName: uuid}}, se)
}

// SetCertificate stores the device certificate (DER) after checking that it
// certifies the element's key.
func (se *SecureElement) SetCertificate(der []byte) error {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("device certificate: %w", err)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(se.Public()) {
		return errors.New("device certificate is not for the secure element's key")
	}
	se.cert = der
	return nil
}

// Certificate is the device's TLS identity: its certificate and the
// element as the signer. Errors: ErrNoCertificate.
func (se *SecureElement) Certificate() (tls.Certificate, error) {
	if se.cert == nil {
		return tls.Certificate{}, ErrNoCertificate
	}
	return tls.Certificate{Certificate: [][]byte{se.cert}, PrivateKey: se}, nil
}

// CertificateDER is the device certificate, nil before provisioning.
func (se *SecureElement) CertificateDER() []byte { return se.cert }
