package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/agent/tufnano"
)

// countingReader is an io.ReaderAt that fails the test on a read outside
// the file and counts the bytes read.
type countingReader struct {
	t    *testing.T
	data []byte
	read int64
}

func (r *countingReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(r.data)) {
		r.t.Fatalf("ReadAt at %d, outside the %d-byte file", off, len(r.data))
	}
	r.read += int64(len(p))
	n := copy(p, r.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// FuzzOpen opens arbitrary bytes as a bundle. It must never panic, must
// refuse with a sentinel, must read no byte outside the file and no more
// than about the file's size in all (so work and memory follow the input,
// never a number the input announces), and a bundle it accepts must serve
// every member it lists with the listed length and hash.
func FuzzOpen(f *testing.F) {
	// Small seeds: the fuzzer minimises every new input for up to a
	// minute, and a bundle is mostly block padding.
	valid := create(f, Contents{
		Repository: "ci", Tag: "main", Created: created,
		Metadata: []File{{"1.root.json", []byte(`{"r":1}`)}, {"timestamp.json", []byte(`{"t":1}`)}},
		Firmware: [][]byte{[]byte("fw")},
	})
	f.Add(valid)
	f.Add(valid[:len(valid)-blockSize])
	f.Add(valid[:3*blockSize+7])
	f.Add(rawTar(f, 0, manifestFor(rootMember, timestampMember), rootMember, timestampMember))
	f.Add([]byte{})
	f.Add(make([]byte, 2*blockSize))
	lim := DefaultLimits()
	lim.MaxSize = 1 << 20
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{t: t, data: data}
		b, err := OpenWithLimits(r, int64(len(data)), lim)
		// Each byte is read once, plus whole blocks at the end.
		if r.read > int64(len(data))+blockSize {
			t.Fatalf("read %d bytes of a %d-byte file", r.read, len(data))
		}
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("Open = %v: not a sentinel refusal", err)
			}
			return
		}
		dst := make([]byte, lim.MaxMetadataSize)
		for _, m := range b.Manifest().Members {
			var got []byte
			if name, ok := strings.CutPrefix(m.Name, metadataPrefix); ok {
				n, err := b.Fetch(name, dst)
				if err != nil {
					t.Fatalf("Fetch(%s) = %v", name, err)
				}
				got = dst[:n]
			} else {
				var sum [32]byte
				hex.Decode(sum[:], []byte(m.SHA256))
				ra, n, err := b.Firmware(sum)
				if err != nil {
					t.Fatalf("Firmware(%s) = %v", m.Name, err)
				}
				got = make([]byte, n)
				if _, err := ra.ReadAt(got, 0); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
			}
			sum := sha256.Sum256(got)
			if int64(len(got)) != m.Length || hex.EncodeToString(sum[:]) != m.SHA256 {
				t.Fatalf("%s: served %d bytes that do not match the manifest", m.Name, len(got))
			}
		}
		if _, err := b.Fetch("no-such-file.json", dst); !errors.Is(err, tufnano.ErrNotFound) {
			t.Fatalf("Fetch(missing) = %v", err)
		}
	})
}
