package tufrepo

import (
	"errors"
	"fmt"
)

// Sentinel errors. Operations wrap them in the typed errors below, so callers
// test with errors.Is for the kind and errors.As for the details.
var (
	// ErrNotFound reports a file the repository does not serve. The gateway
	// answers 404, which is how a TUF client learns that {N+1}.root.json does
	// not exist yet.
	ErrNotFound = errors.New("tufrepo: not found")
	// ErrUnknownTag reports a tag that has no view. It also matches
	// ErrNotFound, since Foundries' gateway answers an unknown tag with 404.
	ErrUnknownTag = errors.New("tufrepo: unknown tag")
	// ErrDuplicateTarget reports adding a target whose name already exists.
	ErrDuplicateTarget = errors.New("tufrepo: duplicate target")
	// ErrUnknownTarget reports removing a target that does not exist.
	ErrUnknownTarget = errors.New("tufrepo: unknown target")
	// ErrBadTarget reports a target with an invalid field (version string,
	// hardware ID, tag, format, length or hash).
	ErrBadTarget = errors.New("tufrepo: bad target")
	// ErrMissingKeys reports that the keys at hand cannot meet a role's
	// threshold (for example root signing without the offline root key).
	ErrMissingKeys = errors.New("tufrepo: missing signing keys")
	// ErrBadKey reports an unusable key or key file, or a bad key set-up
	// (threshold out of range, duplicate key).
	ErrBadKey = errors.New("tufrepo: bad key")
	// ErrBadConfig reports an invalid Config or Setup.
	ErrBadConfig = errors.New("tufrepo: bad configuration")
	// ErrCorrupt reports stored metadata that cannot be loaded back: a file
	// that does not parse, a gap in the root chain, a view whose snapshot
	// does not describe its targets.
	ErrCorrupt = errors.New("tufrepo: corrupt repository")
	// ErrExists reports creating a repository in a directory that already
	// holds one.
	ErrExists = errors.New("tufrepo: repository already exists")
	// ErrActiveWave reports opening a wave for a tag that already has one:
	// Foundries allows one active wave per tag.
	ErrActiveWave = errors.New("tufrepo: tag already has an active wave")
	// ErrUnknownWave reports completing or cancelling a wave that is not
	// open.
	ErrUnknownWave = errors.New("tufrepo: unknown wave")
)

// WaveError reports a wave operation refused because of the tag's open
// wave. Err is ErrActiveWave or ErrUnknownWave.
type WaveError struct {
	Tag, Wave string
	// Open is the wave the tag has open, empty when it has none.
	Open string
	Err  error
}

// Error names the tag, the wave asked for and the one open, so an operator
// sees which wave to complete or cancel first.
func (e *WaveError) Error() string {
	switch {
	case e.Err == ErrActiveWave:
		return fmt.Sprintf("tufrepo: tag %q already has active wave %q (opening %q)", e.Tag, e.Open, e.Wave)
	case e.Open != "":
		return fmt.Sprintf("tufrepo: unknown wave %q for tag %q (its open wave is %q)", e.Wave, e.Tag, e.Open)
	}
	return fmt.Sprintf("tufrepo: unknown wave %q: tag %q has no open wave", e.Wave, e.Tag)
}

// Unwrap makes errors.Is match ErrActiveWave or ErrUnknownWave.
func (e *WaveError) Unwrap() error { return e.Err }

// NotFoundError is returned by Fetch for a name or tag the repository does not
// serve. It matches ErrNotFound, and ErrUnknownTag when the tag is unknown.
type NotFoundError struct {
	Tag, Name  string
	UnknownTag bool
}

// Error says whether the tag or only the file is unknown: the gateway
// answers 404 either way, and its log should tell the two apart.
func (e *NotFoundError) Error() string {
	if e.UnknownTag {
		return fmt.Sprintf("tufrepo: unknown tag %q (fetching %s)", e.Tag, e.Name)
	}
	return fmt.Sprintf("tufrepo: %s not found for tag %q", e.Name, e.Tag)
}

// Is makes errors.Is(err, ErrNotFound) and, for unknown tags,
// errors.Is(err, ErrUnknownTag) true.
func (e *NotFoundError) Is(target error) bool {
	return target == ErrNotFound || (e.UnknownTag && target == ErrUnknownTag)
}

// TargetError reports a rejected target: a duplicate or unknown name, or a
// bad field. Err is ErrDuplicateTarget, ErrUnknownTarget or ErrBadTarget.
type TargetError struct {
	Name   string // target name, or the raw input when no name could be formed
	Field  string // offending field for ErrBadTarget ("version", "tags", ...)
	Reason string
	Err    error
}

// Error names the target and, for a bad field, the field and the reason.
func (e *TargetError) Error() string {
	msg := e.Err.Error() + " " + fmt.Sprintf("%q", e.Name)
	if e.Field != "" {
		msg += ": " + e.Field
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Unwrap makes errors.Is match ErrDuplicateTarget, ErrUnknownTarget or
// ErrBadTarget.
func (e *TargetError) Unwrap() error { return e.Err }

// KeysError reports that a role cannot be signed: the keys given or stored
// reach Have valid signatures out of the Need its threshold demands.
type KeysError struct {
	Role       Role
	Have, Need int
}

// Error gives the count of usable keys against the threshold.
func (e *KeysError) Error() string {
	return fmt.Sprintf("tufrepo: missing signing keys for %s: have %d of threshold %d", e.Role, e.Have, e.Need)
}

// Unwrap makes errors.Is(err, ErrMissingKeys) true.
func (e *KeysError) Unwrap() error { return ErrMissingKeys }

// CorruptError names the stored file that could not be loaded back.
type CorruptError struct {
	File   string
	Reason string
}

// Error names the stored file, so an operator knows what to restore.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("tufrepo: corrupt repository: %s: %s", e.File, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func badTarget(name, field, reason string) error {
	return &TargetError{Name: name, Field: field, Reason: reason, Err: ErrBadTarget}
}

func badKey(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadKey, fmt.Sprintf(format, args...))
}

func badConfig(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
}
