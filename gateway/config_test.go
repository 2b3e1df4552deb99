package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/fleetsim/fleetsim/gateway/store"
	"github.com/fleetsim/fleetsim/internal/gatewaytest"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// configRig is a gateway in memory with a few devices, restarted on the
// same file system when a test says so.
type configRig struct {
	t       *testing.T
	fs      vfs.FS
	clock   *gatewaytest.Clock
	g       *Gateway
	dev     http.Handler
	admin   http.Handler
	certs   []*x509.Certificate
	uuids   []string
	restart int
}

func newConfigRig(t *testing.T, devices int) *configRig {
	t.Helper()
	c := &configRig{t: t, fs: vfs.NewMem(), clock: gatewaytest.NewClock(reviewNow)}
	c.open()
	t.Cleanup(func() { c.g.Close() })
	random := gatewaytest.Rand(11)
	ca, err := pki.NewCA("config", reviewNow.Add(-time.Hour), random)
	if err != nil {
		t.Fatal(err)
	}
	for i := range devices {
		uuid := fmt.Sprintf("0A1B2C3D-0000-4000-8000-%012d", i)
		cert, err := ca.IssueDevice(pki.DeviceSpec{UUID: uuid, Production: true}, reviewNow.Add(-time.Hour), random)
		if err != nil {
			t.Fatal(err)
		}
		c.certs, c.uuids = append(c.certs, cert.Leaf), append(c.uuids, uuid)
		c.get(i, "") // first contact creates the device
	}
	return c
}

func (c *configRig) open() {
	c.t.Helper()
	g, err := Open("gw", Options{Clock: c.clock, Random: gatewaytest.Rand(10), AllowUnsigned: true, NoSync: true, FS: c.fs})
	if err != nil {
		c.t.Fatal(err)
	}
	c.g, c.dev, c.admin = g, g.DeviceHandler(), g.AdminHandler("t")
}

// reopen restarts the gateway on the same data.
func (c *configRig) reopen() {
	c.t.Helper()
	if err := c.g.Close(); err != nil {
		c.t.Fatal(err)
	}
	c.open()
	c.restart++
}

// configReply is what a device reads of GET /config.
type configReply struct {
	status       int
	body         string
	lastModified string
}

func (c *configRig) get(dev int, ifModifiedSince string) configReply {
	c.t.Helper()
	req := httptest.NewRequest("GET", "https://gw/config", nil)
	req.Header.Set("x-ats-tags", "main")
	if ifModifiedSince != "" {
		req.Header.Set("If-Modified-Since", ifModifiedSince)
	}
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.certs[dev]}}
	w := httptest.NewRecorder()
	c.dev.ServeHTTP(w, req)
	if want := c.clock.Now().UTC().Format(http.TimeFormat); w.Header().Get("Date") != want {
		c.t.Fatalf("GET /config: Date %q, want %q", w.Header().Get("Date"), want)
	}
	return configReply{w.Code, w.Body.String(), w.Header().Get("Last-Modified")}
}

func (c *configRig) adminPut(path string, body any) {
	c.t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		c.t.Fatal(err)
	}
	req := httptest.NewRequest("PUT", "https://gw"+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer t")
	w := httptest.NewRecorder()
	c.admin.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		c.t.Fatalf("PUT %s = %d %s", path, w.Code, w.Body)
	}
}

func files(kv ...string) ConfigRequest {
	r := ConfigRequest{Files: []ConfigFileRequest{}}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Files = append(r.Files, ConfigFileRequest{Name: kv[i], Value: kv[i+1], Unencrypted: true})
	}
	return r
}

// plainConfig is GET /config as the gateway answered it before it kept
// config scopes in memory: each scope read from the store at every
// request, merged and encoded. Tests hold the gateway's answers to it.
func plainConfig(st *store.Store, d store.Device, ifModifiedSince string) (configReply, error) {
	merged := map[string]configValue{}
	var fioctl []string
	var updated time.Time
	scopes := []store.ConfigScope{{Kind: store.ScopeFactory}}
	if d.Group != "" {
		scopes = append(scopes, store.ConfigScope{Kind: store.ScopeGroup, Name: d.Group})
	}
	scopes = append(scopes, store.ConfigScope{Kind: store.ScopeDevice, Name: d.UUID})
	for _, s := range scopes {
		files, up, ok, err := st.Config(s)
		if err != nil {
			return configReply{}, err
		}
		if !ok {
			continue
		}
		if up.After(updated) {
			updated = up
		}
		for _, f := range files {
			merged[f.Name] = configValue{Value: f.Value, Unencrypted: f.Unencrypted, OnChanged: f.OnChanged}
			if f.Name == fioctlFile {
				fioctl = append(fioctl, f.Value)
			}
		}
	}
	if len(fioctl) > 1 {
		v := merged[fioctlFile]
		v.Value = mergeFioctl(fioctl)
		merged[fioctlFile] = v
	}
	if len(merged) == 0 {
		return configReply{status: http.StatusNoContent}, nil
	}
	updated = updated.Truncate(time.Second)
	if t, err := http.ParseTime(ifModifiedSince); err == nil && !updated.After(t) {
		return configReply{status: http.StatusNotModified}, nil
	}
	body, err := json.Marshal(merged)
	if err != nil {
		return configReply{}, err
	}
	return configReply{http.StatusOK, string(body), updated.UTC().Format(http.TimeFormat)}, nil
}

// TestConfigWriteSeenAtNextCheckIn: a device that read its configuration
// (so the gateway keeps it) reads at its next check-in every write an
// operator made since, to the factory, its group or itself, and a change
// of its group; and after a restart the same as before it.
func TestConfigWriteSeenAtNextCheckIn(t *testing.T) {
	c := newConfigRig(t, 2)
	const dev = 0
	step := func(what string, want configReply) {
		t.Helper()
		c.clock.Advance(time.Second)
		if got := c.get(dev, ""); got != want {
			t.Fatalf("after %s: %+v, want %+v", what, got, want)
		}
	}
	// put writes files to a scope now, and returns Last-Modified for them.
	put := func(path string, body any) string {
		c.adminPut(path, body)
		return c.clock.Now().UTC().Format(http.TimeFormat)
	}
	const (
		factoryA = `{"a":{"Value":"factory","Unencrypted":true}}`
		groupA   = `{"a":{"Value":"group","Unencrypted":true}}`
		groupAB  = `{"a":{"Value":"group","Unencrypted":true},"b":{"Value":"group","Unencrypted":true}}`
		deviceB  = `{"a":{"Value":"group","Unencrypted":true},"b":{"Value":"device","Unencrypted":true}}`
	)
	step("nothing", configReply{status: http.StatusNoContent})

	factoryAt := put("/v1/config", files("a", "factory"))
	step("a factory write", configReply{200, factoryA, factoryAt})

	groupAt := put("/v1/config/groups/fleet", files("a", "group"))
	step("a write to a group the device is not in", configReply{200, factoryA, factoryAt})

	c.adminPut("/v1/devices/"+c.uuids[dev]+"/group", GroupRequest{Group: "fleet"})
	step("a change of group", configReply{200, groupA, groupAt})

	groupAt = put("/v1/config/groups/fleet", files("a", "group", "b", "group"))
	step("a group write", configReply{200, groupAB, groupAt})

	put("/v1/config/devices/"+c.uuids[dev+1], files("b", "other device"))
	step("a write to another device", configReply{200, groupAB, groupAt})

	deviceAt := put("/v1/config/devices/"+c.uuids[dev], files("b", "device"))
	step("a device write", configReply{200, deviceB, deviceAt})

	c.reopen()
	step("a restart", configReply{200, deviceB, deviceAt})

	put("/v1/config/devices/"+c.uuids[dev], files())
	step("the device's files deleted after a restart", configReply{200, groupAB, groupAt})

	put("/v1/config/groups/fleet", files())
	step("the group's files deleted", configReply{200, factoryA, factoryAt})

	c.reopen()
	put("/v1/config", files())
	step("the factory's files deleted after a restart", configReply{status: http.StatusNoContent})
}

// TestConfigMatchesPlainMerge runs random operator writes, group changes,
// restarts and check-ins, and holds every answer of GET /config, with and
// without If-Modified-Since, to plainConfig's from the store.
func TestConfigMatchesPlainMerge(t *testing.T) {
	seeds := uint64(8)
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(seed, 2))
		c := newConfigRig(t, 3)
		groups := []string{"", "g1", "g2"}
		fioctl := []string{"[pacman]\ntags = \"main\"\n", "top = 1\n[s1]\nk = 1\n", "[s1]\nk = 2\n[s2]\nv = \"x\"\n"}
		randomFiles := func() ConfigRequest {
			r := ConfigRequest{Files: []ConfigFileRequest{}}
			for _, name := range []string{"a", "b", fioctlFile} {
				if rng.IntN(2) == 0 {
					continue
				}
				f := ConfigFileRequest{Name: name, Value: fmt.Sprintf("%s-%d", name, rng.IntN(100)), Unencrypted: rng.IntN(2) == 0}
				if name == fioctlFile {
					f.Value = fioctl[rng.IntN(len(fioctl))]
				}
				if rng.IntN(3) == 0 {
					f.OnChanged = []string{"/usr/bin/reload"}
				}
				r.Files = append(r.Files, f)
			}
			return r
		}
		for step := range 150 {
			switch op := rng.IntN(10); {
			case op < 2:
				c.adminPut("/v1/config", randomFiles())
			case op < 4:
				c.adminPut("/v1/config/groups/"+groups[1+rng.IntN(2)], randomFiles())
			case op < 6:
				c.adminPut("/v1/config/devices/"+c.uuids[rng.IntN(len(c.uuids))], randomFiles())
			case op < 8:
				c.adminPut("/v1/devices/"+c.uuids[rng.IntN(len(c.uuids))]+"/group", GroupRequest{Group: groups[rng.IntN(len(groups))]})
			case op < 9:
				c.clock.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
			default:
				c.reopen()
			}
			for dev := range c.uuids {
				var ims string
				if rng.IntN(2) == 0 {
					ims = c.clock.Now().Add(time.Duration(rng.IntN(5)-3) * time.Second).UTC().Format(http.TimeFormat)
				}
				got := c.get(dev, ims)
				v, _ := c.g.devices.Load(c.uuids[dev])
				want, err := plainConfig(c.g.store, v.(*deviceEntry).snapshot(), ims)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("seed %d step %d (restarts %d) device %d: %+v, want %+v", seed, step, c.restart, dev, got, want)
				}
			}
		}
	}
}

// TestConfigWritesDuringCheckIns: devices reading their configuration all
// the while cannot leave an older one in the gateway's memory: after each
// write returns, the next check-in reads it.
func TestConfigWritesDuringCheckIns(t *testing.T) {
	c := newConfigRig(t, 4)
	for dev := range 3 {
		c.adminPut("/v1/devices/"+c.uuids[dev]+"/group", GroupRequest{Group: "fleet"})
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	for dev := 1; dev < len(c.uuids); dev++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
					c.get(dev, "")
				}
			}
		}()
	}
	var factory, group string
	for i := range 100 {
		value := fmt.Sprint(i)
		if i%2 == 0 {
			c.adminPut("/v1/config", files("a", value))
			factory = value
		} else {
			c.adminPut("/v1/config/groups/fleet", files("b", value))
			group = value
		}
		want := `{"a":{"Value":"` + factory + `","Unencrypted":true}}`
		if group != "" {
			want = `{"a":{"Value":"` + factory + `","Unencrypted":true},"b":{"Value":"` + group + `","Unencrypted":true}}`
		}
		if got := c.get(0, ""); got.body != want {
			close(stop)
			t.Fatalf("write %d: %s, want %s", i, got.body, want)
		}
	}
	close(stop)
	for dev := 1; dev < len(c.uuids); dev++ {
		<-done
	}
}
