package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleetsim/fleetsim/internal/loadgen"
	"github.com/spf13/cobra"
)

// loadgenFlags are the options of `fleetsim loadgen`.
type loadgenFlags struct {
	url         string
	serverName  string
	devices     string
	ca          string
	scenario    string
	proto       string
	path        string
	size        int64
	chunk       int64
	file        string
	connections int
	duration    time.Duration
	warmup      time.Duration
	reconnect   bool
	resume      bool
	tag         string
	target      string
	json        bool
}

func newLoadgenCmd() *cobra.Command {
	f := &loadgenFlags{}
	cmd := &cobra.Command{
		Use:   "loadgen --url URL --devices DIR --scenario checkin|range",
		Short: "Load-test a device gateway (or any server of the same bytes) with mutual-TLS devices",
		Long: `loadgen drives a server with virtual devices over real sockets, each
connection one device with its own client certificate, transport and TLS
session cache, in a closed loop (a device sends its next request when the
previous answer has been read to the end). After --warmup it measures for
--duration and reports requests, req/s, MB/s (10^6 bytes), latency
percentiles (request sent to last body byte read) and errors.

Scenarios (after aktualizr-nano):
  checkin  the idle check-in, made by fleetsim's update agent itself, one
           agent per device with its TUF metadata in (simulated) flash:
           GET /config (200 or 204), PUT /system_info, PUT
           /system_info/network, PUT /system_info/config (200 or 204), then
           the TUF refresh: GET /repo/<N+1>.root.json (404 or 403: no new
           root; /repo/2.root.json for a root of version 1), GET
           /repo/timestamp.json (200), and snapshot.json and targets.json
           (200) only when the timestamp announces new ones. A device's
           first check-in also fetches 1.root.json, which it then trusts,
           and every role, normally during the warm-up. A check-in the
           agent fails (metadata it refuses) with every status as expected
           is an error too, so a baseline server must serve the gateway's
           signed metadata. Each device runs --target "<hwid>-v<version>" and
           follows --tag until /config sets another; the agent sends both
           as x-ats-target and x-ats-tags, and never installs what it finds.
           Devices boot (0.4 s) before the warm-up starts. By default a
           device keeps its connection across check-ins; --reconnect opens
           a new TLS connection for every check-in, as the device does
           between polls.
  range    the firmware download: --path read in --chunk-byte ranges
           (Range: bytes=a-b), each answer must be 206 with the Content-Range
           asked and exactly those bytes; back to byte 0 after the last.
           The size comes from --size, --file, or a one-byte ranged GET.

--devices DIR is what 'fleetsim pki issue' writes: index.txt
("<UUID> production|test" per line) and <UUID>.pem (certificate and PKCS#8
key). Connection i uses the i-th device (cyclically, if there are fewer
devices than connections). The server's certificate is checked against --ca
(default DIR/../ca.crt). --proto h3 speaks HTTP/3 to the UDP port of the
URL's port number.

Answers other than the expected ones are errors, counted by kind. Exit status
0 when every answer was as expected, 1 when any was not (the report is printed
first), 2 for bad usage or a run that could not start.`,
		Example: `  fleetsim loadgen --url https://127.0.0.1:8443 --devices pki/devices --scenario checkin --proto h1
  fleetsim loadgen --url https://127.0.0.1:8443 --devices pki/devices --scenario range \
      --path /mcu/files/64/12338049eed6bf15a9a8a5fe8b1b2773a9a4306a7610af30529ea16157a8a8.bin --proto h3 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "server base URL, https://host:port (required)")
	fl.StringVar(&f.devices, "devices", "", "device directory: index.txt and <UUID>.pem files (required)")
	fl.StringVar(&f.ca, "ca", "", "PEM file of the CA that issued the server's certificate (default DIR/../ca.crt)")
	fl.StringVar(&f.serverName, "server-name", "", "name to check the server certificate against (default: the URL's host)")
	fl.StringVar(&f.scenario, "scenario", "", "workload: checkin or range (required)")
	fl.StringVar(&f.proto, "proto", string(loadgen.HTTP1), "HTTP version: h1 (HTTP/1.1 keep-alive), h2 or h3 (QUIC)")
	fl.StringVar(&f.path, "path", "", "range: the firmware file's path, /mcu/files/xx/yyyy.bin")
	fl.Int64Var(&f.size, "size", 0, "range: the file's size in bytes (default: from --file, else asked of the server)")
	fl.Int64Var(&f.chunk, "chunk", loadgen.DefaultChunk, "range: bytes per ranged request")
	fl.StringVar(&f.file, "file", "", "range: a local copy of the file; every range read is compared with it")
	fl.IntVar(&f.connections, "connections", 32, "concurrent devices, one connection each")
	fl.DurationVar(&f.duration, "duration", 15*time.Second, "measured window")
	fl.DurationVar(&f.warmup, "warmup", 2*time.Second, "time run before the measured window, not counted")
	fl.BoolVar(&f.reconnect, "reconnect", false, "checkin: a new TLS connection per check-in, as the device (default: one kept open)")
	fl.BoolVar(&f.resume, "resume", true, "let a device resume its own TLS session on reconnect (false: full handshakes)")
	fl.StringVar(&f.tag, "tag", "devel", "checkin: the devices' default tag (x-ats-tags until /config sets another)")
	fl.StringVar(&f.target, "target", "loadtest-board-v1", "checkin: the firmware the devices run, <hwid>-v<version> (x-ats-target)")
	fl.BoolVar(&f.json, "json", false, "print the result as one line of JSON")
	return cmd
}

func (f *loadgenFlags) config() (loadgen.Config, error) {
	if f.url == "" || f.devices == "" || f.scenario == "" {
		return loadgen.Config{}, errors.New("--url, --devices and --scenario are required (see fleetsim loadgen --help)")
	}
	if f.connections <= 0 {
		return loadgen.Config{}, fmt.Errorf("--connections %d: must be at least 1", f.connections)
	}
	if f.chunk <= 0 || f.size < 0 {
		return loadgen.Config{}, errors.New("--chunk must be positive and --size not negative")
	}
	if f.scenario != string(loadgen.Range) && (f.path != "" || f.file != "" || f.size != 0) {
		return loadgen.Config{}, errors.New("--path, --file and --size apply to --scenario range only")
	}
	ca := f.ca
	if ca == "" {
		ca = filepath.Join(f.devices, "..", "ca.crt")
	}
	caPEM, err := os.ReadFile(ca)
	if err != nil {
		return loadgen.Config{}, fmt.Errorf("reading the server CA: %w (give it with --ca)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return loadgen.Config{}, fmt.Errorf("%s holds no PEM certificate", ca)
	}
	devs, err := loadgen.LoadDevices(f.devices, f.connections)
	if err != nil {
		return loadgen.Config{}, fmt.Errorf("loading devices from %s: %w", f.devices, err)
	}
	cfg := loadgen.Config{
		BaseURL: f.url, ServerName: f.serverName, RootCAs: pool,
		Scenario: loadgen.Scenario(f.scenario), Proto: loadgen.Proto(f.proto),
		Devices: devs, Connections: f.connections, Warmup: f.warmup, Duration: f.duration,
		Reconnect: f.reconnect, Resume: f.resume, Tag: f.tag, Target: f.target,
		Path: f.path, Size: f.size, Chunk: f.chunk,
	}
	if f.file != "" {
		if cfg.Image, err = os.ReadFile(f.file); err != nil {
			return loadgen.Config{}, fmt.Errorf("reading --file: %w", err)
		}
		if len(cfg.Image) == 0 {
			return loadgen.Config{}, fmt.Errorf("--file %s is empty", f.file)
		}
	}
	return cfg, nil
}

func (f *loadgenFlags) run(cmd *cobra.Command) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	// Ctrl-C ends the run early; what was measured so far is still reported.
	ctx, stop := signal.NotifyContext(contextOf(cmd), os.Interrupt)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.json {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, string(b))
	} else {
		fmt.Fprintln(out, res)
	}
	switch {
	case res.Requests == 0 && res.Errors == 0:
		return &exitError{1, errors.New("no request was answered within the measured window")}
	case res.Errors > 0:
		return &exitError{1, fmt.Errorf("%d of %d requests were not answered as expected; first: %s",
			res.Errors, res.Errors+res.Requests, strings.Join(strings.Fields(res.FirstError), " "))}
	}
	return nil
}

func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
