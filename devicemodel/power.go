package devicemodel

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/flashsim"
)

// Phase is what a flash operation is part of, by who issues it and where
// it lands.
type Phase uint8

const (
	// PhaseAny counts every program and erase.
	PhaseAny Phase = iota
	// PhaseDownload: the application writes the secondary slot (the
	// download, and setting it pending).
	PhaseDownload
	// PhaseSwap: the bootloader writes (an upgrade, a revert, resuming one).
	PhaseSwap
	// PhaseConfirm: the application writes the primary slot (confirming
	// the running image).
	PhaseConfirm
	// PhaseStorage: the application writes the agent's partition (state
	// page, TUF metadata).
	PhaseStorage
	phaseCount
)

var phaseNames = [phaseCount]string{"any", "download", "swap", "confirm", "storage"}

func (p Phase) String() string {
	if p < phaseCount {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// PowerCut is a power cut a device is told to suffer: at the Op-th flash
// operation of a phase (counted from the device's manufacture), or at a
// time since it was first powered on.
type PowerCut struct {
	Phase Phase
	Op    int
	Kind  flashsim.CutKind
	// At, when positive, cuts power at that time since the device started
	// instead of at a flash operation.
	At time.Duration
}

func (c PowerCut) String() string {
	if c.At > 0 {
		return "at:" + c.At.String()
	}
	return fmt.Sprintf("%s:%d:%s", c.Phase, c.Op, c.Kind)
}

// ErrBadPowerCut reports a power cut specification that cannot be parsed.
var ErrBadPowerCut = errors.New("bad power cut")

// ParsePowerCut reads "PHASE:N[:KIND]" (PHASE one of any, download, swap,
// confirm, storage; N from 1; KIND before, after or during, the default)
// or "at:DURATION" (e.g. "at:45s").
func ParsePowerCut(s string) (PowerCut, error) {
	parts := strings.Split(s, ":")
	if len(parts) == 2 && parts[0] == "at" {
		d, err := time.ParseDuration(parts[1])
		if err != nil || d <= 0 {
			return PowerCut{}, fmt.Errorf("%w: %q: want at:DURATION, e.g. at:45s", ErrBadPowerCut, s)
		}
		return PowerCut{At: d}, nil
	}
	if len(parts) < 2 || len(parts) > 3 {
		return PowerCut{}, fmt.Errorf("%w: %q: want PHASE:N[:KIND] or at:DURATION", ErrBadPowerCut, s)
	}
	c := PowerCut{Phase: phaseCount, Kind: flashsim.CutDuring}
	for i, n := range phaseNames {
		if n == parts[0] {
			c.Phase = Phase(i)
		}
	}
	if c.Phase == phaseCount {
		return PowerCut{}, fmt.Errorf("%w: %q: phase %q is not one of %s", ErrBadPowerCut, s, parts[0], strings.Join(phaseNames[:], ", "))
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 1 {
		return PowerCut{}, fmt.Errorf("%w: %q: the operation number must be 1 or more", ErrBadPowerCut, s)
	}
	c.Op = n
	if len(parts) == 3 {
		switch parts[2] {
		case "before":
			c.Kind = flashsim.CutBefore
		case "after":
			c.Kind = flashsim.CutAfter
		case "during":
			c.Kind = flashsim.CutDuring
		default:
			return PowerCut{}, fmt.Errorf("%w: %q: kind %q is not before, after or during", ErrBadPowerCut, s, parts[2])
		}
	}
	return c, nil
}
