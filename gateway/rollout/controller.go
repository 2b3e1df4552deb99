package rollout

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode"
)

// Sentinel errors of the controller. Functions wrap them with detail; test
// them with errors.Is.
var (
	// ErrUnknownWave: no wave has that name.
	ErrUnknownWave = errors.New("rollout: unknown wave")
	// ErrWaveExists: a wave of that name exists or existed; wave names are
	// never reused, as in Foundries.
	ErrWaveExists = errors.New("rollout: wave name already used")
	// ErrActiveWave: the tag already has an active wave (one per tag).
	ErrActiveWave = errors.New("rollout: tag already has an active wave")
	// ErrWaveNotActive: the wave was completed, cancelled or aborted.
	ErrWaveNotActive = errors.New("rollout: wave is not active")
	// ErrBadPolicy: a policy value is outside the AWS IoT jobs ranges.
	ErrBadPolicy = errors.New("rollout: invalid rollout policy")
	// ErrBadWave: a wave lacks a name, a tag, a version or targets.
	ErrBadWave = errors.New("rollout: invalid wave")
	// ErrBadSelection: a rollout step's selection is contradictory or out
	// of range (negative limit, percentage over 100, limit with
	// percentage, UUIDs with a limit).
	ErrBadSelection = errors.New("rollout: invalid selection")
	// ErrNotCandidate: a listed UUID is not among the candidates.
	ErrNotCandidate = errors.New("rollout: device is not a candidate")
	// ErrTooMany: a rollout step would add more than MaxDevicesPerStep
	// devices.
	ErrTooMany = errors.New("rollout: too many devices in one rollout step")
	// ErrCorrupt: Restore was given records that no controller could have
	// produced.
	ErrCorrupt = errors.New("rollout: corrupt rollout records")
)

// Controller decides rollouts: which devices a wave has, which of them are
// served its targets, when a policy aborts it. It is safe for concurrent
// use; WaveFor, on every /repo request, takes only a read lock.
type Controller struct {
	mu sync.RWMutex
	// waves holds every wave ever created, by name.
	waves map[string]*waveState
	// active is the active wave of each tag.
	active map[string]*waveState
	// memberships lists, per device, its memberships in active waves, in
	// wave creation order (CreatedAt, then name), so that OnEvent touches
	// only the device's own records.
	memberships map[string][]membership
	// served is WaveFor's answer per device, kept up to date on release and
	// wave end: one map lookup on every /repo request.
	served map[string]*waveState
	// updates is each device's latest update attempt.
	updates map[string]*Update
}

// membership is a device's place in one active wave.
type membership struct {
	ws *waveState
	m  *Member
}

// waveState is a wave with its members and the counters its decisions need.
type waveState struct {
	Wave
	members []*Member // by Seq
	byUUID  map[string]*Member
	counts  [numStates]int
	// timeouts holds the members that started, by start time; only kept
	// while the wave is active and its policy has a timeout.
	timeouts timeoutQueue
}

// New returns a controller with no waves.
func New() *Controller {
	return &Controller{
		waves:       map[string]*waveState{},
		active:      map[string]*waveState{},
		memberships: map[string][]membership{},
		served:      map[string]*waveState{},
		updates:     map[string]*Update{},
	}
}

// Changes are the records an operation modified, for the caller to persist
// before it acknowledges the operation. Waves are sorted by name, Members by
// wave then Seq, Updates by UUID. Ended lists the waves that just left
// WaveActive (completed, cancelled or aborted), sorted by name, so the caller
// can promote or withdraw their TUF wave view; they are in Waves too.
type Changes struct {
	Waves   []Wave
	Members []Member
	Updates []Update
	Ended   []Wave
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	return len(c.Waves) == 0 && len(c.Members) == 0 && len(c.Updates) == 0 && len(c.Ended) == 0
}

// Merge returns the union of c and later, for a caller that persists several
// operations in one batch: where both hold a record of the same wave, member
// (wave and UUID) or device update, later's wins. The result is sorted as
// Changes are.
func (c Changes) Merge(later Changes) Changes {
	if c.Empty() {
		return later
	}
	if later.Empty() {
		return c
	}
	return Changes{
		Waves:   mergeSorted(c.Waves, later.Waves, func(a, b Wave) int { return cmp.Compare(a.Name, b.Name) }),
		Members: mergeSorted(c.Members, later.Members, compareMembers),
		Updates: mergeSorted(c.Updates, later.Updates, func(a, b Update) int { return cmp.Compare(a.UUID, b.UUID) }),
		Ended:   mergeSorted(c.Ended, later.Ended, func(a, b Wave) int { return cmp.Compare(a.Name, b.Name) }),
	}
}

// compareMembers orders members by wave, then Seq. Two records of one member
// compare equal: a member's Seq never changes.
func compareMembers(a, b Member) int {
	if c := cmp.Compare(a.Wave, b.Wave); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

// mergeSorted merges two sorted lists; on equal keys b's element wins.
func mergeSorted[T any](a, b []T, compare func(x, y T) int) []T {
	out := make([]T, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := compare(a[i], b[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			out = append(out, b[j])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// changeSet collects modified records during one operation. Most
// operations touch one or two records, so the sets are plain lists until
// they grow.
type changeSet struct {
	waves   recordSet[*waveState]
	members recordSet[*Member]
	updates recordSet[*Update]
	ended   recordSet[*waveState]
}

func newChangeSet() *changeSet {
	return &changeSet{}
}

func (cs *changeSet) wave(ws *waveState) { cs.waves.add(ws) }
func (cs *changeSet) member(m *Member)   { cs.members.add(m) }
func (cs *changeSet) update(u *Update)   { cs.updates.add(u) }

func (cs *changeSet) end(ws *waveState) {
	cs.waves.add(ws)
	cs.ended.add(ws)
}

// recordSet is an insertion-ordered set of record pointers.
type recordSet[T comparable] struct {
	list  []T
	index map[T]struct{} // built once list is long
}

func (s *recordSet[T]) add(x T) {
	if s.index != nil {
		if _, ok := s.index[x]; ok {
			return
		}
		s.index[x] = struct{}{}
		s.list = append(s.list, x)
		return
	}
	for _, y := range s.list {
		if y == x {
			return
		}
	}
	s.list = append(s.list, x)
	if len(s.list) > 16 {
		s.index = make(map[T]struct{}, 2*len(s.list))
		for _, y := range s.list {
			s.index[y] = struct{}{}
		}
	}
}

// changes copies the collected records out, sorted.
func (cs *changeSet) changes() Changes {
	var ch Changes
	for _, ws := range cs.waves.list {
		ch.Waves = append(ch.Waves, cloneWave(ws.Wave))
	}
	for _, m := range cs.members.list {
		ch.Members = append(ch.Members, *m)
	}
	for _, u := range cs.updates.list {
		ch.Updates = append(ch.Updates, *u)
	}
	for _, ws := range cs.ended.list {
		ch.Ended = append(ch.Ended, cloneWave(ws.Wave))
	}
	byName := func(a, b Wave) int { return cmp.Compare(a.Name, b.Name) }
	slices.SortFunc(ch.Waves, byName)
	slices.SortFunc(ch.Ended, byName)
	slices.SortFunc(ch.Members, compareMembers)
	slices.SortFunc(ch.Updates, func(a, b Update) int { return cmp.Compare(a.UUID, b.UUID) })
	return ch
}

// cloneWave copies a wave record so that callers never share its slices.
func cloneWave(w Wave) Wave {
	w.Targets = slices.Clone(w.Targets)
	w.Policy = clonePolicy(w.Policy)
	return w
}

func clonePolicy(p Policy) Policy {
	p.Abort = slices.Clone(p.Abort)
	if p.Exponential != nil {
		e := *p.Exponential
		p.Exponential = &e
	}
	return p
}

// WaveSpec describes a wave to create.
type WaveSpec struct {
	// Name identifies the wave for ever; it is never reused.
	Name string
	// Tag is the device tag the wave stages a version for.
	Tag string
	// Version is the target version (the MCUboot build number).
	Version uint32
	// Targets are the TUF target names the wave serves.
	Targets []string
	// Policy controls release rate, abort and timeouts.
	Policy Policy
}

// validate checks a spec's own fields; it returns an error wrapping
// ErrBadWave or ErrBadPolicy.
func (s WaveSpec) validate() error {
	if err := checkName("name", s.Name); err != nil {
		return err
	}
	if err := checkName("tag", s.Tag); err != nil {
		return err
	}
	if s.Version == 0 {
		return fmt.Errorf("%w: wave %q: version 0 (versions are MCUboot build numbers above 0)", ErrBadWave, s.Name)
	}
	if len(s.Targets) == 0 {
		return fmt.Errorf("%w: wave %q has no targets", ErrBadWave, s.Name)
	}
	seen := make(map[string]bool, len(s.Targets))
	for _, t := range s.Targets {
		if err := checkName("target", t); err != nil {
			return fmt.Errorf("wave %q: %w", s.Name, err)
		}
		if seen[t] {
			return fmt.Errorf("%w: wave %q lists target %q twice", ErrBadWave, s.Name, t)
		}
		seen[t] = true
	}
	if err := s.Policy.validate(); err != nil {
		return fmt.Errorf("wave %q: %w", s.Name, err)
	}
	return nil
}

// checkName rejects empty names and names with control characters, which
// would corrupt the caller's keys and logs.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrBadWave, what)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: %s %q has a control or invalid character", ErrBadWave, what, s)
		}
	}
	return nil
}

// CreateWave creates an active wave that serves s.Targets to the devices
// rollout steps add. Errors: ErrBadWave (empty name or tag, version 0, no or
// duplicate targets), ErrBadPolicy (see Policy ranges), ErrWaveExists (the
// name was used before, whatever that wave's status), ErrActiveWave (the
// tag has an active wave: complete or cancel it first).
func (c *Controller) CreateWave(now time.Time, s WaveSpec) (Changes, error) {
	if err := s.validate(); err != nil {
		return Changes{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.waves[s.Name]; ok {
		return Changes{}, fmt.Errorf("%w: %q", ErrWaveExists, s.Name)
	}
	if a, ok := c.active[s.Tag]; ok {
		return Changes{}, fmt.Errorf("%w: tag %q has wave %q", ErrActiveWave, s.Tag, a.Name)
	}
	ws := &waveState{
		Wave: Wave{
			Name:      s.Name,
			Tag:       s.Tag,
			Version:   s.Version,
			Targets:   slices.Clone(s.Targets),
			Policy:    clonePolicy(s.Policy),
			Status:    WaveActive,
			CreatedAt: now,
			LastTick:  now,
		},
		byUUID: map[string]*Member{},
	}
	if ws.Policy.Exponential != nil {
		ws.Rate = ws.Policy.exponentialRate(0, 0)
	}
	c.waves[ws.Name] = ws
	c.active[ws.Tag] = ws
	cs := newChangeSet()
	cs.wave(ws)
	return cs.changes(), nil
}

// Complete ends an active wave successfully: its version becomes the tag's
// production version (the caller promotes the wave's TUF view). Errors:
// ErrUnknownWave, ErrWaveNotActive (already completed, cancelled or aborted;
// a completed wave cannot be cancelled either).
func (c *Controller) Complete(now time.Time, wave string) (Changes, error) {
	return c.finish(now, wave, WaveComplete)
}

// Cancel ends an active wave without promoting it: its devices stop being
// served its targets (those that updated stay on the version). Errors:
// ErrUnknownWave, ErrWaveNotActive.
func (c *Controller) Cancel(now time.Time, wave string) (Changes, error) {
	return c.finish(now, wave, WaveCanceled)
}

func (c *Controller) finish(now time.Time, wave string, status WaveStatus) (Changes, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws, err := c.activeWave(wave)
	if err != nil {
		return Changes{}, err
	}
	cs := newChangeSet()
	c.endWave(now, ws, status, "", cs)
	return cs.changes(), nil
}

// activeWave finds an active wave: ErrUnknownWave or ErrWaveNotActive.
func (c *Controller) activeWave(name string) (*waveState, error) {
	ws, ok := c.waves[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownWave, name)
	}
	if ws.Status != WaveActive {
		return nil, fmt.Errorf("%w: %q is %s", ErrWaveNotActive, name, ws.Status)
	}
	return ws, nil
}

// endWave moves an active wave to status and withdraws it from its members.
func (c *Controller) endWave(now time.Time, ws *waveState, status WaveStatus, reason string, cs *changeSet) {
	ws.Status = status
	ws.EndedAt = now
	ws.Reason = reason
	ws.timeouts = nil
	delete(c.active, ws.Tag)
	for _, m := range ws.members {
		c.leave(m.UUID, ws)
	}
	cs.end(ws)
}

// join records that uuid is a member of the active wave ws, keeping the
// device's memberships in wave creation order.
func (c *Controller) join(ws *waveState, m *Member) {
	list := c.memberships[m.UUID]
	i, _ := slices.BinarySearchFunc(list, ws, func(e membership, t *waveState) int { return compareCreation(e.ws, t) })
	c.memberships[m.UUID] = slices.Insert(list, i, membership{ws: ws, m: m})
}

func (c *Controller) leave(uuid string, ws *waveState) {
	list := slices.DeleteFunc(c.memberships[uuid], func(e membership) bool { return e.ws == ws })
	if len(list) == 0 {
		delete(c.memberships, uuid)
	} else {
		c.memberships[uuid] = list
	}
	c.serve(uuid)
}

// serve recomputes which wave the device is served: the latest-created
// active wave of which it is a released member.
func (c *Controller) serve(uuid string) {
	list := c.memberships[uuid]
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].m.State != Scheduled {
			c.served[uuid] = list[i].ws
			return
		}
	}
	delete(c.served, uuid)
}

// compareCreation orders waves by creation time, then name.
func compareCreation(a, b *waveState) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// activeWaves lists the active waves by name.
func (c *Controller) activeWaves() []*waveState {
	out := make([]*waveState, 0, len(c.active))
	for _, ws := range c.active {
		out = append(out, ws)
	}
	slices.SortFunc(out, func(a, b *waveState) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Tick advances every active wave to now, in wave name order: it times out
// members that started more than the policy's InProgressTimeout ago and are
// not terminal, evaluates the abort criteria, then releases scheduled
// members as the rate limit allows (see Policy). A live gateway calls it
// every second or so; the simulator at virtual times. A now before a wave's
// last tick releases nothing new for that wave.
func (c *Controller) Tick(now time.Time) Changes {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := newChangeSet()
	for _, ws := range c.activeWaves() {
		ws.expire(now, cs)
		if c.checkAbort(now, ws, cs) {
			continue
		}
		c.release(now, ws, cs)
	}
	return cs.changes()
}

// releaseNext moves the next n scheduled members, in Seq order, to Pending: from
// now on WaveFor serves them the wave.
func (c *Controller) releaseNext(now time.Time, ws *waveState, n int, cs *changeSet) {
	for _, m := range ws.members[ws.Released : ws.Released+n] {
		ws.setState(m, Pending)
		m.ReleasedAt = now
		c.serve(m.UUID)
		cs.member(m)
	}
	ws.Released += n
	cs.wave(ws)
}

// setState moves m to s, keeping the wave's counters.
func (ws *waveState) setState(m *Member, s State) {
	ws.counts[stateIndex(m.State)]--
	ws.counts[stateIndex(s)]++
	m.State = s
}

// Event types of aktualizr-nano (foundries.md §1.8-1.9) the controller acts
// on; events of other types are ignored.
const (
	EcuDownloadStarted       = "EcuDownloadStarted"
	EcuDownloadCompleted     = "EcuDownloadCompleted"
	EcuInstallationStarted   = "EcuInstallationStarted"
	EcuInstallationApplied   = "EcuInstallationApplied"
	EcuInstallationCompleted = "EcuInstallationCompleted"
)

// OnEvent applies one device event, first to the device's Update, then to
// its memberships in active waves.
//
// Update: an EcuDownloadStarted with a version starts a new Update with the
// event's correlation id (unless the current one has that id and version);
// later events with the same correlation id move it. A download or install
// event for a version the device has no Update of starts one too: its
// EcuDownloadStarted was lost.
//
// Member: the event applies when the device is a released member of an
// active wave and either it is an EcuDownloadStarted for the wave's version
// (which also sets the member's correlation id: each install attempt has a
// new one, and a new attempt after Installed downloads again) or it carries
// the member's correlation id. A member that never saw an attempt (its
// EcuDownloadStarted was lost) takes the correlation id of the first event
// for the wave's version that moves it. The mapping of events to states is
// Next's. Terminal states do not change, and applying the same
// event again changes nothing and returns empty Changes. The abort criteria
// of every wave the event moved are evaluated afterwards.
//
// The caller persists the Changes before acknowledging the event. If that
// write fails, the controller is ahead of the store: rebuild it with Restore
// from the store before applying the event again, or the re-application,
// being a no-op, leaves the store without it.
func (c *Controller) OnEvent(now time.Time, uuid string, ev Event) Changes {
	if uuid == "" || !knownEvent(ev.Type) {
		return Changes{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := newChangeSet()
	c.applyToUpdate(now, uuid, ev, cs)
	// A copy, on the stack for the usual one or two waves: an abort below
	// withdraws memberships from the device.
	var buf [4]membership
	for _, e := range append(buf[:0], c.memberships[uuid]...) {
		if e.ws.Status != WaveActive || e.m.State == Scheduled {
			continue
		}
		if e.ws.applyToMember(now, e.m, ev) {
			cs.member(e.m)
			c.checkAbort(now, e.ws, cs)
		}
	}
	return cs.changes()
}

func knownEvent(t string) bool {
	switch t {
	case EcuDownloadStarted, EcuDownloadCompleted, EcuInstallationStarted, EcuInstallationApplied, EcuInstallationCompleted:
		return true
	}
	return false
}

func (c *Controller) applyToUpdate(now time.Time, uuid string, ev Event, cs *changeSet) {
	u := c.updates[uuid]
	switch {
	case ev.Type == EcuDownloadStarted:
		if ev.Version == 0 {
			return // not attributable to a version
		}
		if u == nil || u.CorrelationID != ev.CorrelationID || u.Version != ev.Version {
			u = &Update{UUID: uuid, Version: ev.Version, CorrelationID: ev.CorrelationID, State: Downloading, StartedAt: now, UpdatedAt: now}
			c.updates[uuid] = u
			cs.update(u)
			return
		}
	case ev.CorrelationID == "":
		return
	case u != nil && ev.CorrelationID == u.CorrelationID:
	case ev.Version != 0 && ev.Type != EcuInstallationCompleted && (u == nil || u.Version != ev.Version):
		// An attempt whose EcuDownloadStarted was lost (see
		// applyToMember): its download and install events name the version
		// it installs. EcuInstallationCompleted does not start one: it
		// names the running version, and a factory-flashed device sends it
		// on its first boot without any update.
		u = &Update{UUID: uuid, Version: ev.Version, CorrelationID: ev.CorrelationID, State: Next(Downloading, ev, ev.Version), StartedAt: now, UpdatedAt: now}
		c.updates[uuid] = u
		cs.update(u)
		return
	default:
		return
	}
	if next := Next(u.State, ev, u.Version); next != u.State {
		u.State = next
		u.UpdatedAt = now
		cs.update(u)
	}
}

// applyToMember applies ev to a released member and reports whether the
// member changed.
func (ws *waveState) applyToMember(now time.Time, m *Member, ev Event) bool {
	adopt := false
	switch {
	case ev.Type == EcuDownloadStarted:
		if ev.Version != ws.Version {
			return false
		}
	case ev.CorrelationID == "":
		return false
	case ev.CorrelationID == m.CorrelationID:
	case m.CorrelationID == "" && ev.Version == ws.Version && (ev.Type != EcuInstallationCompleted || ev.Success):
		// The attempt's EcuDownloadStarted never arrived: aktualizr-nano
		// drops an event after five failed POSTs. A later event of the
		// attempt names the wave's version (only a rollback's
		// EcuInstallationCompleted names the old one), so the member takes
		// its correlation id instead of ignoring the whole attempt and
		// staying Pending, untimed, for ever.
		adopt = true
	default:
		return false
	}
	changed := false
	next := Next(m.State, ev, ws.Version)
	if adopt && next == m.State {
		return false
	}
	if ev.Type == EcuDownloadStarted && m.State == Installed && ev.CorrelationID != m.CorrelationID {
		// A new install attempt: aktualizr-nano draws a new correlation id
		// for every attempt, so the image of the old one never ran (power
		// was lost between EcuInstallationApplied and the reboot, or its
		// result event was lost) and the device downloads again. Left
		// Installed, the member would ignore every event of the new attempt
		// and wait for its timeout.
		next = Downloading
	}
	if next != m.State {
		ws.setState(m, next)
		changed = true
		switch next {
		case Downloading:
			m.FinishedAt = time.Time{} // a retry after a failed download
			if m.StartedAt.IsZero() {
				// The timeout runs from the first start: a device that
				// keeps failing its download still times out.
				m.StartedAt = now
				ws.watch(m)
			}
		case Installed:
			if m.StartedAt.IsZero() {
				m.StartedAt = now
				ws.watch(m)
			}
		case Confirmed, Failed, Reverted, TimedOut:
			m.FinishedAt = now
		}
		if adopt && m.StartedAt.IsZero() {
			m.StartedAt = now
			if inProgress(next) {
				ws.watch(m)
			}
		}
	}
	if (adopt || ev.Type == EcuDownloadStarted && m.State == Downloading) && m.CorrelationID != ev.CorrelationID {
		m.CorrelationID = ev.CorrelationID
		changed = true
	}
	return changed
}

// ServedWave returns the wave whose targets a device following tag is
// served: the tag's active wave, if the device is a released (not
// Scheduled) member of it; "" otherwise. A device follows exactly one tag
// (foundries.md §4), and a device that changed tags may be a member of an
// active wave of each: only its current tag's wave applies, whichever was
// created last. It takes a read lock and, unless the device is in waves of
// two tags, one map lookup.
func (c *Controller) ServedWave(uuid, tag string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ws, ok := c.served[uuid]
	if !ok {
		return "" // a released member of no active wave
	}
	if ws.Tag == tag {
		return ws.Name
	}
	if ws, ok = c.active[tag]; ok {
		if m, ok := ws.byUUID[uuid]; ok && m.State != Scheduled {
			return ws.Name
		}
	}
	return ""
}

// WaveFor returns the latest-created active wave of which the device is a
// released (not Scheduled) member, and its tag; "", "" if there is none.
//
// It does not know the device's tag: a device in active waves of two tags
// gets the later one even when it follows the other, and a caller that
// then checks the tag serves it neither. To choose the wave a device is
// served, use ServedWave with the device's current tag.
func (c *Controller) WaveFor(uuid string) (wave, tag string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if ws, ok := c.served[uuid]; ok {
		return ws.Name, ws.Tag
	}
	return "", ""
}

// Wave returns a wave's record.
func (c *Controller) Wave(name string) (Wave, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ws, ok := c.waves[name]
	if !ok {
		return Wave{}, false
	}
	return cloneWave(ws.Wave), true
}

// Waves returns every wave, sorted by creation time then name.
func (c *Controller) Waves() []Wave {
	c.mu.RLock()
	defer c.mu.RUnlock()
	list := make([]*waveState, 0, len(c.waves))
	for _, ws := range c.waves {
		list = append(list, ws)
	}
	slices.SortFunc(list, compareCreation)
	out := make([]Wave, len(list))
	for i, ws := range list {
		out[i] = cloneWave(ws.Wave)
	}
	return out
}

// Members returns a wave's members by Seq, or nil for an unknown wave.
func (c *Controller) Members(wave string) []Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ws, ok := c.waves[wave]
	if !ok {
		return nil
	}
	out := make([]Member, len(ws.members))
	for i, m := range ws.members {
		out[i] = *m
	}
	return out
}

// Snapshot returns every record the controller holds, sorted as Changes are
// (Ended is empty): what Restore takes to rebuild it. A caller that lost
// writes may persist it whole.
func (c *Controller) Snapshot() Changes {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cs := newChangeSet()
	for _, ws := range c.waves {
		cs.wave(ws)
		for _, m := range ws.members {
			cs.member(m)
		}
	}
	for _, u := range c.updates {
		cs.update(u)
	}
	return cs.changes()
}

// Restore rebuilds a controller from persisted records, given in any order.
// It validates them and returns an error wrapping ErrCorrupt for a record no
// controller could have written: a wave with an invalid spec, policy,
// status or counters, two active waves of one tag, a duplicate wave, member
// or update, a member of an unknown wave, a member whose state contradicts
// its wave's release count or its start time (set exactly for the states
// past Pending), a wave missing members, or an unknown state.
func Restore(waves []Wave, members []Member, updates []Update) (*Controller, error) {
	c := New()
	for _, w := range waves {
		if err := restoreWave(c, w, len(members)); err != nil {
			return nil, err
		}
	}
	for _, m := range members {
		ws, ok := c.waves[m.Wave]
		if !ok {
			return nil, fmt.Errorf("%w: member %q of unknown wave %q", ErrCorrupt, m.UUID, m.Wave)
		}
		if m.UUID == "" {
			return nil, fmt.Errorf("%w: member %d of wave %q has no UUID", ErrCorrupt, m.Seq, m.Wave)
		}
		if m.Seq < 0 || m.Seq >= ws.Scheduled {
			return nil, fmt.Errorf("%w: member %q of wave %q has seq %d outside 0..%d", ErrCorrupt, m.UUID, m.Wave, m.Seq, ws.Scheduled-1)
		}
		if ws.members[m.Seq] != nil {
			return nil, fmt.Errorf("%w: wave %q has two members with seq %d", ErrCorrupt, m.Wave, m.Seq)
		}
		if _, dup := ws.byUUID[m.UUID]; dup {
			return nil, fmt.Errorf("%w: device %q is twice in wave %q", ErrCorrupt, m.UUID, m.Wave)
		}
		if !validState(m.State) {
			return nil, fmt.Errorf("%w: member %q of wave %q has unknown state %q", ErrCorrupt, m.UUID, m.Wave, m.State)
		}
		if released := m.Seq < ws.Released; released != (m.State != Scheduled) {
			return nil, fmt.Errorf("%w: member %q of wave %q is %s with seq %d but %d released", ErrCorrupt, m.UUID, m.Wave, m.State, m.Seq, ws.Released)
		}
		// Every state past Pending is reached through an event that sets
		// StartedAt; a started member without it would escape the
		// in-progress timeout for ever.
		if started := m.State != Scheduled && m.State != Pending; started == m.StartedAt.IsZero() {
			return nil, fmt.Errorf("%w: member %q of wave %q is %s with start time %v", ErrCorrupt, m.UUID, m.Wave, m.State, m.StartedAt)
		}
		m := m
		ws.members[m.Seq] = &m
		ws.byUUID[m.UUID] = &m
		ws.counts[stateIndex(m.State)]++
	}
	for _, ws := range c.waves {
		if len(ws.byUUID) != ws.Scheduled {
			return nil, fmt.Errorf("%w: wave %q has %d of its %d members", ErrCorrupt, ws.Name, len(ws.byUUID), ws.Scheduled)
		}
	}
	for _, ws := range c.active {
		for _, m := range ws.members {
			c.join(ws, m)
			if !m.StartedAt.IsZero() && inProgress(m.State) {
				ws.watch(m)
			}
		}
	}
	for uuid := range c.memberships {
		c.serve(uuid)
	}
	for _, u := range updates {
		if u.UUID == "" {
			return nil, fmt.Errorf("%w: update without a device UUID", ErrCorrupt)
		}
		if _, dup := c.updates[u.UUID]; dup {
			return nil, fmt.Errorf("%w: two updates of device %q", ErrCorrupt, u.UUID)
		}
		switch u.State {
		case Downloading, Installed, Confirmed, Failed, Reverted:
		default:
			return nil, fmt.Errorf("%w: update of device %q has state %q", ErrCorrupt, u.UUID, u.State)
		}
		if u.Version == 0 {
			return nil, fmt.Errorf("%w: update of device %q has version 0", ErrCorrupt, u.UUID)
		}
		u := u
		c.updates[u.UUID] = &u
	}
	return c, nil
}

// restoreWave adds one wave record; nMembers bounds its member count, so a
// corrupt count cannot make Restore allocate without limit.
func restoreWave(c *Controller, w Wave, nMembers int) error {
	spec := WaveSpec{Name: w.Name, Tag: w.Tag, Version: w.Version, Targets: w.Targets, Policy: w.Policy}
	if err := spec.validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, dup := c.waves[w.Name]; dup {
		return fmt.Errorf("%w: two waves named %q", ErrCorrupt, w.Name)
	}
	switch w.Status {
	case WaveActive:
		if a, ok := c.active[w.Tag]; ok {
			return fmt.Errorf("%w: tag %q has two active waves, %q and %q", ErrCorrupt, w.Tag, a.Name, w.Name)
		}
	case WaveComplete, WaveCanceled, WaveAborted:
	default:
		return fmt.Errorf("%w: wave %q has status %q", ErrCorrupt, w.Name, w.Status)
	}
	if w.Scheduled < 0 || w.Released < 0 || w.Released > w.Scheduled || w.Scheduled > nMembers {
		return fmt.Errorf("%w: wave %q has %d released of %d scheduled", ErrCorrupt, w.Name, w.Released, w.Scheduled)
	}
	if !(w.Tokens >= 0 && w.Tokens <= maxRate) || !(w.Rate >= 0 && w.Rate <= maxRate) {
		return fmt.Errorf("%w: wave %q has rate %v and tokens %v", ErrCorrupt, w.Name, w.Rate, w.Tokens)
	}
	ws := &waveState{
		Wave:    cloneWave(w),
		members: make([]*Member, w.Scheduled),
		byUUID:  make(map[string]*Member, w.Scheduled),
	}
	c.waves[w.Name] = ws
	if w.Status == WaveActive {
		c.active[w.Tag] = ws
	}
	return nil
}
