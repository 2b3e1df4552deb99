package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// rawMember is one member of a hand-made archive.
type rawMember struct {
	name     string
	data     []byte
	typeflag byte // tar.TypeReg when zero
}

// rawTar writes members with archive/tar in format f, without any of
// Create's checks, so tests can build what Create never would.
func rawTar(t testing.TB, f tar.Format, members ...rawMember) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		typ := m.typeflag
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Typeflag: typ, Name: m.name, Size: int64(len(m.data)), Mode: 0o644, ModTime: created, Format: f}
		if typ == tar.TypeSymlink {
			h.Linkname, h.Size = "/etc/passwd", 0
		}
		if typ == tar.TypeDir {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		if _, err := tw.Write(m.data); err != nil && h.Size > 0 {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// manifestFor is a manifest that lists members truthfully.
func manifestFor(members ...rawMember) rawMember {
	m := Manifest{Format: FormatVersion, Repository: "ci", Tag: "main", Created: created, Members: []Member{}}
	for _, x := range members {
		if x.typeflag == tar.TypeDir {
			continue
		}
		sum := sha256.Sum256(x.data)
		m.Members = append(m.Members, Member{x.name, int64(len(x.data)), hex.EncodeToString(sum[:])})
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return rawMember{name: ManifestName, data: b}
}

func fwMember(data []byte) rawMember {
	return rawMember{name: FirmwareMember(sha256.Sum256(data)), data: data}
}

var (
	rootMember      = rawMember{name: "metadata/1.root.json", data: []byte(`{"signed":{"_type":"root"}}`)}
	timestampMember = rawMember{name: "metadata/timestamp.json", data: []byte(`{"signed":{"_type":"timestamp"}}`)}
	imageMember     = fwMember(bytes.Repeat([]byte("image "), 200))
)

// wantRefused opens data and checks the refusal's sentinel, and that its
// message is one line naming the package.
func wantRefused(t *testing.T, data []byte, lim Limits, want error) {
	t.Helper()
	_, err := OpenWithLimits(bytes.NewReader(data), int64(len(data)), lim)
	if !errors.Is(err, want) {
		t.Fatalf("Open = %v, want %v", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Open = %T %v, want an *Error", err, err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "bundle: ") {
		t.Errorf("error %q is not one line starting \"bundle: \"", msg)
	}
}

func TestOpenAccepts(t *testing.T) {
	dirs := []rawMember{{name: "metadata/", typeflag: tar.TypeDir}, {name: "firmware/", typeflag: tar.TypeDir}}
	members := []rawMember{dirs[1], imageMember, dirs[0], timestampMember, rootMember}
	for _, f := range []tar.Format{tar.FormatUSTAR, tar.FormatGNU} {
		t.Run(f.String(), func(t *testing.T) {
			// Directory entries, members in any order after the manifest.
			data := rawTar(t, f, append([]rawMember{manifestFor(members...)}, members...)...)
			b, err := open(data)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if _, err := b.Fetch("1.root.json", make([]byte, 100)); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("zero padding after the end", func(t *testing.T) {
		data := create(t, testContents())
		data = append(data, make([]byte, 10240-len(data)%10240)...)
		if _, err := open(data); err != nil {
			t.Fatalf("Open: %v", err)
		}
	})
	t.Run("empty bundle", func(t *testing.T) {
		if _, err := open(rawTar(t, tar.FormatUSTAR, manifestFor())); err != nil {
			t.Fatalf("Open: %v", err)
		}
	})
}

// TestOpenRefusesTruncated cuts a bundle at every length short of its own.
func TestOpenRefusesTruncated(t *testing.T) {
	data := create(t, testContents())
	for n := 0; n < len(data); n++ {
		_, err := open(data[:n])
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d of %d: Open = %v, want ErrTruncated", n, len(data), err)
		}
	}
	// A reader that holds less than the size it is opened with.
	if _, err := Open(bytes.NewReader(data[:2000]), int64(len(data))); !errors.Is(err, ErrTruncated) {
		t.Errorf("short reader: Open = %v, want ErrTruncated", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	ok := []rawMember{rootMember, timestampMember, imageMember}
	us := func(members ...rawMember) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return rawTar(t, tar.FormatUSTAR, members...) }
	}
	withManifest := func(members ...rawMember) func(*testing.T) []byte {
		return us(append([]rawMember{manifestFor(members...)}, members...)...)
	}
	edit := func(f func(m *Manifest)) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			var m Manifest
			if err := json.Unmarshal(manifestFor(ok...).data, &m); err != nil {
				t.Fatal(err)
			}
			f(&m)
			b, _ := json.Marshal(m)
			return rawTar(t, tar.FormatUSTAR, append([]rawMember{{name: ManifestName, data: b}}, ok...)...)
		}
	}
	manifestText := func(s string) func(*testing.T) []byte {
		return us(append([]rawMember{{name: ManifestName, data: []byte(s)}}, ok...)...)
	}
	// archiveOnly adds member to the archive of a manifest that does not
	// list it, so that the archive's header is what refuses it.
	archiveOnly := func(member rawMember) func(*testing.T) []byte {
		return us(manifestFor(rootMember), rootMember, member)
	}
	valid := func(t *testing.T) []byte { return create(t, testContents()) }
	patch := func(f func(t *testing.T, data []byte) []byte) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return f(t, valid(t)) }
	}
	small := DefaultLimits()
	small.MaxMetadataSize, small.MaxFirmwareSize, small.MaxMembers, small.MaxSize = 40, 1000, 4, 8000

	tests := []struct {
		name  string
		build func(*testing.T) []byte
		lim   Limits
		want  error
	}{
		// Names, in the archive (the manifest lists only the root).
		{"parent directory", archiveOnly(rawMember{name: "../evil.json", data: []byte("x")}), DefaultLimits(), ErrName},
		{"parent inside a path", archiveOnly(rawMember{name: "metadata/../../x.json", data: []byte("x")}), DefaultLimits(), ErrName},
		{"parent as a directory", archiveOnly(rawMember{name: "../", typeflag: tar.TypeDir}), DefaultLimits(), ErrName},
		{"absolute path", archiveOnly(rawMember{name: "/etc/passwd", data: []byte("x")}), DefaultLimits(), ErrName},
		{"backslash", archiveOnly(rawMember{name: "metadata\\..\\x.json", data: []byte("x")}), DefaultLimits(), ErrName},
		{"unknown name", archiveOnly(rawMember{name: "README", data: []byte("x")}), DefaultLimits(), ErrName},
		{"metadata in a subdirectory", archiveOnly(rawMember{name: "metadata/a/x.json", data: []byte("x")}), DefaultLimits(), ErrName},
		{"hidden metadata", archiveOnly(rawMember{name: "metadata/.x.json", data: []byte("x")}), DefaultLimits(), ErrName},
		{"uppercase firmware hash", archiveOnly(rawMember{name: strings.ToUpper(imageMember.name[:73]) + ".bin", data: imageMember.data}), DefaultLimits(), ErrName},
		{"another directory", archiveOnly(rawMember{name: "keys/", typeflag: tar.TypeDir}), DefaultLimits(), ErrName},
		{"a long name in the prefix field", archiveOnly(rawMember{name: strings.Repeat("a/", 60) + "x.json", data: []byte("x")}), DefaultLimits(), ErrName},
		// ... and in the manifest.
		{"manifest lists a parent directory", edit(func(m *Manifest) { m.Members[0].Name = "../1.root.json" }), DefaultLimits(), ErrName},
		{"manifest lists an unknown name", edit(func(m *Manifest) { m.Members[0].Name = "metadata/1.root.txt" }), DefaultLimits(), ErrName},
		// Duplicates.
		{"member twice", us(manifestFor(ok...), rootMember, timestampMember, rootMember, imageMember), DefaultLimits(), ErrDuplicate},
		{"manifest twice", us(manifestFor(ok...), manifestFor(ok...)), DefaultLimits(), ErrDuplicate},
		{"directory twice", us(manifestFor(), rawMember{name: "metadata/", typeflag: tar.TypeDir}, rawMember{name: "metadata/", typeflag: tar.TypeDir}), DefaultLimits(), ErrDuplicate},
		{"manifest lists a name twice", edit(func(m *Manifest) { m.Members = append(m.Members, m.Members[0]) }), DefaultLimits(), ErrDuplicate},
		// Limits.
		{"metadata over its limit", withManifest(rawMember{name: "metadata/big.json", data: make([]byte, 41)}), small, ErrLimit},
		{"firmware over its limit", withManifest(fwMember(make([]byte, 1001))), small, ErrLimit},
		{"too many members", withManifest(rootMember, timestampMember, fwMember([]byte{1}), fwMember([]byte{2})), small, ErrLimit},
		{"too many headers", us(manifestFor(rootMember, timestampMember),
			rawMember{name: "metadata/", typeflag: tar.TypeDir}, rawMember{name: "firmware/", typeflag: tar.TypeDir}, rootMember, timestampMember), small, ErrLimit},
		{"file over its limit", patch(func(t *testing.T, d []byte) []byte { return append(d, make([]byte, 8000)...) }), small, ErrLimit},
		{"manifest lists too many", edit(func(m *Manifest) {
			for i := range 3 {
				m.Members = append(m.Members, Member{"metadata/x" + strconv.Itoa(i) + ".json", 1, strings.Repeat("0", 64)})
			}
		}), small, ErrLimit},
		{"manifest lists a huge length", edit(func(m *Manifest) { m.Members[0].Length = 1 << 40 }), DefaultLimits(), ErrLimit},
		{"header claims 8 GiB", patch(func(t *testing.T, d []byte) []byte {
			return setHeaderField(t, d, 1, offSize, "77777777777\x00")
		}), DefaultLimits(), ErrLimit},
		// The manifest.
		{"no manifest", us(rootMember), DefaultLimits(), ErrManifest},
		{"no members at all", us(), DefaultLimits(), ErrManifest},
		{"manifest not first", us(rootMember, manifestFor(rootMember)), DefaultLimits(), ErrManifest},
		{"manifest after a directory and a member", us(rawMember{name: "metadata/", typeflag: tar.TypeDir}, rootMember, manifestFor(rootMember)), DefaultLimits(), ErrManifest},
		{"manifest not JSON", manifestText("format = 1"), DefaultLimits(), ErrManifest},
		{"manifest with trailing data", manifestText(`{"format":1} {}`), DefaultLimits(), ErrManifest},
		{"manifest with an unknown field", manifestText(strings.Replace(string(manifestFor(ok...).data), `"format":1`, `"format":1,"signed_by":"me"`, 1)), DefaultLimits(), ErrManifest},
		{"manifest of format 2", edit(func(m *Manifest) { m.Format = 2 }), DefaultLimits(), ErrManifest},
		{"manifest without a tag", edit(func(m *Manifest) { m.Tag = "" }), DefaultLimits(), ErrManifest},
		{"manifest with a bad repository", edit(func(m *Manifest) { m.Repository = "ci\nprod" }), DefaultLimits(), ErrManifest},
		{"manifest without created", manifestText(`{"format":1,"repository":"ci","tag":"main","members":[]}`), DefaultLimits(), ErrManifest},
		{"manifest hash not hex", edit(func(m *Manifest) { m.Members[0].SHA256 = strings.Repeat("G", 64) }), DefaultLimits(), ErrManifest},
		{"manifest lists itself", edit(func(m *Manifest) { m.Members = append(m.Members, Member{ManifestName, 1, strings.Repeat("0", 64)}) }), DefaultLimits(), ErrManifest},
		{"manifest firmware hash not its name", edit(func(m *Manifest) { m.Members[2].SHA256 = strings.Repeat("0", 64) }), DefaultLimits(), ErrManifest},
		// Members against the manifest.
		{"member not listed", us(manifestFor(rootMember), rootMember, timestampMember), DefaultLimits(), ErrMismatch},
		{"listed member missing", us(manifestFor(ok...), rootMember, imageMember), DefaultLimits(), ErrMismatch},
		{"length differs", edit(func(m *Manifest) { m.Members[0].Length++ }), DefaultLimits(), ErrMismatch},
		{"hash differs", edit(func(m *Manifest) { m.Members[1].SHA256 = strings.Repeat("ab", 32) }), DefaultLimits(), ErrMismatch},
		{"firmware is not its name", func(t *testing.T) []byte {
			// Listed truthfully for the name, but other bytes of the same length.
			wrong := rawMember{name: imageMember.name, data: bytes.Repeat([]byte("other "), 200)}
			return rawTar(t, tar.FormatUSTAR, manifestFor(imageMember), wrong)
		}, DefaultLimits(), ErrMismatch},
		{"member bytes changed", patch(func(t *testing.T, d []byte) []byte {
			i := bytes.Index(d, []byte(`"snapshot"}`))
			d[i+1] = 'S'
			return d
		}), DefaultLimits(), ErrMismatch},
		// Not USTAR.
		{"header checksum", patch(func(t *testing.T, d []byte) []byte { d[offName+9]++; return d }), DefaultLimits(), ErrMalformed},
		{"no magic", patch(func(t *testing.T, d []byte) []byte {
			return setHeaderField(t, d, 0, offMagic, "\x00\x00\x00\x00\x00\x00\x00\x00")
		}), DefaultLimits(), ErrMalformed},
		{"size not octal", patch(func(t *testing.T, d []byte) []byte { return setHeaderField(t, d, 0, offSize, "0000000009\x00\x00") }), DefaultLimits(), ErrMalformed},
		{"symbolic link", withManifest(rawMember{name: "metadata/root.json", typeflag: tar.TypeSymlink}), DefaultLimits(), ErrMalformed},
		{"pax header", func(t *testing.T) []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			m := manifestFor()
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: int64(len(m.data)), PAXRecords: map[string]string{"comment": "x"}, Format: tar.FormatPAX})
			tw.Write(m.data)
			tw.Close()
			return b.Bytes()
		}, DefaultLimits(), ErrMalformed},
		{"data after the end", patch(func(t *testing.T, d []byte) []byte { return append(d, make([]byte, 511)...) }), DefaultLimits(), nil}, // zeros: fine, see below
		{"garbage after the end", patch(func(t *testing.T, d []byte) []byte { return append(d, []byte("trailing")...) }), DefaultLimits(), ErrMalformed},
		{"negative size", nil, DefaultLimits(), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.build == nil {
				if _, err := Open(bytes.NewReader(nil), -1); !errors.Is(err, tt.want) {
					t.Errorf("Open = %v, want %v", err, tt.want)
				}
				return
			}
			data := tt.build(t)
			if tt.want == nil {
				if _, err := OpenWithLimits(bytes.NewReader(data), int64(len(data)), tt.lim); err != nil {
					t.Fatalf("Open = %v, want success", err)
				}
				return
			}
			wantRefused(t, data, tt.lim, tt.want)
		})
	}
}

// setHeaderField overwrites a field of the header of member i (0 is the
// manifest) with v and fixes the header's checksum.
func setHeaderField(t *testing.T, d []byte, i, off int, v string) []byte {
	t.Helper()
	at := 0
	for ; i > 0; i-- {
		size, ok := parseOctal(d[at+offSize : at+offSize+lenSize])
		if !ok {
			t.Fatal("bad size field")
		}
		at += blockSize + int(size+blockSize-1)/blockSize*blockSize
	}
	copy(d[at+off:], v)
	blk := d[at : at+blockSize]
	copy(blk[offChecksum:offChecksum+lenChecksum], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[offChecksum:], fmt.Sprintf("%06o\x00 ", sum))
	return d
}

// sentinels are every refusal Open may report for the bytes themselves.
var sentinels = []error{ErrTruncated, ErrMalformed, ErrLimit, ErrName, ErrDuplicate, ErrManifest, ErrMismatch}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestOpenRefusesRandomBytes: seeded random files, some of whole blocks and
// some with a valid bundle's first header, are refused with a sentinel.
func TestOpenRefusesRandomBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 3))
	valid := create(t, testContents())
	for i := range 200 {
		n := rng.IntN(8 * blockSize)
		if i%3 == 0 {
			n = (n / blockSize) * blockSize
		}
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if i%4 == 1 && n > blockSize {
			copy(data, valid[:blockSize])
		}
		_, err := open(data)
		if err == nil || !isSentinel(err) {
			t.Fatalf("random file %d (%d bytes): Open = %v, want a sentinel refusal", i, n, err)
		}
	}
}

// TestOpenAllocationBounded: headers that announce huge members, and a
// manifest as large as the limit allows in a file that ends right after
// its header, cost the reader no more than a fixed amount of memory.
func TestOpenAllocationBounded(t *testing.T) {
	valid := create(t, testContents())
	hostile := map[string][]byte{
		"8 GiB manifest":             setHeaderField(t, bytes.Clone(valid), 0, offSize, "77777777777\x00"),
		"8 GiB firmware":             setHeaderField(t, bytes.Clone(valid), 8, offSize, "77777777777\x00"),
		"truncated 256 KiB manifest": setHeaderField(t, bytes.Clone(valid[:2*blockSize]), 0, offSize, "00001000000\x00"),
	}
	for name, data := range hostile {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := open(data)
		runtime.ReadMemStats(&after)
		if !isSentinel(err) {
			t.Errorf("%s: Open = %v, want a refusal", name, err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
			t.Errorf("%s: Open allocated %d bytes", name, got)
		}
	}
}
