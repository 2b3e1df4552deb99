package devicetest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleetsim/fleetsim/agent"
	"github.com/fleetsim/fleetsim/devicemodel"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden traces in testdata/")

// Golden traces: single-device scenarios in virtual time, each logged step
// with its virtual time, compared byte for byte with testdata/<name>.trace.
// A change in the agent's or the bootloader's behaviour shows as a diff;
// accept it with -rewrite. Running each scenario twice also checks that
// the same seed gives the same trace.

func TestGoldenTraces(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*devicemodel.ModelConfig)
		stop func(devicemodel.Event) bool
	}{
		{"update", nil, func(e devicemodel.Event) bool {
			return eventSent(e, agent.EventInstallationCompleted, true) && e.Note.Version == 1001
		}},
		{"self-test-fails", func(c *devicemodel.ModelConfig) {
			c.Profiles.ByVersion = map[uint32]devicemodel.Behaviour{1001: devicemodel.FailsSelfTest}
		}, func(e devicemodel.Event) bool { return eventSent(e, agent.EventInstallationCompleted, false) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := goldenTrace(t, c.edit, c.stop)
			if again := goldenTrace(t, c.edit, c.stop); again != got {
				t.Fatalf("the same seed gave two traces:\n%s\n---\n%s", got, again)
			}
			path := filepath.Join("testdata", c.name+".trace")
			if *rewrite {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if string(want) != got {
				t.Errorf("trace differs from %s (accept with -rewrite):\n%s", path, firstDiff(string(want), got))
			}
		})
	}
}

// goldenTrace runs the update scenario in virtual time until stop and
// returns its log.
func goldenTrace(t *testing.T, edit func(*devicemodel.ModelConfig), stop func(devicemodel.Event) bool) string {
	r, d, _ := updateRig(t, modes[0], RigOptions{}, edit)
	var b strings.Builder
	d.Log = func(e devicemodel.Event) {
		fmt.Fprintf(&b, "%10.3fs %s\n", r.Virtual.Now().Sub(Epoch).Seconds(), e)
	}
	if err := r.Run(d, 30*time.Minute, stop); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// firstDiff shows the first line where two traces part.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, wl, gl)
		}
	}
	return ""
}
