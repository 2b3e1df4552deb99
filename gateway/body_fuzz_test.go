package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Every request body parser is fuzzed: it must never panic, and what it
// refuses it refuses with a *BadRequestError (a 400 with a reason), never
// another error.

var fuzzNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func checkBadRequest(t *testing.T, err error) {
	t.Helper()
	var bre *BadRequestError
	if err != nil && (!errors.As(err, &bre) || bre.Reason == "" || len(bre.Reason) > 300) {
		t.Fatalf("error %v (%T) is not a short bad request", err, err)
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(`[{"id":"A","deviceTime":"2026-11-01T12:00:00.000Z","eventType":{"id":"EcuDownloadStarted","version":0},"event":{"correlationId":"C1","targetName":"b-v2","version":"2","success":true,"details":"x"}}]`))
	f.Add([]byte(`[{"id":"A","eventType":{"id":"X"},"event":{"correlationId":"bad id"}}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"id":"A","event":{"correlationId":"C","details":"` + strings.Repeat("€", 400) + `"}}]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`[{"id":"A","deviceTime":"nonsense","event":{"correlationId":"C","success":"yes"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := parseEvents(data, fuzzNow)
		checkBadRequest(t, err)
		for _, e := range evs {
			if e.ID == "" || len(e.ID) > maxEventField || strings.IndexByte(e.ID, 0) >= 0 || !validCorrelationID(e.CorrelationID) || e.DeviceTime.IsZero() {
				t.Fatalf("accepted event %+v", e)
			}
			for _, f := range []string{e.Type, e.ECU, e.TargetName, e.Version, e.Details} {
				if len(f) > maxEventField || !utf8.ValidString(f) {
					t.Fatalf("field of %d bytes, valid UTF-8 %v", len(f), utf8.ValidString(f))
				}
			}
			rolloutEvent(e)
		}
	})
}

func FuzzParseNetwork(f *testing.F) {
	f.Add([]byte(`{"local_ipv4":"10.0.0.2","mac":"00:11:22:33:44:55"}`))
	f.Add([]byte(`{"hostname":"h","extra":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseNetwork(data)
		checkBadRequest(t, err)
	})
}

func FuzzParseSystemInfo(f *testing.F) {
	f.Add([]byte(`{"product":"board","class":"MCU"}`))
	f.Add([]byte(`{"product":`))
	f.Add([]byte("[aknano_settings]\npoll_interval = 15\n"))
	f.Add([]byte("\xff\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBadRequest(t, parseSystemInfo(data))
		checkBadRequest(t, parseConfigText(data))
	})
}

func FuzzParseAdminBodies(f *testing.F) {
	f.Add([]byte(`{"name":"w1","tag":"main","version":1001,"policy":{"max_per_minute":10,"exponential":{"base_rate_per_minute":5,"increment_factor":2,"notified_things":10},"abort":[{"failure_type":"failed","threshold_percent":20,"min_executed":5}],"in_progress_timeout_minutes":30}}`))
	f.Add([]byte(`{"groups":["g1"],"limit":10,"uuids":["A"],"dry_run":true}`))
	f.Add([]byte(`{"percentage":12.5}`))
	f.Add([]byte(`{"files":[{"name":"polling_interval","value":"30","unencrypted":true,"on_changed":["x"]}]}`))
	f.Add([]byte(`{"group":"g1"}`))
	f.Add([]byte(`{"tag":"main"}`))
	f.Add([]byte(`{"in_progress_timeout_minutes":1e308}`))
	f.Add([]byte(`{"roles":["root","targets","snapshot","timestamp"]}`))
	f.Add([]byte(`{"roles":["root","root"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, err := parseWaveRequest(data)
		checkBadRequest(t, err)
		_, err = parseRolloutRequest(data)
		checkBadRequest(t, err)
		_, err = parseConfigRequest(data)
		checkBadRequest(t, err)
		_, err = parseGroupRequest(data)
		checkBadRequest(t, err)
		_, err = parseTagRequest(data)
		checkBadRequest(t, err)
		roles, err := parseKeyRotationRequest(data)
		checkBadRequest(t, err)
		if err == nil && (len(roles) == 0 || len(roles) > len(rotatableRoles)) {
			t.Fatalf("accepted %d roles", len(roles))
		}
	})
}
