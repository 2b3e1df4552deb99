package store

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func openDisk(b *testing.B, sync bool) *Store {
	b.Helper()
	s, err := Open(b.TempDir(), Options{Sync: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkCommitDurableEvent is the gateway acknowledging one device event:
// one batch with one event, committed with fsync, from 1 and 64 goroutines
// (concurrent commits share fsyncs through pebble's group commit).
func BenchmarkCommitDurableEvent(b *testing.B) {
	for _, goroutines := range []int{1, 64} {
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			s := openDisk(b, true)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					uuid := fmt.Sprintf("dev-%d", w)
					for {
						i := int(next.Add(1))
						if i > b.N {
							return
						}
						batch := s.NewBatch()
						batch.PutEvent(uuid, Event{ID: fmt.Sprintf("e%d", i), Type: "EcuDownloadStarted", ReceivedAt: at(i)})
						err := batch.Commit(true)
						batch.Close()
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkPutDeviceNoSync is a check-in's device update without fsync.
func BenchmarkPutDeviceNoSync(b *testing.B) {
	s := openDisk(b, true)
	d := sampleDevice("")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.UUID = fmt.Sprintf("dev-%07d", i%100_000)
		d.LastSeen = at(i)
		batch := s.NewBatch()
		batch.PutDevice(d)
		if err := batch.Commit(false); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}

// BenchmarkDevice is the lookup every device request starts with.
func BenchmarkDevice(b *testing.B) {
	s := openDisk(b, false)
	const n = 10_000
	batch := s.NewBatch()
	for i := range n {
		batch.PutDevice(sampleDevice(fmt.Sprintf("dev-%07d", i)))
	}
	if err := batch.Commit(false); err != nil {
		b.Fatal(err)
	}
	batch.Close()
	uuids := make([]string, n)
	for i := range uuids {
		uuids[i] = fmt.Sprintf("dev-%07d", (i*7919)%n)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, ok, err := s.Device(uuids[i%n]); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
