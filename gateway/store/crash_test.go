package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// crashChildEnv makes the test binary a crash-test writer: "<dir>|<round>".
const crashChildEnv = "FLEETSIM_STORE_CRASH_CHILD"

const crashWriters = 4 // concurrent writers in the child, one device each

// TestCrashLosesNoAcknowledgedEvent is the gateway's promise to devices: an
// event acknowledged after a durable Commit survives SIGKILL. A child process
// commits events and prints each acknowledgement after Commit returns; the
// parent kills it at a seeded point, reopens the store and looks for every
// acknowledged event, in order, once.
func TestCrashLosesNoAcknowledgedEvent(t *testing.T) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		crashChild(spec)
		return
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(4, 2026))
	acked := map[string][]string{} // device -> acknowledged ids, in order
	for round := range 3 {
		killAfter := 40 + rng.IntN(200)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLosesNoAcknowledgedEvent$", "-test.count=1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", crashChildEnv, dir, round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			uuid, id, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "ack "), " ")
			if !ok || !strings.HasPrefix(sc.Text(), "ack ") {
				continue
			}
			// Lines still arriving after the kill were acknowledged
			// before it.
			acked[uuid] = append(acked[uuid], id)
			if n++; n == killAfter {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
			}
		}
		_ = cmd.Wait()
		if n < killAfter {
			t.Fatalf("round %d: child stopped after %d acknowledgements, before the kill: %s", round, n, stderr.String())
		}
		s, err := Open(dir, Options{Sync: true})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		for uuid, want := range acked {
			ids := eventIDs(t, s, uuid)
			if d := slices.Compact(slices.Sorted(slices.Values(ids))); len(d) != len(ids) {
				t.Errorf("round %d: %s has duplicate events", round, uuid)
			}
			// Stored events may include ones committed but killed before
			// their acknowledgement was printed; the acknowledged ones
			// must all be there, in acknowledgement order.
			var got []string
			for _, id := range ids {
				if slices.Contains(want, id) {
					got = append(got, id)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("round %d: %s lost acknowledged events: stored %d of %d (first missing %q)",
					round, uuid, len(got), len(want), firstMissing(want, got))
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %d acknowledgements (%d read)", round, killAfter, n)
	}
}

func firstMissing(want, got []string) string {
	for _, id := range want {
		if !slices.Contains(got, id) {
			return id
		}
	}
	return ""
}

// crashChild writes durable event batches from crashWriters goroutines until
// it is killed, printing "ack <uuid> <id>" after each Commit returns.
func crashChild(spec string) {
	dir, roundStr, _ := strings.Cut(spec, "|")
	round, _ := strconv.Atoi(roundStr)
	s, err := Open(dir, Options{Sync: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uuid := fmt.Sprintf("dev-%d", w)
			for i := range 100_000 { // a bound in case nobody kills us
				id := fmt.Sprintf("r%d-%05d", round, i)
				ev := Event{ID: id, Type: "EcuDownloadStarted", ReceivedAt: at(i)}
				b := s.NewBatch()
				d := sampleDevice(uuid)
				d.LastSeen = at(i)
				b.PutDevice(d)
				b.PutEvent(uuid, ev)
				// Every other event is first committed without sync and
				// then retransmitted: the retransmission's durable commit
				// holds only a duplicate and must still sync before the
				// acknowledgement.
				retransmit := i%2 == 1
				err := b.Commit(!retransmit)
				b.Close()
				if err == nil && retransmit {
					b = s.NewBatch()
					if b.PutEvent(uuid, ev) {
						err = fmt.Errorf("retransmitted %s was added again", id)
					} else {
						err = b.Commit(true)
					}
					b.Close()
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "crash child:", err)
					os.Exit(3)
				}
				mu.Lock()
				_, _ = os.Stdout.WriteString("ack " + uuid + " " + id + "\n")
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	_ = s.Close()
}

// TestPowerLossKeepsDurableCommits crashes the machine rather than the
// process: pebble's crashable in-memory filesystem keeps what was fsynced and
// a seeded share of what was not. Every event of a durable commit, including
// one acknowledged as a duplicate of an unsynced commit, must survive; the
// store must reopen and keep numbering events after the survivors.
func TestPowerLossKeepsDurableCommits(t *testing.T) {
	for seed := range uint64(8) {
		rng := rand.New(rand.NewPCG(seed, 77))
		fs := vfs.NewCrashableMem()
		s, err := open("db", fs, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		var durable, all []string
		for i := range 60 {
			id := fmt.Sprintf("e%03d", i)
			all = append(all, id)
			b := s.NewBatch()
			b.PutEvent("dev-1", Event{ID: id})
			sync := rng.IntN(3) == 0
			if err := b.Commit(sync); err != nil {
				t.Fatal(err)
			}
			b.Close()
			if !sync && rng.IntN(4) == 0 {
				// The device retransmits; the gateway acknowledges it
				// after a durable commit holding only the duplicate.
				b = s.NewBatch()
				if b.PutEvent("dev-1", Event{ID: id}) {
					t.Fatal("retransmission added")
				}
				if err := b.Commit(true); err != nil {
					t.Fatal(err)
				}
				b.Close()
				sync = true
			}
			if sync {
				// Everything committed so far is durable now.
				durable = slices.Clone(all)
			}
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s, err = open("db", crashed, 1<<20, true)
		if err != nil {
			t.Fatalf("seed %d: reopen after power loss: %v", seed, err)
		}
		ids := eventIDs(t, s, "dev-1")
		if len(ids) < len(durable) || !slices.Equal(ids[:len(durable)], durable) || !slices.Equal(ids, all[:len(ids)]) {
			t.Errorf("seed %d: after power loss events are %q, want a prefix of all events holding the %d durable ones",
				seed, ids, len(durable))
		}
		b := s.NewBatch()
		b.PutEvent("dev-1", Event{ID: "after"})
		commit(t, b)
		if got := eventIDs(t, s, "dev-1"); len(got) != len(ids)+1 || got[len(ids)] != "after" {
			t.Errorf("seed %d: event after restart is not last: %q", seed, got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
