package tufrepo

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"testing"
)

// fuzzRepo builds a small repository, with a wave open on the first tag, and
// returns its stored files by SHA-256 and its manifest, the inputs loadState
// reads back from a data directory.
func fuzzRepo(f *testing.F, consistent bool, tags ...string) (map[string][]byte, []byte) {
	setup, err := GenerateSetup(KeyEd25519, seeded(1))
	if err != nil {
		f.Fatal(err)
	}
	r, _, err := New(t0, Config{ConsistentSnapshot: consistent}, setup)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := r.AddTarget(t0, NewTarget("MIMXRT1060-EVK", "1001", tags, []byte("fw"))); err != nil {
		f.Fatal(err)
	}
	if _, err := r.OpenWave(t0, tags[0], "w1", []Target{NewTarget("MIMXRT1060-EVK", "1002", nil, []byte("fw2"))}); err != nil {
		f.Fatal(err)
	}
	m, objects := buildManifest(r.st)
	mdata, _ := json.Marshal(m)
	return objects, mdata
}

func readFrom(objects map[string][]byte) func(string) ([]byte, error) {
	return func(sum string) ([]byte, error) {
		b, ok := objects[sum]
		if !ok {
			return nil, os.ErrNotExist
		}
		return b, nil
	}
}

// FuzzLoadManifest feeds arbitrary manifests over a valid set of stored
// files: loading either succeeds or fails with ErrCorrupt, never panics.
func FuzzLoadManifest(f *testing.F) {
	objects, mdata := fuzzRepo(f, true, "devel", "prod")
	f.Add(mdata)
	f.Add([]byte(`{"format":1,"roots":[],"tags":{}}`))
	f.Add([]byte(`{"format":1,"roots":["00"],"tags":{"../x":{}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := loadState(data, readFrom(objects), map[string]*PrivateKey{})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
	})
}

// FuzzLoadStoredFile puts arbitrary bytes in place of each stored role file
// of one tag or of its wave view (inputs of odd length): loading either
// succeeds or fails with ErrCorrupt.
func FuzzLoadStoredFile(f *testing.F) {
	// One tag, no versioned copies: the less there is to load, the more
	// inputs the fuzzer tries.
	objects, mdata := fuzzRepo(f, false, "devel")
	var m manifest
	if err := json.Unmarshal(mdata, &m); err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"targets.json", "snapshot.json", "timestamp.json"} {
		f.Add(objects[m.Tags["devel"][name]])
		f.Add(append(objects[m.Waves["devel"].Files[name]], ' '))
	}
	f.Add(objects[m.Roots[0]])
	f.Add([]byte(`{"signatures":[],"signed":{"_type":"targets","targets":{"a-v1":{"custom":{"version":1.5}}}}}`))
	roles := []string{"targets.json", "snapshot.json", "timestamp.json", "root"}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The file's _type picks the slot it replaces, so the fuzzer
		// reaches each role's checks through the input alone.
		role := roles[0]
		for i, r := range []string{"targets", "snapshot", "timestamp", "root"} {
			if bytes.Contains(data, []byte(`"_type":"`+r+`"`)) {
				role = roles[i]
			}
		}
		objs := map[string][]byte{}
		for k, v := range objects {
			objs[k] = v
		}
		sum := newFile("", data, 0).SHA256
		objs[sum] = data
		mm := manifest{Format: m.Format, Roots: []string{m.Roots[0]}, Tags: map[string]map[string]string{}}
		for tag, names := range m.Tags {
			mm.Tags[tag] = maps.Clone(names)
		}
		w := m.Waves["devel"]
		w.Files = maps.Clone(w.Files)
		mm.Waves = map[string]storedWave{"devel": w}
		switch {
		case role == "root":
			mm.Roots[0] = sum
		case len(data)%2 == 1:
			w.Files[role] = sum
		default:
			mm.Tags["devel"][role] = sum
		}
		md, _ := json.Marshal(mm)
		_, err := loadState(md, readFrom(objs), map[string]*PrivateKey{})
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
	})
}

// FuzzParsePrivateKey: key files either parse or fail with ErrBadKey.
func FuzzParsePrivateKey(f *testing.F) {
	for _, kt := range []KeyType{KeyEd25519, KeyECDSAP256} {
		k, _ := GenerateKey(kt, seeded(1))
		f.Add(k.MarshalPEM())
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePrivateKey(data)
		if err != nil {
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error %v is not ErrBadKey", err)
			}
			return
		}
		if k.ID() == "" {
			t.Fatal("parsed key without ID")
		}
	})
}

// FuzzParseVersion: versions either parse to what they say or fail with
// ErrBadTarget.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1", "1000", "4294967295", "4294967296", "01", "", "1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrBadTarget) {
				t.Fatal(err)
			}
			return
		}
		if v == 0 || formatUint(v) != s {
			t.Fatalf("ParseVersion(%q) = %d", s, v)
		}
	})
}

func formatUint(v uint32) string {
	b, _ := json.Marshal(v)
	return string(b)
}
