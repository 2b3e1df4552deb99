package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"slices"
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
	// dirty: LastSeen, Tag or Target changed since the record was stored;
	// the entry is then on the gateway's dirty list.
	dirty bool
	// sysInfo holds the SHA-256 of the system info last stored, per kind
	// (sysInfoKinds order), so an unchanged PUT /system_info* costs no
	// write; sysInfoSet says which are known.
	sysInfo    [3][32]byte
	sysInfoSet [3]bool
}

// sysInfoKinds orders the system info kinds for deviceEntry.sysInfo.
var sysInfoKinds = [3]store.SystemInfoKind{store.SystemInfoHardware, store.SystemInfoNetwork, store.SystemInfoConfig}

// storedSysInfo reports whether sum is the stored report of kind. The
// caller holds e.mu.
func (e *deviceEntry) storedSysInfo(kind store.SystemInfoKind, sum [32]byte) bool {
	i := slices.Index(sysInfoKinds[:], kind)
	return e.sysInfoSet[i] && e.sysInfo[i] == sum
}

// setSysInfo records sum as the stored report of kind. The caller holds
// e.mu and stores the report; if storing fails it calls forgetSysInfo.
func (e *deviceEntry) setSysInfo(kind store.SystemInfoKind, sum [32]byte) {
	i := slices.Index(sysInfoKinds[:], kind)
	e.sysInfo[i], e.sysInfoSet[i] = sum, true
}

func (e *deviceEntry) forgetSysInfo(kind store.SystemInfoKind) {
	e.sysInfoSet[slices.Index(sysInfoKinds[:], kind)] = false
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
	e := g.known(cert)
	if e == nil {
		id, err := pki.IdentityOf(cert)
		if err != nil || id.Admin {
			return nil, &requestError{http.StatusForbidden, "certificate does not name a device"}
		}
		var rerr *requestError
		if e, rerr = g.device(id.UUID, id.Production, cert.RawSubjectPublicKeyInfo, now); rerr != nil {
			return nil, rerr
		}
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
	g.markDirty(e)
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

// known returns the entry of a device the gateway holds, found by its
// certificate's CN as it is, or nil. The entries are keyed by canonical
// UUIDs, and pki.IdentityOf gives a CN that is one as the device's UUID
// unchanged; so a hit is the entry identify would find through IdentityOf,
// which hashes the public key and copies the CN at every request. An
// operator's certificate, or none, is left to IdentityOf, which refuses it.
func (g *Gateway) known(cert *x509.Certificate) *deviceEntry {
	if cert == nil || slices.Contains(cert.Subject.OrganizationalUnit, pki.AdminOU) {
		return nil
	}
	if v, ok := g.devices.Load(cert.Subject.CommonName); ok {
		return v.(*deviceEntry)
	}
	return nil
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
	e := &deviceEntry{d: d}
	if !ok {
		sum := spkiSum(spki)
		e.d = store.Device{UUID: uuid, Production: production, PubKeySHA256: sum, CreatedAt: now, LastSeen: now}
		e.spki = spki
		// Synced: the record pins the device's public key (a later
		// certificate with another key for the UUID is refused).
		b := g.store.NewBatch()
		b.PutDevice(e.d)
		err := b.Commit(true)
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

// markDirty puts e on the list of records to write; the caller holds e.mu.
func (g *Gateway) markDirty(e *deviceEntry) {
	if e.dirty {
		return
	}
	e.dirty = true
	g.dirtyMu.Lock()
	g.dirty = append(g.dirty, e)
	g.dirtyMu.Unlock()
}

// flushDevices writes the devices whose last-seen time, tag or target
// changed. These writes are not synced: a crash loses at most the last
// second of last-seen times, never an acknowledged event. It costs what
// changed, not the size of the fleet.
func (g *Gateway) flushDevices() error {
	g.dirtyMu.Lock()
	list := g.dirty
	g.dirty = nil
	g.dirtyMu.Unlock()
	if len(list) == 0 {
		return nil
	}
	b := g.store.NewBatch()
	defer b.Close()
	for _, e := range list {
		e.mu.Lock()
		b.PutDevice(e.d)
		e.dirty = false
		e.mu.Unlock()
	}
	if err := b.Commit(false); err != nil {
		for _, e := range list {
			e.mu.Lock()
			g.markDirty(e)
			e.mu.Unlock()
		}
		return err
	}
	return nil
}

// snapshot returns a copy of the device record.
func (e *deviceEntry) snapshot() store.Device {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.d
}
