package gateway

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fleetsim/fleetsim/gateway/firmware"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/gateway/store"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
)

// Clock gives the gateway its time. Live gateways use the wall clock; the
// simulator gives its virtual clock, so the same gateway runs in virtual
// time.
type Clock interface {
	Now() time.Time
}

// Options configure a gateway.
type Options struct {
	// Clock is required.
	Clock Clock
	// Random supplies key material when a data directory is created. It is
	// required by Open for a new directory.
	Random io.Reader
	// Factory names the factory in GET /device.
	Factory string
	// ImageKeys verify uploaded firmware: an image must carry a signature
	// by one of them. With none, AllowUnsigned must be set and only the
	// image's structure and hash are checked.
	ImageKeys     []crypto.PublicKey
	AllowUnsigned bool
	// MaxFirmwareSize bounds an upload; 0 means DefaultMaxFirmwareSize.
	MaxFirmwareSize int64
	// NoSync turns off fsync of acknowledged writes: for tests and the
	// simulator, never for a gateway devices rely on.
	NoSync bool
	// FS holds the data directory: the store, the TUF repositories and the
	// firmware. nil is the operating system's file system (vfs.Default).
	// With vfs.NewMem the gateway touches no disk, and its state lives as
	// long as the FS value: a gateway closed and opened again on the same
	// value finds it, as one restarted on the same disk would. A gateway in
	// memory is Open("", Options{FS: vfs.NewMem(), ...}).
	FS vfs.FS
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
}

// DefaultMaxFirmwareSize bounds uploads: MCU images are at most a few MiB
// (aktualizr-nano refuses more than 1 MiB).
const DefaultMaxFirmwareSize = 16 << 20

// The data directory.
const (
	storeDir    = "store"
	ciRepoDir   = "tuf/ci"
	prodRepoDir = "tuf/prod"
	firmwareDir = "firmware"
)

// Gateway is the device gateway: device API, admin API and rollout
// controller over one data directory. It is safe for concurrent use.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	store    *store.Store
	ci, prod *tufrepo.Repo
	firmware *firmware.Dir
	rollout  *rollout.Controller

	devices sync.Map // UUID -> *deviceEntry
	configs wideConfigs

	// dirty lists the device entries whose record changed since the last
	// flush.
	dirtyMu sync.Mutex
	dirty   []*deviceEntry

	// unsaved holds controller changes whose commit failed. They go into
	// the next commit: a device retrying the event is a no-op for the
	// controller, so its state must be written by whatever commits next.
	unsavedMu sync.Mutex
	unsaved   rollout.Changes

	// adminMu serialises operator commands, which span the controller, the
	// TUF repository and the store.
	adminMu   sync.Mutex
	lastRenew time.Time

	// viewsBehind is set when a wave's record was stored but its TUF view
	// could not follow; Tick then reconciles the views with the records.
	viewsBehind atomic.Bool
}

// Open opens the gateway stored in dir on o.FS, creating it when dir holds
// none: an empty store, CI and production TUF repositories signed by the
// same new keys (so a device's root of trust does not depend on whether it
// is a test or a production device), and an empty firmware directory.
//
// Errors: a missing Clock or Random; a store or repository that cannot be
// opened (tufrepo.ErrCorrupt, store.ErrCorrupt); file system errors.
func Open(dir string, o Options) (*Gateway, error) {
	if o.Clock == nil {
		return nil, errors.New("gateway: no clock")
	}
	if len(o.ImageKeys) == 0 && !o.AllowUnsigned {
		return nil, errors.New("gateway: no image verification key (give one, or allow unsigned images)")
	}
	fsys := o.FS
	if fsys == nil {
		fsys = vfs.Default
	}
	now := o.Clock.Now()
	ci, prod, err := openRepos(fsys, dir, now, o.Random)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(fsys.PathJoin(dir, storeDir), store.Options{FS: fsys, Sync: !o.NoSync})
	if err != nil {
		return nil, err
	}
	fw, err := firmware.OpenFS(fsys, fsys.PathJoin(dir, firmwareDir))
	if err != nil {
		st.Close()
		return nil, err
	}
	g, err := newGateway(st, ci, prod, fw, o)
	if err != nil {
		fw.Close()
		st.Close()
		return nil, err
	}
	return g, nil
}

func openRepos(fsys vfs.FS, dir string, now time.Time, random io.Reader) (ci, prod *tufrepo.Repo, err error) {
	ciDir, prodDir := fsys.PathJoin(dir, ciRepoDir), fsys.PathJoin(dir, prodRepoDir)
	ci, err = tufrepo.OpenFS(fsys, ciDir, random)
	if errors.Is(err, fs.ErrNotExist) {
		if random == nil {
			return nil, nil, errors.New("gateway: creating a data directory needs a random source")
		}
		setup, err := tufrepo.GenerateSetup(tufrepo.KeyEd25519, random)
		if err != nil {
			return nil, nil, err
		}
		// Production first: a crash between the two leaves a directory
		// Open refuses to half-use (CI missing is created again with new
		// keys only if production is missing too).
		if _, err := fsys.Stat(prodDir); err == nil {
			return nil, nil, fmt.Errorf("gateway: %s exists without %s", prodDir, ciDir)
		}
		if prod, _, err = tufrepo.CreateFS(fsys, prodDir, now, tufrepo.Config{}, setup); err != nil {
			return nil, nil, err
		}
		if ci, _, err = tufrepo.CreateFS(fsys, ciDir, now, tufrepo.Config{}, setup); err != nil {
			return nil, nil, err
		}
		return ci, prod, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if prod, err = tufrepo.OpenFS(fsys, prodDir, random); err != nil {
		return nil, nil, err
	}
	return ci, prod, nil
}

func newGateway(st *store.Store, ci, prod *tufrepo.Repo, fw *firmware.Dir, o Options) (*Gateway, error) {
	if o.MaxFirmwareSize == 0 {
		o.MaxFirmwareSize = DefaultMaxFirmwareSize
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{opts: o, log: log, store: st, ci: ci, prod: prod, firmware: fw}
	if err := g.restore(); err != nil {
		return nil, err
	}
	return g, nil
}

// restore loads the rollout controller from the store and brings the production repository's wave views in line with the
// waves: a crash between a wave's record and its TUF view leaves one
// without the other, and the record wins.
func (g *Gateway) restore() error {
	waves, err := g.store.Waves()
	if err != nil {
		return err
	}
	var members []rollout.Member
	if err := g.store.Members(func(m rollout.Member) bool { members = append(members, m); return true }); err != nil {
		return err
	}
	var updates []rollout.Update
	if err := g.store.Updates(func(u rollout.Update) bool { updates = append(updates, u); return true }); err != nil {
		return err
	}
	if g.rollout, err = rollout.Restore(waves, members, updates); err != nil {
		return err
	}
	return g.reconcileWaves(g.opts.Clock.Now())
}

func (g *Gateway) reconcileWaves(now time.Time) error {
	open := map[string]bool{}
	for _, w := range g.prod.Waves() {
		open[tufrepo.WaveView(w.Tag, w.Name)] = true
	}
	for _, w := range g.rollout.Waves() {
		key := tufrepo.WaveView(w.Tag, w.Name)
		switch {
		case w.Status == rollout.WaveActive && !open[key]:
			targets, err := g.waveTargets(w.Targets)
			if err != nil {
				return err
			}
			if _, err := g.prod.OpenWave(now, w.Tag, w.Name, targets); err != nil {
				return fmt.Errorf("gateway: reopening wave %s: %w", w.Name, err)
			}
			g.log.Info("wave view reopened", "wave", w.Name, "tag", w.Tag)
		case w.Status != rollout.WaveActive && open[key]:
			if err := g.endWaveView(now, w); err != nil {
				return err
			}
		}
		delete(open, key)
	}
	// Views of waves the store never recorded: withdraw them.
	for _, w := range g.prod.Waves() {
		if open[tufrepo.WaveView(w.Tag, w.Name)] {
			if _, err := g.prod.CancelWave(now, w.Tag, w.Name); err != nil {
				return err
			}
			g.log.Warn("orphan wave view withdrawn", "wave", w.Name, "tag", w.Tag)
		}
	}
	return nil
}

// waveTargets are the CI targets a wave stages, found by name.
func (g *Gateway) waveTargets(names []string) ([]tufrepo.Target, error) {
	var out []tufrepo.Target
	for _, n := range names {
		t, ok := g.ci.Target(n)
		if !ok {
			return nil, fmt.Errorf("gateway: wave target %s is not in the CI repository", n)
		}
		out = append(out, t)
	}
	return out, nil
}

// endWaveView promotes or withdraws the TUF view of a wave that left the
// active state.
func (g *Gateway) endWaveView(now time.Time, w rollout.Wave) error {
	var err error
	if w.Status == rollout.WaveComplete {
		_, err = g.prod.CompleteWave(now, w.Tag, w.Name)
	} else {
		_, err = g.prod.CancelWave(now, w.Tag, w.Name)
	}
	if errors.Is(err, tufrepo.ErrUnknownWave) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: ending wave %s: %w", w.Name, err)
	}
	g.log.Info("wave ended", "wave", w.Name, "tag", w.Tag, "status", w.Status, "reason", w.Reason)
	return nil
}

// persist writes a controller's changes into b.
func persist(b *store.Batch, ch rollout.Changes) {
	for _, w := range ch.Waves {
		b.PutWave(w)
	}
	for _, m := range ch.Members {
		b.PutMember(m)
	}
	for _, u := range ch.Updates {
		b.PutUpdate(u)
	}
}

// commitChanges stores ch durably, then applies the TUF side of the waves
// that ended.
func (g *Gateway) commitChanges(now time.Time, ch rollout.Changes) error {
	ch = g.takeUnsaved().Merge(ch)
	if ch.Empty() {
		return nil
	}
	b := g.store.NewBatch()
	defer b.Close()
	persist(b, ch)
	if err := b.Commit(true); err != nil {
		g.keepUnsaved(ch)
		return err
	}
	return g.endWaves(now, ch.Ended)
}

func (g *Gateway) takeUnsaved() rollout.Changes {
	g.unsavedMu.Lock()
	defer g.unsavedMu.Unlock()
	ch := g.unsaved
	g.unsaved = rollout.Changes{}
	return ch
}

// keepUnsaved puts back changes that could not be committed, before any
// kept since (those are later).
func (g *Gateway) keepUnsaved(ch rollout.Changes) {
	g.unsavedMu.Lock()
	defer g.unsavedMu.Unlock()
	g.unsaved = ch.Merge(g.unsaved)
}

// errViewsBehind marks an error of a wave's TUF view after its record was
// stored: the record stands, and the next Tick brings the view in line.
var errViewsBehind = errors.New("gateway: wave views behind their records")

// endWaves applies the TUF side of waves whose end is recorded. A view that
// cannot be changed now is left for the next Tick to reconcile.
func (g *Gateway) endWaves(now time.Time, ended []rollout.Wave) error {
	var errs []error
	for _, w := range ended {
		errs = append(errs, g.endWaveView(now, w))
	}
	if err := errors.Join(errs...); err != nil {
		g.viewsBehind.Store(true)
		return fmt.Errorf("%w: %w", errViewsBehind, err)
	}
	return nil
}

// Tick advances the gateway to now: the rollout controller releases devices
// and times them out, device last-seen times reach the store, wave views an
// error left behind their records are brought in line, and TUF metadata
// close to expiry is re-signed. A live gateway calls it every
// second; the simulator at virtual times.
func (g *Gateway) Tick(now time.Time) error {
	g.adminMu.Lock()
	defer g.adminMu.Unlock()
	var errs []error
	errs = append(errs, g.commitChanges(now, g.rollout.Tick(now)))
	errs = append(errs, g.flushDevices())
	if g.viewsBehind.Swap(false) {
		if err := g.reconcileWaves(now); err != nil {
			g.viewsBehind.Store(true)
			errs = append(errs, err)
		}
	}
	if now.Sub(g.lastRenew) >= time.Minute {
		g.lastRenew = now
		for _, r := range []*tufrepo.Repo{g.ci, g.prod} {
			if _, err := r.Renew(now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Close flushes what is pending and closes the store and files.
func (g *Gateway) Close() error {
	return errors.Join(g.flushDevices(), g.firmware.Close(), g.store.Close())
}
