// Package devicetest runs virtual MCUs against an in-process gateway on a
// virtual clock, one device at a time, for tests and golden traces: time
// passes only when the device sleeps, every request is a call of the
// gateway's device handler with the device's certificate attached, and a
// run is a pure function of its inputs.
//
// It is the single-device seed of the fleet engine's virtual mode; it
// imports the gateway, so devicemodel and agent never need to.
package devicetest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/internal/inproc"
)

// Host is a virtual world for devices that run one at a time (Run them
// one after the other, never together). It implements devicemodel.Host.
type Host struct {
	mu  sync.Mutex
	now time.Time

	// Devices is the gateway's device API; Files serves /mcu/files (nil:
	// Devices).
	Devices, Files http.Handler
	// ClientCAs verify device certificates, as the TLS handshake would.
	ClientCAs *x509.CertPool
	// Latency is added to every request and connection (one round trip).
	Latency time.Duration
	// OnTime is called with the new time whenever the clock moves (the
	// gateway's Tick, a test's checks).
	OnTime func(now time.Time)

	down  bool
	cuts  []timedCut
	stats Stats
}

type timedCut struct {
	at  time.Time
	cut func()
}

// Stats counts the requests and bytes of a run.
type Stats struct {
	Connections, Requests    int
	BytesSent, BytesReceived int64
}

// NewHost returns a host whose clock starts at t.
func NewHost(t time.Time) *Host { return &Host{now: t} }

// Now is the virtual time.
func (h *Host) Now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

// Stats is what the devices sent and received so far.
func (h *Host) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// SetNetworkDown makes every connection attempt fail (an outage) or
// succeed again.
func (h *Host) SetNetworkDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// CutAt calls cut (a device's PowerCut) when the clock reaches t.
func (h *Host) CutAt(t time.Time, cut func()) {
	h.mu.Lock()
	h.cuts = append(h.cuts, timedCut{t, cut})
	h.mu.Unlock()
}

// Sleep advances the clock by d at once. A cut due before the sleep ends
// happens at its time, and the sleep reports that it was interrupted.
func (h *Host) Sleep(d time.Duration, interrupt <-chan struct{}) bool {
	h.mu.Lock()
	end := h.now.Add(d)
	for i, c := range h.cuts {
		if !c.at.After(end) {
			h.cuts = append(h.cuts[:i], h.cuts[i+1:]...)
			if c.at.After(h.now) {
				h.now = c.at
			}
			now := h.now
			h.mu.Unlock()
			h.tick(now)
			c.cut()
			return false
		}
	}
	h.now = end
	h.mu.Unlock()
	h.tick(end)
	select {
	case <-interrupt:
		return false
	default:
		return true
	}
}

func (h *Host) tick(now time.Time) {
	if h.OnTime != nil {
		h.OnTime(now)
	}
}

// ErrNetworkDown: the host's network is down.
var ErrNetworkDown = errors.New("network unreachable")

// Connect checks the device's certificate as a TLS handshake would (one
// round trip of latency) and returns an in-process connection.
func (h *Host) Connect(ep agent.Endpoint, id tls.Certificate) (agent.Conn, error) {
	h.mu.Lock()
	down := h.down
	h.mu.Unlock()
	if down {
		h.Sleep(3*time.Second, nil)
		return nil, ErrNetworkDown
	}
	h.Sleep(h.Latency, nil)
	if len(id.Certificate) == 0 {
		return nil, errors.New("tls: no client certificate")
	}
	leaf, err := x509.ParseCertificate(id.Certificate[0])
	if err != nil {
		return nil, err
	}
	if h.ClientCAs != nil {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: h.ClientCAs, CurrentTime: h.Now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return nil, fmt.Errorf("remote error: tls: bad certificate (%v)", err)
		}
	}
	h.mu.Lock()
	h.stats.Connections++
	h.mu.Unlock()
	return &conn{h: h, ep: ep, peer: leaf}, nil
}

type conn struct {
	h      *Host
	ep     agent.Endpoint
	peer   *x509.Certificate
	closed bool
}

// Send calls the handler with the request, then charges one round trip.
func (c *conn) Send(req *agent.Request, buf []byte) (agent.Response, error) {
	if c.closed {
		return agent.Response{}, errors.New("connection closed")
	}
	srv := inproc.Server{Devices: c.h.Devices, Files: c.h.Files}
	resp, sent, received, err := srv.Serve(c.ep, c.peer, req, buf)
	c.h.Sleep(c.h.Latency, nil)
	c.h.mu.Lock()
	c.h.stats.Requests++
	c.h.stats.BytesSent += int64(sent)
	c.h.stats.BytesReceived += int64(received)
	c.h.mu.Unlock()
	if err != nil {
		c.closed = true
	}
	return resp, err
}

func (c *conn) Close() error {
	c.closed = true
	return nil
}
