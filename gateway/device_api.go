package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/gateway/firmware"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/gateway/store"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
)

// DeviceHandler serves the device API, compatible with the Foundries device
// gateway as aktualizr-nano uses it (foundries.md §1.4-1.9, §3, §6). Every
// request must carry a verified device certificate (r.TLS): the TLS
// listeners verify it against the factory CA, and in virtual mode the
// simulator attaches the device's certificate to the request.
func (g *Gateway) DeviceHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repo/{name}", g.deviceRoute(g.getRepo))
	mux.HandleFunc("GET /config", g.deviceRoute(g.getConfig))
	mux.HandleFunc("PUT /system_info", g.deviceRoute(g.putSystemInfo(store.SystemInfoHardware, parseSystemInfo)))
	mux.HandleFunc("PUT /system_info/network", g.deviceRoute(g.putSystemInfo(store.SystemInfoNetwork, func(b []byte) error {
		_, err := parseNetwork(b)
		return err
	})))
	mux.HandleFunc("PUT /system_info/config", g.deviceRoute(g.putSystemInfo(store.SystemInfoConfig, parseConfigText)))
	mux.HandleFunc("POST /events", g.deviceRoute(g.postEvents))
	mux.HandleFunc("GET /device", g.deviceRoute(g.getDevice))
	mux.HandleFunc("GET /mcu/files/{h0}/{file}", g.deviceRoute(g.getFirmware))
	return mux
}

type deviceHandlerFunc func(w http.ResponseWriter, r *http.Request, e *deviceEntry, now time.Time)

func (g *Gateway) deviceRoute(h deviceHandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		now := g.opts.Clock.Now()
		e, rerr := g.identify(r, now)
		if rerr != nil {
			http.Error(w, rerr.reason, rerr.status)
			return
		}
		h(w, r, e, now)
	}
}

// readBody reads a bounded request body, answering 413 or 400 itself when
// it cannot.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	data, err := io.ReadAll(r.Body)
	if !bodyRead(w, err) {
		return nil, false
	}
	return data, true
}

// bodyRead answers a request whose body could not be read (err not nil)
// with 413 or 400, and reports whether it was read.
func bodyRead(w http.ResponseWriter, err error) bool {
	if err == nil {
		return true
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		http.Error(w, "body larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes", http.StatusRequestEntityTooLarge)
		return false
	default:
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return false
	}
}

// bodyBuffers hold device request bodies while they are handled: every
// check-in sends three reports, which would otherwise each be read into
// new slices grown to size.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody bounds the buffers kept in bodyBuffers: aktualizr-nano's
// bodies are a few hundred bytes, and a rare large one is left to the
// collector.
const maxPooledBody = 16 << 10

// readDeviceBody reads a device request's body, at most MaxBodySize bytes,
// into a pooled buffer, answering 413 or 400 itself when it cannot. The
// caller gives the buffer back with putDeviceBody once it no longer uses
// its bytes.
func readDeviceBody(w http.ResponseWriter, r *http.Request) (*bytes.Buffer, bool) {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if !bodyRead(w, err) {
		putDeviceBody(buf)
		return nil, false
	}
	return buf, true
}

func putDeviceBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		bodyBuffers.Put(buf)
	}
}

// writeBadRequest answers a parser's error: 400 with its reason.
func writeBadRequest(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusBadRequest)
}

// getRepo serves TUF metadata: the production repository for production
// devices, the CI repository for test devices; the view of the device's tag,
// or of the wave a production device was rolled out to in that tag.
//
// Views count their versions apart, so when a device fetches the timestamp
// of another tag than before (its tag was changed through /config), the new
// view is first raised above every other one: the device's TUF client would
// otherwise refuse its lower versions as a rollback, for good.
func (g *Gateway) getRepo(w http.ResponseWriter, r *http.Request, e *deviceEntry, now time.Time) {
	d := e.snapshot()
	name := r.PathValue("name")
	repo, view := g.ci, d.Tag
	if d.Production {
		repo = g.prod
		if wave := g.rollout.ServedWave(d.UUID, d.Tag); wave != "" {
			view = tufrepo.WaveView(d.Tag, wave)
		}
	}
	switched := name == "timestamp.json" && d.Tag != "" && d.RepoTag != d.Tag
	if switched && d.RepoTag != "" {
		if _, err := repo.RaiseView(now, view); err != nil && !errors.Is(err, tufrepo.ErrNotFound) {
			g.log.Error("raising a view for a device that changed tags", "uuid", d.UUID, "view", view, "err", err)
			http.Error(w, "metadata unavailable", http.StatusInternalServerError)
			return
		}
	}
	f, err := repo.Fetch(view, name)
	if err != nil {
		if errors.Is(err, tufrepo.ErrNotFound) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		g.log.Error("fetching metadata", "uuid", d.UUID, "name", name, "err", err)
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	if switched && !g.setRepoTag(e, d.Tag) {
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	// One allocation for the three values, each its own slice.
	v := []string{"application/json", f.SHA256, strconv.Itoa(len(f.Data))}
	h := w.Header()
	h["Content-Type"] = v[0:1:1]
	h["X-Ats-Role-Checksum"] = v[1:2:2]
	h["Content-Length"] = v[2:3:3]
	w.Write(f.Data)
}

// setRepoTag records durably the tag whose view the device now follows, so
// that its next switch is noticed even after a restart.
func (g *Gateway) setRepoTag(e *deviceEntry, tag string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.d
	d.RepoTag = tag
	b := g.store.NewBatch()
	defer b.Close()
	b.PutDevice(d)
	if err := b.Commit(true); err != nil {
		g.log.Error("storing a device's tag", "uuid", d.UUID, "err", err)
		return false
	}
	e.d.RepoTag = tag
	return true
}

// getConfig serves the device's configuration files, merged factory, then
// group, then device: a file of a narrower scope replaces the same file of a
// wider one, but z-50-fioctl.toml is merged section by section. 204 when
// there is none, 304 when nothing changed since If-Modified-Since
// (one-second resolution, as HTTP dates have).
func (g *Gateway) getConfig(w http.ResponseWriter, r *http.Request, e *deviceEntry, now time.Time) {
	d := e.snapshot()
	ans, err := g.deviceConfig(d.Group, d.UUID)
	if err != nil {
		g.log.Error("reading config", "uuid", d.UUID, "group", d.Group, "err", err)
		http.Error(w, "config unavailable", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Date"] = []string{now.UTC().Format(http.TimeFormat)}
	if ans.body == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !ans.updated.After(t) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	h["Content-Type"] = []string{"application/json"}
	h["Last-Modified"] = []string{ans.lastModified}
	w.Write(ans.body)
}

// putSystemInfo stores what a device reports about itself. A report equal
// to the last one stored costs no write, nor a parse (the same bytes parsed
// when they were stored): devices send the same three reports on every
// check-in.
func (g *Gateway) putSystemInfo(kind store.SystemInfoKind, parse func([]byte) error) deviceHandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, e *deviceEntry, _ time.Time) {
		buf, ok := readDeviceBody(w, r)
		if !ok {
			return
		}
		defer putDeviceBody(buf)
		data := buf.Bytes()
		sum := sha256.Sum256(data)
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.storedSysInfo(kind, sum) {
			return
		}
		if err := parse(data); err != nil {
			writeBadRequest(w, err)
			return
		}
		e.setSysInfo(kind, sum)
		b := g.store.NewBatch()
		defer b.Close()
		b.PutSystemInfo(e.d.UUID, kind, data)
		if err := b.Commit(false); err != nil {
			e.forgetSysInfo(kind)
			g.log.Error("storing system info", "uuid", e.d.UUID, "err", err)
			http.Error(w, "store unavailable", http.StatusInternalServerError)
			return
		}
	}
}

// postEvents stores a device's events, deduplicated by event id, and feeds
// the new ones to the rollout controller. The answer comes after the events
// and the rollout state they changed are durable, so an acknowledged event
// survives a crash; a device that gets no answer sends the events again and
// the duplicates are dropped.
func (g *Gateway) postEvents(w http.ResponseWriter, r *http.Request, e *deviceEntry, now time.Time) {
	buf, ok := readDeviceBody(w, r)
	if !ok {
		return
	}
	events, err := parseEvents(buf.Bytes(), now) // copies what it keeps
	putDeviceBody(buf)
	if err != nil {
		writeBadRequest(w, err)
		return
	}
	ended, err := g.storeEvents(e, events, now)
	if err != nil {
		g.log.Error("storing events", "uuid", e.d.UUID, "err", err)
		http.Error(w, "store unavailable", http.StatusInternalServerError)
		return
	}
	if len(ended) > 0 {
		// A policy aborted a wave. Its TUF view is withdrawn under the lock
		// operator commands hold, which is taken before a device's lock,
		// never while holding one.
		g.adminMu.Lock()
		err := g.endWaves(now, ended)
		g.adminMu.Unlock()
		if err != nil {
			g.log.Error("ending waves", "err", err)
		}
	}
}

// storeEvents stores a device's new events and the rollout records they
// change in one durable commit, under the device's lock so its records are
// written in the order it sent them, and returns the waves that ended.
func (g *Gateway) storeEvents(e *deviceEntry, events []store.Event, now time.Time) ([]rollout.Wave, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	uuid := e.d.UUID
	b := g.store.NewBatch()
	defer b.Close()
	ch := g.takeUnsaved()
	for _, ev := range events {
		if b.PutEvent(uuid, ev) {
			ch = ch.Merge(g.rollout.OnEvent(now, uuid, rolloutEvent(ev)))
		}
	}
	persist(b, ch)
	if err := b.Commit(true); err != nil {
		g.keepUnsaved(ch)
		return nil, err
	}
	return ch.Ended, nil
}

// deviceInfo is GET /device: aktualizr-lite reads Name, factory, owner and
// repo_id.
type deviceInfo struct {
	UUID       string    `json:"uuid"`
	Name       string    `json:"Name"`
	Factory    string    `json:"factory"`
	Owner      string    `json:"owner"`
	RepoID     string    `json:"repo_id"`
	Production bool      `json:"production"`
	Tag        string    `json:"tag,omitempty"`
	Target     string    `json:"target,omitempty"`
	Group      string    `json:"group,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeen   time.Time `json:"last_seen"`
}

func (g *Gateway) getDevice(w http.ResponseWriter, _ *http.Request, e *deviceEntry, _ time.Time) {
	d := e.snapshot()
	writeJSON(w, http.StatusOK, deviceInfo{
		UUID: d.UUID, Name: d.UUID, Factory: g.opts.Factory, RepoID: g.opts.Factory,
		Production: d.Production, Tag: d.Tag, Target: d.Target, Group: d.Group,
		CreatedAt: d.CreatedAt, LastSeen: d.LastSeen,
	})
}

// getFirmware serves an image by hash with byte ranges (206, Content-Range;
// 416 out of range), read from the file as it is sent.
func (g *Gateway) getFirmware(w http.ResponseWriter, r *http.Request, _ *deviceEntry, _ time.Time) {
	sum, ok := firmware.SumFromPath(r.PathValue("h0"), r.PathValue("file"))
	if !ok {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	f, err := g.firmware.Open(sum)
	if err != nil {
		if errors.Is(err, firmware.ErrNotFound) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		g.log.Error("opening firmware", "sha256", sum, "err", err)
		http.Error(w, "firmware unavailable", http.StatusInternalServerError)
		return
	}
	w.Header()["Content-Type"] = []string{"application/octet-stream"}
	http.ServeContent(copyWriter{w}, r, "", time.Time{}, f)
}

// copyBuffers are the buffers copyWriter copies ranges through.
var copyBuffers = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyWriter gives a ResponseWriter a ReadFrom that copies through a pooled
// buffer. http.ServeContent copies a range with io.CopyN, which allocates a
// buffer per request unless the writer reads for itself; HTTP/1.1's writer
// does, HTTP/2's and HTTP/3's do not, and at thousands of ranges a second
// those buffers are most of the gateway's garbage.
type copyWriter struct{ http.ResponseWriter }

func (w copyWriter) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[32 << 10]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(writerOnly{w.ResponseWriter}, r, buf[:])
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w copyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writerOnly hides ReadFrom, so io.CopyBuffer uses the buffer it is given.
type writerOnly struct{ io.Writer }

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
