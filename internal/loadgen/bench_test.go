package loadgen

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/flashsim"
)

// BenchmarkAgentCheckIn is the client's CPU per idle check-in without the
// network: the agent as loadgen runs it (its flash, its boot control, no
// target parse delay) checking in through an in-process connection.
// "gateway" calls the gateway's device handler, so it is agent plus
// handler; "agent" replays the gateway's recorded answers, so it is the
// agent alone: the requests, the TUF refresh and the flash writes. Most of
// it is signature checks: like libtufnano, the agent verifies the root,
// timestamp, snapshot and targets it reads back from flash at every
// check-in, and the timestamp it fetches. TLS and HTTP on a real
// connection come on top (see the loadgen process's CPU in a loopback
// run).
//
//	go test -run '^$' -bench AgentCheckIn -benchmem ./internal/loadgen/
func BenchmarkAgentCheckIn(b *testing.B) {
	pki := newTestPKI(b, testUUIDs[:1])
	devs, err := LoadDevices(pki.deviceDir, 0)
	if err != nil {
		b.Fatal(err)
	}
	gw := openGateway(b).DeviceHandler()
	leaf := devs[0].Cert.Leaf
	state := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}}

	b.Run("gateway", func(b *testing.B) {
		a := benchAgent(b, devs[0], &handlerNet{h: gw, tls: state})
		b.ReportAllocs()
		for b.Loop() {
			if err := a.CheckIn(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("agent", func(b *testing.B) {
		net := &handlerNet{h: gw, tls: state, record: map[string]recorded{}}
		a := benchAgent(b, devs[0], net)
		net.replay = net.record
		b.ReportAllocs()
		for b.Loop() {
			if err := a.CheckIn(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchAgent boots an agent on loadgen's platform with net as its network,
// and runs its first check-in (root provisioning, every role).
func benchAgent(b *testing.B, dev Device, net agent.Network) *agent.Agent {
	b.Helper()
	part := flashsim.New(flashsim.Uniform(agent.StorageSize/4096, 4096, 8, 0xff), flashsim.Options{NoSharing: true})
	area, err := flashsim.NewArea(part, flashsim.Partition{Name: "agent", Size: agent.StorageSize})
	if err != nil {
		b.Fatal(err)
	}
	if err := agent.ProvisionStorage(area, agent.FlashPageSize, dev.UUID, "0123456789ABCDEF0123456789ABCDEF", nil); err != nil {
		b.Fatal(err)
	}
	p := agent.Platform{
		Clock: benchClock{}, Net: net, Storage: area, Boot: runningImage(1),
		Rand: bytes.NewReader(make([]byte, 1<<16)), Reset: func() { b.Fatal("reset") },
	}
	a, err := agent.New(p, agent.Config{HardwareID: testHWID, DefaultTag: testTag, Options: agent.Options{NoTargetParseDelay: true}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.CheckIn(); err != nil {
		b.Fatal(err)
	}
	return a
}

// benchClock is the wall clock with sleeps that take no time.
type benchClock struct{}

func (benchClock) Now() time.Time        { return time.Now() }
func (benchClock) Uptime() time.Duration { return 0 }
func (benchClock) Sleep(time.Duration)   {}

// recorded is one recorded answer.
type recorded struct {
	status int
	body   []byte
}

// handlerNet connects to a handler in process (agent.Network and
// agent.Conn). With record it keeps the last answer to each request; with
// replay it answers from such a record instead of calling the handler.
type handlerNet struct {
	h              http.Handler
	tls            *tls.ConnectionState
	record, replay map[string]recorded
}

func (n *handlerNet) Connect(agent.Endpoint) (agent.Conn, error) { return n, nil }
func (n *handlerNet) Close() error                               { return nil }

func (n *handlerNet) Send(req *agent.Request, buf []byte) (agent.Response, error) {
	key := req.Method + " " + req.Path
	if n.replay != nil {
		r, ok := n.replay[key]
		if !ok {
			return agent.Response{Status: http.StatusNotFound}, nil
		}
		return n.answer(r.status, r.body, buf)
	}
	hreq := httptest.NewRequest(req.Method, "https://gateway"+req.Path, bytes.NewReader(req.Body))
	hreq.TLS = n.tls
	for _, f := range req.Header {
		hreq.Header.Set(f.Name, f.Value)
	}
	w := httptest.NewRecorder()
	n.h.ServeHTTP(w, hreq)
	if n.record != nil {
		n.record[key] = recorded{w.Code, bytes.Clone(w.Body.Bytes())}
	}
	return n.answer(w.Code, w.Body.Bytes(), buf)
}

func (n *handlerNet) answer(status int, body, buf []byte) (agent.Response, error) {
	const hb = len("HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n") + 5
	if hb+len(body) > len(buf) {
		return agent.Response{Status: status}, agent.ErrResponseTooLarge
	}
	r := agent.Response{Status: status, HeaderBytes: hb}
	if len(body) > 0 {
		r.Body = buf[hb : hb+copy(buf[hb:], body)]
	}
	return r, nil
}
