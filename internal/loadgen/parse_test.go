package loadgen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseIndex(t *testing.T) {
	got, err := ParseIndex([]byte("# devices\n\n a-1 production\nb_2\ttest\r\nc.3 test"))
	if err != nil {
		t.Fatal(err)
	}
	want := []IndexEntry{{"a-1", true}, {"b_2", false}, {"c.3", false}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for _, bad := range []string{
		"a production extra",
		"a",
		"a staging",
		"../etc/passwd test",
		".hidden test",
		"a/b test",
		"a test\na production",
		strings.Repeat("x", 129) + " test",
		"a\x00 test",
	} {
		if _, err := ParseIndex([]byte(bad)); !errors.Is(err, ErrIndex) {
			t.Errorf("ParseIndex(%q) = %v, want ErrIndex", bad, err)
		}
	}
}

func TestLoadDevices(t *testing.T) {
	p := newTestPKI(t, []string{"d1", "d2", "d3"})
	devs, err := LoadDevices(p.deviceDir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 || devs[0].UUID != "d1" || !devs[0].Production || devs[1].Production || devs[1].Cert.Leaf.Subject.CommonName != "d2" {
		t.Fatalf("got %+v", devs)
	}
	// A PEM issued to another device is refused: the gateway would see a
	// different identity than the index promises.
	other, _ := os.ReadFile(filepath.Join(p.deviceDir, "d1.pem"))
	if err := os.WriteFile(filepath.Join(p.deviceDir, "d2.pem"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDevices(p.deviceDir, 0); !errors.Is(err, ErrDeviceCert) {
		t.Fatalf("swapped certificate: %v, want ErrDeviceCert", err)
	}
	if err := os.WriteFile(filepath.Join(p.deviceDir, "d2.pem"), other[:len(other)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDevices(p.deviceDir, 0); !errors.Is(err, ErrDeviceCert) {
		t.Fatalf("truncated PEM: %v, want ErrDeviceCert", err)
	}
	os.Remove(filepath.Join(p.deviceDir, "d1.pem"))
	if _, err := LoadDevices(p.deviceDir, 0); !errors.Is(err, ErrDeviceCert) {
		t.Fatalf("missing PEM: %v, want ErrDeviceCert", err)
	}
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, IndexFile), []byte("# nobody\n"), 0o644)
	if _, err := LoadDevices(empty, 0); !errors.Is(err, ErrNoDevices) {
		t.Fatalf("empty index: %v, want ErrNoDevices", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for in, want := range map[string]ContentRange{
		"bytes 0-16383/1048576":         {0, 16383, 1048576},
		"bytes 1032192-1048575/1048576": {1032192, 1048575, 1048576},
		"bytes 0-0/1":                   {0, 0, 1},
		"bytes 5-9/*":                   {5, 9, -1},
	} {
		got, err := ParseContentRange(in)
		if err != nil || got != want {
			t.Errorf("ParseContentRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{
		"", "bytes", "bytes */100", "bytes 0-9", "bytes 9-0/100", "bytes 0-100/100", "bytes +1-5/100",
		"bytes -1-5/100", "items 0-1/2", "bytes 0-1/", "bytes 0- 1/2", "bytes 0-99999999999999999999/1",
		"Bytes 0-1/2", "bytes 0-1/2/3",
	} {
		if _, err := ParseContentRange(bad); !errors.Is(err, ErrContentRange) {
			t.Errorf("ParseContentRange(%q): %v, want ErrContentRange", bad, err)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-16383/1048576", "bytes 5-9/*", "bytes */100", "bytes 9-0/1", "bytes 1-2/3/4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := ParseContentRange(s)
		if err != nil {
			if !errors.Is(err, ErrContentRange) {
				t.Fatalf("error %v does not wrap ErrContentRange", err)
			}
			return
		}
		if cr.First < 0 || cr.Last < cr.First || (cr.Complete != -1 && cr.Last >= cr.Complete) {
			t.Fatalf("%q accepted as %+v", s, cr)
		}
	})
}

func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{"a-1 production\nb test\n", "# c\n\n", "a test\na test", "x y z", ".a test"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseIndex(data)
		if err != nil {
			if !errors.Is(err, ErrIndex) {
				t.Fatalf("error %v does not wrap ErrIndex", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !validUUID(e.UUID) || seen[e.UUID] || strings.ContainsAny(e.UUID, "/\\") {
				t.Fatalf("accepted unusable or repeated UUID %q", e.UUID)
			}
			seen[e.UUID] = true
		}
	})
}
