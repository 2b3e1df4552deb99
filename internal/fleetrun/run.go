package fleetrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/scenarios"
	"github.com/fleetsim/fleetsim/sim"
)

// Options change how a scenario runs, not what it describes.
type Options struct {
	// Dir holds the gateway's data; "" keeps it in memory, so that a run
	// touches no disk.
	Dir string
	// Progress, when set, is called on the run's goroutine every
	// ProgressEvery of virtual time.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Trace, when set, receives every device event as a line: virtual
	// time, device, event.
	Trace io.Writer
	// NoSharing turns off the shortcuts that make a large fleet fit and
	// run fast: flash pages shared by content across devices, and
	// signature checks remembered across devices. Results are the same.
	NoSharing bool
	// Quantum is how far a device may run ahead in virtual time on its own
	// (sim.Net.Quantum); 0 is DefaultQuantum, negative turns it off.
	Quantum time.Duration
	// Live, when set, runs the fleet on the wall clock over real sockets
	// instead of in virtual time.
	Live *LiveOptions
	// Procs, when above 0, is GOMAXPROCS while a virtual run's devices
	// run (the previous value is restored after). One device runs at a
	// time, and with idle processors the runtime wakes one at every
	// hand-off between devices, to find nothing to do: 1 is the fastest on
	// the machines measured. It is process-wide, so the command line sets
	// it and a library user may not want to.
	Procs int
}

// DefaultQuantum lets a device batch about a second of flash work.
const DefaultQuantum = time.Second

// Progress is a snapshot of a run under way.
type Progress struct {
	// Elapsed is the virtual time since the start; Duration the limit.
	Elapsed, Duration time.Duration
	Devices           int
	Updated, Bricked  int
	Requests          int64
	Steps             uint64
	// Done is set on the last call, when the run is over.
	Done bool
}

// sampleEvery is the resolution of the report's time series.
const sampleEvery = time.Minute

// Run runs scenario s (with its defaults applied) in virtual time, or on
// the wall clock with o.Live, and returns the report. Errors: the scenario
// cannot be built (a message naming the field), the gateway's directory
// cannot be used, or something the run itself does fails.
func Run(s *scenarios.Scenario, o Options) (*Report, error) {
	if (s.Mode == "live") != (o.Live != nil) {
		return nil, fmt.Errorf("mode %q: a live run needs LiveOptions, and only a live run takes them", s.Mode)
	}
	if o.Live != nil {
		if err := o.Live.check(s); err != nil {
			return nil, err
		}
	}
	switch {
	case o.Quantum == 0:
		o.Quantum = DefaultQuantum
	case o.Quantum < 0:
		o.Quantum = 0
	}
	w, err := build(s, o)
	if err != nil {
		return nil, err
	}
	w.trace = o.Trace
	defer w.closeGateway()
	if w.live != nil {
		w.live.start(w)
	} else {
		r := w.rand("start", 0)
		for _, dev := range w.devices {
			dev.proc = w.k.Go(Epoch.Add(w.startOffset(r, dev)), func() { _ = dev.d.Run(context.Background()) })
		}
	}
	if err := w.schedulePublications(); err != nil {
		w.shutdown()
		return nil, err
	}
	w.scheduleWaves()
	w.scheduleRotations()
	if err := w.scheduleFaults(); err != nil {
		w.shutdown()
		return nil, err
	}
	if o.Procs > 0 && w.live == nil {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.Procs))
	}
	end := Epoch.Add(time.Duration(s.Duration))
	every := o.ProgressEvery
	if every <= 0 {
		every = time.Hour
	}
	nextProgress, nextSample := Epoch.Add(every), Epoch.Add(sampleEvery)
	// A live run looks every wall second whether it has settled.
	step := sampleEvery
	if w.live != nil {
		step = min(sampleEvery, time.Duration(w.live.opts.TimeScale*float64(time.Second)))
	}
	for now := Epoch; now.Before(end); {
		now = minTime(now.Add(step), end)
		w.runUntil(now)
		w.lock()
		err, settled := w.err, w.settled()
		if err == nil && (!now.Before(nextSample) || settled || !now.Before(end)) {
			w.sample()
			nextSample = nextSample.Add(sampleEvery)
		}
		p := w.progress()
		w.unlock()
		if err != nil {
			w.shutdown()
			return nil, err
		}
		if o.Progress != nil && !now.Before(nextProgress) {
			o.Progress(p)
			nextProgress = nextProgress.Add(every)
		}
		if settled {
			break
		}
	}
	w.stats.end = w.now()
	w.shutdown()
	w.stats.waves = w.waveOutcomes()
	if o.Progress != nil {
		p := w.progress()
		p.Done = true
		o.Progress(p)
	}
	return w.report(), nil
}

// startOffset is when dev powers on: uniform over its cohort's start.
func (w *world) startOffset(r interface{ Uint64() uint64 }, dev *device) time.Duration {
	spread := time.Duration(dev.cohort.spec.Start)
	if spread <= 0 {
		return 0
	}
	return time.Duration(r.Uint64() % uint64(spread))
}

// runUntil lets the world run until time t.
func (w *world) runUntil(t time.Time) {
	if w.live != nil {
		w.live.sleepUntil(t)
		return
	}
	w.k.Run(t)
}

// now is the run's time: virtual, or the wall clock's in scenario time.
func (w *world) now() time.Time {
	if w.live != nil {
		return w.live.now()
	}
	return w.k.Now()
}

// at calls fn at time t, with the run's state to itself.
func (w *world) at(t time.Time, fn func()) {
	if w.live != nil {
		w.live.at(w, t, fn)
		return
	}
	w.k.At(t, fn)
}

// lock and unlock guard the run's state in a live run.
func (w *world) lock() {
	if w.live != nil {
		w.mu.Lock()
	}
}

func (w *world) unlock() {
	if w.live != nil {
		w.mu.Unlock()
	}
}

// netStats counts what crossed the network.
func (w *world) netStats() sim.NetStats {
	if w.live != nil {
		return w.live.netStats()
	}
	return w.net.Stats
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (w *world) progress() Progress {
	return Progress{
		Elapsed: w.now().Sub(Epoch), Duration: time.Duration(w.s.Duration), Devices: len(w.devices),
		Updated: w.stats.updated, Bricked: w.stats.bricked, Requests: w.netStats().Requests, Steps: w.k.Steps(),
	}
}

// settled reports whether nothing more can happen to the outcome: every
// version is out, every device is updated or bricked, and trusts the root
// of the last key rotation unless bricked.
func (w *world) settled() bool {
	return w.stats.published == len(w.s.Rollout.Versions) && w.stats.updated+w.stats.bricked == len(w.devices) && w.rotationsSettled()
}

// shutdown stops every device where it is and lets its goroutine return.
func (w *world) shutdown() {
	if w.live != nil {
		w.live.stop()
		return
	}
	for _, dev := range w.devices {
		dev.d.Stop()
		w.k.Wake(dev.proc)
	}
	w.k.Run(w.k.Now())
}

// schedulePublications uploads each version for every board and tag of the
// fleet at its time.
func (w *world) schedulePublications() error {
	type key struct{ hwid, tag string }
	var targets []key
	boards := map[key]devicemodel.Board{}
	for _, c := range w.cohorts {
		k := key{c.board.HardwareID, c.spec.Tag}
		if _, ok := boards[k]; !ok {
			boards[k] = c.board
			targets = append(targets, k)
		}
	}
	for i, v := range w.s.Rollout.Versions {
		images := make([][]byte, len(targets))
		for j, t := range targets {
			img, err := w.image(boards[t], v)
			if err != nil {
				return err
			}
			images[j] = img
		}
		w.at(Epoch.Add(time.Duration(w.s.Rollout.PublishedAt(i))), func() {
			for j, t := range targets {
				if _, err := w.upload(images[j], t.hwid, t.tag); err != nil {
					w.err = fmt.Errorf("publishing v%d: %w", v, err)
					return
				}
			}
			w.stats.publish(v, w.now())
		})
	}
	return nil
}

// observe follows one device's events (on its goroutine, with the baton).
func (w *world) observe(dev *device, e devicemodel.Event) {
	// The device's own clock: its debt settled, so that the event is
	// timed as if every flash operation had been slept one by one.
	var now time.Time
	if dev.host != nil {
		now = dev.host.Now()
	}
	w.lock()
	defer w.unlock()
	if dev.host == nil {
		now = w.now()
	}
	st := &dev.state
	if w.trace != nil {
		fmt.Fprintf(w.trace, "%s %s %s\n", now.Sub(Epoch), dev.d.UUID(), e)
	}
	// The series counts the devices downloading as they start and stop.
	was := st.downloading()
	defer func() {
		switch is := st.downloading(); {
		case is && !was:
			w.stats.downloading++
		case was && !is:
			w.stats.downloading--
		}
	}()
	switch e.Kind {
	case devicemodel.EventApp:
		if e.Err == nil && e.Version != 0 {
			st.version = e.Version
			if e.Version != dev.cohort.spec.Version && !slices.Contains(w.s.Rollout.Versions, e.Version) && !st.compromised {
				st.compromised = true
				w.stats.compromised++
			}
		}
	case devicemodel.EventBoot:
		if e.Boot != nil && e.Boot.SwapType == mcuboot.SwapRevert && !st.reverted {
			st.reverted = true
			w.stats.reverted++
		}
	case devicemodel.EventPowerCut:
		w.stats.powerCuts++
	case devicemodel.EventHalt:
		if e.Err != nil && errors.Is(e.Err, devicemodel.ErrBricked) && st.bricked == "" {
			st.bricked = e.Err.Error()
			w.stats.bricked++
		}
	case devicemodel.EventAgent:
		w.observeAgent(dev, e.Note, now)
	}
}

func (w *world) observeAgent(dev *device, n agent.Note, now time.Time) {
	st := &dev.state
	switch n.Kind {
	case agent.NoteCheckIn:
		w.observeRoot(dev, n.Root)
		if n.Err == nil {
			w.stats.checkIns++
		} else if w.underAttack() {
			w.stats.attacksRefused++
		}
	case agent.NoteDownload:
		if st.downloadStart.IsZero() {
			st.downloadStart = now
		}
		if n.Err != nil && w.underAttack() {
			w.stats.attacksRefused++
		}
	case agent.NoteConfirm:
		last := w.stats.target()
		if n.Err == nil && n.Version == last && last != 0 && st.updatedAt.IsZero() {
			st.updatedAt = now
			w.stats.updated++
			w.stats.timeToUpdate = append(w.stats.timeToUpdate, now.Sub(w.stats.publishedAt).Seconds())
			if !st.downloadStart.IsZero() {
				w.stats.updateDuration = append(w.stats.updateDuration, now.Sub(st.downloadStart).Seconds())
			}
		}
	}
}

// scheduleFaults arms the scenario's faults.
func (w *world) scheduleFaults() error {
	for i, f := range w.s.Faults {
		at, length := Epoch.Add(time.Duration(f.At)), time.Duration(f.For)
		switch f.Kind {
		case "power-cut":
			w.armPowerCuts(i, f)
		case "malicious-repo":
			if err := w.scheduleAttack(f); err != nil {
				return err
			}
		case "clock-skew":
			// applied at manufacture (clockSkew)
		case "network-outage":
			if f.Rate > 0 {
				w.partition(i, f, at, length)
				continue
			}
			w.at(at, func() { w.net.Down = true; w.stats.outages++ })
			w.at(at.Add(length), func() { w.net.Down = false })
		case "gateway-outage":
			w.at(at, func() {
				w.net.Down = true
				w.stats.outages++
				if err := w.gw.Close(); err != nil {
					w.err = fmt.Errorf("gateway outage: closing the gateway: %w", err)
				}
			})
			w.at(at.Add(length), func() {
				if err := w.restartGateway(); err != nil {
					w.err = fmt.Errorf("gateway outage: restarting the gateway: %w", err)
				}
				w.net.Down = false
			})
		default:
			return fmt.Errorf("faults[%d].kind: %q is not a fault this fleetsim injects", i, f.Kind)
		}
	}
	return nil
}

// partition cuts Rate of the devices, chosen by the seed, off from the
// gateway from at for length; the rest of the fleet keeps it.
func (w *world) partition(i int, f scenarios.Fault, at time.Time, length time.Duration) {
	var cut []*sim.Host
	for n, dev := range w.devices {
		if w.hits("partition", i, n+1, f.Rate) {
			cut = append(cut, dev.host)
		}
	}
	w.at(at, func() {
		w.stats.outages++
		w.stats.partitioned += int64(len(cut))
		for _, h := range cut {
			h.Partitioned = true
		}
	})
	w.at(at.Add(length), func() {
		for _, h := range cut {
			h.Partitioned = false
		}
	})
}

// armPowerCuts picks Rate of the devices, each to lose power at a random
// flash operation of the fault's phase.
func (w *world) armPowerCuts(i int, f scenarios.Fault) {
	phase := phaseOf(f.Phase)
	r := w.rand("power-cut", uint64(i))
	ops := 2 // a confirm writes a couple of words
	switch phase {
	case devicemodel.PhaseDownload:
		ops = int(w.s.Rollout.ImageSize)/256 + 8
	case devicemodel.PhaseSwap, devicemodel.PhaseAny:
		ops = 400
	}
	for _, dev := range w.devices {
		if r.Uint64()%1_000_000 < uint64(f.Rate*1_000_000) {
			dev.d.Arm(devicemodel.PowerCut{Phase: phase, Op: 1 + int(r.Uint64()%uint64(ops))})
			w.stats.powerCutsArmed++
		}
	}
}

// restartGateway opens the gateway again on its store, as a restarted
// process would.
func (w *world) restartGateway() error {
	o := w.gwOptions()
	// A stream of its own: a key rotation after the restart must not draw
	// the bytes the first gateway made its keys from.
	o.Random = w.rand("gateway", uint64(w.stats.gatewayRestarts)+1)
	g, err := gateway.Open(w.dir, o)
	if err != nil {
		return err
	}
	w.gw = g
	w.admin = g.AdminHandler(adminToken)
	w.server.srv.Devices = g.DeviceHandler()
	w.stats.gatewayRestarts++
	return nil
}

// phaseOf reads a fault's phase ("" is any).
func phaseOf(s string) devicemodel.Phase {
	for p := devicemodel.PhaseAny; p <= devicemodel.PhaseStorage; p++ {
		if p.String() == s {
			return p
		}
	}
	return devicemodel.PhaseAny
}
