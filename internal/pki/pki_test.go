package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// t0 is the time every test issues at; handshakes and verifications pass
// their own time, never the wall clock.
var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// seeded is a reproducible random source for a test.
func seeded(n uint64) io.Reader {
	var s [32]byte
	s[0] = byte(n)
	s[1] = byte(n >> 8)
	return rand.NewChaCha8(s)
}

func newTestCA(t testing.TB, factory string, n uint64) *CA {
	t.Helper()
	ca, err := NewCA(factory, t0, seeded(n))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

const testUUID = "6F1C2A4B-93D7-4E21-8A5C-0B7D3E9F1A26"

func TestNewCA(t *testing.T) {
	ca := newTestCA(t, "acme-prod", 1)
	c := ca.Cert
	if c.Subject.CommonName != "fleetsim factory CA acme-prod" || ca.Factory != "acme-prod" {
		t.Errorf("CN %q factory %q", c.Subject.CommonName, ca.Factory)
	}
	if !c.IsCA || !c.BasicConstraintsValid || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA constraints: IsCA %v basic %v pathlen0 %v usage %b", c.IsCA, c.BasicConstraintsValid, c.MaxPathLenZero, c.KeyUsage)
	}
	if !c.NotBefore.Equal(t0) || !c.NotAfter.Equal(t0.AddDate(CAYears, 0, 0)) {
		t.Errorf("validity %v .. %v", c.NotBefore, c.NotAfter)
	}
	if c.PublicKeyAlgorithm != x509.ECDSA || c.PublicKey.(*ecdsa.PublicKey).Curve != p256 {
		t.Errorf("CA key is not P-256")
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA not self-signed: %v", err)
	}
	if again := newTestCA(t, "acme-prod", 1); !again.Key.Equal(ca.Key) {
		t.Error("the same random bytes gave another CA key")
	}
	if other := newTestCA(t, "acme-prod", 2); other.Key.Equal(ca.Key) {
		t.Error("different random bytes gave the same CA key")
	}
	for _, bad := range []string{"", "admin", "Admin", "has space", "a/b", strings.Repeat("x", 65), "üñí"} {
		if _, err := NewCA(bad, t0, seeded(1)); !errors.Is(err, ErrBadFactory) {
			t.Errorf("NewCA(%q): %v, want ErrBadFactory", bad, err)
		}
	}
	if _, err := NewCA("acme", t0, bytes.NewReader(make([]byte, 10))); !errors.Is(err, ErrRandom) {
		t.Errorf("short random source: %v, want ErrRandom", err)
	}
}

func TestDeviceCertificate(t *testing.T) {
	ca := newTestCA(t, "acme", 1)
	for _, production := range []bool{false, true} {
		c, err := ca.IssueDevice(DeviceSpec{UUID: strings.ToLower(testUUID), Production: production}, t0, seeded(7))
		if err != nil {
			t.Fatal(err)
		}
		leaf := c.Leaf
		if _, err := leaf.Verify(x509.VerifyOptions{
			Roots: pool(ca), CurrentTime: t0.Add(time.Hour), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}); err != nil {
			t.Fatalf("production=%v: device certificate does not verify: %v", production, err)
		}
		if leaf.Subject.CommonName != testUUID {
			t.Errorf("CN %q, want upper-case %q", leaf.Subject.CommonName, testUUID)
		}
		if got := leaf.Subject.OrganizationalUnit; len(got) != 1 || got[0] != "acme" {
			t.Errorf("OU %q, want [acme]", got)
		}
		want, _ := new(big.Int).SetString(strings.ReplaceAll(testUUID, "-", ""), 16)
		if leaf.SerialNumber.Cmp(want) != 0 {
			t.Errorf("serial %x, want the UUID's bits %x", leaf.SerialNumber, want)
		}
		if !leaf.NotBefore.Equal(t0) || !leaf.NotAfter.Equal(t0.AddDate(DeviceYears, 0, 0)) {
			t.Errorf("validity %v .. %v, want 20 years from %v", leaf.NotBefore, leaf.NotAfter, t0)
		}
		if leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || leaf.IsCA {
			t.Errorf("usage %b eku %v isCA %v", leaf.KeyUsage, leaf.ExtKeyUsage, leaf.IsCA)
		}
		var category []string
		for _, atv := range leaf.Subject.Names {
			if atv.Type.String() == "2.5.4.15" {
				category = append(category, atv.Value.(string))
			}
		}
		if production && (len(category) != 1 || category[0] != "production") || !production && category != nil {
			t.Errorf("production=%v: businessCategory %q", production, category)
		}
		if !c.PrivateKey.(*ecdsa.PrivateKey).PublicKey.Equal(leaf.PublicKey) {
			t.Error("key does not match the certificate")
		}
	}
	for _, bad := range []string{"", "not-a-uuid", testUUID + "0", strings.Replace(testUUID, "-", "_", 1), "00000000-0000-0000-0000-000000000000"} {
		if _, err := ca.IssueDevice(DeviceSpec{UUID: bad}, t0, seeded(1)); !errors.Is(err, ErrBadUUID) {
			t.Errorf("IssueDevice(%q): %v, want ErrBadUUID", bad, err)
		}
	}
	if _, err := (&CA{}).IssueDevice(DeviceSpec{UUID: testUUID}, t0, seeded(1)); !errors.Is(err, ErrBadCA) {
		t.Errorf("empty CA: %v, want ErrBadCA", err)
	}
	evil := *ca
	evil.Factory = "admin"
	if _, err := evil.IssueDevice(DeviceSpec{UUID: testUUID}, t0, seeded(1)); !errors.Is(err, ErrBadFactory) {
		t.Errorf("factory admin: %v, want ErrBadFactory (a device must never carry OU=admin)", err)
	}
	mixed := *ca
	mixed.Key = newTestCA(t, "acme", 2).Key
	if _, err := mixed.IssueDevice(DeviceSpec{UUID: testUUID}, t0, seeded(1)); !errors.Is(err, ErrBadCA) {
		t.Errorf("CA key of another CA: %v, want ErrBadCA", err)
	}
}

func TestIssueServer(t *testing.T) {
	ca := newTestCA(t, "acme", 1)
	c, err := ca.IssueServer([]string{"GW.example.com.", "ostree.example.com", "10.1.2.3", "localhost", "::ffff:127.0.0.1", "*.ota.example.com"}, t0, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	wantDNS := []string{"localhost", "gw.example.com", "ostree.example.com", "*.ota.example.com"}
	if strings.Join(leaf.DNSNames, ",") != strings.Join(wantDNS, ",") {
		t.Errorf("DNS SANs %q, want %q", leaf.DNSNames, wantDNS)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if strings.Join(ips, ",") != "127.0.0.1,::1,10.1.2.3" {
		t.Errorf("IP SANs %q", ips)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("EKU %v, want serverAuth", leaf.ExtKeyUsage)
	}
	for _, name := range []string{"localhost", "gw.example.com", "ostree.example.com", "a.ota.example.com", "10.1.2.3", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: name, CurrentTime: t0.Add(time.Hour)}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "evil.example.com", CurrentTime: t0}); err == nil {
		t.Error("server certificate verifies for a host it does not name")
	}
	for _, bad := range []string{"", "-bad.example.com", "has space", "a..b", "fe80::1%eth0", strings.Repeat("a", 64) + ".com", "ex_ample.com"} {
		if _, err := ca.IssueServer([]string{bad}, t0, seeded(3)); !errors.Is(err, ErrBadHost) {
			t.Errorf("host %q: %v, want ErrBadHost", bad, err)
		}
	}
}

func TestIssueAdmin(t *testing.T) {
	ca := newTestCA(t, "acme", 1)
	c, err := ca.IssueAdmin(t0, seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if leaf.Subject.CommonName != AdminCN || len(leaf.Subject.OrganizationalUnit) != 1 || leaf.Subject.OrganizationalUnit[0] != AdminOU {
		t.Errorf("subject %v", leaf.Subject)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool(ca), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("admin certificate does not verify as a client: %v", err)
	}
	id, err := IdentityOf(leaf)
	if err != nil || !id.Admin || id.UUID != "" || id.Production {
		t.Errorf("IdentityOf(admin) = %+v, %v", id, err)
	}
}

// signed makes a certificate with an arbitrary subject, as some other
// issuer might, to feed IdentityOf.
func signed(t *testing.T, ca *CA, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, err := DeviceKey([32]byte{byte(len(subject.CommonName))})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(99), Subject: subject, NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIdentityOf(t *testing.T) {
	ca := newTestCA(t, "acme", 1)
	prod := []pkix.AttributeTypeAndValue{{Type: oidBusinessCategory, Value: "production"}}
	other := []pkix.AttributeTypeAndValue{{Type: oidBusinessCategory, Value: "staging"}}
	for _, tc := range []struct {
		name    string
		subject pkix.Name
		want    Identity
		wantErr error
	}{
		{"test device", pkix.Name{CommonName: testUUID, OrganizationalUnit: []string{"acme"}}, Identity{UUID: testUUID}, nil},
		{"production device", pkix.Name{CommonName: testUUID, OrganizationalUnit: []string{"acme"}, ExtraNames: prod}, Identity{UUID: testUUID, Production: true}, nil},
		{"other business category", pkix.Name{CommonName: testUUID, ExtraNames: other}, Identity{UUID: testUUID}, nil},
		{"lower-case CN", pkix.Name{CommonName: strings.ToLower(testUUID)}, Identity{UUID: testUUID}, nil},
		{"admin", pkix.Name{CommonName: AdminCN, OrganizationalUnit: []string{AdminOU}}, Identity{Admin: true}, nil},
		{"admin among OUs", pkix.Name{CommonName: "ops", OrganizationalUnit: []string{"acme", AdminOU}}, Identity{Admin: true}, nil},
		{"admin is case-sensitive", pkix.Name{CommonName: "ops", OrganizationalUnit: []string{"Admin"}}, Identity{}, ErrBadIdentity},
		{"CN not a UUID", pkix.Name{CommonName: "nxp-00000000003932ce-0001", OrganizationalUnit: []string{"acme"}}, Identity{}, ErrBadIdentity},
		{"empty CN", pkix.Name{OrganizationalUnit: []string{"acme"}}, Identity{}, ErrBadIdentity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := signed(t, ca, tc.subject)
			got, err := IdentityOf(cert)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
			tc.want.PubKeySHA256 = hex.EncodeToString(sum[:])
			if got != tc.want {
				t.Errorf("IdentityOf = %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := IdentityOf(nil); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("IdentityOf(nil): %v", err)
	}

	// The key pin is the key's: the same key under a new certificate keeps
	// it, another key changes it.
	a, _ := ca.IssueDevice(DeviceSpec{UUID: testUUID}, t0, seeded(10))
	b, _ := ca.IssueDevice(DeviceSpec{UUID: testUUID}, t0.Add(time.Hour), seeded(10))
	c, _ := ca.IssueDevice(DeviceSpec{UUID: testUUID}, t0, seeded(11))
	ia, _ := IdentityOf(a.Leaf)
	ib, _ := IdentityOf(b.Leaf)
	ic, _ := IdentityOf(c.Leaf)
	if ia.PubKeySHA256 != ib.PubKeySHA256 || ia.PubKeySHA256 == ic.PubKeySHA256 || len(ia.PubKeySHA256) != 64 {
		t.Errorf("key pins: same key %s / %s, other key %s", ia.PubKeySHA256, ib.PubKeySHA256, ic.PubKeySHA256)
	}
}

// handshake runs one TLS handshake on 127.0.0.1 between a server with the
// gateway certificate requiring a client certificate from serverCA, and a
// client presenting client. Each side uses its own clock. It returns the
// server's view of the client's identity or the server's handshake error.
func handshake(t *testing.T, server tls.Certificate, clientCAs *x509.CertPool, serverNow time.Time,
	client tls.Certificate, rootCAs *x509.CertPool, clientNow time.Time) (Identity, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		id  Identity
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		s := tls.Server(conn, &tls.Config{
			Certificates: []tls.Certificate{server},
			ClientCAs:    clientCAs,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
			Time:         func() time.Time { return serverNow },
		})
		if err := s.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		id, err := IdentityOf(s.ConnectionState().PeerCertificates[0])
		s.Write([]byte{1})
		done <- result{id, err}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		Certificates: []tls.Certificate{client},
		RootCAs:      rootCAs,
		Time:         func() time.Time { return clientNow },
	})
	if err == nil {
		// In TLS 1.3 the server judges the client certificate after the
		// client's handshake returns; reading waits for that verdict.
		var b [1]byte
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, rerr := c.Read(b[:])
		r := <-done
		c.Close()
		if r.err == nil && rerr != nil {
			t.Fatalf("server accepted but the client read failed: %v", rerr)
		}
		return r.id, r.err
	}
	r := <-done
	if r.err == nil {
		t.Fatalf("client handshake failed but the server accepted: %v", err)
	}
	return r.id, r.err
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "acme", 1)
	otherCA := newTestCA(t, "acme", 2)
	gw, err := ca.IssueServer(nil, t0, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := ca.IssueAdmin(t0, seeded(4))
	testDev, _ := ca.IssueDevice(DeviceSpec{UUID: testUUID}, t0, seeded(5))
	prodDev, _ := ca.IssueDevice(DeviceSpec{UUID: testUUID, Production: true}, t0, seeded(6))
	foreign, _ := otherCA.IssueDevice(DeviceSpec{UUID: testUUID}, t0, seeded(7))
	// Issued 19 years before the CA, so it expires a year after it while
	// the CA and the gateway certificate are still valid.
	old, _ := ca.IssueDevice(DeviceSpec{UUID: testUUID}, t0.AddDate(-19, 0, 0), seeded(8))

	later := t0.AddDate(2, 0, 0)
	for _, tc := range []struct {
		name      string
		client    tls.Certificate
		serverNow time.Time
		want      Identity
		wantErr   func(error) bool
	}{
		{name: "test device", client: testDev, serverNow: t0, want: Identity{UUID: testUUID}},
		{name: "production device", client: prodDev, serverNow: t0, want: Identity{UUID: testUUID, Production: true}},
		{name: "admin", client: admin, serverNow: t0, want: Identity{Admin: true}},
		{name: "device from another CA", client: foreign, serverNow: t0, wantErr: func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
		{name: "expired device", client: old, serverNow: later, wantErr: func(err error) bool {
			var ci x509.CertificateInvalidError
			return errors.As(err, &ci) && ci.Reason == x509.Expired
		}},
		{name: "server certificate as client", client: gw, serverNow: t0, wantErr: func(err error) bool {
			var ci x509.CertificateInvalidError
			return errors.As(err, &ci) && ci.Reason == x509.IncompatibleUsage
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := handshake(t, gw, pool(ca), tc.serverNow, tc.client, pool(ca), t0.Add(time.Minute))
			if tc.wantErr != nil {
				if err == nil || !tc.wantErr(err) {
					t.Fatalf("server handshake error %v, want a refusal of this kind", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			want, _ := IdentityOf(tc.client.Leaf)
			if got != want || got.UUID != tc.want.UUID || got.Production != tc.want.Production || got.Admin != tc.want.Admin {
				t.Errorf("server sees %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDeviceKey(t *testing.T) {
	n := p256.Params().N
	seen := map[string]bool{}
	for i, seed := range [][32]byte{{}, {1}, {2}, bytes32(0xff), bytes32(0x80)} {
		k, err := DeviceKey(seed)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		again, _ := DeviceKey(seed)
		if !k.Equal(again) {
			t.Errorf("seed %d: two derivations differ", i)
		}
		raw, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		d := new(big.Int).SetBytes(raw)
		if d.Sign() <= 0 || d.Cmp(n) >= 0 {
			t.Errorf("seed %d: scalar out of [1, n-1]", i)
		}
		// The simple definition: SHA-512(label || seed) mod (n-1) + 1.
		h := sha512Sum(append([]byte(deviceKeyLabel), seed[:]...))
		want := new(big.Int).Mod(new(big.Int).SetBytes(h), new(big.Int).Sub(n, big.NewInt(1)))
		want.Add(want, big.NewInt(1))
		if d.Cmp(want) != 0 {
			t.Errorf("seed %d: scalar differs from its definition", i)
		}
		if seen[hex.EncodeToString(raw)] {
			t.Errorf("seed %d: scalar repeats another seed's", i)
		}
		seen[hex.EncodeToString(raw)] = true
		digest := sha256.Sum256([]byte("check-in"))
		sig, err := k.Sign(nil, digest[:], crypto.SHA256) // nil: RFC 6979, no randomness needed
		if err != nil || !ecdsa.VerifyASN1(&k.PublicKey, digest[:], sig) {
			t.Errorf("seed %d: key does not sign and verify: %v", i, err)
		}
		if _, err := k.PublicKey.ECDH(); err != nil {
			t.Errorf("seed %d: public key not on the curve: %v", i, err)
		}
	}
}

func bytes32(b byte) (s [32]byte) {
	for i := range s {
		s[i] = b
	}
	return s
}

var uuidV4 = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)

func TestNewUUID(t *testing.T) {
	r := seeded(1)
	seen := map[string]bool{}
	for range 1000 {
		u, err := NewUUID(r)
		if err != nil {
			t.Fatal(err)
		}
		if !uuidV4.MatchString(u) {
			t.Fatalf("%q is not an upper-case version 4 UUID", u)
		}
		if seen[u] {
			t.Fatalf("%q repeats", u)
		}
		seen[u] = true
	}
	a, _ := NewUUID(seeded(9))
	b, _ := NewUUID(seeded(9))
	if a != b {
		t.Errorf("the same random bytes gave %s and %s", a, b)
	}
	if got := formatUUIDv4([16]byte{0: 0xab, 15: 0x01}); got != "AB000000-0000-4000-8000-000000000001" {
		t.Errorf("formatUUIDv4 = %s", got)
	}
	if _, err := NewUUID(bytes.NewReader(make([]byte, 15))); !errors.Is(err, ErrRandom) {
		t.Errorf("short random source: %v, want ErrRandom", err)
	}
}

func TestParseUUID(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{testUUID, testUUID},
		{strings.ToLower(testUUID), testUUID},
		// Foundries' MAC-based UUIDs are not version 4 and still valid.
		{"AA000000-0000-0000-0000-00049F0512AB", "AA000000-0000-0000-0000-00049F0512AB"},
		{"", ""},
		{"6F1C2A4B93D74E218A5C0B7D3E9F1A26", ""},
		{"6F1C2A4B-93D7-4E21-8A5C-0B7D3E9F1A2G", ""},
		{"6F1C2A4B-93D74-E21-8A5C-0B7D3E9F1A26", ""},
		{" 6F1C2A4B-93D7-4E21-8A5C-0B7D3E9F1A2", ""},
		{"{6F1C2A4B-93D7-4E21-8A5C-0B7D3E9F1A}", ""},
		{"00000000-0000-0000-0000-000000000000", ""},
	} {
		got, serial, err := parseUUID(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrBadUUID) {
				t.Errorf("parseUUID(%q) = %q, %v; want ErrBadUUID", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want || hex.EncodeToString(serial.FillBytes(make([]byte, 16))) != strings.ToLower(strings.ReplaceAll(tc.want, "-", "")) {
			t.Errorf("parseUUID(%q) = %q, %x, %v; want %q", tc.in, got, serial, err, tc.want)
		}
	}
}

func sha512Sum(b []byte) []byte {
	h := sha512.Sum512(b)
	return h[:]
}
