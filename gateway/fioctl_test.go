package gateway

import (
	"strings"
	"testing"
)

func TestMergeFioctl(t *testing.T) {
	for _, c := range []struct {
		name  string
		texts []string
		want  string
	}{
		{"one scope", []string{"[pacman]\ntags = \"main\"\n"}, "[pacman]\ntags = \"main\"\n"},
		{"device section replaces the factory's whole",
			[]string{"[pacman]\ntags = \"main\"\nextra = 1\n[other]\na = 1\n", "[pacman]\ntags = \"beta\"\n"},
			"[pacman]\ntags = \"beta\"\n[other]\na = 1\n"},
		{"sections of different scopes combine",
			[]string{"[a]\nx = 1\n", "[b]\ny = 2\n", "[c]\nz = 3"},
			"[a]\nx = 1\n[b]\ny = 2\n[c]\nz = 3"},
		{"headerless keys come first",
			[]string{"[a]\nx = 1\n", "top = true\n"},
			"top = true\n[a]\nx = 1\n"},
		{"headers with spaces and comments", []string{"[ pacman ] # the tag\ntags = \"x\"\n", "[pacman]\ntags = \"y\"\n"}, "[pacman]\ntags = \"y\"\n"},
		{"array tables stay in their section", []string{"[a]\n[[a.b]]\nx = 1\n", "[c]\n"}, "[a]\n[[a.b]]\nx = 1\n[c]\n"},
		{"empty", []string{"", ""}, ""},
	} {
		if got := mergeFioctl(c.texts); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// FuzzMergeFioctl: merging never panics, and a single scope's text comes
// back with the same lines (possibly reordered headerless keys first).
func FuzzMergeFioctl(f *testing.F) {
	f.Add("[pacman]\ntags = \"main\"\n", "[pacman]\ntags = \"beta\"\n[x]\n")
	f.Add("a = 1\n[b]\n", "[[c]]\n[")
	f.Fuzz(func(t *testing.T, a, b string) {
		mergeFioctl([]string{a, b})
		one := mergeFioctl([]string{a})
		if len(one) > len(a)+1 {
			t.Fatalf("merging one text grew it: %q -> %q", a, one)
		}
		for _, line := range strings.SplitAfter(one, "\n") {
			if line != "" && line != "\n" && !strings.Contains(a, strings.TrimSuffix(line, "\n")) {
				t.Fatalf("line %q is not in %q", line, a)
			}
		}
	})
}
