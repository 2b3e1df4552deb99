package tufrepo

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// consistentHistory is how many versions of snapshot.json and targets.json
// stay servable as {N}.snapshot.json / {N}.targets.json with consistent
// snapshots on: a client that read an older timestamp a moment before an
// update can still finish its refresh.
const consistentHistory = 3

// RoleKeys are the keys of one role and how many of them must sign.
type RoleKeys struct {
	Keys []*PrivateKey
	// Threshold is the number of signatures root demands; 0 means 1.
	Threshold int
}

// Setup holds the keys a new repository starts with.
type Setup struct {
	Root, Targets, Snapshot, Timestamp RoleKeys
	// OfflineRoot keeps the root keys out of the repository (and out of
	// the data directory): they sign root version 1 and are then
	// forgotten. Operations that re-sign root take them as arguments.
	OfflineRoot bool
}

// GenerateSetup makes one new key of type t per role, threshold 1, with the
// root key held by the repository: the set-up of tests and simulations.
//
// Errors: ErrBadKey as GenerateKey.
func GenerateSetup(t KeyType, random io.Reader) (Setup, error) {
	var s Setup
	for _, rk := range []*RoleKeys{&s.Root, &s.Targets, &s.Snapshot, &s.Timestamp} {
		k, err := GenerateKey(t, random)
		if err != nil {
			return Setup{}, err
		}
		*rk = RoleKeys{Keys: []*PrivateKey{k}, Threshold: 1}
	}
	return s, nil
}

func (s Setup) role(r Role) RoleKeys {
	switch r {
	case RoleRoot:
		return s.Root
	case RoleTargets:
		return s.Targets
	case RoleSnapshot:
		return s.Snapshot
	default:
		return s.Timestamp
	}
}

// signedFile is a role's current metadata in a view.
type signedFile struct {
	version int64
	expires time.Time
	file    File
}

// view is one tag's targets, snapshot and timestamp.
type view struct {
	targets, snapshot, timestamp signedFile
	// history holds {N}.targets.json and {N}.snapshot.json, oldest first,
	// when consistent snapshots are on.
	history []File
}

type rootVersion struct {
	signed metadata.RootType
	file   File
}

type targetRec struct {
	t Target
	// canon is the canonical JSON of the target's entry in targets.json,
	// encoded once when the target is added.
	canon []byte
}

func newTargetRec(t Target) (*targetRec, error) {
	c, err := canonical(t.entry())
	if err != nil {
		return nil, err
	}
	return &targetRec{t: t, canon: c}, nil
}

// state is everything an operation changes. Operations work on a clone and
// swap it in only after it is stored, so a failed operation changes nothing
// and readers never see half an update.
type state struct {
	roots   []rootVersion
	keys    map[string]*PrivateKey // keys the repository holds, by key ID
	targets map[string]*targetRec
	// views holds the tag views and, under WaveView names, the wave views.
	views map[string]*view
	// waves holds the open wave of each tag that has one. A wave record is
	// never changed in place: operations replace it.
	waves map[string]*wave
}

func (s *state) clone() *state {
	return &state{
		roots:   s.roots[:len(s.roots):len(s.roots)],
		keys:    maps.Clone(s.keys),
		targets: maps.Clone(s.targets),
		views:   maps.Clone(s.views),
		waves:   maps.Clone(s.waves),
	}
}

func (s *state) root() *rootVersion { return &s.roots[len(s.roots)-1] }

// Repo is a signed TUF repository with one view per device tag. It is safe
// for concurrent use: fetches run in parallel with each other and see either
// the state before an operation or the one after it.
type Repo struct {
	mu          sync.RWMutex
	cfg         Config
	offlineRoot bool
	st          *state
	disk        *dirStore // nil for a repository in memory
}

// New creates a repository in memory, with root version 1 signed at now and
// no tags yet. Nothing is written anywhere: the simulator's and tests' form.
//
// Errors: ErrBadConfig, ErrBadKey (empty role, threshold out of range,
// duplicate key), ErrMissingKeys never (all keys are given).
func New(now time.Time, cfg Config, setup Setup) (*Repo, []Warning, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	r := &Repo{cfg: cfg, offlineRoot: setup.OfflineRoot, st: newState()}
	signed := metadata.RootType{
		Type:               metadata.ROOT,
		SpecVersion:        metadata.SPECIFICATION_VERSION,
		ConsistentSnapshot: cfg.ConsistentSnapshot,
		Version:            1,
		Expires:            expiresAt(now, cfg.Expiry.Root),
		Keys:               map[string]*metadata.Key{},
		Roles:              map[string]*metadata.Role{},
	}
	for _, role := range allRoles {
		rk := setup.role(role)
		ids, err := checkRoleKeys(role, rk.Keys, &rk.Threshold)
		if err != nil {
			return nil, nil, err
		}
		for _, k := range rk.Keys {
			signed.Keys[k.id] = k.Public()
			if role != RoleRoot || !setup.OfflineRoot {
				r.st.keys[k.id] = k
			}
		}
		signed.Roles[string(role)] = &metadata.Role{KeyIDs: ids, Threshold: rk.Threshold}
	}
	f, err := signFile("1.root.json", signed, setup.Root.Keys, cfg.Random)
	if err != nil {
		return nil, nil, err
	}
	r.st.roots = []rootVersion{{signed: signed, file: f}}
	return r, cfg.fileWarnings("", RoleRoot, f), nil
}

// checkRoleKeys validates one role's keys and returns their sorted IDs;
// a zero threshold becomes 1.
func checkRoleKeys(role Role, keys []*PrivateKey, threshold *int) ([]string, error) {
	if len(keys) == 0 {
		return nil, badKey("role %s has no keys", role)
	}
	if *threshold == 0 {
		*threshold = 1
	}
	if *threshold < 1 || *threshold > len(keys) {
		return nil, badKey("role %s: threshold %d with %d keys", role, *threshold, len(keys))
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if k == nil {
			return nil, badKey("role %s: nil key", role)
		}
		if slices.Contains(ids, k.id) {
			return nil, badKey("role %s: key %s given twice", role, k.id)
		}
		ids = append(ids, k.id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Config returns the repository's configuration with defaults filled in.
func (r *Repo) Config() Config {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cfg
}

// signers returns the keys from held and extra that sign role under root,
// or a *KeysError when they cannot meet its threshold.
func signers(role Role, root *metadata.RootType, held map[string]*PrivateKey, extra []*PrivateKey) ([]*PrivateKey, error) {
	rr := root.Roles[string(role)]
	var ks []*PrivateKey
	for _, id := range rr.KeyIDs {
		if k, ok := held[id]; ok {
			ks = append(ks, k)
			continue
		}
		for _, e := range extra {
			if e != nil && e.id == id {
				ks = append(ks, e)
				break
			}
		}
	}
	if len(ks) < rr.Threshold {
		return nil, &KeysError{Role: role, Have: len(ks), Need: rr.Threshold}
	}
	return ks, nil
}

func newState() *state {
	return &state{keys: map[string]*PrivateKey{}, targets: map[string]*targetRec{}, views: map[string]*view{}, waves: map[string]*wave{}}
}

// versions are the versions of a view's three roles.
type versions struct {
	targets, snapshot, timestamp int64
}

// versions returns the view's current versions.
func (v *view) versions() versions {
	return versions{targets: v.targets.version, snapshot: v.snapshot.version, timestamp: v.timestamp.version}
}

// above is the floor that puts every role strictly above v.
func (v versions) above() versions {
	return versions{targets: v.targets + 1, snapshot: v.snapshot + 1, timestamp: v.timestamp + 1}
}

// nextVersion is the version a re-signed role gets: one more than its own,
// and at least floor, which is how a view switched to by a device stays
// ahead of the view it switches from (see the package's "Waves").
func nextVersion(own, floor int64) int64 { return max(own+1, floor) }

// publish re-signs a view (a tag's or a wave's) at now: targets (when
// rebuild), snapshot (when rebuild or bumpSnapshot) and always the
// timestamp, each with its version raised by one and to at least floor. A
// view that does not exist yet gets a new one starting at version 1 (or the
// floor). Callers publish a tag's view through publishTag, which keeps its
// wave view above it.
func (r *Repo) publish(tx *state, tag string, now time.Time, rebuild, bumpSnapshot bool, floor versions) error {
	nv := &view{}
	if old, ok := tx.views[tag]; ok {
		*nv = *old
		nv.history = slices.Clone(old.history)
	} else {
		rebuild = true
	}
	root := &tx.root().signed
	if rebuild {
		version, expires := nextVersion(nv.targets.version, floor.targets), expiresAt(now, r.cfg.Expiry.Targets)
		names, entries := tx.listing(tag)
		ks, err := signers(RoleTargets, root, tx.keys, nil)
		if err != nil {
			return err
		}
		f, err := signPayload("targets.json", canonicalTargets(version, expires, names, entries), ks, r.cfg.Random)
		if err != nil {
			return err
		}
		nv.targets = signedFile{version: version, expires: expires, file: f}
		if r.cfg.ConsistentSnapshot {
			nv.addHistory(f, version)
		}
	}
	if rebuild || bumpSnapshot {
		snap := metadata.SnapshotType{
			Type:        metadata.SNAPSHOT,
			SpecVersion: metadata.SPECIFICATION_VERSION,
			Version:     nextVersion(nv.snapshot.version, floor.snapshot),
			Expires:     expiresAt(now, r.cfg.Expiry.Snapshot),
			Meta:        map[string]*metadata.MetaFiles{"targets.json": metaFile(nv.targets)},
		}
		ks, err := signers(RoleSnapshot, root, tx.keys, nil)
		if err != nil {
			return err
		}
		f, err := signFile("snapshot.json", snap, ks, r.cfg.Random)
		if err != nil {
			return err
		}
		nv.snapshot = signedFile{version: snap.Version, expires: snap.Expires, file: f}
		if r.cfg.ConsistentSnapshot {
			nv.addHistory(f, snap.Version)
		}
	}
	ts := metadata.TimestampType{
		Type:        metadata.TIMESTAMP,
		SpecVersion: metadata.SPECIFICATION_VERSION,
		Version:     nextVersion(nv.timestamp.version, floor.timestamp),
		Expires:     expiresAt(now, r.cfg.Expiry.Timestamp),
		// libtufnano requires hashes, length and version here.
		Meta: map[string]*metadata.MetaFiles{"snapshot.json": metaFile(nv.snapshot)},
	}
	ks, err := signers(RoleTimestamp, root, tx.keys, nil)
	if err != nil {
		return err
	}
	f, err := signFile("timestamp.json", ts, ks, r.cfg.Random)
	if err != nil {
		return err
	}
	nv.timestamp = signedFile{version: ts.Version, expires: ts.Expires, file: f}
	tx.views[tag] = nv
	return nil
}

func metaFile(s signedFile) *metadata.MetaFiles {
	sum := sha256.Sum256(s.file.Data)
	return &metadata.MetaFiles{Length: int64(len(s.file.Data)), Hashes: metadata.Hashes{"sha256": sum[:]}, Version: s.version}
}

// addHistory keeps a versioned copy of a consistent-snapshot file, dropping
// the oldest of its role beyond consistentHistory.
func (v *view) addHistory(f File, version int64) {
	suffix := "." + f.Name
	f.Name = strconv.FormatInt(version, 10) + suffix
	v.history = append(v.history, f)
	n := 0
	for _, h := range v.history {
		if strings.HasSuffix(h.Name, suffix) {
			n++
		}
	}
	if n <= consistentHistory {
		return
	}
	for i, h := range v.history {
		if strings.HasSuffix(h.Name, suffix) {
			v.history = slices.Delete(v.history, i, i+1)
			return
		}
	}
}

// commit stores tx and makes it current, returning the warnings about every
// file that changed.
func (r *Repo) commit(tx *state) ([]Warning, error) {
	if r.disk != nil {
		if err := r.disk.save(tx); err != nil {
			return nil, err
		}
	}
	old := r.st
	r.st = tx
	var ws []Warning
	for _, rv := range tx.roots[len(old.roots):] {
		ws = append(ws, r.cfg.fileWarnings("", RoleRoot, rv.file)...)
	}
	for _, tag := range tx.viewNames() {
		v := tx.views[tag]
		ov := old.views[tag]
		if ov == v {
			continue
		}
		for _, role := range []Role{RoleTimestamp, RoleSnapshot, RoleTargets} {
			f := v.fileFor(role).file
			if ov != nil && ov.fileFor(role).file.SHA256 == f.SHA256 {
				continue
			}
			ws = append(ws, r.cfg.fileWarnings(tag, role, f)...)
		}
	}
	return ws, nil
}

func (v *view) fileFor(role Role) signedFile {
	switch role {
	case RoleTargets:
		return v.targets
	case RoleSnapshot:
		return v.snapshot
	default:
		return v.timestamp
	}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	return slices.Sorted(maps.Keys(m))
}

// AddTag creates an empty view for tag, so devices following it can refresh
// before any target carries the tag. Adding an existing tag does nothing.
//
// Errors: ErrBadTarget for an invalid tag name (a *TargetError with Field
// "tags"), ErrMissingKeys, and storage errors.
func (r *Repo) AddTag(now time.Time, tag string) ([]Warning, error) {
	if !validName(tag) {
		return nil, badTarget(tag, "tags", strconv.Quote(tag)+" is not a valid tag")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.st.views[tag]; ok {
		return nil, nil
	}
	tx := r.st.clone()
	if err := r.publish(tx, tag, now, true, true, versions{}); err != nil {
		return nil, err
	}
	return r.commit(tx)
}

// AddTarget lists t in the targets of every tag it carries (creating views
// for new tags) and re-signs their targets, snapshot and timestamp, and the
// wave views of those tags, which list the tag's targets too.
//
// Errors: a *TargetError matching ErrBadTarget (bad version string, hardware
// ID, tag, format or length) or ErrDuplicateTarget (the name exists, or is
// staged in an open wave: it becomes a repository target when that wave
// completes); ErrMissingKeys; storage errors.
func (r *Repo) AddTarget(now time.Time, t Target) ([]Warning, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	t = t.clone()
	name := t.Name()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.st.targets[name]; ok {
		return nil, &TargetError{Name: name, Err: ErrDuplicateTarget}
	}
	if tag, ok := r.st.stagedIn(name); ok {
		return nil, &TargetError{Name: name, Reason: "staged in wave " + WaveView(tag, r.st.waves[tag].name), Err: ErrDuplicateTarget}
	}
	rec, err := newTargetRec(t)
	if err != nil {
		return nil, err
	}
	tx := r.st.clone()
	tx.targets[name] = rec
	for _, tag := range sortedTags(t.Tags) {
		if err := r.publishTag(tx, tag, now, true, true); err != nil {
			return nil, err
		}
	}
	return r.commit(tx)
}

func sortedTags(tags []string) []string {
	s := slices.Clone(tags)
	slices.Sort(s)
	return slices.Compact(s)
}

// RemoveTargets prunes the named targets from every view that lists them and
// re-signs those views (the wave views of their tags included), like fioctl
// targets prune. It removes all or none. Views left empty stay, so their
// devices keep refreshing. Targets staged in a wave are not repository
// targets: cancel the wave to withdraw them.
//
// Errors: a *TargetError matching ErrUnknownTarget for the first name that
// does not exist (or is only staged); ErrMissingKeys; storage errors.
func (r *Repo) RemoveTargets(now time.Time, names ...string) ([]Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx := r.st.clone()
	var tags []string
	for _, name := range names {
		rec, ok := r.st.targets[name]
		if !ok {
			return nil, &TargetError{Name: name, Err: ErrUnknownTarget}
		}
		delete(tx.targets, name)
		tags = append(tags, rec.t.Tags...)
	}
	for _, tag := range sortedTags(tags) {
		if err := r.publishTag(tx, tag, now, true, true); err != nil {
			return nil, err
		}
	}
	return r.commit(tx)
}

// viewTags splits the views named by tags (tags or wave views; every tag
// when none are given) into the tags to re-sign with their wave views and
// the tags whose wave view alone is to be re-signed, checking each.
func (s *state) viewTags(tags []string) (whole, waveOnly []string, err error) {
	if len(tags) == 0 {
		return s.tagNames(), nil, nil
	}
	for _, name := range tags {
		if _, ok := s.views[name]; !ok {
			return nil, nil, &NotFoundError{Tag: name, Name: "timestamp.json", UnknownTag: true}
		}
		if tag, _, isWave := strings.Cut(name, waveSep); isWave {
			waveOnly = append(waveOnly, tag)
		} else {
			whole = append(whole, name)
		}
	}
	whole = sortedTags(whole)
	waveOnly = slices.DeleteFunc(sortedTags(waveOnly), func(tag string) bool { return slices.Contains(whole, tag) })
	return whole, waveOnly, nil
}

// ResignTimestamp signs a new timestamp (version + 1, fresh expiry) for the
// given views, or every view when none are given. A tag's wave view is
// re-signed with it, so its timestamp stays ahead of the tag's; a wave view
// (WaveView) may be named on its own.
//
// Errors: ErrUnknownTag, ErrMissingKeys, storage errors.
func (r *Repo) ResignTimestamp(now time.Time, tags ...string) ([]Warning, error) {
	return r.resign(now, tags, false)
}

// BumpSnapshot signs a new snapshot and timestamp for the given views, or
// every view when none are given; wave views as for ResignTimestamp.
//
// Errors: ErrUnknownTag, ErrMissingKeys, storage errors.
func (r *Repo) BumpSnapshot(now time.Time, tags ...string) ([]Warning, error) {
	return r.resign(now, tags, true)
}

func (r *Repo) resign(now time.Time, tags []string, snapshot bool) ([]Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	whole, waveOnly, err := r.st.viewTags(tags)
	if err != nil {
		return nil, err
	}
	tx := r.st.clone()
	for _, tag := range whole {
		if err := r.publishTag(tx, tag, now, false, snapshot); err != nil {
			return nil, err
		}
	}
	for _, tag := range waveOnly {
		if err := r.publishWave(tx, tag, now, false, snapshot); err != nil {
			return nil, err
		}
	}
	return r.commit(tx)
}

// Renew re-signs every role that has less than half of its period left at
// now: a view's timestamp, its snapshot and timestamp, or all three, and
// root when the repository holds enough root keys. The gateway calls it
// periodically (more often than half the timestamp period). A root it cannot
// re-sign is reported as a WarnExpiring; sign it with ExtendRoot.
//
// Errors: ErrMissingKeys for online roles, storage errors.
func (r *Repo) Renew(now time.Time) ([]Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.renewDue(now) {
		// Nearly every call: the gateway calls it every minute, and roles
		// last days. renew would store the same state and warn of nothing.
		return nil, nil
	}
	return r.renew(now)
}

// renew re-signs what is due at now and stores the result. The caller
// holds r.mu.
func (r *Repo) renew(now time.Time) ([]Warning, error) {
	tx := r.st.clone()
	var ws []Warning
	root := tx.root()
	if due(now, root.signed.Expires, r.cfg.Expiry.Root) {
		if err := r.newRoot(tx, now, func(*metadata.RootType) {}, nil); err != nil {
			if !errors.Is(err, ErrMissingKeys) {
				return nil, err
			}
			ws = append(ws, Warning{Kind: WarnExpiring, File: root.file.Name, Role: RoleRoot, Expires: root.signed.Expires})
		}
	}
	for _, tag := range tx.tagNames() {
		rebuild, snap, ts := r.dueRoles(now, tx.views[tag])
		if ts {
			if err := r.publish(tx, tag, now, rebuild, snap, versions{}); err != nil {
				return nil, err
			}
		}
		w, ok := tx.waves[tag]
		if !ok {
			continue
		}
		// The wave view is re-signed when it is due itself, and whenever
		// the tag's view was, so that it stays ahead of it.
		wRebuild, wSnap, wTS := r.dueRoles(now, tx.views[WaveView(tag, w.name)])
		if ts || wTS {
			if err := r.publishWave(tx, tag, now, rebuild || wRebuild, snap || wSnap); err != nil {
				return nil, err
			}
		}
	}
	cw, err := r.commit(tx)
	return append(ws, cw...), err
}

// renewDue reports whether Renew has anything to re-sign at now: the
// root, or a role of a tag's view or of its wave's view. The caller holds
// r.mu.
func (r *Repo) renewDue(now time.Time) bool {
	st := r.st
	if due(now, st.root().signed.Expires, r.cfg.Expiry.Root) {
		return true
	}
	for tag, v := range st.views {
		if strings.Contains(tag, waveSep) {
			continue // a wave view, looked at with its tag's
		}
		if _, _, ts := r.dueRoles(now, v); ts {
			return true
		}
		if w, ok := st.waves[tag]; ok {
			if _, _, ts := r.dueRoles(now, st.views[WaveView(tag, w.name)]); ts {
				return true
			}
		}
	}
	return false
}

// ExtendRoot signs root version N+1 with the same keys and a fresh expiry.
// rootKeys are root keys not held by the repository (an offline root).
//
// Errors: ErrMissingKeys when the old or new root threshold is not met;
// storage errors.
func (r *Repo) ExtendRoot(now time.Time, rootKeys ...*PrivateKey) ([]Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx := r.st.clone()
	if err := r.newRoot(tx, now, func(*metadata.RootType) {}, rootKeys); err != nil {
		return nil, err
	}
	return r.commit(tx)
}

// RotateKeys replaces the keys of role with keys at the given threshold
// (0 means 1) in a new root version N+1: Rotate with one Rotation.
//
// Errors: as Rotate.
func (r *Repo) RotateKeys(now time.Time, role Role, keys []*PrivateKey, threshold int, rootKeys ...*PrivateKey) ([]Warning, error) {
	return r.Rotate(now, []Rotation{{Role: role, Keys: keys, Threshold: threshold}}, rootKeys...)
}

// Rotation gives one role new keys.
type Rotation struct {
	Role Role
	Keys []*PrivateKey
	// Threshold is the number of signatures root demands; 0 means 1.
	Threshold int
}

// Rotate replaces the keys of every role in rotations in one new root
// version N+1, so that a client walks one step of the chain however many
// roles change. The new root is signed to threshold by the old root's root
// keys and by the new root's (for a root rotation, by the old and the new
// keys), as a client checks it (TUF §5.3.4-5); rootKeys are root keys the
// repository does not hold. New root keys are held only when the repository
// was not set up with OfflineRoot; new keys of the other roles are always
// held, and keys no role uses any more are dropped. When targets, snapshot
// or timestamp change, every view is then re-signed with the new keys.
//
// Errors: ErrBadKey (no keys, bad threshold, duplicate key), ErrBadConfig
// (no rotation, an unknown role or one given twice), ErrMissingKeys (root
// thresholds not met), storage errors.
func (r *Repo) Rotate(now time.Time, rotations []Rotation, rootKeys ...*PrivateKey) ([]Warning, error) {
	if len(rotations) == 0 {
		return nil, badConfig("no role to rotate")
	}
	rotations = slices.Clone(rotations) // thresholds are filled in
	ids := make([][]string, len(rotations))
	extra := slices.Clone(rootKeys)
	var rebuild, snapshot, online bool
	for i := range rotations {
		rot := &rotations[i]
		if !rot.Role.valid() {
			return nil, badConfig("unknown role %q", rot.Role)
		}
		for _, prev := range rotations[:i] {
			if prev.Role == rot.Role {
				return nil, badConfig("role %s given twice", rot.Role)
			}
		}
		var err error
		if ids[i], err = checkRoleKeys(rot.Role, rot.Keys, &rot.Threshold); err != nil {
			return nil, err
		}
		switch rot.Role {
		case RoleRoot:
			extra = append(extra, rot.Keys...)
		case RoleTargets:
			rebuild, snapshot, online = true, true, true
		case RoleSnapshot:
			snapshot, online = true, true
		default:
			online = true
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tx := r.st.clone()
	err := r.newRoot(tx, now, func(nr *metadata.RootType) {
		for i, rot := range rotations {
			nr.Roles[string(rot.Role)] = &metadata.Role{KeyIDs: ids[i], Threshold: rot.Threshold}
			for _, k := range rot.Keys {
				nr.Keys[k.id] = k.Public()
			}
		}
	}, extra)
	if err != nil {
		return nil, err
	}
	for _, rot := range rotations {
		if rot.Role != RoleRoot || !r.offlineRoot {
			for _, k := range rot.Keys {
				tx.keys[k.id] = k
			}
		}
	}
	// Keys no role of the new root uses are retired: stop holding them.
	nr := &tx.root().signed
	for id := range tx.keys {
		if _, ok := nr.Keys[id]; !ok {
			delete(tx.keys, id)
		}
	}
	if online {
		for _, tag := range tx.tagNames() {
			if err := r.publishTag(tx, tag, now, rebuild, snapshot); err != nil {
				return nil, err
			}
		}
	}
	return r.commit(tx)
}

// newRoot appends root version N+1 to tx: a copy of version N changed by
// edit, expiring a root period after now, signed by every available key of
// the old and the new root role once both thresholds are met.
func (r *Repo) newRoot(tx *state, now time.Time, edit func(*metadata.RootType), extra []*PrivateKey) error {
	old := tx.root().signed
	nr := cloneRoot(old)
	nr.Version++
	nr.Expires = expiresAt(now, r.cfg.Expiry.Root)
	edit(&nr)
	// Drop keys no role uses, so root.json stays small.
	used := map[string]bool{}
	for _, rr := range nr.Roles {
		for _, id := range rr.KeyIDs {
			used[id] = true
		}
	}
	for id := range nr.Keys {
		if !used[id] {
			delete(nr.Keys, id)
		}
	}
	tx.roots = append(tx.roots, rootVersion{signed: nr})
	if err := r.signRoot(tx, &old, extra); err != nil {
		// Leave tx as it was: an unsigned root must never be committed.
		tx.roots = tx.roots[:len(tx.roots)-1]
		return err
	}
	return nil
}

// signRoot signs the latest root of tx for a client that trusts prev.
func (r *Repo) signRoot(tx *state, prev *metadata.RootType, extra []*PrivateKey) error {
	rv := tx.root()
	oldKs, err := signers(RoleRoot, prev, tx.keys, extra)
	if err != nil {
		return err
	}
	newKs, err := signers(RoleRoot, &rv.signed, tx.keys, extra)
	if err != nil {
		return err
	}
	f, err := signFile(strconv.FormatInt(rv.signed.Version, 10)+".root.json", rv.signed, append(oldKs, newKs...), r.cfg.Random)
	if err != nil {
		return err
	}
	rv.file = f
	return nil
}

func cloneRoot(s metadata.RootType) metadata.RootType {
	s.Keys = maps.Clone(s.Keys)
	roles := make(map[string]*metadata.Role, len(s.Roles))
	for name, rr := range s.Roles {
		c := *rr
		c.KeyIDs = slices.Clone(rr.KeyIDs)
		roles[name] = &c
	}
	s.Roles = roles
	return s
}

// Tags lists the tags that have a view, sorted; wave views are listed by
// Waves.
func (r *Repo) Tags() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.st.tagNames()
}

// Targets lists every repository target, sorted by name: targets staged in
// an open wave are not among them until the wave completes.
func (r *Repo) Targets() []Target {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ts := make([]Target, 0, len(r.st.targets))
	for _, name := range sortedKeys(r.st.targets) {
		ts = append(ts, r.st.targets[name].t.clone())
	}
	return ts
}

// Target returns the target called name.
func (r *Repo) Target(name string) (Target, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, ok := r.st.targets[name]
	if !ok {
		return Target{}, false
	}
	return rec.t.clone(), true
}

// RootVersion is the latest root version N.
func (r *Repo) RootVersion() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.st.root().signed.Version
}

// Root returns {version}.root.json: version 1 is what devices are
// provisioned with.
//
// Errors: ErrNotFound for a version that does not exist.
func (r *Repo) Root(version int64) (File, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if version < 1 || version > int64(len(r.st.roots)) {
		return File{}, &NotFoundError{Name: strconv.FormatInt(version, 10) + ".root.json"}
	}
	return r.st.roots[version-1].file, nil
}

// RootInfo describes the current root: what a device that has followed the
// root chain trusts, and which of those keys the repository can sign with.
type RootInfo struct {
	Version            int64
	Expires            time.Time
	ConsistentSnapshot bool
	// OfflineRoot reports a repository set up with Setup.OfflineRoot: it
	// never holds a root key, so every new root needs keys given to it and
	// the new root keys of a rotation are kept only by the caller.
	OfflineRoot bool
	// Roles are root, targets, snapshot and timestamp, in that order.
	Roles []RoleInfo
}

// RoleInfo is one role's entry in root: its keys and threshold.
type RoleInfo struct {
	Role      Role
	Threshold int
	// Keys are sorted by ID, as root lists them.
	Keys []KeyInfo
}

// KeyInfo is one key a role lists.
type KeyInfo struct {
	ID   string
	Type KeyType
	// Held reports that the repository holds the private key and signs
	// with it by itself; a key not held must be given to the operation.
	Held bool
}

// Role returns the entry of role r; the zero RoleInfo for an unknown role.
func (ri RootInfo) Role(r Role) RoleInfo {
	for _, x := range ri.Roles {
		if x.Role == r {
			return x
		}
	}
	return RoleInfo{}
}

// KeyIDs lists the role's key IDs, sorted.
func (ri RoleInfo) KeyIDs() []string {
	ids := make([]string, len(ri.Keys))
	for i, k := range ri.Keys {
		ids[i] = k.ID
	}
	return ids
}

// RootInfo describes the current root version. It is read from the
// repository's own state, so it needs no parsing of the served root.json.
func (r *Repo) RootInfo() RootInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	root := &r.st.root().signed
	ri := RootInfo{
		Version: root.Version, Expires: root.Expires, ConsistentSnapshot: root.ConsistentSnapshot,
		OfflineRoot: r.offlineRoot,
	}
	for _, role := range allRoles {
		rr := root.Roles[string(role)]
		ro := RoleInfo{Role: role, Threshold: rr.Threshold}
		for _, id := range rr.KeyIDs {
			_, held := r.st.keys[id]
			ro.Keys = append(ro.Keys, KeyInfo{ID: id, Type: keyTypeOf(root.Keys[id]), Held: held})
		}
		ri.Roles = append(ri.Roles, ro)
	}
	return ri
}

// ViewInfo describes a tag's view: versions and expiries of its roles and the
// targets it lists.
type ViewInfo struct {
	Tag                                               string
	TargetsVersion, SnapshotVersion, TimestampVersion int64
	TargetsExpires, SnapshotExpires, TimestampExpires time.Time
	Targets                                           []string
}

// View describes the view of tag, or of a wave view named by WaveView.
//
// Errors: ErrUnknownTag.
func (r *Repo) View(tag string) (ViewInfo, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.st.views[tag]
	if !ok {
		return ViewInfo{}, &NotFoundError{Tag: tag, Name: "targets.json", UnknownTag: true}
	}
	vi := ViewInfo{
		Tag:            tag,
		TargetsVersion: v.targets.version, SnapshotVersion: v.snapshot.version, TimestampVersion: v.timestamp.version,
		TargetsExpires: v.targets.expires, SnapshotExpires: v.snapshot.expires, TimestampExpires: v.timestamp.expires,
	}
	vi.Targets, _ = r.st.listing(tag)
	return vi, nil
}

// Fetch returns the file a device following tag (or a wave view named by
// WaveView) gets for GET /repo/<name>:
// "{N}.root.json" (the same for every tag, and served even for an unknown
// tag so a device can always follow the root chain), "timestamp.json",
// "snapshot.json", "targets.json", and with consistent snapshots
// "{N}.snapshot.json" and "{N}.targets.json" for recent N. The returned
// File.Data is shared and must not be modified.
//
// Errors: a *NotFoundError matching ErrNotFound, and ErrUnknownTag when the
// tag has no view.
func (r *Repo) Fetch(tag, name string) (File, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n, ok := rootVersionOf(name); ok {
		if n > int64(len(r.st.roots)) {
			return File{}, &NotFoundError{Tag: tag, Name: name}
		}
		return r.st.roots[n-1].file, nil
	}
	v, ok := r.st.views[tag]
	if !ok {
		return File{}, &NotFoundError{Tag: tag, Name: name, UnknownTag: true}
	}
	switch name {
	case "timestamp.json":
		return v.timestamp.file, nil
	case "snapshot.json":
		return v.snapshot.file, nil
	case "targets.json":
		return v.targets.file, nil
	}
	for _, h := range v.history {
		if h.Name == name {
			return h, nil
		}
	}
	return File{}, &NotFoundError{Tag: tag, Name: name}
}

// rootVersionOf parses "{N}.root.json" with N a positive decimal without
// leading zeros.
func rootVersionOf(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".root.json")
	if !ok || s == "" || s[0] == '0' || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// Files lists every file a device following tag (or a wave view named by
// WaveView) can fetch, in a stable order: the root chain, then
// timestamp.json, snapshot.json, targets.json and any versioned copies.
//
// Errors: ErrUnknownTag.
func (r *Repo) Files(tag string) ([]File, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.st.views[tag]
	if !ok {
		return nil, &NotFoundError{Tag: tag, Name: "targets.json", UnknownTag: true}
	}
	fs := make([]File, 0, len(r.st.roots)+3+len(v.history))
	for _, rv := range r.st.roots {
		fs = append(fs, rv.file)
	}
	fs = append(fs, v.timestamp.file, v.snapshot.file, v.targets.file)
	hist := slices.Clone(v.history)
	slices.SortFunc(hist, func(a, b File) int { return cmp.Compare(a.Name, b.Name) })
	return append(fs, hist...), nil
}

// Check reports every file over the device limits and every role due for
// renewal at now, in a stable order: root files, then tags sorted, each in
// the order a device fetches them (timestamp, snapshot, targets); a wave
// view, named by WaveView, sorts right after its tag.
func (r *Repo) Check(now time.Time) []Warning {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var ws []Warning
	for _, rv := range r.st.roots {
		ws = append(ws, r.cfg.fileWarnings("", RoleRoot, rv.file)...)
	}
	root := r.st.root()
	if due(now, root.signed.Expires, r.cfg.Expiry.Root) {
		ws = append(ws, Warning{Kind: WarnExpiring, File: root.file.Name, Role: RoleRoot, Expires: root.signed.Expires})
	}
	for _, tag := range r.st.viewNames() {
		v := r.st.views[tag]
		for _, role := range []Role{RoleTimestamp, RoleSnapshot, RoleTargets} {
			sf := v.fileFor(role)
			ws = append(ws, r.cfg.fileWarnings(tag, role, sf.file)...)
			if due(now, sf.expires, r.cfg.Expiry.For(role)) {
				ws = append(ws, Warning{Kind: WarnExpiring, Tag: tag, File: sf.file.Name, Role: role, Expires: sf.expires})
			}
		}
	}
	return ws
}

// String summarises the repository for logs: root version, targets, tags.
func (r *Repo) String() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return fmt.Sprintf("tufrepo: root v%d, %d targets, %d tags, %d waves", r.st.root().signed.Version, len(r.st.targets), len(r.st.views)-len(r.st.waves), len(r.st.waves))
}
