package tufrepo

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRenewSkipsOnlyWhatIsNotDue holds Renew's shortcut to the whole
// renewal over a year of a repository with two tags, one with a wave
// opened and closed now and then: whenever renewDue says nothing is due,
// the whole renewal signs nothing and warns of nothing; whenever it says
// something is, the renewal does sign.
func TestRenewSkipsOnlyWhatIsNotDue(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 3))
		r, _ := newTestRepo(t, Config{})
		addTarget(t, r, t0, hw, "1", "prod", "devel")
		now, skipped, signed, waves := t0, 0, 0, 0
		for now.Before(t0.Add(400 * 24 * time.Hour)) {
			now = now.Add(time.Duration(1+rng.IntN(36*60)) * time.Minute)
			switch _, open := r.st.waves["prod"]; {
			case !open && rng.IntN(8) == 0:
				waves++
				v := strconv.Itoa(100 + waves)
				if _, err := r.OpenWave(now, "prod", "w"+v, []Target{waveTarget(hw, v)}); err != nil {
					t.Fatal(err)
				}
			case open && rng.IntN(4) == 0:
				if _, err := r.CompleteWave(now, "prod", r.st.waves["prod"].name); err != nil {
					t.Fatal(err)
				}
			}
			r.mu.Lock()
			due := r.renewDue(now)
			before := r.st
			ws, err := r.renew(now)
			after := r.st
			r.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			changed := len(after.roots) != len(before.roots)
			for name, v := range after.views {
				changed = changed || before.views[name] != v
			}
			switch {
			case !due && (changed || len(ws) > 0):
				t.Fatalf("seed %d at %s: nothing due, yet renewing changed the repository (warnings %v)", seed, now, ws)
			case due && !changed:
				t.Fatalf("seed %d at %s: due, yet renewing changed nothing", seed, now)
			case due:
				signed++
			default:
				skipped++
			}
		}
		if skipped == 0 || signed == 0 {
			t.Fatalf("seed %d: %d renewals skipped, %d signed: the walk missed a case", seed, skipped, signed)
		}
	}
}

// countingFS counts the files created on it.
type countingFS struct {
	vfs.FS
	creates int
}

func (c *countingFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	c.creates++
	return c.FS.Create(name, cat)
}

// TestRenewNothingDueWritesNothing: a stored repository renewed when no
// role is due writes no file (the gateway renews every minute).
func TestRenewNothingDueWritesNothing(t *testing.T) {
	fsys := &countingFS{FS: vfs.NewMem()}
	setup, err := GenerateSetup(KeyEd25519, seeded(12))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := CreateFS(fsys, "repo", t0, Config{}, setup)
	if err != nil {
		t.Fatal(err)
	}
	addTarget(t, r, t0, hw, "1", "prod")
	n := fsys.creates
	if ws, err := r.Renew(t0.Add(time.Hour)); err != nil || len(ws) != 0 {
		t.Fatalf("Renew: %v %v", ws, err)
	}
	if fsys.creates != n {
		t.Fatalf("Renew with nothing due created %d files", fsys.creates-n)
	}
	if _, err := r.Renew(t0.Add(13 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if fsys.creates == n {
		t.Fatal("Renew of a due timestamp wrote nothing")
	}
}
