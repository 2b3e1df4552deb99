package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// The check-in scenario runs the update agent itself, (*agent.Agent).CheckIn,
// one agent per virtual device, so that the load test sends exactly what
// devices send: loadgen keeps no copy of the protocol. A device is the
// agent on the smallest platform that can check in: the wall clock, the
// live network with the device's certificate, its storage partition on an
// in-memory flash part, and a bootloader that reports a running image and
// installs nothing. loadgen measures every request on its way through the
// network, and judges the answers by what the device API promises.

// ParseTarget splits a running target's name, "<hwid>-v<version>" (the
// x-ats-target header), into the hardware id and the build number. Errors
// wrap ErrConfig.
func ParseTarget(s string) (hwid string, version uint32, err error) {
	i := strings.LastIndex(s, "-v")
	if i > 0 {
		v, perr := strconv.ParseUint(s[i+2:], 10, 32)
		if perr == nil {
			return s[:i], uint32(v), nil
		}
	}
	return "", 0, fmt.Errorf("%w: target %q is not <hwid>-v<version>", ErrConfig, s)
}

// checkInDevice is one virtual device of the check-in scenario.
type checkInDevice struct {
	agent *agent.Agent
	clock *wallClock
	net   *deviceNet
	boot  func(ctx context.Context) error
}

// newCheckInDevice builds worker w's device, number i, with identity dev;
// boot then starts its agent. cfg has been checked.
func newCheckInDevice(cfg *Config, w *worker, dev Device, i int) (*checkInDevice, error) {
	hwid, version, err := ParseTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	// One host per device: its session cache must hold this device's
	// sessions only, since a resumed session carries the identity it was
	// made with (godeps.md §3).
	host := &live.Host{
		Gateway: base, Proto: live.Proto(cfg.Proto), RootCAs: cfg.RootCAs, ServerName: cfg.ServerName,
		OnHandshake: w.handshake,
	}
	if cfg.Resume {
		host.SessionCache = tls.NewLRUClientSessionCache(2)
	}
	// The agent's partition alone, on a flat in-memory part: the flash
	// model's page sharing would only cost the client CPU here.
	part := flashsim.New(flashsim.Uniform(agent.StorageSize/4096, 4096, 8, 0xff), flashsim.Options{NoSharing: true})
	area, err := flashsim.NewArea(part, flashsim.Partition{Name: "agent", Size: agent.StorageSize})
	if err != nil {
		return nil, err
	}
	if err := agent.ProvisionStorage(area, agent.FlashPageSize, dev.UUID, fmt.Sprintf("%032X", i), nil); err != nil {
		return nil, fmt.Errorf("%w: device %s: %v", ErrConfig, dev.UUID, err)
	}
	d := &checkInDevice{
		clock: &wallClock{booted: time.Now(), ctx: context.Background()},
		net:   &deviceNet{w: w, host: host, id: dev.Cert, keepAlive: !cfg.Reconnect},
	}
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("loadgen %d %s", i, dev.UUID))
	p := agent.Platform{
		Clock: d.clock, Net: d.net, Storage: area, Boot: runningImage(version),
		Rand:  rand.NewChaCha8(seed),
		Reset: func() { panic("loadgen: the agent reset the device, which only an install does") },
	}
	acfg := agent.Config{
		HardwareID: hwid, DefaultTag: cfg.Tag,
		// aknano pauses 50 ms per target it parses, on the device's clock:
		// on the wall clock that would throttle the client, not measure
		// the server.
		Options: agent.Options{NoTargetParseDelay: true},
	}
	d.boot = func(ctx context.Context) error {
		d.clock.ctx = ctx
		a, err := agent.New(p, acfg, nil)
		if err != nil {
			return fmt.Errorf("%w: device %s: %v", ErrConfig, dev.UUID, err)
		}
		d.agent = a
		return nil
	}
	return d, nil
}

// checkIn runs one check-in of the agent, bound to ctx: its sleeps end and
// its connection is closed when ctx does. A check-in the agent failed
// although every answer it got was as expected (a TUF rejection, say)
// counts as one error of kind "check-in ...".
func (w *worker) checkIn(ctx context.Context) {
	d := w.dev
	d.clock.ctx, d.net.ctx = ctx, ctx
	w.sawErr, w.sawTransportErr = false, false
	err := d.agent.CheckIn()
	if ctx.Err() != nil {
		return // the run ended with this check-in in flight
	}
	if err != nil && !w.sawErr {
		now := time.Now()
		kind := "check-in"
		switch {
		case tufnano.KindOf(err) != tufnano.KindNone:
			kind += " tuf " + tufnano.KindOf(err).String()
		case errors.Is(err, agent.ErrRootProvisioning):
			kind += " root provisioning"
		}
		w.fail(now, kind, "check-in: "+err.Error())
	}
	if w.sawTransportErr {
		w.pause(ctx)
	}
}

// deviceNet is a device's network (agent.Network): the live host with the
// device's identity, every request measured. With keepAlive it keeps the
// gateway connection open across check-ins, as a client with HTTP
// keep-alive does; aktualizr-nano opens one per check-in (Reconnect).
type deviceNet struct {
	w         *worker
	host      *live.Host
	id        tls.Certificate
	keepAlive bool
	ctx       context.Context
	kept      *meteredConn
}

// errRunOver refuses connections once the run has ended.
var errRunOver = errors.New("loadgen: the run is over")

func (n *deviceNet) Connect(ep agent.Endpoint) (agent.Conn, error) {
	if ep == agent.Gateway && n.kept != nil {
		if !n.kept.broken {
			return n.kept, nil
		}
		n.kept.close()
		n.kept = nil
	}
	if n.ctx.Err() != nil {
		return nil, errRunOver
	}
	c, err := n.host.Connect(ep, n.id)
	if err != nil {
		n.w.transportFailed(n.ctx, err)
		return nil, err
	}
	mc := &meteredConn{w: n.w, conn: c, keep: n.keepAlive && ep == agent.Gateway}
	// A request in flight when the run ends is cut short: closing the
	// connection interrupts it.
	mc.stop = context.AfterFunc(n.ctx, mc.closeConn)
	if mc.keep {
		n.kept = mc
	}
	return mc, nil
}

// close closes the kept connection, when the worker ends.
func (n *deviceNet) close() {
	if n.kept != nil {
		n.kept.close()
		n.kept = nil
	}
}

// meteredConn measures each request of a connection (agent.Conn).
type meteredConn struct {
	w      *worker
	conn   agent.Conn
	keep   bool // Close leaves it open for the next check-in
	broken bool
	stop   func() bool
	once   sync.Once
}

// errBroken answers a request on a connection that failed: the agent goes
// on with the rest of its check-in, but nothing reaches the server, so
// nothing more is counted.
var errBroken = errors.New("loadgen: connection already failed")

// Send sends req and counts the answer (agent.Conn).
func (c *meteredConn) Send(req *agent.Request, buf []byte) (agent.Response, error) {
	w := c.w
	if c.broken || w.dev.net.ctx.Err() != nil {
		return agent.Response{}, errBroken
	}
	t0 := time.Now()
	resp, err := c.conn.Send(req, buf)
	t1 := time.Now()
	if err != nil {
		c.broken = true
		if w.dev.net.ctx.Err() != nil {
			return resp, err // the run ended with this request in flight
		}
		if errors.Is(err, agent.ErrResponseTooLarge) {
			// An answer, but one no device can take.
			w.sawErr = true
			if w.count(req.Method, req.Path, resp.Status, t1) {
				w.fail(t1, "too large", fmt.Sprintf("%s %s: status %d: %v (%d bytes)", req.Method, req.Path, resp.Status, err, len(buf)))
			}
			return resp, err
		}
		w.transportFailed(w.dev.net.ctx, err)
		return resp, err
	}
	ok := expected(req.Method, req.Path, resp.Status)
	w.sawErr = w.sawErr || !ok
	switch {
	case !w.count(req.Method, req.Path, resp.Status, t1):
	case ok:
		w.success(t1.Sub(t0), int64(len(resp.Body)))
	default:
		w.fail(t1, fmt.Sprintf("status %s %s %d", req.Method, req.Path, resp.Status),
			fmt.Sprintf("%s %s: status %d", req.Method, req.Path, resp.Status))
	}
	return resp, nil
}

// Close closes the connection, except a kept one (agent.Conn).
func (c *meteredConn) Close() error {
	if !c.keep || c.broken {
		c.close()
	}
	return nil
}

// close closes the connection for good, on the worker's goroutine.
func (c *meteredConn) close() {
	c.stop()
	c.closeConn()
}

// closeConn closes the underlying connection once, from the worker or from
// the end of the run.
func (c *meteredConn) closeConn() {
	c.once.Do(func() { _ = c.conn.Close() })
}

// expected reports whether status is an answer the device API promises to
// a check-in request (foundries.md §1.4): /config and the three
// /system_info reports 200 or 204; a root the device does not have yet, N+1
// for N > 1, 404 or 403 (no new root), or 200; every other metadata file,
// the first-contact 1.root.json included, 200.
func expected(method, path string, status int) bool {
	switch {
	case path == "/config" || method == "PUT":
		return status == 200 || status == 204
	case status == 404 || status == 403:
		return method == "GET" && isNextRoot(path)
	}
	return status == 200
}

// isNextRoot reports whether path is "/repo/<N>.root.json" with N > 1.
func isNextRoot(path string) bool {
	v, ok := strings.CutPrefix(path, "/repo/")
	if !ok {
		return false
	}
	if v, ok = strings.CutSuffix(v, ".root.json"); !ok || v == "" || v == "1" || v[0] == '0' {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// wallClock is a device's clock (agent.Clock): the wall clock, with sleeps
// that end with the run.
type wallClock struct {
	booted time.Time
	ctx    context.Context
}

func (c *wallClock) Now() time.Time        { return time.Now() }
func (c *wallClock) Uptime() time.Duration { return time.Since(c.booted) }

func (c *wallClock) Sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
	case <-t.C:
	}
}

// runningImage is the bootloader of a device that runs build number V of
// its firmware, confirmed, and never installs anything: the check-in asks
// only for the running image and its state (agent.BootControl).
type runningImage uint32

// errNoInstall refuses what only an install would ask.
var errNoInstall = errors.New("loadgen: a load-test device never installs")

func (v runningImage) Running() (image.Header, error) {
	return image.Header{Magic: image.HeaderMagic, Version: image.Version{Build: uint32(v)}}, nil
}
func (runningImage) State() (mcuboot.ImageState, error) { return mcuboot.StateNone, nil }
func (runningImage) NewUpdateWriter(int) *mcuboot.SlotWriter {
	panic(errNoInstall) // the load generator calls CheckIn only, which never downloads
}
func (runningImage) VerifyUpdate(int64) error { return errNoInstall }
func (runningImage) SetPending(bool) error    { return errNoInstall }
func (runningImage) Confirm() error           { return errNoInstall }
