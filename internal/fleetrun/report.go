package fleetrun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/fleetsim/fleetsim/scenarios"
	"github.com/fleetsim/fleetsim/scenarios/threshold"
)

// deviceState is what the run knows of one device.
type deviceState struct {
	version       uint32
	reverted      bool
	compromised   bool
	bricked       string
	downloadStart time.Time
	updatedAt     time.Time
	// root is the TUF root version the device trusts (0: it never
	// refreshed).
	root int64
}

// downloading says the device has started an update that has not ended
// yet: not confirmed, reverted or bricked.
func (st *deviceState) downloading() bool {
	return !st.downloadStart.IsZero() && st.updatedAt.IsZero() && st.bricked == "" && !st.reverted
}

// stats are the run's counters, kept as events happen.
type stats struct {
	versions       []uint32
	published      int
	publishedAt    time.Time // of the last version
	publishTimes   []time.Time
	end            time.Time
	updated        int
	downloading    int // devices whose update is under way (deviceState.downloading)
	reverted       int
	bricked        int
	checkIns       int64
	powerCuts      int64
	timeToUpdate   []float64 // seconds, in the order devices confirmed
	updateDuration []float64

	powerCutsArmed, outages, gatewayRestarts, gatewayErrors int64
	attacks, attacksRefused, compromised                    int64
	clockSkewed, partitioned                                int64

	series []Sample
	waves  []WaveOutcome

	rotations []RotationOutcome // as made, without the devices trusting them
}

func newStats(s *scenarios.Scenario) *stats {
	return &stats{versions: s.Rollout.Versions}
}

func (s *stats) publish(v uint32, at time.Time) {
	s.published++
	s.publishTimes = append(s.publishTimes, at)
	if s.published == len(s.versions) {
		s.publishedAt = at
	}
}

// target is the version that counts as updated once it is out, else 0.
func (s *stats) target() uint32 {
	if s.published < len(s.versions) {
		return 0
	}
	return s.versions[len(s.versions)-1]
}

// Report is what a run produced; its JSON form is report.json. Field
// order is fixed and nothing in it depends on the wall clock.
type Report struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description,omitempty"`
	Seed        uint64 `json:"seed"`
	Mode        string `json:"mode"`
	// TimeScale is a live run's clock speed-up (0 in virtual mode).
	TimeScale float64 `json:"time_scale,omitempty"`
	Devices   int     `json:"devices"`
	// Simulated is the virtual time the run covered, in seconds.
	Simulated float64 `json:"simulated_s"`
	// Settled says the run ended early because every device was updated
	// or bricked.
	Settled bool `json:"settled"`
	// Steps is how many times the scheduler resumed a device.
	Steps     uint64           `json:"device_steps"`
	Published []Published      `json:"published"`
	Outcomes  Outcomes         `json:"outcomes"`
	Cohorts   []CohortOutcomes `json:"cohorts"`
	// TimeToFraction is the seconds from the last version's publication
	// until 50, 90, 99 and 100 percent of the fleet ran it confirmed (null:
	// never reached).
	TimeToFraction Fractions `json:"time_to_fraction"`
	// TimeToUpdate and UpdateDuration summarise, per updated device, the
	// seconds from publication to confirmation and from the first
	// downloaded byte to confirmation.
	TimeToUpdate   Distribution      `json:"time_to_update"`
	UpdateDuration Distribution      `json:"update_duration"`
	Gateway        GatewayLoad       `json:"gateway"`
	Waves          []WaveOutcome     `json:"waves,omitempty"`
	Rotations      []RotationOutcome `json:"rotations,omitempty"` // key rotations, and the devices trusting each root
	Faults         FaultCounts       `json:"faults"`
	Thresholds     []ThresholdResult `json:"thresholds"`
	Series         []Sample          `json:"series"`
}

// Published is one version's publication.
type Published struct {
	Version uint32  `json:"version"`
	At      float64 `json:"at_s"`
}

// Outcomes counts devices by how they ended.
type Outcomes struct {
	Updated  int `json:"updated"`
	Reverted int `json:"reverted"`
	StillOld int `json:"still_old"`
	Failed   int `json:"failed"`
	Bricked  int `json:"bricked"`
}

// CohortOutcomes are one cohort's outcomes, with why devices bricked.
type CohortOutcomes struct {
	Name    string `json:"name"`
	Board   string `json:"board"`
	Link    string `json:"link"`
	Devices int    `json:"devices"`
	Outcomes
	BrickReasons []Reason `json:"brick_reasons,omitempty"`
}

// Reason is one reason and how many devices it applies to.
type Reason struct {
	Reason  string `json:"reason"`
	Devices int    `json:"devices"`
}

// Fractions are times in seconds; nil when the fraction was not reached.
type Fractions struct {
	P50  *float64 `json:"p50"`
	P90  *float64 `json:"p90"`
	P99  *float64 `json:"p99"`
	P100 *float64 `json:"p100"`
}

// Distribution summarises samples in seconds.
type Distribution struct {
	Count int     `json:"count"`
	Min   float64 `json:"min"`
	Med   float64 `json:"med"`
	P90   float64 `json:"p90"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	// Histogram counts samples per bucket; Bounds are the buckets' upper
	// bounds in seconds (the last bucket has none).
	Bounds    []float64 `json:"bounds,omitempty"`
	Histogram []int     `json:"histogram,omitempty"`
}

// GatewayLoad is what the devices cost the gateway.
type GatewayLoad struct {
	Requests        int64 `json:"requests"`
	FromDevices     int64 `json:"bytes_from_devices"`
	ToDevices       int64 `json:"bytes_to_devices"`
	Handshakes      int64 `json:"handshakes"`
	ConnectFailures int64 `json:"connect_failures"`
	PeakConnections int64 `json:"peak_connections"`
	CheckIns        int64 `json:"check_ins"`
	// Cores, CPUSeconds and Utilization describe the modelled gateway:
	// CPU time used over the run, and its share of the cores' time (0 when
	// the scenario models no limit). MeanWaitMs and MaxWaitMs are the
	// queueing delay of handshakes and requests.
	Cores       int     `json:"cores"`
	CPUSeconds  float64 `json:"cpu_s"`
	Utilization float64 `json:"utilization"`
	MeanWaitMs  float64 `json:"mean_wait_ms"`
	MaxWaitMs   float64 `json:"max_wait_ms"`
}

// FaultCounts are the faults injected.
type FaultCounts struct {
	PowerCutsArmed  int64 `json:"power_cuts_armed"`
	PowerCuts       int64 `json:"power_cuts"`
	Outages         int64 `json:"outages"`
	GatewayRestarts int64 `json:"gateway_restarts"`
	// Attacks is the malicious-repository attacks made; AttacksRefused
	// the check-ins and downloads devices refused during them; Compromised
	// the devices that ran firmware no rollout published (must be 0).
	// ClockSkewed is the devices whose calendar clock a clock-skew fault
	// set off (or drifting); Partitioned the devices a network outage with
	// a rate cut off from the gateway, counted once per partition.
	ClockSkewed    int64 `json:"clock_skewed"`
	Partitioned    int64 `json:"partitioned"`
	Attacks        int64 `json:"attacks"`
	AttacksRefused int64 `json:"attacks_refused"`
	Compromised    int64 `json:"compromised"`
}

// Sample is the fleet at one moment: the time series of the report.
type Sample struct {
	At float64 `json:"t_s"`
	// Versions counts devices by running version, in version order.
	Updated       int   `json:"updated"`
	Downloading   int   `json:"downloading"`
	Bricked       int   `json:"bricked"`
	Requests      int64 `json:"requests"`
	BytesReceived int64 `json:"bytes_to_devices"`
	Open          int64 `json:"open_connections"`
}

// ThresholdResult is one expectation's verdict.
type ThresholdResult struct {
	Metric    string  `json:"metric"`
	Threshold string  `json:"threshold"`
	Value     float64 `json:"value"`
	OK        bool    `json:"ok"`
	Error     string  `json:"error,omitempty"`
}

// Failed reports whether an expectation does not hold.
func (r *Report) Failed() bool {
	for _, t := range r.Thresholds {
		if !t.OK {
			return true
		}
	}
	return false
}

// sample records the fleet's state for the time series.
func (w *world) sample() {
	ns := w.netStats()
	w.stats.series = append(w.stats.series, Sample{
		At: w.now().Sub(Epoch).Seconds(), Updated: w.stats.updated, Downloading: w.stats.downloading, Bricked: w.stats.bricked,
		Requests: ns.Requests, BytesReceived: ns.BytesReceived, Open: ns.Open,
	})
}

// outcome classifies a device at the end of the run.
func (w *world) outcome(d *device) string {
	st := &d.state
	switch {
	case st.bricked != "":
		return "bricked"
	case !st.updatedAt.IsZero() && st.version == w.stats.target():
		return "updated"
	case st.reverted:
		return "reverted"
	case !st.downloadStart.IsZero():
		return "failed"
	}
	return "still_old"
}

func (o *Outcomes) add(kind string) {
	switch kind {
	case "bricked":
		o.Bricked++
	case "updated":
		o.Updated++
	case "reverted":
		o.Reverted++
	case "failed":
		o.Failed++
	default:
		o.StillOld++
	}
}

func (w *world) report() *Report {
	s, st, ns := w.s, w.stats, w.netStats()
	r := &Report{
		Scenario: s.Name, Description: s.Description, Seed: s.Seed, Mode: s.Mode, Devices: len(w.devices),
		Simulated: st.end.Sub(Epoch).Seconds(), Settled: w.settled(), Steps: w.k.Steps(),
		Gateway: GatewayLoad{Requests: ns.Requests, FromDevices: ns.BytesSent, ToDevices: ns.BytesReceived,
			Handshakes: ns.Connections, ConnectFailures: ns.ConnectFailures, PeakConnections: ns.PeakOpen, CheckIns: st.checkIns},
		Faults: FaultCounts{PowerCutsArmed: st.powerCutsArmed, PowerCuts: st.powerCuts, Outages: st.outages, GatewayRestarts: st.gatewayRestarts,
			Attacks: st.attacks, AttacksRefused: st.attacksRefused, Compromised: st.compromised, ClockSkewed: st.clockSkewed, Partitioned: st.partitioned},
		Series: st.series, Waves: st.waves, Rotations: w.rotationOutcomes(),
	}
	for i, t := range st.publishTimes {
		r.Published = append(r.Published, Published{Version: st.versions[i], At: t.Sub(Epoch).Seconds()})
	}
	index := make(map[*cohort]int, len(w.cohorts))
	reasons := make([]map[string]int, len(w.cohorts))
	for i, c := range w.cohorts {
		index[c] = i
		reasons[i] = map[string]int{}
		r.Cohorts = append(r.Cohorts, CohortOutcomes{Name: c.spec.Name, Board: c.spec.Board, Link: c.spec.Link})
	}
	for _, d := range w.devices {
		i := index[d.cohort]
		co := &r.Cohorts[i]
		co.Devices++
		kind := w.outcome(d)
		co.add(kind)
		r.Outcomes.add(kind)
		if kind == "bricked" {
			reasons[i][d.state.bricked]++
		}
	}
	for i := range r.Cohorts {
		co := &r.Cohorts[i]
		for why, n := range reasons[i] {
			co.BrickReasons = append(co.BrickReasons, Reason{why, n})
		}
		sort.Slice(co.BrickReasons, func(i, j int) bool {
			a, b := co.BrickReasons[i], co.BrickReasons[j]
			return a.Devices > b.Devices || a.Devices == b.Devices && a.Reason < b.Reason
		})
	}
	r.TimeToFraction = fractions(st.timeToUpdate, len(w.devices))
	r.TimeToUpdate = distribution(st.timeToUpdate)
	r.UpdateDuration = distribution(st.updateDuration)
	if w.live != nil {
		r.TimeScale = w.live.opts.TimeScale
	} else if !s.Gateway.Unlimited {
		ss, c := w.net.ServerStats(), capacityOf(s.Gateway)
		g := &r.Gateway
		g.Cores = c.Cores
		g.CPUSeconds = ss.Busy.Seconds()
		if r.Simulated > 0 && c.Cores > 0 {
			g.Utilization = ss.Busy.Seconds() / (r.Simulated * float64(c.Cores))
		}
		if ss.Jobs > 0 {
			g.MeanWaitMs = float64(ss.Waited.Microseconds()) / 1e3 / float64(ss.Jobs)
		}
		g.MaxWaitMs = float64(ss.MaxWait.Microseconds()) / 1e3
	}
	r.Thresholds = w.thresholds(r)
	return r
}

// fractions: confirmations arrive in time order, so the k-th sample is the
// time k devices had updated.
func fractions(times []float64, n int) Fractions {
	at := func(p float64) *float64 {
		k := int(float64(n)*p + 0.999999)
		if k < 1 {
			k = 1
		}
		if k > len(times) {
			return nil
		}
		v := times[k-1]
		return &v
	}
	return Fractions{at(0.5), at(0.9), at(0.99), at(1)}
}

var histogramBounds = []float64{60, 300, 600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600}

func distribution(samples []float64) Distribution {
	d := Distribution{Count: len(samples)}
	if len(samples) == 0 {
		return d
	}
	x := slices.Clone(samples)
	slices.Sort(x)
	q := func(p float64) float64 { return threshold.Percentile(x, p) }
	d.Min, d.Med, d.P90, d.P95, d.P99, d.Max = x[0], q(50), q(90), q(95), q(99), x[len(x)-1]
	d.Bounds = histogramBounds
	d.Histogram = make([]int, len(histogramBounds)+1)
	for _, v := range x {
		d.Histogram[sort.SearchFloat64s(histogramBounds, v)]++
	}
	return d
}

// metrics are the fleet metrics expectations are written over.
func (w *world) metrics(r *Report) map[string]threshold.Metric {
	counter := func(n int64) threshold.Metric { return threshold.Metric{Kind: threshold.Counter, Count: float64(n)} }
	return map[string]threshold.Metric{
		"time_to_update":      {Kind: threshold.Trend, Samples: w.stats.timeToUpdate},
		"update_duration":     {Kind: threshold.Trend, Samples: w.stats.updateDuration},
		"updated":             {Kind: threshold.Rate, Count: float64(r.Outcomes.Updated), Total: float64(r.Devices)},
		"reverted":            counter(int64(r.Outcomes.Reverted)),
		"failed":              counter(int64(r.Outcomes.Failed)),
		"bricked":             counter(int64(r.Outcomes.Bricked)),
		"compromised":         counter(r.Faults.Compromised),
		"attacks_refused":     counter(r.Faults.AttacksRefused),
		"root_rotated":        {Kind: threshold.Rate, Count: float64(w.trusting(w.rootTarget())), Total: float64(r.Devices)},
		"still_old":           counter(int64(r.Outcomes.StillOld)),
		"requests":            counter(r.Gateway.Requests),
		"bytes_sent":          counter(r.Gateway.ToDevices),
		"bytes_received":      counter(r.Gateway.FromDevices),
		"check_ins":           counter(r.Gateway.CheckIns),
		"peak_concurrency":    {Kind: threshold.Gauge, Value: float64(r.Gateway.PeakConnections)},
		"gateway_utilization": {Kind: threshold.Gauge, Value: r.Gateway.Utilization},
		"max_queue_wait":      {Kind: threshold.Gauge, Value: r.Gateway.MaxWaitMs / 1e3},
	}
}

// thresholds checks the scenario's expectations, in metric name order.
func (w *world) thresholds(r *Report) []ThresholdResult {
	metrics := w.metrics(r)
	names := make([]string, 0, len(w.s.Expect))
	for name := range w.s.Expect {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []ThresholdResult
	for _, name := range names {
		m, known := metrics[name]
		for _, expr := range w.s.Expect[name] {
			res := ThresholdResult{Metric: name, Threshold: expr}
			t, err := threshold.Parse(expr)
			if err == nil && !known {
				err = fmt.Errorf("unknown metric %q", name)
			}
			if err == nil {
				res.OK, res.Value, err = t.Check(m)
			}
			if err != nil {
				res.Error = err.Error()
			}
			out = append(out, res)
		}
	}
	return out
}

// JSON is the report as report.json holds it: indented, in field order,
// with nothing escaped that a reader would want to see (k6's "<").
func (r *Report) JSON() ([]byte, error) { return indentedJSON(r) }

// indentedJSON encodes v as the reports are written: indented, and with
// nothing escaped that a reader would want to see.
func indentedJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
