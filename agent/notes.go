package agent

import (
	"fmt"
	"strconv"
	"strings"
)

// NoteKind says what the agent just did.
type NoteKind uint8

// The agent's notes. Their names are part of logs and golden traces.
const (
	// NoteInit: settings read at start-up (running version, image state,
	// what the state page says about the last update).
	NoteInit NoteKind = iota + 1
	// NoteConnect: a connection was opened (Text: the endpoint) or failed.
	NoteConnect
	// NoteRequest: one request answered (Text: "METHOD path", Status,
	// Bytes: the body's length) or failed (Err).
	NoteRequest
	// NoteConfig: /config changed a setting (Text says which).
	NoteConfig
	// NoteCheckIn: a check-in ended; Err is nil when the TUF refresh
	// succeeded. Root is the root version the device trusts after it.
	NoteCheckIn
	// NoteSelect: the selected target (Version 0: none matches).
	NoteSelect
	// NoteDecision: what the agent does with the selection (Text).
	NoteDecision
	// NoteDownload: download progress (Bytes of Total), or its end (Err).
	NoteDownload
	// NoteEvent: an event was sent (Text: its type) after Bytes attempts,
	// or could not be (Err).
	NoteEvent
	// NoteInstall: the update was set pending (Err: it could not be).
	NoteInstall
	// NoteConfirm: the running image was confirmed (Err: it could not be).
	NoteConfirm
	// NoteReboot: the agent resets the device (Text: why).
	NoteReboot
	// NoteSleep: the agent sleeps for the poll interval (Text).
	NoteSleep
)

var noteNames = [...]string{
	NoteInit:     "init",
	NoteConnect:  "connect",
	NoteRequest:  "request",
	NoteConfig:   "config",
	NoteCheckIn:  "checkin",
	NoteSelect:   "select",
	NoteDecision: "decision",
	NoteDownload: "download",
	NoteEvent:    "event",
	NoteInstall:  "install",
	NoteConfirm:  "confirm",
	NoteReboot:   "reboot",
	NoteSleep:    "sleep",
}

func (k NoteKind) String() string {
	if int(k) < len(noteNames) && noteNames[k] != "" {
		return noteNames[k]
	}
	return "note(" + strconv.Itoa(int(k)) + ")"
}

// Note is one step of the agent, for logs, traces and fleet metrics.
type Note struct {
	Kind    NoteKind
	Text    string
	Version uint32
	Status  int
	Bytes   int64
	Total   int64
	// Root is a check-in's trusted TUF root version (0: unknown).
	Root int64
	Err  error
}

// String formats the note as one stable line: its kind, then its fields.
func (n Note) String() string {
	var b strings.Builder
	b.WriteString(n.Kind.String())
	if n.Text != "" {
		b.WriteByte(' ')
		b.WriteString(n.Text)
	}
	if n.Version != 0 {
		fmt.Fprintf(&b, " v%d", n.Version)
	}
	if n.Status != 0 {
		fmt.Fprintf(&b, " %d", n.Status)
	}
	// Root version 1 is every device's until a key rotation: traces name
	// the root only after one, and stay as they were without.
	if n.Root > 1 {
		fmt.Fprintf(&b, " root %d", n.Root)
	}
	if n.Total != 0 {
		fmt.Fprintf(&b, " %d/%d", n.Bytes, n.Total)
	} else if n.Bytes != 0 {
		fmt.Fprintf(&b, " %d", n.Bytes)
	}
	if n.Err != nil {
		b.WriteString(" error: ")
		b.WriteString(n.Err.Error())
	}
	return b.String()
}
