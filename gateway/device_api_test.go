package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/store"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

const (
	testUUID  = "0A1B2C3D-0000-4000-8000-000000000001"
	otherUUID = "0A1B2C3D-0000-4000-8000-000000000002"
)

// TestDeviceAPI drives every device endpoint over real mutual TLS on
// loopback, over TCP and over HTTP/3.
func TestDeviceAPI(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	h := newHarness(t, t.TempDir(), newCA(t), clock)
	img := gatewaytest.SignedImage(t, h.imageKey, 1001, 40000)
	ti := h.upload(img, "board", "devel")
	if ti.Name != "board-v1001" || ti.Length != int64(len(img)) {
		t.Fatalf("target = %+v", ti)
	}
	for _, h3 := range []bool{false, true} {
		name := "tcp"
		if h3 {
			name = "h3"
		}
		t.Run(name, func(t *testing.T) {
			d := h.newDevice(map[bool]string{false: testUUID, true: otherUUID}[h3], false)
			h.t = t
			// TUF metadata of the device's tag.
			root := d.get(h3, "/repo/1.root.json", http.StatusOK)
			if !bytes.Contains(root, []byte(`"_type":"root"`)) {
				t.Fatalf("1.root.json = %.100s", root)
			}
			d.get(h3, "/repo/2.root.json", http.StatusNotFound)
			resp, ts := d.do(h3, "GET", "/repo/timestamp.json", nil, nil)
			sum := sha256.Sum256(ts)
			if resp.StatusCode != 200 || resp.Header.Get("x-ats-role-checksum") != hex.EncodeToString(sum[:]) {
				t.Fatalf("timestamp.json: %d, checksum %q", resp.StatusCode, resp.Header.Get("x-ats-role-checksum"))
			}
			d.get(h3, "/repo/snapshot.json", http.StatusOK)
			if targets := d.get(h3, "/repo/targets.json", http.StatusOK); !bytes.Contains(targets, []byte(`"board-v1001"`)) {
				t.Fatalf("targets.json lacks the target: %.300s", targets)
			}
			d.get(h3, "/repo/nonsense.json", http.StatusNotFound)
			// A tag without a view.
			resp, _ = d.do(h3, "GET", "/repo/timestamp.json", nil, map[string]string{"x-ats-tags": "no-such-tag"})
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("unknown tag: %d", resp.StatusCode)
			}

			// System info: any JSON, strict network JSON, TOML text; no
			// Content-Type needed.
			for _, c := range []struct {
				path, body string
				want       int
			}{
				{"/system_info", `{"product":"board","description":"Aktualizr-nano PoC","claimed":true,"serial":"0011","id":"board","class":"MCU"}`, 200},
				{"/system_info", `{"product":`, 400},
				{"/system_info/network", `{"local_ipv4":"10.0.0.2","mac":"00:11:22:33:44:55"}`, 200},
				{"/system_info/network", `{"local_ipv4":"10.0.0.2","nonsense":1}`, 400},
				{"/system_info/network", `[1,2]`, 400},
				{"/system_info/config", "[aknano_settings]\npoll_interval = 15\ntag = \"devel\"\n", 200},
				{"/system_info/config", "bad \xff bytes", 400},
			} {
				resp, data := d.do(h3, "PUT", c.path, []byte(c.body), nil)
				if resp.StatusCode != c.want {
					t.Errorf("PUT %s %.30q = %d %s, want %d", c.path, c.body, resp.StatusCode, data, c.want)
				}
			}
			resp, _ = d.do(h3, "PUT", "/system_info", bytes.Repeat([]byte(" "), gateway.MaxBodySize+1), nil)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized body: %d", resp.StatusCode)
			}

			// Config: 204 when empty, then the merged files with
			// Last-Modified, and 304 for If-Modified-Since.
			if resp, _ := d.do(h3, "GET", "/config", nil, nil); resp.StatusCode != http.StatusNoContent {
				t.Fatalf("GET /config = %d, want 204", resp.StatusCode)
			}
			h.mustAdmin(200, "PUT", "/v1/config", gateway.ConfigRequest{Files: []gateway.ConfigFileRequest{
				{Name: "polling_interval", Value: "30", Unencrypted: true},
				{Name: "z-50-fioctl.toml", Value: "[pacman]\ntags = \"main\"\n[other]\nkeep = true\n", Unencrypted: true},
			}}, nil)
			h.mustAdmin(200, "PUT", "/v1/config/devices/"+d.uuid, gateway.ConfigRequest{Files: []gateway.ConfigFileRequest{{Name: "z-50-fioctl.toml", Value: "[pacman]\ntags = \"devel\"\n", Unencrypted: true}}}, nil)
			resp, data := d.do(h3, "GET", "/config", nil, nil)
			var cfg map[string]struct{ Value string }
			if resp.StatusCode != 200 || json.Unmarshal(data, &cfg) != nil || cfg["polling_interval"].Value != "30" || cfg["z-50-fioctl.toml"].Value != "[pacman]\ntags = \"devel\"\n[other]\nkeep = true\n" {
				t.Fatalf("GET /config = %d %s", resp.StatusCode, data)
			}
			lm := resp.Header.Get("Last-Modified")
			if resp, _ := d.do(h3, "GET", "/config", nil, map[string]string{"If-Modified-Since": lm}); resp.StatusCode != http.StatusNotModified {
				t.Fatalf("If-Modified-Since: %d, want 304", resp.StatusCode)
			}
			h.mustAdmin(200, "PUT", "/v1/config/devices/"+d.uuid, gateway.ConfigRequest{Files: []gateway.ConfigFileRequest{}}, nil)
			h.mustAdmin(200, "PUT", "/v1/config", gateway.ConfigRequest{Files: []gateway.ConfigFileRequest{}}, nil)

			// Events: deduplicated by id; invalid ones skipped; bad JSON 400.
			d.event("EV-1", "EcuDownloadStarted", "CORR-1", 1001, true)
			d.event("EV-1", "EcuDownloadStarted", "CORR-1", 1001, true)
			d.event("EV-2", "EcuDownloadCompleted", "CORR-1", 1001, true)
			resp, _ = d.do(h3, "POST", "/events", []byte(`[{"id":"EV-3","eventType":{"id":"X"},"event":{"correlationId":"bad id!"}}]`), nil)
			if resp.StatusCode != 200 {
				t.Fatalf("skipped event: %d", resp.StatusCode)
			}
			resp, _ = d.do(h3, "POST", "/events", []byte(`{"id":1}`), nil)
			if resp.StatusCode != 400 {
				t.Fatalf("bad events JSON: %d", resp.StatusCode)
			}
			var rep gateway.DeviceReport
			h.mustAdmin(200, "GET", "/v1/devices/"+d.uuid, nil, &rep)
			if len(rep.Events) != 2 || rep.Events[0].ID != "EV-1" || rep.Events[1].ID != "EV-2" {
				t.Fatalf("stored events = %+v", rep.Events)
			}
			if rep.Device.Tag != "devel" || rep.Device.Target != "board-v1" || rep.Device.Production {
				t.Fatalf("device = %+v", rep.Device)
			}

			// GET /device: this device's own record.
			var info map[string]any
			if err := json.Unmarshal(d.get(h3, "/device", 200), &info); err != nil || info["uuid"] != d.uuid || info["factory"] != "test-factory" {
				t.Fatalf("GET /device = %v %v", info, err)
			}

			// Firmware in 16 KiB ranges.
			var got []byte
			for off := 0; off < len(img); off += 16384 {
				end := min(off+16383, len(img)-1)
				resp, data := d.do(h3, "GET", ti.Path, nil, map[string]string{"Range": "bytes=" + itoa(uint32(off)) + "-" + itoa(uint32(end))})
				wantCR := "bytes " + itoa(uint32(off)) + "-" + itoa(uint32(end)) + "/" + itoa(uint32(len(img)))
				if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Range") != wantCR {
					t.Fatalf("range %d: %d %q", off, resp.StatusCode, resp.Header.Get("Content-Range"))
				}
				got = append(got, data...)
			}
			if !bytes.Equal(got, img) {
				t.Fatal("ranged download differs from the image")
			}
			resp, _ = d.do(h3, "GET", ti.Path, nil, map[string]string{"Range": "bytes=999999-1000000"})
			if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				t.Fatalf("range out of the file: %d", resp.StatusCode)
			}
			d.get(h3, "/mcu/files/00/"+strings.Repeat("0", 62)+".bin", http.StatusNotFound)
			d.get(h3, "/mcu/files/xx/yy.bin", http.StatusNotFound)
			d.get(h3, "/no/such/path", http.StatusNotFound)
			if resp, _ := d.do(h3, "DELETE", "/device", nil, nil); resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("DELETE /device = %d", resp.StatusCode)
			}
		})
	}
	h.t = t
}

// TestDeviceIdentity: no certificate, a certificate of another CA, an admin
// certificate, a changed key and a deleted device get no access.
func TestDeviceIdentity(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	hc := newCA(t)
	h := newHarness(t, t.TempDir(), hc, clock)

	// No client certificate: the TLS handshake is refused.
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: h.pool}}}
	if resp, err := noCert.Get("https://" + h.devAddr + "/device"); err == nil {
		resp.Body.Close()
		t.Fatal("a request without a client certificate was served")
	}
	// A device of another factory.
	other := newCA(t)
	otherCA, err := pki.NewCA("other", epoch.Add(-time.Hour), gatewaytest.Rand(9))
	if err != nil {
		t.Fatal(err)
	}
	other.ca = otherCA
	foreign, err := other.ca.IssueDevice(pki.DeviceSpec{UUID: testUUID}, epoch.Add(-time.Hour), gatewaytest.Rand(10))
	if err != nil {
		t.Fatal(err)
	}
	fd := h.deviceWith(testUUID, foreign)
	if _, err := fd.tcp.Get("https://" + h.devAddr + "/device"); err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
	// An admin certificate is not a device.
	adm, err := hc.ca.IssueAdmin(epoch.Add(-time.Hour), gatewaytest.Rand(11))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.deviceWith("admin", adm).do(false, "GET", "/device", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("admin certificate on the device API: %d", resp.StatusCode)
	}
	// The same UUID with another key: refused once the device exists.
	d := h.newDevice(testUUID, false)
	d.get(false, "/device", 200)
	rekeyed, err := hc.ca.IssueDevice(pki.DeviceSpec{UUID: testUUID}, epoch.Add(-time.Hour), gatewaytest.Rand(77))
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := h.deviceWith(testUUID, rekeyed).do(false, "GET", "/device", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("changed key: %d", resp.StatusCode)
	}
	// A deleted device.
	h.mustAdmin(200, "DELETE", "/v1/devices/"+testUUID, nil, nil)
	if resp, _ := d.do(false, "GET", "/device", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("deleted device: %d", resp.StatusCode)
	}
	// The admin API without credentials.
	req, _ := http.NewRequest("GET", "https://"+h.adminAddr+"/v1/status", nil)
	resp, err := h.adminClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("admin without token: %d", resp.StatusCode)
	}
	var devs []store.Device
	h.mustAdmin(200, "GET", "/v1/devices", nil, &devs)
	if len(devs) != 1 || !devs[0].Deleted {
		t.Fatalf("devices = %+v", devs)
	}
}
