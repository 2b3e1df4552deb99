package agent

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
)

// Errors the agent reports. TUF rejections are *tufnano.Error, whose Kind
// says why.
var (
	// ErrConnect: the gateway could not be reached (aknano's -10).
	ErrConnect = errors.New("cannot connect to the device gateway")
	// ErrNotASCII: a request body holds a byte outside 9..126, which
	// aknano refuses to send.
	ErrNotASCII = errors.New("request body is not printable ASCII")
	// ErrEventNotSent: every attempt to send an event failed.
	ErrEventNotSent = errors.New("event not sent after 5 attempts")
	// ErrRootProvisioning: the first-contact root (1.root.json) could not
	// be fetched or is not a root.
	ErrRootProvisioning = errors.New("cannot provision the TUF root")
)

// settings is what aknano keeps in RAM between check-ins (struct
// aknano_settings): the state page's fields, the device's identity, and
// what the current boot learnt.
type settings struct {
	state
	tag           string
	uuid, serial  string
	running       uint32
	pollInterval  int // seconds, as set by /config (clamped when used)
	imagePosition uint8
	rolledBack    bool // is_running_rolled_back_image
	selfTestOK    bool
	permanent     bool // is_image_permanent
}

// Agent is aktualizr-nano: one instance per boot, driven either by Run
// (aknano_sample_loop) or step by step by the application (the public API
// of aknano_public_api.h). It is not safe for concurrent use: it is one
// task of the firmware.
type Agent struct {
	p     Platform
	cfg   Config
	store storage
	st    settings
	notes func(Note)

	selected Target
	// Per boot: aknano's static variables.
	anyCheckInOK    bool
	finishedSent    bool
	rootProvisioned bool
	startEpoch      time.Time
	rebootPending   bool
	partial         *partialDownload
	// trustedRoot is the root version the TUF client trusted after the
	// last refresh (0: none yet this boot).
	trustedRoot int64

	hdr [2]Field
	req Request
}

// New starts the agent after a boot (aknano_init): it reads the identity
// and the state page from flash and the running image from the
// bootloader, and works out whether the device runs an image the
// bootloader put back after a failed update. notes receives every step;
// nil discards them.
//
// Errors: ErrConfig; flash errors.
func New(p Platform, cfg Config, notes func(Note)) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if notes == nil {
		notes = func(Note) {}
	}
	a := &Agent{p: p, cfg: cfg, store: storage{area: p.Storage, page: FlashPageSize}, notes: notes}
	a.st.tag = cfg.DefaultTag
	a.st.pollInterval = int(cfg.PollInterval / time.Second)
	a.st.imagePosition = 1 // fleetsim's strategies always run the primary slot
	if h, err := p.Boot.Running(); err == nil {
		a.st.running = h.Version.Build
	}
	if a.st.uuid, a.st.serial, err = a.store.identity(); err != nil {
		return nil, err
	}
	if a.st.state, err = a.store.loadState(cfg.RetryRolledBack != nil); err != nil {
		return nil, err
	}
	p.Clock.Sleep(200 * time.Millisecond) // aknano_init_settings' two 100 ms pauses
	s := &a.st
	s.rolledBack = s.lastApplied != 0 && s.lastApplied != s.running && s.corrID != ""
	p.Clock.Sleep(200 * time.Millisecond) // aknano_is_current_image_permanent
	st, err := p.Boot.State()
	if err != nil {
		return nil, err
	}
	s.permanent = st != mcuboot.StateTesting && st != mcuboot.StateReadyForTest
	a.note(Note{Kind: NoteInit, Version: s.running, Text: fmt.Sprintf("state=%s last_applied=%d last_confirmed=%d rolled_back=%t uuid=%s",
		st, s.lastApplied, s.lastConfirmed, s.rolledBack, s.uuid)})
	return a, nil
}

func (a *Agent) note(n Note) { a.notes(n) }

// Current is the running image's version (aknano_get_current).
func (a *Agent) Current() uint32 { return a.st.running }

// Tag is the tag the device follows now.
func (a *Agent) Tag() string { return a.st.tag }

// UUID is the device's UUID as provisioned in flash.
func (a *Agent) UUID() string { return a.st.uuid }

// PollInterval is the interval between check-ins, clamped to 5 s..1 h
// (aknano_limit_sleep_time_range).
func (a *Agent) PollInterval() time.Duration {
	return time.Duration(min(max(a.st.pollInterval, 5), 3600)) * time.Second
}

// SetSelfTestOK tells the agent the application's self-test passed, so
// the running image may be confirmed after the next successful check-in.
func (a *Agent) SetSelfTestOK() { a.st.selfTestOK = true }

// IsTempImage reports whether the running image is on trial (not yet
// confirmed).
func (a *Agent) IsTempImage() bool { return !a.st.permanent }

// RolledBack reports whether this boot runs an image the bootloader put
// back after a failed update.
func (a *Agent) RolledBack() bool { return a.st.rolledBack }

// HasMatchingTarget reports whether the last check-in selected a target.
func (a *Agent) HasMatchingTarget() bool { return a.selected.Version != 0 }

// Selected is the target the last check-in selected (zero when none).
func (a *Agent) Selected() Target { return a.selected }

// IsRollback reports whether the selected version is the one whose update
// rolled back.
func (a *Agent) IsRollback() bool { return a.selected.Version == a.st.lastApplied }

// ShouldRetryRollback reports whether a rolled-back version may be tried
// again now: never, unless Options.RetryRolledBack allows it and its
// backoff has passed.
func (a *Agent) ShouldRetryRollback() bool {
	r := a.cfg.RetryRolledBack
	if r == nil || int(a.st.retryCount) >= r.Max {
		return false
	}
	return int64(a.st.nextRetry) <= a.p.Clock.Now().Unix()
}

// Confirm makes a running image that is on trial permanent
// (aknano_set_image_confirmed).
func (a *Agent) Confirm() {
	if a.st.permanent {
		return
	}
	if err := a.p.Boot.Confirm(); err != nil {
		a.note(Note{Kind: NoteConfirm, Version: a.st.running, Err: err})
		return
	}
	a.st.permanent = true
	a.note(Note{Kind: NoteConfirm, Version: a.st.running})
}

// SendInstallationFinished reports, once per boot, how the last update
// ended (aknano_send_installation_finished_event): after a rollback, or
// when the running version is not the last one confirmed (the first boot
// of a factory image included). On success the state page forgets the
// update.
func (a *Agent) SendInstallationFinished() {
	if a.finishedSent {
		return
	}
	a.finishedSent = true
	s := &a.st
	if !s.rolledBack && s.lastConfirmed == s.running {
		return
	}
	a.SendEvent(EventInstallationCompleted, s.running, !s.rolledBack)
	if !s.rolledBack {
		s.lastApplied, s.lastConfirmed = 0, s.running
		s.nextRetry, s.retryCount = 0, 0
	}
	s.corrID = ""
	a.saveState()
}

func (a *Agent) saveState() {
	if err := a.store.saveState(a.st.state); err != nil {
		a.note(Note{Kind: NoteInstall, Text: "saving settings", Err: err})
	}
}

// Reboot resets the device (aknano_reboot_command): 100 ms, then reset.
func (a *Agent) Reboot(why string) {
	a.note(Note{Kind: NoteReboot, Text: why})
	a.p.Clock.Sleep(100 * time.Millisecond)
	a.p.Reset()
}

// Run is aknano_sample_loop: check in, install a newer matching target and
// reboot into it, reboot an unconfirmed image that cannot check in for 180
// seconds, sleep the poll interval, forever. It returns only if Reset
// returns, which a device's does not.
func (a *Agent) Run() {
	a.startEpoch = a.p.Clock.Now()
	for {
		if a.CheckIn() == nil {
			a.anyCheckInOK = true
			a.decide()
		}
		if !a.anyCheckInOK && a.IsTempImage() && a.p.Clock.Now().Sub(a.startEpoch) > OfflineRebootAfter {
			a.note(Note{Kind: NoteDecision, Text: "no check-in for 180 s on an unconfirmed image"})
			a.p.Clock.Sleep(2 * time.Second)
			a.Reboot("to let the bootloader revert")
			return
		}
		d := a.PollInterval()
		a.note(Note{Kind: NoteSleep, Text: d.String()})
		a.p.Clock.Sleep(d)
	}
}

// decide acts on a successful check-in's selection, as the sample loop does.
func (a *Agent) decide() {
	now := a.p.Clock.Now()
	if a.rebootPending {
		if a.mayReboot(now) {
			a.Reboot("update installed")
		}
		return
	}
	if !a.HasMatchingTarget() {
		a.note(Note{Kind: NoteDecision, Text: "no matching target"})
		return
	}
	cur, sel := a.Current(), a.selected.Version
	switch {
	case a.IsRollback() && !a.ShouldRetryRollback():
		a.note(Note{Kind: NoteDecision, Version: sel, Text: "rolled back before: not retried"})
		return
	case cur >= sel:
		a.note(Note{Kind: NoteDecision, Version: sel, Text: "no update required"})
		return
	}
	if p := a.cfg.Policy.MayDownload; p != nil && !p(now, a.selected) {
		a.note(Note{Kind: NoteDecision, Version: sel, Text: "download deferred by policy"})
		return
	}
	a.note(Note{Kind: NoteDecision, Version: sel, Text: "update from v" + strconv.FormatUint(uint64(cur), 10)})
	if !a.Install() {
		return
	}
	if a.mayReboot(a.p.Clock.Now()) {
		a.Reboot("update installed")
		return
	}
	a.rebootPending = true
}

func (a *Agent) mayReboot(now time.Time) bool {
	if p := a.cfg.Policy.MayReboot; p != nil && !p(now) {
		a.note(Note{Kind: NoteDecision, Text: "reboot deferred by policy"})
		return false
	}
	return true
}

// bufPool holds response buffers: a device needs one only while it talks
// to a server, and a fleet of parked devices should hold none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, ResponseBufferSize); return &b }}

// withBuffer runs fn with a response buffer from the pool.
func withBuffer[T any](fn func(buf []byte) T) T {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	return fn(*bp)
}

// requestInto sends one request to the gateway with aknano's headers and
// reports it; the response's body lies in buf.
func (a *Agent) requestInto(conn Conn, method, path string, body, buf []byte) (Response, error) {
	text := method + " " + path
	for _, c := range body {
		if c < 9 || c > 126 {
			a.note(Note{Kind: NoteRequest, Text: text, Err: ErrNotASCII})
			return Response{}, ErrNotASCII
		}
	}
	a.hdr[0] = Field{"x-ats-tags", a.st.tag}
	a.hdr[1] = Field{"x-ats-target", a.cfg.HardwareID + "-v" + strconv.FormatUint(uint64(a.st.running), 10)}
	a.req = Request{Method: method, Path: path, Header: a.hdr[:], Body: body}
	resp, err := conn.Send(&a.req, buf)
	a.note(Note{Kind: NoteRequest, Text: text, Status: resp.Status, Bytes: int64(len(resp.Body)), Err: err})
	return resp, err
}

// tufFetcher fetches metadata over the check-in's connection
// (tuf_client_fetch_file): a 2xx answer is the file, 404 and 403 are "no
// such file", anything else fails the refresh.
type tufFetcher struct {
	a    *Agent
	conn Conn
	buf  []byte
}

func (f tufFetcher) Fetch(name string, dst []byte) (int, error) {
	resp, err := f.a.requestInto(f.conn, "GET", "/repo/"+name, nil, f.buf)
	if err != nil {
		if errors.Is(err, ErrResponseTooLarge) {
			return 0, &tufnano.Error{Kind: tufnano.KindTooLarge, Detail: name, Err: err}
		}
		return 0, err
	}
	switch {
	case resp.Status == 404 || resp.Status == 403:
		return 0, &tufnano.Error{Kind: tufnano.KindNotFound, Detail: name + ": HTTP " + strconv.Itoa(resp.Status)}
	case resp.Status/100 != 2:
		return 0, fmt.Errorf("%s: HTTP %d", name, resp.Status)
	case len(resp.Body) > len(dst):
		return 0, &tufnano.Error{Kind: tufnano.KindTooLarge, Detail: fmt.Sprintf("%s: %d bytes, the buffer holds %d", name, len(resp.Body), len(dst))}
	}
	return copy(dst, resp.Body), nil
}
