package devicetest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// Epoch is the virtual time a rig starts at.
var Epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// Rig is a gateway with its factory: the PKI, the image signing key, and
// devices built against it. A virtual rig (NewRig) runs the gateway in
// process on a virtual clock; a live rig (NewLiveRig) serves it on
// loopback over mutual TLS and runs devices on the wall clock.
type Rig struct {
	T        testing.TB
	Gateway  *gateway.Gateway
	CA       *pki.CA
	ImageKey crypto.Signer
	Pool     *x509.CertPool
	// Dir is the gateway's data directory.
	Dir string
	// Host is where devices run: Virtual or Live.
	Host    devicemodel.Host
	Virtual *Host
	Live    *live.Host

	admin    http.Handler
	lastTick time.Time
}

// adminToken lets the rig in to the admin API.
const adminToken = "devicetest"

// RigOptions change a rig's gateway.
type RigOptions struct {
	// ExtraImageKeys are accepted by the gateway for uploads besides the
	// rig's key (which devices trust): images signed by them reach devices
	// whose bootloader refuses them.
	ExtraImageKeys []crypto.Signer
	// Wrap puts a handler in front of the gateway's device API (a
	// misbehaving repository). A live rig then serves it over HTTP/1.1 and
	// HTTP/2 with a plain TLS server rather than the gateway's listeners.
	Wrap func(http.Handler) http.Handler
}

func newRig(t testing.TB, clock gateway.Clock, o RigOptions) *Rig {
	t.Helper()
	ca, err := pki.NewCA("devicetest", Epoch.Add(-time.Hour), gatewaytest.Rand(1, 'd', 't'))
	if err != nil {
		t.Fatal(err)
	}
	key, err := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(2, 'd', 't'))
	if err != nil {
		t.Fatal(err)
	}
	keys := []crypto.PublicKey{key.Public()}
	for _, k := range o.ExtraImageKeys {
		keys = append(keys, k.Public())
	}
	dir := t.TempDir()
	g, err := gateway.Open(dir, gateway.Options{
		Clock: clock, Random: gatewaytest.Rand(3, 'd', 't'), Factory: "devicetest", ImageKeys: keys, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &Rig{T: t, Gateway: g, CA: ca, ImageKey: key, Pool: pool, Dir: dir, admin: g.AdminHandler(adminToken), lastTick: clock.Now()}
}

// NewRig opens a gateway in a temporary directory on a virtual clock that
// starts at Epoch, with a factory CA and an Ed25519 image key, all from
// fixed seeds; devices run in the same process on the same clock.
func NewRig(t testing.TB, o RigOptions) *Rig {
	t.Helper()
	host := NewHost(Epoch)
	r := newRig(t, host, o)
	host.Devices = r.Gateway.DeviceHandler()
	if o.Wrap != nil {
		host.Devices = o.Wrap(host.Devices)
	}
	host.ClientCAs = r.Pool
	host.OnTime = r.tick
	r.Host, r.Virtual = host, host
	return r
}

// wallClock is the gateway's clock in a live rig.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// NewLiveRig serves a gateway on loopback: the device API over TLS with
// client certificates (HTTP/1.1 and HTTP/2) and over HTTP/3, the gateway
// ticking every second on the wall clock. Devices reach it over proto.
func NewLiveRig(t testing.TB, proto live.Proto, o RigOptions) *Rig {
	t.Helper()
	r := newRig(t, wallClock{}, o)
	server, err := r.CA.IssueServer(nil, time.Now().Add(-time.Hour), gatewaytest.Rand(4, 'd', 't'))
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	if o.Wrap != nil {
		srv := httptest.NewUnstartedServer(o.Wrap(r.Gateway.DeviceHandler()))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: r.Pool}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		addr = srv.Listener.Addr().String()
	} else {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- r.Gateway.Serve(ctx, gateway.ServeConfig{
				DeviceAddr: "127.0.0.1:0", H3Addr: "127.0.0.1:0", Certificate: server, ClientCAs: r.Pool,
				ShutdownTimeout: 5 * time.Second,
				Ready: func(dev, h3, _ net.Addr) {
					if proto == live.HTTP3 {
						ready <- h3.String()
					} else {
						ready <- dev.String()
					}
				},
			})
		}()
		select {
		case addr = <-ready:
		case err := <-done:
			cancel()
			t.Fatalf("gateway Serve: %v", err)
		}
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway Serve: %v", err)
			}
		})
	}
	u, _ := url.Parse("https://" + addr)
	r.Live = &live.Host{Gateway: u, Proto: proto, RootCAs: r.Pool, RequestTimeout: 10 * time.Second}
	r.Host = r.Live
	return r
}

// tick runs the gateway's periodic work once per virtual second (the live
// gateway ticks itself).
func (r *Rig) tick(now time.Time) {
	if now.Sub(r.lastTick) < time.Second {
		return
	}
	r.lastTick = now
	if err := r.Gateway.Tick(now); err != nil {
		r.T.Errorf("gateway Tick: %v", err)
	}
}

// Admin calls the admin API and decodes a JSON answer into out (when not
// nil); it fails the test unless the status is want.
func (r *Rig) Admin(want int, method, path string, body []byte, out any) {
	r.T.Helper()
	req := httptest.NewRequest(method, "https://admin"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	w := httptest.NewRecorder()
	r.admin.ServeHTTP(w, req)
	if w.Code != want {
		r.T.Fatalf("%s %s = %d %s, want %d", method, path, w.Code, strings.TrimSpace(w.Body.String()), want)
	}
	if out != nil {
		if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
			r.T.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// Image signs an image of build number build with the rig's key, aligned
// for board b, with a payload of size bytes.
func (r *Rig) Image(b devicemodel.Board, build uint32, size int) []byte {
	r.T.Helper()
	return r.ImageSignedBy(r.ImageKey, b, build, size)
}

// ImageSignedBy is Image signed with key.
func (r *Rig) ImageSignedBy(key crypto.Signer, b devicemodel.Board, build uint32, size int) []byte {
	r.T.Helper()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i*31 + int(build))
	}
	img, err := image.Sign(payload, image.SignOptions{
		Key: key, Version: image.Version{Major: 1, Build: build}, HeaderSize: 0x200, PadHeader: true, Align: b.ImageAlign,
	})
	if err != nil {
		r.T.Fatal(err)
	}
	return img
}

// Upload creates the CI target of img for hwid with tags.
func (r *Rig) Upload(img []byte, hwid string, tags ...string) gateway.TargetInfo {
	r.T.Helper()
	var ti gateway.TargetInfo
	r.Admin(http.StatusCreated, "POST", "/v1/firmware?hwid="+hwid+"&tags="+strings.Join(tags, ","), img, &ti)
	return ti
}

// FirmwareFile is where the gateway keeps the firmware of ti.
func (r *Rig) FirmwareFile(ti gateway.TargetInfo) string {
	return filepath.Join(r.Dir, "firmware", ti.SHA256[:2], ti.SHA256[2:]+".bin")
}

// SetDeviceConfig sets a fioconfig file (unencrypted) for one device.
func (r *Rig) SetDeviceConfig(uuid, name, value string) {
	r.T.Helper()
	body, _ := json.Marshal(gateway.ConfigRequest{Files: []gateway.ConfigFileRequest{{Name: name, Value: value, Unencrypted: true}}})
	r.Admin(http.StatusOK, "PUT", "/v1/config/devices/"+uuid, body, nil)
}

// Model builds a device model for board with the rig's image key.
func (r *Rig) Model(board string, edit func(*devicemodel.ModelConfig)) *devicemodel.Model {
	r.T.Helper()
	b, err := devicemodel.LookupBoard(board)
	if err != nil {
		r.T.Fatal(err)
	}
	cfg := devicemodel.ModelConfig{Board: b, Bootloader: mcuboot.Config{Keys: []crypto.PublicKey{r.ImageKey.Public()}, ValidatePrimary: true}}
	if edit != nil {
		edit(&cfg)
	}
	m, err := devicemodel.NewModel(cfg)
	if err != nil {
		r.T.Fatal(err)
	}
	return m
}

// DeviceOptions are what a rig's device may differ in.
type DeviceOptions struct {
	Production bool
	// ProvisionRoot provisions 1.root.json at manufacture.
	ProvisionRoot bool
	// Seed is the device's number: its UUID, key and randomness.
	Seed int
}

// Dev is a device of the rig with the events it logged.
type Dev struct {
	*devicemodel.Device
	Events []devicemodel.Event
	stop   func(devicemodel.Event) bool
	// Log, when set, also receives every event.
	Log func(devicemodel.Event)
}

// identity signs a certificate for device n's secure element.
func (r *Rig) identity(n int, production bool) (*devicemodel.SecureElement, string) {
	r.T.Helper()
	uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
	se := devicemodel.NewSecureElement([32]byte{byte(n), byte(n >> 8), 'd', 't'})
	csr, err := se.CSR(uuid, gatewaytest.Rand(byte(n), 'c', 's', 'r'))
	if err != nil {
		r.T.Fatal(err)
	}
	der, err := r.CA.SignCSR(csr, production, Epoch.Add(-time.Hour), gatewaytest.Rand(byte(n), 's', 'i', 'g'))
	if err != nil {
		r.T.Fatal(err)
	}
	if err := se.SetCertificate(der); err != nil {
		r.T.Fatal(err)
	}
	return se, uuid
}

// Device manufactures a device of model m with the factory image img.
func (r *Rig) Device(m *devicemodel.Model, img []byte, o DeviceOptions) *Dev {
	r.T.Helper()
	se, uuid := r.identity(o.Seed, o.Production)
	spec := devicemodel.Spec{UUID: uuid, Serial: fmt.Sprintf("%032X", o.Seed), SE: se, FactoryImage: img, Seed: uint64(o.Seed)}
	if o.ProvisionRoot {
		spec.Root = r.Root()
	}
	dev := &Dev{}
	d, err := devicemodel.Manufacture(m, r.Host, spec, func(e devicemodel.Event) {
		dev.Events = append(dev.Events, e)
		if dev.Log != nil {
			dev.Log(e)
		}
		if dev.stop != nil && dev.stop(e) {
			dev.Device.Stop()
		}
	})
	if err != nil {
		r.T.Fatal(err)
	}
	dev.Device = d
	return dev
}

// Root is the gateway's 1.root.json, fetched as a test device.
func (r *Rig) Root() []byte {
	r.T.Helper()
	se, _ := r.identity(0xfff, false)
	id, _ := se.Certificate()
	c, err := r.Host.Connect(agent.Gateway, id)
	if err != nil {
		r.T.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64<<10)
	resp, err := c.Send(&agent.Request{Method: "GET", Path: "/repo/1.root.json", Header: []agent.Field{{Name: "x-ats-tags", Value: "devel"}}}, buf)
	if err != nil || resp.Status != http.StatusOK {
		r.T.Fatalf("GET /repo/1.root.json = %d, %v", resp.Status, err)
	}
	return bytes.Clone(resp.Body)
}

// Run runs the device until stop reports true for one of its events, the
// device halts, or its clock has moved on by limit. It returns the
// device's error: nil when stop or the limit ended the run.
func (r *Rig) Run(d *Dev, limit time.Duration, stop func(devicemodel.Event) bool) error {
	r.T.Helper()
	if r.Virtual != nil {
		deadline := r.Virtual.Now().Add(limit)
		prev := r.Virtual.OnTime
		r.Virtual.OnTime = func(now time.Time) {
			prev(now)
			if now.After(deadline) {
				d.Device.Stop()
			}
		}
		defer func() { r.Virtual.OnTime = prev }()
	} else {
		timer := time.AfterFunc(limit, d.Device.Stop)
		defer timer.Stop()
	}
	d.stop = stop
	defer func() { d.stop = nil }()
	return d.Device.Run(context.Background())
}
