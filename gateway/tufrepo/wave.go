package tufrepo

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// waveSep joins a tag and a wave name into a wave view's name. validName
// refuses it in tags and wave names, so a view name splits back uniquely.
const waveSep = "@"

// WaveView is the view name under which devices in wave of tag are served:
// pass it to Fetch, Files and View in place of a tag. It is tag + "@" + wave
// ('@' is not allowed in tags or wave names).
func WaveView(tag, wave string) string { return tag + waveSep + wave }

// ValidWaveName reports whether name can name a wave: the alphabet of tags,
// at most 64 bytes.
func ValidWaveName(name string) bool { return validName(name) }

// wave is a tag's open wave (Foundries waves, foundries.md §4): the targets
// of one version, staged for the tag but not yet its production targets.
type wave struct {
	name string
	// staged are the wave's targets with their tags rewritten to exactly
	// the wave's tag, as fioctl waves init rewrites them.
	staged map[string]*targetRec
}

// WaveInfo describes an open wave.
type WaveInfo struct {
	// Tag is the tag the wave stages targets for, Name the wave's name;
	// WaveView(Tag, Name) is its view.
	Tag, Name string
	// Targets are the staged target names, sorted.
	Targets []string
}

// tagNames lists the tags that have a view, sorted, without wave views.
func (s *state) tagNames() []string {
	names := make([]string, 0, len(s.views)-len(s.waves))
	for name := range s.views {
		if !strings.Contains(name, waveSep) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// viewNames lists every view: tags sorted, each followed by its wave view.
func (s *state) viewNames() []string {
	tags := s.tagNames()
	names := make([]string, 0, len(s.views))
	for _, tag := range tags {
		names = append(names, tag)
		if w, ok := s.waves[tag]; ok {
			names = append(names, WaveView(tag, w.name))
		}
	}
	return names
}

// listing returns the sorted target names a view lists and the records
// they are found in: a tag view lists the repository targets carrying the
// tag; a wave view lists those plus the wave's staged targets.
func (s *state) listing(view string) ([]string, map[string]*targetRec) {
	tag, _, isWave := strings.Cut(view, waveSep)
	var names []string
	for name, rec := range s.targets {
		if rec.t.hasTag(tag) {
			names = append(names, name)
		}
	}
	w := s.waves[tag]
	if !isWave || w == nil {
		slices.Sort(names)
		return names, s.targets
	}
	entries := make(map[string]*targetRec, len(names)+len(w.staged))
	for _, name := range names {
		entries[name] = s.targets[name]
	}
	for name, rec := range w.staged {
		names = append(names, name)
		entries[name] = rec
	}
	slices.Sort(names)
	return names, entries
}

// stagedIn returns the tag of the first open wave (by tag) that stages name.
func (s *state) stagedIn(name string) (string, bool) {
	for _, tag := range sortedKeys(s.waves) {
		if _, ok := s.waves[tag].staged[name]; ok {
			return tag, true
		}
	}
	return "", false
}

// sameImage reports whether two targets describe the same image for the same
// boards: everything but the tags.
func sameImage(a, b Target) bool {
	return slices.Equal(a.HardwareIDs, b.HardwareIDs) && a.Version == b.Version &&
		a.Format == b.Format && a.Length == b.Length && a.SHA256 == b.SHA256
}

// publishTag re-signs the view of tag and then, when the tag has an open
// wave, the wave's view with the same roles: the wave view lists the tag's
// targets too, and must stay ahead of the tag view's versions.
func (r *Repo) publishTag(tx *state, tag string, now time.Time, rebuild, bumpSnapshot bool) error {
	if err := r.publish(tx, tag, now, rebuild, bumpSnapshot, versions{}); err != nil {
		return err
	}
	if _, ok := tx.waves[tag]; !ok {
		return nil
	}
	return r.publishWave(tx, tag, now, rebuild, bumpSnapshot)
}

// publishWave re-signs the wave view of tag so that each of its roles has a
// version strictly above the tag view's: a device a rollout step moves from
// the tag view to the wave view must never see a version go down, which a
// TUF client refuses as a rollback. A role the tag view has caught up with
// is re-signed even when the caller did not ask for it.
func (r *Repo) publishWave(tx *state, tag string, now time.Time, rebuild, bumpSnapshot bool) error {
	name := WaveView(tag, tx.waves[tag].name)
	tv := tx.views[tag].versions()
	if wv, ok := tx.views[name]; ok {
		cur := wv.versions()
		rebuild = rebuild || cur.targets <= tv.targets
		bumpSnapshot = bumpSnapshot || cur.snapshot <= tv.snapshot
	}
	return r.publish(tx, name, now, rebuild, bumpSnapshot, tv.above())
}

// dueRoles says which roles of v Renew must re-sign at now; each implies the
// roles that describe it (targets → snapshot → timestamp).
func (r *Repo) dueRoles(now time.Time, v *view) (targets, snapshot, timestamp bool) {
	targets = due(now, v.targets.expires, r.cfg.Expiry.Targets)
	snapshot = targets || due(now, v.snapshot.expires, r.cfg.Expiry.Snapshot)
	timestamp = snapshot || due(now, v.timestamp.expires, r.cfg.Expiry.Timestamp)
	return targets, snapshot, timestamp
}

// OpenWave creates the wave view of tag: the tag's current targets plus
// targets, each with its tags rewritten to exactly [tag] (as fioctl waves
// init does). It creates the tag's view if it has none (like AddTag). The
// staged targets are not repository targets: Targets, Target and
// RemoveTargets do not see them until CompleteWave. Every role of the wave
// view gets a version above the tag view's, so a device moved into the wave
// accepts it.
//
// Errors: a *TargetError matching ErrBadTarget (an invalid target, tag or
// wave name, or no targets) or ErrDuplicateTarget (a name given twice, a
// name the tag's view already lists, or a name whose image differs from the
// repository target or the target staged in another wave of that name); a
// *WaveError matching ErrActiveWave when the tag already has a wave;
// ErrMissingKeys; storage errors.
func (r *Repo) OpenWave(now time.Time, tag, name string, targets []Target) ([]Warning, error) {
	if !validName(tag) {
		return nil, badTarget(tag, "tags", strconv.Quote(tag)+" is not a valid tag")
	}
	if !ValidWaveName(name) {
		return nil, badTarget(name, "wave", strconv.Quote(name)+" is not a valid wave name")
	}
	if len(targets) == 0 {
		return nil, badTarget(name, "targets", "a wave stages at least one target")
	}
	staged := make(map[string]*targetRec, len(targets))
	for _, t := range targets {
		t = t.clone()
		t.Tags = []string{tag}
		if err := t.validate(); err != nil {
			return nil, err
		}
		tn := t.Name()
		if _, dup := staged[tn]; dup {
			return nil, &TargetError{Name: tn, Reason: "given twice", Err: ErrDuplicateTarget}
		}
		rec, err := newTargetRec(t)
		if err != nil {
			return nil, err
		}
		staged[tn] = rec
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.st.waves[tag]; ok {
		return nil, &WaveError{Tag: tag, Wave: name, Open: w.name, Err: ErrActiveWave}
	}
	for _, tn := range sortedKeys(staged) {
		t := staged[tn].t
		if rec, ok := r.st.targets[tn]; ok {
			if rec.t.hasTag(tag) {
				return nil, &TargetError{Name: tn, Reason: "already a target of tag " + tag, Err: ErrDuplicateTarget}
			}
			// CompleteWave adds the tag to this target: it must be
			// the same image under the same name.
			if !sameImage(rec.t, t) {
				return nil, &TargetError{Name: tn, Reason: "differs from the repository target of that name", Err: ErrDuplicateTarget}
			}
		}
		for _, other := range sortedKeys(r.st.waves) {
			w := r.st.waves[other]
			if rec, ok := w.staged[tn]; ok && !sameImage(rec.t, t) {
				return nil, &TargetError{Name: tn, Reason: "differs from the target staged in wave " + WaveView(other, w.name), Err: ErrDuplicateTarget}
			}
		}
	}
	tx := r.st.clone()
	if _, ok := tx.views[tag]; !ok {
		if err := r.publish(tx, tag, now, true, true, versions{}); err != nil {
			return nil, err
		}
	}
	tx.waves[tag] = &wave{name: name, staged: staged}
	if err := r.publishWave(tx, tag, now, true, true); err != nil {
		return nil, err
	}
	return r.commit(tx)
}

// closeWave removes the open wave name of tag from tx and returns it with the
// floor that puts the tag view's roles above the wave view's last versions:
// devices in the wave fall back to the tag view and must accept it.
func (tx *state) closeWave(tag, name string) (*wave, versions, error) {
	w, ok := tx.waves[tag]
	if !ok || w.name != name {
		e := &WaveError{Tag: tag, Wave: name, Err: ErrUnknownWave}
		if ok {
			e.Open = w.name
		}
		return nil, versions{}, e
	}
	view := WaveView(tag, name)
	floor := tx.views[view].versions().above()
	delete(tx.views, view)
	delete(tx.waves, tag)
	return w, floor, nil
}

// CompleteWave makes the wave's staged targets part of the tag's targets and
// removes the wave view: the tag's production targets are now what the wave
// served. A staged name that already exists as a target of other tags gets
// tag added to its tags, and every view listing it is re-signed. Each role of
// the tag view gets a version above the wave view's last one, so devices
// moved back from the wave accept it.
//
// Errors: a *WaveError matching ErrUnknownWave when tag has no open wave
// of that name; ErrMissingKeys; storage errors.
func (r *Repo) CompleteWave(now time.Time, tag, name string) ([]Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx := r.st.clone()
	w, floor, err := tx.closeWave(tag, name)
	if err != nil {
		return nil, err
	}
	var others []string
	for _, tn := range sortedKeys(w.staged) {
		old, ok := tx.targets[tn]
		if !ok {
			tx.targets[tn] = w.staged[tn]
			continue
		}
		t := old.t.clone()
		t.Tags = append(t.Tags, tag)
		rec, err := newTargetRec(t)
		if err != nil {
			return nil, err
		}
		tx.targets[tn] = rec
		others = append(others, old.t.Tags...)
	}
	if err := r.publish(tx, tag, now, true, true, floor); err != nil {
		return nil, err
	}
	for _, other := range sortedTags(others) {
		if err := r.publishTag(tx, other, now, true, true); err != nil {
			return nil, err
		}
	}
	return r.commit(tx)
}

// CancelWave removes the wave view of tag. The staged targets never become
// targets; devices that installed them keep them. The tag's targets are
// unchanged but its view is re-signed with every role above the wave view's
// last version, so devices moved back from the wave accept it.
//
// Errors: a *WaveError matching ErrUnknownWave when tag has no open wave
// of that name; ErrMissingKeys; storage errors.
func (r *Repo) CancelWave(now time.Time, tag, name string) ([]Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	tx := r.st.clone()
	_, floor, err := tx.closeWave(tag, name)
	if err != nil {
		return nil, err
	}
	if err := r.publish(tx, tag, now, true, true, floor); err != nil {
		return nil, err
	}
	return r.commit(tx)
}

// Waves lists the open waves, sorted by tag.
func (r *Repo) Waves() []WaveInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ws := make([]WaveInfo, 0, len(r.st.waves))
	for _, tag := range sortedKeys(r.st.waves) {
		w := r.st.waves[tag]
		ws = append(ws, WaveInfo{Tag: tag, Name: w.name, Targets: sortedKeys(w.staged)})
	}
	return ws
}
