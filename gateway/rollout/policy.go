package rollout

import (
	"container/heap"
	"fmt"
	"math"
	"time"
)

// maxRate bounds release rates, in devices per minute: above AWS IoT's own
// 1,000 per minute by far, and low enough that the release budget of one
// minute (rate × nanoseconds) fits an int64.
const maxRate = 1_000_000

// nsPerMinute is the release budget of one device: the budget grows by the
// rate per minute for every nanosecond, so it is exact integer arithmetic.
const nsPerMinute = int64(time.Minute)

// validate checks a policy against the AWS IoT jobs ranges (awsota.md §5);
// errors wrap ErrBadPolicy.
func (p Policy) validate() error {
	if p.MaxPerMinute < 0 || p.MaxPerMinute > maxRate {
		return fmt.Errorf("%w: max per minute %d outside 0..%d", ErrBadPolicy, p.MaxPerMinute, maxRate)
	}
	if e := p.Exponential; e != nil {
		if e.BaseRatePerMinute < 1 || e.BaseRatePerMinute > 1000 {
			return fmt.Errorf("%w: exponential base rate %d outside 1..1000", ErrBadPolicy, e.BaseRatePerMinute)
		}
		if !(e.IncrementFactor >= 1.1 && e.IncrementFactor <= 5) {
			return fmt.Errorf("%w: exponential increment factor %v outside 1.1..5", ErrBadPolicy, e.IncrementFactor)
		}
		if e.NotifiedThings < 0 || e.SucceededThings < 0 || (e.NotifiedThings >= 1) == (e.SucceededThings >= 1) {
			return fmt.Errorf("%w: exponential rate needs exactly one of notified things (%d) and succeeded things (%d) at 1 or more",
				ErrBadPolicy, e.NotifiedThings, e.SucceededThings)
		}
	}
	for i, a := range p.Abort {
		switch a.FailureType {
		case FailureFailed, FailureReverted, FailureTimedOut, FailureAll:
		default:
			return fmt.Errorf("%w: abort criterion %d: unknown failure type %q", ErrBadPolicy, i, a.FailureType)
		}
		if !(a.ThresholdPercent > 0 && a.ThresholdPercent <= 100) {
			return fmt.Errorf("%w: abort criterion %d: threshold %v%% outside (0, 100]", ErrBadPolicy, i, a.ThresholdPercent)
		}
		if a.MinExecuted < 1 {
			return fmt.Errorf("%w: abort criterion %d: min executed %d below 1", ErrBadPolicy, i, a.MinExecuted)
		}
	}
	if p.InProgressTimeout < 0 {
		return fmt.Errorf("%w: negative in-progress timeout %v", ErrBadPolicy, p.InProgressTimeout)
	}
	return nil
}

// rated reports whether the policy limits the release rate at all.
func (p Policy) rated() bool { return p.MaxPerMinute > 0 || p.Exponential != nil }

// exponentialRate is the release rate after released devices were released
// and confirmed ones confirmed: the base rate multiplied by the factor once
// for every full NotifiedThings (or SucceededThings) devices, capped by
// MaxPerMinute. The multiplication is repeated rather than math.Pow so the
// cap stops it early and the result is the same on every platform.
func (p Policy) exponentialRate(released, confirmed int) float64 {
	e := p.Exponential
	count, step := released, e.NotifiedThings
	if e.SucceededThings > 0 {
		count, step = confirmed, e.SucceededThings
	}
	limit := float64(maxRate)
	if p.MaxPerMinute > 0 {
		limit = float64(p.MaxPerMinute)
	}
	rate := float64(e.BaseRatePerMinute)
	for k := count / step; k > 0 && rate < limit; k-- {
		rate *= e.IncrementFactor
	}
	return min(rate, limit)
}

// release is the token bucket of the rate limit. The budget grows by the
// rate for the time since LastTick while devices wait (Rollout empties it
// when a step finds none waiting), and is capped at one minute's worth for
// ticks far apart; the members it affords are released in Seq order. So in
// any minute at most the rate, plus one for the fraction carried, is
// released: a budget saved while the wave was idle would double that. Rates are whole devices per
// minute (an exponential rate of 5.5 releases 5 a minute). The budget is
// kept exactly, in device-nanoseconds, and stored as Tokens (devices): the
// conversion back is exact for every rate up to 37,500 a minute and off by
// a billionth of a device at most above. A wave without a rate limit
// releases everything scheduled at once.
func (c *Controller) release(now time.Time, ws *waveState, cs *changeSet) {
	waiting := ws.Scheduled - ws.Released
	p := ws.Policy
	if !p.rated() {
		if waiting > 0 {
			c.releaseNext(now, ws, waiting, cs)
		}
		return
	}
	changed := false
	rate := int64(p.MaxPerMinute)
	if p.Exponential != nil {
		changed = ws.setRate(p.exponentialRate(ws.Released, ws.counts[stateIndex(Confirmed)]))
		rate = int64(ws.Rate)
	}
	full := rate * nsPerMinute
	budget := min(int64(math.Round(ws.Tokens*float64(nsPerMinute))), full)
	// Nothing waiting, nothing accrues: no record to write every tick
	// while a wave is idle.
	if now.After(ws.LastTick) && waiting > 0 {
		dt := min(now.Sub(ws.LastTick), time.Minute)
		budget = min(budget+rate*int64(dt), full)
		ws.LastTick = now
		changed = true
	}
	n := int(min(budget/nsPerMinute, int64(waiting)))
	budget -= int64(n) * nsPerMinute
	if t := float64(budget) / float64(nsPerMinute); t != ws.Tokens {
		ws.Tokens = t
		changed = true
	}
	if n > 0 {
		c.releaseNext(now, ws, n, cs)
		if p.Exponential != nil {
			ws.setRate(p.exponentialRate(ws.Released, ws.counts[stateIndex(Confirmed)]))
		}
	}
	if changed {
		cs.wave(ws)
	}
}

// setRate stores an exponential rate and reports whether it changed.
func (ws *waveState) setRate(r float64) bool {
	if r == ws.Rate {
		return false
	}
	ws.Rate = r
	return true
}

// executed counts the members that reached a state the abort criteria
// count: AWS's terminal states plus Failed, which aktualizr-nano may still
// retry but which AWS counts as soon as the execution reports it.
func (ws *waveState) executed() int {
	return ws.count(Confirmed) + ws.count(Failed) + ws.count(Reverted) + ws.count(TimedOut)
}

// failures counts the executed members that failed in the way t names.
func (ws *waveState) failures(t FailureType) int {
	switch t {
	case FailureFailed:
		return ws.count(Failed) + ws.count(Reverted)
	case FailureReverted:
		return ws.count(Reverted)
	case FailureTimedOut:
		return ws.count(TimedOut)
	default: // FailureAll; validation admits no other
		return ws.count(Failed) + ws.count(Reverted) + ws.count(TimedOut)
	}
}

func (ws *waveState) count(s State) int { return ws.counts[stateIndex(s)] }

// checkAbort aborts an active wave when one of its criteria holds: at least
// MinExecuted members executed and the failure share reached the threshold.
// AWS IoT's thresholdPercentage is "the minimum percentage of job execution
// failures that must occur to initiate the job abort" (awsota.md §5), so
// exactly at the threshold aborts, and a threshold of 100% aborts once every
// executed device failed. Thresholds count in hundredths of a percent (AWS
// allows two decimals), so the comparison is exact integer arithmetic.
func (c *Controller) checkAbort(now time.Time, ws *waveState, cs *changeSet) bool {
	if ws.Status != WaveActive {
		return false
	}
	executed := ws.executed()
	for _, a := range ws.Policy.Abort {
		if executed == 0 || executed < a.MinExecuted {
			continue
		}
		failures := ws.failures(a.FailureType)
		threshold := int64(math.Round(a.ThresholdPercent * 100))
		if int64(failures)*10000 >= threshold*int64(executed) {
			reason := fmt.Sprintf("failure rate %.1f%% (%d of %d) at or over threshold %s%% (%s)",
				100*float64(failures)/float64(executed), failures, executed, hundredths(threshold), a.FailureType)
			c.endWave(now, ws, WaveAborted, reason, cs)
			return true
		}
	}
	return false
}

// hundredths formats a count of hundredths with one decimal, or two when the
// second is not 0: 2000 -> "20.0", 1225 -> "12.25".
func hundredths(h int64) string {
	if h%10 == 0 {
		return fmt.Sprintf("%d.%d", h/100, h/10%10)
	}
	return fmt.Sprintf("%d.%02d", h/100, h%100)
}

// expire times out the members that started more than InProgressTimeout
// before now and have not reached a terminal state (Failed is not one: the
// device retries).
func (ws *waveState) expire(now time.Time, cs *changeSet) {
	timeout := ws.Policy.InProgressTimeout
	for len(ws.timeouts) > 0 && now.Sub(ws.timeouts[0].StartedAt) > timeout {
		m := heap.Pop(&ws.timeouts).(*Member)
		if inProgress(m.State) {
			ws.setState(m, TimedOut)
			m.FinishedAt = now
			cs.member(m)
		}
	}
}

// inProgress reports whether a member in state s started and has not
// finished: the states the in-progress timeout applies to.
func inProgress(s State) bool { return s == Downloading || s == Installed || s == Failed }

// watch starts the in-progress timeout of a member that started.
func (ws *waveState) watch(m *Member) {
	if ws.Status == WaveActive && ws.Policy.InProgressTimeout > 0 {
		heap.Push(&ws.timeouts, m)
	}
}

// timeoutQueue is a min-heap of started members by start time, then Seq.
// A member's StartedAt never changes once set, so entries never go stale;
// members that finished are dropped when they reach the top.
type timeoutQueue []*Member

func (q timeoutQueue) Len() int { return len(q) }
func (q timeoutQueue) Less(i, j int) bool {
	if c := q[i].StartedAt.Compare(q[j].StartedAt); c != 0 {
		return c < 0
	}
	return q[i].Seq < q[j].Seq
}
func (q timeoutQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *timeoutQueue) Push(x any)   { *q = append(*q, x.(*Member)) }
func (q *timeoutQueue) Pop() any {
	old := *q
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return m
}
