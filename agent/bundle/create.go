package bundle

import (
	"archive/tar"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Contents are what Create puts in a bundle.
type Contents struct {
	// Repository and Tag say whose view the metadata is ("ci" or
	// "production", and the device tag); each is 1 to 64 letters, digits,
	// '-', '_', '.' or '+'.
	Repository, Tag string
	// Created is the bundle's time, from the caller's clock; it is kept to
	// the second, in UTC, and must lie between 1970 and 2242 (the range of
	// a USTAR modification time).
	Created time.Time
	// Metadata are the TUF metadata files, each under the name a device
	// fetches it by ("1.root.json", "timestamp.json", ...) and with the
	// bytes exactly as the repository serves them: signatures cover them.
	Metadata []File
	// Firmware are the images the bundle carries, each stored as
	// firmware/<sha256>.bin.
	Firmware [][]byte
}

// File is one metadata file: its fetch name and its bytes.
type File struct {
	Name string
	Data []byte
}

// maxMTime is the largest modification time an 11-digit octal field holds.
const maxMTime = 1<<33 - 1

// Create writes a bundle of c to w: a USTAR archive of manifest.json, then
// the metadata members (root versions in ascending order, then the other
// files by name), then the firmware members by hash. Every header has mode
// 0644, owner 0:0 with no user or group names, and c.Created as its
// modification time, so the same Contents always give the same bytes,
// whatever the order of c.Metadata and c.Firmware.
//
// Create refuses what Open would refuse under DefaultLimits. Errors are
// *Error: ErrName (a metadata name that is not a fetch name), ErrDuplicate
// (a name or image given twice), ErrLimit, ErrManifest (a bad repository,
// tag or time); or w's error.
func Create(w io.Writer, c Contents) error {
	lim := DefaultLimits()
	if !validLabel(c.Repository) {
		return refuse(ErrManifest, "", "repository "+quoteName(c.Repository)+" is not 1 to 64 letters, digits, '-', '_', '.' or '+'")
	}
	if !validLabel(c.Tag) {
		return refuse(ErrManifest, "", "tag "+quoteName(c.Tag)+" is not 1 to 64 letters, digits, '-', '_', '.' or '+'")
	}
	created := c.Created.UTC().Truncate(time.Second)
	if created.Unix() < 0 || created.Unix() > maxMTime {
		return refuse(ErrManifest, "", "created time "+created.Format(time.RFC3339)+" is outside 1970 to 2242")
	}

	type entry struct {
		Member
		data []byte
	}
	var meta, fw []entry
	seen := map[string]bool{}
	for _, f := range c.Metadata {
		name := MetadataMember(f.Name)
		if !validMetadataName(f.Name) {
			return refuse(ErrName, quoteName(name), "not a metadata fetch name (letters, digits, \"-._~%\", ending in .json)")
		}
		if seen[name] {
			return refuse(ErrDuplicate, name, "given twice")
		}
		if int64(len(f.Data)) > lim.MaxMetadataSize {
			return refuse(ErrLimit, name, fmt.Sprintf("%d bytes, more than %d", len(f.Data), lim.MaxMetadataSize))
		}
		seen[name] = true
		sum := sha256.Sum256(f.Data)
		meta = append(meta, entry{Member{name, int64(len(f.Data)), hex.EncodeToString(sum[:])}, f.Data})
	}
	for _, img := range c.Firmware {
		sum := sha256.Sum256(img)
		name := FirmwareMember(sum)
		if seen[name] {
			return refuse(ErrDuplicate, name, "the same image given twice")
		}
		if int64(len(img)) > lim.MaxFirmwareSize {
			return refuse(ErrLimit, name, fmt.Sprintf("%d bytes, more than %d", len(img), lim.MaxFirmwareSize))
		}
		seen[name] = true
		fw = append(fw, entry{Member{name, int64(len(img)), hex.EncodeToString(sum[:])}, img})
	}
	slices.SortFunc(meta, func(a, b entry) int { return compareMetadata(a.Name, b.Name) })
	slices.SortFunc(fw, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
	all := append(meta, fw...)
	if len(all)+1 > lim.MaxMembers {
		return refuse(ErrLimit, "", fmt.Sprintf("%d members, more than %d", len(all)+1, lim.MaxMembers))
	}

	m := Manifest{Format: FormatVersion, Repository: c.Repository, Tag: c.Tag, Created: created, Members: make([]Member, len(all))}
	for i, e := range all {
		m.Members[i] = e.Member
	}
	// Indented, so that `tar -xOf b.tar manifest.json` reads well.
	mdata, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mdata = append(mdata, '\n')
	if int64(len(mdata)) > lim.MaxManifestSize {
		return refuse(ErrLimit, ManifestName, fmt.Sprintf("%d bytes, more than %d", len(mdata), lim.MaxManifestSize))
	}
	total := int64(blockSize + (len(mdata)+blockSize-1)/blockSize*blockSize)
	for _, e := range all {
		total += blockSize + (e.Length+blockSize-1)/blockSize*blockSize
	}
	if total += 2 * blockSize; total > lim.MaxSize {
		return refuse(ErrLimit, "", fmt.Sprintf("%d bytes in all, more than %d", total, lim.MaxSize))
	}

	tw := tar.NewWriter(w)
	write := func(name string, data []byte) error {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644,
			ModTime: created, Format: tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(tw, bytes.NewReader(data))
		return err
	}
	if err := write(ManifestName, mdata); err != nil {
		return err
	}
	for _, e := range all {
		if err := write(e.Name, e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// compareMetadata orders metadata members as a device fetches the root
// chain: N.root.json by N, before every other file, which sort by name.
func compareMetadata(a, b string) int {
	va, ra := rootVersion(a)
	vb, rb := rootVersion(b)
	switch {
	case ra && rb:
		return cmp.Compare(va, vb)
	case ra:
		return -1
	case rb:
		return 1
	}
	return strings.Compare(a, b)
}

// rootVersion parses "metadata/N.root.json" with N a positive decimal
// without leading zeros.
func rootVersion(member string) (int64, bool) {
	s, ok := strings.CutSuffix(strings.TrimPrefix(member, metadataPrefix), ".root.json")
	if !ok || s == "" || s[0] == '0' || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}
