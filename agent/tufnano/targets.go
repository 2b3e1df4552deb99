package tufnano

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// targetsMeta is a parsed targets role (top-level or delegated). Target
// entries are validated when parsed and read on demand.
type targetsMeta struct {
	envelope
	targets   jval
	delegator string // the role whose keys it was verified with
	// delegations; keys nil when the role delegates nothing
	keys      []key
	delegated []delegatedRole
	succinct  *succinctRoles
}

// delegatedRole is one entry of delegations.roles (spec §4.5).
type delegatedRole struct {
	name        []byte
	threshold   threshold
	terminating bool
	paths       [][]byte // shell-style patterns, or nil
	prefixes    [][]byte // path hash prefixes, or nil
}

// succinctRoles delegates to 2^bitLength hash bins (TAP 15).
type succinctRoles struct {
	threshold  threshold
	bitLength  int
	namePrefix []byte
}

func parseTargets(raw []byte, role string, lim *Limits) (*targetsMeta, error) {
	env, err := parseEnvelope(raw, RoleTargets, role, lim)
	if err != nil {
		return nil, err
	}
	t := &targetsMeta{envelope: env}
	var dels jval
	members(raw, env.signed, []string{"targets", "delegations"}, &t.targets, &dels)
	if t.targets.kind != jObject {
		return nil, errf(KindMalformed, role, "targets is not an object")
	}
	it := t.targets.iter(raw)
	for {
		_, v, ok := it.next()
		if !ok {
			break
		}
		if _, _, err := parseTargetFile(raw, v, role); err != nil {
			return nil, err
		}
	}
	if dels.kind != jInvalid {
		if err := t.parseDelegations(dels, role, lim); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// parseTargetFile checks a TARGETS entry: a length and a non-empty hashes
// object are required.
func parseTargetFile(b []byte, v jval, role string) (int64, jval, error) {
	if v.kind != jObject {
		return 0, jval{}, errf(KindMalformed, role, "target is not an object")
	}
	var lv, hv jval
	it := v.iter(b)
	for {
		k, val, ok := it.next()
		if !ok {
			break
		}
		switch {
		case strIs(b, k, "length"):
			lv = val
		case strIs(b, k, "hashes"):
			hv = val
		case strIs(b, k, "custom"):
			if val.kind != jObject {
				return 0, jval{}, errf(KindMalformed, role, "target custom is not an object")
			}
		}
	}
	n, ok := toInt(b, lv)
	if !ok || n < 0 {
		return 0, jval{}, errf(KindMalformed, role, "target length is not a non-negative integer")
	}
	if err := checkHashes(b, hv, role); err != nil {
		return 0, jval{}, err
	}
	return n, hv, nil
}

func (t *targetsMeta) parseDelegations(v jval, role string, lim *Limits) error {
	b := t.raw
	if v.kind != jObject {
		return errf(KindMalformed, role, "delegations is not an object")
	}
	var keys, roles, succinct jval
	members(b, v, []string{"keys", "roles", "succinct_roles"}, &keys, &roles, &succinct)
	var err error
	if t.keys, err = parseKeys(b, keys, lim.KeyTypes, role); err != nil {
		return err
	}
	if (roles.kind == jInvalid) == (succinct.kind == jInvalid) {
		return errf(KindMalformed, role, "delegations need exactly one of roles and succinct_roles")
	}
	if succinct.kind != jInvalid {
		return t.parseSuccinct(succinct, role)
	}
	if roles.kind != jArray {
		return errf(KindMalformed, role, "delegations roles is not an array")
	}
	it := roles.iter(b)
	for {
		_, rv, ok := it.next()
		if !ok {
			return nil
		}
		d, err := parseDelegatedRole(b, rv, role)
		if err != nil {
			return err
		}
		if isTopLevel(d.name) {
			return errf(KindMalformed, role, "delegated role named %q like a top-level role", d.name)
		}
		for i := range t.delegated {
			if bytes.Equal(t.delegated[i].name, d.name) {
				return errf(KindDuplicate, role, "delegated role %q given twice", d.name)
			}
		}
		t.delegated = append(t.delegated, d)
	}
}

func parseDelegatedRole(b []byte, v jval, role string) (delegatedRole, error) {
	var d delegatedRole
	var err error
	if d.threshold, err = parseThreshold(b, v, role); err != nil {
		return d, err
	}
	var name, term, paths, prefixes jval
	members(b, v, []string{"name", "terminating", "paths", "path_hash_prefixes"}, &name, &term, &paths, &prefixes)
	if name.kind != jString {
		return d, errf(KindMalformed, role, "delegated role without a name")
	}
	d.name = str(b, name)
	if term.kind != jTrue && term.kind != jFalse {
		return d, errf(KindMalformed, role, "delegated role %q: terminating is not a boolean", d.name)
	}
	d.terminating = term.kind == jTrue
	if paths.kind != jInvalid && prefixes.kind != jInvalid {
		return d, errf(KindMalformed, role, "delegated role %q has both paths and path_hash_prefixes", d.name)
	}
	if paths.kind != jInvalid {
		if d.paths, err = stringList(b, paths, role, "paths"); err != nil {
			return d, err
		}
	}
	if prefixes.kind != jInvalid {
		if d.prefixes, err = stringList(b, prefixes, role, "path_hash_prefixes"); err != nil {
			return d, err
		}
	}
	return d, nil
}

func (t *targetsMeta) parseSuccinct(v jval, role string) error {
	b := t.raw
	th, err := parseThreshold(b, v, role)
	if err != nil {
		return err
	}
	var bl, np jval
	members(b, v, []string{"bit_length", "name_prefix"}, &bl, &np)
	n, ok := toInt(b, bl)
	if !ok || n < 1 || n > 32 {
		return errf(KindMalformed, role, "succinct_roles bit_length is not in 1..32")
	}
	if np.kind != jString {
		return errf(KindMalformed, role, "succinct_roles without name_prefix")
	}
	t.succinct = &succinctRoles{threshold: th, bitLength: int(n), namePrefix: str(b, np)}
	return nil
}

// binName returns the hash bin role that the succinct delegation assigns to
// target path: the first bitLength bits of SHA-256(path), in hex padded to
// the width of the largest bin number.
func (s *succinctRoles) binName(path string) string {
	d := sha256.Sum256([]byte(path))
	bin := binary.BigEndian.Uint32(d[:4]) >> (32 - s.bitLength)
	width := len(strconv.FormatUint(uint64(1)<<s.bitLength-1, 16))
	h := strconv.FormatUint(uint64(bin), 16)
	for len(h) < width {
		h = "0" + h
	}
	return string(s.namePrefix) + "-" + h
}

// isBin reports whether name is one of the succinct delegation's bins.
func (s *succinctRoles) isBin(name string) bool {
	p := string(s.namePrefix) + "-"
	if len(name) <= len(p) || name[:len(p)] != p {
		return false
	}
	suffix := name[len(p):]
	width := len(strconv.FormatUint(uint64(1)<<s.bitLength-1, 16))
	if len(suffix) != width {
		return false
	}
	n, err := strconv.ParseUint(suffix, 16, 64)
	return err == nil && n < uint64(1)<<s.bitLength
}

// delegateFor returns the keys and threshold t gives the delegated role
// name, if it delegates that role.
func (t *targetsMeta) delegateFor(name string) (threshold, bool) {
	for i := range t.delegated {
		if string(t.delegated[i].name) == name {
			return t.delegated[i].threshold, true
		}
	}
	if t.succinct != nil && t.succinct.isBin(name) {
		return t.succinct.threshold, true
	}
	return threshold{}, false
}

// delegatedPath reports whether d is trusted for target path (spec §4.5:
// paths are shell-style patterns matched segment by segment, or prefixes
// of the hex SHA-256 of the path).
func (d *delegatedRole) delegatedPath(path string) bool {
	for _, p := range d.paths {
		if matchPath(string(p), path) {
			return true
		}
	}
	if len(d.prefixes) > 0 {
		sum := sha256.Sum256([]byte(path))
		var hx [64]byte
		hex.Encode(hx[:], sum[:])
		for _, p := range d.prefixes {
			if bytes.HasPrefix(hx[:], p) {
				return true
			}
		}
	}
	return false
}

// matchPath matches a target path against a pattern with the same number
// of "/"-separated segments, each matched by matchSegment.
func matchPath(pattern, path string) bool {
	for {
		pi, ti := strings.IndexByte(pattern, '/'), strings.IndexByte(path, '/')
		if (pi < 0) != (ti < 0) {
			return false
		}
		if pi < 0 {
			return matchSegment(pattern, path)
		}
		if !matchSegment(pattern[:pi], path[:ti]) {
			return false
		}
		pattern, path = pattern[pi+1:], path[ti+1:]
	}
}

// matchSegment is shell-style matching: * any run, ? one character,
// [set] / [!set] with ranges; an unclosed [ is literal. It backtracks only
// to the last *, so it runs in time linear in the pattern times the name.
func matchSegment(pattern, name string) bool {
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				starP, starN = p, n
				p++
				continue
			case '?':
				p++
				n++
				continue
			case '[':
				if end, ok := matchClass(pattern, p, name[n]); end > 0 {
					if ok {
						p, n = end, n+1
						continue
					}
				} else if name[n] == '[' {
					p++
					n++
					continue
				}
			default:
				if pattern[p] == name[n] {
					p++
					n++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starN++
		p, n = starP+1, starN
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the class that starts at pattern[p] == '['.
// It returns the offset after the class (0 if the class is not closed).
func matchClass(pattern string, p int, c byte) (int, bool) {
	i := p + 1
	neg := i < len(pattern) && pattern[i] == '!'
	if neg {
		i++
	}
	match := false
	first := true
	for i < len(pattern) {
		if pattern[i] == ']' && !first {
			return i + 1, match != neg
		}
		first = false
		lo := pattern[i]
		if i+2 < len(pattern) && pattern[i+1] == '-' && pattern[i+2] != ']' {
			if lo <= c && c <= pattern[i+2] {
				match = true
			}
			i += 3
			continue
		}
		if lo == c {
			match = true
		}
		i++
	}
	return 0, false
}

// TargetInfo is what trusted targets metadata says about one target file.
type TargetInfo struct {
	Path   string
	Length int64
	// Hashes maps algorithm to digest, in the order the metadata lists them.
	Hashes []TargetHash
	// Custom is the raw JSON of the target's "custom" object, or nil.
	Custom []byte
	// Role is the targets role that listed the target.
	Role string
}

// TargetHash is one digest of a target file.
type TargetHash struct {
	Algorithm string
	Digest    []byte
}

// lookup returns the entry for path in this role's targets.
func (t *targetsMeta) lookup(path, role string) (TargetInfo, bool, error) {
	b := t.raw
	v, ok := member(b, t.targets, path)
	if !ok {
		return TargetInfo{}, false, nil
	}
	n, hv, _ := parseTargetFile(b, v, role)
	info := TargetInfo{Path: path, Length: n, Role: role}
	it := hv.iter(b)
	for {
		alg, d, ok := it.next()
		if !ok {
			break
		}
		ds := str(b, d)
		digest := make([]byte, len(ds)/2)
		if len(ds)%2 != 0 || !decodeHex(digest, ds) {
			return TargetInfo{}, false, errf(KindMalformed, role, "target %q: hash is not hex", path)
		}
		info.Hashes = append(info.Hashes, TargetHash{Algorithm: string(str(b, alg)), Digest: digest})
	}
	if c, ok := member(b, v, "custom"); ok {
		info.Custom = append([]byte(nil), b[c.start:c.end]...)
	}
	return info, true, nil
}
