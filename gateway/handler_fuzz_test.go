package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// fuzzSetup opens one gateway for a whole fuzzing run (each fuzzing
// process runs the target's body once): a fresh directory per input would
// measure the file system, not the handlers.
func fuzzSetup(f *testing.F) (device *x509.Certificate, devAPI, admin http.Handler) {
	random := gatewaytest.Rand(7)
	g, err := Open(f.TempDir(), Options{Clock: gatewaytest.NewClock(fuzzNow), Random: random, AllowUnsigned: true, NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { g.Close() })
	ca, err := pki.NewCA("fuzz", fuzzNow.Add(-time.Hour), random)
	if err != nil {
		f.Fatal(err)
	}
	cert, err := ca.IssueDevice(pki.DeviceSpec{UUID: "0A1B2C3D-0000-4000-8000-000000000001", Production: true}, fuzzNow.Add(-time.Hour), random)
	if err != nil {
		f.Fatal(err)
	}
	return cert.Leaf, g.DeviceHandler(), g.AdminHandler("t")
}

var fuzzMethods = []string{"GET", "PUT", "POST", "DELETE", "HEAD"}

// FuzzHandlers sends arbitrary requests through the device API and the
// admin API in process: whatever the method, path, headers and body, the
// answer is a status below 500 and nothing panics.
func FuzzHandlers(f *testing.F) {
	f.Add(uint8(0), "/repo/timestamp.json", "devel", "bytes=0-10", []byte(nil), false)
	f.Add(uint8(1), "/system_info/network", "devel", "", []byte(`{"mac":"x"}`), false)
	f.Add(uint8(2), "/events", "", "", []byte(`[{"id":"a","event":{"correlationId":"c"}}]`), false)
	f.Add(uint8(2), "/events", "", "", []byte(`[{"id":"a\u0000","event":{"correlationId":"c"}}]`), false)
	f.Add(uint8(3), "/v1/devices/0a1b2c3d-0000-4000-8000-000000000001", "", "", []byte(nil), true)
	f.Add(uint8(0), "/mcu/files/ab/"+string(bytes.Repeat([]byte("c"), 62))+".bin", "", "bytes=5-1", []byte(nil), false)
	f.Add(uint8(2), "/v1/waves", "", "", []byte(`{"name":"w","tag":"t","version":2}`), true)
	f.Add(uint8(2), "/v1/waves/w/rollout", "", "", []byte(`{"percentage":50}`), true)
	f.Add(uint8(1), "/v1/config/groups/g", "", "", []byte(`{"files":[{"name":"a","value":"b"}]}`), true)
	f.Add(uint8(2), "/v1/firmware?hwid=b&tags=t", "", "", []byte("\x3d\xb8\xf3\x96"), true)
	device, devAPI, adminAPI := fuzzSetup(f)
	f.Fuzz(func(t *testing.T, method uint8, path, tag, rng string, body []byte, admin bool) {
		if len(path) == 0 || path[0] != '/' || len(path) > 512 {
			return
		}
		req, err := http.NewRequest(fuzzMethods[int(method)%len(fuzzMethods)], "https://gw"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("x-ats-tags", tag)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{device}}
		h := devAPI
		if admin {
			h = adminAPI
			req.Header.Set("Authorization", "Bearer t")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", req.Method, path, w.Code, w.Body.Bytes())
		}
	})
}
