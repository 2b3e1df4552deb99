package tufrepo

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

const (
	metadataURL = "https://gateway.test/repo/"
	targetsURL  = "https://gateway.test/mcu/"
)

// gatewayFetcher serves a Repo's bytes to go-tuf's updater the way the
// gateway serves /repo/*.json for one device tag, and firmware images by
// target name.
type gatewayFetcher struct {
	r       *Repo
	tag     string
	images  map[string][]byte
	fetched []string
}

func (g *gatewayFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	var data []byte
	switch {
	case strings.HasPrefix(url, metadataURL):
		name := strings.TrimPrefix(url, metadataURL)
		f, err := g.r.Fetch(g.tag, name)
		if errors.Is(err, ErrNotFound) {
			return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: url}
		}
		if err != nil {
			return nil, err
		}
		g.fetched = append(g.fetched, name)
		data = f.Data
	case strings.HasPrefix(url, targetsURL):
		name := strings.TrimPrefix(url, targetsURL)
		// With consistent snapshots go-tuf asks for <sha256>.<name>.
		if h, rest, ok := strings.Cut(name, "."); ok && len(h) == 64 {
			name = rest
		}
		img, ok := g.images[name]
		if !ok {
			return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: url}
		}
		data = img
	default:
		return nil, fmt.Errorf("unexpected URL %s", url)
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: "too long"}
	}
	return data, nil
}

// goTUFDevice is a device running go-tuf's reference client. It keeps its
// trusted metadata in a directory between refreshes, as a device keeps it in
// flash, so each refresh checks versions against the previous one.
type goTUFDevice struct {
	tag  string
	dir  string
	root []byte // trusted root for the next updater
}

func newGoTUFDevice(t *testing.T, r *Repo, tag string) *goTUFDevice {
	t.Helper()
	root, err := r.Root(1)
	if err != nil {
		t.Fatal(err)
	}
	return &goTUFDevice{tag: tag, dir: t.TempDir(), root: root.Data}
}

// update refreshes at now and downloads target name (if not empty),
// returning the image bytes.
func (d *goTUFDevice) update(r *Repo, now time.Time, images map[string][]byte, name string) ([]byte, error) {
	cfg, err := config.New(metadataURL, d.root)
	if err != nil {
		return nil, err
	}
	cfg.Fetcher = &gatewayFetcher{r: r, tag: d.tag, images: images}
	cfg.LocalMetadataDir = d.dir
	cfg.LocalTargetsDir = filepath.Join(d.dir, "targets")
	cfg.RemoteTargetsURL = targetsURL
	if err := os.MkdirAll(cfg.LocalTargetsDir, 0o755); err != nil {
		return nil, err
	}
	up, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	up.UnsafeSetRefTime(now)
	if err := up.Refresh(); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if root, err := os.ReadFile(filepath.Join(d.dir, "root.json")); err == nil {
		d.root = root
	}
	if name == "" {
		return nil, nil
	}
	ti, err := up.GetTargetInfo(name)
	if err != nil {
		return nil, fmt.Errorf("target info: %w", err)
	}
	_, data, err := up.DownloadTarget(ti, filepath.Join(cfg.LocalTargetsDir, name), "")
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	return data, nil
}

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

func seeded(seed byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{seed}) }

// image makes distinct firmware bytes for a target.
func image(hwid, version string) []byte {
	return bytes.Repeat([]byte(hwid+"/"+version+";"), 40)
}

// TestGoTUFClientAfterEachOperation runs go-tuf's own client against the
// served bytes after every operation, with keys of each type.
func TestGoTUFClientAfterEachOperation(t *testing.T) {
	for _, kt := range []KeyType{KeyEd25519, KeyECDSAP256, KeyRSAPSS} {
		t.Run(string(kt), func(t *testing.T) {
			rnd := seeded(7)
			setup, err := GenerateSetup(kt, rnd)
			if err != nil {
				t.Fatal(err)
			}
			r, _, err := New(t0, Config{Random: rnd}, setup)
			if err != nil {
				t.Fatal(err)
			}
			images := map[string][]byte{}
			add := func(now time.Time, hwid, version string, tags ...string) string {
				t.Helper()
				img := image(hwid, version)
				tg := NewTarget(hwid, version, tags, img)
				images[tg.Name()] = img
				if _, err := r.AddTarget(now, tg); err != nil {
					t.Fatalf("AddTarget %s: %v", tg.Name(), err)
				}
				return tg.Name()
			}
			dev := newGoTUFDevice(t, r, "devel")
			check := func(now time.Time, step, name string) {
				t.Helper()
				got, err := dev.update(r, now, images, name)
				if err != nil {
					t.Fatalf("after %s: go-tuf client: %v", step, err)
				}
				if name != "" && !bytes.Equal(got, images[name]) {
					t.Fatalf("after %s: downloaded %d bytes, not the image", step, len(got))
				}
			}

			now := t0
			first := add(now, "MIMXRT1060-EVK", "1000", "devel")
			check(now, "add", first)

			now = now.Add(time.Hour)
			second := add(now, "MIMXRT1060-EVK", "1001", "devel", "prod")
			check(now, "second add", second)

			now = now.Add(time.Hour)
			if _, err := r.RemoveTargets(now, first); err != nil {
				t.Fatal(err)
			}
			check(now, "prune", second)

			// The timestamp expires a day after signing: re-signing keeps
			// the client going past the old expiry.
			now = now.Add(20 * time.Hour)
			if _, err := r.ResignTimestamp(now); err != nil {
				t.Fatal(err)
			}
			now = now.Add(10 * time.Hour)
			check(now, "timestamp re-sign", second)

			if _, err := r.BumpSnapshot(now); err != nil {
				t.Fatal(err)
			}
			check(now, "snapshot bump", second)

			newRoot, err := GenerateKey(kt, rnd)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.RotateKeys(now, RoleRoot, []*PrivateKey{newRoot}, 1); err != nil {
				t.Fatal(err)
			}
			check(now, "root rotation", second)

			for _, role := range []Role{RoleTargets, RoleSnapshot, RoleTimestamp} {
				k, err := GenerateKey(kt, rnd)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := r.RotateKeys(now, role, []*PrivateKey{k}, 1); err != nil {
					t.Fatal(err)
				}
				check(now, string(role)+" key rotation", second)
			}

			// Renew at a time when everything but root is near or past
			// expiry.
			now = now.Add(80 * 24 * time.Hour)
			if _, err := dev.update(r, now, images, ""); err == nil {
				t.Fatal("client accepted expired metadata")
			}
			if _, err := r.Renew(now); err != nil {
				t.Fatal(err)
			}
			check(now, "renew", second)
			third := add(now, "MIMXRT1060-EVK", "1002", "devel")
			check(now, "add after rotations", third)
			if got := r.RootVersion(); got != 5 {
				t.Errorf("root version %d, want 5", got)
			}
		})
	}
}
