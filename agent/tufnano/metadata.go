package tufnano

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"hash"
	"time"
)

// The four top-level roles of the TUF specification.
const (
	RoleRoot      = "root"
	RoleTimestamp = "timestamp"
	RoleSnapshot  = "snapshot"
	RoleTargets   = "targets"
)

// foundriesType is how FoundriesFactory spells a role's _type.
func foundriesType(role string) string {
	switch role {
	case RoleRoot:
		return "Root"
	case RoleTimestamp:
		return "Timestamp"
	case RoleSnapshot:
		return "Snapshot"
	}
	return "Targets"
}

func isTopLevel(name []byte) bool {
	switch string(name) {
	case RoleRoot, RoleTimestamp, RoleSnapshot, RoleTargets:
		return true
	}
	return false
}

// signature is one entry of the "signatures" array.
type signature struct {
	keyid  []byte
	sig    jval // a string: hex, or base64 in Foundries' metadata
	method jval // Foundries only: the signature's scheme
}

// envelope is a parsed metadata file: its bytes, the signed part, the
// signatures and the fields every role has.
type envelope struct {
	raw       []byte
	signed    jval
	sigs      []signature
	version   int64
	expires   time.Time
	foundries bool // _type as FoundriesFactory spells it
}

func (e *envelope) signatureBy(id []byte) *signature {
	for i := range e.sigs {
		if bytes.Equal(e.sigs[i].keyid, id) {
			return &e.sigs[i]
		}
	}
	return nil
}

func (e *envelope) expired(now time.Time) bool { return !now.Before(e.expires) }

// parseEnvelope reads the common shape of a metadata file of the given type
// (a top-level role name; delegated roles are "targets"). Errors:
// KindMalformed, KindWrongType, KindDuplicate (two signatures by one key
// id, spec §4.2), KindTooManySignatures.
func parseEnvelope(raw []byte, typ, role string, lim *Limits) (envelope, error) {
	doc, err := parseDocument(raw)
	if err != nil {
		err.(*Error).Role = role
		return envelope{}, err
	}
	if doc.kind != jObject {
		return envelope{}, errf(KindMalformed, role, "metadata is not an object")
	}
	var signed, sigs jval
	members(raw, doc, []string{"signed", "signatures"}, &signed, &sigs)
	if signed.kind != jObject || sigs.kind != jArray {
		return envelope{}, errf(KindMalformed, role, "metadata without signed object and signatures array")
	}
	env := envelope{raw: raw, signed: signed}
	if err := env.parseSignatures(sigs, role, lim); err != nil {
		return envelope{}, err
	}
	if err := env.parseHeader(typ, role); err != nil {
		return envelope{}, err
	}
	return env, nil
}

func (e *envelope) parseSignatures(v jval, role string, lim *Limits) error {
	b := e.raw
	n := v.count(b)
	if n > lim.MaxSignatures {
		return errf(KindTooManySignatures, role, "%d signatures, the device keeps at most %d", n, lim.MaxSignatures)
	}
	e.sigs = make([]signature, 0, n)
	it := v.iter(b)
	for {
		_, sv, ok := it.next()
		if !ok {
			return nil
		}
		if sv.kind != jObject {
			return errf(KindMalformed, role, "signature is not an object")
		}
		var s signature
		var keyid jval
		members(b, sv, []string{"keyid", "sig", "method"}, &keyid, &s.sig, &s.method)
		if keyid.kind != jString || s.sig.kind != jString || (s.method.kind != jInvalid && s.method.kind != jString) {
			return errf(KindMalformed, role, "signature without string keyid and sig")
		}
		s.keyid = str(b, keyid)
		if e.signatureBy(s.keyid) != nil {
			return errf(KindDuplicate, role, "two signatures by key id %.16s", s.keyid)
		}
		e.sigs = append(e.sigs, s)
	}
}

func (e *envelope) parseHeader(typ, role string) error {
	b := e.raw
	var t, spec, version, expires jval
	members(b, e.signed, []string{"_type", "spec_version", "version", "expires"}, &t, &spec, &version, &expires)
	switch {
	case t.kind != jString:
		return errf(KindMalformed, role, "no _type")
	case strIs(b, t, typ):
	case strIs(b, t, foundriesType(typ)):
		e.foundries = true
	default:
		return errf(KindWrongType, role, "_type %q where %q was expected", str(b, t), typ)
	}
	// Foundries' metadata carries no spec_version; TUF's must, with major 1.
	if spec.kind != jInvalid || !e.foundries {
		if spec.kind != jString || !supportedSpec(str(b, spec)) {
			return errf(KindMalformed, role, "missing or unsupported spec_version")
		}
	}
	var ok bool
	if e.version, ok = toInt(b, version); !ok || e.version < 1 {
		return errf(KindMalformed, role, "version is not a positive integer")
	}
	if expires.kind != jString {
		return errf(KindMalformed, role, "no expires")
	}
	if e.expires, ok = parseExpires(str(b, expires)); !ok {
		return errf(KindMalformed, role, "expires is not of the form YYYY-MM-DDTHH:MM:SSZ")
	}
	return nil
}

// supportedSpec accepts "1.x" and "1.x.y" (spec §4.2: clients support the
// major version they implement).
func supportedSpec(s []byte) bool {
	parts, digits := 1, 0
	for _, c := range s {
		switch {
		case c == '.':
			if digits == 0 {
				return false
			}
			parts, digits = parts+1, 0
		case c >= '0' && c <= '9':
			digits++
		default:
			return false
		}
	}
	return digits > 0 && (parts == 2 || parts == 3) && s[0] == '1' && (len(s) == 1 || s[1] == '.')
}

// parseExpires reads the one timestamp form TUF allows, in UTC.
func parseExpires(s []byte) (time.Time, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, se := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false // 31 April and the like
	}
	return t, true
}

// rootMeta is a parsed root: its keys and the four top-level roles.
type rootMeta struct {
	envelope
	consistent bool
	keys       []key
	roles      [4]threshold // root, timestamp, snapshot, targets
}

// role is the keys and threshold root gives the top-level role name.
func (r *rootMeta) role(name string) threshold { return r.roles[roleIndex(name)] }

func roleIndex(role string) int {
	switch role {
	case RoleRoot:
		return 0
	case RoleTimestamp:
		return 1
	case RoleSnapshot:
		return 2
	}
	return 3
}

func parseRoot(raw []byte, lim *Limits) (*rootMeta, error) {
	env, err := parseEnvelope(raw, RoleRoot, RoleRoot, lim)
	if err != nil {
		return nil, err
	}
	r := &rootMeta{envelope: env}
	b := raw
	var keys, roles jval
	it := env.signed.iter(b)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		switch {
		case strIs(b, k, "keys"):
			keys = v
		case strIs(b, k, "roles"):
			roles = v
		case strIs(b, k, "consistent_snapshot"):
			if v.kind != jTrue && v.kind != jFalse {
				return nil, errf(KindMalformed, RoleRoot, "consistent_snapshot is not a boolean")
			}
			r.consistent = v.kind == jTrue
		}
	}
	if r.keys, err = parseKeys(b, keys, lim.KeyTypes, RoleRoot); err != nil {
		return nil, err
	}
	if roles.kind != jObject {
		return nil, errf(KindMalformed, RoleRoot, "roles is not an object")
	}
	var seen [4]bool
	it = roles.iter(b)
	for {
		k, v, ok := it.next()
		if !ok {
			break
		}
		name := str(b, k)
		if !isTopLevel(name) {
			return nil, errf(KindMalformed, RoleRoot, "root delegates %q, not a top-level role", name)
		}
		i := roleIndex(string(name))
		if seen[i] {
			return nil, errf(KindDuplicate, RoleRoot, "role %s given twice", name)
		}
		seen[i] = true
		if r.roles[i], err = parseThreshold(b, v, RoleRoot); err != nil {
			return nil, err
		}
	}
	if seen != [4]bool{true, true, true, true} {
		return nil, errf(KindMalformed, RoleRoot, "root must delegate root, timestamp, snapshot and targets")
	}
	return r, nil
}

// parseThreshold reads the "keyids" and "threshold" of a role object.
func parseThreshold(b []byte, v jval, role string) (threshold, error) {
	if v.kind != jObject {
		return threshold{}, errf(KindMalformed, role, "role is not an object")
	}
	var ids, tv jval
	members(b, v, []string{"keyids", "threshold"}, &ids, &tv)
	n, ok := toInt(b, tv)
	if !ok || n < 1 || n > 1<<16 {
		return threshold{}, errf(KindMalformed, role, "threshold is not a positive integer")
	}
	ks, err := stringList(b, ids, role, "keyids")
	if err != nil {
		return threshold{}, err
	}
	for i := range ks {
		for j := 0; j < i; j++ {
			if bytes.Equal(ks[i], ks[j]) {
				return threshold{}, errf(KindDuplicate, role, "key id %.16s listed twice for one role", ks[i])
			}
		}
	}
	return threshold{keyids: ks, threshold: int(n)}, nil
}

func stringList(b []byte, v jval, role, field string) ([][]byte, error) {
	if v.kind != jArray {
		return nil, errf(KindMalformed, role, "%s is not an array", field)
	}
	out := make([][]byte, 0, v.count(b))
	it := v.iter(b)
	for {
		_, e, ok := it.next()
		if !ok {
			return out, nil
		}
		if e.kind != jString {
			return nil, errf(KindMalformed, role, "%s holds a non-string", field)
		}
		out = append(out, str(b, e))
	}
}

// metaFile is a METAFILES entry (spec §4.4, §4.5): the version of a role's
// metadata and optionally its length and hashes.
type metaFile struct {
	version int64
	length  int64 // -1: not given
	hashes  jval  // object, or jInvalid when not given
}

func parseMetaFile(b []byte, v jval, role string) (metaFile, error) {
	if v.kind != jObject {
		return metaFile{}, errf(KindMalformed, role, "meta entry is not an object")
	}
	m := metaFile{length: -1}
	var version jval
	it := v.iter(b)
	for {
		k, val, ok := it.next()
		if !ok {
			break
		}
		switch {
		case strIs(b, k, "version"):
			version = val
		case strIs(b, k, "length"):
			n, ok := toInt(b, val)
			if !ok || n < 0 {
				return metaFile{}, errf(KindMalformed, role, "meta length is not a non-negative integer")
			}
			m.length = n
		case strIs(b, k, "hashes"):
			if err := checkHashes(b, val, role); err != nil {
				return metaFile{}, err
			}
			m.hashes = val
		}
	}
	var ok bool
	if m.version, ok = toInt(b, version); !ok || m.version < 1 {
		return metaFile{}, errf(KindMalformed, role, "meta version is not a positive integer")
	}
	return m, nil
}

func checkHashes(b []byte, v jval, role string) error {
	if v.kind != jObject {
		return errf(KindMalformed, role, "hashes is not an object")
	}
	n := 0
	it := v.iter(b)
	for {
		_, h, ok := it.next()
		if !ok {
			break
		}
		if h.kind != jString {
			return errf(KindMalformed, role, "hash is not a string")
		}
		n++
	}
	if n == 0 {
		return errf(KindMalformed, role, "hashes is empty")
	}
	return nil
}

// verifyLengthAndHashes checks data against a length (-1: none) and a hashes
// object (jInvalid: none) from metadata b. Every listed hash must be of an
// algorithm the device has and must match: an unknown algorithm is a
// mismatch, never a pass. Errors: KindLength, KindHash.
func verifyLengthAndHashes(b []byte, length int64, hashes jval, data []byte, role string) error {
	if length >= 0 && int64(len(data)) != length {
		return errf(KindLength, role, "%d bytes where %d were announced", len(data), length)
	}
	if hashes.kind != jObject {
		return nil
	}
	it := hashes.iter(b)
	for {
		alg, want, ok := it.next()
		if !ok {
			return nil
		}
		h := newHash(b, alg)
		if h == nil {
			return errf(KindHash, role, "hash algorithm %q is not supported", str(b, alg))
		}
		h.Write(data)
		var sum [64]byte
		got := h.Sum(sum[:0])
		var wantBuf [64]byte
		w := str(b, want)
		if len(w) != 2*len(got) || !decodeHex(wantBuf[:len(got)], w) ||
			subtle.ConstantTimeCompare(got, wantBuf[:len(got)]) != 1 {
			return errf(KindHash, role, "%s mismatch", str(b, alg))
		}
	}
}

func newHash(b []byte, alg jval) hash.Hash {
	switch {
	case strIs(b, alg, "sha256"):
		return sha256.New()
	case strIs(b, alg, "sha224"):
		return sha256.New224()
	case strIs(b, alg, "sha384"):
		return sha512.New384()
	case strIs(b, alg, "sha512"):
		return sha512.New()
	}
	return nil
}

// timestampMeta is a parsed timestamp.
type timestampMeta struct {
	envelope
	snapshot metaFile
}

func parseTimestamp(raw []byte, lim *Limits) (*timestampMeta, error) {
	env, err := parseEnvelope(raw, RoleTimestamp, RoleTimestamp, lim)
	if err != nil {
		return nil, err
	}
	meta, _ := member(raw, env.signed, "meta")
	if meta.kind != jObject {
		return nil, errf(KindMalformed, RoleTimestamp, "meta is not an object")
	}
	sv, ok := member(raw, meta, "snapshot.json")
	if !ok {
		return nil, errf(KindMissingMeta, RoleTimestamp, "no snapshot.json in meta")
	}
	ts := &timestampMeta{envelope: env}
	if ts.snapshot, err = parseMetaFile(raw, sv, RoleTimestamp); err != nil {
		return nil, err
	}
	return ts, nil
}

// snapshotMeta is a parsed snapshot; its meta entries are read on demand.
type snapshotMeta struct {
	envelope
	meta jval
}

func parseSnapshot(raw []byte, lim *Limits) (*snapshotMeta, error) {
	env, err := parseEnvelope(raw, RoleSnapshot, RoleSnapshot, lim)
	if err != nil {
		return nil, err
	}
	meta, _ := member(raw, env.signed, "meta")
	if meta.kind != jObject {
		return nil, errf(KindMalformed, RoleSnapshot, "meta is not an object")
	}
	it := meta.iter(raw)
	for {
		_, v, ok := it.next()
		if !ok {
			break
		}
		if _, err := parseMetaFile(raw, v, RoleSnapshot); err != nil {
			return nil, err
		}
	}
	return &snapshotMeta{envelope: env, meta: meta}, nil
}

// lookup returns the entry for file name ("targets.json", "role.json").
func (s *snapshotMeta) lookup(name string) (metaFile, bool) {
	v, ok := member(s.raw, s.meta, name)
	if !ok {
		return metaFile{}, false
	}
	m, _ := parseMetaFile(s.raw, v, RoleSnapshot) // validated when parsed
	return m, true
}
