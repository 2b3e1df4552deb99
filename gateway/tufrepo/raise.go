package tufrepo

import (
	"strings"
	"time"
)

// Views count their versions apart, so a device that starts following
// another tag (an operator changed its tag through /config) would find a
// lower timestamp, snapshot or targets version in the new view than in the
// one it trusts, and a TUF client refuses that as a rollback attack. The
// gateway therefore raises a view above every other view when a device
// switches to it.

// RaiseView re-signs view (a tag, or a WaveView) with every role's version
// strictly above the same role's version in every other view of the
// repository, so a device switching to it from any view never sees a version
// go down. A tag's own wave view is the exception: it stays above the tag
// (devices move from a wave back to its tag only when the wave ends, and the
// wave rules cover that). A view already above the others is left alone, so
// many devices switching to the same view cost one re-signing.
//
// Errors: a *NotFoundError matching ErrUnknownTag for a view that does not
// exist; ErrMissingKeys; storage errors.
func (r *Repo) RaiseView(now time.Time, view string) ([]Warning, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.st.views[view]
	if !ok {
		return nil, &NotFoundError{Tag: view, Name: "timestamp.json", UnknownTag: true}
	}
	own := v.versions()
	tag, _, isWave := strings.Cut(view, waveSep)
	ownWave := ""
	if w, open := r.st.waves[tag]; open && !isWave {
		ownWave = WaveView(tag, w.name)
	}
	var top versions
	above := true
	for name, o := range r.st.views {
		if name == view || name == ownWave {
			continue
		}
		ov := o.versions()
		top = versions{targets: max(top.targets, ov.targets), snapshot: max(top.snapshot, ov.snapshot), timestamp: max(top.timestamp, ov.timestamp)}
		above = above && own.targets > ov.targets && own.snapshot > ov.snapshot && own.timestamp > ov.timestamp
	}
	if above {
		return nil, nil
	}
	tx := r.st.clone()
	if err := r.publish(tx, view, now, true, true, top.above()); err != nil {
		return nil, err
	}
	if ownWave != "" {
		if err := r.publishWave(tx, tag, now, false, false); err != nil {
			return nil, err
		}
	}
	return r.commit(tx)
}
