package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/scenarios"
)

// testAsCLI makes the test binary run as fleetsim: calibrate starts
// `fleetsim gateway serve` as a process of its own, and in a test the
// binary is this one.
const testAsCLI = "FLEETSIM_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(testAsCLI) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	selfCommand = func(args ...string) (*exec.Cmd, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), testAsCLI+"=1")
		return cmd, nil
	}
	os.Exit(m.Run())
}

// calibrationBlock parses calibrate's output as the gateway: block of a
// scenario, as a user pastes it.
func calibrationBlock(t *testing.T, out string) scenarios.Gateway {
	t.Helper()
	s, err := scenarios.Parse("pasted.yaml", []byte(tinyScenario+out))
	if err != nil {
		t.Fatalf("the output is no scenario gateway block: %v\n%s", err, out)
	}
	g := s.Gateway
	if g.Cores <= 0 || g.RequestCPU <= 0 || g.HandshakeCPU <= 0 {
		t.Fatalf("gateway block %+v: want positive cores, request_cpu and handshake_cpu\n%s", g, out)
	}
	return g
}

// TestGatewayCalibrate measures the fleetsim gateway, started by calibrate
// as a process of its own, for a fraction of a second per workload.
func TestGatewayCalibrate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	out := mustCLI(t, "gateway", "calibrate", "--duration", "1s", "--warmup", "200ms", "--connections", "4", "--cores", "3", "--out", file)
	g := calibrationBlock(t, out)
	if g.Cores != 3 {
		t.Errorf("cores %d, want --cores 3", g.Cores)
	}
	if !strings.Contains(out, "16 KiB ranges") {
		t.Errorf("no range measurement in\n%s", out)
	}
	if saved := string(readFile(t, file)); saved != out {
		t.Errorf("--out holds\n%s\nwant what was printed\n%s", saved, out)
	}
	t.Logf("\n%s", out)
}

// TestGatewayCalibrateExternal measures a gateway already running (served
// in this process) from its throughput alone.
func TestGatewayCalibrateExternal(t *testing.T) {
	fx := startGateway(t)
	mustCLI(t, fx.gw("tag", "main")...)
	out := mustCLI(t, "gateway", "calibrate", "--url", fx.device, "--pki", fx.pki, "--tag", "main", "--cores", "2",
		"--duration", "500ms", "--warmup", "200ms", "--connections", "4")
	calibrationBlock(t, out)
	if !strings.Contains(out, "upper bounds") || strings.Contains(out, "16 KiB ranges") {
		t.Errorf("an external gateway without --pid:\n%s", out)
	}
	// Progress lines come first on stderr; the error is the last line.
	code, _, stderr := runCLI(t, "gateway", "calibrate", "--url", fx.device, "--pki", fx.pki,
		"--tag", "nosuchtag", "--cores", "2", "--duration", "300ms", "--warmup", "0s", "--connections", "2")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := lines[len(lines)-1]; code != 1 || !strings.HasPrefix(last, "fleetsim: ") || !strings.Contains(last, "(does the gateway serve tag nosuchtag?)") {
		t.Errorf("a tag the gateway does not serve: exit %d, stderr %q", code, stderr)
	}
}

func TestGatewayCalibrateRefusals(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "0s"}, "--duration must be positive"},
		{[]string{"--connections", "0"}, "--connections 0"},
		{[]string{"--cores", "-1"}, "--cores -1"},
		{[]string{"--pid", "1"}, "--pid, --tag and --target go with --url"},
		{[]string{"--url", "https://127.0.0.1:1"}, "give the gateway's --cores"},
		{[]string{"--url", "http://x", "--cores", "2"}, "--url \"http://x\": want https://host:port"},
		{[]string{"--url", "https://127.0.0.1:1", "--cores", "2", "--pki", filepath.Join(t.TempDir(), "none")}, "ca.crt: no such file"},
	} {
		wantRefusal(t, 2, c.want, append([]string{"gateway", "calibrate"}, c.args...)...)
	}
}
