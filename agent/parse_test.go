package agent

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// The parsers of what the gateway sends (/config, targets.json) read
// untrusted bytes: table tests pin aknano's behaviour, fuzz targets check
// they never panic and keep their bounds.

func configBody(fioctl, poll string) []byte {
	var parts []string
	if fioctl != "" {
		parts = append(parts, `"z-50-fioctl.toml":{"Value":"`+fioctl+`","OnChanged":["/usr/share/fioconfig/handlers/aktualizr-toml-update"]}`)
	}
	if poll != "" {
		parts = append(parts, `"polling_interval":{"Value":"`+poll+`"}`)
	}
	return []byte("{" + strings.Join(parts, ",") + "}")
}

func TestParseDeviceConfig(t *testing.T) {
	for _, c := range []struct {
		name     string
		body     []byte
		tag      string
		poll     int
		hasPoll  bool
		problems int
	}{
		{"tag", configBody(`\n[pacman]\ntags = \"main\"\n`, ""), "main", 0, false, 0},
		{"a list is one tag to aknano", configBody(`[pacman]\ntags = \"main,devel\"\n`, ""), "main,devel", 0, false, 0},
		{"tag in another section", configBody(`[other]\ntags = \"main\"\n`, ""), "", 0, false, 0},
		{"poll interval", configBody("", "30"), "", 30, true, 0},
		{"poll interval with trailing text", configBody("", "45s"), "", 45, true, 0},
		{"bad poll interval", configBody("", "soon"), "", 0, false, 1},
		{"not JSON", []byte(`{"polling_interval":`), "", 0, false, 1},
		{"oversized fioctl", configBody(`[pacman]\ntags = \"`+strings.Repeat("x", 250)+`\"\n`, ""), "", 0, false, 1},
		{"empty", []byte(`{}`), "", 0, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ParseDeviceConfig(c.body)
			if got.Tag != c.tag || got.PollInterval != c.poll || got.HasPollInterval != c.hasPoll || len(got.Problems) != c.problems {
				t.Errorf("ParseDeviceConfig(%s) = %+v", c.body, got)
			}
		})
	}
}

func targetsBody(entries ...string) []byte {
	return []byte(`{"signatures":[],"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00Z","version":3,"targets":{` +
		strings.Join(entries, ",") + `}}}`)
}

func targetEntry(name, version, hwid, tag, sha string, length int) string {
	l := ""
	if length >= 0 {
		l = `"length":` + strconv.Itoa(length) + `,`
	}
	return `"` + name + `":{` + l + `"hashes":{"sha256":"` + sha + `"},"custom":{"version":"` + version +
		`","hardwareIds":["` + hwid + `"],"tags":["` + tag + `"]}}`
}

var sha1, sha2 = strings.Repeat("ab", 32), strings.Repeat("cd", 32)

func TestSelectTarget(t *testing.T) {
	for _, c := range []struct {
		name    string
		body    []byte
		exact   bool
		version uint32
		walked  int
	}{
		{"highest version", targetsBody(targetEntry("b-v5", "5", "board", "main", sha1, 10), targetEntry("b-v7", "7", "board", "main", sha2, 20)), false, 7, 2},
		{"other tag", targetsBody(targetEntry("b-v5", "5", "board", "devel", sha1, 10)), false, 0, 1},
		{"other board", targetsBody(targetEntry("x-v5", "5", "other", "main", sha1, 10)), false, 0, 1},
		{"prefix entry matches", targetsBody(targetEntry("b-v5", "5", "bo", "ma", sha1, 10)), false, 5, 1},
		{"prefix entry refused when exact", targetsBody(targetEntry("b-v5", "5", "bo", "ma", sha1, 10)), true, 0, 1},
		{"no length skipped", targetsBody(targetEntry("b-v5", "5", "board", "main", sha1, -1), targetEntry("b-v4", "4", "board", "main", sha2, 10)), false, 4, 2},
		{"bad sha stops the walk", targetsBody(targetEntry("b-v4", "4", "board", "main", sha1, 10), targetEntry("b-v5", "5", "board", "main", "zz", 10), targetEntry("b-v9", "9", "board", "main", sha2, 10)), false, 4, 2},
		{"version with trailing text", targetsBody(targetEntry("b-v5", "5-rc1", "board", "main", sha1, 10)), false, 5, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, walked, err := SelectTarget(c.body, "board", "main", c.exact)
			if err != nil || got.Version != c.version || walked != c.walked {
				t.Errorf("SelectTarget = v%d walked %d, %v; want v%d walked %d\n%s", got.Version, walked, err, c.version, c.walked, c.body)
			}
		})
	}
	for _, bad := range [][]byte{[]byte(`{"signed":`), []byte(`[]`), []byte(`{"signatures":[]}`)} {
		if _, _, err := SelectTarget(bad, "board", "main", false); !errors.Is(err, ErrTargets) {
			t.Errorf("SelectTarget(%s) = %v, want ErrTargets", bad, err)
		}
	}
	if _, _, err := SelectTarget(targetsBody(), "board", "", false); !errors.Is(err, ErrTargets) {
		t.Errorf("empty tag: %v, want ErrTargets", err)
	}
}

func FuzzParseDeviceConfig(f *testing.F) {
	f.Add(configBody(`\n[pacman]\ntags = \"main\"\n`, "30"))
	f.Add([]byte(`{"z-50-fioctl.toml":{"Value":"[pacman]\\ntags=\"a\\u0041\""},"btn_polling_interval":{"Value":"-3"}}`))
	f.Add([]byte(`{"a":[1,2,{"b":null}],"polling_interval":{"Value":12}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := ParseDeviceConfig(body)
		if len(c.Tag) >= maxFioctlTOML {
			t.Fatalf("tag of %d bytes from a value bounded to %d", len(c.Tag), maxFioctlTOML)
		}
		if !c.HasPollInterval && c.PollInterval != 0 {
			t.Fatalf("poll interval %d without HasPollInterval", c.PollInterval)
		}
	})
}

func FuzzSelectTarget(f *testing.F) {
	f.Add(targetsBody(targetEntry("b-v5", "5", "board", "main", sha1, 10), targetEntry("b-v7", "7", "board", "main", sha2, 20)), false)
	f.Add(targetsBody(targetEntry("b-v5", "5", "bo", "ma", sha1, 10)), true)
	f.Add([]byte(`{"signed":{"targets":{"x":{"custom":{"version":99999999999}}}}}`), false)
	f.Fuzz(func(t *testing.T, body []byte, exact bool) {
		got, walked, err := SelectTarget(body, "board", "main", exact)
		if walked < 0 || (err != nil && got != (Target{})) {
			t.Fatalf("SelectTarget = %+v, %d, %v", got, walked, err)
		}
		if got.Version != 0 && got.Length < 0 {
			t.Fatalf("selected a negative length: %+v", got)
		}
	})
}
