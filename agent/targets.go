package agent

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Target is the update the agent selected from targets.json: what it
// downloads and how it checks the bytes.
type Target struct {
	// Version is custom.version, the image's build number.
	Version uint32
	// Length is the firmware's size in bytes.
	Length int64
	// SHA256 is the firmware's digest; it also names the file on the
	// firmware host.
	SHA256 [32]byte
}

// FilePath is where the firmware host serves the target:
// /mcu/files/<first byte>/<other 31 bytes>.bin in lowercase hex.
func (t Target) FilePath() string {
	var b [11 + 2 + 1 + 62 + 4]byte
	n := copy(b[:], "/mcu/files/")
	hex.Encode(b[n:], t.SHA256[:1])
	n += 2
	b[n] = '/'
	n++
	hex.Encode(b[n:], t.SHA256[1:])
	n += 62
	copy(b[n:], ".bin")
	return string(b[:])
}

// ErrTargets: targets.json is not what the selection can read (invalid
// JSON, no signed.targets, an empty tag).
var ErrTargets = errors.New("unusable targets metadata")

// maxListEntries is how many entries of custom.hardwareIds and custom.tags
// aknano looks at (JSON_ARRAY_LIMIT_COUNT).
const maxListEntries = 10

// SelectTarget picks the update from the top-level targets.json as
// aktualizr-nano does (aknano_targets_manifest.c): the highest
// custom.version among the targets whose custom.hardwareIds list hwid and
// whose custom.tags list tag (each list read to its first 10 entries),
// with a 64-hex-digit hashes.sha256. Its quirks are kept:
//   - an entry matches when it is a prefix of the device's value, unless
//     exact is set (strncmp with the entry's length);
//   - a target without custom.version, custom.hardwareIds, custom.tags or a
//     valid sha256 stops the walk: targets after it are not considered,
//     those before keep their selection;
//   - a target without length is skipped;
//   - versions are read with sscanf("%u"), so a string or a number works
//     and text after the digits is ignored.
//
// It returns the zero Target when nothing matches, and the number of
// targets it walked (each costs aknano a pause). Errors: ErrTargets.
func SelectTarget(targetsJSON []byte, hwid, tag string, exact bool) (Target, int, error) {
	if tag == "" {
		return Target{}, 0, fmt.Errorf("%w: the device has no tag", ErrTargets)
	}
	if !validJSON(targetsJSON) {
		return Target{}, 0, fmt.Errorf("%w: not valid JSON", ErrTargets)
	}
	list, ok := jsonLookup(targetsJSON, "signed", "targets")
	if !ok {
		return Target{}, 0, fmt.Errorf("%w: no signed.targets", ErrTargets)
	}
	var sel Target
	walked := 0
	jsonMembers(list, func(_, v []byte) bool {
		walked++
		return considerTarget(v, hwid, tag, exact, &sel)
	})
	return sel, walked, nil
}

// considerTarget is tuf_parse_single_target: it updates sel when v is a
// better match and reports whether the walk goes on.
func considerTarget(v []byte, hwid, tag string, exact bool, sel *Target) bool {
	var t Target
	raw, ok := jsonLookup(v, "custom", "version")
	if !ok {
		return false
	}
	t.Version, _ = scanUint(jsonText(raw))
	if t.Version <= sel.Version {
		return true
	}
	ids, ok := jsonLookup(v, "custom", "hardwareIds")
	if !ok {
		return false
	}
	if !listMatches(ids, hwid, exact) {
		return true
	}
	tags, ok := jsonLookup(v, "custom", "tags")
	if !ok {
		return false
	}
	if !listMatches(tags, tag, exact) {
		return true
	}
	sum, ok := jsonLookup(v, "hashes", "sha256")
	if !ok {
		return false
	}
	if s := jsonText(sum); len(s) != 64 || !decodeHexInto(t.SHA256[:], s) {
		return false
	}
	length, ok := jsonLookup(v, "length")
	if !ok {
		return true
	}
	n, _ := scanUint(jsonText(length))
	t.Length = int64(n)
	*sel = t
	return true
}

// listMatches reports whether one of the first entries of the array list
// matches want.
func listMatches(list []byte, want string, exact bool) bool {
	for i := 0; i < maxListEntries; i++ {
		e, ok := jsonIndex(list, i)
		if !ok {
			return false
		}
		s := jsonText(e)
		if exact {
			if string(s) == want {
				return true
			}
		} else if len(s) <= len(want) && string(s) == want[:len(s)] {
			return true
		}
	}
	return false
}

func decodeHexInto(dst, src []byte) bool {
	_, err := hex.Decode(dst, src)
	return err == nil
}
