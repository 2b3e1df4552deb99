package tufnano

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway/tufrepo"
)

// gatewayFetcher serves one tag's view of fleetsim's own repository, the
// bytes exactly as the gateway serves them.
type gatewayFetcher struct {
	repo     *tufrepo.Repo
	tag      string
	requests int
}

func (g *gatewayFetcher) Fetch(name string, dst []byte) (int, error) {
	g.requests++
	f, err := g.repo.Fetch(g.tag, name)
	if errors.Is(err, tufrepo.ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	if len(f.Data) > len(dst) {
		return 0, ErrTooLarge
	}
	return copy(dst, f.Data), nil
}

// newGatewayRepo makes a repository with n targets for tag "devel".
func newGatewayRepo(t testing.TB, kt tufrepo.KeyType, n int, now time.Time) (*tufrepo.Repo, *rand.ChaCha8) {
	t.Helper()
	rnd := rand.NewChaCha8([32]byte{7})
	setup, err := tufrepo.GenerateSetup(kt, rnd)
	if err != nil {
		t.Fatal(err)
	}
	repo, _, err := tufrepo.New(now, tufrepo.Config{Random: rnd}, setup)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		tg := tufrepo.NewTarget("MIMXRT1060-EVK", fmt.Sprint(1000+i), []string{"devel"}, []byte(fmt.Sprintf("image %d", i)))
		if _, err := repo.AddTarget(now, tg); err != nil {
			t.Fatal(err)
		}
	}
	return repo, rnd
}

func provisioned(t testing.TB, repo *tufrepo.Repo) memStore {
	t.Helper()
	root, err := repo.Root(1)
	if err != nil {
		t.Fatal(err)
	}
	return memStore{RoleRoot: append([]byte(nil), root.Data...)}
}

// TestGatewayRepository refreshes from fleetsim's own repository for every
// key type, through target additions and key rotations of every role.
func TestGatewayRepository(t *testing.T) {
	for _, kt := range []tufrepo.KeyType{tufrepo.KeyEd25519, tufrepo.KeyECDSAP256, tufrepo.KeyRSAPSS} {
		t.Run(string(kt), func(t *testing.T) {
			now := epoch
			repo, rnd := newGatewayRepo(t, kt, 3, now)
			store := provisioned(t, repo)
			fetch := &gatewayFetcher{repo: repo, tag: "devel"}
			refresh := func() *Client {
				t.Helper()
				c, err := New(DefaultLimits(), fetch, store)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Refresh(now); err != nil {
					t.Fatal(err)
				}
				return c
			}
			refresh()
			for i, role := range []tufrepo.Role{tufrepo.RoleTimestamp, tufrepo.RoleSnapshot, tufrepo.RoleTargets, tufrepo.RoleRoot} {
				now = now.Add(time.Hour)
				k, err := tufrepo.GenerateKey(kt, rnd)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := repo.RotateKeys(now, role, []*tufrepo.PrivateKey{k}, 1); err != nil {
					t.Fatal(err)
				}
				img := []byte(fmt.Sprintf("image after rotating %s", role))
				if _, err := repo.AddTarget(now, tufrepo.NewTarget("MIMXRT1060-EVK", fmt.Sprint(2000+i), []string{"devel"}, img)); err != nil {
					t.Fatal(err)
				}
				c := refresh()
				if c.RootVersion() != repo.RootVersion() {
					t.Fatalf("after rotating %s: root %d, repository %d", role, c.RootVersion(), repo.RootVersion())
				}
				info, err := c.Target(fmt.Sprintf("MIMXRT1060-EVK-v%d", 2000+i))
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifyTarget(info, img); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// splitFetcher serves the root chain from one repository and the other
// metadata from another: an attacker in front of the gateway that passes the
// root files through.
type splitFetcher struct{ roots, rest Fetcher }

func (s splitFetcher) Fetch(name string, dst []byte) (int, error) {
	if strings.HasSuffix(name, ".root.json") {
		return s.roots.Fetch(name, dst)
	}
	return s.rest.Fetch(name, dst)
}

// TestRetiredKeysRefusedAfterRotation: an attacker in front of the gateway
// who kept the targets, snapshot and timestamp keys signs metadata of its
// own, at higher versions and listing its own image, which a device believes
// before a rotation. The gateway then rotates every key in one new root
// version while the device is off; back on, the device walks the root chain
// to the new root before it looks at the timestamp, and refuses the
// attacker's metadata, signed with retired keys. The gateway's own, signed
// with the new keys, it takes.
func TestRetiredKeysRefusedAfterRotation(t *testing.T) {
	now := epoch
	rnd := rand.NewChaCha8([32]byte{9})
	setup, err := tufrepo.GenerateSetup(tufrepo.KeyEd25519, rnd)
	if err != nil {
		t.Fatal(err)
	}
	repo, _, err := tufrepo.New(now, tufrepo.Config{}, setup)
	if err != nil {
		t.Fatal(err)
	}
	// The attacker's copy of the repository, with the keys of the day.
	forged, _, err := tufrepo.New(now, tufrepo.Config{}, setup)
	if err != nil {
		t.Fatal(err)
	}
	add := func(r *tufrepo.Repo, version string) {
		t.Helper()
		if _, err := r.AddTarget(now, tufrepo.NewTarget("MIMXRT1060-EVK", version, []string{"devel"}, []byte("image "+version))); err != nil {
			t.Fatal(err)
		}
	}
	add(repo, "1000")
	store := provisioned(t, repo)
	gw := &gatewayFetcher{repo: repo, tag: "devel"}
	refresh := func(f Fetcher) (*Client, error) {
		c, err := New(DefaultLimits(), f, store)
		if err != nil {
			t.Fatal(err)
		}
		return c, c.Refresh(now)
	}
	if _, err := refresh(gw); err != nil {
		t.Fatal(err)
	}

	// Before the rotation the attacker's metadata would be believed.
	add(forged, "6666")
	for range 10 {
		if _, err := forged.BumpSnapshot(now); err != nil {
			t.Fatal(err)
		}
	}
	attacker := splitFetcher{roots: gw, rest: &gatewayFetcher{repo: forged, tag: "devel"}}
	c, err := New(DefaultLimits(), attacker, maps.Clone(store))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(now); err != nil {
		t.Fatalf("the attacker's metadata before the rotation: %v", err)
	}
	if _, err := c.Target("MIMXRT1060-EVK-v6666"); err != nil {
		t.Fatalf("before the rotation: %v", err)
	}

	now = now.Add(time.Hour)
	var rots []tufrepo.Rotation
	for _, role := range []tufrepo.Role{tufrepo.RoleRoot, tufrepo.RoleTargets, tufrepo.RoleSnapshot, tufrepo.RoleTimestamp} {
		k, err := tufrepo.GenerateKey(tufrepo.KeyEd25519, rnd)
		if err != nil {
			t.Fatal(err)
		}
		rots = append(rots, tufrepo.Rotation{Role: role, Keys: []*tufrepo.PrivateKey{k}})
	}
	if _, err := repo.Rotate(now, rots); err != nil {
		t.Fatal(err)
	}
	add(repo, "1001")
	genuine, _ := repo.View("devel")
	fake, _ := forged.View("devel")
	if fake.TimestampVersion <= genuine.TimestampVersion || fake.SnapshotVersion <= genuine.SnapshotVersion {
		t.Fatalf("the forged view %+v is not ahead of the gateway's %+v", fake, genuine)
	}

	c, err = refresh(attacker)
	if k := KindOf(err); k != KindThreshold && k != KindBadSignature {
		t.Fatalf("metadata signed with retired keys: err %v (kind %v), want a signature refusal", err, k)
	}
	if c.RootVersion() != 2 {
		t.Fatalf("root version %d, want 2: the chain is walked first", c.RootVersion())
	}
	c, err = refresh(gw)
	if err != nil {
		t.Fatalf("the gateway's metadata under the new keys: %v", err)
	}
	if _, err := c.Target("MIMXRT1060-EVK-v1001"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Target("MIMXRT1060-EVK-v6666"); err == nil {
		t.Fatal("the attacker's target is trusted")
	}
}
