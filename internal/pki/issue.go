package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBadCount: Issue was asked for no devices, or a negative number.
var ErrBadCount = errors.New("pki: bad device count")

// deviceSeedLabel separates a fleet seed's per-device hash from any other
// use of the same seed.
const deviceSeedLabel = "fleetsim pki device v1\x00"

// deviceMaterial is what one device certificate is made from: the UUID's
// 16 random bytes and the 32 bytes of DeviceKey seed.
type deviceMaterial struct {
	uuid [16]byte
	key  [32]byte
}

// seededMaterial derives device number ordinal of a seeded fleet. Each device
// hashes (seed, ordinal) on its own, so workers need not agree on an order
// and a fleet issued in two runs equals one issued in a single run.
func seededMaterial(seed, ordinal uint64) deviceMaterial {
	var in [len(deviceSeedLabel) + 16]byte
	copy(in[:], deviceSeedLabel)
	binary.BigEndian.PutUint64(in[len(deviceSeedLabel):], seed)
	binary.BigEndian.PutUint64(in[len(deviceSeedLabel)+8:], ordinal)
	sum := sha512.Sum512(in[:])
	var m deviceMaterial
	copy(m.uuid[:], sum[:16])
	copy(m.key[:], sum[16:48])
	return m
}

// randomMaterial reads a real device's material from random.
func randomMaterial(random io.Reader) (deviceMaterial, error) {
	var m deviceMaterial
	if _, err := io.ReadFull(random, m.uuid[:]); err != nil {
		return m, fmt.Errorf("%w: %v", ErrRandom, err)
	}
	if _, err := io.ReadFull(random, m.key[:]); err != nil {
		return m, fmt.Errorf("%w: %v", ErrRandom, err)
	}
	return m, nil
}

// Issue writes count device files into the directory out (created if
// missing): out/<UUID>.pem holding the certificate then the PKCS#8 key (mode
// 0600), and one "<UUID> production|test" line per device appended to
// out/index.txt in issue order. It returns the new UUIDs in that order.
// workers goroutines (GOMAXPROCS when workers <= 0) sign and write in
// parallel, since writing one file per device costs as much as signing.
//
// With a seed, the UUIDs and keys are derived from (seed, position in
// index.txt), and signatures are deterministic (RFC 6979): the same seed on
// the same directory gives byte-identical files, and issuing 10 then 10
// devices gives the same fleet as issuing 20. Without a seed they come from
// crypto/rand, as real device keys must.
//
// On failure Issue keeps what it finished in order: the devices before the
// first failure are in index.txt and returned with the error, and the files
// of later devices are removed. index.txt is synced; device files are not
// (a lost device file is reissued, not recovered).
//
// Errors: ErrBadCount, ErrBadCA, ErrBadFactory, ErrExists when a device file
// already exists, ErrCorrupt when index.txt ends in a partial line, ErrRandom,
// and file system errors as they come.
func Issue(ca *CA, out string, count int, production bool, now time.Time, seed *uint64, workers int) ([]string, error) {
	if err := ca.check(); err != nil {
		return nil, err
	}
	if count <= 0 {
		return nil, fmt.Errorf("%w %d: want at least 1", ErrBadCount, count)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, count)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("pki: creating %s: %w", out, err)
	}
	indexPath := filepath.Join(out, IndexFile)
	first, err := indexLines(indexPath)
	if err != nil {
		return nil, err
	}
	tmpl, err := ca.newDeviceTemplate(production, now)
	if err != nil {
		return nil, err
	}

	uuids := make([]string, count)
	errs := make([]error, count)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var buf bytes.Buffer
			// Indices are claimed in increasing order and a claimed device
			// is always finished, so when a device fails every device
			// before it is done.
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= count {
					return
				}
				var m deviceMaterial
				var err error
				if seed != nil {
					m = seededMaterial(*seed, first+uint64(i))
				} else {
					m, err = randomMaterial(rand.Reader)
				}
				if err == nil {
					uuids[i], err = tmpl.writeDevice(out, m, seed != nil, &buf)
				}
				if err != nil {
					errs[i] = err
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()

	done := count
	for i, err := range errs {
		if err != nil {
			done = i
			break
		}
	}
	var firstErr error
	if done < count {
		firstErr = errs[done]
		for _, u := range uuids[done+1:] {
			if u != "" {
				os.Remove(filepath.Join(out, u+".pem"))
			}
		}
	}
	if done > 0 {
		if err := appendIndex(indexPath, uuids[:done], production); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return uuids[:done], firstErr
}

// writeDevice signs one device certificate from m and writes its file,
// never replacing an existing one. buf is the worker's scratch buffer.
func (t *deviceTemplate) writeDevice(out string, m deviceMaterial, deterministic bool, buf *bytes.Buffer) (string, error) {
	bits := uuidV4Bits(m.uuid)
	uuid := formatUUID(bits)
	key, err := DeviceKey(m.key)
	if err != nil {
		return "", err
	}
	var signing io.Reader = rand.Reader
	if deterministic {
		signing = nil
	}
	der, err := t.sign(uuid, bits, key, signing)
	if err != nil {
		return "", err
	}
	keyBytes, err := keyPEM(key)
	if err != nil {
		return "", err
	}
	buf.Reset()
	buf.Write(certPEM(der))
	buf.Write(keyBytes)
	path := filepath.Join(out, uuid+".pem")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%w: device file %s", ErrExists, path)
	}
	if err != nil {
		return "", fmt.Errorf("pki: writing %s: %w", path, err)
	}
	_, err = f.Write(buf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return uuid, nil
}

// indexLines counts the devices already in an index file (0 if absent).
func indexLines(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pki: reading %s: %w", path, err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return 0, fmt.Errorf("%w: %s ends in a partial line; repair or remove its last line", ErrCorrupt, path)
	}
	return uint64(bytes.Count(data, []byte{'\n'})), nil
}

// appendIndex appends one line per device and syncs the index.
func appendIndex(path string, uuids []string, production bool) error {
	kind := " test\n"
	if production {
		kind = " production\n"
	}
	var b bytes.Buffer
	b.Grow(len(uuids) * (36 + len(kind)))
	for _, u := range uuids {
		b.WriteString(u)
		b.WriteString(kind)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return nil
}
