package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/gateway/rollout"
	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/spf13/cobra"
)

// The gateway commands: `serve` runs a live gateway; the others are the
// operator's client of its admin API.

func newGatewayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the device gateway and operate it: firmware, tags, waves, status",
		Long: `The device gateway serves a fleet: the device API of the Foundries device
gateway as aktualizr-nano uses it, over mutual TLS (TCP, HTTP/1.1 and HTTP/2)
and HTTP/3, with an admin API on its own listener. The client commands talk to
the admin API with the admin certificate and token of a PKI directory made by
'fleetsim pki init'.`,
	}
	ac := &adminFlags{}
	cmd.PersistentFlags().StringVar(&ac.url, "admin", "https://127.0.0.1:8444", "admin API URL (client commands)")
	cmd.PersistentFlags().StringVar(&ac.pki, "pki", "pki", "PKI directory (fleetsim pki init): CA, gateway and admin certificates, admin token")
	cmd.PersistentFlags().StringVar(&ac.token, "token", "", "admin token (default: the PKI directory's admin.token)")
	cmd.AddCommand(
		newGatewayServeCmd(ac),
		newGatewayUploadCmd(ac),
		newGatewayTagCmd(ac),
		newGatewayWaveCmd(ac),
		newGatewayStatusCmd(ac),
		newGatewayDeviceCmd(ac),
		newGatewayConfigCmd(ac),
		newGatewayCalibrateCmd(ac),
	)
	return cmd
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func newGatewayServeCmd(ac *adminFlags) *cobra.Command {
	var (
		data, listen, h3, adminListen, factory, logFormat, logLevel string
		imageKeys                                                   []string
		allowUnsigned, noSync                                       bool
	)
	cmd := &cobra.Command{
		Use:   "serve --data DIR [--pki DIR] [--image-key FILE ...]",
		Short: "Serve the device API and the admin API until SIGTERM or SIGINT",
		Long: `serve opens (creating on first use) the gateway's data directory: a pebble
store of devices, events and rollouts, CI and production TUF repositories, and
the firmware files. Devices connect with certificates of the PKI directory's
factory CA; the device listener speaks TLS (HTTP/1.1 and HTTP/2) on TCP and
HTTP/3 on UDP at the same port unless --h3 says otherwise ('' disables it).

Uploaded images must be signed by one of the --image-key keys (MCUboot
public or private key PEM, as 'fleetsim image keygen' writes), unless
--allow-unsigned. SIGTERM or SIGINT shuts down gracefully: requests in
flight finish and pending records are written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" {
				return &exitError{2, errors.New("--data DIR is required")}
			}
			if !cmd.Flags().Changed("h3") {
				h3 = listen
			}
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			keys, err := readImageKeys(imageKeys)
			if err != nil {
				return err
			}
			if len(keys) == 0 && !allowUnsigned {
				return &exitError{2, errors.New("no --image-key: give the public key that signs your images, or --allow-unsigned")}
			}
			cert, pool, err := pki.ServerTLS(ac.pki)
			if err != nil {
				return &exitError{1, fmt.Errorf("reading the PKI directory %s: %w (create it with fleetsim pki init --dir %s)", ac.pki, err, ac.pki)}
			}
			token, err := readToken(ac)
			if err != nil {
				return err
			}
			g, err := gateway.Open(data, gateway.Options{
				Clock: wallClock{}, Random: rand.Reader, Factory: factory,
				ImageKeys: keys, AllowUnsigned: allowUnsigned, NoSync: noSync, Logger: log,
			})
			if err != nil {
				return &exitError{1, fmt.Errorf("opening %s: %w", data, err)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			serveErr := g.Serve(ctx, gateway.ServeConfig{
				DeviceAddr: listen, H3Addr: h3, AdminAddr: adminListen,
				Certificate: cert, ClientCAs: pool, AdminToken: token,
			})
			closeErr := g.Close()
			if serveErr != nil {
				return &exitError{1, serveErr}
			}
			if closeErr != nil {
				return &exitError{1, closeErr}
			}
			log.Info("gateway stopped")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "data directory (created on first use)")
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "device API address (TCP, TLS)")
	f.StringVar(&h3, "h3", "", "device API address for HTTP/3 (UDP; default: the --listen address; '' disables)")
	f.StringVar(&adminListen, "admin-listen", "127.0.0.1:8444", "admin API address (TCP, TLS); '' disables")
	f.StringVar(&factory, "factory", "fleetsim", "factory name reported by GET /device")
	f.StringArrayVar(&imageKeys, "image-key", nil, "MCUboot image key file (PEM); repeatable")
	f.BoolVar(&allowUnsigned, "allow-unsigned", false, "accept images without a signature by a known key (hash still checked)")
	f.BoolVar(&noSync, "no-sync", false, "do not fsync acknowledged writes (tests only: a crash may lose events)")
	f.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, &exitError{2, fmt.Errorf("--log-level %q: debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, &exitError{2, fmt.Errorf("--log-format %q: json or text", format)}
}

func readImageKeys(files []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("--image-key: %w", err)}
		}
		k, err := image.ParsePublicKeyPEM(data)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("--image-key %s: %w", f, err)}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// adminFlags locate the admin API and the operator's credentials.
type adminFlags struct {
	url, pki, token string
}

func readToken(ac *adminFlags) (string, error) {
	if ac.token != "" {
		return ac.token, nil
	}
	b, err := os.ReadFile(filepath.Join(ac.pki, "admin.token"))
	if err != nil {
		return "", &exitError{1, fmt.Errorf("reading the admin token: %w (give --token or --pki DIR)", err)}
	}
	return strings.TrimSpace(string(b)), nil
}

// adminClient calls the admin API with the admin certificate and token.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func newAdminClient(ac *adminFlags) (*adminClient, error) {
	cert, roots, token, err := pki.AdminTLS(ac.pki)
	if err != nil {
		return nil, &exitError{1, fmt.Errorf("reading the PKI directory %s: %w", ac.pki, err)}
	}
	if ac.token != "" {
		token = ac.token
	}
	u, err := url.Parse(ac.url)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, &exitError{2, fmt.Errorf("--admin %q: an https:// URL", ac.url)}
	}
	return &adminClient{
		base:  strings.TrimSuffix(ac.url, "/"),
		token: token,
		http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		}},
	}, nil
}

// call sends a request and decodes a 2xx JSON answer into out (if not
// nil). A non-2xx answer becomes an error carrying the gateway's reason.
func (c *adminClient) call(method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return &exitError{1, fmt.Errorf("admin API: %w", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &exitError{1, fmt.Errorf("admin API: %w", err)}
	}
	if resp.StatusCode/100 != 2 {
		return &exitError{1, fmt.Errorf("gateway refused (%s): %s", resp.Status, oneLine(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &exitError{1, fmt.Errorf("admin API answer: %w", err)}
		}
	}
	return nil
}

// oneLine makes an answer's body fit the CLI's one-line error: the
// gateway's reasons are one short line already, but a proxy in between may
// answer with a page of HTML.
func oneLine(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	return s
}

func (c *adminClient) postJSON(path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.call(http.MethodPost, path, "application/json", bytes.NewReader(b), out)
}

func (c *adminClient) putJSON(path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.call(http.MethodPut, path, "application/json", bytes.NewReader(b), out)
}

// adminCmd builds a client subcommand: it makes the client, then runs fn.
func adminCmd(ac *adminFlags, cmd *cobra.Command, fn func(c *adminClient, cmd *cobra.Command, args []string) error) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := newAdminClient(ac)
		if err != nil {
			return err
		}
		return fn(c, cmd, args)
	}
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newGatewayUploadCmd(ac *adminFlags) *cobra.Command {
	var hwid, tags, version string
	cmd := &cobra.Command{
		Use:   "upload IMAGE --hwid BOARD --tag TAG[,TAG]",
		Short: "Upload a signed MCUboot image and create its CI target <hwid>-v<build>",
		Long: `upload sends a signed MCUboot image to the gateway, which checks it (structure,
hash, signature by one of its image keys) and creates the CI target
<hwid>-v<build number> for the tags. Test devices following a tag see it at
their next check-in; production devices see it through a wave.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&hwid, "hwid", "", "hardware ID (the board name devices report)")
	cmd.Flags().StringVar(&tags, "tag", "", "tags, comma-separated")
	cmd.Flags().StringVar(&version, "version", "", "expected build number (checked against the image header)")
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, args []string) error {
		if hwid == "" || tags == "" {
			return &exitError{2, errors.New("--hwid and --tag are required")}
		}
		f, err := os.Open(args[0])
		if err != nil {
			return &exitError{2, err}
		}
		defer f.Close()
		q := url.Values{"hwid": {hwid}, "tags": {tags}}
		if version != "" {
			q.Set("version", version)
		}
		var t gateway.TargetInfo
		if err := c.call(http.MethodPost, "/v1/firmware?"+q.Encode(), "application/octet-stream", f, &t); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "target %s: %d bytes, sha256 %s, path %s\n", t.Name, t.Length, t.SHA256, t.Path)
		for _, w := range t.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
		}
		return nil
	})
}

func newGatewayTagCmd(ac *adminFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag TAG",
		Short: "Create an empty tag, so devices following it can check in before any target carries it",
		Args:  cobra.ExactArgs(1),
	}
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, args []string) error {
		return c.postJSON("/v1/tags", gateway.TagRequest{Tag: args[0]}, nil)
	})
}

func newGatewayWaveCmd(ac *adminFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wave",
		Short: "Stage a version to production devices: init, rollout, complete, cancel, list",
		Long: `Waves work as Foundries' waves: 'init' stages the CI targets of a version for a
tag's production devices; 'rollout' adds devices (a group, N devices, N
percent, or listed UUIDs; steps add up); 'complete' makes the version the
tag's production version for every device; 'cancel' withdraws it. One wave
per tag is active at a time. A wave's policy, after AWS IoT jobs, limits the
release rate, aborts on a failure rate and times out stalled devices.`,
	}
	cmd.AddCommand(newWaveInitCmd(ac), newWaveRolloutCmd(ac), newWaveEndCmd(ac, "complete"), newWaveEndCmd(ac, "cancel"), newWaveListCmd(ac))
	return cmd
}

func newWaveInitCmd(ac *adminFlags) *cobra.Command {
	var (
		req     gateway.WaveRequest
		abort   []string
		timeout time.Duration
		expBase int
		expFact float64
		expNot  int
		expSucc int
	)
	cmd := &cobra.Command{
		Use:   "init NAME --tag TAG --version N [policy flags]",
		Short: "Create a wave for a tag and version",
		Long: `init creates a wave staging the CI targets of build number --version that carry
--source-tag (default --tag) for --tag's production devices.

Policy flags: --max-per-minute N releases at most N devices a minute;
--exp-base N --exp-factor F with --exp-notified K or --exp-succeeded K start
at N a minute and multiply by F after each K released or confirmed devices;
--abort TYPE:PERCENT:MIN (TYPE failed, reverted, timed_out or all; repeatable)
aborts when over PERCENT of at least MIN finished devices failed that way;
--timeout D marks a device that started and did not finish within D as
timed out.`,
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.StringVar(&req.Tag, "tag", "", "tag whose production devices the wave updates")
	f.Uint32Var(&req.Version, "version", 0, "target version (MCUboot build number)")
	f.StringVar(&req.SourceTag, "source-tag", "", "CI tag the targets are taken from (default --tag)")
	f.IntVar(&req.Policy.MaxPerMinute, "max-per-minute", 0, "release at most N devices per minute (0: no limit)")
	f.IntVar(&expBase, "exp-base", 0, "exponential rate: initial devices per minute")
	f.Float64Var(&expFact, "exp-factor", 0, "exponential rate: factor (1.1..5)")
	f.IntVar(&expNot, "exp-notified", 0, "exponential rate: grow after each N released devices")
	f.IntVar(&expSucc, "exp-succeeded", 0, "exponential rate: grow after each N confirmed devices")
	f.StringArrayVar(&abort, "abort", nil, "abort criterion TYPE:PERCENT:MIN; repeatable")
	f.DurationVar(&timeout, "timeout", 0, "in-progress timeout per device (0: none)")
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, args []string) error {
		req.Name = args[0]
		if expBase != 0 || expFact != 0 || expNot != 0 || expSucc != 0 {
			req.Policy.Exponential = &gateway.ExponentialRequest{BaseRatePerMinute: expBase, IncrementFactor: expFact, NotifiedThings: expNot, SucceededThings: expSucc}
		}
		for _, a := range abort {
			parts := strings.Split(a, ":")
			if len(parts) != 3 {
				return &exitError{2, fmt.Errorf("--abort %q: TYPE:PERCENT:MIN", a)}
			}
			p, err1 := strconv.ParseFloat(parts[1], 64)
			m, err2 := strconv.Atoi(parts[2])
			if err1 != nil || err2 != nil {
				return &exitError{2, fmt.Errorf("--abort %q: PERCENT is a number, MIN an integer", a)}
			}
			req.Policy.Abort = append(req.Policy.Abort, gateway.AbortRequest{FailureType: parts[0], ThresholdPercent: p, MinExecuted: m})
		}
		req.Policy.InProgressTimeoutMinutes = timeout.Minutes()
		var w rollout.Wave
		if err := c.postJSON("/v1/waves", req, &w); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wave %s: tag %s, version %d, targets %s\n", w.Name, w.Tag, w.Version, strings.Join(w.Targets, ","))
		return nil
	})
}

func newWaveRolloutCmd(ac *adminFlags) *cobra.Command {
	var (
		req   gateway.RolloutRequest
		uuids string
		print bool
	)
	cmd := &cobra.Command{
		Use:   "rollout NAME [--group G ...] [--limit N | --percent P | --uuids A,B | --uuids @FILE] [--dry-run]",
		Short: "Add production devices of the wave's tag to the wave",
		Long: `rollout adds devices to a wave, as fioctl waves rollout does: the production
devices following the wave's tag (in --group, if given), either all of them,
--limit N, --percent P, or the listed --uuids (comma-separated, or @FILE with
one per line). Selection favours recently active devices and skips devices
already in the wave; at most 10,000 per step. The wave's rate limit then
releases them.`,
		Args: cobra.ExactArgs(1),
	}
	f := cmd.Flags()
	f.StringArrayVar(&req.Groups, "group", nil, "device group; repeatable")
	f.IntVar(&req.Limit, "limit", 0, "at most N devices")
	f.Float64Var(&req.Percentage, "percent", 0, "at most P percent of the eligible devices")
	f.StringVar(&uuids, "uuids", "", "devices: A,B,... or @FILE")
	f.BoolVar(&req.DryRun, "dry-run", false, "show the selection, change nothing")
	f.BoolVar(&print, "print-uuids", false, "print the selected devices")
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, args []string) error {
		if uuids != "" {
			list, err := readUUIDList(uuids)
			if err != nil {
				return err
			}
			req.UUIDs = list
		}
		var resp gateway.RolloutResponse
		if err := c.postJSON("/v1/waves/"+url.PathEscape(args[0])+"/rollout", req, &resp); err != nil {
			return err
		}
		verb := "added"
		if resp.DryRun {
			verb = "would add"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wave %s: %s %d devices\n", args[0], verb, resp.DeviceNum)
		if print {
			for _, u := range resp.DeviceUUIDs {
				fmt.Fprintln(cmd.OutOrStdout(), u)
			}
		}
		return nil
	})
}

func readUUIDList(s string) ([]string, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("--uuids: %w", err)}
		}
		return strings.Fields(string(b)), nil
	}
	return splitComma(s), nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newWaveEndCmd(ac *adminFlags, verb string) *cobra.Command {
	short := "Make the wave's version the tag's production version for every device"
	if verb == "cancel" {
		short = "Withdraw the wave: devices not yet updated stay on their version"
	}
	cmd := &cobra.Command{Use: verb + " NAME", Short: short, Args: cobra.ExactArgs(1)}
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, args []string) error {
		var w rollout.Wave
		if err := c.postJSON("/v1/waves/"+url.PathEscape(args[0])+"/"+verb, struct{}{}, &w); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wave %s: %s\n", w.Name, w.Status)
		return nil
	})
}

func newWaveListCmd(ac *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List waves", Args: cobra.NoArgs}
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, _ []string) error {
		var waves []rollout.Wave
		if err := c.call(http.MethodGet, "/v1/waves", "", nil, &waves); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WAVE\tTAG\tVERSION\tSTATUS\tSCHEDULED\tRELEASED\tCREATED")
		for _, w := range waves {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\n", w.Name, w.Tag, w.Version, w.Status, w.Scheduled, w.Released, w.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	})
}

func newGatewayStatusCmd(ac *adminFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--json]",
		Short: "Devices per state, per version and per wave",
		Long: `status prints, per target version and per wave, how many devices are
scheduled, pending (served the update, not started), downloading, installed
(rebooting into it), confirmed, failed, reverted (rolled back by MCUboot) and
timed out.`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the admin API's JSON")
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, _ []string) error {
		var st gateway.StatusResponse
		if err := c.call(http.MethodGet, "/v1/status", "", nil, &st); err != nil {
			return err
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), st)
		}
		printStatus(cmd.OutOrStdout(), st)
		return nil
	})
}

func printStatus(w io.Writer, st gateway.StatusResponse) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	header := "\t"
	for _, s := range rollout.States {
		header += string(s) + "\t"
	}
	fmt.Fprintf(w, "%d devices\n", st.Devices)
	fmt.Fprintln(tw, "VERSION"+header+"TOTAL\t")
	for _, v := range st.Versions {
		fmt.Fprintf(tw, "%d\t%s%d\t\n", v.Version, countCells(v.Counts), v.Total)
	}
	for _, r := range st.Waves {
		fmt.Fprintf(tw, "wave %s (%s, v%d)\t%s%d\t\n", r.Wave.Name, r.Wave.Status, r.Wave.Version, countCells(r.Counts), r.Total)
	}
	tw.Flush()
	for _, r := range st.Waves {
		if r.Wave.Reason != "" {
			fmt.Fprintf(w, "wave %s: %s\n", r.Wave.Name, r.Wave.Reason)
		}
	}
}

func countCells(counts map[rollout.State]int) string {
	var b strings.Builder
	for _, s := range rollout.States {
		b.WriteString(strconv.Itoa(counts[s]))
		b.WriteByte('\t')
	}
	return b.String()
}

func newGatewayDeviceCmd(ac *adminFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "List devices, set a device's group, deny-list a device"}
	list := &cobra.Command{Use: "list [--limit N]", Short: "List devices in UUID order", Args: cobra.NoArgs}
	var limit int
	list.Flags().IntVar(&limit, "limit", 1000, "at most N devices")
	group := &cobra.Command{Use: "group UUID GROUP", Short: "Put a device in a group ('' removes it)", Args: cobra.ExactArgs(2)}
	del := &cobra.Command{Use: "delete UUID", Short: "Deny-list a device: its certificate is refused from now on", Args: cobra.ExactArgs(1)}
	cmd.AddCommand(
		adminCmd(ac, list, func(c *adminClient, cmd *cobra.Command, _ []string) error {
			var devs []map[string]any
			if err := c.call(http.MethodGet, "/v1/devices?limit="+strconv.Itoa(limit), "", nil, &devs); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), devs)
		}),
		adminCmd(ac, group, func(c *adminClient, cmd *cobra.Command, args []string) error {
			return c.putJSON("/v1/devices/"+url.PathEscape(args[0])+"/group", gateway.GroupRequest{Group: args[1]}, nil)
		}),
		adminCmd(ac, del, func(c *adminClient, cmd *cobra.Command, args []string) error {
			return c.call(http.MethodDelete, "/v1/devices/"+url.PathEscape(args[0]), "", nil, nil)
		}),
	)
	return cmd
}

func newGatewayConfigCmd(ac *adminFlags) *cobra.Command {
	var group, device string
	cmd := &cobra.Command{
		Use:   "config [--group G | --device UUID] NAME=VALUE ...",
		Short: "Replace the configuration files of the factory, a group or a device",
		Long: `config sets the fioconfig files devices read from GET /config, unencrypted (MCUs
cannot decrypt). Device files override group files, which override factory
files. aktualizr-nano reads polling_interval (seconds) and z-50-fioctl.toml
('[pacman]\ntags = "TAG"' moves the device to another tag). With no NAME=VALUE
the scope's files are removed.`,
	}
	cmd.Flags().StringVar(&group, "group", "", "set the group's files")
	cmd.Flags().StringVar(&device, "device", "", "set the device's files")
	return adminCmd(ac, cmd, func(c *adminClient, cmd *cobra.Command, args []string) error {
		path := "/v1/config"
		switch {
		case group != "" && device != "":
			return &exitError{2, errors.New("--group and --device exclude each other")}
		case group != "":
			path += "/groups/" + url.PathEscape(group)
		case device != "":
			path += "/devices/" + url.PathEscape(device)
		}
		req := gateway.ConfigRequest{Files: []gateway.ConfigFileRequest{}}
		for _, a := range args {
			name, value, ok := strings.Cut(a, "=")
			if !ok {
				return &exitError{2, fmt.Errorf("%q: NAME=VALUE", a)}
			}
			req.Files = append(req.Files, gateway.ConfigFileRequest{Name: name, Value: strings.ReplaceAll(value, `\n`, "\n"), Unencrypted: true})
		}
		slices.SortFunc(req.Files, func(a, b gateway.ConfigFileRequest) int { return strings.Compare(a.Name, b.Name) })
		return c.putJSON(path, req, nil)
	})
}
