package tufrepo

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// writeAtomic is the repository's atomic write on the operating system's
// file system, which the failure-injection tests wrap.
func writeAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFileAtomic(vfs.Default, path, data, perm)
}

// A repository on vfs.NewMem touches no disk, and OpenFS on the same FS
// value loads it back serving the same bytes.
func TestMemRepositoryReopens(t *testing.T) {
	mem := vfs.NewMem()
	dir := filepath.Join(t.TempDir(), "tuf")
	setup, _ := GenerateSetup(KeyEd25519, seeded(31))
	r, _, err := CreateFS(mem, dir, t0, Config{}, setup)
	if err != nil {
		t.Fatal(err)
	}
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1001", "devel", "prod")
	openWave(t, r, t0, "prod", "w2", waveTarget("MIMXRT1060-EVK", "1002"))
	if _, _, err := CreateFS(mem, dir, t0, Config{}, setup); !errors.Is(err, ErrExists) {
		t.Errorf("CreateFS over a repository: %v, want ErrExists", err)
	}
	re, err := OpenFS(mem, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	sameServed(t, r, re)
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a repository in memory created %s on disk (%v)", dir, err)
	}
	if _, err := OpenFS(vfs.NewMem(), dir, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFS of another FS: %v, want fs.ErrNotExist", err)
	}
}

// The files keep their modes on disk: keys readable by their owner only.
func TestFileModes(t *testing.T) {
	dir := t.TempDir()
	setup, _ := GenerateSetup(KeyEd25519, seeded(32))
	if _, _, err := Create(dir, t0, Config{}, setup); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		glob string
		mode fs.FileMode
	}{
		{keysDir, fs.ModeDir | 0o700},
		{filepath.Join(keysDir, "*.pem"), 0o600},
		{filepath.Join(metadataDir, "*.json"), 0o644},
		{manifestFile, 0o644},
		{configFile, 0o644},
	} {
		names, _ := filepath.Glob(filepath.Join(dir, c.glob))
		if len(names) == 0 {
			t.Fatalf("no %s", c.glob)
		}
		for _, name := range names {
			if fi, err := os.Stat(name); err != nil || fi.Mode() != c.mode {
				t.Errorf("%s: mode %v (%v), want %v", name, fi.Mode(), err, c.mode)
			}
		}
	}
}

// crashFS is a crashable MemFS that calls at before every change it makes:
// creating, writing, syncing, renaming or removing a file, and syncing a
// directory. A test takes a crash clone there.
type crashFS struct {
	*vfs.MemFS
	at func()
}

func (c *crashFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.at()
	f, err := c.MemFS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return crashFile{f, c.at}, nil
}

func (c *crashFS) OpenDir(name string) (vfs.File, error) {
	f, err := c.MemFS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return crashFile{f, c.at}, nil
}

func (c *crashFS) Rename(oldname, newname string) error {
	c.at()
	return c.MemFS.Rename(oldname, newname)
}

func (c *crashFS) Remove(name string) error {
	c.at()
	return c.MemFS.Remove(name)
}

func (c *crashFS) Unwrap() vfs.FS { return c.MemFS }

type crashFile struct {
	vfs.File
	at func()
}

func (f crashFile) Write(p []byte) (int, error) {
	f.at()
	return f.File.Write(p)
}

func (f crashFile) Sync() error {
	f.at()
	return f.File.Sync()
}

// TestPowerLossKeepsARepository cuts the power before each file system
// change an operation makes, keeping a seeded share of what was not synced:
// the repository reopened after the cut serves exactly what it served before
// the operation or after it, never a mix and never an error.
func TestPowerLossKeepsARepository(t *testing.T) {
	k, _ := GenerateKey(KeyEd25519, seeded(98))
	ops := []struct {
		name string
		op   func(r *Repo) error
	}{
		{"add target", func(r *Repo) error {
			_, err := r.AddTarget(t0, NewTarget("MIMXRT1060-EVK", "1002", []string{"devel", "prod"}, []byte("fw")))
			return err
		}},
		{"rotate targets key", func(r *Repo) error {
			_, err := r.RotateKeys(t0, RoleTargets, []*PrivateKey{k}, 1)
			return err
		}},
		{"open wave", func(r *Repo) error {
			_, err := r.OpenWave(t0, "prod", "w3", []Target{waveTarget("MIMXRT1060-EVK", "1003")})
			return err
		}},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			for cut := 1; ; cut++ {
				rng := rand.New(rand.NewPCG(uint64(cut), 5))
				mem := vfs.NewCrashableMem()
				cfs := &crashFS{MemFS: mem, at: func() {}}
				setup, _ := GenerateSetup(KeyEd25519, seeded(6))
				r, _, err := CreateFS(cfs, "repo", t0, Config{}, setup)
				if err != nil {
					t.Fatal(err)
				}
				addTarget(t, r, t0, "MIMXRT1060-EVK", "1001", "devel", "prod")
				// The repository's own directory entry: Create does not
				// sync the directory holding it (the data directory's
				// owner does).
				syncDir(t, mem, "/")
				before := servedSnapshot(t, r)

				var crashed *vfs.MemFS
				changes := 0
				cfs.at = func() {
					if changes++; changes == cut {
						crashed = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
					}
				}
				if err := o.op(r); err != nil {
					t.Fatal(err)
				}
				after := servedSnapshot(t, r)
				if crashed == nil {
					if cut == 1 {
						t.Fatal("the operation changed no file")
					}
					// Every change has been cut before; now the cut
					// after the operation returned.
					re, err := OpenFS(mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng}), "repo", nil)
					if err != nil {
						t.Fatalf("cut after the operation: reopen: %v", err)
					}
					if !maps.EqualFunc(servedSnapshot(t, re), after, bytes.Equal) {
						t.Fatal("cut after the operation: the repository does not serve its state")
					}
					return
				}
				re, err := OpenFS(crashed, "repo", nil)
				if err != nil {
					t.Fatalf("cut before change %d: reopen: %v", cut, err)
				}
				got := servedSnapshot(t, re)
				if !maps.EqualFunc(got, before, bytes.Equal) && !maps.EqualFunc(got, after, bytes.Equal) {
					t.Fatalf("cut before change %d: the repository serves neither the state before nor after", cut)
				}
			}
		})
	}
}

func syncDir(t *testing.T, fsys vfs.FS, dir string) {
	t.Helper()
	d, err := fsys.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatalf("sync %s: %v", dir, err)
	}
}
