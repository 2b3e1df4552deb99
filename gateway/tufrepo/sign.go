package tufrepo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// File is one metadata file exactly as the gateway serves it.
type File struct {
	// Name is the name under /repo/, e.g. "timestamp.json", "3.root.json".
	Name string
	// Data are the served bytes. They are shared with the repository and
	// must not be modified.
	Data []byte
	// SHA256 is the hex SHA-256 of Data, the value of the gateway's
	// x-ats-role-checksum header.
	SHA256 string
	// Signatures is the number of signatures in the file.
	Signatures int
}

// canonical returns the canonical JSON of a role's signed section: the bytes
// TUF signatures cover. It is go-securesystemslib's encoder, the one go-tuf
// verifies with, so what we sign is what go-tuf checks.
func canonical(signed any) ([]byte, error) {
	return cjson.EncodeCanonical(signed)
}

// served assembles a metadata file from the canonical signed bytes and their
// signatures. The whole file is canonical too: keys "signatures" < "signed",
// "keyid" < "sig", no whitespace, signatures sorted by key ID.
//
// OLPC canonical JSON leaves control characters inside strings unescaped,
// which JSON forbids; only PEM public keys contain them (newlines). They are
// written as JSON escapes, the one place where the served signed section
// differs from the signed bytes (see the package comment). Outside strings
// canonical JSON has no whitespace, so every byte below 0x20 is inside a
// string and can be escaped without parsing.
func served(payload []byte, sigs []signature) []byte {
	var b bytes.Buffer
	b.Grow(len(payload) + 64 + len(sigs)*(64+2*512+24))
	b.WriteString(`{"signatures":[`)
	for i, s := range sigs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"keyid":"`)
		b.WriteString(s.keyID)
		b.WriteString(`","sig":"`)
		b.WriteString(hex.EncodeToString(s.sig))
		b.WriteString(`"}`)
	}
	b.WriteString(`],"signed":`)
	writeEscapedControls(&b, payload)
	b.WriteByte('}')
	return b.Bytes()
}

const hexDigits = "0123456789abcdef"

func writeEscapedControls(b *bytes.Buffer, p []byte) {
	start := 0
	for i, c := range p {
		if c >= 0x20 {
			continue
		}
		b.Write(p[start:i])
		switch c {
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.Write(p[start:])
}

type signature struct {
	keyID string
	sig   []byte
}

// signFile signs a role's signed section with every key in signers and
// returns the served file. Signers are used in key ID order so the output does
// not depend on the order keys were given in.
func signFile(name string, signed any, signers []*PrivateKey, random io.Reader) (File, error) {
	payload, err := canonical(signed)
	if err != nil {
		return File{}, err
	}
	return signPayload(name, payload, signers, random)
}

// signPayload signs canonical bytes already encoded.
func signPayload(name string, payload []byte, signers []*PrivateKey, random io.Reader) (File, error) {
	signers = slices.Clone(signers)
	slices.SortFunc(signers, func(a, b *PrivateKey) int { return strings.Compare(a.id, b.id) })
	sigs := make([]signature, 0, len(signers))
	for i, k := range signers {
		if i > 0 && signers[i-1].id == k.id {
			continue
		}
		s, err := k.sign(payload, random)
		if err != nil {
			return File{}, err
		}
		sigs = append(sigs, signature{keyID: k.id, sig: s})
	}
	return newFile(name, served(payload, sigs), len(sigs)), nil
}

func newFile(name string, data []byte, nsigs int) File {
	sum := sha256.Sum256(data)
	return File{Name: name, Data: data, SHA256: hex.EncodeToString(sum[:]), Signatures: nsigs}
}

// canonicalTargets encodes a targets role's signed section from the
// canonical bytes of its entries, sorted by name. It is the same canonical
// JSON cjson produces (TestCanonicalTargetsMatchesCJSON checks it on random
// inputs) without re-encoding every entry on every publication: with a
// thousand targets that is the difference between milliseconds and tens of
// milliseconds per target added.
func canonicalTargets(version int64, expires time.Time, names []string, entries map[string]*targetRec) []byte {
	size := 128
	for _, n := range names {
		size += len(n) + len(entries[n].canon) + 4
	}
	b := make([]byte, 0, size)
	// Keys in byte order: _type < expires < spec_version < targets < version.
	b = append(b, `{"_type":"targets","expires":"`...)
	b = expires.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","spec_version":"`...)
	b = append(b, metadata.SPECIFICATION_VERSION...)
	b = append(b, `","targets":{`...)
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCanonicalString(b, n)
		b = append(b, ':')
		b = append(b, entries[n].canon...)
	}
	b = append(b, `},"version":`...)
	b = strconv.AppendInt(b, version, 10)
	return append(b, '}')
}

// appendCanonicalString quotes s as OLPC canonical JSON does: only
// backslash and double quote are escaped.
func appendCanonicalString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '"' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
