package image

import (
	"bytes"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseHeader(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add(make([]byte, 32))
	for _, e := range []string{"ecdsa-20k-v1.2.3+4-seccnt5.bin", "ed25519-20k-v1.0.0.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata/imgtool", e))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:32])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		// A header that parses encodes back to its own first 28 bytes.
		enc := h.Bytes()
		if !bytes.Equal(enc[:28], b[:28]) {
			t.Fatalf("Bytes() = % x, input % x", enc[:28], b[:28])
		}
	})
}

// FuzzParse walks the TLVs of random images; whatever parses must stay
// inside maxSize and its TLVs inside [TLVOffset, End), and Verify must not
// panic.
func FuzzParse(f *testing.F) {
	ed := []crypto.PublicKey{}
	if k, err := os.ReadFile("testdata/imgtool/ed25519.pem"); err == nil {
		if s, err := ParsePrivateKeyPEM(k); err == nil {
			ed = append(ed, s.Public())
		}
	}
	small := func(b []byte) []byte {
		// Shrink the seeds: keep the header and the TLVs, drop most of
		// the payload by rewriting ih_img_size.
		im, err := Parse(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return b
		}
		out := append(bytes.Clone(b[:64]), b[im.TLVOffset:im.End]...)
		out[8], out[9] = 64, 0
		out[12], out[13], out[14], out[15] = 0, 0, 0, 0
		return out
	}
	for _, e := range []string{"ecdsa-20k-v1.2.3+4-seccnt5.bin", "ed25519-20k-v1.0.0.bin", "unsigned-20k-v1.0.0.bin"} {
		b, err := os.ReadFile(filepath.Join("testdata/imgtool", e))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(small(b), int64(4096))
	}
	f.Add(bytes.Repeat([]byte{0xff}, 64), int64(64))
	f.Fuzz(func(t *testing.T, b []byte, maxSize int64) {
		im, err := Parse(bytes.NewReader(b), maxSize)
		if err != nil {
			for _, s := range []error{ErrNoImage, ErrBadHeader, ErrBadTLV, ErrTooLarge} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("Parse error without a sentinel: %v", err)
		}
		if im.End > maxSize || im.End > int64(len(b)) || im.TLVOffset > im.End {
			t.Fatalf("image [%d, %d) outside maxSize %d / %d bytes", im.TLVOffset, im.End, maxSize, len(b))
		}
		for _, tl := range im.TLVs {
			if tl.Offset < im.TLVOffset || tl.Offset+int64(len(tl.Value)) > im.End ||
				!bytes.Equal(b[tl.Offset:tl.Offset+int64(len(tl.Value))], tl.Value) {
				t.Fatalf("TLV %#x at %d is not where it says", tl.Type, tl.Offset)
			}
		}
		im.SecurityCounter()
		im.Dependencies()
		_ = im.Verify(nil)
		_ = im.Verify(ed)
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	for _, name := range []string{"imgtool/ecdsa-p256.pem", "imgtool/ed25519.pem", "rsa-2048.pem", "imgtool/ed25519.pub.pem"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParsePrivateKeyPEM(b)
		if err != nil {
			if !errors.Is(err, ErrBadKey) && !errors.Is(err, ErrUnsupportedKey) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if _, err := KeyHash(k.Public()); err != nil {
			t.Fatalf("parsed key has no KEYHASH: %v", err)
		}
		if _, err := ParsePublicKeyPEM(b); err != nil {
			t.Fatalf("private key parses, its public half does not: %v", err)
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1", "1.2", "1.2.3+4", "255.255.65535+4294967295", "01", "1.2+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		back, err := ParseVersion(v.String())
		if err != nil || back != v {
			t.Fatalf("%q -> %v does not round-trip", s, v)
		}
	})
}
