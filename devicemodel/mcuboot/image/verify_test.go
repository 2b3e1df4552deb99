package image

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"testing"
)

// tamperedFails reports whether img, with byte off flipped, is rejected
// by Parse or Verify.
func tamperedFails(img []byte, off int, keys []crypto.PublicKey) error {
	bad := bytes.Clone(img)
	bad[off] ^= 0x01
	im, err := Parse(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		return err
	}
	return im.Verify(keys)
}

// TestTamperedVectorsFail flips one bit at a time: every byte of the
// header and of the signature, and a sample of the rest of the hashed
// range, must make the image fail.
func TestTamperedVectorsFail(t *testing.T) {
	cases := []struct{ file, key string }{
		{"ecdsa-20k-v1.0.0.bin", "imgtool/ecdsa-p256.pem"},
		{"ecdsa-20k-v1.2.3+4-seccnt5.bin", "imgtool/ecdsa-p256.pem"},
		{"ed25519-20k-v1.0.0.bin", "imgtool/ed25519.pem"},
		{"unsigned-20k-v1.0.0.bin", ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			img := readTestdata(t, "imgtool/"+c.file)
			var keys []crypto.PublicKey
			if c.key != "" {
				keys = []crypto.PublicKey{loadSigner(t, c.key).Public()}
			}
			im := mustParse(t, img)
			if err := im.Verify(keys); err != nil {
				t.Fatalf("untouched image: %v", err)
			}
			hashEnd := int(im.TLVOffset) + int(im.Header.ProtectTLVSize)
			var offs []int
			for i := 0; i < HeaderSize; i++ {
				offs = append(offs, i)
			}
			// Header padding, payload and protected area: a deterministic
			// sample including both ends and every area boundary.
			for i := HeaderSize; i < hashEnd; i += 97 {
				offs = append(offs, i)
			}
			offs = append(offs, int(im.Header.HdrSize)-1, int(im.Header.HdrSize), int(im.TLVOffset)-1, hashEnd-1)
			for _, tl := range im.TLVs {
				if tl.Protected {
					offs = append(offs, int(tl.Offset), int(tl.Offset)+len(tl.Value)-1)
				}
				// Every byte of the hash and signature TLVs.
				if !tl.Protected && tl.Type != TLVKeyHash {
					for i := range tl.Value {
						offs = append(offs, int(tl.Offset)+i)
					}
				}
			}
			for _, off := range offs {
				if err := tamperedFails(img, off, keys); err == nil {
					t.Errorf("flipping byte %d went unnoticed", off)
				}
			}
		})
	}
}

// TestTamperedKeyHashSkipsSignature: a KEYHASH naming no given key means the
// signature after it is not checked, so nothing verifies.
func TestTamperedKeyHashSkipsSignature(t *testing.T) {
	img := readTestdata(t, "imgtool/ed25519-20k-v1.0.0.bin")
	key := loadSigner(t, "imgtool/ed25519.pem").Public()
	im := mustParse(t, img)
	kh := im.TLVs[1]
	if kh.Type != TLVKeyHash {
		t.Fatalf("TLV 1 is %#x", kh.Type)
	}
	err := tamperedFails(img, int(kh.Offset)+5, []crypto.PublicKey{key})
	if !errors.Is(err, ErrNoSignature) {
		t.Fatalf("Verify = %v, want ErrNoSignature", err)
	}
	// Without keys only the hash counts, which the KEYHASH is not part of.
	if err := tamperedFails(img, int(kh.Offset)+5, nil); err != nil {
		t.Fatalf("hash-only Verify = %v", err)
	}
}

// editTLV returns a copy of img with the value of TLV i replaced by v of
// the same length.
func editTLV(t *testing.T, img []byte, i int, edit func([]byte)) []byte {
	t.Helper()
	im := mustParse(t, img)
	out := bytes.Clone(img)
	tl := im.TLVs[i]
	edit(out[tl.Offset : tl.Offset+int64(len(tl.Value))])
	return out
}

func TestVerifyErrors(t *testing.T) {
	ed := loadSigner(t, "imgtool/ed25519.pem")
	ec := loadSigner(t, "imgtool/ecdsa-p256.pem")
	edImg := readTestdata(t, "imgtool/ed25519-20k-v1.0.0.bin")
	ecImg := readTestdata(t, "imgtool/ecdsa-20k-v1.0.0.bin")
	payload := readTestdata(t, "imgtool/payload-20k.bin")[:1000]
	edKeys := []crypto.PublicKey{ed.Public()}

	// An image whose only unprotected TLV is not a hash.
	noHash := func() []byte {
		img, err := Sign(payload, SignOptions{HeaderSize: 32, PadHeader: true})
		if err != nil {
			t.Fatal(err)
		}
		im := mustParse(t, img)
		binary.LittleEndian.PutUint16(img[im.TLVs[0].Offset-4:], 0x7777)
		return img
	}()
	// Retyping the signature as ECDSA: the Ed25519 key cannot check it.
	wrongAlg := editTLVType(t, edImg, 2, TLVECDSASig)

	cases := []struct {
		name string
		img  []byte
		keys []crypto.PublicKey
		want error
	}{
		{"no hash", noHash, nil, ErrNoHash},
		{"hash mismatch", editTLV(t, edImg, 0, func(b []byte) { b[0] ^= 1 }), nil, ErrHashMismatch},
		{"bad ed25519 signature", editTLV(t, edImg, 2, func(b []byte) { b[63] ^= 0x80 }), edKeys, ErrBadSignature},
		{"bad ecdsa DER", editTLV(t, ecImg, 2, func(b []byte) { b[0] = 0x31 }), []crypto.PublicKey{ec.Public()}, ErrBadSignature},
		{"bad ecdsa value", editTLV(t, ecImg, 2, func(b []byte) { b[10] ^= 1 }), []crypto.PublicKey{ec.Public()}, ErrBadSignature},
		{"signature of another algorithm", wrongAlg, edKeys, ErrBadSignature},
		{"wrong key", edImg, []crypto.PublicKey{ec.Public()}, ErrNoSignature},
		{"short SHA256", resizeTLV(t, edImg, 0, 31), nil, ErrBadTLV},
		{"short KEYHASH", resizeTLV(t, edImg, 1, 16), edKeys, ErrBadTLV},
		{"short ED25519", resizeTLV(t, edImg, 2, 63), edKeys, ErrBadTLV},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im, err := Parse(bytes.NewReader(c.img), int64(len(c.img)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := im.Verify(c.keys); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}

	if err := mustParse(t, edImg).Verify([]crypto.PublicKey{struct{}{}}); !errors.Is(err, ErrUnsupportedKey) {
		t.Errorf("Verify with an unsupported key = %v", err)
	}
}

// editTLVType changes the type of TLV i.
func editTLVType(t *testing.T, img []byte, i int, typ uint16) []byte {
	t.Helper()
	im := mustParse(t, img)
	out := bytes.Clone(img)
	binary.LittleEndian.PutUint16(out[im.TLVs[i].Offset-4:], typ)
	return out
}

// resizeTLV cuts TLV i (of the unprotected area) to n bytes, keeping the
// area consistent so that only the length rule is broken.
func resizeTLV(t *testing.T, img []byte, i, n int) []byte {
	t.Helper()
	return replaceTLV(t, img, i, mustParse(t, img).TLVs[i].Value[:n])
}

// replaceTLV gives TLV i (of the unprotected area) a new value, adjusting
// its length and the area's size.
func replaceTLV(t *testing.T, img []byte, i int, v []byte) []byte {
	t.Helper()
	im := mustParse(t, img)
	tl := im.TLVs[i]
	out := append(bytes.Clone(img[:tl.Offset]), v...)
	out = append(out, img[tl.Offset+int64(len(tl.Value)):im.End]...)
	binary.LittleEndian.PutUint16(out[tl.Offset-2:], uint16(len(v)))
	info := im.TLVOffset + int64(im.Header.ProtectTLVSize)
	tot := int(binary.LittleEndian.Uint16(out[info+2:])) + len(v) - len(tl.Value)
	binary.LittleEndian.PutUint16(out[info+2:], uint16(tot))
	return out
}

// TestVerifyPaddedECDSASignature: imgtool --pad-sig zero-pads ECDSA
// signatures to 72 bytes; MCUboot accepts them, and so must Verify. Any
// other trailing byte is refused.
func TestVerifyPaddedECDSASignature(t *testing.T) {
	img := readTestdata(t, "imgtool/ecdsa-20k-v1.1.0-pad.bin") // 70-byte signature
	keys := []crypto.PublicKey{loadSigner(t, "imgtool/ecdsa-p256.pem").Public()}
	sig := mustParse(t, img).TLVs[2].Value
	if len(sig) != 70 {
		t.Fatalf("vector signature is %d bytes", len(sig))
	}
	padded := replaceTLV(t, img, 2, append(bytes.Clone(sig), 0, 0))
	if err := mustParse(t, padded).Verify(keys); err != nil {
		t.Errorf("zero-padded signature: %v", err)
	}
	junk := replaceTLV(t, img, 2, append(bytes.Clone(sig), 0, 1))
	if err := mustParse(t, junk).Verify(keys); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signature with trailing junk: %v", err)
	}
	long := replaceTLV(t, img, 2, append(bytes.Clone(sig), 0, 0, 0))
	if err := mustParse(t, long).Verify(keys); !errors.Is(err, ErrBadTLV) {
		t.Errorf("73-byte ECDSA_SIG: %v", err)
	}
}

// TestVerifyMultipleSignatures: an image may carry a signature by a key the
// device does not know next to one it does (key rotation); one good
// signature is enough, and the unknown one is skipped.
func TestVerifyMultipleSignatures(t *testing.T) {
	ed := loadSigner(t, "imgtool/ed25519.pem")
	other, err := GenerateKey(KeyEd25519, testRand(7))
	if err != nil {
		t.Fatal(err)
	}
	img, err := Sign(readTestdata(t, "imgtool/payload-20k.bin")[:4096], SignOptions{Key: ed, HeaderSize: 32, PadHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	im := mustParse(t, img)
	kh, _ := KeyHash(other.Public())
	sig, _ := other.Sign(nil, im.Digest[:], crypto.Hash(0))
	var w tlvWriter
	for _, tl := range im.TLVs {
		w.add(tl.Type, tl.Value)
	}
	w.add(TLVKeyHash, kh[:])
	w.add(TLVEd25519, sig)
	two := append(bytes.Clone(img[:im.TLVOffset]), w.area(TLVInfoMagic)...)
	im2 := mustParse(t, two)
	for _, keys := range [][]crypto.PublicKey{{ed.Public()}, {other.Public()}, {other.Public(), ed.Public()}} {
		if err := im2.Verify(keys); err != nil {
			t.Errorf("Verify(%d keys) = %v", len(keys), err)
		}
	}
	// Break the first signature: the second still verifies for its key,
	// but a device that only knows the first key must refuse.
	bad := editTLV(t, two, 2, func(b []byte) { b[0] ^= 1 })
	if err := mustParse(t, bad).Verify([]crypto.PublicKey{ed.Public(), other.Public()}); err != nil {
		t.Errorf("one good signature out of two: %v", err)
	}
	if err := mustParse(t, bad).Verify([]crypto.PublicKey{ed.Public()}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("only the bad signature's key: %v", err)
	}
}

// TestSignVerifyAllKeyTypes signs with each key type and checks the
// signature TLV and that a flipped payload byte fails.
func TestSignVerifyAllKeyTypes(t *testing.T) {
	keys := map[string]crypto.Signer{
		"ecdsa-p256": loadSigner(t, "imgtool/ecdsa-p256.pem"),
		"ed25519":    loadSigner(t, "imgtool/ed25519.pem"),
		"rsa-2048":   loadSigner(t, "rsa-2048.pem"),
	}
	wantType := map[string]uint16{"ecdsa-p256": TLVECDSASig, "ed25519": TLVEd25519, "rsa-2048": TLVRSA2048PSS}
	payload := readTestdata(t, "imgtool/payload-20k.bin")
	for _, name := range []string{"ecdsa-p256", "ed25519", "rsa-2048"} {
		t.Run(name, func(t *testing.T) {
			k := keys[name]
			img, err := Sign(payload, vectorOptions(k, Version{2, 0, 1, 9}))
			if err != nil {
				t.Fatal(err)
			}
			im := mustParse(t, img)
			types := []uint16{}
			for _, tl := range im.TLVs {
				types = append(types, tl.Type)
			}
			if len(types) != 3 || types[0] != TLVSHA256 || types[1] != TLVKeyHash || types[2] != wantType[name] {
				t.Fatalf("TLV types %x", types)
			}
			if err := im.Verify([]crypto.PublicKey{k.Public()}); err != nil {
				t.Fatal(err)
			}
			if err := tamperedFails(img, 1000, []crypto.PublicKey{k.Public()}); !errors.Is(err, ErrHashMismatch) {
				t.Errorf("flipped payload: %v", err)
			}
			last := im.TLVs[2]
			if err := tamperedFails(img, int(last.Offset)+len(last.Value)/2, []crypto.PublicKey{k.Public()}); !errors.Is(err, ErrBadSignature) {
				t.Errorf("flipped signature: %v", err)
			}
		})
	}
}
