package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readIndex returns the lines of out/index.txt.
func readIndex(t *testing.T, out string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// pemFiles lists the .pem files of out, sorted.
func pemFiles(t *testing.T, out string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(out, "*.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

func TestIssue(t *testing.T) {
	ca := newTestCA(t, "acme", 1)
	out := filepath.Join(t.TempDir(), "devices")
	seed := uint64(42)
	uuids, err := Issue(ca, out, 7, true, t0, &seed, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(uuids) != 7 {
		t.Fatalf("%d UUIDs, want 7", len(uuids))
	}
	index := readIndex(t, out)
	for i, u := range uuids {
		if index[i] != u+" production" {
			t.Errorf("index line %d = %q, want %q", i, index[i], u+" production")
		}
		path := filepath.Join(out, u+".pem")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600 (it holds the device key)", u, fi.Mode().Perm())
		}
		c, err := LoadDevice(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: pool(ca), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
		id, err := IdentityOf(c.Leaf)
		if err != nil || id.UUID != u || !id.Production || id.Admin {
			t.Errorf("%s: identity %+v, %v", u, id, err)
		}
		if !uuidV4.MatchString(u) {
			t.Errorf("%q is not an upper-case version 4 UUID", u)
		}
	}

	// The same seed on a fresh directory gives the same bytes; issuing in
	// two steps gives the same fleet as issuing at once, with any number
	// of workers.
	split := filepath.Join(t.TempDir(), "devices")
	a, err := Issue(ca, split, 3, true, t0, &seed, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Issue(ca, split, 4, true, t0, &seed, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(append(a, b...), uuids) {
		t.Errorf("3+4 devices %v, want the 7 of one run %v", append(a, b...), uuids)
	}
	for _, u := range uuids {
		x, _ := os.ReadFile(filepath.Join(out, u+".pem"))
		y, _ := os.ReadFile(filepath.Join(split, u+".pem"))
		if !bytes.Equal(x, y) {
			t.Errorf("%s: seeded device files differ between runs", u)
		}
	}
	if got := readIndex(t, split); !slices.Equal(got, index) {
		t.Errorf("index of 3+4 %q, want %q", got, index)
	}

	other := uint64(43)
	c, err := Issue(ca, t.TempDir(), 7, true, t0, &other, 2)
	if err != nil || slices.Equal(c, uuids) {
		t.Errorf("another seed gave %v, %v", c, err)
	}

	// Without a seed: real randomness, unique UUIDs, test devices.
	out2 := t.TempDir()
	r, err := Issue(ca, out2, 20, false, t0, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s := slices.Compact(slices.Sorted(slices.Values(r))); len(s) != 20 {
		t.Errorf("%d distinct UUIDs of 20", len(s))
	}
	for i, line := range readIndex(t, out2) {
		if line != r[i]+" test" {
			t.Errorf("index line %d = %q", i, line)
		}
	}
	if got := len(pemFiles(t, out2)); got != 20 {
		t.Errorf("%d device files, want 20", got)
	}
}

func TestIssueErrors(t *testing.T) {
	ca := newTestCA(t, "acme", 1)
	seed := uint64(7)
	for _, n := range []int{0, -1} {
		if _, err := Issue(ca, t.TempDir(), n, false, t0, &seed, 1); !errors.Is(err, ErrBadCount) {
			t.Errorf("count %d: %v, want ErrBadCount", n, err)
		}
	}
	if _, err := Issue(&CA{}, t.TempDir(), 1, false, t0, &seed, 1); !errors.Is(err, ErrBadCA) {
		t.Errorf("empty CA: %v, want ErrBadCA", err)
	}

	// Learn the fleet of this seed, then plant a file where its third
	// device goes: Issue keeps the two devices before it, removes any it
	// wrote after it, and never overwrites the planted file.
	want, err := Issue(ca, t.TempDir(), 6, false, t0, &seed, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 4} {
		out := t.TempDir()
		planted := filepath.Join(out, want[2]+".pem")
		if err := os.WriteFile(planted, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Issue(ca, out, 6, false, t0, &seed, workers)
		if !errors.Is(err, ErrExists) {
			t.Fatalf("workers %d: %v, want ErrExists", workers, err)
		}
		if !slices.Equal(got, want[:2]) {
			t.Errorf("workers %d: kept %v, want %v", workers, got, want[:2])
		}
		if idx := readIndex(t, out); !slices.Equal(idx, []string{want[0] + " test", want[1] + " test"}) {
			t.Errorf("workers %d: index %q", workers, idx)
		}
		wantFiles := []string{want[0] + ".pem", want[1] + ".pem", want[2] + ".pem"}
		slices.Sort(wantFiles)
		if files := pemFiles(t, out); !slices.Equal(files, wantFiles) {
			t.Errorf("workers %d: files %v, want %v", workers, files, wantFiles)
		}
		if b, _ := os.ReadFile(planted); string(b) != "keep me" {
			t.Errorf("workers %d: the existing file was overwritten", workers)
		}
	}

	torn := t.TempDir()
	if err := os.WriteFile(filepath.Join(torn, IndexFile), []byte("6F1C2A4B-93D7-4E21-8A5C-0B7D3E9F1A26 te"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Issue(ca, torn, 1, false, t0, &seed, 1); !errors.Is(err, ErrCorrupt) {
		t.Errorf("index ending in a partial line: %v, want ErrCorrupt", err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	if _, err := Issue(ca, notDir, 1, false, t0, &seed, 1); err == nil {
		t.Error("Issue into a regular file succeeded")
	}
}

// FuzzIdentityOf feeds IdentityOf any certificate x509 will parse: it never
// panics, and what it accepts is a canonical UUID or an admin.
func FuzzIdentityOf(f *testing.F) {
	ca := newTestCA(f, "acme", 1)
	dev, _ := ca.IssueDevice(DeviceSpec{UUID: testUUID, Production: true}, t0, seeded(2))
	admin, _ := ca.IssueAdmin(t0, seeded(3))
	f.Add(dev.Certificate[0])
	f.Add(admin.Certificate[0])
	f.Add(ca.Cert.Raw)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := IdentityOf(cert)
		if err != nil {
			if !errors.Is(err, ErrBadIdentity) {
				t.Fatalf("error %v is not ErrBadIdentity", err)
			}
			return
		}
		if len(id.PubKeySHA256) != 64 {
			t.Fatalf("key pin %q", id.PubKeySHA256)
		}
		if id.UUID == "" && !id.Admin {
			t.Fatal("accepted a certificate that is neither a device nor an admin")
		}
		if u, ok := CanonicalUUID(id.UUID); id.UUID != "" && (!ok || u != id.UUID) {
			t.Fatalf("UUID %q is not canonical", id.UUID)
		}
	})
}

// FuzzParseUUID checks the UUID parser against its definition.
func FuzzParseUUID(f *testing.F) {
	for _, s := range []string{testUUID, strings.ToLower(testUUID), "", "00000000-0000-0000-0000-000000000000", "zz", testUUID + "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, serial, err := parseUUID(s)
		if err != nil {
			if !errors.Is(err, ErrBadUUID) {
				t.Fatalf("error %v is not ErrBadUUID", err)
			}
			return
		}
		if !strings.EqualFold(got, s) || got != strings.ToUpper(s) || serial.Sign() <= 0 || serial.BitLen() > 128 {
			t.Fatalf("parseUUID(%q) = %q, %v", s, got, serial)
		}
		if formatted := strings.ToUpper(serial.Text(16)); strings.Repeat("0", 32-len(formatted))+formatted != strings.ReplaceAll(got, "-", "") {
			t.Fatalf("serial %x does not hold the UUID %s", serial, got)
		}
	})
}

// FuzzLoadDevice feeds a device file's parser arbitrary bytes: it never
// panics, and what it accepts has a leaf that matches its key.
func FuzzLoadDevice(f *testing.F) {
	ca := newTestCA(f, "acme", 1)
	dir := f.TempDir()
	seed := uint64(1)
	uuids, err := Issue(ca, dir, 1, false, t0, &seed, 1)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, uuids[0]+".pem"))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(certPEM(ca.Cert.Raw))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseDevicePEM(data)
		if err != nil {
			return
		}
		if c.Leaf == nil || len(c.Certificate) == 0 {
			t.Fatal("accepted a device file without a leaf")
		}
	})
}

// BenchmarkIssue measures the cost of one device written by Issue with two
// workers: key derivation, signing, PEM encoding and one file each.
func BenchmarkIssue(b *testing.B) {
	ca := newTestCA(b, "acme", 1)
	out := b.TempDir()
	seed := uint64(1)
	b.ResetTimer()
	if _, err := Issue(ca, out, b.N, false, t0, &seed, 2); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIssueDevice measures signing alone, in memory on one core.
func BenchmarkIssueDevice(b *testing.B) {
	ca := newTestCA(b, "acme", 1)
	r := seeded(2)
	for b.Loop() {
		if _, err := ca.IssueDevice(DeviceSpec{UUID: testUUID}, t0, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeviceKey measures deriving one device key.
func BenchmarkDeviceKey(b *testing.B) {
	var seed [32]byte
	for b.Loop() {
		seed[0]++
		if _, err := DeviceKey(seed); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDeviceTemplateMatchesCreateCertificate checks Issue's fast signing
// path against x509.CreateCertificate: with deterministic signatures both
// must give the same bytes, for serials of every length and both kinds of
// device.
func TestDeviceTemplateMatchesCreateCertificate(t *testing.T) {
	r := seeded(5)
	for _, factory := range []string{"acme", "a", strings.Repeat("f", 64)} {
		ca := newTestCA(t, factory, 3)
		for _, production := range []bool{false, true} {
			tmpl, err := ca.newDeviceTemplate(production, t0)
			if err != nil {
				t.Fatal(err)
			}
			cases := [][16]byte{{}, {0: 0x80}, {0: 0x7f}, {0: 0, 1: 0x80}, {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 1}}
			for range 40 {
				var b [16]byte
				r.Read(b[:])
				cases = append(cases, b)
			}
			for _, raw := range cases {
				bits := uuidV4Bits(raw)
				uuid := formatUUID(bits)
				var ks [32]byte
				r.Read(ks[:])
				key, err := DeviceKey(ks)
				if err != nil {
					t.Fatal(err)
				}
				fast, err := tmpl.sign(uuid, bits, key, nil)
				if err != nil {
					t.Fatal(err)
				}
				simple, err := ca.signDevice(DeviceSpec{UUID: uuid, Production: production}, &key.PublicKey, t0, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(fast, simple) {
					t.Fatalf("factory %q production %v device %s: template certificate differs from CreateCertificate's", factory, production, uuid)
				}
			}
		}
	}
}

// BenchmarkSignDevice compares signing one device certificate through
// x509.CreateCertificate (simple) with Issue's template (template).
func BenchmarkSignDevice(b *testing.B) {
	ca := newTestCA(b, "acme", 1)
	key, _ := DeviceKey([32]byte{1})
	bits := uuidV4Bits([16]byte{1, 2, 3})
	uuid := formatUUID(bits)
	b.Run("simple", func(b *testing.B) {
		for b.Loop() {
			if _, err := ca.signDevice(DeviceSpec{UUID: uuid}, &key.PublicKey, t0, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("template", func(b *testing.B) {
		tmpl, err := ca.newDeviceTemplate(false, t0)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := tmpl.sign(uuid, bits, key, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
