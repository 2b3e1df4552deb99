package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/gateway/rollout"
)

// Device is a device the gateway has seen: created on its first mutual-TLS
// contact, updated at every check-in.
type Device struct {
	// UUID is the client certificate's CN.
	UUID string `json:"uuid"`
	// Production is set when the certificate carries
	// businessCategory=production; it selects the production TUF view.
	Production bool `json:"production,omitempty"`
	// PubKeySHA256 is the hex SHA-256 of the certificate's
	// SubjectPublicKeyInfo, so a new key under the same UUID is noticed.
	PubKeySHA256 string    `json:"pubkey_sha256"`
	CreatedAt    time.Time `json:"created_at"`
	LastSeen     time.Time `json:"last_seen"`
	// Tag and Target are the last x-ats-tags and x-ats-target the device
	// reported.
	Tag    string `json:"tag,omitempty"`
	Target string `json:"target,omitempty"`
	// Group is set by the operator (waves roll out to groups).
	Group string `json:"group,omitempty"`
	// Deleted deny-lists the device: the gateway answers it 403.
	Deleted bool `json:"deleted,omitempty"`
	// RepoTag is the tag whose TUF view the device last fetched
	// timestamp.json from. When it changes the gateway raises the new view
	// above every other one, or the device's TUF client would refuse the
	// view's lower versions as a rollback.
	RepoTag string `json:"repo_tag,omitempty"`
}

// Event is one device event as received by POST /events
// (foundries.md §1.8-1.9). ID is the device's event id, the key that makes a
// retransmitted event a duplicate.
type Event struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	CorrelationID string `json:"correlation_id,omitempty"`
	ECU           string `json:"ecu,omitempty"`
	TargetName    string `json:"target_name,omitempty"`
	Version       string `json:"version,omitempty"`
	Details       string `json:"details,omitempty"`
	TypeVersion   int    `json:"type_version,omitempty"`
	// Success is nil when the device did not send the field.
	Success *bool `json:"success,omitempty"`
	// DeviceTime is the device's own timestamp; ReceivedAt the gateway's.
	DeviceTime time.Time `json:"device_time,omitzero"`
	ReceivedAt time.Time `json:"received_at"`
}

// Firmware is one uploaded image in the firmware index, served by
// GET /mcu/files/<2hex>/<62hex>.bin.
type Firmware struct {
	// SHA256 is the image's hex SHA-256, the index key.
	SHA256     string    `json:"sha256"`
	Length     int64     `json:"length"`
	HWID       string    `json:"hwid"`
	Version    uint32    `json:"version"`
	UploadedAt time.Time `json:"uploaded_at"`
	// Target is the TUF target name created for the image.
	Target string `json:"target,omitempty"`
}

// SystemInfoKind names one of the documents a device PUTs under
// /system_info; the store keeps the latest of each kind per device.
type SystemInfoKind string

// The system info documents of the device API.
const (
	SystemInfoHardware SystemInfoKind = "hardware" // PUT /system_info
	SystemInfoNetwork  SystemInfoKind = "network"  // PUT /system_info/network
	SystemInfoConfig   SystemInfoKind = "config"   // PUT /system_info/config
)

func (k SystemInfoKind) valid() bool {
	return k == SystemInfoHardware || k == SystemInfoNetwork || k == SystemInfoConfig
}

// ConfigFile is one fioconfig entry served by GET /config.
type ConfigFile struct {
	Name        string   `json:"name"`
	Value       string   `json:"value"`
	Unencrypted bool     `json:"unencrypted,omitempty"`
	OnChanged   []string `json:"on_changed,omitempty"`
}

// ConfigScope says whose configuration a set of ConfigFiles is: Kind
// "factory" (Name empty), "group" (Name is the group) or "device" (Name is
// the UUID). The gateway merges them, device over group over factory.
type ConfigScope struct{ Kind, Name string }

// The config scope kinds.
const (
	ScopeFactory = "factory"
	ScopeGroup   = "group"
	ScopeDevice  = "device"
)

func (c ConfigScope) check() error {
	switch c.Kind {
	case ScopeFactory:
		if c.Name != "" {
			return fmt.Errorf("%w: factory config scope has a name %q", ErrInvalidKey, c.Name)
		}
		return nil
	case ScopeGroup, ScopeDevice:
		return checkPart("config scope name", c.Name)
	default:
		return fmt.Errorf("%w: config scope kind %q (want factory, group or device)", ErrInvalidKey, c.Kind)
	}
}

// configRecord is what a config scope's key holds.
type configRecord struct {
	Files   []ConfigFile `json:"files"`
	Updated time.Time    `json:"updated"`
}

// Key layout. Every kind has its own prefix; a key's parts are separated by
// a NUL byte, which no part may contain, so a prefix scan for one device
// never reaches another whose UUID extends it ("a" and "a/b"), and keys
// sort by their first part, then their second.
const (
	prefixMeta     = "meta/"
	prefixDevice   = "dev/"
	prefixEvent    = "ev/"   // ev/<uuid>\0<seq, 8 bytes big-endian> -> Event
	prefixEventID  = "evid/" // evid/<uuid>\0<event id> -> seq, 8 bytes
	prefixSysInfo  = "sys/"  // sys/<uuid>\0<kind> -> the document as sent
	prefixConfig   = "cfg/"  // cfg/<kind>\0<name> -> configRecord
	prefixFirmware = "fw/"
	prefixWave     = "wave/"
	prefixMember   = "member/" // member/<wave>\0<uuid> -> rollout.Member
	prefixUpdate   = "update/"

	keyFormat = prefixMeta + "format" // -> formatVersion
	keySeq    = prefixMeta + "seq"    // -> event seq ceiling, 8 bytes

	// formatVersion marks a pebble DB as a fleetsim gateway store; Open
	// refuses any other value.
	formatVersion = "fleetsim-gateway-store/1"

	// maxPart bounds a key part: UUIDs, event ids and names are short, and a
	// device must not grow keys without bound through its event ids.
	maxPart = 1024
)

func checkPart(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidKey, what)
	case len(p) > maxPart:
		return fmt.Errorf("%w: %s is %d bytes (at most %d)", ErrInvalidKey, what, len(p), maxPart)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("%w: %s contains a NUL byte", ErrInvalidKey, what)
	}
	return nil
}

func key(prefix string, parts ...string) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n)
	k = append(k, prefix...)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func deviceKey(uuid string) []byte { return key(prefixDevice, uuid) }

// eventPrefix is the prefix of every event key of one device.
func eventPrefix(uuid string) []byte { return append(key(prefixEvent, uuid), 0) }

func eventKey(uuid string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(eventPrefix(uuid), seq)
}

func eventIDKey(uuid, id string) []byte { return key(prefixEventID, uuid, id) }

func sysInfoKey(uuid string, k SystemInfoKind) []byte {
	return key(prefixSysInfo, uuid, string(k))
}

func configKey(c ConfigScope) []byte { return key(prefixConfig, c.Kind, c.Name) }

// configDevicePrefix is the prefix of every device-scope config key.
func configDevicePrefix() []byte { return append(key(prefixConfig, ScopeDevice), 0) }

func firmwareKey(sha string) []byte { return key(prefixFirmware, sha) }

func waveKey(name string) []byte { return key(prefixWave, name) }

func memberKey(wave, uuid string) []byte { return key(prefixMember, wave, uuid) }

func updateKey(uuid string) []byte { return key(prefixUpdate, uuid) }

// prefixEnd is the smallest key above every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

func encodeSeq(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeSeq(k, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, corrupt(k, fmt.Errorf("sequence is %d bytes, want 8", len(v)))
	}
	return binary.BigEndian.Uint64(v), nil
}

func encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encode %T: %w", v, err)
	}
	return b, nil
}

func corrupt(k []byte, err error) error {
	return fmt.Errorf("%w: key %q: %v", ErrCorrupt, k, err)
}

// decodeAt decodes v as a T and checks that the record belongs under k, so
// a value written under the wrong key is reported rather than returned.
func decodeAt[T any](k, v []byte, keyOf func(*T) []byte) (T, error) {
	var r T
	if err := json.Unmarshal(v, &r); err != nil {
		return r, corrupt(k, err)
	}
	if keyOf != nil {
		if want := keyOf(&r); !bytes.Equal(want, k) {
			return r, corrupt(k, fmt.Errorf("record belongs under key %q", want))
		}
	}
	return r, nil
}

func decodeDevice(k, v []byte) (Device, error) {
	return decodeAt(k, v, func(d *Device) []byte { return deviceKey(d.UUID) })
}

func decodeEvent(k, v []byte) (Event, error) {
	e, err := decodeAt[Event](k, v, nil)
	if err == nil && e.ID == "" {
		err = corrupt(k, fmt.Errorf("event without id"))
	}
	return e, err
}

func decodeFirmware(k, v []byte) (Firmware, error) {
	return decodeAt(k, v, func(f *Firmware) []byte { return firmwareKey(f.SHA256) })
}

func decodeConfig(k, v []byte) (configRecord, error) {
	return decodeAt[configRecord](k, v, nil)
}

func decodeWave(k, v []byte) (rollout.Wave, error) {
	return decodeAt(k, v, func(w *rollout.Wave) []byte { return waveKey(w.Name) })
}

func decodeMember(k, v []byte) (rollout.Member, error) {
	return decodeAt(k, v, func(m *rollout.Member) []byte { return memberKey(m.Wave, m.UUID) })
}

func decodeUpdate(k, v []byte) (rollout.Update, error) {
	return decodeAt(k, v, func(u *rollout.Update) []byte { return updateKey(u.UUID) })
}
