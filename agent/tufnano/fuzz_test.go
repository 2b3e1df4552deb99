package tufnano

import (
	"bytes"
	"testing"

	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// fuzzSeeds are metadata files of every role from fleetsim's repository,
// python-tuf style indented JSON, and broken JSON.
func fuzzSeeds(f *testing.F) {
	repo, _ := newGatewayRepo(f, tufrepo.KeyECDSAP256, 3, epoch)
	files, err := repo.Files("devel")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		f.Add(file.Data)
	}
	r := newTestRepo(f, KeyEd25519, true, false)
	r.delegate(RoleTargets, metadataRole("bins", "fw/*"))
	r.publish()
	for _, b := range r.files {
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `[]`, `{"signed":{},"signatures":[]}`, `{"a":"\u00e9\ud83d\ude00\n","b":[1,-0,2e3,1.5]}`,
		"{\n \"signed\": {\n  \"_type\": \"timestamp\",\n  \"version\": 1\n },\n \"signatures\": []\n}",
		`{"signed":{"_type":"Timestamp","expires":"2030-01-01T00:00:00Z","meta":{"snapshot.json":{"version":1}},"version":1},"signatures":[{"keyid":"a","method":"ed25519","sig":"AAAA"}]}`,
		`{"a":1,"a":2}`, `{"b":1,"a":2}`, `"\ud800"`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzParseMetadata parses arbitrary bytes as every role. It must never
// panic, and whatever it refuses it refuses with a typed error.
func FuzzParseMetadata(f *testing.F) {
	fuzzSeeds(f)
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) {
			if err != nil && KindOf(err) == KindNone {
				t.Fatalf("untyped error %v", err)
			}
		}
		r, err := parseRoot(data, &lim)
		check(err)
		if err == nil {
			for i := range r.roles {
				_ = verifyThreshold(r.keys, r.roles[i], &r.envelope, data, RoleRoot, nil)
			}
		}
		_, err = parseTimestamp(data, &lim)
		check(err)
		s, err := parseSnapshot(data, &lim)
		check(err)
		if err == nil {
			s.lookup("targets.json")
		}
		tm, err := parseTargets(data, "x", &lim)
		check(err)
		if err == nil {
			_, _, err := tm.lookup("fw/a.bin", "x")
			check(err)
			for i := range tm.delegated {
				tm.delegated[i].delegatedPath("fw/a.bin")
			}
			if tm.succinct != nil {
				tm.delegateFor(tm.succinct.binName("fw/a.bin"))
			}
		}
	})
}

// FuzzCanonical checks the canonicaliser against the fast path: bytes the
// fast path takes as canonical (with no escapes) canonicalise to
// themselves, and canonical output, once its raw control characters are
// escaped again, canonicalises to itself.
func FuzzCanonical(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := parseDocument(data)
		if err != nil {
			return
		}
		var c canonicaliser
		out, err := c.canonical(data, v)
		if err != nil {
			if k := KindOf(err); k != KindMalformed && k != KindDuplicate {
				t.Fatalf("canonical: %v", err)
			}
			return
		}
		if len(out) > len(data) {
			t.Fatalf("canonical form (%d bytes) longer than its source (%d)", len(out), len(data))
		}
		out = append([]byte(nil), out...)
		if shape, esc := canonicalShape(data, v); shape && !esc && !bytes.Equal(out, data[v.start:v.end]) {
			t.Fatalf("fast path takes %q as canonical, canonicaliser writes %q", data[v.start:v.end], out)
		}
		again := escapeControls(out)
		v2, err := parseDocument(again)
		if err != nil {
			t.Fatalf("canonical output %q does not parse: %v", again, err)
		}
		out2, err := c.canonical(again, v2)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("not stable: %q then %q (%v)", out, out2, err)
		}
	})
}

func metadataRole(name string, paths ...string) metadata.DelegatedRole {
	return metadata.DelegatedRole{Name: name, Paths: paths}
}

// FuzzRefresh serves arbitrary bytes as one file of an otherwise good
// repository (consistent snapshots, a delegation) and runs a whole refresh
// and a target lookup: no panic, and every refusal typed.
func FuzzRefresh(f *testing.F) {
	r := newTestRepo(f, KeyEd25519, false, true)
	r.delegate(RoleTargets, metadataRole("fw", "fw/*"))
	r.addTarget("fw", "fw/a.bin", []byte("a"))
	r.publish()
	names := []string{"2.root.json", "timestamp.json", "snapshot.json", "targets.json", "fw.json"}
	good := map[string][]byte{}
	for _, n := range names {
		good[n] = r.files[n]
		if b, ok := r.files[n]; ok {
			f.Add(uint8(len(good)-1), b)
		}
	}
	f.Add(uint8(0), r.files["1.root.json"])
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		files := map[string][]byte{}
		for k, v := range r.files {
			files[k] = v
		}
		files[names[int(which)%len(names)]] = data
		d := &device{fetch: &memFetcher{files: files}, store: memStore{RoleRoot: r.rootV1}, lim: DefaultLimits()}
		c, err := d.refresh(epoch)
		if err != nil {
			if KindOf(err) == KindNone {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		if _, err := c.Target("fw/a.bin"); err != nil && KindOf(err) == KindNone {
			t.Fatalf("untyped refusal: %v", err)
		}
	})
}
