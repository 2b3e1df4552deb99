package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway/firmware"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// The handler benchmarks call the device API in process, as the simulator
// does: what a request costs the gateway apart from TLS and sockets.

type benchFleet struct {
	g       *Gateway
	h       http.Handler
	devices []*x509.Certificate
	path    string
}

func newBenchFleet(b *testing.B, n int) *benchFleet {
	b.Helper()
	random := gatewaytest.Rand(9)
	g, err := Open(b.TempDir(), Options{Clock: gatewaytest.NewClock(fuzzNow), Random: random, AllowUnsigned: true, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	if _, err := g.ci.AddTag(fuzzNow, "devel"); err != nil {
		b.Fatal(err)
	}
	img := make([]byte, 1<<20)
	sum, _, err := g.firmware.Put(bytes.NewReader(img), 2<<20, nil)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := pki.NewCA("bench", fuzzNow.Add(-time.Hour), random)
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFleet{g: g, h: g.DeviceHandler(), path: firmware.Path(sum)}
	for i := range n {
		cert, err := ca.IssueDevice(pki.DeviceSpec{UUID: "0A1B2C3D-0000-4000-8000-" + pad12(i)}, fuzzNow.Add(-time.Hour), random)
		if err != nil {
			b.Fatal(err)
		}
		f.devices = append(f.devices, cert.Leaf)
	}
	return f
}

func pad12(i int) string {
	s := strconv.Itoa(i)
	return "000000000000"[len(s):] + s
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }

func (f *benchFleet) do(b *testing.B, dev int, method, path string, body []byte, hdr ...string) int {
	req := httptest.NewRequest(method, "https://gw"+path, bytes.NewReader(body))
	req.Header.Set("x-ats-tags", "devel")
	req.Header.Set("x-ats-target", "board-v1")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{f.devices[dev%len(f.devices)]}}
	w := &discardWriter{h: http.Header{}, status: 200}
	f.h.ServeHTTP(w, req)
	return w.status
}

var (
	benchSystemInfo = []byte(`{"product":"MIMXRT1060-EVK","description":"Aktualizr-nano PoC","claimed":true,"serial":"0011223344556677","id":"MIMXRT1060-EVK","class":"MCU"}`)
	benchNetwork    = []byte(`{"local_ipv4":"10.0.0.2","mac":"00:11:22:33:44:55"}`)
	benchConfig     = []byte("[aknano_settings]\npoll_interval = 15\nhw_id = \"MIMXRT1060-EVK\"\ntag = \"devel\"\n")
)

// BenchmarkCheckIn is one idle check-in of aktualizr-nano: six requests
// (foundries.md §1.4); ns/op is per check-in.
func BenchmarkCheckIn(b *testing.B) {
	f := newBenchFleet(b, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for _, r := range []struct {
			method, path string
			body         []byte
			want         int
		}{
			{"GET", "/config", nil, 204},
			{"PUT", "/system_info", benchSystemInfo, 200},
			{"PUT", "/system_info/network", benchNetwork, 200},
			{"PUT", "/system_info/config", benchConfig, 200},
			{"GET", "/repo/2.root.json", nil, 404},
			{"GET", "/repo/timestamp.json", nil, 200},
		} {
			if s := f.do(b, i, r.method, r.path, r.body); s != r.want {
				b.Fatalf("%s %s = %d", r.method, r.path, s)
			}
		}
	}
}

// BenchmarkRange is one 16 KiB range request of a 1 MiB image.
func BenchmarkRange(b *testing.B) {
	f := newBenchFleet(b, 100)
	b.ReportAllocs()
	b.SetBytes(16384)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		off := (i % 64) * 16384
		if s := f.do(b, i, "GET", f.path, nil, "Range", "bytes="+strconv.Itoa(off)+"-"+strconv.Itoa(off+16383)); s != 206 {
			b.Fatalf("range = %d", s)
		}
	}
}
