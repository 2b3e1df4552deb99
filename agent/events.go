package agent

import (
	"io"
	"strconv"
	"time"
)

// The event types aktualizr-nano reports (foundries.md §1.9).
const (
	EventDownloadStarted       = "EcuDownloadStarted"
	EventDownloadCompleted     = "EcuDownloadCompleted"
	EventInstallationStarted   = "EcuInstallationStarted"
	EventInstallationApplied   = "EcuInstallationApplied"
	EventInstallationCompleted = "EcuInstallationCompleted"
)

// maxEventBody is aknano's event buffer (1000 bytes with the terminator).
const maxEventBody = 999

// newID draws 16 random bytes and formats them as aknano's
// aknano_gen_serial_and_uuid does: 32 uppercase hex digits, dashed like a
// UUID (no version bits are set).
func newID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out), nil
}

// deviceTime formats t as aknano's events carry it: seconds, and ".000Z".
func deviceTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05") + ".000Z"
}

// eventBody builds the one-element array aknano posts (fill_event_payload),
// byte for byte, spaces included. For EcuInstallationCompleted the target
// and version are the running ones and the details say whether the update
// held or rolled back. Like aknano it escapes nothing: a tag with a quote
// makes invalid JSON.
func (a *Agent) eventBody(id, eventType string, newVersion uint32, success bool) []byte {
	oldVersion := a.st.running
	if eventType == EventInstallationCompleted {
		oldVersion, newVersion = a.st.lastConfirmed, a.st.running
	}
	target := a.cfg.HardwareID + "-v" + strconv.FormatUint(uint64(newVersion), 10)
	if a.st.corrID == "" {
		// aknano fills the id in its settings as it writes the event.
		a.st.corrID = target + "-" + a.st.uuid
	}
	from, to := "v"+strconv.FormatUint(uint64(oldVersion), 10), "v"+strconv.FormatUint(uint64(newVersion), 10)
	var details string
	switch {
	case eventType == EventInstallationApplied:
		details = "Updating from " + from + " to " + to + " tag: " + a.st.tag + ". Image written to flash. Rebooting."
	case eventType == EventInstallationCompleted && !success:
		details = "Rollback to " + from + " after failed update to v" + strconv.FormatUint(uint64(a.st.lastApplied), 10) + "."
	case eventType == EventInstallationCompleted:
		slot := "SECONDARY"
		if a.st.imagePosition == 1 {
			slot = "PRIMARY"
		}
		details = "Updated from " + from + " to " + to + ". Image confirmed. Running on " + slot + " slot."
	default:
		details = "Updating from " + from + " to " + to + " tag: " + a.st.tag + "."
	}
	ok := `"success": false,`
	if success {
		ok = `"success": true,`
	}
	b := make([]byte, 0, 400)
	b = append(b, `[{"id": "`...)
	b = append(b, id...)
	b = append(b, `","deviceTime": "`...)
	b = append(b, deviceTime(a.p.Clock.Now())...)
	b = append(b, `","eventType": {"id": "`...)
	b = append(b, eventType...)
	b = append(b, `","version": 0},"event": {"correlationId": "`...)
	b = append(b, a.st.corrID...)
	b = append(b, `","targetName": "`...)
	b = append(b, target...)
	b = append(b, `","version": "`...)
	b = strconv.AppendUint(b, uint64(newVersion), 10)
	b = append(b, `",`...)
	b = append(b, ok...)
	b = append(b, `"details": "`...)
	b = append(b, details...)
	b = append(b, `"}}]`...)
	if len(b) > maxEventBody {
		b = b[:maxEventBody] // snprintf into the 1000-byte buffer
	}
	return b
}

// SendEvent posts one event as aknano_send_event does: each attempt opens a
// new connection to the gateway and draws a new event id; a connection
// that fails costs a 2-second pause; an attempt whose request got any
// answer ends the loop, whatever its status. It reports whether an attempt
// got an answer.
func (a *Agent) SendEvent(eventType string, version uint32, success bool) bool {
	for i := 1; i <= EventAttempts; i++ {
		conn, err := a.p.Net.Connect(Gateway)
		if err != nil {
			a.note(Note{Kind: NoteConnect, Text: Gateway.String(), Err: err})
			a.p.Clock.Sleep(EventRetryDelay)
			continue
		}
		id, err := newID(a.p.Rand)
		if err != nil {
			conn.Close()
			a.note(Note{Kind: NoteEvent, Text: eventType, Err: err})
			return false
		}
		body := a.eventBody(id, eventType, version, success)
		err = withBuffer(func(buf []byte) error {
			_, err := a.requestInto(conn, "POST", "/events", body, buf)
			return err
		})
		conn.Close()
		if err == nil {
			a.note(Note{Kind: NoteEvent, Text: eventType + " success=" + strconv.FormatBool(success), Version: version, Bytes: int64(i)})
			return true
		}
	}
	a.note(Note{Kind: NoteEvent, Text: eventType, Version: version, Err: ErrEventNotSent})
	return false
}
