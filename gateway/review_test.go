package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// In-process tests of defects that need the gateway's insides: a store that
// fails, a TUF view out of step with its record.

var reviewNow = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

type inproc struct {
	t      *testing.T
	g      *Gateway
	dev    http.Handler
	admin  http.Handler
	cert   *x509.Certificate
	uuid   string
	random io.Reader
	dir    string
}

func newInproc(t *testing.T) *inproc {
	t.Helper()
	random := gatewaytest.Rand(9)
	dir := t.TempDir()
	g, err := Open(dir, Options{Clock: gatewaytest.NewClock(reviewNow), Random: random, AllowUnsigned: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ca, err := pki.NewCA("review", reviewNow.Add(-time.Hour), random)
	if err != nil {
		t.Fatal(err)
	}
	uuid := "0A1B2C3D-0000-4000-8000-000000000001"
	cert, err := ca.IssueDevice(pki.DeviceSpec{UUID: uuid, Production: true}, reviewNow.Add(-time.Hour), random)
	if err != nil {
		t.Fatal(err)
	}
	return &inproc{t: t, g: g, dev: g.DeviceHandler(), admin: g.AdminHandler("t"), cert: cert.Leaf, uuid: uuid, random: random, dir: dir}
}

func (p *inproc) device(method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "https://gw"+path, bytes.NewReader(body))
	req.Header.Set("x-ats-tags", "main")
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{p.cert}}
	w := httptest.NewRecorder()
	p.dev.ServeHTTP(w, req)
	return w
}

func (p *inproc) adminDo(method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "https://gw"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer t")
	w := httptest.NewRecorder()
	p.admin.ServeHTTP(w, req)
	return w
}

func (p *inproc) want(w *httptest.ResponseRecorder, status int, what string) {
	p.t.Helper()
	if w.Code != status {
		p.t.Fatalf("%s = %d %q, want %d", what, w.Code, w.Body.String(), status)
	}
}

// wave uploads a build-2 image for tag main and creates wave w2 for it.
func (p *inproc) wave() {
	p.t.Helper()
	img, err := image.Sign(bytes.Repeat([]byte{0x5a}, 4096), image.SignOptions{Version: image.Version{Build: 2}, HeaderSize: 0x200, PadHeader: true, Align: 4})
	if err != nil {
		p.t.Fatal(err)
	}
	p.want(p.adminDo("POST", "/v1/firmware?hwid=board&tags=main", img), http.StatusCreated, "upload")
	p.want(p.adminDo("POST", "/v1/waves", []byte(`{"name":"w2","tag":"main","version":2}`)), http.StatusCreated, "wave init")
}

// An event id with a NUL byte cannot key the store: it was a 500 (and the
// device's good events in the same body were refused with it).
func TestEventIDWithNULIsSkipped(t *testing.T) {
	p := newInproc(t)
	body := []byte(`[{"id":"a\u0000b","eventType":{"id":"EcuDownloadStarted"},"event":{"correlationId":"c1"}},` +
		`{"id":"ok","eventType":{"id":"EcuDownloadStarted"},"event":{"correlationId":"c1"}}]`)
	p.want(p.device("POST", "/events", body), http.StatusOK, "POST /events")
	events, err := p.g.store.Events(p.uuid)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].ID != "ok" {
		t.Errorf("stored events %+v, want the one with id ok", events)
	}
}

// The admin API names devices in any case, as certificates and config
// scopes do; a lower-case UUID was "unknown device".
func TestAdminDeviceUUIDAnyCase(t *testing.T) {
	p := newInproc(t)
	p.want(p.device("GET", "/device", nil), http.StatusOK, "GET /device")
	lower := strings.ToLower(p.uuid)
	p.want(p.adminDo("GET", "/v1/devices/"+lower, nil), http.StatusOK, "GET device")
	p.want(p.adminDo("PUT", "/v1/devices/"+lower+"/group", []byte(`{"group":"lab"}`)), http.StatusOK, "PUT group")
	p.want(p.adminDo("DELETE", "/v1/devices/"+lower, nil), http.StatusOK, "DELETE")
	p.want(p.device("GET", "/device", nil), http.StatusForbidden, "GET /device after delete")
	p.want(p.adminDo("DELETE", "/v1/devices/not-a-uuid", nil), http.StatusNotFound, "DELETE bad uuid")
}

// A deny-listing whose commit fails must not take effect in memory only:
// the gateway would refuse a device the store still accepts, and the next
// flush would write the unacknowledged change.
func TestDeleteDeviceFailedCommitKeepsRecord(t *testing.T) {
	p := newInproc(t)
	p.want(p.device("GET", "/device", nil), http.StatusOK, "GET /device")
	if err := p.g.store.Close(); err != nil {
		t.Fatal(err)
	}
	p.want(p.adminDo("DELETE", "/v1/devices/"+p.uuid, nil), http.StatusInternalServerError, "DELETE with the store closed")
	p.want(p.device("GET", "/device", nil), http.StatusOK, "GET /device after a failed delete")
}

// A deny-listing of a device not in the cache goes through the cache, so a
// device request loading the older record at the same time cannot bring the
// device back.
func TestDeleteUncachedDevice(t *testing.T) {
	p := newInproc(t)
	p.want(p.device("GET", "/device", nil), http.StatusOK, "GET /device")
	if err := p.g.flushDevices(); err != nil {
		t.Fatal(err)
	}
	p.g.devices.Delete(p.uuid) // as after a restart
	p.want(p.adminDo("DELETE", "/v1/devices/"+p.uuid, nil), http.StatusOK, "DELETE")
	if _, ok := p.g.devices.Load(p.uuid); !ok {
		t.Fatal("the edited record is not the cached one")
	}
	p.want(p.device("GET", "/device", nil), http.StatusForbidden, "GET /device after delete")
	if err := p.g.flushDevices(); err != nil {
		t.Fatal(err)
	}
	d, _, err := p.g.store.Device(p.uuid)
	if err != nil || !d.Deleted {
		t.Errorf("stored record %+v, %v: want deleted", d, err)
	}
}

// Ending a wave when the store fails said "wave recorded", with the store's
// error appended; nothing was recorded.
func TestEndWaveStoreFailureMessage(t *testing.T) {
	p := newInproc(t)
	p.wave()
	if err := p.g.store.Close(); err != nil {
		t.Fatal(err)
	}
	w := p.adminDo("POST", "/v1/waves/w2/cancel", nil)
	p.want(w, http.StatusInternalServerError, "cancel with the store closed")
	if got := strings.TrimSpace(w.Body.String()); got != "store unavailable" {
		t.Errorf("answer %q, want \"store unavailable\"", got)
	}
}

// A wave whose TUF view cannot be opened was left recorded active, serving
// nothing, until a restart reopened it behind the operator's back. The record
// is withdrawn with the view.
func TestWaveViewRefusedWithdrawsRecord(t *testing.T) {
	p := newInproc(t)
	img, err := image.Sign(bytes.Repeat([]byte{0x5a}, 4096), image.SignOptions{Version: image.Version{Build: 2}, HeaderSize: 0x200, PadHeader: true, Align: 4})
	if err != nil {
		t.Fatal(err)
	}
	p.want(p.adminDo("POST", "/v1/firmware?hwid=board&tags=main", img), http.StatusCreated, "upload")
	t2, ok := p.g.ci.Target("board-v2")
	if !ok {
		t.Fatal("no CI target board-v2")
	}
	// A view the store never recorded, as a crash can leave one.
	if _, err := p.g.prod.OpenWave(reviewNow, "main", "orphan", []tufrepo.Target{t2}); err != nil {
		t.Fatal(err)
	}
	p.want(p.adminDo("POST", "/v1/waves", []byte(`{"name":"w2","tag":"main","version":2}`)), http.StatusConflict, "wave init")
	if w, ok := p.g.rollout.Wave("w2"); ok && w.Status == rollout.WaveActive {
		t.Errorf("wave w2 recorded active without a view: %+v", w)
	}
	var waves []rollout.Wave
	w := p.adminDo("GET", "/v1/waves", nil)
	json.Unmarshal(w.Body.Bytes(), &waves)
	for _, wv := range waves {
		if wv.Status == rollout.WaveActive {
			t.Errorf("active wave listed: %+v", wv)
		}
	}
}

// Serve failing to bind the admin listener closed the device listener but
// kept the HTTP/3 UDP socket open.
func TestServeReleasesUDPOnListenerError(t *testing.T) {
	p := newInproc(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	probe, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h3 := probe.LocalAddr().String()
	probe.Close()
	err = p.g.Serve(context.Background(), ServeConfig{
		DeviceAddr: "127.0.0.1:0", H3Addr: h3, AdminAddr: busy.Addr().String(),
	})
	if err == nil || !strings.Contains(err.Error(), "admin listener") {
		t.Fatalf("Serve = %v, want an admin listener error", err)
	}
	again, err := net.ListenPacket("udp", h3)
	if err != nil {
		t.Fatalf("HTTP/3 socket still open after Serve failed: %v", err)
	}
	again.Close()
}

// Refusals of bad upload parameters are short: an invalid tag was quoted
// whole by the repository's error, after the image had been read.
func TestUploadRefusalsAreShort(t *testing.T) {
	p := newInproc(t)
	img, err := image.Sign(bytes.Repeat([]byte{0x5a}, 4096), image.SignOptions{Version: image.Version{Build: 2}, HeaderSize: 0x200, PadHeader: true, Align: 4})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 5000)
	for _, q := range []string{"hwid=board&tags=" + long, "hwid=board&tags=main&version=" + long, "hwid=board&tags=a%20b"} {
		w := p.adminDo("POST", "/v1/firmware?"+q, img)
		p.want(w, http.StatusBadRequest, "upload "+q[:min(len(q), 40)])
		if body := w.Body.String(); len(body) > 200 || strings.Count(body, "\n") > 1 {
			t.Errorf("upload %.40s: answer of %d bytes: %.100q", q, len(body), body)
		}
	}
	if len(p.g.ci.Targets()) != 0 {
		t.Errorf("a refused upload created targets: %v", p.g.ci.Targets())
	}
}

// A wave whose end is recorded but whose TUF view could not follow was left
// out of step until a restart; the next Tick brings the view in line.
func TestTickReconcilesWaveViewAfterError(t *testing.T) {
	p := newInproc(t)
	p.wave()
	dir := filepath.Join(p.dir, prodRepoDir)
	aside := dir + ".aside"
	if err := os.Rename(dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil { // writes under dir now fail
		t.Fatal(err)
	}
	w := p.adminDo("POST", "/v1/waves/w2/complete", nil)
	p.want(w, http.StatusInternalServerError, "complete with the repository unwritable")
	if got := strings.TrimSpace(w.Body.String()); !strings.HasPrefix(got, "wave recorded") {
		t.Errorf("answer %q", got)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, dir); err != nil {
		t.Fatal(err)
	}
	if len(p.g.prod.Waves()) != 1 {
		t.Fatalf("wave views %v, want w2's still open", p.g.prod.Waves())
	}
	if err := p.g.Tick(reviewNow.Add(time.Second)); err != nil {
		t.Fatalf("Tick: %v", err)
	}
	if views := p.g.prod.Waves(); len(views) != 0 {
		t.Errorf("wave views after Tick: %v", views)
	}
	if _, ok := p.g.prod.Target("board-v2"); !ok {
		t.Error("the completed wave's target is not a production target")
	}
}

// Valid JSON is always 200, as on Foundries' gateway: a batch with one long
// field was refused whole with 400, which aktualizr-lite sends again forever.
// Long text is cut, an id too long to key the store is skipped.
func TestLongEventFieldsAccepted(t *testing.T) {
	p := newInproc(t)
	details := strings.Repeat("é", 3000)
	body, _ := json.Marshal([]map[string]any{
		{"id": "long-details", "eventType": map[string]any{"id": "EcuInstallationCompleted"}, "event": map[string]any{"correlationId": "c1", "success": false, "details": details}},
		{"id": strings.Repeat("i", 2000), "eventType": map[string]any{"id": "EcuDownloadStarted"}, "event": map[string]any{"correlationId": "c1"}},
	})
	p.want(p.device("POST", "/events", body), http.StatusOK, "POST /events")
	events, err := p.g.store.Events(p.uuid)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].ID != "long-details" {
		t.Fatalf("stored %d events, want only long-details", len(events))
	}
	d := events[0].Details
	if len(d) != 1024 || !strings.HasPrefix(details, d) {
		t.Errorf("details cut to %d bytes (prefix %v), want 1024", len(d), strings.HasPrefix(details, d))
	}
}
