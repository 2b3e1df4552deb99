package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/gateway/store"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// TestIdentifyKnownDevice: a device the gateway holds is found by its
// certificate's CN without pki.IdentityOf, and every certificate that
// IdentityOf would name otherwise, or refuse, is still answered as it
// says: the same device for a CN in lower case, 403 for an operator's
// certificate carrying a device's UUID, another key, or a CN that is no
// UUID.
func TestIdentifyKnownDevice(t *testing.T) {
	c := newConfigRig(t, 2)
	held, _ := c.g.devices.Load(c.uuids[0])
	with := func(edit func(*x509.Certificate)) *x509.Certificate {
		cert := *c.certs[0]
		cert.Subject.OrganizationalUnit = append([]string(nil), cert.Subject.OrganizationalUnit...)
		edit(&cert)
		return &cert
	}
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate
		status int // 0: the held device
	}{
		{"the device", c.certs[0], 0},
		{"its CN in lower case", with(func(x *x509.Certificate) { x.Subject.CommonName = strings.ToLower(x.Subject.CommonName) }), 0},
		{"an operator's certificate with its UUID", with(func(x *x509.Certificate) {
			x.Subject.OrganizationalUnit = append(x.Subject.OrganizationalUnit, pki.AdminOU)
		}), http.StatusForbidden},
		{"another key", with(func(x *x509.Certificate) { x.RawSubjectPublicKeyInfo = c.certs[1].RawSubjectPublicKeyInfo }), http.StatusForbidden},
		{"a CN that is no UUID", with(func(x *x509.Certificate) { x.Subject.CommonName = "device-1" }), http.StatusForbidden},
		{"no certificate in the list", nil, http.StatusForbidden},
	} {
		req := httptest.NewRequest("GET", "https://gw/device", nil)
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert}}
		e, rerr := c.g.identify(req, c.clock.Now())
		switch {
		case tc.status == 0 && (rerr != nil || e != held.(*deviceEntry)):
			t.Errorf("%s: %v %+v, want the held device", tc.name, e, rerr)
		case tc.status != 0 && (rerr == nil || rerr.status != tc.status):
			t.Errorf("%s: %v %+v, want %d", tc.name, e, rerr, tc.status)
		}
	}
}

// TestRepeatedSystemInfo: a report equal to the stored one is answered
// without a parse or a write; any other is parsed, refused when invalid
// (leaving the stored one known), stored when valid; and after a restart
// the first report is stored again.
func TestRepeatedSystemInfo(t *testing.T) {
	c := newConfigRig(t, 1)
	put := func(body string, want int) {
		t.Helper()
		req := httptest.NewRequest("PUT", "https://gw/system_info/network", strings.NewReader(body))
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.certs[0]}}
		w := httptest.NewRecorder()
		c.dev.ServeHTTP(w, req)
		if w.Code != want {
			t.Fatalf("PUT %s = %d %s, want %d", body, w.Code, w.Body, want)
		}
	}
	stored := func(want string) {
		t.Helper()
		got, ok, err := c.g.store.SystemInfo(c.uuids[0], store.SystemInfoNetwork)
		if err != nil || !ok || string(got) != want {
			t.Fatalf("stored %q %v %v, want %q", got, ok, err, want)
		}
	}
	const a, b, bad = `{"mac":"00:11"}`, `{"mac":"00:22"}`, `{"mac":1}`
	put(a, 200)
	stored(a)
	put(bad, 400)
	put(a, 200)
	put(b, 200)
	stored(b)
	put(bad, 400)
	stored(b)
	// Written behind the gateway's back: an unchanged report is not
	// written again, a restart forgets what was stored.
	wb := c.g.store.NewBatch()
	wb.PutSystemInfo(c.uuids[0], store.SystemInfoNetwork, []byte(a))
	if err := wb.Commit(false); err != nil {
		t.Fatal(err)
	}
	wb.Close()
	put(b, 200)
	stored(a)
	c.reopen()
	put(b, 200)
	stored(b)
}
