package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/agent/bundle"
	"github.com/fleetsim/fleetsim/agent/tufnano"
	"github.com/fleetsim/fleetsim/devicemodel"
	"github.com/fleetsim/fleetsim/devicemodel/live"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot"
	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/flashsim"
	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/spf13/cobra"
)

// deviceFlags are the options of `fleetsim device`.
type deviceFlags struct {
	gateway, filesURL, cert, ca, serverName string
	board, strategy, imageKey, factory      string
	root, tag, proto, profile, until        string
	bundle, flashFaults                     string
	powerCuts                               []string
	timeout                                 time.Duration
	instantFlash                            bool
	serial                                  string
	seed                                    uint64
}

func newDeviceCmd() *cobra.Command {
	f := &deviceFlags{}
	cmd := &cobra.Command{
		Use:   "device --gateway URL --cert DEVICE.pem --image-key KEY --factory-image IMG [flags]",
		Short: "Run one virtual MCU on the wall clock against a real gateway, logging every step",
		Long: `device boots one virtual MCU (emulated flash, boot ROM, MCUboot, the
aktualizr-nano agent) and runs it on the wall clock against a real device
gateway: fleetsim's own, or any that speaks the Foundries device API. It logs
each step: boot, check-in, each request, TUF refresh, target selection,
download progress, events, reboot, swap, confirm or revert.

The device is manufactured at start: --factory-image (a signed MCUboot image)
is flashed into the primary slot and counts as confirmed, the bootloader
verifies images with --image-key (a public or private key PEM), the agent's
flash holds the UUID of --cert and, with --root, the TUF root (otherwise the
agent fetches 1.root.json on first contact, trusting it). --cert is the PEM
that 'fleetsim pki issue' writes (certificate and key, which the device's
secure element keeps).

--until makes it a test: it exits 0 when the device reaches the state and 1
when it cannot (the opposite outcome, a brick, --timeout, or Ctrl-C):
  confirmed     an image newer than the factory one is confirmed
  rolled-back   the device reports a rollback (EcuInstallationCompleted false)
  checkins:N    N check-ins succeeded
Without --until it runs until Ctrl-C, which stops it cleanly (exit 0).

--bundle FILE updates the device from an offline bundle ('fleetsim bundle
create') as if over UART or USB, through the same agent and TUF client,
without a gateway.

--power-cut PHASE:N[:KIND] cuts power at the N-th flash program or erase of a
phase (download, swap, confirm, storage, any; KIND before, after or during,
the default), or at:DURATION after start; repeatable.

--flash-faults INJECTOR stacks faults on the device's flash, written as
flashsim's s-expressions, e.g. "(any (cut during (and (kind erase) (op 3)))
(bit-flips 1e-06 7))": power cuts (before, after or during an operation),
sectors that wear out, read bit flips, where (op N), (kind ...),
(range OFF LEN), (randomly P SEED), and, or, not, once say.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDevice(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.gateway, "gateway", "", "the device gateway, https://host:port")
	fl.StringVar(&f.filesURL, "files-url", "", "the firmware host (default: the gateway); /mcu/files/... is appended")
	fl.StringVar(&f.cert, "cert", "", "the device's certificate and key (PEM, from 'fleetsim pki issue')")
	fl.StringVar(&f.ca, "ca", "", "CA certificate(s) that verify the servers (default: the system's)")
	fl.StringVar(&f.serverName, "server-name", "", "name the server certificate must carry (default: the URL's host)")
	fl.StringVar(&f.board, "board", "rt1060", "board: "+strings.Join(agentBoards(), ", "))
	fl.StringVar(&f.strategy, "strategy", "", "MCUboot upgrade strategy (default: the board's)")
	fl.StringVar(&f.imageKey, "image-key", "", "key the bootloader verifies images with (PEM, public or private)")
	fl.StringVar(&f.factory, "factory-image", "", "signed image flashed and confirmed at manufacture")
	fl.StringVar(&f.root, "root", "", "TUF root.json provisioned at manufacture")
	fl.StringVar(&f.tag, "tag", agent.DefaultTag, "the tag the device follows until /config sets one")
	fl.StringVar(&f.proto, "proto", "h1", "h1 (HTTP/1.1 over TLS, as the MCU), h2 or h3 (HTTP/3 over QUIC)")
	fl.StringVar(&f.profile, "profile", "healthy", "firmware behaviour: BEHAVIOUR[,VERSION=BEHAVIOUR...]; healthy, crash-at-boot, fails-self-test, hangs, bricks-network")
	fl.StringArrayVar(&f.powerCuts, "power-cut", nil, "cut power at PHASE:N[:KIND] or at:DURATION (repeatable)")
	fl.StringVar(&f.flashFaults, "flash-faults", "", "faults stacked on the flash, e.g. \"(cut during (and (kind erase) (op 3)))\"")
	fl.StringVar(&f.until, "until", "", "exit when the device is confirmed, rolled-back or after checkins:N")
	fl.DurationVar(&f.timeout, "timeout", 15*time.Minute, "with --until: give up after this long")
	fl.StringVar(&f.bundle, "bundle", "", "update from this offline bundle instead of a gateway")
	fl.BoolVar(&f.instantFlash, "instant-flash", false, "flash erases and programs take no time (default: the board's data-sheet times)")
	fl.StringVar(&f.serial, "serial", "", "serial number in the agent's flash (default: from the UUID)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the device's randomness (event ids, torn writes)")
	return cmd
}

// agentBoards lists the boards with room for the agent.
func agentBoards() []string {
	var out []string
	for _, b := range devicemodel.Boards() {
		if b.RunsAgent() {
			out = append(out, b.Name)
		}
	}
	return out
}

// untilSpec is a parsed --until.
type untilSpec struct {
	kind     string // "confirmed", "rolled-back", "checkins"
	checkIns int
}

func parseUntil(s string) (untilSpec, error) {
	switch {
	case s == "" || s == "confirmed" || s == "rolled-back":
		return untilSpec{kind: s}, nil
	case strings.HasPrefix(s, "checkins:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "checkins:"))
		if err != nil || n < 1 {
			return untilSpec{}, fmt.Errorf("--until %q: checkins:N needs N of 1 or more", s)
		}
		return untilSpec{kind: "checkins", checkIns: n}, nil
	}
	return untilSpec{}, fmt.Errorf("--until %q is not confirmed, rolled-back or checkins:N", s)
}

// deviceSetup is what runDevice builds from the flags before the device runs.
type deviceSetup struct {
	model   *devicemodel.Model
	spec    devicemodel.Spec
	host    *live.Host
	factory uint32
	cuts    []devicemodel.PowerCut
	faults  flashsim.Injector // --flash-faults
	until   untilSpec
	source  agent.Source
}

func setupDevice(f *deviceFlags) (*deviceSetup, error) {
	s := &deviceSetup{}
	var err error
	if s.until, err = parseUntil(f.until); err != nil {
		return nil, err
	}
	b, err := devicemodel.LookupBoard(f.board)
	if err != nil {
		return nil, err
	}
	if !b.RunsAgent() {
		return nil, fmt.Errorf("board %s has no room for the update agent (boards: %s)", b.Name, strings.Join(agentBoards(), ", "))
	}
	if f.instantFlash {
		b.Timing.SectorErase, b.Timing.PageProgram = 0, 0
	}
	if f.cert == "" || f.imageKey == "" || f.factory == "" {
		return nil, errors.New("--cert, --image-key and --factory-image are required")
	}
	if f.bundle == "" && f.gateway == "" {
		return nil, errors.New("--gateway is required (or --bundle for an offline update)")
	}
	cert, err := pki.LoadDevice(f.cert)
	if err != nil {
		return nil, err
	}
	uuid := cert.Leaf.Subject.CommonName
	se, err := devicemodel.InjectedSecureElement(cert)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", f.cert, err)
	}
	key, err := readImageKey(f.imageKey)
	if err != nil {
		return nil, err
	}
	factory, err := os.ReadFile(f.factory)
	if err != nil {
		return nil, err
	}
	h, err := image.ParseHeader(factory)
	if err != nil {
		return nil, fmt.Errorf("--factory-image %s: %v", f.factory, err)
	}
	s.factory = h.Version.Build
	var root []byte
	if f.root != "" {
		if root, err = checkedRoot(f.root); err != nil {
			return nil, err
		}
	}
	profiles, err := devicemodel.ParseProfiles(f.profile)
	if err != nil {
		return nil, err
	}
	for _, c := range f.powerCuts {
		pc, err := devicemodel.ParsePowerCut(c)
		if err != nil {
			return nil, err
		}
		s.cuts = append(s.cuts, pc)
	}
	if f.flashFaults != "" {
		if s.faults, err = flashsim.ParseInjector(f.flashFaults); err != nil {
			return nil, fmt.Errorf("--flash-faults: %v", err)
		}
	}
	if len(f.tag) > agent.MaxTagLength || f.tag == "" {
		return nil, fmt.Errorf("--tag %q: 1 to %d characters", f.tag, agent.MaxTagLength)
	}
	if s.model, err = devicemodel.NewModel(devicemodel.ModelConfig{
		Board:      b,
		Bootloader: mcuboot.Config{Strategy: f.strategy, Keys: []crypto.PublicKey{key}, ValidatePrimary: true},
		Agent:      agent.Config{DefaultTag: f.tag},
		Profiles:   profiles,
	}); err != nil {
		return nil, err
	}
	serial := f.serial
	if serial == "" {
		serial = strings.ReplaceAll(uuid, "-", "")
	}
	s.spec = devicemodel.Spec{UUID: uuid, Serial: serial, SE: se, FactoryImage: factory, Root: root, Seed: f.seed}
	if f.bundle != "" {
		if s.source, err = openBundle(f.bundle); err != nil {
			return nil, err
		}
		return s, nil
	}
	if s.host, err = liveHost(f); err != nil {
		return nil, err
	}
	return s, nil
}

// readImageKey reads a public key, or the public half of a private key.
func readImageKey(path string) (crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if pub, err := image.ParsePublicKeyPEM(data); err == nil {
		return pub, nil
	}
	k, err := image.ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("--image-key %s: not a public or private key PEM: %v", path, err)
	}
	return k.Public(), nil
}

// checkedRoot reads a root.json and checks it as the device would before
// trusting it: within the agent's limits, signed by a threshold of its own
// keys.
func checkedRoot(path string) ([]byte, error) {
	lim := agent.DefaultLimits()
	data, err := readRoot(path, lim.MaxMetadataSize)
	if err == nil {
		_, err = tufnano.New(lim, nil, rootStore(data))
	}
	if err != nil {
		return nil, fmt.Errorf("--root %s: %v", path, err)
	}
	return data, nil
}

func liveHost(f *deviceFlags) (*live.Host, error) {
	proto, err := live.ParseProto(f.proto)
	if err != nil {
		return nil, fmt.Errorf("--proto: %v", err)
	}
	gw, err := parseHTTPS("--gateway", f.gateway)
	if err != nil {
		return nil, err
	}
	h := &live.Host{Gateway: gw, Proto: proto, ServerName: f.serverName}
	if f.filesURL != "" {
		if h.Files, err = parseHTTPS("--files-url", f.filesURL); err != nil {
			return nil, err
		}
	}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, err
		}
		h.RootCAs = x509.NewCertPool()
		if !h.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", f.ca)
		}
	}
	return h, nil
}

func parseHTTPS(flag, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("%s %q is not https://host[:port]", flag, s)
	}
	u.Path = ""
	return u, nil
}

// openBundle opens an offline bundle file.
func openBundle(path string) (agent.Source, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	b, err := bundle.Open(file, st.Size())
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("--bundle %s: %v", path, err)
	}
	return b, nil
}

// offlineHost is the world of a device updated from a bundle: the wall
// clock and no network.
type offlineHost struct{ *live.Host }

func (offlineHost) Connect(agent.Endpoint, tls.Certificate) (agent.Conn, error) {
	return nil, errors.New("no network: the device updates from a bundle")
}

// deviceWatch follows a running device's events: it logs them and decides
// when --until is met.
type deviceWatch struct {
	mu       sync.Mutex
	out      io.Writer
	start    time.Time
	until    untilSpec
	factory  uint32
	checkIns int
	offline  bool
	// confirmed is the newer version confirmed, once it is: --until
	// confirmed is met when the device has reported it (or tried to).
	confirmed uint32
	result    error // nil until decided; errUntilMet when met
	device    *devicemodel.Device
	last      string
}

var errUntilMet = errors.New("until met")

func (w *deviceWatch) event(e devicemodel.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	fmt.Fprintf(w.out, "%s %8.3fs %s\n", now.Format("15:04:05.000"), now.Sub(w.start).Seconds(), e)
	w.last = e.String()
	if w.result != nil {
		return
	}
	n := e.Note
	agentNote := e.Kind == devicemodel.EventAgent
	decide := func(err error) {
		w.result = err
		w.device.Stop()
	}
	switch {
	case agentNote && n.Kind == agent.NoteCheckIn && n.Err == nil:
		w.checkIns++
		if w.until.kind == "checkins" && w.checkIns >= w.until.checkIns {
			decide(errUntilMet)
		}
	case agentNote && n.Kind == agent.NoteConfirm && n.Err == nil && n.Version > w.factory:
		w.confirmed = n.Version
		if w.until.kind == "confirmed" && w.offline {
			decide(errUntilMet)
		} else if w.until.kind == "rolled-back" {
			decide(fmt.Errorf("v%d was confirmed, not rolled back", n.Version))
		}
	case agentNote && n.Kind == agent.NoteEvent && w.confirmed != 0 && strings.HasPrefix(n.Text, agent.EventInstallationCompleted):
		if w.until.kind == "confirmed" {
			decide(errUntilMet)
		}
	case agentNote && n.Kind == agent.NoteEvent && n.Text == agent.EventInstallationCompleted+" success=false",
		agentNote && n.Kind == agent.NoteDecision && strings.HasPrefix(n.Text, "rolled back to"):
		if w.until.kind == "rolled-back" {
			decide(errUntilMet)
		} else if w.until.kind == "confirmed" {
			decide(errors.New("the update rolled back"))
		}
	}
}

func runDevice(cmd *cobra.Command, f *deviceFlags) error {
	s, err := setupDevice(f)
	if err != nil {
		return err
	}
	var host devicemodel.Host = s.host
	if s.source != nil {
		host = offlineHost{&live.Host{}}
	}
	w := &deviceWatch{out: cmd.OutOrStdout(), start: time.Now(), until: s.until, factory: s.factory, offline: s.source != nil}
	d, err := devicemodel.Manufacture(s.model, host, s.spec, w.event)
	if err != nil {
		return err
	}
	w.device = d
	d.Arm(s.cuts...)
	d.InjectFlashFaults(s.faults)
	if s.source != nil {
		d.UseSource(s.source)
	}
	for _, c := range s.cuts {
		if c.At > 0 {
			t := time.AfterFunc(c.At, func() {
				w.event(devicemodel.Event{Kind: devicemodel.EventPowerCut, Text: c.String()})
				d.PowerCut()
			})
			defer t.Stop()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if s.until.kind != "" {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	runErr := d.Run(ctx)
	w.mu.Lock()
	result := w.result
	w.mu.Unlock()
	fmt.Fprintln(cmd.OutOrStdout(), w.summary(d, s.host))
	switch {
	case result == errUntilMet:
		return nil
	case result != nil:
		return &exitError{code: 1, err: fmt.Errorf("--until %s: %v", f.until, result)}
	case runErr != nil && !errors.Is(runErr, context.Canceled) && !errors.Is(runErr, context.DeadlineExceeded):
		if s.until.kind == "" {
			return &exitError{code: 1, err: runErr}
		}
		return &exitError{code: 1, err: fmt.Errorf("--until %s: %v", f.until, runErr)}
	case s.until.kind != "":
		why := "interrupted"
		if errors.Is(runErr, context.DeadlineExceeded) {
			why = "timed out after " + f.timeout.String()
		}
		return &exitError{code: 1, err: fmt.Errorf("--until %s: %s", f.until, why)}
	}
	return nil
}

// summary is the closing line: time, boots, and what went over the wire.
func (w *deviceWatch) summary(d *devicemodel.Device, h *live.Host) string {
	s := fmt.Sprintf("device %s: %.1fs, %d boots, %d check-ins", d.UUID(), time.Since(w.start).Seconds(), d.Boots(), w.checkIns)
	if h != nil {
		st := h.Stats()
		s += fmt.Sprintf(", %d connections, %d requests, %d bytes sent, %d received",
			st.Connections.Load(), st.Requests.Load(), st.BytesSent.Load(), st.BytesReceived.Load())
	}
	return s
}
