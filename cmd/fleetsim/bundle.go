package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/agent/bundle"
	"github.com/fleetsim/fleetsim/gateway/firmware"
	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/spf13/cobra"
)

// The bundle commands are the I/O edge of agent/bundle: `create` reads a
// gateway's data directory (without opening the gateway, whose store is
// locked while it serves) and writes a bundle; `info` describes one.

// The gateway's data directory, as gateway.Open lays it out (gateway.go):
// the two TUF repositories and the content-addressed firmware. The gateway
// does not export these paths; TestBundleCreateFromGateway builds a data
// directory with gateway.Open, so a change there fails that test.
const (
	gatewayCIRepoDir   = "tuf/ci"
	gatewayProdRepoDir = "tuf/prod"
	gatewayFirmwareDir = "firmware"
)

func newBundleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Offline updates: a file of TUF metadata and firmware for devices without a network",
		Long: `A bundle is one file (a USTAR archive) holding what a device of one tag would
fetch from the gateway: the root chain, timestamp.json, snapshot.json and
targets.json byte for byte as served, and the firmware its targets name. It is
delivered over UART, USB or a memory card; the device's TUF client verifies it
exactly as it verifies the gateway's answers. See docs/bundle.md.`,
	}
	cmd.AddCommand(newBundleCreateCmd(), newBundleInfoCmd())
	return cmd
}

func bundleUsage(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

func bundleRefused(format string, args ...any) error {
	return &exitError{1, fmt.Errorf(format, args...)}
}

type bundleCreateFlags struct {
	data, repo, tag, hwid, version, out, now string
	rootFrom                                 int64
	force                                    bool
}

func newBundleCreateCmd() *cobra.Command {
	f := &bundleCreateFlags{}
	cmd := &cobra.Command{
		Use:   "create --data DIR --tag T --hwid H [--version V] [--repo ci|production] [--root-from N] -o FILE",
		Short: "Write the bundle a device of a tag and hardware id needs, from a gateway data directory",
		Long: `create reads the gateway data directory DIR (that of 'fleetsim gateway serve
--data DIR'; the gateway may be running) without changing anything in it, and
writes FILE: the metadata of tag T's view of the CI or production repository
(N.root.json from --root-from to the newest root, timestamp.json,
snapshot.json, targets.json) and the firmware of one target. The target is
<H>-v<V> with --version, otherwise the one a device with hardware id H and tag
T selects: the highest custom.version, as aktualizr-nano compares.

A device refuses the bundle once its timestamp.json expires (a freeze
attack, to TUF): create prints that time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBundleCreate(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.data, "data", "", "gateway data directory (fleetsim gateway serve --data)")
	fl.StringVar(&f.repo, "repo", "ci", "repository: ci (test devices) or production")
	fl.StringVar(&f.tag, "tag", "", "device tag whose view the bundle carries")
	fl.StringVar(&f.hwid, "hwid", "", "hardware id of the devices (BOARD_NAME)")
	fl.StringVar(&f.version, "version", "", "target version (build number); default: the one a device selects")
	fl.Int64Var(&f.rootFrom, "root-from", 1, "first root version to carry: the one the devices trust, or lower")
	fl.StringVarP(&f.out, "out", "o", "", "bundle file to write")
	fl.BoolVar(&f.force, "force", false, "replace FILE if it exists")
	fl.StringVar(&f.now, "now", "", "the bundle's created time, RFC 3339 (default: the wall clock)")
	return cmd
}

func runBundleCreate(cmd *cobra.Command, f *bundleCreateFlags) error {
	switch {
	case f.data == "":
		return bundleUsage("--data DIR is required: the gateway's data directory")
	case f.tag == "":
		return bundleUsage("--tag T is required: the device tag whose view the bundle carries")
	case f.hwid == "":
		return bundleUsage("--hwid H is required: the hardware id of the devices the firmware is for")
	case f.out == "":
		return bundleUsage("-o FILE is required")
	case f.rootFrom < 1:
		return bundleUsage("--root-from %d: root versions start at 1", f.rootFrom)
	}
	repoDir := gatewayCIRepoDir
	switch f.repo {
	case "ci":
	case "production":
		repoDir = gatewayProdRepoDir
	default:
		return bundleUsage("--repo %q: ci or production", f.repo)
	}
	if !tufrepo.ValidTag(f.tag) {
		return bundleUsage("--tag %q: %s", f.tag, repoTagRule)
	}
	if f.version != "" {
		if _, err := tufrepo.ParseVersion(f.version); err != nil {
			return bundleUsage("--version %q: want a build number from 1, without leading zeros", f.version)
		}
	}
	now := time.Now().UTC()
	if f.now != "" {
		t, err := time.Parse(time.RFC3339, f.now)
		if err != nil {
			return bundleUsage("--now %q: want an RFC 3339 time such as 2026-11-21T09:00:00Z", f.now)
		}
		now = t.UTC()
	}
	if !f.force {
		if _, err := os.Lstat(f.out); err == nil {
			return bundleRefused("%s exists; give --force to replace it", f.out)
		}
	}

	// tufrepo.Open only reads: it takes no lock and writes nothing, and
	// the random source is needed only to sign, which this never does.
	repo, err := tufrepo.Open(filepath.Join(f.data, repoDir), nil)
	if errors.Is(err, fs.ErrNotExist) {
		return bundleUsage("%s is not a gateway data directory (it has no %s); give the directory of fleetsim gateway serve --data", f.data, repoDir)
	}
	if err != nil {
		return bundleRefused("reading the %s repository: %s", f.repo, strings.ReplaceAll(err.Error(), "tufrepo: ", ""))
	}
	files, err := repo.Files(f.tag)
	if errors.Is(err, tufrepo.ErrUnknownTag) {
		return bundleUsage("tag %q has no view in the %s repository (its tags: %s)", f.tag, f.repo, listOrNone(repo.Tags()))
	}
	if err != nil {
		return bundleRefused("reading tag %s: %v", f.tag, err)
	}
	if newest := repo.RootVersion(); f.rootFrom > newest {
		return bundleUsage("--root-from %d: the newest root is version %d", f.rootFrom, newest)
	}
	c := bundle.Contents{Repository: f.repo, Tag: f.tag, Created: now}
	var targetsJSON []byte
	for _, file := range files {
		if v, ok := rootFileVersion(file.Name); ok && v < f.rootFrom {
			continue
		}
		if file.Name == "targets.json" {
			targetsJSON = file.Data
		}
		c.Metadata = append(c.Metadata, bundle.File{Name: file.Name, Data: file.Data})
	}
	target, err := pickBundleTarget(targetsJSON, f)
	if err != nil {
		return err
	}
	img, err := readGatewayFirmware(filepath.Join(f.data, gatewayFirmwareDir), target)
	if err != nil {
		return err
	}
	c.Firmware = [][]byte{img}

	var buf bytes.Buffer
	if err := bundle.Create(&buf, c); err != nil {
		return bundleRefused("%v", err)
	}
	if err := writeBundleFile(f.out, buf.Bytes(), f.force); err != nil {
		return err
	}
	view, _ := repo.View(f.tag)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s: %d bytes, %s repository, tag %s, roots %d..%d, target %s (%d bytes, sha256 %s)\n",
		f.out, buf.Len(), f.repo, f.tag, f.rootFrom, repo.RootVersion(), target.name, target.length, target.sha256)
	fmt.Fprintf(w, "devices refuse it once timestamp.json expires, at %s\n", view.TimestampExpires.UTC().Format(time.RFC3339))
	if !view.TimestampExpires.After(now) {
		// Still written: a device whose clock is behind may take it, and
		// the operator may want to inspect it. The gateway renews its
		// timestamps while it runs.
		fmt.Fprintf(cmd.ErrOrStderr(), "fleetsim: warning: timestamp.json expired at %s, before %s: devices will refuse this bundle; run the gateway so that it renews its metadata, then create the bundle again\n",
			view.TimestampExpires.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// rootFileVersion parses "N.root.json".
func rootFileVersion(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, ".root.json")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// servedTarget is one entry of a served targets.json, as read for the
// operator: nothing here is verified, and nothing needs to be, since the
// device verifies the bundle itself.
type servedTarget struct {
	name, version, sha256 string
	length                int64
	hardwareIDs, tags     []string
}

// parseServedTargets reads the targets of a targets.json, sorted by name.
func parseServedTargets(data []byte) ([]servedTarget, error) {
	var md struct {
		Signed struct {
			Targets map[string]struct {
				Length int64             `json:"length"`
				Hashes map[string]string `json:"hashes"`
				Custom struct {
					Version     json.RawMessage `json:"version"`
					HardwareIDs []string        `json:"hardwareIds"`
					Tags        []string        `json:"tags"`
				} `json:"custom"`
			} `json:"targets"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &md); err != nil {
		return nil, err
	}
	var out []servedTarget
	for name, t := range md.Signed.Targets {
		out = append(out, servedTarget{
			name: name, version: strings.Trim(string(t.Custom.Version), `"`), sha256: t.Hashes["sha256"],
			length: t.Length, hardwareIDs: t.Custom.HardwareIDs, tags: t.Custom.Tags,
		})
	}
	slices.SortFunc(out, func(a, b servedTarget) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// pickBundleTarget finds the target to carry: <hwid>-v<version>, or the one
// the device's own selection (agent.SelectTarget, with aktualizr-nano's
// matching) picks from targets.json.
func pickBundleTarget(targetsJSON []byte, f *bundleCreateFlags) (servedTarget, error) {
	where := fmt.Sprintf("tag %s of the %s repository", f.tag, f.repo)
	listed, err := parseServedTargets(targetsJSON)
	if err != nil {
		return servedTarget{}, bundleRefused("reading the targets.json of %s: %v", where, err)
	}
	if f.version != "" {
		name := f.hwid + "-v" + f.version
		for _, t := range listed {
			if t.name == name {
				return t, nil
			}
		}
		names := make([]string, len(listed))
		for i, t := range listed {
			names[i] = t.name
		}
		return servedTarget{}, bundleUsage("no target %s in %s (it lists: %s)", name, where, listOrNone(names))
	}
	sel, _, err := agent.SelectTarget(targetsJSON, f.hwid, f.tag, false)
	if err != nil {
		return servedTarget{}, bundleRefused("selecting a target in %s: %v", where, err)
	}
	if sel.Version == 0 {
		return servedTarget{}, bundleUsage("no target for hardware id %s in %s; publish one, or check --hwid, --tag and --repo", f.hwid, where)
	}
	sum := hex.EncodeToString(sel.SHA256[:])
	version := strconv.FormatUint(uint64(sel.Version), 10)
	var found *servedTarget
	for i, t := range listed {
		if t.sha256 == sum && t.version == version && (found == nil || t.name == f.hwid+"-v"+version) {
			found = &listed[i]
		}
	}
	if found == nil {
		return servedTarget{}, bundleRefused("the target selected in %s (version %s, sha256 %s) is not in its targets.json", where, version, sum)
	}
	return *found, nil
}

// readGatewayFirmware reads the target's image from the gateway's firmware
// directory and checks it against the target's length and hash.
func readGatewayFirmware(dir string, t servedTarget) ([]byte, error) {
	// firmware.Open creates a missing directory: make sure it exists, so
	// that a wrong --data never leaves a directory behind.
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, bundleRefused("the data directory has no firmware directory %s", dir)
	}
	limit := bundle.DefaultLimits().MaxFirmwareSize
	if t.length > limit {
		return nil, bundleRefused("target %s is %d bytes, more than the %d a bundle carries", t.name, t.length, limit)
	}
	fw, err := firmware.Open(dir)
	if err != nil {
		return nil, bundleRefused("opening %s: %v", dir, err)
	}
	defer fw.Close()
	r, err := fw.Open(t.sha256)
	if errors.Is(err, firmware.ErrNotFound) {
		return nil, bundleRefused("the data directory has no firmware file for target %s (sha256 %s)", t.name, t.sha256)
	}
	if err != nil {
		return nil, bundleRefused("reading the firmware of %s: %v", t.name, err)
	}
	if r.Size() != t.length {
		return nil, bundleRefused("the firmware file of %s is %d bytes, its target says %d", t.name, r.Size(), t.length)
	}
	img := make([]byte, t.length)
	if _, err := io.ReadFull(r, img); err != nil {
		return nil, bundleRefused("reading the firmware of %s: %v", t.name, err)
	}
	if sum := sha256.Sum256(img); hex.EncodeToString(sum[:]) != t.sha256 {
		return nil, bundleRefused("the firmware file of %s does not hash to its sha256 %s: the data directory is damaged", t.name, t.sha256)
	}
	return img, nil
}

// writeBundleFile writes data to path. With force it goes through a
// temporary file renamed over path, so path holds its old content or the
// whole bundle. Without force, path is created exclusively (an existing
// file, even one created since the first check, is never replaced) and
// removed again if the write fails; this also works on the FAT file systems
// of USB sticks and memory cards, which have no hard links.
func writeBundleFile(path string, data []byte, force bool) error {
	var (
		f   *os.File
		err error
	)
	if force {
		f, err = os.CreateTemp(filepath.Dir(path), ".bundle-*")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if errors.Is(err, fs.ErrExist) {
		return bundleRefused("%s exists; give --force to replace it", path)
	}
	if err != nil {
		return bundleRefused("writing %s: %v", path, err)
	}
	_, err = f.Write(data)
	if err == nil && force {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && force {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return bundleRefused("writing %s: %v", path, err)
	}
	return nil
}

func newBundleInfoCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info FILE [--json]",
		Short: "Show a bundle's manifest, members and targets",
		Long: `info checks FILE as a device's bundle reader does (a well-formed archive whose
members match its manifest) and shows the manifest, each member, and the
targets its targets.json lists with whether the bundle carries their firmware.
The metadata is shown as carried, not verified: only a device's TUF client,
holding its root of trust, can verify it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := readBundleInfo(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			printBundleInfo(cmd.OutOrStdout(), info)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the description as JSON")
	return cmd
}

// bundleInfo is what `bundle info` reports; --json prints it as is.
type bundleInfo struct {
	File       string             `json:"file"`
	Size       int64              `json:"size"`
	Format     int                `json:"format"`
	Repository string             `json:"repository"`
	Tag        string             `json:"tag"`
	Created    time.Time          `json:"created"`
	Members    []bundleMemberInfo `json:"members"`
	Targets    []bundleTargetInfo `json:"targets"`
	Unlisted   []string           `json:"unreferenced_firmware,omitempty"`
}

type bundleMemberInfo struct {
	Name   string `json:"name"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
	// Version and Expires are the metadata's own signed.version and
	// signed.expires, unverified; absent for firmware.
	Version int64      `json:"version,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
}

type bundleTargetInfo struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	HardwareIDs []string `json:"hardware_ids"`
	Tags        []string `json:"tags"`
	Length      int64    `json:"length"`
	SHA256      string   `json:"sha256"`
	Carried     bool     `json:"carried"`
}

func readBundleInfo(path string) (*bundleInfo, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, bundleUsage("%v", err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, bundleUsage("%v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, bundleUsage("%s is not a regular file", path)
	}
	b, err := bundle.Open(file, st.Size())
	if err != nil {
		return nil, bundleUsage("%s is not a valid bundle: %s", path, strings.TrimPrefix(err.Error(), "bundle: "))
	}
	m := b.Manifest()
	info := &bundleInfo{
		File: path, Size: st.Size(), Format: m.Format, Repository: m.Repository, Tag: m.Tag, Created: m.Created.UTC(),
		Members: []bundleMemberInfo{}, Targets: []bundleTargetInfo{},
	}
	buf := make([]byte, bundle.DefaultLimits().MaxMetadataSize)
	carried := map[string]bool{}
	for _, mem := range m.Members {
		mi := bundleMemberInfo{Name: mem.Name, Length: mem.Length, SHA256: mem.SHA256}
		if name, ok := strings.CutPrefix(mem.Name, "metadata/"); ok {
			n, err := b.Fetch(name, buf)
			if err != nil {
				return nil, bundleUsage("%s: %s", path, strings.TrimPrefix(err.Error(), "bundle: "))
			}
			var md struct {
				Signed struct {
					Version int64     `json:"version"`
					Expires time.Time `json:"expires"`
				} `json:"signed"`
			}
			if json.Unmarshal(buf[:n], &md) == nil && md.Signed.Version > 0 {
				exp := md.Signed.Expires.UTC()
				mi.Version, mi.Expires = md.Signed.Version, &exp
			}
			if name == "targets.json" {
				listed, err := parseServedTargets(buf[:n])
				if err != nil {
					return nil, bundleUsage("%s: metadata/targets.json is not targets metadata: %v", path, err)
				}
				for _, t := range listed {
					info.Targets = append(info.Targets, bundleTargetInfo{
						Name: t.name, Version: t.version, HardwareIDs: t.hardwareIDs, Tags: t.tags, Length: t.length, SHA256: t.sha256,
					})
				}
			}
		} else if sum, ok := strings.CutPrefix(mem.Name, "firmware/"); ok {
			carried[strings.TrimSuffix(sum, ".bin")] = true
		}
		info.Members = append(info.Members, mi)
	}
	named := map[string]bool{}
	for i := range info.Targets {
		t := &info.Targets[i]
		t.Carried = carried[t.SHA256]
		named[t.SHA256] = true
	}
	for _, mem := range m.Members {
		if sum, ok := strings.CutPrefix(mem.Name, "firmware/"); ok && !named[strings.TrimSuffix(sum, ".bin")] {
			info.Unlisted = append(info.Unlisted, mem.Name)
		}
	}
	return info, nil
}

func printBundleInfo(w io.Writer, info *bundleInfo) {
	fmt.Fprintf(w, "bundle %s: %d bytes, format %d\n", info.File, info.Size, info.Format)
	fmt.Fprintf(w, "repository %s, tag %s, created %s\n\n", info.Repository, info.Tag, info.Created.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "member\tlength\tsha256\tversion\texpires")
	for _, m := range info.Members {
		version, expires := "-", "-"
		if m.Expires != nil {
			version, expires = strconv.FormatInt(m.Version, 10), m.Expires.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m.Name, m.Length, m.SHA256, version, expires)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(info.Targets) == 0 {
		fmt.Fprintln(w, "targets: none listed")
	} else {
		fmt.Fprintln(w, "targets (as listed in targets.json, unverified):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "target\tversion\thardware ids\tlength\tsha256\tfirmware")
		for _, t := range info.Targets {
			fw := "not carried"
			if t.Carried {
				fw = "carried"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.Name, t.Version, strings.Join(t.HardwareIDs, ","), t.Length, t.SHA256, fw)
		}
		tw.Flush()
	}
	for _, name := range info.Unlisted {
		fmt.Fprintf(w, "%s: no target lists this firmware\n", name)
	}
}
