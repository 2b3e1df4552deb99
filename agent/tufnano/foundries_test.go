package tufnano

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// foundriesKey signs metadata the way FoundriesFactory does: key types
// "ED25519" (hex public key) and "RSA" (PEM public key, RSA-PSS), no
// scheme, base64 signatures naming their method.
type foundriesKey struct {
	id     string
	ed     ed25519.PrivateKey
	rsa    *rsa.PrivateKey
	public map[string]any
}

func newFoundriesKey(t *testing.T, typ, seed string) *foundriesKey {
	t.Helper()
	if typ != "ED25519" {
		return foundriesRSAKey(t, newSigner(t, KeyRSAPSS, seed).priv.(*rsa.PrivateKey))
	}
	s := sha256.Sum256([]byte(seed))
	k := &foundriesKey{ed: ed25519.NewKeyFromSeed(s[:])}
	k.public = map[string]any{"keytype": "ED25519", "keyval": map[string]any{"public": hex.EncodeToString(k.ed.Public().(ed25519.PublicKey))}}
	k.id = foundriesKeyID(k.public)
	return k
}

// foundriesRSAKey is priv as a Foundries "RSA" key: a PEM
// SubjectPublicKeyInfo, whatever the modulus size.
func foundriesRSAKey(t *testing.T, priv *rsa.PrivateKey) *foundriesKey {
	t.Helper()
	k := foundriesRSAKeyOf(t, &priv.PublicKey)
	k.rsa = priv
	return k
}

// foundriesRSAKeyOf is the public record of an RSA key, which cannot sign.
func foundriesRSAKeyOf(t *testing.T, pub *rsa.PublicKey) *foundriesKey {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	k := &foundriesKey{public: map[string]any{"keytype": "RSA", "keyval": map[string]any{"public": string(p)}}}
	k.id = foundriesKeyID(k.public)
	return k
}

func foundriesKeyID(public map[string]any) string {
	b, _ := json.Marshal(public)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// foundriesFile serialises signed as Foundries serves it (compact, sorted,
// escaped) and signs exactly those bytes.
func foundriesFile(t *testing.T, signed map[string]any, keys ...*foundriesKey) []byte {
	t.Helper()
	body, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	var sigs []string
	for _, k := range keys {
		var sig []byte
		method := "ed25519"
		if k.ed != nil {
			sig = ed25519.Sign(k.ed, body)
		} else {
			method = "rsassa-pss-sha256"
			d := sha256.Sum256(body)
			if sig, err = rsa.SignPSS(rand.Reader, k.rsa, crypto.SHA256, d[:], nil); err != nil {
				t.Fatal(err)
			}
		}
		sigs = append(sigs, fmt.Sprintf(`{"keyid":%q,"method":%q,"sig":%q}`, k.id, method, base64.StdEncoding.EncodeToString(sig)))
	}
	return []byte(`{"signatures":[` + strings.Join(sigs, ",") + `],"signed":` + string(body) + "}\n")
}

func foundriesMeta(data []byte, version int) map[string]any {
	h := sha256.Sum256(data)
	return map[string]any{"hashes": map[string]any{"sha256": hex.EncodeToString(h[:])}, "length": len(data), "version": version}
}

// foundriesRoot is the signed part of a Foundries root that gives each
// top-level role its keys at threshold 1.
func foundriesRoot(version int, exp string, roles map[string][]*foundriesKey) map[string]any {
	ks, rs := map[string]any{}, map[string]any{}
	for role, keys := range roles {
		ids := []any{}
		for _, k := range keys {
			ks[k.id] = k.public
			ids = append(ids, k.id)
		}
		rs[role] = map[string]any{"keyids": ids, "threshold": 1}
	}
	return map[string]any{
		"_type": "Root", "consistent_snapshot": false, "expires": exp, "version": version, "keys": ks, "roles": rs,
		"x-changelog": map[string]any{"message": "Rotate all TUF root signing keys", "timestamp": exp},
	}
}

// foundriesPublish serves targets.json (one MCUboot image, foundriesImage),
// snapshot.json and timestamp.json, all at version, each signed by its key.
func foundriesPublish(t *testing.T, files map[string][]byte, version int, exp string, timestamp, snapshot, targets *foundriesKey) {
	t.Helper()
	ih := sha256.Sum256(foundriesImage)
	tf := foundriesFile(t, map[string]any{
		"_type": "Targets", "expires": exp, "version": version,
		"targets": map[string]any{"MIMXRT1060-EVK-v1001": map[string]any{
			"hashes": map[string]any{"sha256": hex.EncodeToString(ih[:])}, "length": len(foundriesImage),
			"custom": map[string]any{
				"createdAt": exp, "hardwareIds": []any{"MIMXRT1060-EVK"}, "name": "MIMXRT1060-EVK",
				"tags": []any{"devel"}, "targetFormat": "BINARY", "version": "1001",
			},
		}},
	}, targets)
	sf := foundriesFile(t, map[string]any{
		"_type": "Snapshot", "expires": exp, "version": version,
		"meta": map[string]any{"targets.json": foundriesMeta(tf, version)},
	}, snapshot)
	files["targets.json"] = tf
	files["snapshot.json"] = sf
	files["timestamp.json"] = foundriesFile(t, map[string]any{
		"_type": "Timestamp", "expires": exp, "version": version,
		"meta": map[string]any{"snapshot.json": foundriesMeta(sf, version)},
	}, timestamp)
}

var foundriesImage = []byte("MCUboot image v1001")

// foundriesRepo is a factory whose root moves from RSA to ED25519 keys at
// version 2, with two targets keys at threshold 1, as in Foundries' roots.
func foundriesRepo(t *testing.T, expires time.Time) (files map[string][]byte, root1 []byte, keys map[string]*foundriesKey) {
	keys = map[string]*foundriesKey{
		"root1": newFoundriesKey(t, "RSA", "fio-root-1"), "root2": newFoundriesKey(t, "ED25519", "fio-root-2"),
		"timestamp": newFoundriesKey(t, "ED25519", "fio-ts"), "snapshot": newFoundriesKey(t, "ED25519", "fio-snap"),
		"targets-online": newFoundriesKey(t, "RSA", "fio-targets"), "targets-offline": newFoundriesKey(t, "ED25519", "fio-offline"),
	}
	exp := expires.Format("2006-01-02T15:04:05Z")
	root := func(version int, rootKey *foundriesKey) map[string]any {
		return foundriesRoot(version, exp, map[string][]*foundriesKey{
			RoleRoot: {rootKey}, RoleTimestamp: {keys["timestamp"]}, RoleSnapshot: {keys["snapshot"]},
			RoleTargets: {keys["targets-online"], keys["targets-offline"]},
		})
	}
	files = map[string][]byte{}
	root1 = foundriesFile(t, root(1, keys["root1"]), keys["root1"])
	files["1.root.json"] = root1
	files["2.root.json"] = foundriesFile(t, root(2, keys["root2"]), keys["root1"], keys["root2"])
	foundriesPublish(t, files, 168, exp, keys["timestamp"], keys["snapshot"], keys["targets-online"])
	return files, root1, keys
}

func TestFoundriesMetadata(t *testing.T) {
	files, root1, _ := foundriesRepo(t, epoch.AddDate(0, 1, 0))
	// Stock go-tuf refuses these files (capitalised _type), which is why
	// Foundries' own Go clients use a fork.
	if _, err := metadata.Root().FromBytes(root1); err == nil {
		t.Error("go-tuf accepted a Foundries root; the fixture is not Foundries-like")
	}
	d := &device{fetch: &memFetcher{files: files}, store: memStore{RoleRoot: root1}, lim: DefaultLimits()}
	d.lim.MaxSignatures = 2 // aktualizr-nano's setting
	c, err := d.refresh(epoch)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Versions()); got != "2 168 168 168" {
		t.Errorf("versions %s, want 2 168 168 168", got)
	}
	info, err := c.Target("MIMXRT1060-EVK-v1001")
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyTarget(info, foundriesImage); err != nil {
		t.Error(err)
	}
	if !strings.Contains(string(info.Custom), `"targetFormat":"BINARY"`) {
		t.Errorf("custom %s", info.Custom)
	}

	// The same files, each with one broken signature, are refused.
	// (snapshot and targets: TestFoundriesSignatureOnly, as their hashes
	// are announced)
	for _, name := range []string{"2.root.json", "timestamp.json"} {
		t.Run("broken "+name, func(t *testing.T) {
			bad := map[string][]byte{}
			for k, v := range files {
				bad[k] = v
			}
			b := append([]byte(nil), files[name]...)
			i := strings.Index(string(b), `"sig":"`) + len(`"sig":"`) + 5
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			bad[name] = b
			d := &device{fetch: &memFetcher{files: bad}, store: memStore{RoleRoot: root1}, lim: DefaultLimits()}
			if _, err := d.refresh(epoch); !errors.Is(err, ErrBadSignature) {
				t.Errorf("refresh: %v, want a bad signature", err)
			}
		})
	}
}

// TestFoundriesSignatureOnly breaks only the signature of snapshot and
// targets, re-announcing their hashes, so the signature check is what fails.
func TestFoundriesSignatureOnly(t *testing.T) {
	for _, role := range []string{RoleSnapshot, RoleTargets} {
		t.Run(role, func(t *testing.T) {
			files, root1, keys := foundriesRepo(t, epoch.AddDate(0, 1, 0))
			// Sign the role with a key root does not authorise for it.
			intruder := newFoundriesKey(t, "ED25519", "intruder")
			intruder.id = keys[role+map[string]string{RoleSnapshot: "", RoleTargets: "-offline"}[role]].id
			var m map[string]any
			if err := json.Unmarshal(files[role+".json"], &m); err != nil {
				t.Fatal(err)
			}
			files[role+".json"] = foundriesFile(t, m["signed"].(map[string]any), intruder)
			if role == RoleTargets {
				var s map[string]any
				_ = json.Unmarshal(files["snapshot.json"], &s)
				sg := s["signed"].(map[string]any)
				sg["meta"] = map[string]any{"targets.json": foundriesMeta(files["targets.json"], 168)}
				files["snapshot.json"] = foundriesFile(t, sg, keys["snapshot"])
			}
			var ts map[string]any
			_ = json.Unmarshal(files["timestamp.json"], &ts)
			tg := ts["signed"].(map[string]any)
			tg["meta"] = map[string]any{"snapshot.json": foundriesMeta(files["snapshot.json"], 168)}
			files["timestamp.json"] = foundriesFile(t, tg, keys["timestamp"])
			d := &device{fetch: &memFetcher{files: files}, store: memStore{RoleRoot: root1}, lim: DefaultLimits()}
			_, err := d.refresh(epoch)
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("refresh: %v, want a bad signature", err)
			}
			if e := (*Error)(nil); !errors.As(err, &e) || e.Role != role {
				t.Errorf("refused role %v, want %s", err, role)
			}
		})
	}
}

var rewrite = flag.Bool("rewrite", false, "regenerate the FoundriesFactory fixtures in testdata/")

// foundriesChainDir holds a FoundriesFactory repository whose root keys
// rotate through RSA-2048 (version 1), RSA-4096 (2), ED25519 (3) and a new
// RSA-4096 key (4), with an ED25519 timestamp key and RSA-4096 snapshot and
// targets keys. crypto/rsa ignores the random source since Go 1.26, so RSA
// keys cannot come from a seed: the files are checked in, and rewritten by
// go test ./agent/tufnano -run TestFoundriesRootChainKeySizes -rewrite.
const foundriesChainDir = "testdata/foundries-rsa4096"

// writeFoundriesChain generates the files of foundriesChainDir.
func writeFoundriesChain(t *testing.T) {
	rsaKey := func(bits int) *foundriesKey {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		return foundriesRSAKey(t, priv)
	}
	roots := []*foundriesKey{rsaKey(2048), rsaKey(4096), newFoundriesKey(t, "ED25519", "fio-chain-root-3"), rsaKey(4096)}
	ts, snap := newFoundriesKey(t, "ED25519", "fio-chain-ts"), rsaKey(4096)
	online, offline := rsaKey(4096), newFoundriesKey(t, "ED25519", "fio-chain-offline")
	exp := epoch.AddDate(10, 0, 0).Format("2006-01-02T15:04:05Z")
	files := map[string][]byte{}
	for i, rk := range roots {
		signed := foundriesRoot(i+1, exp, map[string][]*foundriesKey{
			RoleRoot: {rk}, RoleTimestamp: {ts}, RoleSnapshot: {snap}, RoleTargets: {online, offline},
		})
		signers := []*foundriesKey{rk}
		if i > 0 {
			signers = []*foundriesKey{roots[i-1], rk} // the old root key, then the new one
		}
		files[fmt.Sprintf("%d.root.json", i+1)] = foundriesFile(t, signed, signers...)
	}
	foundriesPublish(t, files, 42, exp, ts, snap, online)
	if err := os.MkdirAll(foundriesChainDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(foundriesChainDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFoundriesChain(t *testing.T) map[string][]byte {
	t.Helper()
	if *rewrite {
		writeFoundriesChain(t)
	}
	ents, err := os.ReadDir(foundriesChainDir)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	files := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(foundriesChainDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// foundriesRoleKeys describes the keys a Foundries root gives role, as
// "RSA-4096" or "ED25519", by reading the file with encoding/json.
func foundriesRoleKeys(t *testing.T, root []byte, role string) []string {
	t.Helper()
	var f struct {
		Signed struct {
			Keys map[string]struct {
				KeyType string `json:"keytype"`
				KeyVal  struct {
					Public string `json:"public"`
				} `json:"keyval"`
			} `json:"keys"`
			Roles map[string]struct {
				KeyIDs []string `json:"keyids"`
			} `json:"roles"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(root, &f); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, id := range f.Signed.Roles[role].KeyIDs {
		k := f.Signed.Keys[id]
		if k.KeyType != "RSA" {
			out = append(out, k.KeyType)
			continue
		}
		blk, _ := pem.Decode([]byte(k.KeyVal.Public))
		if blk == nil {
			t.Fatalf("key %s: no PEM block", id)
		}
		pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("RSA-%d", pub.(*rsa.PublicKey).N.BitLen()))
	}
	return out
}

// TestFoundriesRootChainKeySizes refreshes through a FoundriesFactory root
// chain that passes through RSA-4096 keys (issue 8 §0). An RSA-4096
// signature is 512 bytes, 684 characters of padded base64, for which
// base64's DecodedLen is 513 (it counts the padding). The client used to
// refuse any signature whose DecodedLen exceeded its 512-byte signature
// buffer, so 2.root.json, the first file signed by an RSA-4096 key, failed
// its new root's self-check with "bad-signature (root)" although both of
// its signatures are valid.
func TestFoundriesRootChainKeySizes(t *testing.T) {
	files := readFoundriesChain(t)
	// The fixture is what it claims to be.
	for v, want := range []string{"RSA-2048", "RSA-4096", "ED25519", "RSA-4096"} {
		root := files[fmt.Sprintf("%d.root.json", v+1)]
		if got := foundriesRoleKeys(t, root, RoleRoot); fmt.Sprint(got) != "["+want+"]" {
			t.Fatalf("%d.root.json: root keys %v, want [%s] (regenerate with -rewrite)", v+1, got, want)
		}
	}
	if got := fmt.Sprint(foundriesRoleKeys(t, files["4.root.json"], RoleTargets), foundriesRoleKeys(t, files["4.root.json"], RoleSnapshot)); got != "[RSA-4096 ED25519] [RSA-4096]" {
		t.Fatalf("targets and snapshot keys %s, want [RSA-4096 ED25519] [RSA-4096]", got)
	}
	if _, err := metadata.Root().FromBytes(files["1.root.json"]); err == nil {
		t.Error("go-tuf accepted a Foundries root; the fixture is not Foundries-like")
	}

	// Provisioned with any root of the chain, a device (with
	// aktualizr-nano's two signatures per file) follows it to version 4.
	for v := 1; v <= 4; v++ {
		t.Run(fmt.Sprintf("from %d.root.json", v), func(t *testing.T) {
			d := &device{fetch: &memFetcher{files: files}, store: memStore{RoleRoot: files[fmt.Sprintf("%d.root.json", v)]}, lim: DefaultLimits()}
			d.lim.MaxSignatures = 2
			c, err := d.refresh(epoch)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(c.Versions()); got != "4 42 42 42" {
				t.Errorf("versions %s, want 4 42 42 42", got)
			}
			if !bytes.Equal(d.store[RoleRoot], files["4.root.json"]) {
				t.Error("the store does not hold 4.root.json")
			}
			info, err := c.Target("MIMXRT1060-EVK-v1001")
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyTarget(info, foundriesImage); err != nil {
				t.Error(err)
			}
		})
	}

	// The RSA-4096 signature is checked, not waved through: one changed
	// character in it refuses 2.root.json.
	var f struct {
		Signatures []struct {
			Sig string `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(files["2.root.json"], &f); err != nil {
		t.Fatal(err)
	}
	broken := false
	for _, s := range f.Signatures {
		if len(s.Sig) != maxSigBase64 {
			continue
		}
		b := []byte(s.Sig)
		if b[100] == 'A' {
			b[100] = 'B'
		} else {
			b[100] = 'A'
		}
		bad := map[string][]byte{}
		for k, v := range files {
			bad[k] = v
		}
		bad["2.root.json"] = bytes.Replace(files["2.root.json"], []byte(s.Sig), b, 1)
		d := &device{fetch: &memFetcher{files: bad}, store: memStore{RoleRoot: files["1.root.json"]}, lim: DefaultLimits()}
		if _, err := d.refresh(epoch); !errors.Is(err, ErrBadSignature) {
			t.Errorf("a changed RSA-4096 signature: %v, want a bad signature", err)
		}
		broken = true
	}
	if !broken {
		t.Error("2.root.json has no signature of 684 base64 characters")
	}
}
