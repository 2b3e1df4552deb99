package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/spf13/cobra"
)

// The pki commands are the I/O edge of internal/pki: they read the wall clock
// (or --now) and hand crypto/rand to the package; the package signs and
// writes the files.

// pkiUsage is an exit-2 error: the command line itself is wrong.
func pkiUsage(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

// pkiRefused is an exit-1 error: the command line is fine but the PKI
// directory refuses the operation (a CA exists already, a file is
// unreadable or corrupt).
func pkiRefused(format string, args ...any) error {
	return &exitError{1, fmt.Errorf(format, args...)}
}

// pkiMessage is err's text without the package's "pki: " prefixes: the CLI
// speaks as fleetsim.
func pkiMessage(err error) string {
	return strings.ReplaceAll(err.Error(), "pki: ", "")
}

// pkiClock is the time certificates are issued at: --now, or the wall clock.
func pkiClock(now string) (time.Time, error) {
	if now == "" {
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, now)
	if err != nil {
		return time.Time{}, pkiUsage("--now %q: want an RFC 3339 time such as 2026-11-21T09:00:00Z", now)
	}
	return t.UTC(), nil
}

func newPKICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Create the factory CA and issue gateway, admin and device certificates",
		Long: `pki manages the factory PKI the device gateway and the fleet use for mutual
TLS, shaped like a FoundriesFactory's: a factory CA (ECDSA P-256), the
gateway's server certificate, an operator's admin client certificate
(OU=admin) with an admin token, and device certificates with subject
CN=<device UUID>, OU=<factory> and businessCategory=production for
production devices.

A PKI directory holds ca.crt ca.key gateway.crt gateway.key admin.crt
admin.key admin.token; devices go to devices/<UUID>.pem (certificate, then
key) with devices/index.txt listing "<UUID> production|test" per line.`,
	}
	cmd.AddCommand(newPKIInitCmd(), newPKIIssueCmd())
	return cmd
}

func newPKIInitCmd() *cobra.Command {
	var dir, factory, now string
	var hosts []string
	cmd := &cobra.Command{
		Use:   "init --dir DIR [--factory NAME] [--host H ...]",
		Short: "Create a factory CA, the gateway certificate, the admin certificate and token",
		Long: `init creates the PKI directory DIR (and its parents): the factory CA
(10 years), the gateway's server certificate for localhost, 127.0.0.1, ::1
and every --host (a DNS name or an IP address; repeat the flag or separate
with commas, e.g. the gateway and "ostree" host names devices use), the admin
client certificate (CN fleetsim-admin, OU admin) and admin.token (32 random
bytes, hex). Keys are written with mode 0600.

A directory that already holds ca.key is never touched: a factory CA is
created once.`,
		Example: `  fleetsim pki init --dir pki --factory acme --host gw.acme.example --host ostree.acme.example`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return pkiUsage("--dir DIR is required")
			}
			t, err := pkiClock(now)
			if err != nil {
				return err
			}
			err = pki.Init(dir, factory, hosts, t, rand.Reader)
			switch {
			case errors.Is(err, pki.ErrExists):
				return pkiRefused("%s already holds a factory CA; issue devices with fleetsim pki issue --pki %s, or init another directory", dir, dir)
			case errors.Is(err, pki.ErrBadFactory):
				return pkiUsage("--factory %q: want 1 to 64 letters, digits, '-', '_' or '.', and not \"admin\"", factory)
			case errors.Is(err, pki.ErrBadHost):
				return pkiUsage("--host: %s", pkiMessage(err))
			case err != nil:
				return pkiRefused("%s", pkiMessage(err))
			}
			// Read back what was written: the summary names the hosts the
			// gateway certificate really holds, deduplicated and normalised.
			gw, _, err := pki.ServerTLS(dir)
			if err != nil {
				return pkiRefused("%s", pkiMessage(err))
			}
			sans := gw.Leaf.DNSNames
			for _, ip := range gw.Leaf.IPAddresses {
				sans = append(sans, ip.String())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created factory CA %q in %s (gateway hosts: %s)\n", factory, dir, strings.Join(sans, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "PKI directory to create (required)")
	cmd.Flags().StringVar(&factory, "factory", "fleetsim", "factory name: the CA's name and every device's OU")
	cmd.Flags().StringSliceVar(&hosts, "host", nil, "extra gateway host name or IP address (repeatable)")
	cmd.Flags().StringVar(&now, "now", "", "time the certificates start at, RFC 3339 (default: the wall clock)")
	return cmd
}

func newPKIIssueCmd() *cobra.Command {
	var dir, out, now string
	var count, workers int
	var production bool
	var seed uint64
	cmd := &cobra.Command{
		Use:   "issue --pki DIR --count N [--out DIR] [--production] [--seed N]",
		Short: "Issue device certificates signed by the factory CA",
		Long: `issue writes N device certificates signed by the factory CA of the PKI
directory: one <UUID>.pem per device (certificate, then PKCS#8 key; mode
0600) in --out (default DIR/devices), and one "<UUID> production|test" line
per device appended to index.txt there. Each device gets a random upper-case
UUID, a P-256 key, and a certificate valid for 20 years with subject
CN=<UUID>, OU=<factory>, businessCategory=production with --production, and
the UUID's 128 bits as serial number.

With --seed the UUIDs, keys and signatures are derived from the seed and the
device's position in index.txt, so the same command on a fresh directory
writes the same files: for simulated fleets. Without it, keys come from the
system's random source. Existing device files are never overwritten.`,
		Example: `  fleetsim pki issue --pki pki --count 1000 --production
  fleetsim pki issue --pki pki --count 100000 --out /var/tmp/fleet --seed 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return pkiUsage("--pki DIR is required")
			}
			if count <= 0 {
				return pkiUsage("--count %d: want at least 1 device", count)
			}
			if workers < 0 {
				return pkiUsage("--workers %d: want 0 (one per CPU) or more", workers)
			}
			t, err := pkiClock(now)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join(dir, pki.DevicesDir)
			}
			ca, err := pki.LoadCA(dir)
			if errors.Is(err, fs.ErrNotExist) {
				missing := "ca.crt or ca.key is missing"
				if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
					missing = fmt.Sprintf("%s: %v", pe.Path, pe.Err)
				}
				return pkiRefused("%s holds no factory CA (%s); create one with fleetsim pki init --dir %s", dir, missing, dir)
			}
			if err != nil {
				return pkiRefused("%s; restore the PKI directory from a backup", pkiMessage(err))
			}
			var seedp *uint64
			if cmd.Flags().Changed("seed") {
				seedp = &seed
			}
			start := time.Now()
			uuids, err := pki.Issue(ca, out, count, production, t, seedp, workers)
			elapsed := time.Since(start)
			if err != nil {
				return pkiRefused("%s (%d of %d devices issued and listed in %s)", pkiMessage(err), len(uuids), count, filepath.Join(out, pki.IndexFile))
			}
			kind := "test"
			if production {
				kind = "production"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "issued %d %s devices in %.2fs (%.0f/s) to %s\n",
				len(uuids), kind, elapsed.Seconds(), float64(len(uuids))/max(elapsed.Seconds(), 1e-9), out)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "pki", "", "PKI directory made by fleetsim pki init (required)")
	cmd.Flags().IntVar(&count, "count", 0, "number of devices to issue (required)")
	cmd.Flags().StringVar(&out, "out", "", "directory for the device files (default: DIR/devices)")
	cmd.Flags().BoolVar(&production, "production", false, "issue production devices (businessCategory=production)")
	cmd.Flags().Uint64Var(&seed, "seed", 0, "derive UUIDs and keys from this seed (reproducible simulated fleets)")
	cmd.Flags().IntVar(&workers, "workers", 0, "signing and writing goroutines (default: one per CPU)")
	cmd.Flags().StringVar(&now, "now", "", "time the certificates start at, RFC 3339 (default: the wall clock)")
	return cmd
}
