package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fleetsim/fleetsim/gateway/rollout"
)

// Errors of the store. Pebble's own errors come wrapped, with the operation.
var (
	// ErrCorrupt: a stored record does not decode (the error names its key),
	// or the directory holds a database that is not a fleetsim gateway store
	// of this format.
	ErrCorrupt = errors.New("store: corrupt")
	// ErrClosed: the store, or the batch, was closed.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidKey: a UUID, event id, name or scope cannot form a key
	// (empty, over 1024 bytes, a NUL byte, an unknown kind).
	ErrInvalidKey = errors.New("store: invalid key")
)

// Options tune a store.
type Options struct {
	// FS is the file system the store lives on; nil is the operating
	// system's (vfs.Default). On vfs.NewMem the store touches no disk and
	// lives as long as the FS value: Close and Open on the same value find
	// it again.
	FS vfs.FS
	// CacheSize is pebble's block cache in bytes; 0 selects 32 MiB.
	CacheSize int64
	// Sync makes durable commits fsync the write-ahead log before they
	// return. With Sync false no commit is fsynced, and even a killed
	// process may lose its last commits: for tests and the simulator, where
	// neither need be survived.
	Sync bool
}

const defaultCacheSize = 32 << 20

// seqBlock is how many event sequence numbers one persisted ceiling covers
// (see Store.nextSeq).
const seqBlock = 1 << 16

// Store is the gateway's durable state. Its methods are safe for concurrent
// use; reads see every batch whose Commit returned.
//
// Every read fails with ErrInvalidKey for a UUID, id or name that cannot
// form a key, ErrCorrupt (naming the key) for a stored record that does not
// decode, ErrClosed after Close, or a wrapped pebble error.
type Store struct {
	db   *pebble.DB
	sync bool

	mu     sync.Mutex
	idle   sync.Cond // signalled when active drops to 0 after closed is set
	closed bool
	active int // operations using db
	// inflight holds the event id keys of batches between claiming them and
	// finishing their commit, so that two concurrent batches carrying the
	// same new event store it once.
	inflight map[string]chan struct{}

	// Event sequence numbers: next is the next one to hand out; every number
	// below ceiling is covered by the persisted meta/seq record.
	next    atomic.Uint64
	ceiling atomic.Uint64
	seqMu   sync.Mutex // serialises raising the ceiling

	// Config records. configMu serialises the commits that write them, so
	// that deviceConfigs stays exact; configGen counts those commits (see
	// ConfigGeneration).
	configMu  sync.Mutex
	configGen atomic.Uint64
	// deviceConfigs is the number of device-scope config records. Devices
	// check in far more often than an operator gives one its own files,
	// and while there are none Config answers a device scope without a
	// lookup.
	deviceConfigs atomic.Int64
}

// Open opens the store in dir on o.FS, creating it if missing.
//
// It returns an error wrapping ErrCorrupt when dir holds a pebble database
// that pebble finds corrupt, or one that is not a fleetsim gateway store of
// this format (another program's database, or a later store format).
func Open(dir string, o Options) (*Store, error) {
	size := o.CacheSize
	if size <= 0 {
		size = defaultCacheSize
	}
	fsys := o.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	s, err := open(dir, fsys, size, o.Sync)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	return s, nil
}

// OpenMem opens an empty store in memory (pebble on vfs.NewMem), for tests
// and the simulator's virtual mode. Nothing is synced; Close discards it.
func OpenMem() (*Store, error) {
	s, err := open("", vfs.NewMem(), 8<<20, false)
	if err != nil {
		return nil, fmt.Errorf("store: open in memory: %w", err)
	}
	return s, nil
}

func open(dir string, fs vfs.FS, cacheSize int64, sync bool) (*Store, error) {
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		Logger:             quietLogger{},
		FormatMajorVersion: pebble.FormatNewest,
	})
	if err != nil {
		// pebble has no sentinel for a database in a format it cannot
		// read (a LevelDB/RocksDB directory, an older or newer pebble); its
		// message is stable in the pinned version and a test holds it.
		if pebble.IsCorruptionError(err) || strings.Contains(err.Error(), "format major version") {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return nil, err
	}
	s := &Store{db: db, sync: sync, inflight: make(map[string]chan struct{})}
	s.idle.L = &s.mu
	if err := s.checkFormat(); err != nil {
		_ = db.Close()
		return nil, err
	}
	v, ok, err := s.get([]byte(keySeq))
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if ok {
		c, err := decodeSeq([]byte(keySeq), v)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		s.next.Store(c)
		s.ceiling.Store(c)
	}
	n, err := s.countKeys(configDevicePrefix())
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.deviceConfigs.Store(int64(n))
	return s, nil
}

// countKeys counts the keys under prefix. The caller has entered, or is
// Open.
func (s *Store) countKeys(prefix []byte) (int, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return 0, fmt.Errorf("store: scan %q: %w", prefix, err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("store: scan %q: %w", prefix, err)
	}
	return n, nil
}

// checkFormat stamps a new database with formatVersion and refuses one that
// has keys but another stamp or none.
func (s *Store) checkFormat() error {
	v, ok, err := s.get([]byte(keyFormat))
	if err != nil {
		return err
	}
	if ok {
		if string(v) != formatVersion {
			return fmt.Errorf("%w: store format %q, this gateway reads %q", ErrCorrupt, v, formatVersion)
		}
		return nil
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("%w: a pebble database without a fleetsim store format record", ErrCorrupt)
	}
	if err := s.db.Set([]byte(keyFormat), []byte(formatVersion), pebble.Sync); err != nil {
		return fmt.Errorf("stamp format: %w", err)
	}
	return nil
}

// Close waits for running operations, then closes the database. Calls after
// Close return ErrClosed. Close must not be called from an iteration
// callback (Devices, Members, Updates): it would wait for itself.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	for s.active > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// enter registers an operation on db; every successful enter is paired with
// leave. It fails with ErrClosed once Close has begun.
func (s *Store) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.active++
	return nil
}

func (s *Store) leave() {
	s.mu.Lock()
	s.active--
	if s.active == 0 && s.closed {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// get returns a copy of k's value. The caller has entered.
func (s *Store) get(k []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: get %q: %w", k, err)
	}
	v = bytes.Clone(v)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("store: get %q: %w", k, err)
	}
	return v, true, nil
}

// lookup enters, reads k and decodes it with dec.
func lookup[T any](s *Store, k []byte, dec func(k, v []byte) (T, error)) (T, bool, error) {
	var zero T
	if err := s.enter(); err != nil {
		return zero, false, err
	}
	defer s.leave()
	v, ok, err := s.get(k)
	if err != nil || !ok {
		return zero, false, err
	}
	r, err := dec(k, v)
	if err != nil {
		return zero, false, err
	}
	return r, true, nil
}

// scan enters and calls fn with every record under prefix, decoded with
// dec, in key order, until fn returns false.
func scan[T any](s *Store, prefix []byte, dec func(k, v []byte) (T, error), fn func(T) bool) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("store: scan %q: %w", prefix, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("store: scan %q: %w", prefix, err)
		}
		r, err := dec(it.Key(), v)
		if err != nil {
			_ = it.Close()
			return err
		}
		if !fn(r) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("store: scan %q: %w", prefix, err)
	}
	return nil
}

// collect gathers a scan into a slice.
func collect[T any](s *Store, prefix []byte, dec func(k, v []byte) (T, error)) ([]T, error) {
	var out []T
	err := scan(s, prefix, dec, func(r T) bool { out = append(out, r); return true })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Device returns the device uuid; ok is false if it was never stored.
// Errors: ErrInvalidKey, ErrCorrupt, ErrClosed.
func (s *Store) Device(uuid string) (Device, bool, error) {
	if err := checkPart("device uuid", uuid); err != nil {
		return Device{}, false, err
	}
	return lookup(s, deviceKey(uuid), decodeDevice)
}

// Devices calls fn with every device in UUID order (byte order) until fn
// returns false. fn may call the store's reads but not Close. A record that
// does not decode stops the scan with ErrCorrupt; after Close: ErrClosed.
func (s *Store) Devices(fn func(Device) bool) error {
	return scan(s, []byte(prefixDevice), decodeDevice, fn)
}

// HasEvent reports whether the device's event id is stored.
// Errors: ErrInvalidKey, ErrClosed.
func (s *Store) HasEvent(uuid, id string) (bool, error) {
	if err := checkPart("device uuid", uuid); err != nil {
		return false, err
	}
	if err := checkPart("event id", id); err != nil {
		return false, err
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()
	_, ok, err := s.get(eventIDKey(uuid, id))
	return ok, err
}

// Events returns the device's events in arrival order: the order their
// batches committed (batches committing at the same time have no order
// between them). Errors: ErrInvalidKey, ErrCorrupt, ErrClosed.
func (s *Store) Events(uuid string) ([]Event, error) {
	if err := checkPart("device uuid", uuid); err != nil {
		return nil, err
	}
	return collect(s, eventPrefix(uuid), decodeEvent)
}

// SystemInfo returns the device's latest document of kind k, as the device
// sent it. Errors: ErrInvalidKey (also for an unknown kind), ErrClosed.
func (s *Store) SystemInfo(uuid string, k SystemInfoKind) ([]byte, bool, error) {
	if err := checkPart("device uuid", uuid); err != nil {
		return nil, false, err
	}
	if !k.valid() {
		return nil, false, fmt.Errorf("%w: system info kind %q", ErrInvalidKey, k)
	}
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	defer s.leave()
	return s.get(sysInfoKey(uuid, k))
}

// Config returns the config files of scope and when they were last
// updated; ok is false when the scope has none. Errors: ErrInvalidKey (a
// malformed scope), ErrCorrupt, ErrClosed.
func (s *Store) Config(scope ConfigScope) (files []ConfigFile, updated time.Time, ok bool, err error) {
	if err := scope.check(); err != nil {
		return nil, time.Time{}, false, err
	}
	if scope.Kind == ScopeDevice && s.deviceConfigs.Load() == 0 {
		if err := s.enter(); err != nil {
			return nil, time.Time{}, false, err
		}
		s.leave()
		return nil, time.Time{}, false, nil
	}
	r, ok, err := lookup(s, configKey(scope), decodeConfig)
	return r.Files, r.Updated, ok, err
}

// ConfigGeneration counts the commits of batches that wrote or deleted
// config files since Open. It grows after such a commit's writes can be
// read and before its Commit returns, so a caller that keeps what Config
// returned, having read the generation before calling Config, may use it
// for as long as the generation has not changed.
func (s *Store) ConfigGeneration() uint64 { return s.configGen.Load() }

// Firmware returns the index entry of the image with this hex SHA-256.
// Errors: ErrInvalidKey, ErrCorrupt, ErrClosed.
func (s *Store) Firmware(sha256 string) (Firmware, bool, error) {
	if err := checkPart("firmware sha256", sha256); err != nil {
		return Firmware{}, false, err
	}
	return lookup(s, firmwareKey(sha256), decodeFirmware)
}

// FirmwareList returns the firmware index in SHA-256 order.
// Errors: ErrCorrupt, ErrClosed.
func (s *Store) FirmwareList() ([]Firmware, error) {
	return collect(s, []byte(prefixFirmware), decodeFirmware)
}

// Waves returns every wave, active or ended, in name order.
// Errors: ErrCorrupt, ErrClosed.
func (s *Store) Waves() ([]rollout.Wave, error) {
	return collect(s, []byte(prefixWave), decodeWave)
}

// Members calls fn with every wave member in (wave name, UUID) order until
// fn returns false. fn may call the store's reads but not Close.
// Errors: ErrCorrupt, ErrClosed.
func (s *Store) Members(fn func(rollout.Member) bool) error {
	return scan(s, []byte(prefixMember), decodeMember, fn)
}

// Updates calls fn with every device's latest update in UUID order until fn
// returns false. fn may call the store's reads but not Close.
// Errors: ErrCorrupt, ErrClosed.
func (s *Store) Updates(fn func(rollout.Update) bool) error {
	return scan(s, []byte(prefixUpdate), decodeUpdate, fn)
}

// Metrics returns pebble's metrics table, for the operator (the error's
// text after Close).
func (s *Store) Metrics() string {
	if err := s.enter(); err != nil {
		return err.Error()
	}
	defer s.leave()
	return s.db.Metrics().String()
}

// nextSeq hands out the next event sequence number. The caller has entered.
//
// Numbers are recovered at Open from the persisted ceiling meta/seq rather
// than by scanning every event key: a number is handed out only once the
// ceiling above it is written, and that write precedes (in the WAL) any
// batch that uses the number, so after any crash the recovered ceiling is
// above every stored event's number. One ceiling write covers seqBlock
// numbers; the numbers not handed out before a restart are skipped, which
// keeps the order and costs nothing.
func (s *Store) nextSeq() (uint64, error) {
	n := s.next.Add(1) - 1
	if n < s.ceiling.Load() {
		return n, nil
	}
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	if n < s.ceiling.Load() {
		return n, nil
	}
	c := n + seqBlock
	wo := pebble.NoSync
	if s.sync {
		wo = pebble.Sync
	}
	if err := s.db.Set([]byte(keySeq), encodeSeq(c), wo); err != nil {
		return 0, fmt.Errorf("store: persist event sequence: %w", err)
	}
	s.ceiling.Store(c)
	return n, nil
}

// quietLogger drops pebble's informational messages (every Open lists its
// WALs on stderr) and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(f string, args ...any) { pebble.DefaultLogger.Errorf(f, args...) }
func (quietLogger) Fatalf(f string, args ...any) { pebble.DefaultLogger.Fatalf(f, args...) }
