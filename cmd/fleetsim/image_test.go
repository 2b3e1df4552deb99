package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/devicemodel/mcuboot/image"
)

// vectors holds the imgtool-made images and keys of the image package.
const vectors = "../../devicemodel/mcuboot/image/testdata/imgtool"

func vec(name string) string { return filepath.Join(vectors, name) }

// runCLI runs fleetsim with args and returns exit code, stdout and stderr.
// A stack trace on stderr fails the test whatever the exit code.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	if strings.Contains(errOut.String(), "goroutine ") || strings.Contains(errOut.String(), "panic") {
		t.Fatalf("%v: stack trace on stderr:\n%s", args, errOut.String())
	}
	return code, out.String(), errOut.String()
}

// mustCLI runs fleetsim and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

// wantRefusal runs fleetsim and checks the exit code and a single
// "fleetsim: ..." line on stderr containing want.
func wantRefusal(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	got, _, errs := runCLI(t, args...)
	if got != code {
		t.Errorf("%v: exit %d, want %d (stderr %q)", args, got, code, errs)
	}
	line := strings.TrimSuffix(errs, "\n")
	if strings.Contains(line, "\n") || !strings.HasPrefix(line, "fleetsim: ") || !strings.Contains(line, want) {
		t.Errorf("%v: stderr %q, want one line \"fleetsim: ...%s...\"", args, errs, want)
	}
}

// wantFail checks the exit code and that stderr is one "fleetsim: " line
// mentioning want.
func wantFail(t *testing.T, code int, stderr string, wantCode int, want string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d (stderr %q)", code, wantCode, stderr)
	}
	if !strings.HasPrefix(stderr, "fleetsim: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line: %q", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not mention %q", stderr, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var vectorFlags = []string{"-H", "0x200", "--pad-header", "-S", "0x20000", "--align", "8"}

func TestImageSignMatchesImgtool(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		want string
		args []string
	}{
		{"ed25519-20k-v1.0.0.bin", []string{"-k", vec("ed25519.pem"), "-v", "1.0.0", vec("payload-20k.bin")}},
		{"ed25519-100k-v1.1.0-pad-confirm.bin", []string{"--key", vec("ed25519.pem"), "--version", "1.1", "--confirm", vec("payload-100k.bin")}},
		{"unsigned-20k-v1.0.0.bin", []string{"-v", "1", vec("payload-20k.bin")}},
	}
	for _, c := range cases {
		out := filepath.Join(dir, c.want)
		args := append(append(append([]string{"image", "sign"}, vectorFlags...), c.args...), out)
		if code, _, stderr := runCLI(t, args...); code != 0 {
			t.Fatalf("%s: exit %d: %s", c.want, code, stderr)
		}
		if !bytes.Equal(readFile(t, out), readFile(t, vec(c.want))) {
			t.Errorf("%s: output differs from imgtool's", c.want)
		}
	}
}

// TestImageSignOptions signs with ECDSA, a security counter, dependencies
// and a load address (decimal sizes this time), then reads them back with
// info --json and checks verify.
func TestImageSignOptions(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "app.bin")
	code, _, stderr := runCLI(t, "image", "sign", "-k", vec("ecdsa-p256.pem"), "-v", "2.3.4+5", "-H", "512", "--pad-header",
		"-S", "131072", "-s", "auto", "-d", "(1,1.2.3+0), (2, 0.1)", "-L", "0x20008000", "--max-align", "16", "--align", "4", "--pad",
		vec("payload-20k.bin"), out)
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, stderr)
	}
	code, stdout, stderr := runCLI(t, "image", "info", "--json", out)
	if code != 0 {
		t.Fatalf("info: exit %d: %s", code, stderr)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatalf("info --json: %v\n%s", err, stdout)
	}
	h := info["header"].(map[string]any)
	if h["version"] != "2.3.4+5" || h["load_addr"] != float64(0x20008000) || h["flags"] != float64(image.FlagRAMLoad) ||
		h["protect_tlv_size"] != float64(4+8+2*16) || h["magic"] != "0x96f3b83d" {
		t.Errorf("header %v", h)
	}
	if info["security_counter"] != float64(2<<24|3<<16|4) {
		t.Errorf("security_counter %v", info["security_counter"])
	}
	deps := info["dependencies"].([]any)
	if len(deps) != 2 || deps[1].(map[string]any)["min_version"] != "0.1.0+0" || deps[0].(map[string]any)["image_id"] != float64(1) {
		t.Errorf("dependencies %v", deps)
	}
	tlvs := info["tlvs"].([]any)
	names := []string{}
	for _, tl := range tlvs {
		names = append(names, tl.(map[string]any)["name"].(string))
	}
	if strings.Join(names, ",") != "SEC_CNT,DEPENDENCY,DEPENDENCY,SHA256,KEYHASH,ECDSA_SIG" {
		t.Errorf("TLV order %v", names)
	}
	if info["hash_ok"] != true || info["file_size"] != float64(131072) {
		t.Errorf("hash_ok %v file_size %v", info["hash_ok"], info["file_size"])
	}
	tr := info["trailer"].(map[string]any)
	if tr["magic"] != "good" || tr["max_align"] != float64(16) || tr["image_ok"] != "unset" || tr["magic_offset"] != float64(131072-16) {
		t.Errorf("trailer %v", tr)
	}
	if code, stdout, stderr := runCLI(t, "image", "verify", "-k", vec("ecdsa-p256.pub.pem"), out); code != 0 || !strings.Contains(stdout, "valid image 2.3.4+5") {
		t.Errorf("verify: exit %d %q %q", code, stdout, stderr)
	}
}

func TestImageVerify(t *testing.T) {
	dir := t.TempDir()
	good := vec("ecdsa-20k-v1.1.0-pad-confirm.bin")
	img := readFile(t, vec("ed25519-20k-v1.0.0.bin"))
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := bytes.Clone(img)
	flipped[5000] ^= 1
	badSig := bytes.Clone(img)
	badSig[len(badSig)-1] ^= 1
	badKey := write("bad.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))

	// Valid: public key, private key, several keys, no key.
	for _, args := range [][]string{
		{"-k", vec("ecdsa-p256.pub.pem"), good},
		{"-k", vec("ecdsa-p256.pem"), good},
		{"-k", vec("ed25519.pub.pem"), "--key", vec("ecdsa-p256.pub.pem"), good},
		{vec("unsigned-20k-v1.0.0.bin")},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"image", "verify"}, args...)...)
		if code != 0 || !strings.Contains(stdout, "valid image") || stderr != "" {
			t.Errorf("verify %v: exit %d, %q, %q", args, code, stdout, stderr)
		}
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong key", []string{"-k", vec("ecdsa-p256.pub.pem"), vec("ed25519-20k-v1.0.0.bin")}, "no signature made by a known key"},
		{"flipped payload", []string{"-k", vec("ed25519.pub.pem"), write("flipped.bin", flipped)}, "image hash mismatch"},
		{"flipped signature", []string{"-k", vec("ed25519.pub.pem"), write("badsig.bin", badSig)}, "bad signature"},
		{"truncated image", []string{"-k", vec("ed25519.pub.pem"), write("short.bin", img[:len(img)-10])}, "truncated?"},
		{"truncated header", []string{"-k", vec("ed25519.pub.pem"), write("hdr.bin", img[:16])}, "image too large"},
		{"erased slot", []string{write("erased.bin", bytes.Repeat([]byte{0xff}, 4096))}, "no image"},
		{"missing image", []string{"-k", vec("ed25519.pub.pem"), filepath.Join(dir, "nope.bin")}, "no such file"},
		{"missing key", []string{"-k", filepath.Join(dir, "nope.pem"), good}, "no such file"},
		{"malformed key", []string{"-k", badKey, good}, "malformed key"},
		{"payload is not a key", []string{"-k", vec("payload-20k.bin"), good}, "no PEM block"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"image", "verify"}, c.args...)...)
			wantFail(t, code, stderr, 1, c.want)
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
		})
	}
	// Usage errors are not answers about the image: exit 2.
	code, _, stderr := runCLI(t, "image", "verify")
	wantFail(t, code, stderr, 2, "accepts 1 arg")
}

func TestImageSignErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.bin")
	badKey := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(badKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"image", "sign", "-v", "1.0.0", "-H", "0x200", "--pad-header", "-S", "0x20000"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing input", []string{filepath.Join(dir, "nope.bin"), out}, "no such file"},
		{"malformed key", []string{"-k", badKey, vec("payload-20k.bin"), out}, "malformed key"},
		{"missing key", []string{"-k", filepath.Join(dir, "nope.pem"), vec("payload-20k.bin"), out}, "no such file"},
		{"too large for the slot", []string{"-S", "0x5000", vec("payload-20k.bin"), out}, "exceeds requested size 0x5000"},
		{"bad align", []string{"--align", "3", vec("payload-20k.bin"), out}, "--align 3"},
		{"bad max-align", []string{"--max-align", "4", vec("payload-20k.bin"), out}, "--max-align 4"},
		{"bad version", []string{"-v", "1.2.3.4", vec("payload-20k.bin"), out}, "invalid version"},
		{"bad size", []string{"-S", "lots", vec("payload-20k.bin"), out}, "--slot-size"},
		{"octal-looking size", []string{"-H", "0200", vec("payload-20k.bin"), out}, "cannot start with 0"},
		{"bad erased value", []string{"-R", "0x55", vec("payload-20k.bin"), out}, "--erased-val"},
		{"bad security counter", []string{"-s", "soon", vec("payload-20k.bin"), out}, "--security-counter"},
		{"bad dependencies", []string{"-d", "1,1.0", vec("payload-20k.bin"), out}, "--dependencies"},
		{"bad load address", []string{"-L", "0x100000000", vec("payload-20k.bin"), out}, "--load-addr"},
		{"missing outfile", []string{vec("payload-20k.bin")}, "accepts 2 arg"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, append(append([]string{}, base...), c.args...)...)
			wantFail(t, code, stderr, 2, c.want)
		})
	}
	code, _, stderr := runCLI(t, "image", "sign", "-H", "0x200", "-S", "0x20000", vec("payload-20k.bin"), out)
	wantFail(t, code, stderr, 2, `"version" not set`)
	// Without --pad-header the header region must be zeros.
	code, _, stderr = runCLI(t, "image", "sign", "-v", "1", "-H", "0x200", "-S", "0x20000", vec("payload-20k.bin"), out)
	wantFail(t, code, stderr, 2, "must be zero")
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed sign left %s behind", out)
	}
}

func TestImageInfo(t *testing.T) {
	code, stdout, stderr := runCLI(t, "image", "info", vec("ecdsa-20k-v1.2.3+4-seccnt5.bin"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"version:       1.2.3+4", "SEC_CNT", "security counter: 5",
		"aef801427aa085261106dcd6fac29247788c82b307e94a61053997b2818f983e over [0, 0x520c): matches"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("info output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCLI(t, "image", "info", "--json", vec("ed25519-100k-v1.1.0-pad-confirm.bin"))
	var info imageInfo
	if err := json.Unmarshal([]byte(stdout), &info); err != nil || code != 0 {
		t.Fatalf("exit %d, %v", code, err)
	}
	if info.Trailer == nil || info.Trailer.ImageOK != "set" || info.Trailer.Magic != "good" || info.ImageEnd != 103056 ||
		info.HashedRange != [2]int64{0, 102912} || len(info.TLVs) != 3 || info.TLVs[2].Name != "ED25519" || info.TLVs[2].Offset != 102992 {
		t.Errorf("info %+v", info)
	}
	// A tampered payload still parses; info reports the mismatch.
	dir := t.TempDir()
	img := readFile(t, vec("unsigned-20k-v1.0.0.bin"))
	img[600] ^= 1
	bad := filepath.Join(dir, "bad.bin")
	_ = os.WriteFile(bad, img, 0o644)
	if code, stdout, _ := runCLI(t, "image", "info", bad); code != 0 || !strings.Contains(stdout, "DOES NOT match") {
		t.Errorf("tampered image: exit %d\n%s", code, stdout)
	}
	trunc := filepath.Join(dir, "trunc.bin")
	_ = os.WriteFile(trunc, img[:1000], 0o644)
	code, _, stderr = runCLI(t, "image", "info", trunc)
	wantFail(t, code, stderr, 2, "image too large")
	code, _, stderr = runCLI(t, "image", "info", filepath.Join(dir, "nope.bin"))
	wantFail(t, code, stderr, 2, "no such file")
}

func TestImageKeygenAndGetpub(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"ecdsa-p256", "ed25519", "rsa-2048"} {
		key := filepath.Join(dir, kind+".pem")
		if code, _, stderr := runCLI(t, "image", "keygen", "-k", key, "-t", kind); code != 0 {
			t.Fatalf("keygen %s: %s", kind, stderr)
		}
		if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key file %v, %v", st, err)
		}
		pubFile := filepath.Join(dir, kind+".pub.pem")
		if code, _, stderr := runCLI(t, "image", "getpub", "-k", key, "-o", pubFile); code != 0 {
			t.Fatalf("getpub: %s", stderr)
		}
		img := filepath.Join(dir, kind+".bin")
		if code, _, stderr := runCLI(t, append(append([]string{"image", "sign", "-k", key, "-v", "1.0.0"}, vectorFlags...),
			vec("payload-20k.bin"), img)...); code != 0 {
			t.Fatalf("sign: %s", stderr)
		}
		if code, _, stderr := runCLI(t, "image", "verify", "-k", pubFile, img); code != 0 {
			t.Errorf("verify with the generated key: %s", stderr)
		}
		// An existing key is never overwritten.
		code, _, stderr := runCLI(t, "image", "keygen", "-k", key, "-t", kind)
		wantFail(t, code, stderr, 2, "exists")
	}
	code, _, stderr := runCLI(t, "image", "keygen", "-k", filepath.Join(dir, "x.pem"), "-t", "rsa-1024")
	wantFail(t, code, stderr, 2, "unsupported key")

	code, stdout, _ := runCLI(t, "image", "getpub", "-k", vec("ecdsa-p256.pem"))
	if code != 0 || stdout != string(readFile(t, vec("ecdsa-p256.pub.pem"))) {
		t.Errorf("getpub -e pem differs from imgtool's:\n%s", stdout)
	}
	code, stdout, _ = runCLI(t, "image", "getpub", "-k", vec("ed25519.pem"), "-e", "raw")
	if code != 0 || stdout != string(readFile(t, vec("ed25519.pub.der"))) {
		t.Errorf("getpub -e raw differs from imgtool's")
	}
	code, _, stderr = runCLI(t, "image", "getpub", "-k", vec("ed25519.pem"), "-e", "lang-c")
	wantFail(t, code, stderr, 2, "want pem or raw")
	code, _, stderr = runCLI(t, "image", "getpub", "-k", vec("payload-20k.bin"))
	wantFail(t, code, stderr, 2, "malformed key")
}

func TestImageHelp(t *testing.T) {
	for _, sub := range []string{"keygen", "sign", "verify", "info", "getpub"} {
		code, stdout, _ := runCLI(t, "image", sub, "--help")
		if code != 0 || !strings.Contains(stdout, "Usage:") || len(stdout) < 200 {
			t.Errorf("image %s --help: exit %d\n%s", sub, code, stdout)
		}
	}
	code, stdout, _ := runCLI(t, "image", "--help")
	for _, sub := range []string{"keygen", "sign", "verify", "info", "getpub"} {
		if code != 0 || !strings.Contains(stdout, sub) {
			t.Errorf("image --help does not list %s", sub)
		}
	}
}

// TestImageInfoShortTrailer: a file that ends a few bytes after the image
// has no room for a trailer; info --json says "none" (a documented value)
// rather than guessing, and the text output says why.
func TestImageInfoShortTrailer(t *testing.T) {
	img := readFile(t, vec("unsigned-20k-v1.0.0.bin"))
	dir := t.TempDir()
	for _, c := range []struct {
		tail             int
		magic, imageOK   string
		textMentionsNone bool
	}{
		{8, "none", "none", true},     // no room for the magic
		{20, "unset", "none", false},  // room for the magic, image_ok would overlap the image
		{64, "unset", "unset", false}, // room for both
	} {
		p := filepath.Join(dir, fmt.Sprintf("tail%d.bin", c.tail))
		if err := os.WriteFile(p, append(bytes.Clone(img), bytes.Repeat([]byte{0xff}, c.tail)...), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCLI(t, "image", "info", "--json", p)
		var info imageInfo
		if err := json.Unmarshal([]byte(stdout), &info); err != nil || code != 0 {
			t.Fatalf("tail %d: exit %d, %v, %s", c.tail, code, err, stderr)
		}
		if tr := info.Trailer; tr == nil || tr.Magic != c.magic || tr.ImageOK != c.imageOK {
			t.Errorf("tail %d: trailer %+v, want magic %q image_ok %q", c.tail, info.Trailer, c.magic, c.imageOK)
		}
		_, stdout, _ = runCLI(t, "image", "info", p)
		if got := strings.Contains(stdout, "trailer:       none"); got != c.textMentionsNone {
			t.Errorf("tail %d: text output says trailer none: %v\n%s", c.tail, got, stdout)
		}
	}
}

func TestParseDependencies(t *testing.T) {
	deps, err := parseDependencies(" (1,1.2.3+4) ,(255, 0.1)")
	if err != nil {
		t.Fatal(err)
	}
	want := []image.Dependency{{ImageID: 1, MinVersion: image.Version{Major: 1, Minor: 2, Revision: 3, Build: 4}},
		{ImageID: 255, MinVersion: image.Version{Minor: 1}}}
	if len(deps) != len(want) || deps[0] != want[0] || deps[1] != want[1] {
		t.Errorf("parseDependencies = %+v, want %+v", deps, want)
	}
	for _, bad := range []string{"", "(1,1.0)(2,1.0)", "(1,1.0),", "(256,1.0)", "(1,1.2.3.4)", "(-1,1.0)", "(1)"} {
		if deps, err := parseDependencies(bad); err == nil || !strings.HasPrefix(err.Error(), "--dependencies") {
			t.Errorf("parseDependencies(%q) = %+v, %v; want a --dependencies error", bad, deps, err)
		}
	}
}
