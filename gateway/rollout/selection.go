package rollout

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// MaxDevicesPerStep is the most devices one rollout step may add: Foundries'
// limit for a waves rollout command (foundries.md §4).
const MaxDevicesPerStep = 10_000

// RecentlyActive is how recently a device must have been seen for a rollout
// step to favour it.
const RecentlyActive = 24 * time.Hour

// Candidate is a device a rollout step may select. The caller lists the
// production devices following the wave's tag (optionally only those of the
// selection's groups); devices already in the wave may be included and are
// skipped.
type Candidate struct {
	UUID  string
	Group string
	// LastSeen is the device's last contact with the gateway; zero if
	// never.
	LastSeen time.Time
}

// Selection is one rollout step, after fioctl waves rollout.
type Selection struct {
	// Groups restricts the step to candidates in one of these groups;
	// empty means any group.
	Groups []string
	// Limit adds at most this many devices; 0 means no count limit.
	Limit int
	// Percentage adds at most this share of the eligible candidates,
	// rounded up; it counts to a hundredth of a percent. 0 means no share
	// limit. Limit and Percentage exclude each other.
	Percentage float64
	// UUIDs adds exactly these devices, in this order (those already in
	// the wave are skipped); each must be a candidate in Groups.
	UUIDs []string
	// DryRun decides and changes nothing.
	DryRun bool
}

// validate checks a selection's own fields; errors wrap ErrBadSelection or
// ErrTooMany.
func (s Selection) validate() error {
	switch {
	case s.Limit < 0:
		return fmt.Errorf("%w: negative limit %d", ErrBadSelection, s.Limit)
	case !(s.Percentage >= 0 && s.Percentage <= 100):
		return fmt.Errorf("%w: percentage %v outside 0..100", ErrBadSelection, s.Percentage)
	case s.Limit > 0 && s.Percentage > 0:
		return fmt.Errorf("%w: a limit and a percentage", ErrBadSelection)
	case len(s.UUIDs) > 0 && (s.Limit > 0 || s.Percentage > 0):
		return fmt.Errorf("%w: listed UUIDs with a limit or a percentage", ErrBadSelection)
	case s.Limit > MaxDevicesPerStep:
		return fmt.Errorf("%w: limit %d over %d", ErrTooMany, s.Limit, MaxDevicesPerStep)
	case len(s.UUIDs) > MaxDevicesPerStep:
		return fmt.Errorf("%w: %d UUIDs over %d", ErrTooMany, len(s.UUIDs), MaxDevicesPerStep)
	}
	return nil
}

// Rollout adds devices to an active wave as Scheduled members, in the order
// chosen, and returns their UUIDs; Tick then releases them as the wave's
// rate limit allows.
//
// With UUIDs, the step adds exactly those devices, in the order listed.
// Otherwise the eligible devices are the candidates in Groups that are not
// yet members. They are ordered as Foundries describes its selection
// (pseudo-random, favouring recently active devices): devices seen within
// RecentlyActive before now first, then the rest, each band sorted by
// SHA-256(wave name + "/" + UUID), a shuffle that the same wave and fleet
// always repeat. Limit takes the first N, Percentage the first
// ceil(p/100 × eligible), neither all.
//
// Errors: ErrUnknownWave, ErrWaveNotActive, ErrBadSelection (see Selection),
// ErrNotCandidate (names the first listed UUID that is not a candidate in
// Groups), ErrTooMany (the step would add more than MaxDevicesPerStep). A
// DryRun returns the same selection and error as the real step and changes
// nothing.
func (c *Controller) Rollout(now time.Time, wave string, sel Selection, candidates []Candidate) ([]string, Changes, error) {
	if err := sel.validate(); err != nil {
		return nil, Changes{}, err
	}
	lock := c.mu.Lock
	unlock := c.mu.Unlock
	if sel.DryRun {
		lock, unlock = c.mu.RLock, c.mu.RUnlock
	}
	lock()
	defer unlock()
	ws, err := c.activeWave(wave)
	if err != nil {
		return nil, Changes{}, err
	}
	var chosen []string
	if len(sel.UUIDs) > 0 {
		chosen, err = ws.listed(sel, candidates)
	} else {
		chosen, err = ws.choose(now, sel, candidates)
	}
	if err != nil {
		return nil, Changes{}, err
	}
	if len(chosen) > MaxDevicesPerStep {
		return nil, Changes{}, fmt.Errorf("%w: the step selects %d devices, over %d", ErrTooMany, len(chosen), MaxDevicesPerStep)
	}
	if sel.DryRun || len(chosen) == 0 {
		return chosen, Changes{}, nil
	}
	cs := newChangeSet()
	if ws.Policy.rated() && ws.Released == ws.Scheduled {
		// The release budget accrues only while devices wait: a wave that
		// waited idle has saved nothing, so its first minute after this step
		// releases at most the rate, as AWS's maximumPerMinute promises.
		ws.Tokens = 0
		if now.After(ws.LastTick) {
			ws.LastTick = now
		}
	}
	block := make([]Member, len(chosen)) // one allocation for the step
	for i, uuid := range chosen {
		m := &block[i]
		*m = Member{Wave: ws.Name, UUID: uuid, Seq: len(ws.members), State: Scheduled, ScheduledAt: now}
		ws.members = append(ws.members, m)
		ws.byUUID[uuid] = m
		ws.counts[stateIndex(Scheduled)]++
		c.join(ws, m)
		cs.member(m)
	}
	ws.Scheduled = len(ws.members)
	cs.wave(ws)
	return chosen, cs.changes(), nil
}

// inGroups returns a filter for Selection.Groups.
func inGroups(groups []string) func(string) bool {
	if len(groups) == 0 {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(groups))
	for _, g := range groups {
		set[g] = true
	}
	return func(g string) bool { return set[g] }
}

// listed resolves Selection.UUIDs: each must be a candidate in the groups;
// members and repeats are skipped.
func (ws *waveState) listed(sel Selection, candidates []Candidate) ([]string, error) {
	ok := inGroups(sel.Groups)
	eligible := make(map[string]bool, len(candidates))
	for _, cd := range candidates {
		if _, dup := eligible[cd.UUID]; !dup { // as first listed
			eligible[cd.UUID] = ok(cd.Group)
		}
	}
	seen := make(map[string]bool, len(sel.UUIDs))
	var out []string
	for _, uuid := range sel.UUIDs {
		if !eligible[uuid] || uuid == "" {
			return nil, fmt.Errorf("%w: %q", ErrNotCandidate, uuid)
		}
		if _, member := ws.byUUID[uuid]; member || seen[uuid] {
			continue
		}
		seen[uuid] = true
		out = append(out, uuid)
	}
	return out, nil
}

// choose orders the eligible candidates and cuts the list at the limit.
func (ws *waveState) choose(now time.Time, sel Selection, candidates []Candidate) ([]string, error) {
	type ranked struct {
		uuid   string
		recent bool
		prefix uint64 // the hash's first 8 bytes, big-endian: most comparisons end here
		key    [sha256.Size]byte
	}
	ok := inGroups(sel.Groups)
	recentSince := now.Add(-RecentlyActive)
	seen := make(map[string]bool, len(candidates))
	eligible := make([]ranked, 0, len(candidates))
	buf := make([]byte, 0, len(ws.Name)+64)
	for _, cd := range candidates {
		if cd.UUID == "" || seen[cd.UUID] {
			continue
		}
		seen[cd.UUID] = true // a repeated candidate counts once, as first listed
		if _, member := ws.byUUID[cd.UUID]; member || !ok(cd.Group) {
			continue
		}
		buf = append(append(append(buf[:0], ws.Name...), '/'), cd.UUID...)
		r := ranked{uuid: cd.UUID, recent: !cd.LastSeen.IsZero() && !cd.LastSeen.Before(recentSince), key: sha256.Sum256(buf)}
		r.prefix = binary.BigEndian.Uint64(r.key[:8])
		eligible = append(eligible, r)
	}
	slices.SortFunc(eligible, func(a, b ranked) int {
		if a.recent != b.recent {
			if a.recent {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(a.prefix, b.prefix); c != 0 {
			return c
		}
		if c := bytes.Compare(a.key[:], b.key[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.uuid, b.uuid)
	})
	n := len(eligible)
	switch {
	case sel.Limit > 0:
		n = min(n, sel.Limit)
	case sel.Percentage > 0:
		// Hundredths of a percent keep the rounding exact: 10% of 30 is 3,
		// not 4 through a float a hair above 3.
		// A share below a hundredth of a percent counts as one hundredth.
		p := max(1, int64(math.Round(sel.Percentage*100)))
		n = int((p*int64(n) + 9999) / 10000)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = eligible[i].uuid
	}
	return out, nil
}
