package tufrepo

import (
	"errors"
	"testing"
	"time"
)

// TestRaiseView: a go-tuf device that trusts one view switches to another
// after RaiseView without a rollback error; the raised view is above every
// other view in every role (but a tag's own open wave, which stays above
// it); a second raise changes nothing.
func TestRaiseView(t *testing.T) {
	r, _ := newTestRepo(t, Config{})
	addTarget(t, r, t0, hw, "1000", "devel")
	addTarget(t, r, t0, hw, "1001", "devel")
	addTarget(t, r, t0, hw, "1002", "devel")
	addTarget(t, r, t0, hw, "999", "main")
	openWave(t, r, t0, "main", "w1", waveTarget(hw, "1003"))
	if _, err := r.AddTag(t0, "empty"); err != nil {
		t.Fatal(err)
	}
	now := t0
	dev := newGoTUFDevice(t, r, "devel")
	if _, err := dev.update(r, now, nil, ""); err != nil {
		t.Fatal(err)
	}
	for _, view := range []string{"empty", "main", WaveView("main", "w1"), "devel", "empty"} {
		now = now.Add(time.Minute)
		if _, err := r.RaiseView(now, view); err != nil {
			t.Fatalf("RaiseView(%s): %v", view, err)
		}
		own := versionsOf(t, r, view)
		for _, other := range append(r.Tags(), WaveView("main", "w1")) {
			if other != view && !(view == "main" && other == WaveView("main", "w1")) && !own.allAbove(versionsOf(t, r, other)) {
				t.Fatalf("after RaiseView(%s): %+v not above %s's %+v", view, own, other, versionsOf(t, r, other))
			}
		}
		if !versionsOf(t, r, WaveView("main", "w1")).allAbove(versionsOf(t, r, "main")) {
			t.Fatalf("raising %s put the tag main above its wave", view)
		}
		dev.tag = view
		if _, err := dev.update(r, now, nil, ""); err != nil {
			t.Fatalf("go-tuf switching to %s: %v", view, err)
		}
		before, _ := r.Fetch(view, "timestamp.json")
		if _, err := r.RaiseView(now, view); err != nil {
			t.Fatal(err)
		}
		if after, _ := r.Fetch(view, "timestamp.json"); string(after.Data) != string(before.Data) {
			t.Fatalf("a second RaiseView(%s) re-signed a view already on top", view)
		}
	}
	if _, err := r.RaiseView(now, "nothing"); !errors.Is(err, ErrUnknownTag) {
		t.Fatalf("RaiseView of an unknown view: %v", err)
	}
}
