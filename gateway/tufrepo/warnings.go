package tufrepo

import (
	"fmt"
	"time"
)

// Role is a TUF top-level role.
type Role string

// The four top-level roles. Foundries uses no delegations.
const (
	RoleRoot      Role = "root"
	RoleTargets   Role = "targets"
	RoleSnapshot  Role = "snapshot"
	RoleTimestamp Role = "timestamp"
)

var allRoles = []Role{RoleRoot, RoleTargets, RoleSnapshot, RoleTimestamp}

func (r Role) valid() bool {
	return r == RoleRoot || r == RoleTargets || r == RoleSnapshot || r == RoleTimestamp
}

// WarningKind says what a Warning is about.
type WarningKind int

const (
	// WarnBufferExceeded: a served file is larger than Config.DeviceBuffer;
	// aktualizr-nano fails with TUF_ERROR_DATA_EXCEEDS_BUFFER_SIZE. Prune
	// targets or split tags.
	WarnBufferExceeded WarningKind = iota + 1
	// WarnTooManySignatures: a served file carries more signatures than
	// Config.MaxSignatures; libtufnano as aktualizr-nano builds it stops
	// with TUF_ERROR_FIELD_COUNT_EXCEEDED.
	WarnTooManySignatures
	// WarnExpiring: a role is due for renewal (less than half its period
	// left) or already expired, and the repository cannot renew it itself:
	// root without stored root keys, or Renew has not run.
	WarnExpiring
)

// String is the kind's stable name, as `fleetsim tuf-repo show --json` reports it.
func (k WarningKind) String() string {
	switch k {
	case WarnBufferExceeded:
		return "buffer-exceeded"
	case WarnTooManySignatures:
		return "too-many-signatures"
	case WarnExpiring:
		return "expiring"
	}
	return fmt.Sprintf("WarningKind(%d)", int(k))
}

// Warning is a condition that does not stop an operation but will stop
// devices: operations return the warnings about the files they wrote, and
// Check reports them for the whole repository.
type Warning struct {
	Kind WarningKind
	// Tag is the view (a tag, or a wave view named by WaveView), empty for
	// root files.
	Tag string
	// File is the served name, e.g. "targets.json" or "2.root.json".
	File string
	Role Role
	// Size and Limit are bytes (WarnBufferExceeded) or signatures
	// (WarnTooManySignatures).
	Size, Limit int
	// Expires is the role's expiry (WarnExpiring).
	Expires time.Time
}

// String is the warning as one line for an operator.
func (w Warning) String() string {
	where := w.File
	if w.Tag != "" {
		where = fmt.Sprintf("tag %s %s", w.Tag, w.File)
	}
	switch w.Kind {
	case WarnBufferExceeded:
		return fmt.Sprintf("%s is %d bytes, more than the %d-byte device buffer", where, w.Size, w.Limit)
	case WarnTooManySignatures:
		return fmt.Sprintf("%s has %d signatures, devices accept %d", where, w.Size, w.Limit)
	case WarnExpiring:
		return fmt.Sprintf("%s (%s) expires %s and needs re-signing", where, w.Role, w.Expires.Format(time.RFC3339))
	}
	return fmt.Sprintf("%s: %s", w.Kind, where)
}

// fileWarnings checks one served file against the device limits.
func (c Config) fileWarnings(tag string, role Role, f File) []Warning {
	var ws []Warning
	if c.DeviceBuffer > 0 && len(f.Data) > c.DeviceBuffer {
		ws = append(ws, Warning{Kind: WarnBufferExceeded, Tag: tag, File: f.Name, Role: role, Size: len(f.Data), Limit: c.DeviceBuffer})
	}
	if c.MaxSignatures > 0 && f.Signatures > c.MaxSignatures {
		ws = append(ws, Warning{Kind: WarnTooManySignatures, Tag: tag, File: f.Name, Role: role, Size: f.Signatures, Limit: c.MaxSignatures})
	}
	return ws
}
