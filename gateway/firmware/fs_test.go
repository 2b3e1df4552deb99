package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A directory on vfs.NewMem touches no disk; opened again on the same FS
// value it holds what was put. A reader held across Close fails, as it does
// on disk, instead of reading a closed file.
func TestMemDir(t *testing.T) {
	mem := vfs.NewMem()
	root := filepath.Join(t.TempDir(), "firmware")
	d, err := OpenFS(mem, root)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("fleetsim"), 3000)
	sum, _, err := d.Put(bytes.NewReader(data), 1<<20, nil)
	if want := sha256.Sum256(data); err != nil || sum != hex.EncodeToString(want[:]) {
		t.Fatalf("Put = %s, %v", sum, err)
	}
	held, err := d.Open(sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := held.ReadAt(make([]byte, 8), 0); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("read after Close: %v, want fs.ErrClosed", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a directory in memory created %s on disk (%v)", root, err)
	}

	d, err = OpenFS(mem, root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r, err := d.Open(sum)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(r); !bytes.Equal(got, data) {
		t.Fatalf("reopened file holds %d bytes, want the %d put", len(got), len(data))
	}
	if names, _ := mem.List(root); len(names) != 1 || names[0] != sum[:2] {
		t.Errorf("directory holds %v, want only %s (no temporary file)", names, sum[:2])
	}
}

// Stored files are readable by the gateway's user only, as they were when
// Put wrote them through os.CreateTemp.
func TestFileMode(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sum, _, err := d.Put(bytes.NewReader([]byte("image")), 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d.file(sum))
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("mode %v (%v), want 0600", fi.Mode(), err)
	}
}
