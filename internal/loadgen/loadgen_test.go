package loadgen

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/quic-go/quic-go/http3"
)

// testPKI is a throwaway factory CA, a server certificate for 127.0.0.1 and
// a device directory laid out as `fleetsim pki issue` writes it.
type testPKI struct {
	pool       *x509.CertPool
	serverCert tls.Certificate
	deviceDir  string
}

func newTestPKI(t testing.TB, uuids []string) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadgen test factory CA"},
		NotBefore: notBefore, NotAfter: notBefore.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, server bool) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: notBefore, NotAfter: notBefore.Add(48 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		p8, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})
	}
	p := &testPKI{pool: x509.NewCertPool(), deviceDir: t.TempDir()}
	p.pool.AddCert(ca)
	c, k := issue(2, "gateway", true)
	if p.serverCert, err = tls.X509KeyPair(c, k); err != nil {
		t.Fatal(err)
	}
	var index strings.Builder
	for i, uuid := range uuids {
		c, k := issue(int64(10+i), uuid, false)
		if err := os.WriteFile(filepath.Join(p.deviceDir, uuid+".pem"), append(c, k...), 0o600); err != nil {
			t.Fatal(err)
		}
		kind := "test"
		if i%2 == 0 {
			kind = "production"
		}
		fmt.Fprintf(&index, "%s %s\n", uuid, kind)
	}
	if err := os.WriteFile(filepath.Join(p.deviceDir, IndexFile), []byte(index.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const testFirmwarePath = "/mcu/files/ab/" + "cdef0123456789cdef0123456789cdef0123456789cdef0123456789cdef01" + ".bin"

// fault makes the test server misbehave.
type fault int32

const (
	faultNone         fault = iota
	faultContentRange       // a Content-Range one byte off
	faultStatus200          // the whole file with 200, as a server ignoring Range would
	faultShortBody          // one byte less than asked
	faultConfig500          // GET /config answers 500
	faultTimestamp          // timestamp.json altered after signing, answered 200
)

// deviceAPI is the fleetsim gateway's device API, with ranged reads of one
// image on the side and faults injected in front of both. It records the
// answers each device got, so a test can tell that every device checked
// in, not only that the fleet did.
type deviceAPI struct {
	gw      http.Handler
	image   []byte
	fault   atomic.Int32
	devices seenDevices
}

// seenDevices records, per device identity, how often it got each answer
// ("GET /repo/timestamp.json 200").
type seenDevices struct {
	mu   sync.Mutex
	seen map[string]map[string]int
}

func (m *seenDevices) add(cn, answer string) {
	m.mu.Lock()
	if m.seen[cn] == nil {
		m.seen[cn] = map[string]int{}
	}
	m.seen[cn][answer]++
	m.mu.Unlock()
}

// reset returns the answers each device got, and forgets them.
func (m *seenDevices) reset() map[string]map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := m.seen
	m.seen = map[string]map[string]int{}
	return seen
}

// quietLog swallows the servers' complaints about the failures the tests
// provoke on purpose.
func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (a *deviceAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		http.Error(w, "no client certificate", http.StatusForbidden)
		return
	}
	if r.URL.Path == testFirmwarePath {
		a.devices.add(r.TLS.PeerCertificates[0].Subject.CommonName, "GET range")
		a.serveFirmware(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	switch f := fault(a.fault.Load()); {
	case f == faultConfig500 && r.URL.Path == "/config":
		http.Error(rec, "config unavailable", http.StatusInternalServerError)
	case f == faultTimestamp && r.URL.Path == "/repo/timestamp.json":
		orig := httptest.NewRecorder()
		a.gw.ServeHTTP(orig, r)
		body := bytes.Replace(orig.Body.Bytes(), []byte(`"_type":"timestamp"`), []byte(`"_type":"timestamq"`), 1)
		rec.Header().Set("Content-Length", fmt.Sprint(len(body)))
		rec.WriteHeader(orig.Code)
		_, _ = rec.Write(body)
	default:
		a.gw.ServeHTTP(rec, r)
	}
	if rec.code == 0 {
		rec.code = http.StatusOK // nothing written: net/http sends 200
	}
	a.devices.add(r.TLS.PeerCertificates[0].Subject.CommonName, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.code))
}

func (a *deviceAPI) serveFirmware(w http.ResponseWriter, r *http.Request) {
	switch fault(a.fault.Load()) {
	case faultNone:
		http.ServeContent(w, r, "fw.bin", time.Time{}, bytes.NewReader(a.image))
	case faultStatus200:
		_, _ = w.Write(a.image)
	case faultContentRange, faultShortBody:
		var first, last int64
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &first, &last); err != nil {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		body := a.image[first : last+1]
		cr := fmt.Sprintf("bytes %d-%d/%d", first, last, len(a.image))
		if fault(a.fault.Load()) == faultContentRange {
			cr = fmt.Sprintf("bytes %d-%d/%d", first+1, last, len(a.image))
		} else {
			body = body[:len(body)-1]
		}
		w.Header().Set("Content-Range", cr)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusPartialContent)
		_, _ = w.Write(body)
	}
}

// testServer serves the device API over TCP+TLS (HTTP/1.1 and HTTP/2) and
// HTTP/3 on the same port number, with client certificates required.
type testServer struct {
	api  *deviceAPI
	url  string
	pki  *testPKI
	devs []Device
}

// The devices' firmware: hardware, tag and the running version, and the
// newer version the gateway offers them (which a load test never installs).
const (
	testHWID    = "loadtest-board"
	testTag     = "devel"
	testTarget  = testHWID + "-v1"
	testOffered = 2
)

// gatewayClock is the wall clock, for a gateway on real sockets.
type gatewayClock struct{}

func (gatewayClock) Now() time.Time { return time.Now() }

// openGateway opens a fleetsim gateway in a temporary directory, on the
// wall clock, with one target of testHWID in testTag.
func openGateway(t testing.TB) *gateway.Gateway {
	t.Helper()
	key, err := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(1, 'l', 'g'))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.Open(t.TempDir(), gateway.Options{
		Clock: gatewayClock{}, Random: gatewaytest.Rand(2, 'l', 'g'), Factory: "loadgen-test",
		ImageKeys: []crypto.PublicKey{key.Public()}, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	img := gatewaytest.SignedImage(t, key, testOffered, 4000)
	req := httptest.NewRequest("POST", "https://admin/v1/firmware?hwid="+testHWID+"&tags="+testTag, bytes.NewReader(img))
	req.Header.Set("Authorization", "Bearer loadgen-test")
	w := httptest.NewRecorder()
	g.AdminHandler("loadgen-test").ServeHTTP(w, req)
	if w.Code != http.StatusCreated {
		t.Fatalf("uploading the target: %d %s", w.Code, w.Body)
	}
	return g
}

// testUUIDs are the devices' names: the gateway takes UUIDs only.
var testUUIDs = []string{"0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"}

func startTestServer(t *testing.T, image []byte) *testServer {
	t.Helper()
	pki := newTestPKI(t, testUUIDs)
	api := &deviceAPI{gw: openGateway(t).DeviceHandler(), image: image, devices: seenDevices{seen: map[string]map[string]int{}}}
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{pki.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// The TCP server edits its config when it starts serving: HTTP/3 gets
	// its own copy first.
	h3TLS := tlsCfg.Clone()
	srv := &http.Server{Handler: api, TLSConfig: tlsCfg, ErrorLog: quietLog()}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })

	port := ln.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("HTTP/3 on the TCP port's number: %v", err)
	}
	h3 := &http3.Server{Handler: api, TLSConfig: http3.ConfigureTLSConfig(h3TLS)}
	go func() { _ = h3.Serve(udp) }()
	t.Cleanup(func() { _ = h3.Close(); _ = udp.Close() })

	devs, err := LoadDevices(pki.deviceDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{api: api, url: fmt.Sprintf("https://127.0.0.1:%d", port), pki: pki, devs: devs}
}

func (s *testServer) config(sc Scenario, p Proto) Config {
	return Config{
		BaseURL: s.url, RootCAs: s.pki.pool, Scenario: sc, Proto: p, Devices: s.devs,
		Connections: 2, Warmup: 20 * time.Millisecond, Duration: 200 * time.Millisecond,
		Resume: true, Tag: testTag, Target: testTarget, Path: testFirmwarePath,
	}
}

func testImage(n int) []byte {
	img := make([]byte, n)
	for i := range img {
		img[i] = byte(i*7 + i>>8)
	}
	return img
}

// runAnswered runs cfg, and runs it again with a longer window while no
// answer at all fell in the window: other processes on a shared machine
// can starve a 200 ms run. A server that never answers still fails, after
// about two seconds.
func runAnswered(t *testing.T, cfg Config) (Result, error) {
	t.Helper()
	for try := 0; ; try++ {
		r, err := Run(context.Background(), cfg)
		if err != nil || r.Requests+r.Errors > 0 || try == 2 {
			return r, err
		}
		t.Logf("no answer in %v; trying a longer window", cfg.Duration)
		cfg.Duration *= 3
	}
}

func checkSane(t *testing.T, r Result) {
	t.Helper()
	t.Log(r)
	if r.Requests == 0 || r.Errors != 0 {
		t.Fatalf("requests %d errors %d (%v): want some requests and no errors\n%s", r.Requests, r.Errors, r.ErrorKinds, r)
	}
	if !(r.P50Ms > 0 && r.P50Ms <= r.P90Ms && r.P90Ms <= r.P99Ms && r.P99Ms <= r.MaxMs) {
		t.Fatalf("latencies not ordered: p50 %v p90 %v p99 %v max %v", r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs)
	}
	if r.MaxMs > 1000*r.Seconds+1000 {
		t.Fatalf("max latency %vms is longer than the run", r.MaxMs)
	}
	if r.ReqPerSec <= 0 || r.MBPerSec <= 0 {
		t.Fatalf("rates %v req/s %v MB/s", r.ReqPerSec, r.MBPerSec)
	}
}

// The answers of a check-in. Every check-in asks the steady ones; a
// device's first also fetches the root it trusts on first use and the
// roles it has none of yet (snapshot, targets), once.
var (
	steadyCheckIn = []string{"GET /config 204", "PUT /system_info 200", "PUT /system_info/network 200",
		"PUT /system_info/config 200", "GET /repo/2.root.json 404", "GET /repo/timestamp.json 200"}
	firstCheckIn = []string{"GET /repo/1.root.json 200", "GET /repo/snapshot.json 200", "GET /repo/targets.json 200"}
)

// TestCheckIn runs the agent's check-in against the gateway over each
// protocol, with one connection per device kept open or a new one per
// check-in. Every device refreshes its TUF metadata at every check-in (no
// new root, the timestamp, nothing more once it has the rest), and every
// answer is as the device API promises.
func TestCheckIn(t *testing.T) {
	s := startTestServer(t, nil)
	for _, p := range []Proto{HTTP1, HTTP2, HTTP3} {
		for _, reconnect := range []bool{false, true} {
			name := string(p) + "/keep-alive"
			if reconnect {
				name = string(p) + "/reconnect"
			}
			t.Run(name, func(t *testing.T) {
				s.api.devices.reset()
				cfg := s.config(CheckIn, p)
				cfg.Reconnect = reconnect
				r, err := runAnswered(t, cfg)
				if err != nil {
					t.Fatal(err)
				}
				checkSane(t, r)
				checkCheckIns(t, r, cfg.Connections)
				// Handshakes: one per device kept open, or one per check-in.
				checkIns := r.Statuses[steadyCheckIn[0]]
				if reconnect && r.Handshakes+uint64(cfg.Connections) < checkIns || !reconnect && r.Handshakes > uint64(cfg.Connections) {
					t.Fatalf("%d handshakes for %d check-ins of %d devices", r.Handshakes, checkIns, cfg.Connections)
				}
				// Server side: each device, not only the fleet, refreshed.
				seen := s.api.devices.reset()
				if len(seen) != len(s.devs) {
					t.Fatalf("the server saw devices %v, want %d", seen, len(s.devs))
				}
				for cn, answers := range seen {
					for _, want := range append(steadyCheckIn, firstCheckIn...) {
						if answers[want] == 0 {
							t.Fatalf("device %s never got %q: %v", cn, want, answers)
						}
					}
					if n := answers["GET /repo/1.root.json 200"]; n != 1 {
						t.Fatalf("device %s fetched its first root %d times", cn, n)
					}
				}
			})
		}
	}
}

// checkCheckIns checks that a run's answers are those of whole check-ins
// of n devices: only the check-in's answers, each steady one as often as
// the others (but for the check-ins the window cut), the first-contact
// ones at most once per device.
func checkCheckIns(t *testing.T, r Result, n int) {
	t.Helper()
	var total uint64
	for i, k := range steadyCheckIn {
		c := r.Statuses[k]
		if c == 0 {
			t.Fatalf("no %q in %v", k, r.Statuses)
		}
		if prev := r.Statuses[steadyCheckIn[max(i-1, 0)]]; c > prev+uint64(2*n) || prev > c+uint64(2*n) {
			t.Fatalf("steps out of step: %v", r.Statuses)
		}
		total += c
	}
	for _, k := range firstCheckIn {
		if r.Statuses[k] > uint64(n) {
			t.Fatalf("%d of %q for %d devices: %v", r.Statuses[k], k, n, r.Statuses)
		}
		total += r.Statuses[k]
	}
	if total != r.Requests {
		t.Fatalf("statuses %v do not add up to %d requests", r.Statuses, r.Requests)
	}
}

// countingServer serves the device API over HTTP/1.1 and counts the TCP
// connections devices open.
func countingServer(t *testing.T, s *testServer) (string, *atomic.Int64) {
	var conns atomic.Int64
	srv := &http.Server{Handler: s.api, ErrorLog: quietLog(), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.pki.serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: s.pki.pool}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), &conns
}

// TestCheckInReconnect: with Reconnect every check-in is a new connection
// and handshake (resumed when allowed); without, each device keeps one.
func TestCheckInReconnect(t *testing.T) {
	s := startTestServer(t, nil)
	for _, resume := range []bool{false, true} {
		url, conns := countingServer(t, s)
		cfg := s.config(CheckIn, HTTP1)
		cfg.BaseURL = url
		cfg.Reconnect, cfg.Resume = true, resume
		r, err := runAnswered(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSane(t, r)
		checkIns := r.Statuses["GET /config 204"]
		if uint64(conns.Load()) < checkIns || r.Handshakes+uint64(cfg.Connections) < checkIns {
			t.Fatalf("resume=%v: %d connections and %d handshakes for %d check-ins: want one per check-in",
				resume, conns.Load(), r.Handshakes, checkIns)
		}
		// Each device resumes its own session, or none when told not to.
		if resume != (r.Resumed > r.Handshakes/2) || (!resume && r.Resumed != 0) {
			t.Fatalf("resume=%v: %d of %d handshakes resumed", resume, r.Resumed, r.Handshakes)
		}
	}
	url, conns := countingServer(t, s)
	cfg := s.config(CheckIn, HTTP1)
	cfg.BaseURL = url
	r, err := runAnswered(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r)
	if conns.Load() != int64(cfg.Connections) || r.Handshakes > uint64(cfg.Connections) || r.Requests < 6*uint64(cfg.Connections) {
		t.Fatalf("keep-alive: %d connections and %d handshakes for %d requests, want %d connections",
			conns.Load(), r.Handshakes, r.Requests, cfg.Connections)
	}
}

func TestRange(t *testing.T) {
	// Not a multiple of the chunk: the last range is trimmed (§1.7).
	img := testImage(5*DefaultChunk + 1000)
	s := startTestServer(t, img)
	for _, p := range []Proto{HTTP1, HTTP2, HTTP3} {
		t.Run(string(p), func(t *testing.T) {
			cfg := s.config(Range, p)
			cfg.Image = img
			r, err := runAnswered(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkSane(t, r)
			if r.Statuses["GET range 206"] != r.Requests || r.Bytes < r.Requests*1000 || r.Bytes > r.Requests*DefaultChunk {
				t.Fatalf("%d requests, %d bytes, statuses %v", r.Requests, r.Bytes, r.Statuses)
			}
		})
	}
}

func TestRangeProbesSize(t *testing.T) {
	s := startTestServer(t, testImage(3*DefaultChunk))
	cfg := s.config(Range, HTTP1)
	size, err := ProbeSize(context.Background(), &cfg)
	if err != nil || size != 3*DefaultChunk {
		t.Fatalf("ProbeSize = %d, %v; want %d", size, err, 3*DefaultChunk)
	}
	cfg.Path = "/mcu/files/00/missing.bin"
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrProbe) {
		t.Fatalf("Run on a missing file: %v, want ErrProbe", err)
	}
}

// TestRangeFaults: a server that answers with the wrong Content-Range, the
// wrong status or a short body has every such answer counted as an error,
// and none as a success.
func TestRangeFaults(t *testing.T) {
	img := testImage(4 * DefaultChunk)
	s := startTestServer(t, img)
	for _, tc := range []struct {
		fault fault
		kind  string
	}{
		{faultContentRange, "content-range"},
		{faultStatus200, "status GET range 200"},
		{faultShortBody, "length"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			s.api.fault.Store(int32(tc.fault))
			defer s.api.fault.Store(int32(faultNone))
			cfg := s.config(Range, HTTP1)
			cfg.Size = int64(len(img))
			cfg.Warmup, cfg.Duration = 0, 150*time.Millisecond
			r, err := runAnswered(t, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Requests != 0 || r.Errors == 0 || r.ErrorKinds[tc.kind] != r.Errors || r.FirstError == "" {
				t.Fatalf("requests %d errors %d kinds %v: want only %q errors\n%s", r.Requests, r.Errors, r.ErrorKinds, tc.kind, r)
			}
		})
	}
}

// TestContentMismatch: with the image given, a body with the right length
// but other bytes is an error.
func TestContentMismatch(t *testing.T) {
	img := testImage(2 * DefaultChunk)
	s := startTestServer(t, img)
	cfg := s.config(Range, HTTP2)
	cfg.Image = bytes.Clone(img)
	cfg.Image[DefaultChunk+5] ^= 1
	cfg.Connections = 1
	cfg.Warmup, cfg.Duration = 0, 150*time.Millisecond
	r, err := runAnswered(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.ErrorKinds["content"] == 0 || r.ErrorKinds["content"] != r.Errors {
		t.Fatalf("want good first chunks and bad second chunks: %s", r)
	}
}

// TestCheckInStatusErrors: an unexpected status is an error of its
// request; the agent goes on with its check-in, as aknano does after a
// failed /config.
func TestCheckInStatusErrors(t *testing.T) {
	s := startTestServer(t, nil)
	s.api.fault.Store(int32(faultConfig500))
	cfg := s.config(CheckIn, HTTP1)
	cfg.Warmup, cfg.Duration = 0, 150*time.Millisecond
	r, err := runAnswered(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Errors == 0 || r.ErrorKinds["status GET /config 500"] != r.Errors || r.Statuses["GET /repo/timestamp.json 200"] == 0 {
		t.Fatalf("want every /config an error and the rest answered: %s", r)
	}
}

// TestCheckInTUFRejection: metadata the agent refuses fails the check-in
// even though every status was as expected; each such check-in is one
// error.
func TestCheckInTUFRejection(t *testing.T) {
	s := startTestServer(t, nil)
	s.api.fault.Store(int32(faultTimestamp))
	cfg := s.config(CheckIn, HTTP2)
	cfg.Warmup, cfg.Duration = 0, 150*time.Millisecond
	r, err := runAnswered(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	failed := uint64(0)
	for kind, n := range r.ErrorKinds {
		if strings.HasPrefix(kind, "check-in tuf ") {
			failed += n
		}
	}
	if r.Requests == 0 || r.Errors == 0 || failed != r.Errors || !strings.Contains(r.FirstError, "timestamp") {
		t.Fatalf("want each check-in refused by TUF: %s", r)
	}
}

func TestTransportErrors(t *testing.T) {
	s := startTestServer(t, nil)
	// A device the server's CA did not issue is refused in the handshake.
	other := newTestPKI(t, []string{"stranger"})
	strangers, err := LoadDevices(other.deviceDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.config(CheckIn, HTTP1)
	cfg.Devices = strangers
	cfg.Warmup, cfg.Duration = 0, 150*time.Millisecond
	r, err := runAnswered(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors == 0 || r.ErrorKinds["transport"] != r.Errors {
		t.Fatalf("want only transport errors: %s", r)
	}
}

func TestProtocolMismatch(t *testing.T) {
	// An HTTP/1.1-only server cannot serve a device that insists on h2.
	s := startTestServer(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.api, ErrorLog: quietLog(), TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{s.pki.serverCert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: s.pki.pool, NextProtos: []string{"http/1.1"}}}
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()
	cfg := s.config(CheckIn, HTTP2)
	cfg.BaseURL = "https://" + ln.Addr().String()
	cfg.Warmup, cfg.Duration = 0, 150*time.Millisecond
	r, err := runAnswered(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Requests != 0 || r.Errors == 0 {
		t.Fatalf("an HTTP/1.1 server measured as h2: %s", r)
	}
}

func TestConfigErrors(t *testing.T) {
	s := startTestServer(t, nil)
	for name, mod := range map[string]func(*Config){
		"http url":        func(c *Config) { c.BaseURL = "http://127.0.0.1:1" },
		"url with path":   func(c *Config) { c.BaseURL = s.url + "/repo" },
		"scenario":        func(c *Config) { c.Scenario = "idle" },
		"proto":           func(c *Config) { c.Proto = "h4" },
		"no devices":      func(c *Config) { c.Devices = nil },
		"no connections":  func(c *Config) { c.Connections = 0 },
		"no duration":     func(c *Config) { c.Duration = 0 },
		"relative path":   func(c *Config) { c.Scenario, c.Path = Range, "mcu/files/x.bin" },
		"range reconnect": func(c *Config) { c.Scenario, c.Reconnect = Range, true },
		"size vs image":   func(c *Config) { c.Scenario, c.Size, c.Image = Range, 10, []byte("abc") },
		"huge chunk":      func(c *Config) { c.Scenario, c.Chunk = Range, 1<<40 },
		"no target":       func(c *Config) { c.Target = "" },
		"target version":  func(c *Config) { c.Target = "loadtest-board-v1.2" },
		"hwid too long":   func(c *Config) { c.Target = strings.Repeat("x", 21) + "-v1" },
		"tag too long":    func(c *Config) { c.Tag = strings.Repeat("t", 40) },
	} {
		cfg := s.config(CheckIn, HTTP1)
		mod(&cfg)
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// TestRunStopsWithContext: a run cut short by its caller returns promptly,
// measures the time it had, and does not count the requests the
// cancellation interrupted as errors.
func TestRunStopsWithContext(t *testing.T) {
	s := startTestServer(t, nil)
	cfg := s.config(CheckIn, HTTP1)
	cfg.Duration = time.Hour
	// The devices boot for 0.4 s before the run's clock starts.
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := Run(ctx, cfg)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed > 10*time.Second || r.Seconds <= 0 || r.Seconds > elapsed.Seconds() || r.Errors != 0 {
		t.Fatalf("cancelled after %v: %s", elapsed, r)
	}
}

// TestOnWindow: the caller hears of the measured window opening after the
// warm-up and closing after the window, in that order, once each; and of
// nothing when the run ends before the window opens.
func TestOnWindow(t *testing.T) {
	img := testImage(4 * DefaultChunk)
	s := startTestServer(t, img)
	cfg := s.config(Range, HTTP1)
	cfg.Image = img
	cfg.Warmup = 100 * time.Millisecond
	var mu sync.Mutex
	var calls []bool
	var opened, closed time.Time
	cfg.OnWindow = func(open bool) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, open)
		if open {
			opened = time.Now()
		} else {
			closed = time.Now()
		}
	}
	start := time.Now()
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || !calls[0] || calls[1] {
		t.Fatalf("calls %v, want [true false]", calls)
	}
	// Timers fire a little late on a busy machine: the window may be a few
	// milliseconds short at its start.
	if opened.Sub(start) < cfg.Warmup || closed.Sub(opened) < cfg.Duration-50*time.Millisecond {
		t.Errorf("window opened %v after the start and closed %v later; want after the %v warm-up and a %v window",
			opened.Sub(start), closed.Sub(opened), cfg.Warmup, cfg.Duration)
	}
	if r.Seconds != cfg.Duration.Seconds() {
		t.Errorf("measured %g s, want the whole window", r.Seconds)
	}

	calls = nil
	cfg.Warmup = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	mu.Unlock()
	_, err = Run(ctx, cfg)
	mu.Lock()
	if err != nil || len(calls) != 0 {
		t.Errorf("a run ended in its warm-up: %v, calls %v; want none", err, calls)
	}
}
