package tufnano

import "fmt"

// Kind classifies why the client refused metadata or a target, so that the
// agent and run reports can count rejections by kind.
type Kind uint8

// The kinds of rejection. Their order is part of reports; append only.
const (
	KindNone Kind = iota
	// KindMalformed: the bytes are not JSON, or not TUF metadata of the
	// expected shape (missing or mistyped field, unknown role type).
	KindMalformed
	// KindWrongType: the metadata's _type is not the role it was fetched as.
	KindWrongType
	// KindBadSignature: a signature by an authorised key did not verify and
	// the threshold was not met.
	KindBadSignature
	// KindThreshold: fewer distinct authorised keys signed than the role's
	// threshold requires.
	KindThreshold
	// KindExpired: the metadata's expiry is at or before the reference time
	// (the final root, or trusted metadata read back from the store).
	KindExpired
	// KindRollback: a version (of the metadata or of a role it lists) went
	// backwards, or did not match the version its delegator announced.
	KindRollback
	// KindFreeze: metadata fetched in this refresh is already expired: the
	// repository (or someone in between) serves a frozen view (spec §5.4.4,
	// §5.5.6, §5.6.6). errors.Is(err, ErrExpired) also matches it.
	KindFreeze
	// KindLength: the bytes are not of the announced length.
	KindLength
	// KindHash: the bytes do not have the announced hash.
	KindHash
	// KindTooLarge: a file exceeds the largest metadata the device reads, or
	// canonical JSON does not fit the canonicalisation buffer.
	KindTooLarge
	// KindTooManySignatures: a file carries more signatures than the device
	// keeps per role.
	KindTooManySignatures
	// KindUnsupportedKey: a key type that is not compiled in, or an RSA
	// key over 4096 bits, whose signatures the device does not decode.
	KindUnsupportedKey
	// KindDuplicate: a duplicate key id, signature key id, role or object
	// member where the specification requires uniqueness.
	KindDuplicate
	// KindNotFound: the repository does not have a file the workflow needs,
	// or no role delegates the target.
	KindNotFound
	// KindFetch: the fetcher failed for another reason (network, I/O).
	KindFetch
	// KindStore: the store failed to keep trusted metadata.
	KindStore
	// KindMissingMeta: a snapshot or timestamp lacks an entry the workflow
	// needs, or a newer snapshot dropped a role.
	KindMissingMeta
	// KindTooManyDelegations: the delegation walk visited the most roles the
	// device allows without finding the target.
	KindTooManyDelegations
	kindCount
)

var kindNames = [kindCount]string{
	KindNone:               "none",
	KindMalformed:          "malformed",
	KindWrongType:          "wrong-type",
	KindBadSignature:       "bad-signature",
	KindThreshold:          "threshold",
	KindExpired:            "expired",
	KindRollback:           "rollback",
	KindFreeze:             "freeze",
	KindLength:             "length",
	KindHash:               "hash",
	KindTooLarge:           "too-large",
	KindTooManySignatures:  "too-many-signatures",
	KindUnsupportedKey:     "unsupported-key",
	KindDuplicate:          "duplicate",
	KindNotFound:           "not-found",
	KindFetch:              "fetch",
	KindStore:              "store",
	KindMissingMeta:        "missing-meta",
	KindTooManyDelegations: "too-many-delegations",
}

// String returns the kind's stable report name, such as "rollback".
func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is every rejection the client reports: the kind, the role whose
// metadata (or the target path) was refused, and a one-line detail.
type Error struct {
	Kind   Kind
	Role   string
	Detail string
	Err    error // an underlying error (fetcher, store), if any
}

// Error returns one line: "tuf <kind> (<role>): <detail>".
func (e *Error) Error() string {
	s := "tuf " + e.Kind.String()
	if e.Role != "" {
		s += " (" + e.Role + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the fetcher's or store's error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrExpired) and the other sentinels match any
// *Error of the same kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t.Role != "" || t.Detail != "" || t.Err != nil {
		return false
	}
	return t.Kind == e.Kind || (t.Kind == KindExpired && e.Kind == KindFreeze)
}

// Sentinels for errors.Is, one per Kind.
var (
	ErrMalformed          = &Error{Kind: KindMalformed}
	ErrWrongType          = &Error{Kind: KindWrongType}
	ErrBadSignature       = &Error{Kind: KindBadSignature}
	ErrThreshold          = &Error{Kind: KindThreshold}
	ErrExpired            = &Error{Kind: KindExpired}
	ErrRollback           = &Error{Kind: KindRollback}
	ErrFreeze             = &Error{Kind: KindFreeze}
	ErrLength             = &Error{Kind: KindLength}
	ErrHash               = &Error{Kind: KindHash}
	ErrTooLarge           = &Error{Kind: KindTooLarge}
	ErrTooManySignatures  = &Error{Kind: KindTooManySignatures}
	ErrUnsupportedKey     = &Error{Kind: KindUnsupportedKey}
	ErrDuplicate          = &Error{Kind: KindDuplicate}
	ErrNotFound           = &Error{Kind: KindNotFound}
	ErrFetch              = &Error{Kind: KindFetch}
	ErrStore              = &Error{Kind: KindStore}
	ErrMissingMeta        = &Error{Kind: KindMissingMeta}
	ErrTooManyDelegations = &Error{Kind: KindTooManyDelegations}
)

// KindOf returns the Kind of the first *Error in err's chain, or KindNone.
// It walks the chain itself rather than calling errors.As, whose target
// escapes to the heap: the client asks on every refresh (a 404 ends the
// root chain) and must not allocate for it.
func KindOf(err error) Kind {
	for err != nil {
		if e, ok := err.(*Error); ok {
			return e.Kind
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return KindNone
		}
		err = u.Unwrap()
	}
	return KindNone
}

func errf(k Kind, role, format string, args ...any) *Error {
	return &Error{Kind: k, Role: role, Detail: fmt.Sprintf(format, args...)}
}
