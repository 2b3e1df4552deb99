package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/fleetsim/fleetsim/agent/tufnano"
)

// Limits bound what a hostile file can make the reader do. Open reads every
// byte at most once more than the file holds and allocates at most the
// manifest, one index entry per member and a fixed hashing buffer.
type Limits struct {
	// MaxSize bounds the whole file, in bytes.
	MaxSize int64
	// MaxMembers bounds the archive's headers: members, manifest.json and
	// directory entries alike.
	MaxMembers int
	// MaxManifestSize bounds manifest.json.
	MaxManifestSize int64
	// MaxMetadataSize bounds each metadata member. A device reads far less
	// (aktualizr-nano's buffer is 16 KiB): this bound only keeps the
	// container sane; the TUF client applies its own.
	MaxMetadataSize int64
	// MaxFirmwareSize bounds each firmware member.
	MaxFirmwareSize int64
}

// DefaultLimits are generous for an MCU's update and small for a file
// system: 64 MiB in all, 512 members, a 256 KiB manifest, 64 KiB per
// metadata file, 16 MiB per firmware image (the gateway's upload limit).
func DefaultLimits() Limits {
	return Limits{
		MaxSize:         64 << 20,
		MaxMembers:      512,
		MaxManifestSize: 256 << 10,
		MaxMetadataSize: 64 << 10,
		MaxFirmwareSize: 16 << 20,
	}
}

func (l *Limits) memberLimit(k memberKind) int64 {
	switch k {
	case kindManifest:
		return l.MaxManifestSize
	case kindMetadata:
		return l.MaxMetadataSize
	case kindFirmware:
		return l.MaxFirmwareSize
	}
	return 0
}

// Bundle is an opened bundle: the manifest, and where each member's bytes
// lie in the file. Members are read from the file on demand, so the file
// must stay open (and unchanged) while the Bundle is used. A Bundle is safe
// for concurrent use when its io.ReaderAt is, as io.ReaderAt's contract
// requires.
type Bundle struct {
	r        io.ReaderAt
	manifest Manifest
	members  map[string]span // by member name, manifest.json excepted
}

// span locates a member's bytes in the file.
type span struct {
	off, length int64
	sum         [32]byte
}

// Open reads a bundle from untrusted bytes with DefaultLimits: see
// OpenWithLimits.
func Open(r io.ReaderAt, size int64) (*Bundle, error) {
	return OpenWithLimits(r, size, DefaultLimits())
}

// OpenWithLimits reads the size bytes of r as a bundle. It checks the
// container and nothing of TUF: every header, every name, every bound of
// lim, the manifest's shape, and that the members are exactly those the
// manifest lists with their lengths and SHA-256 (reading each member once).
// Whether the metadata is genuine, fresh and consistent is the device's TUF
// client's to decide, and whether an image is the one targets.json lists is
// the agent's.
//
// Errors are *Error: ErrTruncated, ErrMalformed, ErrLimit, ErrName,
// ErrDuplicate, ErrManifest, ErrMismatch; or r's own error. A Limits field
// that is not positive is a programmer error and panics.
func OpenWithLimits(r io.ReaderAt, size int64, lim Limits) (*Bundle, error) {
	if lim.MaxSize <= 0 || lim.MaxMembers <= 0 || lim.MaxManifestSize <= 0 || lim.MaxMetadataSize <= 0 || lim.MaxFirmwareSize <= 0 {
		panic("bundle: limits must be positive")
	}
	switch {
	case size < 0:
		return nil, refuse(ErrMalformed, "", "negative size")
	case size > lim.MaxSize:
		return nil, refuse(ErrLimit, "", fmt.Sprintf("%d bytes, more than %d", size, lim.MaxSize))
	case size == 0:
		return nil, refuse(ErrTruncated, "", "empty file")
	}
	o := opener{r: r, size: size, lim: &lim, seen: map[string]bool{}}
	if err := o.walk(); err != nil {
		return nil, err
	}
	for _, e := range o.manifest.Members {
		if _, ok := o.spans[e.Name]; !ok {
			return nil, refuse(ErrMismatch, e.Name, "listed in the manifest but not in the archive")
		}
	}
	return &Bundle{r: r, manifest: o.manifest, members: o.spans}, nil
}

// opener is the state of one walk over the archive.
type opener struct {
	r    io.ReaderAt
	size int64
	lim  *Limits

	manifest Manifest
	index    map[string]int // manifest entry by name; nil until the manifest is read
	spans    map[string]span
	seen     map[string]bool // every header's name, directories included
	buf      []byte          // hashing buffer
}

func (o *opener) read(p []byte, off int64, member string) *Error {
	n, err := o.r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		// size promised more bytes than r has.
		return refuse(ErrTruncated, member, fmt.Sprintf("the file ends at %d, before offset %d", off+int64(n), off+int64(len(p))))
	}
	return &Error{Member: member, Reason: "reading: " + oneLine(err.Error()), Err: err}
}

// walk reads the headers in order: manifest.json first, then every other
// member, hashed and checked against the manifest, then the end blocks.
func (o *opener) walk() error {
	var blk [blockSize]byte
	headers := 0
	for off := int64(0); ; {
		if off+blockSize > o.size {
			if off == o.size {
				return refuse(ErrTruncated, "", "no end-of-archive blocks after offset "+strconv.FormatInt(off, 10))
			}
			return refuse(ErrTruncated, "", "the file ends inside the header at offset "+strconv.FormatInt(off, 10))
		}
		if err := o.read(blk[:], off, ""); err != nil {
			return err
		}
		if isZeroBlock(&blk) {
			return o.end(off)
		}
		if headers++; headers > o.lim.MaxMembers {
			return refuse(ErrLimit, "", fmt.Sprintf("more than %d members", o.lim.MaxMembers))
		}
		h, err := parseHeader(&blk, off)
		if err != nil {
			return err
		}
		kind, err := classify(h.name, h.dir)
		if err != nil {
			return err
		}
		if o.seen[h.name] {
			return refuse(ErrDuplicate, h.name, "appears twice in the archive")
		}
		o.seen[h.name] = true
		data := off + blockSize
		if max := o.lim.memberLimit(kind); h.size > max && kind != kindDirectory {
			return refuse(ErrLimit, h.name, fmt.Sprintf("%d bytes, more than the %d a member of its kind may hold", h.size, max))
		}
		if h.size > o.size-data {
			return refuse(ErrTruncated, h.name, fmt.Sprintf("%d bytes announced, the file ends %d bytes after its header", h.size, o.size-data))
		}
		switch {
		case kind == kindManifest:
			if len(o.spans) > 0 || o.index != nil {
				return refuse(ErrManifest, h.name, "not the first member")
			}
			if err := o.readManifest(data, h.size); err != nil {
				return err
			}
		case kind == kindDirectory:
		case o.index == nil:
			return refuse(ErrManifest, h.name, "comes before manifest.json, which must be the first member")
		default:
			if err := o.member(h.name, kind, data, h.size); err != nil {
				return err
			}
		}
		off = data + (h.size+blockSize-1)/blockSize*blockSize
	}
}

func (o *opener) readManifest(off, n int64) error {
	data := make([]byte, n) // n <= MaxManifestSize and n fits the file
	if err := o.read(data, off, ManifestName); err != nil {
		return err
	}
	m, index, err := parseManifest(data, o.lim)
	if err != nil {
		return err
	}
	o.manifest, o.index = m, index
	o.spans = make(map[string]span, len(index))
	return nil
}

// member hashes one member and checks it against its manifest entry.
func (o *opener) member(name string, kind memberKind, off, n int64) error {
	i, ok := o.index[name]
	if !ok {
		return refuse(ErrMismatch, name, "in the archive but not listed in the manifest")
	}
	e := o.manifest.Members[i]
	if e.Length != n {
		return refuse(ErrMismatch, name, fmt.Sprintf("%d bytes, the manifest says %d", n, e.Length))
	}
	if o.buf == nil {
		o.buf = make([]byte, 32<<10)
	}
	h := sha256.New()
	for done := int64(0); done < n; {
		p := o.buf[:min(int64(len(o.buf)), n-done)]
		if err := o.read(p, off+done, name); err != nil {
			return err
		}
		h.Write(p)
		done += int64(len(p))
	}
	var s span
	h.Sum(s.sum[:0])
	if got := hex.EncodeToString(s.sum[:]); got != e.SHA256 {
		if kind == kindFirmware {
			return refuse(ErrMismatch, name, "content hashes to "+got+", not the hash its name says")
		}
		return refuse(ErrMismatch, name, "SHA-256 "+got+", the manifest says "+e.SHA256)
	}
	s.off, s.length = off, n
	o.spans[name] = s
	return nil
}

// end checks the end of the archive at off: two zero blocks, then nothing
// but zeros (tar tools pad archives to whole records).
func (o *opener) end(off int64) error {
	if o.index == nil {
		return refuse(ErrManifest, "", "no manifest.json")
	}
	if off+2*blockSize > o.size {
		return refuse(ErrTruncated, "", "the file ends inside the end-of-archive blocks")
	}
	if o.buf == nil {
		o.buf = make([]byte, 32<<10)
	}
	for at := off; at < o.size; {
		p := o.buf[:min(int64(len(o.buf)), o.size-at)]
		if err := o.read(p, at, ""); err != nil {
			return err
		}
		for i, c := range p {
			if c != 0 {
				return refuse(ErrMalformed, "", "data after the end of the archive, at offset "+strconv.FormatInt(at+int64(i), 10))
			}
		}
		at += int64(len(p))
	}
	return nil
}

// Manifest returns the bundle's manifest. Its Members slice is a copy.
func (b *Bundle) Manifest() Manifest {
	m := b.manifest
	m.Members = append([]Member(nil), m.Members...)
	return m
}

// Fetch is tufnano.Fetcher over the bundle: it copies the metadata file a
// device fetches as name (member metadata/<name>) into dst and returns its
// length. The bytes are checked against the manifest's SHA-256 again as
// they are copied, so a file changed since Open is noticed.
//
// Errors are *Error: one matching tufnano.ErrNotFound when the bundle has
// no such file, tufnano.ErrTooLarge when it is longer than dst, ErrMismatch
// when the file changed; or the reader's error.
func (b *Bundle) Fetch(name string, dst []byte) (int, error) {
	member := MetadataMember(name)
	s, ok := b.members[member]
	if !ok || !validMetadataName(name) {
		return 0, refuse(tufnano.ErrNotFound, quoteName(member), "not in the bundle")
	}
	if s.length > int64(len(dst)) {
		return 0, refuse(tufnano.ErrTooLarge, member, fmt.Sprintf("%d bytes, more than the %d-byte buffer", s.length, len(dst)))
	}
	p := dst[:s.length]
	if n, err := b.r.ReadAt(p, s.off); n != len(p) {
		if err == nil || errors.Is(err, io.EOF) {
			return 0, refuse(ErrMismatch, member, "the file is shorter than when it was opened")
		}
		return 0, &Error{Member: member, Reason: "reading: " + oneLine(err.Error()), Err: err}
	}
	if sha256.Sum256(p) != s.sum {
		return 0, refuse(ErrMismatch, member, "changed since the bundle was opened")
	}
	return len(p), nil
}

// Firmware returns the firmware image with SHA-256 sum and its length: a
// reader over the bundle's file, which Open hashed once. The agent checks
// the bytes it reads against targets.json, as it would a download.
//
// Errors: an *Error matching tufnano.ErrNotFound when the bundle holds no
// such image.
func (b *Bundle) Firmware(sum [32]byte) (io.ReaderAt, int64, error) {
	member := FirmwareMember(sum)
	s, ok := b.members[member]
	if !ok {
		return nil, 0, refuse(tufnano.ErrNotFound, member, "not in the bundle")
	}
	return io.NewSectionReader(b.r, s.off, s.length), s.length, nil
}

// compile-time check: a Bundle is the TUF client's Fetcher.
var _ tufnano.Fetcher = (*Bundle)(nil)
