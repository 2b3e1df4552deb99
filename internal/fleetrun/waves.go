package fleetrun

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/fleetsim/fleetsim/gateway"
)

// abortMinFinished is how many of a wave's devices must have finished
// before its failure rate can abort it.
const abortMinFinished = 10

// WaveOutcome is what became of one gateway wave.
type WaveOutcome struct {
	Name      string `json:"name"`
	Tag       string `json:"tag"`
	Version   uint32 `json:"version"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	Scheduled int    `json:"scheduled"`
	Released  int    `json:"released"`
}

// scheduleWaves turns the scenario's rollout steps into one gateway wave
// per production tag: created at the first step (with the abort policy of
// the first step that has one), then a rollout step at each step's time.
// Before each step the runner puts the production devices the gateway
// knows into their cohorts' groups, as an operator's fioctl would.
func (w *world) scheduleWaves() {
	steps := w.s.Rollout.Waves
	if len(steps) == 0 {
		return
	}
	version := w.s.Rollout.Versions[len(w.s.Rollout.Versions)-1]
	var tags []string
	for _, c := range w.cohorts {
		if c.spec.Production && !slices.Contains(tags, c.spec.Tag) {
			tags = append(tags, c.spec.Tag)
		}
	}
	policy := gateway.PolicyRequest{}
	for _, st := range steps {
		if st.AbortFailureRate > 0 {
			policy.Abort = []gateway.AbortRequest{{FailureType: "failed", ThresholdPercent: st.AbortFailureRate * 100, MinExecuted: abortMinFinished}}
			break
		}
	}
	for i, st := range steps {
		w.at(Epoch.Add(time.Duration(st.At)), func() {
			w.assignGroups()
			for _, tag := range tags {
				name := fmt.Sprintf("%s-v%d", tag, version)
				if i == 0 {
					body, _ := json.Marshal(gateway.WaveRequest{Name: name, Tag: tag, Version: version, Policy: policy})
					if _, err := w.adminCall("POST", "/v1/waves", body); err != nil {
						w.err = fmt.Errorf("rollout.waves[0]: %w", err)
						return
					}
					w.waves = append(w.waves, name)
				}
				body, _ := json.Marshal(gateway.RolloutRequest{Groups: st.Groups, Percentage: st.Percentage, Limit: st.Limit})
				// A wave the gateway aborted refuses further steps: that is
				// the outcome, not a failure of the run.
				_, _ = w.adminCall("POST", "/v1/waves/"+name+"/rollout", body)
			}
		})
	}
}

// assignGroups sets the gateway group of every production device in a
// cohort with a group, once the gateway knows the device.
func (w *world) assignGroups() {
	for _, d := range w.devices {
		c := d.cohort.spec
		if !c.Production || c.Group == "" || d.grouped {
			continue
		}
		body, _ := json.Marshal(gateway.GroupRequest{Group: c.Group})
		if _, err := w.adminCall("PUT", "/v1/devices/"+d.d.UUID()+"/group", body); err == nil {
			d.grouped = true
		}
	}
}

// waveOutcomes reads the waves' final state from the gateway.
func (w *world) waveOutcomes() []WaveOutcome {
	var out []WaveOutcome
	for _, name := range w.waves {
		body, err := w.adminCall("GET", "/v1/waves/"+name, nil)
		if err != nil {
			continue
		}
		var rep struct {
			Wave struct {
				Name      string `json:"name"`
				Tag       string `json:"tag"`
				Version   uint32 `json:"version"`
				Status    string `json:"status"`
				Reason    string `json:"reason"`
				Scheduled int    `json:"scheduled"`
				Released  int    `json:"released"`
			} `json:"wave"`
		}
		if json.Unmarshal(body, &rep) != nil {
			continue
		}
		v := rep.Wave
		out = append(out, WaveOutcome{v.Name, v.Tag, v.Version, v.Status, v.Reason, v.Scheduled, v.Released})
	}
	return out
}
