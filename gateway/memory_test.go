package gateway_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// memGateway is a gateway on an in-memory file system, driven in process
// through its handlers as the simulator drives it.
type memGateway struct {
	t     *testing.T
	g     *gateway.Gateway
	dev   http.Handler
	admin http.Handler
}

func openMem(t *testing.T, fsys vfs.FS, dir string, hc harnessCA, clock *gatewaytest.Clock, seed byte) *memGateway {
	t.Helper()
	g, err := gateway.Open(dir, gateway.Options{
		Clock: clock, Random: gatewaytest.Rand(seed), Factory: "test-factory",
		ImageKeys: []crypto.PublicKey{hc.imageKey.Public()}, FS: fsys,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &memGateway{t: t, g: g, dev: g.DeviceHandler(), admin: g.AdminHandler("t")}
}

func (m *memGateway) do(h http.Handler, req *http.Request, want int) []byte {
	m.t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != want {
		m.t.Fatalf("%s %s = %d %q, want %d", req.Method, req.URL.Path, w.Code, w.Body.String(), want)
	}
	return w.Body.Bytes()
}

func (m *memGateway) adminDo(method, path string, body []byte, want int) []byte {
	m.t.Helper()
	req := httptest.NewRequest(method, "https://gw"+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer t")
	return m.do(m.admin, req, want)
}

func (m *memGateway) deviceGet(cert *x509.Certificate, path string, want int) []byte {
	m.t.Helper()
	req := httptest.NewRequest("GET", "https://gw"+path, nil)
	req.Header.Set("x-ats-tags", "devel")
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	return m.do(m.dev, req, want)
}

// TestMemoryGateway runs a gateway on vfs.NewMem: it serves the admin and
// device APIs, leaves the disk untouched, and closed and opened again on the
// same FS value it finds its repositories, firmware and devices, as the
// simulator's gateway outage needs.
func TestMemoryGateway(t *testing.T) {
	hc := newCA(t)
	clock := gatewaytest.NewClock(epoch)
	mem := vfs.NewMem()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "gw")
	m := openMem(t, mem, dir, hc, clock, 3)

	img := gatewaytest.SignedImage(t, hc.imageKey, 1001, 40000)
	var ti gateway.TargetInfo
	if err := json.Unmarshal(m.adminDo("POST", "/v1/firmware?hwid=board&tags=devel", img, http.StatusCreated), &ti); err != nil {
		t.Fatal(err)
	}
	cert, err := hc.ca.IssueDevice(pki.DeviceSpec{UUID: testUUID}, epoch.Add(-time.Hour), gatewaytest.Rand(7))
	if err != nil {
		t.Fatal(err)
	}
	root := m.deviceGet(cert.Leaf, "/repo/1.root.json", http.StatusOK)
	targets := m.deviceGet(cert.Leaf, "/repo/targets.json", http.StatusOK)
	if !bytes.Contains(targets, []byte(`"board-v1001"`)) {
		t.Fatalf("targets.json lacks the target: %.300s", targets)
	}
	if got := m.deviceGet(cert.Leaf, ti.Path, http.StatusOK); !bytes.Equal(got, img) {
		t.Fatalf("GET %s: %d bytes, not the uploaded image", ti.Path, len(got))
	}
	clock.Advance(time.Minute)
	if err := m.g.Tick(clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := m.g.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Fatalf("a gateway in memory wrote to disk: %v (%v)", entries, err)
	}

	// Reopened on the same FS: the same keys, targets, image and device.
	// Its random source differs, and creating would use it.
	m = openMem(t, mem, dir, hc, clock, 4)
	defer m.g.Close()
	if got := m.deviceGet(cert.Leaf, "/repo/1.root.json", http.StatusOK); !bytes.Equal(got, root) {
		t.Error("1.root.json changed across the restart")
	}
	if got := m.deviceGet(cert.Leaf, "/repo/targets.json", http.StatusOK); !bytes.Equal(got, targets) {
		t.Error("targets.json changed across the restart")
	}
	if got := m.deviceGet(cert.Leaf, ti.Path, http.StatusOK); !bytes.Equal(got, img) {
		t.Errorf("GET %s after the restart: not the uploaded image", ti.Path)
	}
	var dev gateway.DeviceReport
	if err := json.Unmarshal(m.adminDo("GET", "/v1/devices/"+testUUID, nil, http.StatusOK), &dev); err != nil || dev.Device.UUID != testUUID {
		t.Errorf("device after the restart: %+v (%v)", dev.Device, err)
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Fatalf("a gateway in memory wrote to disk: %v (%v)", entries, err)
	}

	// The state is the FS value's, not the path's: another FS is a new
	// gateway, with new keys. (Its directory is "", the simplest in memory.)
	other := openMem(t, vfs.NewMem(), "", hc, clock, 5)
	defer other.g.Close()
	if got := other.deviceGet(cert.Leaf, "/repo/1.root.json", http.StatusOK); bytes.Equal(got, root) {
		t.Error("a gateway on a new FS serves the first one's root")
	}
}
