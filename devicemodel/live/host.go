// Package live runs virtual MCUs in the real world: on the wall clock,
// against a real gateway over real sockets, each connection a mutual-TLS
// session carrying the device's own certificate and key, as the MCUs open
// them (HTTP/1.1 over TLS, as aktualizr-nano; or HTTP/2, or HTTP/3 over
// QUIC).
//
// It implements devicemodel.Host; the fleet engine implements the same
// interface on a virtual clock.
package live

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Proto is the HTTP version devices speak.
type Proto string

const (
	HTTP1 Proto = "h1" // HTTP/1.1 over TLS, no ALPN, as the MCU
	HTTP2 Proto = "h2" // HTTP/2 over TLS (ALPN h2)
	HTTP3 Proto = "h3" // HTTP/3 over QUIC
)

// ParseProto reads "h1", "h2" or "h3".
func ParseProto(s string) (Proto, error) {
	switch p := Proto(s); p {
	case HTTP1, HTTP2, HTTP3:
		return p, nil
	}
	return "", fmt.Errorf("protocol %q is not h1, h2 or h3", s)
}

// Host is the real world for devices: the wall clock and the network.
type Host struct {
	// Gateway is the device gateway's base URL, https://host:port.
	Gateway *url.URL
	// Files is the firmware host's base URL (nil: the gateway).
	Files *url.URL
	// Proto is the HTTP version (default HTTP1).
	Proto Proto
	// RootCAs verify the servers' certificates (nil: the system's).
	RootCAs *x509.CertPool
	// ServerName overrides the name the server certificates are checked
	// against (default: the URL's host).
	ServerName string
	// RequestTimeout bounds one request and its answer (default 30 s);
	// DialTimeout a connection with its handshake (default 10 s).
	RequestTimeout, DialTimeout time.Duration
	// SessionCache, when not nil, lets connections resume TLS sessions
	// kept in it (tls.Config.ClientSessionCache). nil, the default, is an
	// MCU, which keeps no session state: every connection is a full
	// handshake. A cache belongs to one device and must never be shared
	// between hosts of different identities: a resumed session carries
	// the identity it was made with.
	SessionCache tls.ClientSessionCache
	// OnHandshake, when not nil, is called with the state of every
	// verified handshake, full or resumed, over TCP and QUIC alike
	// (through tls.Config.VerifyConnection), before Connect returns but
	// possibly on another goroutine (QUIC handshakes run on quic-go's).
	OnHandshake func(tls.ConnectionState)

	stats Stats
}

// Stats counts what the host's devices sent and received.
type Stats struct {
	Connections, Requests      atomic.Int64
	BytesSent, BytesReceived   atomic.Int64
	FailedConnects, FailedSend atomic.Int64
}

// Stats is the host's running counts.
func (h *Host) Stats() *Stats { return &h.stats }

// Now is the wall clock.
func (h *Host) Now() time.Time { return time.Now() }

// Sleep waits d on the wall clock, or until interrupt closes.
func (h *Host) Sleep(d time.Duration, interrupt <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-interrupt:
		return false
	}
}

func (h *Host) base(ep agent.Endpoint) *url.URL {
	if ep == agent.Files && h.Files != nil {
		return h.Files
	}
	return h.Gateway
}

func (h *Host) timeouts() (req, dial time.Duration) {
	req, dial = h.RequestTimeout, h.DialTimeout
	if req <= 0 {
		req = 30 * time.Second
	}
	if dial <= 0 {
		dial = 10 * time.Second
	}
	return req, dial
}

// Connect opens one connection to ep presenting id: TLS with SNI, TLS 1.2
// or later, no session resumption unless SessionCache is set (an MCU keeps
// no session state).
func (h *Host) Connect(ep agent.Endpoint, id tls.Certificate) (agent.Conn, error) {
	base := h.base(ep)
	if base == nil {
		return nil, errors.New("live: no gateway URL")
	}
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{id},
		RootCAs:      h.RootCAs,
		ServerName:   h.ServerName,
		MinVersion:   tls.VersionTLS12,
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = base.Hostname()
	}
	if h.SessionCache != nil {
		tlsCfg.ClientSessionCache = h.SessionCache
	}
	if on := h.OnHandshake; on != nil {
		tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			on(cs)
			return nil
		}
	}
	reqTimeout, dialTimeout := h.timeouts()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	addr := base.Host
	if base.Port() == "" {
		addr = net.JoinHostPort(base.Hostname(), "443")
	}
	c := &conn{host: h, base: base.Scheme + "://" + base.Host, timeout: reqTimeout}
	switch h.Proto {
	case HTTP3:
		tlsCfg.NextProtos = []string{http3.NextProtoH3}
		qc, err := quic.DialAddr(ctx, addr, tlsCfg, &quic.Config{MaxIdleTimeout: reqTimeout})
		if err != nil {
			h.stats.FailedConnects.Add(1)
			return nil, err
		}
		tr := &http3.Transport{}
		c.rt = tr.NewClientConn(qc)
		c.close = func() error { return qc.CloseWithError(0, "") }
	default:
		var protos http.Protocols
		if h.Proto == HTTP2 {
			protos.SetHTTP2(true)
		} else {
			protos.SetHTTP1(true)
		}
		tr := &http.Transport{TLSClientConfig: tlsCfg, Protocols: &protos, DisableCompression: true, TLSHandshakeTimeout: dialTimeout}
		cc, err := tr.NewClientConn(ctx, "https", addr)
		if err != nil {
			h.stats.FailedConnects.Add(1)
			return nil, err
		}
		c.rt = cc
		c.close = cc.Close
	}
	h.stats.Connections.Add(1)
	return c, nil
}

// conn is one connection: requests go one after the other on it.
type conn struct {
	host    *Host
	base    string
	timeout time.Duration
	rt      http.RoundTripper
	close   func() error
	broken  bool
}

// statusLine is what an HTTP/1.1 status line costs in the device's buffer.
const statusLine = len("HTTP/1.1 200 OK\r\n")

// Send sends req and reads the answer into buf (agent.Conn).
func (c *conn) Send(req *agent.Request, buf []byte) (agent.Response, error) {
	if c.broken {
		return agent.Response{}, errors.New("live: connection already failed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, c.base+req.Path, body)
	if err != nil {
		return agent.Response{}, err
	}
	hreq.ContentLength = int64(len(req.Body))
	hreq.Header.Set("User-Agent", "fleetsim-agent")
	for _, f := range req.Header {
		hreq.Header.Set(f.Name, f.Value)
	}
	if req.RangeEnd > 0 {
		hreq.Header.Set("Range", "bytes="+strconv.FormatInt(req.RangeStart, 10)+"-"+strconv.FormatInt(req.RangeEnd, 10))
	}
	c.host.stats.Requests.Add(1)
	c.host.stats.BytesSent.Add(int64(len(req.Body)))
	resp, err := c.rt.RoundTrip(hreq)
	if err != nil {
		c.fail()
		return agent.Response{}, err
	}
	defer resp.Body.Close()
	hb := statusLine + 2
	for k, vs := range resp.Header {
		for _, v := range vs {
			hb += len(k) + 2 + len(v) + 2
		}
	}
	out := agent.Response{Status: resp.StatusCode, HeaderBytes: hb}
	if hb > len(buf) || resp.ContentLength > int64(len(buf)-hb) {
		c.fail()
		return out, agent.ErrResponseTooLarge
	}
	n, err := readAll(resp.Body, buf[hb:])
	c.host.stats.BytesReceived.Add(int64(hb + n))
	if err != nil {
		c.fail()
		return out, err
	}
	if n > 0 {
		out.Body = buf[hb : hb+n]
	}
	return out, nil
}

// readAll reads r to its end into dst; agent.ErrResponseTooLarge when it
// holds more.
func readAll(r io.Reader, dst []byte) (int, error) {
	n := 0
	for {
		var m int
		var err error
		if n < len(dst) {
			m, err = r.Read(dst[n:])
			n += m
		} else {
			var one [1]byte
			if m, err = r.Read(one[:]); m > 0 {
				return n, agent.ErrResponseTooLarge
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func (c *conn) fail() {
	c.broken = true
	c.host.stats.FailedSend.Add(1)
}

// Close closes the connection.
func (c *conn) Close() error { return c.close() }
