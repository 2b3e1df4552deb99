package image

import (
	"bytes"
	"crypto"
	"testing"
)

// BenchmarkParseVerify128K measures what a device does before it boots an
// update: parse and verify a 128 KiB image, per signature type.
func BenchmarkParseVerify128K(b *testing.B) {
	for _, kc := range []struct{ name, file string }{
		{"ecdsa-p256", "imgtool/ecdsa-p256.pem"},
		{"ed25519", "imgtool/ed25519.pem"},
		{"rsa-2048", "rsa-2048.pem"},
	} {
		b.Run(kc.name, func(b *testing.B) {
			k := loadSigner(b, kc.file)
			payload := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, 128<<10/3+1)[:128<<10]
			img, err := Sign(payload, SignOptions{Key: k, Rand: testRand(2), HeaderSize: 0x200, PadHeader: true})
			if err != nil {
				b.Fatal(err)
			}
			keys := []crypto.PublicKey{k.Public()}
			r := bytes.NewReader(img)
			b.SetBytes(int64(len(img)))
			b.ReportAllocs()
			for b.Loop() {
				im, err := Parse(r, int64(len(img)))
				if err != nil {
					b.Fatal(err)
				}
				if err := im.Verify(keys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
