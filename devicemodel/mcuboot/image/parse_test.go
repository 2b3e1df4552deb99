package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

func TestParseHeader(t *testing.T) {
	good := Header{Magic: HeaderMagic, LoadAddr: 0x20000000, HdrSize: 0x200, ProtectTLVSize: 12, ImgSize: 1234, Flags: FlagRAMLoad,
		Version: Version{1, 2, 3, 4}}
	b := good.Bytes()
	if b[0] != 0x3d || b[3] != 0x96 || b[28] != 0 {
		t.Fatalf("header bytes % x", b)
	}
	h, err := ParseHeader(b[:])
	if err != nil || h != good {
		t.Fatalf("round trip: %+v, %v", h, err)
	}
	mod := func(f func([]byte)) []byte {
		c := b
		f(c[:])
		return c[:]
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"erased 0xff", bytes.Repeat([]byte{0xff}, 32), ErrNoImage},
		{"erased 0x00", make([]byte, 32), ErrNoImage},
		{"magic only erased", mod(func(c []byte) { copy(c, []byte{0xff, 0xff, 0xff, 0xff}) }), ErrNoImage},
		{"legacy magic", mod(func(c []byte) { c[0] = 0x3c }), ErrBadHeader},
		{"short", b[:31], ErrBadHeader},
		{"empty", nil, ErrBadHeader},
		{"hdr size below 32", mod(func(c []byte) { binary.LittleEndian.PutUint16(c[8:], 31) }), ErrBadHeader},
	}
	for _, c := range cases {
		if _, err := ParseHeader(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestParseRejects builds images that break one MCUboot TLV rule each.
func TestParseRejects(t *testing.T) {
	seccnt := uint32(3)
	img, err := Sign(make([]byte, 100), SignOptions{HeaderSize: 64, PadHeader: true, SecurityCounter: &seccnt})
	if err != nil {
		t.Fatal(err)
	}
	im := mustParse(t, img)
	prot := int(im.TLVOffset)                      // protected info header
	unprot := prot + int(im.Header.ProtectTLVSize) // unprotected info header
	put16 := func(off int, v uint16) []byte {
		c := bytes.Clone(img)
		binary.LittleEndian.PutUint16(c[off:], v)
		return c
	}
	cases := []struct {
		name    string
		in      []byte
		maxSize int64
		want    error
	}{
		{"protected size disagrees", put16(prot+2, 16), 0, ErrBadTLV},
		{"header says no protected area", put16(10, 0), 0, ErrBadTLV},
		{"protected magic wrong", put16(prot, TLVInfoMagic), 0, ErrBadTLV},
		{"unprotected magic wrong", put16(unprot, TLVProtInfoMagic), 0, ErrBadTLV},
		{"unprotected size below its header", put16(unprot+2, 3), 0, ErrBadTLV},
		{"TLV length past the area", put16(unprot+6, 33), 0, ErrBadTLV},
		{"protected TLV length past the area", put16(prot+6, 5), 0, ErrBadTLV},
		{"unprotected area 2 bytes past the end", put16(unprot+2, 4+32+4+2), 0, ErrTooLarge},
		{"unprotected area past the end", put16(unprot+2, 200), 0, ErrTooLarge},
		{"img size past the end", put16(12, 0xffff), 0, ErrTooLarge},
		{"max size below the image", img, int64(len(img) - 1), ErrTooLarge},
		{"max size below the header", img, 31, ErrTooLarge},
		{"truncated", img[:len(img)-1], int64(len(img)), ErrBadTLV},
		{"truncated header", img[:20], 4096, ErrBadHeader},
		{"erased", bytes.Repeat([]byte{0xff}, 4096), 0, ErrNoImage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			max := c.maxSize
			if max == 0 {
				max = int64(len(c.in))
			}
			if _, err := Parse(bytes.NewReader(c.in), max); !errors.Is(err, c.want) {
				t.Fatalf("Parse = %v, want %v", err, c.want)
			}
		})
	}
	// A TLV header cut by the area end, with the image still in bounds.
	cut := append(bytes.Clone(img), 0xff, 0xff)
	binary.LittleEndian.PutUint16(cut[unprot+2:], uint16(im.End-int64(unprot))+2)
	if _, err := Parse(bytes.NewReader(cut), int64(len(cut))); !errors.Is(err, ErrBadTLV) {
		t.Errorf("TLV header cut by the area end: %v", err)
	}
}

// boundedReader records the reads Parse makes.
type boundedReader struct {
	r       io.ReaderAt
	maxRead int
	maxEnd  int64
}

func (b *boundedReader) ReadAt(p []byte, off int64) (int, error) {
	b.maxRead = max(b.maxRead, len(p))
	b.maxEnd = max(b.maxEnd, off+int64(len(p)))
	return b.r.ReadAt(p, off)
}

// TestParseReadsInChunks: Parse reads a 128 KiB slot in small chunks and
// never past the image end.
func TestParseReadsInChunks(t *testing.T) {
	slot := readTestdata(t, "imgtool/ed25519-100k-v1.1.0-pad-confirm.bin")
	br := &boundedReader{r: bytes.NewReader(slot)}
	im, err := Parse(br, int64(len(slot)))
	if err != nil {
		t.Fatal(err)
	}
	if br.maxRead > hashChunk {
		t.Errorf("largest read %d bytes, want <= %d", br.maxRead, hashChunk)
	}
	if br.maxEnd != im.End {
		t.Errorf("read up to %d, image ends at %d", br.maxEnd, im.End)
	}
}

func TestParseDependenciesAndCounter(t *testing.T) {
	sc := uint32(0x01020003)
	deps := []Dependency{{ImageID: 1, MinVersion: Version{1, 2, 3, 4}}, {ImageID: 2, MinVersion: Version{0, 9, 0, 0}}}
	img, err := Sign(make([]byte, 64), SignOptions{HeaderSize: 32, PadHeader: true, SecurityCounter: &sc, Dependencies: deps})
	if err != nil {
		t.Fatal(err)
	}
	im := mustParse(t, img)
	if got, ok := im.SecurityCounter(); !ok || got != sc {
		t.Errorf("SecurityCounter = %#x, %v", got, ok)
	}
	got := im.Dependencies()
	if len(got) != 2 || got[0] != deps[0] || got[1] != deps[1] {
		t.Errorf("Dependencies = %+v", got)
	}
	// imgtool's order and sizes: SEC_CNT first, 8 + 2*16 + 4 bytes.
	if im.Header.ProtectTLVSize != 44 || im.TLVs[0].Type != TLVSecCnt || im.TLVs[1].Type != TLVDependency || !im.TLVs[2].Protected {
		t.Errorf("protected area: size %d, TLVs %+v", im.Header.ProtectTLVSize, im.TLVs[:3])
	}
	if dep := im.TLVs[1].Value; !bytes.Equal(dep[:4], []byte{1, 0, 0, 0}) {
		t.Errorf("dependency value % x", dep)
	}
	if err := im.Verify(nil); err != nil {
		t.Error(err)
	}

	// Unprotected SEC_CNT and DEPENDENCY are ignored, as in MCUboot.
	plain := mustParse(t, readTestdata(t, "imgtool/ed25519-20k-v1.0.0.bin"))
	plain.TLVs = append(plain.TLVs, TLV{Type: TLVSecCnt, Value: []byte{9, 0, 0, 0}}, TLV{Type: TLVDependency, Value: make([]byte, 12)})
	if _, ok := plain.SecurityCounter(); ok || len(plain.Dependencies()) != 0 {
		t.Errorf("unprotected SEC_CNT/DEPENDENCY honoured")
	}
}
