package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrNotFound reports a hash the directory does not hold.
var ErrNotFound = errors.New("firmware: not found")

// ErrTooLarge reports an upload over the size limit given to Put.
var ErrTooLarge = errors.New("firmware: too large")

// Dir is a content-addressed firmware directory. It is safe for concurrent
// use; files are opened once and shared by every reader.
type Dir struct {
	root string
	mu   sync.RWMutex
	open map[string]openFile
}

// openFile is a stored file opened once; files never change after Put.
type openFile struct {
	f    *os.File
	size int64
}

// Open opens (creating if missing) the directory root.
func Open(root string) (*Dir, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	return &Dir{root: root, open: map[string]openFile{}}, nil
}

// Path is the URL path under which devices fetch the file with hash sum:
// "/mcu/files/<first byte hex>/<other 31 bytes hex>.bin".
func Path(sum string) string { return "/mcu/files/" + sum[:2] + "/" + sum[2:] + ".bin" }

// SumFromPath is Path's inverse for the two path elements after /mcu/files/.
// It accepts only lowercase hex of the right lengths, so a request can never
// name a file outside the directory.
func SumFromPath(h0, rest string) (string, bool) {
	rest, ok := strings.CutSuffix(rest, ".bin")
	if !ok || len(h0) != 2 || len(rest) != 62 || !isLowerHex(h0) || !isLowerHex(rest) {
		return "", false
	}
	return h0 + rest, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (d *Dir) file(sum string) string {
	return filepath.Join(d.root, sum[:2], sum[2:]+".bin")
}

// Put stores the bytes r yields, at most limit of them, and returns their
// SHA-256 (hex) and length. The file is written to a temporary name, synced
// and renamed, so a crash never leaves a partial file under a hash. Storing
// bytes already present changes nothing. check, when not nil, is given the
// complete file before it is stored; its error refuses the upload and leaves
// nothing behind.
//
// Errors: ErrTooLarge, check's error, file system errors.
func (d *Dir) Put(r io.Reader, limit int64, check func(f io.ReaderAt, size int64) error) (sum string, n int64, err error) {
	tmp, err := os.CreateTemp(d.root, ".upload-*")
	if err != nil {
		return "", 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err = io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, limit+1))
	if err != nil {
		return "", 0, err
	}
	if n > limit {
		return "", 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if check != nil {
		if err = check(tmp, n); err != nil {
			return "", 0, err
		}
	}
	if err = tmp.Sync(); err != nil {
		return "", 0, err
	}
	if err = tmp.Close(); err != nil {
		return "", 0, err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	dst := d.file(sum)
	if err = os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", 0, err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return "", 0, err
	}
	return sum, n, syncDir(filepath.Dir(dst))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Open returns a reader over the file with hash sum and its size. The
// reader is independent of other readers of the same file (each has its own
// offset over one shared descriptor), so many ranged requests can be served
// at once.
//
// Errors: ErrNotFound, file system errors.
func (d *Dir) Open(sum string) (*io.SectionReader, error) {
	d.mu.RLock()
	of, ok := d.open[sum]
	d.mu.RUnlock()
	if !ok {
		var err error
		if of, err = d.openFile(sum); err != nil {
			return nil, err
		}
	}
	return io.NewSectionReader(of.f, 0, of.size), nil
}

func (d *Dir) openFile(sum string) (openFile, error) {
	if len(sum) != 64 || !isLowerHex(sum) {
		return openFile{}, fmt.Errorf("%w: %q", ErrNotFound, sum)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if of, ok := d.open[sum]; ok {
		return of, nil
	}
	f, err := os.Open(d.file(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return openFile{}, fmt.Errorf("%w: %s", ErrNotFound, sum)
	}
	if err != nil {
		return openFile{}, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return openFile{}, err
	}
	of := openFile{f: f, size: st.Size()}
	d.open[sum] = of
	return of, nil
}

// Close closes the shared file descriptors.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for sum, of := range d.open {
		errs = append(errs, of.f.Close())
		delete(d.open, sum)
	}
	return errors.Join(errs...)
}
