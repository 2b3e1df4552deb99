package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetsim/fleetsim/gateway/tufrepo"
	"github.com/spf13/cobra"
)

// The tuf-repo commands are the I/O edge of gateway/tufrepo: they read the
// wall clock (or --now), hand crypto/rand to the package, read images and key
// files, and write exports. Everything signed is signed by the package.

// tufRepoFlags are the flags every tuf-repo subcommand shares.
type tufRepoFlags struct {
	dir string
	now string
}

// repoCmdError is a tuf-repo failure: a one-line message for the user (with
// what to do about it) that still unwraps to the package's typed error.
type repoCmdError struct {
	msg string
	err error
}

func (e *repoCmdError) Error() string { return e.msg }
func (e *repoCmdError) Unwrap() error { return e.err }

// repoUsage is an exit-2 error: the command line itself is wrong.
func repoUsage(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

// repoRefused is an exit-1 error: the command line is fine but the operation
// cannot be done on this repository (or this file system).
func repoRefused(format string, args ...any) error {
	return &exitError{1, fmt.Errorf(format, args...)}
}

// repoError maps the package's typed errors to exit codes: input that is
// wrong whatever the repository holds (a bad version, key file, threshold or
// role) is usage, exit 2; what the repository refuses in its current state
// (a duplicate or unknown target or tag, missing signing keys, corruption) is
// exit 1. The "tufrepo: " prefixes are dropped: the CLI speaks as fleetsim.
func repoError(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), "tufrepo: ", "")
	code := 1
	var ke *tufrepo.KeysError
	switch {
	case errors.As(err, &ke) && ke.Role == tufrepo.RoleRoot:
		msg += "; root must be signed: pass the offline root key file with --root-key FILE"
	case errors.Is(err, tufrepo.ErrMissingKeys):
		msg += "; the repository does not hold enough keys for this role"
	case errors.Is(err, tufrepo.ErrDuplicateTarget):
		msg += ": a target name is <hwid>-v<version>; publish the new build with a higher --version"
	case errors.Is(err, tufrepo.ErrUnknownTarget):
		msg += ": see the targets with fleetsim tuf-repo show"
	case errors.Is(err, tufrepo.ErrUnknownTag):
		msg += ": see the tags with fleetsim tuf-repo show, add one with fleetsim tuf-repo add-tag"
	case errors.Is(err, tufrepo.ErrCorrupt):
		msg += "; restore the repository directory from a backup"
	case errors.Is(err, tufrepo.ErrBadTarget), errors.Is(err, tufrepo.ErrBadKey), errors.Is(err, tufrepo.ErrBadConfig):
		code = 2
	}
	return &exitError{code, &repoCmdError{msg: msg, err: err}}
}

// repoTagRule is tufrepo.ValidTag in words, for the errors that refuse a tag.
const repoTagRule = "a tag is 1 to 64 letters, digits, '-', '_', '.' or '+'"

func (f *tufRepoFlags) clock() (time.Time, error) {
	if f.now == "" {
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, f.now)
	if err != nil {
		return time.Time{}, repoUsage("--now %q: want an RFC 3339 time such as 2026-11-21T09:00:00Z", f.now)
	}
	return t.UTC(), nil
}

func (f *tufRepoFlags) needDir() error {
	if f.dir == "" {
		return repoUsage("--repo DIR is required")
	}
	return nil
}

// open loads the repository at --repo and the time the operation runs at.
func (f *tufRepoFlags) open() (*tufrepo.Repo, time.Time, error) {
	if err := f.needDir(); err != nil {
		return nil, time.Time{}, err
	}
	now, err := f.clock()
	if err != nil {
		return nil, time.Time{}, err
	}
	// crypto/rand is needed only for RSA-PSS salts; the package never stores it.
	r, err := tufrepo.Open(f.dir, rand.Reader)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, repoUsage("%s holds no TUF repository; create one with fleetsim tuf-repo init --repo %s", f.dir, f.dir)
	}
	if err != nil {
		return nil, time.Time{}, repoError(err)
	}
	return r, now, nil
}

// printRepoWarnings writes the package's warnings to stderr, one line each.
func printRepoWarnings(w io.Writer, ws []tufrepo.Warning) {
	for _, x := range ws {
		fmt.Fprintf(w, "fleetsim: warning: %s\n", x)
	}
}

func parseRepoKeyType(s string) (tufrepo.KeyType, error) {
	switch t := tufrepo.KeyType(s); t {
	case tufrepo.KeyEd25519, tufrepo.KeyECDSAP256, tufrepo.KeyRSAPSS:
		return t, nil
	}
	return "", repoUsage("--key-type %q: want ed25519, ecdsa-p256 or rsa-pss", s)
}

func parseRepoRole(s string) (tufrepo.Role, error) {
	switch r := tufrepo.Role(s); r {
	case tufrepo.RoleRoot, tufrepo.RoleTargets, tufrepo.RoleSnapshot, tufrepo.RoleTimestamp:
		return r, nil
	}
	return "", repoUsage("unknown role %q: want root, targets, snapshot or timestamp", s)
}

// parseRepoPeriod reads an expiry period: a Go duration ("36h") or whole days
// ("30d"), the unit metadata expiries are usually spoken of in.
func parseRepoPeriod(flag, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 && n <= 100*365 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d >= time.Second {
		return d, nil
	}
	return 0, repoUsage("--%s %q: want a period such as 30d or 36h, at least 1s", flag, s)
}

// readRepoKeyFiles loads private key files given on the command line.
func readRepoKeyFiles(flag string, paths []string) ([]*tufrepo.PrivateKey, error) {
	var ks []*tufrepo.PrivateKey
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, repoUsage("--%s %s: %v", flag, p, repoPathErr(err))
		}
		k, err := tufrepo.ParsePrivateKey(data)
		if err != nil {
			return nil, repoUsage("--%s %s: %s", flag, p, strings.ReplaceAll(err.Error(), "tufrepo: ", ""))
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// repoPathErr drops the "open FILE: " of a *fs.PathError whose path the
// message already names.
func repoPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writeRepoKeyFile writes a private key to a new file readable by its owner only.
// An existing file is never overwritten: it may be the only copy of another
// key. A file that could not be written completely is removed.
func writeRepoKeyFile(path string, k *tufrepo.PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return repoRefused("%s exists; key files are never overwritten, choose a new name", path)
	}
	if err != nil {
		return repoRefused("writing key file: %v", err)
	}
	_, err = f.Write(k.MarshalPEM())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return repoRefused("writing key file %s: %v", path, repoPathErr(err))
	}
	return nil
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, so a reader of the directory (a static server, the next
// tuf-client run after a crash) sees the old file or the new one, never half
// of one.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		// Synced before the rename: after a power cut path holds the old
		// bytes or all of the new ones.
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func newTUFRepoCmd() *cobra.Command {
	f := &tufRepoFlags{}
	cmd := &cobra.Command{
		Use:   "tuf-repo",
		Short: "Manage the gateway's signed TUF repository (targets, tags, keys, exports)",
		Long: `tuf-repo manages the signed TUF repository the device gateway serves
(gateway/tufrepo): one root chain, and per device tag a targets.json listing
that tag's firmware with its own snapshot.json and timestamp.json.

The root key can be kept offline: "init --offline-root" writes it to a file
outside the repository, and the operations that must sign a new root
(rotate, renew of an expiring root) take it back with --root-key FILE.

Every subcommand takes --repo DIR and --now RFC3339 (the time the operation
runs at; the wall clock by default). Exit status: 0 success, 1 an operation
the repository refuses (duplicate target, missing root key, ...), 2 bad usage.
See docs/tuf-repo.md for a worked example.`,
		Example: `  fleetsim tuf-repo init --repo repo --offline-root --root-key-out root.pem --tag devel
  fleetsim tuf-repo add-target --repo repo --hwid MIMXRT1060-EVK --version 1001 --tag devel app.signed.bin
  fleetsim tuf-repo export --repo repo --tag devel --images images --out www/devel`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.dir, "repo", "", "the repository's data directory")
	pf.StringVar(&f.now, "now", "", "time the operation runs at, RFC 3339 (default: the wall clock)")
	cmd.AddCommand(
		newTUFRepoInitCmd(f),
		newTUFRepoAddTargetCmd(f),
		newTUFRepoRemoveTargetCmd(f),
		newTUFRepoAddTagCmd(f),
		newTUFRepoResignCmd(f),
		newTUFRepoRenewCmd(f),
		newTUFRepoRotateCmd(f),
		newTUFRepoShowCmd(f),
		newTUFRepoExportCmd(f),
	)
	return cmd
}

func newTUFRepoInitCmd(f *tufRepoFlags) *cobra.Command {
	var (
		keyType, rootKeyOut                 string
		offlineRoot, consistent             bool
		tags                                []string
		rootExp, targetsExp, snapExp, tsExp string
		deviceBuffer                        int
	)
	cmd := &cobra.Command{
		Use:   "init --repo DIR [--key-type T] [--offline-root --root-key-out FILE] [--tag T ...]",
		Short: "Create a repository: new keys, root version 1, empty views for the given tags",
		Long: `init creates a repository in DIR (created if missing; it must not hold one
already) with a new key for each of root, targets, snapshot and timestamp,
and signs root version 1, the root devices are provisioned with.

With --offline-root the root key is written to --root-key-out (mode 0600,
never overwriting a file) and is not stored in DIR: keep it offline and
pass it back with --root-key to the operations that sign root. Without it,
DIR holds every key.

--tag creates an empty view per tag, so devices following it can refresh
before any firmware carries the tag. Expiry periods take Go durations or
whole days (30d).`,
		Example: `  fleetsim tuf-repo init --repo repo --offline-root --root-key-out /media/usb/root.pem --tag devel --tag prod
  fleetsim tuf-repo init --repo lab --key-type ecdsa-p256 --consistent-snapshot --timestamp-expiry 2h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.needDir(); err != nil {
				return err
			}
			now, err := f.clock()
			if err != nil {
				return err
			}
			kt, err := parseRepoKeyType(keyType)
			if err != nil {
				return err
			}
			if offlineRoot != (rootKeyOut != "") {
				return repoUsage("--offline-root and --root-key-out FILE go together: the offline root key must be written somewhere")
			}
			for _, tag := range tags {
				if !tufrepo.ValidTag(tag) {
					return repoUsage("--tag %q: %s", tag, repoTagRule)
				}
			}
			if deviceBuffer < 0 {
				return repoUsage("--device-buffer %d: must not be negative", deviceBuffer)
			}
			cfg := tufrepo.Config{ConsistentSnapshot: consistent, DeviceBuffer: deviceBuffer, Random: rand.Reader}
			for _, p := range []struct {
				flag, val string
				dst       *time.Duration
			}{
				{"root-expiry", rootExp, &cfg.Expiry.Root},
				{"targets-expiry", targetsExp, &cfg.Expiry.Targets},
				{"snapshot-expiry", snapExp, &cfg.Expiry.Snapshot},
				{"timestamp-expiry", tsExp, &cfg.Expiry.Timestamp},
			} {
				if *p.dst, err = parseRepoPeriod(p.flag, p.val); err != nil {
					return err
				}
			}
			// Refuse before a root key file is written for nothing.
			switch _, err := tufrepo.Open(f.dir, nil); {
			case err == nil, errors.Is(err, tufrepo.ErrCorrupt):
				return repoRefused("%s already holds a TUF repository; choose a new directory", f.dir)
			case !errors.Is(err, fs.ErrNotExist):
				return repoRefused("--repo %s: %v", f.dir, repoPathErr(err))
			}
			setup, err := tufrepo.GenerateSetup(kt, rand.Reader)
			if err != nil {
				return repoError(err)
			}
			setup.OfflineRoot = offlineRoot
			// The offline key is written before the repository: a
			// repository whose only root key was lost could never sign
			// another root. If creating it fails, the key goes.
			if offlineRoot {
				if err := writeRepoKeyFile(rootKeyOut, setup.Root.Keys[0]); err != nil {
					return err
				}
			}
			r, ws, err := tufrepo.Create(f.dir, now, cfg, setup)
			if err != nil {
				if offlineRoot {
					os.Remove(rootKeyOut)
				}
				return repoError(err)
			}
			for _, tag := range tags {
				tw, err := r.AddTag(now, tag)
				if err != nil {
					return repoError(err)
				}
				ws = append(ws, tw...)
			}
			out := cmd.OutOrStdout()
			ri := r.RootInfo()
			fmt.Fprintf(out, "created %s: root v%d expires %s\n", f.dir, ri.Version, repoTime(ri.Expires))
			for _, ro := range ri.Roles {
				for _, k := range ro.Keys {
					where := "held in " + f.dir
					if !k.Held {
						where = "offline in " + rootKeyOut
					}
					fmt.Fprintf(out, "%-9s key %s %s (%s)\n", ro.Role, k.Type, k.ID, where)
				}
			}
			if len(tags) > 0 {
				fmt.Fprintf(out, "tags: %s\n", strings.Join(r.Tags(), ", "))
			}
			printRepoWarnings(cmd.ErrOrStderr(), ws)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keyType, "key-type", string(tufrepo.KeyEd25519), "key type of every role: ed25519, ecdsa-p256 or rsa-pss (Foundries' MCUs verify ed25519 and rsa-pss)")
	fl.BoolVar(&offlineRoot, "offline-root", false, "keep the root key out of the repository (needs --root-key-out)")
	fl.StringVar(&rootKeyOut, "root-key-out", "", "file to write the offline root key to (mode 0600; must not exist)")
	fl.StringArrayVar(&tags, "tag", nil, "device tag to create an empty view for (repeatable)")
	fl.BoolVar(&consistent, "consistent-snapshot", false, "also serve {N}.snapshot.json and {N}.targets.json and hash-prefixed target names")
	fl.StringVar(&rootExp, "root-expiry", "", "root validity (default 365d)")
	fl.StringVar(&targetsExp, "targets-expiry", "", "targets validity (default 90d)")
	fl.StringVar(&snapExp, "snapshot-expiry", "", "snapshot validity (default 7d)")
	fl.StringVar(&tsExp, "timestamp-expiry", "", "timestamp validity (default 1d)")
	fl.IntVar(&deviceBuffer, "device-buffer", 0, "largest metadata file a device holds, bytes (default 16384, aktualizr-nano's buffer)")
	return cmd
}

func repoTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func newTUFRepoAddTargetCmd(f *tufRepoFlags) *cobra.Command {
	var (
		hwid, version, images string
		tags                  []string
	)
	cmd := &cobra.Command{
		Use:   "add-target --repo DIR --hwid H --version BUILD --tag T [--tag T ...] [--images DIR] FILE",
		Short: "Publish a firmware image as target <hwid>-v<version> to the given tags",
		Long: `add-target lists FILE (a signed MCUboot image) as the BINARY target
<hwid>-v<version> in the targets of every --tag, creating views for new tags,
and re-signs those views. BUILD is the image's MCUboot build number
(imgtool --version 1.0.0+BUILD), a decimal from 1. It prints the target's
name, length and sha256.

The repository keeps metadata only. --images DIR also copies FILE to
DIR/<name>, where export --images finds it.`,
		Example: `  fleetsim tuf-repo add-target --repo repo --hwid MIMXRT1060-EVK --version 1001 --tag devel --images images app.signed.bin
  name=$(fleetsim tuf-repo add-target --repo repo --hwid nrf52840dk --version 7 --tag prod --tag devel zephyr.signed.bin | cut -d' ' -f1)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if hwid == "" || version == "" || len(tags) == 0 {
				return repoUsage("--hwid, --version and at least one --tag are required")
			}
			if _, err := tufrepo.ParseVersion(version); err != nil {
				return repoUsage("--version %q: want the MCUboot build number, a decimal from 1 to 4294967295 without leading zeros", version)
			}
			r, now, err := f.open()
			if err != nil {
				return err
			}
			img, err := os.ReadFile(args[0])
			if err != nil {
				return repoUsage("reading image %s: %v", args[0], repoPathErr(err))
			}
			t := tufrepo.NewTarget(hwid, version, tags, img)
			name := t.Name()
			if _, ok := r.Target(name); ok {
				return repoError(&tufrepo.TargetError{Name: name, Err: tufrepo.ErrDuplicateTarget})
			}
			var copied string
			if images != "" {
				if err := os.MkdirAll(images, 0o755); err != nil {
					return repoRefused("--images: %v", err)
				}
				// Copied first: metadata must never announce an image the
				// images directory lacks. A stale file of a pruned target
				// with the same name is replaced.
				copied = filepath.Join(images, name)
				if err := writeFileAtomic(copied, img, 0o644); err != nil {
					return repoRefused("copying image to %s: %v", copied, repoPathErr(err))
				}
			}
			ws, err := r.AddTarget(now, t)
			if err != nil {
				if copied != "" {
					os.Remove(copied)
				}
				return repoError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d %s\n", name, t.Length, t.SHA256Hex())
			printRepoWarnings(cmd.ErrOrStderr(), ws)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&hwid, "hwid", "", "hardware ID (board name) the image runs on, e.g. MIMXRT1060-EVK")
	fl.StringVar(&version, "version", "", "MCUboot build number of the image, decimal from 1")
	fl.StringArrayVar(&tags, "tag", nil, "device tag that sees the target (repeatable)")
	fl.StringVar(&images, "images", "", "directory to copy the image into as <name>, for export")
	return cmd
}

func newTUFRepoRemoveTargetCmd(f *tufRepoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-target --repo DIR NAME...",
		Short: "Prune targets from every tag that lists them",
		Long: `remove-target prunes the named targets from the targets of every tag that
lists them and re-signs those views. It removes all the names or none.
Views left empty stay, so their devices keep refreshing.`,
		Example: `  fleetsim tuf-repo remove-target --repo repo MIMXRT1060-EVK-v1001 MIMXRT1060-EVK-v1002`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, now, err := f.open()
			if err != nil {
				return err
			}
			ws, err := r.RemoveTargets(now, args...)
			if err != nil {
				return repoError(err)
			}
			for _, n := range args {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", n)
			}
			printRepoWarnings(cmd.ErrOrStderr(), ws)
			return nil
		},
	}
}

func newTUFRepoAddTagCmd(f *tufRepoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "add-tag --repo DIR TAG...",
		Short: "Create empty views for device tags",
		Long: `add-tag creates an empty, signed view (targets, snapshot, timestamp) for each
TAG, so devices following it can refresh before any target carries it. A
tag that exists already is left as it is.`,
		Example: `  fleetsim tuf-repo add-tag --repo repo canary prod`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, tag := range args {
				if !tufrepo.ValidTag(tag) {
					return repoUsage("tag %q: %s", tag, repoTagRule)
				}
			}
			r, now, err := f.open()
			if err != nil {
				return err
			}
			for _, tag := range args {
				existed := slices.Contains(r.Tags(), tag)
				ws, err := r.AddTag(now, tag)
				if err != nil {
					return repoError(err)
				}
				if existed {
					fmt.Fprintf(cmd.OutOrStdout(), "tag %s exists\n", tag)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "added tag %s\n", tag)
				}
				printRepoWarnings(cmd.ErrOrStderr(), ws)
			}
			return nil
		},
	}
}

func newTUFRepoResignCmd(f *tufRepoFlags) *cobra.Command {
	var (
		tags     []string
		snapshot bool
	)
	cmd := &cobra.Command{
		Use:   "resign --repo DIR [--tag T ...] [--snapshot]",
		Short: "Sign a fresh timestamp (and with --snapshot a fresh snapshot)",
		Long: `resign signs a new timestamp.json (version + 1, a fresh expiry) for each
--tag, or for every tag when none is given. With --snapshot it signs a new
snapshot.json as well. renew does this only when it is due; resign does it
now.`,
		Example: `  fleetsim tuf-repo resign --repo repo
  fleetsim tuf-repo resign --repo repo --tag prod --snapshot`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, now, err := f.open()
			if err != nil {
				return err
			}
			var ws []tufrepo.Warning
			if snapshot {
				ws, err = r.BumpSnapshot(now, tags...)
			} else {
				ws, err = r.ResignTimestamp(now, tags...)
			}
			if err != nil {
				return repoError(err)
			}
			if len(tags) == 0 {
				tags = r.Tags()
			}
			for _, tag := range tags {
				v, err := r.View(tag)
				if err != nil {
					return repoError(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tag %s: timestamp v%d expires %s, snapshot v%d expires %s\n",
					tag, v.TimestampVersion, repoTime(v.TimestampExpires), v.SnapshotVersion, repoTime(v.SnapshotExpires))
			}
			printRepoWarnings(cmd.ErrOrStderr(), ws)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag to re-sign (repeatable; default every tag)")
	cmd.Flags().BoolVar(&snapshot, "snapshot", false, "also sign a new snapshot")
	return cmd
}

// repoRootIsDue reports whether the repository flags root as due for renewal
// at now.
func repoRootIsDue(r *tufrepo.Repo, now time.Time) bool {
	for _, w := range r.Check(now) {
		if w.Kind == tufrepo.WarnExpiring && w.Role == tufrepo.RoleRoot {
			return true
		}
	}
	return false
}

func newTUFRepoRenewCmd(f *tufRepoFlags) *cobra.Command {
	var rootKeys []string
	cmd := &cobra.Command{
		Use:   "renew --repo DIR [--root-key FILE ...]",
		Short: "Re-sign every role that is due (less than half its validity left)",
		Long: `renew re-signs every role with less than half of its validity left: a tag's
timestamp, snapshot and targets, and root. The gateway would run it
periodically; run it from cron when serving an export.

An offline root cannot be renewed without its key: when root is due, pass
the root key file(s) with --root-key, or renew prints a warning and leaves
root as it is.`,
		Example: `  fleetsim tuf-repo renew --repo repo
  fleetsim tuf-repo renew --repo repo --root-key /media/usb/root.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := readRepoKeyFiles("root-key", rootKeys)
			if err != nil {
				return err
			}
			r, now, err := f.open()
			if err != nil {
				return err
			}
			before := repoRoleVersions(r)
			var ws []tufrepo.Warning
			// Renew re-signs root only with keys it holds; an offline
			// root due for renewal is extended with the given keys.
			if len(keys) > 0 && repoRootIsDue(r, now) {
				if err := checkRepoRootKeys(r, keys); err != nil {
					return err
				}
				rw, err := r.ExtendRoot(now, keys...)
				if err != nil {
					return repoError(err)
				}
				ws = append(ws, rw...)
			}
			rw, err := r.Renew(now)
			if err != nil {
				return repoError(err)
			}
			ws = append(ws, rw...)
			after := repoRoleVersions(r)
			out := cmd.OutOrStdout()
			changed := false
			for _, k := range slices.Sorted(maps.Keys(after)) {
				if before[k] != after[k] {
					fmt.Fprintf(out, "%s: v%d -> v%d\n", k, before[k], after[k])
					changed = true
				}
			}
			if !changed {
				fmt.Fprintln(out, "nothing due")
			}
			printRepoWarnings(cmd.ErrOrStderr(), ws)
			for _, w := range ws {
				if w.Kind == tufrepo.WarnExpiring && w.Role == tufrepo.RoleRoot {
					fmt.Fprintln(cmd.ErrOrStderr(), "fleetsim: warning: root was not renewed: pass the offline root key with --root-key FILE")
					break
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&rootKeys, "root-key", nil, "offline root key file, used only when root is due (repeatable)")
	return cmd
}

// repoRoleVersions lists every role version by a printable name: "root" and
// "<tag> timestamp" and so on.
func repoRoleVersions(r *tufrepo.Repo) map[string]int64 {
	m := map[string]int64{"root": r.RootVersion()}
	for _, tag := range r.Tags() {
		v, err := r.View(tag)
		if err != nil {
			continue
		}
		m["tag "+tag+" targets"] = v.TargetsVersion
		m["tag "+tag+" snapshot"] = v.SnapshotVersion
		m["tag "+tag+" timestamp"] = v.TimestampVersion
	}
	return m
}

// checkRepoRootKeys refuses key files that hold no root key of the current root,
// which would otherwise surface as an unexplained "have 0 of threshold 1".
func checkRepoRootKeys(r *tufrepo.Repo, keys []*tufrepo.PrivateKey) error {
	ri := r.RootInfo()
	ids := ri.Role(tufrepo.RoleRoot).KeyIDs()
	for _, k := range keys {
		if !slices.Contains(ids, k.ID()) {
			return repoRefused("--root-key holds key %s, which is not a root key of root v%d; pass the file of one of its root keys (%s)", k.ID(), ri.Version, strings.Join(ids, ", "))
		}
	}
	return nil
}

func newTUFRepoRotateCmd(f *tufRepoFlags) *cobra.Command {
	var (
		role, keyType              string
		threshold, count           int
		keyFiles, keyOut, rootKeys []string
	)
	cmd := &cobra.Command{
		Use:   "rotate --repo DIR --role R [--key-type T] [--keys N] [--threshold N] [--key FILE ...] [--key-out FILE ...] [--root-key FILE ...]",
		Short: "Replace a role's keys in a new root version",
		Long: `rotate replaces the keys of role R (root, targets, snapshot or timestamp)
and signs root version N+1, which lists the new keys. The new keys are
generated (--keys N of --key-type, by default as many as --threshold) or
read from --key FILE (PKCS #8 PEM, e.g. from openssl genpkey).

Root version N+1 must be signed by the root keys of version N, so with an
offline root every rotation takes the root key file(s) with --root-key. A
root rotation is signed by the old and the new root keys.

New keys are held by the repository, like the keys they replace, except
the root keys of an offline root (init --offline-root): the repository
never holds those, so each generated root key must be written to a
--key-out FILE (mode 0600). For a held key --key-out writes a copy.
After a targets, snapshot or timestamp rotation every tag is re-signed.`,
		Example: `  fleetsim tuf-repo rotate --repo repo --role targets --root-key /media/usb/root.pem
  fleetsim tuf-repo rotate --repo repo --role root --root-key old-root.pem --key-out new-root.pem
  fleetsim tuf-repo rotate --repo lab --role root   # a repository that holds its root key
  fleetsim tuf-repo rotate --repo repo --role targets --keys 2 --threshold 1 --root-key root.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" {
				return repoUsage("--role is required: root, targets, snapshot or timestamp")
			}
			rl, err := parseRepoRole(role)
			if err != nil {
				return err
			}
			kt, err := parseRepoKeyType(keyType)
			if err != nil {
				return err
			}
			if threshold < 1 {
				return repoUsage("--threshold %d: must be at least 1", threshold)
			}
			given, err := readRepoKeyFiles("key", keyFiles)
			if err != nil {
				return err
			}
			gen := count
			if !cmd.Flags().Changed("keys") {
				gen = max(threshold-len(given), 0)
				if len(given) == 0 {
					gen = max(threshold, 1)
				}
			}
			if gen < 0 || gen+len(given) == 0 {
				return repoUsage("--keys %d: a role needs at least one key", count)
			}
			if threshold > gen+len(given) {
				return repoUsage("--threshold %d with %d keys: a role cannot demand more signatures than it has keys", threshold, gen+len(given))
			}
			if len(keyOut) > 0 && len(keyOut) != gen {
				return repoUsage("--key-out given %d times for %d generated keys: give one file per generated key", len(keyOut), gen)
			}
			olds, err := readRepoKeyFiles("root-key", rootKeys)
			if err != nil {
				return err
			}
			r, now, err := f.open()
			if err != nil {
				return err
			}
			// An offline root's new keys would exist nowhere else.
			if rl == tufrepo.RoleRoot && r.RootInfo().OfflineRoot && gen > 0 && len(keyOut) != gen {
				return repoUsage("the repository keeps its root offline, so a new root key must be written out: give --key-out FILE for each of the %d generated root keys", gen)
			}
			if err := checkRepoRootKeys(r, olds); err != nil {
				return err
			}
			keys := slices.Clone(given)
			for range gen {
				k, err := tufrepo.GenerateKey(kt, rand.Reader)
				if err != nil {
					return repoError(err)
				}
				keys = append(keys, k)
			}
			// Written before root N+1 lists them, so no root ever names a
			// key that exists nowhere; removed again if signing fails.
			var written []string
			for i, p := range keyOut {
				if err := writeRepoKeyFile(p, keys[len(given)+i]); err != nil {
					for _, w := range written {
						os.Remove(w)
					}
					return err
				}
				written = append(written, p)
			}
			ws, err := r.RotateKeys(now, rl, keys, threshold, olds...)
			if err != nil {
				for _, w := range written {
					os.Remove(w)
				}
				return repoError(err)
			}
			out := cmd.OutOrStdout()
			ri := r.RootInfo()
			fmt.Fprintf(out, "root v%d: %s threshold %d, keys:\n", ri.Version, rl, threshold)
			// Where each new key lives besides the repository.
			file := map[string]string{}
			for i, k := range given {
				file[k.ID()] = "from " + keyFiles[i]
			}
			for i, p := range keyOut {
				file[keys[len(given)+i].ID()] = "written to " + p
			}
			for _, k := range ri.Role(rl).Keys {
				var where []string
				if k.Held {
					where = append(where, "held in "+f.dir)
				}
				if w := file[k.ID]; w != "" {
					where = append(where, w)
				}
				fmt.Fprintf(out, "  %s %s (%s)\n", k.Type, k.ID, strings.Join(where, ", "))
			}
			printRepoWarnings(cmd.ErrOrStderr(), ws)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "role whose keys are replaced: root, targets, snapshot or timestamp")
	fl.StringVar(&keyType, "key-type", string(tufrepo.KeyEd25519), "type of generated keys: ed25519, ecdsa-p256 or rsa-pss")
	fl.IntVar(&threshold, "threshold", 1, "signatures the role needs")
	fl.IntVar(&count, "keys", 0, "number of keys to generate (default: --threshold less the --key files, at least 1 without --key)")
	fl.StringArrayVar(&keyFiles, "key", nil, "existing private key file to use as a new key (repeatable)")
	fl.StringArrayVar(&keyOut, "key-out", nil, "file to write a generated key to, mode 0600 (repeatable; required for the root keys of an offline root)")
	fl.StringArrayVar(&rootKeys, "root-key", nil, "offline root key file of the current root (repeatable)")
	return cmd
}

// The report show prints, and its --json form.
type (
	repoReport struct {
		Repo          string          `json:"repo"`
		Now           string          `json:"now"`
		DeviceBuffer  int             `json:"device_buffer"`
		MaxSignatures int             `json:"max_signatures"`
		Root          rootReport      `json:"root"`
		Tags          []tagReport     `json:"tags"`
		Warnings      []warningReport `json:"warnings"`
	}
	rootReport struct {
		Version            int64        `json:"version"`
		Expires            string       `json:"expires"`
		ConsistentSnapshot bool         `json:"consistent_snapshot"`
		Roles              []roleReport `json:"roles"`
		Files              []fileReport `json:"files"`
	}
	roleReport struct {
		Role      string      `json:"role"`
		Threshold int         `json:"threshold"`
		Keys      []keyReport `json:"keys"`
	}
	keyReport struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		// Held is false for an offline root key: operations that
		// sign root need it given with --root-key.
		Held bool `json:"held"`
	}
	fileReport struct {
		Name       string `json:"name"`
		Version    int64  `json:"version,omitempty"`
		Expires    string `json:"expires,omitempty"`
		Size       int    `json:"size"`
		Signatures int    `json:"signatures"`
	}
	tagReport struct {
		Tag     string         `json:"tag"`
		Files   []fileReport   `json:"files"`
		Targets []targetReport `json:"targets"`
	}
	targetReport struct {
		Name        string   `json:"name"`
		HardwareIDs []string `json:"hardware_ids"`
		Version     string   `json:"version"`
		Tags        []string `json:"tags"`
		Length      int64    `json:"length"`
		SHA256      string   `json:"sha256"`
	}
	warningReport struct {
		Kind    string `json:"kind"`
		Tag     string `json:"tag,omitempty"`
		File    string `json:"file"`
		Role    string `json:"role"`
		Message string `json:"message"`
	}
)

func buildRepoReport(r *tufrepo.Repo, dir string, now time.Time, only string) (repoReport, error) {
	cfg := r.Config()
	ri := r.RootInfo()
	rep := repoReport{
		Repo: dir, Now: repoTime(now), DeviceBuffer: cfg.DeviceBuffer, MaxSignatures: cfg.MaxSignatures,
		Root: rootReport{Version: ri.Version, Expires: repoTime(ri.Expires), ConsistentSnapshot: ri.ConsistentSnapshot},
		Tags: []tagReport{}, Warnings: []warningReport{},
	}
	for _, ro := range ri.Roles {
		rr := roleReport{Role: string(ro.Role), Threshold: ro.Threshold}
		for _, k := range ro.Keys {
			rr.Keys = append(rr.Keys, keyReport{ID: k.ID, Type: string(k.Type), Held: k.Held})
		}
		rep.Root.Roles = append(rep.Root.Roles, rr)
	}
	for v := int64(1); v <= ri.Version; v++ {
		rf, err := r.Root(v)
		if err != nil {
			return repoReport{}, repoError(err)
		}
		rep.Root.Files = append(rep.Root.Files, fileReport{Name: rf.Name, Size: len(rf.Data), Signatures: rf.Signatures})
	}
	tags := r.Tags()
	if only != "" {
		tags = []string{only}
	}
	for _, tag := range tags {
		v, err := r.View(tag)
		if err != nil {
			return repoReport{}, repoError(err)
		}
		files, err := r.Files(tag)
		if err != nil {
			return repoReport{}, repoError(err)
		}
		tr := tagReport{Tag: tag, Targets: []targetReport{}}
		for _, fl := range files {
			fr := fileReport{Name: fl.Name, Size: len(fl.Data), Signatures: fl.Signatures}
			switch {
			case fl.Name == "timestamp.json":
				fr.Version, fr.Expires = v.TimestampVersion, repoTime(v.TimestampExpires)
			case fl.Name == "snapshot.json":
				fr.Version, fr.Expires = v.SnapshotVersion, repoTime(v.SnapshotExpires)
			case fl.Name == "targets.json":
				fr.Version, fr.Expires = v.TargetsVersion, repoTime(v.TargetsExpires)
			case strings.HasSuffix(fl.Name, ".root.json"):
				continue // the root chain is reported once, under root
			}
			tr.Files = append(tr.Files, fr)
		}
		for _, name := range v.Targets {
			t, ok := r.Target(name)
			if !ok {
				continue
			}
			tr.Targets = append(tr.Targets, targetReport{
				Name: name, HardwareIDs: t.HardwareIDs, Version: t.Version, Tags: t.Tags, Length: t.Length, SHA256: t.SHA256Hex(),
			})
		}
		rep.Tags = append(rep.Tags, tr)
	}
	for _, w := range r.Check(now) {
		if only != "" && w.Tag != "" && w.Tag != only {
			continue
		}
		rep.Warnings = append(rep.Warnings, warningReport{
			Kind: w.Kind.String(), Tag: w.Tag, File: w.File, Role: string(w.Role), Message: w.String(),
		})
	}
	return rep, nil
}

// repoBufferShare is a file's size against the device buffer.
func repoBufferShare(size, limit int) string {
	if limit <= 0 {
		return fmt.Sprintf("%d bytes", size)
	}
	s := fmt.Sprintf("%d bytes (%d%% of %d)", size, size*100/limit, limit)
	if size > limit {
		s += " TOO LARGE"
	}
	return s
}

func printRepoReport(w io.Writer, rep repoReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "repository %s at %s: device buffer %d bytes, %d signatures per file\n", rep.Repo, rep.Now, rep.DeviceBuffer, rep.MaxSignatures)
	fmt.Fprintf(tw, "root v%d, expires %s, consistent_snapshot %t\n", rep.Root.Version, rep.Root.Expires, rep.Root.ConsistentSnapshot)
	for _, ro := range rep.Root.Roles {
		for i, k := range ro.Keys {
			label := ""
			if i == 0 {
				label = fmt.Sprintf("%s (threshold %d)", ro.Role, ro.Threshold)
			}
			where := "held"
			if !k.Held {
				where = "offline"
			}
			fmt.Fprintf(tw, "  %s\t%s %s %s\n", label, k.Type, k.ID, where)
		}
	}
	for _, fl := range rep.Root.Files {
		fmt.Fprintf(tw, "  %s\t\t%s\t%d signatures\n", fl.Name, repoBufferShare(fl.Size, rep.DeviceBuffer), fl.Signatures)
	}
	for _, tr := range rep.Tags {
		fmt.Fprintf(tw, "tag %s\n", tr.Tag)
		for _, fl := range tr.Files {
			ver := ""
			if fl.Version > 0 {
				ver = fmt.Sprintf("v%d expires %s", fl.Version, fl.Expires)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d signatures\n", fl.Name, ver, repoBufferShare(fl.Size, rep.DeviceBuffer), fl.Signatures)
		}
		if len(tr.Targets) == 0 {
			fmt.Fprintf(tw, "  no targets\n")
		}
		for _, t := range tr.Targets {
			fmt.Fprintf(tw, "  target %s\thwid %s\tversion %s\t%d bytes\tsha256 %s\n", t.Name, strings.Join(t.HardwareIDs, ","), t.Version, t.Length, t.SHA256)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Warnings) == 0 {
		fmt.Fprintln(w, "no warnings")
		return nil
	}
	fmt.Fprintf(w, "%d WARNINGS:\n", len(rep.Warnings))
	for _, x := range rep.Warnings {
		fmt.Fprintf(w, "  WARNING %s: %s\n", x.Kind, x.Message)
	}
	return nil
}

func newTUFRepoShowCmd(f *tufRepoFlags) *cobra.Command {
	var (
		tag    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show --repo DIR [--tag T] [--json]",
		Short: "Show roles, keys, expiries, file sizes against the device buffer, targets and warnings",
		Long: `show reports the repository at --now: the root version with each role's keys
and threshold, every served file with its version, expiry, size against the
device buffer (16 KiB for aktualizr-nano) and signature count, the targets
of each tag, and warnings: files too large for the device buffer or with
more signatures than devices accept, and roles due for renewal or expired.
Warnings do not change the exit status. --json prints the same as JSON.`,
		Example: `  fleetsim tuf-repo show --repo repo
  fleetsim tuf-repo show --repo repo --tag prod --json | jq '.warnings'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, now, err := f.open()
			if err != nil {
				return err
			}
			rep, err := buildRepoReport(r, f.dir, now, tag)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printRepoReport(cmd.OutOrStdout(), rep)
		},
	}
	cmd.Flags().StringVar(&tag, "tag", "", "show only this tag's view")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// repoExportFile is one file of an export, relative to the output directory.
type repoExportFile struct {
	rel  string
	data []byte
}

// isRepoExportName reports whether a top-level name in an output directory is
// one an export writes, so a re-export may replace or prune it.
func isRepoExportName(name string) bool {
	if name == "timestamp.json" || name == "snapshot.json" || name == "targets.json" || name == "targets" {
		return true
	}
	for _, suffix := range []string{".root.json", ".snapshot.json", ".targets.json"} {
		if n, ok := strings.CutSuffix(name, suffix); ok {
			if _, err := strconv.ParseUint(n, 10, 63); err == nil && n != "" && n[0] != '0' {
				return true
			}
		}
	}
	return strings.HasPrefix(name, ".tmp-")
}

// repoImageIndex finds target images in a directory: by name first, then by
// content, so a build directory of arbitrarily named images works too.
type repoImageIndex struct {
	dir    string
	bySum  map[string]string // sha256 hex -> path, built on first need
	loaded bool
}

func (ix *repoImageIndex) find(t tufrepo.Target, name string) ([]byte, error) {
	if data, err := os.ReadFile(filepath.Join(ix.dir, name)); err == nil {
		if int64(len(data)) == t.Length && sha256.Sum256(data) == t.SHA256 {
			return data, nil
		}
		// A same-named file with other content is looked past: the right
		// image may be elsewhere in the directory.
	}
	if !ix.loaded {
		ix.loaded = true
		ix.bySum = map[string]string{}
		entries, err := os.ReadDir(ix.dir)
		if err != nil {
			return nil, repoRefused("--images: %v", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			p := filepath.Join(ix.dir, e.Name())
			data, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			sum := sha256.Sum256(data)
			ix.bySum[hex.EncodeToString(sum[:])] = p
		}
	}
	if p, ok := ix.bySum[t.SHA256Hex()]; ok {
		if data, err := os.ReadFile(p); err == nil && int64(len(data)) == t.Length && sha256.Sum256(data) == t.SHA256 {
			return data, nil
		}
	}
	return nil, repoRefused("no image for target %s in %s (looked for %s and for any file with sha256 %s)", name, ix.dir, filepath.Join(ix.dir, name), t.SHA256Hex())
}

func newTUFRepoExportCmd(f *tufRepoFlags) *cobra.Command {
	var tag, out, images string
	cmd := &cobra.Command{
		Use:   "export --repo DIR --tag T --out DIR2 [--images DIR]",
		Short: "Write the files a device with tag T fetches, for any static HTTP server",
		Long: `export writes to DIR2 exactly the files a device following tag T can fetch:
the root chain ({N}.root.json), timestamp.json, snapshot.json, targets.json
(and with consistent snapshots {N}.snapshot.json, {N}.targets.json), and the
tag's target images under DIR2/targets/. Serve DIR2 with any static HTTP
server: metadata at URL/, images at URL/targets/.

The repository keeps metadata only, so the images come from --images DIR:
a file named after the target (as add-target --images leaves it), or else any
file there with the target's sha256. Every image is checked against its
length and sha256. Without --images only metadata is exported and the images
must be served separately under targets/<name> (with consistent snapshots
targets/<sha256>.<name>).

DIR2 may be new, empty, or an earlier export: images go first and
timestamp.json last, each replaced atomically, and files the export no longer
holds are removed. A DIR2 holding anything else is refused.`,
		Example: `  fleetsim tuf-repo export --repo repo --tag devel --images images --out www/devel
  python3 -m http.server -d www/devel 8080   # metadata at http://host:8080/, images at /targets/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tag == "" || out == "" {
				return repoUsage("--tag and --out are required")
			}
			r, _, err := f.open()
			if err != nil {
				return err
			}
			files, err := r.Files(tag)
			if err != nil {
				return repoError(err)
			}
			view, err := r.View(tag)
			if err != nil {
				return repoError(err)
			}
			// Order of writing: images, then the root chain and versioned
			// copies, then targets, snapshot and timestamp, so a client
			// polling the directory meanwhile never reads a timestamp
			// announcing files that are not there yet.
			var ef []repoExportFile
			var notes []string
			consistent := r.Config().ConsistentSnapshot
			if images != "" {
				ix := &repoImageIndex{dir: images}
				for _, name := range view.Targets {
					t, _ := r.Target(name)
					data, err := ix.find(t, name)
					if err != nil {
						return err
					}
					file := name
					if consistent {
						file = t.SHA256Hex() + "." + name
					}
					ef = append(ef, repoExportFile{rel: filepath.Join("targets", file), data: data})
				}
			} else if len(view.Targets) > 0 {
				notes = append(notes, fmt.Sprintf("note: no --images: serve the %d target images separately under targets/", len(view.Targets)))
			}
			last := map[string]int{"targets.json": 1, "snapshot.json": 2, "timestamp.json": 3}
			meta := slices.Clone(files)
			slices.SortStableFunc(meta, func(a, b tufrepo.File) int { return last[a.Name] - last[b.Name] })
			for _, fl := range meta {
				ef = append(ef, repoExportFile{rel: fl.Name, data: fl.Data})
			}
			if err := writeRepoExport(out, ef); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, e := range ef {
				fmt.Fprintf(w, "%s %d\n", filepath.Join(out, e.rel), len(e.data))
			}
			for _, n := range notes {
				fmt.Fprintln(w, n)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tag, "tag", "", "device tag whose view is exported")
	fl.StringVar(&out, "out", "", "output directory (new, empty, or an earlier export)")
	fl.StringVar(&images, "images", "", "directory holding the target images (by name or by content)")
	return cmd
}

// writeRepoExport makes out hold exactly files.
func writeRepoExport(out string, files []repoExportFile) error {
	entries, err := os.ReadDir(out)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return repoRefused("--out: %v", repoPathErr(err))
	}
	for _, e := range entries {
		if !isRepoExportName(e.Name()) || (e.Name() == "targets") != e.IsDir() {
			return repoRefused("%s holds %s, which an export does not write; choose a new or empty directory", out, e.Name())
		}
	}
	if err := os.MkdirAll(filepath.Join(out, "targets"), 0o755); err != nil {
		return repoRefused("--out: %v", err)
	}
	if images, err := os.ReadDir(filepath.Join(out, "targets")); err == nil {
		for _, e := range images {
			if !e.Type().IsRegular() {
				return repoRefused("%s holds %s, which an export does not write; choose a new or empty directory", out, filepath.Join("targets", e.Name()))
			}
		}
	}
	keep := map[string]bool{"targets": true}
	for _, e := range files {
		if err := writeFileAtomic(filepath.Join(out, e.rel), e.data, 0o644); err != nil {
			return repoRefused("writing %s: %v", filepath.Join(out, e.rel), repoPathErr(err))
		}
		keep[e.rel] = true
	}
	// Prune what an earlier export wrote and this one does not: removed
	// targets, versioned copies gone out of the history.
	for _, e := range entries {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(out, e.Name()))
		}
	}
	images, _ := os.ReadDir(filepath.Join(out, "targets"))
	for _, e := range images {
		if rel := filepath.Join("targets", e.Name()); !keep[rel] {
			os.Remove(filepath.Join(out, rel))
		}
	}
	return nil
}
