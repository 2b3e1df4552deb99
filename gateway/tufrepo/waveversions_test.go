package tufrepo

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var (
	waveSeed = flag.Uint64("wave.seed", 0, "run TestWaveVersionInvariant with this seed only (0: its fixed seeds)")
	waveOps  = flag.Int("wave.ops", 120, "operations per seed in TestWaveVersionInvariant")
)

// TestWaveVersionInvariant drives random sequences of repository operations
// (targets added and pruned, timestamps and snapshots re-signed, renewals at
// later times, key rotations, waves opened, completed and cancelled) from a
// seed and checks, after every step, from the served bytes as a client
// parses them:
//
//   - every file a client of any view fetches verifies against the current
//     root, and each view lists what a model of the repository says;
//   - (1) while a wave is open, each of its roles has a version strictly
//     above the tag view's;
//   - (2) after a wave completes or is cancelled, each role of the tag view
//     is strictly above the wave view's last version;
//   - clients, moved into a wave as a rollout would and back when it
//     closes, never see a version lower than one they trusted in any view
//     they can be moved to; some of them are go-tuf's own client, which
//     refuses a rollback.
//
// Odd seeds use plain names, even seeds consistent snapshots. A failure
// prints the command that replays it; -wave.seed and -wave.ops run other
// seeds or longer sequences.
func TestWaveVersionInvariant(t *testing.T) {
	seeds, ops := []uint64{1, 2, 3, 4}, *waveOps
	if testing.Short() {
		// make test runs -short under the race detector: one seed of
		// each naming mode, fewer steps, unless asked for more.
		seeds = seeds[:2]
		if !flagSet("wave.ops") {
			ops = 60
		}
	}
	if *waveSeed != 0 {
		seeds = []uint64{*waveSeed}
	}
	for _, seed := range seeds {
		t.Run("seed="+strconv.FormatUint(seed, 10), func(t *testing.T) {
			w := newWaveWorld(t, seed)
			var recent []string
			counts := map[string]int{}
			for step := range ops {
				desc, err := w.step()
				counts[strings.SplitN(desc, " ", 2)[0]+map[bool]string{true: " refused", false: ""}[strings.Contains(desc, "refused")]]++
				if err == nil {
					err = w.check()
				}
				recent = append(recent, fmt.Sprintf("%d: %s", step, desc))
				if len(recent) > 8 {
					recent = recent[1:]
				}
				if err != nil {
					t.Fatalf("seed %d, step %d: %v\nlast steps:\n  %s\nreplay: go test ./gateway/tufrepo -run 'TestWaveVersionInvariant' -wave.seed=%d -wave.ops=%d -v",
						seed, step, err, strings.Join(recent, "\n  "), seed, ops)
				}
			}
			var summary []string
			for _, k := range sortedKeys(counts) {
				summary = append(summary, fmt.Sprintf("%s %d", k, counts[k]))
			}
			t.Logf("%d steps (%s): %s", ops, strings.Join(summary, ", "), w.r)
		})
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// waveModel is what the repository should list: each target's tags and
// each open wave's staged names.
type waveModel struct {
	targets map[string][]string // name -> tags
	waves   map[string]*modelWave
}

type modelWave struct {
	name   string
	staged []string
}

// waveClient is a device of one tag. view is the view it is served; trusted
// the versions it last accepted. dev, when set, is go-tuf's client.
type waveClient struct {
	tag, view string
	trusted   versions
	dev       *goTUFDevice
}

type closedWave struct {
	tag  string
	last versions
}

type waveWorld struct {
	t       *testing.T
	rnd     *rand.Rand
	keyRnd  *rand.ChaCha8
	r       *Repo
	now     time.Time
	tags    []string
	hwids   []string
	version int
	model   waveModel
	images  map[string][]byte
	clients []*waveClient
	closed  []closedWave
	waveSeq int
}

func newWaveWorld(t *testing.T, seed uint64) *waveWorld {
	keyRnd := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'w'})
	setup, err := GenerateSetup(KeyEd25519, keyRnd)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := New(t0, Config{ConsistentSnapshot: seed%2 == 0}, setup)
	if err != nil {
		t.Fatal(err)
	}
	w := &waveWorld{
		t: t, rnd: rand.New(rand.NewPCG(seed, 0x7761766573)), keyRnd: keyRnd, r: r, now: t0,
		tags: []string{"beta", "prod"}, hwids: []string{hw, "MIMXRT1170-EVK"}, version: 1000,
		model:  waveModel{targets: map[string][]string{}, waves: map[string]*modelWave{}},
		images: map[string][]byte{},
	}
	for _, tag := range w.tags {
		if _, err := r.AddTag(t0, tag); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			c := &waveClient{tag: tag, view: tag}
			// One go-tuf client per tag: each refresh writes its
			// trusted metadata to disk, the slow part of this test.
			if i == 0 {
				c.dev = newGoTUFDevice(t, r, tag)
			}
			w.clients = append(w.clients, c)
		}
	}
	return w
}

// newTarget makes firmware of a version not used before.
func (w *waveWorld) newTarget(tags []string) Target {
	w.version++
	hwid := w.hwids[w.rnd.IntN(len(w.hwids))]
	v := strconv.Itoa(w.version)
	tg := NewTarget(hwid, v, tags, image(hwid, v))
	w.images[tg.Name()] = image(hwid, v)
	return tg
}

func (w *waveWorld) pickTag() string { return w.tags[w.rnd.IntN(len(w.tags))] }

// pickTagWave picks, three times in four, a tag that has (open) or has not
// (!open) a wave, so that most wave operations are meant to succeed; else
// any tag, to check the refusals.
func (w *waveWorld) pickTagWave(open bool) string {
	var tags []string
	for _, tag := range w.tags {
		if _, ok := w.model.waves[tag]; ok == open {
			tags = append(tags, tag)
		}
	}
	if len(tags) == 0 || w.rnd.IntN(4) == 0 {
		return w.pickTag()
	}
	return tags[w.rnd.IntN(len(tags))]
}

// pickViews names the views a re-sign applies to: all, a tag, or a wave view.
func (w *waveWorld) pickViews() []string {
	switch w.rnd.IntN(3) {
	case 0:
		return nil
	case 1:
		return []string{w.pickTag()}
	}
	for _, tag := range w.tags {
		if mw, ok := w.model.waves[tag]; ok && w.rnd.IntN(2) == 0 {
			return []string{WaveView(tag, mw.name)}
		}
	}
	return []string{w.pickTag()}
}

// step runs one random operation and updates the model.
func (w *waveWorld) step() (string, error) {
	w.closed = nil
	r, now := w.r, w.now
	switch op := w.rnd.IntN(100); {
	case op < 18: // add a target
		var tags []string
		for _, tag := range w.tags {
			if w.rnd.IntN(2) == 0 {
				tags = append(tags, tag)
			}
		}
		if len(tags) == 0 {
			tags = []string{w.pickTag()}
		}
		tg := w.newTarget(tags)
		if _, err := r.AddTarget(now, tg); err != nil {
			return "add", err
		}
		w.model.targets[tg.Name()] = tags
		return fmt.Sprintf("AddTarget %s %v", tg.Name(), tags), nil
	case op < 25: // prune, or try to prune a staged target
		names := sortedKeys(w.model.targets)
		for _, tag := range sortedKeys(w.model.waves) {
			staged := w.model.waves[tag].staged
			if name := staged[0]; w.model.targets[name] == nil && (len(names) == 0 || w.rnd.IntN(4) == 0) {
				if _, err := r.RemoveTargets(now, name); !errors.Is(err, ErrUnknownTarget) {
					return "prune staged", fmt.Errorf("RemoveTargets of staged %s: %v, want ErrUnknownTarget", name, err)
				}
				return "RemoveTargets of staged " + name + " refused", nil
			}
		}
		if len(names) == 0 {
			return "nothing to prune", nil
		}
		name := names[w.rnd.IntN(len(names))]
		if _, err := r.RemoveTargets(now, name); err != nil {
			return "prune", err
		}
		delete(w.model.targets, name)
		return "RemoveTargets " + name, nil
	case op < 35:
		views := w.pickViews()
		_, err := r.ResignTimestamp(now, views...)
		return fmt.Sprintf("ResignTimestamp %v", views), err
	case op < 43:
		views := w.pickViews()
		_, err := r.BumpSnapshot(now, views...)
		return fmt.Sprintf("BumpSnapshot %v", views), err
	case op < 53: // time passes; the gateway renews
		w.now = now.Add(time.Duration(1+w.rnd.IntN(20)) * time.Hour)
		_, err := r.Renew(w.now)
		return "Renew at " + w.now.Format(time.RFC3339), err
	case op < 70:
		return w.open()
	case op < 94:
		return w.close(op < 82)
	default:
		role := []Role{RoleTargets, RoleSnapshot, RoleTimestamp, RoleRoot}[w.rnd.IntN(4)]
		k, err := GenerateKey(KeyEd25519, w.keyRnd)
		if err != nil {
			return "rotate", err
		}
		_, err = r.RotateKeys(now, role, []*PrivateKey{k}, 1)
		return "RotateKeys " + string(role), err
	}
}

// open opens a wave on a random tag: new firmware, or a target another tag
// has, or one another wave stages. On a tag with a wave it must be refused.
func (w *waveWorld) open() (string, error) {
	tag := w.pickTagWave(false)
	w.waveSeq++
	name := "w" + strconv.Itoa(w.waveSeq)
	var staged []Target
	for range 1 + w.rnd.IntN(2) {
		var candidates []string
		for n, tags := range w.model.targets {
			if !slices.Contains(tags, tag) {
				candidates = append(candidates, n)
			}
		}
		for _, other := range sortedKeys(w.model.waves) {
			if other != tag {
				candidates = append(candidates, w.model.waves[other].staged...)
			}
		}
		slices.Sort(candidates)
		candidates = slices.Compact(candidates)
		candidates = slices.DeleteFunc(candidates, func(n string) bool {
			return slices.ContainsFunc(staged, func(s Target) bool { return s.Name() == n })
		})
		if len(candidates) > 0 && w.rnd.IntN(3) == 0 {
			n := candidates[w.rnd.IntN(len(candidates))]
			i := strings.LastIndex(n, "-v")
			hwid, v := n[:i], n[i+2:]
			staged = append(staged, NewTarget(hwid, v, []string{"ci"}, image(hwid, v)))
			continue
		}
		staged = append(staged, w.newTarget([]string{"ci"}))
	}
	_, err := w.r.OpenWave(w.now, tag, name, staged)
	if open, ok := w.model.waves[tag]; ok {
		if !errors.Is(err, ErrActiveWave) {
			return "open on active", fmt.Errorf("OpenWave on %s with %s open: %v, want ErrActiveWave", tag, open.name, err)
		}
		return "OpenWave " + WaveView(tag, name) + " refused: " + open.name + " is open", nil
	}
	if err != nil {
		return "open", err
	}
	mw := &modelWave{name: name}
	for _, s := range staged {
		mw.staged = append(mw.staged, s.Name())
	}
	slices.Sort(mw.staged)
	w.model.waves[tag] = mw
	return fmt.Sprintf("OpenWave %s %v", WaveView(tag, name), mw.staged), nil
}

// close completes or cancels a random tag's wave; on a tag without one both
// must be refused.
func (w *waveWorld) close(complete bool) (string, error) {
	tag := w.pickTagWave(true)
	mw, ok := w.model.waves[tag]
	verb := map[bool]string{true: "CompleteWave", false: "CancelWave"}[complete]
	call := w.r.CancelWave
	if complete {
		call = w.r.CompleteWave
	}
	if !ok {
		if _, err := call(w.now, tag, "w0"); !errors.Is(err, ErrUnknownWave) {
			return verb, fmt.Errorf("%s on %s without a wave: %v, want ErrUnknownWave", verb, tag, err)
		}
		return verb + " " + tag + " refused: no wave", nil
	}
	view := WaveView(tag, mw.name)
	last, err := w.servedVersions(view)
	if err != nil {
		return verb, err
	}
	if _, err := call(w.now, tag, mw.name); err != nil {
		return verb, err
	}
	w.closed = append(w.closed, closedWave{tag: tag, last: last})
	delete(w.model.waves, tag)
	if complete {
		for _, n := range mw.staged {
			w.model.targets[n] = append(w.model.targets[n], tag)
		}
	}
	return verb + " " + view, nil
}

// servedVersions reads a view's versions from its served files.
func (w *waveWorld) servedVersions(view string) (versions, error) {
	var v versions
	f, err := w.r.Fetch(view, "timestamp.json")
	if err != nil {
		return v, err
	}
	ts, err := metadata.Timestamp().FromBytes(f.Data)
	if err != nil {
		return v, err
	}
	if f, err = w.r.Fetch(view, "snapshot.json"); err != nil {
		return v, err
	}
	sn, err := metadata.Snapshot().FromBytes(f.Data)
	if err != nil {
		return v, err
	}
	if f, err = w.r.Fetch(view, "targets.json"); err != nil {
		return v, err
	}
	tg, err := metadata.Targets().FromBytes(f.Data)
	if err != nil {
		return v, err
	}
	return versions{targets: tg.Signed.Version, snapshot: sn.Signed.Version, timestamp: ts.Signed.Version}, nil
}

// expected is the sorted listing of a view according to the model.
func (w *waveWorld) expected(tag string, wave bool) []string {
	var names []string
	for n, tags := range w.model.targets {
		if slices.Contains(tags, tag) {
			names = append(names, n)
		}
	}
	if mw := w.model.waves[tag]; wave && mw != nil {
		names = append(names, mw.staged...)
	}
	slices.Sort(names)
	return names
}

// verifyView checks every file a client of view fetches now against the
// current root with go-tuf's verifier, the timestamp → snapshot → targets
// chain, expiry at now, and the listing.
func (w *waveWorld) verifyView(root *metadata.Metadata[metadata.RootType], view string, listing []string, stagedTag string, staged []string) error {
	fetch := func(name string) ([]byte, error) {
		f, err := w.r.Fetch(view, name)
		return f.Data, err
	}
	data, err := fetch("timestamp.json")
	if err != nil {
		return err
	}
	ts, err := metadata.Timestamp().FromBytes(data)
	if err != nil {
		return err
	}
	snapName, targetsName := "snapshot.json", "targets.json"
	if root.Signed.ConsistentSnapshot {
		snapName = strconv.FormatInt(ts.Signed.Meta["snapshot.json"].Version, 10) + ".snapshot.json"
	}
	if data, err = fetch(snapName); err != nil {
		return err
	}
	if err := ts.Signed.Meta["snapshot.json"].VerifyLengthHashes(data); err != nil {
		return fmt.Errorf("%s: timestamp does not describe %s: %v", view, snapName, err)
	}
	sn, err := metadata.Snapshot().FromBytes(data)
	if err != nil {
		return err
	}
	if root.Signed.ConsistentSnapshot {
		targetsName = strconv.FormatInt(sn.Signed.Meta["targets.json"].Version, 10) + ".targets.json"
	}
	if data, err = fetch(targetsName); err != nil {
		return err
	}
	if err := sn.Signed.Meta["targets.json"].VerifyLengthHashes(data); err != nil {
		return fmt.Errorf("%s: snapshot does not describe %s: %v", view, targetsName, err)
	}
	tg, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		role string
		md   any
	}{{metadata.TIMESTAMP, ts}, {metadata.SNAPSHOT, sn}, {metadata.TARGETS, tg}} {
		if err := root.VerifyDelegate(c.role, c.md); err != nil {
			return fmt.Errorf("%s: %s does not verify against root v%d: %v", view, c.role, root.Signed.Version, err)
		}
	}
	if ts.Signed.Meta["snapshot.json"].Version != sn.Signed.Version || sn.Signed.Meta["targets.json"].Version != tg.Signed.Version {
		return fmt.Errorf("%s: chain versions disagree", view)
	}
	if ts.Signed.IsExpired(w.now) || sn.Signed.IsExpired(w.now) || tg.Signed.IsExpired(w.now) {
		return fmt.Errorf("%s: expired metadata at %s", view, w.now)
	}
	if got := sortedKeys(tg.Signed.Targets); !slices.Equal(got, listing) {
		return fmt.Errorf("%s lists %v, want %v", view, got, listing)
	}
	for _, n := range staged {
		var c struct{ Tags []string }
		if err := json.Unmarshal(*tg.Signed.Targets[n].Custom, &c); err != nil {
			return err
		}
		if !slices.Equal(c.Tags, []string{stagedTag}) {
			return fmt.Errorf("%s serves staged %s with tags %v", view, n, c.Tags)
		}
	}
	return nil
}

func atLeast(v, trusted versions) bool {
	return v.targets >= trusted.targets && v.snapshot >= trusted.snapshot && v.timestamp >= trusted.timestamp
}

// check verifies the state after a step (see TestWaveVersionInvariant).
func (w *waveWorld) check() error {
	rf, err := w.r.Root(w.r.RootVersion())
	if err != nil {
		return err
	}
	root, err := metadata.Root().FromBytes(rf.Data)
	if err != nil {
		return err
	}
	if got, want := w.r.Tags(), w.tags; !slices.Equal(got, want) {
		return fmt.Errorf("Tags() = %v, want %v", got, want)
	}
	var waves []WaveInfo
	for _, tag := range sortedKeys(w.model.waves) {
		mw := w.model.waves[tag]
		waves = append(waves, WaveInfo{Tag: tag, Name: mw.name, Targets: mw.staged})
	}
	if got := w.r.Waves(); !slices.EqualFunc(got, waves, func(a, b WaveInfo) bool {
		return a.Tag == b.Tag && a.Name == b.Name && slices.Equal(a.Targets, b.Targets)
	}) {
		return fmt.Errorf("Waves() = %v, want %v", got, waves)
	}
	served := map[string]versions{}
	for _, tag := range w.tags {
		if err := w.verifyView(root, tag, w.expected(tag, false), "", nil); err != nil {
			return err
		}
		if served[tag], err = w.servedVersions(tag); err != nil {
			return err
		}
		mw, ok := w.model.waves[tag]
		if !ok {
			continue
		}
		view := WaveView(tag, mw.name)
		if err := w.verifyView(root, view, w.expected(tag, true), tag, mw.staged); err != nil {
			return err
		}
		if served[view], err = w.servedVersions(view); err != nil {
			return err
		}
		// (1) The wave view is ahead of its tag in every role.
		if !served[view].allAbove(served[tag]) {
			return fmt.Errorf("invariant (1): wave view %s %+v is not above tag %+v", view, served[view], served[tag])
		}
	}
	// (2) A closed wave's devices return to a tag view ahead of it.
	for _, c := range w.closed {
		if !served[c.tag].allAbove(c.last) {
			return fmt.Errorf("invariant (2): tag %s %+v is not above its closed wave's last %+v", c.tag, served[c.tag], c.last)
		}
	}
	for i, c := range w.clients {
		mw, open := w.model.waves[c.tag]
		switch {
		case c.view != c.tag && (!open || c.view != WaveView(c.tag, mw.name)):
			c.view = c.tag // its wave closed
		case c.view == c.tag && open && w.rnd.IntN(3) == 0:
			c.view = WaveView(c.tag, mw.name) // a rollout step released it
		}
		reachable := []string{c.view}
		if c.view == c.tag && open {
			reachable = append(reachable, WaveView(c.tag, mw.name))
		}
		for _, v := range reachable {
			if !atLeast(served[v], c.trusted) {
				return fmt.Errorf("client %d trusted %+v and would see %+v in %s", i, c.trusted, served[v], v)
			}
		}
		c.trusted = served[c.view]
		if c.dev == nil {
			continue
		}
		c.dev.tag = c.view
		target := ""
		if c.view != c.tag {
			target = mw.staged[0]
		}
		got, err := c.dev.update(w.r, w.now, w.images, target)
		if err != nil {
			return fmt.Errorf("go-tuf client %d in %s: %v", i, c.view, err)
		}
		if target != "" && string(got) != string(w.images[target]) {
			return fmt.Errorf("go-tuf client %d in %s downloaded the wrong bytes for %s", i, c.view, target)
		}
	}
	return nil
}
