package rollout

import (
	"fmt"
	"testing"
	"time"
)

// t0 is the virtual time tests start at.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func dev(i int) string { return fmt.Sprintf("dev-%05d", i) }

// fleet returns n candidates, seen a minute before t0, in groups g0..g2.
func fleet(n int) []Candidate {
	out := make([]Candidate, n)
	for i := range out {
		out[i] = Candidate{UUID: dev(i), Group: fmt.Sprintf("g%d", i%3), LastSeen: t0.Add(-time.Minute)}
	}
	return out
}

func spec(name, tag string, version uint32, p Policy) WaveSpec {
	return WaveSpec{Name: name, Tag: tag, Version: version, Targets: []string{fmt.Sprintf("MIMXRT1060-EVK-v%d", version)}, Policy: p}
}

func mustCreate(t testing.TB, c *Controller, now time.Time, s WaveSpec) Changes {
	t.Helper()
	ch, err := c.CreateWave(now, s)
	if err != nil {
		t.Fatalf("CreateWave(%s): %v", s.Name, err)
	}
	return ch
}

func mustRollout(t testing.TB, c *Controller, now time.Time, wave string, sel Selection, cands []Candidate) []string {
	t.Helper()
	got, _, err := c.Rollout(now, wave, sel, cands)
	if err != nil {
		t.Fatalf("Rollout(%s): %v", wave, err)
	}
	return got
}

// released starts a controller with one wave of version 7 whose n members
// are all released (Pending).
func released(t testing.TB, n int, p Policy) *Controller {
	t.Helper()
	if p.rated() {
		t.Fatal("released() needs a policy without a rate limit")
	}
	c := New()
	mustCreate(t, c, t0, spec("w", "prod", 7, p))
	cands := fleet(n)
	for i := 0; i < n; i += MaxDevicesPerStep {
		mustRollout(t, c, t0, "w", Selection{Limit: min(MaxDevicesPerStep, n-i)}, cands)
	}
	c.Tick(t0)
	if w, _ := c.Wave("w"); w.Released != n {
		t.Fatalf("released %d of %d", w.Released, n)
	}
	return c
}

func ev(typ, corr string, version uint32, success bool) Event {
	return Event{Type: typ, CorrelationID: corr, Version: version, Success: success}
}

func memberOf(t testing.TB, c *Controller, wave, uuid string) Member {
	t.Helper()
	for _, m := range c.Members(wave) {
		if m.UUID == uuid {
			return m
		}
	}
	t.Fatalf("%s is not a member of %s", uuid, wave)
	return Member{}
}

func releasedCount(c *Controller, wave string) int {
	w, _ := c.Wave(wave)
	return w.Released
}
