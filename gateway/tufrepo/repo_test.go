package tufrepo

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func newTestRepo(t *testing.T, cfg Config) (*Repo, Setup) {
	t.Helper()
	rnd := seeded(11)
	setup, err := GenerateSetup(KeyEd25519, rnd)
	if err != nil {
		t.Fatal(err)
	}
	r, ws, err := New(t0, cfg, setup)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 0 {
		t.Fatalf("warnings on a new repository: %v", ws)
	}
	return r, setup
}

func addTarget(t *testing.T, r *Repo, now time.Time, hwid, version string, tags ...string) string {
	t.Helper()
	tg := NewTarget(hwid, version, tags, image(hwid, version))
	if _, err := r.AddTarget(now, tg); err != nil {
		t.Fatalf("AddTarget %s: %v", tg.Name(), err)
	}
	return tg.Name()
}

func viewOf(t *testing.T, r *Repo, tag string) ViewInfo {
	t.Helper()
	v, err := r.View(tag)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTagViews(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	a := addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	b := addTarget(t, r, t0, "MIMXRT1060-EVK", "1001", "devel", "prod")
	c := addTarget(t, r, t0, "MIMXRT1170-EVK", "7", "prod")
	if got, want := r.Tags(), []string{"devel", "prod"}; !slices.Equal(got, want) {
		t.Fatalf("tags %v, want %v", got, want)
	}
	devel, prod := viewOf(t, r, "devel"), viewOf(t, r, "prod")
	if !slices.Equal(devel.Targets, []string{a, b}) || !slices.Equal(prod.Targets, []string{b, c}) {
		t.Fatalf("devel %v prod %v", devel.Targets, prod.Targets)
	}
	// Each view's targets.json lists exactly its targets.
	for tag, want := range map[string][]string{"devel": {a, b}, "prod": {b, c}} {
		f, err := r.Fetch(tag, "targets.json")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{a, b, c} {
			if got := strings.Contains(string(f.Data), `"`+name+`"`); got != slices.Contains(want, name) {
				t.Errorf("tag %s targets.json lists %s: %v", tag, name, got)
			}
		}
	}
	// devel took two publications, prod two: versions start at 1.
	if devel.TargetsVersion != 2 || devel.SnapshotVersion != 2 || devel.TimestampVersion != 2 {
		t.Errorf("devel versions %+v", devel)
	}
	// Adding a prod-only target leaves devel untouched.
	before, _ := r.Fetch("devel", "timestamp.json")
	addTarget(t, r, t0.Add(time.Minute), "MIMXRT1170-EVK", "8", "prod")
	after, _ := r.Fetch("devel", "timestamp.json")
	if before.SHA256 != after.SHA256 {
		t.Error("adding a prod target re-signed the devel view")
	}
	if v := viewOf(t, r, "prod"); v.TargetsVersion != 3 || v.TimestampVersion != 3 {
		t.Errorf("prod versions after add %+v", v)
	}
	// An explicitly added tag serves an empty, signed view.
	if _, err := r.AddTag(t0, "canary"); err != nil {
		t.Fatal(err)
	}
	if v := viewOf(t, r, "canary"); len(v.Targets) != 0 || v.TargetsVersion != 1 {
		t.Errorf("canary view %+v", v)
	}
	if ws, err := r.AddTag(t0, "canary"); err != nil || ws != nil || viewOf(t, r, "canary").TimestampVersion != 1 {
		t.Errorf("re-adding a tag changed it: %v %v", ws, err)
	}
}

func TestAddTargetErrors(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	good := NewTarget("MIMXRT1060-EVK", "1000", []string{"devel"}, []byte("fw"))
	if _, err := r.AddTarget(t0, good); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*Target)) Target {
		tg := good
		tg.HardwareIDs = slices.Clone(good.HardwareIDs)
		tg.Tags = slices.Clone(good.Tags)
		f(&tg)
		return tg
	}
	for _, c := range []struct {
		name  string
		tg    Target
		err   error
		field string
	}{
		{"duplicate", good, ErrDuplicateTarget, ""},
		{"version with v", mod(func(t *Target) { t.Version = "v1001" }), ErrBadTarget, "version"},
		{"semver", mod(func(t *Target) { t.Version = "1.0.0" }), ErrBadTarget, "version"},
		{"leading zero", mod(func(t *Target) { t.Version = "01001" }), ErrBadTarget, "version"},
		{"zero", mod(func(t *Target) { t.Version = "0" }), ErrBadTarget, "version"},
		{"over 32 bits", mod(func(t *Target) { t.Version = "4294967296" }), ErrBadTarget, "version"},
		{"empty version", mod(func(t *Target) { t.Version = "" }), ErrBadTarget, "version"},
		{"negative", mod(func(t *Target) { t.Version = "-1" }), ErrBadTarget, "version"},
		{"no hwid", mod(func(t *Target) { t.HardwareIDs = nil }), ErrBadTarget, "hardwareIds"},
		{"hwid with slash", mod(func(t *Target) { t.HardwareIDs = []string{"a/b"} }), ErrBadTarget, "hardwareIds"},
		{"hwid with newline", mod(func(t *Target) { t.HardwareIDs = []string{"a\nb"} }), ErrBadTarget, "hardwareIds"},
		{"duplicate hwid", mod(func(t *Target) { t.HardwareIDs = []string{"x", "x"} }), ErrBadTarget, "hardwareIds"},
		{"no tags", mod(func(t *Target) { t.Tags = nil }), ErrBadTarget, "tags"},
		{"tag dotdot", mod(func(t *Target) { t.Tags = []string{".."} }), ErrBadTarget, "tags"},
		{"tag with space", mod(func(t *Target) { t.Tags = []string{"de vel"} }), ErrBadTarget, "tags"},
		{"duplicate tag", mod(func(t *Target) { t.Tags = []string{"a", "a"} }), ErrBadTarget, "tags"},
		{"long tag", mod(func(t *Target) { t.Tags = []string{strings.Repeat("t", 65)} }), ErrBadTarget, "tags"},
		{"bad format", mod(func(t *Target) { t.Format = "binary" }), ErrBadTarget, "targetFormat"},
		{"empty image", mod(func(t *Target) { t.Length = 0; t.Version = "5" }), ErrBadTarget, "length"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := r.Fetch("devel", "timestamp.json")
			_, err := r.AddTarget(t0, c.tg)
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			var te *TargetError
			if !errors.As(err, &te) || te.Field != c.field {
				t.Fatalf("err %#v: want a *TargetError with field %q", err, c.field)
			}
			after, _ := r.Fetch("devel", "timestamp.json")
			if before.SHA256 != after.SHA256 || len(r.Targets()) != 1 {
				t.Fatal("a rejected target changed the repository")
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]uint32{"1": 1, "1000": 1000, "4294967295": 4294967295} {
		if got, err := ParseVersion(s); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0", "00", "01", "+1", "1e3", "1.0", " 1", "4294967296", "99999999999", "１"} {
		if _, err := ParseVersion(s); !errors.Is(err, ErrBadTarget) {
			t.Errorf("ParseVersion(%q) err %v, want ErrBadTarget", s, err)
		}
	}
}

func TestRemoveTargets(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	a := addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	b := addTarget(t, r, t0, "MIMXRT1060-EVK", "1001", "devel", "prod")
	c := addTarget(t, r, t0, "MIMXRT1170-EVK", "1", "qa")

	// All or nothing: one unknown name removes nothing.
	_, err := r.RemoveTargets(t0, a, "MIMXRT1060-EVK-v999")
	var te *TargetError
	if !errors.Is(err, ErrUnknownTarget) || !errors.As(err, &te) || te.Name != "MIMXRT1060-EVK-v999" {
		t.Fatalf("err %v, want ErrUnknownTarget naming the target", err)
	}
	if len(r.Targets()) != 3 {
		t.Fatal("failed prune removed targets")
	}
	qaBefore := viewOf(t, r, "qa")
	if _, err := r.RemoveTargets(t0.Add(time.Hour), a, b); err != nil {
		t.Fatal(err)
	}
	if got := r.Targets(); len(got) != 1 || got[0].Name() != c {
		t.Fatalf("targets after prune %v", got)
	}
	for _, tag := range []string{"devel", "prod"} {
		v := viewOf(t, r, tag)
		if len(v.Targets) != 0 {
			t.Errorf("%s still lists %v", tag, v.Targets)
		}
		if _, err := r.Fetch(tag, "targets.json"); err != nil {
			t.Errorf("emptied view %s no longer served: %v", tag, err)
		}
	}
	if viewOf(t, r, "qa").TimestampVersion != qaBefore.TimestampVersion {
		t.Error("pruning devel/prod targets re-signed qa")
	}
	if _, ok := r.Target(a); ok {
		t.Error("Target finds a pruned target")
	}
	// A pruned name can be added again (a rebuilt image).
	addTarget(t, r, t0.Add(2*time.Hour), "MIMXRT1060-EVK", "1000", "devel")
}

func TestFetchErrors(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	for _, c := range []struct {
		tag, name  string
		unknownTag bool
	}{
		{"devel", "2.root.json", false},
		{"devel", "0.root.json", false},
		{"devel", "01.root.json", false},
		{"devel", "root.json", false},
		{"devel", "1.targets.json", false}, // consistent snapshots are off
		{"devel", "../keys", false},
		{"devel", "", false},
		{"nosuchtag", "timestamp.json", true},
		{"", "targets.json", true},
	} {
		_, err := r.Fetch(c.tag, c.name)
		if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnknownTag) != c.unknownTag {
			t.Errorf("Fetch(%q, %q) err %v", c.tag, c.name, err)
		}
	}
	// The root chain is served whatever the tag.
	for _, tag := range []string{"devel", "nosuchtag", ""} {
		if f, err := r.Fetch(tag, "1.root.json"); err != nil || f.Name != "1.root.json" {
			t.Errorf("Fetch(%q, 1.root.json): %v", tag, err)
		}
	}
	if _, err := r.Root(2); !errors.Is(err, ErrNotFound) {
		t.Errorf("Root(2) err %v", err)
	}
	if _, err := r.Files("nosuchtag"); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("Files err %v", err)
	}
	if _, err := r.ResignTimestamp(t0, "nosuchtag"); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("ResignTimestamp err %v", err)
	}
	if _, err := r.BumpSnapshot(t0, "devel", "nosuchtag"); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("BumpSnapshot err %v", err)
	}
	if _, err := r.AddTag(t0, "a/b"); !errors.Is(err, ErrBadTarget) {
		t.Errorf("AddTag err %v", err)
	}
}

func TestResignAndBump(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1001", "prod")
	now := t0.Add(13 * time.Hour)
	if _, err := r.ResignTimestamp(now, "devel"); err != nil {
		t.Fatal(err)
	}
	v := viewOf(t, r, "devel")
	if v.TimestampVersion != 2 || v.SnapshotVersion != 1 || v.TargetsVersion != 1 {
		t.Errorf("after timestamp re-sign %+v", v)
	}
	if want := now.Add(DefaultTimestampExpiry); !v.TimestampExpires.Equal(want) {
		t.Errorf("timestamp expires %v, want %v", v.TimestampExpires, want)
	}
	if p := viewOf(t, r, "prod"); p.TimestampVersion != 1 {
		t.Errorf("re-signing devel touched prod: %+v", p)
	}
	if _, err := r.BumpSnapshot(now); err != nil {
		t.Fatal(err)
	}
	v, p := viewOf(t, r, "devel"), viewOf(t, r, "prod")
	if v.SnapshotVersion != 2 || v.TimestampVersion != 3 || v.TargetsVersion != 1 || p.SnapshotVersion != 2 || p.TimestampVersion != 2 {
		t.Errorf("after snapshot bump devel %+v prod %+v", v, p)
	}
}

func TestRenew(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	// Nothing is due right after signing.
	if ws, err := r.Renew(t0.Add(time.Hour)); err != nil || len(ws) != 0 {
		t.Fatalf("Renew: %v %v", ws, err)
	}
	if v := viewOf(t, r, "devel"); v.TimestampVersion != 1 {
		t.Fatalf("Renew re-signed a fresh timestamp: %+v", v)
	}
	if ws := r.Check(t0.Add(time.Hour)); len(ws) != 0 {
		t.Fatalf("Check on a fresh repository: %v", ws)
	}
	// 13 h later the one-day timestamp is past half its life.
	now := t0.Add(13 * time.Hour)
	ws := r.Check(now)
	if len(ws) != 1 || ws[0].Kind != WarnExpiring || ws[0].Role != RoleTimestamp || ws[0].Tag != "devel" {
		t.Fatalf("Check before renew: %v", ws)
	}
	if _, err := r.Renew(now); err != nil {
		t.Fatal(err)
	}
	v := viewOf(t, r, "devel")
	if v.TimestampVersion != 2 || v.SnapshotVersion != 1 || v.TargetsVersion != 1 {
		t.Errorf("after renew at 13 h: %+v", v)
	}
	// Four days on the week-long snapshot is due too.
	now = t0.Add(4 * 24 * time.Hour)
	if _, err := r.Renew(now); err != nil {
		t.Fatal(err)
	}
	if v := viewOf(t, r, "devel"); v.TimestampVersion != 3 || v.SnapshotVersion != 2 || v.TargetsVersion != 1 {
		t.Errorf("after renew at 4 d: %+v", v)
	}
	// After 200 days everything is, root included, and the repository
	// holds the root key here.
	now = t0.Add(200 * 24 * time.Hour)
	if _, err := r.Renew(now); err != nil {
		t.Fatal(err)
	}
	if v := viewOf(t, r, "devel"); v.TargetsVersion != 2 || v.TargetsExpires.Before(now) {
		t.Errorf("after renew at 200 d: %+v", v)
	}
	if r.RootVersion() != 2 {
		t.Errorf("root version %d after renewing a due root", r.RootVersion())
	}
	if ws := r.Check(now); len(ws) != 0 {
		t.Errorf("Check after renew: %v", ws)
	}
}

func TestOfflineRoot(t *testing.T) {
	rnd := seeded(5)
	setup, err := GenerateSetup(KeyEd25519, rnd)
	if err != nil {
		t.Fatal(err)
	}
	setup.OfflineRoot = true
	oldRoot := setup.Root.Keys[0]
	r, _, err := New(t0, Config{}, setup)
	if err != nil {
		t.Fatal(err)
	}
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	newRoot, _ := GenerateKey(KeyEd25519, rnd)

	// Without the old root key the rotation cannot be signed.
	_, err = r.RotateKeys(t0, RoleRoot, []*PrivateKey{newRoot}, 1)
	var ke *KeysError
	if !errors.Is(err, ErrMissingKeys) || !errors.As(err, &ke) || ke.Role != RoleRoot || ke.Have != 0 || ke.Need != 1 {
		t.Fatalf("rotation without the offline key: %v", err)
	}
	if r.RootVersion() != 1 {
		t.Fatal("failed rotation changed root")
	}
	// Nor can a new targets key be introduced.
	k, _ := GenerateKey(KeyEd25519, rnd)
	if _, err := r.RotateKeys(t0, RoleTargets, []*PrivateKey{k}, 1); !errors.Is(err, ErrMissingKeys) {
		t.Fatalf("targets rotation without root key: %v", err)
	}
	// Renew cannot extend root: it warns.
	now := t0.Add(200 * 24 * time.Hour)
	ws, err := r.Renew(now)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ws, func(w Warning) bool { return w.Kind == WarnExpiring && w.Role == RoleRoot }) {
		t.Fatalf("no root expiry warning: %v", ws)
	}
	// Given from outside, the key signs; the new root key is not kept.
	dev := newGoTUFDevice(t, r, "devel")
	if _, err := r.RotateKeys(now, RoleRoot, []*PrivateKey{newRoot}, 1, oldRoot); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ExtendRoot(now); !errors.Is(err, ErrMissingKeys) {
		t.Fatalf("ExtendRoot without keys: %v", err)
	}
	if _, err := r.ExtendRoot(now, newRoot); err != nil {
		t.Fatal(err)
	}
	if r.RootVersion() != 3 {
		t.Fatalf("root version %d", r.RootVersion())
	}
	if _, err := dev.update(r, now, nil, ""); err != nil {
		t.Fatalf("go-tuf after offline root rotation: %v", err)
	}
}

func TestThresholdRotation(t *testing.T) {
	rnd := seeded(9)
	var keys [6]*PrivateKey
	for i := range keys {
		keys[i], _ = GenerateKey(KeyEd25519, rnd)
	}
	setup, _ := GenerateSetup(KeyEd25519, rnd)
	setup.Root = RoleKeys{Keys: keys[:3], Threshold: 2}
	setup.OfflineRoot = true
	r, _, err := New(t0, Config{}, setup)
	if err != nil {
		t.Fatal(err)
	}
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	dev := newGoTUFDevice(t, r, "devel")
	if _, err := dev.update(r, t0, nil, ""); err != nil {
		t.Fatal(err)
	}
	newKeys := keys[3:]
	// One old key is below the old threshold of 2.
	_, err = r.RotateKeys(t0, RoleRoot, newKeys, 2, keys[0])
	var ke *KeysError
	if !errors.As(err, &ke) || ke.Have != 1 || ke.Need != 2 {
		t.Fatalf("rotation with 1 of 2 old keys: %v", err)
	}
	// Two old keys sign with the three new ones: 5 signatures.
	ws, err := r.RotateKeys(t0, RoleRoot, newKeys, 2, keys[0], keys[2])
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.Root(2)
	if f.Signatures != 5 {
		t.Errorf("2.root.json has %d signatures, want 5", f.Signatures)
	}
	if len(ws) != 1 || ws[0].Kind != WarnTooManySignatures || ws[0].File != "2.root.json" || ws[0].Size != 5 || ws[0].Limit != 2 {
		t.Errorf("warnings %v, want too many signatures on 2.root.json", ws)
	}
	if _, err := dev.update(r, t0, nil, ""); err != nil {
		t.Fatalf("go-tuf after 2-of-3 rotation: %v", err)
	}
	// Bad set-ups are refused.
	for _, c := range []struct {
		keys []*PrivateKey
		th   int
	}{{nil, 1}, {keys[:2], 3}, {keys[:2], -1}, {[]*PrivateKey{keys[0], keys[0]}, 1}, {[]*PrivateKey{nil}, 1}} {
		if _, err := r.RotateKeys(t0, RoleTargets, c.keys, c.th); !errors.Is(err, ErrBadKey) {
			t.Errorf("RotateKeys(%d keys, threshold %d) err %v", len(c.keys), c.th, err)
		}
	}
	if _, err := r.RotateKeys(t0, Role("mirror"), keys[:1], 1); !errors.Is(err, ErrBadConfig) {
		t.Errorf("unknown role err %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	rnd := seeded(2)
	good, _ := GenerateSetup(KeyEd25519, rnd)
	for name, c := range map[string]struct {
		cfg   Config
		setup func(*Setup)
		err   error
	}{
		"no root keys":       {Config{}, func(s *Setup) { s.Root.Keys = nil }, ErrBadKey},
		"threshold too high": {Config{}, func(s *Setup) { s.Targets.Threshold = 2 }, ErrBadKey},
		"negative expiry":    {Config{Expiry: Expiry{Timestamp: -time.Hour}}, func(*Setup) {}, ErrBadConfig},
		"negative buffer":    {Config{DeviceBuffer: -1}, func(*Setup) {}, ErrBadConfig},
		"rsa without random": {Config{}, func(s *Setup) {
			k, _ := GenerateKey(KeyRSAPSS, rnd)
			s.Root.Keys = []*PrivateKey{k}
		}, ErrBadConfig},
	} {
		s := good
		c.setup(&s)
		if _, _, err := New(t0, c.cfg, s); !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", name, err, c.err)
		}
	}
}

func TestBufferWarning(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	// Each entry is about 250 bytes: some 60 targets fill a 16 KiB buffer.
	var names []string
	var warned []Warning
	for i := 1; i <= 100 && warned == nil; i++ {
		tg := NewTarget("MIMXRT1060-EVK", strconv.Itoa(1000+i), []string{"devel"}, image("x", strconv.Itoa(i)))
		ws, err := r.AddTarget(t0, tg)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tg.Name())
		warned = ws
	}
	if len(warned) != 1 {
		t.Fatalf("warnings %v, want one", warned)
	}
	w := warned[0]
	f, _ := r.Fetch("devel", "targets.json")
	if w.Kind != WarnBufferExceeded || w.Tag != "devel" || w.File != "targets.json" || w.Role != RoleTargets ||
		w.Size != len(f.Data) || w.Limit != DefaultDeviceBuffer || w.Size <= w.Limit {
		t.Fatalf("warning %+v (targets.json %d bytes)", w, len(f.Data))
	}
	if !strings.Contains(w.String(), "device buffer") {
		t.Errorf("warning text %q", w.String())
	}
	// The target before the last one still fitted.
	if len(names) < 30 {
		t.Errorf("warned after only %d targets", len(names))
	}
	if got := r.Check(t0); !slices.Equal(got, warned) {
		t.Errorf("Check %v, want %v", got, warned)
	}
	// Other tags are not affected, and pruning clears the warning.
	if ws, err := r.AddTag(t0, "prod"); err != nil || len(ws) != 0 {
		t.Errorf("AddTag warnings %v %v", ws, err)
	}
	if ws, err := r.RemoveTargets(t0, names[:10]...); err != nil || len(ws) != 0 {
		t.Errorf("prune warnings %v %v", ws, err)
	}
	if ws := r.Check(t0); len(ws) != 0 {
		t.Errorf("Check after prune %v", ws)
	}
	// A smaller configured buffer warns earlier, on every role that
	// outgrows it.
	setup, _ := GenerateSetup(KeyEd25519, seeded(1))
	small, ws, err := New(t0, Config{DeviceBuffer: 500}, setup)
	if err != nil || len(ws) != 1 || ws[0].File != "1.root.json" {
		t.Fatalf("500-byte buffer: root warnings %v %v", ws, err)
	}
	ws, err = small.AddTarget(t0, NewTarget("MIMXRT1060-EVK", "1", []string{"devel"}, []byte("fw")))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].File != "targets.json" || ws[0].Limit != 500 {
		t.Errorf("500-byte buffer warnings %v", ws)
	}
	if ws := small.Check(t0); len(ws) != 2 || ws[0].File != "1.root.json" {
		t.Errorf("500-byte buffer Check %v", ws)
	}
}

func TestConsistentSnapshots(t *testing.T) {
	r, _ := newTestRepo(t, Config{ConsistentSnapshot: true})
	images := map[string][]byte{}
	dev := newGoTUFDevice(t, r, "devel")
	for i := 1; i <= 5; i++ {
		v := strconv.Itoa(i)
		name := addTarget(t, r, t0, "MIMXRT1060-EVK", v, "devel")
		images[name] = image("MIMXRT1060-EVK", v)
		got, err := dev.update(r, t0, images, name)
		if err != nil {
			t.Fatalf("go-tuf with consistent snapshots, update %d: %v", i, err)
		}
		if string(got) != string(images[name]) {
			t.Fatal("wrong image")
		}
	}
	files, _ := r.Files("devel")
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	want := []string{"1.root.json", "timestamp.json", "snapshot.json", "targets.json",
		"3.snapshot.json", "3.targets.json", "4.snapshot.json", "4.targets.json", "5.snapshot.json", "5.targets.json"}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
	cur, _ := r.Fetch("devel", "targets.json")
	v5, _ := r.Fetch("devel", "5.targets.json")
	if cur.SHA256 != v5.SHA256 || v5.Name != "5.targets.json" {
		t.Error("5.targets.json is not the current targets.json")
	}
	if _, err := r.Fetch("devel", "2.targets.json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old version still served: %v", err)
	}
}

// TestConcurrentFetch serves while targets are added: every timestamp a
// reader sees describes the snapshot it reads next unless an update came in
// between, in which case the versions moved on; never a torn file.
func TestConcurrentFetch(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	addTarget(t, r, t0, "MIMXRT1060-EVK", "1", "devel")
	done := make(chan struct{})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				for _, name := range []string{"timestamp.json", "snapshot.json", "targets.json", "1.root.json"} {
					f, err := r.Fetch("devel", name)
					if err != nil {
						errs <- err
						return
					}
					if newFile(name, f.Data, 0).SHA256 != f.SHA256 {
						errs <- errors.New("torn " + name)
						return
					}
				}
			}
		}()
	}
	for i := 2; i < 30; i++ {
		addTarget(t, r, t0, "MIMXRT1060-EVK", strconv.Itoa(i), "devel")
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestRotateEveryRoleInOneRoot: rotating root and the online roles together
// makes one new root version, signed by the old and the new root keys, which
// go-tuf follows; the retired keys are no longer held, and the views are
// signed by the new ones.
func TestRotateEveryRoleInOneRoot(t *testing.T) {
	r, setup := newTestRepo(t, Config{})
	name := addTarget(t, r, t0, "MIMXRT1060-EVK", "1000", "devel")
	dev := newGoTUFDevice(t, r, "devel")
	images := map[string][]byte{name: image("MIMXRT1060-EVK", "1000")}
	if _, err := dev.update(r, t0, images, name); err != nil {
		t.Fatal(err)
	}
	rnd := seeded(12)
	var rots []Rotation
	for _, role := range allRoles {
		k, err := GenerateKey(KeyEd25519, rnd)
		if err != nil {
			t.Fatal(err)
		}
		rots = append(rots, Rotation{Role: role, Keys: []*PrivateKey{k}})
	}
	before, _ := r.View("devel")
	if _, err := r.Rotate(t0, rots); err != nil {
		t.Fatal(err)
	}
	if v := r.RootVersion(); v != 2 {
		t.Fatalf("root version %d after one rotation of four roles, want 2", v)
	}
	f, _ := r.Root(2)
	if f.Signatures != 2 {
		t.Errorf("2.root.json has %d signatures, want the old and the new root key's", f.Signatures)
	}
	ri := r.RootInfo()
	for i, role := range allRoles {
		ro := ri.Role(role)
		if ids := ro.KeyIDs(); len(ids) != 1 || ids[0] != rots[i].Keys[0].ID() || !ro.Keys[0].Held || ro.Threshold != 1 {
			t.Errorf("%s: %+v, want the new key, held, threshold 1", role, ro)
		}
		if ri.Role(role).KeyIDs()[0] == setup.role(role).Keys[0].ID() {
			t.Errorf("%s still has its old key", role)
		}
	}
	after, _ := r.View("devel")
	if after.TargetsVersion <= before.TargetsVersion || after.SnapshotVersion <= before.SnapshotVersion || after.TimestampVersion <= before.TimestampVersion {
		t.Errorf("view %+v after the rotation, %+v before: every role re-signed", after, before)
	}
	if _, err := dev.update(r, t0, images, name); err != nil {
		t.Fatalf("go-tuf after the rotation: %v", err)
	}
	// A later rotation needs only the new root key, which the repository
	// holds.
	if _, err := r.Rotate(t0, rots[1:2]); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		rots []Rotation
	}{
		{"none", nil},
		{"twice", []Rotation{rots[1], rots[1]}},
		{"unknown", []Rotation{{Role: "mirror", Keys: rots[1].Keys}}},
	} {
		if _, err := r.Rotate(t0, c.rots); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err %v, want ErrBadConfig", c.name, err)
		}
	}
	if v := r.RootVersion(); v != 3 {
		t.Errorf("root version %d, want 3: refused rotations change nothing", v)
	}
}
