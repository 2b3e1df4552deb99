package main

import (
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/spf13/cobra"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build, sign, verify and inspect MCUboot images",
		Long: `Build, sign, verify and inspect MCUboot images in the format MCUboot's imgtool
writes. The subcommands take imgtool's flag names, so scripts written for
imgtool keygen/sign/verify/getpub work with "fleetsim image" in front.`,
	}
	cmd.AddCommand(newImageKeygenCmd(), newImageSignCmd(), newImageVerifyCmd(), newImageInfoCmd(), newImageGetpubCmd())
	return cmd
}

func newImageKeygenCmd() *cobra.Command {
	var keyFile, kind string
	cmd := &cobra.Command{
		Use:   "keygen -k FILE -t {ecdsa-p256,ed25519,rsa-2048}",
		Short: "Generate a signing key (PKCS#8 PEM, as imgtool keygen)",
		Long: `Generate a private signing key and write it to FILE as an unencrypted PKCS#8
PEM block, the format imgtool keygen writes. FILE must not exist yet: an
existing key is never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The CLI is the I/O edge: it hands the system's secure random
			// source to the pure image package.
			k, err := image.GenerateKey(kind, rand.Reader)
			if err != nil {
				return err
			}
			p, err := image.MarshalPrivateKeyPEM(k)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("key file %s already exists and keygen never overwrites a key: give -k a new file name", keyFile)
			}
			if err != nil {
				return fmt.Errorf("writing key: %w", err)
			}
			if _, err := f.Write(p); err != nil {
				f.Close()
				return fmt.Errorf("writing key: %w", err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("writing key: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&keyFile, "key", "k", "", "file to write the private key to (required)")
	cmd.Flags().StringVarP(&kind, "type", "t", "", "key type: ecdsa-p256, ed25519 or rsa-2048 (required)")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("type")
	return cmd
}

// signFlags holds imgtool sign's options as typed on the command line;
// sizes stay strings so that 0x hex parses as imgtool does.
type signFlags struct {
	key, version, headerSize, slotSize, align, maxAlign, maxSectors string
	secCnt, deps, erasedVal, loadAddr                               string
	padHeader, pad, confirm, overwriteOnly                          bool
}

func newImageSignCmd() *cobra.Command {
	var sf signFlags
	cmd := &cobra.Command{
		Use:   "sign [flags] INFILE OUTFILE",
		Short: "Make a signed MCUboot image from a raw binary (as imgtool sign)",
		Long: `Make an MCUboot image from the raw binary INFILE and write it to OUTFILE:
header, payload, protected TLVs (SEC_CNT, DEPENDENCY), then SHA256, KEYHASH and
the signature (ECDSA-P256, Ed25519 or RSA-2048-PSS, by the key's type). Without
-k the image carries only the SHA256 TLV. Ed25519 images are byte-identical to
imgtool's.

Sizes and addresses accept decimal or 0x hex, as imgtool. The image plus the
trailer (max-sectors*3*align + 4*max-align + 16, or 2*max-align + 16 with
--overwrite-only) must fit in --slot-size. Without --pad-header the first
--header-size bytes of INFILE must be zero. INFILE is read as raw binary
(Intel HEX is not supported).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := sf.options()
			if err != nil {
				return err
			}
			payload, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("reading payload: %w", err)
			}
			img, err := image.Sign(payload, opts)
			if errors.Is(err, image.ErrTooLarge) {
				return fmt.Errorf("signing %s: %w; give a larger --slot-size if the slot really is larger, or make the payload smaller", args[0], err)
			}
			if err != nil {
				return fmt.Errorf("signing %s: %w", args[0], err)
			}
			if err := os.WriteFile(args[1], img, 0o644); err != nil {
				return fmt.Errorf("writing image: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&sf.key, "key", "k", "", "private key (PEM) to sign with; omit for a hash-only image")
	f.StringVarP(&sf.version, "version", "v", "", "image version MAJ.MIN.REV+BUILD (required)")
	f.StringVarP(&sf.headerSize, "header-size", "H", "", "header region size, at least 32 (required)")
	f.BoolVar(&sf.padHeader, "pad-header", false, "prepend the header region, filled with the erased value, to INFILE")
	f.StringVarP(&sf.slotSize, "slot-size", "S", "", "slot size: the image and trailer must fit (required)")
	f.StringVar(&sf.align, "align", "1", "flash write size: 1, 2, 4, 8, 16 or 32")
	f.StringVar(&sf.maxAlign, "max-align", "", "BOOT_MAX_ALIGN: 8, 16 or 32 (default max(8, align))")
	f.BoolVar(&sf.pad, "pad", false, "pad to the slot size and write the trailer magic (a test swap)")
	f.BoolVar(&sf.confirm, "confirm", false, "like --pad, and also set image_ok (a permanent swap)")
	f.StringVarP(&sf.secCnt, "security-counter", "s", "", "protected SEC_CNT TLV: a number or auto (major<<24 | minor<<16 | revision)")
	f.StringVarP(&sf.maxSectors, "max-sectors", "M", "128", "sectors the swap status area covers")
	f.StringVarP(&sf.deps, "dependencies", "d", "", `dependencies, e.g. "(1,1.2.3+0),(2,0.1.0)"`)
	f.StringVarP(&sf.erasedVal, "erased-val", "R", "0xff", "flash erased value: 0 or 0xff")
	f.BoolVar(&sf.overwriteOnly, "overwrite-only", false, "size the trailer for overwrite-only bootloaders")
	f.StringVarP(&sf.loadAddr, "load-addr", "L", "", "RAM load address (sets the RAM_LOAD flag)")
	for _, name := range []string{"version", "header-size", "slot-size"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// options turns the flags into image.SignOptions, reading the key file.
func (sf signFlags) options() (image.SignOptions, error) {
	var o image.SignOptions
	var err error
	if o.Version, err = image.ParseVersion(sf.version); err != nil {
		return o, fmt.Errorf("--version: %w", err)
	}
	if o.HeaderSize, err = parseSize("--header-size", sf.headerSize, 0xffff); err != nil {
		return o, err
	}
	if o.SlotSize, err = parseSize("--slot-size", sf.slotSize, 1<<32); err != nil {
		return o, err
	}
	if o.Align, err = parseChoice("--align", sf.align, 1, 2, 4, 8, 16, 32); err != nil {
		return o, err
	}
	if sf.maxAlign != "" {
		if o.MaxAlign, err = parseChoice("--max-align", sf.maxAlign, 8, 16, 32); err != nil {
			return o, err
		}
	}
	if o.MaxSectors, err = parseSize("--max-sectors", sf.maxSectors, 1<<16); err != nil {
		return o, err
	}
	if o.MaxSectors == 0 {
		return o, errors.New("--max-sectors must be at least 1")
	}
	ev, err := parseChoice("--erased-val", sf.erasedVal, 0, 0xff)
	if err != nil {
		return o, err
	}
	o.EraseValue, o.EraseValueSet = byte(ev), true
	if sf.loadAddr != "" {
		a, err := parseSize("--load-addr", sf.loadAddr, 0xffffffff)
		if err != nil {
			return o, err
		}
		o.LoadAddr = uint32(a)
	}
	switch sf.secCnt {
	case "":
	case "auto":
		v := o.Version
		c := uint32(v.Major)<<24 | uint32(v.Minor)<<16 | uint32(v.Revision)
		o.SecurityCounter = &c
	default:
		c, err := parseSize("--security-counter", sf.secCnt, 0xffffffff)
		if err != nil {
			return o, err
		}
		c32 := uint32(c)
		o.SecurityCounter = &c32
	}
	if sf.deps != "" {
		if o.Dependencies, err = parseDependencies(sf.deps); err != nil {
			return o, err
		}
	}
	o.PadHeader, o.Pad, o.Confirm, o.OverwriteOnly = sf.padHeader, sf.pad, sf.confirm, sf.overwriteOnly
	if sf.key != "" {
		p, err := os.ReadFile(sf.key)
		if err != nil {
			return o, fmt.Errorf("reading key: %w", err)
		}
		if o.Key, err = image.ParsePrivateKeyPEM(p); err != nil {
			return o, fmt.Errorf("key %s: %w; -k wants an unencrypted PEM private key such as keygen writes", sf.key, err)
		}
		o.Rand = rand.Reader
	}
	return o, nil
}

// parseSize reads a non-negative integer in decimal or 0x hex (also 0o,
// 0b), as imgtool's int(value, 0). A decimal with a leading zero is refused
// because imgtool refuses it too (Go would read it as octal).
func parseSize(flag, s string, limit uint64) (int, error) {
	if len(s) > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9' {
		return 0, fmt.Errorf("%s %q: a decimal number cannot start with 0 (use 0x for hex)", flag, s)
	}
	n, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: not a number (decimal or 0x hex)", flag, s)
	}
	if n > limit {
		return 0, fmt.Errorf("%s %s is larger than %#x", flag, s, limit)
	}
	return int(n), nil
}

func parseChoice(flag, s string, choices ...int) (int, error) {
	n, err := parseSize(flag, s, 1<<32)
	if err != nil {
		return 0, err
	}
	for _, c := range choices {
		if n == c {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s %s: want one of %v", flag, s, choices)
}

// depPattern is one "(ID,VERSION)" of imgtool's -d list; depListRE is the
// whole comma-separated list, checked before depRE picks the pairs out.
const depPattern = `\(\s*(\d+)\s*,\s*([0-9.+]+)\s*\)`

var (
	depRE     = regexp.MustCompile(depPattern)
	depListRE = regexp.MustCompile(`^\s*` + depPattern + `(?:\s*,\s*` + depPattern + `)*\s*$`)
)

// parseDependencies reads -d "(ID,VERSION),(ID,VERSION)".
func parseDependencies(s string) ([]image.Dependency, error) {
	if !depListRE.MatchString(s) {
		return nil, fmt.Errorf(`--dependencies %q: want "(ID,MAJ.MIN.REV+BUILD),..."`, s)
	}
	var deps []image.Dependency
	for _, m := range depRE.FindAllStringSubmatch(s, -1) {
		id, err := strconv.ParseUint(m[1], 10, 8)
		if err != nil {
			return nil, fmt.Errorf("--dependencies: image id %s is not 0..255", m[1])
		}
		v, err := image.ParseVersion(m[2])
		if err != nil {
			return nil, fmt.Errorf("--dependencies: %w", err)
		}
		deps = append(deps, image.Dependency{ImageID: uint8(id), MinVersion: v})
	}
	return deps, nil
}

func newImageVerifyCmd() *cobra.Command {
	var keyFiles []string
	cmd := &cobra.Command{
		Use:   "verify -k KEY IMG",
		Short: "Check an image's hash and signature (exit 0 valid, 1 invalid)",
		Long: `Check IMG as the bootloader does: the header and TLV layout, the SHA256 TLV
against the image digest, and a signature by KEY selected by its KEYHASH.
KEY may be a public or a private key (PEM); -k may be repeated (any one key's
valid signature is enough). Without -k only the hash is checked.

Exit status: 0 for a valid image; 1 with the reason on one line for an
invalid image, or when IMG or KEY cannot be read.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			msg, err := verifyImage(args[0], keyFiles)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&keyFiles, "key", "k", nil, "public or private key (PEM) the image must be signed with; repeatable")
	return cmd
}

func verifyImage(path string, keyFiles []string) (string, error) {
	var keys []crypto.PublicKey
	for _, kf := range keyFiles {
		p, err := os.ReadFile(kf)
		if err != nil {
			return "", fmt.Errorf("reading key: %w", err)
		}
		k, err := image.ParsePublicKeyPEM(p)
		if err != nil {
			return "", fmt.Errorf("key %s: %w; -k wants a PEM public key (getpub) or private key", kf, err)
		}
		keys = append(keys, k)
	}
	im, _, err := parseImageFile(path)
	if err != nil {
		return "", err
	}
	if err := im.Verify(keys); err != nil {
		return "", fmt.Errorf("%s: invalid: %w", path, err)
	}
	what := "hash OK, signature verified"
	if len(keys) == 0 {
		what = "hash OK (no key given: signature not checked)"
	}
	return fmt.Sprintf("%s: valid image %s: %s", path, im.Header.Version, what), nil
}

// parseImageFile parses the image at the start of path. The whole file
// bounds the image, so a padded slot dump works as well as a bare image.
func parseImageFile(path string) (*image.Image, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("reading image: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("reading image: %w", err)
	}
	im, err := image.Parse(f, st.Size())
	if errors.Is(err, image.ErrTooLarge) {
		// The file is the only bound here, so "too large" means the header
		// promises more than the file holds.
		return nil, 0, fmt.Errorf("%s: invalid: %w (the file has %d bytes: truncated?)", path, err, st.Size())
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%s: invalid: %w", path, err)
	}
	return im, st.Size(), nil
}

// imageInfo is the JSON form of `image info --json`; the field names are
// a stable interface (documented in the command's help).
type imageInfo struct {
	File            string           `json:"file"`
	FileSize        int64            `json:"file_size"`
	Header          headerInfo       `json:"header"`
	TLVOffset       int64            `json:"tlv_offset"`
	ImageEnd        int64            `json:"image_end"`
	HashedRange     [2]int64         `json:"hashed_range"`
	Digest          string           `json:"digest"`
	HashOK          bool             `json:"hash_ok"`
	SecurityCounter *uint32          `json:"security_counter,omitempty"`
	Dependencies    []dependencyInfo `json:"dependencies,omitempty"`
	TLVs            []tlvInfo        `json:"tlvs"`
	Trailer         *trailerInfo     `json:"trailer,omitempty"`
}

type headerInfo struct {
	Magic          string   `json:"magic"`
	LoadAddr       uint32   `json:"load_addr"`
	HdrSize        uint16   `json:"hdr_size"`
	ProtectTLVSize uint16   `json:"protect_tlv_size"`
	ImgSize        uint32   `json:"img_size"`
	Flags          uint32   `json:"flags"`
	FlagNames      []string `json:"flag_names"`
	Version        string   `json:"version"`
}

type tlvInfo struct {
	Area   string `json:"area"`
	Type   uint16 `json:"type"`
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Len    int    `json:"len"`
	Value  string `json:"value"`
}

type dependencyInfo struct {
	ImageID    uint8  `json:"image_id"`
	MinVersion string `json:"min_version"`
}

type trailerInfo struct {
	MaxAlign    int    `json:"max_align"`
	MagicOffset int64  `json:"magic_offset"`
	Magic       string `json:"magic"`
	ImageOK     string `json:"image_ok"`
}

var flagNames = []struct {
	flag uint32
	name string
}{
	{image.FlagPIC, "PIC"}, {image.FlagEncryptedAES128, "ENCRYPTED_AES128"}, {image.FlagEncryptedAES256, "ENCRYPTED_AES256"},
	{image.FlagNonBootable, "NON_BOOTABLE"}, {image.FlagRAMLoad, "RAM_LOAD"}, {image.FlagROMFixed, "ROM_FIXED"},
	{image.FlagCompressedLZMA1, "COMPRESSED_LZMA1"}, {image.FlagCompressedLZMA2, "COMPRESSED_LZMA2"},
	{image.FlagCompressedARM, "COMPRESSED_ARM_THUMB"},
}

func newImageInfoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info [--json] IMG",
		Short: "Print an image's header, TLVs, digest and trailer",
		Long: `Print IMG's header, its TLVs in order, the SHA-256 digest of the hashed range
and whether the SHA256 TLV matches it (no signature check: see verify). When
the file continues past the image (an imgtool --pad output or a slot dump),
the trailer at the end of the file is decoded too.

--json prints one object with these stable fields:
  file, file_size
  header: magic ("0x96f3b83d"), load_addr, hdr_size, protect_tlv_size,
          img_size, flags, flag_names ([...]), version ("MAJ.MIN.REV+BUILD")
  tlv_offset (hdr_size + img_size), image_end (end of the TLVs)
  hashed_range ([start, end)), digest (hex), hash_ok
  security_counter (protected SEC_CNT; omitted if none)
  dependencies ([{image_id, min_version}]; omitted if none)
  tlvs: [{area ("protected"|"unprotected"), type, name, offset (of the
        value), len, value (hex)}]
  trailer (only if the file is longer than the image): max_align,
        magic_offset, magic ("good"|"unset"|"bad"|"none"),
        image_ok ("set"|"unset"|"bad"|"none"); "none" when the file ends
        too soon after the image to hold the field`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := describeImage(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			printImageInfo(out, info)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (field names documented above)")
	return cmd
}

func describeImage(path string) (*imageInfo, error) {
	im, size, err := parseImageFile(path)
	if err != nil {
		return nil, err
	}
	h := im.Header
	info := &imageInfo{
		File:     path,
		FileSize: size,
		Header: headerInfo{
			Magic: fmt.Sprintf("%#08x", h.Magic), LoadAddr: h.LoadAddr, HdrSize: h.HdrSize, ProtectTLVSize: h.ProtectTLVSize,
			ImgSize: h.ImgSize, Flags: h.Flags, FlagNames: []string{}, Version: h.Version.String(),
		},
		TLVOffset:   im.TLVOffset,
		ImageEnd:    im.End,
		HashedRange: [2]int64{0, im.TLVOffset + int64(h.ProtectTLVSize)},
		Digest:      hex.EncodeToString(im.Digest[:]),
		TLVs:        []tlvInfo{},
	}
	for _, fn := range flagNames {
		if h.Flags&fn.flag != 0 {
			info.Header.FlagNames = append(info.Header.FlagNames, fn.name)
		}
	}
	info.HashOK = im.Verify(nil) == nil
	if c, ok := im.SecurityCounter(); ok {
		info.SecurityCounter = &c
	}
	for _, d := range im.Dependencies() {
		info.Dependencies = append(info.Dependencies, dependencyInfo{ImageID: d.ImageID, MinVersion: d.MinVersion.String()})
	}
	for _, t := range im.TLVs {
		area := "unprotected"
		if t.Protected {
			area = "protected"
		}
		name := image.TLVName(t.Type)
		if name == "" {
			name = fmt.Sprintf("0x%02x", t.Type)
		}
		info.TLVs = append(info.TLVs, tlvInfo{Area: area, Type: t.Type, Name: name, Offset: t.Offset, Len: len(t.Value),
			Value: hex.EncodeToString(t.Value)})
	}
	if size > im.End {
		tr, err := readTrailer(path, size, im.End)
		if err != nil {
			return nil, err
		}
		info.Trailer = tr
	}
	return info, nil
}

// readTrailer decodes magic and image_ok at the end of the file. The magic
// tells the max-align (reference §2); an unrecognised magic is read with
// the default of 8.
func readTrailer(path string, size, imageEnd int64) (*trailerInfo, error) {
	const cell = 64 // image_ok sits at most 64 bytes from the end (max-align 32)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading image: %w", err)
	}
	defer f.Close()
	n := min(size-imageEnd, cell)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil {
		return nil, fmt.Errorf("reading trailer: %w", err)
	}
	tr := &trailerInfo{MaxAlign: 8, Magic: "bad", ImageOK: "unset"}
	if n < 16 {
		tr.Magic, tr.ImageOK = "none", "none"
		return tr, nil
	}
	tr.MagicOffset = size - 16
	magic := buf[n-16:]
	erased := func(b []byte) bool {
		for _, c := range b {
			if c != b[0] || (c != 0 && c != 0xff) {
				return false
			}
		}
		return true
	}
	for _, ma := range []int{8, 16, 32} {
		m, _ := image.MagicFor(ma)
		if string(m[:]) == string(magic) {
			tr.MaxAlign, tr.Magic = ma, "good"
		}
	}
	if tr.Magic != "good" && erased(magic) {
		tr.Magic = "unset"
	}
	okOff := int64(image.ImageOKOffset(tr.MaxAlign))
	if okOff > n {
		tr.ImageOK = "none" // its cell would overlap the image
		return tr, nil
	}
	// The rest of the image_ok cell holds the erased value, whichever the
	// flash uses.
	erasedVal := buf[n-okOff+1]
	switch b := buf[n-okOff]; {
	case b == 1:
		tr.ImageOK = "set"
	case b == erasedVal && (b == 0 || b == 0xff):
		tr.ImageOK = "unset"
	default:
		tr.ImageOK = "bad"
	}
	return tr, nil
}

func printImageInfo(w io.Writer, info *imageInfo) {
	h := info.Header
	flags := strings.Join(h.FlagNames, "|")
	if flags == "" {
		flags = "none"
	}
	fmt.Fprintf(w, "file:          %s (%d bytes)\n", info.File, info.FileSize)
	fmt.Fprintf(w, "magic:         %s\n", h.Magic)
	fmt.Fprintf(w, "version:       %s\n", h.Version)
	fmt.Fprintf(w, "header size:   %#x\n", h.HdrSize)
	fmt.Fprintf(w, "image size:    %#x\n", h.ImgSize)
	fmt.Fprintf(w, "protected TLV: %#x bytes\n", h.ProtectTLVSize)
	fmt.Fprintf(w, "load address:  %#x\n", h.LoadAddr)
	fmt.Fprintf(w, "flags:         %#x (%s)\n", h.Flags, flags)
	fmt.Fprintf(w, "TLVs:          %#x..%#x\n", info.TLVOffset, info.ImageEnd)
	for _, t := range info.TLVs {
		fmt.Fprintf(w, "  %-11s %-11s type %#04x  off %#x  len %d  %s\n", t.Area, t.Name, t.Type, t.Offset, t.Len, t.Value)
	}
	if info.SecurityCounter != nil {
		fmt.Fprintf(w, "security counter: %d\n", *info.SecurityCounter)
	}
	for _, d := range info.Dependencies {
		fmt.Fprintf(w, "depends on:    image %d >= %s\n", d.ImageID, d.MinVersion)
	}
	ok := "matches the SHA256 TLV"
	if !info.HashOK {
		ok = "DOES NOT match the SHA256 TLV (or it is missing)"
	}
	fmt.Fprintf(w, "hash:          %s over [0, %#x): %s\n", info.Digest, info.HashedRange[1], ok)
	switch t := info.Trailer; {
	case t == nil:
	case t.Magic == "none":
		fmt.Fprintf(w, "trailer:       none (the file ends %d bytes after the image, too few for the magic)\n", info.FileSize-info.ImageEnd)
	default:
		fmt.Fprintf(w, "trailer:       magic %s (max-align %d) at %#x, image_ok %s\n", t.Magic, t.MaxAlign, t.MagicOffset, t.ImageOK)
	}
}

func newImageGetpubCmd() *cobra.Command {
	var keyFile, encoding, outFile string
	cmd := &cobra.Command{
		Use:   "getpub -k KEY [-e pem|raw] [-o OUT]",
		Short: "Print the public key of a key file (as imgtool getpub)",
		Long: `Print the public half of KEY: as a PEM "PUBLIC KEY" block (-e pem, the
default) or as the raw bytes a bootloader embeds and KEYHASH hashes (-e raw:
DER SubjectPublicKeyInfo for ECDSA and Ed25519, DER PKCS#1 for RSA).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("reading key: %w", err)
			}
			pub, err := image.ParsePublicKeyPEM(p)
			if err != nil {
				return fmt.Errorf("key %s: %w; -k wants a PEM private key (keygen) or public key", keyFile, err)
			}
			var out []byte
			switch encoding {
			case "pem":
				out, err = image.MarshalPublicKeyPEM(pub)
			case "raw":
				out, err = image.PublicKeyBytes(pub)
			default:
				return fmt.Errorf("--encoding %q: want pem or raw", encoding)
			}
			if err != nil {
				return err
			}
			if outFile != "" {
				if err := os.WriteFile(outFile, out, 0o644); err != nil {
					return fmt.Errorf("writing public key: %w", err)
				}
				return nil
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVarP(&keyFile, "key", "k", "", "private or public key (PEM) (required)")
	cmd.Flags().StringVarP(&encoding, "encoding", "e", "pem", "output encoding: pem or raw")
	cmd.Flags().StringVarP(&outFile, "output", "o", "", "write to this file instead of stdout")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}
