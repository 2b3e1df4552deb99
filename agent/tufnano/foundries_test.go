package tufnano

import (
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
	"fmt"
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
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	k := &foundriesKey{rsa: priv, public: map[string]any{"keytype": "RSA", "keyval": map[string]any{"public": string(p)}}}
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
