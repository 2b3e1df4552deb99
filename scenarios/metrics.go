package scenarios

import "github.com/fleetsim/fleetsim/scenarios/threshold"

// Metric is a fleet metric that a scenario's expectations can name.
type Metric struct {
	// Name is the key under expect:.
	Name string
	// Kind decides which aggregations its thresholds may use: count for a
	// counter, rate for a rate, value for a gauge, avg/min/max/med/p(N)
	// and count for a trend.
	Kind threshold.Kind
	// Doc says what is measured, in one line.
	Doc string
}

// The "last version" below is the last of rollout.versions: the one the
// run is about.

// Metrics are the fleet metrics expectations may name, in report order.
// updated, reverted, failed, still_old and bricked are the devices'
// outcomes at the end of the run: each device has exactly one.
var Metrics = []Metric{
	{"time_to_update", threshold.Trend, "seconds from the publication of the last version to each device confirming it (updated devices only)"},
	{"update_duration", threshold.Trend, "seconds from each updated device starting its download to confirming the last version"},
	{"updated", threshold.Rate, "share of devices that end running the last version, confirmed"},
	{"reverted", threshold.Counter, "devices that end on an older version after their bootloader reverted an update"},
	{"failed", threshold.Counter, "devices that started an update and end neither updated nor reverted (a download or installation that failed)"},
	{"still_old", threshold.Counter, "devices that never started an update: they end on their factory version"},
	{"bricked", threshold.Counter, "devices that stopped for good: no bootable image, or a boot loop"},
	{"compromised", threshold.Counter, "devices that ran firmware the rollout never published (an attacker's)"},
	{"attacks_refused", threshold.Counter, "check-ins and downloads a device refused while a malicious repository attacked it"},
	{"root_rotated", threshold.Rate, "share of devices that end trusting the root version of the last key rotation, having walked the root chain to it (scenarios with rollout.rotations)"},
	{"requests", threshold.Counter, "requests the gateway received from devices"},
	{"bytes_sent", threshold.Counter, "bytes the gateway sent to devices (responses: metadata and images)"},
	{"bytes_received", threshold.Counter, "bytes the gateway received from devices (request bodies)"},
	{"check_ins", threshold.Counter, "device check-ins whose TUF refresh succeeded"},
	{"peak_concurrency", threshold.Gauge, "the most device connections open at the same moment"},
	{"gateway_utilization", threshold.Gauge, "share of the modelled gateway's core time the fleet used over the run (0 to 1)"},
	{"max_queue_wait", threshold.Gauge, "the longest a handshake or request waited for a gateway core, in seconds"},
}

// LookupMetric returns the metric called name.
func LookupMetric(name string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// MetricNames lists the metrics' names in Metrics' order.
func MetricNames() []string {
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = m.Name
	}
	return names
}
