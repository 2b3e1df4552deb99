package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/spf13/cobra"
)

// tufClientFlags are the options of the TUF conformance suite's client
// protocol (CLIENT-CLI.md of theupdateframework/tuf-conformance) plus the
// device's limits.
type tufClientFlags struct {
	metadataDir   string
	metadataURL   string
	targetNames   []string
	targetBaseURL string
	targetDir     string
	maxMetadata   int
	maxSignatures int
}

func newTUFClientCmd() *cobra.Command {
	f := &tufClientFlags{}
	lim := tufnano.DefaultLimits()
	cmd := &cobra.Command{
		Use:   "tuf-client",
		Short: "The device's TUF client, as a command line (TUF conformance suite entry point)",
		Long: `tuf-client runs fleetsim's device TUF client (agent/tufnano) against a TUF
repository over HTTP, keeping trusted metadata in a directory. It speaks the
client protocol of the TUF conformance suite:

  fleetsim tuf-client --metadata-dir D init ROOT
  fleetsim tuf-client --metadata-dir D --metadata-url U refresh
  fleetsim tuf-client --metadata-dir D --metadata-url U --target-name P
      [--target-name P ...] --target-base-url U --target-dir T download

init keeps TRUSTED_ROOT only if it is a root signed by a threshold of its own
root keys, as the device checks whenever it loads its root; a refused root
leaves what was stored before.

Exit status 0 means success, 1 a refused root, update or download (the reason
is printed), 2 bad usage. The reference time is the system clock; when FAKETIME
is set (the suite runs clients under libfaketime, which Go's clock ignores)
it is taken from the date command instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.metadataDir, "metadata-dir", "", "directory holding the trusted metadata (root.json, timestamp.json, ...)")
	pf.StringVar(&f.metadataURL, "metadata-url", "", "base URL of the repository's metadata")
	pf.StringArrayVar(&f.targetNames, "target-name", nil, "target path to download (repeatable, processed in order)")
	pf.StringVar(&f.targetBaseURL, "target-base-url", "", "base URL of the repository's targets")
	pf.StringVar(&f.targetDir, "target-dir", "", "directory to store verified targets in")
	pf.IntVar(&f.maxMetadata, "max-metadata-size", lim.MaxMetadataSize, "largest metadata file the device reads, in bytes")
	pf.IntVar(&f.maxSignatures, "max-signatures", lim.MaxSignatures, "most signatures one metadata file may carry")

	cmd.AddCommand(
		&cobra.Command{
			Use:   "init TRUSTED_ROOT",
			Short: "Check TRUSTED_ROOT's self-signature and install it as the trusted root (no network)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if f.metadataDir == "" {
					return errors.New("--metadata-dir DIR is required: the directory that keeps the trusted metadata")
				}
				lim, err := f.limits()
				if err != nil {
					return err
				}
				data, err := readRoot(args[0], lim.MaxMetadataSize)
				if err != nil {
					return &exitError{1, fmt.Errorf("reading the trusted root: %w", err)}
				}
				// The device checks its root's self-signature whenever it
				// loads it (tufnano.New). Refuse now what it would refuse at
				// the next refresh, and keep the root stored before.
				if _, err := tufnano.New(lim, nil, rootStore(data)); err != nil {
					return &exitError{1, fmt.Errorf("refusing %s as the trusted root, nothing stored (a root must be signed by a threshold of its own root keys): %w", args[0], err)}
				}
				if err := os.MkdirAll(f.metadataDir, 0o755); err != nil {
					return &exitError{1, fmt.Errorf("keeping the trusted root: %w", err)}
				}
				if err := (dirStore(f.metadataDir)).Save(tufnano.RoleRoot, data); err != nil {
					return &exitError{1, fmt.Errorf("keeping the trusted root: %w", err)}
				}
				return nil
			},
		},
		&cobra.Command{
			Use:   "refresh",
			Short: "Update the trusted metadata from --metadata-url",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := f.client(cmd.Context())
				if err != nil {
					return err
				}
				return f.refresh(cmd.Context(), c)
			},
		},
		&cobra.Command{
			Use:   "download",
			Short: "Refresh, then download and verify each --target-name into --target-dir",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if f.targetBaseURL == "" || f.targetDir == "" || len(f.targetNames) == 0 {
					return errors.New("--target-name, --target-base-url and --target-dir are required")
				}
				c, err := f.client(cmd.Context())
				if err != nil {
					return err
				}
				if err := f.refresh(cmd.Context(), c); err != nil {
					return err
				}
				for _, name := range f.targetNames {
					if err := f.download(cmd.Context(), c, name); err != nil {
						return &exitError{1, fmt.Errorf("target %q: %w", name, err)}
					}
				}
				return nil
			},
		},
	)
	return cmd
}

// limits are the device's limits with the flags' sizes.
func (f *tufClientFlags) limits() (tufnano.Limits, error) {
	if f.maxMetadata <= 0 || f.maxSignatures <= 0 {
		return tufnano.Limits{}, errors.New("--max-metadata-size and --max-signatures must be positive")
	}
	lim := tufnano.DefaultLimits()
	lim.MaxMetadataSize, lim.MaxSignatures = f.maxMetadata, f.maxSignatures
	return lim, nil
}

func (f *tufClientFlags) client(ctx context.Context) (*tufnano.Client, error) {
	if f.metadataDir == "" || f.metadataURL == "" {
		return nil, errors.New("--metadata-dir and --metadata-url are required")
	}
	lim, err := f.limits()
	if err != nil {
		return nil, err
	}
	fetch := &httpFetcher{ctx: ctx, base: withSlash(f.metadataURL)}
	c, err := tufnano.New(lim, fetch, dirStore(f.metadataDir))
	if err != nil {
		return nil, &exitError{1, err}
	}
	return c, nil
}

func (f *tufClientFlags) refresh(ctx context.Context, c *tufnano.Client) error {
	now, err := referenceTime(ctx)
	if err != nil {
		return &exitError{1, err}
	}
	if err := c.Refresh(now); err != nil {
		return &exitError{1, err}
	}
	return nil
}

// download stores target path in the target directory under its escaped
// path, fetching it only when no verified copy is there yet.
func (f *tufClientFlags) download(ctx context.Context, c *tufnano.Client, path string) error {
	info, err := c.Target(path)
	if err != nil {
		return err
	}
	local := filepath.Join(f.targetDir, tufnano.EscapeRoleName(path))
	if data, err := os.ReadFile(local); err == nil && tufnano.VerifyTarget(info, data) == nil {
		return nil
	}
	url := withSlash(f.targetBaseURL) + c.TargetFileName(info)
	body, err := httpGet(ctx, url)
	if err != nil {
		return err
	}
	defer body.Close()
	if err := os.MkdirAll(f.targetDir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(f.targetDir, ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	v := tufnano.NewTargetVerifier(info)
	// One byte past the announced length is enough to tell "too long".
	if _, err := io.Copy(io.MultiWriter(v, tmp), io.LimitReader(body, info.Length+1)); err != nil {
		tmp.Close()
		return err
	}
	if err := v.Verify(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}

// referenceTime is the wall clock, or under libfaketime the time the date
// command reports: libfaketime moves the C library's clock, not Go's.
func referenceTime(ctx context.Context) (time.Time, error) {
	if os.Getenv("FAKETIME") == "" {
		return time.Now().UTC(), nil
	}
	out, err := exec.CommandContext(ctx, "date", "-u", "+%Y-%m-%dT%H:%M:%SZ").Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the faked time with date: %w", err)
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(out)))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the faked time with date: %w", err)
	}
	return t, nil
}

func withSlash(u string) string {
	if strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}

// httpFetcher fetches metadata files relative to a base URL.
type httpFetcher struct {
	ctx  context.Context
	base string
}

func (h *httpFetcher) Fetch(name string, dst []byte) (int, error) {
	body, err := httpGet(h.ctx, h.base+name)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return tufnano.ReadBounded(body, dst)
}

func httpGet(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp.Body, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s: %w", url, resp.Status, tufnano.ErrNotFound)
	default:
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
}

// readRoot reads a root file of at most limit bytes, the most the device
// would load. Errors: a KindTooLarge *tufnano.Error, or the file's.
func readRoot(path string, limit int) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	buf := make([]byte, limit)
	n, err := tufnano.ReadBounded(fh, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// rootStore is a store that holds only a root not yet trusted: tufnano.New
// over it checks the root as the device does when it loads its own.
type rootStore []byte

func (r rootStore) Load(role string, dst []byte) (int, error) {
	if role != tufnano.RoleRoot {
		return 0, fmt.Errorf("%s: %w", role, tufnano.ErrNotFound)
	}
	if len(r) > len(dst) {
		return 0, tufnano.ErrTooLarge
	}
	return copy(dst, r), nil
}

func (rootStore) Save(role string, _ []byte) error {
	return fmt.Errorf("%s: a root being checked keeps nothing", role)
}

// dirStore keeps each role's metadata as <escaped role>.json in a directory,
// replacing files atomically so a crash never leaves half a file trusted.
type dirStore string

func (d dirStore) path(role string) string {
	return filepath.Join(string(d), tufnano.EscapeRoleName(role)+".json")
}

func (d dirStore) Load(role string, dst []byte) (int, error) {
	fh, err := os.Open(d.path(role))
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", role, tufnano.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	return tufnano.ReadBounded(fh, dst)
}

func (d dirStore) Save(role string, data []byte) error {
	return writeFileAtomic(d.path(role), data, 0o644)
}
