package rollout

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

// chooser supplies the choices of a random run: a seeded PRNG in the
// property test, the fuzzer's bytes in the fuzz target.
type chooser interface{ intn(n int) int }

type prngChooser struct{ r *rand.Rand }

func (p prngChooser) intn(n int) int { return p.r.IntN(n) }

type byteChooser struct{ b []byte }

func (c *byteChooser) intn(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	return v % n
}

// world runs random operations on a controller as the gateway would: every
// Changes is written into a store (three maps), and now and then a second
// controller is restored from that store. Both controllers get every
// operation and must answer alike.
type world struct {
	t       testing.TB
	now     time.Time
	live    *Controller // never restored
	twin    *Controller // restored from the store now and then
	waves   map[string]Wave
	members map[string]Member // key: wave + "\x00" + uuid, as gateway/store keys them
	updates map[string]Update
	cands   []Candidate
	nWaves  int
	log     []string
	replay  string // the command that repeats the run
}

const worldDevices = 30

func newWorld(t testing.TB) *world {
	w := &world{t: t, now: t0, live: New(), twin: New(),
		waves: map[string]Wave{}, members: map[string]Member{}, updates: map[string]Update{}}
	for i := range worldDevices {
		// Last seen spread over two days before t0, so that the recency
		// band splits the fleet differently as time goes on.
		w.cands = append(w.cands, Candidate{UUID: dev(i), Group: fmt.Sprintf("g%d", i%3), LastSeen: t0.Add(-time.Duration(i) * 100 * time.Minute)})
	}
	return w
}

var worldPolicies = []Policy{
	{},
	{MaxPerMinute: 2},
	{Exponential: &ExponentialRate{BaseRatePerMinute: 1, IncrementFactor: 1.5, NotifiedThings: 2}},
	{Exponential: &ExponentialRate{BaseRatePerMinute: 1, IncrementFactor: 2, SucceededThings: 1}, MaxPerMinute: 5},
	{Abort: []AbortCriterion{{FailureType: FailureFailed, ThresholdPercent: 30, MinExecuted: 3}}},
	{InProgressTimeout: 3 * time.Minute, Abort: []AbortCriterion{{FailureType: FailureTimedOut, ThresholdPercent: 50, MinExecuted: 4}}},
	{MaxPerMinute: 3, InProgressTimeout: 5 * time.Minute, Abort: []AbortCriterion{{FailureType: FailureAll, ThresholdPercent: 60, MinExecuted: 2}, {FailureType: FailureReverted, ThresholdPercent: 10, MinExecuted: 5}}},
}

var worldEvents = []string{EcuDownloadStarted, EcuDownloadCompleted, EcuInstallationStarted, EcuInstallationApplied, EcuInstallationCompleted, "EcuOther"}

func (w *world) waveName(ch chooser) string {
	if w.nWaves == 0 || ch.intn(10) == 0 {
		return "nope"
	}
	return fmt.Sprintf("w%d", ch.intn(w.nWaves))
}

// step applies one random operation to both controllers.
func (w *world) step(ch chooser) {
	w.now = w.now.Add(time.Duration(ch.intn(90)) * time.Second)
	now := w.now
	var desc string
	var op func(c *Controller) (any, Changes, error)
	switch k := ch.intn(100); {
	case k < 8:
		name := fmt.Sprintf("w%d", w.nWaves)
		if w.nWaves > 0 && ch.intn(6) == 0 {
			name = fmt.Sprintf("w%d", ch.intn(w.nWaves)) // a reused name
		} else {
			w.nWaves++
		}
		s := spec(name, fmt.Sprintf("t%d", ch.intn(3)), uint32(1+ch.intn(4)), worldPolicies[ch.intn(len(worldPolicies))])
		desc = fmt.Sprintf("create %s %s v%d", s.Name, s.Tag, s.Version)
		op = func(c *Controller) (any, Changes, error) { ch, err := c.CreateWave(now, s); return nil, ch, err }
	case k < 22:
		wave := w.waveName(ch)
		var sel Selection
		switch ch.intn(4) {
		case 0:
			sel.Limit = 1 + ch.intn(8)
		case 1:
			sel.Percentage = []float64{10, 25, 50, 100}[ch.intn(4)]
		case 2:
			for range 1 + ch.intn(4) {
				sel.UUIDs = append(sel.UUIDs, dev(ch.intn(worldDevices+1))) // dev(30) is no candidate
			}
		}
		if ch.intn(3) == 0 {
			sel.Groups = []string{fmt.Sprintf("g%d", ch.intn(3))}
		}
		sel.DryRun = ch.intn(5) == 0
		desc = fmt.Sprintf("rollout %s %+v", wave, sel)
		cands := w.cands
		op = func(c *Controller) (any, Changes, error) { return c.Rollout(now, wave, sel, cands) }
	case k < 40:
		desc = "tick"
		op = func(c *Controller) (any, Changes, error) { return nil, c.Tick(now), nil }
	case k < 94:
		uuid := dev(ch.intn(worldDevices))
		// Mostly events that fit one of the device's active waves, so
		// members go all the way; sometimes stray ones.
		var versions []uint32
		var memberCorrs []string
		for _, m := range w.members {
			if x := w.waves[m.Wave]; m.UUID == uuid && x.Status == WaveActive {
				versions = append(versions, x.Version)
				if m.CorrelationID != "" {
					memberCorrs = append(memberCorrs, m.CorrelationID)
				}
			}
		}
		slices.Sort(versions) // map order must not reach the run
		slices.Sort(memberCorrs)
		corrs := []string{"c0", "c1"}
		if u, ok := w.updates[uuid]; ok {
			corrs = append(corrs, u.CorrelationID)
		}
		e := Event{Type: worldEvents[ch.intn(len(worldEvents))], Version: uint32(ch.intn(5)), Success: ch.intn(5) != 0}
		if len(versions) > 0 && ch.intn(4) != 0 {
			e.Version = versions[ch.intn(len(versions))]
		}
		if len(memberCorrs) > 0 && ch.intn(4) != 0 {
			e.CorrelationID = memberCorrs[ch.intn(len(memberCorrs))]
		} else {
			e.CorrelationID = corrs[ch.intn(len(corrs))]
		}
		if e.Type == EcuDownloadStarted && ch.intn(2) == 0 {
			e.CorrelationID = fmt.Sprintf("n%d", ch.intn(1000)) // a new attempt
		}
		desc = fmt.Sprintf("event %s %+v", uuid, e)
		op = func(c *Controller) (any, Changes, error) { return nil, c.OnEvent(now, uuid, e), nil }
	case k < 97:
		wave := w.waveName(ch)
		desc = "complete " + wave
		op = func(c *Controller) (any, Changes, error) { ch, err := c.Complete(now, wave); return nil, ch, err }
	default:
		wave := w.waveName(ch)
		desc = "cancel " + wave
		op = func(c *Controller) (any, Changes, error) { ch, err := c.Cancel(now, wave); return nil, ch, err }
	}
	w.log = append(w.log, fmt.Sprintf("+%v %s", now.Sub(t0), desc))
	r1, ch1, err1 := op(w.live)
	r2, ch2, err2 := op(w.twin)
	if fmt.Sprint(err1) != fmt.Sprint(err2) || !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(ch1, ch2) {
		w.fail("the restored controller answered differently:\n live %v %v %+v\n twin %v %v %+v", r1, err1, ch1, r2, err2, ch2)
	}
	if err1 != nil && !ch1.Empty() {
		w.fail("an operation failed with %v but changed %+v", err1, ch1)
	}
	w.persist(ch1)
}

func (w *world) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("after operations:\n%s\n%s\nreplay: %s", joinLines(w.log), fmt.Sprintf(format, args...), w.replay)
}

func joinLines(lines []string) string {
	if len(lines) > 40 {
		lines = append([]string{"..."}, lines[len(lines)-40:]...)
	}
	out := ""
	for _, l := range lines {
		out += "  " + l + "\n"
	}
	return out
}

func (w *world) persist(ch Changes) {
	for _, x := range ch.Waves {
		w.waves[x.Name] = x
	}
	for _, m := range ch.Members {
		w.members[m.Wave+"\x00"+m.UUID] = m
	}
	for _, u := range ch.Updates {
		w.updates[u.UUID] = u
	}
	for _, x := range ch.Ended {
		if x.Status == WaveActive || !reflect.DeepEqual(w.waves[x.Name], x) {
			w.fail("ended wave %+v is not the wave record written", x)
		}
	}
}

// stored returns the store's records sorted as Changes are, as a gateway
// would read them back (in key order, not the order Restore needs).
func (w *world) stored() ([]Wave, []Member, []Update) {
	waves := mapValues(w.waves)
	slices.SortFunc(waves, func(a, b Wave) int { return cmp.Compare(a.Name, b.Name) })
	members := mapValues(w.members)
	slices.SortFunc(members, compareMembers)
	updates := mapValues(w.updates)
	slices.SortFunc(updates, func(a, b Update) int { return cmp.Compare(a.UUID, b.UUID) })
	return waves, members, updates
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// check compares the live controller with the store and with a controller
// restored from it, and checks the invariants a reader may rely on.
func (w *world) check() {
	w.t.Helper()
	waves, members, updates := w.stored()
	snap := w.live.Snapshot()
	if !reflect.DeepEqual(snap.Waves, nilIfEmpty(waves)) || !reflect.DeepEqual(snap.Members, nilIfEmpty(members)) || !reflect.DeepEqual(snap.Updates, nilIfEmpty(updates)) {
		w.fail("the store misses changes:\n live  %+v\n store %+v %+v %+v", snap, waves, members, updates)
	}
	// Restore takes records in any order.
	slices.Reverse(members)
	restored, err := Restore(waves, members, updates)
	if err != nil {
		w.fail("Restore: %v", err)
	}
	if got := restored.Snapshot(); !reflect.DeepEqual(got, snap) {
		w.fail("restored snapshot differs:\n got  %+v\n want %+v", got, snap)
	}
	for _, x := range w.live.Waves() {
		a, err1 := w.live.WaveStatus(x.Name)
		b, err2 := restored.WaveStatus(x.Name)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			w.fail("WaveStatus(%s): live %+v %v, restored %+v %v", x.Name, a, err1, b, err2)
		}
		w.checkWave(a)
	}
	if a, b := w.live.VersionStatus(), restored.VersionStatus(); !reflect.DeepEqual(a, b) {
		w.fail("VersionStatus: live %+v, restored %+v", a, b)
	}
	for i := range worldDevices + 1 {
		wa, ta := w.live.WaveFor(dev(i))
		wb, tb := restored.WaveFor(dev(i))
		if wa != wb || ta != tb {
			w.fail("WaveFor(%s): live %q %q, restored %q %q", dev(i), wa, ta, wb, tb)
		}
		if want := w.servedWave(dev(i)); wa != want {
			w.fail("WaveFor(%s) = %q, the records say %q", dev(i), wa, want)
		}
		for tag := range 3 {
			tag := fmt.Sprintf("t%d", tag)
			sa, sb := w.live.ServedWave(dev(i), tag), restored.ServedWave(dev(i), tag)
			if want := w.servedWaveOfTag(dev(i), tag); sa != want || sb != want {
				w.fail("ServedWave(%s, %s): live %q, restored %q, the records say %q", dev(i), tag, sa, sb, want)
			}
		}
	}
	w.twin = restored
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// checkWave checks a wave's counters against its members.
func (w *world) checkWave(rep WaveReport) {
	ms := w.live.Members(rep.Wave.Name)
	counts := map[State]int{}
	for _, s := range States {
		counts[s] = 0
	}
	for i, m := range ms {
		counts[m.State]++
		if m.Seq != i || (m.State == Scheduled) != (i >= rep.Wave.Released) {
			w.fail("wave %s member %d: %+v with %d released", rep.Wave.Name, i, m, rep.Wave.Released)
		}
	}
	if !reflect.DeepEqual(counts, rep.Counts) || rep.Total != len(ms) || rep.Wave.Scheduled != len(ms) {
		w.fail("wave %s: report %+v, members count %v", rep.Wave.Name, rep, counts)
	}
	active := 0
	for _, x := range w.live.Waves() {
		if x.Tag == rep.Wave.Tag && x.Status == WaveActive {
			active++
		}
	}
	if active > 1 {
		w.fail("tag %s has %d active waves", rep.Wave.Tag, active)
	}
}

// servedWaveOfTag is ServedWave's definition, from the records alone: the
// tag's active wave, if the device is a released member of it.
func (w *world) servedWaveOfTag(uuid, tag string) string {
	for _, x := range w.waves {
		if x.Tag != tag || x.Status != WaveActive {
			continue
		}
		if m, ok := w.members[x.Name+"\x00"+uuid]; ok && m.State != Scheduled {
			return x.Name
		}
	}
	return ""
}

// servedWave is WaveFor's definition, from the records alone: the
// latest-created active wave in which the device is a released member.
func (w *world) servedWave(uuid string) string {
	best := Wave{}
	for _, m := range w.members {
		x := w.waves[m.Wave]
		if m.UUID != uuid || m.State == Scheduled || x.Status != WaveActive {
			continue
		}
		if best.Name == "" || x.CreatedAt.After(best.CreatedAt) || (x.CreatedAt.Equal(best.CreatedAt) && x.Name > best.Name) {
			best = x
		}
	}
	return best.Name
}

// TestRestoreReproduces runs random operations under several seeds,
// persisting every Changes as the gateway does; after every few operations
// a controller restored from the records must report the same wave and
// version status and serve the same waves, and then keep deciding exactly
// as the controller that was never restarted.
func TestRestoreReproduces(t *testing.T) {
	seeds := uint64(20)
	if testing.Short() {
		seeds = 3
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			r := prngChooser{rand.New(rand.NewPCG(seed, 0x5eed))}
			w := newWorld(t)
			w.replay = fmt.Sprintf("go test ./gateway/rollout -run 'TestRestoreReproduces/seed=%d$'", seed)
			for i := range 500 {
				w.step(r)
				if i%5 == 0 {
					w.check()
				}
			}
			w.check()
			if w.nWaves == 0 || len(w.members) == 0 || len(w.updates) == 0 {
				t.Fatalf("the run exercised too little: %d waves, %d members, %d updates", w.nWaves, len(w.members), len(w.updates))
			}
		})
	}
}

// FuzzOperations drives the same operations from the fuzzer's bytes: no
// input may panic, and the restore checks must hold.
func FuzzOperations(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 10, 10, 1, 3, 0, 1, 30, 30, 50, 60, 70, 80, 90, 95, 99})
	f.Add([]byte("create a wave, roll it out, tick, send events, complete it"))
	seed := make([]byte, 512)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range seed {
		seed[i] = byte(r.IntN(256))
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1024 {
			return
		}
		w := newWorld(t)
		w.replay = "go test ./gateway/rollout -run FuzzOperations (the failing input is in testdata/fuzz)"
		ch := &byteChooser{b: data}
		for i := 0; len(ch.b) > 0; i++ {
			w.step(ch)
			if i%10 == 9 {
				w.check()
			}
		}
		w.check()
	})
}
