// Package rollout owns the decision logic of rollouts: Foundries waves (one
// version staged to production devices of one tag, rolled out in steps,
// completed or cancelled; foundries.md §4) under AWS IoT job rollout
// controls (release rate, exponential ramp, abort on failure rate, in-progress
// timeout; awsota.md §5), and the per-wave and per-version status of devices
// as their aktualizr-nano events report it.
//
// A Controller takes operator commands, device events, candidate devices and
// the time now, and answers with decisions and the records that changed
// (Changes). The caller persists those records before it acknowledges the
// command or the event, and rebuilds a Controller from them with Restore
// after a restart.
//
// # What it must not know
//
// The package does no I/O and never reads the clock or a global random
// source: time is always an argument, and the only "randomness", the order in
// which a rollout step picks devices, is a hash of the wave name and the
// device UUID. It knows nothing of HTTP, TLS, pebble or TUF metadata: the
// gateway lists the candidate devices, stores the records and serves the
// wave's targets to the devices WaveFor names. No map iteration order reaches
// an output: every list it returns is sorted.
package rollout
