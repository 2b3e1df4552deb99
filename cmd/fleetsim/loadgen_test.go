package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
)

// loadgenFixture is a PKI directory laid out like `fleetsim pki` writes it
// (ca.crt, devices/index.txt, devices/<UUID>.pem) and an mTLS server on
// 127.0.0.1: the fleetsim gateway's device API, with one target for the
// devices' hardware, and ranged reads of fw.
type loadgenFixture struct {
	url, devices, ca, fwPath, fwFile string
	fw                               []byte
}

// newLoadgenFixture starts the fixture; a configStatus other than 0 answers
// every GET /config with it instead of the gateway.
func newLoadgenFixture(t *testing.T, configStatus int) *loadgenFixture {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	start := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test factory"},
		NotBefore: start, NotAfter: start.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	issue := func(serial int64, cn string, eku x509.ExtKeyUsage) []byte {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: start, NotAfter: start.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{eku}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		p8, _ := x509.MarshalPKCS8PrivateKey(k)
		return append(pemOf("CERTIFICATE", der), pemOf("PRIVATE KEY", p8)...)
	}
	f := &loadgenFixture{devices: filepath.Join(dir, "devices"), ca: filepath.Join(dir, "ca.crt"),
		fwPath: "/mcu/files/12/" + strings.Repeat("3", 62) + ".bin", fwFile: filepath.Join(dir, "fw.bin")}
	f.fw = bytes.Repeat([]byte("mcuboot image bytes "), 3000) // 60000 bytes: four ranges, the last short
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(f.devices, 0o755))
	must(os.WriteFile(f.ca, pemOf("CERTIFICATE", caDER), 0o644))
	must(os.WriteFile(f.fwFile, f.fw, 0o644))
	// The gateway knows devices by UUID.
	devA, devB := "5e1f0000-0000-4000-8000-00000000000a", "5e1f0000-0000-4000-8000-00000000000b"
	must(os.WriteFile(filepath.Join(f.devices, "index.txt"), []byte(devA+" production\n"+devB+" test\n"), 0o644))
	must(os.WriteFile(filepath.Join(f.devices, devA+".pem"), issue(2, devA, x509.ExtKeyUsageClientAuth), 0o600))
	must(os.WriteFile(filepath.Join(f.devices, devB+".pem"), issue(3, devB, x509.ExtKeyUsageClientAuth), 0o600))
	serverPair := issue(4, "gateway", x509.ExtKeyUsageServerAuth)
	serverCert, err := tls.X509KeyPair(serverPair, serverPair)
	must(err)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	// The gateway offers version 2 to the devices, which run version 1
	// (loadgen's default --target); a load test never installs it.
	imageKey, err := image.GenerateKey(image.KeyEd25519, rand.Reader)
	must(err)
	g, err := gateway.Open(filepath.Join(dir, "gw"), gateway.Options{
		Clock: wallClock{}, Random: rand.Reader, Factory: "test", ImageKeys: []crypto.PublicKey{imageKey.Public()}, NoSync: true,
	})
	must(err)
	t.Cleanup(func() { g.Close() })
	upload := httptest.NewRequest("POST", "https://admin/v1/firmware?hwid=loadtest-board&tags=devel",
		bytes.NewReader(gatewaytest.SignedImage(t, imageKey, 2, 4000)))
	upload.Header.Set("Authorization", "Bearer test")
	rec := httptest.NewRecorder()
	g.AdminHandler("test").ServeHTTP(rec, upload)
	if rec.Code != http.StatusCreated {
		t.Fatalf("uploading the target: %d %s", rec.Code, rec.Body)
	}

	mux := http.NewServeMux()
	mux.Handle("/", g.DeviceHandler())
	if configStatus != 0 {
		mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(configStatus) })
	}
	mux.HandleFunc("GET "+f.fwPath, func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "fw.bin", time.Time{}, bytes.NewReader(f.fw))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0), TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	f.url = "https://" + ln.Addr().String()
	return f
}

func (f *loadgenFixture) args(extra ...string) []string {
	return f.argsFor("400ms", extra...)
}

func (f *loadgenFixture) argsFor(duration string, extra ...string) []string {
	return append([]string{"loadgen", "--url", f.url, "--devices", f.devices,
		"--connections", "2", "--warmup", "0s", "--duration", duration}, extra...)
}

// runAnswered runs loadgen, and again with a longer window while nothing at
// all was answered in it: other processes on a shared machine can starve a
// short run. A server that never answers still fails.
func (f *loadgenFixture) runAnswered(t *testing.T, extra ...string) (int, string, string) {
	t.Helper()
	for _, d := range []string{"400ms", "1200ms", "3600ms"} {
		code, out, errOut := runCLI(t, f.argsFor(d, extra...)...)
		if !strings.Contains(errOut, "no request was answered") {
			return code, out, errOut
		}
	}
	t.Fatal("no answer in 3.6 s")
	return 0, "", ""
}

func TestLoadgenCheckInJSON(t *testing.T) {
	f := newLoadgenFixture(t, 0)
	code, out, errOut := f.runAnswered(t, "--scenario", "checkin", "--proto", "h2", "--json")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one JSON line, got %q", out)
	}
	var r struct {
		Scenario  string            `json:"scenario"`
		Proto     string            `json:"proto"`
		Requests  uint64            `json:"requests"`
		Errors    uint64            `json:"errors"`
		ReqPerSec float64           `json:"req_per_sec"`
		P99Ms     float64           `json:"p99_ms"`
		Statuses  map[string]uint64 `json:"statuses"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// The agent's check-in: the reports, then the TUF refresh (no new
	// root, the timestamp) with the metadata it keeps.
	if r.Scenario != "checkin" || r.Proto != "h2" || r.Requests == 0 || r.Errors != 0 || r.ReqPerSec <= 0 || r.P99Ms <= 0 {
		t.Fatalf("unexpected result %+v", r)
	}
	for _, k := range []string{"GET /config 204", "PUT /system_info 200", "PUT /system_info/network 200",
		"PUT /system_info/config 200", "GET /repo/2.root.json 404", "GET /repo/timestamp.json 200"} {
		if r.Statuses[k] == 0 {
			t.Fatalf("no %q in %v", k, r.Statuses)
		}
	}
}

func TestLoadgenRangeHuman(t *testing.T) {
	f := newLoadgenFixture(t, 0)
	code, out, errOut := f.runAnswered(t, "--scenario", "range", "--path", f.fwPath, "--file", f.fwFile)
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if !strings.HasPrefix(out, "range h1 2 conns keep-alive: ") || !strings.Contains(out, "GET range 206=") || !strings.Contains(out, "errors 0") {
		t.Fatalf("stdout %q", out)
	}
	// The size learnt from the server instead of the file.
	if code, out, errOut = f.runAnswered(t, "--scenario", "range", "--path", f.fwPath, "--proto", "h2"); code != 0 {
		t.Fatalf("probed size: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
}

func TestLoadgenReportsServerErrors(t *testing.T) {
	f := newLoadgenFixture(t, http.StatusInternalServerError)
	code, out, errOut := f.runAnswered(t, "--scenario", "checkin", "--reconnect")
	wantFail(t, code, errOut, 1, "requests were not answered as expected")
	if !strings.Contains(out, "status GET /config 500=") {
		t.Fatalf("the report should still be printed and count the 500s: %q", out)
	}

	// A local copy that differs from what the server sends.
	g := newLoadgenFixture(t, 0)
	other := filepath.Join(t.TempDir(), "other.bin")
	if err := os.WriteFile(other, bytes.Repeat([]byte{0}, len(g.fw)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = g.runAnswered(t, "--scenario", "range", "--path", g.fwPath, "--file", other)
	wantFail(t, code, errOut, 1, "differs from the image")
}

func TestLoadgenUsageErrors(t *testing.T) {
	f := newLoadgenFixture(t, 0)
	badIndex := t.TempDir()
	if err := os.WriteFile(filepath.Join(badIndex, "index.txt"), []byte("dev-a staging\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"loadgen", "--scenario", "checkin"}, "--url, --devices and --scenario are required"},
		{f.args("--scenario", "idle"), `scenario "idle"`},
		{f.args("--scenario", "checkin", "--proto", "h9"), `protocol "h9"`},
		{f.args("--scenario", "range", "--path", f.fwPath, "--reconnect"), "reconnect applies to the check-in only"},
		{f.args("--scenario", "checkin", "--path", f.fwPath), "apply to --scenario range only"},
		{f.args("--scenario", "range"), "range needs the file's path"},
		{f.args("--scenario", "checkin", "--connections", "0"), "--connections 0"},
		{f.args("--scenario", "checkin", "--ca", filepath.Join(f.devices, "index.txt")), "holds no PEM certificate"},
		{[]string{"loadgen", "--url", f.url, "--devices", badIndex, "--ca", f.ca, "--scenario", "checkin"}, "bad device index: line 1"},
		{f.args("--scenario", "range", "--path", "/mcu/files/00/none.bin"), "cannot learn the firmware size"},
		{f.args("--scenario", "checkin", "--duration", "soon"), "invalid argument"},
		{f.args("--scenario", "checkin", "--target", "loadtest-board"), "is not <hwid>-v<version>"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		wantFail(t, code, errOut, 2, tc.want)
	}
}

func TestLoadgenHelp(t *testing.T) {
	code, out, _ := runCLI(t, "loadgen", "--help")
	if code != 0 || !strings.Contains(out, "--reconnect") || !strings.Contains(out, "aktualizr-nano") {
		t.Fatalf("exit %d, help %q", code, out)
	}
}
