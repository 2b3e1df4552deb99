package devicemodel

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/flashsim"
)

// Spec is what the factory gives one device.
type Spec struct {
	// UUID and Serial identify the device; the agent reads them from its
	// flash (the UUID is also its certificate's CN).
	UUID, Serial string
	// SE is the device's secure element, with its certificate, or without
	// one when the model's Provisioner issues it at first boot.
	SE *SecureElement
	// FactoryImage is the signed image flashed into the primary slot and
	// confirmed.
	FactoryImage []byte
	// Root is the TUF root provisioned at manufacture; nil leaves the
	// device to fetch 1.root.json on first contact.
	Root []byte
	// Seed seeds the device's random source (event ids, jitter, torn
	// writes).
	Seed uint64
	// ClockSkew offsets this device's calendar clock, on top of the
	// model's (a device whose SNTP failed, or whose RTC drifted).
	ClockSkew time.Duration
	// ClockDrift is how fast the calendar clock gains (or, below 0,
	// loses) on the world's from manufacture on: 50e-6 is an RTC crystal
	// 50 ppm fast, a day gaining 4.3 s.
	ClockDrift float64
}

// ErrBricked: the device stopped for good; the error says why.
var ErrBricked = errors.New("device bricked")

// Device is one virtual MCU: flash, boot ROM, bootloader, secure element,
// the firmware running the agent, and its power. Run drives it on a Host.
// Its methods other than Run may be called from other goroutines.
type Device struct {
	m     *Model
	host  Host
	flash *flashsim.Device
	fl    *deviceFlash
	se    *SecureElement
	uuid  string
	seed  uint64
	skew  time.Duration // the model's and the spec's
	drift float64       // Spec.ClockDrift
	made  time.Time     // when it was manufactured, for the drift
	log   func(Event)

	mu       sync.Mutex
	off      atomic.Bool
	offCh    chan struct{}
	stopped  bool
	conns    map[*deviceConn]struct{}
	bootedAt time.Time
	boots    uint64

	inBootloader bool
	source       agent.Source
	cuts         []PowerCut
	phaseOps     [phaseCount]int
	crashes      int // boots in a row that ended in a crash
}

// Manufacture builds a device of model m as the factory leaves it: the
// bootloader image in its partition, the factory image in the primary
// slot, the agent's partition provisioned with the identity (and the TUF
// root, when given). log receives what the device does; nil discards it.
//
// Errors: the factory image does not verify with the model's keys or does
// not fit; the identity does not fit the agent's partition; flash errors.
func Manufacture(m *Model, host Host, spec Spec, log func(Event)) (*Device, error) {
	if log == nil {
		log = func(Event) {}
	}
	b := m.cfg.Board
	fo := m.cfg.Flash
	fo.Rand = rand.New(newSeededRand(spec.Seed, "flash"))
	fl := b.NewFlash(fo)
	if _, err := m.checkImage(spec.FactoryImage); err != nil {
		return nil, fmt.Errorf("factory image: %w", err)
	}
	if int64(len(spec.FactoryImage)) > b.Primary.Size {
		return nil, fmt.Errorf("factory image of %d bytes does not fit the %d-byte primary slot", len(spec.FactoryImage), b.Primary.Size)
	}
	if err := programPadded(fl, b.BootloaderArea.Offset, m.bootImage); err != nil {
		return nil, fmt.Errorf("flashing the bootloader: %w", err)
	}
	if err := programPadded(fl, b.Primary.Offset, spec.FactoryImage); err != nil {
		return nil, fmt.Errorf("flashing the factory image: %w", err)
	}
	area, err := flashsim.NewArea(fl, b.AgentStorage)
	if err != nil {
		return nil, err
	}
	if err := agent.ProvisionStorage(area, b.PageSize, spec.UUID, spec.Serial, spec.Root); err != nil {
		return nil, err
	}
	if spec.SE == nil {
		return nil, errors.New("a device needs a secure element")
	}
	d := &Device{m: m, host: host, flash: fl, se: spec.SE, uuid: spec.UUID, seed: spec.Seed, skew: m.cfg.ClockSkew + spec.ClockSkew, log: log,
		drift: spec.ClockDrift, made: host.Now(),
		offCh: make(chan struct{}), conns: map[*deviceConn]struct{}{}}
	d.fl = &deviceFlash{d: d}
	d.fl.part = flashsim.Wrap(fl, &d.fl.next)
	return d, nil
}

// programPadded programs data at off on a fresh part, padded to the write
// size with the erase value.
func programPadded(f *flashsim.Device, off int64, data []byte) error {
	ws := f.Geometry().WriteSize
	if r := len(data) % ws; r != 0 {
		pad := make([]byte, ws-r)
		for i := range pad {
			pad[i] = f.Geometry().EraseValue
		}
		data = append(append([]byte(nil), data...), pad...)
	}
	return f.Program(off, data)
}

// UUID is the device's UUID.
func (d *Device) UUID() string { return d.uuid }

// Flash is the device's part, for inspection between runs (not while the
// device runs).
func (d *Device) Flash() *flashsim.Device { return d.flash }

// SecureElement is the device's secure element.
func (d *Device) SecureElement() *SecureElement { return d.se }

// Arm schedules power cuts at flash operations. Call it before Run. A cut
// at a time (At) is the world's to make: the live host's caller or the
// fleet engine calls PowerCut then; Arm ignores it.
func (d *Device) Arm(cuts ...PowerCut) {
	for _, c := range cuts {
		if c.At == 0 {
			d.cuts = append(d.cuts, c)
		}
	}
}

// InjectFlashFaults stacks inj on the device's flash (flashsim.Any), beside
// the cuts Arm schedules: its faults strike the firmware's flash operations
// from the next one on, across power cycles (PowerOn keeps its state). A
// power cut it makes stops the firmware as any cut does and is reported as
// an EventPowerCut naming the operation; a sector it wears out or a bit it
// flips is the firmware's to cope with. Call it before Run; each call adds
// to the injectors given before.
func (d *Device) InjectFlashFaults(inj flashsim.Injector) {
	if inj == nil {
		return
	}
	d.fl.faults = append(d.fl.faults, inj)
	d.fl.part.Arm(flashsim.Any(append([]flashsim.Injector{&d.fl.next}, d.fl.faults...)...))
}

// UseSource makes the firmware update from src (a bundle over UART or
// USB) instead of the network: at every boot the agent checks the source,
// installs a newer matching target from it and reboots, or else idles.
// Call it before Run.
func (d *Device) UseSource(src agent.Source) { d.source = src }

// Boots is the number of times the device has started.
func (d *Device) Boots() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.boots
}

// panic values that unwind the firmware: the MCU stops where it is.
type (
	powerLoss   struct{}
	resetSignal struct {
		why   string
		crash bool
	}
	haltSignal struct{ err error }
)

// Run powers the device on and runs it until ctx ends (it then returns
// ctx's error) or it bricks (ErrBricked, wrapped with the reason). Power
// cuts, resets and watchdog resets restart it from ROM.
func (d *Device) Run(ctx context.Context) error {
	d.mu.Lock()
	d.stopped = false
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, d.Stop)
	defer stop()
	for {
		err := d.powerCycle()
		d.mu.Lock()
		stopped := d.stopped
		d.mu.Unlock()
		if stopped {
			return ctx.Err()
		}
		if err != nil {
			d.emit(Event{Kind: EventHalt, Err: err})
			return err
		}
	}
}

// Stop ends Run: the device powers off where it is, and Run returns (nil,
// or ctx's error when ctx ended it). It may be called from any goroutine,
// or from the log function on the device's own. A later Run powers the
// device on again.
func (d *Device) Stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.PowerCut()
}

// PowerCut cuts the device's power now: the firmware stops at its next
// step, open connections drop, and a flash operation under way is torn.
// The device comes back after the model's PowerOff time. It may be called
// from any goroutine.
func (d *Device) PowerCut() {
	d.mu.Lock()
	if d.off.Load() {
		d.mu.Unlock()
		return
	}
	d.off.Store(true)
	close(d.offCh)
	conns := d.conns
	d.conns = map[*deviceConn]struct{}{}
	d.mu.Unlock()
	for c := range conns {
		c.c.Close()
	}
}

// isOff reads the power state without the lock: the firmware asks at
// every flash operation.
func (d *Device) isOff() bool { return d.off.Load() }

// check stops the firmware when the power is off.
func (d *Device) check() {
	if d.isOff() {
		panic(powerLoss{})
	}
}

// sleep passes d of the device's time, or stops the firmware when power
// goes meanwhile.
func (d *Device) sleep(t time.Duration) {
	if t <= 0 {
		d.check()
		return
	}
	if !d.host.Sleep(t, d.offCh) || d.isOff() {
		panic(powerLoss{})
	}
}

// powerCycle runs the device from power-on until it loses power (nil) or
// halts (the reason).
func (d *Device) powerCycle() (err error) {
	d.mu.Lock()
	if d.off.Load() {
		d.mu.Unlock()
		if d.isStopped() {
			return nil
		}
		d.emit(Event{Kind: EventPowerOff, Text: d.m.cfg.PowerOff.String()})
		d.host.Sleep(d.m.cfg.PowerOff, nil)
		d.mu.Lock()
		d.off.Store(false)
		d.offCh = make(chan struct{})
	}
	d.mu.Unlock()
	d.fl.part.PowerOn()
	for {
		why, err := d.boot()
		if err != nil {
			return err
		}
		if why == nil { // power lost
			return nil
		}
		if why.crash {
			d.crashes++
			if d.crashes >= d.m.cfg.BootLoopLimit {
				return fmt.Errorf("%w: boot loop: %d boots in a row ended in a crash (%s)", ErrBricked, d.crashes, why.why)
			}
		} else {
			d.crashes = 0
		}
	}
}

func (d *Device) isStopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

// boot runs one boot: ROM, bootloader, application. It returns the reset
// that ended it, nil when power was lost, or the halt error.
func (d *Device) boot() (reset *resetSignal, halt error) {
	defer func() {
		switch r := recover().(type) {
		case nil:
		case powerLoss:
			reset, halt = nil, nil
		case resetSignal:
			d.emit(Event{Kind: EventReset, Text: r.why})
			reset = &r
		case haltSignal:
			halt = r.err
		default:
			panic(r)
		}
		d.closeConns()
		d.inBootloader = false
	}()
	d.mu.Lock()
	d.boots++
	d.bootedAt = d.host.Now()
	d.mu.Unlock()
	d.emit(Event{Kind: EventStart})
	t := d.m.cfg.Board.Timing
	d.sleep(t.Boot)

	b := d.m.cfg.Board
	bl, err := flashsim.NewArea(d.fl, b.BootloaderArea)
	if err != nil {
		panic(haltSignal{err})
	}
	_, err = verifyBootloader(bl, d.m.romPublic)
	d.sleep(t.HashTime(int64(len(d.m.bootImage))) + t.VerifyTime())
	if err != nil {
		panic(haltSignal{fmt.Errorf("%w: %v", ErrBricked, err)})
	}

	d.inBootloader = true
	loader, err := b.Bootloader(d.fl, d.m.cfg.Bootloader)
	if err != nil {
		panic(haltSignal{fmt.Errorf("%w: bootloader: %v", ErrBricked, err)})
	}
	res, err := loader.Boot()
	d.inBootloader = false
	if err != nil {
		d.check() // a power cut surfaces as a flash error from Boot
		panic(haltSignal{fmt.Errorf("%w: bootloader: %v", ErrBricked, err)})
	}
	cpu := time.Duration(0)
	if res.Image != nil {
		cpu += t.HashTime(res.Image.End) + t.VerifyTime()
	}
	if res.SwapType != mcuboot.SwapNone {
		cpu += t.HashTime(int64(res.Header.ImgSize)) + t.VerifyTime()
	}
	d.sleep(cpu)
	d.emit(Event{Kind: EventBoot, Boot: res})
	d.runApp(res, loader.App())
	return nil, nil
}

func (d *Device) closeConns() {
	d.mu.Lock()
	conns := d.conns
	d.conns = map[*deviceConn]struct{}{}
	d.mu.Unlock()
	for c := range conns {
		c.c.Close()
	}
}

// runApp is the firmware: its behaviour, the self-test, then the agent.
func (d *Device) runApp(res *mcuboot.BootResult, app *mcuboot.App) {
	v := res.Header.Version.Build
	p := &d.m.cfg.Profiles
	beh := p.For(v)
	d.emit(Event{Kind: EventApp, Version: v, Text: beh.String()})
	switch beh {
	case CrashAtBoot:
		d.sleep(p.CrashAfter)
		panic(resetSignal{why: "v" + strconv.FormatUint(uint64(v), 10) + " crashed at boot; watchdog reset", crash: true})
	case HangsBeforeCheckIn:
		d.sleep(d.m.cfg.Watchdog)
		panic(resetSignal{why: "v" + strconv.FormatUint(uint64(v), 10) + " hung; watchdog reset", crash: true})
	}
	storage, err := flashsim.NewArea(d.fl, d.m.cfg.Board.AgentStorage)
	if err != nil {
		panic(haltSignal{err})
	}
	if err := d.provisionCertificate(); err != nil {
		d.emit(Event{Kind: EventApp, Text: "provisioning", Err: err})
	}
	platform := agent.Platform{
		Clock:   deviceClock{d},
		Net:     deviceNet{d: d, broken: beh == BricksNetwork},
		Storage: storage,
		Boot:    app,
		Rand:    newSeededRand(d.seed, "boot "+strconv.FormatUint(d.boots, 10)),
		Reset:   func() { panic(resetSignal{why: "agent reboot"}) },
	}
	a, err := agent.New(platform, d.m.cfg.Agent, func(n agent.Note) { d.emit(Event{Kind: EventAgent, Note: n}) })
	if err != nil {
		panic(haltSignal{fmt.Errorf("%w: agent: %v", ErrBricked, err)})
	}
	d.sleep(p.SelfTest)
	if beh == FailsSelfTest {
		panic(resetSignal{why: "v" + strconv.FormatUint(uint64(v), 10) + " failed its self-test", crash: true})
	}
	d.crashes = 0
	a.SetSelfTestOK()
	if d.source == nil {
		a.Run()
		return
	}
	a.RunOffline(d.source)
	for {
		d.sleep(time.Hour) // nothing more to do until the next reset
	}
}

// provisionCertificate has a secure element without a certificate ask the
// model's provisioner for one (first boot).
func (d *Device) provisionCertificate() error {
	if d.se.CertificateDER() != nil || d.m.cfg.Provisioner == nil {
		return nil
	}
	csr, err := d.se.CSR(d.uuid, newSeededRand(d.seed, "csr"))
	if err != nil {
		return err
	}
	cert, err := d.m.cfg.Provisioner.SignCSR(csr)
	if err != nil {
		return err
	}
	return d.se.SetCertificate(cert)
}

// Uptime is the time since the device last started.
func (d *Device) Uptime() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.host.Now().Sub(d.bootedAt)
}

// deviceClock is the agent's clock.
type deviceClock struct{ d *Device }

func (c deviceClock) Now() time.Time {
	c.d.check()
	d := c.d
	now := d.host.Now()
	if d.drift != 0 {
		now = now.Add(time.Duration(float64(now.Sub(d.made)) * d.drift))
	}
	return now.Add(d.skew)
}
func (c deviceClock) Uptime() time.Duration {
	c.d.check()
	return c.d.Uptime()
}
func (c deviceClock) Sleep(t time.Duration) { c.d.sleep(t) }

// connectTimeout is how long a connection attempt takes to fail when the
// network stack is down.
const connectTimeout = 3 * time.Second

// deviceNet is the agent's network: the host's, with the device's identity,
// dropped when power goes.
type deviceNet struct {
	d      *Device
	broken bool
}

var errNetworkDown = errors.New("network stack down")

func (n deviceNet) Connect(ep agent.Endpoint) (agent.Conn, error) {
	d := n.d
	d.check()
	if n.broken {
		d.sleep(connectTimeout)
		return nil, errNetworkDown
	}
	id, err := d.se.Certificate()
	if err != nil {
		return nil, err
	}
	c, err := d.host.Connect(ep, id)
	d.check()
	if err != nil {
		return nil, err
	}
	dc := &deviceConn{d: d, c: c}
	d.mu.Lock()
	if d.off.Load() {
		d.mu.Unlock()
		c.Close()
		panic(powerLoss{})
	}
	d.conns[dc] = struct{}{}
	d.mu.Unlock()
	return dc, nil
}

type deviceConn struct {
	d *Device
	c agent.Conn
}

func (c *deviceConn) Send(req *agent.Request, buf []byte) (agent.Response, error) {
	c.d.check()
	resp, err := c.c.Send(req, buf)
	c.d.check()
	return resp, err
}

func (c *deviceConn) Close() error {
	c.d.mu.Lock()
	delete(c.d.conns, c)
	c.d.mu.Unlock()
	return c.c.Close()
}

// deviceFlash is the part as the firmware sees it: every program and erase
// takes the board's time, counts towards the armed power cuts, and stops
// the firmware when power goes (tearing the operation when it goes while
// the operation runs).
type deviceFlash struct {
	d      *Device
	part   *flashsim.FaultyFlash // d.flash under next and faults
	next   nextCut
	faults []flashsim.Injector // InjectFlashFaults's, stacked after next
}

// nextCut is the injector of a device's own power cuts: the one its phase
// counts arm, or its power going while an operation runs, strikes the
// operation issued next.
type nextCut struct {
	kind  flashsim.CutKind
	armed bool
}

func (c *nextCut) arm(k flashsim.CutKind) { c.kind, c.armed = k, true }

func (c *nextCut) MaybeFault(flashsim.Op) flashsim.Fault {
	if !c.armed {
		return flashsim.Fault{}
	}
	c.armed = false
	return flashsim.Fault{Kind: flashsim.FaultPowerCut, Cut: c.kind}
}

// String names it; it is the device model's, not a description
// flashsim.ParseInjector reads.
func (c *nextCut) String() string { return "(device-cut)" }

func (f *deviceFlash) Geometry() *flashsim.Geometry { return f.part.Geometry() }

func (f *deviceFlash) ReadAt(p []byte, off int64) (int, error) {
	f.d.check()
	n, err := f.part.ReadAt(p, off)
	f.lost(err, false)
	return n, err
}

func (f *deviceFlash) Sum256(off, n int64) ([32]byte, error) {
	f.d.check()
	sum, err := f.part.Sum256(off, n)
	f.lost(err, false)
	return sum, err
}

// lost stops the firmware when err is a power loss, reporting the cut
// unless the device made it itself (own).
func (f *deviceFlash) lost(err error, own bool) {
	if !errors.Is(err, flashsim.ErrPowerLoss) {
		return
	}
	d := f.d
	if !own {
		text := "flash fault"
		if oe := (*flashsim.OpError)(nil); errors.As(err, &oe) {
			text = fmt.Sprintf("flash fault at %s 0x%x+0x%x", oe.Op, oe.Off, oe.Len)
		}
		d.emit(Event{Kind: EventPowerCut, Text: text})
	}
	d.PowerCut()
	panic(powerLoss{})
}

func (f *deviceFlash) Program(off int64, p []byte) error { return f.ProgramFrom(off, p, -1) }

func (f *deviceFlash) ProgramFrom(off int64, p []byte, src int64) error {
	t := f.d.m.cfg.Board.Timing
	return f.op(off, t.ProgramTime(int64(len(p)), f.d.m.cfg.Board.PageSize), func() error { return f.part.ProgramFrom(off, p, src) })
}

func (f *deviceFlash) Erase(off, n int64) error {
	return f.op(off, f.d.m.cfg.Board.Timing.EraseTime(n), func() error { return f.part.Erase(off, n) })
}

func (f *deviceFlash) op(off int64, took time.Duration, do func() error) error {
	d := f.d
	d.check()
	phase := PhaseSwap
	if !d.inBootloader {
		phase = d.m.phaseOf(off)
	}
	if c, ok := d.phaseCut(phase); ok {
		f.next.arm(c.Kind)
		d.emit(Event{Kind: EventPowerCut, Text: c.String()})
	} else if took > 0 && (!d.host.Sleep(took, d.offCh) || d.isOff()) {
		// Power went while the operation ran: it is torn.
		f.next.arm(flashsim.CutDuring)
	}
	own := f.next.armed
	err := do()
	f.lost(err, own)
	return err
}

// phaseCut counts an operation of phase (and of PhaseAny) and returns the
// armed cut it triggers, which is then disarmed.
func (d *Device) phaseCut(phase Phase) (PowerCut, bool) {
	d.phaseOps[PhaseAny]++
	if phase != PhaseAny {
		d.phaseOps[phase]++
	}
	for i, c := range d.cuts {
		if d.phaseOps[c.Phase] == c.Op && (c.Phase == PhaseAny || c.Phase == phase) {
			d.cuts = append(d.cuts[:i], d.cuts[i+1:]...)
			return c, true
		}
	}
	return PowerCut{}, false
}

// seededRand is a tiny deterministic random source: SHA-256 of the
// device's seed, a label and a counter. Devices draw little randomness, and
// a parked fleet should not hold a generator's state per device.
type seededRand struct {
	key [32]byte
	n   uint64
	buf [32]byte
	pos int
}

func newSeededRand(seed uint64, label string) *seededRand {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	return &seededRand{key: sha256.Sum256(append(b[:], label...)), pos: 32}
}

func (r *seededRand) Read(p []byte) (int, error) {
	for i := range p {
		if r.pos == len(r.buf) {
			var in [40]byte
			copy(in[:], r.key[:])
			binary.BigEndian.PutUint64(in[32:], r.n)
			r.n++
			r.buf = sha256.Sum256(in[:])
			r.pos = 0
		}
		p[i] = r.buf[r.pos]
		r.pos++
	}
	return len(p), nil
}

// Uint64 lets flashsim draw its torn-write choices from the same source.
func (r *seededRand) Uint64() uint64 {
	var b [8]byte
	r.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// Slots opens the bootloader's application view on the device's flash, for
// inspection between runs (not while the device runs): the running image
// and its state.
func (d *Device) Slots() (*mcuboot.App, error) {
	l, err := d.m.cfg.Board.Bootloader(d.flash, d.m.cfg.Bootloader)
	if err != nil {
		return nil, err
	}
	return l.App(), nil
}
