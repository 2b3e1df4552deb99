package gateway_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/quic-go/quic-go/http3"
)

// The test harness runs a real gateway on loopback: TLS over TCP and HTTP/3
// over UDP with devices' certificates from a factory CA, and the admin API
// with a token. Its clock is a fake the tests move.

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

type harness struct {
	t        *testing.T
	dir      string
	ca       *pki.CA
	clock    *gatewaytest.Clock
	g        *gateway.Gateway
	imageKey crypto.Signer
	token    string
	pool     *x509.CertPool

	devAddr, h3Addr, adminAddr string
	stop                       func()
	adminClient                *http.Client
}

type harnessCA struct {
	ca       *pki.CA
	imageKey crypto.Signer
}

func newCA(t *testing.T) harnessCA {
	t.Helper()
	ca, err := pki.NewCA("test-factory", epoch.Add(-time.Hour), gatewaytest.Rand(1))
	if err != nil {
		t.Fatal(err)
	}
	key, err := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(2))
	if err != nil {
		t.Fatal(err)
	}
	return harnessCA{ca, key}
}

// newHarness opens a gateway in dir and serves it on loopback.
func newHarness(t *testing.T, dir string, hc harnessCA, clock *gatewaytest.Clock) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, ca: hc.ca, clock: clock, imageKey: hc.imageKey, token: "test-token"}
	g, err := gateway.Open(dir, gateway.Options{
		Clock: clock, Random: gatewaytest.Rand(3), Factory: "test-factory",
		ImageKeys: []crypto.PublicKey{hc.imageKey.Public()},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	server, err := hc.ca.IssueServer(nil, epoch.Add(-time.Hour), gatewaytest.Rand(4))
	if err != nil {
		t.Fatal(err)
	}
	h.pool = x509.NewCertPool()
	h.pool.AddCert(hc.ca.Cert)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- g.Serve(ctx, gateway.ServeConfig{
			DeviceAddr: "127.0.0.1:0", H3Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			Certificate: server, ClientCAs: h.pool, AdminToken: h.token,
			TickInterval: time.Hour, ShutdownTimeout: 5 * time.Second,
			Ready: func(dev, h3, admin net.Addr) {
				h.devAddr, h.h3Addr, h.adminAddr = dev.String(), h3.String(), admin.String()
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	h.adminClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.pool}}}
	h.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		h.adminClient.CloseIdleConnections()
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(func() {
		if h.stop != nil {
			h.stop()
		}
	})
	return h
}

// shutdown stops the gateway now (a graceful stop), instead of at cleanup.
func (h *harness) shutdown() {
	h.stop()
	h.stop = nil
}

// admin calls the admin API and returns the status and body.
func (h *harness) admin(method, path string, body any) (int, []byte) {
	h.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "https://"+h.adminAddr+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.adminClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// mustAdmin calls the admin API and fails the test unless the status is
// want; it decodes the JSON answer into out when out is not nil.
func (h *harness) mustAdmin(want int, method, path string, body, out any) {
	h.t.Helper()
	status, data := h.admin(method, path, body)
	if status != want {
		h.t.Fatalf("%s %s = %d %s, want %d", method, path, status, data, want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

// upload creates the CI target of img for hwid and tags.
func (h *harness) upload(img []byte, hwid, tags string) gateway.TargetInfo {
	h.t.Helper()
	var ti gateway.TargetInfo
	h.mustAdmin(http.StatusCreated, "POST", "/v1/firmware?hwid="+hwid+"&tags="+tags, img, &ti)
	return ti
}

// device is one device's clients: HTTP/1.1+2 over TLS and HTTP/3.
type device struct {
	uuid    string
	h       *harness
	tcp, h3 *http.Client
	tag     string
	target  string
	cert    tls.Certificate
}

func (h *harness) newDevice(uuid string, production bool) *device {
	h.t.Helper()
	cert, err := h.ca.IssueDevice(pki.DeviceSpec{UUID: uuid, Production: production}, epoch.Add(-time.Hour), gatewaytest.Rand(byte(len(uuid))))
	if err != nil {
		h.t.Fatal(err)
	}
	return h.deviceWith(uuid, cert)
}

func (h *harness) deviceWith(uuid string, cert tls.Certificate) *device {
	tlsConf := &tls.Config{RootCAs: h.pool, Certificates: []tls.Certificate{cert}}
	d := &device{
		uuid: uuid, h: h, tag: "devel", target: "board-v1", cert: cert,
		tcp: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf.Clone(), ForceAttemptHTTP2: true}},
		h3:  &http.Client{Timeout: 10 * time.Second, Transport: &http3.Transport{TLSClientConfig: tlsConf.Clone()}},
	}
	h.t.Cleanup(func() {
		d.tcp.CloseIdleConnections()
		d.h3.Transport.(*http3.Transport).Close()
	})
	return d
}

// do sends a device request over TCP (h3 false) or HTTP/3.
func (d *device) do(h3 bool, method, path string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	d.h.t.Helper()
	c, addr := d.tcp, d.h.devAddr
	if h3 {
		c, addr = d.h3, d.h.h3Addr
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, "https://"+addr+path, r)
	if err != nil {
		d.h.t.Fatal(err)
	}
	req.Header.Set("x-ats-tags", d.tag)
	req.Header.Set("x-ats-target", d.target)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		d.h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		d.h.t.Fatal(err)
	}
	return resp, data
}

// get fetches path and fails the test unless the status is want.
func (d *device) get(h3 bool, path string, want int) []byte {
	d.h.t.Helper()
	resp, data := d.do(h3, "GET", path, nil, nil)
	if resp.StatusCode != want {
		d.h.t.Fatalf("GET %s = %d %q, want %d", path, resp.StatusCode, data, want)
	}
	return data
}

// event posts one aktualizr-nano event and fails the test unless it is
// acknowledged.
func (d *device) event(id, typ, correlation string, version uint32, success bool) {
	d.h.t.Helper()
	body, _ := json.Marshal([]map[string]any{{
		"id": id, "deviceTime": "2026-11-01T12:00:00.000Z",
		"eventType": map[string]any{"id": typ, "version": 0},
		"event": map[string]any{
			"correlationId": correlation, "targetName": "board-v" + itoa(version),
			"version": itoa(version), "success": success,
		},
	}})
	resp, data := d.do(false, "POST", "/events", body, nil)
	if resp.StatusCode != http.StatusOK {
		d.h.t.Fatalf("POST /events = %d %s", resp.StatusCode, data)
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
