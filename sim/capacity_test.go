package sim

import (
	"testing"
	"time"
)

func TestServerQueuesOnItsCores(t *testing.T) {
	ms := int64(time.Millisecond)
	s := newServer(Capacity{Cores: 2, Egress: 8e6}) // 1 MB/s
	// Three jobs of 10 ms at t=0 on two cores: the third waits 10 ms.
	got := []int64{s.cpu(0, 10*time.Millisecond), s.cpu(0, 10*time.Millisecond), s.cpu(0, 10*time.Millisecond)}
	if got[0] != 10*ms || got[1] != 10*ms || got[2] != 20*ms {
		t.Fatalf("finish times %v ms, want 10 10 20", []int64{got[0] / ms, got[1] / ms, got[2] / ms})
	}
	// A job arriving after the cores are free does not wait.
	if f := s.cpu(50*ms, 5*time.Millisecond); f != 55*ms {
		t.Fatalf("a late job finishes at %d ms, want 55", f/ms)
	}
	st := s.stats
	if st.Jobs != 4 || st.Waited != 10*time.Millisecond || st.MaxWait != 10*time.Millisecond || st.Busy != 35*time.Millisecond {
		t.Fatalf("stats %+v", st)
	}
	// 1,000 bytes take 1 ms on the uplink; the second response queues
	// behind the first.
	if a, b := s.send(0, 1000), s.send(0, 1000); a != ms || b != 2*ms {
		t.Fatalf("uplink: %d and %d µs, want 1000 and 2000", a/1000, b/1000)
	}
}

func TestUnlimitedServerNeverWaits(t *testing.T) {
	s := newServer(Capacity{})
	for range 5 {
		if f := s.cpu(7, time.Second); f != 7+int64(time.Second) {
			t.Fatalf("finish %d, want arrival + cost", f)
		}
	}
	if s.send(3, 1<<20) != 3 || s.stats.Waited != 0 {
		t.Fatal("an unlimited server queued")
	}
}
