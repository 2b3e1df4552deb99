package pki

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitAndLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if err := Init(dir, "acme", []string{"gw.example.com", "10.0.0.7"}, t0, seeded(1)); err != nil {
		t.Fatal(err)
	}
	for name, perm := range map[string]fs.FileMode{
		CACertFile: 0o644, CAKeyFile: 0o600, GatewayCertFile: 0o644, GatewayKeyFile: 0o600,
		AdminCertFile: 0o644, AdminKeyFile: 0o600, AdminTokenFile: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != perm {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), perm)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 7 {
		t.Errorf("%d entries in the PKI directory, want 7 (no temporary files left)", len(entries))
	}

	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Factory != "acme" {
		t.Errorf("factory %q", ca.Factory)
	}
	want := newTestCA(t, "acme", 1) // Init reads the CA key first from its source
	if !ca.Key.Equal(want.Key) {
		t.Error("Init's CA key is not the one its random source gives")
	}

	server, clientCAs, err := ServerTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Leaf.Verify(x509.VerifyOptions{Roots: clientCAs, DNSName: "gw.example.com", CurrentTime: t0}); err != nil {
		t.Errorf("gateway certificate for gw.example.com: %v", err)
	}
	admin, rootCAs, token, err := AdminTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := hex.DecodeString(token); err != nil || len(b) != 32 {
		t.Errorf("admin token %q: want 64 hex digits", token)
	}
	dev, err := ca.IssueDevice(DeviceSpec{UUID: testUUID, Production: true}, t0, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	// Both kinds of client get through the gateway's listener.
	if id, err := handshake(t, server, clientCAs, t0, admin, rootCAs, t0); err != nil || !id.Admin {
		t.Errorf("admin handshake: server sees %+v, %v", id, err)
	}
	if id, err := handshake(t, server, clientCAs, t0, dev, rootCAs, t0); err != nil || id.UUID != testUUID || !id.Production {
		t.Errorf("device handshake: server sees %+v, %v", id, err)
	}

	if err := Init(dir, "other", nil, t0, seeded(3)); !errors.Is(err, ErrExists) {
		t.Errorf("second Init: %v, want ErrExists", err)
	}
	if again, _ := LoadCA(dir); again == nil || !again.Key.Equal(ca.Key) {
		t.Error("a refused Init changed the CA")
	}
	if err := Init(t.TempDir(), "admin", nil, t0, seeded(3)); !errors.Is(err, ErrBadFactory) {
		t.Errorf("Init with factory admin: %v, want ErrBadFactory", err)
	}
	if err := Init(t.TempDir(), "acme", []string{"bad host"}, t0, seeded(3)); !errors.Is(err, ErrBadHost) {
		t.Errorf("Init with a bad host: %v, want ErrBadHost", err)
	}
}

// copyPKI copies a PKI directory so a test can damage one file of it.
func copyPKI(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestLoadErrors(t *testing.T) {
	good := t.TempDir()
	if err := Init(good, "acme", nil, t0, seeded(1)); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(good, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		file    string
		data    []byte // nil removes the file
		load    func(dir string) error
		wantErr error
	}{
		{"no CA key", CAKeyFile, nil, loadCA, fs.ErrNotExist},
		{"no CA certificate", CACertFile, nil, loadCA, fs.ErrNotExist},
		{"CA certificate not PEM", CACertFile, []byte("hello"), loadCA, ErrCorrupt},
		{"CA certificate garbage DER", CACertFile, certPEM([]byte{0x30, 0x03, 1, 2, 3}), loadCA, ErrCorrupt},
		{"CA key is the gateway's", CAKeyFile, read(GatewayKeyFile), loadCA, ErrCorrupt},
		{"CA key is a certificate", CAKeyFile, read(CACertFile), loadCA, ErrCorrupt},
		{"CA certificate is the gateway's", CACertFile, read(GatewayCertFile), loadCA, ErrCorrupt},
		{"no gateway key", GatewayKeyFile, nil, serverTLS, fs.ErrNotExist},
		{"gateway key is the admin's", GatewayKeyFile, read(AdminKeyFile), serverTLS, ErrCorrupt},
		{"server without CA", CACertFile, nil, serverTLS, fs.ErrNotExist},
		{"no admin token", AdminTokenFile, nil, adminTLS, fs.ErrNotExist},
		{"short admin token", AdminTokenFile, []byte("abcd\n"), adminTLS, ErrCorrupt},
		{"admin certificate garbage", AdminCertFile, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), adminTLS, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyPKI(t, good)
			path := filepath.Join(dir, tc.file)
			if tc.data == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := tc.load(dir); !errors.Is(err, tc.wantErr) {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			} else if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
	if _, err := LoadDevice(filepath.Join(good, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadDevice(missing): %v", err)
	}
	if _, err := LoadDevice(filepath.Join(good, CACertFile)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("LoadDevice(certificate without key): %v", err)
	}
}

func loadCA(dir string) error { _, err := LoadCA(dir); return err }

func serverTLS(dir string) error { _, _, err := ServerTLS(dir); return err }

func adminTLS(dir string) error { _, _, _, err := AdminTLS(dir); return err }
