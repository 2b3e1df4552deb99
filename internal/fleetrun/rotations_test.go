package fleetrun

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
)

// rotating is small(n) publishing v1001 at 10m and v1002 at 20m, with every
// key rotated at 15m: v1002 is signed under the new keys only.
func rotating(n int) *scenarios.Scenario {
	s := small(n)
	s.Rollout.Versions = []uint32{1001, 1002}
	s.Rollout.At = scenarios.Duration(10 * time.Minute)
	s.Rollout.Rotations = []scenarios.Rotation{{At: scenarios.Duration(15 * time.Minute), Roles: scenarios.RotationRoles}}
	s.Expect = map[string][]string{"updated": {"rate==1"}, "bricked": {"count==0"}, "root_rotated": {"rate==1"}}
	return s
}

// TestRootRotationReachesEveryDevice: the gateway rotates every key while
// the whole fleet is cut off from it; once back, each device walks the root
// chain to version 2 and takes v1002, which it can verify only under the new
// keys. report.json and report.html count the rotation and the devices
// trusting its root, the same for the same seed.
func TestRootRotationReachesEveryDevice(t *testing.T) {
	s := rotating(6)
	s.Faults = []scenarios.Fault{{Kind: "network-outage", At: scenarios.Duration(14 * time.Minute), For: scenarios.Duration(10 * time.Minute)}}
	js, r := runJSON(t, s)
	if r.Failed() {
		t.Errorf("thresholds %+v", r.Thresholds)
	}
	want := []RotationOutcome{{At: 15 * 60, Roles: scenarios.RotationRoles, RootVersion: 2, Trusting: 6}}
	if !slices.EqualFunc(r.Rotations, want, func(a, b RotationOutcome) bool {
		return a.At == b.At && slices.Equal(a.Roles, b.Roles) && a.RootVersion == b.RootVersion && a.Trusting == b.Trusting
	}) {
		t.Errorf("rotations %+v, want %+v", r.Rotations, want)
	}
	if r.Outcomes.Updated != 6 || *r.TimeToFraction.P50 < 4*60 {
		t.Errorf("outcomes %+v, time to 50%% %v s: every device updates, once the outage is over", r.Outcomes, *r.TimeToFraction.P50)
	}
	if el := byID(parseHTML(t, renderHTML(t, r)), "rotations"); el == nil || !strings.Contains(text(el), "15m0s root, targets, snapshot, timestamp 2 6") {
		t.Error("report.html has no row for the rotation")
	}
	again, _ := runJSON(t, s)
	if !bytes.Equal(js, again) {
		t.Fatal("two runs with the same seed and a rotation differ")
	}
}

// TestRotationsAcrossGatewayRestart: a rotation of root and timestamp is
// kept by the gateway across a restart, and a second rotation after the
// last publication holds the run open until every device trusts its root.
func TestRotationsAcrossGatewayRestart(t *testing.T) {
	s := rotating(4)
	s.Rollout.Rotations = []scenarios.Rotation{
		{At: scenarios.Duration(12 * time.Minute), Roles: []string{"root", "timestamp"}},
		{At: scenarios.Duration(40 * time.Minute), Roles: []string{"targets", "snapshot"}},
	}
	s.Faults = []scenarios.Fault{{Kind: "gateway-outage", At: scenarios.Duration(13 * time.Minute), For: scenarios.Duration(5 * time.Minute)}}
	_, r := runJSON(t, s)
	if r.Failed() {
		t.Errorf("thresholds %+v", r.Thresholds)
	}
	if r.Faults.GatewayRestarts != 1 || len(r.Rotations) != 2 || r.Rotations[0].RootVersion != 2 || r.Rotations[1].RootVersion != 3 {
		t.Fatalf("faults %+v rotations %+v: want a restart, then roots 2 and 3", r.Faults, r.Rotations)
	}
	if r.Rotations[1].Trusting != 4 || r.Simulated < 40*60 || !r.Settled {
		t.Errorf("rotations %+v, settled %v after %v s: the run settles once all 4 devices trust root 3", r.Rotations, r.Settled, r.Simulated)
	}
}
