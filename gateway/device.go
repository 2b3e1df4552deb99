package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/gateway/store"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// deviceEntry is a device's record as the gateway holds it between
// requests. Its mutex serialises the device's requests that write (events,
// system info), so a device's records are written in the order it sent them.
type deviceEntry struct {
	mu   sync.Mutex
	d    store.Device
	spki []byte // the certificate's SubjectPublicKeyInfo, compared per request
	// dirty: LastSeen, Tag or Target changed since the record was stored.
	dirty bool
	// sysInfo holds the SHA-256 of the system info last stored per kind,
	// so an unchanged PUT /system_info* costs no write.
	sysInfo map[store.SystemInfoKind][32]byte
}

// requestError is an HTTP status with a short reason.
type requestError struct {
	status int
	reason string
}

// identify finds the device behind a request from its verified client
// certificate, creating its record on first contact (foundries.md §3: the
// certificate's CN is the device UUID, businessCategory=production marks a
// production device). It records the request's last-seen time and the
// x-ats-tags and x-ats-target it reports: a header present but empty sets
// the value to empty, a missing header leaves it.
func (g *Gateway) identify(r *http.Request, now time.Time) (*deviceEntry, *requestError) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, &requestError{http.StatusUnauthorized, "client certificate required"}
	}
	cert := r.TLS.PeerCertificates[0]
	id, err := pki.IdentityOf(cert)
	if err != nil || id.Admin {
		return nil, &requestError{http.StatusForbidden, "certificate does not name a device"}
	}
	e, rerr := g.device(id.UUID, id.Production, cert.RawSubjectPublicKeyInfo, now)
	if rerr != nil {
		return nil, rerr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.d.Deleted {
		return nil, &requestError{http.StatusForbidden, "device deleted"}
	}
	if !e.keyMatches(cert.RawSubjectPublicKeyInfo) {
		return nil, &requestError{http.StatusForbidden, "device public key changed"}
	}
	e.d.LastSeen = now
	e.dirty = true
	if v, ok := r.Header["X-Ats-Tags"]; ok {
		e.d.Tag = firstTag(v)
	}
	if v, ok := r.Header["X-Ats-Target"]; ok && len(v) > 0 && len(v[0]) <= 128 {
		e.d.Target = v[0]
	}
	return e, nil
}

// firstTag reads x-ats-tags: aktualizr-lite sends a comma-separated list,
// MCUs a single tag; a device follows exactly one.
func firstTag(v []string) string {
	if len(v) == 0 {
		return ""
	}
	t, _, _ := strings.Cut(v[0], ",")
	t = strings.TrimSpace(t)
	if len(t) > 64 {
		return ""
	}
	return t
}

// device returns the cached entry for uuid, loading it from the store or
// creating the device.
func (g *Gateway) device(uuid string, production bool, spki []byte, now time.Time) (*deviceEntry, *requestError) {
	if v, ok := g.devices.Load(uuid); ok {
		return v.(*deviceEntry), nil
	}
	d, ok, err := g.store.Device(uuid)
	if err != nil {
		g.log.Error("loading device", "uuid", uuid, "err", err)
		return nil, &requestError{http.StatusInternalServerError, "store unavailable"}
	}
	e := &deviceEntry{d: d, sysInfo: map[store.SystemInfoKind][32]byte{}}
	if !ok {
		sum := spkiSum(spki)
		e.d = store.Device{UUID: uuid, Production: production, PubKeySHA256: sum, CreatedAt: now, LastSeen: now}
		e.spki = spki
		b := g.store.NewBatch()
		b.PutDevice(e.d)
		err := b.Commit(false)
		b.Close()
		if err != nil {
			g.log.Error("creating device", "uuid", uuid, "err", err)
			return nil, &requestError{http.StatusInternalServerError, "store unavailable"}
		}
		g.log.Info("device created", "uuid", uuid, "production", production)
	}
	actual, _ := g.devices.LoadOrStore(uuid, e)
	return actual.(*deviceEntry), nil
}

// keyMatches reports whether spki is the device's public key: the bytes
// last matched, or else the stored hash (after a restart).
func (e *deviceEntry) keyMatches(spki []byte) bool {
	if bytes.Equal(e.spki, spki) {
		return true
	}
	if spkiSum(spki) != e.d.PubKeySHA256 {
		return false
	}
	e.spki = bytes.Clone(spki)
	return true
}

func spkiSum(spki []byte) string {
	s := sha256.Sum256(spki)
	return hex.EncodeToString(s[:])
}

// flushDevices writes the devices whose last-seen time, tag or target
// changed. These writes are not synced: a crash loses at most the last
// second of last-seen times, never an acknowledged event.
func (g *Gateway) flushDevices() error {
	b := g.store.NewBatch()
	defer b.Close()
	n := 0
	g.devices.Range(func(_, v any) bool {
		e := v.(*deviceEntry)
		e.mu.Lock()
		if e.dirty {
			b.PutDevice(e.d)
			e.dirty = false
			n++
		}
		e.mu.Unlock()
		return true
	})
	if n == 0 {
		return nil
	}
	return b.Commit(false)
}

// snapshot returns a copy of the device record.
func (e *deviceEntry) snapshot() store.Device {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.d
}
