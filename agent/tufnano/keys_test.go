package tufnano

import (
	"bytes"
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
