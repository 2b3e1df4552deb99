package tufnano

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits are the MCU's bounds. Exceeding one is a typed error, never a crash
// or an unbounded allocation.
type Limits struct {
	// MaxMetadataSize is the largest metadata file the device reads, in
	// bytes: aktualizr-nano's buffer is 16 KiB.
	MaxMetadataSize int
	// MaxSignatures is the most signatures one metadata file may carry.
	MaxSignatures int
	// KeyTypes are the signature schemes compiled in.
	KeyTypes KeyTypes
	// MaxRootRotations bounds the root versions fetched in one refresh.
	MaxRootRotations int
	// MaxDelegations bounds the targets roles visited for one target.
	MaxDelegations int
	// Memo, when set, remembers signatures that verified, so that clients
	// sharing it (a simulated fleet's devices) check the same signature
	// over the same bytes with the same key once. It is not an MCU limit
	// and changes no result: only the time taken.
	Memo *Memo
}

// DefaultLimits are the limits of a Foundries-class MCU.
func DefaultLimits() Limits {
	return Limits{
		MaxMetadataSize:  16 << 10,
		MaxSignatures:    8,
		KeyTypes:         AllKeyTypes,
		MaxRootRotations: 256,
		MaxDelegations:   32,
	}
}

// Fetcher reads remote metadata files. Names are as the repository serves
// them: "timestamp.json", "3.root.json", "7.snapshot.json", or a delegated
// role's URL-escaped name (see MetadataFileName).
type Fetcher interface {
	// Fetch copies the named file into dst and returns its length. A file
	// the repository does not have is an error for which
	// errors.Is(err, ErrNotFound) holds; a file longer than len(dst) is an
	// error for which errors.Is(err, ErrTooLarge) holds (ReadBounded does
	// both parts for an io.Reader).
	Fetch(name string, dst []byte) (int, error)
}

// Store keeps trusted metadata, raw bytes per role, as the MCU keeps it in
// its metadata flash area.
type Store interface {
	// Load copies role's stored metadata into dst; errors.Is(err,
	// ErrNotFound) when there is none, ErrTooLarge when it exceeds dst.
	Load(role string, dst []byte) (int, error)
	// Save replaces role's stored metadata with data.
	Save(role string, data []byte) error
}

// ReadBounded reads r to its end into dst. Errors: a KindTooLarge *Error
// when r holds more than len(dst) bytes, or the reader's own error.
func ReadBounded(r io.Reader, dst []byte) (int, error) {
	n := 0
	for n < len(dst) {
		m, err := r.Read(dst[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	var one [1]byte
	for {
		m, err := r.Read(one[:])
		if m > 0 {
			return n, errf(KindTooLarge, "", "more than %d bytes", len(dst))
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Client is the device's TUF client. It holds the trusted root between
// refreshes; everything else is re-read from the Store at each Refresh, as
// the device does after a reset. A Client is not safe for concurrent use.
type Client struct {
	lim   Limits
	fetch Fetcher
	store Store

	root      *rootMeta
	timestamp *timestampMeta
	snapshot  *snapshotMeta
	targets   map[string]*targetsMeta // top-level and delegated, by role name
	now       time.Time
	refreshed bool
	trusted   bool // the last Refresh succeeded

	buf   []byte // fetch and load buffer, MaxMetadataSize long
	canon canonicaliser
}

// New loads the trusted root from store and checks that it is signed by a
// threshold of its own root keys (spec §5.2). It reads nothing remote.
// Errors: the store's (KindNotFound when there is no root), KindMalformed,
// KindBadSignature, KindThreshold, KindTooLarge.
func New(lim Limits, fetch Fetcher, store Store) (*Client, error) {
	if lim.MaxMetadataSize <= 0 || lim.MaxSignatures <= 0 || lim.MaxRootRotations <= 0 || lim.MaxDelegations <= 0 {
		panic("tufnano: limits must be positive") // a programmer error, not input
	}
	c := &Client{lim: lim, fetch: fetch, store: store, buf: scratch(lim.MaxMetadataSize)}
	data, err := c.load(RoleRoot)
	if err != nil {
		return nil, err
	}
	r, err := parseRoot(data, &c.lim)
	if err != nil {
		return nil, err
	}
	if err := c.verify(r.keys, r.role(RoleRoot), &r.envelope, RoleRoot); err != nil {
		return nil, err
	}
	c.root = r
	return c, nil
}

// scratchPool keeps the clients' metadata buffers between clients: a
// device makes a client per check-in, and a fleet makes many at once.
var scratchPool sync.Pool

func scratch(n int) []byte {
	if b, ok := scratchPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

// Release gives the client's buffer back for another client to use; the
// client must not be used after it. Metadata the client returned stays
// valid: it never points into the buffer.
func (c *Client) Release() {
	if c.buf != nil {
		b := c.buf
		c.buf = nil
		scratchPool.Put(&b)
	}
}

// RootVersion is the version of the trusted root.
func (c *Client) RootVersion() int64 { return c.root.version }

// ConsistentSnapshot reports whether the trusted root asks for versioned
// metadata and hash-prefixed target names.
func (c *Client) ConsistentSnapshot() bool { return c.root.consistent }

// Versions returns the versions of the trusted top-level metadata (0 where
// none is trusted).
func (c *Client) Versions() (root, timestamp, snapshot, targets int64) {
	root = c.root.version
	if c.timestamp != nil {
		timestamp = c.timestamp.version
	}
	if c.snapshot != nil {
		snapshot = c.snapshot.version
	}
	if t := c.targets[RoleTargets]; t != nil {
		targets = t.version
	}
	return
}

// load reads role's stored bytes into a new slice of their exact length.
func (c *Client) load(role string) ([]byte, error) {
	n, err := c.store.Load(role, c.buf)
	if err != nil {
		if KindOf(err) == KindNone {
			err = &Error{Kind: KindStore, Role: role, Detail: "load", Err: err}
		}
		return nil, err
	}
	return append([]byte(nil), c.buf[:n]...), nil
}

// download fetches name into a new slice of its exact length.
func (c *Client) download(name, role string) ([]byte, error) {
	n, err := c.fetch.Fetch(name, c.buf)
	if err != nil {
		k := KindOf(err)
		if k != KindNotFound && k != KindTooLarge {
			k = KindFetch
		}
		return nil, &Error{Kind: k, Role: role, Detail: "fetching " + name, Err: err}
	}
	return append([]byte(nil), c.buf[:n]...), nil
}

func (c *Client) save(role string, data []byte) error {
	if err := c.store.Save(role, data); err != nil {
		return &Error{Kind: KindStore, Role: role, Detail: "save", Err: err}
	}
	return nil
}

// verify checks env against a delegator's keys and the role's threshold.
// When the signed part is served in canonical layout (fleetsim's gateway and
// FoundriesFactory serve it so) the signatures are checked over the bytes as
// served, with no copy; otherwise, or when that fails and escapes may have
// been signed in the other spelling, over the canonical JSON form.
func (c *Client) verify(keys []key, t threshold, env *envelope, role string) error {
	shape, escapes := canonicalShape(env.raw, env.signed)
	if shape {
		err := verifyThreshold(keys, t, env, env.raw[env.signed.start:env.signed.end], role, c.lim.Memo)
		if err == nil || !escapes {
			return err
		}
	}
	msg, err := c.canon.canonical(env.raw, env.signed)
	if err != nil {
		err.(*Error).Role = role
		return err
	}
	return verifyThreshold(keys, t, env, msg, role, c.lim.Memo)
}

// Refresh runs the TUF client workflow (spec §5.3 to §5.6) with now as the
// reference time: it updates the root chain, then timestamp, snapshot and
// top-level targets, keeping each accepted file in the Store. Delegated
// roles are fetched on demand by Target.
//
// Errors are *Error: KindExpired (the final root), KindFreeze (fetched
// timestamp, snapshot or targets already expired), KindRollback,
// KindBadSignature, KindThreshold, KindUnsupportedKey, KindLength, KindHash, KindTooLarge,
// KindTooManySignatures, KindMalformed, KindWrongType, KindDuplicate,
// KindMissingMeta, KindNotFound, KindFetch, KindStore.
func (c *Client) Refresh(now time.Time) error {
	c.now = now
	c.timestamp, c.snapshot, c.targets = nil, nil, map[string]*targetsMeta{}
	c.refreshed, c.trusted = true, false
	if err := c.updateRoot(); err != nil {
		return err
	}
	if err := c.updateTimestamp(); err != nil {
		return err
	}
	if err := c.updateSnapshot(); err != nil {
		return err
	}
	if _, err := c.loadTargets(RoleTargets, RoleRoot); err != nil {
		return err
	}
	c.trusted = true
	return nil
}

// TargetsMetadata returns the trusted top-level targets.json, byte for byte
// as the repository served it and the Store keeps it, for an update agent
// that reads the targets itself (as aktualizr-nano reads libtufnano's
// metadata buffer). It returns nil unless the last Refresh succeeded. The
// bytes are a copy: the caller may keep or change them without touching the
// client's trusted state. Delegated roles are not included.
func (c *Client) TargetsMetadata() []byte {
	if !c.trusted {
		return nil
	}
	return bytes.Clone(c.targets[RoleTargets].raw)
}

// updateRoot follows the root chain N+1, N+2, ... (spec §5.3).
func (c *Client) updateRoot() error {
	for i := 0; i < c.lim.MaxRootRotations; i++ {
		next := c.root.version + 1
		data, err := c.download(strconv.FormatInt(next, 10)+".root.json", RoleRoot)
		if err != nil {
			if KindOf(err) == KindNotFound {
				break
			}
			return err
		}
		r, err := parseRoot(data, &c.lim)
		if err != nil {
			return err
		}
		// §5.3.4: a threshold of the trusted root's root keys, and of the
		// new root's own keys.
		if err := c.verify(c.root.keys, c.root.role(RoleRoot), &r.envelope, RoleRoot); err != nil {
			return err
		}
		if r.version != next {
			return errf(KindRollback, RoleRoot, "%d.root.json has version %d", next, r.version)
		}
		if err := c.verify(r.keys, r.role(RoleRoot), &r.envelope, RoleRoot); err != nil {
			return err
		}
		c.root = r
		if err := c.save(RoleRoot, data); err != nil {
			return err
		}
	}
	if c.root.expired(c.now) {
		return errf(KindExpired, RoleRoot, "the final root expired at %s", c.root.expires.Format(time.RFC3339))
	}
	return nil
}

var errEqualVersion = errors.New("timestamp version unchanged")

// updateTimestamp (spec §5.4): the stored timestamp, if it still verifies,
// is the rollback reference for the new one.
func (c *Client) updateTimestamp() error {
	if data, err := c.load(RoleTimestamp); err == nil {
		_ = c.acceptTimestamp(data) // a stale or expired local copy is only a reference
	}
	data, err := c.download("timestamp.json", RoleTimestamp)
	if err != nil {
		return err
	}
	switch err := c.acceptTimestamp(data); err {
	case nil:
		return c.save(RoleTimestamp, data)
	case errEqualVersion:
		return nil
	default:
		return err
	}
}

func (c *Client) acceptTimestamp(data []byte) error {
	ts, err := parseTimestamp(data, &c.lim)
	if err != nil {
		return err
	}
	if err := c.verify(c.root.keys, c.root.role(RoleTimestamp), &ts.envelope, RoleTimestamp); err != nil {
		return err
	}
	if old := c.timestamp; old != nil {
		if ts.version < old.version {
			return errf(KindRollback, RoleTimestamp, "version %d after %d", ts.version, old.version)
		}
		if ts.version == old.version {
			return errEqualVersion
		}
		if ts.snapshot.version < old.snapshot.version {
			return errf(KindRollback, RoleTimestamp, "snapshot version %d after %d", ts.snapshot.version, old.snapshot.version)
		}
	}
	// Trusted before the expiry check: even an expired timestamp guards
	// against rollback.
	c.timestamp = ts
	return c.checkFinal(&ts.envelope, RoleTimestamp)
}

func (c *Client) checkFinal(env *envelope, role string) error {
	if env.expired(c.now) {
		return errf(KindFreeze, role, "expired at %s", env.expires.Format(time.RFC3339))
	}
	return nil
}

// updateSnapshot (spec §5.5): a stored snapshot that verifies against the
// new timestamp is used without downloading.
func (c *Client) updateSnapshot() error {
	if err := c.checkFinal(&c.timestamp.envelope, RoleTimestamp); err != nil {
		return err
	}
	if data, err := c.load(RoleSnapshot); err == nil {
		if c.acceptSnapshot(data, true) == nil {
			return nil
		}
	}
	name := "snapshot.json"
	if c.root.consistent {
		name = strconv.FormatInt(c.timestamp.snapshot.version, 10) + "." + name
	}
	data, err := c.download(name, RoleSnapshot)
	if err != nil {
		return err
	}
	if err := c.acceptSnapshot(data, false); err != nil {
		return err
	}
	return c.save(RoleSnapshot, data)
}

func (c *Client) acceptSnapshot(data []byte, stored bool) error {
	m := c.timestamp.snapshot
	if !stored {
		if err := verifyLengthAndHashes(c.timestamp.raw, m.length, m.hashes, data, RoleSnapshot); err != nil {
			return err
		}
	}
	s, err := parseSnapshot(data, &c.lim)
	if err != nil {
		return err
	}
	if err := c.verify(c.root.keys, c.root.role(RoleSnapshot), &s.envelope, RoleSnapshot); err != nil {
		return err
	}
	// §5.5.5: no role listed before may vanish or go back in version.
	if old := c.snapshot; old != nil {
		it := old.meta.iter(old.raw)
		for {
			k, v, ok := it.next()
			if !ok {
				break
			}
			name := string(str(old.raw, k))
			nm, ok := s.lookup(name)
			if !ok {
				return errf(KindMissingMeta, RoleSnapshot, "%s dropped from snapshot", name)
			}
			om, _ := parseMetaFile(old.raw, v, RoleSnapshot)
			if nm.version < om.version {
				return errf(KindRollback, RoleSnapshot, "%s version %d after %d", name, nm.version, om.version)
			}
		}
	}
	c.snapshot = s
	return c.checkFinalSnapshot()
}

func (c *Client) checkFinalSnapshot() error {
	if err := c.checkFinal(&c.snapshot.envelope, RoleSnapshot); err != nil {
		return err
	}
	if want := c.timestamp.snapshot.version; c.snapshot.version != want {
		return errf(KindRollback, RoleSnapshot, "version %d where the timestamp announced %d", c.snapshot.version, want)
	}
	return nil
}

// loadTargets returns the trusted targets role, from memory, the store,
// or the repository (spec §5.6), verified against delegator.
func (c *Client) loadTargets(role, delegator string) (*targetsMeta, error) {
	if t := c.targets[role]; t != nil {
		if t.delegator == delegator {
			return t, nil
		}
		// Another delegator's trust does not carry over: the role must
		// verify against this one's keys too.
		return c.acceptTargets(t.raw, role, delegator)
	}
	if data, err := c.load(role); err == nil {
		if t, err := c.acceptTargets(data, role, delegator); err == nil {
			return t, nil
		}
	}
	m, ok := c.snapshot.lookup(role + ".json")
	if !ok {
		return nil, errf(KindMissingMeta, role, "snapshot has no %s.json", role)
	}
	name := MetadataFileName(role, 0)
	if c.root.consistent {
		name = MetadataFileName(role, m.version)
	}
	data, err := c.download(name, role)
	if err != nil {
		return nil, err
	}
	t, err := c.acceptTargets(data, role, delegator)
	if err != nil {
		return nil, err
	}
	return t, c.save(role, data)
}

func (c *Client) acceptTargets(data []byte, role, delegator string) (*targetsMeta, error) {
	if err := c.checkFinalSnapshot(); err != nil {
		return nil, err
	}
	var keys []key
	var th threshold
	if delegator == RoleRoot {
		keys, th = c.root.keys, c.root.role(RoleTargets)
	} else {
		d := c.targets[delegator]
		var ok bool
		if th, ok = d.delegateFor(role); !ok {
			return nil, errf(KindNotFound, role, "%s does not delegate to it", delegator)
		}
		keys = d.keys
	}
	m, ok := c.snapshot.lookup(role + ".json")
	if !ok {
		return nil, errf(KindMissingMeta, role, "snapshot has no %s.json", role)
	}
	if err := verifyLengthAndHashes(c.snapshot.raw, m.length, m.hashes, data, role); err != nil {
		return nil, err
	}
	t, err := parseTargets(data, role, &c.lim)
	if err != nil {
		return nil, err
	}
	if err := c.verify(keys, th, &t.envelope, role); err != nil {
		return nil, err
	}
	if t.version != m.version {
		return nil, errf(KindRollback, role, "version %d where the snapshot announced %d", t.version, m.version)
	}
	if err := c.checkFinal(&t.envelope, role); err != nil {
		return nil, err
	}
	t.delegator = delegator
	c.targets[role] = t
	return t, nil
}

// Target finds path in the trusted targets, walking delegations in
// pre-order depth-first (spec §5.6.7), fetching delegated roles as needed.
// It uses the reference time of the last Refresh, which must have
// succeeded. Errors: KindNotFound when no trusted role lists
// the target, KindTooManyDelegations, and those of Refresh.
func (c *Client) Target(path string) (TargetInfo, error) {
	if !c.refreshed {
		return TargetInfo{}, errors.New("tufnano: Target before Refresh") // programmer error
	}
	if c.snapshot == nil || c.targets[RoleTargets] == nil {
		return TargetInfo{}, errf(KindNotFound, RoleTargets, "no trusted targets (the last refresh failed)")
	}
	type visit struct{ role, delegator string }
	stack := []visit{{RoleTargets, RoleRoot}}
	visited := map[string]bool{}
	for n := 0; n < c.lim.MaxDelegations && len(stack) > 0; {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[v.role] {
			continue
		}
		t, err := c.loadTargets(v.role, v.delegator)
		if err != nil {
			return TargetInfo{}, err
		}
		n++
		info, ok, err := t.lookup(path, v.role)
		if err != nil || ok {
			return info, err
		}
		visited[v.role] = true
		var children []visit
		for i := range t.delegated {
			d := &t.delegated[i]
			if !d.delegatedPath(path) {
				continue
			}
			children = append(children, visit{string(d.name), v.role})
			if d.terminating {
				stack = stack[:0]
				break
			}
		}
		if t.succinct != nil {
			children = append(children, visit{t.succinct.binName(path), v.role})
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	if len(stack) > 0 {
		return TargetInfo{}, errf(KindTooManyDelegations, path, "visited %d roles", c.lim.MaxDelegations)
	}
	return TargetInfo{}, errf(KindNotFound, path, "no trusted role lists the target")
}

// TargetFileName is the name under which the repository serves the target:
// its path, with the first listed hash before the base name when the root
// asks for consistent snapshots (spec §5.7.3).
func (c *Client) TargetFileName(info TargetInfo) string {
	if !c.root.consistent || len(info.Hashes) == 0 {
		return info.Path
	}
	i := strings.LastIndexByte(info.Path, '/') + 1
	dir, base := info.Path[:i], info.Path[i:]
	return dir + hex.EncodeToString(info.Hashes[0].Digest) + "." + base
}

// TargetVerifier checks a target file as it streams past (firmware does not
// fit in RAM): Write the bytes, then call Verify.
type TargetVerifier struct {
	info   TargetInfo
	n      int64
	hashes []hash.Hash
	err    error
}

// NewTargetVerifier starts verifying a download of info. Errors (from
// Verify): KindHash for an algorithm the device does not have.
func NewTargetVerifier(info TargetInfo) *TargetVerifier {
	v := &TargetVerifier{info: info}
	for _, h := range info.Hashes {
		var hh hash.Hash
		switch h.Algorithm {
		case "sha256":
			hh = sha256.New()
		case "sha224":
			hh = sha256.New224()
		case "sha384":
			hh = sha512.New384()
		case "sha512":
			hh = sha512.New()
		default:
			v.err = errf(KindHash, info.Path, "hash algorithm %q is not supported", h.Algorithm)
		}
		v.hashes = append(v.hashes, hh)
	}
	return v
}

// Write hashes p. It fails with KindLength as soon as the target is longer
// than announced, so a download can stop early.
func (v *TargetVerifier) Write(p []byte) (int, error) {
	v.n += int64(len(p))
	if v.n > v.info.Length {
		return 0, errf(KindLength, v.info.Path, "longer than the announced %d bytes", v.info.Length)
	}
	for _, h := range v.hashes {
		if h != nil {
			h.Write(p)
		}
	}
	return len(p), nil
}

// Verify reports whether the bytes written are the target. Errors:
// KindLength, KindHash.
func (v *TargetVerifier) Verify() error {
	if v.err != nil {
		return v.err
	}
	if v.n != v.info.Length {
		return errf(KindLength, v.info.Path, "%d bytes where %d were announced", v.n, v.info.Length)
	}
	for i, h := range v.hashes {
		var sum [64]byte
		if subtle.ConstantTimeCompare(h.Sum(sum[:0]), v.info.Hashes[i].Digest) != 1 {
			return errf(KindHash, v.info.Path, "%s mismatch", v.info.Hashes[i].Algorithm)
		}
	}
	return nil
}

// VerifyTarget checks a whole target file in memory. Errors: KindLength,
// KindHash.
func VerifyTarget(info TargetInfo, data []byte) error {
	v := NewTargetVerifier(info)
	if _, err := v.Write(data); err != nil {
		return err
	}
	return v.Verify()
}

// MetadataFileName is the remote name of a role's metadata: version 0 for
// the unversioned name. The role name is escaped as a URL path segment
// (every byte but letters, digits and "-._~" as %XX), so that names like
// "../x" or "a/b" stay one segment.
func MetadataFileName(role string, version int64) string {
	s := EscapeRoleName(role) + ".json"
	if version > 0 {
		s = strconv.FormatInt(version, 10) + "." + s
	}
	return s
}

// EscapeRoleName escapes a role name as a single URL path segment or file
// name.
func EscapeRoleName(role string) string {
	const hexDigits = "0123456789ABCDEF"
	out := make([]byte, 0, len(role))
	for i := 0; i < len(role); i++ {
		c := role[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			out = append(out, c)
		} else {
			out = append(out, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(out)
}
