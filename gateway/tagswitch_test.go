package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
)

// repoVersions fetches a device's timestamp, snapshot and targets and
// returns their versions, as its TUF client would see them.
func (d *device) repoVersions() [3]int64 {
	var v [3]int64
	for i, name := range []string{"timestamp.json", "snapshot.json", "targets.json"} {
		v[i] = metaVersion(d.h.t, d.get(false, "/repo/"+name, 200))
	}
	return v
}

func above(a, b [3]int64) bool { return a[0] > b[0] && a[1] > b[1] && a[2] > b[2] }

// TestTagSwitchNeverRollsBack: a device whose tag is changed fetches the new
// tag's view, which counts its versions apart; the gateway raises that view
// above every other first, so the device's TUF client sees no rollback, also
// after a restart of the gateway and for a production device in a wave.
func TestTagSwitchNeverRollsBack(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	dir, hc := t.TempDir(), newCA(t)
	h := newHarness(t, dir, hc, clock)
	for i := range 3 {
		h.upload(gatewaytest.SignedImage(t, h.imageKey, uint32(1000+i), 2000), "board", "devel")
	}
	h.mustAdmin(http.StatusCreated, "POST", "/v1/tags", gateway.TagRequest{Tag: "main"}, nil)
	d := h.newDevice(testUUID, false)
	onDevel := d.repoVersions()
	d.tag = "main"
	onMain := d.repoVersions()
	if !above(onMain, onDevel) {
		t.Fatalf("switching devel %v -> main %v goes down", onDevel, onMain)
	}
	// More targets on devel, then back, across a restart.
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1003, 2000), "board", "devel")
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1004, 2000), "board", "devel")
	h.shutdown()
	h = newHarness(t, dir, hc, clock)
	d = h.deviceWith(testUUID, d.cert)
	d.tag = "main"
	if v := d.repoVersions(); v != onMain {
		t.Fatalf("the view a device stays on changed: %v -> %v", onMain, v)
	}
	d.tag = "devel"
	if v := d.repoVersions(); !above(v, onMain) {
		t.Fatalf("switching back main %v -> devel %v goes down", onMain, v)
	}

	// A production device in a wave of main moves to an empty tag.
	h.mustAdmin(http.StatusCreated, "POST", "/v1/tags", gateway.TagRequest{Tag: "beta"}, nil)
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1005, 2000), "board", "main")
	fleet := prodFleet(h, 1, "main")
	h.mustAdmin(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{Name: "w", Tag: "main", Version: 1005}, nil)
	h.mustAdmin(200, "POST", "/v1/waves/w/rollout", gateway.RolloutRequest{Limit: 1}, nil)
	if err := h.g.Tick(clock.Now()); err != nil {
		t.Fatal(err)
	}
	p := fleet[0]
	inWave := p.repoVersions()
	if !strings.Contains(string(p.get(false, "/repo/targets.json", 200)), "board-v1005") {
		t.Fatal("the device is not served its wave")
	}
	p.tag = "beta"
	if v := p.repoVersions(); !above(v, inWave) {
		t.Fatalf("switching from a wave %v to beta %v goes down", inWave, v)
	}
}

// TestUploadWarnsOfOversizedTargets: the upload that makes a tag's
// targets.json larger than aktualizr-nano's 16 KiB buffer says so.
func TestUploadWarnsOfOversizedTargets(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	h := newHarness(t, t.TempDir(), newCA(t), clock)
	hwid := strings.Repeat("B", 60)
	for i := range 100 {
		ti := h.upload(gatewaytest.SignedImage(t, h.imageKey, uint32(2000+i), 600), hwid, "devel")
		if len(ti.Warnings) > 0 {
			if !strings.Contains(ti.Warnings[0], "targets.json") {
				t.Fatalf("warning %q does not name the file", ti.Warnings[0])
			}
			t.Logf("warned at the %d-th target: %s", i+1, ti.Warnings[0])
			return
		}
	}
	t.Fatal("no warning after 100 targets of tag devel")
}
