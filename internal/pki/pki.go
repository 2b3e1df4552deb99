package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"strings"
	"time"
)

// Errors returned by this package. They are wrapped with detail; test them
// with errors.Is.
var (
	// ErrBadFactory: a factory name is empty, too long, uses characters
	// outside letters, digits, '-', '_' and '.', or is "admin" (a device
	// carries its factory as OU, and OU=admin marks an operator).
	ErrBadFactory = errors.New("pki: bad factory name")
	// ErrBadHost: a gateway host is neither an IP address nor a DNS name.
	ErrBadHost = errors.New("pki: bad gateway host")
	// ErrBadUUID: a device UUID is not 8-4-4-4-12 hexadecimal digits, or is
	// all zeros (the certificate serial must be positive, RFC 5280 §4.1.2.2).
	ErrBadUUID = errors.New("pki: bad device UUID")
	// ErrBadIdentity: a client certificate names no device (its CN is not a
	// UUID) and is no admin certificate either.
	ErrBadIdentity = errors.New("pki: certificate carries no device identity")
	// ErrBadCA: a CA is incomplete (no certificate or key) or its key does
	// not belong to its certificate.
	ErrBadCA = errors.New("pki: bad CA")
	// ErrRandom: the random source failed.
	ErrRandom = errors.New("pki: random source failed")
)

// Validity periods in calendar years from the issue time. Device
// certificates outlive the CA on purpose: Foundries' registration service
// issues 20-year device certificates (foundries.md §3), and a factory
// rotates its CA long before a device is retired.
const (
	CAYears     = 10
	ServerYears = CAYears
	AdminYears  = CAYears
	DeviceYears = 20
)

// AdminCN and AdminOU name the operator's client certificate. The gateway's
// admin API trusts a verified certificate whose subject carries OU=AdminOU;
// device certificates carry their factory as OU, which is never "admin".
const (
	AdminCN = "fleetsim-admin"
	AdminOU = "admin"
)

// gatewayCN names the gateway's server certificate; clients check its
// SANs, never its CN.
const gatewayCN = "fleetsim gateway"

// caCNPrefix starts the factory CA's common name; the factory name follows.
const caCNPrefix = "fleetsim factory CA "

// oidBusinessCategory is X.520 businessCategory (2.5.4.15); the value
// "production" marks a production device (foundries.md §1.11).
var oidBusinessCategory = asn1.ObjectIdentifier{2, 5, 4, 15}

// productionCategory is the businessCategory value of production devices.
const productionCategory = "production"

// CA is a factory certificate authority: its self-signed certificate, its
// private key and the factory it belongs to.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	Factory string
}

// ValidFactory reports whether name may name a factory: 1 to 64 letters,
// digits, '-', '_' or '.', and not "admin" in any case.
func ValidFactory(name string) bool {
	if len(name) == 0 || len(name) > 64 || strings.EqualFold(name, AdminOU) {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// NewCA makes a self-signed factory CA with a P-256 key read from random,
// valid for CAYears from now. The same random bytes give the same key (the
// signature itself is hedged and differs from run to run).
//
// Errors: ErrBadFactory, ErrRandom.
func NewCA(factory string, now time.Time, random io.Reader) (*CA, error) {
	if !ValidFactory(factory) {
		return nil, fmt.Errorf("%w %q: want 1 to 64 letters, digits, '-', '_' or '.', and not %q", ErrBadFactory, factory, AdminOU)
	}
	key, err := keyFrom(random)
	if err != nil {
		return nil, err
	}
	serial, err := serialFrom(random)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: caCNPrefix + factory, OrganizationalUnit: []string{factory}},
		NotBefore:             now,
		NotAfter:              now.AddDate(CAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Device certificates hang directly off the factory CA.
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parsing the CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, Factory: factory}, nil
}

// check refuses a CA that cannot sign for this package.
func (ca *CA) check() error {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return fmt.Errorf("%w: certificate or key missing", ErrBadCA)
	}
	if !ca.Key.PublicKey.Equal(ca.Cert.PublicKey) {
		return fmt.Errorf("%w: the key does not belong to the certificate", ErrBadCA)
	}
	if !ValidFactory(ca.Factory) {
		return fmt.Errorf("%w %q", ErrBadFactory, ca.Factory)
	}
	return nil
}

// defaultHosts are always in the gateway certificate, so a gateway on
// loopback works without naming a host.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// IssueServer issues the gateway's server certificate (EKU serverAuth) for
// "localhost", 127.0.0.1, ::1 and hosts, each a DNS name (a leading "*."
// wildcard allowed) or an IP address; duplicates are dropped. Its P-256 key is
// read from random.
//
// Errors: ErrBadHost, ErrBadCA, ErrRandom.
func (ca *CA) IssueServer(hosts []string, now time.Time, random io.Reader) (tls.Certificate, error) {
	if err := ca.check(); err != nil {
		return tls.Certificate{}, err
	}
	var dns []string
	var ips []netip.Addr
	seen := map[string]bool{}
	for _, h := range append(append([]string(nil), defaultHosts...), hosts...) {
		if ip, err := netip.ParseAddr(h); err == nil {
			ip = ip.Unmap()
			if ip.Zone() != "" {
				return tls.Certificate{}, fmt.Errorf("%w %q: an IP address in a certificate has no zone", ErrBadHost, h)
			}
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		name := strings.ToLower(strings.TrimSuffix(h, "."))
		if !validDNSName(name) {
			return tls.Certificate{}, fmt.Errorf("%w %q: want a DNS name such as gw.example.com or an IP address", ErrBadHost, h)
		}
		if !seen[name] {
			seen[name] = true
			dns = append(dns, name)
		}
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: gatewayCN, OrganizationalUnit: []string{ca.Factory}},
		NotBefore:   now,
		NotAfter:    now.AddDate(ServerYears, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dns,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	}
	return ca.issueLeaf(tmpl, random)
}

// validDNSName accepts lower-case host names of letters, digits and '-'
// labels, with an optional leading "*." wildcard.
func validDNSName(name string) bool {
	name = strings.TrimPrefix(name, "*.")
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// IssueAdmin issues the operator's client certificate: CN AdminCN, OU
// AdminOU, EKU clientAuth, with a P-256 key read from random.
//
// Errors: ErrBadCA, ErrRandom.
func (ca *CA) IssueAdmin(now time.Time, random io.Reader) (tls.Certificate, error) {
	if err := ca.check(); err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: AdminCN, OrganizationalUnit: []string{AdminOU}},
		NotBefore:   now,
		NotAfter:    now.AddDate(AdminYears, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.issueLeaf(tmpl, random)
}

// issueLeaf gives tmpl a random serial and a key from random, signs it and
// returns it with its key and parsed leaf.
func (ca *CA) issueLeaf(tmpl *x509.Certificate, random io.Reader) (tls.Certificate, error) {
	key, err := keyFrom(random)
	if err != nil {
		return tls.Certificate{}, err
	}
	if tmpl.SerialNumber, err = serialFrom(random); err != nil {
		return tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(random, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: signing %q: %w", tmpl.Subject.CommonName, err)
	}
	return leafCertificate(der, key)
}

// leafCertificate wraps a signed certificate and its key for crypto/tls.
func leafCertificate(der []byte, key *ecdsa.PrivateKey) (tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: parsing an issued certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// DeviceSpec says which device certificate to issue.
type DeviceSpec struct {
	// UUID is the device's identity, 8-4-4-4-12 hexadecimal digits in any
	// case; the certificate carries it in upper case (foundries.md §1.11).
	UUID string
	// Production devices carry businessCategory=production and see the
	// production TUF targets; the others are test devices.
	Production bool
}

// IssueDevice issues a device certificate (foundries.md §1.11): subject
// CN=<UUID>, OU=<factory>, businessCategory=production for a production
// device; EKU clientAuth; key usage digitalSignature; serial = the UUID's 128
// bits; valid for DeviceYears from now. The P-256 key is DeviceKey of 32
// bytes read from random.
//
// Errors: ErrBadUUID, ErrBadCA, ErrBadFactory, ErrRandom.
func (ca *CA) IssueDevice(s DeviceSpec, now time.Time, random io.Reader) (tls.Certificate, error) {
	if err := ca.check(); err != nil {
		return tls.Certificate{}, err
	}
	var seed [32]byte
	if _, err := io.ReadFull(random, seed[:]); err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %v", ErrRandom, err)
	}
	key, err := DeviceKey(seed)
	if err != nil {
		return tls.Certificate{}, err
	}
	der, err := ca.signDevice(s, &key.PublicKey, now, random)
	if err != nil {
		return tls.Certificate{}, err
	}
	return leafCertificate(der, key)
}

// signDevice signs the device certificate of s for pub. A nil signing
// source makes the signature deterministic (RFC 6979), which Issue uses for
// seeded fleets.
func (ca *CA) signDevice(s DeviceSpec, pub *ecdsa.PublicKey, now time.Time, signing io.Reader) ([]byte, error) {
	uuid, serial, err := parseUUID(s.UUID)
	if err != nil {
		return nil, err
	}
	subject := pkix.Name{CommonName: uuid, OrganizationalUnit: []string{ca.Factory}}
	if s.Production {
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidBusinessCategory, Value: productionCategory}}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now,
		NotAfter:     now.AddDate(DeviceYears, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(signing, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: signing device %s: %w", uuid, err)
	}
	return der, nil
}

// p256 is the curve of every key here; n1 is its group order minus one.
var (
	p256 = elliptic.P256()
	n1   = new(big.Int).Sub(p256.Params().N, big.NewInt(1))
)

// deviceKeyLabel separates DeviceKey's hash from any other use of the seed.
const deviceKeyLabel = "fleetsim pki P-256 key v1\x00"

// DeviceKey derives a P-256 private key from 32 bytes of seed material, so
// a seeded simulator gives every device the same key on every run (Go's
// ecdsa.GenerateKey ignores the reader it is given). The seed is widened to
// 512 bits with SHA-512 and reduced into [1, n-1], which keeps the scalar's
// bias far below anything measurable. Different seeds give independent keys.
//
// The error is there for completeness: crypto/ecdsa accepts every scalar in
// [1, n-1], so DeviceKey does not fail in practice.
func DeviceKey(seed [32]byte) (*ecdsa.PrivateKey, error) {
	h := sha512.New()
	h.Write([]byte(deviceKeyLabel))
	h.Write(seed[:])
	k := new(big.Int).SetBytes(h.Sum(nil))
	k.Mod(k, n1)
	k.Add(k, big.NewInt(1))
	var raw [32]byte
	key, err := ecdsa.ParseRawPrivateKey(p256, k.FillBytes(raw[:]))
	if err != nil {
		return nil, fmt.Errorf("pki: deriving a device key: %w", err)
	}
	return key, nil
}

// keyFrom reads 32 bytes of seed material from random and derives a key.
func keyFrom(random io.Reader) (*ecdsa.PrivateKey, error) {
	var seed [32]byte
	if _, err := io.ReadFull(random, seed[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRandom, err)
	}
	return DeviceKey(seed)
}

// serialFrom reads a positive, non-zero 127-bit certificate serial
// (RFC 5280 §4.1.2.2: positive, at most 20 octets).
func serialFrom(random io.Reader) (*big.Int, error) {
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRandom, err)
	}
	b[0] &= 0x7f
	b[15] |= 1
	return new(big.Int).SetBytes(b[:]), nil
}

// NewUUID reads 16 random bytes and formats them as an RFC 4122 version 4
// UUID in upper case, the form aktualizr-nano gives its device
// (foundries.md §1.11).
//
// Errors: ErrRandom.
func NewUUID(random io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", fmt.Errorf("%w: %v", ErrRandom, err)
	}
	return formatUUIDv4(b), nil
}

// formatUUIDv4 sets the version 4 and RFC 4122 variant bits of b and
// formats it in upper case.
func formatUUIDv4(b [16]byte) string { return formatUUID(uuidV4Bits(b)) }

// uuidV4Bits sets the version 4 and RFC 4122 variant bits of b.
func uuidV4Bits(b [16]byte) [16]byte {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

// formatUUID formats b as 8-4-4-4-12 upper-case hexadecimal digits.
func formatUUID(b [16]byte) string {
	const hexdig = "0123456789ABCDEF"
	var s [36]byte
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexdig[c>>4], hexdig[c&0x0f]
		j += 2
	}
	return string(s[:])
}

// parseUUID checks s is 8-4-4-4-12 hexadecimal digits (any case, any
// version: Foundries also derives UUIDs from MAC addresses) and returns it in
// upper case with its 128 bits as an integer.
//
// Errors: ErrBadUUID.
func parseUUID(s string) (string, *big.Int, error) {
	canon, ok := CanonicalUUID(s)
	if !ok {
		return "", nil, fmt.Errorf("%w %q: want 8-4-4-4-12 hexadecimal digits", ErrBadUUID, s)
	}
	n, _ := new(big.Int).SetString(strings.ReplaceAll(canon, "-", ""), 16)
	if n.Sign() == 0 {
		return "", nil, fmt.Errorf("%w %q: the all-zero UUID cannot be a certificate serial", ErrBadUUID, s)
	}
	return canon, n, nil
}

// CanonicalUUID returns the device UUID s in the form certificates and the
// gateway use (upper case) and whether s is a UUID at all: 8-4-4-4-12
// hexadecimal digits in any case, any version.
func CanonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	var b [36]byte
	for i := 0; i < 36; i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", false
			}
		case c >= '0' && c <= '9', c >= 'A' && c <= 'F':
		case c >= 'a' && c <= 'f':
			c -= 'a' - 'A'
		default:
			return "", false
		}
		b[i] = c
	}
	return string(b[:]), true
}
