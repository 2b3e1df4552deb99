package fleetrun

import (
	"flag"
	"testing"

	"github.com/fleetsim/fleetsim/scenarios"
)

var benchDevices = flag.Int("devices", 1000, "fleet size of BenchmarkQuick")

// BenchmarkQuick runs the built-in quick scenario at -devices devices and
// reports the wall time per simulated device and the kernel's steps.
//
//	go test -run '^$' -bench Quick -benchtime 1x ./internal/fleetrun/ -devices 10000
func BenchmarkQuick(b *testing.B) {
	for range b.N {
		s, err := scenarios.LoadBuiltin("quick")
		if err != nil {
			b.Fatal(err)
		}
		s.Fleet[0].Count = *benchDevices
		r, err := Run(s, Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if r.Outcomes.Updated != *benchDevices {
			b.Fatalf("outcomes %+v", r.Outcomes)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(*benchDevices), "µs/device")
	}
}
