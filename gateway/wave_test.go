package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
)

// metaVersion reads signed.version of a metadata file.
func metaVersion(t *testing.T, data []byte) int64 {
	t.Helper()
	var md struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	return md.Signed.Version
}

// prodFleet registers n production devices following tag.
func prodFleet(h *harness, n int, tag string) []*device {
	var fleet []*device
	for i := range n {
		d := h.newDevice(fmt.Sprintf("0A1B2C3D-0000-4000-8000-%012d", 100+i), true)
		d.tag = tag
		d.get(false, "/device", 200)
		fleet = append(fleet, d)
	}
	return fleet
}

// update sends an aktualizr-nano update's events; the last is
// EcuInstallationCompleted for the new version (confirmed) or, after a
// rollback, for the old one with success false.
func (d *device) update(corr string, version uint32, confirmed bool) {
	d.event(corr+"-1", "EcuDownloadStarted", corr, version, true)
	d.event(corr+"-2", "EcuDownloadCompleted", corr, version, true)
	d.event(corr+"-3", "EcuInstallationStarted", corr, version, true)
	d.event(corr+"-4", "EcuInstallationApplied", corr, version, true)
	if confirmed {
		d.event(corr+"-5", "EcuInstallationCompleted", corr, version, true)
	} else {
		d.event(corr+"-5", "EcuInstallationCompleted", corr, version-1, false)
	}
}

// TestWaveAbortsOnFailureRate rolls a version out to ten production devices
// with an abort criterion; when over 20% of at least five finished devices
// revert, the wave aborts and the devices that had not started are served
// the production targets again, with higher metadata versions than the
// wave's.
func TestWaveAbortsOnFailureRate(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	h := newHarness(t, t.TempDir(), newCA(t), clock)
	h.mustAdmin(http.StatusCreated, "POST", "/v1/tags", gateway.TagRequest{Tag: "main"}, nil)
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1001, 20000), "board", "main")
	fleet := prodFleet(h, 10, "main")
	before := fleet[9].get(false, "/repo/targets.json", 200)
	if bytes.Contains(before, []byte("board-v1001")) {
		t.Fatal("production devices see a CI target before any wave")
	}

	h.mustAdmin(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{
		Name: "w1", Tag: "main", Version: 1001,
		Policy: gateway.PolicyRequest{Abort: []gateway.AbortRequest{{FailureType: "failed", ThresholdPercent: 20, MinExecuted: 5}}},
	}, nil)
	var ro gateway.RolloutResponse
	h.mustAdmin(200, "POST", "/v1/waves/w1/rollout", gateway.RolloutRequest{Limit: 10}, &ro)
	if ro.DeviceNum != 10 {
		t.Fatalf("rollout = %+v", ro)
	}
	clock.Advance(time.Second)
	if err := h.g.Tick(clock.Now()); err != nil {
		t.Fatal(err)
	}
	var waveTS int64
	for _, d := range fleet {
		if !bytes.Contains(d.get(false, "/repo/targets.json", 200), []byte("board-v1001")) {
			t.Fatalf("device %s in the wave is not served the wave's target", d.uuid)
		}
		waveTS = metaVersion(t, d.get(false, "/repo/timestamp.json", 200))
	}
	for i, d := range fleet[:5] {
		d.update(fmt.Sprintf("C%d", i), 1001, i < 2)
	}
	var rep rollout.WaveReport
	h.mustAdmin(200, "GET", "/v1/waves/w1", nil, &rep)
	if rep.Wave.Status != rollout.WaveAborted || rep.Counts[rollout.Confirmed] != 2 || rep.Counts[rollout.Reverted] != 3 || rep.Counts[rollout.Pending] != 5 {
		t.Fatalf("wave after 3 of 5 reverted: %+v", rep)
	}
	for _, d := range fleet[5:] {
		if bytes.Contains(d.get(false, "/repo/targets.json", 200), []byte("board-v1001")) {
			t.Fatalf("device %s still served the aborted wave", d.uuid)
		}
		if v := metaVersion(t, d.get(false, "/repo/timestamp.json", 200)); v <= waveTS {
			t.Fatalf("timestamp version %d after the abort, not above the wave's %d", v, waveTS)
		}
	}
	var st gateway.StatusResponse
	h.mustAdmin(200, "GET", "/v1/status", nil, &st)
	if st.Devices != 10 || len(st.Versions) != 1 || st.Versions[0].Version != 1001 || st.Versions[0].Counts[rollout.Reverted] != 3 {
		t.Fatalf("status = %+v", st)
	}
	// One active wave per tag, and an aborted wave cannot be completed.
	h.mustAdmin(http.StatusConflict, "POST", "/v1/waves/w1/complete", nil, nil)
}

// TestWaveRateLimitAndComplete: scheduled devices see the wave only when
// the rate limit releases them; completing makes the version every
// production device's target.
func TestWaveRateLimitAndComplete(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	h := newHarness(t, t.TempDir(), newCA(t), clock)
	h.mustAdmin(http.StatusCreated, "POST", "/v1/tags", gateway.TagRequest{Tag: "main"}, nil)
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1001, 20000), "board", "main")
	fleet := prodFleet(h, 4, "main")
	h.mustAdmin(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{Name: "w2", Tag: "main", Version: 1001, Policy: gateway.PolicyRequest{MaxPerMinute: 1}}, nil)
	h.mustAdmin(http.StatusConflict, "POST", "/v1/waves", gateway.WaveRequest{Name: "w3", Tag: "main", Version: 1001}, nil)
	h.mustAdmin(200, "POST", "/v1/waves/w2/rollout", gateway.RolloutRequest{Limit: 3}, nil)
	seeing := func() int {
		n := 0
		for _, d := range fleet {
			if bytes.Contains(d.get(false, "/repo/targets.json", 200), []byte("board-v1001")) {
				n++
			}
		}
		return n
	}
	if n := seeing(); n != 0 {
		t.Fatalf("%d devices see the wave before any release", n)
	}
	for range 5 * 60 {
		clock.Advance(time.Second)
		if err := h.g.Tick(clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if n := seeing(); n != 3 {
		t.Fatalf("%d devices see the wave after 5 minutes at 1/min, want the 3 rolled out", n)
	}
	h.mustAdmin(200, "POST", "/v1/waves/w2/complete", nil, nil)
	if n := seeing(); n != 4 {
		t.Fatalf("%d devices see the version after complete, want all 4", n)
	}
	var prod []gateway.TargetInfo
	h.mustAdmin(200, "GET", "/v1/targets?repo=prod", nil, &prod)
	if len(prod) != 1 || prod[0].Name != "board-v1001" || prod[0].Tags[0] != "main" {
		t.Fatalf("production targets = %+v", prod)
	}
}

// TestAdminBadInput: malformed admin requests get a 4xx with a reason.
func TestAdminBadInput(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	h := newHarness(t, t.TempDir(), newCA(t), clock)
	for _, c := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"POST", "/v1/firmware?hwid=board&tags=devel", []byte("not an image"), 400},
		{"POST", "/v1/firmware?hwid=board&tags=devel", gatewaytest.SignedImage(t, newCA(t).imageKey, 5, 1000)[:500], 400},
		{"POST", "/v1/firmware?tags=devel", gatewaytest.SignedImage(t, h.imageKey, 5, 1000), 400},
		{"POST", "/v1/firmware?hwid=board&tags=devel&version=6", gatewaytest.SignedImage(t, h.imageKey, 5, 1000), 400},
		{"POST", "/v1/waves", `{"name":"w","tag":"main","version":5,"extra":1}`, 400},
		{"POST", "/v1/waves", `{"name":"w","tag":"main","version":5}`, 400},
		{"POST", "/v1/waves", `{"name":"w@x","tag":"main","version":5}`, 400},
		{"POST", "/v1/waves/none/rollout", `{"limit":1}`, 404},
		{"POST", "/v1/waves/none/rollout", `{"limit":1,"percentage":5}`, 400},
		{"POST", "/v1/waves/none/complete", nil, 404},
		{"GET", "/v1/waves/none", nil, 404},
		{"PUT", "/v1/config", `{"files":[{"name":"a"},{"name":"a"}]}`, 400},
		{"PUT", "/v1/config/devices/not-a-uuid", `{"files":[]}`, 400},
		{"GET", "/v1/devices?limit=0", nil, 400},
		{"GET", "/v1/targets?repo=x", nil, 400},
		{"POST", "/v1/tags", `{"tag":""}`, 400},
		{"GET", "/v1/nothing", nil, 404},
	} {
		status, data := h.admin(c.method, c.path, c.body)
		if status != c.want || len(data) == 0 || len(data) > 300 {
			t.Errorf("%s %s = %d %q, want %d with a short reason", c.method, c.path, status, data, c.want)
		}
	}
	// A duplicate target is a conflict.
	img := gatewaytest.SignedImage(t, h.imageKey, 7, 1000)
	h.upload(img, "board", "devel")
	h.mustAdmin(http.StatusConflict, "POST", "/v1/firmware?hwid=board&tags=devel", img, nil)
}
