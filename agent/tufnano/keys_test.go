package tufnano

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// TestDecodeSignatureSizes decodes signatures of every length from none to
// past the largest the device takes (maxSigBytes, RSA-4096's), in both
// encodings. Base64 of 511 or 512 bytes is 684 characters, whose DecodedLen
// is 513: a decoder that compares DecodedLen with the signature size
// refuses RSA-4096's signatures.
func TestDecodeSignatureSizes(t *testing.T) {
	for n := 0; n <= maxSigBytes+4; n++ {
		sig := make([]byte, n)
		for i := range sig {
			sig[i] = byte(i*7 + n)
		}
		for _, enc := range []struct {
			name      string
			foundries bool
			text      string
		}{
			{"base64", true, base64.StdEncoding.EncodeToString(sig)},
			{"hex", false, hex.EncodeToString(sig)},
		} {
			var buf [sigBufSize]byte
			got, ok := decodeSignature(&buf, []byte(enc.text), enc.foundries)
			if want := n <= maxSigBytes; ok != want || ok && !bytes.Equal(got, sig) {
				t.Errorf("%s of %d bytes (%d characters): accepted %v, want %v", enc.name, n, len(enc.text), ok, want)
			}
		}
	}
	for _, c := range []struct {
		name, text string
		foundries  bool
	}{
		{"base64 without padding", "AAA", true},
		{"base64 whose length is not a multiple of four", "AAAA0", true},
		{"base64 in URL alphabet", "-_-_", true},
		{"hex of odd length", "abc", false},
		{"hex with a non-digit", "0g", false},
		{"base64 given as hex", "AA==", false},
	} {
		var buf [sigBufSize]byte
		if _, ok := decodeSignature(&buf, []byte(c.text), c.foundries); ok {
			t.Errorf("%s (%q): accepted", c.name, c.text)
		}
	}
}

// TestVerifyEd25519DoesNotAllocate: ed25519 is what Foundries' online keys
// and fleetsim's gateway sign with, and every refresh verifies several such
// signatures; the signature is decoded into a buffer on the stack.
func TestVerifyEd25519DoesNotAllocate(t *testing.T) {
	seed := sha256.Sum256([]byte("alloc"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	k := key{scheme: KeyEd25519, ed: priv.Public().(ed25519.PublicKey)}
	msg := []byte(`{"_type":"Timestamp","version":1}`)
	sig := ed25519.Sign(priv, msg)
	for _, enc := range []struct {
		name      string
		foundries bool
		text      string
	}{
		{"base64", true, base64.StdEncoding.EncodeToString(sig)},
		{"hex", false, hex.EncodeToString(sig)},
	} {
		b := []byte(`"` + enc.text + `"`)
		s := signature{sig: jval{kind: jString, start: 0, end: len(b)}}
		if !k.verify(b, &s, enc.foundries, msg) {
			t.Fatalf("%s: the signature does not verify", enc.name)
		}
		if n := testing.AllocsPerRun(50, func() { k.verify(b, &s, enc.foundries, msg) }); n != 0 {
			t.Errorf("%s: %v allocations per verification, want 0", enc.name, n)
		}
	}
}
