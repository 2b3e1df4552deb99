package gateway

import (
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway/firmware"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/gateway/store"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/fleetsim/fleetsim/internal/pki"
)

// AdminHandler serves the operator's API. It runs on its own listener;
// a request is let in by the bearer token (Authorization: Bearer <token>)
// or by a client certificate of the factory CA with OU=admin. An empty token
// accepts certificates only.
func (g *Gateway) AdminHandler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/firmware", g.postFirmware)
	mux.HandleFunc("GET /v1/targets", g.getTargets)
	mux.HandleFunc("POST /v1/tags", g.postTag)
	mux.HandleFunc("POST /v1/waves", g.postWave)
	mux.HandleFunc("GET /v1/waves", g.getWaves)
	mux.HandleFunc("GET /v1/waves/{name}", g.getWave)
	mux.HandleFunc("POST /v1/waves/{name}/rollout", g.postRollout)
	mux.HandleFunc("POST /v1/waves/{name}/complete", g.endWave(true))
	mux.HandleFunc("POST /v1/waves/{name}/cancel", g.endWave(false))
	mux.HandleFunc("POST /v1/keys/rotate", g.postKeysRotate)
	mux.HandleFunc("GET /v1/status", g.getStatus)
	mux.HandleFunc("GET /v1/devices", g.getDevices)
	mux.HandleFunc("GET /v1/devices/{uuid}", g.getDeviceAdmin)
	mux.HandleFunc("PUT /v1/devices/{uuid}/group", g.putDeviceGroup)
	mux.HandleFunc("DELETE /v1/devices/{uuid}", g.deleteDevice)
	mux.HandleFunc("PUT /v1/config", g.putConfig(func(*http.Request) (store.ConfigScope, bool) {
		return store.ConfigScope{Kind: store.ScopeFactory}, true
	}))
	mux.HandleFunc("PUT /v1/config/groups/{group}", g.putConfig(func(r *http.Request) (store.ConfigScope, bool) {
		n := r.PathValue("group")
		return store.ConfigScope{Kind: store.ScopeGroup, Name: n}, tufrepo.ValidTag(n)
	}))
	mux.HandleFunc("PUT /v1/config/devices/{uuid}", g.putConfig(func(r *http.Request) (store.ConfigScope, bool) {
		n, ok := pki.CanonicalUUID(r.PathValue("uuid"))
		return store.ConfigScope{Kind: store.ScopeDevice, Name: n}, ok
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !adminAllowed(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fleetsim-admin"`)
			http.Error(w, "admin token or admin certificate required", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func adminAllowed(r *http.Request, token string) bool {
	if token != "" {
		if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
			subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return true
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		id, err := pki.IdentityOf(r.TLS.PeerCertificates[0])
		return err == nil && id.Admin
	}
	return false
}

func readAdminBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
	return readBody(w, r)
}

// TargetInfo describes a target in admin answers.
type TargetInfo struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	HardwareIDs []string `json:"hardware_ids"`
	Tags        []string `json:"tags"`
	SHA256      string   `json:"sha256"`
	Length      int64    `json:"length"`
	Path        string   `json:"path"`
	// Warnings are conditions that will stop devices, such as a tag's
	// targets.json outgrowing aktualizr-nano's 16 KiB metadata buffer.
	Warnings []string `json:"warnings,omitempty"`
}

func targetInfo(t tufrepo.Target) TargetInfo {
	sum := t.SHA256Hex()
	return TargetInfo{Name: t.Name(), Version: t.Version, HardwareIDs: t.HardwareIDs, Tags: t.Tags, SHA256: sum, Length: t.Length, Path: firmware.Path(sum)}
}

// postFirmware takes a signed MCUboot image (the raw body) and creates the
// CI target <hwid>-v<build number> for the tags given (?hwid=&tags=a,b).
// The image is checked as MCUboot would before boot: structure, hash and a
// signature by one of the gateway's image keys. The target's version is the
// image's build number (ih_ver.iv_build_num), which aktualizr-nano compares
// with custom.version; ?version= may state it, and must then agree.
func (g *Gateway) postFirmware(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hwid, tags := q.Get("hwid"), splitList(q.Get("tags"))
	if !tufrepo.ValidTag(hwid) {
		http.Error(w, "hwid: missing or not valid", http.StatusBadRequest)
		return
	}
	if len(tags) == 0 {
		http.Error(w, "tags: give at least one tag", http.StatusBadRequest)
		return
	}
	// Checked before the image is read, and named in a bounded reason:
	// the repository's own refusal quotes the whole value.
	for _, t := range tags {
		if !tufrepo.ValidTag(t) {
			http.Error(w, fmt.Sprintf("tags: %.70q is not a valid tag", t), http.StatusBadRequest)
			return
		}
	}
	var hdr image.Header
	check := func(f io.ReaderAt, size int64) error {
		im, err := image.Parse(f, size)
		if err != nil {
			return badRequest("not an MCUboot image: %v", err)
		}
		if err := im.Verify(g.opts.ImageKeys); err != nil {
			return badRequest("image refused: %v", err)
		}
		hdr = im.Header
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.opts.MaxFirmwareSize)
	sum, n, err := g.firmware.Put(r.Body, g.opts.MaxFirmwareSize, check)
	var bre *BadRequestError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &bre):
		writeBadRequest(w, err)
		return
	case errors.As(err, &mbe), errors.Is(err, firmware.ErrTooLarge):
		http.Error(w, fmt.Sprintf("image larger than %d bytes", g.opts.MaxFirmwareSize), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		g.log.Error("storing firmware", "err", err)
		http.Error(w, "cannot store firmware", http.StatusInternalServerError)
		return
	}
	version := strconv.FormatUint(uint64(hdr.Version.Build), 10)
	if v := q.Get("version"); v != "" && v != version {
		http.Error(w, fmt.Sprintf("version %.20q does not match the image's build number %s", v, version), http.StatusBadRequest)
		return
	}
	t := tufrepo.Target{HardwareIDs: []string{hwid}, Version: version, Tags: tags, Length: n}
	hex.Decode(t.SHA256[:], []byte(sum)) // sum is the store's own lowercase hex
	g.adminMu.Lock()
	defer g.adminMu.Unlock()
	now := g.opts.Clock.Now()
	warnings, err := g.ci.AddTarget(now, t)
	if err != nil {
		g.writeRepoError(w, err)
		return
	}
	b := g.store.NewBatch()
	defer b.Close()
	b.PutFirmware(store.Firmware{SHA256: sum, Length: n, HWID: hwid, Version: hdr.Version.Build, UploadedAt: now, Target: t.Name()})
	if err := b.Commit(true); err != nil {
		g.log.Error("storing firmware record", "err", err)
	}
	g.log.Info("target created", "target", t.Name(), "sha256", sum, "length", n, "tags", tags)
	info := targetInfo(t)
	for _, wn := range warnings {
		g.log.Warn("repository warning", "warning", wn.String())
		info.Warnings = append(info.Warnings, wn.String())
	}
	writeJSON(w, http.StatusCreated, info)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// writeRepoError maps tufrepo's errors to statuses.
func (g *Gateway) writeRepoError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, tufrepo.ErrDuplicateTarget), errors.Is(err, tufrepo.ErrActiveWave):
		http.Error(w, err.Error(), http.StatusConflict)
	case errors.Is(err, tufrepo.ErrBadTarget):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, tufrepo.ErrNotFound), errors.Is(err, tufrepo.ErrUnknownWave), errors.Is(err, tufrepo.ErrUnknownTarget):
		http.Error(w, err.Error(), http.StatusNotFound)
	default:
		g.log.Error("repository", "err", err)
		http.Error(w, "repository error", http.StatusInternalServerError)
	}
}

func (g *Gateway) getTargets(w http.ResponseWriter, r *http.Request) {
	repo := g.ci
	switch r.URL.Query().Get("repo") {
	case "", "ci":
	case "prod":
		repo = g.prod
	default:
		http.Error(w, "repo: ci or prod", http.StatusBadRequest)
		return
	}
	out := []TargetInfo{}
	for _, t := range repo.Targets() {
		out = append(out, targetInfo(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) postTag(w http.ResponseWriter, r *http.Request) {
	data, ok := readAdminBody(w, r)
	if !ok {
		return
	}
	req, err := parseTagRequest(data)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	g.adminMu.Lock()
	defer g.adminMu.Unlock()
	now := g.opts.Clock.Now()
	for _, repo := range []*tufrepo.Repo{g.ci, g.prod} {
		if _, err := repo.AddTag(now, req.Tag); err != nil {
			g.writeRepoError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusCreated, req)
}

// postWave creates a wave like fioctl waves init: the CI targets of the
// version that carry the source tag are staged in the production
// repository for the tag; no device sees them until a rollout step.
func (g *Gateway) postWave(w http.ResponseWriter, r *http.Request) {
	data, ok := readAdminBody(w, r)
	if !ok {
		return
	}
	req, policy, err := parseWaveRequest(data)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	// Under the lock from here: an upload of the same version meanwhile
	// would otherwise be left out of the wave it was meant for.
	g.adminMu.Lock()
	defer g.adminMu.Unlock()
	version := strconv.FormatUint(uint64(req.Version), 10)
	var targets []tufrepo.Target
	var names []string
	for _, t := range g.ci.Targets() {
		if t.Version == version && slices.Contains(t.Tags, req.SourceTag) {
			targets = append(targets, t)
			names = append(names, t.Name())
		}
	}
	if len(targets) == 0 {
		http.Error(w, fmt.Sprintf("no CI target of version %s carries tag %s", version, req.SourceTag), http.StatusBadRequest)
		return
	}
	now := g.opts.Clock.Now()
	ch, err := g.rollout.CreateWave(now, rollout.WaveSpec{Name: req.Name, Tag: req.Tag, Version: req.Version, Targets: names, Policy: policy})
	if err != nil {
		writeRolloutError(w, err)
		return
	}
	// The record first: if the view cannot be opened, restore reopens it
	// from the record.
	if err := g.commitChanges(now, ch); err != nil {
		g.log.Error("storing wave", "wave", req.Name, "err", err)
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	if _, err := g.prod.OpenWave(now, req.Tag, req.Name, targets); err != nil {
		// Without its view the wave would be recorded active but serve
		// nothing: withdraw the record too, so both say the same.
		if ch, cerr := g.rollout.Cancel(now, req.Name); cerr == nil {
			if cerr := g.commitChanges(now, ch); cerr != nil {
				g.log.Error("withdrawing wave", "wave", req.Name, "err", cerr)
			}
		}
		g.writeRepoError(w, err)
		return
	}
	wave, _ := g.rollout.Wave(req.Name)
	g.log.Info("wave created", "wave", req.Name, "tag", req.Tag, "version", req.Version, "targets", names)
	writeJSON(w, http.StatusCreated, wave)
}

func writeRolloutError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, rollout.ErrUnknownWave):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, rollout.ErrWaveExists), errors.Is(err, rollout.ErrActiveWave), errors.Is(err, rollout.ErrWaveNotActive):
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

func (g *Gateway) getWaves(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, g.rollout.Waves())
}

func (g *Gateway) getWave(w http.ResponseWriter, r *http.Request) {
	rep, err := g.rollout.WaveStatus(r.PathValue("name"))
	if err != nil {
		writeRolloutError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// RolloutResponse answers a rollout step.
type RolloutResponse struct {
	DeviceNum   int      `json:"device_num"`
	DeviceUUIDs []string `json:"device_uuids"`
	DryRun      bool     `json:"dry_run,omitempty"`
}

// postRollout adds production devices following the wave's tag to the
// wave. Devices the gateway has never seen cannot be selected: a device
// exists from its first contact.
func (g *Gateway) postRollout(w http.ResponseWriter, r *http.Request) {
	data, ok := readAdminBody(w, r)
	if !ok {
		return
	}
	req, err := parseRolloutRequest(data)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	name := r.PathValue("name")
	wave, ok := g.rollout.Wave(name)
	if !ok {
		http.Error(w, "unknown wave "+name, http.StatusNotFound)
		return
	}
	g.adminMu.Lock()
	defer g.adminMu.Unlock()
	if err := g.flushDevices(); err != nil {
		g.log.Error("flushing devices", "err", err)
	}
	var candidates []rollout.Candidate
	err = g.store.Devices(func(d store.Device) bool {
		if d.Production && !d.Deleted && d.Tag == wave.Tag && (len(req.Groups) == 0 || slices.Contains(req.Groups, d.Group)) {
			candidates = append(candidates, rollout.Candidate{UUID: d.UUID, Group: d.Group, LastSeen: d.LastSeen})
		}
		return true
	})
	if err != nil {
		g.log.Error("listing devices", "err", err)
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	now := g.opts.Clock.Now()
	uuids, ch, err := g.rollout.Rollout(now, name, rollout.Selection{
		Groups: req.Groups, Limit: req.Limit, Percentage: req.Percentage, UUIDs: req.UUIDs, DryRun: req.DryRun,
	}, candidates)
	if err != nil {
		writeRolloutError(w, err)
		return
	}
	if err := g.commitChanges(now, ch); err != nil {
		g.log.Error("storing rollout", "wave", name, "err", err)
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	if uuids == nil {
		uuids = []string{}
	}
	g.log.Info("rollout", "wave", name, "devices", len(uuids), "dry_run", req.DryRun)
	writeJSON(w, http.StatusOK, RolloutResponse{DeviceNum: len(uuids), DeviceUUIDs: uuids, DryRun: req.DryRun})
}

// endWave completes or cancels a wave: the record first, then the TUF view
// (promoted to the tag's production targets, or withdrawn).
func (g *Gateway) endWave(complete bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		g.adminMu.Lock()
		defer g.adminMu.Unlock()
		now := g.opts.Clock.Now()
		var ch rollout.Changes
		var err error
		if complete {
			ch, err = g.rollout.Complete(now, name)
		} else {
			ch, err = g.rollout.Cancel(now, name)
		}
		if err != nil {
			writeRolloutError(w, err)
			return
		}
		if err := g.commitChanges(now, ch); err != nil {
			g.log.Error("ending wave", "wave", name, "err", err)
			if errors.Is(err, errViewsBehind) {
				http.Error(w, "wave recorded; its TUF view is updated at the next tick", http.StatusInternalServerError)
			} else {
				http.Error(w, "store unavailable", http.StatusInternalServerError)
			}
			return
		}
		wave, _ := g.rollout.Wave(name)
		writeJSON(w, http.StatusOK, wave)
	}
}

// StatusResponse is GET /v1/status: per version and per wave counts.
type StatusResponse struct {
	Time     time.Time               `json:"time"`
	Devices  int                     `json:"devices"`
	Versions []rollout.VersionReport `json:"versions"`
	Waves    []rollout.WaveReport    `json:"waves"`
}

func (g *Gateway) getStatus(w http.ResponseWriter, _ *http.Request) {
	resp := StatusResponse{Time: g.opts.Clock.Now(), Versions: g.rollout.VersionStatus(), Waves: []rollout.WaveReport{}}
	for _, wv := range g.rollout.Waves() {
		if rep, err := g.rollout.WaveStatus(wv.Name); err == nil {
			resp.Waves = append(resp.Waves, rep)
		}
	}
	if err := g.store.Devices(func(store.Device) bool { resp.Devices++; return true }); err != nil {
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// getDevices lists devices in UUID order, ?limit= at most (default 1000).
func (g *Gateway) getDevices(w http.ResponseWriter, r *http.Request) {
	limit := 1000
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100000 {
			http.Error(w, "limit: 1..100000", http.StatusBadRequest)
			return
		}
		limit = n
	}
	g.adminMu.Lock()
	err := g.flushDevices()
	g.adminMu.Unlock()
	out := []store.Device{}
	if err == nil {
		err = g.store.Devices(func(d store.Device) bool { out = append(out, d); return len(out) < limit })
	}
	if err != nil {
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// DeviceReport is GET /v1/devices/{uuid}.
type DeviceReport struct {
	Device store.Device  `json:"device"`
	Events []store.Event `json:"events"`
}

func (g *Gateway) getDeviceAdmin(w http.ResponseWriter, r *http.Request) {
	d, ok := g.lookupDevice(w, r)
	if !ok {
		return
	}
	events, err := g.store.Events(d.UUID)
	if err != nil {
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	if events == nil {
		events = []store.Event{}
	}
	writeJSON(w, http.StatusOK, DeviceReport{Device: d, Events: events})
}

// lookupDevice finds the device of the {uuid} path element, answering 404
// itself.
func (g *Gateway) lookupDevice(w http.ResponseWriter, r *http.Request) (store.Device, bool) {
	e, ok := g.adminEntry(w, r)
	if !ok {
		return store.Device{}, false
	}
	return e.snapshot(), true
}

// adminEntry returns the cached entry of the device of the {uuid} path
// element (in any case, as certificates and config scopes take it), loading
// it from the store into the cache, so an operator's edit and the device's
// own requests change one record. It answers 404 or 500 itself.
func (g *Gateway) adminEntry(w http.ResponseWriter, r *http.Request) (*deviceEntry, bool) {
	uuid, ok := pki.CanonicalUUID(r.PathValue("uuid"))
	if !ok {
		http.Error(w, "unknown device", http.StatusNotFound)
		return nil, false
	}
	if v, ok := g.devices.Load(uuid); ok {
		return v.(*deviceEntry), true
	}
	d, ok, err := g.store.Device(uuid)
	if err != nil {
		g.log.Error("loading device", "uuid", uuid, "err", err)
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return nil, false
	}
	if !ok {
		http.Error(w, "unknown device", http.StatusNotFound)
		return nil, false
	}
	actual, _ := g.devices.LoadOrStore(uuid, &deviceEntry{d: d})
	return actual.(*deviceEntry), true
}

// editDevice changes a device's record durably. The edit is made to the
// cached entry under its lock and kept only once committed: a deny-listing
// cannot be undone by a flush of an older copy, and a failed commit leaves
// the gateway serving what the store holds.
func (g *Gateway) editDevice(w http.ResponseWriter, r *http.Request, edit func(*store.Device)) {
	e, ok := g.adminEntry(w, r)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.d
	edit(&d)
	b := g.store.NewBatch()
	defer b.Close()
	b.PutDevice(d)
	if err := b.Commit(true); err != nil {
		g.log.Error("editing device", "uuid", d.UUID, "err", err)
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	e.d = d
	writeJSON(w, http.StatusOK, d)
}

func (g *Gateway) putDeviceGroup(w http.ResponseWriter, r *http.Request) {
	data, ok := readAdminBody(w, r)
	if !ok {
		return
	}
	req, err := parseGroupRequest(data)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	g.editDevice(w, r, func(d *store.Device) { d.Group = req.Group })
}

// deleteDevice deny-lists a device: its certificate is refused from now on.
func (g *Gateway) deleteDevice(w http.ResponseWriter, r *http.Request) {
	g.editDevice(w, r, func(d *store.Device) { d.Deleted = true })
}

func (g *Gateway) putConfig(scopeOf func(*http.Request) (store.ConfigScope, bool)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scope, ok := scopeOf(r)
		if !ok {
			http.Error(w, "bad scope name", http.StatusBadRequest)
			return
		}
		data, ok := readAdminBody(w, r)
		if !ok {
			return
		}
		req, err := parseConfigRequest(data)
		if err != nil {
			writeBadRequest(w, err)
			return
		}
		files := make([]store.ConfigFile, len(req.Files))
		for i, f := range req.Files {
			files[i] = store.ConfigFile{Name: f.Name, Value: f.Value, Unencrypted: f.Unencrypted, OnChanged: f.OnChanged}
		}
		b := g.store.NewBatch()
		defer b.Close()
		if len(files) == 0 {
			b.DeleteConfig(scope)
		} else {
			b.PutConfig(scope, files, g.opts.Clock.Now())
		}
		if err := b.Commit(true); err != nil {
			http.Error(w, "store unavailable", http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, req)
	}
}
