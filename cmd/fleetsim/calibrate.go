package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
	"github.com/fleetsim/fleetsim/gateway"
	"github.com/fleetsim/fleetsim/internal/loadgen"
	"github.com/fleetsim/fleetsim/internal/pki"
	"github.com/spf13/cobra"
)

// `fleetsim gateway calibrate` measures a gateway with the load generator
// and prints what it measured as the capacity model of a scenario
// (sim.Capacity, the scenario's gateway: block).

type calibrateFlags struct {
	duration, warmup time.Duration
	connections      int
	cores            int
	out              string
	url              string
	pid              int
	tag, target      string
}

func newGatewayCalibrateCmd(ac *adminFlags) *cobra.Command {
	f := &calibrateFlags{}
	cmd := &cobra.Command{
		Use:   "calibrate [--duration D] [--cores N] [--out FILE] [--url URL [--pid PID]]",
		Short: "Measure a gateway's CPU per request and per handshake, and print them as a scenario's gateway: block",
		Long: `calibrate measures what serving devices costs a gateway on this machine and
prints it as the capacity model of a scenario (the gateway: block of
docs/scenarios.md), ready to paste into one:

  request_cpu    a core's time per request: the CPU time the gateway used
                 over idle check-ins on kept-alive connections (the update
                 agent's six requests each), divided by the requests;
  handshake_cpu  a core's time per full mutual-TLS handshake: the same over
                 check-ins that each open a new connection without resuming
                 a session, as an MCU does, less the requests' share,
                 divided by the handshakes;
  cores          this machine's CPUs (--cores to plan for another one).

By default it starts the fleetsim gateway (fleetsim gateway serve, with a
fresh PKI and data directory in a temporary directory) as a process of its
own on loopback, and reads that process's CPU time from /proc (Linux) at the
start and the end of each measured window, while the load generator's
devices (fleetsim loadgen) drive it from this process. 16 KiB ranges of a
1 MiB image are measured too and shown as a comment: the model charges every
request alike.

With --url it measures a gateway that is already running: the PKI directory
(--pki) issues the devices and verifies the server, and the devices follow
--tag, which the gateway must serve. With --pid, the gateway's process on
this machine, its CPU time is read as above. Without, the costs are derived
from the throughput alone, taking the gateway to have kept --cores cores
busy: that holds only when the load generator is not the bottleneck, so the
figures are upper bounds.

Egress is not measured: loopback is no uplink.`,
		Example: `  fleetsim gateway calibrate
  fleetsim gateway calibrate --duration 10s --cores 8 --out gateway.yaml
  fleetsim gateway calibrate --url https://127.0.0.1:8443 --pki pki --pid $(pidof fleetsim)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd, ac) },
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", 3*time.Second, "measured window of each measurement")
	fl.DurationVar(&f.warmup, "warmup", time.Second, "time run before each window, not counted")
	fl.IntVar(&f.connections, "connections", 16, "concurrent devices, one connection each")
	fl.IntVar(&f.cores, "cores", 0, "the gateway's cores (default: this machine's CPUs; required with --url and no --pid)")
	fl.StringVar(&f.out, "out", "", "also write the gateway: block to this file")
	fl.StringVar(&f.url, "url", "", "measure the gateway serving devices at https://host:port instead of starting one")
	fl.IntVar(&f.pid, "pid", 0, "with --url: the gateway's process on this machine, whose CPU time is read")
	fl.StringVar(&f.tag, "tag", "devel", "with --url: the tag the devices follow")
	fl.StringVar(&f.target, "target", "calibrate-board-v1", "with --url: the firmware the devices run, <hwid>-v<version>")
	return cmd
}

// calibrateHWID is the board of the image the started gateway serves.
const calibrateHWID = "calibrate-board"

func (f *calibrateFlags) check(cmd *cobra.Command) error {
	usage := func(format string, args ...any) error { return &exitError{2, fmt.Errorf(format, args...)} }
	switch {
	case f.duration <= 0 || f.warmup < 0:
		return usage("--duration must be positive and --warmup not negative")
	case f.connections <= 0:
		return usage("--connections %d: must be at least 1", f.connections)
	case f.cores < 0:
		return usage("--cores %d: must not be negative", f.cores)
	case f.url == "" && (f.pid != 0 || cmd.Flags().Changed("tag") || cmd.Flags().Changed("target")):
		return usage("--pid, --tag and --target go with --url")
	case f.url != "" && f.pid == 0 && f.cores == 0:
		return usage("--url without --pid derives the costs from throughput: give the gateway's --cores")
	case f.pid < 0:
		return usage("--pid %d: a process id", f.pid)
	}
	if f.url != "" {
		if _, err := httpsURL(f.url); err != nil {
			return usage("--url %q: %v", f.url, err)
		}
	}
	return nil
}

func (f *calibrateFlags) run(cmd *cobra.Command, ac *adminFlags) error {
	if err := f.check(cmd); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(contextOf(cmd), os.Interrupt)
	defer stop()
	dir, err := os.MkdirTemp("", "fleetsim-calibrate-")
	if err != nil {
		return &exitError{1, err}
	}
	defer os.RemoveAll(dir)

	c := &calibration{flags: f, progress: cmd.ErrOrStderr()}
	var ca *pki.CA
	if f.url == "" {
		gw, err := startCalibrationGateway(dir)
		if err != nil {
			return &exitError{1, err}
		}
		defer gw.stop()
		c.url, c.cpu, ca = gw.device, procCPU(gw.cmd.Process.Pid), gw.ca
		c.tag, c.target, c.rangePath, c.image = "devel", calibrateHWID+"-v1", gw.target.Path, gw.image
		c.what = "the fleetsim gateway on this machine, started for the measurement"
	} else {
		if ca, err = pki.LoadCA(ac.pki); err != nil {
			return &exitError{2, fmt.Errorf("--pki %s: %s (the gateway's PKI directory: its factory CA issues the devices)", ac.pki, pkiFileError(err))}
		}
		c.url, c.tag, c.target = f.url, f.tag, f.target
		c.what = "the gateway at " + f.url
		if f.pid != 0 {
			c.cpu = procCPU(f.pid)
			if _, err := c.cpu(); err != nil {
				return &exitError{2, fmt.Errorf("--pid %d: %w", f.pid, err)}
			}
			c.what += fmt.Sprintf(" (process %d)", f.pid)
		}
	}
	c.roots = x509.NewCertPool()
	c.roots.AddCert(ca.Cert)
	seed := uint64(1)
	if _, err := pki.Issue(ca, filepath.Join(dir, "devices"), f.connections, false, time.Now().Add(-time.Hour), &seed, 0); err != nil {
		return &exitError{1, fmt.Errorf("issuing the devices: %s", pkiMessage(err))}
	}
	if c.devices, err = loadgen.LoadDevices(filepath.Join(dir, "devices"), f.connections); err != nil {
		return &exitError{1, err}
	}
	block, err := c.measure(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(cmd.OutOrStdout(), block)
	if f.out != "" {
		if err := os.WriteFile(f.out, []byte(block), 0o644); err != nil {
			return &exitError{1, fmt.Errorf("--out: %w", err)}
		}
	}
	return nil
}

// calibration is one calibration run: the gateway measured and how.
type calibration struct {
	flags    *calibrateFlags
	progress io.Writer
	what     string
	url      string
	roots    *x509.CertPool
	devices  []loadgen.Device
	// cpu reads the gateway's CPU time so far (nil: not readable).
	cpu         func() (time.Duration, error)
	tag, target string
	rangePath   string
	image       []byte
}

// measurement is one load generator run and the gateway's CPU time over
// its window.
type measurement struct {
	res loadgen.Result
	cpu time.Duration
}

// run measures one workload; a run in which the gateway failed a request
// measures nothing.
func (c *calibration) run(ctx context.Context, what string, cfg loadgen.Config) (measurement, error) {
	f := c.flags
	fmt.Fprintf(c.progress, "  measuring %s: %s warm-up, %s measured\n", what, f.warmup, f.duration)
	cfg.BaseURL, cfg.RootCAs, cfg.Proto, cfg.Devices = c.url, c.roots, loadgen.HTTP1, c.devices
	cfg.Connections, cfg.Warmup, cfg.Duration, cfg.Tag, cfg.Target = f.connections, f.warmup, f.duration, c.tag, c.target
	var before, after time.Duration
	var cpuErr error
	if c.cpu != nil {
		cfg.OnWindow = func(open bool) {
			t, err := c.cpu()
			if err != nil {
				cpuErr = err
			}
			if open {
				before = t
			} else {
				after = t
			}
		}
	}
	res, err := loadgen.Run(ctx, cfg)
	switch {
	case err != nil:
		return measurement{}, &exitError{1, fmt.Errorf("%s: %w", what, err)}
	case ctx.Err() != nil:
		return measurement{}, &exitError{1, fmt.Errorf("%s: interrupted", what)}
	case res.Errors > 0:
		hint := ""
		if c.flags.url != "" && cfg.Scenario == loadgen.CheckIn {
			hint = fmt.Sprintf(" (does the gateway serve tag %s?)", c.tag)
		}
		return measurement{}, &exitError{1, fmt.Errorf("%s: %d of %d requests were not answered as expected%s; first: %s",
			what, res.Errors, res.Errors+res.Requests, hint, strings.Join(strings.Fields(res.FirstError), " "))}
	case res.Requests == 0:
		return measurement{}, &exitError{1, fmt.Errorf("%s: no request was answered in the measured window: measure longer (--duration)", what)}
	case cpuErr != nil:
		return measurement{}, &exitError{1, fmt.Errorf("%s: reading the gateway's CPU time: %w", what, cpuErr)}
	}
	return measurement{res: res, cpu: after - before}, nil
}

// measure runs the workloads and writes the gateway: block.
func (c *calibration) measure(ctx context.Context) (string, error) {
	keep, err := c.run(ctx, "idle check-ins, kept-alive connections", loadgen.Config{Scenario: loadgen.CheckIn, Resume: true})
	if err != nil {
		return "", err
	}
	fresh, err := c.run(ctx, "idle check-ins, a full handshake each", loadgen.Config{Scenario: loadgen.CheckIn, Reconnect: true})
	if err != nil {
		return "", err
	}
	var ranges *measurement
	if c.image != nil {
		m, err := c.run(ctx, "16 KiB ranges of a 1 MiB image", loadgen.Config{Scenario: loadgen.Range, Path: c.rangePath, Image: c.image, Chunk: loadgen.DefaultChunk})
		if err != nil {
			return "", err
		}
		ranges = &m
	}

	cores := c.flags.cores
	if cores == 0 {
		cores = runtime.NumCPU()
	}
	// Each window's CPU time is its requests' and handshakes' cost:
	// cpu = requests×r + handshakes×h, for the two check-in workloads.
	// Without the gateway's CPU time, the cores kept busy stand for it.
	cpuOf := func(m measurement) float64 {
		if c.cpu != nil {
			return m.cpu.Seconds()
		}
		return float64(cores) * m.res.Seconds
	}
	reqA, hsA := float64(keep.res.Requests), float64(keep.res.Handshakes)
	reqB, hsB := float64(fresh.res.Requests), float64(fresh.res.Handshakes)
	det := reqA*hsB - hsA*reqB
	r := (cpuOf(keep)*hsB - hsA*cpuOf(fresh)) / det
	h := (reqA*cpuOf(fresh) - reqB*cpuOf(keep)) / det
	if !(det > 0) || !(r > 0) || !(h > 0) {
		return "", &exitError{1, fmt.Errorf("the measurements do not separate the cost of a request (%.0f µs) from a handshake's (%.0f µs): measure longer (--duration) on a quieter machine", r*1e6, h*1e6)}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# fleetsim gateway calibrate: %s,\n", c.what)
	fmt.Fprintf(&b, "# %d devices over HTTP/1.1 with mutual TLS from this machine (%d CPUs, %s/%s),\n", c.flags.connections, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "# %s measured after %s of warm-up per workload:\n", c.flags.duration, c.flags.warmup)
	line := func(what string, m measurement) {
		fmt.Fprintf(&b, "#   %-42s %8.0f req/s  %6d handshakes", what, m.res.ReqPerSec, m.res.Handshakes)
		if c.cpu != nil {
			fmt.Fprintf(&b, "  %.2f CPU s", m.cpu.Seconds())
		}
		b.WriteString("\n")
	}
	line("idle check-ins, kept-alive connections:", keep)
	line("idle check-ins, a full handshake each:", fresh)
	if ranges != nil {
		line("16 KiB ranges of a 1 MiB image:", *ranges)
		fmt.Fprintf(&b, "# A 16 KiB range costs %s of CPU; request_cpu is a check-in request's.\n",
			micros(ranges.cpu.Seconds()/float64(ranges.res.Requests)))
	}
	if c.cpu == nil {
		fmt.Fprintf(&b, "# Without the gateway's CPU time: upper bounds, taking its %d cores to have been busy throughout.\n", cores)
	}
	b.WriteString("# egress_mbps is not measured (loopback is no uplink): add your gateway's uplink.\n")
	fmt.Fprintf(&b, "gateway:\n  cores: %d\n  request_cpu: %s\n  handshake_cpu: %s\n", cores, micros(r), micros(h))
	return b.String(), nil
}

// micros writes seconds as a scenario duration in whole microseconds.
func micros(s float64) string {
	return strconv.FormatInt(max(int64(s*1e6+0.5), 1), 10) + "us"
}

// procCPU reads the CPU time, user and system, that process pid and its
// threads have used so far, from /proc/PID/stat (Linux: utime and stime,
// fields 14 and 15, in the kernel's USER_HZ ticks, 100 a second).
func procCPU(pid int) func() (time.Duration, error) {
	path := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	return func() (time.Duration, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			if _, serr := os.Stat("/proc/self/stat"); serr == nil {
				return 0, fmt.Errorf("no process %d on this machine (%w)", pid, err)
			}
			return 0, fmt.Errorf("%w (the CPU time is read from /proc: Linux only)", err)
		}
		// The command name, field 2, is in parentheses and may hold
		// blanks: count the fields after its closing one (field 3 on).
		i := bytes.LastIndexByte(data, ')')
		fields := strings.Fields(string(data[i+1:]))
		if i < 0 || len(fields) < 13 {
			return 0, fmt.Errorf("%s: not a process status line", path)
		}
		var ticks uint64
		for _, s := range fields[11:13] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %q is not a tick count", path, s)
			}
			ticks += n
		}
		return time.Duration(ticks) * (time.Second / 100), nil
	}
}

// calibrationGateway is the fleetsim gateway calibrate starts: `fleetsim
// gateway serve` in a process of its own, so that its CPU time is its
// alone, on a PKI directory and data of a temporary directory.
type calibrationGateway struct {
	cmd    *exec.Cmd
	ca     *pki.CA
	device string
	target gateway.TargetInfo
	image  []byte
	// exited is closed when the process's log ends, that is when it
	// exits; logTail holds its last lines.
	exited  chan struct{}
	mu      sync.Mutex
	logTail []string
}

// selfCommand is this fleetsim with other arguments (tests, whose binary
// is not fleetsim, replace it).
var selfCommand = func(args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return exec.Command(exe, args...), nil
}

func startCalibrationGateway(dir string) (*calibrationGateway, error) {
	pkiDir := filepath.Join(dir, "pki")
	if err := pki.Init(pkiDir, "calibrate", nil, time.Now().Add(-time.Hour), rand.Reader); err != nil {
		return nil, fmt.Errorf("making the gateway's PKI: %s", pkiMessage(err))
	}
	ca, err := pki.LoadCA(pkiDir)
	if err != nil {
		return nil, err
	}
	key, err := image.GenerateKey(image.KeyEd25519, rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, err := image.MarshalPublicKeyPEM(key.Public())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "image.pub"), pub, 0o644); err != nil {
		return nil, err
	}
	cmd, err := selfCommand("gateway", "serve", "--data", filepath.Join(dir, "gateway"), "--pki", pkiDir,
		"--image-key", filepath.Join(dir, "image.pub"), "--listen", "127.0.0.1:0", "--h3", "", "--admin-listen", "127.0.0.1:0",
		"--log-format", "json", "--log-level", "info")
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	g := &calibrationGateway{cmd: cmd, ca: ca, exited: make(chan struct{})}
	listening := make(chan [2]string, 1)
	go g.readLog(stderr, listening)
	var admin string
	select {
	case a := <-listening:
		g.device, admin = "https://"+a[0], "https://"+a[1]
	case <-g.exited:
		g.stop()
		return nil, fmt.Errorf("the gateway exited before it listened: %s", g.tail())
	case <-time.After(30 * time.Second):
		g.stop()
		return nil, fmt.Errorf("the gateway did not listen within 30 s: %s", g.tail())
	}
	if err := g.upload(admin, pkiDir, key); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// readLog reads the gateway's log: the addresses it listens on, and the
// last lines, for errors.
func (g *calibrationGateway) readLog(r io.Reader, listening chan<- [2]string) {
	defer close(g.exited)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg     string `json:"msg"`
			Devices string `json:"devices"`
			Admin   string `json:"admin"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "gateway listening" {
			listening <- [2]string{rec.Devices, rec.Admin}
		}
		g.mu.Lock()
		g.logTail = append(g.logTail, sc.Text())
		if len(g.logTail) > 5 {
			g.logTail = g.logTail[1:]
		}
		g.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

func (g *calibrationGateway) tail() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.logTail) == 0 {
		return "no log"
	}
	return strings.Join(g.logTail, " | ")
}

// upload gives the gateway a signed 1 MiB image for the check-ins' tag:
// the devices' metadata then lists a target, and the ranges read it.
func (g *calibrationGateway) upload(admin, pkiDir string, key crypto.Signer) error {
	// aktualizr-nano takes firmware under 1 MiB: the payload leaves room
	// for the header and the TLVs.
	payload := make([]byte, 1<<20-1024)
	_, _ = rand.Read(payload)
	img, err := image.Sign(payload, image.SignOptions{Key: key, Version: image.Version{Major: 1, Build: 2}, HeaderSize: 0x200, PadHeader: true, Align: 8})
	if err != nil {
		return err
	}
	c, err := newAdminClient(&adminFlags{url: admin, pki: pkiDir})
	if err != nil {
		return err
	}
	q := url.Values{"hwid": {calibrateHWID}, "tags": {"devel"}}
	if err := c.call("POST", "/v1/firmware?"+q.Encode(), "application/octet-stream", bytes.NewReader(img), &g.target); err != nil {
		return fmt.Errorf("uploading the image: %w", err)
	}
	c.http.CloseIdleConnections()
	g.image = img
	return nil
}

// stop ends the gateway gracefully (SIGTERM), or kills it after 10 s.
func (g *calibrationGateway) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	_ = g.cmd.Wait()
}
