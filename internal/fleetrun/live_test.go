package fleetrun

import (
	"math"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/scenarios"
)

// versus is a small fleet that updates within a minute of wall time.
func versus() *scenarios.Scenario {
	s := &scenarios.Scenario{
		Name:     "versus",
		Duration: scenarios.Duration(3 * time.Minute),
		Fleet: []scenarios.Cohort{{
			Count: 20, Board: "rt1060", Link: "ethernet",
			Poll: scenarios.Duration(5 * time.Second), Start: scenarios.Duration(10 * time.Second),
		}},
		Rollout: scenarios.Rollout{ImageSize: 16 << 10, Versions: []uint32{1001}, At: scenarios.Duration(20 * time.Second)},
		Gateway: scenarios.Gateway{Unlimited: true},
	}
	s.Defaults()
	return s
}

// TestLiveAgreesWithVirtual runs the same fleet on loopback over mutual
// TLS on the wall clock, and in virtual time. They must agree on every
// outcome, and their rollout curves on the times to 50, 90 and 100
// percent updated within 5 s plus 20 %: the virtual link is a 2 ms
// Ethernet, loopback is faster, and the live run's goroutines share two
// cores, so the curves match in shape, not to the millisecond.
//
// Wall-clock timing needs the machine to itself: under -short (make
// test-race, where other packages' tests share the cores) it is skipped,
// and make test-long runs it alone.
func TestLiveAgreesWithVirtual(t *testing.T) {
	if testing.Short() {
		t.Skip("wall-clock timing: make test-long runs it without -short, alone on the machine")
	}
	virtual, err := Run(versus(), Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s := versus()
	s.Mode = "live"
	real, err := Run(s, Options{Dir: t.TempDir(), Live: &LiveOptions{Proto: live.HTTP1}})
	if err != nil {
		t.Fatal(err)
	}
	if real.Outcomes != virtual.Outcomes || real.Outcomes.Updated != 20 {
		t.Fatalf("outcomes live %+v, virtual %+v: want the same, all 20 updated", real.Outcomes, virtual.Outcomes)
	}
	if real.Gateway.Handshakes == 0 || real.Mode != "live" {
		t.Fatalf("live report %+v: want handshakes over real sockets", real.Gateway)
	}
	for _, c := range []struct {
		name       string
		live, virt *float64
	}{
		{"50%", real.TimeToFraction.P50, virtual.TimeToFraction.P50},
		{"90%", real.TimeToFraction.P90, virtual.TimeToFraction.P90},
		{"100%", real.TimeToFraction.P100, virtual.TimeToFraction.P100},
	} {
		if c.live == nil || c.virt == nil {
			t.Fatalf("time to %s: live %v, virtual %v", c.name, c.live, c.virt)
		}
		if d := math.Abs(*c.live - *c.virt); d > 5+0.2*(*c.virt) {
			t.Errorf("time to %s updated: live %.1f s, virtual %.1f s: apart by more than 5 s + 20%%", c.name, *c.live, *c.virt)
		}
		t.Logf("time to %s updated: live %.1f s, virtual %.1f s", c.name, *c.live, *c.virt)
	}
}
