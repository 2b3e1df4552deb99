// Package scenarios describes fleet runs: the YAML scenario format, its
// loader with line-numbered errors, expectations in k6's threshold syntax,
// matrices that vary a scenario's parameters for capacity planning, and the
// built-in scenario library.
package scenarios

// Scenario is one fleet run: who the devices are, what is rolled out to
// them, what goes wrong, and what must hold at the end.
type Scenario struct {
	// Name identifies the scenario in reports ("" = the file name without
	// its extension).
	Name string `yaml:"name" json:"name,omitempty"`
	// Description says what the scenario asks, in a sentence or two.
	Description string `yaml:"description" json:"description,omitempty"`
	// Seed makes a virtual run reproducible: the same seed gives the same
	// report, byte for byte (default 1).
	Seed uint64 `yaml:"seed" json:"seed,omitempty"`
	// Mode is "virtual" (default) or "live".
	Mode string `yaml:"mode" json:"mode,omitempty" jsonschema:"enum=virtual,enum=live"`
	// Duration bounds the run in simulated time, e.g. "6h" (default 24h).
	Duration Duration `yaml:"duration" json:"duration,omitempty"`
	// Fleet is the devices, in cohorts (at least one).
	Fleet []Cohort `yaml:"fleet" json:"fleet" jsonschema:"minItems=1"`
	// Rollout is what is published to the fleet, and when.
	Rollout Rollout `yaml:"rollout" json:"rollout"`
	// Gateway is the embedded gateway's modelled capacity.
	Gateway Gateway `yaml:"gateway" json:"gateway,omitzero"`
	// Faults are injected during the run.
	Faults []Fault `yaml:"faults" json:"faults,omitempty"`
	// Expect maps fleet metrics (Metrics) to thresholds in k6's syntax,
	// all of which must hold at the end of the run, e.g. time_to_update:
	// ["p(95)<2h"].
	Expect map[string][]string `yaml:"expect" json:"expect,omitempty"`
	// Matrix runs the scenario once per combination of values: each key is
	// a field's path as errors write it (fleet[0].count, rollout.image_size,
	// duration), each value the list of values it takes, e.g.
	// fleet[0].poll: [5m, 15m]; at most 256 combinations.
	Matrix Matrix `yaml:"matrix" json:"matrix,omitempty"`
}

// Cohort is a group of identical devices.
type Cohort struct {
	// Name labels the cohort in the report ("" = "cohort-N", N counting
	// from 1); names differ.
	Name string `yaml:"name" json:"name,omitempty"`
	// Count is how many devices the cohort has (at least 1).
	Count int `yaml:"count" json:"count" jsonschema:"minimum=1"`
	// Board is the board profile: one with room for the update agent,
	// k64f, nrf52840 or rt1060.
	Board string `yaml:"board" json:"board"`
	// Bootloader is the bootloader: "mcuboot", the only one so far and
	// the default.
	Bootloader string `yaml:"bootloader" json:"bootloader,omitempty"`
	// Strategy is MCUboot's upgrade strategy ("" = the board's): one the
	// board supports, and with slots that hold the rollout's images.
	Strategy string `yaml:"strategy" json:"strategy,omitempty"`
	// Version is the factory image's build number (default 1000).
	Version uint32 `yaml:"version" json:"version,omitempty"`
	// Tag is the device's tag (default "devel").
	Tag string `yaml:"tag" json:"tag,omitempty"`
	// Production makes the devices production devices, which only waves
	// update.
	Production bool `yaml:"production" json:"production,omitempty"`
	// Group is the device group the gateway puts them in (for waves).
	Group string `yaml:"group" json:"group,omitempty"`
	// Link is the network profile: ethernet, wifi, lte-m, nb-iot (default
	// wifi).
	Link string `yaml:"link" json:"link,omitempty" jsonschema:"enum=ethernet,enum=wifi,enum=lte-m,enum=nb-iot"`
	// Poll is the polling interval the gateway configures (default 15s;
	// the agent clamps it to 5s..1h).
	Poll Duration `yaml:"poll" json:"poll,omitempty"`
	// Start spreads the devices' power-on uniformly over [0, Start).
	Start Duration `yaml:"start" json:"start,omitempty"`
	// Firmware says how versions behave: a behaviour for every version
	// not listed under "default", and per build number.
	Firmware map[string]string `yaml:"firmware" json:"firmware,omitempty"`
}

// Rollout is what the gateway publishes.
type Rollout struct {
	// ImageSize is the payload size of every published image, e.g. "256KiB"
	// (default 64KiB).
	ImageSize Size `yaml:"image_size" json:"image_size,omitempty"`
	// Versions are the build numbers published, strictly increasing: the
	// first At into the run, each next one At after the previous one.
	Versions []uint32 `yaml:"versions" json:"versions" jsonschema:"minItems=1"`
	// At is when the first version is published (default 0) and the gap
	// between versions.
	At Duration `yaml:"at" json:"at,omitempty"`
	// Waves roll the last version out to production devices in steps,
	// from its publication on.
	Waves []Wave `yaml:"waves" json:"waves,omitempty"`
	// Rotations replace the gateway's TUF signing keys during the run,
	// in time order.
	Rotations []Rotation `yaml:"rotations" json:"rotations,omitempty"`
}

// Rotation replaces the gateway's TUF signing keys, as an operator does on
// a schedule or after a key leaked: the gateway signs root version N+1,
// listing the new keys, with the old and the new root keys, and devices
// walk the root chain to it at their next check-in.
type Rotation struct {
	// At is the simulated time of the rotation, no earlier than the one
	// before.
	At Duration `yaml:"at" json:"at"`
	// Roles are the TUF roles given new keys, each once: root, targets,
	// snapshot, timestamp. All of them change in the one new root version.
	Roles []string `yaml:"roles" json:"roles" jsonschema:"minItems=1,uniqueItems=true,enum=root,enum=targets,enum=snapshot,enum=timestamp"`
}

// Wave is one step of a production rollout.
type Wave struct {
	// At is the simulated time of the step, no earlier than the one
	// before.
	At Duration `yaml:"at" json:"at"`
	// Groups limits the step to production devices in these groups (none
	// = every group), as fioctl waves rollout --group does.
	Groups []string `yaml:"groups" json:"groups,omitempty"`
	// Percentage selects this share of the selected devices, 0..100 (0 =
	// all of them).
	Percentage float64 `yaml:"percentage" json:"percentage,omitempty" jsonschema:"minimum=0,maximum=100"`
	// Limit caps the number of devices selected (0 = no cap).
	Limit int `yaml:"limit" json:"limit,omitempty" jsonschema:"minimum=0"`
	// AbortFailureRate aborts the rollout when this share of the wave's
	// devices reports a failed installation: the wave stops and later
	// waves do not start (0 = never).
	AbortFailureRate float64 `yaml:"abort_failure_rate" json:"abort_failure_rate,omitempty" jsonschema:"minimum=0,maximum=1"`
}

// Fault is one kind of trouble injected during the run.
type Fault struct {
	// Kind is power-cut, network-outage, gateway-outage, malicious-repo or
	// clock-skew.
	Kind string `yaml:"kind" json:"kind" jsonschema:"enum=power-cut,enum=network-outage,enum=gateway-outage,enum=malicious-repo,enum=clock-skew"`
	// Attack is what a malicious repository does from At for For (virtual
	// mode): freeze (serves the metadata as it was when the attack began),
	// rollback (serves the oldest metadata the devices were given),
	// mix-and-match (the oldest targets.json beside the current timestamp
	// and snapshot), or arbitrary-image (a firmware file of the attacker's
	// for every download). No device may accept any of them.
	Attack string `yaml:"attack" json:"attack,omitempty" jsonschema:"enum=freeze,enum=rollback,enum=mix-and-match,enum=arbitrary-image"`
	// Phase limits power cuts to the flash writes of one phase (devicemodel's
	// phases): download, swap, confirm, or storage, the agent's own
	// partition ("" = any).
	Phase string `yaml:"phase" json:"phase,omitempty" jsonschema:"enum=download,enum=swap,enum=confirm,enum=storage"`
	// Rate is the share of devices a power cut or a clock skew hits, above
	// 0 and at most 1. A network outage with a rate is a partition: that
	// share of the devices, chosen by the seed, loses the gateway while
	// the rest of the fleet keeps it (without one, the whole network is
	// down). Gateway outages and attacks hit every device and take no
	// rate.
	Rate float64 `yaml:"rate" json:"rate,omitempty" jsonschema:"minimum=0,maximum=1"`
	// At is when an outage or an attack starts; power cuts take no time.
	At Duration `yaml:"at" json:"at,omitempty"`
	// For is how long an outage or an attack lasts.
	For Duration `yaml:"for" json:"for,omitempty"`
	// Skew is how far a clock-skew fault sets the devices' calendar clocks
	// ahead from manufacture: an RTC that drifted, or an SNTP that failed.
	// TUF checks expiry against that clock.
	Skew Duration `yaml:"skew" json:"skew,omitempty"`
	// DriftPPM makes the skewed clocks gain this many parts per million
	// on the world's from manufacture on (an RTC crystal off its
	// frequency, never corrected): 100 gains 8.6 s a day. It adds to Skew.
	DriftPPM float64 `yaml:"drift_ppm" json:"drift_ppm,omitempty" jsonschema:"minimum=0,maximum=10000"`
	// Behind sets the skewed clocks late instead of ahead, and the
	// drifting ones losing time instead of gaining it.
	Behind bool `yaml:"behind" json:"behind,omitempty"`
}
