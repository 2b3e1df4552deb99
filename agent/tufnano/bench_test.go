package tufnano

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// rootOnlyStore is a device that holds only its provisioned root and keeps
// nothing, like go-tuf with DisableLocalCache: both refreshes do the same
// work.
type rootOnlyStore struct{ root []byte }

func (s rootOnlyStore) Load(role string, dst []byte) (int, error) {
	if role != RoleRoot {
		return 0, ErrNotFound
	}
	return copy(dst, s.root), nil
}

func (rootOnlyStore) Save(string, []byte) error { return nil }

// gatewayGoTUFFetcher serves the gateway's bytes to go-tuf, without a copy.
type gatewayGoTUFFetcher struct{ repo *tufrepo.Repo }

func (g gatewayGoTUFFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	f, err := g.repo.Fetch("devel", strings.TrimPrefix(url, gotufBase))
	if errors.Is(err, tufrepo.ErrNotFound) {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: url}
	}
	return f.Data, err
}

// BenchmarkRefresh runs one full refresh from a freshly provisioned device
// (root; 2.root.json absent; timestamp, snapshot, targets with 50 targets;
// ed25519 keys) against fleetsim's own repository served from memory, with
// tufnano and with go-tuf's updater.
func BenchmarkRefresh(b *testing.B) {
	repo, _ := newGatewayRepo(b, tufrepo.KeyEd25519, 50, epoch)
	root, err := repo.Root(1)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tufnano", func(b *testing.B) {
		fetch := &gatewayFetcher{repo: repo, tag: "devel"}
		store := rootOnlyStore{root: root.Data}
		b.ReportAllocs()
		for b.Loop() {
			c, err := New(DefaultLimits(), fetch, store)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Refresh(epoch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gotuf", func(b *testing.B) {
		fetch := gatewayGoTUFFetcher{repo: repo}
		b.ReportAllocs()
		for b.Loop() {
			cfg, err := config.New(gotufBase, root.Data)
			if err != nil {
				b.Fatal(err)
			}
			cfg.Fetcher = fetch
			cfg.DisableLocalCache = true
			up, err := updater.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			up.UnsafeSetRefTime(epoch)
			if err := up.Refresh(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
