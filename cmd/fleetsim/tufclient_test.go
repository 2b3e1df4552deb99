package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway/tufrepo"
)

// tufServer serves one tag of a fleetsim repository over HTTP and counts
// the requests per path.
type tufServer struct {
	*httptest.Server
	repo   *tufrepo.Repo
	images map[string][]byte
	mu     sync.Mutex
	hits   map[string]int
}

func newTUFServer(t *testing.T, now time.Time) *tufServer {
	t.Helper()
	rnd := rand.NewChaCha8([32]byte{3})
	setup, err := tufrepo.GenerateSetup(tufrepo.KeyEd25519, rnd)
	if err != nil {
		t.Fatal(err)
	}
	repo, _, err := tufrepo.New(now, tufrepo.Config{Random: rnd}, setup)
	if err != nil {
		t.Fatal(err)
	}
	s := &tufServer{repo: repo, images: map[string][]byte{}, hits: map[string]int{}}
	s.addImage(t, now, "1001", []byte("firmware 1001"))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		if name, ok := strings.CutPrefix(r.URL.Path, "/metadata/"); ok {
			f, err := s.repo.Fetch("devel", name)
			if errors.Is(err, tufrepo.ErrNotFound) {
				http.NotFound(w, r)
				return
			}
			w.Write(f.Data)
			return
		}
		if img, ok := s.images[strings.TrimPrefix(r.URL.Path, "/targets/")]; ok {
			w.Write(img)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *tufServer) addImage(t *testing.T, now time.Time, version string, img []byte) {
	tg := tufrepo.NewTarget("MIMXRT1060-EVK", version, []string{"devel"}, img)
	if _, err := s.repo.AddTarget(now, tg); err != nil {
		t.Fatal(err)
	}
	s.images["MIMXRT1060-EVK-v"+version] = img
}

func runTUFCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	return code, out + errs
}

func TestTUFClientConformanceProtocol(t *testing.T) {
	s := newTUFServer(t, time.Now().UTC())
	dir := t.TempDir()
	md, td := filepath.Join(dir, "metadata"), filepath.Join(dir, "targets")
	root, err := s.repo.Root(1)
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootFile, root.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	meta := []string{"tuf-client", "--metadata-dir", md, "--metadata-url", s.URL + "/metadata"}
	if code, out := runTUFCLI(t, "tuf-client", "--metadata-dir", md, "init", rootFile); code != 0 {
		t.Fatalf("init: exit %d: %s", code, out)
	}
	if code, out := runTUFCLI(t, append(meta, "refresh")...); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, out)
	}
	for _, f := range []string{"root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		if _, err := os.Stat(filepath.Join(md, f)); err != nil {
			t.Errorf("refresh did not keep %s: %v", f, err)
		}
	}
	download := append(meta, "--target-name", "MIMXRT1060-EVK-v1001", "--target-base-url", s.URL+"/targets/", "--target-dir", td, "download")
	if code, out := runTUFCLI(t, download...); code != 0 {
		t.Fatalf("download: exit %d: %s", code, out)
	}
	got, err := os.ReadFile(filepath.Join(td, "MIMXRT1060-EVK-v1001"))
	if err != nil || string(got) != "firmware 1001" {
		t.Fatalf("downloaded %q (%v)", got, err)
	}
	// A verified copy is not downloaded again.
	if code, out := runTUFCLI(t, download...); code != 0 {
		t.Fatalf("second download: exit %d: %s", code, out)
	}
	if n := s.hits["/targets/MIMXRT1060-EVK-v1001"]; n != 1 {
		t.Errorf("target fetched %d times, want 1", n)
	}
	// The server substitutes the image: the download is refused.
	s.images["MIMXRT1060-EVK-v1001"] = []byte("firmware 666!")
	os.Remove(filepath.Join(td, "MIMXRT1060-EVK-v1001"))
	code, out := runTUFCLI(t, download...)
	if code != 1 || !strings.Contains(out, "hash") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("substituted image: exit %d, output %q; want exit 1 and one line about the hash", code, out)
	}
	// An unknown target fails with exit 1.
	unknown := append(meta, "--target-name", "nope", "--target-base-url", s.URL+"/targets/", "--target-dir", td, "download")
	if code, _ := runTUFCLI(t, unknown...); code != 1 {
		t.Errorf("unknown target: exit %d, want 1", code)
	}
}

func TestTUFClientFailures(t *testing.T) {
	s := newTUFServer(t, time.Now().UTC())
	dir := t.TempDir()
	md := filepath.Join(dir, "metadata")
	// A root broken in the device's flash (init refuses to store one).
	if err := os.MkdirAll(md, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(md, "root.json"), []byte(`{"signed":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := runTUFCLI(t, "tuf-client", "--metadata-dir", md, "--metadata-url", s.URL+"/metadata", "refresh")
	if code != 1 || !strings.Contains(out, "malformed") {
		t.Errorf("refresh with a broken root: exit %d, %q", code, out)
	}
	if len(s.hits) != 0 {
		t.Errorf("a broken root made requests: %v", s.hits)
	}
	if code, _ := runTUFCLI(t, "tuf-client", "--metadata-dir", md, "refresh"); code != 2 {
		t.Errorf("missing --metadata-url: exit %d, want 2", code)
	}
	if code, _ := runTUFCLI(t, "tuf-client", "--metadata-dir", md, "init", filepath.Join(dir, "absent.json")); code != 1 {
		t.Errorf("init from a missing file: exit %d, want 1", code)
	}
	if code, out := runTUFCLI(t, "tuf-client", "--help"); code != 0 || !strings.Contains(out, "conformance") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

// TestTUFClientFakeTime checks that under FAKETIME the reference time comes
// from the date command (libfaketime fakes it there, not in Go).
func TestTUFClientFakeTime(t *testing.T) {
	s := newTUFServer(t, time.Now().UTC())
	dir := t.TempDir()
	md := filepath.Join(dir, "metadata")
	root, _ := s.repo.Root(1)
	rootFile := filepath.Join(dir, "root.json")
	if err := os.WriteFile(rootFile, root.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// A date that reports a time after every expiry of the repository.
	script := "#!/bin/sh\necho 2099-01-01T00:00:00Z\n"
	if err := os.WriteFile(filepath.Join(bin, "date"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	refresh := []string{"tuf-client", "--metadata-dir", md, "--metadata-url", s.URL + "/metadata", "refresh"}
	if code, out := runTUFCLI(t, "tuf-client", "--metadata-dir", md, "init", rootFile); code != 0 {
		t.Fatal(out)
	}
	if code, out := runTUFCLI(t, refresh...); code != 0 {
		t.Fatalf("without FAKETIME: exit %d: %s", code, out)
	}
	t.Setenv("FAKETIME", "@2099-01-01 00:00:00")
	if code, out := runTUFCLI(t, refresh...); code != 1 || !strings.Contains(out, "expired") {
		t.Errorf("with FAKETIME in 2099: exit %d, %q; want an expiry", code, out)
	}
}

// TestTUFClientInitVerifiesRoot: init keeps a root only if the device would
// load it, signed by a threshold of its own root keys; otherwise it exits 1
// with one line saying why, and whatever was stored before stays.
func TestTUFClientInitVerifiesRoot(t *testing.T) {
	s := newTUFServer(t, time.Now().UTC())
	dir := t.TempDir()
	root, err := s.repo.Root(1)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := s.repo.Fetch("devel", "timestamp.json")
	if err != nil {
		t.Fatal(err)
	}
	random := make([]byte, 512)
	rand.NewChaCha8([32]byte{8}).Read(random)
	// The first hex digit of the root key's signature, changed.
	badSig := bytes.Clone(root.Data)
	i := bytes.Index(badSig, []byte(`"sig":"`)) + len(`"sig":"`)
	if badSig[i] == '0' {
		badSig[i] = '1'
	} else {
		badSig[i] = '0'
	}
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("root.json", root.Data)

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"random bytes", random, "tuf malformed (root): json"},
		{"JSON that is not metadata", []byte(`{"signed":{}}`), "tuf malformed (root)"},
		{"metadata that is not a root", ts.Data, "tuf wrong-type (root)"},
		{"a root whose self-signature is bad", badSig, "tuf bad-signature (root)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := file(strings.ReplaceAll(c.name, " ", "-")+".json", c.data)
			// Into an empty directory: refused, nothing created.
			fresh := filepath.Join(t.TempDir(), "metadata")
			wantRefusal(t, 1, c.want, "tuf-client", "--metadata-dir", fresh, "init", bad)
			if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused init left %s (%v)", fresh, err)
			}
			// Over a good root: refused, the good root stays.
			md := filepath.Join(t.TempDir(), "metadata")
			mustCLI(t, "tuf-client", "--metadata-dir", md, "init", good)
			wantRefusal(t, 1, c.want, "tuf-client", "--metadata-dir", md, "init", bad)
			if got := readFile(t, filepath.Join(md, "root.json")); !bytes.Equal(got, root.Data) {
				t.Error("a refused init changed the stored root")
			}
			if code, out := runTUFCLI(t, "tuf-client", "--metadata-dir", md, "--metadata-url", s.URL+"/metadata", "refresh"); code != 0 {
				t.Errorf("refresh after a refused init: exit %d: %s", code, out)
			}
		})
	}

	// The good root is stored byte for byte.
	md := filepath.Join(dir, "metadata")
	mustCLI(t, "tuf-client", "--metadata-dir", md, "init", good)
	if got := readFile(t, filepath.Join(md, "root.json")); !bytes.Equal(got, root.Data) {
		t.Error("the stored root is not the given one")
	}
	// A root larger than the device reads, and limits that are no limits.
	wantRefusal(t, 1, "too-large", "tuf-client", "--metadata-dir", md, "--max-metadata-size", "100", "init", good)
	wantRefusal(t, 2, "must be positive", "tuf-client", "--metadata-dir", md, "--max-signatures", "0", "init", good)
}
