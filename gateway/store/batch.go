package store

import (
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/fleetsim/fleetsim/gateway/rollout"
)

// Batch groups writes into one atomic commit: after a crash either all of a
// committed batch is there or none of it, and an uncommitted or closed batch
// writes nothing. A Batch is not safe for concurrent use.
//
// A write that cannot form a record (ErrInvalidKey, a value JSON cannot
// encode such as a NaN rate) is kept as the batch's error: later writes are
// ignored and Commit returns it without writing anything. Err reports it
// early.
type Batch struct {
	s    *Store
	pb   *pebble.Batch
	err  error
	done bool // Commit or Close was called

	// Events wait for Commit, which drops those a concurrent batch stored
	// first and numbers the rest.
	events []batchEvent
	ids    map[string]struct{} // event id keys in events

	// configs lists the batch's config writes in order, for the store's
	// count of device-scope records and its config generation.
	configs []configWrite
}

type configWrite struct {
	key    []byte
	device bool // a device scope
	put    bool // PutConfig, else DeleteConfig
}

type batchEvent struct {
	uuid  string
	idKey []byte
	value []byte
}

// NewBatch starts a batch. On a closed store the batch's Commit returns
// ErrClosed.
func (s *Store) NewBatch() *Batch {
	b := &Batch{s: s}
	if err := s.enter(); err != nil {
		b.err = err
		return b
	}
	defer s.leave()
	b.pb = s.db.NewBatch()
	return b
}

// Err returns the first write error of the batch, or ErrClosed after Commit
// or Close.
func (b *Batch) Err() error {
	if b.err != nil {
		return b.err
	}
	if b.done {
		return ErrClosed
	}
	return nil
}

func (b *Batch) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// writable reports whether the batch still takes writes.
func (b *Batch) writable() bool { return b.err == nil && !b.done }

// set encodes v and sets it under k, after checking the key parts.
func (b *Batch) set(k []byte, v any, parts ...string) {
	if !b.writable() {
		return
	}
	for i := 0; i+1 < len(parts); i += 2 {
		if err := checkPart(parts[i], parts[i+1]); err != nil {
			b.fail(err)
			return
		}
	}
	val, err := encode(v)
	if err != nil {
		b.fail(err)
		return
	}
	if err := b.pb.Set(k, val, nil); err != nil {
		b.fail(fmt.Errorf("store: batch set %q: %w", k, err))
	}
}

// PutDevice writes the device record, replacing the stored one.
func (b *Batch) PutDevice(d Device) {
	b.set(deviceKey(d.UUID), d, "device uuid", d.UUID)
}

// PutEvent adds one device event and reports whether it was added: an event
// whose id the device already has stored, or that is earlier in this batch,
// is a duplicate (a device retransmits events it got no answer for) and
// PutEvent does nothing. Both uuid and e.ID must be usable keys.
//
// Two batches open at the same time may both add the same new event; the
// first to commit stores it and the other's Commit drops its copy, so the
// event is stored once and, for a durable commit, is durable when Commit
// returns.
func (b *Batch) PutEvent(uuid string, e Event) bool {
	if !b.writable() {
		return false
	}
	if err := checkPart("device uuid", uuid); err != nil {
		b.fail(err)
		return false
	}
	if err := checkPart("event id", e.ID); err != nil {
		b.fail(err)
		return false
	}
	idKey := eventIDKey(uuid, e.ID)
	if _, dup := b.ids[string(idKey)]; dup {
		return false
	}
	stored, err := b.s.HasEvent(uuid, e.ID)
	if err != nil {
		b.fail(err)
		return false
	}
	if stored {
		return false
	}
	val, err := encode(e)
	if err != nil {
		b.fail(err)
		return false
	}
	if b.ids == nil {
		b.ids = make(map[string]struct{})
	}
	b.ids[string(idKey)] = struct{}{}
	b.events = append(b.events, batchEvent{uuid: uuid, idKey: idKey, value: val})
	return true
}

// PutSystemInfo writes the device's document of kind k as sent, replacing
// the stored one.
func (b *Batch) PutSystemInfo(uuid string, k SystemInfoKind, data []byte) {
	if !b.writable() {
		return
	}
	if err := checkPart("device uuid", uuid); err != nil {
		b.fail(err)
		return
	}
	if !k.valid() {
		b.fail(fmt.Errorf("%w: system info kind %q", ErrInvalidKey, k))
		return
	}
	if err := b.pb.Set(sysInfoKey(uuid, k), data, nil); err != nil {
		b.fail(fmt.Errorf("store: batch set system info: %w", err))
	}
}

// PutConfig replaces the config files of scope.
func (b *Batch) PutConfig(scope ConfigScope, files []ConfigFile, updated time.Time) {
	if !b.writable() {
		return
	}
	if err := scope.check(); err != nil {
		b.fail(err)
		return
	}
	k := configKey(scope)
	b.set(k, configRecord{Files: files, Updated: updated})
	if b.writable() {
		b.configs = append(b.configs, configWrite{key: k, device: scope.Kind == ScopeDevice, put: true})
	}
}

// DeleteConfig removes the config files of scope.
func (b *Batch) DeleteConfig(scope ConfigScope) {
	if !b.writable() {
		return
	}
	if err := scope.check(); err != nil {
		b.fail(err)
		return
	}
	k := configKey(scope)
	if err := b.pb.Delete(k, nil); err != nil {
		b.fail(fmt.Errorf("store: batch delete config: %w", err))
		return
	}
	b.configs = append(b.configs, configWrite{key: k, device: scope.Kind == ScopeDevice})
}

// PutFirmware writes the firmware index entry f.SHA256.
func (b *Batch) PutFirmware(f Firmware) {
	b.set(firmwareKey(f.SHA256), f, "firmware sha256", f.SHA256)
}

// PutWave writes the wave record w.Name.
func (b *Batch) PutWave(w rollout.Wave) {
	b.set(waveKey(w.Name), w, "wave name", w.Name)
}

// PutMember writes the member record of device m.UUID in wave m.Wave.
func (b *Batch) PutMember(m rollout.Member) {
	b.set(memberKey(m.Wave, m.UUID), m, "wave name", m.Wave, "device uuid", m.UUID)
}

// PutUpdate writes device u.UUID's latest update, replacing the stored one.
func (b *Batch) PutUpdate(u rollout.Update) {
	b.set(updateKey(u.UUID), u, "device uuid", u.UUID)
}

// Commit writes the batch atomically. With durable set on a store opened
// with Options.Sync, the write-ahead log is fsynced before Commit returns,
// and so is everything committed before it (a durable commit of an empty
// batch is a sync barrier); otherwise nothing is synced.
//
// Commit returns the batch's write error if it has one (see Batch), ErrClosed
// if the batch was already committed or closed or the store is closed, and
// pebble's errors wrapped. Whatever it returns, the batch is finished: call
// Close to release it.
func (b *Batch) Commit(durable bool) (err error) {
	if b.done {
		return ErrClosed
	}
	b.done = true
	if b.err != nil {
		return b.err
	}
	s := b.s
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if len(b.configs) > 0 {
		s.configMu.Lock()
		var delta int64
		delta, err = s.deviceConfigDelta(b.configs)
		defer func() {
			if err == nil {
				s.deviceConfigs.Add(delta)
			} else {
				s.recountDeviceConfigs()
			}
			// Whether or not the commit went through: a reader that
			// kept a config record rereads it, which is never wrong.
			s.configGen.Add(1)
			s.configMu.Unlock()
		}()
		if err != nil {
			return err
		}
	}
	if len(b.events) > 0 {
		defer s.claim(b.events)()
		for _, e := range b.events {
			_, stored, err := s.get(e.idKey)
			if err != nil {
				return err
			}
			if stored {
				continue // a concurrent batch committed it first
			}
			n, err := s.nextSeq()
			if err != nil {
				return err
			}
			if err := b.pb.Set(eventKey(e.uuid, n), e.value, nil); err != nil {
				return fmt.Errorf("store: batch set event: %w", err)
			}
			if err := b.pb.Set(e.idKey, encodeSeq(n), nil); err != nil {
				return fmt.Errorf("store: batch set event id: %w", err)
			}
		}
	}
	sync := durable && s.sync
	if b.pb.Empty() {
		if sync {
			// pebble skips an empty batch, sync included; the events
			// dropped as duplicates may come from a commit that was not
			// synced, and the caller is about to acknowledge them.
			if err := s.db.LogData(nil, pebble.Sync); err != nil {
				return fmt.Errorf("store: sync: %w", err)
			}
		}
		return nil
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := b.pb.Commit(wo); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// deviceConfigDelta is how many device-scope config records the writes
// add (or, negative, remove). The caller has entered and holds configMu, so
// no other commit changes config records meanwhile.
func (s *Store) deviceConfigDelta(ws []configWrite) (int64, error) {
	final := map[string]bool{} // device-scope key -> a record after the batch
	for _, w := range ws {
		if w.device {
			final[string(w.key)] = w.put
		}
	}
	var delta int64
	for k, after := range final {
		_, before, err := s.get([]byte(k))
		if err != nil {
			return 0, err
		}
		switch {
		case after && !before:
			delta++
		case !after && before:
			delta--
		}
	}
	return delta, nil
}

// recountDeviceConfigs counts the device-scope config records again after
// a commit that failed, which may have written more or less than nothing.
// If they cannot be counted, Config looks every device scope up. The caller
// has entered and holds configMu.
func (s *Store) recountDeviceConfigs() {
	n, err := s.countKeys(configDevicePrefix())
	if err != nil {
		n = math.MaxInt32
	}
	s.deviceConfigs.Store(int64(n))
}

// Close releases the batch; a batch closed before Commit writes nothing.
// Close may be called more than once.
func (b *Batch) Close() {
	b.done = true
	if b.pb != nil {
		_ = b.pb.Close()
		b.pb = nil
	}
}

// claim reserves the event id keys of evs for one committing batch, waiting
// while another batch holds any of them, and returns the release. A batch
// waits holding no claim and holders never wait, so claims cannot deadlock.
// The caller has entered.
func (s *Store) claim(evs []batchEvent) (release func()) {
	done := make(chan struct{})
	s.mu.Lock()
	for {
		var busy chan struct{}
		for _, e := range evs {
			if ch, ok := s.inflight[string(e.idKey)]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			break
		}
		s.mu.Unlock()
		<-busy
		s.mu.Lock()
	}
	for _, e := range evs {
		s.inflight[string(e.idKey)] = done
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		for _, e := range evs {
			delete(s.inflight, string(e.idKey))
		}
		s.mu.Unlock()
		close(done)
	}
}
