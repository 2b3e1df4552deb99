package tufrepo

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const hw = "MIMXRT1060-EVK"

// waveTarget is firmware for a wave. Its tags are whatever CI gave it: a
// wave rewrites them.
func waveTarget(hwid, version string) Target {
	return NewTarget(hwid, version, []string{"ci", "main"}, image(hwid, version))
}

func openWave(t *testing.T, r *Repo, now time.Time, tag, name string, targets ...Target) {
	t.Helper()
	if _, err := r.OpenWave(now, tag, name, targets); err != nil {
		t.Fatalf("OpenWave %s: %v", WaveView(tag, name), err)
	}
}

// servedTargets parses a view's targets.json as a client does.
func servedTargets(t *testing.T, r *Repo, view string) *metadata.Metadata[metadata.TargetsType] {
	t.Helper()
	f, err := r.Fetch(view, "targets.json")
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.Targets().FromBytes(f.Data)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

// servedTags are the custom.tags of a target as a view serves it.
func servedTags(t *testing.T, r *Repo, view, name string) []string {
	t.Helper()
	tf := servedTargets(t, r, view).Signed.Targets[name]
	if tf == nil || tf.Custom == nil {
		t.Fatalf("%s does not list %s", view, name)
	}
	var c struct{ Tags []string }
	if err := json.Unmarshal(*tf.Custom, &c); err != nil {
		t.Fatal(err)
	}
	return c.Tags
}

func versionsOf(t *testing.T, r *Repo, view string) versions {
	t.Helper()
	v := viewOf(t, r, view)
	return versions{targets: v.TargetsVersion, snapshot: v.SnapshotVersion, timestamp: v.TimestampVersion}
}

// above reports whether every role of a is strictly above b's.
func (v versions) allAbove(b versions) bool {
	return v.targets > b.targets && v.snapshot > b.snapshot && v.timestamp > b.timestamp
}

func TestWaveLifecycle(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	now := t0
	old := addTarget(t, r, now, hw, "1000", "prod")
	devel := addTarget(t, r, now, hw, "1001", "devel")
	prodTS, _ := r.Fetch("prod", "timestamp.json")

	staged := waveTarget(hw, "1002")
	openWave(t, r, now, "prod", "w1", staged)
	wv := WaveView("prod", "w1")
	if wv != "prod@w1" {
		t.Fatalf("WaveView = %q", wv)
	}
	if got := r.Tags(); !slices.Equal(got, []string{"devel", "prod"}) {
		t.Errorf("Tags() = %v, want only tags", got)
	}
	if got, want := r.Waves(), []WaveInfo{{Tag: "prod", Name: "w1", Targets: []string{staged.Name()}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Waves() = %v, want %v", got, want)
	}
	if got := viewOf(t, r, wv).Targets; !slices.Equal(got, []string{old, staged.Name()}) {
		t.Errorf("wave view lists %v", got)
	}
	if got := viewOf(t, r, "prod").Targets; !slices.Equal(got, []string{old}) {
		t.Errorf("tag view lists %v", got)
	}
	// The staged target is served with exactly the wave's tag, and is not
	// a repository target.
	if got := servedTags(t, r, wv, staged.Name()); !slices.Equal(got, []string{"prod"}) {
		t.Errorf("staged target served with tags %v", got)
	}
	if _, ok := r.Target(staged.Name()); ok || len(r.Targets()) != 2 {
		t.Error("a staged target is listed as a repository target")
	}
	// Opening a wave leaves the tag's view as it was.
	if after, _ := r.Fetch("prod", "timestamp.json"); after.SHA256 != prodTS.SHA256 {
		t.Error("OpenWave re-signed the tag's view")
	}
	if !versionsOf(t, r, wv).allAbove(versionsOf(t, r, "prod")) {
		t.Errorf("wave %+v not above tag %+v", versionsOf(t, r, wv), versionsOf(t, r, "prod"))
	}
	files, err := r.Files(wv)
	if err != nil || len(files) != 4 {
		t.Fatalf("Files(%s) = %d files, %v", wv, len(files), err)
	}

	// Staged targets are not the repository's to prune or add again.
	if _, err := r.RemoveTargets(now, staged.Name()); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("RemoveTargets of a staged target: %v", err)
	}
	if _, err := r.AddTarget(now, NewTarget(hw, "1002", []string{"devel"}, image(hw, "1002"))); !errors.Is(err, ErrDuplicateTarget) {
		t.Errorf("AddTarget of a staged name: %v", err)
	}
	_, err = r.OpenWave(now, "prod", "w2", []Target{waveTarget(hw, "1003")})
	var we *WaveError
	if !errors.Is(err, ErrActiveWave) || !errors.As(err, &we) || we.Open != "w1" || we.Wave != "w2" {
		t.Errorf("second wave: %v, want ErrActiveWave naming w1", err)
	}

	// A new production target reaches the wave view too.
	now = now.Add(time.Hour)
	extra := addTarget(t, r, now, hw, "1003", "prod")
	if got := viewOf(t, r, wv).Targets; !slices.Equal(got, []string{old, staged.Name(), extra}) {
		t.Errorf("wave view after AddTarget lists %v", got)
	}
	if !versionsOf(t, r, wv).allAbove(versionsOf(t, r, "prod")) {
		t.Error("wave view fell behind the tag after AddTarget")
	}
	// Re-signing the tag re-signs its wave; re-signing the wave alone
	// leaves the tag.
	before := versionsOf(t, r, wv)
	if _, err := r.ResignTimestamp(now, "prod"); err != nil {
		t.Fatal(err)
	}
	if v := versionsOf(t, r, wv); v.timestamp <= before.timestamp || v.snapshot != before.snapshot || !v.allAbove(versionsOf(t, r, "prod")) {
		t.Errorf("wave after ResignTimestamp(prod): %+v, before %+v", v, before)
	}
	tagBefore := versionsOf(t, r, "prod")
	if _, err := r.BumpSnapshot(now, wv); err != nil {
		t.Fatal(err)
	}
	if versionsOf(t, r, "prod") != tagBefore {
		t.Error("BumpSnapshot of the wave view re-signed the tag")
	}
	if _, err := r.ResignTimestamp(now, "prod@nope"); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("ResignTimestamp of an unknown wave view: %v", err)
	}

	for _, c := range []struct{ tag, name string }{{"prod", "w2"}, {"devel", "w1"}, {"nope", "w1"}} {
		_, err := r.CompleteWave(now, c.tag, c.name)
		if !errors.Is(err, ErrUnknownWave) {
			t.Errorf("CompleteWave(%s, %s): %v", c.tag, c.name, err)
		}
		if _, err := r.CancelWave(now, c.tag, c.name); !errors.Is(err, ErrUnknownWave) {
			t.Errorf("CancelWave(%s, %s): %v", c.tag, c.name, err)
		}
	}

	last := versionsOf(t, r, wv)
	now = now.Add(time.Hour)
	if _, err := r.CompleteWave(now, "prod", "w1"); err != nil {
		t.Fatal(err)
	}
	if len(r.Waves()) != 0 {
		t.Errorf("Waves() after complete = %v", r.Waves())
	}
	if _, err := r.Fetch(wv, "timestamp.json"); !errors.Is(err, ErrUnknownTag) {
		t.Errorf("completed wave view still served: %v", err)
	}
	got, ok := r.Target(staged.Name())
	if !ok || !slices.Equal(got.Tags, []string{"prod"}) {
		t.Errorf("completed target %+v, %v", got, ok)
	}
	if v := viewOf(t, r, "prod").Targets; !slices.Equal(v, []string{old, staged.Name(), extra}) {
		t.Errorf("tag view after complete lists %v", v)
	}
	if v := versionsOf(t, r, "prod"); !v.allAbove(last) {
		t.Errorf("tag %+v not above the completed wave's %+v", v, last)
	}
	if tags := r.Targets(); len(tags) != 4 || !slices.Contains(viewOf(t, r, "devel").Targets, devel) {
		t.Errorf("targets after complete %v", tags)
	}
	if s := r.String(); !strings.Contains(s, "2 tags, 0 waves") {
		t.Errorf("String() = %q", s)
	}
}

func TestCancelWave(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	old := addTarget(t, r, t0, hw, "1000", "prod")
	openWave(t, r, t0, "prod", "w1", waveTarget(hw, "1001"), waveTarget("MIMXRT1170-EVK", "7"))
	inWave := newGoTUFDevice(t, r, WaveView("prod", "w1"))
	stayed := newGoTUFDevice(t, r, "prod")
	for _, d := range []*goTUFDevice{inWave, stayed} {
		if _, err := d.update(r, t0, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	last := versionsOf(t, r, WaveView("prod", "w1"))
	now := t0.Add(time.Minute)
	if _, err := r.CancelWave(now, "prod", "w1"); err != nil {
		t.Fatal(err)
	}
	if got := viewOf(t, r, "prod").Targets; !slices.Equal(got, []string{old}) {
		t.Errorf("tag view after cancel lists %v", got)
	}
	if len(r.Targets()) != 1 || len(r.Waves()) != 0 {
		t.Errorf("cancel left targets %v waves %v", r.Targets(), r.Waves())
	}
	if v := versionsOf(t, r, "prod"); !v.allAbove(last) {
		t.Errorf("tag %+v not above the cancelled wave's %+v", v, last)
	}
	// Devices fall back to the tag view without seeing a rollback.
	inWave.tag = "prod"
	for _, d := range []*goTUFDevice{inWave, stayed} {
		if _, err := d.update(r, now, nil, ""); err != nil {
			t.Fatalf("go-tuf after cancel: %v", err)
		}
	}
	// The same wave can be opened again, above the tag.
	openWave(t, r, now, "prod", "w1", waveTarget(hw, "1001"))
	inWave.tag = WaveView("prod", "w1")
	if _, err := inWave.update(r, now, nil, ""); err != nil {
		t.Fatalf("go-tuf in the reopened wave: %v", err)
	}
}

// TestCompleteWaveAddsTag stages a target that another tag already has: on
// completion it gets the wave's tag added, and every view listing it, the
// other tag's wave view included, is re-signed.
func TestCompleteWaveAddsTag(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	shared := addTarget(t, r, t0, hw, "1000", "prod-b")
	openWave(t, r, t0, "prod-b", "wb", waveTarget(hw, "1001"))
	// Tags are ignored when comparing a staged target with the
	// repository's: the image is what must match.
	openWave(t, r, t0, "prod-a", "wa", waveTarget(hw, "1000"))
	if got := viewOf(t, r, "prod-a").Targets; len(got) != 0 {
		t.Fatalf("OpenWave on a new tag: tag view lists %v", got)
	}
	b, bw := versionsOf(t, r, "prod-b"), versionsOf(t, r, WaveView("prod-b", "wb"))
	if _, err := r.CompleteWave(t0.Add(time.Minute), "prod-a", "wa"); err != nil {
		t.Fatal(err)
	}
	got, _ := r.Target(shared)
	if !slices.Equal(got.Tags, []string{"prod-b", "prod-a"}) {
		t.Errorf("shared target tags %v", got.Tags)
	}
	for _, view := range []string{"prod-a", "prod-b", WaveView("prod-b", "wb")} {
		if tags := servedTags(t, r, view, shared); !slices.Equal(tags, []string{"prod-b", "prod-a"}) {
			t.Errorf("%s serves %s with tags %v", view, shared, tags)
		}
	}
	if v := versionsOf(t, r, "prod-b"); v.targets <= b.targets {
		t.Error("prod-b not re-signed")
	}
	if v := versionsOf(t, r, WaveView("prod-b", "wb")); v.targets <= bw.targets || !v.allAbove(versionsOf(t, r, "prod-b")) {
		t.Errorf("prod-b's wave %+v after complete (tag %+v)", v, versionsOf(t, r, "prod-b"))
	}
}

func TestOpenWaveErrors(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	addTarget(t, r, t0, hw, "1000", "prod")
	addTarget(t, r, t0, hw, "2000", "other")
	openWave(t, r, t0, "beta", "wb", waveTarget(hw, "3000"))
	differ := func(version string) Target {
		tg := waveTarget(hw, version)
		tg.SHA256[0] ^= 1
		return tg
	}
	good := waveTarget(hw, "1001")
	for _, c := range []struct {
		name, tag, wave string
		targets         []Target
		err             error
	}{
		{"bad tag", "pr od", "w", []Target{good}, ErrBadTarget},
		{"tag with @", "prod@x", "w", []Target{good}, ErrBadTarget},
		{"wave with @", "prod", "w@x", []Target{good}, ErrBadTarget},
		{"empty wave name", "prod", "", []Target{good}, ErrBadTarget},
		{"long wave name", "prod", strings.Repeat("w", 65), []Target{good}, ErrBadTarget},
		{"no targets", "prod", "w", nil, ErrBadTarget},
		{"bad version", "prod", "w", []Target{waveTarget(hw, "01")}, ErrBadTarget},
		{"given twice", "prod", "w", []Target{good, good}, ErrDuplicateTarget},
		{"already the tag's", "prod", "w", []Target{waveTarget(hw, "1000")}, ErrDuplicateTarget},
		{"other image, same name", "prod", "w", []Target{differ("2000")}, ErrDuplicateTarget},
		{"differs from staged", "prod", "w", []Target{differ("3000")}, ErrDuplicateTarget},
		{"active wave", "beta", "w", []Target{good}, ErrActiveWave},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := servedSnapshot(t, r)
			_, err := r.OpenWave(t0, c.tag, c.wave, c.targets)
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			var te *TargetError
			var we *WaveError
			if !errors.As(err, &te) && !errors.As(err, &we) {
				t.Errorf("err %#v is neither a *TargetError nor a *WaveError", err)
			}
			if !maps.EqualFunc(before, servedSnapshot(t, r), bytes.Equal) || len(r.Waves()) != 1 {
				t.Fatal("a refused wave changed the repository")
			}
		})
	}
	if ValidWaveName("a@b") || !ValidWaveName("wave-2026.11_1+x") {
		t.Error("ValidWaveName")
	}
}

func TestWaveCheckAndRenew(t *testing.T) {
	// 1700 bytes: more than root and the tag view, less than the wave view.
	r, _ := newTestRepo(t, Config{DeviceBuffer: 1700})
	for i := range 4 {
		addTarget(t, r, t0, hw, strings.Repeat("1", i+1), "prod")
	}
	ws, err := r.OpenWave(t0, "prod", "big", []Target{waveTarget(hw, "5"), waveTarget(hw, "6"), waveTarget(hw, "7")})
	if err != nil {
		t.Fatal(err)
	}
	wv := WaveView("prod", "big")
	found := func(ws []Warning) bool {
		for _, w := range ws {
			if w.Kind == WarnBufferExceeded && w.Tag == wv && w.File == "targets.json" {
				return true
			}
		}
		return false
	}
	if !found(ws) || !found(r.Check(t0)) {
		t.Errorf("no buffer warning for the wave view: %v / %v", ws, r.Check(t0))
	}
	// Renew keeps the wave view fresh and ahead of the tag.
	now := t0.Add(80 * 24 * time.Hour)
	if _, err := r.Renew(now); err != nil {
		t.Fatal(err)
	}
	for _, w := range r.Check(now) {
		if w.Kind == WarnExpiring && w.Role != RoleRoot {
			t.Errorf("after Renew: %v", w)
		}
	}
	if !versionsOf(t, r, wv).allAbove(versionsOf(t, r, "prod")) {
		t.Error("wave view behind the tag after Renew")
	}
	// A device in the wave keeps refreshing across renewals.
	dev := newGoTUFDevice(t, r, wv)
	if _, err := dev.update(r, now, nil, ""); err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * time.Hour)
	if _, err := r.Renew(now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Hour)
	if _, err := dev.update(r, now, nil, ""); err != nil {
		t.Fatalf("go-tuf in the wave after Renew: %v", err)
	}
}

func TestWaveReopen(t *testing.T) {
	for _, consistent := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "tuf")
		setup, _ := GenerateSetup(KeyEd25519, seeded(31))
		r, _, err := Create(dir, t0, Config{ConsistentSnapshot: consistent}, setup)
		if err != nil {
			t.Fatal(err)
		}
		addTarget(t, r, t0, hw, "1000", "prod", "beta")
		openWave(t, r, t0, "prod", "w1", waveTarget(hw, "1001"), waveTarget("MIMXRT1170-EVK", "1"))
		openWave(t, r, t0, "beta", "wb", waveTarget(hw, "1001"))
		addTarget(t, r, t0, hw, "999", "beta")
		re, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameServed(t, r, re)
		if len(re.Waves()) != 2 {
			t.Fatalf("reopened waves %v", re.Waves())
		}
		if _, err := re.CompleteWave(t0.Add(time.Hour), "prod", "w1"); err != nil {
			t.Fatal(err)
		}
		again, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameServed(t, re, again)
		if _, err := again.CancelWave(t0.Add(2*time.Hour), "beta", "wb"); err != nil {
			t.Fatal(err)
		}
		// Without open waves the manifest is what stores before waves
		// were written: no "waves" field.
		m, err := os.ReadFile(filepath.Join(dir, manifestFile))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(m, []byte(`"waves"`)) {
			t.Errorf("manifest without waves mentions them: %s", m)
		}
		last, err := Open(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		sameServed(t, again, last)
	}
}

// TestOpenCorruptWave damages the stored wave: each damage is a
// *CorruptError.
func TestOpenCorruptWave(t *testing.T) {
	type fixture struct {
		dir string
		m   manifest
		// stale are the wave view's files from before the tag was
		// re-signed, still valid on their own.
		stale map[string]File
	}
	build := func(t *testing.T) fixture {
		dir := t.TempDir()
		setup, _ := GenerateSetup(KeyEd25519, seeded(8))
		r, _, err := Create(dir, t0, Config{}, setup)
		if err != nil {
			t.Fatal(err)
		}
		addTarget(t, r, t0, hw, "1000", "prod")
		openWave(t, r, t0, "prod", "w1", waveTarget(hw, "1001"), waveTarget(hw, "1002"))
		stale := map[string]File{}
		for _, name := range []string{"timestamp.json", "snapshot.json", "targets.json"} {
			stale[name], _ = r.Fetch(WaveView("prod", "w1"), name)
		}
		if _, err := r.ResignTimestamp(t0, "prod"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, manifestFile))
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return fixture{dir: dir, m: m, stale: stale}
	}
	edit := func(fn func(t *testing.T, f fixture, w *storedWave)) func(t *testing.T, f fixture) {
		return func(t *testing.T, f fixture) {
			w := f.m.Waves["prod"]
			fn(t, f, &w)
			f.m.Waves["prod"] = w
		}
	}
	for name, damage := range map[string]func(t *testing.T, f fixture){
		"staged unsorted": edit(func(_ *testing.T, _ fixture, w *storedWave) { slices.Reverse(w.Staged) }),
		"staged twice":    edit(func(_ *testing.T, _ fixture, w *storedWave) { w.Staged = []string{w.Staged[0], w.Staged[0]} }),
		"staged not listed": edit(func(_ *testing.T, _ fixture, w *storedWave) {
			w.Staged = append(w.Staged, "zz-v1")
		}),
		"listed not staged": edit(func(_ *testing.T, _ fixture, w *storedWave) { w.Staged = w.Staged[:1] }),
		"no staged":         edit(func(_ *testing.T, _ fixture, w *storedWave) { w.Staged = nil }),
		"bad wave name":     edit(func(_ *testing.T, _ fixture, w *storedWave) { w.Name = "w 1" }),
		"tag's files as the wave's": edit(func(_ *testing.T, f fixture, w *storedWave) {
			w.Files = f.m.Tags["prod"]
		}),
		"wave view lacks a role": edit(func(_ *testing.T, _ fixture, w *storedWave) { delete(w.Files, "snapshot.json") }),
		"versions not above the tag": edit(func(t *testing.T, f fixture, w *storedWave) {
			for name, file := range f.stale {
				if err := os.WriteFile(filepath.Join(f.dir, metadataDir, file.SHA256+".json"), file.Data, 0o644); err != nil {
					t.Fatal(err)
				}
				w.Files[name] = file.SHA256
			}
		}),
		"wave of a tag without a view": func(_ *testing.T, f fixture) {
			f.m.Waves["nope"] = f.m.Waves["prod"]
			delete(f.m.Waves, "prod")
		},
		"tag with @": func(_ *testing.T, f fixture) {
			f.m.Waves["prod@x"] = f.m.Waves["prod"]
			delete(f.m.Waves, "prod")
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := build(t)
			damage(t, f)
			data, _ := json.Marshal(f.m)
			if err := os.WriteFile(filepath.Join(f.dir, manifestFile), data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Open(f.dir, nil)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.File == "" {
				t.Fatalf("Open: %v, want a *CorruptError", err)
			}
		})
	}
	// The fixture itself loads: each case above fails for its damage.
	f := build(t)
	if _, err := Open(f.dir, nil); err != nil {
		t.Fatalf("undamaged fixture: %v", err)
	}
}

// TestFailedWaveSaveKeepsPreviousRepository fails the k-th file write of
// OpenWave, CompleteWave and CancelWave, for every k, as a crash would: the
// repository in memory and reopened from disk serve the previous bytes with
// the previous waves, and the operation succeeds when retried.
func TestFailedWaveSaveKeepsPreviousRepository(t *testing.T) {
	type op struct {
		prepare func(t *testing.T, r *Repo)
		run     func(r *Repo) error
	}
	open := func(t *testing.T, r *Repo) {
		openWave(t, r, t0, "prod", "w1", waveTarget(hw, "1002"), waveTarget(hw, "1000"))
	}
	ops := map[string]op{
		"open": {prepare: func(*testing.T, *Repo) {}, run: func(r *Repo) error {
			_, err := r.OpenWave(t0, "prod", "w1", []Target{waveTarget(hw, "1002"), waveTarget(hw, "1000")})
			return err
		}},
		"complete": {prepare: open, run: func(r *Repo) error {
			_, err := r.CompleteWave(t0.Add(time.Minute), "prod", "w1")
			return err
		}},
		"cancel": {prepare: open, run: func(r *Repo) error {
			_, err := r.CancelWave(t0.Add(time.Minute), "prod", "w1")
			return err
		}},
	}
	prepare := func(o op) func(t *testing.T, r *Repo) {
		return func(t *testing.T, r *Repo) {
			addTarget(t, r, t0, hw, "1000", "devel")
			addTarget(t, r, t0, hw, "1001", "prod")
			o.prepare(t, r)
		}
	}
	for name, o := range ops {
		t.Run(name, func(t *testing.T) {
			forEachFailedWrite(t, prepare(o), o.run, func(fail int, _ string, re *Repo) {
				if err := o.run(re); err != nil {
					t.Fatalf("fail at write %d: retry: %v", fail, err)
				}
			})
		})
	}
}
