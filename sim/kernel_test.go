package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// trace runs three processes that sleep in different rhythms, with a
// kernel callback among them, and returns what happened in order.
func trace(k *Kernel) string {
	var b strings.Builder
	log := func(who string) { fmt.Fprintf(&b, "%s@%s ", who, k.Now().Sub(t0)) }
	for i, step := range []time.Duration{3 * time.Second, 5 * time.Second, 3 * time.Second} {
		name := string(rune('a' + i))
		k.Go(t0.Add(time.Duration(i)*time.Second), func() {
			for range 3 {
				log(name)
				k.Sleep(step, nil)
			}
			log(name + "-done")
		})
	}
	k.At(t0.Add(4*time.Second), func() { log("tick") })
	k.Run(t0.Add(time.Hour))
	return b.String()
}

func TestKernelOrdersByTimeThenSequence(t *testing.T) {
	got := trace(NewKernel(t0))
	want := "a@0s b@1s c@2s a@3s tick@4s c@5s b@6s a@6s c@8s a-done@9s b@11s c-done@11s b-done@16s "
	if got != want {
		t.Fatalf("trace\n got %s\nwant %s", got, want)
	}
	for range 20 {
		if again := trace(NewKernel(t0)); again != got {
			t.Fatalf("a second run differs:\n%s\n%s", again, got)
		}
	}
}

func TestKernelRunStopsAtUntil(t *testing.T) {
	k := NewKernel(t0)
	n := 0
	k.Go(t0, func() {
		for {
			n++
			k.Sleep(time.Minute, nil)
		}
	})
	k.Run(t0.Add(10 * time.Minute))
	if n != 11 || !k.Now().Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("after Run(10m): %d steps, clock %v; want 11 steps at 10m", n, k.Now().Sub(t0))
	}
	k.Run(t0.Add(15 * time.Minute))
	if n != 16 {
		t.Fatalf("after Run(15m): %d steps, want 16", n)
	}
}

func TestKernelWakeCutsASleepShort(t *testing.T) {
	k := NewKernel(t0)
	stop := make(chan struct{})
	var slept bool
	var woke time.Time
	p := k.Go(t0, func() {
		slept = k.Sleep(time.Hour, stop)
		woke = k.Now()
	})
	k.At(t0.Add(time.Minute), func() {
		close(stop)
		k.Wake(p)
	})
	k.Run(t0.Add(2 * time.Hour))
	if slept || !woke.Equal(t0.Add(time.Minute)) || k.Live() != 0 {
		t.Fatalf("slept=%v woke at %v live=%d; want an interrupted sleep at 1m and no live process", slept, woke.Sub(t0), k.Live())
	}
}
