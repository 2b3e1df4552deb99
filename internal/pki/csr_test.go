package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"testing"
	"time"
)

func TestSignCSR(t *testing.T) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ca, err := NewCA("csr-factory", now, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	key, err := DeviceKey([32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	uuid := "3F2504E0-4F89-41D3-9A0C-0305E82C3301"
	csr, err := x509.CreateCertificateRequest(seeded(2), &x509.CertificateRequest{Subject: pkix.Name{CommonName: uuid}}, key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.SignCSR(csr, true, now, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, err := IdentityOf(cert)
	if err != nil || id.UUID != uuid || !id.Production {
		t.Fatalf("identity %+v, %v; want %s, production", id, err, uuid)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("certificate is not for the requester's key")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool(ca), CurrentTime: now.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("certificate does not verify against the CA: %v", err)
	}

	// A tampered request, and one for a name that is no UUID, are refused.
	bad := append([]byte(nil), csr...)
	bad[len(bad)-5] ^= 1
	if _, err := ca.SignCSR(bad, false, now, seeded(4)); !errors.Is(err, ErrBadCSR) {
		t.Errorf("tampered CSR: %v, want ErrBadCSR", err)
	}
	notUUID, _ := x509.CreateCertificateRequest(seeded(5), &x509.CertificateRequest{Subject: pkix.Name{CommonName: "not-a-uuid"}}, key)
	if _, err := ca.SignCSR(notUUID, false, now, seeded(6)); !errors.Is(err, ErrBadUUID) {
		t.Errorf("CSR for a non-UUID: %v, want ErrBadUUID", err)
	}
}
