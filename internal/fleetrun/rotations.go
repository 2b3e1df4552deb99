package fleetrun

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/fleetsim/fleetsim/gateway"
)

// RotationOutcome is one rotation of the gateway's TUF signing keys.
type RotationOutcome struct {
	At    float64  `json:"at_s"`
	Roles []string `json:"roles"`
	// RootVersion is the root version the rotation signed.
	RootVersion int64 `json:"root_version"`
	// Trusting is how many devices ended trusting that root version or a
	// later one: they walked the root chain to it.
	Trusting int `json:"devices_trusting"`
}

// scheduleRotations gives the gateway new signing keys at each rotation's
// time, through its admin API as an operator would. Devices learn of them
// only by walking the root chain at their next check-in.
func (w *world) scheduleRotations() {
	for i, rot := range w.s.Rollout.Rotations {
		w.at(Epoch.Add(time.Duration(rot.At)), func() {
			body, _ := json.Marshal(gateway.KeyRotationRequest{Roles: rot.Roles})
			out, err := w.adminCall("POST", "/v1/keys/rotate", body)
			var kr gateway.KeyRotation
			if err == nil {
				err = json.Unmarshal(out, &kr)
			}
			// Both repositories were made with one root and rotate
			// together: whichever repository a device follows, the new
			// root has the same version.
			if v := kr.RootVersions; err == nil && v["ci"] != v["prod"] {
				err = fmt.Errorf("the CI repository's root is v%d, the production one's v%d", v["ci"], v["prod"])
			}
			if err != nil {
				w.err = fmt.Errorf("rollout.rotations[%d]: %w", i, err)
				return
			}
			w.stats.rotations = append(w.stats.rotations, RotationOutcome{
				At: w.now().Sub(Epoch).Seconds(), Roles: rot.Roles, RootVersion: kr.RootVersions["prod"],
			})
		})
	}
}

// observeRoot records the root version a device trusts after a check-in;
// it never goes down (the device keeps it in flash).
func (w *world) observeRoot(dev *device, root int64) {
	if root > dev.state.root {
		dev.state.root = root
	}
}

// rootTarget is the root version devices should end trusting: the last
// rotation's, or 1 without one.
func (w *world) rootTarget() int64 {
	if n := len(w.stats.rotations); n > 0 {
		return w.stats.rotations[n-1].RootVersion
	}
	return 1
}

// trusting counts the devices that trust root version v or a later one.
func (w *world) trusting(v int64) int {
	n := 0
	for _, d := range w.devices {
		if d.state.root >= v {
			n++
		}
	}
	return n
}

// rotationsSettled reports whether every rotation is made and every device
// not bricked trusts the last one's root. It scans the fleet, so settled
// asks it last.
func (w *world) rotationsSettled() bool {
	if len(w.s.Rollout.Rotations) == 0 {
		return true
	}
	if len(w.stats.rotations) < len(w.s.Rollout.Rotations) {
		return false
	}
	v := w.rootTarget()
	for _, d := range w.devices {
		if d.state.root < v && d.state.bricked == "" {
			return false
		}
	}
	return true
}

// rotationOutcomes are the rotations with the devices that ended trusting
// each.
func (w *world) rotationOutcomes() []RotationOutcome {
	out := make([]RotationOutcome, len(w.stats.rotations))
	for i, r := range w.stats.rotations {
		r.Trusting = w.trusting(r.RootVersion)
		out[i] = r
	}
	return out
}
