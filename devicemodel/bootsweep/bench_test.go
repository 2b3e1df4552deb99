package bootsweep

import (
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/flashsim"
)

// BenchmarkUpgrade measures one permanent upgrade (a boot that installs the
// sweep's new image) per board and strategy: the unit of a sweep's cost.
func BenchmarkUpgrade(b *testing.B) {
	for _, board := range devicemodel.Boards() {
		for _, s := range board.Strategies() {
			b.Run(board.Name+"/"+s, func(b *testing.B) {
				fx, err := NewFixture(board, s, 1, 0)
				if err != nil {
					b.Fatal(err)
				}
				dev, err := fx.Pending(true)
				if err != nil {
					b.Fatal(err)
				}
				var ops int
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					c := dev.Clone()
					if _, err := fx.boot(c); err != nil {
						b.Fatal(err)
					}
					ops = c.Ops() - dev.Ops()
				}
				b.ReportMetric(float64(ops), "flash-ops/upgrade")
			})
		}
	}
}

// BenchmarkSweepK64fScratch is the most expensive sweep (32 one-sector
// regions through a one-sector scratch), sampled every 8th operation.
func BenchmarkSweepK64fScratch(b *testing.B) {
	board, _ := devicemodel.LookupBoard("k64f")
	for i := 0; i < b.N; i++ {
		r, err := Sweep(board, "swap-scratch", Options{Seed: 1, Stride: 8, Workers: 1, Cuts: []flashsim.CutKind{flashsim.CutDuring}})
		if err != nil || r.Failed != 0 {
			b.Fatalf("%v %+v", err, r)
		}
		b.ReportMetric(float64(r.Tried), "cut-points/op")
	}
}
