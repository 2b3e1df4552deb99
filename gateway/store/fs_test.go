package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A store on Options.FS = vfs.NewMem touches no disk, and opened again on
// the same FS value it holds everything written before Close.
func TestMemFSReopen(t *testing.T) {
	mem := vfs.NewMem()
	dir := filepath.Join(t.TempDir(), "store")
	s, err := Open(dir, Options{FS: mem, Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEverything()
	e.write(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a store in memory created %s on disk (%v)", dir, err)
	}
	s, err = Open(dir, Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e.check(t, s)
}
