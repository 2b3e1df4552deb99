package rollout

import (
	"cmp"
	"fmt"
	"slices"
)

// numStates is len(States).
const numStates = 8

// stateIndex is s's place in States; unknown states (which Restore rejects)
// count as Scheduled.
func stateIndex(s State) int {
	switch s {
	case Pending:
		return 1
	case Downloading:
		return 2
	case Installed:
		return 3
	case Confirmed:
		return 4
	case Failed:
		return 5
	case Reverted:
		return 6
	case TimedOut:
		return 7
	}
	return 0
}

func validState(s State) bool { return s == Scheduled || stateIndex(s) != 0 }

// Terminal reports whether a device in state s is done with the update:
// Confirmed, Reverted (aktualizr-nano never retries a version that rolled
// back) and TimedOut. Failed is not: the device retries its download.
func (s State) Terminal() bool { return s == Confirmed || s == Reverted || s == TimedOut }

// Next is the state an event moves a device from s to, in an update of
// version (foundries.md §1.8-1.9):
//
//   - EcuDownloadStarted: Pending, Downloading and Failed (a retry) ->
//     Downloading.
//   - EcuDownloadCompleted: success=false moves Pending and Downloading to
//     Failed; success=true changes nothing.
//   - EcuInstallationStarted, EcuInstallationApplied: Pending, Downloading
//     and Failed -> Installed.
//   - EcuInstallationCompleted: success=true with ev.Version == version ->
//     Confirmed; success=false -> Reverted after Installed (the device
//     rolled back to its old image), Failed before. A success for another
//     version is not this update's and changes nothing.
//
// Scheduled (not released) and terminal states never change, and no event
// of the same attempt takes an Installed device back to downloading: the
// image is in flash. (An EcuDownloadStarted with a new correlation id is a
// new attempt: OnEvent starts a new Update and moves a member back.)
// Next(Next(s, ev), ev) == Next(s, ev) for every event, which makes applying
// an event twice harmless.
func Next(s State, ev Event, version uint32) State {
	switch s {
	case Pending, Downloading, Installed, Failed:
	default:
		return s
	}
	switch ev.Type {
	case EcuDownloadStarted:
		if s != Installed {
			return Downloading
		}
	case EcuDownloadCompleted:
		if !ev.Success && (s == Pending || s == Downloading) {
			return Failed
		}
	case EcuInstallationStarted, EcuInstallationApplied:
		return Installed
	case EcuInstallationCompleted:
		switch {
		case ev.Success && ev.Version == version:
			return Confirmed
		case ev.Success:
		case s == Installed:
			return Reverted
		default:
			return Failed
		}
	}
	return s
}

// WaveReport is a wave's status: how many of its members are in each state.
type WaveReport struct {
	Wave Wave
	// Counts has every State as a key, zeros included.
	Counts map[State]int
	// Total is the number of members.
	Total int
}

// VersionReport is a target version's status across the fleet.
type VersionReport struct {
	Version uint32
	// Counts has every State as a key, zeros included.
	Counts map[State]int
	// Total is the sum of Counts.
	Total int
}

func countsMap(counts [numStates]int) (map[State]int, int) {
	m := make(map[State]int, numStates)
	total := 0
	for i, s := range States {
		m[s] = counts[i]
		total += counts[i]
	}
	return m, total
}

// WaveStatus reports a wave and the states of its members. It returns an
// error wrapping ErrUnknownWave for a name never created.
func (c *Controller) WaveStatus(name string) (WaveReport, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ws, ok := c.waves[name]
	if !ok {
		return WaveReport{}, fmt.Errorf("%w: %q", ErrUnknownWave, name)
	}
	counts, total := countsMap(ws.counts)
	return WaveReport{Wave: cloneWave(ws.Wave), Counts: counts, Total: total}, nil
}

// VersionStatus reports, per target version, the devices whose latest
// Update is for that version by the Update's state, plus the Scheduled and
// Pending members of active waves of that version (they have no Update for
// it yet). Versions are sorted in ascending order; a version appears when
// it has at least one device.
func (c *Controller) VersionStatus() []VersionReport {
	c.mu.RLock()
	defer c.mu.RUnlock()
	byVersion := map[uint32]*[numStates]int{}
	at := func(v uint32) *[numStates]int {
		p, ok := byVersion[v]
		if !ok {
			p = new([numStates]int)
			byVersion[v] = p
		}
		return p
	}
	for _, u := range c.updates {
		at(u.Version)[stateIndex(u.State)]++
	}
	for _, ws := range c.active {
		for _, s := range []State{Scheduled, Pending} {
			if n := ws.count(s); n > 0 {
				at(ws.Version)[stateIndex(s)] += n
			}
		}
	}
	out := make([]VersionReport, 0, len(byVersion))
	for v, counts := range byVersion {
		m, total := countsMap(*counts)
		out = append(out, VersionReport{Version: v, Counts: m, Total: total})
	}
	slices.SortFunc(out, func(a, b VersionReport) int { return cmp.Compare(a.Version, b.Version) })
	return out
}
