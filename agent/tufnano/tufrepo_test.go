package tufnano

import (
	"errors"
	"fmt"
	"math/rand/v2"
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
