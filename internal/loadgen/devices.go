package loadgen

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Device is one virtual device's identity: the UUID its certificate carries
// as CN, whether the factory marked it as a production device, and the
// client certificate (with its key) it presents in the TLS handshake.
type Device struct {
	UUID       string
	Production bool
	Cert       tls.Certificate
}

// IndexEntry is one line of a device directory's index.txt.
type IndexEntry struct {
	UUID       string
	Production bool
}

// IndexFile is the name of the device list inside a device directory.
const IndexFile = "index.txt"

var (
	// ErrIndex reports a malformed index.txt: a line that is not
	// "<UUID> production|test", or a UUID listed twice.
	ErrIndex = errors.New("bad device index")
	// ErrNoDevices reports a device directory that lists no device.
	ErrNoDevices = errors.New("no devices")
	// ErrDeviceCert reports a device PEM file that cannot be used: missing,
	// not a certificate with its private key, or issued to another UUID.
	ErrDeviceCert = errors.New("bad device certificate")
)

// maxUUIDLen bounds a device name; the gateway uses it as a key and we use
// it as a file name, so anything longer is a broken index, not a device.
const maxUUIDLen = 128

// ParseIndex parses the text of index.txt: one "<UUID> production|test" per
// line, fields separated by blanks. Blank lines and lines starting with '#'
// are skipped. A UUID is 1 to 128 characters of letters, digits, '-', '_'
// and '.', not starting with '.', because it names the device's PEM file.
// Errors wrap ErrIndex and give the line number.
func ParseIndex(data []byte) ([]IndexEntry, error) {
	var out []IndexEntry
	seen := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		fields := bytes.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"<UUID> production|test\", got %d fields", ErrIndex, line, len(fields))
		}
		uuid := string(fields[0])
		if !validUUID(uuid) {
			return nil, fmt.Errorf("%w: line %d: %q is not a usable device UUID", ErrIndex, line, truncate(uuid, 40))
		}
		var prod bool
		switch string(fields[1]) {
		case "production":
			prod = true
		case "test":
		default:
			return nil, fmt.Errorf("%w: line %d: kind %q is neither production nor test", ErrIndex, line, truncate(string(fields[1]), 40))
		}
		if first, dup := seen[uuid]; dup {
			return nil, fmt.Errorf("%w: line %d: device %s already listed on line %d", ErrIndex, line, uuid, first)
		}
		seen[uuid] = line
		out = append(out, IndexEntry{UUID: uuid, Production: prod})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrIndex, line+1, err)
	}
	return out, nil
}

func validUUID(s string) bool {
	if s == "" || len(s) > maxUUIDLen || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// LoadDevices reads up to limit devices (all when limit <= 0) from dir, in the
// order of its index.txt: each <UUID>.pem holds the device certificate and
// its PKCS#8 key. The certificate's CN must be the UUID, since that is the
// identity the gateway will see. Errors: ErrIndex, ErrNoDevices,
// ErrDeviceCert (wrapped, naming the file), or the file system's error for
// an unreadable index.
func LoadDevices(dir string, limit int) ([]Device, error) {
	data, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		return nil, err
	}
	entries, err := ParseIndex(data)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: %s lists none", ErrNoDevices, filepath.Join(dir, IndexFile))
	}
	if limit > 0 && len(entries) > limit {
		entries = entries[:limit]
	}
	devs := make([]Device, 0, len(entries))
	for _, e := range entries {
		file := filepath.Join(dir, e.UUID+".pem")
		pemBytes, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDeviceCert, err)
		}
		cert, err := tls.X509KeyPair(pemBytes, pemBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrDeviceCert, file, err)
		}
		if cert.Leaf == nil || cert.Leaf.Subject.CommonName != e.UUID {
			cn := ""
			if cert.Leaf != nil {
				cn = cert.Leaf.Subject.CommonName
			}
			return nil, fmt.Errorf("%w: %s: certificate CN %q is not the device UUID %s", ErrDeviceCert, file, cn, e.UUID)
		}
		devs = append(devs, Device{UUID: e.UUID, Production: e.Production, Cert: cert})
	}
	return devs, nil
}
