package rollout

import "time"

// State is where a device stands in an update, the counts a wave's and a
// version's status report. The names follow the device's events
// (reference: aktualizr-nano events, foundries.md §1.8-1.9) rather than AWS
// job execution states, but the terminal ones map: confirmed = SUCCEEDED,
// failed = FAILED, reverted = FAILED (rolled back), timed_out = TIMED_OUT.
type State string

// The states of a device in a wave or an update.
const (
	// Scheduled: selected by a rollout step, waiting for the rate limit to
	// release it; the device is not yet served the wave's targets.
	Scheduled State = "scheduled"
	// Pending: released; the device is served the wave's targets and has not
	// started downloading.
	Pending State = "pending"
	// Downloading: EcuDownloadStarted for the version was received.
	Downloading State = "downloading"
	// Installed: EcuInstallationStarted or EcuInstallationApplied was
	// received: the image is in flash and the device reboots into it.
	Installed State = "installed"
	// Confirmed: EcuInstallationCompleted with success for the version; the
	// new image confirmed itself. Terminal.
	Confirmed State = "confirmed"
	// Failed: EcuDownloadCompleted without success (the device retries at
	// its next check-in, so a later EcuDownloadStarted moves it back to
	// Downloading), or EcuInstallationCompleted without success that was not
	// a rollback.
	Failed State = "failed"
	// Reverted: the device rolled back to its previous image
	// (EcuInstallationCompleted with success false after the install).
	// Terminal: aktualizr-nano never retries a version that rolled back.
	Reverted State = "reverted"
	// TimedOut: the device started and did not finish within the policy's
	// in-progress timeout. Terminal for the rollout's decisions.
	TimedOut State = "timed_out"
)

// States lists every State in report order.
var States = []State{Scheduled, Pending, Downloading, Installed, Confirmed, Failed, Reverted, TimedOut}

// WaveStatus is the life cycle of a wave.
type WaveStatus string

// Wave life cycle, as fioctl waves has it, plus Aborted (a rollout policy
// stopped it; it then behaves as Canceled).
const (
	WaveActive   WaveStatus = "active"
	WaveComplete WaveStatus = "complete"
	WaveCanceled WaveStatus = "canceled"
	WaveAborted  WaveStatus = "aborted"
)

// Policy is a wave's rollout control, after AWS IoT jobs
// (jobExecutionsRolloutConfig, abortConfig, timeoutConfig; awsota.md §5).
// The zero Policy releases every scheduled device at once, never aborts and
// never times out.
type Policy struct {
	// MaxPerMinute caps how many scheduled devices are released per minute;
	// 0 means no cap. With Exponential set it caps the growing rate.
	MaxPerMinute int `json:"max_per_minute,omitempty"`
	// Exponential starts at a base rate and multiplies it each time a
	// number of devices were released (notified) or confirmed (succeeded).
	Exponential *ExponentialRate `json:"exponential,omitempty"`
	// Abort lists the criteria that abort the wave; any one suffices.
	Abort []AbortCriterion `json:"abort,omitempty"`
	// InProgressTimeout is how long a device may take from its download
	// start to a terminal state; 0 means no timeout.
	InProgressTimeout time.Duration `json:"in_progress_timeout,omitempty"`
}

// ExponentialRate is AWS IoT's exponentialRate.
type ExponentialRate struct {
	// BaseRatePerMinute is the initial release rate (1..1000).
	BaseRatePerMinute int `json:"base_rate_per_minute"`
	// IncrementFactor multiplies the rate (1.1..5).
	IncrementFactor float64 `json:"increment_factor"`
	// NotifiedThings / SucceededThings: the rate grows after each such
	// number of devices were released / confirmed. Exactly one is set.
	NotifiedThings  int `json:"notified_things,omitempty"`
	SucceededThings int `json:"succeeded_things,omitempty"`
}

// FailureType selects which terminal states an abort criterion counts.
type FailureType string

// Failure types of AWS IoT's abortConfig, with Reverted for MCUboot
// rollbacks (AWS counts those as FAILED).
const (
	FailureFailed   FailureType = "failed"    // Failed and Reverted
	FailureReverted FailureType = "reverted"  // Reverted only
	FailureTimedOut FailureType = "timed_out" // TimedOut
	FailureAll      FailureType = "all"       // Failed, Reverted and TimedOut
)

// AbortCriterion aborts a wave when, among at least MinExecuted devices that
// reached a terminal state, the share that failed in the given way reaches
// ThresholdPercent (AWS's thresholdPercentage is the minimum failure
// percentage that aborts).
type AbortCriterion struct {
	FailureType      FailureType `json:"failure_type"`
	ThresholdPercent float64     `json:"threshold_percent"`
	MinExecuted      int         `json:"min_executed"`
}

// Wave stages one version for one tag to production devices, with Foundries'
// semantics (foundries.md §4): rollout steps add devices, Complete makes the
// version the tag's production version, Cancel withdraws it. One wave per
// tag is active at a time.
type Wave struct {
	Name    string `json:"name"`
	Tag     string `json:"tag"`
	Version uint32 `json:"version"`
	// Targets are the TUF target names the wave serves (one per hardware ID).
	Targets   []string   `json:"targets"`
	Policy    Policy     `json:"policy"`
	Status    WaveStatus `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	EndedAt   time.Time  `json:"ended_at,omitzero"`
	// Reason says why a wave was aborted.
	Reason string `json:"reason,omitempty"`
	// Scheduled is the number of devices rollout steps added; member
	// sequence numbers run from 0 to Scheduled-1 in selection order.
	Scheduled int `json:"scheduled"`
	// Released is how many of them the rate limit has released.
	Released int `json:"released"`
	// Rate is the current release rate per minute (exponential policies)
	// and Tokens the release budget carried between ticks; LastTick is the
	// time they were last advanced.
	Rate     float64   `json:"rate,omitempty"`
	Tokens   float64   `json:"tokens,omitempty"`
	LastTick time.Time `json:"last_tick,omitzero"`
}

// Member is one device in a wave.
type Member struct {
	Wave string `json:"wave"`
	UUID string `json:"uuid"`
	// Seq is the device's place in the wave's selection order; the rate
	// limit releases members in Seq order.
	Seq   int   `json:"seq"`
	State State `json:"state"`
	// CorrelationID ties the device's events to this update; it is set by
	// the EcuDownloadStarted for the wave's version.
	CorrelationID string    `json:"correlation_id,omitempty"`
	ScheduledAt   time.Time `json:"scheduled_at"`
	ReleasedAt    time.Time `json:"released_at,omitzero"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	FinishedAt    time.Time `json:"finished_at,omitzero"`
}

// Update is a device's latest update attempt, in or outside a wave (test
// devices update from CI targets without waves). Per-version status counts
// these.
type Update struct {
	UUID          string    `json:"uuid"`
	Version       uint32    `json:"version"`
	CorrelationID string    `json:"correlation_id"`
	State         State     `json:"state"`
	StartedAt     time.Time `json:"started_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Event is what the controller needs of a device event (POST /events).
type Event struct {
	// Type is eventType.id: EcuDownloadStarted, EcuDownloadCompleted,
	// EcuInstallationStarted, EcuInstallationApplied,
	// EcuInstallationCompleted; others are ignored.
	Type          string
	CorrelationID string
	// Version is event.version parsed as a target version (0 if absent or
	// not a number).
	Version uint32
	// Success is event.success; a missing field counts as true, as
	// aktualizr-nano always sends it.
	Success bool
}
