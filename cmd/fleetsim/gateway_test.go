package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// The gateway client commands are tested against a gateway served in this
// process on loopback, with a PKI directory and an image key made by the CLI
// itself.

type gwFixture struct {
	pki, key, admin string
	data            string   // the gateway's data directory
	device          string   // the device API's https://host:port
	devices         []string // production device UUIDs
}

// startGateway makes a PKI directory and an image key, opens a gateway in a
// temporary directory and serves it on 127.0.0.1:0 until the test ends.
func startGateway(t *testing.T) gwFixture {
	t.Helper()
	dir := t.TempDir()
	fx := gwFixture{pki: filepath.Join(dir, "pki"), key: filepath.Join(dir, "image-key.pem")}
	mustCLI(t, "pki", "init", "--dir", fx.pki, "--factory", "acme")
	mustCLI(t, "image", "keygen", "-k", fx.key, "-t", "ed25519")
	keys, err := readImageKeys([]string{fx.key})
	if err != nil {
		t.Fatal(err)
	}
	fx.data = filepath.Join(dir, "gw")
	g, err := gateway.Open(fx.data, gateway.Options{
		Clock: wallClock{}, Random: rand.Reader, Factory: "acme", ImageKeys: keys, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, pool, err := pki.ServerTLS(fx.pki)
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(fx.pki, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	var devAddr string
	go func() {
		done <- g.Serve(ctx, gateway.ServeConfig{
			DeviceAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
			Certificate: cert, ClientCAs: pool, AdminToken: strings.TrimSpace(string(token)),
			TickInterval: 50 * time.Millisecond,
			Ready: func(dev, _, admin net.Addr) {
				devAddr, fx.admin = dev.String(), "https://"+admin.String()
				fx.device = "https://" + devAddr
				close(ready)
			},
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	// Two production devices following "main" check in, so a wave has
	// devices to roll out to.
	ca, err := pki.LoadCA(fx.pki)
	if err != nil {
		t.Fatal(err)
	}
	for _, uuid := range []string{"0A1B2C3D-0000-4000-8000-000000000001", "0A1B2C3D-0000-4000-8000-000000000002"} {
		dc, err := ca.IssueDevice(pki.DeviceSpec{UUID: uuid, Production: true}, time.Now().Add(-time.Hour), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{dc}}}}
		req, _ := http.NewRequest("GET", "https://"+devAddr+"/device", nil)
		req.Header.Set("x-ats-tags", "main")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /device = %d", resp.StatusCode)
		}
		fx.devices = append(fx.devices, uuid)
	}
	return fx
}

// gw runs a gateway client command against the fixture's admin API.
func (fx gwFixture) gw(args ...string) []string {
	return append(append([]string{"gateway"}, args...), "--admin", fx.admin, "--pki", fx.pki)
}

func (fx gwFixture) signImage(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	payload := filepath.Join(dir, "app.bin")
	if err := os.WriteFile(payload, []byte(strings.Repeat("fleetsim app ", 2000)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "app-signed.bin")
	mustCLI(t, "image", "sign", "-k", fx.key, "-v", version, "-H", "0x200", "--pad-header", "-S", "0x20000", payload, out)
	return out
}

func TestGatewayCLIUploadWaveStatus(t *testing.T) {
	fx := startGateway(t)
	img := fx.signImage(t, "1.0.0+1002")

	out := mustCLI(t, fx.gw("upload", img, "--hwid", "MIMXRT1060-EVK", "--tag", "main")...)
	if !strings.HasPrefix(out, "target MIMXRT1060-EVK-v1002: ") || !strings.Contains(out, "path /mcu/files/") {
		t.Errorf("upload printed %q", out)
	}
	// The same image again is a duplicate target: the gateway's 409 reason
	// in one line, exit 1.
	wantRefusal(t, 1, "409", fx.gw("upload", img, "--hwid", "MIMXRT1060-EVK", "--tag", "main")...)
	// A version that disagrees with the image header.
	wantRefusal(t, 1, "does not match the image's build number 1002", fx.gw("upload", img, "--hwid", "OTHER", "--tag", "main", "--version", "7")...)
	// Not an image at all.
	junk := filepath.Join(t.TempDir(), "junk.bin")
	os.WriteFile(junk, []byte("not an image"), 0o644)
	wantRefusal(t, 1, "not an MCUboot image", fx.gw("upload", junk, "--hwid", "B", "--tag", "main")...)
	wantRefusal(t, 2, "--hwid and --tag are required", fx.gw("upload", img)...)

	out = mustCLI(t, fx.gw("wave", "init", "w1002", "--tag", "main", "--version", "1002", "--max-per-minute", "100", "--abort", "failed:10:50", "--timeout", "30m")...)
	if out != "wave w1002: tag main, version 1002, targets MIMXRT1060-EVK-v1002\n" {
		t.Errorf("wave init printed %q", out)
	}
	wantRefusal(t, 2, `--abort "failed:x:1": PERCENT is a number`, fx.gw("wave", "init", "w2", "--tag", "main", "--version", "1002", "--abort", "failed:x:1")...)
	wantRefusal(t, 1, "no CI target of version 9 carries tag main", fx.gw("wave", "init", "w9", "--tag", "main", "--version", "9")...)

	out = mustCLI(t, fx.gw("wave", "rollout", "w1002", "--limit", "1", "--dry-run", "--print-uuids")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "wave w1002: would add 1 devices" || !strings.HasPrefix(lines[1], "0A1B2C3D-") {
		t.Errorf("dry run printed %q", out)
	}
	out = mustCLI(t, fx.gw("wave", "rollout", "w1002", "--percent", "100")...)
	if out != "wave w1002: added 2 devices\n" {
		t.Errorf("rollout printed %q", out)
	}
	wantRefusal(t, 1, "404", fx.gw("wave", "rollout", "nope", "--limit", "1")...)

	out = mustCLI(t, fx.gw("status", "--json")...)
	var st gateway.StatusResponse
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if st.Devices != 2 || len(st.Waves) != 1 || st.Waves[0].Wave.Name != "w1002" || st.Waves[0].Total != 2 {
		t.Errorf("status: %+v", st)
	}
	out = mustCLI(t, fx.gw("status")...)
	if !strings.HasPrefix(out, "2 devices\n") || !strings.Contains(out, "wave w1002 (active, v1002)") {
		t.Errorf("status printed:\n%s", out)
	}

	out = mustCLI(t, fx.gw("wave", "complete", "w1002")...)
	if out != "wave w1002: "+string(rollout.WaveComplete)+"\n" {
		t.Errorf("complete printed %q", out)
	}
	wantRefusal(t, 1, "409", fx.gw("wave", "cancel", "w1002")...)
	out = mustCLI(t, fx.gw("wave", "list")...)
	if !strings.Contains(out, "w1002") || !strings.Contains(out, string(rollout.WaveComplete)) {
		t.Errorf("wave list printed:\n%s", out)
	}

	// Device commands take the UUID in any case, as the config command does.
	mustCLI(t, fx.gw("device", "group", strings.ToLower(fx.devices[0]), "lab")...)
	mustCLI(t, fx.gw("device", "delete", fx.devices[1])...)
	out = mustCLI(t, fx.gw("device", "list")...)
	var devs []map[string]any
	if err := json.Unmarshal([]byte(out), &devs); err != nil || len(devs) != 2 {
		t.Fatalf("device list: %v\n%s", err, out)
	}
	if devs[0]["Group"] != "lab" && devs[0]["group"] != "lab" {
		t.Errorf("device 0 not in group lab: %v", devs[0])
	}
	wantRefusal(t, 1, "unknown device", fx.gw("device", "delete", "0A1B2C3D-0000-4000-8000-0000000000FF")...)
}

func TestGatewayCLIBadFlags(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	mustCLI(t, "pki", "init", "--dir", pkiDir)
	key := filepath.Join(dir, "k.pem")
	mustCLI(t, "image", "keygen", "-k", key, "-t", "ed25519")
	data := filepath.Join(dir, "gw")

	wantRefusal(t, 2, "--data DIR is required", "gateway", "serve", "--pki", pkiDir)
	wantRefusal(t, 2, "no --image-key", "gateway", "serve", "--data", data, "--pki", pkiDir)
	wantRefusal(t, 2, "--image-key", "gateway", "serve", "--data", data, "--pki", pkiDir, "--image-key", filepath.Join(dir, "missing.pem"))
	wantRefusal(t, 2, `--log-format "xml"`, "gateway", "serve", "--data", data, "--pki", pkiDir, "--image-key", key, "--log-format", "xml")
	wantRefusal(t, 2, `--log-level "loud"`, "gateway", "serve", "--data", data, "--pki", pkiDir, "--image-key", key, "--log-level", "loud")
	wantRefusal(t, 1, "fleetsim pki init", "gateway", "serve", "--data", data, "--pki", filepath.Join(dir, "nopki"), "--image-key", key)
	wantRefusal(t, 2, "unknown flag", "gateway", "serve", "--data", data, "--bogus")
	// A listener that cannot be bound: one line, exit 1, nothing left open.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	wantRefusal(t, 1, "device listener", "gateway", "serve", "--data", data, "--pki", pkiDir, "--image-key", key,
		"--listen", busy.Addr().String(), "--h3", "", "--admin-listen", "", "--no-sync")
	wantRefusal(t, 1, "admin listener", "gateway", "serve", "--data", data, "--pki", pkiDir, "--image-key", key,
		"--listen", "127.0.0.1:0", "--h3", "", "--admin-listen", busy.Addr().String(), "--no-sync")

	// Client commands: a bad --admin URL, a missing PKI directory, a
	// gateway that is not there.
	wantRefusal(t, 2, "an https:// URL", "gateway", "status", "--pki", pkiDir, "--admin", "http://127.0.0.1:1")
	wantRefusal(t, 1, "reading the PKI directory", "gateway", "status", "--pki", filepath.Join(dir, "nopki"))
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	wantRefusal(t, 1, "admin API", "gateway", "status", "--pki", pkiDir, "--admin", "https://"+gone.Addr().String())
	wantRefusal(t, 2, "NAME=VALUE", "gateway", "config", "--pki", pkiDir, "--admin", "https://127.0.0.1:1", "novalue")
	wantRefusal(t, 2, "accepts 1 arg", "gateway", "upload", "--pki", pkiDir)

	for _, sub := range [][]string{{"serve"}, {"upload"}, {"tag"}, {"wave"}, {"wave", "init"}, {"wave", "rollout"}, {"wave", "complete"}, {"wave", "cancel"}, {"wave", "list"}, {"status"}, {"device"}, {"config"}} {
		code, out, _ := runCLI(t, append(append([]string{"gateway"}, sub...), "--help")...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("gateway %v --help: exit %d\n%s", sub, code, out)
		}
	}
}

// TestGatewayCLIRefusalOneLine: whatever the admin API answers on a refusal
// (here a proxy's multi-line HTML page), the CLI prints one bounded line.
func TestGatewayCLIRefusalOneLine(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html>\n<body>\n" + strings.Repeat("bad gateway ", 100) + "\n</body>\n</html>\n"))
	}))
	defer srv.Close()
	c := &adminClient{base: srv.URL, http: srv.Client()}
	err := c.call(http.MethodGet, "/v1/status", "", nil, nil)
	if err == nil {
		t.Fatal("no error for 502")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || len(msg) > 300 || !strings.Contains(msg, "502") {
		t.Errorf("error %q: want one line of at most 300 bytes naming 502", msg)
	}
}
