package gateway_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// The SIGKILL test runs the gateway in a child process (this test binary,
// re-executed), kills it with SIGKILL while devices are posting events, and
// restarts it on the same data directory: every event the gateway
// acknowledged must be there, and the rollout must go on where it was.

const childEnv = "FLEETSIM_GATEWAY_CHILD"

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// TestGatewayChildProcess is the child's body; it does nothing unless the
// parent test started it.
func TestGatewayChildProcess(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		return
	}
	key, _ := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(2))
	g, err := gateway.Open(filepath.Join(dir, "data"), gateway.Options{
		Clock: wallClock{}, Random: gatewaytest.Rand(3), ImageKeys: []crypto.PublicKey{key.Public()},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	cert, pool, err := pki.ServerTLS(filepath.Join(dir, "pki"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	err = g.Serve(context.Background(), gateway.ServeConfig{
		DeviceAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Certificate: cert, ClientCAs: pool, AdminToken: "tok",
		TickInterval: 20 * time.Millisecond,
		Ready: func(dev, _, admin net.Addr) {
			os.WriteFile(filepath.Join(dir, "addr.tmp"), []byte(dev.String()+" "+admin.String()), 0o644)
			os.Rename(filepath.Join(dir, "addr.tmp"), filepath.Join(dir, "addr"))
		},
	})
	fmt.Fprintln(os.Stderr, "child: Serve returned", err)
	os.Exit(4)
}

type child struct {
	cmd              *exec.Cmd
	devAddr, admAddr string
}

func startChild(t *testing.T, dir string) *child {
	t.Helper()
	os.Remove(filepath.Join(dir, "addr"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestGatewayChildProcess$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, "addr")); err == nil {
			f := strings.Fields(string(b))
			return &child{cmd: cmd, devAddr: f[0], admAddr: f[1]}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("child did not start: %s", stderr.String())
	return nil
}

func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()
}

type crashClient struct {
	t      *testing.T
	pool   *x509.CertPool
	ca     *pki.CA
	admin  *http.Client
	c      *child
	device map[string]*http.Client
}

func (cc *crashClient) adminDo(method, path string, body any, out any) int {
	cc.t.Helper()
	var r io.Reader
	if b, ok := body.([]byte); ok {
		r = bytes.NewReader(b)
	} else if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, "https://"+cc.c.admAddr+path, r)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := cc.admin.Do(req)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			cc.t.Fatalf("%s: %v", path, err)
		}
	}
	return resp.StatusCode
}

func (cc *crashClient) deviceClient(uuid string) *http.Client {
	if c, ok := cc.device[uuid]; ok {
		return c
	}
	cert, err := cc.ca.IssueDevice(pki.DeviceSpec{UUID: uuid, Production: true}, epoch, gatewaytest.Rand(byte(len(cc.device)+20)))
	if err != nil {
		cc.t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cc.pool, Certificates: []tls.Certificate{cert}}}}
	cc.device[uuid] = c
	return c
}

// deviceDo sends a device request; err is a transport failure (the gateway
// died), status otherwise.
func (cc *crashClient) deviceDo(uuid, method, path string, body []byte) (int, []byte, error) {
	req, _ := http.NewRequest(method, "https://"+cc.c.devAddr+path, bytes.NewReader(body))
	req.Header.Set("x-ats-tags", "main")
	resp, err := cc.deviceClient(uuid).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func eventBody(id, typ, corr string, version uint32, success bool) []byte {
	b, _ := json.Marshal([]map[string]any{{
		"id": id, "deviceTime": "2026-11-01T12:00:00.000Z", "eventType": map[string]any{"id": typ, "version": 0},
		"event": map[string]any{"correlationId": corr, "targetName": "board-v" + itoa(version), "version": itoa(version), "success": success},
	}})
	return b
}

func TestGatewaySIGKILL(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	if err := pki.Init(pkiDir, "crash-factory", nil, time.Now().Add(-time.Hour), gatewaytest.Rand(5)); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cc := &crashClient{t: t, pool: pool, ca: ca, device: map[string]*http.Client{},
		admin: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	cc.c = startChild(t, dir)

	key, _ := image.GenerateKey(image.KeyEd25519, gatewaytest.Rand(2))
	if s := cc.adminDo("POST", "/v1/tags", gateway.TagRequest{Tag: "main"}, nil); s != 201 {
		t.Fatalf("tag: %d", s)
	}
	if s := cc.adminDo("POST", "/v1/firmware?hwid=board&tags=main", gatewaytest.SignedImage(t, key, 1001, 10000), nil); s != 201 {
		t.Fatalf("upload: %d", s)
	}
	uuids := []string{
		"0A1B2C3D-0000-4000-8000-000000000010", "0A1B2C3D-0000-4000-8000-000000000011",
		"0A1B2C3D-0000-4000-8000-000000000012", "0A1B2C3D-0000-4000-8000-000000000013",
	}
	for _, u := range uuids {
		if s, _, err := cc.deviceDo(u, "GET", "/device", nil); err != nil || s != 200 {
			t.Fatalf("device %s: %d %v", u, s, err)
		}
	}
	if s := cc.adminDo("POST", "/v1/waves", gateway.WaveRequest{Name: "w1", Tag: "main", Version: 1001}, nil); s != 201 {
		t.Fatalf("wave: %d", s)
	}
	if s := cc.adminDo("POST", "/v1/waves/w1/rollout", gateway.RolloutRequest{Limit: 4}, nil); s != 200 {
		t.Fatalf("rollout: %d", s)
	}
	// Wait for the release: a device starts only once it is served the wave.
	for _, u := range uuids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, data, err := cc.deviceDo(u, "GET", "/repo/targets.json", nil)
			if err == nil && bytes.Contains(data, []byte("board-v1001")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("device %s never served the wave", u)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Device 0 finishes; device 1 starts. Both are acknowledged.
	for i, typ := range []string{"EcuDownloadStarted", "EcuDownloadCompleted", "EcuInstallationStarted", "EcuInstallationApplied", "EcuInstallationCompleted"} {
		if s, _, err := cc.deviceDo(uuids[0], "POST", "/events", eventBody(fmt.Sprintf("D0-%d", i), typ, "CORR0", 1001, true)); err != nil || s != 200 {
			t.Fatalf("event: %d %v", s, err)
		}
	}
	if s, _, err := cc.deviceDo(uuids[1], "POST", "/events", eventBody("D1-0", "EcuDownloadStarted", "CORR1", 1001, true)); err != nil || s != 200 {
		t.Fatalf("event: %d %v", s, err)
	}

	// A flood of events from devices 2 and 3, killed in the middle.
	var mu sync.Mutex
	acked := map[string][]string{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, u := range uuids[2:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("%s-flood-%d", u[len(u)-2:], i)
				s, _, err := cc.deviceDo(u, "POST", "/events", eventBody(id, "MetadataUpdateCompleted", "tuf-meta-x", 0, true))
				if err != nil {
					return
				}
				if s == 200 {
					mu.Lock()
					acked[u] = append(acked[u], id)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(400 * time.Millisecond)
	cc.c.kill(t)
	close(stop)
	wg.Wait()
	total := len(acked[uuids[2]]) + len(acked[uuids[3]])
	if total == 0 {
		t.Fatal("no event was acknowledged before the kill")
	}

	cc.c = startChild(t, dir)
	for _, c := range cc.device {
		c.CloseIdleConnections() // they died with the gateway
	}
	for _, u := range uuids[2:] {
		var rep gateway.DeviceReport
		if s := cc.adminDo("GET", "/v1/devices/"+u, nil, &rep); s != 200 {
			t.Fatalf("device report: %d", s)
		}
		have := map[string]bool{}
		for _, e := range rep.Events {
			have[e.ID] = true
		}
		var lost []string
		for _, id := range acked[u] {
			if !have[id] {
				lost = append(lost, id)
			}
		}
		if len(lost) > 0 {
			t.Errorf("acknowledged events lost after SIGKILL: %v (%d acknowledged, %d stored)", lost, len(acked[u]), len(rep.Events))
		}
	}
	var rep rollout.WaveReport
	if s := cc.adminDo("GET", "/v1/waves/w1", nil, &rep); s != 200 {
		t.Fatalf("wave: %d", s)
	}
	if rep.Wave.Status != rollout.WaveActive || rep.Counts[rollout.Confirmed] != 1 || rep.Counts[rollout.Downloading] != 1 || rep.Counts[rollout.Pending] != 2 {
		t.Fatalf("wave after restart: %+v", rep)
	}
	// The rollout goes on: device 1 is still served the wave and finishes.
	if _, data, err := cc.deviceDo(uuids[1], "GET", "/repo/targets.json", nil); err != nil || !bytes.Contains(data, []byte("board-v1001")) {
		t.Fatalf("device in the wave after restart: %v %.200s", err, data)
	}
	for i, typ := range []string{"EcuDownloadCompleted", "EcuInstallationStarted", "EcuInstallationApplied", "EcuInstallationCompleted"} {
		if s, _, err := cc.deviceDo(uuids[1], "POST", "/events", eventBody(fmt.Sprintf("D1-%d", i+1), typ, "CORR1", 1001, true)); err != nil || s != 200 {
			t.Fatalf("event after restart: %d %v", s, err)
		}
	}
	cc.adminDo("GET", "/v1/waves/w1", nil, &rep)
	if rep.Counts[rollout.Confirmed] != 2 {
		t.Fatalf("wave after the restarted rollout: %+v", rep.Counts)
	}
	t.Logf("%d events acknowledged in the flood, all present after SIGKILL", total)
}
