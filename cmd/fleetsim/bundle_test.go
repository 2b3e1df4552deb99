package main

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/agent/bundle"
	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
)

// bundleEpoch is the gateway's time when the test's targets are published.
var bundleEpoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// bundleGateway is a gateway data directory made in process: the test
// clock, images uploaded through the admin handler as an operator would.
type bundleGateway struct {
	dir    string
	clock  *gatewaytest.Clock
	g      *gateway.Gateway
	key    crypto.Signer
	images map[string][]byte // by target name
}

func newBundleGateway(t *testing.T) *bundleGateway {
	t.Helper()
	key, err := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(1, 'b', 'u', 'n'))
	if err != nil {
		t.Fatal(err)
	}
	gw := &bundleGateway{dir: filepath.Join(t.TempDir(), "gw"), clock: gatewaytest.NewClock(bundleEpoch), key: key, images: map[string][]byte{}}
	gw.g, err = gateway.Open(gw.dir, gateway.Options{
		Clock: gw.clock, Random: gatewaytest.Rand(2, 'b', 'u', 'n'),
		ImageKeys: []crypto.PublicKey{key.Public()}, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gw.close)
	return gw
}

func (gw *bundleGateway) close() {
	if gw.g != nil {
		gw.g.Close()
		gw.g = nil
	}
}

// upload publishes a signed image of build number build for hwid to tags.
func (gw *bundleGateway) upload(t *testing.T, hwid string, build uint32, tags string) {
	t.Helper()
	img := gatewaytest.SignedImage(t, gw.key, build, 9000+int(build%7)*100)
	req := httptest.NewRequest("POST", "/v1/firmware?hwid="+hwid+"&tags="+tags, bytes.NewReader(img))
	req.Header.Set("Authorization", "Bearer bundle-token")
	rec := httptest.NewRecorder()
	gw.g.AdminHandler("bundle-token").ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		t.Fatalf("upload %s v%d: %d %s", hwid, build, rec.Code, rec.Body)
	}
	gw.images[fmt.Sprintf("%s-v%d", hwid, build)] = img
}

// rootOfTrust is the CI repository's 1.root.json: what a device is
// provisioned with at the factory.
func (gw *bundleGateway) rootOfTrust(t *testing.T) []byte {
	t.Helper()
	repo, err := tufrepo.Open(filepath.Join(gw.dir, "tuf", "ci"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := repo.Root(1)
	if err != nil {
		t.Fatal(err)
	}
	return f.Data
}

// bundleFlash is a device's TUF metadata area.
type bundleFlash map[string][]byte

func (f bundleFlash) Load(role string, dst []byte) (int, error) {
	data, ok := f[role]
	if !ok {
		return 0, fmt.Errorf("%s: %w", role, tufnano.ErrNotFound)
	}
	if len(data) > len(dst) {
		return 0, fmt.Errorf("%s: %w", role, tufnano.ErrTooLarge)
	}
	return copy(dst, data), nil
}

func (f bundleFlash) Save(role string, data []byte) error {
	f[role] = bytes.Clone(data)
	return nil
}

func openBundleFile(t *testing.T, path string) *bundle.Bundle {
	t.Helper()
	data := readFile(t, path)
	b, err := bundle.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("bundle.Open(%s): %v", path, err)
	}
	return b
}

// deviceRefresh runs a device's TUF client, provisioned with root, over
// the bundle at now.
func deviceRefresh(t *testing.T, root []byte, b *bundle.Bundle, now time.Time) (*tufnano.Client, error) {
	t.Helper()
	flash := bundleFlash{tufnano.RoleRoot: root}
	client, err := tufnano.New(tufnano.DefaultLimits(), b, flash)
	if err != nil {
		t.Fatalf("trusting 1.root.json: %v", err)
	}
	return client, client.Refresh(now)
}

// treeState describes every file under dir: name, mode, size, time and
// content hash.
func treeState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if st.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			sum = hex.EncodeToString(h[:])
		}
		fmt.Fprintf(&b, "%s %v %d %d %s\n", path, st.Mode(), st.Size(), st.ModTime().UnixNano(), sum)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestBundleCreateFromGateway(t *testing.T) {
	gw := newBundleGateway(t)
	gw.upload(t, "board", 1000, "main")
	gw.upload(t, "board", 1001, "main")
	gw.upload(t, "other", 5, "main")
	gw.upload(t, "board", 2000, "devel")
	out := filepath.Join(t.TempDir(), "main.bundle")
	now := bundleEpoch.Add(time.Hour).Format(time.RFC3339)

	// The gateway is still open (its store locked): create reads the
	// repository and firmware directly, and picks the highest version.
	got := mustCLI(t, "bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "board", "-o", out, "--now", now)
	for _, want := range []string{"ci repository, tag main, roots 1..1, target board-v1001", "devices refuse it once timestamp.json expires, at 2026-11-02T12:00:00Z"} {
		if !strings.Contains(got, want) {
			t.Errorf("create printed %q, want %q", got, want)
		}
	}

	// A device provisioned with the gateway's 1.root.json refreshes from
	// the bundle alone, selects board-v1001, and the carried firmware is
	// what targets.json says.
	root := gw.rootOfTrust(t)
	b := openBundleFile(t, out)
	client, err := deviceRefresh(t, root, b, gw.clock.Now())
	if err != nil {
		t.Fatalf("refresh from the bundle: %v (kind %s)", err, tufnano.KindOf(err))
	}
	sel, _, err := agent.SelectTarget(client.TargetsMetadata(), "board", "main", false)
	if err != nil || sel.Version != 1001 {
		t.Fatalf("device selects %+v, %v; want version 1001", sel, err)
	}
	info, err := client.Target("board-v1001")
	if err != nil {
		t.Fatal(err)
	}
	fw, n, err := b.Firmware(sel.SHA256)
	if err != nil {
		t.Fatalf("Firmware: %v", err)
	}
	img, err := io.ReadAll(io.NewSectionReader(fw, 0, n))
	if err != nil {
		t.Fatal(err)
	}
	if err := tufnano.VerifyTarget(info, img); err != nil || n != info.Length || sha256.Sum256(img) != sel.SHA256 {
		t.Errorf("carried firmware: %d bytes (targets says %d), verify: %v", n, info.Length, err)
	}
	if !bytes.Equal(img, gw.images["board-v1001"]) {
		t.Error("carried firmware is not the uploaded image")
	}
	if _, _, err := b.Firmware(sha256.Sum256(gw.images["board-v1000"])); !errors.Is(err, tufnano.ErrNotFound) {
		t.Errorf("board-v1000's firmware: %v, want not carried", err)
	}

	// Two days later the timestamp has expired: the device refuses the
	// bundle as a frozen repository.
	if _, err := deviceRefresh(t, root, b, gw.clock.Now().Add(48*time.Hour)); !errors.Is(err, tufnano.ErrFreeze) && !errors.Is(err, tufnano.ErrExpired) {
		t.Errorf("refresh two days later: %v, want freeze", err)
	}

	// With the gateway closed: create changes nothing in the data
	// directory, and the same inputs give the same bytes.
	gw.close()
	before := treeState(t, gw.dir)
	again := filepath.Join(t.TempDir(), "again.bundle")
	mustCLI(t, "bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "board", "-o", again, "--now", now)
	if !bytes.Equal(readFile(t, again), readFile(t, out)) {
		t.Error("the same data directory and --now gave another bundle")
	}
	v1000 := filepath.Join(t.TempDir(), "v1000.bundle")
	mustCLI(t, "bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "board", "--version", "1000", "-o", v1000, "--now", now)
	if _, _, err := openBundleFile(t, v1000).Firmware(sha256.Sum256(gw.images["board-v1000"])); err != nil {
		t.Errorf("--version 1000 bundle: %v", err)
	}
	mustCLI(t, "bundle", "info", out)
	if after := treeState(t, gw.dir); after != before {
		t.Errorf("bundle create changed the data directory:\nbefore\n%s\nafter\n%s", before, after)
	}

	// info: the manifest, the members, the targets and which are carried.
	text := mustCLI(t, "bundle", "info", out)
	for _, want := range []string{
		"repository ci, tag main, created 2026-11-01T13:00:00Z",
		"metadata/1.root.json", "metadata/timestamp.json", "firmware/" + hex.EncodeToString(sel.SHA256[:]) + ".bin",
		"board-v1001", "carried", "not carried", "other-v5",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("info does not show %q:\n%s", want, text)
		}
	}
	var js bundleInfo
	if err := json.Unmarshal([]byte(mustCLI(t, "bundle", "info", "--json", out)), &js); err != nil {
		t.Fatal(err)
	}
	if js.Repository != "ci" || js.Tag != "main" || len(js.Members) != 5 || len(js.Targets) != 3 {
		t.Errorf("info --json: %+v", js)
	}
	for _, tg := range js.Targets {
		if tg.Carried != (tg.Name == "board-v1001") {
			t.Errorf("info --json: %s carried = %v", tg.Name, tg.Carried)
		}
	}
	for _, m := range js.Members {
		if strings.HasPrefix(m.Name, "metadata/") && (m.Version == 0 || m.Expires == nil) {
			t.Errorf("info --json: %s has no version or expiry", m.Name)
		}
	}
}

// TestBundleTamperedTargets: a bundle whose targets.json was altered (here
// a digit of a hash, so the length stays) is still a well-formed container,
// and the device's TUF client refuses it.
func TestBundleTamperedTargets(t *testing.T) {
	gw := newBundleGateway(t)
	gw.upload(t, "board", 1001, "main")
	gw.close()
	out := filepath.Join(t.TempDir(), "b.bundle")
	mustCLI(t, "bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "board", "-o", out, "--now", bundleEpoch.Format(time.RFC3339))
	b := openBundleFile(t, out)
	m := b.Manifest()
	c := bundle.Contents{Repository: m.Repository, Tag: m.Tag, Created: m.Created}
	buf := make([]byte, 64<<10)
	for _, mem := range m.Members {
		if name, ok := strings.CutPrefix(mem.Name, "metadata/"); ok {
			n, err := b.Fetch(name, buf)
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Clone(buf[:n])
			if name == "targets.json" {
				i := bytes.Index(data, []byte(`"sha256":"`)) + len(`"sha256":"`)
				data[i] ^= 1 // '0'<->'1', 'a'<->'`' ... still one byte
			}
			c.Metadata = append(c.Metadata, bundle.File{Name: name, Data: data})
		}
	}
	c.Firmware = [][]byte{gw.images["board-v1001"]}
	tampered := filepath.Join(t.TempDir(), "tampered.bundle")
	var w bytes.Buffer
	if err := bundle.Create(&w, c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tampered, w.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "bundle", "info", tampered) // the container is fine
	_, err := deviceRefresh(t, gw.rootOfTrust(t), openBundleFile(t, tampered), gw.clock.Now())
	if k := tufnano.KindOf(err); k != tufnano.KindHash && k != tufnano.KindBadSignature {
		t.Fatalf("refresh of a tampered bundle: %v (kind %s), want hash or bad-signature", err, k)
	}
}

func TestBundleCLIRefusals(t *testing.T) {
	gw := newBundleGateway(t)
	gw.upload(t, "board", 1001, "main")
	gw.close()
	dir := t.TempDir()
	out := filepath.Join(dir, "b.bundle")
	create := func(extra ...string) []string {
		return append([]string{"bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "board", "-o", out}, extra...)
	}
	empty := t.TempDir()
	for _, tt := range []struct {
		code int
		want string
		args []string
	}{
		{2, "--data DIR is required", []string{"bundle", "create", "--tag", "main", "--hwid", "board", "-o", out}},
		{2, "--tag T is required", []string{"bundle", "create", "--data", gw.dir, "--hwid", "board", "-o", out}},
		{2, "--hwid H is required", []string{"bundle", "create", "--data", gw.dir, "--tag", "main", "-o", out}},
		{2, "-o FILE is required", []string{"bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "board"}},
		{2, `--repo "staging": ci or production`, create("--repo", "staging")},
		{2, "--root-from 0", create("--root-from", "0")},
		{2, "the newest root is version 1", create("--root-from", "2")},
		{2, `--version "01"`, create("--version", "01")},
		{2, "--now", create("--now", "yesterday")},
		{2, "--tag", []string{"bundle", "create", "--data", gw.dir, "--tag", "a/b", "--hwid", "board", "-o", out}},
		{2, "is not a gateway data directory", []string{"bundle", "create", "--data", empty, "--tag", "main", "--hwid", "board", "-o", out}},
		{2, `tag "qa" has no view in the ci repository (its tags: main)`, []string{"bundle", "create", "--data", gw.dir, "--tag", "qa", "--hwid", "board", "-o", out}},
		{2, "no target board-v7 in tag main of the ci repository (it lists: board-v1001)", create("--version", "7")},
		{2, "no target for hardware id nrf52 in tag main", []string{"bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "nrf52", "-o", out}},
		{2, "in the production repository", create("--repo", "production")},
		{2, "no such file", []string{"bundle", "info", filepath.Join(dir, "missing")}},
		{2, "accepts 1 arg", []string{"bundle", "info"}},
	} {
		wantRefusal(t, tt.code, tt.want, tt.args...)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("a wrong --data got files created in it: %v", entries)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused create left %s behind", out)
	}

	// A bundle made after the timestamp expired is written, with a warning.
	late := filepath.Join(dir, "late.bundle")
	code, _, stderr := runCLI(t, "bundle", "create", "--data", gw.dir, "--tag", "main", "--hwid", "board", "-o", late,
		"--now", bundleEpoch.Add(48*time.Hour).Format(time.RFC3339))
	if code != 0 || !strings.HasPrefix(stderr, "fleetsim: warning: timestamp.json expired at 2026-11-02T12:00:00Z") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("create after the timestamp's expiry: exit %d, stderr %q", code, stderr)
	}

	// An existing file is replaced only with --force.
	if err := os.WriteFile(out, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, 1, "exists; give --force to replace it", create()...)
	if string(readFile(t, out)) != "keep" {
		t.Error("create without --force replaced the file")
	}
	mustCLI(t, create("--force")...)
	openBundleFile(t, out)

	// info refuses what is not a bundle, with the reader's reason.
	good := readFile(t, out)
	for name, data := range map[string][]byte{
		"truncated": good[:len(good)-700],
		"random":    bytes.Repeat([]byte{0x5a, 0xa5, 0x13}, 700),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"truncated": "is not a valid bundle: the file ends", "random": "is not a valid bundle: header at offset 0"}[name]
		wantRefusal(t, 2, want, "bundle", "info", path)
	}

	// A data directory that lost the target's firmware file.
	sum := sha256.Sum256(gw.images["board-v1001"])
	h := hex.EncodeToString(sum[:])
	if err := os.Remove(filepath.Join(gw.dir, "firmware", h[:2], h[2:]+".bin")); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, 1, "has no firmware file for target board-v1001", create("--force")...)
}
