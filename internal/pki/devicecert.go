package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"time"
)

// deviceTemplate signs device certificates for a fleet without
// x509.CreateCertificate, which re-verifies every signature it makes and
// marshals the whole certificate by reflection: together more than half the
// CPU cost of a device. Every device certificate of one Issue call differs
// from the others only in its serial, subject CN and public key, so the
// template keeps the DER of everything else, cut from one certificate that
// CreateCertificate made, and assembles the rest. With deterministic signing
// the result is byte-identical to CreateCertificate's (pki tests compare the
// two on random devices).
type deviceTemplate struct {
	ca         *CA
	production bool
	// tbsVersion is the [0] EXPLICIT version, tbsSigAlg the signature
	// AlgorithmIdentifier, issuer and validity their DER; extensions the
	// [3] EXPLICIT extensions. All are copied verbatim.
	tbsVersion, tbsSigAlg, issuer, validity, extensions []byte
	// spkiPrefix is a P-256 SubjectPublicKeyInfo (its SEQUENCE header
	// included) up to its 65-byte uncompressed point.
	spkiPrefix []byte
	// sigAlg is the outer signatureAlgorithm (equal to tbsSigAlg).
	sigAlg []byte
}

// p256PointLen is the length of an uncompressed P-256 point (0x04 || X || Y).
const p256PointLen = 65

// tbsParts splits a TBSCertificate into its fields (RFC 5280 §4.1).
type tbsParts struct {
	Version    asn1.RawValue
	Serial     asn1.RawValue
	SigAlg     asn1.RawValue
	Issuer     asn1.RawValue
	Validity   asn1.RawValue
	Subject    asn1.RawValue
	SPKI       asn1.RawValue
	Extensions asn1.RawValue
}

// certParts splits a Certificate into TBS, algorithm and signature.
type certParts struct {
	TBS       asn1.RawValue
	SigAlg    asn1.RawValue
	Signature asn1.RawValue
}

// newDeviceTemplate cuts the constant parts out of a device certificate
// made by CreateCertificate for the same CA, kind and time.
func (ca *CA) newDeviceTemplate(production bool, now time.Time) (*deviceTemplate, error) {
	key, err := DeviceKey([32]byte{})
	if err != nil {
		return nil, err
	}
	der, err := ca.signDevice(DeviceSpec{UUID: "00000000-0000-4000-8000-000000000001", Production: production}, &key.PublicKey, now, nil)
	if err != nil {
		return nil, err
	}
	var c certParts
	if rest, err := asn1.Unmarshal(der, &c); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("pki: splitting a device certificate: %v", err)
	}
	var t tbsParts
	if rest, err := asn1.Unmarshal(c.TBS.FullBytes, &t); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("pki: splitting a device certificate: %v", err)
	}
	point, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	spki := t.SPKI.FullBytes
	if len(spki) <= p256PointLen || !bytes.Equal(spki[len(spki)-p256PointLen:], point) {
		return nil, fmt.Errorf("pki: a device certificate's public key is not where a P-256 key ends")
	}
	return &deviceTemplate{
		ca:         ca,
		production: production,
		tbsVersion: t.Version.FullBytes,
		tbsSigAlg:  t.SigAlg.FullBytes,
		issuer:     t.Issuer.FullBytes,
		validity:   t.Validity.FullBytes,
		extensions: t.Extensions.FullBytes,
		spkiPrefix: spki[:len(spki)-p256PointLen],
		sigAlg:     c.SigAlg.FullBytes,
	}, nil
}

// sign makes the certificate of device uuid (canonical) with key. A nil
// signing source signs deterministically (RFC 6979).
func (t *deviceTemplate) sign(uuid string, uuidBits [16]byte, key *ecdsa.PrivateKey, signing io.Reader) ([]byte, error) {
	subject := pkix.Name{CommonName: uuid, OrganizationalUnit: []string{t.ca.Factory}}
	if t.production {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidBusinessCategory, Value: productionCategory}}
	}
	subjectDER, err := asn1.Marshal(subject.ToRDNSequence())
	if err != nil {
		return nil, fmt.Errorf("pki: encoding the subject of %s: %w", uuid, err)
	}
	point, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}

	body := make([]byte, 0, 512)
	body = append(body, t.tbsVersion...)
	body = appendSerial(body, uuidBits)
	body = append(body, t.tbsSigAlg...)
	body = append(body, t.issuer...)
	body = append(body, t.validity...)
	body = append(body, subjectDER...)
	// The SPKI header's length is constant: a P-256 point is always 65 bytes.
	body = append(body, t.spkiPrefix...)
	body = append(body, point...)
	body = append(body, t.extensions...)
	tbs := appendTLV(make([]byte, 0, len(body)+4), 0x30, len(body), body)

	digest := sha256.Sum256(tbs)
	sig, err := t.ca.Key.Sign(signing, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("pki: signing device %s: %w", uuid, err)
	}
	out := make([]byte, 0, len(tbs)+len(t.sigAlg)+len(sig)+12)
	out = append(out, tbs...)
	out = append(out, t.sigAlg...)
	// BIT STRING: a leading 0 says no unused bits.
	out = appendTLV(out, 0x03, len(sig)+1, []byte{0})
	out = append(out, sig...)
	return appendTLV(make([]byte, 0, len(out)+4), 0x30, len(out), out), nil
}

// appendTLV appends a DER tag, the definite length n and content (which may
// be nil when the caller appends the n content bytes itself).
func appendTLV(dst []byte, tag byte, n int, content []byte) []byte {
	dst = append(dst, tag)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n < 0x100:
		dst = append(dst, 0x81, byte(n))
	case n < 0x10000:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, content...)
}

// appendSerial appends the UUID's 128 bits as a DER INTEGER: minimal, and
// positive (a leading zero octet when the top bit is set).
func appendSerial(dst []byte, b [16]byte) []byte {
	v := b[:]
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if v[0]&0x80 != 0 {
		dst = appendTLV(dst, 0x02, len(v)+1, []byte{0})
		return append(dst, v...)
	}
	return appendTLV(dst, 0x02, len(v), v)
}
