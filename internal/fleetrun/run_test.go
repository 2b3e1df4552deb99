package fleetrun

import (
	"bytes"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
)

// small is a fleet of a few devices on fast links that updates in minutes
// of virtual time.
func small(devices int) *scenarios.Scenario {
	s := &scenarios.Scenario{
		Name:     "small",
		Duration: scenarios.Duration(2 * time.Hour),
		Fleet: []scenarios.Cohort{{
			Count: devices, Board: "rt1060", Link: "ethernet",
			Poll: scenarios.Duration(time.Minute), Start: scenarios.Duration(time.Minute),
		}},
		Rollout: scenarios.Rollout{ImageSize: 16 << 10, Versions: []uint32{1001}, At: scenarios.Duration(5 * time.Minute)},
		Expect: map[string][]string{
			"updated": {"rate==1"},
			"bricked": {"count==0"},
			// The poll interval bounds when a device learns of the update.
			"time_to_update": {"max<15m"},
		},
	}
	s.Defaults()
	return s
}

func runJSON(t *testing.T, s *scenarios.Scenario) ([]byte, *Report) {
	t.Helper()
	r, err := Run(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	return js, r
}

func TestFleetUpdatesAndMeetsItsExpectations(t *testing.T) {
	_, r := runJSON(t, small(6))
	if r.Outcomes.Updated != 6 || !r.Settled {
		t.Fatalf("outcomes %+v settled=%v, want all 6 updated and the run settled", r.Outcomes, r.Settled)
	}
	for _, th := range r.Thresholds {
		if !th.OK {
			t.Errorf("threshold %s %s failed: value %v %s", th.Metric, th.Threshold, th.Value, th.Error)
		}
	}
	if len(r.Thresholds) != 3 {
		t.Errorf("%d thresholds evaluated, want 3", len(r.Thresholds))
	}
	if r.TimeToFraction.P100 == nil || r.UpdateDuration.Count != 6 {
		t.Errorf("time to 100%% %v, %d update durations; want both for 6 devices", r.TimeToFraction.P100, r.UpdateDuration.Count)
	}
	if r.Gateway.Handshakes == 0 || r.Gateway.ToDevices < 6*16<<10 {
		t.Errorf("gateway load %+v: want handshakes and at least the images' bytes", r.Gateway)
	}
}

func TestSameSeedSameReport(t *testing.T) {
	a, _ := runJSON(t, small(8))
	b, _ := runJSON(t, small(8))
	if !bytes.Equal(a, b) {
		t.Fatalf("two runs with the same seed differ:\n%s\n%s", a, b)
	}
	s := small(8)
	s.Seed = 2
	c, _ := runJSON(t, s)
	if bytes.Equal(a, c) {
		t.Fatal("a different seed gave the same report")
	}
}

func TestFailedExpectationIsReported(t *testing.T) {
	s := small(3)
	s.Expect = map[string][]string{"time_to_update": {"p(95)<1s"}}
	_, r := runJSON(t, s)
	if !r.Failed() || len(r.Thresholds) != 1 || r.Thresholds[0].OK {
		t.Fatalf("thresholds %+v: want p(95)<1s to fail", r.Thresholds)
	}
}

func TestPowerCutsDuringSwapBrickNoDevice(t *testing.T) {
	s := small(6)
	s.Faults = []scenarios.Fault{{Kind: "power-cut", Phase: "swap", Rate: 1}}
	_, r := runJSON(t, s)
	if r.Faults.PowerCutsArmed != 6 || r.Faults.PowerCuts == 0 {
		t.Fatalf("faults %+v: want 6 armed and some fired", r.Faults)
	}
	if r.Outcomes.Bricked != 0 || r.Outcomes.Updated != 6 {
		t.Fatalf("outcomes %+v: MCUboot resumes a cut swap, so every device ends updated", r.Outcomes)
	}
}

func TestGatewayOutageAndRestart(t *testing.T) {
	s := small(4)
	s.Faults = []scenarios.Fault{{Kind: "gateway-outage", At: scenarios.Duration(4 * time.Minute), For: scenarios.Duration(10 * time.Minute)}}
	_, r := runJSON(t, s)
	if r.Faults.GatewayRestarts != 1 || r.Gateway.ConnectFailures == 0 {
		t.Fatalf("faults %+v gateway %+v: want one restart and refused connections", r.Faults, r.Gateway)
	}
	if r.Outcomes.Updated != 4 {
		t.Fatalf("outcomes %+v: every device updates once the gateway is back", r.Outcomes)
	}
}

func TestSharingChangesNothing(t *testing.T) {
	s := small(5)
	s.Faults = []scenarios.Fault{{Kind: "power-cut", Phase: "download", Rate: 0.5}}
	shared, _ := runJSON(t, s)
	r, err := Run(s, Options{Dir: t.TempDir(), NoSharing: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shared, plain) {
		t.Fatalf("the report differs without sharing:\n%s\n%s", shared, plain)
	}
}

func TestWavesReachOnlyTheirGroups(t *testing.T) {
	s := small(0)
	s.Fleet = []scenarios.Cohort{
		{Name: "canary", Count: 2, Board: "rt1060", Link: "ethernet", Production: true, Group: "canary", Poll: scenarios.Duration(time.Minute)},
		{Name: "rest", Count: 4, Board: "rt1060", Link: "ethernet", Production: true, Group: "rest", Poll: scenarios.Duration(time.Minute)},
	}
	s.Rollout.Waves = []scenarios.Wave{{At: scenarios.Duration(10 * time.Minute), Groups: []string{"canary"}, Percentage: 100}}
	s.Expect = nil
	s.Defaults()
	_, r := runJSON(t, s)
	if got := r.Cohorts[0].Updated; got != 2 {
		t.Errorf("canary cohort: %d updated, want 2", got)
	}
	if got := r.Cohorts[1].StillOld; got != 4 {
		t.Errorf("rest cohort: %d still old, want all 4: no wave reached them", got)
	}
	if len(r.Waves) != 1 || r.Waves[0].Scheduled != 2 {
		t.Errorf("waves %+v, want one with 2 devices", r.Waves)
	}
}

func TestBadCanaryAbortsTheWave(t *testing.T) {
	s := small(0)
	bad := map[string]string{"1001": "fails-self-test"}
	s.Fleet = []scenarios.Cohort{
		{Name: "canary", Count: 12, Board: "rt1060", Link: "ethernet", Production: true, Group: "canary", Poll: scenarios.Duration(time.Minute), Firmware: bad},
		{Name: "rest", Count: 4, Board: "rt1060", Link: "ethernet", Production: true, Group: "rest", Poll: scenarios.Duration(time.Minute), Firmware: bad},
	}
	s.Rollout.Waves = []scenarios.Wave{
		{At: scenarios.Duration(10 * time.Minute), Groups: []string{"canary"}, Percentage: 100, AbortFailureRate: 0.1},
		{At: scenarios.Duration(90 * time.Minute), Groups: []string{"rest"}, Percentage: 100},
	}
	s.Expect = nil
	s.Defaults()
	_, r := runJSON(t, s)
	if r.Outcomes.Updated != 0 || r.Outcomes.Bricked != 0 || r.Cohorts[0].Reverted == 0 || r.Cohorts[1].StillOld != 4 {
		t.Errorf("outcomes %+v per cohort %+v: want canaries reverted, the rest untouched", r.Outcomes, r.Cohorts)
	}
	if len(r.Waves) != 1 || r.Waves[0].Status != "aborted" {
		t.Errorf("waves %+v, want one aborted", r.Waves)
	}
}

func TestEveryAgentBoardUpdates(t *testing.T) {
	for _, board := range []string{"k64f", "nrf52840", "rt1060"} {
		t.Run(board, func(t *testing.T) {
			s := small(2)
			s.Fleet[0].Board = board
			_, r := runJSON(t, s)
			if r.Outcomes.Updated != 2 {
				t.Fatalf("outcomes %+v, want both updated", r.Outcomes)
			}
		})
	}
}

// TestQuantumKeepsTimes: batching flash work into a quantum changes how
// often devices hand the baton back, not when anything observable happens.
func TestQuantumKeepsTimes(t *testing.T) {
	s := small(6)
	s.Faults = []scenarios.Fault{{Kind: "power-cut", Phase: "swap", Rate: 0.5}}
	_, batched := runJSON(t, s)
	exact, err := Run(s, Options{Dir: t.TempDir(), Quantum: -1})
	if err != nil {
		t.Fatal(err)
	}
	if batched.Outcomes != exact.Outcomes || batched.Faults != exact.Faults {
		t.Fatalf("outcomes %+v / faults %+v with the quantum, %+v / %+v without", batched.Outcomes, batched.Faults, exact.Outcomes, exact.Faults)
	}
	if a, b := batched.TimeToUpdate, exact.TimeToUpdate; a.Min != b.Min || a.Max != b.Max || a.Med != b.Med {
		t.Fatalf("time to update %+v with the quantum, %+v without", a, b)
	}
}

// TestGatewayCapacityQueues: a gateway with one slow core makes devices
// queue, and the rollout takes longer than with no limit.
func TestGatewayCapacityQueues(t *testing.T) {
	s := small(8)
	s.Gateway = scenarios.Gateway{Unlimited: true}
	_, free := runJSON(t, s)
	s.Gateway = scenarios.Gateway{Cores: 1, RequestCPU: scenarios.Duration(200 * time.Millisecond), HandshakeCPU: scenarios.Duration(time.Second)}
	s.Expect = map[string][]string{"max_queue_wait": {"value>0"}, "gateway_utilization": {"value>0.01"}}
	_, slow := runJSON(t, s)
	if free.Gateway.MaxWaitMs != 0 || free.Gateway.Cores != 0 {
		t.Errorf("unlimited gateway: %+v, want no cores and no waiting", free.Gateway)
	}
	if slow.Failed() {
		t.Errorf("thresholds %+v: want queueing and a busy gateway", slow.Thresholds)
	}
	if *slow.TimeToFraction.P100 <= *free.TimeToFraction.P100 {
		t.Errorf("time to 100%%: %v with a slow gateway, %v without limits: want longer", *slow.TimeToFraction.P100, *free.TimeToFraction.P100)
	}
}

// TestMaliciousRepositoryIsRefused: v1001 is out at 10m, then an attack
// from 15m to 45m while v1002 is published at 20m. Under every attack no
// device runs anything but published firmware, and all but a freeze show
// as refusals; once it ends, the fleet takes v1002.
func TestMaliciousRepositoryIsRefused(t *testing.T) {
	for _, attack := range scenarios.Attacks {
		t.Run(attack, func(t *testing.T) {
			s := small(4)
			s.Expect = nil
			s.Rollout.Versions = []uint32{1001, 1002}
			s.Rollout.At = scenarios.Duration(10 * time.Minute)
			s.Faults = []scenarios.Fault{{Kind: "malicious-repo", Attack: attack, At: scenarios.Duration(15 * time.Minute), For: scenarios.Duration(30 * time.Minute)}}
			_, r := runJSON(t, s)
			f := r.Faults
			if f.Attacks != 1 || f.Compromised != 0 || r.Outcomes.Bricked != 0 {
				t.Fatalf("faults %+v outcomes %+v: want one attack, nothing compromised or bricked", f, r.Outcomes)
			}
			if attack != "freeze" && f.AttacksRefused == 0 {
				t.Errorf("faults %+v: want refusals (a freeze only withholds the update)", f)
			}
			if r.Outcomes.Updated != 4 || *r.TimeToFraction.P50 < 25*60 {
				t.Errorf("outcomes %+v, time to 50%% %v s: want every device updated, after the attack", r.Outcomes, *r.TimeToFraction.P50)
			}
		})
	}
}

// TestClockSkewedDevicesRefuseExpiredMetadata: devices whose clock runs
// ten years ahead find every timestamp expired and never update; the
// others do.
func TestClockSkewedDevicesRefuseExpiredMetadata(t *testing.T) {
	s := small(8)
	s.Expect = nil
	s.Faults = []scenarios.Fault{{Kind: "clock-skew", Rate: 0.5, Skew: scenarios.Duration(10 * 365 * 24 * time.Hour)}}
	_, r := runJSON(t, s)
	skewed := int(r.Faults.ClockSkewed)
	if skewed == 0 || skewed == 8 {
		t.Fatalf("%d of 8 devices skewed: want about half", skewed)
	}
	if r.Outcomes.Updated != 8-skewed || r.Outcomes.StillOld != skewed {
		t.Fatalf("outcomes %+v with %d skewed: want the skewed ones still old, the rest updated", r.Outcomes, skewed)
	}
}
