package fleetrun

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/scenarios"
	"github.com/fleetsim/fleetsim/sim"
)

// LiveOptions run a scenario on the wall clock: the embedded gateway
// serves the device API on loopback over mutual TLS (or an external
// gateway serves it), and every device connects to it with its own
// certificate and connections, as MCUs do.
type LiveOptions struct {
	// Proto is the devices' HTTP version: h1 (default), h2 or h3.
	Proto live.Proto
	// TimeScale runs the scenario's clock this many times faster than the
	// wall clock: its times (start spread, publications, waves, duration,
	// polling intervals) are divided by it. The devices' own timing (flash,
	// self-test, the agent's timeouts) is not, so a scale above 1 makes an
	// update look longer in scenario time than it is. Default 1.
	TimeScale float64
	// Gateway, when set, is the gateway the devices update from instead
	// of the embedded one.
	Gateway *ExternalGateway
}

// Check says why s cannot run live with these options: a fault only a
// virtual run injects, an external gateway without its credentials. Run
// checks too; a command line checks first, to tell bad input from a run
// that failed.
func (o *LiveOptions) Check(s *scenarios.Scenario) error {
	c := *o
	return c.check(s)
}

func (o *LiveOptions) check(s *scenarios.Scenario) error {
	if o.TimeScale == 0 {
		o.TimeScale = 1
	}
	if o.TimeScale < 1 {
		return fmt.Errorf("time scale %g: at least 1 (the wall clock)", o.TimeScale)
	}
	if o.Proto == "" {
		o.Proto = live.HTTP1
	}
	for i, f := range s.Faults {
		if f.Kind != "power-cut" && f.Kind != "clock-skew" {
			return fmt.Errorf("faults[%d]: a live run injects power cuts and clock skews only; %s runs in virtual mode", i, f.Kind)
		}
	}
	if o.Gateway != nil {
		return o.Gateway.check()
	}
	return nil
}

// liveRun is the wall-clock side of a live run.
type liveRun struct {
	opts    LiveOptions
	host    *live.Host
	started time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	served  chan error
	devices sync.WaitGroup
	timers  []*time.Timer
}

// wallClock is the gateway's clock in a live run.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// scaled is a scenario duration on the run's clock.
func (w *world) scaled(d time.Duration) time.Duration {
	if w.live == nil || d == 0 {
		return d
	}
	return max(time.Duration(float64(d)/w.live.opts.TimeScale), time.Second)
}

// serve starts the gateway's device API on loopback and points the
// devices' host at it.
func (l *liveRun) serve(w *world) error {
	cert, err := w.ca.IssueServer(nil, time.Now().Add(-time.Hour), w.rand("server", 0))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(w.ca.Cert)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	ready := make(chan string, 1)
	l.served = make(chan error, 1)
	h3 := ""
	if l.opts.Proto == live.HTTP3 {
		h3 = "127.0.0.1:0"
	}
	go func() {
		l.served <- w.gw.Serve(l.ctx, gateway.ServeConfig{
			DeviceAddr: "127.0.0.1:0", H3Addr: h3, Certificate: cert, ClientCAs: pool, ShutdownTimeout: 5 * time.Second,
			Ready: func(dev, h3 net.Addr, _ net.Addr) {
				if l.opts.Proto == live.HTTP3 {
					ready <- h3.String()
				} else {
					ready <- dev.String()
				}
			},
		})
	}()
	select {
	case addr := <-ready:
		u := &url.URL{Scheme: "https", Host: addr}
		l.host = &live.Host{Gateway: u, Proto: l.opts.Proto, RootCAs: pool, RequestTimeout: 30 * time.Second}
		return nil
	case err := <-l.served:
		l.cancel()
		return fmt.Errorf("serving the gateway on loopback: %w", err)
	}
}

// start powers the devices on, each at its start time, in parallel.
func (l *liveRun) start(w *world) {
	l.started = time.Now()
	r := w.rand("start", 0)
	for _, dev := range w.devices {
		delay := w.scaled(w.startOffset(r, dev))
		l.devices.Add(1)
		go func() {
			defer l.devices.Done()
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
				_ = dev.d.Run(l.ctx)
			case <-l.ctx.Done():
			}
		}()
	}
}

// now is the wall clock in scenario time.
func (l *liveRun) now() time.Time {
	return Epoch.Add(time.Duration(float64(time.Since(l.started)) * l.opts.TimeScale))
}

// wall is how long from now until scenario time t.
func (l *liveRun) wall(t time.Time) time.Duration {
	return time.Duration(float64(t.Sub(Epoch))/l.opts.TimeScale) - time.Since(l.started)
}

func (l *liveRun) at(w *world, t time.Time, fn func()) {
	l.timers = append(l.timers, time.AfterFunc(max(l.wall(t), 0), func() {
		w.lock()
		defer w.unlock()
		fn()
	}))
}

func (l *liveRun) sleepUntil(t time.Time) {
	if d := l.wall(t); d > 0 {
		time.Sleep(d)
	}
}

// stop ends the run: timers, devices (each powers off where it is), then
// the gateway's listeners. It is called once.
func (l *liveRun) stop() {
	for _, t := range l.timers {
		t.Stop()
	}
	l.cancel()
	l.devices.Wait()
	<-l.served
}

func (l *liveRun) netStats() sim.NetStats {
	s := l.host.Stats()
	return sim.NetStats{
		Connections: s.Connections.Load(), Requests: s.Requests.Load(),
		BytesSent: s.BytesSent.Load(), BytesReceived: s.BytesReceived.Load(),
		ConnectFailures: s.FailedConnects.Load(), RequestFails: s.FailedSend.Load(),
	}
}
