package store

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestDeviceConfigCount checks the fast path of Config for device scopes
// against the plain lookup: random batches put and delete config files of
// a few scopes (several writes to one scope in a batch, batches closed
// without a commit, a put that fails), and after each, and after a
// reopen, every scope reads as a model of the writes says, the count of
// device-scope records is exact, and the config generation has grown with
// every commit that wrote config files, and not with the others.
func TestDeviceConfigCount(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		mem := vfs.NewMem()
		dir := filepath.Join(t.TempDir(), "store")
		s, err := Open(dir, Options{FS: mem})
		if err != nil {
			t.Fatal(err)
		}
		scopes := []ConfigScope{
			{Kind: ScopeFactory}, {Kind: ScopeGroup, Name: "fleet"},
			{Kind: ScopeDevice, Name: "D1"}, {Kind: ScopeDevice, Name: "D2"}, {Kind: ScopeDevice, Name: "D3"},
		}
		model := map[ConfigScope]configRecord{}
		for step := range 60 {
			gen := s.ConfigGeneration()
			b := s.NewBatch()
			staged := map[ConfigScope]*configRecord{}
			for range 1 + rng.IntN(3) {
				sc := scopes[rng.IntN(len(scopes))]
				if rng.IntN(3) == 0 {
					b.DeleteConfig(sc)
					staged[sc] = nil
				} else {
					r := configRecord{Files: []ConfigFile{{Name: "f", Value: string(rune('a' + step%26))}}, Updated: at(step)}
					b.PutConfig(sc, r.Files, r.Updated)
					staged[sc] = &r
				}
			}
			if rng.IntN(4) == 0 {
				b.PutDevice(Device{}) // an invalid key: the commit fails, nothing is written
			}
			switch {
			case rng.IntN(5) == 0:
				b.Close()
				if g := s.ConfigGeneration(); g != gen {
					t.Fatalf("seed %d step %d: a batch closed unwritten moved the generation %d -> %d", seed, step, gen, g)
				}
			default:
				err := b.Commit(false)
				b.Close()
				if err == nil {
					for sc, r := range staged {
						if r == nil {
							delete(model, sc)
						} else {
							model[sc] = *r
						}
					}
				}
				if g := s.ConfigGeneration(); err == nil && g <= gen {
					t.Fatalf("seed %d step %d: a commit of config files left the generation at %d", seed, step, g)
				}
			}
			checkConfigs(t, s, scopes, model)
		}
		// Writes of other records leave the generation alone.
		gen := s.ConfigGeneration()
		b := s.NewBatch()
		b.PutDevice(Device{UUID: "D1", LastSeen: at(1)})
		commit(t, b)
		if s.ConfigGeneration() != gen {
			t.Fatalf("seed %d: a device write moved the config generation", seed)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if s, err = Open(dir, Options{FS: mem}); err != nil {
			t.Fatal(err)
		}
		checkConfigs(t, s, scopes, model)
		s.Close()
	}
}

func checkConfigs(t *testing.T, s *Store, scopes []ConfigScope, model map[ConfigScope]configRecord) {
	t.Helper()
	devices := 0
	for _, sc := range scopes {
		want, wantOK := model[sc]
		if wantOK && sc.Kind == ScopeDevice {
			devices++
		}
		files, up, ok, err := s.Config(sc)
		plain, plainOK, perr := lookup(s, configKey(sc), decodeConfig)
		if err != nil || perr != nil {
			t.Fatalf("%v: %v, %v", sc, err, perr)
		}
		if ok != wantOK || plainOK != wantOK || (ok && (!reflect.DeepEqual(files, want.Files) || !up.Equal(want.Updated) ||
			!reflect.DeepEqual(plain.Files, want.Files))) {
			t.Fatalf("%v: Config %v %v %v, plain %v %v, want %v %v", sc, files, up, ok, plain, plainOK, want, wantOK)
		}
	}
	if n := s.deviceConfigs.Load(); n != int64(devices) {
		t.Fatalf("device-scope records counted %d, stored %d", n, devices)
	}
}

// TestDeviceConfigAfterClose: the fast path still says ErrClosed.
func TestDeviceConfigAfterClose(t *testing.T) {
	s, err := OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, _, _, err := s.Config(ConfigScope{Kind: ScopeDevice, Name: "D1"}); err != ErrClosed {
		t.Fatalf("Config after Close: %v, want ErrClosed", err)
	}
}
