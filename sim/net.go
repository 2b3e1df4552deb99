package sim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/agent"
)

// Server answers devices in process: the gateway's device API (and the
// firmware host) behind an adapter that speaks the agent's request type.
type Server interface {
	// Serve answers req from the device whose certificate is peer into
	// buf, as agent.Conn.Send does, and says how many bytes went each way
	// on the wire (headers included).
	Serve(ep agent.Endpoint, peer *x509.Certificate, req *agent.Request, buf []byte) (resp agent.Response, sent, received int, err error)
}

// NetStats counts what crossed the simulated network.
type NetStats struct {
	Connections, Requests         int64
	BytesSent, BytesReceived      int64
	ConnectFailures, RequestFails int64
	// Open is the connections open now; PeakOpen the most at once.
	Open, PeakOpen int64
}

// Net is the simulated network between devices and the server: each
// device reaches it through its own link.
type Net struct {
	K      *Kernel
	Server Server
	// Down makes every connection attempt fail (an outage on the server's
	// side, or of the whole network).
	Down  bool
	Stats NetStats
	// Quantum lets a device run ahead of the kernel by up to this much
	// virtual time in sleeps no other device can observe (flash operations,
	// short pauses): they add up as the device's debt, which it sleeps in
	// one piece before anything another party could see (the clock, the
	// network, a long sleep). A device then hands the baton back once per
	// quantum rather than once per flash operation. 0 turns it off.
	Quantum time.Duration

	server *server
}

// SetCapacity models the server's CPU and uplink (the zero Capacity: no
// limits, the default). Call it before the run.
func (n *Net) SetCapacity(c Capacity) { n.server = newServer(c) }

// ServerStats is the server's modelled load so far.
func (n *Net) ServerStats() ServerStats {
	if n.server == nil {
		return ServerStats{}
	}
	return n.server.stats
}

// work waits until a job of cost, arriving at the server now, is done.
func (h *Host) work(cost time.Duration) {
	s := h.net.server
	if s == nil {
		return
	}
	k := h.net.K
	h.wait(time.Duration(s.cpu(k.now, cost) - k.now))
}

// wait is network time: the device's debt is settled first, so that the
// server sees every request at its exact virtual time.
func (h *Host) wait(d time.Duration) {
	h.settle()
	h.net.K.Sleep(d, nil)
}

// errNetDown is what a connection attempt during an outage returns.
var errNetDown = errors.New("connect: network unreachable")

// ConnectTimeout is how long a connection attempt waits when nothing
// answers.
const ConnectTimeout = 10 * time.Second

// Host is one device's view of the world: the kernel's clock and the
// network through the device's link. It implements devicemodel.Host.
type Host struct {
	net  *Net
	link *Link
	rng  *rand.Rand
	// debt is virtual time the device has used but not yet slept.
	debt time.Duration
	// Partitioned cuts this device off from the server (a partition of
	// part of the fleet: its cell, its site), as Net.Down does for all.
	Partitioned bool
}

// cut reports whether the device cannot reach the server now.
func (h *Host) cut() bool { return h.net.Down || h.link.Outage || h.Partitioned }

// Host returns the world as a device on link l sees it; seed drives the
// link's randomness (jitter, loss) for that device alone.
func (n *Net) Host(l *Link, seed [2]uint64) *Host {
	return &Host{net: n, link: l, rng: rand.New(rand.NewPCG(seed[0], seed[1]))}
}

// Now is the virtual time, as the device sees it: its debt is settled
// first.
func (h *Host) Now() time.Time {
	h.settle()
	return h.net.K.Now()
}

// Sleep blocks the device for d in virtual time. A short sleep within the
// net's quantum only adds to the device's debt.
func (h *Host) Sleep(d time.Duration, interrupt <-chan struct{}) bool {
	if q := h.net.Quantum; q > 0 && h.debt+d < q && h.net.K.running != nil {
		h.debt += max(d, 0)
		return !closed(interrupt)
	}
	d += h.debt
	h.debt = 0
	return h.net.K.Sleep(d, interrupt)
}

// settle sleeps the device's debt.
func (h *Host) settle() {
	if h.debt > 0 && h.net.K.running != nil {
		d := h.debt
		h.debt = 0
		h.net.K.Sleep(d, nil)
	}
}

// Connect opens a connection: TCP and TLS round trips over the link and
// the device's handshake CPU, then an in-process connection to the server.
func (h *Host) Connect(ep agent.Endpoint, id tls.Certificate) (agent.Conn, error) {
	h.settle()
	n := h.net
	if h.cut() {
		n.Stats.ConnectFailures++
		h.wait(ConnectTimeout)
		return nil, errNetDown
	}
	if len(id.Certificate) == 0 {
		return nil, errors.New("tls: no client certificate")
	}
	leaf, err := leaves.parse(id.Certificate[0])
	if err != nil {
		return nil, err
	}
	h.wait(time.Duration(h.link.HandshakeRTTs)*h.rtt() + h.link.HandshakeCPU)
	if n.server != nil {
		h.work(n.server.c.HandshakeCPU)
	}
	if h.cut() {
		n.Stats.ConnectFailures++
		return nil, errNetDown
	}
	n.Stats.Connections++
	n.Stats.Open++
	n.Stats.PeakOpen = max(n.Stats.PeakOpen, n.Stats.Open)
	return &conn{h: h, ep: ep, peer: leaf}, nil
}

// rtt is one round trip on the link, with its jitter.
func (h *Host) rtt() time.Duration {
	l := h.link
	if l.Jitter <= 0 {
		return l.RTT
	}
	return l.RTT + time.Duration(h.rng.Int64N(int64(l.Jitter)+1))
}

// transfer is how long n bytes take at bits per second.
func transfer(n int, bps int64) time.Duration {
	if bps <= 0 || n <= 0 {
		return 0
	}
	return time.Duration(int64(n) * 8 * int64(time.Second) / bps)
}

// RetransmitTimeout is what a lost segment costs (TCP's minimum RTO).
const RetransmitTimeout = time.Second

type conn struct {
	h      *Host
	ep     agent.Endpoint
	peer   *x509.Certificate
	closed bool
}

// Send carries the request up the link, lets the server answer when it
// arrives, and carries the answer down.
func (c *conn) Send(req *agent.Request, buf []byte) (agent.Response, error) {
	if c.closed {
		return agent.Response{}, errors.New("connection closed")
	}
	h, n, l := c.h, c.h.net, c.h.link
	h.settle()
	rtt := h.rtt()
	up := requestBytes(req)
	h.wait(rtt/2 + transfer(up, l.Up) + h.lost())
	if h.cut() {
		c.drop()
		n.Stats.RequestFails++
		return agent.Response{}, errors.New("connection reset by peer")
	}
	if n.server != nil {
		h.work(n.server.c.RequestCPU)
	}
	resp, sent, received, err := n.Server.Serve(c.ep, c.peer, req, buf)
	n.Stats.Requests++
	n.Stats.BytesSent += int64(sent)
	n.Stats.BytesReceived += int64(received)
	down := rtt/2 + transfer(received, l.Down)
	if n.server != nil {
		// The response leaves the gateway's uplink behind the bytes queued
		// before it; the device's link may be the slower of the two.
		down = max(down, time.Duration(n.server.send(n.K.now, received)-n.K.now)+rtt/2)
	}
	h.wait(down + h.lost())
	if errors.Is(err, agent.ErrResponseTooLarge) {
		c.drop()
	}
	return resp, err
}

// lost is the retransmission delay of a request or response that lost a
// segment on the way, else 0.
func (h *Host) lost() time.Duration {
	if h.link.Loss > 0 && h.rng.Float64() < h.link.Loss {
		return RetransmitTimeout
	}
	return 0
}

// requestBytes estimates a request's size on the wire: the request line,
// the headers the agent's HTTP client sends, and the body.
func requestBytes(r *agent.Request) int {
	n := len(r.Method) + len(r.Path) + len(" HTTP/1.1\r\n") + 96 + len(r.Body)
	for _, f := range r.Header {
		n += len(f.Name) + len(f.Value) + 4
	}
	return n
}

func (c *conn) drop() {
	if !c.closed {
		c.closed = true
		c.h.net.Stats.Open--
	}
}

func (c *conn) Close() error {
	c.drop()
	return nil
}

// leafCache remembers parsed device certificates by their DER: a device
// connects several times in a row (a check-in, then its download), and a
// parse is a pure function of the bytes. It holds at most maxLeaves and
// then forgets them all.
type leafCache struct {
	mu sync.Mutex
	m  map[string]*x509.Certificate
}

const maxLeaves = 1024

var leaves leafCache

func (c *leafCache) parse(der []byte) (*x509.Certificate, error) {
	c.mu.Lock()
	leaf, ok := c.m[string(der)]
	c.mu.Unlock()
	if ok {
		return leaf, nil
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxLeaves {
		c.m = make(map[string]*x509.Certificate, maxLeaves)
	}
	c.m[string(der)] = leaf
	c.mu.Unlock()
	return leaf, nil
}
