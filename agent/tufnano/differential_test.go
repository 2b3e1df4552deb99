package tufnano

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

const gotufBase = "https://repo.invalid/metadata/"

// gotufFetcher serves the same in-memory files to go-tuf's updater.
type gotufFetcher struct{ files map[string][]byte }

func (g *gotufFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	b, ok := g.files[strings.TrimPrefix(url, gotufBase)]
	if !ok {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: url}
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: "too long"}
	}
	return append([]byte(nil), b...), nil
}

// gotufDevice is go-tuf's updater with its metadata directory, booted
// afresh for each refresh like a device after a reset.
type gotufDevice struct {
	dir   string
	fetch *gotufFetcher
}

func (g *gotufDevice) refresh(now time.Time) error {
	root, err := os.ReadFile(filepath.Join(g.dir, "root.json"))
	if err != nil {
		return err
	}
	cfg, err := config.New(gotufBase, root)
	if err != nil {
		return err
	}
	cfg.LocalMetadataDir = g.dir
	cfg.LocalTargetsDir = filepath.Join(g.dir, "targets")
	cfg.RemoteTargetsURL = "https://repo.invalid/targets/"
	cfg.Fetcher = g.fetch
	up, err := updater.New(cfg)
	if err != nil {
		return err
	}
	up.UnsafeSetRefTime(now)
	return up.Refresh()
}

func (g *gotufDevice) version(role string) int64 {
	b, err := os.ReadFile(filepath.Join(g.dir, role+".json"))
	if err != nil {
		return 0
	}
	var f struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if json.Unmarshal(b, &f) != nil {
		return -1
	}
	return f.Signed.Version
}

// TestDifferentialGoTUF feeds one sequence of repository states (updates,
// key rotations, rollbacks, expiries, tampering) to tufnano and to go-tuf's
// updater, each keeping its own trusted state, and requires the same
// accept/reject decision and the same trusted versions at every step.
func TestDifferentialGoTUF(t *testing.T) {
	for _, consistent := range []bool{false, true} {
		t.Run(fmt.Sprintf("consistent=%v", consistent), func(t *testing.T) {
			differential(t, consistent)
		})
	}
}

func differential(t *testing.T, consistent bool) {
	r := newTestRepo(t, KeyEd25519, consistent, false)
	nano := newDevice(r)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), r.rootV1, 0o644); err != nil {
		t.Fatal(err)
	}
	gotuf := &gotufDevice{dir: dir, fetch: &gotufFetcher{files: r.files}}
	now := epoch
	next := func() { r.publish(RoleTargets, RoleSnapshot, RoleTimestamp) }
	var saved []byte
	var oldRoot []*testSigner
	steps := []struct {
		name   string
		change func()
		accept bool
	}{
		{"initial", func() {}, true},
		{"new target", func() { r.addTarget(RoleTargets, "fw/a.bin", []byte("a")); next() }, true},
		{"nothing new", func() {}, true},
		{"rotate timestamp key", func() {
			saved = r.files["timestamp.json"]
			r.root.Signed.Roles[RoleTimestamp].KeyIDs = nil
			r.signers[RoleTimestamp] = nil
			r.addKey(RoleTimestamp, newSigner(t, KeyEd25519, "timestamp-2"))
			r.publish(RoleRoot, RoleTimestamp)
		}, true},
		{"timestamp signed by the revoked key", func() { r.files["timestamp.json"] = saved }, false},
		{"new snapshot", func() { r.publish(RoleSnapshot, RoleTimestamp) }, true},
		{"timestamp rollback", func() {
			saved = r.files["timestamp.json"]
			r.publish(RoleTimestamp)
			r.timestamp.Signed.Version -= 2
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
			r.timestamp.Signed.Version += 2
		}, false},
		{"snapshot hash mismatch", func() {
			r.publish(RoleSnapshot, RoleTimestamp)
			r.timestamp.Signed.Meta["snapshot.json"].Hashes["sha256"][0] ^= 1
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
		}, false},
		{"repaired", func() { r.publish(RoleSnapshot, RoleTimestamp) }, true},
		{"timestamp expired", func() { now = epoch.Add(36 * time.Hour) }, false},
		{"timestamp renewed", func() {
			r.timestamp.Signed.Expires = epoch.AddDate(0, 0, 5)
			r.publish(RoleTimestamp)
		}, true},
		{"targets version rollback", func() {
			r.targets.Signed.Version--
			r.publish(RoleSnapshot, RoleTimestamp)
		}, false},
		{"targets forward again", func() { r.publish(RoleTargets, RoleTargets, RoleSnapshot, RoleTimestamp) }, true},
		{"targets signed by the snapshot key", func() {
			r.signers[RoleTargets], saved = r.signers[RoleSnapshot], nil
			next()
		}, false},
		{"root rotation under threshold", func() {
			r.signers[RoleTargets] = []*testSigner{newSigner(t, KeyEd25519, "targets-1")}
			oldRoot = r.signers[RoleRoot]
			r.root.Signed.Roles[RoleRoot].KeyIDs = nil
			r.signers[RoleRoot] = nil
			r.addKey(RoleRoot, newSigner(t, KeyEd25519, "root-2"))
			r.addKey(RoleRoot, newSigner(t, KeyEd25519, "root-2b"))
			r.root.Signed.Roles[RoleRoot].Threshold = 2
			r.root.Signed.Version++
			r.files[fmt.Sprint(r.root.Signed.Version, ".root.json")] = encode(r, r.root, append(oldRoot[:1:1], r.signers[RoleRoot][0]))
		}, false},
		{"root rotation signed", func() {
			r.files[fmt.Sprint(r.root.Signed.Version, ".root.json")] = encode(r, r.root, append(oldRoot[:1:1], r.signers[RoleRoot]...))
			next()
		}, true},
		{"snapshot expired", func() {
			r.snapshot.Signed.Expires = now.Add(-time.Hour)
			next()
		}, false},
		{"snapshot renewed", func() {
			r.snapshot.Signed.Expires = epoch.AddDate(0, 0, 9)
			next()
		}, true},
		{"snapshot version differs from timestamp", func() {
			next()
			r.timestamp.Signed.Meta["snapshot.json"].Version++
			r.files["timestamp.json"] = encode(r, r.timestamp, r.signers[RoleTimestamp])
		}, false},
		{"root expired", func() {
			// A second before now: at exactly now the specification (§5.3.10,
			// "MUST be higher than the update start time") and python-tuf
			// say expired, go-tuf's IsExpired (now.After(expires)) does not.
			r.root.Signed.Expires = now.Add(-time.Second)
			r.publish(RoleRoot)
			next()
		}, false},
	}
	for _, s := range steps {
		s.change()
		_, nanoErr := nano.refresh(now)
		gotufErr := gotuf.refresh(now)
		if (nanoErr == nil) != (gotufErr == nil) {
			t.Fatalf("%s: tufnano %v, go-tuf %v", s.name, nanoErr, gotufErr)
		}
		if (nanoErr == nil) != s.accept {
			t.Fatalf("%s: both decided %v (%v), want accept=%v", s.name, nanoErr == nil, nanoErr, s.accept)
		}
		for _, role := range []string{RoleRoot, RoleTimestamp, RoleSnapshot, RoleTargets} {
			if a, b := nano.version(role), gotuf.version(role); a != b {
				t.Errorf("%s: trusted %s version %d, go-tuf %d", s.name, role, a, b)
			}
		}
	}
}
