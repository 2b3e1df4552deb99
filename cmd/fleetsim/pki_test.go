package main

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/internal/pki"
)

const pkiNow = "2026-11-21T09:00:00Z"

func TestPKIInitAndIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out := mustCLI(t, "pki", "init", "--dir", dir, "--factory", "acme", "--host", "GW.acme.example,10.0.0.9", "--host", "ostree.acme.example", "--host", "localhost", "--now", pkiNow)
	if out != `created factory CA "acme" in `+dir+" (gateway hosts: localhost, gw.acme.example, ostree.acme.example, 127.0.0.1, ::1, 10.0.0.9)\n" {
		t.Errorf("init printed %q", out)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Factory != "acme" || !ca.Cert.NotBefore.Equal(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("CA factory %q from %v", ca.Factory, ca.Cert.NotBefore)
	}
	server, _, err := pki.ServerTLS(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"gw.acme.example", "ostree.acme.example", "10.0.0.9", "localhost", "127.0.0.1"} {
		if err := server.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("gateway certificate: %v", err)
		}
	}

	out = mustCLI(t, "pki", "issue", "--pki", dir, "--count", "5", "--production", "--seed", "3", "--now", pkiNow)
	devices := filepath.Join(dir, "devices")
	if !regexp.MustCompile(`^issued 5 production devices in [0-9.]+s \([0-9]+/s\) to ` + regexp.QuoteMeta(devices) + "\n$").MatchString(out) {
		t.Errorf("issue printed %q", out)
	}
	other := filepath.Join(t.TempDir(), "fleet")
	mustCLI(t, "pki", "issue", "--pki", dir, "--count", "2", "--out", other, "--workers", "1")

	index, err := os.ReadFile(filepath.Join(devices, "index.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(index), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("index %q: want 5 lines", index)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, line := range lines {
		uuid, kind, ok := strings.Cut(line, " ")
		if !ok || kind != "production" {
			t.Fatalf("index line %q", line)
		}
		c, err := pki.LoadDevice(filepath.Join(devices, uuid+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s: %v", uuid, err)
		}
		id, err := pki.IdentityOf(c.Leaf)
		if err != nil || id.UUID != uuid || !id.Production {
			t.Errorf("%s: identity %+v, %v", uuid, id, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(other, "index.txt")); err != nil || strings.Count(string(b), " test\n") != 2 {
		t.Errorf("--out index %q, %v: want 2 test devices", b, err)
	}

	// The same seed on a fresh PKI directory's CA gives the same devices.
	again := filepath.Join(t.TempDir(), "again")
	mustCLI(t, "pki", "issue", "--pki", dir, "--count", "5", "--production", "--seed", "3", "--now", pkiNow, "--out", again)
	b, _ := os.ReadFile(filepath.Join(again, "index.txt"))
	if !bytes.Equal(b, index) {
		t.Errorf("the same seed gave index %q, want %q", b, index)
	}

	// Admin material loads too.
	if _, _, token, err := pki.AdminTLS(dir); err != nil || len(token) != 64 {
		t.Errorf("AdminTLS: token %q, %v", token, err)
	}
}

func TestPKIErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	mustCLI(t, "pki", "init", "--dir", dir, "--now", pkiNow)
	caKey, _ := os.ReadFile(filepath.Join(dir, "ca.key"))

	wantRefusal(t, 1, "already holds a factory CA", "pki", "init", "--dir", dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "ca.key")); !bytes.Equal(b, caKey) {
		t.Error("a refused init changed ca.key")
	}
	wantRefusal(t, 2, "--dir DIR is required", "pki", "init")
	wantRefusal(t, 2, `--factory "admin"`, "pki", "init", "--dir", t.TempDir(), "--factory", "admin")
	wantRefusal(t, 2, `--factory "a b"`, "pki", "init", "--dir", t.TempDir(), "--factory", "a b")
	wantRefusal(t, 2, "--host", "pki", "init", "--dir", t.TempDir(), "--host", "bad host")
	wantRefusal(t, 2, "--now", "pki", "init", "--dir", t.TempDir(), "--now", "yesterday")
	wantRefusal(t, 2, "unknown flag", "pki", "init", "--dir", t.TempDir(), "--bogus")

	wantRefusal(t, 2, "--pki DIR is required", "pki", "issue", "--count", "1")
	wantRefusal(t, 2, "--count 0", "pki", "issue", "--pki", dir)
	wantRefusal(t, 2, "--count -3", "pki", "issue", "--pki", dir, "--count", "-3")
	wantRefusal(t, 2, "invalid argument", "pki", "issue", "--pki", dir, "--count", "many")
	wantRefusal(t, 2, "--workers -1", "pki", "issue", "--pki", dir, "--count", "1", "--workers", "-1")
	wantRefusal(t, 2, "invalid argument", "pki", "issue", "--pki", dir, "--count", "1", "--seed", "-1")
	empty := t.TempDir()
	wantRefusal(t, 1, "holds no factory CA", "pki", "issue", "--pki", empty, "--count", "1")

	broken := t.TempDir()
	mustCLI(t, "pki", "init", "--dir", broken)
	os.WriteFile(filepath.Join(broken, "ca.key"), []byte("not a key"), 0o600)
	wantRefusal(t, 1, "corrupt", "pki", "issue", "--pki", broken, "--count", "1")

	// A device file in the way is never overwritten.
	first := filepath.Join(t.TempDir(), "first")
	mustCLI(t, "pki", "issue", "--pki", dir, "--count", "1", "--seed", "9", "--out", first)
	idx, _ := os.ReadFile(filepath.Join(first, "index.txt"))
	uuid, _, _ := strings.Cut(string(idx), " ")
	blocked := t.TempDir()
	os.WriteFile(filepath.Join(blocked, uuid+".pem"), []byte("mine"), 0o600)
	wantRefusal(t, 1, "0 of 1 devices issued", "pki", "issue", "--pki", dir, "--count", "1", "--seed", "9", "--out", blocked)
	if b, _ := os.ReadFile(filepath.Join(blocked, uuid+".pem")); string(b) != "mine" {
		t.Error("issue overwrote an existing device file")
	}

	for _, args := range [][]string{{"pki", "--help"}, {"pki", "init", "--help"}, {"pki", "issue", "--help"}} {
		if out := mustCLI(t, args...); !strings.Contains(out, "Usage:") {
			t.Errorf("%v: no usage text", args)
		}
	}
}
