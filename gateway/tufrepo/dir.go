package tufrepo

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fleetsim/fleetsim/internal/vfsutil"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The data directory, on a vfs.FS (the operating system's, or memory):
//
//	config.json              the Config (expiries, limits, offline root)
//	manifest.json            which stored file is served under which name,
//	                         and the open waves with their staged targets
//	metadata/<sha256>.json   served files, named by the SHA-256 of their bytes
//	keys/<keyid>.pem         held private keys, PKCS #8 PEM, mode 0600
//
// Every file is written to a temporary name and renamed into place. An
// operation writes its new metadata files and keys first and the manifest
// last, so the rename of manifest.json is the one atomic step that publishes
// a new timestamp, snapshot and targets together; a crash before it leaves
// the previous repository intact, and files nobody references are removed
// afterwards.
const (
	configFile   = "config.json"
	manifestFile = "manifest.json"
	metadataDir  = "metadata"
	keysDir      = "keys"
	storeFormat  = 1
)

type storedConfig struct {
	Format             int   `json:"format"`
	RootExpiry         int64 `json:"root_expiry_seconds"`
	TargetsExpiry      int64 `json:"targets_expiry_seconds"`
	SnapshotExpiry     int64 `json:"snapshot_expiry_seconds"`
	TimestampExpiry    int64 `json:"timestamp_expiry_seconds"`
	DeviceBuffer       int   `json:"device_buffer"`
	MaxSignatures      int   `json:"max_signatures"`
	ConsistentSnapshot bool  `json:"consistent_snapshot"`
	OfflineRoot        bool  `json:"offline_root"`
}

type manifest struct {
	Format int `json:"format"`
	// Roots are the SHA-256 of {N}.root.json at index N-1.
	Roots []string `json:"roots"`
	// Tags map each tag to its served names and their SHA-256.
	Tags map[string]map[string]string `json:"tags"`
	// Waves map each tag with an open wave to that wave. Stores written
	// before waves existed have no such field: they have no waves.
	Waves map[string]storedWave `json:"waves,omitempty"`
}

// storedWave is an open wave: the staged targets themselves are read back
// from the wave view's targets.json, which lists them with their entries.
type storedWave struct {
	Name string `json:"name"`
	// Staged are the staged target names, sorted.
	Staged []string `json:"staged"`
	// Files map the wave view's served names to their SHA-256, as Tags do.
	Files map[string]string `json:"files"`
}

type dirStore struct {
	fs      vfs.FS
	dir     string
	objects map[string]bool // SHA-256 of files under metadata/
	keys    map[string]bool // key IDs under keys/
	// write is writeFileAtomic on fs; tests replace it to fail at a chosen
	// write, as a crash or a full disk would.
	write func(path string, data []byte, perm fs.FileMode) error
}

func newDirStore(fsys vfs.FS, dir string) *dirStore {
	return &dirStore{
		fs: fsys, dir: dir, objects: map[string]bool{}, keys: map[string]bool{},
		write: func(path string, data []byte, perm fs.FileMode) error {
			return writeFileAtomic(fsys, path, data, perm)
		},
	}
}

// Create creates a repository like New and stores it in dir on the
// operating system's file system: CreateFS on vfs.Default.
func Create(dir string, now time.Time, cfg Config, setup Setup) (*Repo, []Warning, error) {
	return CreateFS(vfs.Default, dir, now, cfg, setup)
}

// CreateFS creates a repository like New and stores it in dir on fsys; dir
// must not hold one already (it is created if missing). The directory's
// layout is described in the package's dir.go. On vfs.NewMem the repository
// touches no disk, and OpenFS on the same fsys value loads it again.
//
// Errors: as New; ErrExists; file system errors.
func CreateFS(fsys vfs.FS, dir string, now time.Time, cfg Config, setup Setup) (*Repo, []Warning, error) {
	if _, err := fsys.Stat(fsys.PathJoin(dir, configFile)); err == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrExists, dir)
	}
	r, ws, err := New(now, cfg, setup)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range []string{dir, fsys.PathJoin(dir, metadataDir)} {
		if err := fsys.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	// Keys never sit in a directory others can list.
	if err := fsys.MkdirAll(fsys.PathJoin(dir, keysDir), 0o700); err != nil {
		return nil, nil, err
	}
	c := r.cfg
	sc := storedConfig{
		Format:     storeFormat,
		RootExpiry: int64(c.Expiry.Root / time.Second), TargetsExpiry: int64(c.Expiry.Targets / time.Second),
		SnapshotExpiry: int64(c.Expiry.Snapshot / time.Second), TimestampExpiry: int64(c.Expiry.Timestamp / time.Second),
		DeviceBuffer: c.DeviceBuffer, MaxSignatures: c.MaxSignatures,
		ConsistentSnapshot: c.ConsistentSnapshot, OfflineRoot: r.offlineRoot,
	}
	data, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	d := newDirStore(fsys, dir)
	if err := d.save(r.st); err != nil {
		return nil, nil, err
	}
	// config.json goes last: its presence marks a complete repository.
	if err := writeFileAtomic(fsys, fsys.PathJoin(dir, configFile), append(data, '\n'), 0o644); err != nil {
		return nil, nil, err
	}
	r.disk = d
	return r, ws, nil
}

// writeFileAtomic writes data to path on fsys through a temporary file in
// the same directory, synced before the rename and the directory synced
// after, so path holds either its old or its new content after a crash.
func writeFileAtomic(fsys vfs.FS, path string, data []byte, perm fs.FileMode) error {
	dir := fsys.PathDir(path)
	tmp := fsys.PathJoin(dir, ".tmp-"+fsys.PathBase(path)+"-"+vfsutil.TempSuffix())
	f, err := fsys.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	open, ok := true, false
	defer func() {
		if !ok {
			if open {
				f.Close()
			}
			fsys.Remove(tmp)
		}
	}()
	// Before any byte is written: a key file is never readable by others.
	if err := vfsutil.SetMode(fsys, f, tmp, perm); err != nil {
		return err
	}
	// A vfs.File may scribble on the bytes it is given (vfs.MemFS does under
	// the race detector), and data is what the repository serves.
	if _, err := f.Write(bytes.Clone(data)); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	open = false
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := fsys.OpenDir(dir); err == nil {
		// Best effort: not every file system can sync a directory.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// readFile reads the whole file name on fsys.
func readFile(fsys vfs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// buildManifest describes st for manifest.json and returns it with the
// served bytes it references, by SHA-256.
func buildManifest(st *state) (manifest, map[string][]byte) {
	m := manifest{Format: storeFormat, Tags: map[string]map[string]string{}}
	refs := map[string][]byte{}
	for _, rv := range st.roots {
		m.Roots = append(m.Roots, rv.file.SHA256)
		refs[rv.file.SHA256] = rv.file.Data
	}
	for name, v := range st.views {
		files := map[string]string{}
		for _, f := range append([]File{v.timestamp.file, v.snapshot.file, v.targets.file}, v.history...) {
			files[f.Name] = f.SHA256
			refs[f.SHA256] = f.Data
		}
		tag, _, isWave := strings.Cut(name, waveSep)
		if !isWave {
			m.Tags[name] = files
			continue
		}
		if m.Waves == nil {
			m.Waves = map[string]storedWave{}
		}
		w := st.waves[tag]
		m.Waves[tag] = storedWave{Name: w.name, Staged: sortedKeys(w.staged), Files: files}
	}
	return m, refs
}

// save stores st: new metadata files and keys, then the manifest, then the
// removal of what st no longer references.
func (d *dirStore) save(st *state) error {
	m, refs := buildManifest(st)
	for _, sum := range sortedKeys(refs) {
		if d.objects[sum] {
			continue
		}
		if err := d.write(d.fs.PathJoin(d.dir, metadataDir, sum+".json"), refs[sum], 0o644); err != nil {
			return err
		}
		d.objects[sum] = true
	}
	for _, id := range sortedKeys(st.keys) {
		if d.keys[id] {
			continue
		}
		if err := d.write(d.fs.PathJoin(d.dir, keysDir, id+".pem"), st.keys[id].MarshalPEM(), 0o600); err != nil {
			return err
		}
		d.keys[id] = true
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := d.write(d.fs.PathJoin(d.dir, manifestFile), append(data, '\n'), 0o644); err != nil {
		return err
	}
	// The new state is published; what follows is clean-up, and a file it
	// fails to remove is only litter, retried on the next save.
	for _, sum := range sortedKeys(d.objects) {
		if _, ok := refs[sum]; !ok {
			if err := d.fs.Remove(d.fs.PathJoin(d.dir, metadataDir, sum+".json")); err == nil || errors.Is(err, fs.ErrNotExist) {
				delete(d.objects, sum)
			}
		}
	}
	for _, id := range sortedKeys(d.keys) {
		if _, ok := st.keys[id]; !ok {
			if err := d.fs.Remove(d.fs.PathJoin(d.dir, keysDir, id+".pem")); err == nil || errors.Is(err, fs.ErrNotExist) {
				delete(d.keys, id)
			}
		}
	}
	return nil
}

// Open loads the repository stored in dir on the operating system's file
// system: OpenFS on vfs.Default.
func Open(dir string, random io.Reader) (*Repo, error) {
	return OpenFS(vfs.Default, dir, random)
}

// OpenFS loads the repository stored in dir on fsys. The served files are
// the stored bytes, so they are byte-identical to what was served before.
// random is the Config.Random source (needed only for RSA keys; it is never
// stored).
//
// Errors: ErrCorrupt (a *CorruptError naming the file) for stored data that
// does not load back; file system errors (fs.ErrNotExist when dir holds no
// repository).
func OpenFS(fsys vfs.FS, dir string, random io.Reader) (*Repo, error) {
	data, err := readFile(fsys, fsys.PathJoin(dir, configFile))
	if err != nil {
		return nil, err
	}
	var sc storedConfig
	if err := strictUnmarshal(data, &sc); err != nil {
		return nil, &CorruptError{File: configFile, Reason: err.Error()}
	}
	if sc.Format != storeFormat {
		return nil, &CorruptError{File: configFile, Reason: "unknown format " + strconv.Itoa(sc.Format)}
	}
	cfg := Config{
		Expiry: Expiry{
			Root: time.Duration(sc.RootExpiry) * time.Second, Targets: time.Duration(sc.TargetsExpiry) * time.Second,
			Snapshot: time.Duration(sc.SnapshotExpiry) * time.Second, Timestamp: time.Duration(sc.TimestampExpiry) * time.Second,
		},
		DeviceBuffer: sc.DeviceBuffer, MaxSignatures: sc.MaxSignatures, ConsistentSnapshot: sc.ConsistentSnapshot, Random: random,
	}
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, &CorruptError{File: configFile, Reason: err.Error()}
	}
	mdata, err := readFile(fsys, fsys.PathJoin(dir, manifestFile))
	if err != nil {
		return nil, err
	}
	d := newDirStore(fsys, dir)
	read := func(sum string) ([]byte, error) {
		b, err := readFile(fsys, fsys.PathJoin(dir, metadataDir, sum+".json"))
		if err != nil {
			return nil, err
		}
		d.objects[sum] = true
		return b, nil
	}
	keys := map[string]*PrivateKey{}
	names, err := fsys.List(fsys.PathJoin(dir, keysDir))
	if err != nil {
		return nil, err
	}
	// In name order, as os.ReadDir gave them: the key file reported for a
	// directory with several bad ones is the same on every run.
	slices.Sort(names)
	for _, name := range names {
		id, ok := strings.CutSuffix(name, ".pem")
		if !ok {
			continue
		}
		path := fsys.PathJoin(dir, keysDir, name)
		fi, err := fsys.Stat(path)
		if err != nil {
			return nil, err
		}
		if fi.IsDir() {
			continue
		}
		kb, err := readFile(fsys, path)
		if err != nil {
			return nil, err
		}
		k, err := ParsePrivateKey(kb)
		if err != nil {
			return nil, &CorruptError{File: filepath.Join(keysDir, name), Reason: err.Error()}
		}
		if k.id != id {
			return nil, &CorruptError{File: filepath.Join(keysDir, name), Reason: "key ID is " + k.id}
		}
		keys[id] = k
		d.keys[id] = true
	}
	st, err := loadState(mdata, read, keys)
	if err != nil {
		return nil, err
	}
	// A key file the latest root does not list is left over from an
	// operation that failed before its manifest was written (or from a
	// retired key whose removal failed): do not hold it. It stays in
	// d.keys, so the next save removes the file.
	for id := range st.keys {
		if _, ok := st.root().signed.Keys[id]; !ok {
			delete(st.keys, id)
		}
	}
	return &Repo{cfg: cfg, offlineRoot: sc.OfflineRoot, st: st, disk: d}, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// loadState rebuilds the state from a manifest and the stored files it names
// (read by SHA-256). It checks what a device would trip over: each file's
// hash, the root chain's versions, that every timestamp describes its
// snapshot and every snapshot its targets, and that each open wave is one
// OpenWave could have left (see loadWave).
func loadState(mdata []byte, read func(sum string) ([]byte, error), keys map[string]*PrivateKey) (*state, error) {
	var m manifest
	if err := strictUnmarshal(mdata, &m); err != nil {
		return nil, &CorruptError{File: manifestFile, Reason: err.Error()}
	}
	if m.Format != storeFormat || len(m.Roots) == 0 {
		return nil, &CorruptError{File: manifestFile, Reason: "unknown format or no root"}
	}
	st := newState()
	st.keys = keys
	load := func(name, sum string) (File, error) {
		if len(sum) != 64 {
			return File{}, &CorruptError{File: name, Reason: "bad hash in manifest"}
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return File{}, &CorruptError{File: name, Reason: "bad hash in manifest"}
		}
		b, err := read(sum)
		if err != nil {
			return File{}, &CorruptError{File: name, Reason: err.Error()}
		}
		f := newFile(name, b, 0)
		if f.SHA256 != sum {
			return File{}, &CorruptError{File: name, Reason: "content does not match its hash"}
		}
		return f, nil
	}
	for i, sum := range m.Roots {
		name := strconv.Itoa(i+1) + ".root.json"
		f, err := load(name, sum)
		if err != nil {
			return nil, err
		}
		md, err := parseMetadata[metadata.RootType](name, f.Data)
		if err != nil {
			return nil, err
		}
		if md.Signed.Version != int64(i+1) {
			return nil, &CorruptError{File: name, Reason: "holds root version " + strconv.FormatInt(md.Signed.Version, 10)}
		}
		for _, role := range allRoles {
			if md.Signed.Roles[string(role)] == nil {
				return nil, &CorruptError{File: name, Reason: "no " + string(role) + " role"}
			}
		}
		f.Signatures = len(md.Signatures)
		st.roots = append(st.roots, rootVersion{signed: md.Signed, file: f})
	}
	for _, tag := range sortedKeys(m.Tags) {
		if !validName(tag) {
			return nil, &CorruptError{File: manifestFile, Reason: "bad tag " + strconv.Quote(tag)}
		}
		v, listed, err := loadView(tag, m.Tags[tag], load)
		if err != nil {
			return nil, err
		}
		if err := st.addStoredTargets(tag, listed); err != nil {
			return nil, err
		}
		st.views[tag] = v
	}
	// Every tag a target carries has a view: targets were only ever
	// published through their tags' views.
	for name, rec := range st.targets {
		for _, tag := range rec.t.Tags {
			if _, ok := st.views[tag]; !ok {
				return nil, &CorruptError{File: manifestFile, Reason: name + " carries tag " + tag + " that has no view"}
			}
		}
	}
	for _, tag := range sortedKeys(m.Waves) {
		if err := st.loadWave(tag, m.Waves[tag], load); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// loadView loads the files of one view (a tag's, or a wave's under its
// WaveView name) and returns it with the targets its targets.json lists.
func loadView(label string, files map[string]string, load func(name, sum string) (File, error)) (*view, map[string]*metadata.TargetFiles, error) {
	v := &view{}
	var listed map[string]*metadata.TargetFiles
	for _, name := range sortedKeys(files) {
		f, err := load(name, files[name])
		if err != nil {
			return nil, nil, err
		}
		switch {
		case name == "targets.json":
			md, err := parseMetadata[metadata.TargetsType](name, f.Data)
			if err != nil {
				return nil, nil, err
			}
			f.Signatures = len(md.Signatures)
			v.targets = signedFile{version: md.Signed.Version, expires: md.Signed.Expires, file: f}
			listed = md.Signed.Targets
		case name == "snapshot.json":
			md, err := parseMetadata[metadata.SnapshotType](name, f.Data)
			if err != nil {
				return nil, nil, err
			}
			f.Signatures = len(md.Signatures)
			v.snapshot = signedFile{version: md.Signed.Version, expires: md.Signed.Expires, file: f}
		case name == "timestamp.json":
			md, err := parseMetadata[metadata.TimestampType](name, f.Data)
			if err != nil {
				return nil, nil, err
			}
			f.Signatures = len(md.Signatures)
			v.timestamp = signedFile{version: md.Signed.Version, expires: md.Signed.Expires, file: f}
		case isVersioned(name, "targets.json"), isVersioned(name, "snapshot.json"):
			v.history = append(v.history, f)
		default:
			return nil, nil, &CorruptError{File: manifestFile, Reason: "unexpected file " + strconv.Quote(name)}
		}
	}
	if v.targets.file.Data == nil || v.snapshot.file.Data == nil || v.timestamp.file.Data == nil {
		return nil, nil, &CorruptError{File: manifestFile, Reason: "view " + label + " lacks a role"}
	}
	// Versioned copies in version order, as addHistory keeps them.
	slices.SortStableFunc(v.history, func(a, b File) int {
		na, _ := strconv.ParseInt(strings.SplitN(a.Name, ".", 2)[0], 10, 64)
		nb, _ := strconv.ParseInt(strings.SplitN(b.Name, ".", 2)[0], 10, 64)
		return cmp.Compare(na, nb)
	})
	if err := checkChain(label, v); err != nil {
		return nil, nil, err
	}
	return v, listed, nil
}

// loadWave loads the open wave of tag after the tags and their targets. It
// checks what OpenWave guarantees: the tag has a view; the wave view lists
// exactly the tag's targets and the staged ones; a staged target carries
// exactly the tag and is the same image as any target or other staged
// target of its name; and every role of the wave view is above the tag
// view's, so devices moved into the wave accept it.
func (st *state) loadWave(tag string, sw storedWave, load func(name, sum string) (File, error)) error {
	if !validName(tag) || !ValidWaveName(sw.Name) {
		return &CorruptError{File: manifestFile, Reason: "bad wave " + strconv.Quote(WaveView(tag, sw.Name))}
	}
	label := WaveView(tag, sw.Name)
	tv, ok := st.views[tag]
	if !ok {
		return &CorruptError{File: manifestFile, Reason: "wave " + label + " of a tag without a view"}
	}
	if len(sw.Staged) == 0 || !slices.IsSorted(sw.Staged) || len(slices.Compact(slices.Clone(sw.Staged))) != len(sw.Staged) {
		return &CorruptError{File: manifestFile, Reason: "wave " + label + ": staged targets are not a sorted set"}
	}
	v, listed, err := loadView(label, sw.Files, load)
	if err != nil {
		return err
	}
	corrupt := func(reason string) error { return &CorruptError{File: label + "/targets.json", Reason: reason} }
	staged := make(map[string]*targetRec, len(sw.Staged))
	for _, name := range sw.Staged {
		tf, ok := listed[name]
		if !ok {
			return corrupt(name + " is staged but not listed")
		}
		t, err := targetFromEntry(name, tf)
		if err != nil {
			return corrupt(err.Error())
		}
		if !slices.Equal(t.Tags, []string{tag}) {
			return corrupt(name + " is staged with tags other than " + tag)
		}
		if rec, ok := st.targets[name]; ok && (rec.t.hasTag(tag) || !sameImage(rec.t, t)) {
			return corrupt(name + " is staged but clashes with the repository target")
		}
		if other, ok := st.stagedIn(name); ok && !sameImage(st.waves[other].staged[name].t, t) {
			return corrupt(name + " differs from the target staged for " + other)
		}
		rec, err := newTargetRec(t)
		if err != nil {
			return corrupt(err.Error())
		}
		staged[name] = rec
	}
	tagTargets := 0
	for _, name := range sortedKeys(st.targets) {
		rec := st.targets[name]
		if !rec.t.hasTag(tag) {
			continue
		}
		tagTargets++
		tf, ok := listed[name]
		if !ok {
			return corrupt("does not list " + name + ", a target of " + tag)
		}
		if t, err := targetFromEntry(name, tf); err != nil || !t.equal(rec.t) {
			return corrupt(name + " differs from the target of " + tag)
		}
	}
	if len(listed) != tagTargets+len(staged) {
		return corrupt("lists targets that are neither the tag's nor staged")
	}
	wv, base := v.versions(), tv.versions()
	if wv.targets <= base.targets || wv.snapshot <= base.snapshot || wv.timestamp <= base.timestamp {
		return &CorruptError{File: label + "/timestamp.json", Reason: "versions are not above the tag view's"}
	}
	st.views[label] = v
	st.waves[tag] = &wave{name: sw.Name, staged: staged}
	return nil
}

// addStoredTargets adds the targets a tag's stored targets.json lists. The
// repository keeps one record per target, so a target listed by several
// tags must be the same in each.
func (st *state) addStoredTargets(tag string, listed map[string]*metadata.TargetFiles) error {
	corrupt := func(reason string) error { return &CorruptError{File: tag + "/targets.json", Reason: reason} }
	// In name order, so the file reported for a repository with several
	// bad entries is the same on every run.
	for _, name := range sortedKeys(listed) {
		t, err := targetFromEntry(name, listed[name])
		if err != nil {
			return corrupt(err.Error())
		}
		if !t.hasTag(tag) {
			return corrupt(name + " does not carry the tag")
		}
		if rec, ok := st.targets[name]; ok {
			if !rec.t.equal(t) {
				return corrupt(name + " differs between tags")
			}
			continue
		}
		rec, err := newTargetRec(t)
		if err != nil {
			return corrupt(err.Error())
		}
		st.targets[name] = rec
	}
	return nil
}

func isVersioned(name, base string) bool {
	n, ok := strings.CutSuffix(name, "."+base)
	if !ok || n == "" || n[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(n, 10, 62)
	return err == nil
}

// checkChain verifies that timestamp → snapshot → targets describe each
// other by version, length and hash.
func checkChain(tag string, v *view) error {
	ts, err := parseMetadata[metadata.TimestampType]("timestamp.json", v.timestamp.file.Data)
	if err != nil {
		return err
	}
	if mf := ts.Signed.Meta["snapshot.json"]; mf == nil || mf.Version != v.snapshot.version || mf.VerifyLengthHashes(v.snapshot.file.Data) != nil {
		return &CorruptError{File: tag + "/timestamp.json", Reason: "does not describe snapshot.json"}
	}
	sn, err := parseMetadata[metadata.SnapshotType]("snapshot.json", v.snapshot.file.Data)
	if err != nil {
		return err
	}
	if mf := sn.Signed.Meta["targets.json"]; mf == nil || mf.Version != v.targets.version || mf.VerifyLengthHashes(v.targets.file.Data) != nil {
		return &CorruptError{File: tag + "/snapshot.json", Reason: "does not describe targets.json"}
	}
	return nil
}

// parseMetadata reads a stored metadata file with go-tuf's parser (which
// also checks _type and duplicate signatures).
func parseMetadata[T metadata.Roles](name string, data []byte) (md *metadata.Metadata[T], err error) {
	// go-tuf's JSON handling is not ours to vouch for against arbitrary
	// bytes; a stored file that trips it is corrupt, not a crash.
	defer func() {
		if p := recover(); p != nil {
			md, err = nil, &CorruptError{File: name, Reason: fmt.Sprint("unparseable: ", p)}
		}
	}()
	md, err = (&metadata.Metadata[T]{}).FromBytes(data)
	if err != nil {
		return nil, &CorruptError{File: name, Reason: err.Error()}
	}
	return md, nil
}
