package bundle

import "errors"

// Sentinels for errors.Is: every refusal of Open and Create is an *Error
// that unwraps to one of them (or, from Fetch and Firmware, to
// tufnano.ErrNotFound or tufnano.ErrTooLarge; or to the reader's own error).
var (
	// ErrTruncated: the file ends inside a header or a member, or before
	// the two zero blocks that end a tar archive.
	ErrTruncated = errors.New("bundle: truncated")
	// ErrMalformed: the bytes are not a USTAR archive (bad header checksum,
	// magic or number field), a member is neither a regular file nor one of
	// the two directories, or data follows the end of the archive.
	ErrMalformed = errors.New("bundle: not a USTAR archive")
	// ErrLimit: the file, a member or the member count exceeds a Limits
	// bound.
	ErrLimit = errors.New("bundle: over a limit")
	// ErrName: a member name that is not one of the bundle's names, such as
	// one that would escape the extraction directory ("../x", "/x").
	ErrName = errors.New("bundle: bad member name")
	// ErrDuplicate: two members (or two manifest entries, or two inputs of
	// Create) with the same name.
	ErrDuplicate = errors.New("bundle: duplicate member")
	// ErrManifest: manifest.json is missing, not the first member, not
	// valid JSON of the known format, or describes the bundle impossibly.
	ErrManifest = errors.New("bundle: bad manifest")
	// ErrMismatch: the members disagree with the manifest: one is missing,
	// unlisted, of another length or SHA-256, or a firmware member's
	// content is not the hash its name says. Fetch reports it too when the
	// file changed under an open Bundle.
	ErrMismatch = errors.New("bundle: members disagree with the manifest")
)

// Error is a refusal: the sentinel (or underlying error) it unwraps to, the
// member concerned if any, and a one-line reason.
type Error struct {
	// Member is the member's name inside the archive, e.g.
	// "metadata/timestamp.json"; empty for the file as a whole.
	Member string
	// Reason says what is wrong, in one line.
	Reason string
	// Err is a sentinel of this package, tufnano.ErrNotFound or
	// tufnano.ErrTooLarge, or the reader's error.
	Err error
}

// Error returns one line: "bundle: <member>: <reason>".
func (e *Error) Error() string {
	s := "bundle: "
	if e.Member != "" {
		s += e.Member + ": "
	}
	return s + e.Reason
}

// Unwrap returns the sentinel or the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func refuse(sentinel error, member, reason string) *Error {
	return &Error{Member: member, Reason: reason, Err: sentinel}
}
