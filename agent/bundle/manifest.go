package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FormatVersion is the manifest's "format": the version of the layout this
// package writes and reads. Any change to names, fields or rules raises it.
const FormatVersion = 1

// The member names (see the package comment).
const (
	ManifestName   = "manifest.json"
	metadataPrefix = "metadata/"
	firmwarePrefix = "firmware/"
	firmwareSuffix = ".bin"
	// maxMetadataName bounds a metadata file name, so that every member
	// name fits the 100-byte USTAR name field without a prefix.
	maxMetadataName = 90
	// maxLabel bounds the manifest's repository and tag.
	maxLabel = 64
)

// Manifest is manifest.json: what the bundle holds and for whom.
type Manifest struct {
	// Format is FormatVersion.
	Format int `json:"format"`
	// Repository names the gateway repository the metadata comes from;
	// fleetsim writes "ci" or "production".
	Repository string `json:"repository"`
	// Tag is the device tag whose view the metadata is.
	Tag string `json:"tag"`
	// Created is when the bundle was made (UTC, whole seconds); it is also
	// every member's modification time.
	Created time.Time `json:"created"`
	// Members are every member but manifest.json, in archive order.
	Members []Member `json:"members"`
}

// Member is one member of the archive as the manifest lists it.
type Member struct {
	// Name is the member's name in the archive, e.g.
	// "metadata/1.root.json" or "firmware/<sha256>.bin".
	Name string `json:"name"`
	// Length is the member's size in bytes.
	Length int64 `json:"length"`
	// SHA256 is the lowercase hex SHA-256 of the member's bytes.
	SHA256 string `json:"sha256"`
}

// MetadataMember is the member name of the metadata file a device fetches
// as name ("timestamp.json" -> "metadata/timestamp.json").
func MetadataMember(name string) string { return metadataPrefix + name }

// FirmwareMember is the member name of the firmware image with SHA-256 sum:
// "firmware/<lowercase hex>.bin".
func FirmwareMember(sum [32]byte) string {
	return firmwarePrefix + hex.EncodeToString(sum[:]) + firmwareSuffix
}

// memberKind classifies a member name.
type memberKind uint8

const (
	kindUnknown memberKind = iota
	kindManifest
	kindMetadata
	kindFirmware
	kindDirectory // "metadata/" or "firmware/", as tar tools may add
)

// classify returns the kind of a member name, or an ErrName refusal.
func classify(name string, dir bool) (memberKind, *Error) {
	if dir {
		if name == metadataPrefix || name == firmwarePrefix {
			return kindDirectory, nil
		}
	} else {
		switch {
		case name == ManifestName:
			return kindManifest, nil
		case strings.HasPrefix(name, metadataPrefix) && validMetadataName(name[len(metadataPrefix):]):
			return kindMetadata, nil
		case strings.HasPrefix(name, firmwarePrefix) && validFirmwareName(name[len(firmwarePrefix):]):
			return kindFirmware, nil
		}
	}
	q := quoteName(name)
	if escapes(name) {
		return kindUnknown, refuse(ErrName, q, "name escapes the bundle's directory")
	}
	return kindUnknown, refuse(ErrName, q, "not a bundle member name (manifest.json, metadata/<name>.json, firmware/<sha256>.bin)")
}

// escapes reports a name that, extracted, would land outside the
// extraction directory or depend on the platform's path rules.
func escapes(name string) bool {
	if strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\\:\x00") {
		return true
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return true
		}
	}
	return false
}

// quoteName bounds and quotes a hostile name for an error message.
func quoteName(name string) string {
	if len(name) > 120 {
		name = name[:120]
	}
	return strconv.Quote(name)
}

// validMetadataName accepts the names a TUF client fetches
// (tufnano.MetadataFileName): letters, digits, "-._~" and the "%XX" of an
// escaped role name, ending in ".json". A leading "." is refused: extracted,
// it would be a hidden file.
func validMetadataName(s string) bool {
	if len(s) <= len(".json") || len(s) > maxMetadataName || s[0] == '.' || !strings.HasSuffix(s, ".json") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '%') {
			return false
		}
	}
	return true
}

// validFirmwareName accepts "<64 lowercase hex digits>.bin".
func validFirmwareName(s string) bool {
	h, ok := strings.CutSuffix(s, firmwareSuffix)
	return ok && len(h) == 64 && isLowerHex(h)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validLabel is the rule for the manifest's repository and tag: that of
// gateway tags, 1 to 64 letters, digits, '-', '_', '.' or '+'.
func validLabel(s string) bool {
	if s == "" || len(s) > maxLabel {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '+') {
			return false
		}
	}
	return true
}

// parseManifest reads manifest.json strictly: unknown fields, trailing
// data, another format, bad labels, bad entries or more entries than lim
// allows are ErrManifest (duplicates ErrDuplicate, bad names ErrName). It
// returns the entries by name.
func parseManifest(data []byte, lim *Limits) (Manifest, map[string]int, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, nil, refuse(ErrManifest, ManifestName, "not valid JSON of the manifest's shape: "+oneLine(err.Error()))
	}
	if dec.More() {
		return Manifest{}, nil, refuse(ErrManifest, ManifestName, "data after the JSON object")
	}
	if m.Format != FormatVersion {
		return Manifest{}, nil, refuse(ErrManifest, ManifestName, fmt.Sprintf("format %d, this reader knows format %d", m.Format, FormatVersion))
	}
	if !validLabel(m.Repository) {
		return Manifest{}, nil, refuse(ErrManifest, ManifestName, "repository "+quoteName(m.Repository)+" is not 1 to 64 letters, digits, '-', '_', '.' or '+'")
	}
	if !validLabel(m.Tag) {
		return Manifest{}, nil, refuse(ErrManifest, ManifestName, "tag "+quoteName(m.Tag)+" is not 1 to 64 letters, digits, '-', '_', '.' or '+'")
	}
	if m.Created.IsZero() {
		return Manifest{}, nil, refuse(ErrManifest, ManifestName, "no created time")
	}
	// The manifest itself is one more member.
	if len(m.Members) >= lim.MaxMembers {
		return Manifest{}, nil, refuse(ErrLimit, ManifestName, fmt.Sprintf("lists %d members, more than %d", len(m.Members), lim.MaxMembers-1))
	}
	index := make(map[string]int, len(m.Members))
	for i, e := range m.Members {
		k, err := classify(e.Name, false)
		if err != nil {
			err.Reason = "manifest lists " + err.Member + ": " + err.Reason
			err.Member = ManifestName
			return Manifest{}, nil, err
		}
		if k == kindManifest {
			return Manifest{}, nil, refuse(ErrManifest, ManifestName, "lists itself")
		}
		if _, dup := index[e.Name]; dup {
			return Manifest{}, nil, refuse(ErrDuplicate, ManifestName, "lists "+e.Name+" twice")
		}
		if len(e.SHA256) != 64 || !isLowerHex(e.SHA256) {
			return Manifest{}, nil, refuse(ErrManifest, ManifestName, e.Name+": sha256 is not 64 lowercase hex digits")
		}
		if e.Length < 0 || e.Length > lim.memberLimit(k) {
			return Manifest{}, nil, refuse(ErrLimit, ManifestName, fmt.Sprintf("%s: length %d, outside 0 to %d", e.Name, e.Length, lim.memberLimit(k)))
		}
		if k == kindFirmware && e.Name != firmwarePrefix+e.SHA256+firmwareSuffix {
			return Manifest{}, nil, refuse(ErrManifest, ManifestName, e.Name+": sha256 is not the hash its name says")
		}
		index[e.Name] = i
	}
	return m, index, nil
}

// oneLine keeps an error message from the JSON decoder on one line.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
