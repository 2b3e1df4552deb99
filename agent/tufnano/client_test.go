package tufnano

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestRefreshAccepts(t *testing.T) {
	for _, kind := range []KeyTypes{KeyEd25519, KeyECDSAP256, KeyRSAPSS} {
		for _, consistent := range []bool{false, true} {
			for _, canonical := range []bool{false, true} {
				name := fmt.Sprintf("%s/consistent=%v/canonical=%v", schemeName(kind), consistent, canonical)
				t.Run(name, func(t *testing.T) {
					r := newTestRepo(t, kind, consistent, canonical)
					r.addTarget(RoleTargets, "fw/board-v2.bin", []byte("firmware v2"))
					r.publish(RoleTargets, RoleSnapshot, RoleTimestamp)
					d := newDevice(r)
					c, err := d.refresh(epoch)
					if err != nil {
						t.Fatal(err)
					}
					if got := fmt.Sprint(c.Versions()); got != "1 2 2 2" {
						t.Errorf("versions %s, want 1 2 2 2", got)
					}
					snap, targ := "snapshot.json", "targets.json"
					if consistent {
						snap, targ = "2.snapshot.json", "2.targets.json"
					}
					want := []string{"2.root.json", "timestamp.json", snap, targ}
					if !reflect.DeepEqual(d.fetch.requests, want) {
						t.Errorf("requests %q, want %q", d.fetch.requests, want)
					}
					info, err := c.Target("fw/board-v2.bin")
					if err != nil {
						t.Fatal(err)
					}
					if err := VerifyTarget(info, []byte("firmware v2")); err != nil {
						t.Error(err)
					}
					if err := VerifyTarget(info, []byte("firmware v3")); !errors.Is(err, ErrHash) {
						t.Errorf("wrong content: %v, want a hash error", err)
					}
					wantName := "fw/board-v2.bin"
					if consistent {
						wantName = "fw/" + hex.EncodeToString(info.Hashes[0].Digest) + ".board-v2.bin"
					}
					if got := c.TargetFileName(info); got != wantName {
						t.Errorf("target file name %q, want %q", got, wantName)
					}
					// A second boot finds snapshot and targets in its store.
					if _, err := d.refresh(epoch); err != nil {
						t.Fatal(err)
					}
					if want := []string{"2.root.json", "timestamp.json"}; !reflect.DeepEqual(d.fetch.requests, want) {
						t.Errorf("second refresh requests %q, want %q", d.fetch.requests, want)
					}
				})
			}
		}
	}
}

// tamper rewrites a served file: decode, change, re-encode without
// re-signing (or re-signing with the given signers).
func tamperJSON(t *testing.T, b []byte, change func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	dec := jsonDecoder(b)
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	change(m)
	return jsonEncode(t, m)
}

func signedOf(m map[string]any) map[string]any { return m["signed"].(map[string]any) }

func TestRefreshRejects(t *testing.T) {
	type tc struct {
		name  string
		setup func(t *testing.T, r *testRepo, d *device) // after a first good refresh
		want  Kind
		// trusted versions (root, timestamp, snapshot, targets) after the failure
		after string
	}
	next := func(r *testRepo) { r.publish(RoleTargets, RoleSnapshot, RoleTimestamp) }
	cases := []tc{
		{"timestamp signed by unknown key", func(t *testing.T, r *testRepo, d *device) {
			r.signers[RoleTimestamp] = []*testSigner{newSigner(t, r.kind, "intruder")}
			next(r)
		}, KindThreshold, "1 1 1 1"},
		{"timestamp signature over other bytes", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.files["timestamp.json"] = tamperJSON(t, r.files["timestamp.json"], func(m map[string]any) {
				signedOf(m)["version"] = 7.0
			})
		}, KindBadSignature, "1 1 1 1"},
		{"snapshot not signed", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.files["snapshot.json"] = tamperJSON(t, r.files["snapshot.json"], func(m map[string]any) {
				m["signatures"] = []any{}
			})
			r.fixTimestamp()
		}, KindThreshold, "1 3 1 1"},
		{"timestamp rollback", func(t *testing.T, r *testRepo, d *device) {
			old := r.files["timestamp.json"]
			next(r)
			if _, err := d.refresh(epoch); err != nil {
				t.Fatal(err)
			}
			r.files["timestamp.json"] = old
		}, KindRollback, "1 2 2 2"},
		{"timestamp snapshot version rollback", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			if _, err := d.refresh(epoch); err != nil {
				t.Fatal(err)
			}
			r.timestamp.Signed.Version++
			r.timestamp.Signed.Meta["snapshot.json"].Version = 1
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
		}, KindRollback, "1 2 2 2"},
		{"snapshot targets version rollback", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			if _, err := d.refresh(epoch); err != nil {
				t.Fatal(err)
			}
			r.targets.Signed.Version = 1
			r.publish(RoleSnapshot, RoleTimestamp)
		}, KindRollback, "1 3 2 2"},
		{"snapshot version differs from timestamp", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.timestamp.Signed.Meta["snapshot.json"].Version = 3
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
		}, KindRollback, "1 2 1 1"},
		{"targets version differs from snapshot", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.targets.Signed.Version = 5
			r.files["targets.json"] = encode(r, r.targets, r.signers[RoleTargets])
		}, KindRollback, "1 2 2 1"},
		{"snapshot hash mismatch", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.timestamp.Signed.Meta["snapshot.json"].Hashes["sha256"] = make([]byte, 32)
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
		}, KindHash, "1 2 1 1"},
		{"snapshot length mismatch", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.timestamp.Signed.Meta["snapshot.json"].Length++
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
		}, KindLength, "1 2 1 1"},
		{"snapshot unknown hash algorithm", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.timestamp.Signed.Meta["snapshot.json"].Hashes = metadata.Hashes{"md5": make([]byte, 16)}
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
		}, KindHash, "1 2 1 1"},
		{"targets hash mismatch", func(t *testing.T, r *testRepo, d *device) {
			r.hashMeta = true
			next(r)
			b := r.files["targets.json"]
			i := bytes.Index(b, []byte(`"sig":"`)) + len(`"sig":"`)
			b[i] ^= 'a' ^ 'b' // same length, other bytes
			if b[i] != 'a' && b[i] != 'b' {
				b[i] = 'c'
			}
		}, KindHash, "1 2 2 1"},
		{"expired timestamp", func(t *testing.T, r *testRepo, d *device) {
			r.timestamp.Signed.Expires = epoch
			next(r)
		}, KindFreeze, "1 1 1 1"},
		{"expired snapshot", func(t *testing.T, r *testRepo, d *device) {
			r.snapshot.Signed.Expires = epoch.Add(-time.Second)
			next(r)
		}, KindFreeze, "1 2 1 1"},
		{"expired targets", func(t *testing.T, r *testRepo, d *device) {
			r.targets.Signed.Expires = epoch.Add(-time.Second)
			next(r)
		}, KindFreeze, "1 2 2 1"},
		{"expired root", func(t *testing.T, r *testRepo, d *device) {
			r.root.Signed.Expires = epoch
			r.publish(RoleRoot)
		}, KindExpired, "2 1 1 1"},
		{"root version skips", func(t *testing.T, r *testRepo, d *device) {
			r.root.Signed.Version = 4
			r.publish()
			r.files["2.root.json"] = r.files["4.root.json"]
		}, KindRollback, "1 1 1 1"},
		{"root not signed by old root", func(t *testing.T, r *testRepo, d *device) {
			r.root.Signed.Roles[RoleRoot].KeyIDs = nil
			delete(r.root.Signed.Keys, r.signers[RoleRoot][0].id)
			r.signers[RoleRoot] = nil
			r.addKey(RoleRoot, newSigner(t, r.kind, "root-2"))
			r.publish(RoleRoot)
		}, KindThreshold, "1 1 1 1"},
		{"root not signed by new root", func(t *testing.T, r *testRepo, d *device) {
			old := r.signers[RoleRoot]
			r.root.Signed.Roles[RoleRoot].KeyIDs = nil
			r.signers[RoleRoot] = nil
			r.addKey(RoleRoot, newSigner(t, r.kind, "root-2"))
			r.signers[RoleRoot] = nil
			r.extraRootSigners = old
			r.publish(RoleRoot)
		}, KindThreshold, "1 1 1 1"},
		{"one key under two ids", func(t *testing.T, r *testRepo, d *device) {
			// The snapshot threshold is 2; the second "key" is the first key
			// again under another key id, which must not count twice.
			s := r.signers[RoleSnapshot][0]
			twinID := "twin-" + s.id
			r.root.Signed.Keys[twinID] = s.pub
			r.root.Signed.Roles[RoleSnapshot].KeyIDs = append(r.root.Signed.Roles[RoleSnapshot].KeyIDs, twinID)
			r.root.Signed.Roles[RoleSnapshot].Threshold = 2
			r.publish(RoleRoot, RoleSnapshot, RoleTimestamp)
			r.files["snapshot.json"] = tamperJSON(t, r.files["snapshot.json"], func(m map[string]any) {
				sig := m["signatures"].([]any)[0].(map[string]any)
				m["signatures"] = append(m["signatures"].([]any), map[string]any{"keyid": twinID, "sig": sig["sig"]})
			})
			r.fixTimestamp()
		}, KindThreshold, "2 3 1 1"},
		{"two signatures by one key id", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.files["snapshot.json"] = tamperJSON(t, r.files["snapshot.json"], func(m map[string]any) {
				sigs := m["signatures"].([]any)
				m["signatures"] = append(sigs, sigs[0])
			})
			r.fixTimestamp()
		}, KindDuplicate, "1 3 1 1"},
		{"more signatures than the device keeps", func(t *testing.T, r *testRepo, d *device) {
			d.lim.MaxSignatures = 1
			r.signers[RoleTimestamp] = append(r.signers[RoleTimestamp], newSigner(t, r.kind, "spare"))
			next(r)
		}, KindTooManySignatures, "1 1 1 1"},
		{"metadata larger than the buffer", func(t *testing.T, r *testRepo, d *device) {
			for i := 0; i < 200; i++ {
				r.addTarget(RoleTargets, fmt.Sprintf("fw/image-%03d.bin", i), []byte{byte(i)})
			}
			next(r)
		}, KindTooLarge, "1 2 2 1"},
		{"snapshot served as timestamp", func(t *testing.T, r *testRepo, d *device) {
			next(r)
			r.files["timestamp.json"] = r.files["snapshot.json"]
		}, KindWrongType, "1 1 1 1"},
		{"timestamp not JSON", func(t *testing.T, r *testRepo, d *device) {
			r.files["timestamp.json"] = []byte(`{"signed": {"_type": "timestamp",`)
		}, KindMalformed, "1 1 1 1"},
		{"timestamp missing", func(t *testing.T, r *testRepo, d *device) {
			delete(r.files, "timestamp.json")
		}, KindNotFound, "1 1 1 1"},
		{"snapshot without targets", func(t *testing.T, r *testRepo, d *device) {
			r.snapshot.Signed.Version++
			r.snapshot.Signed.Meta = map[string]*metadata.MetaFiles{}
			r.files["snapshot.json"] = encode(r, r.snapshot, r.signers[RoleSnapshot])
			r.fixTimestamp()
		}, KindMissingMeta, "1 2 1 1"},
		{"snapshot drops a role", func(t *testing.T, r *testRepo, d *device) {
			r.snapshot.Signed.Version++
			r.snapshot.Signed.Meta["other.json"] = metadata.MetaFile(1)
			r.files["snapshot.json"] = encode(r, r.snapshot, r.signers[RoleSnapshot])
			r.fixTimestamp()
			if _, err := d.refresh(epoch); err != nil {
				t.Fatal(err)
			}
			r.publish(RoleSnapshot, RoleTimestamp)
		}, KindMissingMeta, "1 3 2 1"},
		{"non-integer version", func(t *testing.T, r *testRepo, d *device) {
			r.files["timestamp.json"] = tamperJSON(t, r.files["timestamp.json"], func(m map[string]any) {
				signedOf(m)["version"] = 1.5
			})
		}, KindMalformed, "1 1 1 1"},
		{"unsupported spec version", func(t *testing.T, r *testRepo, d *device) {
			r.timestamp.Signed.SpecVersion = "2.0.0"
			next(r)
		}, KindMalformed, "1 1 1 1"},
	}
	// A memo shared by every case, warmed by their good refreshes, must
	// change no verdict.
	memo := NewMemo(1 << 10)
	for _, c := range cases {
		for _, withMemo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/memo=%v", c.name, withMemo), func(t *testing.T) {
				r := newTestRepo(t, KeyEd25519, false, false)
				d := newDevice(r)
				if withMemo {
					d.lim.Memo = memo
				}
				if _, err := d.refresh(epoch); err != nil {
					t.Fatal(err)
				}
				c.setup(t, r, d)
				_, err := d.refresh(epoch)
				if KindOf(err) != c.want {
					t.Fatalf("refresh: %v, want kind %s", err, c.want)
				}
				var te *Error
				if !errors.As(err, &te) || te.Detail == "" {
					t.Errorf("error %v has no detail", err)
				}
				got := fmt.Sprint(d.version(RoleRoot), d.version(RoleTimestamp), d.version(RoleSnapshot), d.version(RoleTargets))
				if got != c.after {
					t.Errorf("stored versions %s, want %s", got, c.after)
				}
			})
		}
	}
	if memo.Len() == 0 {
		t.Error("the memo remembered no signature")
	}
}

// fixTimestamp re-announces the served snapshot.json (after tampering) in a
// new, validly signed timestamp, so that only the snapshot is at fault.
func (r *testRepo) fixTimestamp() {
	sb := r.files["snapshot.json"]
	h := sha256Sum(sb)
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{
		Version: r.snapshot.Signed.Version, Length: int64(len(sb)), Hashes: metadata.Hashes{"sha256": h},
	}
	r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
}

func TestRootRotation(t *testing.T) {
	r := newTestRepo(t, KeyEd25519, true, true)
	d := newDevice(r)
	// Rotate the root key twice and the timestamp key once, threshold 2 at v3.
	for v, seed := range []string{"root-2", "root-3"} {
		old := r.signers[RoleRoot]
		r.root.Signed.Roles[RoleRoot].KeyIDs = nil
		r.signers[RoleRoot] = nil
		r.addKey(RoleRoot, newSigner(t, KeyEd25519, seed))
		if v == 1 {
			r.addKey(RoleRoot, newSigner(t, KeyEd25519, seed+"b"))
			r.root.Signed.Roles[RoleRoot].Threshold = 2
			r.root.Signed.Roles[RoleTimestamp].KeyIDs = nil
			r.signers[RoleTimestamp] = nil
			r.addKey(RoleTimestamp, newSigner(t, KeyEd25519, "timestamp-2"))
		}
		r.extraRootSigners = old
		r.publish(RoleRoot, RoleTimestamp)
	}
	c, err := d.refresh(epoch)
	if err != nil {
		t.Fatal(err)
	}
	if c.RootVersion() != 3 || d.version(RoleRoot) != 3 {
		t.Errorf("root version %d (stored %d), want 3", c.RootVersion(), d.version(RoleRoot))
	}
	want := []string{"2.root.json", "3.root.json", "4.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"}
	if !reflect.DeepEqual(d.fetch.requests, want) {
		t.Errorf("requests %q, want %q", d.fetch.requests, want)
	}
	// v4 signed by only one of the two v3 root keys: refused.
	r.root.Signed.Version++
	r.files["4.root.json"] = encode(r, r.root, r.signers[RoleRoot][:1])
	if _, err := d.refresh(epoch); !errors.Is(err, ErrThreshold) {
		t.Errorf("v4 under threshold: %v, want a threshold error", err)
	}
}

func TestDisabledKeyType(t *testing.T) {
	r := newTestRepo(t, KeyEd25519, false, false)
	d := newDevice(r)
	d.lim.KeyTypes = KeyRSAPSS | KeyECDSAP256
	if _, err := d.refresh(epoch); !errors.Is(err, ErrUnsupportedKey) {
		t.Fatalf("ed25519 root on a device without ed25519: %v, want an unsupported key", err)
	}
}

func TestErrorKinds(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", errf(KindFreeze, RoleSnapshot, "expired at x"))
	if !errors.Is(err, ErrFreeze) || !errors.Is(err, ErrExpired) || errors.Is(err, ErrRollback) {
		t.Error("a freeze is an expiry, and nothing else")
	}
	if KindOf(err) != KindFreeze || KindOf(errors.New("x")) != KindNone {
		t.Error("KindOf")
	}
	for k := KindNone; k < kindCount; k++ {
		if k.String() == "" || strings.HasPrefix(k.String(), "kind(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	if s := err.Error(); !strings.Contains(s, "freeze (snapshot): expired at x") {
		t.Errorf("message %q", s)
	}
}

func TestReadBounded(t *testing.T) {
	buf := make([]byte, 4)
	if n, err := ReadBounded(bytes.NewReader([]byte("abcd")), buf); n != 4 || err != nil {
		t.Errorf("exact fit: %d %v", n, err)
	}
	if _, err := ReadBounded(bytes.NewReader([]byte("abcde")), buf); !errors.Is(err, ErrTooLarge) {
		t.Errorf("one byte too many: %v", err)
	}
}

func TestEscapeRoleName(t *testing.T) {
	for in, want := range map[string]string{
		"targets": "targets", "?": "%3F", "#": "%23", "/delegatedrole": "%2Fdelegatedrole",
		"../delegatedrole": "..%2Fdelegatedrole", "a b~c_d-e.f": "a%20b~c_d-e.f", "é": "%C3%A9",
	} {
		if got := EscapeRoleName(in); got != want {
			t.Errorf("EscapeRoleName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := MetadataFileName("a/b", 3); got != "3.a%2Fb.json" {
		t.Errorf("MetadataFileName = %q", got)
	}
}

// failingSave is a store that cannot keep one role.
type failingSave struct {
	memStore
	role string
}

func (s failingSave) Save(role string, data []byte) error {
	if role == s.role {
		return errors.New("flash write failed")
	}
	return s.memStore.Save(role, data)
}

// TestTargetsMetadata: after a successful refresh the agent gets the
// trusted targets.json byte for byte, whether downloaded or read back from
// the store; after a failed one, nothing, even when the failure came after
// the targets had verified.
func TestTargetsMetadata(t *testing.T) {
	r := newTestRepo(t, KeyEd25519, false, false)
	r.addTarget(RoleTargets, "fw/board-v2.bin", []byte("firmware v2"))
	r.publish(RoleTargets, RoleSnapshot, RoleTimestamp)
	d := newDevice(r)
	c, err := New(d.lim, d.fetch, d.store)
	if err != nil {
		t.Fatal(err)
	}
	if b := c.TargetsMetadata(); b != nil {
		t.Errorf("before any refresh: %d bytes, want nil", len(b))
	}
	if err := c.Refresh(epoch); err != nil {
		t.Fatal(err)
	}
	got := c.TargetsMetadata()
	if !bytes.Equal(got, r.files["targets.json"]) {
		t.Fatalf("targets metadata is not the served targets.json:\n%s", got)
	}
	got[0] = 'x' // the caller's copy
	if !bytes.Equal(c.TargetsMetadata(), r.files["targets.json"]) {
		t.Error("changing the returned bytes changed the client's")
	}
	if _, err := c.Target("fw/board-v2.bin"); err != nil {
		t.Error(err)
	}

	// A second boot reads targets from the store.
	c, err = d.refresh(epoch)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.TargetsMetadata(), r.files["targets.json"]) {
		t.Error("from the store: targets metadata is not the served targets.json")
	}

	// A refused timestamp: nothing is trusted.
	good := r.files["timestamp.json"]
	r.files["timestamp.json"] = []byte("{}")
	if err := c.Refresh(epoch); err == nil {
		t.Fatal("refresh accepted a broken timestamp")
	}
	if b := c.TargetsMetadata(); b != nil {
		t.Errorf("after a failed refresh: %d bytes, want nil", len(b))
	}
	r.files["timestamp.json"] = good

	// New targets verify, but the store cannot keep them.
	r.addTarget(RoleTargets, "fw/board-v3.bin", []byte("firmware v3"))
	r.publish(RoleTargets, RoleSnapshot, RoleTimestamp)
	c, err = New(d.lim, d.fetch, failingSave{d.store, RoleTargets})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(epoch); !errors.Is(err, ErrStore) {
		t.Fatalf("refresh with a failing store: %v, want a store error", err)
	}
	if b := c.TargetsMetadata(); b != nil {
		t.Errorf("after a refresh that could not save targets: %d bytes, want nil", len(b))
	}
}
