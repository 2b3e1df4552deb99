package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The files of a PKI directory, as Init writes them. Keys are PKCS#8 PEM
// (mode 0600), certificates PEM (mode 0644).
const (
	CACertFile      = "ca.crt"
	CAKeyFile       = "ca.key"
	GatewayCertFile = "gateway.crt"
	GatewayKeyFile  = "gateway.key"
	AdminCertFile   = "admin.crt"
	AdminKeyFile    = "admin.key"
	// AdminTokenFile holds 32 random bytes in hex: the bearer token of the
	// gateway's admin API, for clients that cannot present a certificate.
	AdminTokenFile = "admin.token"
	// DevicesDir is where Issue writes by default: one <UUID>.pem per device
	// (certificate, then PKCS#8 key) and IndexFile.
	DevicesDir = "devices"
	// IndexFile lists the issued devices, one "<UUID> production|test" line
	// each, in issue order.
	IndexFile = "index.txt"
)

// More errors of this package; test them with errors.Is. A missing file
// is reported wrapping fs.ErrNotExist.
var (
	// ErrExists: Init found a CA key already, or Issue found a device file
	// it was about to write. Nothing existing is ever overwritten.
	ErrExists = errors.New("pki: already exists")
	// ErrCorrupt: a file of a PKI directory does not hold what its name says
	// (no PEM block, an unparsable certificate or key, a key of another
	// type, a key that does not match its certificate).
	ErrCorrupt = errors.New("pki: corrupt PKI file")
)

// Init creates the PKI directory dir (and its parents) for factory: the
// factory CA, the gateway certificate for hosts (see CA.IssueServer), the
// admin certificate and admin token. All key material is read from random.
// The CA key is written last and only if no CA key exists, so a directory
// that holds ca.key is complete.
//
// Errors: ErrExists when dir/ca.key exists; ErrBadFactory, ErrBadHost,
// ErrRandom; file system errors as they come.
func Init(dir, factory string, hosts []string, now time.Time, random io.Reader) error {
	caKeyPath := filepath.Join(dir, CAKeyFile)
	if _, err := os.Lstat(caKeyPath); err == nil {
		return fmt.Errorf("%w: %s", ErrExists, caKeyPath)
	}
	ca, err := NewCA(factory, now, random)
	if err != nil {
		return err
	}
	gw, err := ca.IssueServer(hosts, now, random)
	if err != nil {
		return err
	}
	admin, err := ca.IssueAdmin(now, random)
	if err != nil {
		return err
	}
	var token [32]byte
	if _, err := io.ReadFull(random, token[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrRandom, err)
	}
	caKey, err := keyPEM(ca.Key)
	if err != nil {
		return err
	}
	gwKey, err := keyPEM(gw.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	adminKey, err := keyPEM(admin.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pki: creating %s: %w", dir, err)
	}
	files := []struct {
		name string
		data []byte
		perm fs.FileMode
	}{
		{CACertFile, certPEM(ca.Cert.Raw), 0o644},
		{GatewayCertFile, certPEM(gw.Certificate[0]), 0o644},
		{GatewayKeyFile, gwKey, 0o600},
		{AdminCertFile, certPEM(admin.Certificate[0]), 0o644},
		{AdminKeyFile, adminKey, 0o600},
		{AdminTokenFile, []byte(hex.EncodeToString(token[:]) + "\n"), 0o600},
	}
	for _, f := range files {
		if err := writeFileAtomic(dir, f.name, f.data, f.perm, false); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(dir, CAKeyFile, caKey, 0o600, true); err != nil {
		return err
	}
	return syncDir(dir)
}

// writeFileAtomic writes dir/name through a synced temporary file, so the
// name never holds half a file. With exclusive, an existing dir/name is kept
// and ErrExists returned; otherwise it is replaced.
func writeFileAtomic(dir, name string, data []byte, perm fs.FileMode, exclusive bool) error {
	path := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a rename or link, this removes nothing that matters
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if exclusive {
		// A hard link fails when the name exists: create-if-absent, atomically.
		err = os.Link(tmp.Name(), path)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
	} else {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return nil
}

// syncDir makes the directory entries just created durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("pki: syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("pki: syncing %s: %w", dir, err)
	}
	return nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding a key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// readCert reads the first certificate of a PEM file.
func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s holds no PEM CERTIFICATE block", ErrCorrupt, path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return cert, nil
}

// readKey reads a PKCS#8 P-256 key from a PEM file.
func readKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s holds no PEM PRIVATE KEY block", ErrCorrupt, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != p256 {
		return nil, fmt.Errorf("%w: %s: not a P-256 ECDSA key", ErrCorrupt, path)
	}
	return key, nil
}

// LoadCA reads the factory CA of the PKI directory dir.
//
// Errors: fs.ErrNotExist (wrapped) when a file is missing; ErrCorrupt when
// the files do not hold a factory CA made by Init and its key.
func LoadCA(dir string) (*CA, error) {
	cert, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	key, err := readKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	factory, ok := strings.CutPrefix(cert.Subject.CommonName, caCNPrefix)
	if !ok || !cert.IsCA || !ValidFactory(factory) {
		return nil, fmt.Errorf("%w: %s is no fleetsim factory CA (CN %q)", ErrCorrupt, filepath.Join(dir, CACertFile), cert.Subject.CommonName)
	}
	ca := &CA{Cert: cert, Key: key, Factory: factory}
	if err := ca.check(); err != nil {
		return nil, fmt.Errorf("%w: %s and %s: %v", ErrCorrupt, CACertFile, CAKeyFile, err)
	}
	return ca, nil
}

// caPool reads dir/ca.crt as a certificate pool.
func caPool(dir string) (*x509.CertPool, error) {
	cert, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool, nil
}

// loadPair reads a certificate and key file pair for crypto/tls.
func loadPair(dir, certFile, keyFile string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Stat(p); err != nil {
			return tls.Certificate{}, fmt.Errorf("pki: reading %s: %w", p, err)
		}
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %s and %s: %v", ErrCorrupt, certPath, keyPath, err)
	}
	return pair, nil
}

// ServerTLS reads what the gateway's TLS listener needs from the PKI
// directory dir: its certificate and key, and the factory CA as the pool
// client certificates are verified against.
//
// Errors: fs.ErrNotExist (wrapped) for a missing file, ErrCorrupt.
func ServerTLS(dir string) (tls.Certificate, *x509.CertPool, error) {
	pair, err := loadPair(dir, GatewayCertFile, GatewayKeyFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool, err := caPool(dir)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return pair, pool, nil
}

// AdminTLS reads what an operator's client needs from the PKI directory
// dir: the admin certificate and key, the factory CA as the pool the
// gateway's certificate is verified against, and the admin token.
//
// Errors: fs.ErrNotExist (wrapped) for a missing file, ErrCorrupt (also for
// a token that is not 64 hex digits).
func AdminTLS(dir string) (tls.Certificate, *x509.CertPool, string, error) {
	pair, err := loadPair(dir, AdminCertFile, AdminKeyFile)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	pool, err := caPool(dir)
	if err != nil {
		return tls.Certificate{}, nil, "", err
	}
	path := filepath.Join(dir, AdminTokenFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, nil, "", fmt.Errorf("pki: reading %s: %w", path, err)
	}
	token := strings.TrimSpace(string(data))
	if b, err := hex.DecodeString(token); err != nil || len(b) != 32 {
		return tls.Certificate{}, nil, "", fmt.Errorf("%w: %s: want 64 hexadecimal digits", ErrCorrupt, path)
	}
	return pair, pool, token, nil
}

// LoadDevice reads a device file written by Issue: the certificate, then
// its PKCS#8 key, in one PEM file. The returned certificate has its Leaf.
//
// Errors: fs.ErrNotExist (wrapped) for a missing file, ErrCorrupt.
func LoadDevice(path string) (tls.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: reading %s: %w", path, err)
	}
	c, err := parseDevicePEM(data)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	return c, nil
}

// parseDevicePEM parses the bytes of a device file.
func parseDevicePEM(data []byte) (tls.Certificate, error) {
	c, err := tls.X509KeyPair(data, data)
	if err != nil {
		return tls.Certificate{}, err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return tls.Certificate{}, err
		}
	}
	return c, nil
}
