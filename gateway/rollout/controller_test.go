package rollout

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWaveLifecycle(t *testing.T) {
	c := New()
	ch := mustCreate(t, c, t0, spec("w1", "prod", 7, Policy{}))
	if len(ch.Waves) != 1 || ch.Waves[0].Status != WaveActive || !ch.Waves[0].CreatedAt.Equal(t0) || len(ch.Ended) != 0 {
		t.Fatalf("create changes %+v", ch)
	}
	if _, err := c.CreateWave(t0, spec("w2", "prod", 8, Policy{})); !errors.Is(err, ErrActiveWave) {
		t.Fatalf("second active wave of a tag: %v", err)
	}
	mustCreate(t, c, t0, spec("b1", "beta", 8, Policy{})) // another tag may have its own
	if _, err := c.CreateWave(t0, spec("w1", "other", 7, Policy{})); !errors.Is(err, ErrWaveExists) {
		t.Fatalf("reused name: %v", err)
	}
	mustRollout(t, c, t0, "w1", Selection{}, fleet(3))
	c.Tick(t0)
	if wave, tag := c.WaveFor(dev(0)); wave != "w1" || tag != "prod" {
		t.Fatalf("WaveFor = %q %q", wave, tag)
	}

	ch, err := c.Complete(at(time.Hour), "w1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Ended) != 1 || ch.Ended[0].Status != WaveComplete || !ch.Ended[0].EndedAt.Equal(at(time.Hour)) || len(ch.Waves) != 1 || len(ch.Members) != 0 {
		t.Fatalf("complete changes %+v", ch)
	}
	if wave, _ := c.WaveFor(dev(0)); wave != "" {
		t.Fatalf("a completed wave is still served per device: %q", wave)
	}
	for _, op := range []func(time.Time, string) (Changes, error){c.Complete, c.Cancel} {
		if _, err := op(at(time.Hour), "w1"); !errors.Is(err, ErrWaveNotActive) {
			t.Fatalf("ending a completed wave again: %v", err)
		}
		if _, err := op(at(time.Hour), "nope"); !errors.Is(err, ErrUnknownWave) {
			t.Fatalf("ending an unknown wave: %v", err)
		}
	}
	mustCreate(t, c, at(2*time.Hour), spec("w2", "prod", 8, Policy{}))
	ch, err = c.Cancel(at(3*time.Hour), "w2")
	if err != nil || len(ch.Ended) != 1 || ch.Ended[0].Status != WaveCanceled {
		t.Fatalf("cancel: %v %+v", err, ch)
	}
	if _, err := c.CreateWave(at(4*time.Hour), spec("w2", "prod", 9, Policy{})); !errors.Is(err, ErrWaveExists) {
		t.Fatalf("the name of a cancelled wave: %v", err)
	}
	var names []string
	for _, w := range c.Waves() {
		names = append(names, w.Name+":"+string(w.Status))
	}
	if got := strings.Join(names, " "); got != "b1:active w1:complete w2:canceled" {
		t.Fatalf("Waves() = %s", got)
	}
	if ch := c.Tick(at(5 * time.Hour)); !ch.Empty() {
		t.Fatalf("ended waves changed on tick: %+v", ch)
	}
}

func TestWaveForLatestWave(t *testing.T) {
	// A device that moved from tag prod to beta may be in an active wave
	// of each; it is served the one created last.
	c := New()
	mustCreate(t, c, t0, spec("p", "prod", 7, Policy{}))
	mustCreate(t, c, at(time.Minute), spec("b", "beta", 8, Policy{}))
	mustRollout(t, c, at(2*time.Minute), "b", Selection{UUIDs: []string{dev(0)}}, fleet(1))
	mustRollout(t, c, at(3*time.Minute), "p", Selection{UUIDs: []string{dev(0)}}, fleet(1))
	c.Tick(at(3 * time.Minute))
	if wave, tag := c.WaveFor(dev(0)); wave != "b" || tag != "beta" {
		t.Fatalf("WaveFor = %q %q, want the later wave b", wave, tag)
	}
	// Events for version 7 move only the member of p.
	ch := c.OnEvent(at(4*time.Minute), dev(0), ev(EcuDownloadStarted, "x", 7, true))
	if len(ch.Members) != 1 || ch.Members[0].Wave != "p" {
		t.Fatalf("changes %+v", ch.Members)
	}
	if _, err := c.Cancel(at(5*time.Minute), "b"); err != nil {
		t.Fatal(err)
	}
	if wave, _ := c.WaveFor(dev(0)); wave != "p" {
		t.Fatalf("after b ended, WaveFor = %q, want p", wave)
	}
}

// TestServedWaveFollowsTag: a device rolled out to wave p of tag prod, then
// (while it followed beta) to the later wave b, is served p while it follows
// prod and b while it follows beta. WaveFor, which cannot know the tag, names
// b in both cases, so a caller that checks WaveFor's tag against the device's
// serves a prod device no wave at all.
func TestServedWaveFollowsTag(t *testing.T) {
	c := New()
	mustCreate(t, c, t0, spec("p", "prod", 7, Policy{}))
	mustCreate(t, c, at(time.Minute), spec("b", "beta", 8, Policy{}))
	mustRollout(t, c, at(2*time.Minute), "p", Selection{UUIDs: []string{dev(0)}}, fleet(1))
	mustRollout(t, c, at(3*time.Minute), "b", Selection{UUIDs: []string{dev(0)}}, fleet(1))
	mustRollout(t, c, at(3*time.Minute), "b", Selection{UUIDs: []string{dev(1)}}, fleet(2))
	if got := c.ServedWave(dev(0), "prod"); got != "" {
		t.Fatalf("a scheduled member is served %q", got)
	}
	c.Tick(at(4 * time.Minute))
	for _, tt := range []struct{ uuid, tag, want string }{
		{dev(0), "prod", "p"},
		{dev(0), "beta", "b"},
		{dev(0), "other", ""},
		{dev(1), "prod", ""}, // prod has an active wave, but not with dev(1)
		{dev(1), "beta", "b"},
		{dev(2), "prod", ""},
	} {
		if got := c.ServedWave(tt.uuid, tt.tag); got != tt.want {
			t.Errorf("ServedWave(%s, %s) = %q, want %q", tt.uuid, tt.tag, got, tt.want)
		}
	}
	if _, err := c.Complete(at(5*time.Minute), "p"); err != nil {
		t.Fatal(err)
	}
	if got := c.ServedWave(dev(0), "prod"); got != "" {
		t.Fatalf("after p completed, ServedWave = %q", got)
	}
	if got := c.ServedWave(dev(0), "beta"); got != "b" {
		t.Fatalf("after p completed, ServedWave for beta = %q, want b", got)
	}
}

func TestWaveSpecValidation(t *testing.T) {
	bad := []WaveSpec{
		{Name: "", Tag: "t", Version: 1, Targets: []string{"a"}},
		{Name: "w", Tag: "", Version: 1, Targets: []string{"a"}},
		{Name: "w", Tag: "t", Version: 0, Targets: []string{"a"}},
		{Name: "w", Tag: "t", Version: 1},
		{Name: "w", Tag: "t", Version: 1, Targets: []string{""}},
		{Name: "w", Tag: "t", Version: 1, Targets: []string{"a", "a"}},
		{Name: "w\n", Tag: "t", Version: 1, Targets: []string{"a"}},
		{Name: "w", Tag: "t\x00", Version: 1, Targets: []string{"a"}},
		{Name: "w\xff", Tag: "t", Version: 1, Targets: []string{"a"}},
	}
	for _, s := range bad {
		if _, err := New().CreateWave(t0, s); !errors.Is(err, ErrBadWave) {
			t.Errorf("%+v: %v, want ErrBadWave", s, err)
		}
	}
}

// TestRecordsAreCopies: records handed out do not alias the controller.
func TestRecordsAreCopies(t *testing.T) {
	c := New()
	s := spec("w", "prod", 7, Policy{Exponential: &ExponentialRate{BaseRatePerMinute: 5, IncrementFactor: 2, NotifiedThings: 1},
		Abort: []AbortCriterion{{FailureType: FailureAll, ThresholdPercent: 10, MinExecuted: 1}}})
	ch := mustCreate(t, c, t0, s)
	s.Targets[0] = "changed"
	s.Policy.Exponential.BaseRatePerMinute = 99
	ch.Waves[0].Targets[0] = "changed"
	ch.Waves[0].Policy.Abort[0].MinExecuted = 99
	w, _ := c.Wave("w")
	w.Policy.Exponential.IncrementFactor = 4
	w2, _ := c.Wave("w")
	if w2.Targets[0] != "MIMXRT1060-EVK-v7" || w2.Policy.Exponential.BaseRatePerMinute != 5 || w2.Policy.Exponential.IncrementFactor != 2 || w2.Policy.Abort[0].MinExecuted != 1 {
		t.Fatalf("the controller's wave was changed through a copy: %+v", w2)
	}
}

func TestMerge(t *testing.T) {
	m := func(wave string, seq int, s State) Member {
		return Member{Wave: wave, Seq: seq, UUID: dev(seq), State: s}
	}
	a := Changes{
		Waves:   []Wave{{Name: "a", Released: 1}, {Name: "c"}},
		Members: []Member{m("a", 0, Pending), m("a", 2, Pending), m("c", 0, Pending)},
		Updates: []Update{{UUID: "u1", State: Downloading}},
	}
	b := Changes{
		Waves:   []Wave{{Name: "a", Released: 2}, {Name: "b"}},
		Members: []Member{m("a", 1, Pending), m("a", 2, Downloading)},
		Updates: []Update{{UUID: "u0"}, {UUID: "u1", State: Installed}},
		Ended:   []Wave{{Name: "b"}},
	}
	got := a.Merge(b)
	want := Changes{
		Waves:   []Wave{{Name: "a", Released: 2}, {Name: "b"}, {Name: "c"}},
		Members: []Member{m("a", 0, Pending), m("a", 1, Pending), m("a", 2, Downloading), m("c", 0, Pending)},
		Updates: []Update{{UUID: "u0"}, {UUID: "u1", State: Installed}},
		Ended:   []Wave{{Name: "b"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Merge:\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(Changes{}.Merge(b), b) || !reflect.DeepEqual(a.Merge(Changes{}), a) || !(Changes{}).Empty() || a.Empty() {
		t.Fatal("merging with nothing")
	}
}

func TestRestoreRejectsCorruptRecords(t *testing.T) {
	wave := func(mod func(*Wave)) Wave {
		w := Wave{Name: "w", Tag: "prod", Version: 7, Targets: []string{"hw-v7"}, Status: WaveActive, CreatedAt: t0, Scheduled: 2, Released: 1}
		if mod != nil {
			mod(&w)
		}
		return w
	}
	members := func(mod func([]Member)) []Member {
		ms := []Member{{Wave: "w", UUID: "a", Seq: 0, State: Pending}, {Wave: "w", UUID: "b", Seq: 1, State: Scheduled}}
		if mod != nil {
			mod(ms)
		}
		return ms
	}
	okUpdate := Update{UUID: "a", Version: 7, CorrelationID: "c", State: Downloading}
	if _, err := Restore([]Wave{wave(nil)}, members(nil), []Update{okUpdate}); err != nil {
		t.Fatalf("valid records: %v", err)
	}
	tests := []struct {
		name    string
		waves   []Wave
		members []Member
		updates []Update
	}{
		{"member of unknown wave", []Wave{wave(nil)}, append(members(nil), Member{Wave: "x", UUID: "c"}), nil},
		{"duplicate seq", []Wave{wave(nil)}, members(func(ms []Member) { ms[1].Seq = 0 }), nil},
		{"duplicate uuid", []Wave{wave(nil)}, members(func(ms []Member) { ms[1].UUID = "a" }), nil},
		{"bad member state", []Wave{wave(nil)}, members(func(ms []Member) { ms[0].State = "lost" }), nil},
		{"released member scheduled", []Wave{wave(nil)}, members(func(ms []Member) { ms[0].State = Scheduled }), nil},
		{"unreleased member pending", []Wave{wave(nil)}, members(func(ms []Member) { ms[1].State = Pending }), nil},
		{"started member without start time", []Wave{wave(nil)}, members(func(ms []Member) { ms[0].State = Downloading }), nil},
		{"pending member with start time", []Wave{wave(nil)}, members(func(ms []Member) { ms[0].StartedAt = t0 }), nil},
		{"seq out of range", []Wave{wave(nil)}, members(func(ms []Member) { ms[1].Seq = 2 }), nil},
		{"member without uuid", []Wave{wave(nil)}, members(func(ms []Member) { ms[1].UUID = "" }), nil},
		{"missing member", []Wave{wave(nil)}, members(nil)[:1], nil},
		{"duplicate wave", []Wave{wave(nil), wave(nil)}, members(nil), nil},
		{"two active waves of a tag", []Wave{wave(nil), wave(func(w *Wave) { w.Name = "w2"; w.Scheduled, w.Released = 0, 0 })}, members(nil), nil},
		{"bad wave status", []Wave{wave(func(w *Wave) { w.Status = "paused" })}, members(nil), nil},
		{"released over scheduled", []Wave{wave(func(w *Wave) { w.Released = 3 })}, members(nil), nil},
		{"scheduled beyond the members given", []Wave{wave(func(w *Wave) { w.Scheduled = 1 << 40 })}, members(nil), nil},
		{"wave without version", []Wave{wave(func(w *Wave) { w.Version = 0 })}, members(nil), nil},
		{"wave with bad policy", []Wave{wave(func(w *Wave) { w.Policy.MaxPerMinute = -1 })}, members(nil), nil},
		{"negative tokens", []Wave{wave(func(w *Wave) { w.Tokens = -1 })}, members(nil), nil},
		{"duplicate update", []Wave{wave(nil)}, members(nil), []Update{okUpdate, okUpdate}},
		{"bad update state", []Wave{wave(nil)}, members(nil), []Update{{UUID: "a", Version: 7, State: Scheduled}}},
		{"update without uuid", []Wave{wave(nil)}, members(nil), []Update{{Version: 7, State: Failed}}},
		{"update without version", []Wave{wave(nil)}, members(nil), []Update{{UUID: "a", State: Failed}}},
	}
	for _, tt := range tests {
		if _, err := Restore(tt.waves, tt.members, tt.updates); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tt.name, err)
		}
	}
}

// TestConcurrentUse exercises the locking under -race: /repo requests
// (WaveFor), events, ticks and status reads at once.
func TestConcurrentUse(t *testing.T) {
	c := New()
	mustCreate(t, c, t0, spec("w", "prod", 7, Policy{MaxPerMinute: 600, InProgressTimeout: time.Minute}))
	cands := fleet(200)
	mustRollout(t, c, t0, "w", Selection{}, cands)
	done := make(chan struct{})
	var workers []chan struct{}
	run := func(f func(i int)) {
		ch := make(chan struct{})
		workers = append(workers, ch)
		go func() {
			defer close(ch)
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
					f(i)
				}
			}
		}()
	}
	run(func(i int) { c.WaveFor(dev(i % 200)) })
	run(func(i int) {
		c.OnEvent(at(time.Duration(i)*time.Millisecond), dev(i%200), ev(EcuDownloadStarted, "c", 7, true))
	})
	run(func(i int) { c.WaveStatus("w"); c.VersionStatus(); c.Members("w") })
	for s := 1; s <= 200; s++ {
		c.Tick(at(time.Duration(s) * time.Second))
	}
	close(done)
	for _, w := range workers {
		<-w
	}
	rep, err := c.WaveStatus("w")
	if err != nil || rep.Total != 200 || rep.Wave.Released != 200 {
		t.Fatalf("after the run: %+v %v", rep, err)
	}
}
