package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrBadCSR: a certificate request that cannot be signed: not DER, a bad
// signature, a key other than P-256, or a CN that is not a device UUID.
var ErrBadCSR = errors.New("pki: bad certificate request")

// SignCSR issues a device certificate for a key that never leaves the
// device: a secure element asks for it with a CSR at its first boot, as an
// EdgeLock 2GO part is provisioned. The request's signature must verify and
// its key be P-256; its subject CN must be the device UUID. The
// certificate is the one IssueDevice makes for that UUID and production
// flag, for the request's key.
//
// Errors: ErrBadCSR, ErrBadUUID, ErrBadCA.
func (ca *CA) SignCSR(csrDER []byte, production bool, now time.Time, random io.Reader) ([]byte, error) {
	if err := ca.check(); err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: the key is not P-256", ErrBadCSR)
	}
	return ca.signDevice(DeviceSpec{UUID: csr.Subject.CommonName, Production: production}, pub, now, random)
}
