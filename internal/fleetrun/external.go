package fleetrun

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// ExternalGateway is a device gateway a live run does not start: one
// served by `fleetsim gateway serve`, or another with the same device and
// admin APIs. The run manufactures its devices with certificates of the
// factory CA the gateway trusts, and publishes the scenario's images and
// waves through the gateway's admin API, as an operator would.
type ExternalGateway struct {
	// URL is the device API, https://host:port (HTTP/3 on the UDP port of
	// the same number).
	URL *url.URL
	// RootCAs verify the gateway's server certificates, of the device API
	// and the admin API.
	RootCAs *x509.CertPool
	// CA is the factory CA whose device certificates the gateway accepts;
	// it issues one to every device of the run.
	CA *pki.CA
	// AdminURL is the admin API, https://host:port; AdminClient carries
	// the operator's client certificate, and AdminToken, when not empty,
	// is sent as the bearer token.
	AdminURL    *url.URL
	AdminClient *http.Client
	AdminToken  string
	// ImageKey signs the scenario's images, and the devices' bootloaders
	// trust it: a key the gateway accepts uploads from. nil: the run's own
	// key, which only a gateway that accepts unsigned images takes.
	ImageKey crypto.Signer
}

func (g *ExternalGateway) check() error {
	for _, u := range []struct {
		name string
		url  *url.URL
	}{{"the gateway's URL", g.URL}, {"the admin API's URL", g.AdminURL}} {
		if u.url == nil || u.url.Scheme != "https" || u.url.Host == "" || (u.url.Path != "" && u.url.Path != "/") {
			return fmt.Errorf("%s: want https://host:port", u.name)
		}
	}
	if g.CA == nil || g.AdminClient == nil {
		return errors.New("an external gateway needs the factory CA and an admin client")
	}
	return nil
}

// remoteAdmin passes the run's admin calls on to an external gateway's
// admin API, with the operator's credentials in place of the embedded
// gateway's token.
type remoteAdmin struct {
	base   *url.URL
	client *http.Client
	token  string
}

// maxAdminAnswer bounds what the run reads of an admin answer: status and
// target lists of a large gateway fit with room to spare.
const maxAdminAnswer = 64 << 20

func (a *remoteAdmin) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	status, body, err := a.call(r.Context(), r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadGateway)
		return
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(body)
}

// call sends one request to the admin API and reads its answer; the error
// is a request that got no answer.
func (a *remoteAdmin) call(ctx context.Context, method, uri, contentType string, body io.Reader) (int, []byte, error) {
	ref, err := url.Parse(uri)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base.ResolveReference(ref).String(), body)
	if err != nil {
		return 0, nil, err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		// The URL is said once, not again by net/http.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("the admin API at %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return 0, nil, fmt.Errorf("the admin API at %s: %w", a.base, err)
	}
	return resp.StatusCode, data, nil
}

// useExternal points the world at an external gateway: its factory CA, the
// image key, its admin API; then checks that the gateway answers, accepts
// the factory's devices, and holds none of the scenario's versions yet.
func (w *world) useExternal(g *ExternalGateway) error {
	w.ca = g.CA
	if g.ImageKey != nil {
		w.imageKey = g.ImageKey
	}
	admin := &remoteAdmin{base: g.AdminURL, client: g.AdminClient, token: g.AdminToken}
	w.admin = admin
	l := w.live
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.served = make(chan error, 1)
	l.served <- nil // nothing of ours serves it
	l.host = &live.Host{Gateway: g.URL, Proto: l.opts.Proto, RootCAs: g.RootCAs, RequestTimeout: 30 * time.Second}
	var err error
	if l.opts.Proto != live.HTTP3 {
		err = w.reachDevicePort(g)
	}
	if err == nil {
		err = w.checkVersionsFree(admin)
	}
	if err != nil {
		l.cancel()
	}
	return err
}

// reachDevicePort makes a TLS handshake with the device API as a device of
// the factory would, so that a wrong address, a server certificate the
// run cannot verify or a gateway that refuses the factory's certificates
// stops the run at once rather than leaving every device failing.
func (w *world) reachDevicePort(g *ExternalGateway) error {
	cert, err := w.ca.IssueDevice(pki.DeviceSpec{UUID: "00000000-0000-4000-8000-000000000000"}, time.Now().Add(-time.Hour), w.rand("probe", 0))
	if err != nil {
		return err
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{
		RootCAs: g.RootCAs, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", g.URL.Host)
	if err != nil {
		return fmt.Errorf("the gateway at %s: %w", g.URL, err)
	}
	defer c.Close()
	// TLS 1.3 servers judge the client's certificate after the client's
	// handshake is done: their refusal arrives as an alert. A server that
	// keeps quiet, waiting for a request, has accepted it.
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return fmt.Errorf("the gateway at %s refuses a device certificate of factory %s: %w", g.URL, w.ca.Factory, err)
		}
	}
	return nil
}

// checkVersionsFree refuses a gateway that already has a target of one of
// the scenario's versions: an upload of the same name is refused, and the
// devices would be updated with another run's image.
func (w *world) checkVersionsFree(admin *remoteAdmin) error {
	status, body, err := admin.call(context.Background(), "GET", "/v1/targets", "", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("the admin API at %s: GET /v1/targets answered %d: %.200s", admin.base, status, strings.Join(strings.Fields(string(body)), " "))
	}
	var targets []gateway.TargetInfo
	if err := json.Unmarshal(body, &targets); err != nil {
		return fmt.Errorf("the admin API at %s: GET /v1/targets: %w", admin.base, err)
	}
	for _, t := range targets {
		for _, c := range w.s.Fleet {
			b, err := devicemodel.LookupBoard(c.Board)
			if err != nil {
				return err
			}
			for _, v := range w.s.Rollout.Versions {
				if slices.Contains(t.HardwareIDs, b.HardwareID) && t.Version == fmt.Sprint(v) {
					return fmt.Errorf("the gateway already has target %s (from an earlier run?): a run publishes its versions itself; use a gateway that has none of rollout.versions (%s), or other versions",
						t.Name, strings.Trim(fmt.Sprint(w.s.Rollout.Versions), "[]"))
				}
			}
		}
	}
	return nil
}
