// Package sim is the fleet engine's virtual world: a deterministic
// scheduler on a virtual clock that runs one device goroutine at a time,
// the link model between devices and the gateway, and the metrics of a run.
//
// Every device is a goroutine running the real firmware (bootloader and
// agent), as an RTOS task would. It gives the baton back to the kernel
// whenever it sleeps or waits on the network, and the kernel resumes the
// device whose wake-up is earliest, ties broken by the order in which they
// were scheduled. Nothing else runs meanwhile, so a run is a pure function
// of its inputs and seed, whatever GOMAXPROCS is.
package sim

import "time"

// Kernel is the scheduler and the virtual clock. Its methods are called
// either from the goroutine that called Run (between device steps) or from
// the one device goroutine that holds the baton: never concurrently.
type Kernel struct {
	// base is the clock's start; now and the events' times count from it.
	base    time.Time
	now     int64
	queue   eventQueue
	seq     uint64
	running *Proc
	// baton is how a device goroutine hands control back to Run.
	baton chan struct{}
	procs int // live processes
	steps uint64
	// until is where the current Run stops.
	until int64
}

// NewKernel returns a kernel whose clock starts at t.
func NewKernel(t time.Time) *Kernel {
	return &Kernel{base: t, baton: make(chan struct{})}
}

// Now is the virtual time.
func (k *Kernel) Now() time.Time { return k.base.Add(time.Duration(k.now)) }

// at is t on the kernel's clock, never before now.
func (k *Kernel) at(t time.Time) int64 { return max(int64(t.Sub(k.base)), k.now) }

// Steps is how many times a device goroutine was resumed.
func (k *Kernel) Steps() uint64 { return k.steps }

// Live is the number of processes that have not returned yet.
func (k *Kernel) Live() int { return k.procs }

// Proc is one device goroutine.
type Proc struct {
	k    *Kernel
	wake chan struct{}
	// gen invalidates a queued wake-up that Wake replaced.
	gen uint64
	// asleep is set while the process waits for a queued wake-up.
	asleep bool
	done   bool
}

type event struct {
	at  int64 // since the kernel's base
	seq uint64
	p   *Proc
	gen uint64
	fn  func()
}

// Go starts fn as a process at time at (not before now). fn runs with the
// baton: it may call Sleep and the kernel's other methods.
func (k *Kernel) Go(at time.Time, fn func()) *Proc {
	p := &Proc{k: k, wake: make(chan struct{})}
	k.procs++
	go func() {
		<-p.wake
		defer func() {
			p.done = true
			k.procs--
			k.handOff(p)
		}()
		fn()
	}()
	p.asleep = true
	k.push(event{at: k.at(at), p: p, gen: p.gen})
	return p
}

// At calls fn on the kernel's goroutine at time t (not before now), in
// order with the processes' wake-ups.
func (k *Kernel) At(t time.Time, fn func()) {
	k.push(event{at: k.at(t), fn: fn})
}

func (k *Kernel) push(e event) {
	k.seq++
	e.seq = k.seq
	k.queue.push(e)
}

// Sleep blocks the running process for d, or until Wake ends the sleep
// early; it reports whether the whole time passed. interrupt is checked
// when the process resumes: a closed interrupt reports false. Called with
// no process running (from Run's goroutine), it only moves nothing and
// reports true.
func (k *Kernel) Sleep(d time.Duration, interrupt <-chan struct{}) bool {
	p := k.running
	if p == nil {
		return true
	}
	if d < 0 {
		d = 0
	}
	end := k.now + int64(d)
	// Nothing is due before the sleep ends: the process would be resumed
	// next anyway, so the clock moves on without a hand-off.
	if end <= k.until && (len(k.queue) == 0 || end < k.queue[0].at) {
		k.now = end
		return !closed(interrupt)
	}
	p.asleep = true
	k.push(event{at: end, p: p, gen: p.gen})
	if !k.handOff(p) {
		<-p.wake
	}
	return k.now >= end && !closed(interrupt)
}

// handOff passes the baton from p, which sleeps or has returned, to what
// is due next, as Run would: it runs the functions due on p's goroutine
// and resumes the next process directly, one goroutine switch per step
// instead of two. Past until, or with nothing queued, the baton goes back
// to Run. It reports whether p itself is next (so it must not wait).
func (k *Kernel) handOff(p *Proc) bool {
	for {
		e, ok := k.next()
		if !ok {
			k.running = nil
			k.baton <- struct{}{}
			return false
		}
		k.now = max(k.now, e.at)
		if e.fn != nil {
			k.running = nil
			e.fn()
			continue
		}
		e.p.asleep = false
		k.running = e.p
		k.steps++
		if e.p == p {
			return true
		}
		e.p.wake <- struct{}{}
		return false
	}
}

// next pops the next live event due by until.
func (k *Kernel) next() (event, bool) {
	for len(k.queue) > 0 && k.queue[0].at <= k.until {
		e := k.queue.pop()
		if e.p != nil && (e.gen != e.p.gen || e.p.done) {
			continue // replaced by a Wake
		}
		return e, true
	}
	return event{}, false
}

func closed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Wake resumes p now if it is asleep (its Sleep reports false when its
// interrupt was closed, and the sleep counts as cut short).
func (k *Kernel) Wake(p *Proc) {
	if p.done || !p.asleep || p == k.running {
		return
	}
	p.gen++
	k.push(event{at: k.now, p: p, gen: p.gen})
}

// Run runs events in order until the queue is empty or the next event is
// after until; the clock then stands at until.
func (k *Kernel) Run(until time.Time) {
	k.until = int64(until.Sub(k.base))
	for {
		e, ok := k.next()
		if !ok {
			break
		}
		k.now = max(k.now, e.at)
		if e.fn != nil {
			e.fn()
			continue
		}
		// The processes pass the baton among themselves (handOff) until
		// nothing is due by until.
		e.p.asleep = false
		k.running = e.p
		k.steps++
		e.p.wake <- struct{}{}
		<-k.baton
	}
	k.now = max(k.now, k.until)
}

// Next is the time of the next queued event, and whether there is one.
func (k *Kernel) Next() (time.Time, bool) {
	for len(k.queue) > 0 {
		e := k.queue[0]
		if e.p != nil && (e.gen != e.p.gen || e.p.done) {
			k.queue.pop()
			continue
		}
		return k.base.Add(time.Duration(e.at)), true
	}
	return time.Time{}, false
}

// eventQueue is a binary heap of events ordered by time, then by the
// order they were queued (typed, so that a push allocates nothing).
type eventQueue []event

func (q eventQueue) less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}

func (q *eventQueue) push(e event) {
	*q = append(*q, e)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *eventQueue) pop() event {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{}
	h = h[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}
