package fleetrun

import (
	"flag"
	"testing"

	"github.com/fleetsim/fleetsim/scenarios"
)

var (
	benchDevices  = flag.Int("devices", 1000, "fleet size of BenchmarkScenario")
	benchScenario = flag.String("scenario", "quick", "built-in scenario of BenchmarkScenario")
)

// BenchmarkScenario runs a built-in scenario (-scenario, default quick)
// with its first cohort at -devices devices, and reports the wall time per
// device.
//
//	go test -run '^$' -bench Scenario -benchtime 1x ./internal/fleetrun/ -devices 10000
func BenchmarkScenario(b *testing.B) {
	for range b.N {
		s, err := scenarios.LoadBuiltin(*benchScenario)
		if err != nil {
			b.Fatal(err)
		}
		s.Fleet[0].Count = *benchDevices
		r, err := Run(s, Options{Procs: 1}) // as fleetsim run
		if err != nil {
			b.Fatal(err)
		}
		if r.Outcomes.Updated != *benchDevices {
			b.Fatalf("outcomes %+v", r.Outcomes)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(*benchDevices), "µs/device")
	}
}
