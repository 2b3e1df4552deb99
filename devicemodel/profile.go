package devicemodel

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Behaviour is what a firmware version does once the bootloader starts it.
// The image bytes are real MCUboot images; the behaviour decides what the
// code in them does.
type Behaviour uint8

const (
	// Healthy firmware passes its self-test and runs the agent.
	Healthy Behaviour = iota
	// CrashAtBoot faults shortly after start; the watchdog resets the MCU,
	// again at every boot: a test image reverts, a confirmed one loops.
	CrashAtBoot
	// FailsSelfTest runs its self-test, which fails, and resets the MCU
	// without confirming the image: the bootloader reverts it.
	FailsSelfTest
	// HangsBeforeCheckIn stops before the agent's first check-in; only the
	// hardware watchdog gets the device out.
	HangsBeforeCheckIn
	// BricksNetwork passes its self-test but its network stack never
	// connects: the agent reboots after 180 s without a check-in.
	BricksNetwork
	behaviourCount
)

var behaviourNames = [behaviourCount]string{
	Healthy:            "healthy",
	CrashAtBoot:        "crash-at-boot",
	FailsSelfTest:      "fails-self-test",
	HangsBeforeCheckIn: "hangs",
	BricksNetwork:      "bricks-network",
}

func (b Behaviour) String() string {
	if b < behaviourCount {
		return behaviourNames[b]
	}
	return "behaviour(" + strconv.Itoa(int(b)) + ")"
}

// ErrBadProfile reports a profile specification that cannot be parsed.
var ErrBadProfile = errors.New("bad firmware profile")

// ParseBehaviour reads a behaviour's name.
func ParseBehaviour(s string) (Behaviour, error) {
	for i, n := range behaviourNames {
		if n == s {
			return Behaviour(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not one of %s", ErrBadProfile, s, strings.Join(behaviourNames[:], ", "))
}

// Profiles says how each firmware version behaves.
type Profiles struct {
	// Default is the behaviour of versions not listed.
	Default Behaviour
	// ByVersion maps build numbers to behaviours.
	ByVersion map[uint32]Behaviour
	// SelfTest is how long the application's self-test takes.
	SelfTest time.Duration
	// CrashAfter is how long CrashAtBoot firmware runs before it faults.
	CrashAfter time.Duration
}

// For is the behaviour of version v.
func (p *Profiles) For(v uint32) Behaviour {
	if b, ok := p.ByVersion[v]; ok {
		return b
	}
	return p.Default
}

// ParseProfiles reads "BEHAVIOUR" or "BEHAVIOUR,VERSION=BEHAVIOUR,..." (the
// first item without a version is the default), e.g.
// "healthy,1002=fails-self-test".
func ParseProfiles(s string) (Profiles, error) {
	var p Profiles
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		ver, name, hasVer := strings.Cut(item, "=")
		if !hasVer {
			if i != 0 {
				return p, fmt.Errorf("%w: %q: only the first item may omit its version", ErrBadProfile, item)
			}
			b, err := ParseBehaviour(item)
			if err != nil {
				return p, err
			}
			p.Default = b
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(ver), 10, 32)
		if err != nil {
			return p, fmt.Errorf("%w: %q: the version must be a build number", ErrBadProfile, item)
		}
		b, err := ParseBehaviour(strings.TrimSpace(name))
		if err != nil {
			return p, err
		}
		if p.ByVersion == nil {
			p.ByVersion = map[uint32]Behaviour{}
		}
		if _, dup := p.ByVersion[uint32(v)]; dup {
			return p, fmt.Errorf("%w: version %d listed twice", ErrBadProfile, v)
		}
		p.ByVersion[uint32(v)] = b
	}
	return p, nil
}

// String is the profiles in ParseProfiles' form, versions in order.
func (p *Profiles) String() string {
	parts := []string{p.Default.String()}
	vs := make([]uint32, 0, len(p.ByVersion))
	for v := range p.ByVersion {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%d=%s", v, p.ByVersion[v]))
	}
	return strings.Join(parts, ",")
}
