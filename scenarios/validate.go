package scenarios

import (
	"errors"
	"fmt"
	"github.com/fleetsim/fleetsim/agent"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/scenarios/threshold"
)

// Defaults for fields a scenario leaves out (or sets to zero).
const (
	DefaultSeed      = 1
	DefaultMode      = "virtual"
	DefaultDuration  = Duration(24 * time.Hour)
	DefaultVersion   = 1000
	DefaultTag       = "devel"
	DefaultLink      = "wifi"
	DefaultPoll      = Duration(15 * time.Second)
	DefaultImageSize = 64 * KiB
)

// Modes, Links, FaultKinds and Phases are the values those fields take.
var (
	Modes      = []string{"virtual", "live"}
	Links      = []string{"ethernet", "wifi", "lte-m", "nb-iot"}
	FaultKinds = []string{"power-cut", "network-outage", "gateway-outage", "malicious-repo", "clock-skew"}
	// Attacks are what a malicious-repo fault does.
	Attacks = []string{"freeze", "rollback", "mix-and-match", "arbitrary-image"}
	// RotationRoles are the TUF roles a rotation can give new keys.
	RotationRoles = []string{"root", "targets", "snapshot", "timestamp"}
	// Phases are devicemodel's power-cut phases that a scenario can name
	// ("" is any phase).
	Phases = []string{"download", "swap", "confirm", "storage"}
	// Bootloaders are the bootloader variants ("" is MCUboot as the board
	// builds it).
	Bootloaders = []string{"mcuboot"}
)

// Defaults fills in what s leaves out: seed 1, mode virtual, duration 24h,
// and per cohort version 1000, tag devel, link wifi, poll 15s and the name
// "cohort-N" (N counting from 1); the rollout's image size is 64KiB. Zero
// values count as left out. Parse calls it; a scenario built in code should
// call it before Validate.
func (s *Scenario) Defaults() {
	if s.Seed == 0 {
		s.Seed = DefaultSeed
	}
	if s.Mode == "" {
		s.Mode = DefaultMode
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	for i := range s.Fleet {
		c := &s.Fleet[i]
		if c.Name == "" {
			c.Name = "cohort-" + strconv.Itoa(i+1)
		}
		if c.Version == 0 {
			c.Version = DefaultVersion
		}
		if c.Tag == "" {
			c.Tag = DefaultTag
		}
		if c.Link == "" {
			c.Link = DefaultLink
		}
		if c.Poll == 0 {
			c.Poll = DefaultPoll
		}
	}
	if s.Rollout.ImageSize == 0 {
		s.Rollout.ImageSize = DefaultImageSize
	}
}

// PublishedAt is when the rollout publishes its i-th version (from 0):
// the first at At, each next one At later.
func (r *Rollout) PublishedAt(i int) Duration {
	return Duration(int64(i+1) * int64(r.At))
}

// Validate checks a scenario that has its defaults (Defaults): every rule
// Parse applies after decoding, including, for a scenario with a matrix,
// the matrix and every variant it expands to (Expand). The error is an
// *Error with a Path but no File or Line.
func (s *Scenario) Validate() error {
	if err := s.validate(func(string) int { return 0 }); err != nil {
		return err
	}
	return nil
}

// imageOverhead is what an image adds to its payload within the slot: the
// 0x200-byte header our images are built with (imgtool -H 0x200
// --pad-header, as the device rigs sign them), and the TLV area, where
// SHA-256, a key hash, an RSA-3072 signature and a security counter take
// under 1 KiB.
const imageOverhead = 0x200 + 1<<10

// validate checks s, taking the line of each field path from line. A
// scenario with a matrix is valid when its matrix is and every variant
// is: s itself may leave out a field that the matrix sets.
func (s *Scenario) validate(line func(path string) int) *Error {
	if len(s.Matrix) > 0 {
		_, err := s.expand(checker{line})
		return err
	}
	return s.validateRun(line)
}

// validateRun checks s as one run, ignoring its matrix.
func (s *Scenario) validateRun(line func(path string) int) *Error {
	c := checker{line}
	if !slices.Contains(Modes, s.Mode) {
		return c.fail("mode", "unknown mode %q (modes: %s)", s.Mode, strings.Join(Modes, ", "))
	}
	if s.Duration < 0 {
		return c.fail("duration", "must not be negative")
	}
	if err := s.validateFleet(c); err != nil {
		return err
	}
	if err := s.validateRollout(c); err != nil {
		return err
	}
	if err := s.validateFaults(c); err != nil {
		return err
	}
	if err := s.Gateway.validate(c); err != nil {
		return err
	}
	return s.validateExpect(c)
}

// checker makes the errors of validate.
type checker struct {
	// line gives the line of a field path (0 when unknown).
	line func(path string) int
}

func (c checker) fail(path, format string, args ...any) *Error {
	return &Error{Line: c.line(path), Path: path, Reason: fmt.Sprintf(format, args...)}
}

// agentBoards lists the boards a fleet device can be: those with room for
// the update agent.
func agentBoards() []string {
	var names []string
	for _, b := range devicemodel.Boards() {
		if b.RunsAgent() {
			names = append(names, b.Name)
		}
	}
	return names
}

func (s *Scenario) validateFleet(c checker) *Error {
	if len(s.Fleet) == 0 {
		return c.fail("fleet", "list at least one cohort of devices")
	}
	names := map[string]int{}
	for i := range s.Fleet {
		co := &s.Fleet[i]
		p := fmt.Sprintf("fleet[%d]", i)
		if first, dup := names[co.Name]; dup {
			return c.fail(p+".name", "%q already names fleet[%d]: cohort names must differ", co.Name, first)
		}
		names[co.Name] = i
		if co.Count < 1 {
			return c.fail(p+".count", "must be at least 1")
		}
		if co.Board == "" {
			return c.fail(p+".board", "name a board: %s", strings.Join(agentBoards(), ", "))
		}
		b, err := devicemodel.LookupBoard(co.Board)
		if err != nil {
			return c.fail(p+".board", "unknown board %q (boards: %s)", co.Board, strings.Join(agentBoards(), ", "))
		}
		if !b.RunsAgent() {
			return c.fail(p+".board", "board %q has no room for the update agent (boards that run it: %s)", co.Board, strings.Join(agentBoards(), ", "))
		}
		if co.Bootloader != "" && !slices.Contains(Bootloaders, co.Bootloader) {
			return c.fail(p+".bootloader", "unknown bootloader %q (bootloaders: %s)", co.Bootloader, strings.Join(Bootloaders, ", "))
		}
		if co.Strategy != "" && !b.Supports(co.Strategy) {
			return c.fail(p+".strategy", "the %s cannot run strategy %q (it runs %s)", b.Name, co.Strategy, strings.Join(b.Strategies(), ", "))
		}
		if co.Version == 0 {
			return c.fail(p+".version", "must be more than 0")
		}
		if !slices.Contains(Links, co.Link) {
			return c.fail(p+".link", "unknown link %q (links: %s)", co.Link, strings.Join(Links, ", "))
		}
		if co.Poll <= 0 {
			return c.fail(p+".poll", "must be more than 0")
		}
		if co.Start < 0 {
			return c.fail(p+".start", "must not be negative")
		}
		if co.Start >= s.Duration {
			return c.fail(p+".start", "the devices would still be powering on when the run ends (duration %s)", s.Duration)
		}
		if err := validateFirmware(co.Firmware, p+".firmware", c); err != nil {
			return err
		}
	}
	return nil
}

// validateFirmware checks a cohort's firmware map: keys "default" or build
// numbers, values devicemodel behaviours.
func validateFirmware(fw map[string]string, path string, c checker) *Error {
	if len(fw) == 0 {
		return nil
	}
	spec := []string{devicemodel.Healthy.String()}
	for _, k := range byLine(fw, path, c.line) {
		kp := path + "." + k
		if _, err := devicemodel.ParseBehaviour(fw[k]); err != nil {
			return c.fail(kp, "unknown behaviour %q (behaviours: %s)", fw[k], strings.Join(behaviourNames(), ", "))
		}
		if k == "default" {
			spec[0] = fw[k]
			continue
		}
		if _, err := strconv.ParseUint(k, 10, 32); err != nil {
			return c.fail(kp, "%q is neither \"default\" nor a build number", k)
		}
		spec = append(spec, k+"="+fw[k])
	}
	// The sim hands the map to devicemodel as a profile string: make sure
	// it reads it back.
	if _, err := devicemodel.ParseProfiles(strings.Join(spec, ",")); err != nil {
		return c.fail(path, "%v", err)
	}
	return nil
}

func (s *Scenario) validateRollout(c checker) *Error {
	r := &s.Rollout
	if len(r.Versions) == 0 {
		return c.fail("rollout.versions", "list at least one version to publish, e.g. [1001]")
	}
	for i, v := range r.Versions {
		p := fmt.Sprintf("rollout.versions[%d]", i)
		if v == 0 {
			return c.fail(p, "must be more than 0")
		}
		if i > 0 && v <= r.Versions[i-1] {
			return c.fail(p, "%d must be greater than the version before it (%d)", v, r.Versions[i-1])
		}
	}
	if r.At < 0 {
		return c.fail("rollout.at", "must not be negative")
	}
	last := r.PublishedAt(len(r.Versions) - 1)
	if last >= s.Duration {
		return c.fail("rollout.at", "the last version would be published at %s, when the run is over (duration %s)", last, s.Duration)
	}
	if r.ImageSize <= 0 {
		return c.fail("rollout.image_size", "must be more than 0")
	}
	if err := s.validateImageFits(c); err != nil {
		return err
	}
	if err := s.validateRotations(c); err != nil {
		return err
	}
	return s.validateWaves(c, last)
}

func (s *Scenario) validateRotations(c checker) *Error {
	rs := s.Rollout.Rotations
	for i, r := range rs {
		p := fmt.Sprintf("rollout.rotations[%d]", i)
		switch {
		case r.At < 0:
			return c.fail(p+".at", "must not be negative")
		case i > 0 && r.At < rs[i-1].At:
			return c.fail(p+".at", "%s is before the rotation before it (%s)", r.At, rs[i-1].At)
		case r.At >= s.Duration:
			return c.fail(p+".at", "%s is when the run is over (duration %s)", r.At, s.Duration)
		case len(r.Roles) == 0:
			return c.fail(p+".roles", "list the roles given new keys: %s", strings.Join(RotationRoles, ", "))
		}
		for j, role := range r.Roles {
			rp := fmt.Sprintf("%s.roles[%d]", p, j)
			if !slices.Contains(RotationRoles, role) {
				return c.fail(rp, "unknown role %q (roles: %s)", role, strings.Join(RotationRoles, ", "))
			}
			if slices.Contains(r.Roles[:j], role) {
				return c.fail(rp, "%s is listed twice", role)
			}
		}
	}
	return nil
}

// validateImageFits checks that an image of the rollout's size fits the
// slots of every cohort's board with its strategy, leaving room for the
// header, the TLVs and the trailer.
func (s *Scenario) validateImageFits(c checker) *Error {
	if limit := int64(agent.MaxFirmwareSize) - imageOverhead; int64(s.Rollout.ImageSize) > limit {
		return c.fail("rollout.image_size", "%s is more than the update agent takes: aktualizr-nano refuses firmware of %dKiB or more, which leaves %dKiB of payload after the header and TLVs",
			s.Rollout.ImageSize, agent.MaxFirmwareSize>>10, limit>>10)
	}
	type key struct{ board, strategy string }
	room := map[key]int64{}
	for i, co := range s.Fleet {
		b, err := devicemodel.LookupBoard(co.Board)
		if err != nil {
			continue // validateFleet reported it
		}
		k := key{b.Name, co.Strategy}
		if k.strategy == "" {
			k.strategy = b.Strategy
		}
		max, ok := room[k]
		if !ok {
			l, err := b.Bootloader(b.NewFlash(flashsim.Options{}), mcuboot.Config{Strategy: k.strategy})
			if err != nil {
				return c.fail(fmt.Sprintf("fleet[%d].strategy", i), "the %s cannot run %s: %v", b.Name, k.strategy, err)
			}
			max = l.Strategy().MaxImageSize(l) - imageOverhead
			room[k] = max
		}
		if int64(s.Rollout.ImageSize) > max {
			return c.fail("rollout.image_size", "%s does not fit fleet[%d]'s %s with %s: its slots leave room for %dKiB of payload after the header, TLVs and trailer",
				s.Rollout.ImageSize, i, b.Name, k.strategy, max>>10)
		}
	}
	return nil
}

func (s *Scenario) validateWaves(c checker, published Duration) *Error {
	r := &s.Rollout
	if len(r.Waves) == 0 {
		return nil
	}
	groups := map[string]bool{}
	production := false
	for _, co := range s.Fleet {
		if co.Production {
			production = true
			if co.Group != "" {
				groups[co.Group] = true
			}
		}
	}
	if !production {
		return c.fail("rollout.waves", "waves update production devices only, and no cohort has production: true")
	}
	known := make([]string, 0, len(groups))
	for g := range groups {
		known = append(known, g)
	}
	slices.Sort(known)
	for i, w := range r.Waves {
		p := fmt.Sprintf("rollout.waves[%d]", i)
		switch {
		case w.At < published:
			return c.fail(p+".at", "%s is before the last version is published (%s)", w.At, published)
		case i > 0 && w.At < r.Waves[i-1].At:
			return c.fail(p+".at", "%s is before the wave before it (%s)", w.At, r.Waves[i-1].At)
		case w.At >= s.Duration:
			return c.fail(p+".at", "%s is when the run is over (duration %s)", w.At, s.Duration)
		}
		for j, g := range w.Groups {
			if groups[g] {
				continue
			}
			if len(known) == 0 {
				return c.fail(fmt.Sprintf("%s.groups[%d]", p, j), "no production cohort is in group %q (none has a group:)", g)
			}
			return c.fail(fmt.Sprintf("%s.groups[%d]", p, j), "no production cohort is in group %q (groups: %s)", g, strings.Join(known, ", "))
		}
		if !(w.Percentage >= 0 && w.Percentage <= 100) {
			return c.fail(p+".percentage", "must be between 0 and 100")
		}
		if w.Limit < 0 {
			return c.fail(p+".limit", "must not be negative")
		}
		if !(w.AbortFailureRate >= 0 && w.AbortFailureRate <= 1) {
			return c.fail(p+".abort_failure_rate", "must be between 0 and 1 (a share of the wave's devices)")
		}
	}
	return nil
}

// maxDriftPPM bounds a clock's drift: 1% is past any crystal, and past it
// a day's drift dwarfs the metadata's lifetimes.
const maxDriftPPM = 10000

func (s *Scenario) validateFaults(c checker) *Error {
	for i, f := range s.Faults {
		p := fmt.Sprintf("faults[%d]", i)
		if f.Kind == "" {
			return c.fail(p+".kind", "name the kind of fault: %s", strings.Join(FaultKinds, ", "))
		}
		if !slices.Contains(FaultKinds, f.Kind) {
			return c.fail(p+".kind", "unknown fault kind %q (kinds: %s)", f.Kind, strings.Join(FaultKinds, ", "))
		}
		if !(f.Rate >= 0 && f.Rate <= 1) {
			return c.fail(p+".rate", "must be between 0 and 1 (a share of the devices)")
		}
		if f.Kind != "clock-skew" && (f.Skew != 0 || f.Behind || f.DriftPPM != 0) {
			return c.fail(p+".skew", "only a clock-skew fault has a skew or a drift")
		}
		if f.Kind == "clock-skew" {
			switch {
			case f.Skew < 0 || f.Skew == 0 && f.DriftPPM == 0:
				return c.fail(p+".skew", "a clock skew needs a size, e.g. skew: 36h, or a drift, e.g. drift_ppm: 100 (behind: true for a clock that is late)")
			case !(f.DriftPPM >= 0 && f.DriftPPM <= maxDriftPPM):
				return c.fail(p+".drift_ppm", "must be between 0 and %d (behind: true for a clock that loses time)", maxDriftPPM)
			case f.Rate == 0:
				return c.fail(p+".rate", "a clock skew needs a rate above 0: the share of devices it hits")
			case f.At != 0 || f.For != 0 || f.Phase != "" || f.Attack != "":
				return c.fail(p, "a clock skew takes skew, drift_ppm, behind and rate: the devices are off from manufacture")
			}
			continue
		}
		if f.Kind == "power-cut" {
			switch {
			case f.Phase != "" && !slices.Contains(Phases, f.Phase):
				return c.fail(p+".phase", "unknown phase %q (phases: %s)", f.Phase, strings.Join(Phases, ", "))
			case f.Rate == 0:
				return c.fail(p+".rate", "a power cut needs a rate above 0: the share of devices it hits")
			case f.At != 0:
				return c.fail(p+".at", "power cuts strike by phase and rate; at and for bound outages")
			case f.For != 0:
				return c.fail(p+".for", "power cuts strike by phase and rate; at and for bound outages")
			}
			continue
		}
		switch {
		case f.Kind == "malicious-repo" && !slices.Contains(Attacks, f.Attack):
			return c.fail(p+".attack", "a malicious repository needs an attack: %s", strings.Join(Attacks, ", "))
		case f.Kind != "malicious-repo" && f.Attack != "":
			return c.fail(p+".attack", "only a malicious-repo fault has an attack")
		case f.Phase != "":
			return c.fail(p+".phase", "only power cuts have a phase")
		case f.Rate != 0 && f.Kind != "network-outage":
			return c.fail(p+".rate", "%s hits every device; rate is for power cuts, partitions and clock skews", f.Kind)
		case f.For <= 0:
			return c.fail(p+".for", "%s needs a length, e.g. for: 30m", f.Kind)
		case f.At < 0:
			return c.fail(p+".at", "must not be negative")
		case f.At >= s.Duration:
			return c.fail(p+".at", "%s is when the run is over (duration %s)", f.At, s.Duration)
		}
	}
	return nil
}

func (s *Scenario) validateExpect(c checker) *Error {
	for _, name := range byLine(s.Expect, "expect", c.line) {
		p := "expect." + name
		m, ok := LookupMetric(name)
		if !ok {
			if near := nearest(name, MetricNames()); near != "" {
				return c.fail(p, "unknown metric %q (did you mean %q?)", name, near)
			}
			return c.fail(p, "unknown metric %q (metrics: %s)", name, strings.Join(MetricNames(), ", "))
		}
		if name == "root_rotated" && len(s.Rollout.Rotations) == 0 {
			return c.fail(p, "the scenario rotates no keys: add rollout.rotations, e.g. [{at: 1h, roles: [root, timestamp]}]")
		}
		exprs := s.Expect[name]
		if len(exprs) == 0 {
			return c.fail(p, "list at least one threshold, e.g. [%q]", example(m.Kind))
		}
		for i, e := range exprs {
			t, err := threshold.Parse(e)
			if err != nil {
				return c.fail(fmt.Sprintf("%s[%d]", p, i), "%v", err)
			}
			// One sample and one trial: the only error left is an
			// aggregation the metric's kind does not have.
			_, err = t.Aggregate(threshold.Metric{Kind: m.Kind, Samples: []float64{0}, Total: 1})
			if ke := (*threshold.KindError)(nil); errors.As(err, &ke) {
				return c.fail(fmt.Sprintf("%s[%d]", p, i), "threshold %q: %v", t.Source, ke)
			}
		}
	}
	return nil
}

// example is a threshold for a metric of kind k, for messages.
func example(k threshold.Kind) string {
	switch k {
	case threshold.Rate:
		return "rate>=0.99"
	case threshold.Trend:
		return "p(95)<2h"
	case threshold.Gauge:
		return "value<1000"
	}
	return "count==0"
}
