package scenarios_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fleetsim/fleetsim/scenarios"
)

// FuzzParse: Parse never panics; its errors are one line, an *Error with
// the file and a line; what it accepts passes Validate, and reads back the
// same after printing it as JSON (which is YAML too). JSON rather than YAML
// because yaml.v3's printer mangles some block scalars (a description
// starting with a newline comes back without it).
func FuzzParse(f *testing.F) {
	for _, e := range scenarios.Builtin() {
		f.Add(e.Data)
	}
	for _, s := range []string{
		good,
		"",
		"- a\n",
		"fleet: [{count: 1, board: rt1060, firmware: {1001: hangs, default: healthy}}]\nrollout: {versions: [1001]}\n",
		"fleet:\n  - &a {count: 1, board: k64f}\n  - {<<: [*a], name: b}\nrollout: {versions: [1, 2], at: 1h}\n",
		"fleet:\n  - &a {<<: *a}\n",
		"a: &x [*x, *x]\n",
		"expect: {updated: [\"rate>=0.9\"]}\n",
		"duration: 1d\nfaults: [{kind: gateway-outage, at: 1h, for: 30m}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scenarios.Parse("f.yaml", data)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "f.yaml:") {
				t.Fatalf("error is not one line starting with the file: %q", msg)
			}
			var e *scenarios.Error
			if !errors.As(err, &e) || e.File != "f.yaml" || e.Line < 1 || e.Line > maxLine(data) {
				t.Fatalf("error %#v has no file or a line outside the file", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted what Validate refuses: %v", err)
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		back, err := scenarios.Parse("printed.json", out)
		if err != nil {
			t.Fatalf("Parse refuses the scenario printed as JSON: %v\n%s", err, out)
		}
		if again, _ := json.Marshal(back); !bytes.Equal(again, out) {
			t.Fatalf("printed and read back, the scenario changed:\n%s\nthen\n%s", out, again)
		}
	})
}

// maxLine bounds the lines of data, whichever of YAML's line breaks (LF,
// CR, CR LF, NEL, LS, PS) it uses.
func maxLine(data []byte) int {
	n := 1
	for _, brk := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		n += bytes.Count(data, []byte(brk))
	}
	return n
}
