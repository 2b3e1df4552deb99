package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/gateway/store"
)

// Parsers of request bodies. Every body is untrusted: each parser bounds
// what it accepts, returns a *BadRequestError with a short reason, and has a
// fuzz target in body_fuzz_test.go.

// MaxBodySize bounds every device request body, as Foundries' gateway does
// (100 KB).
const MaxBodySize = 100 << 10

// BadRequestError is a request the gateway refuses with 400: the reason is
// short and safe to send back.
type BadRequestError struct{ Reason string }

func (e *BadRequestError) Error() string { return e.Reason }

func badRequest(format string, args ...any) error {
	return &BadRequestError{Reason: fmt.Sprintf(format, args...)}
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("bad JSON: %s", jsonReason(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("bad JSON: data after the value")
	}
	return nil
}

// jsonReason shortens encoding/json's messages to one line without Go type
// names.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q: wrong type %s", te.Field, te.Value)
		}
		return "wrong type " + te.Value
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end"
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

// wireEvent is one element of POST /events (foundries.md §1.9, §3).
type wireEvent struct {
	ID         string `json:"id"`
	DeviceTime string `json:"deviceTime"`
	EventType  struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	} `json:"eventType"`
	Event struct {
		CorrelationID string `json:"correlationId"`
		ECU           string `json:"ecu"`
		Success       *bool  `json:"success"`
		TargetName    string `json:"targetName"`
		Version       string `json:"version"`
		Details       string `json:"details"`
	} `json:"event"`
}

// maxEventField bounds every string of an event; aktualizr-nano's whole
// event body is under 1000 bytes.
const maxEventField = 1024

// parseEvents reads a POST /events body: a JSON array of events. As on
// Foundries' gateway, only JSON that does not parse as an array of events is
// refused: a refused batch is sent again and again by aktualizr-lite, whose
// queue deletes events only on 200 or 404. Events the gateway cannot key
// are skipped: no id, an id longer than maxEventField or holding a NUL byte,
// no correlation id or one outside [A-Za-z0-9_-]. Longer text fields
// (a failed install's details) are cut to maxEventField bytes, and a device
// time that is not RFC 3339 is replaced by the gateway's time.
func parseEvents(data []byte, now time.Time) ([]store.Event, error) {
	var wire []wireEvent
	if err := json.Unmarshal(data, &wire); err != nil {
		return nil, badRequest("bad JSON: %s", jsonReason(err))
	}
	if wire == nil {
		return nil, badRequest("bad JSON: events must be an array")
	}
	out := make([]store.Event, 0, len(wire))
	for _, w := range wire {
		if w.ID == "" || len(w.ID) > maxEventField || strings.IndexByte(w.ID, 0) >= 0 || !validCorrelationID(w.Event.CorrelationID) {
			continue
		}
		dt, err := time.Parse(time.RFC3339Nano, w.DeviceTime)
		if err != nil {
			dt = now
		}
		out = append(out, store.Event{
			ID: w.ID, Type: clip(w.EventType.ID), TypeVersion: w.EventType.Version,
			CorrelationID: w.Event.CorrelationID, ECU: clip(w.Event.ECU), Success: w.Event.Success,
			TargetName: clip(w.Event.TargetName), Version: clip(w.Event.Version), Details: clip(w.Event.Details),
			DeviceTime: dt.UTC(), ReceivedAt: now,
		})
	}
	return out, nil
}

// clip cuts s to at most maxEventField bytes, on a UTF-8 boundary.
func clip(s string) string {
	if len(s) <= maxEventField {
		return s
	}
	i := maxEventField
	for i > 0 && !utf8.RuneStart(s[i]) {
		i-- // s[i] continues a character that would be cut in two
	}
	return s[:i]
}

func validCorrelationID(s string) bool {
	if s == "" || len(s) > maxEventField {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// rolloutEvent is what the rollout controller needs of an event. The
// version is event.version, or the -v<N> suffix of targetName when absent.
func rolloutEvent(e store.Event) rollout.Event {
	v := e.Version
	if v == "" {
		if i := strings.LastIndex(e.TargetName, "-v"); i >= 0 {
			v = e.TargetName[i+2:]
		}
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		n = 0
	}
	return rollout.Event{Type: e.Type, CorrelationID: e.CorrelationID, Version: uint32(n), Success: e.Success == nil || *e.Success}
}

// networkInfo is PUT /system_info/network, strictly parsed.
type networkInfo struct {
	Hostname  string `json:"hostname,omitempty"`
	MAC       string `json:"mac,omitempty"`
	LocalIPv4 string `json:"local_ipv4,omitempty"`
}

func parseNetwork(data []byte) (networkInfo, error) {
	var n networkInfo
	if err := decodeStrict(data, &n); err != nil {
		return n, err
	}
	if len(n.Hostname) > 255 || len(n.MAC) > 64 || len(n.LocalIPv4) > 64 {
		return n, badRequest("network: a field is too long")
	}
	return n, nil
}

// parseSystemInfo accepts any JSON value: MCUs send a small object, Linux
// devices lshw's output.
func parseSystemInfo(data []byte) error {
	if !json.Valid(data) {
		var v any
		return badRequest("bad JSON: %s", jsonReason(json.Unmarshal(data, &v)))
	}
	return nil
}

// parseConfigText accepts the TOML text of PUT /system_info/config. The
// gateway stores it for the operator and does not interpret it, so it only
// has to be text.
func parseConfigText(data []byte) error {
	if !utf8.Valid(data) {
		return badRequest("config: not UTF-8 text")
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return badRequest("config: contains a NUL byte")
	}
	return nil
}
