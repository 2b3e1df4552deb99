package agent

import (
	"errors"
	"io"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
)

// Platform is everything the agent touches outside its own memory: the
// device it runs on. The live device implements it on the wall clock and
// real sockets; the fleet engine on a virtual clock and an in-process
// network. Every call that takes time (a sleep, network I/O, a flash erase
// or program) goes through it, so the engine can park the device there.
//
// A reset or a power cut does not return into the agent: the platform
// unwinds the agent's task (the Go equivalent of the MCU stopping), and
// the device boots again from ROM. The agent therefore never sees a
// power-loss error; it keeps nothing across a reset but what it wrote to
// flash.
type Platform struct {
	// Clock is the device's time.
	Clock Clock
	// Net opens connections carrying the device's TLS identity.
	Net Network
	// Storage is the agent's flash partition (aktualizr-nano's 22 sectors:
	// identity, state page, TUF metadata; see storage.go).
	Storage *flashsim.Area
	// Boot is the bootloader's application side.
	Boot BootControl
	// Rand is the device's random source (event and correlation ids,
	// backoff jitter). The simulator seeds it per device.
	Rand io.Reader
	// Reset restarts the MCU (NVIC_SystemReset). It does not return.
	Reset func()
}

// Clock is the device's sense of time.
type Clock interface {
	// Now is the device's calendar time: set by SNTP, or the fallback
	// epoch plus uptime when SNTP fails; it may drift. It is the TUF
	// reference time and the events' deviceTime.
	Now() time.Time
	// Uptime is the time since the last reset.
	Uptime() time.Duration
	// Sleep blocks the agent's task for d (vTaskDelay).
	Sleep(d time.Duration)
}

// Endpoint names one of the two servers the agent talks to.
type Endpoint uint8

const (
	// Gateway is the device gateway: /config, /system_info, /repo, /events.
	Gateway Endpoint = iota
	// Files is the firmware host (Foundries' "ostree" host), which serves
	// /mcu/files; it may be the gateway itself.
	Files
)

func (e Endpoint) String() string {
	if e == Files {
		return "files"
	}
	return "gateway"
}

// Network opens mutual-TLS connections with the device's identity.
type Network interface {
	// Connect opens one connection to ep (TLS handshake included).
	// Errors: any; the agent treats every one as "cannot connect".
	Connect(ep Endpoint) (Conn, error)
}

// Conn is one keep-alive connection: requests go one after the other, as
// coreHTTP sends them, and the connection is never re-established behind
// the agent's back.
type Conn interface {
	// Send sends req and reads the whole response (status line, headers
	// and body) into buf, as coreHTTP does into the agent's one response
	// buffer. Errors: ErrResponseTooLarge when the response does not fit
	// buf (the connection is then unusable); any other error is a
	// transport failure.
	Send(req *Request, buf []byte) (Response, error)
	// Close closes the connection.
	Close() error
}

// Request is one HTTP request.
type Request struct {
	Method string
	Path   string
	// Header holds the extra headers (x-ats-tags, x-ats-target); the
	// transport adds Host, User-Agent, Connection and Content-Length.
	Header []Field
	Body   []byte
	// RangeEnd > 0 asks for "Range: bytes=RangeStart-RangeEnd".
	RangeStart, RangeEnd int64
}

// Field is one header field.
type Field struct{ Name, Value string }

// Response is what a Conn read into the caller's buffer.
type Response struct {
	Status int
	// HeaderBytes is the size of the status line and headers, which share
	// the buffer with the body.
	HeaderBytes int
	// Body is the body, within the caller's buffer (nil when empty).
	Body []byte
}

// ErrResponseTooLarge: a response (headers and body) did not fit the
// agent's buffer (coreHTTP's HTTPInsufficientMemory).
var ErrResponseTooLarge = errors.New("response larger than the receive buffer")

// BootControl is the bootloader's application side: *mcuboot.App
// implements it.
type BootControl interface {
	// Running is the header of the running image; its build number is the
	// agent's version.
	Running() (image.Header, error)
	// State is the image state (pending update, running image on trial).
	State() (mcuboot.ImageState, error)
	// NewUpdateWriter writes an update where the bootloader expects it.
	NewUpdateWriter(page int) *mcuboot.SlotWriter
	// VerifyUpdate checks the structure of the size bytes written.
	VerifyUpdate(size int64) error
	// SetPending marks the update for the next boot; Confirm makes the
	// running image permanent.
	SetPending(permanent bool) error
	Confirm() error
}

var _ BootControl = (*mcuboot.App)(nil)
