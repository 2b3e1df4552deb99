package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/firmware"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/quic-go/quic-go/http3"
)

// These tests run the device's TUF client (agent/tufnano) against a real
// gateway over real sockets: mutual TLS with HTTP/1.1, as aktualizr-nano
// speaks it, and HTTP/3. They check what neither package's own tests can:
// that a production device moved between the tag view and a wave view (and
// back, when the wave is cancelled or completed) never sees a TUF rollback,
// that the gateway's timestamp renewal keeps devices refreshing, and that
// every metadata response fits the MCU's limits.

// The aktualizr-nano limits (foundries.md §1.4, §2): one 17,408-byte buffer
// holds a response's headers and body; libtufnano keeps at most 16 KiB of
// metadata and, as aknano compiles it, 2 signatures per role.
const (
	e2eResponseBuffer = 4096*4 + 1024
	e2eMetadataBuffer = 16 << 10
	e2eMaxSignatures  = 2
)

// e2eEpoch is the gateway's and the devices' time at the start of a test.
var e2eEpoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// e2eGateway is a gateway served on loopback: device API over TLS (TCP) and
// HTTP/3 (UDP), admin API over TLS with a bearer token.
type e2eGateway struct {
	t        *testing.T
	dir      string
	clock    *gatewaytest.Clock
	g        *gateway.Gateway
	ca       *pki.CA
	pool     *x509.CertPool
	imageKey crypto.Signer
	token    string

	devAddr, h3Addr, adminAddr string
	admin                      *http.Client
	stop                       func()
}

func startE2EGateway(t *testing.T) *e2eGateway {
	t.Helper()
	ca, err := pki.NewCA("e2e-factory", e2eEpoch.Add(-time.Hour), gatewaytest.Rand(1, 'e', '2', 'e'))
	if err != nil {
		t.Fatal(err)
	}
	imageKey, err := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(2, 'e', '2', 'e'))
	if err != nil {
		t.Fatal(err)
	}
	gw := &e2eGateway{t: t, dir: t.TempDir(), clock: gatewaytest.NewClock(e2eEpoch), ca: ca, imageKey: imageKey, token: "e2e-admin-token"}
	gw.pool = x509.NewCertPool()
	gw.pool.AddCert(ca.Cert)
	gw.admin = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: gw.pool}}}
	gw.open()
	t.Cleanup(func() {
		gw.close()
		gw.admin.CloseIdleConnections()
	})
	return gw
}

// open opens the gateway in its directory and serves it on fresh loopback
// ports.
func (gw *e2eGateway) open() {
	t := gw.t
	t.Helper()
	var err error
	gw.g, err = gateway.Open(gw.dir, gateway.Options{
		Clock: gw.clock, Random: gatewaytest.Rand(3, 'e', '2', 'e'), Factory: "e2e-factory",
		ImageKeys: []crypto.PublicKey{gw.imageKey.Public()},
		// Durability is the store's tests' business; fsync would only
		// slow this one down.
		NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	server, err := gw.ca.IssueServer(nil, e2eEpoch.Add(-time.Hour), gatewaytest.Rand(4, 'e', '2', 'e'))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- gw.g.Serve(ctx, gateway.ServeConfig{
			DeviceAddr: "127.0.0.1:0", H3Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			Certificate: server, ClientCAs: gw.pool, AdminToken: gw.token,
			// The test ticks the gateway itself, at the fake clock's time.
			TickInterval: time.Hour, ShutdownTimeout: 5 * time.Second,
			Ready: func(dev, h3, admin net.Addr) {
				gw.devAddr, gw.h3Addr, gw.adminAddr = dev.String(), h3.String(), admin.String()
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		gw.g.Close()
		t.Fatalf("Serve: %v", err)
	}
	gw.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := gw.g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// close stops the gateway gracefully, if it runs.
func (gw *e2eGateway) close() {
	if gw.stop != nil {
		gw.stop()
		gw.stop = nil
	}
}

// restart stops the gateway and opens it again on the same directory, as
// an operator's restart does; its listeners get new ports.
func (gw *e2eGateway) restart() {
	gw.t.Helper()
	gw.close()
	gw.admin.CloseIdleConnections()
	gw.open()
}

// adminCall calls the admin API, fails the test unless the status is want,
// and decodes the JSON answer into out when out is not nil.
func (gw *e2eGateway) adminCall(want int, method, path string, body, out any) {
	gw.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			gw.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "https://"+gw.adminAddr+path, r)
	if err != nil {
		gw.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+gw.token)
	resp, err := gw.admin.Do(req)
	if err != nil {
		gw.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		gw.t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		gw.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, bytes.TrimSpace(data), want)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			gw.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

// upload signs an MCUboot image of build number build for hardware "board"
// and uploads it with tags: the CI target board-v<build>.
func (gw *e2eGateway) upload(build uint32, tags string) gateway.TargetInfo {
	gw.t.Helper()
	img := gatewaytest.SignedImage(gw.t, gw.imageKey, build, 12000)
	var ti gateway.TargetInfo
	gw.adminCall(http.StatusCreated, "POST", "/v1/firmware?hwid=board&tags="+tags, img, &ti)
	if want := fmt.Sprintf("board-v%d", build); ti.Name != want {
		gw.t.Fatalf("uploaded target %q, want %q", ti.Name, want)
	}
	return ti
}

// tick advances the fake clock by d and runs the gateway's periodic work at
// the new time (wave releases, metadata renewal).
func (gw *e2eGateway) tick(d time.Duration) {
	gw.t.Helper()
	gw.clock.Advance(d)
	if err := gw.g.Tick(gw.clock.Now()); err != nil {
		gw.t.Fatalf("Tick: %v", err)
	}
}

// e2eTransport is how a device reaches the gateway.
type e2eTransport struct {
	name  string
	proto int // the HTTP major version every answer must come in
}

var e2eTransports = []e2eTransport{{"mtls-http1.1", 1}, {"http3", 3}}

// e2eDevice is one MCU as far as TUF goes: an HTTP client with its
// certificate, the metadata it trusts (its flash area), and its TUF client.
// It is the client's Fetcher: every metadata file comes from /repo over the
// device's own connection, with the x-ats headers aktualizr-nano sends.
type e2eDevice struct {
	t      *testing.T
	gw     *e2eGateway
	uuid   string
	tag    string
	cert   tls.Certificate
	proto  int
	client *http.Client
	flash  e2eFlash
	tuf    *tufnano.Client

	// lastVersions are the client's trusted versions after the last
	// successful refresh.
	lastVersions [4]int64
}

func (gw *e2eGateway) newDevice(tr e2eTransport, uuid, tag string, production bool, seed byte) *e2eDevice {
	gw.t.Helper()
	cert, err := gw.ca.IssueDevice(pki.DeviceSpec{UUID: uuid, Production: production}, e2eEpoch.Add(-time.Hour), gatewaytest.Rand(seed, 'e', '2', 'e'))
	if err != nil {
		gw.t.Fatal(err)
	}
	d := &e2eDevice{t: gw.t, gw: gw, uuid: uuid, tag: tag, cert: cert, proto: tr.proto, flash: e2eFlash{}}
	conf := &tls.Config{RootCAs: gw.pool, Certificates: []tls.Certificate{cert}}
	switch tr.proto {
	case 1:
		// HTTP/1.1 only, as the MCU's HTTP client speaks it.
		var protos http.Protocols
		protos.SetHTTP1(true)
		tcp := &http.Transport{TLSClientConfig: conf, Protocols: &protos}
		d.client = &http.Client{Timeout: 10 * time.Second, Transport: tcp}
		gw.t.Cleanup(tcp.CloseIdleConnections)
	case 3:
		h3 := &http3.Transport{TLSClientConfig: conf}
		d.client = &http.Client{Timeout: 10 * time.Second, Transport: h3}
		gw.t.Cleanup(func() { h3.Close() })
	default:
		gw.t.Fatalf("no transport for HTTP/%d", tr.proto)
	}
	return d
}

// baseURL is the gateway's device API on the device's transport; it
// follows the gateway across restarts.
func (d *e2eDevice) baseURL() string {
	if d.proto == 3 {
		return "https://" + d.gw.h3Addr
	}
	return "https://" + d.gw.devAddr
}

// do sends one device request with the x-ats headers aktualizr-nano sends
// and checks that it was answered over the device's transport. The caller
// closes the body.
func (d *e2eDevice) do(path string, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, d.baseURL()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("x-ats-tags", d.tag)
	req.Header.Set("x-ats-target", "board-v1000")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.ProtoMajor != d.proto {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s answered over %s, want HTTP/%d", path, resp.Proto, d.proto)
	}
	return resp, nil
}

// Fetch is tufnano.Fetcher over the device API. A 404 ends the root chain;
// any other non-200 status is a fetch failure. The body is checked against
// the gateway's x-ats-role-checksum and the signature limit as it arrives.
func (d *e2eDevice) Fetch(name string, dst []byte) (int, error) {
	resp, err := d.do("/repo/"+name, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return 0, fmt.Errorf("GET /repo/%s: %s: %w", name, resp.Status, tufnano.ErrNotFound)
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return 0, fmt.Errorf("GET /repo/%s: %s %s", name, resp.Status, bytes.TrimSpace(msg))
	}
	n, err := tufnano.ReadBounded(resp.Body, dst)
	if err != nil {
		return n, err
	}
	sum := sha256.Sum256(dst[:n])
	if got := resp.Header.Get("x-ats-role-checksum"); got != hex.EncodeToString(sum[:]) {
		return 0, fmt.Errorf("GET /repo/%s: x-ats-role-checksum %q is not the SHA-256 of the body", name, got)
	}
	if sigs, err := e2eSignatureCount(dst[:n]); err != nil || sigs > e2eMaxSignatures {
		return 0, fmt.Errorf("GET /repo/%s: %d signatures (%v), the device keeps at most %d", name, sigs, err, e2eMaxSignatures)
	}
	return n, nil
}

// e2eSignatureCount counts the signatures of a metadata file.
func e2eSignatureCount(data []byte) (int, error) {
	var md struct {
		Signatures []json.RawMessage `json:"signatures"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		return 0, err
	}
	return len(md.Signatures), nil
}

// e2eFlash is the device's TUF metadata area: one file per role.
type e2eFlash map[string][]byte

func (f e2eFlash) Load(role string, dst []byte) (int, error) {
	data, ok := f[role]
	if !ok {
		return 0, fmt.Errorf("%s: %w", role, tufnano.ErrNotFound)
	}
	if len(data) > len(dst) {
		return 0, fmt.Errorf("%s: %d bytes: %w", role, len(data), tufnano.ErrTooLarge)
	}
	return copy(dst, data), nil
}

func (f e2eFlash) Save(role string, data []byte) error {
	f[role] = bytes.Clone(data)
	return nil
}

// provision installs 1.root.json, fetched from the gateway, as the
// device's root of trust, as the factory does, and starts its TUF client
// with aktualizr-nano's limits.
func (d *e2eDevice) provision() {
	d.t.Helper()
	root := make([]byte, e2eMetadataBuffer)
	n, err := d.Fetch("1.root.json", root)
	if err != nil {
		d.t.Fatalf("device %s: provisioning: %v", d.uuid, err)
	}
	root = root[:n]
	if err := d.flash.Save(tufnano.RoleRoot, root); err != nil {
		d.t.Fatal(err)
	}
	lim := tufnano.DefaultLimits()
	lim.MaxMetadataSize, lim.MaxSignatures = e2eMetadataBuffer, e2eMaxSignatures
	if d.tuf, err = tufnano.New(lim, d, d.flash); err != nil {
		d.t.Fatalf("device %s: trusting 1.root.json: %v", d.uuid, err)
	}
}

// refresh runs a TUF refresh at the gateway's current time and fails the
// test if the client refuses the metadata (step says where), or if a
// trusted version went down.
func (d *e2eDevice) refresh(step string) {
	d.t.Helper()
	if err := d.tuf.Refresh(d.gw.clock.Now()); err != nil {
		d.t.Fatalf("%s: device %s (tag %s): refresh: %v (kind %s)", step, d.uuid, d.tag, err, tufnano.KindOf(err))
	}
	var v [4]int64
	v[0], v[1], v[2], v[3] = d.tuf.Versions()
	for i, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		if v[i] < d.lastVersions[i] {
			d.t.Fatalf("%s: device %s trusts %s version %d after %d", step, d.uuid, role, v[i], d.lastVersions[i])
		}
	}
	d.lastVersions = v
}

// timestampVersion is the version of the device's trusted timestamp.
func (d *e2eDevice) timestampVersion() int64 { return d.lastVersions[1] }

// target looks name up in the trusted targets: ok false when no trusted
// role lists it. Any other refusal fails the test.
func (d *e2eDevice) target(step, name string) (tufnano.TargetInfo, bool) {
	d.t.Helper()
	info, err := d.tuf.Target(name)
	if errors.Is(err, tufnano.ErrNotFound) {
		return info, false
	}
	if err != nil {
		d.t.Fatalf("%s: device %s: target %s: %v", step, d.uuid, name, err)
	}
	return info, true
}

// wantTargets checks which of names the device's trusted targets list.
func (d *e2eDevice) wantTargets(step string, present []string, absent ...string) {
	d.t.Helper()
	for _, name := range present {
		if _, ok := d.target(step, name); !ok {
			d.t.Errorf("%s: device %s (tag %s) does not see target %s", step, d.uuid, d.tag, name)
		}
	}
	for _, name := range absent {
		if _, ok := d.target(step, name); ok {
			d.t.Errorf("%s: device %s (tag %s) sees target %s", step, d.uuid, d.tag, name)
		}
	}
}

// install checks that the target the device sees is the uploaded image,
// with the custom fields aktualizr-nano selects by, and downloads and
// verifies it from /mcu/files the way the agent does (16 KiB ranges).
func (d *e2eDevice) install(step string, want gateway.TargetInfo) {
	d.t.Helper()
	info, ok := d.target(step, want.Name)
	if !ok {
		d.t.Fatalf("%s: device %s does not see target %s", step, d.uuid, want.Name)
	}
	if info.Length != want.Length || len(info.Hashes) == 0 || info.Hashes[0].Algorithm != "sha256" || hex.EncodeToString(info.Hashes[0].Digest) != want.SHA256 {
		d.t.Fatalf("%s: target %s is %d bytes %v, uploaded %d bytes sha256 %s", step, want.Name, info.Length, info.Hashes, want.Length, want.SHA256)
	}
	var custom struct {
		HardwareIDs []string `json:"hardwareIds"`
		Tags        []string `json:"tags"`
		Version     string   `json:"version"`
	}
	if err := json.Unmarshal(info.Custom, &custom); err != nil {
		d.t.Fatalf("%s: target %s custom %s: %v", step, want.Name, info.Custom, err)
	}
	if !slices.Contains(custom.HardwareIDs, "board") || !slices.Contains(custom.Tags, d.tag) || custom.Version != want.Version {
		d.t.Fatalf("%s: target %s custom = %+v, want hardware board, tag %s, version %s", step, want.Name, custom, d.tag, want.Version)
	}
	v := tufnano.NewTargetVerifier(info)
	const chunk = 16 << 10
	for off := int64(0); off < info.Length; off += chunk {
		rng := fmt.Sprintf("bytes=%d-%d", off, min(off+chunk, info.Length)-1)
		resp, err := d.do(firmware.Path(want.SHA256), map[string]string{"Range": rng})
		if err != nil {
			d.t.Fatalf("%s: downloading %s: %v", step, want.Name, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, chunk+1))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusPartialContent {
			d.t.Fatalf("%s: downloading %s at %d: %d, %v", step, want.Name, off, resp.StatusCode, err)
		}
		if _, err := v.Write(data); err != nil {
			d.t.Fatalf("%s: downloading %s: %v", step, want.Name, err)
		}
	}
	if err := v.Verify(); err != nil {
		d.t.Fatalf("%s: downloaded %s: %v", step, want.Name, err)
	}
}

// e2eRawResponse is one device API answer as the bytes on the wire.
type e2eRawResponse struct {
	header, body int // bytes of status line plus headers, and of the body
	status       int
	data         []byte
}

// rawGet fetches path over a fresh TLS connection with a hand-written
// HTTP/1.1 request, as the MCU's HTTP client sends it (keep-alive, no
// Connection: close), and returns the response's exact byte counts. An
// answer larger than the device's buffer is read whole (up to 1 MiB), so
// the test can say by how much it is over.
func (d *e2eDevice) rawGet(path string) e2eRawResponse {
	d.t.Helper()
	conn, err := tls.Dial("tcp", d.gw.devAddr, &tls.Config{
		RootCAs: d.gw.pool, Certificates: []tls.Certificate{d.cert}, NextProtos: []string{"http/1.1"},
	})
	if err != nil {
		d.t.Fatalf("raw GET %s: %v", path, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		d.t.Fatal(err)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + d.gw.devAddr + "\r\nx-ats-tags: " + d.tag + "\r\nx-ats-target: board-v1000\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		d.t.Fatalf("raw GET %s: %v", path, err)
	}
	const most = 1 << 20
	var raw []byte
	buf := make([]byte, 4096)
	header, total := -1, -1
	for total < 0 || len(raw) < total {
		n, err := conn.Read(buf)
		raw = append(raw, buf[:n]...)
		if header < 0 {
			if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
				header = i + 4
				resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw[:header])), nil)
				if perr != nil {
					d.t.Fatalf("raw GET %s: %v in %q", path, perr, raw[:header])
				}
				if resp.ContentLength < 0 || resp.ContentLength > most {
					d.t.Fatalf("raw GET %s: Content-Length %d (the MCU needs a length it can hold)", path, resp.ContentLength)
				}
				total = header + int(resp.ContentLength)
			}
		}
		if err != nil && (total < 0 || len(raw) < total) {
			d.t.Fatalf("raw GET %s: after %d bytes: %v", path, len(raw), err)
		}
		if len(raw) > most {
			d.t.Fatalf("raw GET %s: more than %d bytes", path, most)
		}
	}
	if len(raw) != total {
		d.t.Fatalf("raw GET %s: %d bytes past the response", path, len(raw)-total)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), nil)
	if err != nil {
		d.t.Fatalf("raw GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		d.t.Fatalf("raw GET %s: answered in %s", path, resp.Proto)
	}
	return e2eRawResponse{header: header, body: total - header, status: resp.StatusCode, data: raw[header:]}
}

// e2eLimits records the largest metadata answers seen, for the log.
type e2eLimits struct {
	largest     e2eRawResponse
	largestName string
	files       int
}

// checkLimits fetches every metadata file of the device's current view
// once over raw HTTP/1.1 and checks aktualizr-nano's limits: headers and
// body within the 17,408-byte buffer, the body within 16 KiB, at most two
// signatures.
func (d *e2eDevice) checkLimits(step string, seen *e2eLimits) {
	d.t.Helper()
	for _, name := range []string{"1.root.json", "timestamp.json", "snapshot.json", "targets.json"} {
		r := d.rawGet("/repo/" + name)
		if r.status != http.StatusOK {
			d.t.Fatalf("%s: raw GET /repo/%s = %d %q", step, name, r.status, r.data)
		}
		if r.header+r.body > e2eResponseBuffer {
			d.t.Errorf("%s: device %s: /repo/%s is %d bytes of headers and %d of body, %d in all: over the MCU's %d-byte buffer",
				step, d.uuid, name, r.header, r.body, r.header+r.body, e2eResponseBuffer)
		}
		if r.body > e2eMetadataBuffer {
			d.t.Errorf("%s: device %s: /repo/%s body is %d bytes, over libtufnano's %d", step, d.uuid, name, r.body, e2eMetadataBuffer)
		}
		if sigs, err := e2eSignatureCount(r.data); err != nil || sigs > e2eMaxSignatures || sigs == 0 {
			d.t.Errorf("%s: device %s: /repo/%s has %d signatures (%v), want 1 to %d", step, d.uuid, name, sigs, err, e2eMaxSignatures)
		}
		seen.files++
		if r.header+r.body > seen.largest.header+seen.largest.body {
			seen.largest, seen.largestName = r, d.tag+" "+name
		}
	}
}

// TestGatewayTUFEndToEnd drives production devices and a test device
// through a rollout's life over each transport: the tag view, a wave view,
// a cancelled wave, a completed wave, and timestamp renewal, with the
// device's own TUF client refusing anything a real MCU would refuse.
func TestGatewayTUFEndToEnd(t *testing.T) {
	for _, tr := range e2eTransports {
		t.Run(tr.name, func(t *testing.T) { testGatewayTUF(t, tr) })
	}
}

func testGatewayTUF(t *testing.T, tr e2eTransport) {
	gw := startE2EGateway(t)
	gw.adminCall(http.StatusCreated, "POST", "/v1/tags", gateway.TagRequest{Tag: "main"}, nil)
	v1001 := gw.upload(1001, "main,devel")

	// P is rolled out to; Q follows the same tag and never is; T is a
	// test device, served the CI repository.
	p := gw.newDevice(tr, "0A1B2C3D-0000-4000-8000-000000000101", "main", true, 11)
	q := gw.newDevice(tr, "0A1B2C3D-0000-4000-8000-000000000102", "main", true, 12)
	ci := gw.newDevice(tr, "0A1B2C3D-0000-4000-8000-000000000103", "devel", false, 13)
	for _, d := range []*e2eDevice{p, q, ci} {
		d.provision()
		d.refresh("first check-in")
	}
	p.wantTargets("tag view", nil, v1001.Name)
	q.wantTargets("tag view", nil, v1001.Name)
	ci.install("CI view", v1001)

	// Wave 1 stages 1001 for P only.
	gw.adminCall(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{Name: "w1001", Tag: "main", Version: 1001}, nil)
	var ro gateway.RolloutResponse
	gw.adminCall(http.StatusOK, "POST", "/v1/waves/w1001/rollout", gateway.RolloutRequest{UUIDs: []string{p.uuid}}, &ro)
	if ro.DeviceNum != 1 || len(ro.DeviceUUIDs) != 1 || !strings.EqualFold(ro.DeviceUUIDs[0], p.uuid) {
		t.Fatalf("rollout of %s = %+v", p.uuid, ro)
	}
	gw.tick(time.Second)
	tagTS := q.timestampVersion()
	p.refresh("wave w1001 rolled out")
	p.install("wave w1001 rolled out", v1001)
	if p.timestampVersion() <= tagTS {
		t.Errorf("wave view timestamp version %d, not above the tag view's %d", p.timestampVersion(), tagTS)
	}
	q.refresh("wave w1001 rolled out to another device")
	q.wantTargets("wave w1001 rolled out to another device", nil, v1001.Name)

	// Cancelled: P is back on the tag view, whose versions must now be
	// above the wave view's it trusted, or its client reports a rollback.
	gw.adminCall(http.StatusOK, "POST", "/v1/waves/w1001/cancel", nil, nil)
	p.refresh("wave w1001 cancelled")
	p.wantTargets("wave w1001 cancelled", nil, v1001.Name)
	q.refresh("wave w1001 cancelled")
	q.wantTargets("wave w1001 cancelled", nil, v1001.Name)

	// Wave 2 stages 1002 for P, and completes.
	v1002 := gw.upload(1002, "main,devel")
	gw.adminCall(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{Name: "w1002", Tag: "main", Version: 1002}, nil)
	gw.adminCall(http.StatusOK, "POST", "/v1/waves/w1002/rollout", gateway.RolloutRequest{UUIDs: []string{p.uuid}}, nil)
	gw.tick(time.Second)
	p.refresh("wave w1002 rolled out")
	p.install("wave w1002 rolled out", v1002)
	p.wantTargets("wave w1002 rolled out", nil, v1001.Name)
	q.refresh("wave w1002 rolled out to another device")
	q.wantTargets("wave w1002 rolled out to another device", nil, v1002.Name)
	ci.refresh("two CI targets")
	ci.wantTargets("two CI targets", []string{v1001.Name, v1002.Name})

	// Every view a device can be served, as the MCU reads it.
	if tr.proto == 1 {
		var seen e2eLimits
		for _, d := range []*e2eDevice{p, q, ci} {
			d.checkLimits("wave w1002 open", &seen)
		}
		t.Logf("largest metadata answer of %d: %s, %d header + %d body = %d bytes (buffer %d)",
			seen.files, seen.largestName, seen.largest.header, seen.largest.body, seen.largest.header+seen.largest.body, e2eResponseBuffer)
	}

	// Timestamp renewal, with the wave view open: past half the
	// timestamp's one-day expiry nothing is re-signed until Tick.
	before := map[*e2eDevice]int64{}
	gw.clock.Advance(12*time.Hour + time.Minute)
	for _, d := range []*e2eDevice{p, q, ci} {
		d.refresh("half a day later, before Tick")
		before[d] = d.timestampVersion()
	}
	gw.tick(time.Second)
	for _, d := range []*e2eDevice{p, q, ci} {
		d.refresh("timestamps renewed")
		if d.timestampVersion() <= before[d] {
			t.Errorf("device %s (tag %s): timestamp version %d after renewal, was %d", d.uuid, d.tag, d.timestampVersion(), before[d])
		}
	}

	gw.adminCall(http.StatusOK, "POST", "/v1/waves/w1002/complete", nil, nil)
	p.refresh("wave w1002 complete")
	p.install("wave w1002 complete", v1002)
	q.refresh("wave w1002 complete")
	q.install("wave w1002 complete", v1002)
	q.wantTargets("wave w1002 complete", nil, v1001.Name)

	// Without renewal a device refuses the frozen timestamp; the next
	// Tick renews it and the device refreshes again.
	gw.clock.Advance(25 * time.Hour)
	if err := p.tuf.Refresh(gw.clock.Now()); !errors.Is(err, tufnano.ErrFreeze) {
		t.Fatalf("refresh a day after the last renewal = %v, want a freeze refusal", err)
	}
	gw.tick(time.Second)
	for _, d := range []*e2eDevice{p, q, ci} {
		d.refresh("renewed after a day")
	}
	p.wantTargets("renewed after a day", []string{v1002.Name}, v1001.Name)
	ci.wantTargets("renewed after a day", []string{v1001.Name, v1002.Name})
}

// TestGatewayTUFLongWave keeps a wave open for seven weeks, across
// renewals of every online role (timestamp daily, snapshot twice a week,
// targets after 45 days) and a gateway restart, with a device on the wave
// view and one on the tag view refreshing once a day; then the wave is
// cancelled and a later one completed. Whatever was re-signed while the
// wave was open, neither device may ever see a role's version go down.
func TestGatewayTUFLongWave(t *testing.T) {
	gw := startE2EGateway(t)
	gw.adminCall(http.StatusCreated, "POST", "/v1/tags", gateway.TagRequest{Tag: "main"}, nil)
	v1001 := gw.upload(1001, "main")
	tr := e2eTransports[0]
	p := gw.newDevice(tr, "0A1B2C3D-0000-4000-8000-000000000201", "main", true, 21)
	q := gw.newDevice(tr, "0A1B2C3D-0000-4000-8000-000000000202", "main", true, 22)
	for _, d := range []*e2eDevice{p, q} {
		d.provision()
		d.refresh("first check-in")
	}
	gw.adminCall(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{Name: "long", Tag: "main", Version: 1001}, nil)
	gw.adminCall(http.StatusOK, "POST", "/v1/waves/long/rollout", gateway.RolloutRequest{UUIDs: []string{p.uuid}}, nil)
	gw.tick(time.Second)
	p.refresh("wave rolled out")
	p.wantTargets("wave rolled out", []string{v1001.Name})

	start := [2][4]int64{p.lastVersions, q.lastVersions}
	for day := 1; day <= 49; day++ {
		for range 4 {
			gw.tick(6 * time.Hour)
		}
		if day == 20 {
			gw.restart()
		}
		step := fmt.Sprintf("day %d of the wave", day)
		p.refresh(step)
		q.refresh(step)
	}
	p.wantTargets("seven weeks on the wave", []string{v1001.Name})
	q.wantTargets("seven weeks on the tag view", nil, v1001.Name)
	// Every online role was re-signed in both views meanwhile.
	for i, d := range []*e2eDevice{p, q} {
		for r, role := range []string{"timestamp", "snapshot", "targets"} {
			if d.lastVersions[r+1] <= start[i][r+1] {
				t.Errorf("device %s: %s version %d after seven weeks, was %d: never renewed", d.uuid, role, d.lastVersions[r+1], start[i][r+1])
			}
		}
	}

	gw.adminCall(http.StatusOK, "POST", "/v1/waves/long/cancel", nil, nil)
	p.refresh("long wave cancelled")
	p.wantTargets("long wave cancelled", nil, v1001.Name)
	q.refresh("long wave cancelled")

	gw.adminCall(http.StatusCreated, "POST", "/v1/waves", gateway.WaveRequest{Name: "again", Tag: "main", Version: 1001}, nil)
	gw.adminCall(http.StatusOK, "POST", "/v1/waves/again/rollout", gateway.RolloutRequest{UUIDs: []string{q.uuid}}, nil)
	gw.tick(time.Second)
	q.refresh("second wave rolled out")
	q.wantTargets("second wave rolled out", []string{v1001.Name})
	p.refresh("second wave rolled out to another device")
	p.wantTargets("second wave rolled out to another device", nil, v1001.Name)
	gw.restart()
	gw.adminCall(http.StatusOK, "POST", "/v1/waves/again/complete", nil, nil)
	for _, d := range []*e2eDevice{p, q} {
		d.refresh("second wave complete after a restart")
		d.install("second wave complete after a restart", v1001)
	}
}
