package gateway_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
)

// TestRolloutSteps: rollout steps by group, by listed UUIDs and by
// percentage (dry run) over the admin API, with groups set through it.
func TestRolloutSteps(t *testing.T) {
	h := newHarness(t, t.TempDir(), newCA(t), gatewaytest.NewClock(epoch))
	h.mustAdmin(http.StatusCreated, "POST", "/v1/tags", gateway.TagRequest{Tag: "main"}, nil)
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1001, 2000), "board", "main")
	fleet := prodFleet(h, 6, "main")
	test := h.newDevice(testUUID, false)
	test.tag = "main"
	test.get(false, "/device", 200)
	canary := []string{fleet[1].uuid, fleet[4].uuid}
	for _, u := range canary {
		h.mustAdmin(200, "PUT", "/v1/devices/"+u+"/group", gateway.GroupRequest{Group: "canary"}, nil)
	}
	h.mustAdmin(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{Name: "w", Tag: "main", Version: 1001}, nil)

	var ro gateway.RolloutResponse
	h.mustAdmin(200, "POST", "/v1/waves/w/rollout", gateway.RolloutRequest{Groups: []string{"canary"}}, &ro)
	slices.Sort(ro.DeviceUUIDs)
	if !slices.Equal(ro.DeviceUUIDs, canary) {
		t.Fatalf("group step selected %v, want %v", ro.DeviceUUIDs, canary)
	}
	h.mustAdmin(200, "POST", "/v1/waves/w/rollout", gateway.RolloutRequest{UUIDs: []string{fleet[5].uuid}}, &ro)
	if ro.DeviceNum != 1 || ro.DeviceUUIDs[0] != fleet[5].uuid {
		t.Fatalf("UUID step = %+v", ro)
	}
	// A test device is never a production wave's candidate.
	h.mustAdmin(http.StatusBadRequest, "POST", "/v1/waves/w/rollout", gateway.RolloutRequest{UUIDs: []string{testUUID}}, nil)
	// 50% of the three devices left is two; a dry run adds nobody.
	h.mustAdmin(200, "POST", "/v1/waves/w/rollout", gateway.RolloutRequest{Percentage: 50, DryRun: true}, &ro)
	if ro.DeviceNum != 2 || !ro.DryRun {
		t.Fatalf("dry-run step = %+v", ro)
	}
	var waves []rollout.Wave
	h.mustAdmin(200, "GET", "/v1/waves", nil, &waves)
	if len(waves) != 1 || waves[0].Name != "w" || waves[0].Scheduled != 3 {
		t.Fatalf("waves = %+v", waves)
	}
}
