package image

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"testing"
)

// TestVectorsParse checks every imgtool vector field by field against the
// manifest and verifies it with its public key.
func TestVectorsParse(t *testing.T) {
	keys := map[string]crypto.PublicKey{
		"ecdsa-p256": loadSigner(t, "imgtool/ecdsa-p256.pem").Public(),
		"ed25519":    loadSigner(t, "imgtool/ed25519.pem").Public(),
	}
	for _, e := range loadManifest(t) {
		t.Run(e.File, func(t *testing.T) {
			img := readTestdata(t, "imgtool/"+e.File)
			if int64(len(img)) != e.FileSize {
				t.Fatalf("file is %d bytes, manifest says %d", len(img), e.FileSize)
			}
			im, err := Parse(bytes.NewReader(img), vectorSlotSize)
			if err != nil {
				t.Fatal(err)
			}
			h := im.Header
			if got := fmt.Sprintf("%#x", h.Magic); got != e.Magic {
				t.Errorf("magic %s, want %s", got, e.Magic)
			}
			if h.LoadAddr != e.LoadAddr || h.HdrSize != e.HdrSize || h.ProtectTLVSize != e.ProtectTLVSize ||
				h.ImgSize != e.ImgSize || h.Flags != e.Flags {
				t.Errorf("header %+v disagrees with manifest %+v", h, e)
			}
			if h.Version.String() != e.Version {
				t.Errorf("version %s, want %s", h.Version, e.Version)
			}
			if im.TLVOffset != int64(e.HdrSize)+int64(e.ImgSize) {
				t.Errorf("TLVOffset %d", im.TLVOffset)
			}
			if im.End != e.ImageEnd {
				t.Errorf("End %d, want %d", im.End, e.ImageEnd)
			}
			if got := im.End - (im.TLVOffset + int64(h.ProtectTLVSize)); got != int64(e.TLVInfoTot) || im.TLVOffset+int64(h.ProtectTLVSize) != e.TLVInfoOff {
				t.Errorf("unprotected area at %d size %d, want %d size %d", im.TLVOffset+int64(h.ProtectTLVSize), got, e.TLVInfoOff, e.TLVInfoTot)
			}
			if hex.EncodeToString(im.Digest[:]) != e.SHA256 {
				t.Errorf("digest %x, want %s", im.Digest, e.SHA256)
			}
			if len(im.TLVs) != len(e.TLVs) {
				t.Fatalf("%d TLVs, want %d", len(im.TLVs), len(e.TLVs))
			}
			for i, want := range e.TLVs {
				got := im.TLVs[i]
				typ, _ := strconv.ParseUint(want.Type, 0, 16)
				if got.Type != uint16(typ) || got.Protected != (want.Area == "protected") || got.Offset != want.Off+4 || // the manifest gives the TLV header's offset

					len(got.Value) != want.Len || hex.EncodeToString(got.Value) != want.Value {
					t.Errorf("TLV %d = {%#x %v %d %x}, want %+v", i, got.Type, got.Protected, got.Offset, got.Value, want)
				}
			}
			var vkeys []crypto.PublicKey
			if e.SigAlg != "" {
				vkeys = []crypto.PublicKey{keys[e.SigAlg]}
			}
			if err := im.Verify(vkeys); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := im.Verify(nil); err != nil {
				t.Errorf("Verify without keys (hash only): %v", err)
			}
			// The other key is not named by the KEYHASH: nothing signed by a known key.
			if e.SigAlg != "" {
				other := keys["ed25519"]
				if e.SigAlg == "ed25519" {
					other = keys["ecdsa-p256"]
				}
				if err := im.Verify([]crypto.PublicKey{other}); !errors.Is(err, ErrNoSignature) {
					t.Errorf("Verify with the wrong key = %v, want ErrNoSignature", err)
				}
				if err := im.Verify([]crypto.PublicKey{other, vkeys[0]}); err != nil {
					t.Errorf("Verify with both keys: %v", err)
				}
			} else if err := im.Verify([]crypto.PublicKey{keys["ed25519"]}); !errors.Is(err, ErrNoSignature) {
				t.Errorf("unsigned image with a key = %v, want ErrNoSignature", err)
			}
			if e.Trailer != nil {
				checkTrailer(t, img, im.End, e.Trailer.ImageOK == "0x1")
			}
		})
	}
}

// checkTrailer asserts the --pad layout of a max-align 8 slot: erased
// (0xff) after the image except the magic at E-16 and, when confirmed,
// image_ok=1 at E-24.
func checkTrailer(t *testing.T, slot []byte, end int64, confirmed bool) {
	t.Helper()
	n := len(slot)
	if !bytes.Equal(slot[n-16:], BootMagic[:]) {
		t.Errorf("trailer magic %x", slot[n-16:])
	}
	for i := int(end); i < n-16; i++ {
		want := byte(0xff)
		if confirmed && i == n-24 {
			want = 1
		}
		if slot[i] != want {
			t.Fatalf("byte %#x after the image is %#x, want %#x", i, slot[i], want)
		}
	}
}

// TestVectorsKeyMaterial checks KEYHASH and the raw public key encoding
// against imgtool getpub / getpubhash output.
func TestVectorsKeyMaterial(t *testing.T) {
	for _, name := range []string{"ecdsa-p256", "ed25519"} {
		pub := loadSigner(t, "imgtool/"+name+".pem").Public()
		raw, err := PublicKeyBytes(pub)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, readTestdata(t, "imgtool/"+name+".pub.der")) {
			t.Errorf("%s: public key bytes differ from imgtool's DER", name)
		}
		kh, err := KeyHash(pub)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(kh[:], readTestdata(t, "imgtool/"+name+".keyhash")) {
			t.Errorf("%s: KeyHash %x differs from imgtool's", name, kh)
		}
		pubPEM, err := ParsePublicKeyPEM(readTestdata(t, "imgtool/"+name+".pub.pem"))
		if err != nil {
			t.Fatal(err)
		}
		kh2, _ := KeyHash(pubPEM)
		if kh2 != kh {
			t.Errorf("%s: public PEM hashes to %x, private key's public half to %x", name, kh2, kh)
		}
		out, err := MarshalPublicKeyPEM(pub)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(readTestdata(t, "imgtool/"+name+".pub.pem"))) {
			t.Errorf("%s: MarshalPublicKeyPEM differs from imgtool getpub -e pem:\n%s", name, out)
		}
	}
}

// TestSignEd25519MatchesImgtool rebuilds every Ed25519 vector and the
// unsigned one and demands the same bytes imgtool wrote.
func TestSignEd25519MatchesImgtool(t *testing.T) {
	ed := loadSigner(t, "imgtool/ed25519.pem")
	p20 := readTestdata(t, "imgtool/payload-20k.bin")
	p100 := readTestdata(t, "imgtool/payload-100k.bin")
	cases := []struct {
		file    string
		payload []byte
		opts    SignOptions
	}{
		{"ed25519-20k-v1.0.0.bin", p20, vectorOptions(ed, Version{Major: 1})},
		{"ed25519-100k-v1.1.0-pad-confirm.bin", p100, func() SignOptions {
			o := vectorOptions(ed, Version{Major: 1, Minor: 1})
			o.Pad, o.Confirm = true, true
			return o
		}()},
		{"unsigned-20k-v1.0.0.bin", p20, vectorOptions(nil, Version{Major: 1})},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			want := readTestdata(t, "imgtool/"+c.file)
			got, err := Sign(c.payload, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Sign differs from imgtool: %d bytes vs %d, first difference at %d", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

// TestSignECDSALayout signs like each ECDSA vector and compares everything
// but the randomised signature (and the unprotected size that depends on
// its DER length); the new signature must verify.
func TestSignECDSALayout(t *testing.T) {
	ec := loadSigner(t, "imgtool/ecdsa-p256.pem")
	seccnt := uint32(5)
	cases := []struct {
		file    string
		payload string
		v       Version
		mod     func(*SignOptions)
	}{
		{"ecdsa-20k-v1.0.0.bin", "payload-20k.bin", Version{Major: 1}, nil},
		{"ecdsa-100k-v1.1.0.bin", "payload-100k.bin", Version{Major: 1, Minor: 1}, nil},
		{"ecdsa-20k-v1.1.0-pad-confirm.bin", "payload-20k.bin", Version{Major: 1, Minor: 1}, func(o *SignOptions) { o.Confirm = true }},
		{"ecdsa-20k-v1.1.0-pad.bin", "payload-20k.bin", Version{Major: 1, Minor: 1}, func(o *SignOptions) { o.Pad = true }},
		{"ecdsa-20k-v1.2.3+4-seccnt5.bin", "payload-20k.bin", Version{1, 2, 3, 4}, func(o *SignOptions) { o.SecurityCounter = &seccnt }},
		{"ecdsa-20k-v1.0.0-pad-maxsec32.bin", "payload-20k.bin", Version{Major: 1}, func(o *SignOptions) { o.Pad, o.MaxSectors = true, 32 }},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			want := readTestdata(t, "imgtool/"+c.file)
			o := vectorOptions(ec, c.v)
			if c.mod != nil {
				c.mod(&o)
			}
			got, err := Sign(readTestdata(t, "imgtool/"+c.payload), o)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) && o.Pad {
				t.Fatalf("padded image is %d bytes, want %d", len(got), len(want))
			}
			gi, wi := mustParse(t, got), mustParse(t, want)
			if gi.Header != wi.Header || gi.Digest != wi.Digest {
				t.Errorf("header/digest differ: %+v %x vs %+v %x", gi.Header, gi.Digest, wi.Header, wi.Digest)
			}
			// Everything up to the signature TLV's header, except the
			// unprotected area's size field.
			sigHdr := int(wi.TLVs[len(wi.TLVs)-1].Offset) - 4
			totOff := int(wi.TLVOffset) + int(wi.Header.ProtectTLVSize) + 2
			g, w := bytes.Clone(got[:sigHdr]), bytes.Clone(want[:sigHdr])
			g[totOff], g[totOff+1], w[totOff], w[totOff+1] = 0, 0, 0, 0
			if !bytes.Equal(g, w) {
				t.Errorf("bytes before the signature differ at %d", firstDiff(g, w))
			}
			if gs := gi.TLVs[len(gi.TLVs)-1]; gs.Type != TLVECDSASig || gs.Offset != int64(sigHdr+4) {
				t.Errorf("signature TLV %#x at %d", gs.Type, gs.Offset)
			}
			if from := max(gi.End, wi.End); o.Pad && !bytes.Equal(got[from:], want[from:]) {
				t.Errorf("padding and trailer differ from imgtool's")
			}
			if err := gi.Verify([]crypto.PublicKey{ec.Public()}); err != nil {
				t.Errorf("Verify our ECDSA image: %v", err)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
