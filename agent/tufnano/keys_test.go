package tufnano

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
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
		if !k.verify(b, &s, enc.foundries, msg, nil) {
			t.Fatalf("%s: the signature does not verify", enc.name)
		}
		if n := testing.AllocsPerRun(50, func() { k.verify(b, &s, enc.foundries, msg, nil) }); n != 0 {
			t.Errorf("%s: %v allocations per verification, want 0", enc.name, n)
		}
	}
}

// TestRSAKeyTooLargeIsUnsupported: an RSA key with a modulus over 4096 bits
// makes signatures longer than maxSigBytes, which the device never decodes.
// Such a key is one the device cannot use (unsupported-key), not one whose
// signature failed (bad-signature): reports must not blame the repository's
// signatures for the device's limit. Only the public key matters, so the
// 8192-bit modulus is any odd number (an RSA-8192 key takes long to make).
func TestRSAKeyTooLargeIsUnsupported(t *testing.T) {
	for _, c := range []struct {
		bits int
		want Kind
	}{
		{8 * maxSigBytes, KindBadSignature}, // the largest usable key; the signature is made up
		{8*maxSigBytes + 8, KindUnsupportedKey},
		{8192, KindUnsupportedKey},
	} {
		rnd := rand.NewChaCha8([32]byte{byte(c.bits)})
		nb := make([]byte, c.bits/8)
		rnd.Read(nb)
		nb[0] |= 0x80
		nb[len(nb)-1] |= 1
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: 65537}
		k := foundriesRSAKeyOf(t, pub)
		sig := make([]byte, len(nb))
		rnd.Read(sig)
		body := jsonEncode(t, foundriesRoot(1, "2036-01-01T00:00:00Z", map[string][]*foundriesKey{
			RoleRoot: {k}, RoleTimestamp: {k}, RoleSnapshot: {k}, RoleTargets: {k},
		}))
		root := fmt.Sprintf(`{"signatures":[{"keyid":%q,"method":"rsassa-pss-sha256","sig":%q}],"signed":%s}`,
			k.id, base64.StdEncoding.EncodeToString(sig), body)
		_, err := New(DefaultLimits(), &memFetcher{}, memStore{RoleRoot: []byte(root)})
		if KindOf(err) != c.want {
			t.Errorf("RSA-%d root key: %v, want %s", c.bits, err, c.want)
		}
	}
}

// TestThresholdAboveCountedBuffer: verifyThreshold counts verified keys in
// a slice over an 8-entry array on the stack, 8 being the default
// MaxSignatures. A device configured for more signatures must still count
// past 8 (the slice grows), not stop or wrap at the array's size.
func TestThresholdAboveCountedBuffer(t *testing.T) {
	const n = 12
	r := newTestRepo(t, KeyEd25519, false, true)
	r.root.Signed.Roles[RoleTimestamp].KeyIDs = nil
	r.signers[RoleTimestamp] = nil
	for i := range n {
		r.addKey(RoleTimestamp, newSigner(t, KeyEd25519, fmt.Sprint("timestamp-many-", i)))
	}
	r.root.Signed.Roles[RoleTimestamp].Threshold = n
	r.publish(RoleRoot, RoleTimestamp)
	d := newDevice(r)
	d.lim.MaxSignatures = n
	if _, err := d.refresh(epoch); err != nil {
		t.Fatalf("timestamp signed by all %d keys of threshold %d: %v", n, n, err)
	}
	r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp][:n-1])
	if _, err := d.refresh(epoch); !errors.Is(err, ErrThreshold) {
		t.Errorf("timestamp signed by %d of %d keys: %v, want a threshold error", n-1, n, err)
	}
}
