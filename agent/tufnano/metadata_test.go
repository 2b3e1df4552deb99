package tufnano

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// TestParseRejects states, file by file, what the parsers refuse and why.
func TestParseRejects(t *testing.T) {
	const key = `{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"` +
		`0000000000000000000000000000000000000000000000000000000000000000"}}`
	roles := `"roles":{"root":{"keyids":["k"],"threshold":1},"timestamp":{"keyids":["k"],"threshold":1},` +
		`"snapshot":{"keyids":["k"],"threshold":1},"targets":{"keyids":["k"],"threshold":1}}`
	head := `"spec_version":"1.0.31","version":1,"expires":"2030-01-01T00:00:00Z"`
	file := func(signed string) string { return `{"signatures":[],"signed":{` + signed + `}}` }
	root := func(extra string) string {
		return file(`"_type":"root",` + head + `,"keys":{"k":` + key + `},` + roles + extra)
	}
	targets := func(body string) string { return file(`"_type":"targets",` + head + `,` + body) }
	for _, c := range []struct {
		name, role, data string
		want             Kind
	}{
		{"not JSON", RoleRoot, `{"signed":`, KindMalformed},
		{"trailing bytes", RoleRoot, root("") + "x", KindMalformed},
		{"not an object", RoleRoot, `[]`, KindMalformed},
		{"no signatures", RoleRoot, `{"signed":{}}`, KindMalformed},
		{"signature without sig", RoleRoot, `{"signatures":[{"keyid":"k"}],"signed":{}}`, KindMalformed},
		{"no _type", RoleTimestamp, file(head), KindMalformed},
		{"other role", RoleTimestamp, root(""), KindWrongType},
		{"upper-case TUF spelling is not Foundries'", RoleRoot, file(`"_type":"ROOT",` + head), KindWrongType},
		{"no spec_version", RoleRoot, file(`"_type":"root","version":1,"expires":"2030-01-01T00:00:00Z"`), KindMalformed},
		{"spec_version 2", RoleRoot, file(`"_type":"root","spec_version":"2.0","version":1,"expires":"2030-01-01T00:00:00Z"`), KindMalformed},
		{"version 0", RoleRoot, file(`"_type":"root","spec_version":"1.0","version":0,"expires":"2030-01-01T00:00:00Z"`), KindMalformed},
		{"version as string", RoleRoot, file(`"_type":"root","spec_version":"1.0","version":"1","expires":"2030-01-01T00:00:00Z"`), KindMalformed},
		{"fractional expiry", RoleRoot, file(`"_type":"root","spec_version":"1.0","version":1,"expires":"2030-01-01T00:00:00.5Z"`), KindMalformed},
		{"31 April", RoleRoot, file(`"_type":"root","spec_version":"1.0","version":1,"expires":"2030-04-31T00:00:00Z"`), KindMalformed},
		{"root without targets role", RoleRoot, file(`"_type":"root",` + head + `,"keys":{},"roles":{"root":{"keyids":[],"threshold":1}}`), KindMalformed},
		{"root delegating a non-top-level role", RoleRoot, root(`,"roles":{"x":{"keyids":[],"threshold":1}}`), KindMalformed},
		{"threshold 0", RoleRoot, file(`"_type":"root",` + head + `,"keys":{},` + strings.Replace(roles, `"threshold":1}}`, `"threshold":0}}`, 1)), KindMalformed},
		{"key id twice in a role", RoleRoot, file(`"_type":"root",` + head + `,"keys":{},` + strings.Replace(roles, `["k"]`, `["k","k"]`, 1)), KindDuplicate},
		{"key without scheme", RoleRoot, file(`"_type":"root",` + head + `,"keys":{"k":{"keytype":"ed25519","keyval":{}}},` + roles), KindMalformed},
		{"key id twice in keys", RoleRoot, file(`"_type":"root",` + head + `,"keys":{"k":` + key + `,"k":` + key + `},` + roles), KindDuplicate},
		{"consistent_snapshot not boolean", RoleRoot, root(`,"consistent_snapshot":1`), KindMalformed},
		{"timestamp without snapshot.json", RoleTimestamp, file(`"_type":"timestamp",` + head + `,"meta":{}`), KindMissingMeta},
		{"meta length negative", RoleTimestamp, file(`"_type":"timestamp",` + head + `,"meta":{"snapshot.json":{"version":1,"length":-1}}`), KindMalformed},
		{"meta hashes empty", RoleTimestamp, file(`"_type":"timestamp",` + head + `,"meta":{"snapshot.json":{"version":1,"hashes":{}}}`), KindMalformed},
		{"meta without version", RoleSnapshot, file(`"_type":"snapshot",` + head + `,"meta":{"targets.json":{}}`), KindMalformed},
		{"target without hashes", RoleTargets, targets(`"targets":{"a":{"length":1}}`), KindMalformed},
		{"target with negative length", RoleTargets, targets(`"targets":{"a":{"length":-1,"hashes":{"sha256":"00"}}}`), KindMalformed},
		{"target custom not an object", RoleTargets, targets(`"targets":{"a":{"length":1,"hashes":{"sha256":"00"},"custom":1}}`), KindMalformed},
		{"delegations with roles and bins", RoleTargets, targets(`"targets":{},"delegations":{"keys":{},"roles":[],"succinct_roles":{}}`), KindMalformed},
		{"delegated role named targets", RoleTargets, targets(`"targets":{},"delegations":{"keys":{},"roles":[{"name":"targets","keyids":[],"threshold":1,"terminating":false,"paths":[]}]}`), KindMalformed},
		{"delegated role twice", RoleTargets, targets(`"targets":{},"delegations":{"keys":{},"roles":[` +
			`{"name":"a","keyids":[],"threshold":1,"terminating":false,"paths":[]},` +
			`{"name":"a","keyids":[],"threshold":1,"terminating":false,"paths":[]}]}`), KindDuplicate},
		{"paths and prefixes", RoleTargets, targets(`"targets":{},"delegations":{"keys":{},"roles":[{"name":"a","keyids":[],"threshold":1,"terminating":false,"paths":[],"path_hash_prefixes":[]}]}`), KindMalformed},
		{"terminating missing", RoleTargets, targets(`"targets":{},"delegations":{"keys":{},"roles":[{"name":"a","keyids":[],"threshold":1,"paths":[]}]}`), KindMalformed},
		{"bit_length 33", RoleTargets, targets(`"targets":{},"delegations":{"keys":{},"succinct_roles":{"keyids":[],"threshold":1,"bit_length":33,"name_prefix":"b"}}`), KindMalformed},
		{"nesting beyond the limit", RoleTargets, targets(`"targets":{},"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40)), KindMalformed},
		{"lone surrogate", RoleTargets, targets(`"targets":{"\ud800":{}}`), KindMalformed},
		{"invalid UTF-8", RoleTargets, targets("\"targets\":{\"\xff\":{}}"), KindMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			lim := DefaultLimits()
			var err error
			switch c.role {
			case RoleRoot:
				_, err = parseRoot([]byte(c.data), &lim)
			case RoleTimestamp:
				_, err = parseTimestamp([]byte(c.data), &lim)
			case RoleSnapshot:
				_, err = parseSnapshot([]byte(c.data), &lim)
			default:
				_, err = parseTargets([]byte(c.data), RoleTargets, &lim)
			}
			if KindOf(err) != c.want {
				t.Errorf("%v, want kind %s", err, c.want)
			}
		})
	}
}

// TestCanonicalMatchesGoTUF compares the canonicaliser with the canonical
// JSON go-tuf signs (go-securesystemslib), on every file of a repository
// served the way go-tuf writes it, for every key type (PEM keys hold
// newlines).
func TestCanonicalMatchesGoTUF(t *testing.T) {
	for _, kind := range []KeyTypes{KeyEd25519, KeyECDSAP256, KeyRSAPSS} {
		r := newTestRepo(t, kind, true, false)
		r.delegate(RoleTargets, metadataRole("fw \"quoted\" \\ é", "fw/*"))
		r.addTarget(RoleTargets, "a/b c\u00e9\u2028.bin", []byte("x"))
		r.publish()
		for name, b := range r.files {
			var f struct {
				Signed any `json:"signed"`
			}
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatal(err)
			}
			want, err := cjson.EncodeCanonical(f.Signed)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := parseDocument(b)
			if err != nil {
				t.Fatal(err)
			}
			signed, _ := member(b, doc, "signed")
			var c canonicaliser
			got, err := c.canonical(b, signed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s %s:\n got %s\nwant %s", schemeName(kind), name, got, want)
			}
		}
	}
}

func TestTargetVerifier(t *testing.T) {
	data := []byte("MCUboot image")
	info := TargetInfo{Path: "fw.bin", Length: int64(len(data)), Hashes: []TargetHash{
		{Algorithm: "sha256", Digest: sha256Sum(data)},
	}}
	v := NewTargetVerifier(info)
	v.Write(data[:4])
	v.Write(data[4:])
	if err := v.Verify(); err != nil {
		t.Errorf("streamed image: %v", err)
	}
	v = NewTargetVerifier(info)
	if _, err := v.Write(append(data, '!')); !errors.Is(err, ErrLength) {
		t.Errorf("one byte too many: %v, want a length error as it is written", err)
	}
	if err := VerifyTarget(info, data[1:]); !errors.Is(err, ErrLength) {
		t.Errorf("short image: %v", err)
	}
	info.Hashes = append(info.Hashes, TargetHash{Algorithm: "blake3", Digest: []byte{1}})
	if err := VerifyTarget(info, data); !errors.Is(err, ErrHash) {
		t.Errorf("unknown algorithm: %v, want a hash error", err)
	}
}

func TestParseExpires(t *testing.T) {
	for s, ok := range map[string]bool{
		"2030-01-01T00:00:00Z": true, "2028-02-29T23:59:59Z": true, "2030-02-29T00:00:00Z": false,
		"2030-01-01T24:00:00Z": false, "2030-01-01 00:00:00Z": false, "2030-01-01T00:00:00+00:00": false,
		"2030-1-01T00:00:00Z": false, "": false,
	} {
		got, gotOK := parseExpires([]byte(s))
		if gotOK != ok {
			t.Errorf("parseExpires(%q) ok=%v, want %v", s, gotOK, ok)
		}
		if ok {
			if want, _ := time.Parse(time.RFC3339, s); !got.Equal(want) {
				t.Errorf("parseExpires(%q) = %v", s, got)
			}
		}
	}
}

// TestMembers checks the field picker the parsers share: one pass, absent
// names left as they were, the last of a repeated member wins (as member).
func TestMembers(t *testing.T) {
	b := []byte(`{"a":1,"b":"x","a":[2],"c":{}}`)
	doc, err := parseDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	var a, b2, d jval
	members(b, doc, []string{"a", "b", "d"}, &a, &b2, &d)
	if a.kind != jArray || string(b[a.start:a.end]) != "[2]" {
		t.Errorf("a = %q, want the last one, [2]", b[a.start:a.end])
	}
	if !strIs(b, b2, "x") || d.kind != jInvalid {
		t.Errorf("b = %q, d kind %v", b[b2.start:b2.end], d.kind)
	}
	if last, _ := member(b, doc, "a"); last != a {
		t.Errorf("member and members disagree on a repeated name")
	}
	if n := doc.count(b); n != 4 {
		t.Errorf("count %d, want 4", n)
	}
	if arr := a; arr.count(b) != 1 {
		t.Errorf("count of [2] is %d", arr.count(b))
	}
}
