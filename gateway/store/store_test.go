package store

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/fleetsim/fleetsim/gateway/rollout"
)

// at is a fixed instant plus s seconds: tests never read the clock.
func at(s int) time.Time { return time.Date(2026, 3, 1, 12, 0, s, 0, time.UTC) }

func openMem(t testing.TB) *Store {
	t.Helper()
	s, err := OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func commit(t testing.TB, b *Batch) {
	t.Helper()
	defer b.Close()
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func sampleDevice(uuid string) Device {
	return Device{
		UUID: uuid, Production: true, PubKeySHA256: strings.Repeat("ab", 32),
		CreatedAt: at(1), LastSeen: at(2), Tag: "main", Target: "zephyr-v7",
		Group: "lab", Deleted: false,
	}
}

func sampleWave() rollout.Wave {
	return rollout.Wave{
		Name: "w7", Tag: "main", Version: 7, Targets: []string{"board-a-v7", "board-b-v7"},
		Policy: rollout.Policy{
			MaxPerMinute: 100,
			Exponential: &rollout.ExponentialRate{
				BaseRatePerMinute: 10, IncrementFactor: 1.5, NotifiedThings: 20,
			},
			Abort: []rollout.AbortCriterion{
				{FailureType: rollout.FailureReverted, ThresholdPercent: 12.5, MinExecuted: 40},
			},
			InProgressTimeout: 90 * time.Minute,
		},
		Status: rollout.WaveAborted, CreatedAt: at(3), EndedAt: at(4), Reason: "too many reverts",
		Scheduled: 50, Released: 30, Rate: 15, Tokens: 0.25, LastTick: at(5),
	}
}

// writeAll stores one record of every kind and returns what a reader must
// find.
type everything struct {
	dev     Device
	events  []Event
	sysinfo map[SystemInfoKind][]byte
	configs map[ConfigScope][]ConfigFile
	fw      Firmware
	wave    rollout.Wave
	member  rollout.Member
	update  rollout.Update
}

func sampleEverything() everything {
	return everything{
		dev: sampleDevice("dev-1"),
		events: []Event{
			{ID: "e1", Type: "EcuDownloadStarted", CorrelationID: "urn:c1", ECU: "ecu-1",
				TargetName: "zephyr-v7", Version: "7", TypeVersion: 1, DeviceTime: at(6), ReceivedAt: at(7)},
			{ID: "e2", Type: "EcuDownloadCompleted", CorrelationID: "urn:c1", Success: ptr(false),
				Details: "hash mismatch", ReceivedAt: at(8)},
			{ID: "e3", Type: "EcuInstallationCompleted", Success: ptr(true), ReceivedAt: at(9)},
		},
		sysinfo: map[SystemInfoKind][]byte{
			SystemInfoHardware: []byte(`{"id":"board-a"}`),
			SystemInfoNetwork:  []byte(`{"local_ipv4":"10.0.0.7"}`),
			SystemInfoConfig:   []byte("not json at all"),
		},
		configs: map[ConfigScope][]ConfigFile{
			{Kind: ScopeFactory}: {{Name: "wifi", Value: "ssid", Unencrypted: true}},
			{Kind: ScopeGroup, Name: "lab"}: {
				{Name: "a", Value: "1", OnChanged: []string{"/usr/bin/reload", "now"}},
				{Name: "b", Value: "enc"},
			},
			{Kind: ScopeDevice, Name: "dev-1"}: {{Name: "c", Value: "3"}},
		},
		fw: Firmware{SHA256: strings.Repeat("0f", 32), Length: 1 << 20, HWID: "board-a",
			Version: 7, UploadedAt: at(10), Target: "board-a-v7"},
		wave: sampleWave(),
		member: rollout.Member{Wave: "w7", UUID: "dev-1", Seq: 3, State: rollout.Downloading,
			CorrelationID: "urn:c1", ScheduledAt: at(11), ReleasedAt: at(12), StartedAt: at(13)},
		update: rollout.Update{UUID: "dev-1", Version: 7, CorrelationID: "urn:c1",
			State: rollout.Reverted, StartedAt: at(13), UpdatedAt: at(14)},
	}
}

func (e everything) write(t testing.TB, s *Store) {
	t.Helper()
	b := s.NewBatch()
	b.PutDevice(e.dev)
	for _, ev := range e.events {
		if !b.PutEvent(e.dev.UUID, ev) {
			t.Fatalf("event %s not added", ev.ID)
		}
	}
	for k, v := range e.sysinfo {
		b.PutSystemInfo(e.dev.UUID, k, v)
	}
	for sc, f := range e.configs {
		b.PutConfig(sc, f, at(20))
	}
	b.PutFirmware(e.fw)
	b.PutWave(e.wave)
	b.PutMember(e.member)
	b.PutUpdate(e.update)
	commit(t, b)
}

func (e everything) check(t testing.TB, s *Store) {
	t.Helper()
	dev, ok, err := s.Device(e.dev.UUID)
	if err != nil || !ok || !reflect.DeepEqual(dev, e.dev) {
		t.Errorf("Device = %+v, %v, %v; want %+v", dev, ok, err, e.dev)
	}
	evs, err := s.Events(e.dev.UUID)
	if err != nil || !reflect.DeepEqual(evs, e.events) {
		t.Errorf("Events = %+v, %v; want %+v", evs, err, e.events)
	}
	for k, want := range e.sysinfo {
		got, ok, err := s.SystemInfo(e.dev.UUID, k)
		if err != nil || !ok || string(got) != string(want) {
			t.Errorf("SystemInfo(%s) = %q, %v, %v; want %q", k, got, ok, err, want)
		}
	}
	for sc, want := range e.configs {
		got, updated, ok, err := s.Config(sc)
		if err != nil || !ok || !reflect.DeepEqual(got, want) || !updated.Equal(at(20)) {
			t.Errorf("Config(%v) = %+v, %v, %v, %v; want %+v", sc, got, updated, ok, err, want)
		}
	}
	fw, ok, err := s.Firmware(e.fw.SHA256)
	if err != nil || !ok || fw != e.fw {
		t.Errorf("Firmware = %+v, %v, %v; want %+v", fw, ok, err, e.fw)
	}
	fws, err := s.FirmwareList()
	if err != nil || !reflect.DeepEqual(fws, []Firmware{e.fw}) {
		t.Errorf("FirmwareList = %+v, %v", fws, err)
	}
	waves, err := s.Waves()
	if err != nil || !reflect.DeepEqual(waves, []rollout.Wave{e.wave}) {
		t.Errorf("Waves = %+v, %v; want %+v", waves, err, e.wave)
	}
	var members []rollout.Member
	if err := s.Members(func(m rollout.Member) bool { members = append(members, m); return true }); err != nil ||
		!reflect.DeepEqual(members, []rollout.Member{e.member}) {
		t.Errorf("Members = %+v, %v; want %+v", members, err, e.member)
	}
	var updates []rollout.Update
	if err := s.Updates(func(u rollout.Update) bool { updates = append(updates, u); return true }); err != nil ||
		!reflect.DeepEqual(updates, []rollout.Update{e.update}) {
		t.Errorf("Updates = %+v, %v; want %+v", updates, err, e.update)
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	s := openMem(t)
	e := sampleEverything()
	e.write(t, s)
	e.check(t, s)
}

func TestMissingRecords(t *testing.T) {
	s := openMem(t)
	if _, ok, err := s.Device("nobody"); ok || err != nil {
		t.Errorf("Device(nobody) = %v, %v", ok, err)
	}
	if evs, err := s.Events("nobody"); len(evs) != 0 || err != nil {
		t.Errorf("Events(nobody) = %v, %v", evs, err)
	}
	if ok, err := s.HasEvent("nobody", "e1"); ok || err != nil {
		t.Errorf("HasEvent = %v, %v", ok, err)
	}
	if _, ok, err := s.SystemInfo("nobody", SystemInfoNetwork); ok || err != nil {
		t.Errorf("SystemInfo = %v, %v", ok, err)
	}
	if _, _, ok, err := s.Config(ConfigScope{Kind: ScopeFactory}); ok || err != nil {
		t.Errorf("Config = %v, %v", ok, err)
	}
	if _, ok, err := s.Firmware(strings.Repeat("00", 32)); ok || err != nil {
		t.Errorf("Firmware = %v, %v", ok, err)
	}
	if w, err := s.Waves(); len(w) != 0 || err != nil {
		t.Errorf("Waves = %v, %v", w, err)
	}
}

func TestOverwriteAndDeleteConfig(t *testing.T) {
	s := openMem(t)
	d := sampleDevice("dev-1")
	b := s.NewBatch()
	b.PutDevice(d)
	b.PutConfig(ConfigScope{Kind: ScopeGroup, Name: "lab"}, []ConfigFile{{Name: "a", Value: "1"}}, at(1))
	b.PutConfig(ConfigScope{Kind: ScopeGroup, Name: "lab2"}, []ConfigFile{{Name: "z", Value: "9"}}, at(1))
	commit(t, b)

	d.LastSeen, d.Deleted = at(30), true
	b = s.NewBatch()
	b.PutDevice(d)
	b.DeleteConfig(ConfigScope{Kind: ScopeGroup, Name: "lab"})
	commit(t, b)

	got, _, _ := s.Device("dev-1")
	if !reflect.DeepEqual(got, d) {
		t.Errorf("Device after overwrite = %+v, want %+v", got, d)
	}
	if _, _, ok, err := s.Config(ConfigScope{Kind: ScopeGroup, Name: "lab"}); ok || err != nil {
		t.Errorf("deleted config still there: %v, %v", ok, err)
	}
	if f, _, ok, _ := s.Config(ConfigScope{Kind: ScopeGroup, Name: "lab2"}); !ok || f[0].Name != "z" {
		t.Errorf("other group's config = %v, %v", f, ok)
	}
}

func TestIterationOrder(t *testing.T) {
	s := openMem(t)
	// Inserted out of order, and with UUIDs that extend each other, so a
	// separator mistake or map order would show.
	uuids := []string{"b", "a/b", "a", "a-b", "ab", "0", "B"}
	b := s.NewBatch()
	for _, u := range uuids {
		b.PutDevice(sampleDevice(u))
		b.PutUpdate(rollout.Update{UUID: u, Version: 1, State: rollout.Pending})
	}
	for _, m := range []rollout.Member{
		{Wave: "w2", UUID: "a"}, {Wave: "w1", UUID: "b"}, {Wave: "w1", UUID: "a"},
		{Wave: "w", UUID: "z"}, {Wave: "w1/x", UUID: "a"},
	} {
		b.PutMember(m)
	}
	for _, n := range []string{"w2", "w10", "w1"} {
		w := sampleWave()
		w.Name = n
		b.PutWave(w)
	}
	commit(t, b)

	want := slices.Clone(uuids)
	slices.Sort(want)
	var got []string
	if err := s.Devices(func(d Device) bool { got = append(got, d.UUID); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Devices order = %q, want %q", got, want)
	}
	got = nil
	if err := s.Updates(func(u rollout.Update) bool { got = append(got, u.UUID); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Updates order = %q, want %q", got, want)
	}
	got = nil
	if err := s.Members(func(m rollout.Member) bool { got = append(got, m.Wave+":"+m.UUID); return true }); err != nil {
		t.Fatal(err)
	}
	if w := []string{"w:z", "w1:a", "w1:b", "w1/x:a", "w2:a"}; !slices.Equal(got, w) {
		t.Errorf("Members order = %q, want %q", got, w)
	}
	waves, err := s.Waves()
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, w := range waves {
		got = append(got, w.Name)
	}
	if w := []string{"w1", "w10", "w2"}; !slices.Equal(got, w) {
		t.Errorf("Waves order = %q, want %q", got, w)
	}

	// Stopping early.
	n := 0
	if err := s.Devices(func(Device) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Errorf("Devices stopped after %d (err %v), want 3", n, err)
	}
	// A device's events never include those of a device whose UUID extends
	// its own.
	b = s.NewBatch()
	b.PutEvent("a", Event{ID: "x", Type: "t"})
	b.PutEvent("a/b", Event{ID: "y", Type: "t"})
	b.PutEvent("a-b", Event{ID: "z", Type: "t"})
	commit(t, b)
	if evs, _ := s.Events("a"); len(evs) != 1 || evs[0].ID != "x" {
		t.Errorf("Events(a) = %+v", evs)
	}
}

func eventIDs(t testing.TB, s *Store, uuid string) []string {
	t.Helper()
	evs, err := s.Events(uuid)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	return ids
}

func TestEventDedup(t *testing.T) {
	s := openMem(t)
	b := s.NewBatch()
	if !b.PutEvent("d1", Event{ID: "e1", Type: "first"}) {
		t.Fatal("first e1 not added")
	}
	if b.PutEvent("d1", Event{ID: "e1", Type: "again in the batch"}) {
		t.Error("e1 added twice in one batch")
	}
	if !b.PutEvent("d2", Event{ID: "e1", Type: "other device"}) {
		t.Error("same id on another device is not a duplicate")
	}
	if !b.PutEvent("d1", Event{ID: "e2", Type: "second"}) {
		t.Error("e2 not added")
	}
	commit(t, b)

	b = s.NewBatch()
	if b.PutEvent("d1", Event{ID: "e1", Type: "retransmitted"}) {
		t.Error("e1 added again in a later batch")
	}
	if !b.PutEvent("d1", Event{ID: "e0", Type: "late"}) {
		t.Error("e0 not added")
	}
	commit(t, b)

	if ids := eventIDs(t, s, "d1"); !slices.Equal(ids, []string{"e1", "e2", "e0"}) {
		t.Errorf("d1 events = %q, want arrival order e1 e2 e0", ids)
	}
	evs, _ := s.Events("d1")
	if evs[0].Type != "first" {
		t.Errorf("a duplicate replaced the stored event: %+v", evs[0])
	}
	if ids := eventIDs(t, s, "d2"); !slices.Equal(ids, []string{"e1"}) {
		t.Errorf("d2 events = %q", ids)
	}
	for _, c := range []struct {
		uuid, id string
		want     bool
	}{{"d1", "e1", true}, {"d1", "e0", true}, {"d2", "e1", true}, {"d2", "e2", false}, {"d3", "e1", false}} {
		if got, err := s.HasEvent(c.uuid, c.id); got != c.want || err != nil {
			t.Errorf("HasEvent(%s, %s) = %v, %v; want %v", c.uuid, c.id, got, err, c.want)
		}
	}
}

// Two batches open at once with the same new event: both report it added,
// it is stored once.
func TestConcurrentBatchesSameEvent(t *testing.T) {
	s := openMem(t)
	b1, b2 := s.NewBatch(), s.NewBatch()
	if !b1.PutEvent("d1", Event{ID: "e1", Type: "one"}) || !b2.PutEvent("d1", Event{ID: "e1", Type: "two"}) {
		t.Fatal("not added")
	}
	b2.PutEvent("d1", Event{ID: "e2", Type: "two"})
	commit(t, b1)
	commit(t, b2)
	if ids := eventIDs(t, s, "d1"); !slices.Equal(ids, []string{"e1", "e2"}) {
		t.Errorf("events = %q, want e1 e2", ids)
	}
}

// Many goroutines committing events at once, with retransmissions racing
// the originals: each event is stored exactly once.
func TestConcurrentCommits(t *testing.T) {
	s := openMem(t)
	const workers, perWorker = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				// Workers w and w^1 send the same events for one device.
				uuid := fmt.Sprintf("dev-%d", w/2)
				b := s.NewBatch()
				b.PutEvent(uuid, Event{ID: fmt.Sprintf("e%03d", i), Type: "t"})
				b.PutDevice(sampleDevice(uuid))
				err := b.Commit(true)
				b.Close()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for d := range workers / 2 {
		ids := eventIDs(t, s, fmt.Sprintf("dev-%d", d))
		distinct := slices.Clone(ids)
		slices.Sort(distinct)
		distinct = slices.Compact(distinct)
		if len(distinct) != perWorker || len(ids) != perWorker {
			t.Errorf("dev-%d has %d events (%d distinct), want %d", d, len(ids), len(distinct), perWorker)
		}
	}
}

func TestBatchAtomicity(t *testing.T) {
	s := openMem(t)
	e := sampleEverything()

	// Closed without Commit: nothing.
	b := s.NewBatch()
	b.PutDevice(e.dev)
	b.PutEvent("dev-1", e.events[0])
	b.PutWave(e.wave)
	b.Close()
	if err := b.Commit(true); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
	// Never committed: invisible while open.
	open := s.NewBatch()
	open.PutDevice(e.dev)
	open.PutEvent("dev-1", e.events[0])
	assertEmpty(t, s, "after an uncommitted batch")
	open.Close()

	// A bad write fails the whole batch, including the good writes.
	b = s.NewBatch()
	b.PutDevice(e.dev)
	b.PutEvent("dev-1", e.events[0])
	b.PutMember(rollout.Member{Wave: "", UUID: "dev-1"})
	b.PutWave(e.wave) // ignored after the error
	if err := b.Err(); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Err = %v, want ErrInvalidKey", err)
	}
	if err := b.Commit(true); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Commit = %v, want ErrInvalidKey", err)
	}
	b.Close()
	assertEmpty(t, s, "after a failed batch")

	// A value JSON cannot encode is an error too, not a panic.
	b = s.NewBatch()
	w := e.wave
	w.Rate = math.NaN()
	b.PutDevice(e.dev)
	b.PutWave(w)
	if err := b.Commit(false); err == nil {
		t.Error("NaN rate committed")
	}
	b.Close()
	assertEmpty(t, s, "after an unencodable wave")

	// Commit twice.
	b = s.NewBatch()
	b.PutDevice(e.dev)
	commit(t, b)
	if err := b.Commit(true); !errors.Is(err, ErrClosed) {
		t.Errorf("second Commit = %v, want ErrClosed", err)
	}
	b.Close()
}

func assertEmpty(t *testing.T, s *Store, when string) {
	t.Helper()
	n := 0
	_ = s.Devices(func(Device) bool { n++; return true })
	evs, _ := s.Events("dev-1")
	waves, _ := s.Waves()
	if n+len(evs)+len(waves) != 0 {
		t.Errorf("%s: %d devices, %d events, %d waves stored, want none", when, n, len(evs), len(waves))
	}
	if ok, _ := s.HasEvent("dev-1", "e1"); ok {
		t.Errorf("%s: event id indexed", when)
	}
}

func TestInvalidKeys(t *testing.T) {
	s := openMem(t)
	long := strings.Repeat("x", maxPart+1)
	writes := map[string]func(*Batch){
		"empty device":      func(b *Batch) { b.PutDevice(Device{}) },
		"NUL device":        func(b *Batch) { b.PutDevice(Device{UUID: "a\x00b"}) },
		"long device":       func(b *Batch) { b.PutDevice(Device{UUID: long}) },
		"empty event id":    func(b *Batch) { b.PutEvent("d", Event{}) },
		"NUL event id":      func(b *Batch) { b.PutEvent("d", Event{ID: "a\x00"}) },
		"event device":      func(b *Batch) { b.PutEvent("", Event{ID: "e"}) },
		"sysinfo kind":      func(b *Batch) { b.PutSystemInfo("d", "bios", nil) },
		"sysinfo device":    func(b *Batch) { b.PutSystemInfo("", SystemInfoNetwork, nil) },
		"factory with name": func(b *Batch) { b.PutConfig(ConfigScope{Kind: ScopeFactory, Name: "x"}, nil, at(0)) },
		"group no name":     func(b *Batch) { b.PutConfig(ConfigScope{Kind: ScopeGroup}, nil, at(0)) },
		"scope kind":        func(b *Batch) { b.DeleteConfig(ConfigScope{Kind: "tag", Name: "x"}) },
		"firmware":          func(b *Batch) { b.PutFirmware(Firmware{}) },
		"wave":              func(b *Batch) { b.PutWave(rollout.Wave{}) },
		"member device":     func(b *Batch) { b.PutMember(rollout.Member{Wave: "w"}) },
		"update":            func(b *Batch) { b.PutUpdate(rollout.Update{}) },
	}
	for name, write := range writes {
		b := s.NewBatch()
		write(b)
		if err := b.Commit(true); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: Commit = %v, want ErrInvalidKey", name, err)
		}
		b.Close()
	}
	if _, _, err := s.Device(""); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Device(\"\") = %v", err)
	}
	if _, err := s.Events("a\x00"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Events(NUL) = %v", err)
	}
	if _, err := s.HasEvent("d", ""); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("HasEvent(empty id) = %v", err)
	}
	if _, _, err := s.SystemInfo("d", "bios"); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("SystemInfo(bios) = %v", err)
	}
	if _, _, _, err := s.Config(ConfigScope{Kind: "x"}); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Config(x) = %v", err)
	}
	if _, _, err := s.Firmware(long); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Firmware(long) = %v", err)
	}
}

func TestCorruptRecords(t *testing.T) {
	cases := []struct {
		key, val string
		read     func(*Store) error
	}{
		{"dev/d1", "{not json", func(s *Store) error { _, _, err := s.Device("d1"); return err }},
		{"dev/d1", `{"uuid":"d2"}`, func(s *Store) error { _, _, err := s.Device("d1"); return err }},
		{"dev/d1", `null`, func(s *Store) error { return s.Devices(func(Device) bool { return true }) }},
		{"ev/d1\x00\x00\x00\x00\x00\x00\x00\x00\x01", `{"type":"no id"}`, func(s *Store) error { _, err := s.Events("d1"); return err }},
		{"cfg/factory\x00", `[]`, func(s *Store) error { _, _, _, err := s.Config(ConfigScope{Kind: ScopeFactory}); return err }},
		{"fw/abc", `{"sha256":"abc","length":"big"}`, func(s *Store) error { _, err := s.FirmwareList(); return err }},
		{"wave/w1", `{"name":"w1","version":-1}`, func(s *Store) error { _, err := s.Waves(); return err }},
		{"member/w1\x00d1", `{"wave":"w1","uuid":"d2"}`, func(s *Store) error { return s.Members(func(rollout.Member) bool { return true }) }},
		{"update/d1", `{"uuid":"d1","state":7}`, func(s *Store) error { return s.Updates(func(rollout.Update) bool { return true }) }},
	}
	for _, c := range cases {
		s := openMem(t)
		if err := s.db.Set([]byte(c.key), []byte(c.val), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		err := c.read(s)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.key)) {
			t.Errorf("%q = %q: read error %v, want ErrCorrupt naming the key", c.key, c.val, err)
		}
	}
}

func TestClosed(t *testing.T) {
	s, err := OpenMem()
	if err != nil {
		t.Fatal(err)
	}
	open := s.NewBatch()
	open.PutDevice(sampleDevice("d1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
	if err := open.Commit(true); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit of a batch opened before Close = %v", err)
	}
	open.Close()
	b := s.NewBatch()
	b.PutDevice(sampleDevice("d1"))
	if b.PutEvent("d1", Event{ID: "e"}) {
		t.Error("PutEvent on a closed store reported added")
	}
	if err := b.Commit(true); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close = %v", err)
	}
	b.Close()
	checks := map[string]error{}
	_, _, checks["Device"] = s.Device("d1")
	checks["Devices"] = s.Devices(func(Device) bool { return true })
	_, checks["HasEvent"] = s.HasEvent("d1", "e")
	_, checks["Events"] = s.Events("d1")
	_, _, checks["SystemInfo"] = s.SystemInfo("d1", SystemInfoHardware)
	_, _, _, checks["Config"] = s.Config(ConfigScope{Kind: ScopeFactory})
	_, _, checks["Firmware"] = s.Firmware("ab")
	_, checks["FirmwareList"] = s.FirmwareList()
	_, checks["Waves"] = s.Waves()
	checks["Members"] = s.Members(func(rollout.Member) bool { return true })
	checks["Updates"] = s.Updates(func(rollout.Update) bool { return true })
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if m := s.Metrics(); !strings.Contains(m, "closed") {
		t.Errorf("Metrics after Close = %q", m)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEverything()
	e.write(t, s)
	if m := s.Metrics(); !strings.Contains(m, "WAL") {
		t.Errorf("Metrics does not look like pebble's table: %q", m)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, Options{CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e.check(t, s)
	// Events added after a restart come after the earlier ones, and old ids
	// are still duplicates.
	b := s.NewBatch()
	if b.PutEvent("dev-1", Event{ID: "e1"}) {
		t.Error("e1 added again after reopen")
	}
	b.PutEvent("dev-1", Event{ID: "e0", Type: "after restart"})
	commit(t, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids := eventIDs(t, s, "dev-1"); !slices.Equal(ids, []string{"e1", "e2", "e3", "e0"}) {
		t.Errorf("events after reopen = %q", ids)
	}
}

func TestOpenRefusesOtherDatabases(t *testing.T) {
	// Another program's pebble database.
	foreign := t.TempDir()
	db, err := pebble.Open(foreign, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("user/1"), []byte("x"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(foreign, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("foreign pebble DB: %v, want ErrCorrupt", err)
	}

	// A later store format.
	later := t.TempDir()
	s, err := Open(later, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Set([]byte(keyFormat), []byte("fleetsim-gateway-store/2"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(later, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("later format: %v, want ErrCorrupt", err)
	}

	// A LevelDB/RocksDB-style directory and an unknown pebble format.
	for name, files := range map[string]map[string]string{
		"leveldb":        {"CURRENT": "MANIFEST-000001\n", "MANIFEST-000001": "leveldb manifest"},
		"pebble v999":    {"marker.format-version.000001.999": ""},
		"bad manifest":   {"marker.manifest.000001.MANIFEST-000001": "", "MANIFEST-000001": strings.Repeat("z", 64)},
		"bad seq record": nil,
	} {
		dir := t.TempDir()
		if files == nil {
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			_ = s.db.Set([]byte(keySeq), []byte("short"), pebble.Sync)
			s.Close()
		}
		for f, c := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}

	// An empty directory, or one holding unrelated files, becomes a store.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(filepath.Join(dir, "new", "sub"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// The event sequence survives reopen without reusing numbers, across more
// than one persisted ceiling.
func TestEventSeqCeiling(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for round := range 3 {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		before := s.next.Load()
		for i := range 3 {
			id := fmt.Sprintf("r%d-%d", round, i)
			want = append(want, id)
			b := s.NewBatch()
			b.PutEvent("d1", Event{ID: id})
			commit(t, b)
		}
		if c := s.ceiling.Load(); c <= before || c > before+seqBlock+3 {
			t.Errorf("round %d: ceiling %d after starting at %d", round, c, before)
		}
		s.Close()
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ids := eventIDs(t, s, "d1"); !slices.Equal(ids, want) {
		t.Errorf("events = %q, want %q", ids, want)
	}
}
