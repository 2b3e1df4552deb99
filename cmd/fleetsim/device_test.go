package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The device command is tested as a user runs it: a gateway on loopback
// (startGateway), device certificates from its PKI, images signed by the
// CLI, and `fleetsim device` on the wall clock with --instant-flash so an
// update takes seconds.

const rtHWID = "MIMXRT1060-EVK"

// deviceRig is what `fleetsim device` needs from a test: a device
// certificate and a factory image, and the gateway to update from.
type deviceRig struct {
	fx      gwFixture
	cert    string // test device (not production): CI targets by tag
	factory string // v1000
}

func newDeviceRig(t *testing.T) deviceRig {
	t.Helper()
	fx := startGateway(t)
	return deviceRig{fx: fx, cert: issueTestDevice(t, fx.pki), factory: signRTImage(t, fx.key, "1.0.0+1000")}
}

// issueTestDevice issues one test device with the CLI and returns its
// certificate and key file.
func issueTestDevice(t *testing.T, pkiDir string) string {
	t.Helper()
	out := t.TempDir()
	mustCLI(t, "pki", "issue", "--pki", pkiDir, "--count", "1", "--out", out)
	files, err := filepath.Glob(filepath.Join(out, "*.pem"))
	if err != nil || len(files) != 1 {
		t.Fatalf("pki issue wrote %v (%v)", files, err)
	}
	return files[0]
}

// signRTImage signs an application image for the RT1060's 2 MiB slots.
func signRTImage(t *testing.T, key, version string) string {
	t.Helper()
	dir := t.TempDir()
	payload := filepath.Join(dir, "app.bin")
	if err := os.WriteFile(payload, []byte(strings.Repeat("fleetsim rt1060 app "+version+" ", 1500)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "app-"+version+".bin")
	mustCLI(t, "image", "sign", "-k", key, "-v", version, "-H", "0x400", "--pad-header", "-S", "0x200000", "--align", "4", payload, out)
	return out
}

// args are the flags of a device that updates from the rig's gateway.
func (r deviceRig) args(extra ...string) []string {
	return append([]string{"device", "--gateway", r.fx.device, "--ca", filepath.Join(r.fx.pki, "ca.crt"),
		"--cert", r.cert, "--image-key", r.fx.key, "--factory-image", r.factory,
		"--instant-flash", "--timeout", "90s"}, extra...)
}

func TestDeviceUsageErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("not a PEM, not an image"), 0o644)
	key := filepath.Join(dir, "key.pem")
	mustCLI(t, "image", "keygen", "-k", key, "-t", "ed25519")
	pkiDir := filepath.Join(dir, "pki")
	mustCLI(t, "pki", "init", "--dir", pkiDir, "--factory", "acme")
	cert := issueTestDevice(t, pkiDir)
	factory := signRTImage(t, key, "1.0.0+1000")
	base := []string{"device", "--cert", cert, "--image-key", key, "--factory-image", factory}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	gw := "https://127.0.0.1:1"
	for _, c := range []struct {
		want string
		args []string
	}{
		{"--cert, --image-key and --factory-image are required", []string{"device", "--gateway", gw}},
		{"--gateway is required (or --bundle", with()},
		{`--gateway "http://x" is not https://host[:port]`, with("--gateway", "http://x")},
		{`--gateway "https://x/api" is not https://host[:port]`, with("--gateway", "https://x/api")},
		{"unknown board", with("--gateway", gw, "--board", "z80")},
		{"has no room for the update agent", with("--gateway", gw, "--board", "stm32f4")},
		{`--until "soon" is not confirmed, rolled-back or checkins:N`, with("--gateway", gw, "--until", "soon")},
		{"checkins:N needs N of 1 or more", with("--gateway", gw, "--until", "checkins:0")},
		{"--proto", with("--gateway", gw, "--proto", "h9")},
		{"--image-key " + junk + ": not a public or private key PEM", []string{"device", "--gateway", gw, "--cert", cert, "--image-key", junk, "--factory-image", factory}},
		{"--factory-image " + junk, []string{"device", "--gateway", gw, "--cert", cert, "--image-key", key, "--factory-image", junk}},
		{junk, []string{"device", "--gateway", gw, "--cert", junk, "--image-key", key, "--factory-image", factory}},
		{"--root " + junk, with("--gateway", gw, "--root", junk)},
		{"--ca " + junk + " holds no PEM certificate", with("--gateway", gw, "--ca", junk)},
		{"--bundle " + junk, with("--bundle", junk)},
		{"power cut", with("--gateway", gw, "--power-cut", "swap:x")},
		{`--flash-faults: bad flash fault injector: at byte 15: want an operation number, got ")"`, with("--gateway", gw, "--flash-faults", "(cut during (op)")},
		{"fails-self-tset", with("--gateway", gw, "--profile", "1001=fails-self-tset")},
		{`--tag ""`, with("--gateway", gw, "--tag", "")},
		{"strategy", with("--gateway", gw, "--strategy", "overwrite-sideways")},
		{"no such file", with("--gateway", gw, "--root", filepath.Join(dir, "missing.json"))},
	} {
		wantRefusal(t, 2, c.want, c.args...)
	}
}

func TestDeviceUpdatesFromGateway(t *testing.T) {
	r := newDeviceRig(t)
	mustCLI(t, r.fx.gw("upload", signRTImage(t, r.fx.key, "1.0.0+1001"), "--hwid", rtHWID, "--tag", "devel")...)

	code, out, errs := runCLI(t, r.args("--until", "confirmed")...)
	if code != 0 {
		t.Fatalf("--until confirmed: exit %d\n%s\nstderr: %s", code, out, errs)
	}
	// The log names each step, in order, and ends with the summary.
	for _, step := range []string{
		"select of 1 targets v1001", "checkin", "update from v1000", "download", "EcuDownloadCompleted",
		"reboot", "swap", "app v1001", "confirm v1001", "EcuInstallationCompleted",
	} {
		i := strings.Index(out, step)
		if i < 0 {
			t.Fatalf("log lacks %q:\n%s", step, out)
		}
		out = out[i:]
	}
	last := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	uuid := strings.TrimSuffix(filepath.Base(r.cert), ".pem")
	if !strings.HasPrefix(last, "device "+uuid+": ") || !strings.Contains(last, "2 boots") || !strings.Contains(last, "requests") {
		t.Errorf("summary line %q", last)
	}

	// The device is known to the gateway now, reporting v1001.
	list := mustCLI(t, r.fx.gw("device", "list")...)
	if !strings.Contains(list, uuid) || !strings.Contains(list, "v1001") {
		t.Errorf("device list after the update:\n%s", list)
	}
}

func TestDeviceRollbackOutcome(t *testing.T) {
	r := newDeviceRig(t)
	mustCLI(t, r.fx.gw("upload", signRTImage(t, r.fx.key, "1.0.0+1001"), "--hwid", rtHWID, "--tag", "devel")...)
	bad := []string{"--profile", "healthy,1001=fails-self-test"}

	// A device whose new firmware fails its self-test reverts: --until
	// rolled-back is met...
	code, out, errs := runCLI(t, r.args(append(bad, "--until", "rolled-back")...)...)
	if code != 0 {
		t.Fatalf("--until rolled-back: exit %d\n%s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "success=false") {
		t.Errorf("no failed EcuInstallationCompleted in the log:\n%s", out)
	}
	// ... and --until confirmed fails with the reason, exit 1.
	code, out, errs = runCLI(t, r.args(append(bad, "--until", "confirmed")...)...)
	if code != 1 || !strings.Contains(errs, "--until confirmed: the update rolled back") {
		t.Fatalf("--until confirmed on a rollback: exit %d, stderr %q\n%s", code, errs, out)
	}
	// A timeout is a failure too, with its reason.
	code, _, errs = runCLI(t, r.args("--until", "checkins:1000", "--timeout", "2s")...)
	if code != 1 || !strings.Contains(errs, "--until checkins:1000: timed out after 2s") {
		t.Errorf("timeout: exit %d, stderr %q", code, errs)
	}
}

func TestDeviceOfflineBundle(t *testing.T) {
	r := newDeviceRig(t)
	mustCLI(t, r.fx.gw("upload", signRTImage(t, r.fx.key, "1.0.0+1001"), "--hwid", rtHWID, "--tag", "devel")...)
	file := filepath.Join(t.TempDir(), "v1001.bundle")
	mustCLI(t, "bundle", "create", "--data", r.fx.data, "--tag", "devel", "--hwid", rtHWID, "-o", file)

	args := []string{"device", "--bundle", file, "--cert", r.cert, "--image-key", r.fx.key,
		"--factory-image", r.factory, "--instant-flash", "--timeout", "60s", "--until", "confirmed"}
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("offline update: exit %d\n%s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "confirm v1001") || strings.Contains(out, "connections") {
		t.Errorf("offline log:\n%s", out)
	}

	// A bundle whose firmware was altered is refused before the device
	// starts: the file names each member by its hash.
	data := readFile(t, file)
	img := readFile(t, signRTImage(t, r.fx.key, "1.0.0+1001"))
	i := strings.Index(string(data), string(img[0x400:0x440]))
	if i < 0 {
		t.Fatal("firmware not found in the bundle")
	}
	data[i+8] ^= 1
	tampered := filepath.Join(t.TempDir(), "tampered.bundle")
	os.WriteFile(tampered, data, 0o644)
	args[2] = tampered
	wantRefusal(t, 2, "--bundle "+tampered+": bundle: firmware/", args...)
}
