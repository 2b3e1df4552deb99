package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway/tufrepo"
)

func repoRFC3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// repoRootVersionIn reads the version of a root.json file.
func repoRootVersionIn(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatal(err)
	}
	return md.Signed.Version
}

// TestTUFRepoEndToEnd manages a repository with an offline root through the
// CLI, serves an export with a plain static file server on loopback, and
// has the device's TUF client (fleetsim tuf-client) refresh and download
// from it: across a targets key rotation, a root rotation, and a timestamp
// left to expire.
func TestTUFRepoEndToEnd(t *testing.T) {
	// The client reads the wall clock, so the repository signs at it too.
	now := time.Now().UTC()
	dir := t.TempDir()
	repo, images, www := filepath.Join(dir, "repo"), filepath.Join(dir, "images"), filepath.Join(dir, "www")
	rootKey := filepath.Join(dir, "root.pem")
	r := func(args ...string) []string {
		return append([]string{"tuf-repo"}, append(args, "--repo", repo, "--now", repoRFC3339(now))...)
	}

	mustCLI(t, r("init", "--offline-root", "--root-key-out", rootKey, "--tag", "devel", "--tag", "prod")...)
	imgA := bytes.Repeat([]byte("devel firmware 1001 "), 300)
	imgB := bytes.Repeat([]byte("prod firmware 7 "), 200)
	for name, data := range map[string][]byte{"a.bin": imgA, "b.bin": imgB} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := mustCLI(t, r("add-target", "--hwid", "MIMXRT1060-EVK", "--version", "1001", "--tag", "devel", "--images", images, filepath.Join(dir, "a.bin"))...)
	if !strings.HasPrefix(out, "MIMXRT1060-EVK-v1001 6000 ") {
		t.Errorf("add-target printed %q", out)
	}
	mustCLI(t, r("add-target", "--hwid", "MIMXRT1060-EVK", "--version", "7", "--tag", "prod", "--images", images, filepath.Join(dir, "b.bin"))...)
	mustCLI(t, r("export", "--tag", "devel", "--images", images, "--out", www)...)

	// Exactly the files a devel device fetches: prod's image is not there.
	var got []string
	filepath.WalkDir(www, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(www, p)
			got = append(got, rel)
		}
		return nil
	})
	want := []string{"1.root.json", "snapshot.json", filepath.Join("targets", "MIMXRT1060-EVK-v1001"), "targets.json", "timestamp.json"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("export wrote %v, want %v", got, want)
	}

	srv := httptest.NewServer(http.FileServer(http.Dir(www)))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("server not on loopback: %s", srv.URL)
	}
	md, td := filepath.Join(dir, "device", "metadata"), filepath.Join(dir, "device", "targets")
	client := []string{"tuf-client", "--metadata-dir", md, "--metadata-url", srv.URL + "/"}
	download := func(name string) []string {
		return append(client, "--target-name", name, "--target-base-url", srv.URL+"/targets/", "--target-dir", td, "download")
	}
	// The device is provisioned with 1.root.json as the export serves it.
	mustCLI(t, "tuf-client", "--metadata-dir", md, "init", filepath.Join(www, "1.root.json"))
	mustCLI(t, append(client, "refresh")...)
	mustCLI(t, download("MIMXRT1060-EVK-v1001")...)
	if data, err := os.ReadFile(filepath.Join(td, "MIMXRT1060-EVK-v1001")); err != nil || !bytes.Equal(data, imgA) {
		t.Fatalf("downloaded image differs from the published one (%v)", err)
	}
	// prod's target is not in devel's view.
	if code, _, errs := runCLI(t, download("MIMXRT1060-EVK-v7")...); code != 1 {
		t.Errorf("downloading another tag's target: exit %d (%s), want 1", code, errs)
	}

	// Rotating the targets key signs root v2, which needs the offline key.
	wantRefusal(t, 1, "--root-key", r("rotate", "--role", "targets")...)
	mustCLI(t, r("rotate", "--role", "targets", "--root-key", rootKey)...)
	imgC := bytes.Repeat([]byte("devel firmware 1002 "), 310)
	if err := os.WriteFile(filepath.Join(dir, "c.bin"), imgC, 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, r("add-target", "--hwid", "MIMXRT1060-EVK", "--version", "1002", "--tag", "devel", "--images", images, filepath.Join(dir, "c.bin"))...)
	mustCLI(t, r("export", "--tag", "devel", "--images", images, "--out", www)...)
	mustCLI(t, append(client, "refresh")...)
	if v := repoRootVersionIn(t, filepath.Join(md, "root.json")); v != 2 {
		t.Errorf("after the targets rotation the client trusts root v%d, want 2", v)
	}
	// 1002 is signed only by the new targets key: the client accepts it.
	mustCLI(t, download("MIMXRT1060-EVK-v1002")...)
	if data, err := os.ReadFile(filepath.Join(td, "MIMXRT1060-EVK-v1002")); err != nil || !bytes.Equal(data, imgC) {
		t.Fatalf("image signed after the rotation differs (%v)", err)
	}

	// A root rotation: v3 signed by the old and the new root key; the old
	// key can sign nothing afterwards.
	newRoot := filepath.Join(dir, "root2.pem")
	mustCLI(t, r("rotate", "--role", "root", "--root-key", rootKey, "--key-out", newRoot)...)
	mustCLI(t, r("export", "--tag", "devel", "--images", images, "--out", www)...)
	mustCLI(t, append(client, "refresh")...)
	if v := repoRootVersionIn(t, filepath.Join(md, "root.json")); v != 3 {
		t.Errorf("after the root rotation the client trusts root v%d, want 3", v)
	}
	wantRefusal(t, 1, "not a root key", r("rotate", "--role", "snapshot", "--root-key", rootKey)...)
	mustCLI(t, r("rotate", "--role", "snapshot", "--root-key", newRoot)...)
	mustCLI(t, r("export", "--tag", "devel", "--images", images, "--out", www)...)
	mustCLI(t, append(client, "refresh")...)

	// A timestamp signed two days ago has expired a day ago: the export is
	// served, and the client refuses it as a freeze attack.
	stale := append([]string{"tuf-repo"}, "resign", "--repo", repo, "--now", repoRFC3339(now.Add(-48*time.Hour)))
	mustCLI(t, stale...)
	mustCLI(t, r("export", "--tag", "devel", "--images", images, "--out", www)...)
	code, _, errs := runCLI(t, append(client, "refresh")...)
	if code != 1 || !strings.Contains(errs, "expired") || !strings.Contains(errs, "timestamp") {
		t.Errorf("refresh of an expired timestamp: exit %d, stderr %q; want exit 1 naming the expired timestamp", code, errs)
	}
	// Renewal repairs it.
	mustCLI(t, r("renew")...)
	mustCLI(t, r("export", "--tag", "devel", "--images", images, "--out", www)...)
	mustCLI(t, append(client, "refresh")...)
}

// TestTUFRepoErrors checks each kind of bad input and refused operation:
// exit 2 for usage, 1 for what the repository refuses, one line on stderr.
func TestTUFRepoErrors(t *testing.T) {
	now := "2026-11-21T09:00:00Z"
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	rootKey := filepath.Join(dir, "root.pem")
	img := filepath.Join(dir, "app.bin")
	if err := os.WriteFile(img, []byte("firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "tuf-repo", "init", "--repo", repo, "--now", now, "--offline-root", "--root-key-out", rootKey, "--tag", "devel")
	mustCLI(t, "tuf-repo", "add-target", "--repo", repo, "--now", now, "--hwid", "EVK", "--version", "1", "--tag", "devel", img)
	notKey := filepath.Join(dir, "notkey.pem")
	os.WriteFile(notKey, []byte("not a key"), 0o600)
	foreign := filepath.Join(dir, "foreign")
	os.MkdirAll(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o644)
	otherKey := filepath.Join(dir, "other.pem")
	mustCLI(t, "tuf-repo", "init", "--repo", filepath.Join(dir, "other"), "--offline-root", "--root-key-out", otherKey)

	for _, tc := range []struct {
		name string
		code int
		want string
		args []string
	}{
		{"missing repo dir", 2, "holds no TUF repository", []string{"show", "--repo", filepath.Join(dir, "absent")}},
		{"no --repo", 2, "--repo DIR is required", []string{"show"}},
		{"unknown role", 2, `unknown role "admin"`, []string{"rotate", "--repo", repo, "--role", "admin", "--root-key", rootKey}},
		{"duplicate target", 1, `duplicate target "EVK-v1"`, []string{"add-target", "--repo", repo, "--hwid", "EVK", "--version", "1", "--tag", "devel", img}},
		{"bad version", 2, `--version "1.0.0"`, []string{"add-target", "--repo", repo, "--hwid", "EVK", "--version", "1.0.0", "--tag", "devel", img}},
		{"zero version", 2, `--version "0"`, []string{"add-target", "--repo", repo, "--hwid", "EVK", "--version", "0", "--tag", "devel", img}},
		{"bad hwid", 2, "hardware ID", []string{"add-target", "--repo", repo, "--hwid", "a/b", "--version", "2", "--tag", "devel", img}},
		{"bad tag", 2, "not a valid tag", []string{"add-target", "--repo", repo, "--hwid", "EVK", "--version", "2", "--tag", "x y", img}},
		{"missing image", 2, "reading image", []string{"add-target", "--repo", repo, "--hwid", "EVK", "--version", "2", "--tag", "devel", filepath.Join(dir, "nope.bin")}},
		{"missing flags", 2, "--hwid, --version", []string{"add-target", "--repo", repo, img}},
		{"missing offline root key", 1, "root must be signed", []string{"rotate", "--repo", repo, "--role", "targets"}},
		{"wrong root key", 1, "not a root key", []string{"rotate", "--repo", repo, "--role", "targets", "--root-key", otherKey}},
		{"unreadable root key", 2, "--root-key", []string{"rotate", "--repo", repo, "--role", "targets", "--root-key", notKey}},
		{"absent root key", 2, "--root-key", []string{"rotate", "--repo", repo, "--role", "targets", "--root-key", filepath.Join(dir, "absent.pem")}},
		{"root rotation without key-out", 2, "--key-out", []string{"rotate", "--repo", repo, "--role", "root", "--root-key", rootKey}},
		{"threshold above keys", 2, "--threshold 2 with 1 keys", []string{"rotate", "--repo", repo, "--role", "targets", "--keys", "1", "--threshold", "2", "--root-key", rootKey}},
		{"bad key type", 2, "--key-type", []string{"init", "--repo", filepath.Join(dir, "r2"), "--key-type", "dsa"}},
		{"offline root without file", 2, "--root-key-out", []string{"init", "--repo", filepath.Join(dir, "r3"), "--offline-root"}},
		{"init twice", 1, "already holds", []string{"init", "--repo", repo}},
		{"root key file exists", 1, "never overwritten", []string{"init", "--repo", filepath.Join(dir, "r4"), "--offline-root", "--root-key-out", rootKey}},
		{"bad --now", 2, "--now", []string{"show", "--repo", repo, "--now", "yesterday"}},
		{"bad expiry", 2, "--timestamp-expiry", []string{"init", "--repo", filepath.Join(dir, "r5"), "--timestamp-expiry", "soon"}},
		{"unknown target", 1, `unknown target "EVK-v9"`, []string{"remove-target", "--repo", repo, "EVK-v9"}},
		{"unknown tag resign", 1, `unknown tag "prod"`, []string{"resign", "--repo", repo, "--tag", "prod"}},
		{"unknown tag export", 1, `unknown tag "prod"`, []string{"export", "--repo", repo, "--tag", "prod", "--out", filepath.Join(dir, "w")}},
		{"unknown tag show", 1, `unknown tag "prod"`, []string{"show", "--repo", repo, "--tag", "prod"}},
		{"export needs flags", 2, "--tag and --out", []string{"export", "--repo", repo}},
		{"export image missing", 1, "no image for target EVK-v1", []string{"export", "--repo", repo, "--tag", "devel", "--images", foreign, "--out", filepath.Join(dir, "w")}},
		{"export into a foreign dir", 1, "notes.txt", []string{"export", "--repo", repo, "--tag", "devel", "--out", foreign}},
		{"bad tag name", 2, `tag "a b"`, []string{"add-tag", "--repo", repo, "a b"}},
		{"unknown flag", 2, "unknown flag", []string{"show", "--repo", repo, "--colour"}},
		{"extra argument", 2, "unknown command", []string{"show", "--repo", repo, "extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"tuf-repo"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--now") {
				args = append(args, "--now", now)
			}
			wantRefusal(t, tc.code, tc.want, args...)
		})
	}
	// Refused operations changed nothing: still one target, root v1, and
	// no key file left behind by the failed root rotation or init.
	rep := repoShowJSON(t, repo, now, "")
	if rep.Root.Version != 1 || len(rep.Tags) != 1 || len(rep.Tags[0].Targets) != 1 {
		t.Errorf("refused operations changed the repository: %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "r3")); err == nil {
		t.Errorf("a refused init created its directory")
	}
}

func repoShowJSON(t *testing.T, repo, now, tag string) repoReport {
	t.Helper()
	args := []string{"tuf-repo", "show", "--repo", repo, "--now", now, "--json"}
	if tag != "" {
		args = append(args, "--tag", tag)
	}
	out := mustCLI(t, args...)
	var rep repoReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	return rep
}

// TestTUFRepoInitOfflineRoot checks that an offline root key is written to
// its file only, and that a held root key makes root renewable in place.
func TestTUFRepoInitOfflineRoot(t *testing.T) {
	dir := t.TempDir()
	repo, rootKey := filepath.Join(dir, "repo"), filepath.Join(dir, "keys", "root.pem")
	os.MkdirAll(filepath.Dir(rootKey), 0o700)
	out := mustCLI(t, "tuf-repo", "init", "--repo", repo, "--now", "2026-11-21T09:00:00Z", "--offline-root", "--root-key-out", rootKey, "--key-type", "ecdsa-p256")
	if !strings.Contains(out, "offline in "+rootKey) || !strings.Contains(out, "ecdsa-p256") {
		t.Errorf("init printed %q", out)
	}
	st, err := os.Stat(rootKey)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("root key file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	pem, _ := os.ReadFile(rootKey)
	k, err := tufrepo.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	rep := repoShowJSON(t, repo, "2026-11-21T09:00:00Z", "")
	if rep.Root.Roles[0].Role != "root" || rep.Root.Roles[0].Keys[0].ID != k.ID() {
		t.Errorf("root role %+v does not list the written key %s", rep.Root.Roles[0], k.ID())
	}
	for _, ro := range rep.Root.Roles {
		if held := ro.Keys[0].Held; held != (ro.Role != "root") {
			t.Errorf("show reports the %s key as held=%t", ro.Role, held)
		}
	}
	if text := mustCLI(t, "tuf-repo", "show", "--repo", repo, "--now", "2026-11-21T09:00:00Z"); !strings.Contains(text, "ecdsa-p256 "+k.ID()+" offline") {
		t.Errorf("show does not mark the root key offline:\n%s", text)
	}
	// Nothing under the repository holds the private key.
	lines := strings.Split(strings.TrimSpace(string(pem)), "\n")
	body := strings.Join(lines[1:len(lines)-1], "\n")
	filepath.WalkDir(repo, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(body)) {
				t.Errorf("%s holds the offline root key", p)
			}
		}
		return nil
	})

	// Due for renewal 200 days on (less than half of 365 days left):
	// without the key renew warns and leaves root; with it root v2.
	later := "2027-06-09T09:00:00Z"
	code, _, errs := runCLI(t, "tuf-repo", "renew", "--repo", repo, "--now", later)
	if code != 0 || !strings.Contains(errs, "warning: 1.root.json (root)") || !strings.Contains(errs, "--root-key") {
		t.Errorf("renew without the root key: exit %d, stderr %q", code, errs)
	}
	if rep := repoShowJSON(t, repo, later, ""); rep.Root.Version != 1 {
		t.Errorf("root renewed without its key: v%d", rep.Root.Version)
	}
	out = mustCLI(t, "tuf-repo", "renew", "--repo", repo, "--now", later, "--root-key", rootKey)
	if !strings.Contains(out, "root: v1 -> v2") {
		t.Errorf("renew with the root key printed %q", out)
	}
	if out := mustCLI(t, "tuf-repo", "renew", "--repo", repo, "--now", later); out != "nothing due\n" {
		t.Errorf("second renew printed %q, want nothing due", out)
	}

	// A repository that holds its root key renews root by itself.
	held := filepath.Join(dir, "held")
	mustCLI(t, "tuf-repo", "init", "--repo", held, "--now", "2026-11-21T09:00:00Z")
	if out := mustCLI(t, "tuf-repo", "renew", "--repo", held, "--now", later); !strings.Contains(out, "root: v1 -> v2") {
		t.Errorf("renew of a held root printed %q", out)
	}
	// And rotates root without --root-key, writing the new key out.
	newKey := filepath.Join(dir, "root-new.pem")
	out = mustCLI(t, "tuf-repo", "rotate", "--repo", held, "--now", later, "--role", "root", "--key-out", newKey)
	if !strings.Contains(out, "root v3: root threshold 1") || !strings.Contains(out, "written to "+newKey) {
		t.Errorf("rotate root printed %q", out)
	}
}

// TestTUFRepoShow checks the report: versions, keys, sizes against the
// device buffer, targets per tag, and the warnings, in text and JSON.
func TestTUFRepoShow(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	now := "2026-11-21T09:00:00Z"
	// A 1700-byte device buffer: root (1568 bytes) fits, eight targets
	// make targets.json too large.
	mustCLI(t, "tuf-repo", "init", "--repo", repo, "--now", now, "--device-buffer", "1700", "--tag", "devel", "--tag", "empty")
	for _, v := range []string{"1", "2", "3", "4", "5", "6", "7", "8"} {
		img := filepath.Join(dir, v+".bin")
		os.WriteFile(img, []byte("firmware "+v), 0o644)
		mustCLI(t, "tuf-repo", "add-target", "--repo", repo, "--now", now, "--hwid", "nrf52840dk", "--version", v, "--tag", "devel", img)
	}
	rep := repoShowJSON(t, repo, now, "")
	if rep.DeviceBuffer != 1700 || rep.Root.Version != 1 || len(rep.Root.Roles) != 4 || len(rep.Tags) != 2 {
		t.Fatalf("report %+v", rep)
	}
	devel := rep.Tags[0]
	if devel.Tag != "devel" || len(devel.Targets) != 8 || devel.Targets[0].Name != "nrf52840dk-v1" || devel.Targets[0].Length != 10 {
		t.Errorf("devel view %+v", devel)
	}
	if devel.Files[2].Name != "targets.json" || devel.Files[2].Version != 9 || devel.Files[2].Size <= 1700 {
		t.Errorf("devel targets.json %+v: want version 9 and over 1700 bytes", devel.Files[2])
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Kind != "buffer-exceeded" || rep.Warnings[0].Tag != "devel" {
		t.Errorf("warnings %+v, want devel's targets.json over the buffer", rep.Warnings)
	}
	text := mustCLI(t, "tuf-repo", "show", "--repo", repo, "--now", now)
	for _, want := range []string{"root v1", "targets (threshold 1)", "tag empty", "no targets", "TOO LARGE", "1 WARNINGS", "more than the 1700-byte device buffer", "target nrf52840dk-v8"} {
		if !strings.Contains(text, want) {
			t.Errorf("show output lacks %q:\n%s", want, text)
		}
	}
	// Two days on, every timestamp is past half its period.
	rep = repoShowJSON(t, repo, "2026-11-23T09:00:00Z", "empty")
	if len(rep.Tags) != 1 || rep.Tags[0].Tag != "empty" {
		t.Errorf("--tag empty showed %+v", rep.Tags)
	}
	if len(rep.Warnings) != 1 || rep.Warnings[0].Kind != "expiring" || rep.Warnings[0].File != "timestamp.json" {
		t.Errorf("warnings two days on: %+v", rep.Warnings)
	}
	// The other commands' output.
	if out := mustCLI(t, "tuf-repo", "resign", "--repo", repo, "--now", now, "--tag", "empty"); !strings.HasPrefix(out, "tag empty: timestamp v2 ") {
		t.Errorf("resign printed %q", out)
	}
	if out := mustCLI(t, "tuf-repo", "resign", "--repo", repo, "--now", now, "--snapshot"); !strings.Contains(out, "tag devel: timestamp v10 ") || !strings.Contains(out, "snapshot v10 ") {
		t.Errorf("resign --snapshot printed %q", out)
	}
	if out := mustCLI(t, "tuf-repo", "add-tag", "--repo", repo, "--now", now, "canary", "empty"); out != "added tag canary\ntag empty exists\n" {
		t.Errorf("add-tag printed %q", out)
	}
	if out := mustCLI(t, "tuf-repo", "remove-target", "--repo", repo, "--now", now, "nrf52840dk-v1", "nrf52840dk-v2"); out != "removed nrf52840dk-v1\nremoved nrf52840dk-v2\n" {
		t.Errorf("remove-target printed %q", out)
	}
	if rep := repoShowJSON(t, repo, now, "devel"); len(rep.Tags[0].Targets) != 6 {
		t.Errorf("after remove-target devel lists %d targets", len(rep.Tags[0].Targets))
	}
}

// TestTUFRepoExport checks export's files: images found by content, pruning
// on re-export, and hash-prefixed names under consistent snapshots.
func TestTUFRepoExport(t *testing.T) {
	dir := t.TempDir()
	now := "2026-11-21T09:00:00Z"
	repo, build, www := filepath.Join(dir, "repo"), filepath.Join(dir, "build"), filepath.Join(dir, "www")
	mustCLI(t, "tuf-repo", "init", "--repo", repo, "--now", now, "--consistent-snapshot")
	os.MkdirAll(build, 0o755)
	// Images named as the build left them, not as targets.
	for v, body := range map[string]string{"1": "image one", "2": "image two"} {
		p := filepath.Join(build, "zephyr-"+v+".signed.bin")
		os.WriteFile(p, []byte(body), 0o644)
		mustCLI(t, "tuf-repo", "add-target", "--repo", repo, "--now", now, "--hwid", "EVK", "--version", v, "--tag", "devel", p)
	}
	// A same-named file with the wrong content is looked past.
	os.WriteFile(filepath.Join(build, "EVK-v1"), []byte("stale"), 0o644)
	out := mustCLI(t, "tuf-repo", "export", "--repo", repo, "--now", now, "--tag", "devel", "--images", build, "--out", www)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[len(lines)-1], "timestamp.json") {
		t.Errorf("timestamp.json is not written last: %q", out)
	}
	rep := repoShowJSON(t, repo, now, "devel")
	for _, tg := range rep.Tags[0].Targets {
		p := filepath.Join(www, "targets", tg.SHA256+"."+tg.Name)
		if _, err := os.Stat(p); err != nil {
			t.Errorf("consistent-snapshot image %s: %v", p, err)
		}
	}
	for _, name := range []string{"1.targets.json", "2.targets.json", "2.snapshot.json", "1.root.json"} {
		if _, err := os.Stat(filepath.Join(www, name)); err != nil {
			t.Errorf("versioned file %s not exported: %v", name, err)
		}
	}
	// A removed target disappears from a re-export, and so do versioned
	// files that fell out of the history (three versions per role).
	mustCLI(t, "tuf-repo", "remove-target", "--repo", repo, "--now", now, "EVK-v2")
	mustCLI(t, "tuf-repo", "resign", "--repo", repo, "--now", now, "--snapshot")
	mustCLI(t, "tuf-repo", "resign", "--repo", repo, "--now", now, "--snapshot")
	mustCLI(t, "tuf-repo", "export", "--repo", repo, "--now", now, "--tag", "devel", "--images", build, "--out", www)
	imgs, _ := os.ReadDir(filepath.Join(www, "targets"))
	if len(imgs) != 1 || !strings.HasSuffix(imgs[0].Name(), ".EVK-v1") {
		t.Errorf("after pruning the export holds %v", imgs)
	}
	for _, name := range []string{"1.snapshot.json", "2.snapshot.json"} {
		if _, err := os.Stat(filepath.Join(www, name)); err == nil {
			t.Errorf("%s, out of the history, was not pruned", name)
		}
	}
	if _, err := os.Stat(filepath.Join(www, "5.snapshot.json")); err != nil {
		t.Errorf("5.snapshot.json not exported: %v", err)
	}
	entries, _ := os.ReadDir(www)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	out = mustCLI(t, "tuf-repo", "export", "--repo", repo, "--now", now, "--tag", "devel", "--out", filepath.Join(dir, "meta"))
	if !strings.Contains(out, "serve the 1 target images separately") {
		t.Errorf("metadata-only export printed %q", out)
	}
}

// TestTUFRepoHelp checks that every subcommand has help with examples.
func TestTUFRepoHelp(t *testing.T) {
	for _, sub := range []string{"", "init", "add-target", "remove-target", "add-tag", "resign", "renew", "rotate", "show", "export"} {
		args := []string{"tuf-repo"}
		if sub != "" {
			args = append(args, sub)
		}
		code, out, _ := runCLI(t, append(args, "--help")...)
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "fleetsim tuf-repo "+sub) {
			t.Errorf("%s --help: exit %d, %q", sub, code, out)
		}
	}
}

// TestTUFRepoRotateHeldRoot checks that a repository holding its root key
// rotates root without --key-out and --root-key, keeps the new root key in
// its data directory, signs the next root with it, and that a device follows
// the chain.
func TestTUFRepoRotateHeldRoot(t *testing.T) {
	now := time.Now().UTC() // the device's TUF client reads the wall clock
	dir := t.TempDir()
	repo, www := filepath.Join(dir, "lab"), filepath.Join(dir, "www")
	r := func(args ...string) []string {
		return append([]string{"tuf-repo"}, append(args, "--repo", repo, "--now", repoRFC3339(now))...)
	}
	mustCLI(t, r("init", "--tag", "devel")...)
	mustCLI(t, r("export", "--tag", "devel", "--out", www)...)
	oldRoot := repoShowJSON(t, repo, repoRFC3339(now), "").Root.Roles[0].Keys[0]
	if !oldRoot.Held {
		t.Fatalf("init without --offline-root: root key %+v not held", oldRoot)
	}

	out := mustCLI(t, r("rotate", "--role", "root")...)
	rep := repoShowJSON(t, repo, repoRFC3339(now), "")
	newRoot := rep.Root.Roles[0].Keys[0]
	if rep.Root.Version != 2 || newRoot.ID == oldRoot.ID || !newRoot.Held {
		t.Fatalf("after rotate --role root: root v%d, root key %+v (was %s); want v2 and a new held key", rep.Root.Version, newRoot, oldRoot.ID)
	}
	if want := "root v2: root threshold 1, keys:\n  ed25519 " + newRoot.ID + " (held in " + repo + ")\n"; out != want {
		t.Errorf("rotate printed %q, want %q", out, want)
	}
	st, err := os.Stat(filepath.Join(repo, "keys", newRoot.ID+".pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new root key file in the repository: %v (mode %v), want mode 0600", err, st)
	}
	if _, err := os.Stat(filepath.Join(repo, "keys", oldRoot.ID+".pem")); err == nil {
		t.Errorf("the retired root key is still held")
	}

	// Root v3 is signed by the held new root key alone.
	mustCLI(t, r("rotate", "--role", "targets")...)
	mustCLI(t, r("export", "--tag", "devel", "--out", www)...)
	srv := httptest.NewServer(http.FileServer(http.Dir(www)))
	defer srv.Close()
	md := filepath.Join(dir, "device")
	mustCLI(t, "tuf-client", "--metadata-dir", md, "init", filepath.Join(www, "1.root.json"))
	mustCLI(t, "tuf-client", "--metadata-dir", md, "--metadata-url", srv.URL+"/", "refresh")
	if v := repoRootVersionIn(t, filepath.Join(md, "root.json")); v != 3 {
		t.Errorf("the device trusts root v%d, want 3", v)
	}
}

// TestTUFRepoCorrupt checks that a damaged data directory is refused with
// exit 1, naming the damaged file and what to do, and never a stack trace.
func TestTUFRepoCorrupt(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	now := "2026-11-21T09:00:00Z"
	mustCLI(t, "tuf-repo", "init", "--repo", repo, "--now", now, "--tag", "devel")
	if err := os.WriteFile(filepath.Join(repo, "manifest.json"), []byte(`{"format":1,"roots":["00"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, 1, "corrupt repository: 1.root.json: bad hash in manifest; restore the repository directory from a backup",
		"tuf-repo", "show", "--repo", repo, "--now", now)
}
