package rollout

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// hashOrder is the spec's order of a band: by SHA-256(wave + "/" + uuid).
func hashOrder(wave string, uuids []string) []string {
	out := slices.Clone(uuids)
	slices.SortFunc(out, func(a, b string) int {
		ha, hb := sha256.Sum256([]byte(wave+"/"+a)), sha256.Sum256([]byte(wave+"/"+b))
		return bytes.Compare(ha[:], hb[:])
	})
	return out
}

func uuids(cands []Candidate) []string {
	out := make([]string, len(cands))
	for i, c := range cands {
		out[i] = c.UUID
	}
	return out
}

func newWave(t *testing.T) *Controller {
	t.Helper()
	c := New()
	mustCreate(t, c, t0, spec("w", "prod", 7, Policy{}))
	return c
}

func TestSelectionLimitOrder(t *testing.T) {
	cands := fleet(10)
	c := newWave(t)
	got := mustRollout(t, c, t0, "w", Selection{Limit: 3}, cands)
	want := hashOrder("w", uuids(cands))
	if !reflect.DeepEqual(got, want[:3]) {
		t.Fatalf("limit 3 chose %v, want %v", got, want[:3])
	}
	// The next step skips the members and continues the same order.
	got = mustRollout(t, c, t0, "w", Selection{Limit: 4}, cands)
	if !reflect.DeepEqual(got, want[3:7]) {
		t.Fatalf("second step chose %v, want %v", got, want[3:7])
	}
	for i, m := range c.Members("w") {
		if m.Seq != i || m.UUID != want[i] || m.State != Scheduled || !m.ScheduledAt.Equal(t0) {
			t.Fatalf("member %d: %+v", i, m)
		}
	}
	if got = mustRollout(t, c, t0, "w", Selection{}, cands); !reflect.DeepEqual(got, want[7:]) {
		t.Fatalf("the rest: %v, want %v", got, want[7:])
	}
	if got = mustRollout(t, c, t0, "w", Selection{Limit: 5}, cands); len(got) != 0 {
		t.Fatalf("everyone is a member, yet %v were chosen", got)
	}
	// Another wave orders the same fleet differently.
	c2 := New()
	mustCreate(t, c2, t0, spec("other", "prod", 7, Policy{}))
	if other := mustRollout(t, c2, t0, "other", Selection{}, cands); reflect.DeepEqual(other, want) {
		t.Fatal("two wave names gave the same order")
	}
}

func TestSelectionDeterministic(t *testing.T) {
	cands := fleet(200)
	for i := range cands {
		if i%4 == 0 {
			cands[i].LastSeen = t0.Add(-48 * time.Hour)
		}
	}
	first := mustRollout(t, newWave(t), t0, "w", Selection{Limit: 150}, cands)
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		shuffled := slices.Clone(cands)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := mustRollout(t, newWave(t), t0, "w", Selection{Limit: 150}, shuffled); !reflect.DeepEqual(got, first) {
			t.Fatal("the candidates' order changed the selection")
		}
	}
}

func TestSelectionRecentFirst(t *testing.T) {
	now := at(100 * time.Hour)
	cands := []Candidate{
		{UUID: "stale", LastSeen: now.Add(-25 * time.Hour)},
		{UUID: "never"},
		{UUID: "edge", LastSeen: now.Add(-24 * time.Hour)}, // exactly 24 h counts as recent
		{UUID: "fresh", LastSeen: now.Add(-time.Minute)},
		{UUID: "fresh2", LastSeen: now.Add(-23 * time.Hour)},
		{UUID: "old", LastSeen: now.Add(-1000 * time.Hour)},
	}
	got := mustRollout(t, newWave(t), now, "w", Selection{}, cands)
	want := append(hashOrder("w", []string{"edge", "fresh", "fresh2"}), hashOrder("w", []string{"stale", "never", "old"})...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	got = mustRollout(t, newWave(t), now, "w", Selection{Limit: 2}, cands)
	if !reflect.DeepEqual(got, want[:2]) {
		t.Fatalf("limit 2: %v, want two recent devices %v", got, want[:2])
	}
}

func TestSelectionPercentage(t *testing.T) {
	tests := []struct {
		pct      float64
		eligible int
		want     int
	}{
		{10, 30, 3},
		{10, 31, 4}, // ceil(3.1)
		{10, 29, 3}, // ceil(2.9)
		{50, 1, 1},
		{33.33, 3, 1}, // ceil(0.9999)
		{0.5, 199, 1},
		{0.5, 201, 2},
		{100, 17, 17},
		{1, 0, 0},
		{0.001, 10, 1}, // under a hundredth of a percent counts as one
	}
	for _, tt := range tests {
		got := mustRollout(t, newWave(t), t0, "w", Selection{Percentage: tt.pct}, fleet(tt.eligible))
		if len(got) != tt.want {
			t.Errorf("%v%% of %d: %d devices, want %d", tt.pct, tt.eligible, len(got), tt.want)
		}
	}
	// The percentage is of the eligible devices: members are left out.
	c := newWave(t)
	cands := fleet(40)
	mustRollout(t, c, t0, "w", Selection{Limit: 10}, cands)
	if got := mustRollout(t, c, t0, "w", Selection{Percentage: 50}, cands); len(got) != 15 {
		t.Errorf("50%% of the 30 left: %d", len(got))
	}
}

func TestSelectionGroups(t *testing.T) {
	cands := fleet(30) // g0, g1, g2 in turn
	c := newWave(t)
	got := mustRollout(t, c, t0, "w", Selection{Groups: []string{"g1", "g2"}, Limit: 15}, cands)
	if len(got) != 15 {
		t.Fatalf("chose %d of the 20 in g1 and g2, want 15", len(got))
	}
	var inGroups []string
	for _, cd := range cands {
		if cd.Group != "g0" {
			inGroups = append(inGroups, cd.UUID)
		}
	}
	if want := hashOrder("w", inGroups)[:15]; !reflect.DeepEqual(got, want) {
		t.Fatalf("chose %v, want %v", got, want)
	}
	if got := mustRollout(t, c, t0, "w", Selection{Groups: []string{"g0"}}, cands); len(got) != 10 {
		t.Fatalf("whole group g0: %d devices, want 10", len(got))
	}
	if got := mustRollout(t, c, t0, "w", Selection{Groups: []string{"nope"}}, cands); len(got) != 0 {
		t.Fatalf("unknown group chose %v", got)
	}
}

func TestSelectionUUIDs(t *testing.T) {
	cands := fleet(10)
	c := newWave(t)
	got := mustRollout(t, c, t0, "w", Selection{UUIDs: []string{dev(7), dev(2), dev(7), dev(5)}}, cands)
	if want := []string{dev(7), dev(2), dev(5)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("listed UUIDs gave %v, want %v in the listed order", got, want)
	}
	got = mustRollout(t, c, t0, "w", Selection{UUIDs: []string{dev(2), dev(3)}}, cands)
	if want := []string{dev(3)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("a member listed again: %v, want %v", got, want)
	}
	_, ch, err := c.Rollout(t0, "w", Selection{UUIDs: []string{dev(4), "ghost", "ghost2"}}, cands)
	if !errors.Is(err, ErrNotCandidate) || !ch.Empty() || !bytes.Contains([]byte(err.Error()), []byte(`"ghost"`)) {
		t.Fatalf("unknown UUID: %v %+v, want ErrNotCandidate naming ghost", err, ch)
	}
	// dev(1) is in g1: not a candidate of a g0 step.
	if _, _, err := c.Rollout(t0, "w", Selection{UUIDs: []string{dev(0), dev(1)}, Groups: []string{"g0"}}, cands); !errors.Is(err, ErrNotCandidate) {
		t.Fatalf("UUID outside the groups: %v", err)
	}
	if n := len(c.Members("w")); n != 4 {
		t.Fatalf("failed steps added members: %d", n)
	}
}

func TestSelectionCap(t *testing.T) {
	cands := fleet(MaxDevicesPerStep + 1)
	c := newWave(t)
	for _, sel := range []Selection{
		{Limit: MaxDevicesPerStep + 1},
		{},                // the whole fleet
		{Percentage: 100}, // likewise
		{UUIDs: uuids(cands)},
	} {
		if _, ch, err := c.Rollout(t0, "w", sel, cands); !errors.Is(err, ErrTooMany) || !ch.Empty() {
			t.Errorf("limit %d, %v%%, %d uuids: %v, want ErrTooMany", sel.Limit, sel.Percentage, len(sel.UUIDs), err)
		}
	}
	if got := mustRollout(t, c, t0, "w", Selection{Limit: MaxDevicesPerStep}, cands); len(got) != MaxDevicesPerStep {
		t.Fatalf("limit %d chose %d", MaxDevicesPerStep, len(got))
	}
	// The one left fits in a step of its own.
	if got := mustRollout(t, c, t0, "w", Selection{}, cands); len(got) != 1 {
		t.Fatalf("the last device: %v", got)
	}
}

func TestSelectionDryRun(t *testing.T) {
	cands := fleet(50)
	c := newWave(t)
	mustRollout(t, c, t0, "w", Selection{Limit: 5}, cands)
	before := c.Snapshot()
	for _, sel := range []Selection{{Limit: 7}, {Percentage: 20, Groups: []string{"g2"}}, {UUIDs: []string{dev(9), dev(8)}}} {
		dry := sel
		dry.DryRun = true
		got, ch, err := c.Rollout(at(time.Minute), "w", dry, cands)
		if err != nil || !ch.Empty() {
			t.Fatalf("dry run %+v: %v %+v", sel, err, ch)
		}
		if after := c.Snapshot(); !reflect.DeepEqual(after, before) {
			t.Fatalf("dry run %+v changed the controller", sel)
		}
		// The real step then chooses the same devices.
		c2, err := Restore(before.Waves, before.Members, before.Updates)
		if err != nil {
			t.Fatal(err)
		}
		real := mustRollout(t, c2, at(time.Minute), "w", sel, cands)
		if !reflect.DeepEqual(got, real) {
			t.Fatalf("dry run chose %v, the step %v", got, real)
		}
	}
	_, _, err := c.Rollout(t0, "w", Selection{DryRun: true, UUIDs: []string{"ghost"}}, cands)
	if !errors.Is(err, ErrNotCandidate) {
		t.Fatalf("dry run with an unknown UUID: %v", err)
	}
}

func TestSelectionErrors(t *testing.T) {
	c := newWave(t)
	cands := fleet(5)
	tests := []struct {
		wave string
		sel  Selection
		err  error
	}{
		{"nope", Selection{}, ErrUnknownWave},
		{"w", Selection{Limit: -1}, ErrBadSelection},
		{"w", Selection{Percentage: -1}, ErrBadSelection},
		{"w", Selection{Percentage: 100.5}, ErrBadSelection},
		{"w", Selection{Limit: 1, Percentage: 10}, ErrBadSelection},
		{"w", Selection{Limit: 1, UUIDs: []string{dev(0)}}, ErrBadSelection},
		{"w", Selection{Percentage: 10, UUIDs: []string{dev(0)}}, ErrBadSelection},
		{"w", Selection{UUIDs: []string{""}}, ErrNotCandidate},
	}
	for _, tt := range tests {
		if _, _, err := c.Rollout(t0, tt.wave, tt.sel, cands); !errors.Is(err, tt.err) {
			t.Errorf("%s %+v: %v, want %v", tt.wave, tt.sel, err, tt.err)
		}
	}
	if _, err := c.Cancel(t0, "w"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Rollout(t0, "w", Selection{}, cands); !errors.Is(err, ErrWaveNotActive) {
		t.Errorf("rollout of a cancelled wave: %v", err)
	}
}

func TestSelectionIgnoresBadCandidates(t *testing.T) {
	cands := []Candidate{{UUID: ""}, {UUID: "a", Group: "x"}, {UUID: "a", Group: "y"}, {UUID: "b"}}
	got := mustRollout(t, newWave(t), t0, "w", Selection{}, cands)
	if want := hashOrder("w", []string{"a", "b"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("chose %v, want %v", got, want)
	}
	// A repeated candidate counts as first listed: "a" is in group x.
	if got := mustRollout(t, newWave(t), t0, "w", Selection{Groups: []string{"y"}}, cands); len(got) != 0 {
		t.Fatalf("group y chose %v", got)
	}
}
