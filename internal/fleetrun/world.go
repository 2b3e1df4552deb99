// Package fleetrun builds the world a scenario describes (the gateway in
// process, the factory's PKI and image key, the devices and their links)
// and runs it on the fleet engine's virtual clock (package sim), or live
// on the wall clock, against the embedded gateway or an external one, then
// writes what happened as a report.
package fleetrun

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/inproc"
	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/fleetsim/fleetsim/scenarios"
	"github.com/fleetsim/fleetsim/sim"
)

// Epoch is the virtual time a run starts at.
var Epoch = time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)

// adminToken lets the runner in to the gateway's admin API.
const adminToken = "fleetrun"

// world is one run's simulated fleet and gateway.
type world struct {
	s        *scenarios.Scenario
	k        *sim.Kernel
	net      *sim.Net
	gw       *gateway.Gateway
	admin    http.Handler
	ca       *pki.CA
	imageKey crypto.Signer
	lastTick time.Time
	dir      string
	server   *tickingServer
	// err stops the run: something the run itself did failed.
	err   error
	trace io.Writer
	// fs holds the gateway's data: the disk under dir, or memory.
	fs vfs.FS
	// live is the wall-clock side of a live run (nil: virtual).
	live *liveRun
	// mu guards the run's state in a live run, where devices run in
	// parallel (a virtual run has one goroutine at a time).
	mu    sync.Mutex
	waves []string // the gateway waves created
	// attacker is the malicious repository of a malicious-repo fault.
	attacker *attacker
	// memo remembers TUF signature checks across devices (nil: off).
	memo      *tufnano.Memo
	noSharing bool
	devices   []*device
	cohorts   []*cohort
	stats     *stats
}

type cohort struct {
	spec  *scenarios.Cohort
	model *devicemodel.Model
	link  sim.Link
	board devicemodel.Board
}

// rand returns a deterministic stream for one purpose of the run.
func (w *world) rand(purpose string, n uint64) *rand.ChaCha8 {
	var seed [32]byte
	copy(seed[:], purpose)
	for i := range 8 {
		seed[24+i] = byte(w.s.Seed >> (8 * i))
		seed[16+i] ^= byte(n >> (8 * i))
	}
	return rand.NewChaCha8(seed)
}

// tickingServer calls the gateway's periodic work, at most once per
// virtual second, before it answers a device: the gateway sees time pass
// as a live one would between requests.
type tickingServer struct {
	w   *world
	srv inproc.Server
}

// Serve answers a device: the attacker when an attack covers the request,
// else the gateway, whose answers the attacker records.
func (t *tickingServer) Serve(ep agent.Endpoint, peer *x509.Certificate, req *agent.Request, buf []byte) (agent.Response, int, int, error) {
	t.w.tick()
	a := t.w.attacker
	if a != nil && a.attack != "" {
		if resp, n, ok := a.serve(req, buf); ok {
			return resp, len(req.Body), n, nil
		}
	}
	resp, sent, received, err := t.srv.Serve(ep, peer, req, buf)
	if a != nil && err == nil {
		a.record(req, resp)
	}
	return resp, sent, received, err
}

func (w *world) tick() {
	now := w.now()
	if now.Sub(w.lastTick) < time.Second {
		return
	}
	w.lastTick = now
	if err := w.gw.Tick(now); err != nil {
		w.stats.gatewayErrors++
	}
}

// adminCall calls the admin API in process; it returns the body of a 2xx
// answer, or an error with the gateway's reason.
func (w *world) adminCall(method, path string, body []byte) ([]byte, error) {
	req := httptest.NewRequest(method, "https://admin"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	w.admin.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		return nil, fmt.Errorf("gateway: %s %s: %d %s", method, path, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return rec.Body.Bytes(), nil
}

// build opens the gateway in dir and manufactures the fleet.
func build(s *scenarios.Scenario, o Options) (*world, error) {
	w := &world{s: s, k: sim.NewKernel(Epoch), stats: newStats(s), dir: o.Dir, noSharing: o.NoSharing, fs: vfs.Default}
	if o.Dir == "" {
		w.fs = vfs.NewMem() // kept for the gateway's restarts
	}
	if !o.NoSharing {
		w.memo = tufnano.NewMemo(1 << 16)
	}
	w.lastTick = Epoch
	var err error
	if w.ca, err = pki.NewCA("fleetsim", Epoch.Add(-24*time.Hour), w.rand("ca", 0)); err != nil {
		return nil, err
	}
	if w.imageKey, err = image.GenerateKey(image.KeyEd25519, w.rand("image-key", 0)); err != nil {
		return nil, err
	}
	if o.Live != nil {
		w.live = &liveRun{opts: *o.Live}
	}
	if ext := w.external(); ext != nil {
		if o.Dir != "" {
			return nil, errors.New("an external gateway keeps its own data: a run against it takes no data directory")
		}
		w.net = &sim.Net{K: w.k, Quantum: o.Quantum}
		if err := w.useExternal(ext); err != nil {
			return nil, err
		}
	} else {
		if w.gw, err = gateway.Open(w.dir, w.gwOptions()); err != nil {
			return nil, err
		}
		w.admin = w.gw.AdminHandler(adminToken)
		w.server = &tickingServer{w: w, srv: inproc.Server{Devices: w.gw.DeviceHandler()}}
		w.net = &sim.Net{K: w.k, Server: w.server, Quantum: o.Quantum}
		if w.live != nil {
			if err := w.live.serve(w); err != nil {
				w.gw.Close()
				return nil, err
			}
		} else if !s.Gateway.Unlimited {
			w.net.SetCapacity(capacityOf(s.Gateway))
		}
	}
	for i := range s.Fleet {
		if err := w.addCohort(i); err != nil {
			if w.live != nil {
				w.live.stop()
			}
			w.closeGateway()
			return nil, err
		}
	}
	return w, nil
}

// external is the external gateway of a live run against one, or nil.
func (w *world) external() *ExternalGateway {
	if w.live == nil {
		return nil
	}
	return w.live.opts.Gateway
}

// closeGateway closes the embedded gateway, if the run has one.
func (w *world) closeGateway() {
	if w.gw != nil {
		w.gw.Close()
	}
}

func (w *world) gwOptions() gateway.Options {
	var clock gateway.Clock = w.k
	if w.live != nil {
		clock = wallClock{}
	}
	return gateway.Options{
		Clock: clock, Random: w.rand("gateway", 0), Factory: "fleetsim",
		ImageKeys: []crypto.PublicKey{w.imageKey.Public()}, NoSync: true, FS: w.fs,
	}
}

func (w *world) addCohort(i int) error {
	spec := &w.s.Fleet[i]
	b, err := devicemodel.LookupBoard(spec.Board)
	if err != nil {
		return err
	}
	link, err := sim.LookupLink(spec.Link)
	if err != nil {
		return err
	}
	profiles, err := profilesOf(spec.Firmware)
	if err != nil {
		return fmt.Errorf("fleet[%d].firmware: %w", i, err)
	}
	cfg := devicemodel.ModelConfig{
		Board:      b,
		Bootloader: mcuboot.Config{Strategy: spec.Strategy, Keys: []crypto.PublicKey{w.imageKey.Public()}, ValidatePrimary: true},
		Agent:      agent.Config{PollInterval: w.scaled(time.Duration(spec.Poll)), Limits: agent.DefaultLimits()},
		Profiles:   profiles,
		Flash:      flashsim.Options{NoSharing: w.noSharing},
	}
	cfg.Agent.Limits.Memo = w.memo
	cfg.Bootloader.Memo = w.memo
	m, err := devicemodel.NewModel(cfg)
	if err != nil {
		return fmt.Errorf("fleet[%d]: %w", i, err)
	}
	c := &cohort{spec: spec, model: m, link: link, board: b}
	w.cohorts = append(w.cohorts, c)
	factory, err := w.image(b, spec.Version)
	if err != nil {
		return err
	}
	// The factory image is on the gateway too, as a CI build would be.
	if _, err := w.upload(factory, b.HardwareID, spec.Tag); err != nil && !strings.Contains(err.Error(), " 409 ") {
		if w.external() != nil && strings.Contains(err.Error(), " 400 image refused") {
			return fmt.Errorf("%w (the gateway does not take images signed with the run's key: give the run the image key the gateway accepts)", err)
		}
		return err
	}
	ses, err := w.identities(c, len(w.devices)+1, spec.Count)
	if err != nil {
		return err
	}
	for _, se := range ses {
		if err := w.manufacture(c, factory, se); err != nil {
			return err
		}
	}
	return nil
}

// identities provisions the secure elements of devices first to
// first+count-1: a key pair each, and a certificate the factory CA signs.
// Each device draws from its own seeded stream, so they are made on every
// core at once with the results of one at a time.
func (w *world) identities(c *cohort, first, count int) ([]*devicemodel.SecureElement, error) {
	ses := make([]*devicemodel.SecureElement, count)
	errs := make([]error, count)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < count; i = int(next.Add(1) - 1) {
				ses[i], errs[i] = w.identity(c, first+i)
			}
		}()
	}
	wg.Wait()
	return ses, errors.Join(errs...)
}

// identity provisions device n's secure element.
func (w *world) identity(c *cohort, n int) (*devicemodel.SecureElement, error) {
	var seed [32]byte
	r := w.rand("device", uint64(n))
	_, _ = io.ReadFull(r, seed[:])
	se := devicemodel.NewSecureElement(seed)
	csr, err := se.CSR(deviceUUID(n), r)
	if err != nil {
		return nil, err
	}
	der, err := w.ca.SignCSR(csr, c.spec.Production, Epoch.Add(-time.Hour), r)
	if err != nil {
		return nil, err
	}
	return se, se.SetCertificate(der)
}

func deviceUUID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// profilesOf reads a cohort's firmware map: "default" and build numbers.
func profilesOf(m map[string]string) (devicemodel.Profiles, error) {
	var p devicemodel.Profiles
	for k, v := range m {
		b, err := devicemodel.ParseBehaviour(v)
		if err != nil {
			return p, err
		}
		if k == "default" {
			p.Default = b
			continue
		}
		n, err := strconv.ParseUint(k, 10, 32)
		if err != nil {
			return p, fmt.Errorf("%q is neither \"default\" nor a build number", k)
		}
		if p.ByVersion == nil {
			p.ByVersion = map[uint32]devicemodel.Behaviour{}
		}
		p.ByVersion[uint32(n)] = b
	}
	return p, nil
}

// image signs a firmware image of build number build for board b, with
// the scenario's payload size.
func (w *world) image(b devicemodel.Board, build uint32) ([]byte, error) {
	payload := make([]byte, int(w.s.Rollout.ImageSize))
	r := w.rand("payload", uint64(build))
	_, _ = io.ReadFull(r, payload)
	img, err := image.Sign(payload, image.SignOptions{
		Key: w.imageKey, Version: image.Version{Major: 1, Build: build}, HeaderSize: 0x200, PadHeader: true, Align: b.ImageAlign,
	})
	if err != nil {
		return nil, fmt.Errorf("signing v%d for %s: %w", build, b.Name, err)
	}
	if int64(len(img)) > b.Secondary.Size-int64(b.Secondary.Size/16) {
		return nil, fmt.Errorf("rollout.image_size: a %d-byte image does not fit board %s's %d-byte slots with room for the trailer", len(img), b.Name, b.Secondary.Size)
	}
	return img, nil
}

// upload creates the CI target of img for hwid with tag.
func (w *world) upload(img []byte, hwid, tag string) (gateway.TargetInfo, error) {
	var ti gateway.TargetInfo
	body, err := w.adminCall("POST", "/v1/firmware?hwid="+hwid+"&tags="+tag, img)
	if err != nil {
		return ti, err
	}
	return ti, json.Unmarshal(body, &ti)
}

// device is one simulated MCU and what the run knows of it.
type device struct {
	d      *devicemodel.Device
	proc   *sim.Proc
	cohort *cohort
	host   *sim.Host // nil in a live run
	state  deviceState
	// grouped: the gateway has the device in its cohort's group.
	grouped bool
}

func (w *world) manufacture(c *cohort, factory []byte, se *devicemodel.SecureElement) error {
	n := len(w.devices) + 1
	uuid := deviceUUID(n)
	var host devicemodel.Host
	var simHost *sim.Host
	if w.live != nil {
		host = w.live.host
	} else {
		simHost = w.net.Host(&c.link, [2]uint64{w.s.Seed, uint64(n)})
		host = simHost
	}
	dev := &device{cohort: c, host: simHost}
	spec := devicemodel.Spec{UUID: uuid, Serial: fmt.Sprintf("%032X", n), SE: se, FactoryImage: factory, Seed: w.s.Seed<<20 ^ uint64(n)}
	spec.ClockSkew, spec.ClockDrift = w.clockSkew(n)
	d, err := devicemodel.Manufacture(c.model, host, spec, func(e devicemodel.Event) { w.observe(dev, e) })
	if err != nil {
		return err
	}
	dev.d = d
	dev.state.version = c.spec.Version
	w.devices = append(w.devices, dev)
	return nil
}

// capacityOf is the scenario's gateway capacity, the measured defaults in
// the fields it leaves out.
func capacityOf(g scenarios.Gateway) sim.Capacity {
	c := sim.DefaultCapacity
	if g.Cores > 0 {
		c.Cores = g.Cores
	}
	if g.HandshakeCPU > 0 {
		c.HandshakeCPU = time.Duration(g.HandshakeCPU)
	}
	if g.RequestCPU > 0 {
		c.RequestCPU = time.Duration(g.RequestCPU)
	}
	if g.EgressMbps > 0 {
		c.Egress = int64(g.EgressMbps * 1e6)
	}
	return c
}

// clockSkew is device n's calendar-clock offset and drift from the
// scenario's clock-skew faults, each choosing its share of the devices by
// the seed.
func (w *world) clockSkew(n int) (skew time.Duration, drift float64) {
	for i, f := range w.s.Faults {
		if f.Kind != "clock-skew" || !w.hits("clock-skew", i, n, f.Rate) {
			continue
		}
		d, ppm := time.Duration(f.Skew), f.DriftPPM
		if f.Behind {
			d, ppm = -d, -ppm
		}
		skew += d
		drift += ppm * 1e-6
		w.stats.clockSkewed++
	}
	return skew, drift
}

// hits reports whether fault i, which strikes a share rate of the
// devices, hits device n: a draw of its own per fault and device.
func (w *world) hits(kind string, i, n int, rate float64) bool {
	return w.rand(kind, uint64(i)<<32|uint64(n)).Uint64()%1_000_000 < uint64(rate*1_000_000)
}
