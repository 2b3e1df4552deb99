package firmware

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fleetsim/fleetsim/internal/vfsutil"
)

// ErrNotFound reports a hash the directory does not hold.
var ErrNotFound = errors.New("firmware: not found")

// ErrTooLarge reports an upload over the size limit given to Put.
var ErrTooLarge = errors.New("firmware: too large")

// Dir is a content-addressed firmware directory. It is safe for concurrent
// use; files are opened once and shared by every reader.
type Dir struct {
	fs   vfs.FS
	root string
	mu   sync.RWMutex
	open map[string]*sharedFile
}

// Open opens (creating if missing) the directory root on the operating
// system's file system.
func Open(root string) (*Dir, error) { return OpenFS(vfs.Default, root) }

// OpenFS opens (creating if missing) the directory root on fsys. On
// vfs.NewMem the directory touches no disk and lives as long as fsys does.
func OpenFS(fsys vfs.FS, root string) (*Dir, error) {
	if err := fsys.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	return &Dir{fs: fsys, root: root, open: map[string]*sharedFile{}}, nil
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
	return d.fs.PathJoin(d.root, sum[:2], sum[2:]+".bin")
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
	name := d.fs.PathJoin(d.root, ".upload-"+vfsutil.TempSuffix())
	tmp, err := d.fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return "", 0, err
	}
	open := true
	defer func() {
		if err != nil {
			if open {
				tmp.Close()
			}
			d.fs.Remove(name)
		}
	}()
	// As os.CreateTemp made them: readable by the gateway's user only.
	if err = vfsutil.SetMode(d.fs, tmp, name, 0o600); err != nil {
		return "", 0, err
	}
	h := sha256.New()
	// The hash before the file: a vfs.File may scribble on the bytes it is
	// given to write (vfs.MemFS does under the race detector).
	n, err = io.Copy(io.MultiWriter(h, tmp), io.LimitReader(r, limit+1))
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
	open = false
	if err = tmp.Close(); err != nil {
		return "", 0, err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	dst := d.file(sum)
	if err = d.fs.MkdirAll(d.fs.PathDir(dst), 0o755); err != nil {
		return "", 0, err
	}
	if err = d.fs.Rename(name, dst); err != nil {
		return "", 0, err
	}
	return sum, n, d.syncDir(d.fs.PathDir(dst))
}

func (d *Dir) syncDir(dir string) error {
	f, err := d.fs.OpenDir(dir)
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
	return io.NewSectionReader(of, 0, of.size), nil
}

func (d *Dir) openFile(sum string) (*sharedFile, error) {
	if len(sum) != 64 || !isLowerHex(sum) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, sum)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if of, ok := d.open[sum]; ok {
		return of, nil
	}
	f, err := d.fs.Open(d.file(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, sum)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	of := &sharedFile{f: f, size: st.Size()}
	d.open[sum] = of
	return of, nil
}

// Close closes the shared files. Readers still holding one then fail with
// fs.ErrClosed.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for sum, of := range d.open {
		errs = append(errs, of.close())
		delete(d.open, sum)
	}
	return errors.Join(errs...)
}

// sharedFile is a stored file opened once and read by every request for it;
// files never change after Put.
//
// A read after close fails with fs.ErrClosed, as it does on an *os.File: a
// file of vfs.MemFS would panic instead, and a gateway may be closed while a
// device is still downloading (the simulator's gateway outage).
type sharedFile struct {
	f    vfs.File
	size int64

	mu     sync.RWMutex
	closed bool
}

func (s *sharedFile) ReadAt(p []byte, off int64) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, fs.ErrClosed
	}
	return s.f.ReadAt(p, off)
}

func (s *sharedFile) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.f.Close()
}
