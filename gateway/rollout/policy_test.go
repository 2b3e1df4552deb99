package rollout

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestRateLimit: 100 devices under MaxPerMinute 10, ticked every second for
// ten virtual minutes, are released one every 6 s: exactly 10 a minute.
func TestRateLimit(t *testing.T) {
	c := New()
	mustCreate(t, c, t0, spec("w", "prod", 7, Policy{MaxPerMinute: 10}))
	mustRollout(t, c, t0, "w", Selection{}, fleet(100))
	for s := 1; s <= 600; s++ {
		ch := c.Tick(at(time.Duration(s) * time.Second))
		got := releasedCount(c, "w")
		if want := s / 6; got != want {
			t.Fatalf("after %d s: %d released, want %d", s, got, want)
		}
		if s%6 == 0 && len(ch.Members) != 1 {
			t.Fatalf("tick at %d s changed %d members, want 1", s, len(ch.Members))
		}
		if s%60 == 0 && got != 10*(s/60) {
			t.Fatalf("minute %d: %d released, want %d", s/60, got, 10*(s/60))
		}
	}
	// Released in Seq order.
	for _, m := range c.Members("w") {
		if m.State != Pending || !m.ReleasedAt.Equal(at(time.Duration(6*(m.Seq+1))*time.Second)) {
			t.Fatalf("member %d: %s released at %v", m.Seq, m.State, m.ReleasedAt.Sub(t0))
		}
	}
	if ch := c.Tick(at(20 * time.Minute)); len(ch.Members) != 0 {
		t.Fatalf("nothing left to release, but %d members changed", len(ch.Members))
	}
}

// TestRateBurstCap: a wave idle for an hour has saved nothing. Its devices
// are released at the rate from the step on, so no minute ever sees more
// than MaxPerMinute, and ticks far apart release at most one minute's worth.
func TestRateBurstCap(t *testing.T) {
	c := New()
	mustCreate(t, c, t0, spec("w", "prod", 7, Policy{MaxPerMinute: 10}))
	c.Tick(at(30 * time.Minute))
	if ch := c.Tick(at(time.Hour)); !ch.Empty() {
		t.Fatalf("an idle wave wrote %+v", ch)
	}
	mustRollout(t, c, at(time.Hour), "w", Selection{Limit: 30}, fleet(100))
	// released[s] is the count s seconds after the step.
	released := []int{0}
	for s := 1; s <= 180; s++ {
		c.Tick(at(time.Hour + time.Duration(s)*time.Second))
		released = append(released, releasedCount(c, "w"))
		if s >= 60 {
			if n := released[s] - released[s-60]; n > 10 {
				t.Fatalf("%d released in the minute before +%ds, over the rate of 10", n, s)
			}
		} else if released[s] > 10 {
			t.Fatalf("%d released in the first %d s after an idle hour, over the rate of 10", released[s], s)
		}
	}
	if released[6] != 1 || released[60] != 10 || released[180] != 30 {
		t.Fatalf("released %d at +6s, %d at +60s, %d at +180s; want 1, 10, 30", released[6], released[60], released[180])
	}
	// Idle again, then a step: still no burst.
	mustRollout(t, c, at(2*time.Hour), "w", Selection{Limit: 30}, fleet(100))
	c.Tick(at(2*time.Hour + time.Second))
	if got := releasedCount(c, "w"); got != 30 {
		t.Fatalf("first tick after the second step released %d, want none", got-30)
	}
	// Ticks far apart release one minute's worth, not the whole gap's.
	c.Tick(at(3 * time.Hour))
	if got := releasedCount(c, "w"); got != 40 {
		t.Fatalf("a tick an hour later released %d, want 10", got-30)
	}
	// A clock that steps back releases nothing and does not rewind.
	c.Tick(at(2 * time.Hour))
	if w, _ := c.Wave("w"); w.Released != 40 || !w.LastTick.Equal(at(3*time.Hour)) {
		t.Fatalf("after a backwards tick: released %d, last tick %v", w.Released, w.LastTick.Sub(t0))
	}
}

func TestNoRateReleasesAll(t *testing.T) {
	c := New()
	mustCreate(t, c, t0, spec("w", "prod", 7, Policy{}))
	mustRollout(t, c, t0, "w", Selection{}, fleet(50))
	if wave, _ := c.WaveFor(dev(0)); wave != "" {
		t.Fatalf("a scheduled device is served %q before the tick", wave)
	}
	ch := c.Tick(t0)
	if len(ch.Members) != 50 || releasedCount(c, "w") != 50 {
		t.Fatalf("tick released %d (%d changed), want all 50", releasedCount(c, "w"), len(ch.Members))
	}
	if wave, tag := c.WaveFor(dev(0)); wave != "w" || tag != "prod" {
		t.Fatalf("WaveFor = %q %q", wave, tag)
	}
}

// TestExponentialRate: base 5 a minute, doubled after every 10 released.
func TestExponentialRate(t *testing.T) {
	p := Policy{Exponential: &ExponentialRate{BaseRatePerMinute: 5, IncrementFactor: 2, NotifiedThings: 10}}
	t.Run("per minute", func(t *testing.T) {
		c := New()
		mustCreate(t, c, t0, spec("w", "prod", 7, p))
		mustRollout(t, c, t0, "w", Selection{}, fleet(100))
		wantReleased := []int{5, 10, 20, 40, 100}
		wantRate := []float64{5, 10, 20, 80, 5120}
		for i := range wantReleased {
			c.Tick(at(time.Duration(i+1) * time.Minute))
			w, _ := c.Wave("w")
			if w.Released != wantReleased[i] || w.Rate != wantRate[i] {
				t.Fatalf("minute %d: released %d at rate %v, want %d at %v", i+1, w.Released, w.Rate, wantReleased[i], wantRate[i])
			}
		}
	})
	t.Run("per second", func(t *testing.T) {
		c := New()
		mustCreate(t, c, t0, spec("w", "prod", 7, p))
		mustRollout(t, c, t0, "w", Selection{}, fleet(100))
		want := map[int]int{60: 5, 120: 10, 150: 15, 180: 20, 210: 30}
		for s := 1; s <= 210; s++ {
			c.Tick(at(time.Duration(s) * time.Second))
			if w, ok := want[s]; ok && releasedCount(c, "w") != w {
				t.Fatalf("after %d s: %d released, want %d", s, releasedCount(c, "w"), w)
			}
		}
	})
	t.Run("capped", func(t *testing.T) {
		capped := p
		capped.MaxPerMinute = 12
		c := New()
		mustCreate(t, c, t0, spec("w", "prod", 7, capped))
		mustRollout(t, c, t0, "w", Selection{}, fleet(100))
		for i, want := range []int{5, 10, 20, 32, 44} {
			c.Tick(at(time.Duration(i+1) * time.Minute))
			if got := releasedCount(c, "w"); got != want {
				t.Fatalf("minute %d: %d released, want %d", i+1, got, want)
			}
		}
		if w, _ := c.Wave("w"); w.Rate != 12 {
			t.Fatalf("rate %v, want the cap 12", w.Rate)
		}
	})
	t.Run("succeeded things", func(t *testing.T) {
		c := New()
		mustCreate(t, c, t0, spec("w", "prod", 7, Policy{Exponential: &ExponentialRate{BaseRatePerMinute: 2, IncrementFactor: 3, SucceededThings: 2}}))
		mustRollout(t, c, t0, "w", Selection{}, fleet(100))
		c.Tick(at(time.Minute))
		c.Tick(at(2 * time.Minute))
		if got := releasedCount(c, "w"); got != 4 {
			t.Fatalf("without confirmations %d released, want 4", got)
		}
		for _, m := range c.Members("w")[:2] {
			c.OnEvent(at(2*time.Minute), m.UUID, ev(EcuDownloadStarted, "c-"+m.UUID, 7, true))
			c.OnEvent(at(2*time.Minute), m.UUID, ev(EcuInstallationCompleted, "c-"+m.UUID, 7, true))
		}
		c.Tick(at(3 * time.Minute))
		if w, _ := c.Wave("w"); w.Released != 10 || w.Rate != 6 {
			t.Fatalf("after 2 confirmations: released %d at rate %v, want 10 at 6", w.Released, w.Rate)
		}
	})
}

// finish drives a released member to a final state through its events.
func finish(t *testing.T, c *Controller, now time.Time, uuid string, s State) Changes {
	t.Helper()
	corr := "c-" + uuid
	ch := c.OnEvent(now, uuid, ev(EcuDownloadStarted, corr, 7, true))
	switch s {
	case Confirmed:
		ch = ch.Merge(c.OnEvent(now, uuid, ev(EcuInstallationCompleted, corr, 7, true)))
	case Failed:
		ch = ch.Merge(c.OnEvent(now, uuid, ev(EcuDownloadCompleted, corr, 7, false)))
	case Reverted:
		ch = ch.Merge(c.OnEvent(now, uuid, ev(EcuInstallationApplied, corr, 7, true)))
		ch = ch.Merge(c.OnEvent(now, uuid, ev(EcuInstallationCompleted, corr, 6, false)))
	default:
		t.Fatalf("finish: %s", s)
	}
	return ch
}

func TestAbortThreshold(t *testing.T) {
	p := Policy{Abort: []AbortCriterion{{FailureType: FailureFailed, ThresholdPercent: 20, MinExecuted: 10}}}
	t.Run("not before min executed", func(t *testing.T) {
		c := released(t, 20, p)
		for i := range 3 {
			finish(t, c, at(time.Minute), dev(i), Failed)
		}
		for i := 3; i < 9; i++ {
			finish(t, c, at(time.Minute), dev(i), Confirmed)
		}
		if w, _ := c.Wave("w"); w.Status != WaveActive {
			t.Fatalf("aborted with 9 executed: %s", w.Reason)
		}
		ch := finish(t, c, at(2*time.Minute), dev(9), Confirmed)
		w, _ := c.Wave("w")
		wantReason := "failure rate 30.0% (3 of 10) at or over threshold 20.0% (failed)"
		if w.Status != WaveAborted || w.Reason != wantReason || !w.EndedAt.Equal(at(2*time.Minute)) {
			t.Fatalf("wave %s %q ended %v, want aborted %q", w.Status, w.Reason, w.EndedAt.Sub(t0), wantReason)
		}
		if len(ch.Ended) != 1 || ch.Ended[0].Status != WaveAborted || len(ch.Waves) != 1 {
			t.Fatalf("changes %+v: want the aborted wave in Waves and Ended", ch)
		}
		if wave, _ := c.WaveFor(dev(15)); wave != "" {
			t.Fatalf("a member of the aborted wave is still served %q", wave)
		}
		if ch := c.OnEvent(at(3*time.Minute), dev(15), ev(EcuDownloadStarted, "x", 7, true)); len(ch.Members) != 0 {
			t.Fatalf("an event moved a member of the aborted wave: %+v", ch.Members)
		}
		if _, err := c.Complete(at(3*time.Minute), "w"); !errors.Is(err, ErrWaveNotActive) {
			t.Fatalf("Complete of an aborted wave: %v", err)
		}
		mustCreate(t, c, at(3*time.Minute), spec("w2", "prod", 8, Policy{}))
	})
	t.Run("exactly at threshold", func(t *testing.T) {
		// AWS's thresholdPercentage is the minimum failure share that
		// aborts: reaching it is enough.
		c := released(t, 20, p)
		for i := range 8 {
			finish(t, c, at(time.Minute), dev(i), Confirmed)
		}
		finish(t, c, at(time.Minute), dev(8), Failed)
		finish(t, c, at(time.Minute), dev(9), Confirmed) // 1 of 10
		finish(t, c, at(time.Minute), dev(10), Failed)   // 2 of 11 = 18.2%
		if w, _ := c.Wave("w"); w.Status != WaveActive {
			t.Fatalf("aborted under the threshold: %s", w.Reason)
		}
		c2 := released(t, 20, p)
		for i := range 8 {
			finish(t, c2, at(time.Minute), dev(i), Confirmed)
		}
		finish(t, c2, at(time.Minute), dev(8), Failed)
		finish(t, c2, at(time.Minute), dev(9), Reverted) // 2 of 10 = 20%
		if w, _ := c2.Wave("w"); w.Status != WaveAborted || w.Reason != "failure rate 20.0% (2 of 10) at or over threshold 20.0% (failed)" {
			t.Fatalf("2 of 10 at 20%%: %s %q", w.Status, w.Reason)
		}
	})
	t.Run("100 percent", func(t *testing.T) {
		// The largest threshold AWS admits must be reachable.
		all := Policy{Abort: []AbortCriterion{{FailureType: FailureAll, ThresholdPercent: 100, MinExecuted: 3}}}
		c := released(t, 5, all)
		for i := range 2 {
			finish(t, c, at(time.Minute), dev(i), Failed)
		}
		if w, _ := c.Wave("w"); w.Status != WaveActive {
			t.Fatalf("aborted before min executed: %s", w.Reason)
		}
		finish(t, c, at(time.Minute), dev(2), Reverted)
		if w, _ := c.Wave("w"); w.Status != WaveAborted {
			t.Fatalf("3 of 3 failed under a 100%% threshold: wave %s", w.Status)
		}
	})
}

// TestAbortFailureTypes restores waves whose members already reached
// states and lets one Tick evaluate the criteria.
func TestAbortFailureTypes(t *testing.T) {
	tests := []struct {
		typ       FailureType
		threshold float64
		minExec   int
		states    string // one letter per member, as in TestEventMapping
		abort     bool
	}{
		{FailureFailed, 50, 1, "CCFR", true}, // 2 of 4 = 50%: the threshold is reached
		{FailureFailed, 50.01, 1, "CCFR", false},
		{FailureReverted, 25, 1, "CCFR", true}, // 1 of 4
		{FailureReverted, 25.01, 1, "CCFR", false},
		{FailureReverted, 10, 1, "CCFF", false},
		{FailureTimedOut, 10, 1, "CCFR", false},
		{FailureTimedOut, 10, 1, "CCCT", true},
		{FailureAll, 75, 1, "CFRT", true},
		{FailureAll, 75.01, 1, "CFRT", false},
		{FailureAll, 10, 5, "CFRTPDI", false},  // only 4 executed
		{FailureFailed, 33.33, 3, "CCF", true}, // 33.333% > 33.33%
		{FailureFailed, 33.34, 3, "CCF", false},
		{FailureFailed, 100, 1, "FFF", true}, // every executed device failed
		{FailureFailed, 100, 1, "FFFC", false},
		{FailureFailed, 1, 1, "PDIS", false}, // nothing executed
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s %v%% min %d %s", tt.typ, tt.threshold, tt.minExec, tt.states)
		w := Wave{Name: "w", Tag: "prod", Version: 7, Targets: []string{"hw-v7"}, Status: WaveActive, CreatedAt: t0, LastTick: t0,
			Policy: Policy{Abort: []AbortCriterion{{FailureType: tt.typ, ThresholdPercent: tt.threshold, MinExecuted: tt.minExec}}}}
		var members []Member
		for i := range len(tt.states) {
			s := stateLetters[tt.states[i]]
			if s != Scheduled {
				w.Released++
			}
			m := Member{Wave: "w", UUID: dev(i), Seq: i, State: s}
			if s != Scheduled && s != Pending {
				m.StartedAt = t0
			}
			members = append(members, m)
		}
		w.Scheduled = len(members)
		c, err := Restore([]Wave{w}, members, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ch := c.Tick(at(time.Second))
		if got := len(ch.Ended) == 1; got != tt.abort {
			t.Errorf("%s: aborted=%v, want %v (%v)", name, got, tt.abort, ch.Ended)
		}
	}
}

func TestInProgressTimeout(t *testing.T) {
	c := released(t, 5, Policy{InProgressTimeout: 10 * time.Minute})
	c.OnEvent(at(time.Minute), dev(0), ev(EcuDownloadStarted, "a", 7, true)) // stays downloading
	c.OnEvent(at(time.Minute), dev(1), ev(EcuDownloadStarted, "b", 7, true)) // finishes in time
	c.OnEvent(at(time.Minute), dev(2), ev(EcuDownloadStarted, "c", 7, true)) // fails, never retries
	c.OnEvent(at(time.Minute), dev(3), ev(EcuDownloadStarted, "d", 7, true)) // fails and retries later
	c.OnEvent(at(2*time.Minute), dev(1), ev(EcuInstallationCompleted, "b", 7, true))
	c.OnEvent(at(2*time.Minute), dev(2), ev(EcuDownloadCompleted, "c", 7, false))
	c.OnEvent(at(2*time.Minute), dev(3), ev(EcuDownloadCompleted, "d", 7, false))
	c.OnEvent(at(9*time.Minute), dev(3), ev(EcuDownloadStarted, "d2", 7, true))
	// dev(4) never starts: Pending does not time out.
	if ch := c.Tick(at(11 * time.Minute)); len(ch.Members) != 0 {
		t.Fatalf("exactly at the timeout, %d members timed out", len(ch.Members))
	}
	ch := c.Tick(at(11*time.Minute + time.Second))
	var timedOut []string
	for _, m := range ch.Members {
		if m.State != TimedOut || !m.FinishedAt.Equal(at(11*time.Minute+time.Second)) {
			t.Errorf("changed member %+v", m)
		}
		timedOut = append(timedOut, m.UUID)
	}
	slices.Sort(timedOut) // Changes are in Seq order, which is the selection's
	if fmt.Sprint(timedOut) != fmt.Sprint([]string{dev(0), dev(2), dev(3)}) {
		t.Fatalf("timed out %v, want devices 0, 2 and 3", timedOut)
	}
	if m := memberOf(t, c, "w", dev(1)); m.State != Confirmed {
		t.Fatalf("confirmed device: %s", m.State)
	}
	if m := memberOf(t, c, "w", dev(4)); m.State != Pending {
		t.Fatalf("device that never started: %s", m.State)
	}
	// TimedOut is terminal: a late confirmation does not move it.
	if ch := c.OnEvent(at(12*time.Minute), dev(0), ev(EcuInstallationCompleted, "a", 7, true)); len(ch.Members) != 0 {
		t.Fatalf("late event moved a timed-out member: %+v", ch.Members)
	}
	if ch := c.Tick(at(time.Hour)); len(ch.Members) != 0 {
		t.Fatalf("a later tick changed %+v", ch.Members)
	}
}

func TestTimeoutAbort(t *testing.T) {
	p := Policy{InProgressTimeout: time.Minute, Abort: []AbortCriterion{{FailureType: FailureTimedOut, ThresholdPercent: 50, MinExecuted: 2}}}
	c := released(t, 4, p)
	for i := range 2 {
		c.OnEvent(at(time.Minute), dev(i), ev(EcuDownloadStarted, "x", 7, true))
	}
	ch := c.Tick(at(3 * time.Minute))
	if len(ch.Ended) != 1 || ch.Ended[0].Reason != "failure rate 100.0% (2 of 2) at or over threshold 50.0% (timed_out)" {
		t.Fatalf("changes %+v: want the wave aborted by its timeouts", ch)
	}
}

func TestPolicyValidation(t *testing.T) {
	exp := func(base int, f float64, n, s int) *ExponentialRate {
		return &ExponentialRate{BaseRatePerMinute: base, IncrementFactor: f, NotifiedThings: n, SucceededThings: s}
	}
	abort := func(typ FailureType, p float64, m int) []AbortCriterion {
		return []AbortCriterion{{FailureType: typ, ThresholdPercent: p, MinExecuted: m}}
	}
	good := []Policy{
		{},
		{MaxPerMinute: 1},
		{MaxPerMinute: 1000, Exponential: exp(1, 1.1, 1, 0)},
		{Exponential: exp(1000, 5, 0, 3)},
		{Abort: abort(FailureAll, 100, 1), InProgressTimeout: time.Hour},
		{Abort: abort(FailureReverted, 0.01, 50)},
		{Abort: abort(FailureTimedOut, 10, 1)},
	}
	for _, p := range good {
		if err := p.validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	bad := []Policy{
		{MaxPerMinute: -1},
		{MaxPerMinute: maxRate + 1},
		{Exponential: exp(0, 2, 1, 0)},
		{Exponential: exp(1001, 2, 1, 0)},
		{Exponential: exp(5, 1.09, 1, 0)},
		{Exponential: exp(5, 5.01, 1, 0)},
		{Exponential: exp(5, 2, 0, 0)},
		{Exponential: exp(5, 2, 1, 1)},
		{Exponential: exp(5, 2, -1, 1)},
		{Abort: abort(FailureFailed, 0, 1)},
		{Abort: abort(FailureFailed, 100.01, 1)},
		{Abort: abort(FailureFailed, 10, 0)},
		{Abort: abort("REJECTED", 10, 1)},
		{InProgressTimeout: -time.Second},
	}
	for _, p := range bad {
		if err := p.validate(); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("%+v: %v, want ErrBadPolicy", p, err)
		}
		if _, err := New().CreateWave(t0, spec("w", "prod", 1, p)); !errors.Is(err, ErrBadPolicy) {
			t.Errorf("CreateWave with %+v: %v, want ErrBadPolicy", p, err)
		}
	}
}
