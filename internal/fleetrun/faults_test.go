package fleetrun

import (
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
)

// TestPartitionCutsOffOnlyItsShare: a network outage with a rate cuts a
// share of the fleet off the gateway, and only that share waits for it to
// end; without a rate the whole fleet waits.
func TestPartitionCutsOffOnlyItsShare(t *testing.T) {
	outage := func(rate float64) *Report {
		s := small(8)
		s.Expect = nil
		s.Faults = []scenarios.Fault{{Kind: "network-outage", Rate: rate,
			At: scenarios.Duration(4 * time.Minute), For: scenarios.Duration(40 * time.Minute)}}
		_, r := runJSON(t, s)
		if r.Outcomes.Updated != 8 || r.Faults.Outages != 1 {
			t.Fatalf("rate %g: outcomes %+v faults %+v: want every device updated after one outage", rate, r.Outcomes, r.Faults)
		}
		return r
	}
	const ended = 39 * 60 // seconds from the publication at 5m to the end at 44m
	part := outage(0.5)
	if n := part.Faults.Partitioned; n == 0 || n == 8 {
		t.Fatalf("%d of 8 devices partitioned: want about half", n)
	}
	if last := *part.TimeToFraction.P100; last < ended {
		t.Errorf("partition: time to 100%% %vs, want the partitioned devices after it ends (%ds)", last, ended)
	}
	if first := *part.TimeToFraction.P50; part.Faults.Partitioned <= 4 && first >= ended {
		t.Errorf("partition of %d: time to 50%% %vs, want the other half before it ends (%ds)", part.Faults.Partitioned, first, ended)
	}
	all := outage(0)
	if all.Faults.Partitioned != 0 || *all.TimeToFraction.P50 < ended {
		t.Errorf("whole-network outage: %d partitioned, time to 50%% %vs; want none partitioned and every device after the outage", all.Faults.Partitioned, *all.TimeToFraction.P50)
	}
}
