package rollout

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden transcripts in testdata/scenarios")

// TestScenarios replays the scripts in testdata/scenarios/*.txt and compares
// the transcript (each command and what it changed or reported) with the
// .golden file beside it. Regenerate with go test ./gateway/rollout -run
// TestScenarios -rewrite, and read the diff.
//
// Commands, one per line (# starts a comment):
//
//	fleet N                      N candidates dev-00000.., groups g0..g2, seen at t0
//	+DURATION                    advance the clock
//	tick                         Tick at the current time
//	create NAME TAG VERSION [max=N] [exp=BASE,FACTOR,notified|succeeded,N]
//	       [abort=TYPE,PERCENT,MIN]... [timeout=DURATION]
//	rollout WAVE [limit=N] [pct=P] [groups=a,b] [uuids=a,b] [dry]
//	event UUID TYPE CORR VERSION [fail]
//	complete WAVE | cancel WAVE
//	status WAVE | versions | served UUID
func TestScenarios(t *testing.T) {
	scripts, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, script := range scripts {
		t.Run(strings.TrimSuffix(filepath.Base(script), ".txt"), func(t *testing.T) {
			got := runScenario(t, script)
			golden := strings.TrimSuffix(script, ".txt") + ".golden"
			if *rewrite {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -rewrite to create it)", err)
			}
			if got != string(want) {
				t.Errorf("transcript differs from %s (run with -rewrite and read the diff):\n%s", golden, firstDiff(got, string(want)))
			}
		})
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got  %q\n want %q", i+1, gl, wl)
		}
	}
	return "(no difference)"
}

func runScenario(t *testing.T, path string) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out strings.Builder
	c := New()
	now := t0
	var cands []Candidate
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			out.WriteString(sc.Text() + "\n")
			continue
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%s:%d: %s", path, line, fmt.Sprintf(format, args...))
		}
		fields := strings.Fields(text)
		fmt.Fprintf(&out, "> %s\n", text)
		if strings.HasPrefix(fields[0], "+") {
			d, err := time.ParseDuration(fields[0][1:])
			if err != nil {
				fail("%v", err)
			}
			now = now.Add(d)
			continue
		}
		var ch Changes
		var opErr error
		switch fields[0] {
		case "fleet":
			n, err := strconv.Atoi(arg(fields, 1, fail))
			if err != nil {
				fail("%v", err)
			}
			cands = fleet(n)
			continue
		case "tick":
			ch = c.Tick(now)
		case "create":
			s := WaveSpec{Name: arg(fields, 1, fail), Tag: arg(fields, 2, fail)}
			v, err := strconv.ParseUint(arg(fields, 3, fail), 10, 32)
			if err != nil {
				fail("%v", err)
			}
			s.Version = uint32(v)
			s.Targets = []string{fmt.Sprintf("MIMXRT1060-EVK-v%d", v)}
			s.Policy = parsePolicy(fields[4:], fail)
			ch, opErr = c.CreateWave(now, s)
		case "rollout":
			sel := parseSelection(fields[2:], fail)
			var chosen []string
			chosen, ch, opErr = c.Rollout(now, arg(fields, 1, fail), sel, cands)
			if opErr == nil {
				fmt.Fprintf(&out, "  selected %d: %s\n", len(chosen), strings.Join(chosen, " "))
			}
		case "event":
			v, err := strconv.ParseUint(arg(fields, 4, fail), 10, 32)
			if err != nil {
				fail("%v", err)
			}
			e := Event{Type: arg(fields, 2, fail), CorrelationID: arg(fields, 3, fail), Version: uint32(v), Success: true}
			if len(fields) > 5 && fields[5] == "fail" {
				e.Success = false
			}
			ch = c.OnEvent(now, arg(fields, 1, fail), e)
		case "complete":
			ch, opErr = c.Complete(now, arg(fields, 1, fail))
		case "cancel":
			ch, opErr = c.Cancel(now, arg(fields, 1, fail))
		case "status":
			rep, err := c.WaveStatus(arg(fields, 1, fail))
			if err != nil {
				fmt.Fprintf(&out, "  error: %v\n", err)
				continue
			}
			fmt.Fprintf(&out, "  %s\n  %s\n", waveLine(rep.Wave), countsLine(rep.Counts, rep.Total))
			continue
		case "versions":
			for _, vr := range c.VersionStatus() {
				fmt.Fprintf(&out, "  v%d %s\n", vr.Version, countsLine(vr.Counts, vr.Total))
			}
			continue
		case "served":
			wave, tag := c.WaveFor(arg(fields, 1, fail))
			fmt.Fprintf(&out, "  wave=%q tag=%q\n", wave, tag)
			continue
		default:
			fail("unknown command %q", fields[0])
		}
		if opErr != nil {
			fmt.Fprintf(&out, "  error: %v\n", opErr)
		}
		writeChanges(&out, ch)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func arg(fields []string, i int, fail func(string, ...any)) string {
	if i >= len(fields) {
		fail("%s: missing argument %d", fields[0], i)
	}
	return fields[i]
}

func parsePolicy(opts []string, fail func(string, ...any)) Policy {
	var p Policy
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		parts := strings.Split(v, ",")
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				fail("%s: %v", o, err)
			}
			return n
		}
		atof := func(s string) float64 {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				fail("%s: %v", o, err)
			}
			return x
		}
		switch {
		case k == "max":
			p.MaxPerMinute = atoi(v)
		case k == "exp" && len(parts) == 4:
			e := &ExponentialRate{BaseRatePerMinute: atoi(parts[0]), IncrementFactor: atof(parts[1])}
			if parts[2] == "succeeded" {
				e.SucceededThings = atoi(parts[3])
			} else {
				e.NotifiedThings = atoi(parts[3])
			}
			p.Exponential = e
		case k == "abort" && len(parts) == 3:
			p.Abort = append(p.Abort, AbortCriterion{FailureType: FailureType(parts[0]), ThresholdPercent: atof(parts[1]), MinExecuted: atoi(parts[2])})
		case k == "timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				fail("%s: %v", o, err)
			}
			p.InProgressTimeout = d
		default:
			fail("unknown policy option %q", o)
		}
	}
	return p
}

func parseSelection(opts []string, fail func(string, ...any)) Selection {
	var s Selection
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		var err error
		switch k {
		case "limit":
			s.Limit, err = strconv.Atoi(v)
		case "pct":
			s.Percentage, err = strconv.ParseFloat(v, 64)
		case "groups":
			s.Groups = strings.Split(v, ",")
		case "uuids":
			s.UUIDs = strings.Split(v, ",")
		case "dry":
			s.DryRun = true
		default:
			fail("unknown selection option %q", o)
		}
		if err != nil {
			fail("%s: %v", o, err)
		}
	}
	return s
}

// rel prints a time as the offset from t0 ("-" for the zero time).
func rel(x time.Time) string {
	if x.IsZero() {
		return "-"
	}
	return "+" + x.Sub(t0).String()
}

func waveLine(w Wave) string {
	s := fmt.Sprintf("wave %s tag=%s v%d %s scheduled=%d released=%d", w.Name, w.Tag, w.Version, w.Status, w.Scheduled, w.Released)
	if w.Rate != 0 {
		s += fmt.Sprintf(" rate=%g", w.Rate)
	}
	if w.Tokens != 0 {
		s += fmt.Sprintf(" tokens=%.3f", w.Tokens)
	}
	if !w.EndedAt.IsZero() {
		s += " ended=" + rel(w.EndedAt)
	}
	if w.Reason != "" {
		s += fmt.Sprintf(" reason=%q", w.Reason)
	}
	return s
}

func countsLine(counts map[State]int, total int) string {
	var parts []string
	for _, s := range States {
		if counts[s] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", s, counts[s]))
		}
	}
	return fmt.Sprintf("total=%d %s", total, strings.Join(parts, " "))
}

func writeChanges(out *strings.Builder, ch Changes) {
	for _, w := range ch.Waves {
		fmt.Fprintf(out, "  %s\n", waveLine(w))
	}
	for _, m := range ch.Members {
		fmt.Fprintf(out, "  member %s#%d %s %s", m.Wave, m.Seq, m.UUID, m.State)
		if m.CorrelationID != "" {
			fmt.Fprintf(out, " corr=%s", m.CorrelationID)
		}
		fmt.Fprintf(out, " released=%s started=%s finished=%s\n", rel(m.ReleasedAt), rel(m.StartedAt), rel(m.FinishedAt))
	}
	for _, u := range ch.Updates {
		fmt.Fprintf(out, "  update %s v%d %s corr=%s\n", u.UUID, u.Version, u.State, u.CorrelationID)
	}
	for _, w := range ch.Ended {
		fmt.Fprintf(out, "  ended %s %s\n", w.Name, w.Status)
	}
}
