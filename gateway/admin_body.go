package gateway

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
)

// Admin request bodies. The admin API is for operators, but its bodies are
// still parsed strictly: unknown fields, wrong types and values out of range
// get a 400 with the reason.

// maxAdminBody bounds admin JSON bodies (a rollout may list 10,000 UUIDs).
const maxAdminBody = 1 << 20

// PolicyRequest is a wave's rollout policy on the wire, named after AWS IoT
// jobs' rollout, abort and timeout configurations.
type PolicyRequest struct {
	MaxPerMinute             int                 `json:"max_per_minute,omitempty"`
	Exponential              *ExponentialRequest `json:"exponential,omitempty"`
	Abort                    []AbortRequest      `json:"abort,omitempty"`
	InProgressTimeoutMinutes float64             `json:"in_progress_timeout_minutes,omitempty"`
}

// ExponentialRequest is AWS IoT's exponentialRate.
type ExponentialRequest struct {
	BaseRatePerMinute int     `json:"base_rate_per_minute"`
	IncrementFactor   float64 `json:"increment_factor"`
	NotifiedThings    int     `json:"notified_things,omitempty"`
	SucceededThings   int     `json:"succeeded_things,omitempty"`
}

// AbortRequest is one of AWS IoT's abort criteria.
type AbortRequest struct {
	FailureType      string  `json:"failure_type"`
	ThresholdPercent float64 `json:"threshold_percent"`
	MinExecuted      int     `json:"min_executed"`
}

// WaveRequest creates a wave (POST /v1/waves), like fioctl waves init: the
// CI targets of Version carrying SourceTag (default Tag) are staged for
// Tag's production devices.
type WaveRequest struct {
	Name      string        `json:"name"`
	Tag       string        `json:"tag"`
	Version   uint32        `json:"version"`
	SourceTag string        `json:"source_tag,omitempty"`
	Policy    PolicyRequest `json:"policy"`
}

// RolloutRequest is one rollout step (POST /v1/waves/{name}/rollout), like
// fioctl waves rollout.
type RolloutRequest struct {
	Groups     []string `json:"groups,omitempty"`
	Limit      int      `json:"limit,omitempty"`
	Percentage float64  `json:"percentage,omitempty"`
	UUIDs      []string `json:"uuids,omitempty"`
	DryRun     bool     `json:"dry_run,omitempty"`
}

// ConfigRequest replaces a scope's configuration files.
type ConfigRequest struct {
	Files []ConfigFileRequest `json:"files"`
}

// ConfigFileRequest is one fioconfig file.
type ConfigFileRequest struct {
	Name        string   `json:"name"`
	Value       string   `json:"value"`
	Unencrypted bool     `json:"unencrypted"`
	OnChanged   []string `json:"on_changed,omitempty"`
}

// GroupRequest sets a device's group.
type GroupRequest struct {
	Group string `json:"group"`
}

// TagRequest creates an empty tag view.
type TagRequest struct {
	Tag string `json:"tag"`
}

func parseWaveRequest(data []byte) (WaveRequest, rollout.Policy, error) {
	var req WaveRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, rollout.Policy{}, err
	}
	if !tufrepo.ValidWaveName(req.Name) {
		return req, rollout.Policy{}, badRequest("wave: name %.70q is not valid (letters, digits, - _ . +; at most 64)", req.Name)
	}
	if !tufrepo.ValidTag(req.Tag) {
		return req, rollout.Policy{}, badRequest("wave: tag %.70q is not valid", req.Tag)
	}
	if req.SourceTag == "" {
		req.SourceTag = req.Tag
	} else if !tufrepo.ValidTag(req.SourceTag) {
		return req, rollout.Policy{}, badRequest("wave: source tag %.70q is not valid", req.SourceTag)
	}
	if req.Version == 0 {
		return req, rollout.Policy{}, badRequest("wave: version must be a build number above 0")
	}
	p, err := req.Policy.policy()
	return req, p, err
}

func (p PolicyRequest) policy() (rollout.Policy, error) {
	if p.InProgressTimeoutMinutes < 0 || p.InProgressTimeoutMinutes > 10080 || math.IsNaN(p.InProgressTimeoutMinutes) {
		return rollout.Policy{}, badRequest("policy: in_progress_timeout_minutes must be 0..10080")
	}
	out := rollout.Policy{
		MaxPerMinute:      p.MaxPerMinute,
		InProgressTimeout: time.Duration(p.InProgressTimeoutMinutes * float64(time.Minute)),
	}
	if e := p.Exponential; e != nil {
		out.Exponential = &rollout.ExponentialRate{
			BaseRatePerMinute: e.BaseRatePerMinute, IncrementFactor: e.IncrementFactor,
			NotifiedThings: e.NotifiedThings, SucceededThings: e.SucceededThings,
		}
	}
	for _, a := range p.Abort {
		out.Abort = append(out.Abort, rollout.AbortCriterion{
			FailureType: rollout.FailureType(a.FailureType), ThresholdPercent: a.ThresholdPercent, MinExecuted: a.MinExecuted,
		})
	}
	return out, nil
}

func parseRolloutRequest(data []byte) (RolloutRequest, error) {
	var req RolloutRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	switch {
	case req.Limit < 0:
		return req, badRequest("rollout: limit must not be negative")
	case req.Percentage < 0 || req.Percentage > 100 || math.IsNaN(req.Percentage):
		return req, badRequest("rollout: percentage must be 0..100")
	case req.Limit > 0 && req.Percentage > 0:
		return req, badRequest("rollout: give a limit or a percentage, not both")
	case len(req.UUIDs) > 0 && (req.Limit > 0 || req.Percentage > 0):
		return req, badRequest("rollout: listed devices take no limit or percentage")
	case len(req.UUIDs) == 0 && req.Limit == 0 && req.Percentage == 0 && len(req.Groups) == 0:
		return req, badRequest("rollout: select devices by group, limit, percentage or UUIDs")
	}
	for _, g := range req.Groups {
		if !tufrepo.ValidTag(g) {
			return req, badRequest("rollout: group %.70q is not valid", g)
		}
	}
	return req, nil
}

func parseConfigRequest(data []byte) (ConfigRequest, error) {
	var req ConfigRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	seen := map[string]bool{}
	for _, f := range req.Files {
		if !tufrepo.ValidTag(f.Name) {
			return req, badRequest("config: file name %.70q is not valid", f.Name)
		}
		if seen[f.Name] {
			return req, badRequest("config: file %s given twice", f.Name)
		}
		seen[f.Name] = true
		if len(f.Value) > 64<<10 {
			return req, badRequest("config: file %s is larger than 64 KiB", f.Name)
		}
	}
	slices.SortFunc(req.Files, func(a, b ConfigFileRequest) int { return strings.Compare(a.Name, b.Name) })
	return req, nil
}

func parseGroupRequest(data []byte) (GroupRequest, error) {
	var req GroupRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if req.Group != "" && !tufrepo.ValidTag(req.Group) {
		return req, badRequest("group %.70q is not valid", req.Group)
	}
	return req, nil
}

func parseTagRequest(data []byte) (TagRequest, error) {
	var req TagRequest
	if err := decodeStrict(data, &req); err != nil {
		return req, err
	}
	if !tufrepo.ValidTag(req.Tag) {
		return req, badRequest("tag %.70q is not valid", req.Tag)
	}
	return req, nil
}
