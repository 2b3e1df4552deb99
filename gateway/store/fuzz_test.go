package store

import (
	"encoding/json"
	"errors"
	"testing"
)

// decoders are every record decoder, by kind, with the key a good record of
// that kind is stored under; each returns the decoded record.
var decoders = map[string]func(k, v []byte) (any, error){
	"device":   func(k, v []byte) (any, error) { return decodeDevice(k, v) },
	"event":    func(k, v []byte) (any, error) { return decodeEvent(k, v) },
	"firmware": func(k, v []byte) (any, error) { return decodeFirmware(k, v) },
	"config":   func(k, v []byte) (any, error) { return decodeConfig(k, v) },
	"wave":     func(k, v []byte) (any, error) { return decodeWave(k, v) },
	"member":   func(k, v []byte) (any, error) { return decodeMember(k, v) },
	"update":   func(k, v []byte) (any, error) { return decodeUpdate(k, v) },
	"seq":      func(k, v []byte) (any, error) { return decodeSeq(k, v) },
}

// FuzzDecodeRecords decodes arbitrary stored bytes as every record kind: a
// damaged store must give ErrCorrupt, never a panic, and whatever decodes
// must encode again.
func FuzzDecodeRecords(f *testing.F) {
	e := sampleEverything()
	seed := func(k []byte, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(k, b)
	}
	seed(deviceKey(e.dev.UUID), e.dev)
	seed(eventKey(e.dev.UUID, 1), e.events[1])
	seed(firmwareKey(e.fw.SHA256), e.fw)
	seed(configKey(ConfigScope{Kind: ScopeGroup, Name: "lab"}), configRecord{Files: e.configs[ConfigScope{Kind: ScopeGroup, Name: "lab"}]})
	seed(waveKey(e.wave.Name), e.wave)
	seed(memberKey(e.member.Wave, e.member.UUID), e.member)
	seed(updateKey(e.update.UUID), e.update)
	f.Add([]byte(keySeq), encodeSeq(1<<40))
	f.Add([]byte("dev/x"), []byte(`{"uuid":"x","created_at":"2026-13-99T00:00:00Z"}`))
	f.Add([]byte("wave/w"), []byte(`{"name":"w","policy":{"exponential":{"increment_factor":1e400}}}`))
	f.Add([]byte(""), []byte("null"))
	f.Add([]byte("ev/\x00"), []byte{0xff, 0xfe, '{'})

	f.Fuzz(func(t *testing.T, k, v []byte) {
		for kind, dec := range decoders {
			r, err := dec(k, v)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: error %v does not wrap ErrCorrupt", kind, err)
				}
				continue
			}
			if kind == "seq" {
				continue
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatalf("%s: decoded record does not encode: %v", kind, err)
			}
			if _, err := dec(k, b); err != nil {
				t.Fatalf("%s: re-encoded record does not decode: %v", kind, err)
			}
		}
	})
}
