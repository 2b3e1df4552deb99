package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/gateway"
)

// externalScenario is a small fleet for a live run against a gateway of
// its own: test devices that take a CI target, and production devices in
// a group that take it through a wave, so the run uses the gateway's
// admin API for uploads, groups and waves. At --time-scale 60 its
// scenario minutes are wall seconds.
const externalScenario = `name: external
duration: 1h
fleet:
  - {name: test, count: 2, board: rt1060, link: ethernet, poll: 1m, start: 30s}
  - {name: prod, count: 2, board: rt1060, link: ethernet, poll: 1m, start: 30s, production: true, group: canary}
rollout:
  versions: [1001]
  at: 2m
  image_size: 16KiB
  waves:
    - {at: 3m, groups: [canary]}
expect:
  updated: ["rate==1"]
  bricked: ["count==0"]
`

// TestRunAgainstExternalGateway runs a live fleet against a gateway served
// in this process on loopback as an external one (fleetsim gateway serve's
// code, its own PKI directory and image key), then asks the gateway itself
// how its devices ended.
func TestRunAgainstExternalGateway(t *testing.T) {
	fx := startGateway(t)
	scenario := writeScenario(t, externalScenario)
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"run", scenario, "--mode", "live", "--time-scale", "60", "--quiet", "--out", out,
		"--gateway", fx.device, "--gateway-admin", fx.admin, "--pki", fx.pki, "--image-key", fx.key}
	code, stdout, stderr := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "updated 4 ") || !strings.Contains(stdout, "live mode") {
		t.Errorf("summary:\n%s", stdout)
	}
	var rep struct {
		Mode     string `json:"mode"`
		Outcomes struct {
			Updated int `json:"updated"`
		} `json:"outcomes"`
		Waves []struct {
			Name     string `json:"name"`
			Released int    `json:"released"`
		} `json:"waves"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(out, "report.json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "live" || rep.Outcomes.Updated != 4 || len(rep.Waves) != 1 || rep.Waves[0].Released != 2 {
		t.Errorf("report: %+v; want 4 updated live, one wave that released 2 devices", rep)
	}

	// The gateway saw the same: the run's devices confirmed v1001, the
	// production ones through the wave.
	var st gateway.StatusResponse
	if err := json.Unmarshal([]byte(mustCLI(t, fx.gw("status", "--json")...)), &st); err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for _, v := range st.Versions {
		if v.Version == 1001 {
			confirmed = v.Counts["confirmed"]
		}
	}
	if confirmed != 4 || len(st.Waves) != 1 || st.Waves[0].Counts["confirmed"] != 2 {
		t.Errorf("gateway status: %d devices confirmed v1001, waves %+v; want 4, and 2 in the wave", confirmed, st.Waves)
	}

	// The versions are the gateway's now: a second run of them is refused
	// before any device is made.
	wantRefusal(t, 1, "the gateway already has target MIMXRT1060-EVK-v1001", args...)
}

func TestRunAgainstExternalGatewayRefusals(t *testing.T) {
	fx := startGateway(t)
	good := writeScenario(t, tinyScenario)
	ext := []string{"--gateway", fx.device, "--gateway-admin", fx.admin, "--pki", fx.pki}
	outage := writeScenario(t, tinyScenario+"faults:\n  - {kind: gateway-outage, at: 10m, for: 5m}\n")
	other := filepath.Join(t.TempDir(), "other")
	mustCLI(t, "pki", "init", "--dir", other, "--factory", "other")
	for _, c := range []struct {
		code int
		args []string
		want string
	}{
		{2, append([]string{"run", good}, ext...), "--gateway runs the fleet on the wall clock: add --mode live"},
		{2, []string{"run", good, "--mode", "live", "--gateway", fx.device}, "--gateway needs --gateway-admin URL"},
		{2, []string{"run", good, "--pki", fx.pki}, "go with --gateway URL"},
		{2, []string{"run", good, "--mode", "live", "--gateway", "http://" + strings.TrimPrefix(fx.device, "https://"), "--gateway-admin", fx.admin, "--pki", fx.pki}, "want https://host:port"},
		{2, append([]string{"run", good, "--mode", "live", "--data", t.TempDir()}, ext...), "--gateway keeps its own"},
		{2, append([]string{"run", good, "--mode", "live", "--image-key", good}, ext...), "--image-key " + good},
		{2, append([]string{"run", outage, "--mode", "live"}, ext...), "faults[0]: a live run injects power cuts and clock skews only; gateway-outage runs in virtual mode"},
		{2, append([]string{"run", "capacity", "--mode", "live"}, ext...), "--gateway runs one fleet"},
		{2, []string{"run", good, "--mode", "live", "--gateway", fx.device, "--gateway-admin", fx.admin, "--pki", filepath.Join(fx.pki, "nope")}, "ca.crt: no such file"},
		// Another factory's devices: the run cannot verify the gateway, nor
		// would the gateway take them.
		{1, []string{"run", good, "--mode", "live", "--gateway", fx.device, "--gateway-admin", fx.admin, "--pki", other}, "certificate signed by unknown authority"},
		{1, []string{"run", good, "--mode", "live", "--gateway", fx.device, "--gateway-admin", fx.admin, "--pki", other, "--gateway-ca", filepath.Join(fx.pki, "ca.crt")}, "refuses a device certificate of factory other"},
		// Without the gateway's image key, the run's own is refused.
		{1, append([]string{"run", good, "--mode", "live"}, ext...), "the gateway does not take images signed with the run's key"},
	} {
		wantRefusal(t, c.code, c.want, append(c.args, "--out", filepath.Join(t.TempDir(), "out"))...)
	}
}
