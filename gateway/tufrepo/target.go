package tufrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// FormatBinary is the targetFormat of MCU firmware: a raw MCUboot image,
// downloaded by hash from /mcu/files.
const FormatBinary = "BINARY"

// Target is one firmware image as the targets role lists it, with Foundries'
// MCU custom fields.
type Target struct {
	// HardwareIDs are the boards the image runs on (custom.hardwareIds);
	// the first one names the target. Devices match it against their
	// BOARD_NAME.
	HardwareIDs []string
	// Version is the MCUboot build number (ih_ver.iv_build_num, the NNNN
	// of imgtool --version 1.0.0+NNNN) as a decimal string, custom.version.
	Version string
	// Tags are the device tags that see this target (custom.tags); each
	// has its own view of the repository.
	Tags []string
	// Format is custom.targetFormat; empty means FormatBinary.
	Format string
	// Length and SHA256 describe the image bytes.
	Length int64
	SHA256 [32]byte
}

// NewTarget describes image as a BINARY target for hwid, version and tags.
func NewTarget(hwid, version string, tags []string, image []byte) Target {
	return Target{
		HardwareIDs: []string{hwid},
		Version:     version,
		Tags:        slices.Clone(tags),
		Format:      FormatBinary,
		Length:      int64(len(image)),
		SHA256:      sha256.Sum256(image),
	}
}

// Name is the target name Foundries uses for MCU firmware: <hwid>-v<version>.
func (t Target) Name() string {
	hw := ""
	if len(t.HardwareIDs) > 0 {
		hw = t.HardwareIDs[0]
	}
	return hw + "-v" + t.Version
}

// ParseVersion reads a target version: a decimal MCUboot build number in
// 1..4294967295 without sign or leading zeros. Zero is refused because
// aktualizr-nano reads version 0 as "no target selected".
//
// Errors: a *TargetError matching ErrBadTarget.
func ParseVersion(s string) (uint32, error) {
	if s == "" || len(s) > 10 || (s[0] == '0') {
		return 0, badTarget(s, "version", "want a decimal build number from 1 without leading zeros")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, badTarget(s, "version", "want a decimal build number from 1 without leading zeros")
		}
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, badTarget(s, "version", "exceeds MCUboot's 32-bit build number")
	}
	return uint32(v), nil
}

// validName accepts the characters of board names and tags: they end up in
// target names, HTTP headers and directory names, so no separators, spaces
// or control characters, and never "." or "..".
func validName(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '+':
		default:
			return false
		}
	}
	return true
}

// ValidTag reports whether tag can name a view.
func ValidTag(tag string) bool { return validName(tag) }

func (t Target) validate() error {
	name := t.Name()
	if len(t.HardwareIDs) == 0 {
		return badTarget(name, "hardwareIds", "at least one hardware ID needed")
	}
	if err := checkNames(name, "hardwareIds", "hardware ID", t.HardwareIDs); err != nil {
		return err
	}
	if _, err := ParseVersion(t.Version); err != nil {
		return badTarget(name, "version", strconv.Quote(t.Version)+": want a decimal build number from 1 without leading zeros")
	}
	if len(t.Tags) == 0 {
		return badTarget(name, "tags", "at least one tag needed")
	}
	if err := checkNames(name, "tags", "tag", t.Tags); err != nil {
		return err
	}
	badFormat := func(c rune) bool { return !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') }
	if len(t.Format) > 32 || strings.ContainsFunc(t.Format, badFormat) {
		return badTarget(name, "targetFormat", strconv.Quote(t.Format)+": want up to 32 upper-case letters, digits and _")
	}
	if t.Length <= 0 {
		return badTarget(name, "length", "must be positive")
	}
	return nil
}

// checkNames checks a target's hardware IDs or tags (field in targets.json,
// what in messages): each a valid name, none listed twice.
func checkNames(target, field, what string, names []string) error {
	for i, n := range names {
		if !validName(n) {
			return badTarget(target, field, strconv.Quote(n)+" is not a valid "+what)
		}
		if slices.Contains(names[:i], n) {
			return badTarget(target, field, strconv.Quote(n)+" listed twice")
		}
	}
	return nil
}

func (t Target) clone() Target {
	t.HardwareIDs = slices.Clone(t.HardwareIDs)
	t.Tags = slices.Clone(t.Tags)
	if t.Format == "" {
		t.Format = FormatBinary
	}
	return t
}

func (t Target) hasTag(tag string) bool { return slices.Contains(t.Tags, tag) }

func (t Target) equal(o Target) bool {
	return slices.Equal(t.HardwareIDs, o.HardwareIDs) && t.Version == o.Version &&
		slices.Equal(t.Tags, o.Tags) && t.Format == o.Format && t.Length == o.Length && t.SHA256 == o.SHA256
}

// custom is the targets entry's custom object. Only the fields devices read
// are written: every byte counts against the MCU's buffer.
type custom struct {
	HardwareIDs  []string `json:"hardwareIds"`
	Tags         []string `json:"tags"`
	TargetFormat string   `json:"targetFormat"`
	Version      string   `json:"version"`
}

// entry builds the targets.json entry of t.
func (t Target) entry() *metadata.TargetFiles {
	raw, err := json.Marshal(custom{HardwareIDs: t.HardwareIDs, Tags: t.Tags, TargetFormat: t.Format, Version: t.Version})
	if err != nil {
		panic("tufrepo: marshalling custom fields: " + err.Error())
	}
	rm := json.RawMessage(raw)
	return &metadata.TargetFiles{
		Length: t.Length,
		Hashes: metadata.Hashes{"sha256": slices.Clone(t.SHA256[:])},
		Custom: &rm,
		Path:   t.Name(),
	}
}

// targetFromEntry reads back a target stored by entry.
func targetFromEntry(name string, tf *metadata.TargetFiles) (Target, error) {
	if tf == nil || tf.Custom == nil {
		return Target{}, badTarget(name, "custom", "missing")
	}
	var c custom
	dec := json.NewDecoder(bytes.NewReader(*tf.Custom))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Target{}, badTarget(name, "custom", err.Error())
	}
	h := tf.Hashes["sha256"]
	if len(h) != sha256.Size {
		return Target{}, badTarget(name, "hashes", "sha256 of "+strconv.Itoa(len(h))+" bytes")
	}
	t := Target{HardwareIDs: c.HardwareIDs, Version: c.Version, Tags: c.Tags, Format: c.TargetFormat, Length: tf.Length}
	copy(t.SHA256[:], h)
	if err := t.validate(); err != nil {
		return Target{}, err
	}
	if t.Format == "" {
		return Target{}, badTarget(name, "targetFormat", "missing")
	}
	if t.Name() != name {
		return Target{}, badTarget(name, "name", "want "+t.Name())
	}
	return t, nil
}

// SHA256Hex is the image hash as lower-case hex, as in hashes.sha256 and the
// /mcu/files path.
func (t Target) SHA256Hex() string { return hex.EncodeToString(t.SHA256[:]) }
