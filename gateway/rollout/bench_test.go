package rollout

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

const benchMembers = 100_000

// benchWave is a controller with one active wave of benchMembers released
// members, under an abort criterion that is evaluated on every event but
// never fires (nothing times out within a day), and a timeout.
func benchWave(b *testing.B) (*Controller, []string) {
	c, uuids, err := buildBenchWave()
	if err != nil {
		b.Fatal(err)
	}
	return c, uuids
}

func buildBenchWave() (*Controller, []string, error) {
	p := Policy{InProgressTimeout: 24 * time.Hour, Abort: []AbortCriterion{{FailureType: FailureTimedOut, ThresholdPercent: 100, MinExecuted: 1}}}
	c := New()
	if _, err := c.CreateWave(t0, spec("w", "prod", 7, p)); err != nil {
		return nil, nil, err
	}
	cands := make([]Candidate, benchMembers)
	uuids := make([]string, benchMembers)
	for i := range cands {
		uuids[i] = fmt.Sprintf("%08X-0000-4000-8000-%012X", i, i)
		cands[i] = Candidate{UUID: uuids[i], LastSeen: t0}
	}
	for i := 0; i < benchMembers; i += MaxDevicesPerStep {
		if _, _, err := c.Rollout(t0, "w", Selection{Limit: MaxDevicesPerStep}, cands); err != nil {
			return nil, nil, err
		}
	}
	c.Tick(t0)
	if w, _ := c.Wave("w"); w.Released != benchMembers {
		return nil, nil, fmt.Errorf("released %d of %d", w.Released, benchMembers)
	}
	return c, uuids, nil
}

// servedWave is benchWave shared by the benchmarks that only read it:
// RunParallel calls its benchmark several times, and the set-up is the slow
// part.
var servedWave = sync.OnceValues(func() (servedBench, error) {
	c, uuids, err := buildBenchWave()
	return servedBench{c, uuids}, err
})

type servedBench struct {
	c     *Controller
	uuids []string
}

func sharedWave(b *testing.B) (*Controller, []string) {
	sb, err := servedWave()
	if err != nil {
		b.Fatal(err)
	}
	return sb.c, sb.uuids
}

// BenchmarkOnEvent applies events that each move a member and its Update:
// devices alternate between a download start (a new attempt, new
// correlation id) and a failed download.
func BenchmarkOnEvent(b *testing.B) {
	c, uuids := benchWave(b)
	corr := []string{"5A0E4F2C-8B1D-4C3A-9E7F-000000000001", "5A0E4F2C-8B1D-4C3A-9E7F-000000000002"}
	now := at(time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		d := i % benchMembers
		round := i / benchMembers
		var e Event
		if round%2 == 0 {
			e = Event{Type: EcuDownloadStarted, CorrelationID: corr[(round/2)%2], Version: 7, Success: true}
		} else {
			e = Event{Type: EcuDownloadCompleted, CorrelationID: corr[(round/2)%2], Version: 7, Success: false}
		}
		if ch := c.OnEvent(now, uuids[d], e); len(ch.Members) != 1 {
			b.Fatalf("event %d changed %d members", i, len(ch.Members))
		}
		i++
	}
}

func BenchmarkWaveFor(b *testing.B) {
	c, uuids := sharedWave(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if w, _ := c.WaveFor(uuids[i%benchMembers]); w != "w" {
			b.Fatal("not served")
		}
		i++
	}
}

func BenchmarkWaveForParallel(b *testing.B) {
	c, uuids := sharedWave(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if w, _ := c.WaveFor(uuids[i%benchMembers]); w != "w" {
				b.Error("not served")
				return
			}
			i++
		}
	})
}

// BenchmarkServedWave is the per-/repo-request lookup the gateway makes with
// the device's tag.
func BenchmarkServedWave(b *testing.B) {
	c, uuids := sharedWave(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if w := c.ServedWave(uuids[i%benchMembers], "prod"); w != "w" {
			b.Fatal("not served")
		}
		i++
	}
}

// BenchmarkTick is a live gateway's once-a-second tick over a wave of
// benchMembers released members: nothing to release, timeouts far off.
func BenchmarkTick(b *testing.B) {
	c, _ := benchWave(b)
	b.ReportAllocs()
	b.ResetTimer()
	now := t0
	for b.Loop() {
		now = now.Add(time.Second)
		c.Tick(now)
	}
}

// BenchmarkRollout is one 10,000-device step chosen from a fleet of
// benchMembers candidates.
func BenchmarkRollout(b *testing.B) {
	cands := fleet(benchMembers)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		c := New()
		mustCreate(b, c, t0, spec("w", "prod", 7, Policy{}))
		b.StartTimer()
		mustRollout(b, c, t0, "w", Selection{Limit: MaxDevicesPerStep}, cands)
	}
}
