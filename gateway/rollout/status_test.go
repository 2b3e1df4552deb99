package rollout

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// stateLetters spells a row of the event table: one letter per State, in
// States order (Scheduled Pending Downloading Installed Confirmed Failed
// Reverted TimedOut).
var stateLetters = map[byte]State{'S': Scheduled, 'P': Pending, 'D': Downloading, 'I': Installed, 'C': Confirmed, 'F': Failed, 'R': Reverted, 'T': TimedOut}

// TestEventMapping is the event -> member state table: every event kind
// applied to a member in every state of a wave of version 7 whose member
// carries correlation id C1. Each cell is also re-applied, which must change
// nothing.
func TestEventMapping(t *testing.T) {
	const unchanged = "SPDICFRT"
	rows := []struct {
		name string
		ev   Event
		want string // resulting state per starting state
		// corrC2 marks rows after which a member that ends Downloading
		// carries the event's new correlation id.
		corrC2 bool
	}{
		{"download started, same attempt", ev(EcuDownloadStarted, "C1", 7, true), "SDDICDRT", false},
		// A new attempt after the install (its image never ran, or its result
		// was lost) downloads again.
		{"download started, new attempt", ev(EcuDownloadStarted, "C2", 7, true), "SDDDCDRT", true},
		{"download started, other version", ev(EcuDownloadStarted, "C1", 8, true), unchanged, false},
		{"download completed", ev(EcuDownloadCompleted, "C1", 7, true), unchanged, false},
		{"download failed", ev(EcuDownloadCompleted, "C1", 7, false), "SFFICFRT", false},
		{"download failed, other attempt", ev(EcuDownloadCompleted, "C9", 7, false), unchanged, false},
		{"installation started", ev(EcuInstallationStarted, "C1", 7, true), "SIIICIRT", false},
		{"installation applied", ev(EcuInstallationApplied, "C1", 7, true), "SIIICIRT", false},
		{"installation completed", ev(EcuInstallationCompleted, "C1", 7, true), "SCCCCCRT", false},
		{"installation completed, old version", ev(EcuInstallationCompleted, "C1", 6, true), unchanged, false},
		{"rolled back", ev(EcuInstallationCompleted, "C1", 6, false), "SFFRCFRT", false},
		{"installation completed, other attempt", ev(EcuInstallationCompleted, "C9", 7, true), unchanged, false},
		{"no correlation id", ev(EcuInstallationCompleted, "", 7, true), unchanged, false},
		{"other event type", ev("EcuSomethingElse", "C1", 7, true), unchanged, false},
	}
	for _, row := range rows {
		for i, from := range States {
			want := stateLetters[row.want[i]]
			c := restoreOne(t, from)
			ch := c.OnEvent(at(time.Minute), "d1", row.ev)
			m := memberOf(t, c, "w", "d1")
			if m.State != want {
				t.Errorf("%s from %s: state %s, want %s", row.name, from, m.State, want)
				continue
			}
			wantCorr := "C1"
			if row.corrC2 && want == Downloading {
				wantCorr = "C2"
			}
			if m.CorrelationID != wantCorr {
				t.Errorf("%s from %s: correlation id %q, want %q", row.name, from, m.CorrelationID, wantCorr)
			}
			moved := want != from || wantCorr != "C1"
			if moved != (len(ch.Members) == 1) {
				t.Errorf("%s from %s: changes list %d members, moved=%v", row.name, from, len(ch.Members), moved)
			} else if moved && !reflect.DeepEqual(ch.Members[0], m) {
				t.Errorf("%s from %s: change %+v, controller holds %+v", row.name, from, ch.Members[0], m)
			}
			again := c.OnEvent(at(2*time.Minute), "d1", row.ev)
			if !again.Empty() {
				t.Errorf("%s from %s: re-applying changed %+v", row.name, from, again)
			}
			if m2 := memberOf(t, c, "w", "d1"); !reflect.DeepEqual(m2, m) {
				t.Errorf("%s from %s: re-applying moved %+v to %+v", row.name, from, m, m2)
			}
		}
	}
}

// restoreOne builds a controller holding wave w (version 7) with member d1
// in state s and correlation id C1.
func restoreOne(t *testing.T, s State) *Controller {
	t.Helper()
	w := Wave{Name: "w", Tag: "prod", Version: 7, Targets: []string{"hw-v7"}, Status: WaveActive, CreatedAt: t0, LastTick: t0, Scheduled: 1}
	m := Member{Wave: "w", UUID: "d1", Seq: 0, State: s, CorrelationID: "C1", ScheduledAt: t0}
	if s != Scheduled {
		w.Released = 1
		m.ReleasedAt = t0
	}
	if s != Scheduled && s != Pending {
		m.StartedAt = t0
	}
	c, err := Restore([]Wave{w}, []Member{m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNextIdempotent checks Next's own promise on every state and event.
func TestNextIdempotent(t *testing.T) {
	for _, s := range States {
		for _, typ := range []string{EcuDownloadStarted, EcuDownloadCompleted, EcuInstallationStarted, EcuInstallationApplied, EcuInstallationCompleted, "Other"} {
			for _, ok := range []bool{true, false} {
				for _, v := range []uint32{6, 7} {
					e := ev(typ, "C", v, ok)
					once := Next(s, e, 7)
					if twice := Next(once, e, 7); twice != once {
						t.Errorf("Next(%s, %s success=%v v%d) = %s, again %s", s, typ, ok, v, once, twice)
					}
					if s.Terminal() && once != s {
						t.Errorf("terminal %s moved to %s by %s", s, once, typ)
					}
				}
			}
		}
	}
}

// TestUpdateFollowsEvents: a device's Update outside any wave (a test device
// updating from CI targets).
func TestUpdateFollowsEvents(t *testing.T) {
	c := New()
	step := func(d time.Duration, e Event, wantState State, wantCorr string, wantChanged bool) {
		t.Helper()
		ch := c.OnEvent(at(d), "d1", e)
		if got := len(ch.Updates) == 1; got != wantChanged {
			t.Fatalf("%s %s: changed=%v, want %v (%+v)", e.Type, e.CorrelationID, got, wantChanged, ch)
		}
		u := c.Snapshot().Updates
		if wantState == "" {
			if len(u) != 0 {
				t.Fatalf("%s: update %+v, want none", e.Type, u)
			}
			return
		}
		if len(u) != 1 || u[0].State != wantState || u[0].CorrelationID != wantCorr {
			t.Fatalf("%s %s: updates %+v, want one %s %s", e.Type, e.CorrelationID, u, wantState, wantCorr)
		}
		if wantChanged && !reflect.DeepEqual(ch.Updates[0], u[0]) {
			t.Fatalf("change %+v differs from record %+v", ch.Updates[0], u[0])
		}
	}
	step(0, ev(EcuInstallationCompleted, "hw-v5-d1", 5, true), "", "", false) // first boot: no update
	step(time.Second, ev(EcuDownloadStarted, "A", 0, true), "", "", false)    // no version: not attributable
	step(time.Minute, ev(EcuDownloadStarted, "A", 6, true), Downloading, "A", true)
	step(time.Minute, ev(EcuDownloadStarted, "A", 6, true), Downloading, "A", false)
	step(2*time.Minute, ev(EcuDownloadCompleted, "A", 6, false), Failed, "A", true)
	step(3*time.Minute, ev(EcuDownloadStarted, "B", 6, true), Downloading, "B", true)
	step(4*time.Minute, ev(EcuDownloadCompleted, "A", 6, false), Downloading, "B", false) // the old attempt
	step(5*time.Minute, ev(EcuInstallationStarted, "B", 6, true), Installed, "B", true)
	step(5*time.Minute, ev(EcuInstallationApplied, "B", 6, true), Installed, "B", false)
	step(9*time.Minute, ev(EcuInstallationCompleted, "B", 5, false), Reverted, "B", true)
	step(9*time.Minute, ev(EcuInstallationCompleted, "B", 6, true), Reverted, "B", false)
	u := c.Snapshot().Updates[0]
	if u.Version != 6 || !u.StartedAt.Equal(at(3*time.Minute)) || !u.UpdatedAt.Equal(at(9*time.Minute)) {
		t.Errorf("update %+v: want version 6 started at +3m, updated at +9m", u)
	}
}

// TestLostDownloadStarted: aktualizr-nano drops an event after five failed
// POSTs. A member whose EcuDownloadStarted was lost follows the rest of the
// attempt (whose events name the wave's version) instead of staying
// Pending, untimed, for ever.
func TestLostDownloadStarted(t *testing.T) {
	c := released(t, 4, Policy{InProgressTimeout: 10 * time.Minute})
	// dev 0 installs and rolls back: the rollback names the old version.
	c.OnEvent(at(time.Minute), dev(0), ev(EcuDownloadCompleted, "A", 7, true))
	c.OnEvent(at(2*time.Minute), dev(0), ev(EcuInstallationApplied, "A", 7, true))
	c.OnEvent(at(3*time.Minute), dev(0), ev(EcuInstallationCompleted, "A", 6, false))
	if m := memberOf(t, c, "w", dev(0)); m.State != Reverted || m.CorrelationID != "A" || !m.StartedAt.Equal(at(2*time.Minute)) {
		t.Fatalf("rolled back after a lost start: %+v", m)
	}
	// dev 1 confirms.
	c.OnEvent(at(time.Minute), dev(1), ev(EcuInstallationStarted, "B", 7, true))
	c.OnEvent(at(2*time.Minute), dev(1), ev(EcuInstallationCompleted, "B", 7, true))
	if m := memberOf(t, c, "w", dev(1)); m.State != Confirmed || m.CorrelationID != "B" {
		t.Fatalf("confirmed after a lost start: %+v", m)
	}
	// dev 2: a rollback report of an attempt never seen, and events of
	// another version, cannot be attributed to the wave.
	c.OnEvent(at(time.Minute), dev(2), ev(EcuInstallationCompleted, "C", 6, false))
	c.OnEvent(at(time.Minute), dev(2), ev(EcuInstallationApplied, "C", 8, true))
	if m := memberOf(t, c, "w", dev(2)); m.State != Pending || m.CorrelationID != "" {
		t.Fatalf("unattributable events moved the member: %+v", m)
	}
	// dev 3 fails its download; the lost start does not exempt it from
	// the timeout.
	c.OnEvent(at(time.Minute), dev(3), ev(EcuDownloadCompleted, "D", 7, false))
	if m := memberOf(t, c, "w", dev(3)); m.State != Failed || m.CorrelationID != "D" {
		t.Fatalf("failed download after a lost start: %+v", m)
	}
	// Once a member has an attempt, events of an unknown one stay ignored.
	if ch := c.OnEvent(at(2*time.Minute), dev(3), ev(EcuInstallationApplied, "Z", 7, true)); !ch.Empty() {
		t.Fatalf("an event of an unknown attempt changed %+v", ch)
	}
	c.Tick(at(12 * time.Minute))
	if m := memberOf(t, c, "w", dev(3)); m.State != TimedOut {
		t.Fatalf("a failed member that never retried did not time out: %+v", m)
	}
	// The devices' Updates follow the same attempts; dev 2's install of
	// version 8 is an update outside the wave.
	var got []string
	for _, u := range c.Snapshot().Updates {
		got = append(got, fmt.Sprintf("%s v%d %s %s", u.UUID, u.Version, u.State, u.CorrelationID))
	}
	want := []string{dev(0) + " v7 reverted A", dev(1) + " v7 confirmed B", dev(2) + " v8 installed C", dev(3) + " v7 failed D"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("updates\n%q, want\n%q", got, want)
	}
}

func TestMemberTimestamps(t *testing.T) {
	c := released(t, 1, Policy{})
	d := dev(0)
	c.OnEvent(at(time.Minute), d, ev(EcuDownloadStarted, "A", 7, true))
	c.OnEvent(at(2*time.Minute), d, ev(EcuDownloadCompleted, "A", 7, false))
	if m := memberOf(t, c, "w", d); m.State != Failed || !m.StartedAt.Equal(at(time.Minute)) || !m.FinishedAt.Equal(at(2*time.Minute)) {
		t.Fatalf("after a failed download: %+v", m)
	}
	c.OnEvent(at(3*time.Minute), d, ev(EcuDownloadStarted, "B", 7, true))
	if m := memberOf(t, c, "w", d); m.State != Downloading || !m.StartedAt.Equal(at(time.Minute)) || !m.FinishedAt.IsZero() || m.CorrelationID != "B" {
		t.Fatalf("after the retry: %+v (the start stays the first one)", m)
	}
	c.OnEvent(at(4*time.Minute), d, ev(EcuInstallationApplied, "B", 7, true))
	c.OnEvent(at(5*time.Minute), d, ev(EcuInstallationCompleted, "B", 7, true))
	if m := memberOf(t, c, "w", d); m.State != Confirmed || !m.FinishedAt.Equal(at(5*time.Minute)) || !m.ReleasedAt.Equal(t0) {
		t.Fatalf("after confirmation: %+v", m)
	}
}

func TestStatusReports(t *testing.T) {
	c := New()
	mustCreate(t, c, t0, spec("w7", "prod", 7, Policy{MaxPerMinute: 2}))
	mustRollout(t, c, t0, "w7", Selection{Limit: 5}, fleet(10))
	c.Tick(at(time.Minute)) // releases 2
	w, _ := c.Wave("w7")
	first := c.Members("w7")[:2]
	if w.Released != 2 || first[0].State != Pending {
		t.Fatalf("released %d, first %+v", w.Released, first[0])
	}
	c.OnEvent(at(2*time.Minute), first[0].UUID, ev(EcuDownloadStarted, "A", 7, true))
	// A device outside the wave on version 6, and one confirmed on 7 by
	// itself (a test device).
	c.OnEvent(at(2*time.Minute), "other", ev(EcuDownloadStarted, "X", 6, true))
	c.OnEvent(at(2*time.Minute), "tester", ev(EcuDownloadStarted, "Y", 7, true))
	c.OnEvent(at(3*time.Minute), "tester", ev(EcuInstallationCompleted, "Y", 7, true))

	rep, err := c.WaveStatus("w7")
	if err != nil {
		t.Fatal(err)
	}
	want := map[State]int{Scheduled: 3, Pending: 1, Downloading: 1, Installed: 0, Confirmed: 0, Failed: 0, Reverted: 0, TimedOut: 0}
	if !reflect.DeepEqual(rep.Counts, want) || rep.Total != 5 || rep.Wave.Name != "w7" {
		t.Errorf("wave status %+v, want counts %v total 5", rep, want)
	}
	vs := c.VersionStatus()
	if len(vs) != 2 || vs[0].Version != 6 || vs[1].Version != 7 {
		t.Fatalf("version status %+v, want versions 6 and 7", vs)
	}
	if vs[0].Counts[Downloading] != 1 || vs[0].Total != 1 || len(vs[0].Counts) != len(States) {
		t.Errorf("version 6: %+v", vs[0])
	}
	want7 := map[State]int{Scheduled: 3, Pending: 1, Downloading: 1, Installed: 0, Confirmed: 1, Failed: 0, Reverted: 0, TimedOut: 0}
	if !reflect.DeepEqual(vs[1].Counts, want7) || vs[1].Total != 6 {
		t.Errorf("version 7: %+v, want %v", vs[1], want7)
	}
	if _, err := c.WaveStatus("nope"); !errors.Is(err, ErrUnknownWave) {
		t.Errorf("WaveStatus(nope) = %v", err)
	}
	// Once the wave ends, its scheduled and pending members no longer count.
	if _, err := c.Cancel(at(4*time.Minute), "w7"); err != nil {
		t.Fatal(err)
	}
	if vs := c.VersionStatus(); vs[1].Counts[Scheduled] != 0 || vs[1].Counts[Pending] != 0 || vs[1].Total != 2 {
		t.Errorf("after cancel, version 7: %+v", vs[1])
	}
}
