package devicetest

import (
	"flag"
	"runtime"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel"
)

var parkedDevices = flag.Int("parked", 1000, "devices in BenchmarkParkedDevices")

// BenchmarkParkedDevices measures the heap a fleet of RT1060 devices holds
// once each has completed one update (v1000 to a confirmed v1001, reported)
// in virtual time and stopped: flash (shared by content), the bootloader's
// and the agent's state, the secure element and certificate, everything
// the Device reaches: the heap that dropping the fleet frees. The goroutine a running device parks in is not
// included; the fleet engine's scheduler decides that cost. -parked sets
// the fleet size; run it with -benchtime 1x:
//
//	go test -run '^$' -bench ParkedDevices -benchtime 1x -parked 10000 ./internal/devicetest/
func BenchmarkParkedDevices(b *testing.B) {
	for range b.N {
		r := NewRig(b, RigOptions{})
		model := r.Model("rt1060", func(c *devicemodel.ModelConfig) { c.Profiles.SelfTest = 10 * time.Millisecond })
		board := model.Config().Board
		v1 := r.Image(board, 1000, 20000)
		r.Upload(v1, board.HardwareID, "devel")
		r.Upload(r.Image(board, 1001, 24000), board.HardwareID, "devel")
		reported := func(e devicemodel.Event) bool {
			return isNote(e, agent.NoteEvent) && e.Note.Err == nil && e.Note.Text == "EcuInstallationCompleted success=true" && e.Note.Version == 1001
		}
		fleet := make([]*devicemodel.Device, *parkedDevices)
		for i := range fleet {
			d := r.Device(model, v1, DeviceOptions{Seed: i + 1})
			if err := r.Run(d, time.Hour, reported); err != nil {
				b.Fatalf("device %d: %v", i, err)
			}
			d.Events = nil // a parked device keeps no log
			fleet[i] = d.Device
		}
		// The gateway grew too (its store, its caches): the devices' share
		// is what dropping them frees.
		with := liveHeap()
		clear(fleet)
		b.ReportMetric(float64(with-liveHeap())/float64(len(fleet)), "B/device")
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
