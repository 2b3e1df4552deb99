package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// Scenario names a workload.
type Scenario string

const (
	// CheckIn is the idle check-in (foundries.md §1.4), as the update
	// agent makes it ((*agent.Agent).CheckIn): GET /config, PUT
	// /system_info, PUT /system_info/network, PUT /system_info/config,
	// then the TUF refresh with the device's metadata kept in its flash:
	// GET /repo/<N+1>.root.json (404: no new root), GET
	// /repo/timestamp.json, and snapshot.json and targets.json only when
	// the timestamp announces new ones. A device's first check-in also
	// fetches 1.root.json (trust on first use) and every role.
	CheckIn Scenario = "checkin"
	// Range is the firmware download (foundries.md §1.7): the image read in
	// consecutive ranges of Chunk bytes, each answered 206, starting again
	// at byte 0 after the last one.
	Range Scenario = "range"
)

// Proto is the HTTP version a device speaks.
type Proto string

const (
	// HTTP1 is HTTP/1.1 over TLS with keep-alive.
	HTTP1 Proto = "h1"
	// HTTP2 is HTTP/2 over TLS (ALPN h2).
	HTTP2 Proto = "h2"
	// HTTP3 is HTTP/3 over QUIC, on the UDP port of the same number.
	HTTP3 Proto = "h3"
)

// DefaultChunk is aktualizr-nano's range size: its 4096*4-byte receive
// buffer (foundries.md §1.7).
const DefaultChunk = 16384

// MaxChunk bounds the range length: each connection holds a buffer of one
// chunk.
const MaxChunk = 16 << 20

// Config describes one load test run.
type Config struct {
	// BaseURL is the server, "https://host:port"; request paths are
	// appended to it.
	BaseURL string
	// ServerName overrides the name the server certificate is checked
	// against (default: BaseURL's host).
	ServerName string
	// RootCAs verifies the server certificate.
	RootCAs *x509.CertPool

	Scenario Scenario
	Proto    Proto
	// Devices are the identities; connection i is Devices[i%len(Devices)].
	Devices []Device
	// Connections is the number of concurrent devices, each with its own
	// transport, connection and TLS session cache (and for CheckIn its own
	// agent and flash).
	Connections int
	// Warmup runs before the measured window and is not counted.
	Warmup time.Duration
	// Duration is the measured window.
	Duration time.Duration

	// Reconnect opens a new connection for every check-in, as the agent
	// (aktualizr-nano) does between polls; without it a device keeps one
	// connection open across its check-ins (CheckIn only).
	Reconnect bool
	// Resume lets a device resume its own earlier TLS session when it
	// reconnects; without it every connection is a full handshake, like an
	// MCU that keeps no session state.
	Resume bool
	// Tag is the devices' default tag (CheckIn): the agent sends it as
	// x-ats-tags until /config sets another ("" = agent.DefaultTag).
	Tag string
	// Target is the running target, "<hwid>-v<version>" (CheckIn): each
	// device runs build <version> of its firmware on hardware <hwid>, and
	// the agent sends it as x-ats-target.
	Target string

	// Path is the firmware file read by Range, "/mcu/files/xx/yyyy.bin".
	Path string
	// Size is the file's length (0: Image's length, else asked of the
	// server with a one-byte range).
	Size int64
	// Chunk is the range length (0: DefaultChunk).
	Chunk int64
	// Image, when set, is the file's expected content: every range is
	// compared with it byte for byte.
	Image []byte

	// OnWindow, when set, is called as the measured window opens, with
	// true, and after it has closed, with false (not at all when it never
	// opened), so that a caller can measure the server over the same span:
	// its CPU time, say. The first call is made on a goroutine of its own;
	// Run returns after the second.
	OnWindow func(open bool)
}

// Result is what one run measured over its window (warm-up excluded).
type Result struct {
	Scenario    Scenario `json:"scenario"`
	Proto       Proto    `json:"proto"`
	URL         string   `json:"url"`
	Connections int      `json:"connections"`
	Reconnect   bool     `json:"reconnect"`
	// Seconds is the measured window.
	Seconds float64 `json:"seconds"`
	// Requests counts requests answered as expected; Errors the others,
	// and the check-ins the agent failed although every answer had an
	// expected status (a TUF rejection, say).
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// Bytes counts response body bytes of the expected answers.
	Bytes     uint64  `json:"bytes"`
	ReqPerSec float64 `json:"req_per_sec"`
	// MBPerSec is body bytes per second in units of 10^6 bytes.
	MBPerSec float64 `json:"mb_per_sec"`
	// Latencies of the expected answers, from sending the request to
	// reading the last body byte, in milliseconds.
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// Statuses counts answers by "METHOD path-kind status", e.g.
	// "GET /config 204", errors included.
	Statuses map[string]uint64 `json:"statuses"`
	// ErrorKinds counts errors by kind, e.g. "status GET /config 500",
	// "transport", "content-range", "check-in tuf bad-signature".
	ErrorKinds map[string]uint64 `json:"error_kinds,omitempty"`
	// Handshakes counts TLS handshakes completed in the window, Resumed
	// those that resumed an earlier session of the same device.
	Handshakes uint64 `json:"handshakes"`
	Resumed    uint64 `json:"resumed"`
	// FirstError is the message of the first error seen, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
}

var (
	// ErrConfig reports an unusable Config.
	ErrConfig = errors.New("bad load test configuration")
	// ErrProbe reports that the firmware file's size could not be learnt
	// from the server.
	ErrProbe = errors.New("cannot learn the firmware size")
)

func (c *Config) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return bad("URL %q is not https://host:port", c.BaseURL)
	}
	switch c.Scenario {
	case CheckIn, Range:
	default:
		return bad("scenario %q is neither %s nor %s", c.Scenario, CheckIn, Range)
	}
	switch c.Proto {
	case HTTP1, HTTP2, HTTP3:
	default:
		return bad("protocol %q is not h1, h2 or h3", c.Proto)
	}
	if len(c.Devices) == 0 {
		return bad("no devices")
	}
	if c.Connections <= 0 {
		return bad("connections must be positive")
	}
	if c.Duration <= 0 || c.Warmup < 0 {
		return bad("duration must be positive and warm-up not negative")
	}
	if c.Scenario == CheckIn {
		if _, _, err := ParseTarget(c.Target); err != nil {
			return err
		}
	}
	if c.Scenario == Range {
		if !strings.HasPrefix(c.Path, "/") {
			return bad("range needs the file's path, starting with '/'")
		}
		if c.Reconnect {
			return bad("reconnect applies to the check-in only: a download keeps its connection")
		}
		if c.Chunk < 0 || c.Size < 0 {
			return bad("chunk and size must not be negative")
		}
		if c.Chunk > MaxChunk {
			return bad("chunk %d is larger than %d bytes", c.Chunk, MaxChunk)
		}
		if c.Image != nil && c.Size != 0 && c.Size != int64(len(c.Image)) {
			return bad("size %d differs from the image's %d bytes", c.Size, len(c.Image))
		}
	}
	return nil
}

// Run runs the load test until the warm-up and the measured window have
// passed or ctx ends, and returns what was measured. The check-in's devices
// boot first (their agents start, 0.4 s), before the warm-up. Run returns
// an error only when the run cannot start (ErrConfig, ErrProbe, a client or
// an agent that cannot be built); failed requests are counted in the
// Result instead.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.Scenario == Range {
		if cfg.Chunk == 0 {
			cfg.Chunk = DefaultChunk
		}
		if cfg.Size == 0 && cfg.Image != nil {
			cfg.Size = int64(len(cfg.Image))
		}
		if cfg.Size == 0 {
			size, err := ProbeSize(ctx, &cfg)
			if err != nil {
				return Result{}, err
			}
			cfg.Size = size
		}
	}

	workers := make([]*worker, cfg.Connections)
	for i := range workers {
		w, err := newWorker(&cfg, cfg.Devices[i%len(cfg.Devices)], i)
		if err != nil {
			for _, w := range workers[:i] {
				w.close()
			}
			return Result{}, err
		}
		workers[i] = w
	}
	if err := boot(ctx, workers); err != nil {
		for _, w := range workers {
			w.close()
		}
		return Result{}, err
	}

	start := time.Now()
	from, end := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	closeWindow := func() {}
	if cfg.OnWindow != nil {
		opened := make(chan struct{})
		t := time.AfterFunc(time.Until(from), func() {
			cfg.OnWindow(true)
			close(opened)
		})
		closeWindow = func() {
			if !t.Stop() {
				<-opened
				cfg.OnWindow(false)
			}
		}
	}
	var wg sync.WaitGroup
	for i, w := range workers {
		w.from, w.end = from, end
		w.offset = stagger(i, len(workers), cfg.Size, cfg.Chunk)
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(runCtx)
		}()
	}
	wg.Wait()
	closeWindow()
	for _, w := range workers {
		w.close()
	}
	// A run cut short by its caller is measured over the time it had.
	seconds := cfg.Duration.Seconds()
	if now := time.Now(); now.Before(end) {
		seconds = max(now.Sub(from).Seconds(), 0)
	}
	return merge(&cfg, workers, seconds), nil
}

// boot starts every device's agent, all at once: aknano_init pauses 0.4 s,
// which is boot time, not part of the run.
func boot(ctx context.Context, workers []*worker) error {
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		if w.dev == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.dev.boot(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the others are most likely the same
		}
	}
	return nil
}

// stagger spreads the devices' starting offsets over the file, so that the
// server is not asked for the same range by everybody at once.
func stagger(i, n int, size, chunk int64) int64 {
	if size <= 0 || chunk <= 0 {
		return 0
	}
	chunks := (size + chunk - 1) / chunk
	return (int64(i) * chunks / int64(n)) * chunk
}

func merge(cfg *Config, workers []*worker, seconds float64) Result {
	r := Result{
		Scenario: cfg.Scenario, Proto: cfg.Proto, URL: cfg.BaseURL,
		Connections: cfg.Connections, Reconnect: cfg.Reconnect, Seconds: seconds,
		Statuses: map[string]uint64{},
	}
	var h Histogram
	var firstAt time.Time
	for _, w := range workers {
		h.Merge(&w.hist)
		r.Requests += w.ok
		r.Errors += w.errs
		r.Bytes += w.bytes
		r.Handshakes += w.handshakes.Load()
		r.Resumed += w.resumed.Load()
		for k, v := range w.statuses {
			r.Statuses[fmt.Sprintf("%s %s %d", k.method, k.path, k.code)] += v
		}
		for k, v := range w.errKinds {
			if r.ErrorKinds == nil {
				r.ErrorKinds = map[string]uint64{}
			}
			r.ErrorKinds[k] += v
		}
		if w.firstErr != "" && (r.FirstError == "" || w.firstErrAt.Before(firstAt)) {
			r.FirstError, firstAt = w.firstErr, w.firstErrAt
		}
	}
	if seconds > 0 {
		r.ReqPerSec = float64(r.Requests) / seconds
		r.MBPerSec = float64(r.Bytes) / seconds / 1e6
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs = ms(h.Quantile(0.50)), ms(h.Quantile(0.90)), ms(h.Quantile(0.99)), ms(h.Max())
	return r
}

// String is the one-line human summary of a result, with the answers by
// status on a second line.
func (r Result) String() string {
	mode := "keep-alive"
	if r.Reconnect {
		mode = "reconnect"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %d conns %s: %d req in %.1fs = %.1f req/s, %.2f MB/s, latency p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms, errors %d\n",
		r.Scenario, r.Proto, r.Connections, mode, r.Requests, r.Seconds, r.ReqPerSec, r.MBPerSec,
		r.P50Ms, r.P90Ms, r.P99Ms, r.MaxMs, r.Errors)
	fmt.Fprintf(&b, "  TLS handshakes %d (%d resumed)\n", r.Handshakes, r.Resumed)
	b.WriteString("  statuses: ")
	b.WriteString(sortedCounts(r.Statuses))
	if len(r.ErrorKinds) > 0 {
		b.WriteString("\n  errors: ")
		b.WriteString(sortedCounts(r.ErrorKinds))
		fmt.Fprintf(&b, "\n  first error: %s", r.FirstError)
	}
	return b.String()
}

func sortedCounts(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// newClient builds one device's HTTP client: its own transport (so its own
// connection) and its own TLS session cache, because a resumed session
// carries the identity it was made with (godeps.md §3): a shared cache
// would let one device speak as another.
//
// onHandshake, when not nil, is called after every verified handshake, full
// or resumed, over TCP or QUIC alike.
func newClient(cfg *Config, dev Device, onHandshake func(tls.ConnectionState)) (*http.Client, func(), error) {
	tlsCfg := &tls.Config{
		Certificates: []tls.Certificate{dev.Cert},
		RootCAs:      cfg.RootCAs,
		ServerName:   cfg.ServerName,
		MinVersion:   tls.VersionTLS12,
	}
	if onHandshake != nil {
		tlsCfg.VerifyConnection = func(cs tls.ConnectionState) error {
			onHandshake(cs)
			return nil
		}
	}
	if cfg.Resume {
		tlsCfg.ClientSessionCache = tls.NewLRUClientSessionCache(2)
	}
	switch cfg.Proto {
	case HTTP3:
		tr := &http3.Transport{TLSClientConfig: tlsCfg, DisableCompression: true}
		return &http.Client{Transport: tr}, func() { _ = tr.Close() }, nil
	case HTTP1, HTTP2:
		var protos http.Protocols
		protos.SetHTTP1(cfg.Proto == HTTP1)
		protos.SetHTTP2(cfg.Proto == HTTP2)
		tr := &http.Transport{
			TLSClientConfig:     tlsCfg,
			Protocols:           &protos,
			ForceAttemptHTTP2:   cfg.Proto == HTTP2,
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
			// aktualizr-nano asks for no compression; neither do we, so
			// both servers send the same bytes.
			DisableCompression: true,
		}
		return &http.Client{Transport: tr}, tr.CloseIdleConnections, nil
	}
	return nil, nil, fmt.Errorf("%w: protocol %q", ErrConfig, cfg.Proto)
}

// ProbeSize asks the server for the first byte of cfg.Path and returns the
// complete length its Content-Range announces. Errors wrap ErrProbe.
func ProbeSize(ctx context.Context, cfg *Config) (int64, error) {
	client, closeFn, err := newClient(cfg, cfg.Devices[0], nil)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.BaseURL+cfg.Path, nil)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrProbe, err)
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrProbe, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("%w: GET %s with Range bytes=0-0 answered %d, want 206", ErrProbe, cfg.Path, resp.StatusCode)
	}
	cr, err := ParseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrProbe, err)
	}
	if cr.Complete <= 0 {
		return 0, fmt.Errorf("%w: the server does not say how long %s is", ErrProbe, cfg.Path)
	}
	return cr.Complete, nil
}

// statusKey counts answers per request kind ("GET /config", "GET range")
// and status without formatting a string per request: the client shares
// the CPU with the server it measures.
type statusKey struct {
	method, path string
	code         int
}

// worker is one virtual device: its own client (Range) or agent
// (CheckIn), and its share of the counts, merged when the run ends so that
// workers never contend.
type worker struct {
	cfg     *Config
	client  *http.Client
	closeFn func()
	wantMaj int
	dev     *checkInDevice

	// Per check-in: whether a request was counted as an error, and
	// whether one got no answer.
	sawErr, sawTransportErr bool

	from, end time.Time
	offset    int64
	buf       []byte

	// Handshakes happen on the transport's goroutines.
	handshakes, resumed atomic.Uint64

	hist       Histogram
	ok, errs   uint64
	bytes      uint64
	statuses   map[statusKey]uint64
	errKinds   map[string]uint64
	firstErr   string
	firstErrAt time.Time
}

// newWorker builds virtual device number i with identity dev.
func newWorker(cfg *Config, dev Device, i int) (*worker, error) {
	w := &worker{cfg: cfg, statuses: map[statusKey]uint64{}, errKinds: map[string]uint64{}}
	if cfg.Scenario == CheckIn {
		d, err := newCheckInDevice(cfg, w, dev, i)
		if err != nil {
			return nil, err
		}
		w.dev = d
		return w, nil
	}
	var err error
	w.client, w.closeFn, err = newClient(cfg, dev, w.handshake)
	if err != nil {
		return nil, err
	}
	w.wantMaj = map[Proto]int{HTTP1: 1, HTTP2: 2, HTTP3: 3}[cfg.Proto]
	w.buf = make([]byte, cfg.Chunk+1)
	return w, nil
}

func (w *worker) close() {
	if w.dev != nil {
		w.dev.net.close()
		return
	}
	w.closeFn()
}

func (w *worker) handshake(cs tls.ConnectionState) {
	if !w.counts(time.Now()) {
		return
	}
	w.handshakes.Add(1)
	if cs.DidResume {
		w.resumed.Add(1)
	}
}

func (w *worker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		switch w.cfg.Scenario {
		case CheckIn:
			w.checkIn(ctx)
		case Range:
			w.rangeRead(ctx)
		}
	}
}

// rangeRead asks for the next chunk of the file and checks that exactly
// the bytes asked for came back (foundries.md §1.7: 206 with Content-Range
// and Content-Length). Like aktualizr-nano, which has no resume, a device
// starts again at byte 0 after any failure.
func (w *worker) rangeRead(ctx context.Context) {
	cfg := w.cfg
	first := w.offset
	last := min(first+cfg.Chunk, cfg.Size) - 1
	want := last - first + 1
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.BaseURL+cfg.Path, nil)
	if err != nil {
		w.fail(time.Now(), "request", err.Error())
		return
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", first, last))
	t0 := time.Now()
	resp, err := w.client.Do(req)
	if err != nil {
		w.offset = 0
		w.transportFailed(ctx, err)
		w.pause(ctx)
		return
	}
	// One byte more than asked tells a long answer from an exact one.
	n, rerr := io.ReadFull(resp.Body, w.buf[:want+1])
	long := rerr == nil
	if long {
		_, _ = io.Copy(io.Discard, resp.Body)
	} else if rerr == io.ErrUnexpectedEOF || rerr == io.EOF {
		rerr = nil
	}
	resp.Body.Close()
	t1 := time.Now()
	if ctx.Err() != nil && rerr != nil {
		return // the run ended with this answer in flight
	}
	// Answers outside the window are not counted, but a device keeps
	// moving through the file during the warm-up all the same.
	counted := w.count(http.MethodGet, "range", resp.StatusCode, t1)
	if why, kind := w.checkRange(resp, first, last, n, long, rerr); kind != "" {
		w.fail(t1, kind, fmt.Sprintf("GET %s bytes=%d-%d: %s", cfg.Path, first, last, why))
		w.offset = 0
		return
	}
	if counted {
		w.success(t1.Sub(t0), int64(n))
	}
	w.offset = last + 1
	if w.offset >= cfg.Size {
		w.offset = 0
	}
}

// checkRange returns why and what kind of error a range answer is, or "" for
// an answer carrying exactly bytes first..last.
func (w *worker) checkRange(resp *http.Response, first, last int64, n int, long bool, rerr error) (why, kind string) {
	want := last - first + 1
	switch {
	case rerr != nil:
		return "reading the body: " + rerr.Error(), "body"
	case resp.ProtoMajor != w.wantMaj:
		return fmt.Sprintf("answered over %s, want %s", resp.Proto, w.cfg.Proto), "protocol"
	case resp.StatusCode != http.StatusPartialContent:
		return fmt.Sprintf("status %d, want 206", resp.StatusCode), fmt.Sprintf("status GET range %d", resp.StatusCode)
	}
	cr, err := ParseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		return err.Error(), "content-range"
	}
	if cr.First != first || cr.Last != last || (cr.Complete != -1 && cr.Complete != w.cfg.Size) {
		return fmt.Sprintf("Content-Range %q, want bytes %d-%d/%d", resp.Header.Get("Content-Range"), first, last, w.cfg.Size), "content-range"
	}
	if long || int64(n) != want {
		if long {
			return fmt.Sprintf("body longer than the %d bytes asked", want), "length"
		}
		return fmt.Sprintf("body of %d bytes, want %d", n, want), "length"
	}
	if img := w.cfg.Image; img != nil && !bytes.Equal(w.buf[:n], img[first:last+1]) {
		return "body differs from the image", "content"
	}
	return "", ""
}

// counts reports whether an answer completed at t falls in the measured
// window.
func (w *worker) counts(t time.Time) bool {
	return !t.Before(w.from) && !t.After(w.end)
}

// count counts an answer with its status when it completed at t, in the
// measured window, and reports whether it did.
func (w *worker) count(method, path string, status int, t time.Time) bool {
	if !w.counts(t) {
		return false
	}
	w.statuses[statusKey{method, path, status}]++
	return true
}

func (w *worker) success(d time.Duration, n int64) {
	w.ok++
	w.bytes += uint64(n)
	w.hist.Record(d)
}

func (w *worker) fail(at time.Time, kind, msg string) {
	if !w.counts(at) {
		return
	}
	w.errs++
	w.errKinds[kind]++
	if w.firstErr == "" {
		w.firstErr, w.firstErrAt = msg, at
	}
}

// transportFailed counts a request or connection that got no answer.
func (w *worker) transportFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the run ended with this request in flight
	}
	w.sawErr, w.sawTransportErr = true, true
	w.fail(time.Now(), "transport", err.Error())
}

// pause waits briefly after a request that got no answer: a closed loop
// against a refused port would otherwise spin and starve the server it
// shares the machine with.
func (w *worker) pause(ctx context.Context) {
	t := time.NewTimer(transportBackoff)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// transportBackoff is the pause after a request that got no answer.
const transportBackoff = 10 * time.Millisecond
