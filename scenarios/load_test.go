package scenarios_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
)

func TestBuiltinsParse(t *testing.T) {
	entries := scenarios.Builtin()
	want := []string{"bad-canary", "capacity", "malicious-repo", "nb-iot-large", "power-cut-storm", "quick", "root-rotation", "scale", "staged", "thundering-herd"}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("built-ins = %v, want %v (sorted)", names, want)
	}
	if !slices.Contains(names, scenarios.DefaultScenario) {
		t.Errorf("DefaultScenario %q is not built in", scenarios.DefaultScenario)
	}
	for _, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			s, err := scenarios.LoadBuiltin(e.Name)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != e.Name {
				t.Errorf("name: %q, want the file's name %q", s.Name, e.Name)
			}
			if e.Description == "" || e.Description != strings.Join(strings.Fields(s.Description), " ") {
				t.Errorf("Entry.Description %q does not match the scenario's %q", e.Description, s.Description)
			}
			if len(s.Expect) == 0 {
				t.Error("a built-in scenario must say what should hold (expect:)")
			}
			if _, ok := s.Expect["bricked"]; !ok {
				t.Error("every built-in scenario bounds bricked devices")
			}
			if err := s.Validate(); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
		})
	}
}

func TestQuick(t *testing.T) {
	s, err := scenarios.LoadBuiltin("quick")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Fleet[0]
	if len(s.Fleet) != 1 || c.Count != 10000 || c.Board != "rt1060" || c.Link != "wifi" ||
		c.Poll != scenarios.Duration(15*time.Minute) || c.Start != scenarios.Duration(15*time.Minute) {
		t.Errorf("fleet = %+v", s.Fleet)
	}
	r := s.Rollout
	if !slices.Equal(r.Versions, []uint32{1001}) || r.PublishedAt(0) != scenarios.Duration(30*time.Minute) || r.ImageSize != 256*scenarios.KiB {
		t.Errorf("rollout = %+v", r)
	}
	if s.Duration != scenarios.Duration(12*time.Hour) {
		t.Errorf("duration = %v", s.Duration)
	}
	for metric, want := range map[string]string{"updated": "rate>=0.99", "bricked": "count==0", "time_to_update": "p(95)<2h"} {
		if !slices.Equal(s.Expect[metric], []string{want}) {
			t.Errorf("expect.%s = %q, want [%q]", metric, s.Expect[metric], want)
		}
	}
}

func TestDefaults(t *testing.T) {
	s, err := scenarios.Parse("minimal.yaml", []byte(`
fleet:
  - count: 3
    board: k64f
  - count: 2
    board: nrf52840
rollout:
  versions: [7]
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "minimal" || s.Seed != 1 || s.Mode != "virtual" || s.Duration != scenarios.Duration(24*time.Hour) {
		t.Errorf("scenario defaults: name %q seed %d mode %q duration %v", s.Name, s.Seed, s.Mode, s.Duration)
	}
	for i, c := range s.Fleet {
		want := scenarios.Cohort{
			Name: []string{"cohort-1", "cohort-2"}[i], Count: c.Count, Board: c.Board,
			Version: 1000, Tag: "devel", Link: "wifi", Poll: scenarios.Duration(15 * time.Second),
		}
		if !equalCohort(c, want) {
			t.Errorf("fleet[%d] = %+v, want %+v", i, c, want)
		}
	}
	if s.Rollout.ImageSize != 64*scenarios.KiB || s.Rollout.At != 0 {
		t.Errorf("rollout defaults: %+v", s.Rollout)
	}
}

func equalCohort(a, b scenarios.Cohort) bool {
	return a.Name == b.Name && a.Count == b.Count && a.Board == b.Board && a.Bootloader == b.Bootloader &&
		a.Strategy == b.Strategy && a.Version == b.Version && a.Tag == b.Tag && a.Production == b.Production &&
		a.Group == b.Group && a.Link == b.Link && a.Poll == b.Poll && a.Start == b.Start && len(a.Firmware) == len(b.Firmware)
}

// good is a valid scenario that the error cases below break one way each.
// Line numbers in them count from the first line of the literal.
const good = `fleet:
  - count: 10
    board: rt1060
rollout:
  versions: [1001]
`

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field", "fleat: []\n",
			`x.yaml:1: field "fleat" is not a scenario field (did you mean "fleet"?)`},
		{"unknown field, far from any", good + "colour: blue\n",
			`x.yaml:6: field "colour" is not a scenario field`},
		{"unknown cohort field", "fleet:\n  - count: 1\n    board: rt1060\n    cout: 5\n",
			`x.yaml:4: fleet[0]: field "cout" is not a cohort field (did you mean "count"?)`},
		{"duration without unit", "duration: 90\n" + good,
			`x.yaml:1: duration: 90 has no unit: add one, e.g. "90s", "90m" or "90h"`},
		{"bad duration", "duration: 5 minutes\n" + good,
			`x.yaml:1: duration: "5 minutes" is not a duration: want "15s", "90m", "1h30m" or "7d"`},
		{"negative duration", good + "  at: -5m\n",
			`x.yaml:6: rollout.at: "-5m" is negative`},
		{"duration list", "duration: [1h]\n" + good,
			`x.yaml:1: duration: want a duration, e.g. "15s", "90m", "1h30m" or "7d", not a list`},
		{"count 0", "fleet:\n  - count: 0\n    board: rt1060\nrollout:\n  versions: [1001]\n",
			`x.yaml:2: fleet[0].count: must be at least 1`},
		{"count missing", "fleet:\n  - board: rt1060\nrollout:\n  versions: [1001]\n",
			`x.yaml:2: fleet[0].count: must be at least 1`},
		{"count not a number", "fleet:\n  - count: ten\n",
			`x.yaml:2: fleet[0].count: want a whole number, not "ten"`},
		{"unknown board", "fleet:\n  - count: 1\n    board: esp32\nrollout:\n  versions: [1001]\n",
			`x.yaml:3: fleet[0].board: unknown board "esp32" (boards: k64f, nrf52840, rt1060)`},
		{"board without agent", "fleet:\n  - count: 1\n    board: stm32f4\nrollout:\n  versions: [1001]\n",
			`x.yaml:3: fleet[0].board: board "stm32f4" has no room for the update agent (boards that run it: k64f, nrf52840, rt1060)`},
		{"no board", "fleet:\n  - count: 1\nrollout:\n  versions: [1001]\n",
			`x.yaml:2: fleet[0].board: name a board: k64f, nrf52840, rt1060`},
		{"strategy the board lacks", "fleet:\n  - count: 1\n    board: rt1060\n    strategy: swap-movee\n",
			`x.yaml:4: fleet[0].strategy: the rt1060 cannot run strategy "swap-movee" (it runs overwrite, swap-move, swap-offset, swap-scratch)`},
		{"bad link", "fleet:\n  - count: 1\n    board: rt1060\n    link: 5g\nrollout:\n  versions: [1001]\n",
			`x.yaml:4: fleet[0].link: unknown link "5g" (links: ethernet, wifi, lte-m, nb-iot)`},
		{"duplicate cohort names", "fleet:\n  - {count: 1, board: rt1060}\n  - {count: 1, board: rt1060, name: cohort-1}\n",
			`x.yaml:3: fleet[1].name: "cohort-1" already names fleet[0]: cohort names must differ`},
		{"start after the end", "duration: 1h\nfleet:\n  - {count: 1, board: rt1060, start: 2h}\n",
			`x.yaml:3: fleet[0].start: the devices would still be powering on when the run ends (duration 1h)`},
		{"bad behaviour", "fleet:\n  - count: 1\n    board: rt1060\n    firmware:\n      1001: fail\n",
			`x.yaml:5: fleet[0].firmware.1001: unknown behaviour "fail" (behaviours: healthy, crash-at-boot, fails-self-test, hangs, bricks-network)`},
		{"bad firmware key", "fleet:\n  - count: 1\n    board: rt1060\n    firmware:\n      default: healthy\n      v2: hangs\n",
			`x.yaml:6: fleet[0].firmware.v2: "v2" is neither "default" nor a build number`},
		{"no versions", "fleet:\n  - {count: 1, board: rt1060}\nrollout:\n  at: 1h\n",
			`x.yaml:3: rollout.versions: list at least one version to publish, e.g. [1001]`},
		{"no rollout", "fleet:\n  - {count: 1, board: rt1060}\n",
			`x.yaml:1: rollout.versions: list at least one version to publish, e.g. [1001]`},
		{"no fleet", "rollout:\n  versions: [1]\n",
			`x.yaml:1: fleet: list at least one cohort of devices`},
		{"versions not increasing", "fleet:\n  - {count: 1, board: rt1060}\nrollout:\n  versions:\n    - 1002\n    - 1001\n",
			`x.yaml:6: rollout.versions[1]: 1001 must be greater than the version before it (1002)`},
		{"version 0", "fleet:\n  - {count: 1, board: rt1060}\nrollout:\n  versions: [0]\n",
			`x.yaml:4: rollout.versions[0]: must be more than 0`},
		{"version given twice", good + "  versions: [2]\n",
			`x.yaml:6: rollout.versions: given twice (first on line 5)`},
		{"image too large for the board", "fleet:\n  - {count: 1, board: k64f}\nrollout:\n  versions: [1001]\n  image_size: 200KiB\n",
			`x.yaml:5: rollout.image_size: 200KiB does not fit fleet[0]'s k64f with swap-scratch: its slots leave room for 123KiB of payload after the header, TLVs and trailer`},
		{"negative gateway cores", "fleet:\n  - {count: 1, board: rt1060}\nrollout: {versions: [1001]}\ngateway:\n  cores: -1\n",
			`x.yaml:5: gateway.cores: must not be negative`},
		{"bad gateway egress", "fleet:\n  - {count: 1, board: rt1060}\nrollout: {versions: [1001]}\ngateway:\n  egress_mbps: -5\n",
			`x.yaml:5: gateway.egress_mbps: must be a finite number of megabits per second, at least 0`},
		{"image too large for the agent", "fleet:\n  - {count: 1, board: rt1060}\nrollout:\n  versions: [1001]\n  image_size: 1MiB\n",
			`x.yaml:5: rollout.image_size: 1MiB is more than the update agent takes: aktualizr-nano refuses firmware of 1024KiB or more, which leaves 1022KiB of payload after the header and TLVs`},
		{"bad size", good + "  image_size: 1.5MiB\n",
			`x.yaml:6: rollout.image_size: "1.5MiB" is not a size: want a whole number of bytes with an optional unit (B, KiB, MiB, KB, MB), e.g. "512B", "64KiB" or "1MiB"`},
		{"zero size", good + "  image_size: 0\n",
			`x.yaml:6: rollout.image_size: 0: must be more than 0 bytes`},
		{"published after the end", "duration: 2h\n" + good + "  at: 3h\n",
			`x.yaml:7: rollout.at: the last version would be published at 3h, when the run is over (duration 2h)`},
		{"waves without production cohort", good + "  waves:\n    - at: 1h\n",
			`x.yaml:6: rollout.waves: waves update production devices only, and no cohort has production: true`},
		{"wave group unknown", "fleet:\n  - {count: 1, board: rt1060, production: true, group: canary}\nrollout:\n  versions: [1001]\n  waves:\n    - at: 1h\n      groups: [canray]\n",
			`x.yaml:7: rollout.waves[0].groups[0]: no production cohort is in group "canray" (groups: canary)`},
		{"wave before publication", "fleet:\n  - {count: 1, board: rt1060, production: true}\nrollout:\n  versions: [1001]\n  at: 2h\n  waves:\n    - at: 1h\n",
			`x.yaml:7: rollout.waves[0].at: 1h is before the last version is published (2h)`},
		{"waves out of order", "fleet:\n  - {count: 1, board: rt1060, production: true}\nrollout:\n  versions: [1001]\n  waves:\n    - at: 2h\n    - at: 1h\n",
			`x.yaml:7: rollout.waves[1].at: 1h is before the wave before it (2h)`},
		{"percentage above 100", "fleet:\n  - {count: 1, board: rt1060, production: true}\nrollout:\n  versions: [1001]\n  waves:\n    - {at: 1h, percentage: 150}\n",
			`x.yaml:6: rollout.waves[0].percentage: must be between 0 and 100`},
		{"abort rate above 1", "fleet:\n  - {count: 1, board: rt1060, production: true}\nrollout:\n  versions: [1001]\n  waves:\n    - at: 1h\n      abort_failure_rate: 10\n",
			`x.yaml:7: rollout.waves[0].abort_failure_rate: must be between 0 and 1 (a share of the wave's devices)`},
		{"rotation of an unknown role", good + "  rotations:\n    - at: 1h\n      roles: [root, mirror]\n",
			`x.yaml:8: rollout.rotations[0].roles[1]: unknown role "mirror" (roles: root, targets, snapshot, timestamp)`},
		{"rotation of a role twice", good + "  rotations:\n    - {at: 1h, roles: [timestamp, timestamp]}\n",
			`x.yaml:7: rollout.rotations[0].roles[1]: timestamp is listed twice`},
		{"rotation without roles", good + "  rotations:\n    - at: 1h\n",
			`x.yaml:7: rollout.rotations[0].roles: list the roles given new keys: root, targets, snapshot, timestamp`},
		{"rotations out of order", good + "  rotations:\n    - {at: 2h, roles: [root]}\n    - {at: 1h, roles: [root]}\n",
			`x.yaml:8: rollout.rotations[1].at: 1h is before the rotation before it (2h)`},
		{"rotation after the end", "duration: 2h\n" + good + "  rotations:\n    - {at: 2h, roles: [root]}\n",
			`x.yaml:8: rollout.rotations[0].at: 2h is when the run is over (duration 2h)`},
		{"root_rotated without a rotation", good + "expect:\n  root_rotated: [\"rate>=0.99\"]\n",
			`x.yaml:7: expect.root_rotated: the scenario rotates no keys: add rollout.rotations, e.g. [{at: 1h, roles: [root, timestamp]}]`},
		{"unknown fault", good + "faults:\n  - kind: meteor\n",
			`x.yaml:7: faults[0].kind: unknown fault kind "meteor" (kinds: power-cut, network-outage, gateway-outage, malicious-repo, clock-skew)`},
		{"bad phase", good + "faults:\n  - kind: power-cut\n    phase: reboot\n    rate: 0.1\n",
			`x.yaml:8: faults[0].phase: unknown phase "reboot" (phases: download, swap, confirm, storage)`},
		{"rate above 1", good + "faults:\n  - kind: power-cut\n    rate: 20\n",
			`x.yaml:8: faults[0].rate: must be between 0 and 1 (a share of the devices)`},
		{"rate not finite", good + "faults:\n  - kind: power-cut\n    rate: .nan\n",
			`x.yaml:8: faults[0].rate: want a finite number, not ".nan"`},
		{"power cut without rate", good + "faults:\n  - kind: power-cut\n    phase: swap\n",
			`x.yaml:7: faults[0].rate: a power cut needs a rate above 0: the share of devices it hits`},
		{"outage without length", good + "faults:\n  - kind: gateway-outage\n    at: 1h\n",
			`x.yaml:7: faults[0].for: gateway-outage needs a length, e.g. for: 30m`},
		{"clock skew without a size", good + "faults:\n  - {kind: clock-skew, rate: 0.1}\n",
			`x.yaml:7: faults[0].skew: a clock skew needs a size, e.g. skew: 36h, or a drift, e.g. drift_ppm: 100 (behind: true for a clock that is late)`},
		{"skew on a power cut", good + "faults:\n  - {kind: power-cut, rate: 0.1, skew: 1h}\n",
			`x.yaml:7: faults[0].skew: only a clock-skew fault has a skew or a drift`},
		{"drift past a crystal", good + "faults:\n  - {kind: clock-skew, rate: 0.1, drift_ppm: 20000}\n",
			`x.yaml:7: faults[0].drift_ppm: must be between 0 and 10000 (behind: true for a clock that loses time)`},
		{"rate on a gateway outage", good + "faults:\n  - {kind: gateway-outage, for: 1h, rate: 0.5}\n",
			`x.yaml:7: faults[0].rate: gateway-outage hits every device; rate is for power cuts, partitions and clock skews`},
		{"attack without a name", good + "faults:\n  - {kind: malicious-repo, for: 1h}\n",
			`x.yaml:7: faults[0].attack: a malicious repository needs an attack: freeze, rollback, mix-and-match, arbitrary-image`},
		{"attack on an outage", good + "faults:\n  - {kind: network-outage, for: 1h, attack: freeze}\n",
			`x.yaml:7: faults[0].attack: only a malicious-repo fault has an attack`},
		{"outage with phase", good + "faults:\n  - {kind: network-outage, for: 1h, phase: swap}\n",
			`x.yaml:7: faults[0].phase: only power cuts have a phase`},
		{"unknown metric", good + "expect:\n  updatd: [\"rate>0\"]\n",
			`x.yaml:7: expect.updatd: unknown metric "updatd" (did you mean "updated"?)`},
		{"bad threshold", good + "expect:\n  bricked: [\"count==0\"]\n  updated:\n    - \"rate>=\"\n",
			`x.yaml:9: expect.updated[0]: threshold "rate>=": missing value after ">="`},
		{"threshold the metric lacks", good + "expect:\n  updated: [\"p(95)<2h\"]\n",
			`x.yaml:7: expect.updated[0]: threshold "p(95)<2h": p does not apply to a rate metric (it has rate)`},
		{"no thresholds", good + "expect:\n  updated: []\n",
			`x.yaml:7: expect.updated: list at least one threshold, e.g. ["rate>=0.99"]`},
		{"the first bad metric in the file", good + "expect:\n  zz: [\"count==0\"]\n  aa: [\"count==0\"]\n",
			`x.yaml:7: expect.zz: unknown metric "zz" (metrics: time_to_update, update_duration, updated, reverted, failed, still_old, bricked, compromised, attacks_refused, root_rotated, requests, bytes_sent, bytes_received, check_ins, peak_concurrency, gateway_utilization, max_queue_wait)`},
		{"unknown mode", "mode: dream\n" + good,
			`x.yaml:1: mode: unknown mode "dream" (modes: virtual, live)`},
		{"negative seed", "seed: -1\n",
			`x.yaml:1: seed: want a whole number from 0 to 18446744073709551615, not "-1"`},
		{"duplicate key", "fleet: [{count: 4, board: rt1060, count: 5}]\n",
			`x.yaml:1: fleet[0].count: given twice (first on line 1)`},
		{"list for a struct", "rollout: [1, 2]\n",
			`x.yaml:1: rollout: want a mapping of rollout fields, not a list`},
		{"yaml syntax", "fleet:\n  - count: 1\n    board: rt1060: x\n",
			`x.yaml:3: yaml: mapping values are not allowed in this context`},
		{"yaml unclosed list", "fleet:\n  - count: 1\nrollout:\n  versions: [1,\n  at: 1h\n",
			`x.yaml:4: yaml: did not find expected ',' or ']'`},
		{"yaml unknown anchor", good + "seed: *s\n",
			`x.yaml:6: yaml: unknown anchor 's' referenced`},
		{"not UTF-8", good + "name: \xff\n",
			`x.yaml:6: the file is not UTF-8 text`},
		{"CR LF line ends", "fleet:\r\n  - count: 0\r\n    board: rt1060\r\nrollout:\r\n  versions: [1001]\r\n",
			`x.yaml:2: fleet[0].count: must be at least 1`},
		{"CR line ends", "fleet:\r  - count: 0\r    board: rt1060\rrollout:\r  versions: [1001]\r",
			`x.yaml:2: fleet[0].count: must be at least 1`},
		{"not UTF-8 after CR LF", "name: x\r\nseed: \xff\r\n",
			`x.yaml:2: the file is not UTF-8 text`},
		{"empty file", "", `x.yaml:1: the file is empty: a scenario needs at least fleet and rollout`},
		{"only comments", "# nothing\n", `x.yaml:1: the file is empty: a scenario needs at least fleet and rollout`},
		{"a list", "- count: 1\n- count: 2\n",
			`x.yaml:1: a scenario is a mapping of fields (fleet:, rollout:, ...), not a list`},
		{"a single value", "quick\n",
			`x.yaml:1: a scenario is a mapping of fields (fleet:, rollout:, ...), not a single value`},
		{"two documents", good + "---\n" + good,
			`x.yaml:6: a second YAML document: a scenario file holds one`},
		{"merge of a scalar", "fleet:\n  - <<: 3\n",
			`x.yaml:2: fleet[0]: a merge key (<<) takes a mapping or a list of mappings`},
		{"merging itself", "fleet:\n  - &a {<<: *a}\n",
			`x.yaml:2: fleet[0]: merge keys (<<) nested too deep (a mapping that merges itself?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scenarios.Parse("x.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error; parsed %+v", s)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
			var e *scenarios.Error
			if !errors.As(err, &e) || e.File != "x.yaml" || e.Line < 1 {
				t.Errorf("error %#v is not an *Error with the file and a line", err)
			}
		})
	}
}

func TestParseMergeKeys(t *testing.T) {
	s, err := scenarios.Parse("x.yaml", []byte(`
fleet:
  - &base
    count: 3
    board: rt1060
    poll: 1m
  - <<: *base
    name: more
    count: 4
rollout:
  versions: [1001]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c := s.Fleet[1]; c.Name != "more" || c.Count != 4 || c.Board != "rt1060" || c.Poll != scenarios.Duration(time.Minute) {
		t.Errorf("merged cohort = %+v", c)
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	s := &scenarios.Scenario{
		Fleet:   []scenarios.Cohort{{Count: 1, Board: "rt1060"}},
		Rollout: scenarios.Rollout{Versions: []uint32{2}},
	}
	s.Defaults()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	s.Fleet[0].Link = "carrier-pigeon"
	err := s.Validate()
	if want := `fleet[0].link: unknown link "carrier-pigeon" (links: ethernet, wifi, lte-m, nb-iot)`; err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %s", err, want)
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(file, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := scenarios.Resolve(file); err != nil || s.Name != "mine" {
		t.Errorf("Resolve(file) = %+v, %v", s, err)
	}
	if s, err := scenarios.Resolve("staged"); err != nil || s.Name != "staged" {
		t.Errorf("Resolve(staged) = %v, %v", s, err)
	}

	_, err := scenarios.Resolve("stagd")
	if !errors.Is(err, scenarios.ErrUnknownScenario) {
		t.Fatalf("Resolve(stagd) = %v, want ErrUnknownScenario", err)
	}
	want := `unknown scenario "stagd": no such file, nor a built-in scenario (built-ins: bad-canary, capacity, malicious-repo, nb-iot-large, power-cut-storm, quick, root-rotation, scale, staged, thundering-herd)`
	if err.Error() != want {
		t.Errorf("Resolve(stagd):\n got %v\nwant %s", err, want)
	}

	// Something that looks like a path says why the file cannot be read.
	if _, err := scenarios.Resolve(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Resolve(missing file) = %v, want a not-exist error", err)
	}

	// A bad file's errors name it as given.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("fleet:\n  - count: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := scenarios.Resolve(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":2: fleet[0].count: ") {
		t.Errorf("Resolve(bad) = %v", err)
	}
}

func TestLoadBuiltinUnknown(t *testing.T) {
	_, err := scenarios.LoadBuiltin("nope")
	if !errors.Is(err, scenarios.ErrUnknownScenario) || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "quick") {
		t.Errorf("LoadBuiltin(nope) = %v", err)
	}
}

func TestMetrics(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range scenarios.Metrics {
		if seen[m.Name] {
			t.Errorf("metric %q listed twice", m.Name)
		}
		seen[m.Name] = true
		if m.Doc == "" || strings.Contains(m.Doc, "\n") {
			t.Errorf("metric %q needs a one-line doc", m.Name)
		}
		if got, ok := scenarios.LookupMetric(m.Name); !ok || got != m {
			t.Errorf("LookupMetric(%q) = %v, %v", m.Name, got, ok)
		}
	}
	if _, ok := scenarios.LookupMetric("nope"); ok {
		t.Error("LookupMetric(nope) found something")
	}
}

// TestMergeBombBounded: merge keys fanning out 60 ways, seven deep, would
// expand to 60⁷ entries; the decoder stops counting at a bound instead.
func TestMergeBombBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("fleet:\n  - &m0 {count: 1, board: rt1060}\n")
	for i := 1; i < 8; i++ {
		fmt.Fprintf(&b, "  - &m%d {<<: [%s*m%d]}\n", i, strings.Repeat(fmt.Sprintf("*m%d, ", i-1), 59), i-1)
	}
	_, err := scenarios.Parse("x.yaml", []byte(b.String()))
	if want := "the file expands to too many values (aliases within aliases?)"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Parse = %v, want ...%s", err, want)
	}
}
