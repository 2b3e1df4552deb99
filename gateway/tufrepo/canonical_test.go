package tufrepo

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// servedParts splits a served file into its signed section, as raw bytes,
// and its signatures, the way a byte-verifying MCU client reads it.
func servedParts(t *testing.T, data []byte) ([]byte, map[string][]byte) {
	t.Helper()
	var raw struct {
		Signatures []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
		Signed json.RawMessage `json:"signed"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("served file is not JSON: %v", err)
	}
	sigs := map[string][]byte{}
	for _, s := range raw.Signatures {
		b, err := hex.DecodeString(s.Sig)
		if err != nil {
			t.Fatalf("signature of %s is not hex", s.KeyID)
		}
		sigs[s.KeyID] = b
	}
	return raw.Signed, sigs
}

// unescapeControls turns the JSON escapes of control characters inside
// strings back into raw bytes: what a byte-verifying client does to a root
// holding PEM keys before checking signatures (see the package comment).
func unescapeControls(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		switch b[i+1] {
		case 'n':
			out = append(out, '\n')
			i++
		case 'r':
			out = append(out, '\r')
			i++
		case 't':
			out = append(out, '\t')
			i++
		case 'u':
			if i+5 < len(b) && string(b[i+2:i+4]) == "00" {
				v, err := hex.DecodeString(string(b[i+4 : i+6]))
				if err == nil && v[0] < 0x20 {
					out = append(out, v[0])
					i += 5
					continue
				}
			}
			out = append(out, b[i], b[i+1])
			i++
		default: // \\ and \" stay escaped, as canonical JSON has them
			out = append(out, b[i], b[i+1])
			i++
		}
	}
	return out
}

// goTUFCanonical parses a served file with go-tuf and re-encodes its signed
// section canonically: the bytes go-tuf verifies signatures over.
func goTUFCanonical(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var signed any
	var err error
	switch {
	case strings.HasSuffix(name, "root.json"):
		var md *metadata.Metadata[metadata.RootType]
		md, err = metadata.Root().FromBytes(data)
		if md != nil {
			signed = md.Signed
		}
	case strings.HasSuffix(name, "targets.json"):
		var md *metadata.Metadata[metadata.TargetsType]
		md, err = metadata.Targets().FromBytes(data)
		if md != nil {
			signed = md.Signed
		}
	case strings.HasSuffix(name, "snapshot.json"):
		var md *metadata.Metadata[metadata.SnapshotType]
		md, err = metadata.Snapshot().FromBytes(data)
		if md != nil {
			signed = md.Signed
		}
	default:
		var md *metadata.Metadata[metadata.TimestampType]
		md, err = metadata.Timestamp().FromBytes(data)
		if md != nil {
			signed = md.Signed
		}
	}
	if err != nil {
		t.Fatalf("%s: go-tuf cannot parse: %v", name, err)
	}
	c, err := cjson.EncodeCanonical(signed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// verifyAsServed checks every signature of a served file over the signed
// bytes exactly as served (after only the control-character un-escaping),
// without any JSON re-encoding: the MCU's fast path.
func verifyAsServed(t *testing.T, f File, keys map[string]crypto.PublicKey) int {
	t.Helper()
	signed, sigs := servedParts(t, f.Data)
	payload := unescapeControls(signed)
	ok := 0
	for id, sig := range sigs {
		pub, known := keys[id]
		if !known {
			t.Fatalf("%s signed by unknown key %s", f.Name, id)
		}
		h := sha256.Sum256(payload)
		var good bool
		switch p := pub.(type) {
		case ed25519.PublicKey:
			good = ed25519.Verify(p, payload, sig)
		case *ecdsa.PublicKey:
			good = ecdsa.VerifyASN1(p, h[:], sig)
		case *rsa.PublicKey:
			good = rsa.VerifyPSS(p, crypto.SHA256, h[:], sig, nil) == nil
		}
		if !good {
			t.Errorf("%s: signature by %s does not verify over the served bytes", f.Name, id)
		}
		ok++
	}
	return ok
}

func TestServedSignedIsCanonical(t *testing.T) {
	for _, kt := range []KeyType{KeyEd25519, KeyECDSAP256, KeyRSAPSS} {
		t.Run(string(kt), func(t *testing.T) {
			rnd := seeded(3)
			setup, err := GenerateSetup(kt, rnd)
			if err != nil {
				t.Fatal(err)
			}
			r, _, err := New(t0, Config{Random: rnd, ConsistentSnapshot: true}, setup)
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]crypto.PublicKey{}
			for _, rk := range []RoleKeys{setup.Root, setup.Targets, setup.Snapshot, setup.Timestamp} {
				for _, k := range rk.Keys {
					keys[k.ID()] = k.PublicKey()
				}
			}
			// Strings that JSON encoders like to escape differently:
			// '+' and '.' in names, and HTML-ish characters never reach
			// metadata because names are validated.
			tg := NewTarget("LPC55S69+EVK.rev2", "4294967295", []string{"devel", "qa_1"}, []byte("fw"))
			if _, err := r.AddTarget(t0, tg); err != nil {
				t.Fatal(err)
			}
			newRoot, _ := GenerateKey(kt, rnd)
			keys[newRoot.ID()] = newRoot.PublicKey()
			if _, err := r.RotateKeys(t0, RoleRoot, []*PrivateKey{newRoot}, 1); err != nil {
				t.Fatal(err)
			}
			for _, tag := range r.Tags() {
				files, err := r.Files(tag)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					signed, _ := servedParts(t, f.Data)
					want := goTUFCanonical(t, f.Name, f.Data)
					exact := kt == KeyEd25519 || !strings.HasSuffix(f.Name, "root.json")
					if exact && !bytes.Equal(signed, want) {
						t.Errorf("%s %s: served signed section differs from its canonical form\nserved: %s\ncanon:  %s", tag, f.Name, signed, want)
					}
					if !exact {
						if bytes.Equal(signed, want) {
							t.Errorf("%s: expected escaped PEM newlines in a %s root", f.Name, kt)
						}
						if !bytes.Equal(unescapeControls(signed), want) {
							t.Errorf("%s %s: un-escaped signed section differs from its canonical form", tag, f.Name)
						}
					}
					// The whole file is canonical JSON too.
					var whole any
					if err := json.Unmarshal(f.Data, &whole); err != nil {
						t.Fatal(err)
					}
					if c, _ := cjson.EncodeCanonical(whole); exact && !bytes.Equal(c, f.Data) {
						t.Errorf("%s: file is not canonical JSON", f.Name)
					}
					if n := verifyAsServed(t, f, keys); n != f.Signatures {
						t.Errorf("%s: %d signatures, File says %d", f.Name, n, f.Signatures)
					}
					if sum := sha256.Sum256(f.Data); hex.EncodeToString(sum[:]) != f.SHA256 {
						t.Errorf("%s: File.SHA256 is not the hash of the data", f.Name)
					}
				}
			}
		})
	}
}

func TestWriteEscapedControls(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{`{"a":"b"}`, `{"a":"b"}`},
		{"{\"k\":\"-----BEGIN\nX\n\"}", `{"k":"-----BEGIN\nX\n"}`},
		{"\r\t\x00\x1f", `\r\t\u0000\u001f`},
	} {
		var b bytes.Buffer
		writeEscapedControls(&b, []byte(c.in))
		if b.String() != c.want {
			t.Errorf("escape(%q) = %q, want %q", c.in, b.String(), c.want)
		}
		if got := string(unescapeControls(b.Bytes())); got != c.in {
			t.Errorf("unescape(escape(%q)) = %q", c.in, got)
		}
	}
}

// TestCanonicalTargetsMatchesCJSON checks the fast targets encoder against
// go-securesystemslib's canonical encoding of the same go-tuf structure, on
// random target sets.
func TestCanonicalTargetsMatchesCJSON(t *testing.T) {
	rnd := mrand.New(seeded(17))
	const alphabet = "abcXYZ019-_.+"
	word := func() string {
		b := make([]byte, 1+rnd.IntN(12))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		return string(b)
	}
	for round := range 200 {
		recs := map[string]*targetRec{}
		signed := metadata.TargetsType{
			Type: metadata.TARGETS, SpecVersion: metadata.SPECIFICATION_VERSION,
			Version: rnd.Int64N(1 << 40), Expires: expiresAt(t0, time.Duration(rnd.Int64N(1<<50))),
			Targets: map[string]*metadata.TargetFiles{},
		}
		for range rnd.IntN(20) {
			tg := Target{HardwareIDs: []string{word()}, Version: strconv.Itoa(1 + rnd.IntN(1<<30)), Tags: []string{word()}, Format: FormatBinary, Length: 1 + rnd.Int64N(1<<32)}
			if rnd.IntN(2) == 0 {
				tg.HardwareIDs = append(tg.HardwareIDs, word()+"2")
				tg.Tags = append(tg.Tags, word()+"2")
			}
			for i := range tg.SHA256 {
				tg.SHA256[i] = byte(rnd.IntN(256))
			}
			if tg.validate() != nil {
				continue
			}
			rec, err := newTargetRec(tg)
			if err != nil {
				t.Fatal(err)
			}
			recs[tg.Name()] = rec
			signed.Targets[tg.Name()] = tg.entry()
		}
		names := slices.Sorted(maps.Keys(recs))
		got := canonicalTargets(signed.Version, signed.Expires, names, recs)
		want, err := cjson.EncodeCanonical(signed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d:\n got %s\nwant %s", round, got, want)
		}
	}
	for _, s := range []string{`plain`, `quo"te`, `back\slash`, `\"`, ""} {
		want, _ := cjson.EncodeCanonical(s)
		if got := appendCanonicalString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendCanonicalString(%q) = %s, want %s", s, got, want)
		}
	}
}
