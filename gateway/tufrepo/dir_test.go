package tufrepo

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// servedSnapshot collects every served file of every tag and wave view.
func servedSnapshot(t *testing.T, r *Repo) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	views := r.Tags()
	for _, w := range r.Waves() {
		views = append(views, WaveView(w.Tag, w.Name))
	}
	for _, tag := range views {
		files, err := r.Files(tag)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			out[tag+"/"+f.Name] = f.Data
		}
	}
	return out
}

func sameServed(t *testing.T, a, b *Repo) {
	t.Helper()
	sa, sb := servedSnapshot(t, a), servedSnapshot(t, b)
	if len(sa) != len(sb) {
		t.Fatalf("served %d files, reopened %d", len(sa), len(sb))
	}
	for name, data := range sa {
		if !bytes.Equal(data, sb[name]) {
			t.Errorf("%s differs after reopening", name)
		}
	}
	if !slices.EqualFunc(a.Targets(), b.Targets(), func(x, y Target) bool { return x.equal(y) }) {
		t.Error("targets differ after reopening")
	}
	if !reflect.DeepEqual(a.Waves(), b.Waves()) {
		t.Errorf("waves %v, reopened %v", a.Waves(), b.Waves())
	}
	if a.Config() != b.Config() {
		t.Errorf("config %+v, reopened %+v", a.Config(), b.Config())
	}
}

func TestReopenServesIdenticalBytes(t *testing.T) {
	for _, consistent := range []bool{false, true} {
		for _, kt := range []KeyType{KeyEd25519, KeyECDSAP256} {
			t.Run(string(kt)+map[bool]string{false: "", true: "/consistent"}[consistent], func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "tuf")
				rnd := seeded(21)
				setup, _ := GenerateSetup(kt, rnd)
				cfg := Config{ConsistentSnapshot: consistent, DeviceBuffer: 8192, Expiry: Expiry{Timestamp: 6 * time.Hour}}
				r, _, err := Create(dir, t0, cfg, setup)
				if err != nil {
					t.Fatal(err)
				}
				addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
				addTarget(t, r, t0, "MIMXRT1060-EVK", "1001", "devel", "prod")
				addTarget(t, r, t0, "MIMXRT1170-EVK", "3", "prod")
				if _, err := r.AddTag(t0, "empty"); err != nil {
					t.Fatal(err)
				}
				if _, err := r.RemoveTargets(t0, "MIMXRT1060-EVK-v1000"); err != nil {
					t.Fatal(err)
				}
				k, _ := GenerateKey(kt, rnd)
				if _, err := r.RotateKeys(t0, RoleTimestamp, []*PrivateKey{k}, 1); err != nil {
					t.Fatal(err)
				}
				re, err := Open(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				sameServed(t, r, re)

				// The reopened repository carries on where the first
				// left off, and a device that followed the first
				// accepts what the second signs.
				dev := newGoTUFDevice(t, r, "devel")
				if _, err := dev.update(r, t0, nil, ""); err != nil {
					t.Fatal(err)
				}
				now := t0.Add(time.Hour)
				name := addTarget(t, re, now, "MIMXRT1060-EVK", "1002", "devel")
				if _, err := dev.update(re, now, map[string][]byte{name: image("MIMXRT1060-EVK", "1002")}, name); err != nil {
					t.Fatalf("go-tuf after reopen: %v", err)
				}
				if v := viewOf(t, re, "devel"); v.TargetsVersion != 4 {
					t.Errorf("devel targets version %d after reopen and add, want 4", v.TargetsVersion)
				}
				again, err := Open(dir, nil)
				if err != nil {
					t.Fatal(err)
				}
				sameServed(t, re, again)
			})
		}
	}
}

func TestDataDirectory(t *testing.T) {
	dir := t.TempDir()
	rnd := seeded(4)
	setup, _ := GenerateSetup(KeyEd25519, rnd)
	setup.OfflineRoot = true
	r, _, err := Create(dir, t0, Config{}, setup)
	if err != nil {
		t.Fatal(err)
	}
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	if _, _, err := Create(dir, t0, Config{}, setup); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v", err)
	}
	// Held keys: targets, snapshot, timestamp; the offline root key is not
	// written. Key files are private.
	entries, err := os.ReadDir(filepath.Join(dir, keysDir))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", e.Name(), info.Mode().Perm())
		}
		ids = append(ids, strings.TrimSuffix(e.Name(), ".pem"))
	}
	want := []string{setup.Targets.Keys[0].ID(), setup.Snapshot.Keys[0].ID(), setup.Timestamp.Keys[0].ID()}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("key files %v, want %v", ids, want)
	}
	if info, _ := os.Stat(filepath.Join(dir, keysDir)); info.Mode().Perm() != 0o700 {
		t.Errorf("keys directory mode %v", info.Mode().Perm())
	}
	// Rotating the timestamp key retires the old key file.
	k, _ := GenerateKey(KeyEd25519, rnd)
	if _, err := r.RotateKeys(t0, RoleTimestamp, []*PrivateKey{k}, 1, setup.Root.Keys[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, keysDir, setup.Timestamp.Keys[0].ID()+".pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("retired key file still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, keysDir, k.ID()+".pem")); err != nil {
		t.Errorf("new key file: %v", err)
	}
	// Only referenced metadata files remain, and no temporary files.
	objs, _ := os.ReadDir(filepath.Join(dir, metadataDir))
	refs := map[string]bool{}
	for _, f := range servedSnapshot(t, r) {
		refs[newFile("", f, 0).SHA256+".json"] = true
	}
	for _, o := range objs {
		if !refs[o.Name()] {
			t.Errorf("unreferenced file %s", o.Name())
		}
	}
	if len(objs) != len(refs) {
		t.Errorf("%d metadata files for %d distinct served files", len(objs), len(refs))
	}
	all, _ := filepath.Glob(filepath.Join(dir, "*", ".tmp-*"))
	top, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	if len(all)+len(top) != 0 {
		t.Errorf("temporary files left: %v %v", all, top)
	}
	// Reopened, the offline root still needs its key from outside.
	re, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := re.ExtendRoot(t0); !errors.Is(err, ErrMissingKeys) {
		t.Errorf("ExtendRoot after reopen without key: %v", err)
	}
	if _, err := Open(t.TempDir(), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of an empty directory: %v", err)
	}
}

func TestOpenCorrupt(t *testing.T) {
	build := func(t *testing.T) string {
		dir := t.TempDir()
		setup, _ := GenerateSetup(KeyEd25519, seeded(8))
		r, _, err := Create(dir, t0, Config{}, setup)
		if err != nil {
			t.Fatal(err)
		}
		addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
		return dir
	}
	objectOf := func(t *testing.T, dir, name string) string {
		r, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := r.Fetch("devel", name)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, metadataDir, f.SHA256+".json")
	}
	for name, damage := range map[string]func(t *testing.T, dir string){
		"flipped byte": func(t *testing.T, dir string) {
			p := objectOf(t, dir, "targets.json")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		},
		"missing file": func(t *testing.T, dir string) { os.Remove(objectOf(t, dir, "snapshot.json")) },
		"manifest garbage": func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, manifestFile), []byte("{\"format\":1,"), 0o644)
		},
		"config unknown field": func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, configFile), []byte(`{"format":1,"evil":true}`), 0o644)
		},
		"bad key file": func(t *testing.T, dir string) {
			entries, _ := os.ReadDir(filepath.Join(dir, keysDir))
			os.WriteFile(filepath.Join(dir, keysDir, entries[0].Name()), []byte("not a key"), 0o600)
		},
		"key under the wrong name": func(t *testing.T, dir string) {
			entries, _ := os.ReadDir(filepath.Join(dir, keysDir))
			os.Rename(filepath.Join(dir, keysDir, entries[0].Name()), filepath.Join(dir, keysDir, strings.Repeat("0", 64)+".pem"))
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := build(t)
			damage(t, dir)
			_, err := Open(dir, nil)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.File == "" {
				t.Fatalf("Open: %v, want a *CorruptError", err)
			}
		})
	}
}

// forEachFailedWrite runs op on a fresh repository (prepare adds to it),
// failing op's k-th file write for k = 1, 2, ... until op makes fewer
// writes, as a crash or a full disk would. Each failure must leave the
// repository in memory and the one reopened from disk serving the previous
// bytes, with the previous waves; retry then gets the reopened repository,
// to run op again and check the result.
func forEachFailedWrite(t *testing.T, prepare func(t *testing.T, r *Repo), op func(r *Repo) error, retry func(fail int, dir string, re *Repo)) {
	t.Helper()
	for fail := 0; ; fail++ {
		dir := t.TempDir()
		setup, _ := GenerateSetup(KeyEd25519, seeded(6))
		r, _, err := Create(dir, t0, Config{}, setup)
		if err != nil {
			t.Fatal(err)
		}
		prepare(t, r)
		before := servedSnapshot(t, r)
		writes := 0
		r.disk.write = func(path string, data []byte, perm fs.FileMode) error {
			writes++
			if writes == fail+1 {
				return errors.New("injected write failure")
			}
			return writeAtomic(path, data, perm)
		}
		err = op(r)
		if err == nil {
			if fail == 0 {
				t.Fatal("no write to fail")
			}
			return // every write position has been failed
		}
		if !strings.Contains(err.Error(), "injected") {
			t.Fatalf("fail at write %d: %v", fail, err)
		}
		if after := servedSnapshot(t, r); !maps.EqualFunc(before, after, bytes.Equal) {
			t.Fatalf("fail at write %d: in-memory repository changed", fail)
		}
		re, err := Open(dir, nil)
		if err != nil {
			t.Fatalf("fail at write %d: reopen: %v", fail, err)
		}
		if got := servedSnapshot(t, re); !maps.EqualFunc(before, got, bytes.Equal) {
			t.Fatalf("fail at write %d: reopened repository changed", fail)
		}
		retry(fail, dir, re)
	}
}

// TestFailedSaveKeepsPreviousRepository fails the k-th file write of an
// operation, for every k: the operation reports the error, the repository in
// memory and the one reopened from disk still serve the previous bytes, and
// the operation succeeds when retried after reopening.
func TestFailedSaveKeepsPreviousRepository(t *testing.T) {
	k, _ := GenerateKey(KeyEd25519, seeded(99))
	ops := map[string]func(r *Repo) error{
		"add target": func(r *Repo) error {
			_, err := r.AddTarget(t0, NewTarget("MIMXRT1060-EVK", "1002", []string{"devel", "prod"}, []byte("fw")))
			return err
		},
		"rotate targets key": func(r *Repo) error {
			_, err := r.RotateKeys(t0, RoleTargets, []*PrivateKey{k}, 1)
			return err
		},
	}
	prepare := func(t *testing.T, r *Repo) { addTarget(t, r, t0, "MIMXRT1060-EVK", "1001", "devel", "prod") }
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			forEachFailedWrite(t, prepare, op, func(fail int, dir string, re *Repo) {
				dev := newGoTUFDevice(t, re, "devel")
				if err := op(re); err != nil {
					t.Fatalf("fail at write %d: retry: %v", fail, err)
				}
				if _, err := dev.update(re, t0, nil, ""); err != nil {
					t.Fatalf("fail at write %d: go-tuf after retry: %v", fail, err)
				}
				// Nothing from the failed attempt lingers.
				entries, _ := os.ReadDir(filepath.Join(dir, keysDir))
				if want := len(re.st.keys); len(entries) != want {
					t.Fatalf("fail at write %d: %d key files for %d held keys", fail, len(entries), want)
				}
			})
		})
	}
}
