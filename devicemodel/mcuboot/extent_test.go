package mcuboot

import (
	"io"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
)

func TestReadExtent(t *testing.T) {
	key := testKey(t)
	img := signed(t, key, image.Version{Major: 3}, 1234)
	_, p, _, _ := smallSlots(t, 8)
	program(t, p, 0, img)
	ext, err := ReadExtent(p, 0)
	must(t, err)
	parsed, err := image.Parse(bytesAt(img), int64(len(img)))
	must(t, err)
	if !ext.Present || ext.End != parsed.End || ext.TLVOffset != parsed.TLVOffset || ext.Header != parsed.Header {
		t.Errorf("extent %+v, parsed image ends at %d", ext, parsed.End)
	}
	if ext.UnprotectedTLVSize != parsed.End-parsed.TLVOffset {
		t.Errorf("unprotected TLV size %d, want %d", ext.UnprotectedTLVSize, parsed.End-parsed.TLVOffset)
	}
	_, empty, _, _ := smallSlots(t, 8)
	if ext, err := ReadExtent(empty, 0); err != nil || ext.Present {
		t.Errorf("erased slot: %+v, %v", ext, err)
	}
}

// FuzzReadExtent: arbitrary slot contents never panic ReadExtent, and an
// extent it reports is consistent with its header.
func FuzzReadExtent(f *testing.F) {
	img := signed(f, testKey(f), image.Version{Major: 1}, 100)
	f.Add(img)
	f.Add(img[:40])
	f.Add([]byte{0x3d, 0xb8, 0xf3, 0x96, 0, 0, 0, 0, 0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, p, _, _ := smallSlots(t, 8)
		if len(b) > 4096 {
			b = b[:4096]
		}
		if len(b) > 0 {
			program(t, p, 0, b)
		}
		ext, err := ReadExtent(p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ext.Present && ext.End != ext.TLVOffset+int64(ext.Header.ProtectTLVSize)+ext.UnprotectedTLVSize {
			t.Fatalf("inconsistent extent %+v", ext)
		}
	})
}

type bytesAt []byte

func (b bytesAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(b)) {
		return 0, io.ErrUnexpectedEOF
	}
	return copy(p, b[off:]), nil
}
