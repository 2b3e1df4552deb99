package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent/tufnano"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/v1.tar from the current writer")

var created = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

// testContents are the members of a small bundle: a root chain of three
// versions (so that "10" sorts after "2"), the top-level roles, a
// delegated role with an escaped name, and two images.
func testContents() Contents {
	meta := func(s string) []byte { return []byte(`{"signatures":[],"signed":{"_type":"` + s + `"}}`) }
	img := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*13) ^ seed
		}
		return b
	}
	return Contents{
		Repository: "ci", Tag: "main", Created: created,
		Metadata: []File{
			{"timestamp.json", meta("timestamp")},
			{"10.root.json", meta("root 10")},
			{"1.root.json", meta("root 1")},
			{"2.root.json", meta("root 2")},
			{"snapshot.json", meta("snapshot")},
			{"targets.json", meta("targets")},
			{"bins%2F0.json", meta("bin 0")},
		},
		Firmware: [][]byte{img(3000, 1), img(513, 2)},
	}
}

func create(t testing.TB, c Contents) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Create(&b, c); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return b.Bytes()
}

func open(data []byte) (*Bundle, error) {
	return Open(bytes.NewReader(data), int64(len(data)))
}

func TestRoundTrip(t *testing.T) {
	c := testContents()
	data := create(t, c)
	b, err := open(data)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	m := b.Manifest()
	if m.Format != FormatVersion || m.Repository != "ci" || m.Tag != "main" || !m.Created.Equal(created) {
		t.Errorf("manifest %+v", m)
	}
	if len(m.Members) != len(c.Metadata)+len(c.Firmware) {
		t.Errorf("%d members listed, want %d", len(m.Members), len(c.Metadata)+len(c.Firmware))
	}
	for _, f := range c.Metadata {
		dst := make([]byte, len(f.Data)) // exactly the file's size fits
		n, err := b.Fetch(f.Name, dst)
		if err != nil || !bytes.Equal(dst[:n], f.Data) {
			t.Errorf("Fetch(%s) = %q, %v; want %q", f.Name, dst[:n], err, f.Data)
		}
		big := make([]byte, 16<<10)
		if n, err := b.Fetch(f.Name, big); err != nil || !bytes.Equal(big[:n], f.Data) {
			t.Errorf("Fetch(%s) into 16 KiB = %d, %v", f.Name, n, err)
		}
	}
	for _, img := range c.Firmware {
		r, n, err := b.Firmware(sha256.Sum256(img))
		if err != nil || n != int64(len(img)) {
			t.Fatalf("Firmware = %d, %v; want %d bytes", n, err, len(img))
		}
		got, err := io.ReadAll(io.NewSectionReader(r, 0, n))
		if err != nil || !bytes.Equal(got, img) {
			t.Errorf("firmware read back differs (%v)", err)
		}
	}
}

// TestMemberOrder pins the archive's order: manifest, the root chain by
// version, the other metadata by name, the firmware by hash; and that the
// order of the inputs does not matter.
func TestMemberOrder(t *testing.T) {
	c := testContents()
	data := create(t, c)
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	fw := []string{FirmwareMember(sha256.Sum256(c.Firmware[0])), FirmwareMember(sha256.Sum256(c.Firmware[1]))}
	slices.Sort(fw)
	want := append([]string{"manifest.json",
		"metadata/1.root.json", "metadata/2.root.json", "metadata/10.root.json",
		"metadata/bins%2F0.json", "metadata/snapshot.json", "metadata/targets.json", "metadata/timestamp.json",
	}, fw...)
	if !slices.Equal(names, want) {
		t.Errorf("members\n%q\nwant\n%q", names, want)
	}
	var listed []string
	b, err := open(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range b.Manifest().Members {
		listed = append(listed, m.Name)
	}
	if !slices.Equal(listed, want[1:]) {
		t.Errorf("manifest lists %q, want the archive's order %q", listed, want[1:])
	}

	shuffled := testContents()
	slices.Reverse(shuffled.Metadata)
	slices.Reverse(shuffled.Firmware)
	shuffled.Created = created.Add(400 * time.Millisecond).In(time.FixedZone("CET", 3600))
	if !bytes.Equal(create(t, shuffled), data) {
		t.Error("the same contents in another order (or the same second in another zone) gave other bytes")
	}
}

// TestGolden keeps format version 1 stable: the writer's bytes for
// testContents are testdata/v1.tar (regenerate with -rewrite only when the
// format version changes), and the reader keeps reading that file.
func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "v1.tar")
	data := create(t, testContents())
	if *rewrite {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, golden) {
		t.Errorf("Create's output differs from %s: a format change needs a new FormatVersion", path)
	}
	if _, err := open(golden); err != nil {
		t.Errorf("Open(%s): %v", path, err)
	}
}

// TestStandardTarHeaders: what tar tools show of a bundle is fixed: USTAR,
// regular files, mode 0644, owner 0:0 without names, the created time.
func TestStandardTarHeaders(t *testing.T) {
	tr := tar.NewReader(bytes.NewReader(create(t, testContents())))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Format != tar.FormatUSTAR || h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 ||
			h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(created) {
			t.Errorf("%s: header %+v", h.Name, h)
		}
	}
}

// TestSystemTar unpacks a bundle with the system's tar, packs it again
// with directory entries as the package comment shows, and opens that.
func TestSystemTar(t *testing.T) {
	tarCmd, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar on PATH")
	}
	dir := t.TempDir()
	bundlePath := filepath.Join(dir, "b.tar")
	if err := os.WriteFile(bundlePath, create(t, testContents()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tarCmd, args...)
		cmd.Dir = out
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tar %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	if list := run("-tf", bundlePath); !strings.HasPrefix(list, "manifest.json\nmetadata/1.root.json\n") {
		t.Errorf("tar -tf lists\n%s", list)
	}
	run("-xf", bundlePath)
	repacked := filepath.Join(dir, "repacked.tar")
	run("--format=ustar", "-cf", repacked, "manifest.json", "metadata", "firmware")
	data, err := os.ReadFile(repacked)
	if err != nil {
		t.Fatal(err)
	}
	b, err := open(data)
	if err != nil {
		t.Fatalf("Open(repacked by tar): %v", err)
	}
	dst := make([]byte, 1024)
	if _, err := b.Fetch("10.root.json", dst); err != nil {
		t.Errorf("Fetch from the repacked bundle: %v", err)
	}
}

func TestFetchErrors(t *testing.T) {
	data := create(t, testContents())
	b, err := open(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"3.root.json", "", "../targets.json", "metadata/targets.json", "manifest.json"} {
		_, err := b.Fetch(name, make([]byte, 1024))
		if !errors.Is(err, tufnano.ErrNotFound) || tufnano.KindOf(err) != tufnano.KindNotFound {
			t.Errorf("Fetch(%q) = %v, want not-found", name, err)
		}
	}
	_, err = b.Fetch("targets.json", make([]byte, 10))
	if !errors.Is(err, tufnano.ErrTooLarge) || tufnano.KindOf(err) != tufnano.KindTooLarge {
		t.Errorf("Fetch into 10 bytes = %v, want too-large", err)
	}
	if _, _, err := b.Firmware([32]byte{1}); !errors.Is(err, tufnano.ErrNotFound) {
		t.Errorf("Firmware(unknown) = %v, want not-found", err)
	}

	// The file changes under the open bundle: Fetch notices.
	i := bytes.Index(data, []byte(`"targets"}`))
	data[i+1] = 'T'
	if _, err := b.Fetch("targets.json", make([]byte, 1024)); !errors.Is(err, ErrMismatch) {
		t.Errorf("Fetch of a changed member = %v, want ErrMismatch", err)
	}
	if _, err := b.Fetch("timestamp.json", make([]byte, 1024)); err != nil {
		t.Errorf("Fetch of an unchanged member = %v", err)
	}
}

func TestCreateRefuses(t *testing.T) {
	lim := DefaultLimits()
	tests := []struct {
		name string
		edit func(*Contents)
		want error
	}{
		{"no repository", func(c *Contents) { c.Repository = "" }, ErrManifest},
		{"tag with a slash", func(c *Contents) { c.Tag = "a/b" }, ErrManifest},
		{"created before 1970", func(c *Contents) { c.Created = time.Time{} }, ErrManifest},
		{"created after 2242", func(c *Contents) { c.Created = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrManifest},
		{"path in a metadata name", func(c *Contents) { c.Metadata[0].Name = "../timestamp.json" }, ErrName},
		{"metadata name without .json", func(c *Contents) { c.Metadata[0].Name = "timestamp" }, ErrName},
		{"hidden metadata name", func(c *Contents) { c.Metadata[0].Name = ".x.json" }, ErrName},
		{"metadata name too long", func(c *Contents) { c.Metadata[0].Name = strings.Repeat("a", 86) + ".json" }, ErrName},
		{"a metadata file twice", func(c *Contents) { c.Metadata = append(c.Metadata, c.Metadata[0]) }, ErrDuplicate},
		{"an image twice", func(c *Contents) { c.Firmware = append(c.Firmware, c.Firmware[0]) }, ErrDuplicate},
		{"metadata over the limit", func(c *Contents) { c.Metadata[0].Data = make([]byte, lim.MaxMetadataSize+1) }, ErrLimit},
		{"firmware over the limit", func(c *Contents) { c.Firmware[0] = make([]byte, lim.MaxFirmwareSize+1) }, ErrLimit},
		{"too many members", func(c *Contents) {
			for i := range lim.MaxMembers {
				c.Metadata = append(c.Metadata, File{strings.Repeat("r", i%50+1) + hex.EncodeToString([]byte{byte(i), byte(i >> 8)}) + ".json", nil})
			}
		}, ErrLimit},
		{"over the total size", func(c *Contents) {
			for i := range 5 {
				c.Firmware = append(c.Firmware, bytes.Repeat([]byte{byte(i)}, int(lim.MaxFirmwareSize)))
			}
		}, ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testContents()
			tt.edit(&c)
			var b bytes.Buffer
			err := Create(&b, c)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Create = %v, want %v", err, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("Create wrote %d bytes before refusing", b.Len())
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}
