package tufrepo

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestRootInfo checks the accessor against the set-up it was made from and
// against root.json as devices see it, through rotations and a reopening.
func TestRootInfo(t *testing.T) {
	rnd := seeded(31)
	setup, err := GenerateSetup(KeyECDSAP256, rnd)
	if err != nil {
		t.Fatal(err)
	}
	rootKeys := make([]*PrivateKey, 3)
	for i := range rootKeys {
		rootKeys[i], _ = GenerateKey(KeyEd25519, rnd)
	}
	setup.Root = RoleKeys{Keys: rootKeys, Threshold: 2}
	setup.OfflineRoot = true
	dir := filepath.Join(t.TempDir(), "tuf")
	r, _, err := Create(dir, t0, Config{ConsistentSnapshot: true, Random: seeded(32)}, setup)
	if err != nil {
		t.Fatal(err)
	}

	ri := r.RootInfo()
	if ri.Version != 1 || !ri.Expires.Equal(expiresAt(t0, DefaultRootExpiry)) || !ri.ConsistentSnapshot || !ri.OfflineRoot {
		t.Fatalf("root info %+v", ri)
	}
	var roles []Role
	for _, ro := range ri.Roles {
		roles = append(roles, ro.Role)
	}
	if !slices.Equal(roles, allRoles) {
		t.Fatalf("roles %v, want %v", roles, allRoles)
	}
	root := ri.Role(RoleRoot)
	wantIDs := []string{rootKeys[0].ID(), rootKeys[1].ID(), rootKeys[2].ID()}
	slices.Sort(wantIDs)
	if root.Threshold != 2 || !slices.Equal(root.KeyIDs(), wantIDs) {
		t.Errorf("root role %+v, want threshold 2 and keys %v", root, wantIDs)
	}
	for _, k := range root.Keys {
		if k.Held || k.Type != KeyEd25519 {
			t.Errorf("offline root key %+v: want an ed25519 key not held", k)
		}
	}
	for _, role := range []Role{RoleTargets, RoleSnapshot, RoleTimestamp} {
		ro := ri.Role(role)
		want := setup.role(role).Keys[0]
		if ro.Threshold != 1 || len(ro.Keys) != 1 || ro.Keys[0] != (KeyInfo{ID: want.ID(), Type: KeyECDSAP256, Held: true}) {
			t.Errorf("%s role %+v, want held ecdsa-p256 key %s", role, ro, want.ID())
		}
	}
	if ro := ri.Role("mirror"); ro.Role != "" || ro.Keys != nil {
		t.Errorf("unknown role gave %+v", ro)
	}

	// The accessor says what root.json says.
	f, _ := r.Root(1)
	md, err := parseMetadata[metadata.RootType](f.Name, f.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range ri.Roles {
		rr := md.Signed.Roles[string(ro.Role)]
		if rr.Threshold != ro.Threshold || !slices.Equal(rr.KeyIDs, ro.KeyIDs()) {
			t.Errorf("%s: accessor %+v, root.json %+v", ro.Role, ro, rr)
		}
	}

	// A targets rotation with a different key type, then a root rotation
	// to one RSA key: the new root key stays with the caller.
	now := t0.Add(time.Hour)
	tk, _ := GenerateKey(KeyEd25519, rnd)
	if _, err := r.RotateKeys(now, RoleTargets, []*PrivateKey{tk}, 1, rootKeys[0], rootKeys[1]); err != nil {
		t.Fatal(err)
	}
	nk, _ := GenerateKey(KeyRSAPSS, rnd)
	if _, err := r.RotateKeys(now, RoleRoot, []*PrivateKey{nk}, 1, rootKeys[0], rootKeys[2]); err != nil {
		t.Fatal(err)
	}
	ri = r.RootInfo()
	if ri.Version != 3 || !ri.Expires.Equal(expiresAt(now, DefaultRootExpiry)) {
		t.Errorf("after two rotations: root v%d expiring %v", ri.Version, ri.Expires)
	}
	if got := ri.Role(RoleRoot).Keys; len(got) != 1 || got[0] != (KeyInfo{ID: nk.ID(), Type: KeyRSAPSS}) {
		t.Errorf("root keys after the rotation %+v, want rsa-pss key %s not held", got, nk.ID())
	}
	if got := ri.Role(RoleTargets).Keys; len(got) != 1 || got[0] != (KeyInfo{ID: tk.ID(), Type: KeyEd25519, Held: true}) {
		t.Errorf("targets keys after the rotation %+v, want held ed25519 key %s", got, tk.ID())
	}

	// Reopened from its directory, the repository reports the same.
	re, err := Open(dir, seeded(33))
	if err != nil {
		t.Fatal(err)
	}
	if got := re.RootInfo(); !sameRootInfo(got, ri) {
		t.Errorf("reopened: %+v, want %+v", got, ri)
	}
}

// TestRootInfoHeldRoot checks a repository that holds its root key: it holds
// the new root key of a rotation too, and signs the next root by itself.
func TestRootInfoHeldRoot(t *testing.T) {
	r, setup := newTestRepo(t, Config{})
	ri := r.RootInfo()
	if ri.OfflineRoot || ri.Role(RoleRoot).Keys[0] != (KeyInfo{ID: setup.Root.Keys[0].ID(), Type: KeyEd25519, Held: true}) {
		t.Fatalf("root info of a held root %+v", ri)
	}
	nk, _ := GenerateKey(KeyEd25519, seeded(34))
	if _, err := r.RotateKeys(t0, RoleRoot, []*PrivateKey{nk}, 1); err != nil {
		t.Fatal(err)
	}
	if got := r.RootInfo().Role(RoleRoot).Keys; len(got) != 1 || got[0] != (KeyInfo{ID: nk.ID(), Type: KeyEd25519, Held: true}) {
		t.Fatalf("root keys after rotating a held root %+v", got)
	}
	if _, err := r.ExtendRoot(t0.Add(time.Hour)); err != nil {
		t.Fatalf("extending root with the held new key: %v", err)
	}
}

func sameRootInfo(a, b RootInfo) bool {
	return a.Version == b.Version && a.Expires.Equal(b.Expires) && a.ConsistentSnapshot == b.ConsistentSnapshot &&
		a.OfflineRoot == b.OfflineRoot && slices.EqualFunc(a.Roles, b.Roles, func(x, y RoleInfo) bool {
		return x.Role == y.Role && x.Threshold == y.Threshold && slices.Equal(x.Keys, y.Keys)
	})
}
