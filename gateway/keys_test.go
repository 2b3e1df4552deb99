package gateway_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
)

func parseRoot(t *testing.T, data []byte) *metadata.Metadata[metadata.RootType] {
	t.Helper()
	md, err := metadata.Root().FromBytes(data)
	if err != nil {
		t.Fatalf("root: %v", err)
	}
	return md
}

// TestKeyRotation: POST /v1/keys/rotate gives every role a new key in root
// version 2 of both repositories, signed so that a device trusting version 1
// accepts it; the views are then signed by the new keys only, and a
// restarted gateway keeps signing with them. Bad requests get a 4xx with a
// reason.
func TestKeyRotation(t *testing.T) {
	clock := gatewaytest.NewClock(epoch)
	dir, hc := t.TempDir(), newCA(t)
	h := newHarness(t, dir, hc, clock)
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1000, 2000), "board", "devel")
	d := h.newDevice(testUUID, false)
	root1 := parseRoot(t, d.get(false, "/repo/1.root.json", 200))
	d.get(false, "/repo/2.root.json", 404)

	for _, body := range []string{
		`{}`, `{"roles":[]}`, `{"roles":["mirror"]}`, `{"roles":["root","root"]}`,
		`{"roles":["root"],"key_type":"rsa"}`, `{"roles":"root"}`, `not json`,
	} {
		status, data := h.admin("POST", "/v1/keys/rotate", body)
		if status != http.StatusBadRequest || len(data) == 0 || len(data) > 300 || bytes.Count(bytes.TrimSpace(data), []byte("\n")) > 0 {
			t.Errorf("POST /v1/keys/rotate %s = %d %q, want 400 with a one-line reason", body, status, data)
		}
	}
	if status, _ := h.admin("POST", "/v1/keys/rotate", `{"roles":["`+strings.Repeat("x", 2<<20)+`"]}`); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB body = %d, want 413", status)
	}
	d.get(false, "/repo/2.root.json", 404)

	roles := []string{"root", "targets", "snapshot", "timestamp"}
	var rot gateway.KeyRotation
	h.mustAdmin(http.StatusOK, "POST", "/v1/keys/rotate", gateway.KeyRotationRequest{Roles: roles}, &rot)
	if rot.RootVersions["ci"] != 2 || rot.RootVersions["prod"] != 2 || len(rot.Keys) != 4 {
		t.Fatalf("rotation %+v, want root version 2 in both repositories and 4 keys", rot)
	}
	root2 := parseRoot(t, d.get(false, "/repo/2.root.json", 200))
	// TUF §5.3.4-5: signed by the old root's keys and by the new root's.
	if err := root1.VerifyDelegate("root", root2); err != nil {
		t.Fatalf("2.root.json under root 1: %v", err)
	}
	if err := root2.VerifyDelegate("root", root2); err != nil {
		t.Fatalf("2.root.json under itself: %v", err)
	}
	for _, k := range rot.Keys {
		if ids := root2.Signed.Roles[k.Role].KeyIDs; !slices.Equal(ids, []string{k.KeyID}) {
			t.Errorf("root 2 lists %s keys %v, want the new %s", k.Role, ids, k.KeyID)
		}
		if slices.Contains(root1.Signed.Roles[k.Role].KeyIDs, k.KeyID) {
			t.Errorf("%s kept its key %s", k.Role, k.KeyID)
		}
	}
	ts, err := metadata.Timestamp().FromBytes(d.get(false, "/repo/timestamp.json", 200))
	if err != nil {
		t.Fatal(err)
	}
	if err := root2.VerifyDelegate("timestamp", ts); err != nil {
		t.Errorf("timestamp under root 2: %v", err)
	}
	if err := root1.VerifyDelegate("timestamp", ts); err == nil {
		t.Error("the timestamp still verifies under the retired key")
	}
	p := prodFleet(h, 1, "devel")[0]
	p.get(false, "/repo/2.root.json", 200)

	// After a restart the gateway signs with the new keys.
	h.shutdown()
	h = newHarness(t, dir, hc, clock)
	d = h.deviceWith(testUUID, d.cert)
	if again := parseRoot(t, d.get(false, "/repo/2.root.json", 200)); again.Signed.Version != 2 {
		t.Fatalf("root version %d after a restart", again.Signed.Version)
	}
	h.upload(gatewaytest.SignedImage(t, h.imageKey, 1001, 2000), "board", "devel")
	targets, err := metadata.Targets().FromBytes(d.get(false, "/repo/targets.json", 200))
	if err != nil {
		t.Fatal(err)
	}
	if err := root2.VerifyDelegate("targets", targets); err != nil {
		t.Errorf("targets signed after a restart, under root 2: %v", err)
	}
	if _, ok := targets.Signed.Targets["board-v1001"]; !ok {
		t.Errorf("targets.json lacks board-v1001: %v", targets.Signed.Targets)
	}
	// A second rotation needs only the keys of the first.
	h.mustAdmin(http.StatusOK, "POST", "/v1/keys/rotate", gateway.KeyRotationRequest{Roles: []string{"timestamp"}}, &rot)
	if rot.RootVersions["prod"] != 3 {
		t.Errorf("second rotation: %+v", rot)
	}
}
