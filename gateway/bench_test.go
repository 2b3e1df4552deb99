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

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fleetsim/fleetsim/gateway/firmware"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// The handler benchmarks call the device API in process, as the simulator
// does: what a request costs the gateway apart from TLS and sockets.

type benchFleet struct {
	g       *Gateway
	h       http.Handler
	clock   *gatewaytest.Clock
	devices []*x509.Certificate
	path    string
}

// benchSetup says where a bench fleet's gateway keeps its data and what
// its devices are.
type benchSetup struct {
	// mem keeps the data directory in memory (vfs.NewMem), as fleetsim run
	// does; otherwise it is on disk.
	mem bool
	// production devices in group, as the scale scenario has them.
	production bool
	group      string
}

func newBenchFleet(b *testing.B, n int, s benchSetup) *benchFleet {
	b.Helper()
	random := gatewaytest.Rand(9)
	clock := gatewaytest.NewClock(fuzzNow)
	o := Options{Clock: clock, Random: random, AllowUnsigned: true, NoSync: true}
	dir := b.TempDir()
	if s.mem {
		o.FS, dir = vfs.NewMem(), "gw"
	}
	g, err := Open(dir, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	for _, r := range []*tufrepo.Repo{g.ci, g.prod} {
		if _, err := r.AddTag(fuzzNow, "devel"); err != nil {
			b.Fatal(err)
		}
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
	f := &benchFleet{g: g, h: g.DeviceHandler(), clock: clock, path: firmware.Path(sum)}
	admin := g.AdminHandler("t")
	for i := range n {
		uuid := "0A1B2C3D-0000-4000-8000-" + pad12(i)
		cert, err := ca.IssueDevice(pki.DeviceSpec{UUID: uuid, Production: s.production}, fuzzNow.Add(-time.Hour), random)
		if err != nil {
			b.Fatal(err)
		}
		f.devices = append(f.devices, cert.Leaf)
		if s.group != "" {
			f.do(b, i, "GET", "/device", nil)
			req := httptest.NewRequest("PUT", "https://gw/v1/devices/"+uuid+"/group", bytes.NewReader([]byte(`{"group":"`+s.group+`"}`)))
			req.Header.Set("Authorization", "Bearer t")
			w := httptest.NewRecorder()
			admin.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("group: %d %s", w.Code, w.Body)
			}
		}
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
	// Made as internal/inproc makes the simulator's requests.
	req, err := http.NewRequest(method, "https://gw"+path, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
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

// idleCheckIn is the requests of one idle check-in of aktualizr-nano
// (agent.CheckIn, foundries.md §1.4): /config, the three reports, the next
// root (missing: no rotation) and the timestamp, whose version is unchanged
// so the stored snapshot and targets are used without a download.
var idleCheckIn = []struct {
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
}

func (f *benchFleet) checkIn(b *testing.B, dev int) {
	for _, r := range idleCheckIn {
		if s := f.do(b, dev, r.method, r.path, r.body); s != r.want {
			b.Fatalf("%s %s = %d", r.method, r.path, s)
		}
	}
}

// BenchmarkCheckIn is one idle check-in of aktualizr-nano, by 1000
// devices in turn; ns/op is per check-in. The clock stands still and the
// gateway is not ticked: the device API alone. mem keeps the gateway's
// data in memory as fleetsim run does; test devices follow the CI
// repository, production ones in a group (the scale scenario) the
// production repository and a group's config scope.
func BenchmarkCheckIn(b *testing.B) {
	for _, c := range []struct {
		name string
		s    benchSetup
	}{
		{"mem", benchSetup{mem: true}},
		{"mem-production", benchSetup{mem: true, production: true, group: "fleet"}},
		{"disk", benchSetup{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newBenchFleet(b, 1000, c.s)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				f.checkIn(b, i)
			}
		})
	}
}

// BenchmarkCheckInTicked is BenchmarkCheckIn as the simulator runs it:
// 1000 devices polling every 15 minutes, the clock moving on between
// check-ins and Tick called before a request at most once a virtual
// second (fleetrun's tickingServer), so its flushes of last-seen times and
// its renewals once a minute are shared out over the check-ins.
func BenchmarkCheckInTicked(b *testing.B) {
	const devices, poll = 1000, 15 * time.Minute
	for _, c := range []struct {
		name string
		s    benchSetup
	}{
		{"mem", benchSetup{mem: true, production: true, group: "fleet"}},
		{"disk", benchSetup{production: true, group: "fleet"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newBenchFleet(b, devices, c.s)
			last := f.clock.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				f.clock.Advance(poll / devices)
				if now := f.clock.Now(); now.Sub(last) >= time.Second {
					last = now
					if err := f.g.Tick(now); err != nil {
						b.Fatal(err)
					}
				}
				f.checkIn(b, i)
			}
		})
	}
}

// BenchmarkRange is one 16 KiB range request of a 1 MiB image.
func BenchmarkRange(b *testing.B) {
	f := newBenchFleet(b, 100, benchSetup{})
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
