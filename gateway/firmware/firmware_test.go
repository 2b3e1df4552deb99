package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPutOpen(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	data := bytes.Repeat([]byte("fleetsim"), 5000)
	sum, n, err := d.Put(bytes.NewReader(data), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if sum != hex.EncodeToString(want[:]) || n != int64(len(data)) {
		t.Fatalf("Put = %s, %d", sum, n)
	}
	// Storing the same bytes again is harmless.
	if sum2, _, err := d.Put(bytes.NewReader(data), 1<<20, nil); err != nil || sum2 != sum {
		t.Fatalf("second Put = %s, %v", sum2, err)
	}
	r1, err := d.Open(sum)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := d.Open(sum)
	// Independent offsets over one descriptor.
	b1 := make([]byte, 8)
	r1.Seek(8, io.SeekStart)
	io.ReadFull(r1, b1)
	b2 := make([]byte, 8)
	io.ReadFull(r2, b2)
	if string(b1) != "fleetsim" || string(b2) != "fleetsim" || r1.Size() != int64(len(data)) {
		t.Fatalf("reads %q %q size %d", b1, b2, r1.Size())
	}
	h0, rest, _ := strings.Cut(strings.TrimPrefix(Path(sum), "/mcu/files/"), "/")
	if got, ok := SumFromPath(h0, rest); !ok || got != sum {
		t.Fatalf("SumFromPath(Path) = %q, %v", got, ok)
	}
	if _, err := os.Stat(filepath.Join(d.root, sum[:2], sum[2:]+".bin")); err != nil {
		t.Fatal(err)
	}
}

func TestPutTooLarge(t *testing.T) {
	root := t.TempDir()
	d, _ := Open(root)
	if _, _, err := d.Put(bytes.NewReader(make([]byte, 101)), 100, nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Fatalf("a refused upload left %v", entries)
	}
}

func TestOpenMissing(t *testing.T) {
	d, _ := Open(t.TempDir())
	for _, sum := range []string{strings.Repeat("ab", 32), "../../etc/passwd", strings.Repeat("AB", 32)} {
		if _, err := d.Open(sum); !errors.Is(err, ErrNotFound) {
			t.Errorf("Open(%q) = %v", sum, err)
		}
	}
}

func TestSumFromPath(t *testing.T) {
	ok := strings.Repeat("a", 62) + ".bin"
	for _, c := range []struct {
		h0, rest string
		ok       bool
	}{
		{"64", ok, true},
		{"6", ok, false},
		{"6G", ok, false},
		{"AB", ok, false},
		{"ab", strings.Repeat("a", 62), false},
		{"ab", strings.Repeat("a", 61) + ".bin", false},
		{"ab", strings.Repeat("A", 62) + ".bin", false},
		{"..", ok, false},
	} {
		if _, got := SumFromPath(c.h0, c.rest); got != c.ok {
			t.Errorf("SumFromPath(%q, %q) = %v", c.h0, c.rest, got)
		}
	}
}

func TestPutCheckRefuses(t *testing.T) {
	root := t.TempDir()
	d, _ := Open(root)
	bad := errors.New("not an image")
	var seen int64
	_, _, err := d.Put(strings.NewReader("hello"), 100, func(f io.ReaderAt, size int64) error {
		b := make([]byte, size)
		f.ReadAt(b, 0)
		if string(b) != "hello" {
			t.Errorf("check saw %q", b)
		}
		seen = size
		return bad
	})
	if !errors.Is(err, bad) || seen != 5 {
		t.Fatalf("err = %v, seen %d", err, seen)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatalf("a refused upload left %v", entries)
	}
}
